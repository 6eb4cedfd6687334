//! The storage interface of postamt and its backends.
//!
//! Everything persistent goes through the [`Store`] trait: the directory (domains, accounts,
//! addresses and aliases), mailboxes with their IMAP counters, messages with flags and MODSEQs,
//! quotas, the outbound queue, and message bodies as content-addressed blobs. Protocol crates
//! see only this trait and the plain data types in [`types`]; a backend's own types (SQL
//! connections, rows) never leave this crate.
//!
//! Backends:
//! - [`sqlite`]: the embedded default, SQLite in WAL mode for metadata plus a directory of blob
//!   files, all inside `data_dir`.
//!
//! Invariants every backend keeps (the conformance tests in `tests/` check them):
//! - whatever a write call returned `Ok` for is durable (fsync'd blob and committed metadata);
//! - UIDs and MODSEQs are allocated inside the store's transaction and only ever grow;
//!   UIDVALIDITY changes only when a mailbox is recreated;
//! - every message call is scoped by account: a session never reaches another account's data;
//! - one body referenced by many messages (or queue entries) is stored once and removed when
//!   the last reference goes.

pub mod blob;
pub mod events;
pub mod sqlite;
pub mod types;

use std::sync::Arc;

pub use events::{ChangeEvent, EventBus};
pub use types::*;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("domain {0:?} is not a local domain")]
    UnknownDomain(String),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("over quota")]
    OverQuota,
    #[error("blob {0} is missing")]
    BlobMissing(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A shared handle to a store backend.
pub type SharedStore = Arc<dyn Store>;

/// The one storage interface. All methods are safe to call concurrently from many tasks and,
/// for backends that allow it, from several server processes sharing one database.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- directory: domains ----

    /// Adds a local domain (lower-cased). Errors with `AlreadyExists` when present.
    async fn add_domain(&self, name: &str) -> Result<()>;
    /// Removes a domain. Refused (`Invalid`) while accounts or aliases of it exist.
    async fn remove_domain(&self, name: &str) -> Result<()>;
    async fn list_domains(&self) -> Result<Vec<String>>;
    async fn is_local_domain(&self, name: &str) -> Result<bool>;

    // ---- directory: accounts and addresses ----

    /// Creates an account and its default mailboxes (INBOX, Sent, Drafts, Trash, Junk, Archive
    /// with their RFC 6154 roles). The address's domain must be local.
    async fn create_account(&self, new: NewAccount) -> Result<Account>;
    /// Removes an account, its mailboxes, messages and aliases; releases its blob references.
    async fn remove_account(&self, address: &str) -> Result<()>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// The account whose primary address is `address` (case-insensitive).
    async fn account_by_address(&self, address: &str) -> Result<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>>;
    async fn set_password_hash(&self, address: &str, hash: &str) -> Result<()>;
    /// Sets the storage quota in bytes; `None` means unlimited.
    async fn set_quota(&self, address: &str, quota: Option<u64>) -> Result<()>;
    /// Changes the per-protocol switches and role flags of an account.
    async fn update_account_settings(&self, address: &str, settings: AccountSettings) -> Result<()>;

    /// Adds an alias `alias` (a full address, or `@domain` for the domain's catch-all) that
    /// delivers into the account whose primary address is `target`.
    async fn add_alias(&self, alias: &str, target: &str) -> Result<()>;
    async fn remove_alias(&self, alias: &str) -> Result<()>;
    async fn list_aliases(&self) -> Result<Vec<Alias>>;
    /// Resolves a recipient address to the account it delivers to: the account's own address,
    /// then an exact alias, then the domain's catch-all. `None` when nothing matches.
    async fn resolve_address(&self, address: &str) -> Result<Option<Account>>;

    // ---- mailboxes ----

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox>;
    /// Deletes a mailbox and its messages (releasing blob references).
    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> Result<()>;
    /// Renames a mailbox; its UIDVALIDITY and messages stay.
    async fn rename_mailbox(&self, account: AccountId, mailbox: MailboxId, new_name: &str) -> Result<()>;

    // ---- blobs ----

    /// Stores a message body durably (fsync'd) under its content hash and returns that hash.
    /// Storing the same bytes again is cheap and returns the same id. The blob is only kept
    /// while a message or queue entry references it. When the last reference to the same
    /// content goes away between `put_blob` and the call that references the blob (`deliver`,
    /// `append`, `enqueue`), that call fails with [`StoreError::BlobMissing`]: put the blob
    /// again and retry.
    async fn put_blob(&self, bytes: Arc<Vec<u8>>) -> Result<BlobId>;
    async fn read_blob(&self, blob: &BlobId) -> Result<Vec<u8>>;

    // ---- messages ----

    /// Delivers one stored blob into several mailboxes (and optionally enqueues it for remote
    /// recipients) in one atomic, durable transaction. Each delivery is checked against its
    /// account's quota; a delivery that does not fit fails alone with `OverQuota` and the
    /// others still happen. Returns one result per delivery, in order.
    async fn deliver(&self, batch: DeliveryBatch) -> Result<DeliveryOutcome>;
    /// Appends one message to a mailbox (IMAP APPEND); quota checked.
    async fn append(&self, account: AccountId, mailbox: MailboxId, msg: NewMessage) -> Result<Appended>;
    /// All messages of a mailbox in UID order.
    async fn list_messages(&self, account: AccountId, mailbox: MailboxId) -> Result<Vec<MessageMeta>>;
    /// Replaces, adds or removes flags and keywords on the given UIDs; returns the messages
    /// whose flags actually changed, each with its new MODSEQ.
    async fn store_flags(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
    ) -> Result<Vec<MessageMeta>>;
    /// Removes the given UIDs from a mailbox; returns the UIDs actually removed.
    async fn expunge(&self, account: AccountId, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>>;

    // ---- quotas ----

    async fn quota(&self, account: AccountId) -> Result<QuotaUsage>;

    // ---- outbound queue ----

    async fn enqueue(&self, entry: NewQueueEntry) -> Result<QueueId>;
    async fn queue_list(&self) -> Result<Vec<QueueEntry>>;
    async fn queue_get(&self, id: &str) -> Result<Option<QueueEntry>>;
    /// Removes a queue entry and releases its blob reference.
    async fn queue_delete(&self, id: &str) -> Result<()>;

    // ---- change events ----

    /// The bus on which this store publishes per-mailbox changes it commits.
    fn events(&self) -> &EventBus;
}
