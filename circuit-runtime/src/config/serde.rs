//! `Config: Serialize + Deserialize` (feature `serde`): a map of option
//! names to values, written as in a configuration file
//! (`failure_threshold = 5`, `recovery_timeout = "30s"`), checked against
//! the option table when read.

use std::fmt;

use circuit_spec::{duration, Value};
use circuit_spec::{Key, Raw, Settings};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::Config;
use crate::clock::Clock;

/// Options by name, written as a configuration file writes them; every
/// value and every rule between options checked against the option table.
/// The clock is the monotonic one.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::Config;
///
/// let config: Config = toml::from_str("failure_threshold = 3\nrecovery_timeout = \"1m30s\"")?;
/// assert_eq!(config.failure_threshold(), 3);
/// assert_eq!(config.recovery_timeout(), Duration::from_secs(90));
///
/// let err = toml::from_str::<Config>("failure_treshold = 3").unwrap_err();
/// assert!(err.message().contains("did you mean `failure_threshold`?"));
/// # Ok::<(), toml::de::Error>(())
/// ```
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConfigVisitor)
    }
}

/// Every option in force, by name, as a file writes it: counts and rates
/// as numbers, durations as strings (`"1m30s"`); options that are off (a
/// rate rule not asked for, the window kind not chosen) are left out. The
/// clock is not an option, and is not written.
///
/// ```
/// use circuit_runtime::Config;
///
/// let config = Config::builder().failure_threshold(3).build()?;
/// let text = toml::to_string(&config).unwrap();
/// assert!(text.contains("failure_threshold = 3\n"));
/// assert!(text.contains("recovery_timeout = \"1m\"\n"));
/// assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let options: Vec<(Key, Value)> = Key::ALL
            .into_iter()
            .filter_map(|key| self.resolved.get(key).map(|value| (key, value)))
            .collect();
        let mut map = serializer.serialize_map(Some(options.len()))?;
        for (key, value) in options {
            match value {
                Value::Count(count) => map.serialize_entry(key.name(), &count),
                Value::Number(number) => map.serialize_entry(key.name(), &number),
                Value::Duration(span) => map.serialize_entry(key.name(), &duration::format(span)),
            }?;
        }
        map.end()
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of circuit breaker options, such as `failure_threshold = 5`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut settings = Settings::new();
        while let Some(name) = map.next_key::<String>()? {
            let Some(key) = Key::from_name(&name) else {
                return Err(de::Error::custom(circuit_spec::unknown_key(&name, &[])));
            };
            let value: AnyValue = map.next_value()?;
            let value = key
                .value_from(value.as_raw())
                .map_err(|problem| de::Error::custom(problem.explain(|_, v| v.to_string())))?;
            if settings.set(key, value).is_some() {
                return Err(de::Error::custom(format!(
                    "duplicate key `{name}`: each option may appear once"
                )));
            }
        }
        if let Some(problem) = settings.problems().first() {
            return Err(de::Error::custom(problem.explain(|_, v| v.to_string())));
        }
        Config::from_settings(&settings, Clock::Monotonic).map_err(de::Error::custom)
    }
}

/// An option's value before it is known to be of the option's kind.
enum AnyValue {
    Integer(i64),
    Float(f64),
    Str(String),
    Other(&'static str),
}

impl AnyValue {
    fn as_raw(&self) -> Raw<'_> {
        match self {
            AnyValue::Integer(integer) => Raw::Integer(*integer),
            AnyValue::Float(float) => Raw::Float(*float),
            AnyValue::Str(text) => Raw::Str(text),
            AnyValue::Other(kind) => Raw::Other(kind),
        }
    }
}

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyValueVisitor)
    }
}

struct AnyValueVisitor;

impl<'de> Visitor<'de> for AnyValueVisitor {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a duration string")
    }

    fn visit_i64<E>(self, value: i64) -> Result<AnyValue, E> {
        Ok(AnyValue::Integer(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<AnyValue, E> {
        Ok(AnyValue::Integer(i64::try_from(value).unwrap_or(i64::MAX)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<AnyValue, E> {
        Ok(AnyValue::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<AnyValue, E> {
        Ok(AnyValue::Str(value.to_owned()))
    }

    fn visit_bool<E>(self, _: bool) -> Result<AnyValue, E> {
        Ok(AnyValue::Other("a boolean"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(AnyValue::Other("a table"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(AnyValue::Other("an array"))
    }
}
