//! The shared store on Redis: one hash per breaker name, written only by a
//! compare-and-set script on its generation, read with the time left of
//! its open period measured on Redis's own clock.
//!
//! Each name's keys carry one hash tag, `{cb:<name>}`, so every script
//! touches keys of one Cluster slot; every write renews the state's time
//! to live, so the state of a breaker no replica runs any more is
//! forgotten. The scripts read `TIME` before they write, which Redis
//! allows from version 5 on.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use crate::backend::{
    state_from_name, state_name, Backend, BackendError, Change, ClusterCounts, ClusterState,
    CountReport, Exchanged, Published, SharedConfig,
};

/// Reads the view of `KEYS[1]` at the time `now` (milliseconds on Redis's
/// clock): generation, state, milliseconds of its open period left,
/// origin.
const VIEW: &str = r"
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function view(key, now)
  local fields = redis.call('HMGET', key, 'gen', 'state', 'open_until', 'origin')
  -- A field written by hand that is not a number reads as 0: the next
  -- publication, at generation 0, repairs the key.
  local left = math.max(0, (tonumber(fields[3]) or 0) - now)
  return {tonumber(fields[1]) or 0, fields[2] or '', left, fields[4] or ''}
end
";

/// `KEYS[1]`: the name's key, `KEYS[2]` its trial lease, `KEYS[3]` its
/// shared counts, `KEYS[4]` the replicas whose trips count toward a
/// quorum (a sorted set, each scored with its trip's end). `ARGV`: the
/// generation the replica knows,
/// the state, the open time in milliseconds, the replica, the key's time
/// to live in milliseconds. Returns `{1, generation}` when written, or
/// `{0, view...}` with what the key holds when its generation had moved.
const PUBLISH: &str = r"
local now = now_ms()
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen')) or 0
if gen ~= tonumber(ARGV[1]) then
  local current = view(KEYS[1], now)
  return {0, current[1], current[2], current[3], current[4]}
end
local open_ms = tonumber(ARGV[3])
if ARGV[2] == 'open' and tonumber(ARGV[6]) > 1 then
  -- Each trip counts toward the quorum for as long as it keeps its
  -- replica open, scored with its own end; the store takes the trip once
  -- enough unexpired ones are in.
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZADD', KEYS[4], now + math.max(open_ms, 1), ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  if redis.call('ZCARD', KEYS[4]) < tonumber(ARGV[6]) then return {2, gen} end
end
local open_until = 0
if open_ms > 0 then open_until = now + open_ms end
redis.call('HSET', KEYS[1], 'gen', gen + 1, 'state', ARGV[2], 'open_until', open_until,
  'origin', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
-- A new shared period counts from zero: failures that tripped the last
-- one must not trip the next.
redis.call('DEL', KEYS[3], KEYS[4])
if ARGV[2] == 'closed' then
  -- Recovered: the next open period's trial is anyone's.
  redis.call('DEL', KEYS[2])
end
return {1, gen + 1}
";

/// `KEYS[1]`: the name's shared counts: failures in a row, and calls and
/// failures per second of Redis's clock. `ARGV`: this replica's calls and
/// failures since its last report, whether one succeeded (1) and its own
/// failures in a row since, the window in seconds (0: none), the key's
/// time to live in milliseconds. Returns failures in a row, and calls and
/// failures within the window.
const COUNTS: &str = r"
local now = tonumber(redis.call('TIME')[1])
local consecutive = tonumber(redis.call('HGET', KEYS[1], 'consecutive')) or 0
if tonumber(ARGV[3]) == 1 then
  consecutive = tonumber(ARGV[4])
else
  consecutive = consecutive + tonumber(ARGV[2])
end
redis.call('HSET', KEYS[1], 'consecutive', consecutive)
if tonumber(ARGV[1]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'c:' .. now, ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'f:' .. now, ARGV[2])
end
local window = tonumber(ARGV[5])
local calls, failures = 0, 0
if window > 0 then
  -- One read of every bucket; those past the window are dropped.
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local kind, second = string.match(fields[i], '^(%a):(%d+)$')
    if second then
      if tonumber(second) > now - window then
        local count = tonumber(fields[i + 1]) or 0
        if kind == 'c' then calls = calls + count end
        if kind == 'f' then failures = failures + count end
      else
        redis.call('HDEL', KEYS[1], fields[i])
      end
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {consecutive, calls, failures}
";

/// `KEYS[1]`: the name's shared configuration. `ARGV`: its JSON, the
/// replica, the key's time to live in milliseconds. Returns the new
/// version.
const CONFIG: &str = r"
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'origin', ARGV[2], 'config', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return version
";

/// `KEYS[1]`: the name's trial lease. `ARGV`: the replica, the lease in
/// milliseconds. Grants (1) when the lease is free or the replica's own.
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// `KEYS[1]`: the name's key. Returns its view.
const PULL: &str = r"
return view(KEYS[1], now_ms())
";

pub(crate) struct RedisBackend {
    connection: ConnectionManager,
    publish: Script,
    pull: Script,
    claim: Script,
    counts: Script,
    config: Script,
    key_ttl: Duration,
}

impl RedisBackend {
    pub(crate) fn new(connection: ConnectionManager, key_ttl: Duration) -> Self {
        Self {
            connection,
            publish: Script::new(&format!("{VIEW}{PUBLISH}")),
            pull: Script::new(&format!("{VIEW}{PULL}")),
            claim: Script::new(CLAIM),
            counts: Script::new(COUNTS),
            config: Script::new(CONFIG),
            key_ttl,
        }
    }
}

/// The key of a breaker name: a hash tag around the name, so a script on
/// it stays in one Redis Cluster slot.
pub(crate) fn key_of(name: &str) -> String {
    format!("{{cb:{name}}}")
}

/// A key of `name` beside its state (`part`: `counts`, `config`, `trial`,
/// `tripped`), under the same hash tag, so in the same slot.
fn part_key_of(name: &str, part: &str) -> String {
    format!("{{cb:{name}}}:{part}")
}

/// `duration` in whole milliseconds, as Redis takes them.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn view_of((generation, state, left_ms, origin): (u64, String, u64, String)) -> ClusterState {
    ClusterState {
        generation,
        state: state_from_name(&state),
        open_for: Duration::from_millis(left_ms),
        origin,
    }
}

