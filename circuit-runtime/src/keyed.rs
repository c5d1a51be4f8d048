//! One breaker per dependency instance: a family of breakers under one
//! name, one per key (a host, a topic, a tenant), each registered as
//! `<name>/<key>` like any other breaker.
//!
//! A key seen before is found by its text without building it: the key's
//! `Display` output is hashed and compared as it is written, chunk by
//! chunk, so a lookup allocates nothing. The table is split in shards, each
//! behind a read-write lock that only a new key writes, so lookups of
//! different keys never wait on each other and never on a global lock.

use std::collections::HashMap;
use std::fmt::{self, Display, Write};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::breaker::CircuitBreaker;
use crate::events::{Event, KeyOverflow};

use crate::registry::Registry;
use crate::sync::{read, write};

/// How many breakers a keyed name may have at most, by default.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// The suffix of the breaker that keys beyond `max_keys` share.
pub(crate) const OVERFLOW_KEY: &str = "_overflow";

/// Shards of a family's table: enough that two cores rarely meet on one
/// lock, few enough that an idle family costs little.
const SHARDS: usize = 16;

/// The bounds of a keyed name, for
/// [`Registry::keyed_with`](crate::Registry::keyed_with).
///
/// ```
/// use circuit_runtime::{KeyLimits, Registry};
///
/// let registry = Registry::new();
/// let tenants = registry.keyed_with("tenants", Default::default(), KeyLimits::new().max_keys(500));
/// assert_eq!(tenants.max_keys(), 500);
/// assert_eq!(registry.keyed("hosts", Default::default()).max_keys(), 10_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyLimits {
    max_keys: usize,
}

impl Default for KeyLimits {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl KeyLimits {
    /// The defaults: at most [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::KeyLimits::new(), Default::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max_keys` breakers under the name (at least 1): keys beyond
    /// it share one overflow breaker, `<name>/_overflow`, so keys an
    /// attacker chooses cannot grow memory without bound.
    ///
    /// ```
    /// use circuit_runtime::{KeyLimits, Registry};
    /// let registry = Registry::new();
    /// let hosts = registry.keyed_with("hosts", Default::default(), KeyLimits::new().max_keys(0));
    /// assert_eq!(hosts.max_keys(), 1);
    /// ```
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }
}

/// The breakers of one keyed name, from
/// [`Registry::keyed`](crate::Registry::keyed): [`get`](Self::get) finds
/// or creates the breaker of a key.
///
/// Each key's breaker is a breaker of the registry like any other, named
/// `<name>/<key>`: listed in [`names`](crate::Registry::names), snapshots,
/// health and metrics, and configurable by that name, or for every key at
/// once by the keyed name itself (in code with
/// [`configure`](crate::Registry::configure), or in a configuration file's
/// `[breakers.<name>]` table, under a key's own `[breakers."<name>/<key>"]`).
///
/// ```
/// use circuit_runtime::{Config, Registry, State};
///
/// let registry = Registry::new();
/// let hosts = registry.keyed("upstream", Config::builder().failure_threshold(1).build()?);
/// hosts.get("10.0.0.1:443").record_failure();
///
/// assert_eq!(hosts.get("10.0.0.1:443").state(), State::Open);
/// assert_eq!(hosts.get("10.0.0.2:443").state(), State::Closed, "another host, another breaker");
/// assert_eq!(registry.names(), ["upstream/10.0.0.1:443", "upstream/10.0.0.2:443"]);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct KeyedBreakers<'r> {
    registry: &'r Registry,
    family: Arc<Family>,
}

/// What every handle of one keyed name shares.
pub(crate) struct Family {
    name: Box<str>,
    limits: KeyLimits,
    /// Randomly keyed: keys may come from requests, and a fixed hash would
    /// let their sender make every key collide.
    hasher: foldhash::quality::RandomState,
    shards: [RwLock<Shard>; SHARDS],
    /// Keys with a breaker of their own.
    keys: AtomicUsize,
    /// The overflow breaker, once a key met the bound.
    overflow: RwLock<Option<Arc<CircuitBreaker>>>,
    /// Whether the overflow has been announced.
    overflowed: AtomicBool,
}

/// One shard: members by the hash of their key's text. Hashes are already
/// well mixed, so the map does not hash them again.
type Shard = HashMap<u64, Vec<Member>, BuildHasherDefault<AlreadyHashed>>;

struct Member {
    key: Box<str>,
    breaker: Arc<CircuitBreaker>,
}

