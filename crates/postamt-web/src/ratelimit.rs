//! A fixed-window rate limiter keyed by string (client IP, account address), in memory.
//!
//! In memory is enough: one server process answers the web pages, and forgetting the counts
//! at a restart only grants one more window. The table is bounded so that a flood of distinct
//! keys cannot grow memory without limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once; beyond it expired windows are dropped, then everything.
const MAX_KEYS: usize = 50_000;

pub struct RateLimiter {
    max: u32,
    window: Duration,
    table: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter { max, window, table: Mutex::new(HashMap::new()) }
    }

    /// Counts one event for `key`; `false` when the key has used up its window.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_KEYS && !table.contains_key(key) {
            table.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if table.len() >= MAX_KEYS {
                // Under a flood of distinct keys, forgetting is safer than refusing everyone.
                table.clear();
            }
        }
        let entry = table.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let limiter = RateLimiter::new(2, Duration::from_millis(50));
        assert!(limiter.allow("a"));
        assert!(limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.allow("a"));
    }
}
