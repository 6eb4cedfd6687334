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
pub mod check;
pub mod events;
pub mod sqlite;
pub mod types;

use std::sync::Arc;

pub use check::{CheckReport, Problem};
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
    /// Replaces all DKIM signing keys of a local domain with `keys`, in one transaction.
    /// `UnknownDomain` when the domain is not local; `Invalid` for an empty or repeated
    /// selector. The keys are removed together with the domain.
    async fn set_dkim_keys(&self, domain: &str, keys: Vec<DkimKey>) -> Result<()>;
    /// The DKIM signing keys of a domain, ordered by selector; empty when it has none (or is
    /// not a local domain).
    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>>;

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
    /// Stores opaque derived data for referenced blobs (in one write), replacing earlier
    /// data; it is removed together with the blob's last reference. A blob nobody references
    /// is silently ignored (the cache only describes live bodies). Once this returns,
    /// `blob_info` sees the data. `deliver` and `append` can set it in the same transaction
    /// (`DeliveryBatch::info`, `NewMessage::info`). Being a cache, a value above the
    /// backend's size limit is dropped rather than refused: it never fails a delivery.
    async fn set_blob_infos(&self, infos: Vec<(BlobId, Vec<u8>)>) -> Result<()>;

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
    /// Like [`Store::store_flags`], but with RFC 7162's UNCHANGEDSINCE test when
    /// `unchanged_since` is given: a message whose MODSEQ is above it is left alone and
    /// reported in [`FlagsStored::modified`]. Test and change are one transaction.
    async fn store_flags_if(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<FlagsStored>;
    /// What changed in a mailbox since MODSEQ `since` (RFC 7162 CONDSTORE/QRESYNC), read
    /// from the `(mailbox, modseq)` indexes rather than by listing the mailbox: messages with
    /// a higher MODSEQ (new or with changed flags) and the UIDs expunged or moved away with a
    /// higher MODSEQ, plus the counters of the same snapshot. `since == 0` is the full state:
    /// every message (a primary-key range scan) and no tombstones. `NotFound` for a mailbox of
    /// another account or one that no longer exists.
    async fn changes_since(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges>;
    /// Removes the given UIDs from a mailbox; returns the UIDs actually removed. The mailbox's
    /// MODSEQ grows by one and each removed UID is remembered with it (RFC 7162 3.2.7).
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
    /// Sets both limits of an account (RFC 9208 SETQUOTA): storage in bytes and the number of
    /// messages; `None` removes a limit. Deliveries, APPEND and COPY beyond either limit fail
    /// with `OverQuota`.
    async fn set_quota_limits(
        &self,
        account: AccountId,
        bytes: Option<u64>,
        messages: Option<u64>,
    ) -> Result<()>;

    // ---- annotations (IMAP METADATA, RFC 5464) ----

    /// The annotations of a mailbox of `account`, or with `mailbox == None` the server
    /// annotations `account` sees: its own `/private/...` entries and the server's shared
    /// `/shared/...` ones. Entry names are lower-case, sorted. `NotFound` for a mailbox of
    /// another account.
    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Sets (`Some`) or removes (`None`) annotations, all or none. Entry names must start with
    /// `/private/` or `/shared/` (case-insensitive); server `/shared/` entries are the
    /// server's, one value for every account (the caller decides who may set them). When a
    /// target would end up with more than `max_entries` entries: `Invalid` with `what` =
    /// `"metadata entries"`, and nothing changed. A change on a mailbox raises its MODSEQ
    /// (RFC 7162 section 3.2).
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        changes: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()>;

    // ---- outbound queue ----

    async fn enqueue(&self, entry: NewQueueEntry) -> Result<QueueId>;
    async fn queue_list(&self) -> Result<Vec<QueueEntry>>;
    async fn queue_get(&self, id: &str) -> Result<Option<QueueEntry>>;
    /// Removes a queue entry and releases its blob reference.
    async fn queue_delete(&self, id: &str) -> Result<()>;
    /// Claims up to `limit` due entries for delivery: those with `next_attempt <= now` and no
    /// live lease (none, or one that expired at or before `now`), oldest `next_attempt` first.
    /// Each gets a new lease with a fresh token, valid until `lease_until`; until then no other
    /// caller (in this process or another sharing the storage) claims it. The claim and the
    /// read are one transaction.
    async fn queue_claim(&self, now: i64, limit: usize, lease_until: i64) -> Result<Vec<QueueClaim>>;
    /// Extends a lease while its delivery runs. `NotFound` when the entry is gone or the lease
    /// is no longer `token`'s (it expired and another runner took the entry over).
    async fn queue_renew(&self, id: &str, token: &str, lease_until: i64) -> Result<()>;
    /// Records the outcome of one delivery attempt, atomically: the recipients' new states and
    /// last replies, the attempt count, and the notification (DSN) to deliver locally and/or
    /// queue, all in one transaction, so that a crash neither loses nor repeats a bounce. When
    /// no recipient is pending any more the entry is removed and its blob released; otherwise
    /// it waits for `next_attempt` with its lease released. `NotFound` (and nothing changed)
    /// when the entry is gone or the lease is not `token`'s; `Invalid` for an outcome naming no
    /// recipient of the entry; `BlobMissing` as for `deliver` when the notification's blob
    /// vanished (put it again and retry).
    async fn queue_update(&self, id: &str, token: &str, update: QueueUpdate) -> Result<QueueUpdated>;
    /// Makes one entry (`Some(id)`, `NotFound` when unknown) or every entry due now; returns
    /// how many entries it changed. Leases are left alone: an entry being delivered right now
    /// is not delivered twice.
    async fn queue_flush(&self, id: Option<&str>) -> Result<usize>;

    // ---- maintenance ----

    /// Verifies the store's consistency (`postamt check`; see [`check`] for every rule): blob
    /// files present and matching their hashes, reference counts, mailbox counters, quota
    /// usage, and the backend's own integrity checks. Unreferenced blob files younger than
    /// `grace` are counted, not reported: a delivery may be about to reference them. Reads
    /// only, so it may run beside a busy server; what a concurrent delivery or expunge changes
    /// meanwhile is not reported. `Err` only when the check itself could not run.
    async fn check(&self, grace: std::time::Duration) -> Result<CheckReport>;

    // ---- web: sessions, app passwords, password reset, API tokens ----

    /// Stores a new web session; sessions past their expiry are deleted on the way.
    async fn create_web_session(&self, session: WebSession) -> Result<()>;
    /// The session with this id hash, expired or not (the caller checks `expires`).
    async fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>>;
    /// Records a request on a session. Unknown ids are ignored.
    async fn touch_web_session(&self, id_hash: &str, last_seen: i64) -> Result<()>;
    /// Ends one session (log out). Unknown ids are ignored.
    async fn delete_web_session(&self, id_hash: &str) -> Result<()>;
    /// Ends every session of an account but `except` (after a password change or reset).
    async fn delete_web_sessions(&self, account: AccountId, except: Option<&str>) -> Result<()>;

    /// Adds an app password; `AlreadyExists` when the account already has one with this
    /// lookup, `NotFound` for an unknown account.
    async fn create_app_password(&self, new: NewAppPassword) -> Result<AppPassword>;
    /// The app passwords of an account, oldest first.
    async fn list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>>;
    /// The app password of `account` with this lookup.
    async fn app_password(&self, account: AccountId, lookup: &str) -> Result<Option<AppPassword>>;
    /// Records a successful login with an app password.
    async fn app_password_used(&self, id: i64, at: i64) -> Result<()>;
    /// Revokes an app password; `NotFound` when `account` has no such one.
    async fn delete_app_password(&self, account: AccountId, id: i64) -> Result<()>;

    /// Sets (or with `None` clears) the address password-reset links are sent to.
    async fn set_recovery_address(&self, account: AccountId, address: Option<&str>) -> Result<()>;
    async fn recovery_address(&self, account: AccountId) -> Result<Option<String>>;
    /// Stores a password-reset token (its hash) valid until `expires`.
    async fn create_reset_token(&self, account: AccountId, token_hash: &str, expires: i64) -> Result<()>;
    /// The account a reset token is for, if it exists and `now` is before its expiry.
    async fn reset_token_account(&self, token_hash: &str, now: i64) -> Result<Option<AccountId>>;
    /// Uses a reset token, atomically: when it is valid at `now`, sets the account's password
    /// hash and deletes every reset token and web session of the account (so the link works
    /// once, and whoever was signed in is signed out). `None`, and nothing changed, otherwise.
    async fn reset_password_with_token(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Account>>;

    /// Stores a new API token; `AlreadyExists` when its id is taken.
    async fn create_api_token(&self, token: ApiToken) -> Result<()>;
    /// All API tokens, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;
    /// Records a request made with a token.
    async fn api_token_used(&self, id: &str, at: i64) -> Result<()>;
    /// Revokes a token; `NotFound` for an unknown id.
    async fn delete_api_token(&self, id: &str) -> Result<()>;

    // ---- change events ----

    /// The bus on which this store publishes per-mailbox changes it commits.
    fn events(&self) -> &EventBus;
}
