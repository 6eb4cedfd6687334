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
    /// Creates a mailbox. It is subscribed only if its name already was (subscriptions are
    /// kept by name and outlive mailboxes, RFC 9051 6.3.7); CREATE itself does not subscribe.
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox>;
    /// Deletes a mailbox and its messages (releasing blob references). A subscription of its
    /// name stays (RFC 9051 6.3.7); inferior mailboxes are not touched.
    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> Result<()>;
    /// Renames a mailbox and, in the same transaction, all its inferiors (names starting with
    /// the old name and `/`, the hierarchy delimiter), as RFC 9051 6.3.6 requires; ids,
    /// UIDVALIDITY and messages stay. The subscriptions of the renamed mailboxes move with them.
    /// `AlreadyExists` (and nothing renamed) when the new name or any inferior's new name is
    /// taken; `Invalid` for INBOX (the IMAP layer implements that rename with
    /// [`Store::move_messages`]) and for a new name inside the mailbox itself. Publishes one
    /// `MailboxRenamed` per renamed mailbox.
    async fn rename_mailbox(&self, account: AccountId, mailbox: MailboxId, new_name: &str) -> Result<()>;
    /// Sets or clears the RFC 6154 role of a mailbox (roles at creation are given to
    /// `create_mailbox`). Several mailboxes may share a role. `NotFound` for a mailbox of
    /// another account.
    async fn set_mailbox_special_use(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        special_use: Option<SpecialUse>,
    ) -> Result<()>;
    /// The counters of one mailbox (STATUS, SELECT), computed with aggregates over one
    /// consistent snapshot; `NotFound` for a mailbox of another account.
    async fn mailbox_status(&self, account: AccountId, mailbox: MailboxId) -> Result<MailboxStatus>;
    /// Claims the messages that arrived since the last claim as `\Recent` for the calling
    /// session (RFC 3501 2.3.2: a message is recent in exactly one session). Atomically returns
    /// the mailbox's marker (the lowest UID nobody has claimed) and advances it to UIDNEXT: the
    /// caller treats the UIDs at or above the returned value as recent; concurrent or later
    /// callers get disjoint ranges. Messages added later (also by copy or move) are claimed by
    /// a later call. `NotFound` for a mailbox of another account.
    async fn claim_recent(&self, account: AccountId, mailbox: MailboxId) -> Result<Uid>;

    // ---- subscriptions ----

    /// Subscribes `name` (RFC 9051 6.3.7). The name need not be an existing mailbox;
    /// subscribing twice is not an error. `Invalid` for a name no mailbox could have,
    /// `NotFound` for an unknown account. `INBOX` is case-insensitive, as everywhere.
    async fn subscribe(&self, account: AccountId, name: &str) -> Result<()>;
    /// Removes a subscription; `NotFound` when `name` is not subscribed.
    async fn unsubscribe(&self, account: AccountId, name: &str) -> Result<()>;
    /// The subscribed names, whether or not such mailboxes exist; INBOX first, then by name.
    async fn list_subscriptions(&self, account: AccountId) -> Result<Vec<String>>;

    // ---- blobs ----

    /// Stores a message body durably (fsync'd) under its content hash and returns that hash.
    /// Storing the same bytes again is cheap and returns the same id. The blob is only kept
    /// while a message or queue entry references it. When the last reference to the same
    /// content goes away between `put_blob` and the call that references the blob (`deliver`,
    /// `append`, `enqueue`), that call fails with [`StoreError::BlobMissing`]: put the blob
    /// again and retry.
    async fn put_blob(&self, bytes: Arc<Vec<u8>>) -> Result<BlobId>;
    async fn read_blob(&self, blob: &BlobId) -> Result<Vec<u8>>;
    /// Cached data derived from blobs (e.g. pre-rendered ENVELOPE and BODYSTRUCTURE), one entry
    /// per requested blob in the same order, read in one snapshot: `None` when nothing was set
    /// or the blob is not referenced. Since blobs are content-addressed, the data stays valid
    /// for as long as it is kept.
    async fn blob_info(&self, blobs: &[BlobId]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Stores opaque derived data for a referenced blob, replacing earlier data; it is removed
    /// together with the blob's last reference. A blob nobody references is silently ignored
    /// (the cache only describes live bodies). Once this returns, `blob_info` sees the data.
    async fn set_blob_info(&self, blob: &BlobId, info: Vec<u8>) -> Result<()>;

    // ---- messages ----

    /// Delivers one stored blob into several mailboxes (and optionally enqueues it for remote
    /// recipients) in one atomic, durable transaction. Each delivery is checked against its
    /// account's quota; a delivery that does not fit fails alone with `OverQuota` and the
    /// others still happen. Returns one result per delivery, in order.
    async fn deliver(&self, batch: DeliveryBatch) -> Result<DeliveryOutcome>;
    /// Appends one message to a mailbox (IMAP APPEND); quota checked.
    async fn append(&self, account: AccountId, mailbox: MailboxId, msg: NewMessage) -> Result<Appended>;
    /// All messages of a mailbox in UID order (a range scan of the mailbox's messages).
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
    /// Copies messages (IMAP COPY, RFC 4315 COPYUID) into `to` of the same account, in one
    /// transaction: flags, keywords, internal date and body (one more blob reference) are kept;
    /// each copy gets a new UID and MODSEQ in `to`, allocated in ascending source UID order.
    /// UIDs that do not exist in `from` are skipped. The total size is checked against the
    /// quota: `OverQuota` and nothing copied when it does not fit. `from == to` duplicates the
    /// messages. `NotFound` when either mailbox is not the account's. Publishes `MessageAdded`
    /// for every copy.
    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult>;
    /// Moves messages (IMAP MOVE, RFC 6851) atomically: like [`Store::copy_messages`] and the
    /// expunge of the sources in one transaction. The quota usage and blob references are
    /// unchanged (the messages stay in the account). `Invalid` when `from == to`, `NotFound`
    /// when either mailbox is not the account's. Publishes
    /// `MessageAdded` for every new message in `to`, then one `Expunged` for `from`.
    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult>;

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
