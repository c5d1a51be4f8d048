//! One breaker per dependency instance: a family of breakers under one
//! name, one per key (a host, a topic, a tenant), each registered as
//! `<name>/<key>` like any other breaker.
//!
//! A key seen before is found by its text without building it: the key's
//! `Display` output is hashed and compared as it is written, chunk by
//! chunk, so a lookup allocates nothing. The table is split in shards, each
//! behind a read-write lock that only a new key writes, so lookups of
//! different keys never wait on each other and never on a global lock.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt::{self, Display, Write};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::breaker::CircuitBreaker;
use crate::events::{Event, KeyOverflow};
use crate::registry::Registry;
use crate::sync::{read, write};

/// How many breakers a keyed name may have at most, by default.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// The suffix of the breaker that keys beyond `max_keys` share.
pub const OVERFLOW_KEY: &str = "_overflow";

/// Shards of a family's table: enough that two cores rarely meet on one
/// lock, few enough that an idle family costs little.
const SHARDS: usize = 16;

/// The bounds of a keyed name.
///
/// ```
/// use circuit_runtime::KeyLimits;
///
/// let limits = KeyLimits::new().max_keys(500);
/// assert_eq!(limits.get_max_keys(), 500);
/// assert_eq!(KeyLimits::default().get_max_keys(), 10_000);
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
    /// assert_eq!(circuit_runtime::KeyLimits::new().max_keys(0).get_max_keys(), 1);
    /// ```
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// The largest number of keys with a breaker of their own.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::KeyLimits::new().max_keys(3).get_max_keys(), 3);
    /// ```
    pub fn get_max_keys(&self) -> usize {
        self.max_keys
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
    hasher: RandomState,
    shards: [RwLock<Shard>; SHARDS],
    /// Keys with a breaker of their own.
    keys: AtomicUsize,
    overflow: OnceLock<Arc<CircuitBreaker>>,
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
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| RwLock::default()),
            keys: AtomicUsize::new(0),
            overflow: OnceLock::new(),
            overflowed: AtomicBool::new(false),
        }
    }

    /// The hash of `key`'s text, computed as it is written.
    fn hash_of(&self, key: &(impl Display + ?Sized)) -> u64 {
        let mut hasher = HashWriter(self.hasher.build_hasher());
        // A `Display` that fails mid-way hashes what it wrote; the slow
        // path formats the same text, so both agree.
        let _ = write!(hasher, "{key}");
        hasher.0.finish()
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // Bits neither the map's bucket index (low bits) nor its control
        // bytes (top bits) use, so a shard's keys still spread in its map.
        #[allow(clippy::cast_possible_truncation)] // masked to the shard count
        let index = (hash >> 32) as usize % SHARDS;
        &self.shards[index]
    }

    /// The live breaker of `key`, if it has one.
    fn find(&self, hash: u64, key: &(impl Display + ?Sized)) -> Option<Arc<CircuitBreaker>> {
        let shard = read(self.shard(hash));
        let member = shard
            .get(&hash)?
            .iter()
            .find(|member| same_text(key, &member.key))?;
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

    /// The bounds this name was created with.
    ///
    /// ```
    /// use circuit_runtime::{KeyLimits, Registry};
    /// let registry = Registry::new();
    /// let topics = registry.keyed_with("topics", Default::default(), KeyLimits::new().max_keys(50));
    /// assert_eq!(topics.limits().get_max_keys(), 50);
    /// ```
    pub fn limits(&self) -> KeyLimits {
        self.family.limits
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
        let hash = self.hash_of(key);
        match self.find(hash, key) {
            Some(breaker) => breaker,
            None => self.insert(registry, hash, key.to_string()),
        }
    }

    /// A key without a live breaker: its first use, or the first since the
    /// registry replaced or removed its breaker.
    #[cold]
    #[inline(never)]
    fn insert(&self, registry: &Registry, hash: u64, key: String) -> Arc<CircuitBreaker> {
        let replacing = read(self.shard(hash))
            .get(&hash)
            .is_some_and(|members| members.iter().any(|member| *member.key == *key));
        // A slot is reserved before the breaker exists, so two new keys
        // racing for the last slot cannot both take it.
        if !replacing && !self.reserve_slot() {
            return self.overflow(registry, &key);
        }
        // Registered outside the shard's lock: the registry never waits on
        // a shard, and a shard never waits on the registry.
        let breaker = registry.member(&self.name, &key);
        let mut shard = write(self.shard(hash));
        let members = shard.entry(hash).or_default();
        match members.iter_mut().find(|member| *member.key == *key) {
            Some(member) => {
                // Another thread inserted it meanwhile, or the registry
                // replaced it: the registry's breaker is the one to keep.
                member.breaker = Arc::clone(&breaker);
                if !replacing {
                    self.keys.fetch_sub(1, Ordering::Relaxed);
                }
            }
            None => members.push(Member {
                key: key.into_boxed_str(),
                breaker: Arc::clone(&breaker),
            }),
        }
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

    /// The breaker every key beyond the bound shares; the first key to
    /// reach it is announced.
    fn overflow(&self, registry: &Registry, key: &str) -> Arc<CircuitBreaker> {
        let breaker = self
            .overflow
            .get_or_init(|| registry.member(&self.name, OVERFLOW_KEY));
        if !self.overflowed.swap(true, Ordering::Relaxed) {
            breaker.emit(&Event::KeyOverflow(KeyOverflow {
                name: breaker.static_name(),
                key: key.to_owned(),
                max_keys: self.limits.max_keys,
            }));
        }
        Arc::clone(breaker)
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

/// Feeds what is written to a hasher.
struct HashWriter<H>(H);

impl<H: Hasher> Write for HashWriter<H> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.write(text.as_bytes());
        Ok(())
    }
}

/// Whether `key` writes exactly `text`, compared as it is written: stops
/// at the first chunk that differs.
fn same_text(key: &(impl Display + ?Sized), text: &str) -> bool {
    struct Compare<'a> {
        rest: &'a str,
    }
    impl Write for Compare<'_> {
        fn write_str(&mut self, chunk: &str) -> fmt::Result {
            match self.rest.strip_prefix(chunk) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                None => Err(fmt::Error),
            }
        }
    }
    let mut compare = Compare { rest: text };
    write!(compare, "{key}").is_ok() && compare.rest.is_empty()
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
    fn text_is_compared_across_chunks() {
        struct Chunks;
        impl Display for Chunks {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("ord")?;
                f.write_str("ers")
            }
        }
        assert!(same_text(&Chunks, "orders"));
        assert!(!same_text(&Chunks, "order"));
        assert!(!same_text(&Chunks, "ordersx"));
        assert!(same_text(&7, "7"));
    }

    #[test]
    fn a_hash_does_not_depend_on_how_the_text_is_chunked() {
        struct Chunks;
        impl Display for Chunks {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("ord")?;
                f.write_str("ers")
            }
        }
        let family = Family::new("topics", KeyLimits::default());
        assert_eq!(family.hash_of(&Chunks), family.hash_of("orders"));
    }
}
