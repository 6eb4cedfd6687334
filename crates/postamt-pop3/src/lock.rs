//! The exclusive-access lock on an account's maildrop (RFC 1939 section 8: "the POP3 server
//! then acquires an exclusive-access lock on the maildrop").
//!
//! The lock lives in this process: one [`MaildropLocks`] is shared by the `pop3` and `pop3s`
//! services. Several server processes on one store would need a lock in the store itself.
//! A [`MaildropLock`] is released when it is dropped, so a session that ends in any way
//! (QUIT, dropped connection, timeout, shutdown, panic) gives the maildrop free.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use postamt_store::AccountId;

/// The accounts whose maildrop a POP3 session holds.
#[derive(Debug, Default)]
pub struct MaildropLocks {
    held: Mutex<HashSet<AccountId>>,
}

impl MaildropLocks {
    pub fn new() -> MaildropLocks {
        MaildropLocks::default()
    }

    /// Takes the lock for `account`, or `None` when another session holds it.
    pub fn try_lock(self: &Arc<Self>, account: AccountId) -> Option<MaildropLock> {
        self.held().insert(account).then(|| MaildropLock { locks: Arc::clone(self), account })
    }

    /// Whether a session holds `account`'s maildrop.
    pub fn is_locked(&self, account: AccountId) -> bool {
        self.held().contains(&account)
    }

    fn held(&self) -> MutexGuard<'_, HashSet<AccountId>> {
        // The set stays consistent even if a holder panicked: insert and remove are atomic.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A held maildrop lock; dropping it releases the maildrop.
#[derive(Debug)]
pub struct MaildropLock {
    locks: Arc<MaildropLocks>,
    account: AccountId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.locks.held().remove(&self.account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_per_account_and_released_on_drop() {
        let locks = Arc::new(MaildropLocks::new());
        let a = locks.try_lock(1).expect("free");
        assert!(locks.try_lock(1).is_none());
        let b = locks.try_lock(2).expect("other account");
        assert!(locks.is_locked(1) && locks.is_locked(2));
        drop(a);
        assert!(!locks.is_locked(1));
        let again = locks.try_lock(1).expect("released");
        drop((again, b));
        assert!(!locks.is_locked(1) && !locks.is_locked(2));
    }
}
