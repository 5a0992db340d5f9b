//! The value shapes a config file uses everywhere: durations, "one value or
//! per model", switches.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A duration in a config file: a string with a unit (`"250ms"`, `"30s"`,
/// `"1.5s"`, `"2m"`, `"1h"`) or a plain number of seconds (`30`, `0.25`).
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::settings::HumanDuration;
///
/// let d: HumanDuration = serde_json::from_str(r#""250ms""#).unwrap();
/// assert_eq!(d.get(), Duration::from_millis(250));
/// let d: HumanDuration = serde_json::from_str("1.5").unwrap();
/// assert_eq!(d.get(), Duration::from_millis(1500));
/// assert!(serde_json::from_str::<HumanDuration>(r#""30""#).is_err()); // no unit
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Parses `"250ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = (&t[..split], t[split..].trim());
        let seconds_per_unit = match unit {
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                "duration {text:?} has no unit; write e.g. \"{t}s\" or a plain number of seconds"
            ))
            }
            _ => {
                return Err(format!(
                    "duration {text:?} has an unknown unit {unit:?}; use ms, s, m or h"
                ))
            }
        };
        match number.parse::<f64>() {
            Ok(n) => {
                Self::from_secs(n * seconds_per_unit).map_err(|e| format!("duration {text:?}: {e}"))
            }
            Err(_) => Err(format!(
                "duration {text:?} is not a number followed by a unit (e.g. \"30s\", \"250ms\")"
            )),
        }
    }

    fn from_secs(secs: f64) -> Result<Self, String> {
        Duration::try_from_secs_f64(secs)
            .map(HumanDuration)
            .map_err(|_| format!("{secs} seconds is negative or too large"))
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos() % 1_000_000 == 0 {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => HumanDuration::parse(&s).map_err(de::Error::custom),
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| "not a number".to_owned())
                .and_then(HumanDuration::from_secs)
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected a duration such as \"30s\" or a number of seconds, found {}",
                describe(&other)
            ))),
        }
    }
}

/// A time limit that can be switched off: a [`HumanDuration`], or `"none"`
/// (also `"off"`, `false`) for no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeLimit {
    /// No limit.
    Unlimited,
    /// At most this long.
    After(Duration),
}

impl TimeLimit {
    /// The limit, `None` when unlimited.
    pub fn get(self) -> Option<Duration> {
        match self {
            TimeLimit::Unlimited => None,
            TimeLimit::After(d) => Some(d),
        }
    }
}

impl Serialize for TimeLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TimeLimit::Unlimited => s.serialize_str("none"),
            TimeLimit::After(d) => HumanDuration(*d).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TimeLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) => Ok(TimeLimit::Unlimited),
            Value::String(s) if matches!(s.trim(), "none" | "off") => Ok(TimeLimit::Unlimited),
            other => from_value::<HumanDuration, D::Error>(other).map(|d| TimeLimit::After(d.0)),
        }
    }
}

/// A setting that is on by default and can be turned off with `false`:
/// `budget = false`, or `budget = { ratio = 0.1 }` (`true` keeps the defaults).
#[derive(Clone, Debug, PartialEq)]
pub enum Switch<T> {
    /// Turned off.
    Off,
    /// On, with these settings.
    On(T),
}

impl<T: Default> Default for Switch<T> {
    fn default() -> Self {
        Switch::On(T::default())
    }
}

impl<T: Serialize> Serialize for Switch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Switch::Off => s.serialize_bool(false),
            Switch::On(t) => t.serialize(s),
        }
    }
}

impl<'de, T: DeserializeOwned + Default> Deserialize<'de> for Switch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) => Ok(Switch::Off),
            Value::Bool(true) => Ok(Switch::On(T::default())),
            other => from_value(other).map(Switch::On),
        }
    }
}

/// One value for every model, or `{ default = ..., models = { "azure/gpt-4o" = ... } }`.
///
/// Keys of `models` are model ids or route aliases (an alias sets the value
/// for each model of the route that has none of its own). Without a
/// `default`, models not listed keep the setting's built-in default.
///
/// ```
/// use llm_fallback::settings::PerModelSetting;
///
/// let one: PerModelSetting<u32> = serde_json::from_str("3").unwrap();
/// assert_eq!(one.default, Some(3));
/// let per: PerModelSetting<u32> =
///     serde_json::from_str(r#"{"models": {"azure/gpt-4o": 0}}"#).unwrap();
/// assert_eq!(per.default, None);
/// assert_eq!(per.models["azure/gpt-4o"], 0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PerModelSetting<T> {
    /// The value for models without their own; `None` for the built-in default.
    pub default: Option<T>,
    /// Values per model id or route alias.
    pub models: BTreeMap<String, T>,
}

impl<T> Default for PerModelSetting<T> {
    fn default() -> Self {
        PerModelSetting {
            default: None,
            models: BTreeMap::new(),
        }
    }
}

impl<T> PerModelSetting<T> {
    /// The same value for every model.
    pub fn all(value: T) -> Self {
        PerModelSetting {
            default: Some(value),
            models: BTreeMap::new(),
        }
    }

    /// Sets the value of one model id or route alias.
    pub fn with(mut self, model: impl Into<String>, value: T) -> Self {
        self.models.insert(model.into(), value);
        self
    }

    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        self.default.is_none() && self.models.is_empty()
    }
}

impl<T: Serialize> Serialize for PerModelSetting<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.default {
            Some(value) if self.models.is_empty() => value.serialize(s),
            default => {
                let mut map = s.serialize_map(None)?;
                if let Some(value) = default {
                    map.serialize_entry("default", value)?;
                }
                map.serialize_entry("models", &self.models)?;
                map.end()
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for PerModelSetting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let per_model = matches!(&value, Value::Object(map)
            if !map.is_empty() && map.keys().all(|k| k == "default" || k == "models"));
        if !per_model {
            return from_value(value).map(PerModelSetting::all);
        }
        let Value::Object(mut map) = value else {
            unreachable!("checked above")
        };
        let default = match map.remove("default") {
            Some(v) => Some(from_value(v).map_err(|e: D::Error| in_key("default", e))?),
            None => None,
        };
        let models = match map.remove("models") {
            Some(Value::Object(models)) => models
                .into_iter()
                .map(|(k, v)| {
                    from_value(v)
                        .map(|t| (k.clone(), t))
                        .map_err(|e| in_key(&k, e))
                })
                .collect::<Result<_, D::Error>>()?,
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "`models` must map model ids to values, found {}",
                    describe(&other)
                )))
            }
            None => BTreeMap::new(),
        };
        Ok(PerModelSetting { default, models })
    }
}

/// Deserializes a buffered value, keeping the message of any error.
pub(crate) fn from_value<T: DeserializeOwned, E: de::Error>(value: Value) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}

fn in_key<E: de::Error>(key: &str, e: E) -> E {
    E::custom(format!("in `{key}`: {e}"))
}

pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_the_rest() {
        let ok = |s: &str| HumanDuration::parse(s).unwrap().get();
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok(" 10 s "), Duration::from_secs(10));
        for bad in ["30", "3x", "s", "-1s", "1.2.3s", ""] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            HumanDuration(Duration::from_millis(250)).to_string(),
            "250ms"
        );
        assert_eq!(HumanDuration(Duration::from_secs(30)).to_string(), "30s");
    }
}
