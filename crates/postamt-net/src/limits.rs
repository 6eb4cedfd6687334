//! Concurrent connection limits, total and per client address, shared by all
//! services so one client cannot exhaust the server through any mix of ports.
//!
//! IPv4-mapped IPv6 addresses count as their IPv4 address, and IPv6 clients
//! are counted per /64: a single host or customer usually holds a whole /64,
//! so counting single IPv6 addresses would make the per-IP limit meaningless.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Counts open connections against a total and a per-client limit.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; releases its slot when dropped.
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    key: IpAddr,
}

impl ConnLimiter {
    /// A limiter admitting at most `total` connections, and at most `per_ip`
    /// from one client address (or IPv6 /64).
    pub fn new(total: usize, per_ip: usize) -> ConnLimiter {
        ConnLimiter { max_total: total, max_per_ip: per_ip, state: Mutex::new(State::default()) }
    }

    /// A limiter with the configured `limits.connections` and `limits.connections_per_ip`.
    pub fn from_limits(limits: &postamt_config::Limits) -> ConnLimiter {
        ConnLimiter::new(limits.connections, limits.connections_per_ip)
    }

    /// Takes a slot for a connection from `ip`, or `None` when either limit is reached.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnGuard> {
        let key = limit_key(ip);
        let mut state = self.lock();
        if state.total >= self.max_total {
            return None;
        }
        let count = state.per_ip.entry(key).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        state.total += 1;
        Some(ConnGuard { limiter: Arc::clone(self), key })
    }

    /// Connections currently admitted, all clients together.
    pub fn active(&self) -> usize {
        self.lock().total
    }

    /// Connections currently admitted for the client group of `ip`.
    pub fn active_for(&self, ip: IpAddr) -> usize {
        self.lock().per_ip.get(&limit_key(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The critical sections cannot panic halfway, so a poisoned lock
        // still holds consistent counts.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, key: IpAddr) {
        let mut state = self.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_ip.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                state.per_ip.remove(&key);
            }
        }
    }
}

impl ConnGuard {
    /// The address (IPv4, or IPv6 /64 prefix) this connection is counted under.
    pub fn key(&self) -> IpAddr {
        self.key
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.limiter.release(self.key);
    }
}

impl fmt::Debug for ConnGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnGuard").field("key", &self.key).finish()
    }
}

fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn per_ip_limit() {
        let l = Arc::new(ConnLimiter::new(10, 2));
        let a1 = l.try_acquire(ip("192.0.2.1")).expect("first");
        let _a2 = l.try_acquire(ip("192.0.2.1")).expect("second");
        assert!(l.try_acquire(ip("192.0.2.1")).is_none());
        // Another client is unaffected.
        let _b = l.try_acquire(ip("192.0.2.2")).expect("other ip");
        assert_eq!(l.active_for(ip("192.0.2.1")), 2);
        drop(a1);
        assert_eq!(l.active_for(ip("192.0.2.1")), 1);
        let _a3 = l.try_acquire(ip("192.0.2.1")).expect("slot freed");
        assert_eq!(l.active(), 3);
    }

    #[test]
    fn total_limit() {
        let l = Arc::new(ConnLimiter::new(2, 5));
        let a = l.try_acquire(ip("192.0.2.1")).expect("a");
        let _b = l.try_acquire(ip("192.0.2.2")).expect("b");
        assert!(l.try_acquire(ip("192.0.2.3")).is_none());
        assert_eq!(l.active(), 2);
        drop(a);
        assert_eq!(l.active(), 1);
        let _c = l.try_acquire(ip("192.0.2.3")).expect("c");
    }

    #[test]
    fn refused_attempts_do_not_leak_slots() {
        let l = Arc::new(ConnLimiter::new(1, 1));
        let a = l.try_acquire(ip("192.0.2.1")).expect("a");
        for _ in 0..5 {
            assert!(l.try_acquire(ip("192.0.2.1")).is_none());
            assert!(l.try_acquire(ip("192.0.2.9")).is_none());
        }
        drop(a);
        assert_eq!(l.active(), 0);
        assert_eq!(l.active_for(ip("192.0.2.9")), 0);
        let _b = l.try_acquire(ip("192.0.2.9")).expect("b");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = Arc::new(ConnLimiter::new(10, 1));
        let _a = l.try_acquire(ip("2001:db8:1:2::1")).expect("a");
        assert!(l.try_acquire(ip("2001:db8:1:2:ffff::7")).is_none());
        let _b = l.try_acquire(ip("2001:db8:1:3::1")).expect("other /64");
        let _c = l.try_acquire(ip("::ffff:192.0.2.1")).expect("mapped");
        assert!(l.try_acquire(ip("192.0.2.1")).is_none());
    }

    #[test]
    fn shared_across_threads() {
        let l = Arc::new(ConnLimiter::new(1000, 1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let g = l.try_acquire(IpAddr::from([192, 0, 2, 1]));
                        assert!(g.is_some());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(l.active(), 0);
    }
}
