//! Per-account change notifications.
//!
//! A store publishes what it committed; IMAP sessions (IDLE, NOOP) and POP3 subscribe for
//! their account. Channels exist per account so that a delivery wakes only the sessions of its
//! recipient, which matters with thousands of idle connections.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::types::{AccountId, MailboxId, ModSeq, Uid};

/// Something that changed in one account, after it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEvent {
    MessageAdded { mailbox: MailboxId, uid: Uid, modseq: ModSeq },
    FlagsChanged { mailbox: MailboxId, uid: Uid, modseq: ModSeq },
    Expunged { mailbox: MailboxId, uids: Vec<Uid> },
    MailboxCreated { mailbox: MailboxId },
    MailboxRenamed { mailbox: MailboxId },
    MailboxDeleted { mailbox: MailboxId },
}

/// Capacity of one account's channel; a subscriber that lags further behind learns so from
/// `RecvError::Lagged` and must rescan its mailbox.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<AccountId, broadcast::Sender<ChangeEvent>>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus::default()
    }

    /// Subscribes to one account's changes.
    pub fn subscribe(&self, account: AccountId) -> broadcast::Receiver<ChangeEvent> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.entry(account).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe()
    }

    /// Publishes committed changes; channels nobody listens to any more are dropped.
    pub fn publish(&self, account: AccountId, events: impl IntoIterator<Item = ChangeEvent>) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = channels.get(&account) else {
            return;
        };
        if tx.receiver_count() == 0 {
            channels.remove(&account);
            return;
        }
        for event in events {
            // An error only means every receiver went away meanwhile.
            let _ = tx.send(event);
        }
    }
}