impl Family {
    pub(crate) fn new(name: &str, limits: KeyLimits) -> Self {
        Self {
            name: name.into(),
            limits,
            hasher: foldhash::quality::RandomState::default(),
            shards: std::array::from_fn(|_| RwLock::default()),
            keys: AtomicUsize::new(0),
            overflow: RwLock::new(None),
            overflowed: AtomicBool::new(false),
        }
    }

    /// The hash of a key's text.
    fn hash_of(&self, text: &[u8]) -> u64 {
        self.hasher.hash_one(text)
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // Bits neither the map's bucket index (low bits) nor its control
        // bytes (top bits) use, so a shard's keys still spread in its map.
        #[allow(clippy::cast_possible_truncation)] // masked to the shard count
        let index = (hash >> 32) as usize % SHARDS;
        &self.shards[index]
    }

    /// The live breaker of the key whose text is `text`, if it has one.
    #[inline]
    fn find(&self, hash: u64, text: &[u8]) -> Option<Arc<CircuitBreaker>> {
        let shard = read(self.shard(hash));
        let member = shard
            .get(&hash)?
            .iter()
            .find(|member| member.key.as_bytes() == text)?;
        (!member.breaker.is_retired()).then(|| Arc::clone(&member.breaker))
    }
}

impl<'r> KeyedBreakers<'r> {
    pub(crate) fn new(registry: &'r Registry, family: Arc<Family>) -> Self {
        Self { registry, family }
    }

    /// The table every handle of this name shares.
    pub(crate) fn family(&self) -> &Arc<Family> {
        &self.family
    }

    /// The keyed name.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// assert_eq!(registry.keyed("upstream", Default::default()).name(), "upstream");
    /// ```
    pub fn name(&self) -> &str {
        &self.family.name
    }

    /// The largest number of keys with a breaker of their own, as the
    /// name was created with.
    ///
    /// ```
    /// use circuit_runtime::{KeyLimits, Registry};
    /// let registry = Registry::new();
    /// let topics = registry.keyed_with("topics", Default::default(), KeyLimits::new().max_keys(50));
    /// assert_eq!(topics.max_keys(), 50);
    /// ```
    pub fn max_keys(&self) -> usize {
        self.family.limits.max_keys
    }

    /// How many keys have a breaker of their own (the overflow breaker
    /// not counted).
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// let topics = registry.keyed("topics", Default::default());
    /// topics.get("orders");
    /// topics.get("orders");
    /// topics.get("payments");
    /// assert_eq!(topics.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.family.keys.load(Ordering::Relaxed)
    }

    /// Whether no key has a breaker yet.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// assert!(registry.keyed("topics", Default::default()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The breaker of `key` (by its `Display` text), created on the key's
    /// first use. Beyond [`max_keys`](KeyLimits::max_keys) keys, a new key
    /// gets the overflow breaker `<name>/_overflow` that all such keys
    /// share, and the first time that happens an
    /// [`Event::KeyOverflow`] says so.
    ///
    /// A key seen before costs a hash of its text and a shared lock of
    /// one shard of the table; it allocates nothing.
    ///
    /// ```
    /// use circuit_runtime::{KeyLimits, Registry};
    ///
    /// let registry = Registry::new();
    /// let topics = registry.keyed_with("topics", Default::default(), KeyLimits::new().max_keys(1));
    /// assert_eq!(topics.get("orders").name(), "topics/orders");
    /// assert_eq!(topics.get(&42).name(), "topics/_overflow", "over the bound");
    /// assert_eq!(topics.get("orders").name(), "topics/orders");
    /// ```
    pub fn get<K: Display + ?Sized>(&self, key: &K) -> Arc<CircuitBreaker> {
        self.family.get(self.registry, key)
    }
}

impl Family {
    /// See [`KeyedBreakers::get`]; `registry` is the family's.
    #[inline]
    pub(crate) fn get<K: Display + ?Sized>(
        &self,
        registry: &Registry,
        key: &K,
    ) -> Arc<CircuitBreaker> {
        let mut text = KeyText::default();
        if write!(text, "{key}").is_err() {
            // Longer than `MAX_KEY_LEN`, or a `Display` that failed.
            return self.overflow(registry, text.as_bytes());
        }
        let text = text.as_bytes();
        let hash = self.hash_of(text);
        match self.find(hash, text) {
            Some(breaker) => breaker,
            None => self.insert(registry, hash, text),
        }
    }