impl RedisBackend {
    /// Sends `commands` in one pipeline, and returns each one's reply,
    /// a refusal included.
    async fn query(&mut self, commands: &[redis::Cmd]) -> Result<Vec<redis::Value>, BackendError> {
        let mut pipe = redis::pipe();
        for command in commands {
            pipe.add_command(command.clone());
        }
        pipe.ignore_errors()
            .query_async(&mut self.connection)
            .await
            .map_err(store_error)
    }
}

/// Whether Redis refused a script call because it does not know the
/// script.
fn is_unknown_script(reply: &redis::Value) -> bool {
    matches!(
        reply,
        redis::Value::ServerError(error)
            if error.kind() == Some(redis::ServerErrorKind::NoScript)
    )
}

/// `name`'s reply as `T`, if it has one and it reads; one that does not
/// read goes to `unreadable`.
fn read<T: redis::FromRedisValue>(
    unreadable: &mut Vec<BackendError>,
    name: &str,
    reply: Option<redis::Value>,
) -> Option<T> {
    match parse(name, reply?) {
        Ok(value) => Some(value),
        Err(error) => {
            unreadable.push(error);
            None
        }
    }
}

/// The store failed, or could not be reached.
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` hands it
fn store_error(error: redis::RedisError) -> BackendError {
    error.to_string().into()
}

/// What Redis answered about `name`: a key of the wrong type damages that
/// name only (on Redis 7 a script reports it by its code too); anything
/// else is the store's.
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` hands it
fn name_error(name: &str, error: redis::RedisError) -> BackendError {
    if error.code() == Some("WRONGTYPE") {
        BackendError::of_name(name, &error)
    } else {
        store_error(error)
    }
}

/// A reply about `name` as `T`: one the scripts could not make sense of
/// (a key's contents written by hand) is a fault of that name's keys.
fn parse<T: redis::FromRedisValue>(name: &str, reply: redis::Value) -> Result<T, BackendError> {
    redis::from_redis_value(reply).map_err(|error| BackendError::of_name(name, error))
}

impl Backend for RedisBackend {
    async fn publish(
        &mut self,
        name: &str,
        expected: u64,
        change: &Change,
        origin: &str,
    ) -> Result<Published, BackendError> {
        let (open_ms, ttl_ms) = (millis(change.open_for), millis(self.key_ttl));
        let reply: redis::Value = self
            .publish
            .key(key_of(name))
            .key(part_key_of(name, "trial"))
            .key(part_key_of(name, "counts"))
            .key(part_key_of(name, "tripped"))
            .arg(expected)
            .arg(state_name(change.state))
            .arg(open_ms)
            .arg(origin)
            .arg(ttl_ms)
            .arg(change.quorum)
            .invoke_async(&mut self.connection)
            .await
            .map_err(|error| name_error(name, error))?;
        let reply: Vec<redis::Value> = parse(name, reply)?;
        let mut fields = reply.into_iter();
        let won: u64 = fields.next().map_or(Ok(0), |won| parse(name, won))?;
        if won == 2 {
            return Ok(Published::Counted);
        }
        if won == 1 {
            let generation = fields
                .next()
                .map_or(Ok(0), |generation| parse(name, generation))?;
            return Ok(Published::Won(generation));
        }
        let view: (u64, String, u64, String) = parse(name, redis::Value::Array(fields.collect()))?;
        Ok(Published::Lost(view_of(view)))
    }

