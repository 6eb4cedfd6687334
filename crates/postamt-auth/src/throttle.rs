//! The per-IP failed-login throttle shared by SMTP, IMAP, POP3 and the web pages.
//!
//! Each failure from an IP doubles the delay before its next failure is answered (from a base
//! to a cap); the count decays after a quiet period, and a success clears it. The table is
//! bounded so a flood of addresses cannot grow memory without limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures are forgotten after this long without a new one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses tracked at once; beyond it stale entries are pruned, then the oldest.
const MAX_TRACKED: usize = 100_000;

struct Entry {
    failures: u32,
    last: Instant,
}

pub struct Throttle {
    base: Duration,
    cap: Duration,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    pub fn new(base: Duration, cap: Duration) -> Throttle {
        Throttle { base, cap, table: Mutex::new(HashMap::new()) }
    }

    /// Records a failure and returns how long to wait before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_TRACKED && !table.contains_key(&ip) {
            table.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
            if table.len() >= MAX_TRACKED
                && let Some(oldest) = table.iter().min_by_key(|(_, e)| e.last).map(|(ip, _)| *ip)
            {
                table.remove(&oldest);
            }
        }
        let entry = table.entry(ip).or_insert(Entry { failures: 0, last: now });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        self.delay_for(entry.failures)
    }

    pub fn record_success(&self, ip: IpAddr) {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }

    /// Recent failures counted for `ip`.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.get(&ip).filter(|e| e.last.elapsed() < FORGET_AFTER).map_or(0, |e| e.failures)
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_clears() {
        let t = Throttle::new(Duration::from_millis(100), Duration::from_millis(500));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(t.record_failure(ip), Duration::from_millis(100));
        assert_eq!(t.record_failure(ip), Duration::from_millis(200));
        assert_eq!(t.record_failure(ip), Duration::from_millis(400));
        assert_eq!(t.record_failure(ip), Duration::from_millis(500));
        assert_eq!(t.failures(ip), 4);
        assert_eq!(t.failures(other), 0);
        t.record_success(ip);
        assert_eq!(t.failures(ip), 0);
        assert_eq!(t.record_failure(ip), Duration::from_millis(100));
    }
}