    /// A key without a live breaker: its first use, or the first since the
    /// registry replaced or removed its breaker.
    ///
    /// Under the shard's write lock, so two first uses of one key make one
    /// breaker and take one slot. The registry is asked under it: the
    /// registry never takes a shard's lock, and runs no hook under its own.
    #[cold]
    #[inline(never)]
    fn insert(&self, registry: &Registry, hash: u64, text: &[u8]) -> Arc<CircuitBreaker> {
        let key = String::from_utf8_lossy(text);
        let mut shard = write(self.shard(hash));
        let known = shard
            .get_mut(&hash)
            .and_then(|members| members.iter_mut().find(|member| *member.key == *key));
        if let Some(member) = known {
            if member.breaker.is_retired() {
                member.breaker = registry.member(&self.name, &key);
            }
            return Arc::clone(&member.breaker);
        }
        // No entry is made for a key that gets no breaker: a flood of
        // them must not grow the table.
        if !self.reserve_slot() {
            drop(shard);
            return self.overflow(registry, key.as_bytes());
        }
        let breaker = registry.member(&self.name, &key);
        shard.entry(hash).or_default().push(Member {
            key: key.into(),
            breaker: Arc::clone(&breaker),
        });
        breaker
    }

    fn reserve_slot(&self) -> bool {
        let max = self.limits.max_keys;
        self.keys
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |keys| {
                (keys < max).then_some(keys + 1)
            })
            .is_ok()
    }

    /// The breaker every key beyond the bound shares (and every key whose
    /// text is too long); the first such key is announced.
    fn overflow(&self, registry: &Registry, key: &[u8]) -> Arc<CircuitBreaker> {
        let live = read(&self.overflow)
            .as_ref()
            .filter(|breaker| !breaker.is_retired())
            .map(Arc::clone);
        let breaker = live.unwrap_or_else(|| {
            let mut overflow = write(&self.overflow);
            match &*overflow {
                Some(breaker) if !breaker.is_retired() => Arc::clone(breaker),
                _ => Arc::clone(overflow.insert(registry.member(&self.name, OVERFLOW_KEY))),
            }
        });
        // A load first: under a flood of new keys this is the hot path,
        // and a write to a shared line on every call would be felt.
        if !self.overflowed.load(Ordering::Relaxed)
            && !self.overflowed.swap(true, Ordering::Relaxed)
        {
            breaker.emit(&Event::KeyOverflow(KeyOverflow {
                name: breaker.static_name(),
                key: String::from_utf8_lossy(key).into_owned(),
                max_keys: self.limits.max_keys,
            }));
        }
        breaker
    }
}

impl fmt::Debug for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("keys", &self.keys.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for KeyedBreakers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBreakers")
            .field("name", &self.name())
            .field("keys", &self.len())
            .field("limits", &self.family.limits)
            .finish_non_exhaustive()
    }
}

/// The name of key `key`'s breaker under `name`.
pub(crate) fn member_name(name: &str, key: &str) -> String {
    format!("{name}/{key}")
}

/// The longest key text, in bytes: a longer key shares the overflow
/// breaker, so keys a client chooses cannot make names of any length.
pub const MAX_KEY_LEN: usize = 256;

/// A key's text as its `Display` writes it, on the stack: a call
/// allocates nothing for it.
struct KeyText {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl Default for KeyText {
    fn default() -> Self {
        Self {
            bytes: [0; MAX_KEY_LEN],
            len: 0,
        }
    }
}

impl KeyText {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for KeyText {
    /// Fails once the text would pass [`MAX_KEY_LEN`], keeping what fit.
    fn write_str(&mut self, chunk: &str) -> fmt::Result {
        let end = self.len + chunk.len();
        if end > MAX_KEY_LEN {
            let room = MAX_KEY_LEN - self.len;
            let fits = (0..=room)
                .rev()
                .find(|&at| chunk.is_char_boundary(at))
                .unwrap_or(0);
            self.bytes[self.len..self.len + fits].copy_from_slice(&chunk.as_bytes()[..fits]);
            self.len += fits;
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(chunk.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The hasher of a map whose keys are hashes already.
#[derive(Default)]
pub(crate) struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; anything else is folded in whole.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_text_is_written_whole_however_it_is_chunked() {
        struct Chunks;
        impl Display for Chunks {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("ord")?;
                f.write_str("ers")
            }
        }
        let mut text = KeyText::default();
        write!(text, "{Chunks}").unwrap();
        assert_eq!(text.as_bytes(), b"orders");
    }

    #[test]
    fn a_key_text_longer_than_the_limit_is_refused_at_a_char_boundary() {
        let long = "k".repeat(MAX_KEY_LEN - 1);
        let mut text = KeyText::default();
        assert!(write!(text, "{long}é").is_err());
        assert_eq!(text.as_bytes(), long.as_bytes());
        let mut exact = KeyText::default();
        assert!(write!(exact, "{long}k").is_ok());
    }
}