    async fn publish_config(
        &mut self,
        name: &str,
        config: &str,
        origin: &str,
    ) -> Result<u64, BackendError> {
        let ttl_ms = millis(self.key_ttl);
        self.config
            .key(part_key_of(name, "config"))
            .arg(config)
            .arg(origin)
            .arg(ttl_ms)
            .invoke_async(&mut self.connection)
            .await
            .map_err(|error| name_error(name, error))
    }

    async fn claim_trial(
        &mut self,
        name: &str,
        origin: &str,
        lease: Duration,
    ) -> Result<bool, BackendError> {
        let lease_ms = millis(lease).max(1);
        let granted: u64 = self
            .claim
            .key(part_key_of(name, "trial"))
            .arg(origin)
            .arg(lease_ms)
            .invoke_async(&mut self.connection)
            .await
            .map_err(|error| name_error(name, error))?;
        Ok(granted == 1)
    }

    async fn exchange(
        &mut self,
        reports: &[(String, CountReport)],
        names: &[String],
    ) -> Result<Exchanged, BackendError> {
        // One script call per name, so no script spans two Cluster slots.
        let ttl_ms = millis(self.key_ttl);
        let mut commands = Vec::with_capacity(reports.len() + 2 * names.len());
        for (name, report) in reports {
            let window = report.window.map_or(0, |window| window.as_secs().max(1));
            let mut counts = redis::cmd("EVALSHA");
            counts
                .arg(self.counts.get_hash())
                .arg(1)
                .arg(part_key_of(name, "counts"))
                .arg(report.calls)
                .arg(report.failures)
                .arg(u8::from(report.succeeded))
                .arg(report.consecutive)
                .arg(window)
                .arg(ttl_ms);
            commands.push(counts);
        }
        for name in names {
            let mut view = redis::cmd("EVALSHA");
            view.arg(self.pull.get_hash()).arg(1).arg(key_of(name));
            commands.push(view);
        }
        for name in names {
            let mut config = redis::cmd("HMGET");
            config
                .arg(part_key_of(name, "config"))
                .arg("version")
                .arg("origin")
                .arg("config");
            commands.push(config);
        }
        let mut replies = self.query(&commands).await?;
        let unknown: Vec<usize> = (0..replies.len())
            .filter(|&index| is_unknown_script(&replies[index]))
            .collect();
        if !unknown.is_empty() {
            // A new or restarted Redis does not know the scripts yet. A
            // call it refused did nothing, so it, and only it, is sent
            // again: no report is added twice.
            for script in [&self.counts, &self.pull] {
                script
                    .load_async(&mut self.connection)
                    .await
                    .map_err(store_error)?;
            }
            let again: Vec<redis::Cmd> = unknown
                .iter()
                .map(|&index| commands[index].clone())
                .collect();
            for (index, reply) in unknown.into_iter().zip(self.query(&again).await?) {
                replies[index] = reply;
            }
        }
        let mut refusals = Vec::new();
        let mut replies = replies.into_iter();
        // Each name's reply, parsed; a name whose keys are damaged is
        // refused alone, and the others go on.
        let mut take = |name: &str| -> Result<Option<redis::Value>, BackendError> {
            let reply = replies
                .next()
                .ok_or_else(|| BackendError::from("fewer replies than commands"))?;
            match reply {
                redis::Value::ServerError(error) if error.code() == "WRONGTYPE" => {
                    refusals.push(BackendError::of_name(name, &error));
                    Ok(None)
                }
                redis::Value::ServerError(error) => Err(error.to_string().into()),
                reply => Ok(Some(reply)),
            }
        };
        let mut unreadable = Vec::new();
        let mut counts = Vec::with_capacity(reports.len());
        for (name, _) in reports {
            let counted: Option<(u64, u64, u64)> = read(&mut unreadable, name, take(name)?);
            counts.push(counted.map(|(consecutive, calls, failures)| ClusterCounts {
                consecutive,
                calls,
                failures,
            }));
        }
        let mut states = Vec::with_capacity(names.len());
        for name in names {
            states.push(read(&mut unreadable, name, take(name)?).map(view_of));
        }
        let mut configs = Vec::with_capacity(names.len());
        for name in names {
            let fields: Option<(Option<u64>, Option<String>, Option<String>)> =
                read(&mut unreadable, name, take(name)?);
            configs.push(fields.and_then(|(version, origin, json)| {
                Some(SharedConfig {
                    version: version?,
                    origin: origin?,
                    json: json?,
                })
            }));
        }
        refusals.extend(unreadable);
        Ok(Exchanged {
            counts,
            states,
            configs,
            refusals,
        })
    }
}
