//! Password hashing with argon2id (PHC strings, the `argon2` crate's default parameters:
//! 19 MiB, 2 passes, 1 lane, as OWASP recommends).
//!
//! Each hash or verification takes 19 MiB and tens of milliseconds of CPU, so the async
//! forms ([`hash_async`], [`verify_async`]) run on the blocking pool and at most
//! [`concurrent_limit`] at a time in the whole process; the others wait in line. Without the
//! limit, a burst of logins (every client reconnecting after a restart, or an attacker
//! spreading guesses over many addresses) would run up to the blocking pool's 512 threads at
//! once: ~10 GB. With it, memory stays at a few times 19 MiB and logins are served in order.

use std::sync::{LazyLock, OnceLock};

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash};

#[derive(Debug, thiserror::Error)]
#[error("cannot hash password: {0}")]
pub struct HashError(String);

/// Hashes a password into a PHC string (`$argon2id$v=19$...`). CPU-heavy: call it from a
/// blocking context.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// How many hashes or verifications run at once: one per CPU, at least two.
pub fn concurrent_limit() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(concurrent_limit()));

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn limited<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Result<R, HashError> {
    let _slot = HASHING.acquire().await.map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| HashError(e.to_string()))
}

/// [`hash`] for async callers, within the process-wide limit.
pub async fn hash_async(password: &str) -> Result<String, HashError> {
    let password = password.to_string();
    limited(move || hash(&password)).await?
}

/// [`verify`] for async callers, within the process-wide limit. `Err` only if the blocking
/// task could not run.
pub async fn verify_async(phc: &str, password: &str) -> Result<bool, HashError> {
    let (phc, password) = (phc.to_string(), password.to_string());
    limited(move || verify(&phc, &password)).await
}

/// A valid hash of a random password, verified against for unknown users so that a failed
/// login costs the same time whether or not the account exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hash(salt.as_str()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "wrong horse"));
        assert!(!verify("not a hash", "correct horse"));
        assert!(!verify(dummy_hash(), ""));
    }

    /// Many verifications at once all complete, never more than the limit at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_forms_are_limited() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let h = hash_async("secret").await.expect("hash");
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move {
                    limited(move || {
                        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                        PEAK.fetch_max(now, Ordering::SeqCst);
                        let ok = verify(&h, if i % 2 == 0 { "secret" } else { "guess" });
                        RUNNING.fetch_sub(1, Ordering::SeqCst);
                        ok
                    })
                    .await
                    .expect("ran")
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.expect("task"), i % 2 == 0);
        }
        assert!(PEAK.load(Ordering::SeqCst) <= concurrent_limit());
        assert!(verify_async(&h, "secret").await.expect("ran"));
        assert!(!verify_async(&h, "nope").await.expect("ran"));
    }
}
