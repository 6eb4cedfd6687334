//! Figures of a run (a flat JSON object) and latency percentiles.

use std::time::Duration;

use serde_json::{Map, Value};

/// The result of one workload: a flat JSON object. `workload`, `case` and `label` name it;
/// every other key is a figure. Keys ending in `_per_s` are better higher, keys ending in
/// `_ms`, `_kb` or `_s` better lower (see [`better_higher`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures(pub Map<String, Value>);

impl Figures {
    pub fn new(workload: &str) -> Figures {
        let mut f = Figures::default();
        f.text("workload", workload);
        f
    }

    pub fn text(&mut self, key: &str, value: impl Into<String>) -> &mut Figures {
        self.0.insert(key.into(), Value::String(value.into()));
        self
    }

    pub fn int(&mut self, key: &str, value: u64) -> &mut Figures {
        self.0.insert(key.into(), Value::from(value));
        self
    }

    /// A measured value, rounded to a sensible number of digits.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Figures {
        let rounded = if value.abs() >= 100.0 {
            value.round()
        } else if value.abs() >= 1.0 {
            (value * 100.0).round() / 100.0
        } else {
            (value * 10_000.0).round() / 10_000.0
        };
        self.0.insert(key.into(), serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number));
        self
    }

    /// Latency percentiles under `prefix` (`<prefix>_p50_ms`, `_p99_ms`, `_max_ms`).
    pub fn latencies(&mut self, prefix: &str, latencies: &mut Latencies) -> &mut Figures {
        if let Some((p50, p99, max)) = latencies.summary() {
            self.num(&format!("{prefix}_p50_ms"), ms(p50));
            self.num(&format!("{prefix}_p99_ms"), ms(p99));
            self.num(&format!("{prefix}_max_ms"), ms(max));
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn from_json(line: &str) -> Option<Figures> {
        match serde_json::from_str(line).ok()? {
            Value::Object(map) => Some(Figures(map)),
            _ => None,
        }
    }
}

/// Whether a higher value of the figure `key` is better (`None`: not a comparable figure).
pub fn better_higher(key: &str) -> Option<bool> {
    if key.ends_with("_per_s") {
        Some(true)
    } else if key.ends_with("_ms") || key.ends_with("_kb") || key.ends_with("_s") {
        Some(false)
    } else {
        None
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Collected latencies of one kind of operation.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Median, 99th percentile (nearest rank) and maximum.
    pub fn summary(&mut self) -> Option<(Duration, Duration, Duration)> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
            self.0[i - 1]
        };
        Some((rank(0.50), rank(0.99), *self.0.last().unwrap_or(&Duration::ZERO)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for i in (1..=200).rev() {
            l.push(Duration::from_millis(i));
        }
        let (p50, p99, max) = l.summary().expect("some");
        assert_eq!((p50.as_millis(), p99.as_millis(), max.as_millis()), (100, 198, 200));
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn figures_round_trip() {
        let mut f = Figures::new("smtp");
        f.text("label", "postamt").int("messages", 10).num("msgs_per_s", 1234.567).num("p99_ms", 1.23456);
        let line = f.to_json();
        for part in [r#""label":"postamt""#, r#""messages":10"#, r#""msgs_per_s":1235.0"#, r#""p99_ms":1.23"#]
        {
            assert!(line.contains(part), "{line}");
        }
        assert_eq!(Figures::from_json(&line), Some(f));
        assert_eq!(better_higher("msgs_per_s"), Some(true));
        assert_eq!(better_higher("kb_per_conn_kb"), Some(false));
        assert_eq!(better_higher("messages"), None);
    }
}
