//! The login cache: credentials that passed an argon2id check recently, so that the same
//! device logging in again (mail clients open several connections and reconnect all day)
//! does not pay 19 MiB and tens of milliseconds of CPU each time.
//!
//! An entry is keyed by a BLAKE3 keyed hash of user name and password under a key drawn at
//! start and never stored, so the cache holds no password and nothing that outlives the
//! process. It remembers which password hash the credentials matched (a digest of the PHC
//! string): a hit counts only while the account (or app password) still has that hash, so
//! a password change or a revoked app password ends it at once. Failed logins are never
//! cached; they always pay the full check and the failure delay. Entries expire after the
//! configured time (`[auth] login_cache`, zero turns the cache off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postamt_store::AccountId;

/// Most entries kept; beyond that, expired ones are dropped, and if none are, all of them.
const MAX_ENTRIES: usize = 50_000;

/// What the credentials were verified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The account's password, with the digest of its PHC string.
    Password([u8; 32]),
    /// One of the account's app passwords (its row id), with the digest of its PHC string.
    App { id: i64, hash: [u8; 32] },
}

/// The digest an entry keeps of a PHC string.
pub fn digest(phc: &str) -> [u8; 32] {
    *blake3::hash(phc.as_bytes()).as_bytes()
}

struct Entry {
    account: AccountId,
    matched: Matched,
    expires: Instant,
}

pub struct LoginCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl LoginCache {
    pub fn new(ttl: Duration) -> LoginCache {
        LoginCache { key: rand::random(), ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn credentials(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(username.trim().to_lowercase().as_bytes());
        h.update(&[0]);
        h.update(password.as_bytes());
        *h.finalize().as_bytes()
    }

    /// What these credentials matched for `account` within the last `ttl`, if anything.
    pub fn get(&self, username: &str, password: &str, account: AccountId) -> Option<Matched> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = self.credentials(username, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&key) {
            Some(e) if e.expires > Instant::now() && e.account == account => Some(e.matched),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers credentials that just passed the full check.
    pub fn insert(&self, username: &str, password: &str, account: AccountId, matched: Matched) {
        if self.ttl.is_zero() {
            return;
        }
        let key = self.credentials(username, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, Entry { account, matched, expires: now + self.ttl });
    }

    /// Forgets credentials (after a hit that no longer holds).
    pub fn remove(&self, username: &str, password: &str) {
        let key = self.credentials(username, password);
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_credentials_and_account() {
        let cache = LoginCache::new(Duration::from_secs(60));
        let m = Matched::Password(digest("$argon2id$x"));
        cache.insert("Alice@Example.org ", "pw", 7, m);
        assert_eq!(cache.get("alice@example.org", "pw", 7), Some(m));
        assert_eq!(cache.get("alice@example.org", "pw2", 7), None);
        assert_eq!(cache.get("alice@example.org", "pw", 8), None, "another account");
        cache.remove("alice@example.org", "pw");
        assert_eq!(cache.get("alice@example.org", "pw", 7), None);
    }

    #[test]
    fn expires_and_can_be_off() {
        let cache = LoginCache::new(Duration::from_millis(30));
        let m = Matched::App { id: 3, hash: digest("h") };
        cache.insert("a@b", "pw", 1, m);
        assert_eq!(cache.get("a@b", "pw", 1), Some(m));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("a@b", "pw", 1), None);
        let off = LoginCache::new(Duration::ZERO);
        off.insert("a@b", "pw", 1, m);
        assert_eq!(off.get("a@b", "pw", 1), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = LoginCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES + 10) {
            cache.insert(&format!("u{i}@b"), "pw", 1, Matched::Password([0; 32]));
        }
        assert!(cache.entries.lock().expect("lock").len() <= MAX_ENTRIES);
    }
}
