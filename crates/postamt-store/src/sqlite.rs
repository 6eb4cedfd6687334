//! The embedded storage backend: SQLite (WAL mode) for all metadata, a [`BlobDir`] for bodies,
//! both inside `data_dir`.
//!
//! # Concurrency
//! - **Writes** go through one writer thread per [`SqliteStore`] (one per process), owning one
//!   connection and fed by a channel of jobs. The thread takes a job, drains whatever else is
//!   already queued (up to 256), and runs them all in one `BEGIN IMMEDIATE` transaction, each
//!   inside its own savepoint so that a failing job rolls back alone. One commit (one fsync with
//!   `synchronous=FULL`) then acknowledges the whole group: this is how many concurrent SMTP
//!   deliveries share a disk flush. Change events are published only after the commit.
//! - `BEGIN IMMEDIATE` takes SQLite's write lock up front, so writers of other processes (the
//!   CLI next to a running server) queue on the busy timeout instead of failing with
//!   `SQLITE_BUSY` when a read transaction tries to upgrade.
//! - **Reads** use a small pool of `query_only` connections in `spawn_blocking`, each call in
//!   one read transaction, i.e. one consistent snapshot. WAL lets them run beside the writer.
//!
//! # Blob references
//! Every message and every queue entry holds one reference on its body, counted in `blobs`
//! (the consistency check counts a reference for each row of every table whose column is
//! declared `REFERENCES blobs (hash)`).
//! Processes sharing the data directory must never unlink a file that someone just started to
//! reference again, so:
//! - a job that references a blob without a `blobs` row checks, inside the write transaction,
//!   that the file exists (else the job fails with [`StoreError::BlobMissing`], and the caller
//!   writes the blob again and retries), then creates the row;
//! - when a count drops to zero the row is deleted in that transaction, and the file is unlinked
//!   by the writer right after the commit, inside a second `BEGIN IMMEDIATE` transaction that
//!   first checks that no row re-appeared. So a file is only ever unlinked while holding the
//!   write lock and while no row references it, and a crash can at worst leave an unreferenced
//!   file behind, never a reference to a removed file (which unlinking before the commit would
//!   risk if the commit then failed).
//!
//! # Portability
//! The SQL is kept to what PostgreSQL understands as well (plain tables, integer ids,
//! `ON CONFLICT ... DO UPDATE`, `RETURNING`); counters (UIDs, MODSEQs, UIDVALIDITY, quota usage)
//! are allocated with ordinary statements inside the write transaction.
//!
//! Submodules: `schema` (tables, migrations, connection settings), `writer` (the writer
//! thread and group commit) and `check` (the consistency check). This file holds the store itself and the SQL of each operation.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::oneshot;

mod check;
mod schema;
mod web;
mod writer;

use crate::blob::BlobDir;
use crate::events::{ChangeEvent, EventBus};
use crate::types::*;
use crate::{Result, Store, StoreError};
use schema::{migrate, open_connection};
use writer::{JobCtx, TypedJob, WriteJob, WriterCounters, writer_loop};

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "postamt.db";

/// How long a connection waits for another process's lock before giving up. Generous: the other
/// side may be committing a large group or checkpointing the WAL.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Idle read connections kept open; more are opened on demand and closed after use.
const MAX_IDLE_READERS: usize = 8;

/// Limits on names we store, well beyond anything legitimate.
const MAX_ADDRESS_LEN: usize = 320;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_MAILBOX_NAME_LEN: usize = 1000;
/// Largest blob read on the calling async thread (see the module docs); larger ones are read
/// on the blocking pool.
const INLINE_BLOB_READ: u64 = 256 * 1024;

/// Largest blob info kept: far beyond any rendered ENVELOPE/BODYSTRUCTURE, small enough that
/// a broken caller cannot bloat the database with one call.
const MAX_BLOB_INFO_LEN: usize = 16 << 20;

/// The SQLite + blob-directory backend. Cheap to share behind an `Arc`; dropping it stops the
/// writer thread once the jobs already queued are done.
pub struct SqliteStore {
    blobs: Arc<BlobDir>,
    events: Arc<EventBus>,
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    stats: Arc<WriterCounters>,
    readers: Arc<ReaderPool>,
}

/// Counters of the writer thread, see [`SqliteStore::write_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Write jobs run (each one store call).
    pub jobs: u64,
    /// Transactions (commit groups) they were run in.
    pub groups: u64,
}

impl SqliteStore {
    /// Opens the store in `data_dir` (creating the directory, `postamt.db` and `blobs/` as
    /// needed) and brings the schema up to date. Several processes may open the same directory.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir)?;
        let blobs = Arc::new(BlobDir::open(data_dir)?);
        let path = data_dir.join(DB_FILE);

        let mut conn = open_connection(&path, false)?;
        // Persistent in the file; a no-op when it already is WAL.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| db_context("cannot enable WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!("journal_mode is {mode}, WAL is required")));
        }
        migrate(&mut conn)?;

        let events = Arc::new(EventBus::new());
        let (writer, jobs) = mpsc::channel();
        let stats = Arc::new(WriterCounters::default());
        let writer_blobs = Arc::clone(&blobs);
        let writer_events = Arc::clone(&events);
        let writer_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("postamt-db-writer".into())
            .spawn(move || writer_loop(conn, jobs, &writer_blobs, &writer_events, &writer_stats))?;

        Ok(SqliteStore {
            blobs,
            events,
            writer,
            stats,
            readers: Arc::new(ReaderPool { path, idle: Mutex::new(Vec::new()) }),
        })
    }

    /// Runs `work` in the writer thread, inside the group transaction; resolves once the
    /// transaction has committed (or `work` failed and was rolled back alone).
    async fn write<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut JobCtx<'_>) -> Result<R> + Send + 'static,
    {
        let result = self.submit(work)?;
        result.await.map_err(|_| StoreError::Database("write job aborted (the writer panicked)".into()))?
    }

    /// Queues a write job without waiting for it.
    fn submit<R, F>(&self, work: F) -> Result<oneshot::Receiver<Result<R>>>
    where
        R: Send + 'static,
        F: FnOnce(&mut JobCtx<'_>) -> Result<R> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(TypedJob::new(work, reply));
        self.writer.send(job).map_err(|_| StoreError::Database("the database writer has stopped".into()))?;
        Ok(result)
    }

    /// How many write jobs and commit groups this handle's writer has processed so far; their
    /// ratio shows how well group commit amortizes fsyncs.
    pub fn write_stats(&self) -> WriteStats {
        WriteStats {
            jobs: self.stats.jobs.load(Ordering::Relaxed),
            groups: self.stats.groups.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` on a pooled read connection, in one read transaction (a consistent
    /// snapshot), on the calling thread: for reads of a bounded number of rows by key or
    /// index range (see the module docs).
    async fn read<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.readers.run(work)
    }

    /// [`SqliteStore::read`] on the blocking pool: for reads whose size follows the data
    /// (a whole mailbox's messages, the queue, administrative listings).
    async fn read_large<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.run(work))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    /// Runs `work` in one read transaction on a pooled connection.
    fn run<R>(&self, work: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let conn = self.take()?;
        let result = (|| {
            let tx = conn.unchecked_transaction().db()?;
            work(&tx)
        })();
        self.give_back(conn);
        result
    }

    fn take(&self) -> Result<Connection> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, true),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: errors, conversions, validation
// ---------------------------------------------------------------------------------------------

trait DbResult<T> {
    fn db(self) -> Result<T>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(|e| StoreError::Database(e.to_string()))
    }
}

fn db_context(context: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("{context}: {e}"))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// SQL integers are signed 64-bit; sizes and quotas beyond that are refused, not wrapped.
fn to_i64(value: u64, what: &'static str) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::Invalid { what, detail: format!("{value} is out of range") })
}

fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

fn get_opt_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u64>> {
    let v: Option<i64> = row.get(idx)?;
    v.map(|v| u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))).transpose()
}

fn get_blob(row: &Row<'_>, idx: usize) -> rusqlite::Result<BlobId> {
    let hex: String = row.get(idx)?;
    BlobId::parse(&hex).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("invalid blob id {hex:?}").into())
    })
}

/// Blob ids are stored as their hex text (TEXT columns), as they always were.
impl rusqlite::ToSql for BlobHex {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(self.as_bytes())))
    }
}

fn not_found(kind: &'static str, name: impl ToString) -> StoreError {
    StoreError::NotFound { kind, name: name.to_string() }
}

fn has_bad_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Lower-cases and minimally validates a domain name.
fn normalize_domain(raw: &str) -> Result<String> {
    let domain = raw.to_lowercase();
    let invalid = |detail: &str| StoreError::Invalid { what: "domain", detail: format!("{raw:?}: {detail}") };
    if domain.is_empty() {
        return Err(invalid("empty"));
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(invalid("too long"));
    }
    if has_bad_chars(&domain) || domain.contains('@') {
        return Err(invalid("contains '@', spaces or control characters"));
    }
    Ok(domain)
}

/// Lower-cases and minimally validates an address; returns it and its domain. With
/// `allow_catch_all`, `@domain` (empty local part) is accepted.
fn normalize_address(raw: &str, allow_catch_all: bool) -> Result<(String, String)> {
    let address = raw.to_lowercase();
    let invalid =
        |detail: &str| StoreError::Invalid { what: "address", detail: format!("{raw:?}: {detail}") };
    if address.len() > MAX_ADDRESS_LEN {
        return Err(invalid("too long"));
    }
    if has_bad_chars(&address) {
        return Err(invalid("contains spaces or control characters"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(invalid("no '@'"));
    };
    if domain.contains('@') {
        return Err(invalid("more than one '@'"));
    }
    if local.is_empty() && !allow_catch_all {
        return Err(invalid("empty local part"));
    }
    if domain.is_empty() {
        return Err(invalid("empty domain"));
    }
    let domain = domain.to_string();
    Ok((address, domain))
}

/// Validates a mailbox name; `INBOX` is case-insensitive (RFC 9051) and stored upper-case.
fn normalize_mailbox_name(raw: &str) -> Result<String> {
    if raw.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    let invalid =
        |detail: &str| StoreError::Invalid { what: "mailbox name", detail: format!("{raw:?}: {detail}") };
    if raw.is_empty() {
        return Err(invalid("empty"));
    }
    if raw.len() > MAX_MAILBOX_NAME_LEN {
        return Err(invalid("too long"));
    }
    if raw.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    Ok(raw.to_string())
}

/// Validates keywords and returns them sorted and de-duplicated. They are stored space
/// separated, so spaces are refused; a leading backslash would pose as a system flag.
fn normalize_keywords(keywords: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(keywords.len());
    for k in keywords {
        if k.is_empty() || has_bad_chars(k) || k.starts_with('\\') {
            return Err(StoreError::Invalid { what: "keyword", detail: format!("{k:?}") });
        }
        out.push(k.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn split_keywords(stored: &str) -> Vec<String> {
    stored.split(' ').filter(|k| !k.is_empty()).map(str::to_string).collect()
}

fn fits_quota(quota: Option<u64>, used: u64, extra: u64) -> bool {
    quota.is_none_or(|q| used.saturating_add(extra) <= q)
}

// ---------------------------------------------------------------------------------------------
// Row mapping and lookups (usable on read connections and inside write jobs)
// ---------------------------------------------------------------------------------------------

const ACCOUNT_COLS: &str = "id, address, domain, password_hash, quota_bytes, used_bytes, \
                            used_messages, imap, pop3, admin, disabled";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        address: row.get(1)?,
        domain: row.get(2)?,
        password_hash: row.get(3)?,
        quota: get_opt_u64(row, 4)?,
        used_bytes: get_u64(row, 5)?,
        used_messages: get_u64(row, 6)?,
        imap_enabled: row.get(7)?,
        pop3_enabled: row.get(8)?,
        admin: row.get(9)?,
        disabled: row.get(10)?,
    })
}

fn account_by_address_in(conn: &Connection, address: &str) -> Result<Option<Account>> {
    conn.prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE address = ?1"))
        .db()?
        .query_row([address], account_from_row)
        .optional()
        .db()
}

fn account_by_id_in(conn: &Connection, id: AccountId) -> Result<Option<Account>> {
    conn.prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"))
        .db()?
        .query_row([id], account_from_row)
        .optional()
        .db()
}

fn account_id_by_address(conn: &Connection, address: &str) -> Result<Option<AccountId>> {
    conn.prepare_cached("SELECT id FROM accounts WHERE address = ?1")
        .db()?
        .query_row([address], |r| r.get(0))
        .optional()
        .db()
}

fn domain_exists(conn: &Connection, domain: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")
        .db()?
        .query_row([domain], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// Whether `address` is already an account's address or an alias.
fn address_taken(conn: &Connection, address: &str) -> Result<bool> {
    if account_id_by_address(conn, address)?.is_some() {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached("SELECT 1 FROM aliases WHERE alias = ?1")
        .db()?
        .query_row([address], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// Columns of [`mailbox_from_row`], for `SELECT .. FROM mailboxes` (unaliased). Subscriptions
/// are kept by name, apart from mailboxes (they outlive them), so `subscribed` is looked up.
const MAILBOX_COLS: &str = "id, account_id, name, special_use, uidvalidity, uidnext, \
                            highestmodseq, EXISTS (SELECT 1 FROM subscriptions s \
                            WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name), \
                            message_count";

fn mailbox_from_row(row: &Row<'_>) -> rusqlite::Result<Mailbox> {
    let special_use: Option<String> = row.get(3)?;
    let uidnext: i64 = row.get(5)?;
    Ok(Mailbox {
        id: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        special_use: special_use.as_deref().and_then(SpecialUse::from_attribute),
        uidvalidity: row.get(4)?,
        uidnext: uid_ceiling(uidnext),
        highestmodseq: get_u64(row, 6)?,
        subscribed: row.get(7)?,
        messages: row.get(8)?,
    })
}

/// A stored UID counter as a UID: once the UID space is used up the counters (uidnext,
/// recent_uid) are one past `u32::MAX`; the ceiling is reported then.
fn uid_ceiling(stored: i64) -> Uid {
    Uid::try_from(stored.max(0)).unwrap_or(Uid::MAX)
}

/// The mailbox `mailbox` if it belongs to `account`.
fn mailbox_of(conn: &Connection, account: AccountId, mailbox: MailboxId) -> Result<Option<Mailbox>> {
    conn.prepare_cached(&format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = ?1 AND account_id = ?2"))
        .db()?
        .query_row([mailbox, account], mailbox_from_row)
        .optional()
        .db()
}

/// Like [`mailbox_of`], but a missing or foreign mailbox is `NotFound`.
fn require_mailbox(conn: &Connection, account: AccountId, mailbox: MailboxId) -> Result<Mailbox> {
    mailbox_of(conn, account, mailbox)?.ok_or_else(|| not_found("mailbox", mailbox))
}

fn mailbox_named(conn: &Connection, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
    conn.prepare_cached(&format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = ?1 AND name = ?2"))
        .db()?
        .query_row(params![account, name], mailbox_from_row)
        .optional()
        .db()
}

const MESSAGE_COLS: &str = "uid, blob, size, internal_date, flags, keywords, modseq, savedate";

/// A mailbox's messages in UID order: a range scan of the primary key (see the schema).
fn sql_list_messages() -> String {
    format!("SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = ?1 ORDER BY uid")
}

/// The messages of a mailbox changed since a MODSEQ: a range scan of `messages_modseq`.
/// Sorted by the caller (an ORDER BY uid would tempt the planner into the primary key).
fn sql_messages_changed_since() -> String {
    format!("SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2")
}

/// Tombstones of a mailbox newer than a MODSEQ: a range scan of `expunged_modseq`.
const SQL_EXPUNGED_SINCE: &str = "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2";

/// Remembers an expunged UID with the MODSEQ of its expunge (RFC 7162 section 3.2.7). A UID
/// is never reused within a UIDVALIDITY, so the key cannot already exist; replacing keeps
/// this total anyway.
const SQL_INSERT_TOMBSTONE: &str = "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3) \
     ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq";

/// `metadata.owner` of the server's shared annotations (account ids start at 1).
const SHARED_OWNER: AccountId = 0;
/// `metadata.mailbox_id` of server annotations (mailbox ids start at 1).
const SERVER_ENTRY: MailboxId = 0;
const PRIVATE_PREFIX: &str = "/private/";
const SHARED_PREFIX: &str = "/shared/";

/// One message by UID: a primary-key lookup.
fn sql_message_by_uid() -> String {
    format!("SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
}

/// The aggregates of `mailbox_status`, in one pass over the mailbox's range of the primary key.
/// The flag bits are bound (?2 seen, ?3 deleted) from `Flags`, so the SQL cannot drift from the
/// type; ?4 is the mailbox's `recent_uid`.
const SQL_MAILBOX_AGGREGATES: &str = "SELECT COUNT(*), \
     COALESCE(SUM(CASE WHEN (flags & ?2) = 0 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN (flags & ?3) <> 0 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(size), 0), \
     MIN(CASE WHEN (flags & ?2) = 0 THEN uid END), \
     COALESCE(SUM(CASE WHEN uid >= ?4 THEN 1 ELSE 0 END), 0) \
     FROM messages WHERE mailbox_id = ?1";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<MessageMeta> {
    let keywords: String = row.get(5)?;
    Ok(MessageMeta {
        uid: row.get(0)?,
        blob: get_blob(row, 1)?,
        size: get_u64(row, 2)?,
        internal_date: row.get(3)?,
        flags: Flags(row.get(4)?),
        keywords: split_keywords(&keywords),
        modseq: get_u64(row, 6)?,
        savedate: row.get(7)?,
    })
}

fn queue_entry_in(conn: &Connection, id: &str) -> Result<Option<QueueEntry>> {
    let entry = conn
        .prepare_cached(
            "SELECT id, sender, blob, size, envid, ret, smtputf8, body_8bit, created, \
             next_attempt, attempts FROM queue WHERE id = ?1",
        )
        .db()?
        .query_row([id], |row| {
            Ok(QueueEntry {
                id: row.get(0)?,
                sender: row.get(1)?,
                recipients: Vec::new(),
                blob: get_blob(row, 2)?,
                size: get_u64(row, 3)?,
                envid: row.get(4)?,
                ret: row.get(5)?,
                smtputf8: row.get(6)?,
                body_8bit: row.get(7)?,
                created: row.get(8)?,
                next_attempt: row.get(9)?,
                attempts: row.get(10)?,
            })
        })
        .optional()
        .db()?;
    let Some(mut entry) = entry else {
        return Ok(None);
    };

    let mut stmt = conn
        .prepare_cached(
            "SELECT address, notify, orcpt, status, last_reply FROM queue_recipients \
             WHERE queue_id = ?1 ORDER BY position",
        )
        .db()?;
    let rows = stmt
        .query_map([id], |row| {
            let status: String = row.get(3)?;
            let status = RecipientStatus::parse(&status).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    Type::Text,
                    format!("unknown recipient status {status:?}").into(),
                )
            })?;
            Ok(QueueRecipientState {
                recipient: QueueRecipient { address: row.get(0)?, notify: row.get(1)?, orcpt: row.get(2)? },
                status,
                last_reply: row.get(4)?,
            })
        })
        .db()?;
    for r in rows {
        entry.recipients.push(r.db()?);
    }
    Ok(Some(entry))
}

// ---------------------------------------------------------------------------------------------
// Write-side building blocks (called inside write jobs only)
// ---------------------------------------------------------------------------------------------

/// Allocates a store-wide UIDVALIDITY: one more than the last one, or the current time if that
/// is larger, so values keep growing even across a rebuilt database.
fn alloc_uidvalidity(conn: &Connection) -> Result<u32> {
    let last: Option<i64> = conn
        .query_row("SELECT value FROM counters WHERE name = 'uidvalidity'", [], |r| r.get(0))
        .optional()
        .db()?;
    let next = last.map_or(1, |v| v.saturating_add(1)).max(now()).max(1);
    let value =
        u32::try_from(next).map_err(|_| StoreError::Database("UIDVALIDITY space exhausted".into()))?;
    conn.execute(
        "INSERT INTO counters (name, value) VALUES ('uidvalidity', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [next],
    )
    .db()?;
    Ok(value)
}

fn insert_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<Mailbox> {
    if mailbox_named(conn, account, name)?.is_some() {
        return Err(StoreError::AlreadyExists { kind: "mailbox", name: name.to_string() });
    }
    let uidvalidity = alloc_uidvalidity(conn)?;
    let id: MailboxId = conn
        .query_row(
            "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, uidnext, \
             highestmodseq, message_count, recent_uid) VALUES (?1, ?2, ?3, ?4, 1, 1, 0, 1) \
             RETURNING id",
            params![account, name, special_use.map(SpecialUse::attribute), uidvalidity],
            |r| r.get(0),
        )
        .db()?;
    Ok(Mailbox {
        id,
        account,
        name: name.to_string(),
        special_use,
        uidvalidity,
        uidnext: 1,
        highestmodseq: 1,
        // A subscription of the name may predate the mailbox.
        subscribed: is_subscribed(conn, account, name)?,
        messages: 0,
    })
}

fn is_subscribed(conn: &Connection, account: AccountId, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM subscriptions WHERE account_id = ?1 AND name = ?2")
        .db()?
        .query_row(params![account, name], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// Subscribes `name`; already being subscribed is fine.
fn add_subscription(conn: &Connection, account: AccountId, name: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO subscriptions (account_id, name) VALUES (?1, ?2) \
         ON CONFLICT (account_id, name) DO NOTHING",
    )
    .db()?
    .execute(params![account, name])
    .db()?;
    Ok(())
}

/// Takes one reference on a blob, creating its row if the file exists (see the module docs).
fn add_blob_ref(ctx: &JobCtx<'_>, blob: &BlobId, size: u64) -> Result<()> {
    let updated = ctx
        .conn
        .prepare_cached("UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?1")
        .db()?
        .execute([blob.hex()])
        .db()?;
    if updated > 0 {
        return Ok(());
    }
    if !ctx.blobs.exists(blob)? {
        return Err(StoreError::BlobMissing(blob.to_string()));
    }
    ctx.conn
        .prepare_cached("INSERT INTO blobs (hash, size, refcount) VALUES (?1, ?2, 1)")
        .db()?
        .execute(params![blob.hex(), to_i64(size, "size")?])
        .db()?;
    Ok(())
}

/// Whether an info value is small enough to keep (see `MAX_BLOB_INFO_LEN`). The cache is an
/// optimisation: a value above the limit is dropped (and computed again when needed), never
/// an error, so it can never fail the delivery or APPEND it came with.
fn keepable(info: &[u8]) -> bool {
    let ok = info.len() <= MAX_BLOB_INFO_LEN;
    if !ok {
        tracing::debug!(len = info.len(), "blob info above the limit not kept");
    }
    ok
}

/// Sets a referenced blob's cached info (a blob without a row is left alone). Setting what is
/// already there writes nothing (no WAL frame), which matters when several sessions render
/// the same message at once.
fn set_info(conn: &Connection, blob: &BlobId, info: &[u8]) -> Result<()> {
    conn.prepare_cached("UPDATE blobs SET info = ?1 WHERE hash = ?2 AND info IS DISTINCT FROM ?1")
        .db()?
        .execute(params![info, blob.hex()])
        .db()?;
    Ok(())
}

/// Drops one reference on a blob; at zero the row goes and the file is unlinked after commit.
/// Rows referencing the blob must already be deleted (the foreign keys insist).
fn release_blob(ctx: &mut JobCtx<'_>, blob: &BlobId) -> Result<()> {
    let remaining: Option<i64> = ctx
        .conn
        .prepare_cached("UPDATE blobs SET refcount = refcount - 1 WHERE hash = ?1 RETURNING refcount")
        .db()?
        .query_row([blob.hex()], |r| r.get(0))
        .optional()
        .db()?;
    match remaining {
        None => tracing::warn!(%blob, "releasing a blob that has no reference count"),
        Some(n) if n <= 0 => {
            ctx.conn.prepare_cached("DELETE FROM blobs WHERE hash = ?1").db()?.execute([blob.hex()]).db()?;
            ctx.freed(blob.clone());
        }
        Some(_) => {}
    }
    Ok(())
}

/// Quota limits and usage of an account.
struct QuotaState {
    bytes: Option<u64>,
    used_bytes: u64,
    messages: Option<u64>,
    used_messages: u64,
}

impl QuotaState {
    /// Whether `bytes` more bytes in `messages` more messages fit both limits.
    fn fits(&self, bytes: u64, messages: u64) -> bool {
        fits_quota(self.bytes, self.used_bytes, bytes)
            && fits_quota(self.messages, self.used_messages, messages)
    }
}

/// Quota limits and usage of an account, `None` if it does not exist.
fn quota_state(conn: &Connection, account: AccountId) -> Result<Option<QuotaState>> {
    conn.prepare_cached(
        "SELECT quota_bytes, used_bytes, quota_messages, used_messages FROM accounts WHERE id = ?1",
    )
    .db()?
    .query_row([account], |r| {
        Ok(QuotaState {
            bytes: get_opt_u64(r, 0)?,
            used_bytes: get_u64(r, 1)?,
            messages: get_opt_u64(r, 2)?,
            used_messages: get_u64(r, 3)?,
        })
    })
    .optional()
    .db()
}

struct MessageInsert<'a> {
    blob: &'a BlobId,
    size: u64,
    internal_date: i64,
    flags: Flags,
    keywords: &'a [String],
}

/// Inserts a message into a mailbox already checked to belong to `account`: takes a blob
/// reference, allocates UID and MODSEQ, counts the quota usage, records the event.
fn insert_message(
    ctx: &mut JobCtx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    msg: &MessageInsert<'_>,
) -> Result<Appended> {
    let size = to_i64(msg.size, "size")?;
    add_blob_ref(ctx, msg.blob, msg.size)?;
    let (uidvalidity, uid, modseq): (u32, i64, i64) = ctx
        .conn
        .prepare_cached(
            "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, \
             message_count = message_count + 1 WHERE id = ?1 \
             RETURNING uidvalidity, uidnext - 1, highestmodseq",
        )
        .db()?
        .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .db()?;
    let uid = Uid::try_from(uid).ok().filter(|u| *u > 0).ok_or_else(|| StoreError::Invalid {
        what: "mailbox",
        detail: format!("mailbox {mailbox} has used up its UIDs"),
    })?;
    let modseq = ModSeq::try_from(modseq)
        .map_err(|_| StoreError::Database(format!("corrupt MODSEQ in mailbox {mailbox}")))?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, blob, size, internal_date, flags, keywords, \
             modseq, savedate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .db()?
        .execute(params![
            mailbox,
            uid,
            msg.blob.hex(),
            size,
            msg.internal_date,
            msg.flags.0,
            msg.keywords.join(" "),
            to_i64(modseq, "modseq")?,
            now(),
        ])
        .db()?;
    ctx.conn
        .prepare_cached(
            "UPDATE accounts SET used_bytes = used_bytes + ?1, used_messages = used_messages + 1 \
             WHERE id = ?2",
        )
        .db()?
        .execute(params![size, account])
        .db()?;
    ctx.event(account, ChangeEvent::MessageAdded { mailbox, uid, modseq });
    Ok(Appended { mailbox, uidvalidity, uid, modseq })
}

/// Subtracts removed messages from an account's usage (never below zero).
fn release_usage(conn: &Connection, account: AccountId, bytes: u64, messages: u64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE accounts SET \
         used_bytes = CASE WHEN used_bytes > ?1 THEN used_bytes - ?1 ELSE 0 END, \
         used_messages = CASE WHEN used_messages > ?2 THEN used_messages - ?2 ELSE 0 END \
         WHERE id = ?3",
    )
    .db()?
    .execute(params![to_i64(bytes, "size")?, to_i64(messages, "count")?, account])
    .db()?;
    Ok(())
}

/// Deletes every message of a mailbox, releasing blobs and quota usage.
fn clear_mailbox(ctx: &mut JobCtx<'_>, account: AccountId, mailbox: MailboxId) -> Result<()> {
    let removed: Vec<(BlobId, u64)> = {
        let mut stmt = ctx
            .conn
            .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 RETURNING blob, size")
            .db()?;
        let rows = stmt.query_map([mailbox], |r| Ok((get_blob(r, 0)?, get_u64(r, 1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    ctx.conn.prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1").db()?.execute([mailbox]).db()?;
    ctx.conn
        .prepare_cached("DELETE FROM metadata WHERE owner = ?1 AND mailbox_id = ?2")
        .db()?
        .execute([account, mailbox])
        .db()?;
    let bytes = removed.iter().fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
    for (blob, _) in &removed {
        release_blob(ctx, blob)?;
    }
    release_usage(ctx.conn, account, bytes, removed.len() as u64)
}

/// The messages among `uids` (sorted and de-duplicated) of a mailbox, in UID order; UIDs that
/// do not exist are skipped. One primary-key lookup per UID with one prepared statement.
fn messages_by_uid(conn: &Connection, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
    let mut select = conn.prepare_cached(&sql_message_by_uid()).db()?;
    let mut found = Vec::new();
    for &uid in uids {
        if let Some(msg) = select.query_row(params![mailbox, uid], message_from_row).optional().db()? {
            found.push(msg);
        }
    }
    Ok(found)
}

/// Allocates `count` (> 0) consecutive UIDs and MODSEQs in a mailbox and counts the messages
/// there; returns the mailbox's UIDVALIDITY, the first UID and the first MODSEQ. One statement
/// for the whole batch, so that the allocation cannot interleave with anything.
fn alloc_uids(conn: &Connection, mailbox: MailboxId, count: u32) -> Result<(u32, Uid, ModSeq)> {
    let (uidvalidity, first_uid, first_modseq): (u32, i64, i64) = conn
        .prepare_cached(
            "UPDATE mailboxes SET uidnext = uidnext + ?2, highestmodseq = highestmodseq + ?2, \
             message_count = message_count + ?2 WHERE id = ?1 \
             RETURNING uidvalidity, uidnext - ?2, highestmodseq - ?2 + 1",
        )
        .db()?
        .query_row(params![mailbox, count], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .db()?;
    let last_uid = first_uid.saturating_add(i64::from(count) - 1);
    let first_uid = Uid::try_from(first_uid)
        .ok()
        .filter(|u| *u > 0 && Uid::try_from(last_uid).is_ok())
        .ok_or_else(|| StoreError::Invalid {
            what: "mailbox",
            detail: format!("mailbox {mailbox} has no room for {count} more UIDs"),
        })?;
    let first_modseq = ModSeq::try_from(first_modseq)
        .map_err(|_| StoreError::Database(format!("corrupt MODSEQ in mailbox {mailbox}")))?;
    Ok((uidvalidity, first_uid, first_modseq))
}

/// Copies (or, with `remove_source`, moves) messages between two mailboxes of one account; the
/// body of `copy_messages` and `move_messages`.
fn transfer_messages(
    ctx: &mut JobCtx<'_>,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
    remove_source: bool,
) -> Result<CopyResult> {
    let conn = ctx.conn;
    require_mailbox(conn, account, from)?;
    let target = require_mailbox(conn, account, to)?;
    let sources = messages_by_uid(conn, from, uids)?;
    if sources.is_empty() {
        return Ok(CopyResult { uidvalidity: target.uidvalidity, mapping: Vec::new() });
    }
    // At most one message per distinct u32 UID, so this cannot fail in practice.
    let count = u32::try_from(sources.len())
        .map_err(|_| StoreError::Invalid { what: "UID set", detail: "too many messages".into() })?;
    let total = sources.iter().fold(0u64, |sum, m| sum.saturating_add(m.size));
    if !remove_source {
        // Checked as a whole: IMAP COPY is all or nothing.
        let quota = quota_state(conn, account)?.ok_or_else(|| not_found("account", account))?;
        if !quota.fits(total, u64::from(count)) {
            return Err(StoreError::OverQuota);
        }
    }
    let (uidvalidity, first_uid, first_modseq) = alloc_uids(conn, to, count)?;

    let mut mapping = Vec::with_capacity(sources.len());
    if remove_source {
        // Re-keying the row moves it with its blob reference: references and quota usage stay
        // as they are, and the body is never without a row referencing it.
        let mut update = conn
            .prepare_cached(
                "UPDATE messages SET mailbox_id = ?1, uid = ?2, modseq = ?3, savedate = ?6 \
                 WHERE mailbox_id = ?4 AND uid = ?5",
            )
            .db()?;
        let saved = now();
        for ((uid, modseq), msg) in (first_uid..).zip(first_modseq..).zip(&sources) {
            update.execute(params![to, uid, to_i64(modseq, "modseq")?, from, msg.uid, saved]).db()?;
            mapping.push((msg.uid, uid));
            ctx.event(account, ChangeEvent::MessageAdded { mailbox: to, uid, modseq });
        }
        // As `expunge`: the removal is one change of the source mailbox, remembered per UID.
        let expunge_modseq: i64 = conn
            .prepare_cached(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1, \
                 message_count = CASE WHEN message_count > ?1 THEN message_count - ?1 ELSE 0 END \
                 WHERE id = ?2 RETURNING highestmodseq",
            )
            .db()?
            .query_row(params![count, from], |r| r.get(0))
            .db()?;
        let mut tombstone = conn.prepare_cached(SQL_INSERT_TOMBSTONE).db()?;
        for msg in &sources {
            tombstone.execute(params![from, msg.uid, expunge_modseq]).db()?;
        }
        let removed = sources.iter().map(|m| m.uid).collect();
        ctx.event(account, ChangeEvent::Expunged { mailbox: from, uids: removed });
    } else {
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO messages (mailbox_id, uid, blob, size, internal_date, flags, \
                 keywords, modseq, savedate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .db()?;
        let saved = now();
        for ((uid, modseq), msg) in (first_uid..).zip(first_modseq..).zip(&sources) {
            // The source row holds a reference, so this only increments the count.
            add_blob_ref(ctx, &msg.blob, msg.size)?;
            insert
                .execute(params![
                    to,
                    uid,
                    msg.blob.hex(),
                    to_i64(msg.size, "size")?,
                    msg.internal_date,
                    msg.flags.0,
                    msg.keywords.join(" "),
                    to_i64(modseq, "modseq")?,
                    saved,
                ])
                .db()?;
            mapping.push((msg.uid, uid));
            ctx.event(account, ChangeEvent::MessageAdded { mailbox: to, uid, modseq });
        }
        conn.prepare_cached(
            "UPDATE accounts SET used_bytes = used_bytes + ?1, used_messages = used_messages + ?2 \
             WHERE id = ?3",
        )
        .db()?
        .execute(params![to_i64(total, "size")?, count, account])
        .db()?;
    }
    Ok(CopyResult { uidvalidity, mapping })
}

/// One mailbox of a hierarchical rename.
struct Rename {
    id: MailboxId,
    old: String,
    new: String,
}

/// The renames `rename_mailbox` performs: `mb` itself first, then its inferiors by name, each
/// checked for a valid and free new name. A new name may be the old name of another mailbox
/// of the same rename (`A/B` to `A` turns `A/B/B` into `A/B`): that one is renamed away.
fn plan_rename(conn: &Connection, account: AccountId, mb: &Mailbox, new_name: &str) -> Result<Vec<Rename>> {
    let old_prefix = format!("{}{HIERARCHY_DELIMITER}", mb.name);
    // substr on characters rather than LIKE, whose wildcards may occur in names.
    let inferiors: Vec<(MailboxId, String)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, name FROM mailboxes WHERE account_id = ?1 AND substr(name, 1, ?2) = ?3 \
                 ORDER BY name",
            )
            .db()?;
        let prefix_chars = i64::try_from(old_prefix.chars().count()).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![account, prefix_chars, old_prefix], |r| Ok((r.get(0)?, r.get(1)?)))
            .db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let mut renames = vec![Rename { id: mb.id, old: mb.name.clone(), new: new_name.to_string() }];
    for (id, old) in inferiors {
        // The prefix matched on characters, so slicing after it is on a char boundary.
        let new = normalize_mailbox_name(&format!("{new_name}{}", &old[mb.name.len()..]))?;
        renames.push(Rename { id, old, new });
    }
    for r in &renames[1..] {
        if let Some(other) = mailbox_named(conn, account, &r.new)?
            && !renames.iter().any(|x| x.id == other.id)
        {
            return Err(StoreError::AlreadyExists { kind: "mailbox", name: r.new.clone() });
        }
    }
    Ok(renames)
}

/// Moves the subscriptions of renamed mailboxes to their new names: all removed first, then
/// all added, so that a new name that is another one's old name ends up right.
fn rename_subscriptions(conn: &Connection, account: AccountId, renames: &[Rename]) -> Result<()> {
    let mut delete =
        conn.prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2").db()?;
    let mut moved = Vec::new();
    for r in renames {
        if delete.execute(params![account, r.old]).db()? > 0 {
            moved.push(r.new.as_str());
        }
    }
    for name in moved {
        add_subscription(conn, account, name)?;
    }
    Ok(())
}

/// Renames the mailboxes. With inferiors, every row first gets a placeholder name (control
/// characters never occur in real names) so that the unique `(account_id, name)` constraint,
/// checked row by row, never sees two mailboxes swap names halfway.
fn apply_renames(conn: &Connection, renames: &[Rename]) -> Result<()> {
    let mut update = conn.prepare_cached("UPDATE mailboxes SET name = ?1 WHERE id = ?2").db()?;
    if renames.len() > 1 {
        for r in renames {
            update.execute(params![format!("\u{1}rename\u{1}{}", r.id), r.id]).db()?;
        }
    }
    for r in renames {
        update.execute(params![r.new, r.id]).db()?;
    }
    Ok(())
}

/// Files one body into several mailboxes and optionally queues it: the job of
/// `Store::deliver`, also run inside `queue_update` for delivery status notifications.
fn deliver_in(ctx: &mut JobCtx<'_>, batch: &DeliveryBatch) -> Result<DeliveryOutcome> {
    let mut results = Vec::with_capacity(batch.targets.len());
    for target in &batch.targets {
        let Some(quota) = quota_state(ctx.conn, target.account)? else {
            results.push(Err(DeliveryFailure::NoSuchAccount));
            continue;
        };
        let mailbox = match target.mailbox {
            Some(id) => mailbox_of(ctx.conn, target.account, id)?,
            None => mailbox_named(ctx.conn, target.account, "INBOX")?,
        };
        let Some(mailbox) = mailbox else {
            results.push(Err(DeliveryFailure::NoSuchMailbox));
            continue;
        };
        if !quota.fits(batch.size, 1) {
            results.push(Err(DeliveryFailure::OverQuota));
            continue;
        }
        let msg = MessageInsert {
            blob: &batch.blob,
            size: batch.size,
            internal_date: batch.internal_date,
            flags: target.flags,
            keywords: &[],
        };
        results.push(Ok(insert_message(ctx, target.account, mailbox.id, &msg)?));
    }
    if let Some(info) = &batch.info
        && results.iter().any(Result::is_ok)
    {
        set_info(ctx.conn, &batch.blob, info)?;
    }
    let queued = match &batch.enqueue {
        Some(entry) => Some(insert_queue_entry(ctx, entry)?),
        None => None,
    };
    Ok(DeliveryOutcome { results, queued })
}

const QUEUE_ID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A queue id: the creation time in microseconds (hex, so ids sort by age) plus random
/// characters against collisions between processes.
fn new_queue_id() -> QueueId {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    let mut rng = rand::rng();
    let mut id = format!("{micros:013x}");
    for _ in 0..5 {
        id.push(char::from(QUEUE_ID_ALPHABET[rng.random_range(0..QUEUE_ID_ALPHABET.len())]));
    }
    id
}

/// A lease token: random, so that a runner can tell its own claim from a later one.
fn new_lease_token() -> String {
    let mut rng = rand::rng();
    (0..16).map(|_| char::from(QUEUE_ID_ALPHABET[rng.random_range(0..QUEUE_ID_ALPHABET.len())])).collect()
}

fn insert_queue_entry(ctx: &JobCtx<'_>, entry: &NewQueueEntry) -> Result<QueueId> {
    if entry.recipients.is_empty() {
        return Err(StoreError::Invalid { what: "queue entry", detail: "no recipients".into() });
    }
    let size = to_i64(entry.size, "size")?;
    add_blob_ref(ctx, &entry.blob, entry.size)?;
    let created = now();
    let mut insert = ctx
        .conn
        .prepare_cached(
            "INSERT INTO queue (id, sender, blob, size, envid, ret, smtputf8, body_8bit, \
             created, next_attempt, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 0) \
             ON CONFLICT (id) DO NOTHING",
        )
        .db()?;
    let mut id = None;
    for _ in 0..8 {
        let candidate = new_queue_id();
        let inserted = insert
            .execute(params![
                candidate,
                entry.sender,
                entry.blob.hex(),
                size,
                entry.envid,
                entry.ret,
                entry.smtputf8,
                entry.body_8bit,
                created,
            ])
            .db()?;
        if inserted == 1 {
            id = Some(candidate);
            break;
        }
    }
    let id = id.ok_or_else(|| StoreError::Database("cannot allocate a unique queue id".into()))?;

    let mut recipient = ctx
        .conn
        .prepare_cached(
            "INSERT INTO queue_recipients (queue_id, position, address, notify, orcpt, status, \
             last_reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
        )
        .db()?;
    for (position, r) in entry.recipients.iter().enumerate() {
        recipient
            .execute(params![
                id,
                position as i64,
                r.address,
                r.notify,
                r.orcpt,
                RecipientStatus::Pending.as_str(),
            ])
            .db()?;
    }
    Ok(id)
}

fn apply_flag_op(
    op: &FlagOp,
    op_keywords: &[String],
    flags: Flags,
    keywords: &[String],
) -> (Flags, Vec<String>) {
    match op.mode {
        FlagMode::Replace => (op.flags, op_keywords.to_vec()),
        FlagMode::Add => {
            let mut all: Vec<String> = keywords.iter().chain(op_keywords).cloned().collect();
            all.sort();
            all.dedup();
            (flags.union(op.flags), all)
        }
        FlagMode::Remove => {
            (flags.minus(op.flags), keywords.iter().filter(|k| !op_keywords.contains(k)).cloned().collect())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Store implementation
// ---------------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl Store for SqliteStore {
    // ---- domains ----

    async fn add_domain(&self, name: &str) -> Result<()> {
        let domain = normalize_domain(name)?;
        self.write(move |ctx| {
            if domain_exists(ctx.conn, &domain)? {
                return Err(StoreError::AlreadyExists { kind: "domain", name: domain });
            }
            ctx.conn
                .execute("INSERT INTO domains (name, created) VALUES (?1, ?2)", params![domain, now()])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let domain = name.to_lowercase();
        self.write(move |ctx| {
            if !domain_exists(ctx.conn, &domain)? {
                return Err(not_found("domain", domain));
            }
            let (accounts, aliases): (i64, i64) = ctx
                .conn
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM accounts WHERE domain = ?1), \
                     (SELECT COUNT(*) FROM aliases WHERE domain = ?1)",
                    [&domain],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .db()?;
            if accounts > 0 || aliases > 0 {
                return Err(StoreError::Invalid {
                    what: "domain removal",
                    detail: format!("{domain} still has {accounts} account(s) and {aliases} alias(es)"),
                });
            }
            ctx.conn.execute("DELETE FROM domains WHERE name = ?1", [&domain]).db()?;
            Ok(())
        })
        .await
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        self.read_large(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name FROM domains ORDER BY name").db()?;
            let rows = stmt.query_map([], |r| r.get(0)).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    async fn is_local_domain(&self, name: &str) -> Result<bool> {
        let domain = name.to_lowercase();
        self.read(move |conn| domain_exists(conn, &domain)).await
    }

    async fn set_dkim_keys(&self, domain: &str, keys: Vec<DkimKey>) -> Result<()> {
        let domain = normalize_domain(domain)?;
        let mut selectors = std::collections::HashSet::new();
        for key in &keys {
            if key.selector.is_empty() || has_bad_chars(&key.selector) || !selectors.insert(&key.selector) {
                return Err(StoreError::Invalid {
                    what: "DKIM selector",
                    detail: format!("{:?}: empty, repeated or with spaces", key.selector),
                });
            }
        }
        self.write(move |ctx| {
            if !domain_exists(ctx.conn, &domain)? {
                return Err(StoreError::UnknownDomain(domain));
            }
            ctx.conn.execute("DELETE FROM dkim_keys WHERE domain = ?1", [&domain]).db()?;
            let mut insert = ctx
                .conn
                .prepare_cached(
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, \
                     created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .db()?;
            for key in &keys {
                insert
                    .execute(params![
                        domain,
                        key.selector,
                        key.algorithm.as_str(),
                        key.private_key,
                        key.public_key,
                        key.created
                    ])
                    .db()?;
            }
            Ok(())
        })
        .await
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = domain.to_lowercase();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT selector, algorithm, private_key, public_key, created FROM dkim_keys \
                     WHERE domain = ?1 ORDER BY selector",
                )
                .db()?;
            let rows = stmt
                .query_map([&domain], |r| {
                    let algorithm: String = r.get(1)?;
                    let algorithm = DkimAlgorithm::parse(&algorithm).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            Type::Text,
                            format!("unknown DKIM algorithm {algorithm:?}").into(),
                        )
                    })?;
                    Ok(DkimKey {
                        selector: r.get(0)?,
                        algorithm,
                        private_key: r.get(2)?,
                        public_key: r.get(3)?,
                        created: r.get(4)?,
                    })
                })
                .db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    // ---- accounts and addresses ----

    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let (address, domain) = normalize_address(&new.address, false)?;
        let quota = new.quota.map(|q| to_i64(q, "quota")).transpose()?;
        self.write(move |ctx| {
            let conn = ctx.conn;
            if !domain_exists(conn, &domain)? {
                return Err(StoreError::UnknownDomain(domain));
            }
            if address_taken(conn, &address)? {
                return Err(StoreError::AlreadyExists { kind: "address", name: address });
            }
            let id: AccountId = conn
                .query_row(
                    "INSERT INTO accounts (address, domain, password_hash, quota_bytes, \
                     used_bytes, used_messages, imap, pop3, admin, disabled, created) \
                     VALUES (?1, ?2, ?3, ?4, 0, 0, 1, 1, ?5, 0, ?6) RETURNING id",
                    params![address, domain, new.password_hash, quota, new.admin, now()],
                    |r| r.get(0),
                )
                .db()?;
            for (name, special_use) in DEFAULT_MAILBOXES {
                add_subscription(conn, id, name)?;
                insert_mailbox(conn, id, name, *special_use)?;
            }
            account_by_id_in(conn, id)?
                .ok_or_else(|| StoreError::Database("account vanished after insert".into()))
        })
        .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| {
            let Some(id) = account_id_by_address(ctx.conn, &address)? else {
                return Err(not_found("account", address));
            };
            let mailboxes: Vec<MailboxId> = {
                let mut stmt =
                    ctx.conn.prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1").db()?;
                let rows = stmt.query_map([id], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<_>>().db()?
            };
            for mailbox in mailboxes {
                clear_mailbox(ctx, id, mailbox)?;
                ctx.event(id, ChangeEvent::MailboxDeleted { mailbox });
            }
            ctx.conn.execute("DELETE FROM mailboxes WHERE account_id = ?1", [id]).db()?;
            ctx.conn.execute("DELETE FROM aliases WHERE account_id = ?1", [id]).db()?;
            ctx.conn.execute("DELETE FROM subscriptions WHERE account_id = ?1", [id]).db()?;
            ctx.conn.execute("DELETE FROM metadata WHERE owner = ?1", [id]).db()?;
            ctx.conn.execute("DELETE FROM accounts WHERE id = ?1", [id]).db()?;
            Ok(())
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read_large(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY address")).db()?;
            let rows = stmt.query_map([], account_from_row).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let address = address.to_lowercase();
        self.read(move |conn| account_by_address_in(conn, &address)).await
    }

    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        self.read(move |conn| account_by_id_in(conn, id)).await
    }

    async fn set_password_hash(&self, address: &str, hash: &str) -> Result<()> {
        let address = address.to_lowercase();
        let hash = hash.to_string();
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute("UPDATE accounts SET password_hash = ?1 WHERE address = ?2", params![hash, address])
                .db()?;
            if n == 0 {
                return Err(not_found("account", address));
            }
            Ok(())
        })
        .await
    }

    async fn set_quota(&self, address: &str, quota: Option<u64>) -> Result<()> {
        let address = address.to_lowercase();
        let quota = quota.map(|q| to_i64(q, "quota")).transpose()?;
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute("UPDATE accounts SET quota_bytes = ?1 WHERE address = ?2", params![quota, address])
                .db()?;
            if n == 0 {
                return Err(not_found("account", address));
            }
            Ok(())
        })
        .await
    }

    async fn update_account_settings(&self, address: &str, settings: AccountSettings) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute(
                    "UPDATE accounts SET imap = COALESCE(?1, imap), pop3 = COALESCE(?2, pop3), \
                     admin = COALESCE(?3, admin), disabled = COALESCE(?4, disabled) \
                     WHERE address = ?5",
                    params![
                        settings.imap_enabled,
                        settings.pop3_enabled,
                        settings.admin,
                        settings.disabled,
                        address
                    ],
                )
                .db()?;
            if n == 0 {
                return Err(not_found("account", address));
            }
            Ok(())
        })
        .await
    }

    async fn add_alias(&self, alias: &str, target: &str) -> Result<()> {
        let (alias, domain) = normalize_address(alias, true)?;
        let target = target.to_lowercase();
        self.write(move |ctx| {
            let conn = ctx.conn;
            if !domain_exists(conn, &domain)? {
                return Err(StoreError::UnknownDomain(domain));
            }
            if address_taken(conn, &alias)? {
                return Err(StoreError::AlreadyExists { kind: "address", name: alias });
            }
            let Some(account) = account_id_by_address(conn, &target)? else {
                return Err(not_found("account", target));
            };
            conn.execute(
                "INSERT INTO aliases (alias, account_id, domain) VALUES (?1, ?2, ?3)",
                params![alias, account, domain],
            )
            .db()?;
            Ok(())
        })
        .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<()> {
        let alias = alias.to_lowercase();
        self.write(move |ctx| {
            let n = ctx.conn.execute("DELETE FROM aliases WHERE alias = ?1", [&alias]).db()?;
            if n == 0 {
                return Err(not_found("alias", alias));
            }
            Ok(())
        })
        .await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.read_large(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.alias, c.address FROM aliases a \
                     JOIN accounts c ON c.id = a.account_id ORDER BY a.alias",
                )
                .db()?;
            let rows = stmt.query_map([], |r| Ok(Alias { alias: r.get(0)?, target: r.get(1)? })).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    async fn resolve_address(&self, address: &str) -> Result<Option<Account>> {
        let address = address.to_lowercase();
        // Only a real address resolves; in particular `@domain` is not a recipient.
        let Some(domain) = address.split_once('@').and_then(|(local, domain)| {
            (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then(|| domain.to_string())
        }) else {
            return Ok(None);
        };
        self.read(move |conn| {
            if let Some(account) = account_by_address_in(conn, &address)? {
                return Ok(Some(account));
            }
            let by_alias = |alias: &str| -> Result<Option<Account>> {
                conn.prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts \
                     WHERE id = (SELECT account_id FROM aliases WHERE alias = ?1)"
                ))
                .db()?
                .query_row([alias], account_from_row)
                .optional()
                .db()
            };
            if let Some(account) = by_alias(&address)? {
                return Ok(Some(account));
            }
            by_alias(&format!("@{domain}"))
        })
        .await
    }

    // ---- mailboxes ----

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = ?1 \
                     ORDER BY CASE WHEN name = 'INBOX' THEN 0 ELSE 1 END, name"
                ))
                .db()?;
            let rows = stmt.query_map([account], mailbox_from_row).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        // A name we would never store cannot exist.
        let Ok(name) = normalize_mailbox_name(name) else {
            return Ok(None);
        };
        self.read(move |conn| mailbox_named(conn, account, &name)).await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_mailbox_name(name)?;
        self.write(move |ctx| {
            if account_by_id_in(ctx.conn, account)?.is_none() {
                return Err(not_found("account", account));
            }
            let mailbox = insert_mailbox(ctx.conn, account, &name, special_use)?;
            ctx.event(account, ChangeEvent::MailboxCreated { mailbox: mailbox.id });
            Ok(mailbox)
        })
        .await
    }

    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> Result<()> {
        self.write(move |ctx| {
            let mb = require_mailbox(ctx.conn, account, mailbox)?;
            if mb.name == "INBOX" {
                return Err(StoreError::Invalid {
                    what: "mailbox deletion",
                    detail: "INBOX cannot be deleted".into(),
                });
            }
            clear_mailbox(ctx, account, mailbox)?;
            ctx.conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox]).db()?;
            ctx.event(account, ChangeEvent::MailboxDeleted { mailbox });
            Ok(())
        })
        .await
    }

    async fn rename_mailbox(&self, account: AccountId, mailbox: MailboxId, new_name: &str) -> Result<()> {
        let new_name = normalize_mailbox_name(new_name)?;
        self.write(move |ctx| {
            let conn = ctx.conn;
            let mb = require_mailbox(conn, account, mailbox)?;
            if mb.name == "INBOX" {
                return Err(StoreError::Invalid {
                    what: "mailbox rename",
                    detail: "INBOX cannot be renamed here".into(),
                });
            }
            if mailbox_named(conn, account, &new_name)?.is_some() {
                return Err(StoreError::AlreadyExists { kind: "mailbox", name: new_name });
            }
            let old_prefix = format!("{}{HIERARCHY_DELIMITER}", mb.name);
            if new_name.starts_with(&old_prefix) {
                return Err(StoreError::Invalid {
                    what: "mailbox rename",
                    detail: format!("{new_name:?} is inside {:?} itself", mb.name),
                });
            }
            let renames = plan_rename(conn, account, &mb, &new_name)?;
            rename_subscriptions(conn, account, &renames)?;
            apply_renames(conn, &renames)?;
            for r in &renames {
                ctx.event(account, ChangeEvent::MailboxRenamed { mailbox: r.id });
            }
            Ok(())
        })
        .await
    }

    async fn set_mailbox_special_use(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute(
                    "UPDATE mailboxes SET special_use = ?1 WHERE id = ?2 AND account_id = ?3",
                    params![special_use.map(SpecialUse::attribute), mailbox, account],
                )
                .db()?;
            if n == 0 {
                return Err(not_found("mailbox", mailbox));
            }
            Ok(())
        })
        .await
    }

    async fn mailbox_status(&self, account: AccountId, mailbox: MailboxId) -> Result<MailboxStatus> {
        self.read(move |conn| {
            let (uidvalidity, uidnext, highestmodseq, recent_uid): (u32, i64, u64, i64) = conn
                .prepare_cached(
                    "SELECT uidvalidity, uidnext, highestmodseq, recent_uid FROM mailboxes \
                     WHERE id = ?1 AND account_id = ?2",
                )
                .db()?
                .query_row([mailbox, account], |r| Ok((r.get(0)?, r.get(1)?, get_u64(r, 2)?, r.get(3)?)))
                .optional()
                .db()?
                .ok_or_else(|| not_found("mailbox", mailbox))?;
            conn.prepare_cached(SQL_MAILBOX_AGGREGATES)
                .db()?
                .query_row(params![mailbox, Flags::SEEN.0, Flags::DELETED.0, recent_uid], |r| {
                    Ok(MailboxStatus {
                        messages: r.get(0)?,
                        unseen: r.get(1)?,
                        deleted: r.get(2)?,
                        size: get_u64(r, 3)?,
                        uidnext: uid_ceiling(uidnext),
                        uidvalidity,
                        highestmodseq,
                        first_unseen_uid: r.get(4)?,
                        recent: r.get(5)?,
                    })
                })
                .db()
        })
        .await
    }

    async fn claim_recent(&self, account: AccountId, mailbox: MailboxId) -> Result<Uid> {
        // A write job even when nothing is new: the read and the advance must not interleave
        // with another session's claim, and the single writer serializes them. A job that
        // changes nothing commits without writing, so it costs no fsync.
        self.write(move |ctx| {
            let (recent_uid, uidnext): (i64, i64) = ctx
                .conn
                .prepare_cached("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?1 AND account_id = ?2")
                .db()?
                .query_row([mailbox, account], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?
                .ok_or_else(|| not_found("mailbox", mailbox))?;
            if recent_uid < uidnext {
                ctx.conn
                    .prepare_cached("UPDATE mailboxes SET recent_uid = ?1 WHERE id = ?2")
                    .db()?
                    .execute([uidnext, mailbox])
                    .db()?;
            }
            Ok(uid_ceiling(recent_uid))
        })
        .await
    }

    // ---- subscriptions ----

    async fn subscribe(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        self.write(move |ctx| {
            if account_by_id_in(ctx.conn, account)?.is_none() {
                return Err(not_found("account", account));
            }
            add_subscription(ctx.conn, account, &name)
        })
        .await
    }

    async fn unsubscribe(&self, account: AccountId, name: &str) -> Result<()> {
        // A name we would never store cannot be subscribed.
        let Ok(name) = normalize_mailbox_name(name) else {
            return Err(not_found("subscription", name));
        };
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute(
                    "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                )
                .db()?;
            if n == 0 {
                return Err(not_found("subscription", name));
            }
            Ok(())
        })
        .await
    }

    async fn list_subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name FROM subscriptions WHERE account_id = ?1 \
                     ORDER BY CASE WHEN name = 'INBOX' THEN 0 ELSE 1 END, name",
                )
                .db()?;
            let rows = stmt.query_map([account], |r| r.get(0)).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    // ---- blobs ----

    async fn put_blob(&self, bytes: Arc<Vec<u8>>) -> Result<BlobId> {
        let blobs = Arc::clone(&self.blobs);
        tokio::task::spawn_blocking(move || blobs.write(&bytes))
            .await
            .map_err(|e| StoreError::Database(format!("blob write task failed: {e}")))?
            .map_err(StoreError::Io)
    }

    async fn read_blob(&self, blob: &BlobId) -> Result<Vec<u8>> {
        let missing_or_io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobMissing(blob.to_string()),
            _ => StoreError::Io(e),
        };
        // Opening a file and reading a small one from the page cache takes microseconds, less
        // than handing the job to another thread and back; large ones go to the blocking pool.
        let (file, len) = self.blobs.open_blob(blob).map_err(missing_or_io)?;
        if len <= INLINE_BLOB_READ {
            return crate::blob::read_open(file, len).map_err(missing_or_io);
        }
        tokio::task::spawn_blocking(move || crate::blob::read_open(file, len))
            .await
            .map_err(|e| StoreError::Database(format!("blob read task failed: {e}")))?
            .map_err(missing_or_io)
    }

    async fn blob_info(&self, blobs: &[BlobId]) -> Result<Vec<Option<Vec<u8>>>> {
        if blobs.is_empty() {
            return Ok(Vec::new());
        }
        let blobs = blobs.to_vec();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT info FROM blobs WHERE hash = ?1").db()?;
            let mut out = Vec::with_capacity(blobs.len());
            for blob in &blobs {
                let info: Option<Option<Vec<u8>>> =
                    stmt.query_row([blob.hex()], |r| r.get(0)).optional().db()?;
                out.push(info.flatten());
            }
            Ok(out)
        })
        .await
    }

    async fn set_blob_infos(&self, mut infos: Vec<(BlobId, Vec<u8>)>) -> Result<()> {
        infos.retain(|(_, info)| keepable(info));
        if infos.is_empty() {
            return Ok(());
        }
        // An ordinary write job, so it shares its group's fsync, and "returned" means "visible
        // to blob_info".
        self.write(move |ctx| {
            for (blob, info) in &infos {
                set_info(ctx.conn, blob, info)?;
            }
            Ok(())
        })
        .await
    }

    // ---- messages ----

    async fn deliver(&self, mut batch: DeliveryBatch) -> Result<DeliveryOutcome> {
        batch.info = batch.info.filter(|info| keepable(info));
        self.write(move |ctx| deliver_in(ctx, &batch)).await
    }

    async fn append(&self, account: AccountId, mailbox: MailboxId, mut msg: NewMessage) -> Result<Appended> {
        let keywords = normalize_keywords(&msg.keywords)?;
        msg.info = msg.info.filter(|info| keepable(info));
        self.write(move |ctx| {
            require_mailbox(ctx.conn, account, mailbox)?;
            let Some(quota) = quota_state(ctx.conn, account)? else {
                return Err(not_found("account", account));
            };
            if !quota.fits(msg.size, 1) {
                return Err(StoreError::OverQuota);
            }
            let insert = MessageInsert {
                blob: &msg.blob,
                size: msg.size,
                internal_date: msg.internal_date,
                flags: msg.flags,
                keywords: &keywords,
            };
            let appended = insert_message(ctx, account, mailbox, &insert)?;
            if let Some(info) = &msg.info {
                set_info(ctx.conn, &msg.blob, info)?;
            }
            Ok(appended)
        })
        .await
    }

    async fn list_messages(&self, account: AccountId, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.read_large(move |conn| {
            require_mailbox(conn, account, mailbox)?;
            let mut stmt = conn.prepare_cached(&sql_list_messages()).db()?;
            let rows = stmt.query_map([mailbox], message_from_row).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    async fn store_flags(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
    ) -> Result<Vec<MessageMeta>> {
        Ok(self.store_flags_if(account, mailbox, uids, op, None).await?.changed)
    }

    async fn store_flags_if(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<FlagsStored> {
        let op_keywords = normalize_keywords(&op.keywords)?;
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.write(move |ctx| {
            let conn = ctx.conn;
            let mb = require_mailbox(conn, account, mailbox)?;
            let mut select = conn.prepare_cached(&sql_message_by_uid()).db()?;
            let mut update = conn
                .prepare_cached(
                    "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 \
                     WHERE mailbox_id = ?4 AND uid = ?5",
                )
                .db()?;
            let mut modseq = mb.highestmodseq;
            let mut out = FlagsStored::default();
            for uid in uids {
                let Some(mut msg) =
                    select.query_row(params![mailbox, uid], message_from_row).optional().db()?
                else {
                    continue;
                };
                // RFC 7162 section 3.1.3: a message changed after UNCHANGEDSINCE is left alone.
                if unchanged_since.is_some_and(|limit| msg.modseq > limit) {
                    out.modified.push(uid);
                    continue;
                }
                let (flags, keywords) = apply_flag_op(&op, &op_keywords, msg.flags, &msg.keywords);
                if flags == msg.flags && keywords == msg.keywords {
                    continue;
                }
                // Each changed message gets its own MODSEQ (RFC 7162 allows sharing, but
                // distinct values keep CHANGEDSINCE exact).
                modseq += 1;
                update
                    .execute(params![flags.0, keywords.join(" "), to_i64(modseq, "modseq")?, mailbox, uid])
                    .db()?;
                msg.flags = flags;
                msg.keywords = keywords;
                msg.modseq = modseq;
                ctx.event(account, ChangeEvent::FlagsChanged { mailbox, uid, modseq });
                out.changed.push(msg);
            }
            if modseq != mb.highestmodseq {
                conn.execute(
                    "UPDATE mailboxes SET highestmodseq = ?1 WHERE id = ?2",
                    params![to_i64(modseq, "modseq")?, mailbox],
                )
                .db()?;
            }
            Ok(out)
        })
        .await
    }

    async fn changes_since(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges> {
        let since_sql = to_i64(since, "modseq")?;
        self.read(move |conn| {
            let mb = require_mailbox(conn, account, mailbox)?;
            let (changed, vanished) = if since == 0 {
                let mut stmt = conn.prepare_cached(&sql_list_messages()).db()?;
                let rows = stmt.query_map([mailbox], message_from_row).db()?;
                (rows.collect::<rusqlite::Result<Vec<_>>>().db()?, Vec::new())
            } else {
                let mut stmt = conn.prepare_cached(&sql_messages_changed_since()).db()?;
                let rows = stmt.query_map(params![mailbox, since_sql], message_from_row).db()?;
                let mut changed = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
                changed.sort_unstable_by_key(|m| m.uid);
                let mut stmt = conn.prepare_cached(SQL_EXPUNGED_SINCE).db()?;
                let rows = stmt.query_map(params![mailbox, since_sql], |r| r.get::<_, Uid>(0)).db()?;
                let mut vanished = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
                vanished.sort_unstable();
                (changed, vanished)
            };
            Ok(MailboxChanges {
                uidvalidity: mb.uidvalidity,
                uidnext: mb.uidnext,
                highestmodseq: mb.highestmodseq,
                changed,
                vanished,
            })
        })
        .await
    }

    async fn expunge(&self, account: AccountId, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.write(move |ctx| {
            let conn = ctx.conn;
            require_mailbox(conn, account, mailbox)?;
            // Prepared once; each UID is then one primary-key lookup inside this transaction.
            let mut delete = conn
                .prepare_cached(
                    "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING blob, size",
                )
                .db()?;
            let mut removed = Vec::new();
            let mut bytes = 0u64;
            for uid in uids {
                let deleted: Option<(BlobId, u64)> = delete
                    .query_row(params![mailbox, uid], |r| Ok((get_blob(r, 0)?, get_u64(r, 1)?)))
                    .optional()
                    .db()?;
                if let Some((blob, size)) = deleted {
                    release_blob(ctx, &blob)?;
                    bytes = bytes.saturating_add(size);
                    removed.push(uid);
                }
            }
            if !removed.is_empty() {
                let count = removed.len() as i64;
                let modseq: i64 = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1, \
                         message_count = CASE WHEN message_count > ?1 \
                         THEN message_count - ?1 ELSE 0 END WHERE id = ?2 RETURNING highestmodseq",
                    )
                    .db()?
                    .query_row(params![count, mailbox], |r| r.get(0))
                    .db()?;
                let mut tombstone = ctx.conn.prepare_cached(SQL_INSERT_TOMBSTONE).db()?;
                for &uid in &removed {
                    tombstone.execute(params![mailbox, uid, modseq]).db()?;
                }
                release_usage(ctx.conn, account, bytes, removed.len() as u64)?;
                ctx.event(account, ChangeEvent::Expunged { mailbox, uids: removed.clone() });
            }
            Ok(removed)
        })
        .await
    }

    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.write(move |ctx| transfer_messages(ctx, account, from, &uids, to, false)).await
    }

    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        if from == to {
            return Err(StoreError::Invalid {
                what: "move",
                detail: "source and target are the same mailbox".into(),
            });
        }
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.write(move |ctx| transfer_messages(ctx, account, from, &uids, to, true)).await
    }

    // ---- quotas ----

    async fn quota(&self, account: AccountId) -> Result<QuotaUsage> {
        self.read(move |conn| {
            let q = quota_state(conn, account)?.ok_or_else(|| not_found("account", account))?;
            Ok(QuotaUsage {
                used_bytes: q.used_bytes,
                used_messages: q.used_messages,
                limit_bytes: q.bytes,
                limit_messages: q.messages,
            })
        })
        .await
    }

    async fn set_quota_limits(
        &self,
        account: AccountId,
        bytes: Option<u64>,
        messages: Option<u64>,
    ) -> Result<()> {
        let bytes = bytes.map(|q| to_i64(q, "quota")).transpose()?;
        let messages = messages.map(|q| to_i64(q, "quota")).transpose()?;
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute(
                    "UPDATE accounts SET quota_bytes = ?1, quota_messages = ?2 WHERE id = ?3",
                    params![bytes, messages, account],
                )
                .db()?;
            if n == 0 {
                return Err(not_found("account", account));
            }
            Ok(())
        })
        .await
    }

    // ---- annotations ----

    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.read(move |conn| {
            let rows =
                |owner: AccountId, mailbox: MailboxId, prefix: &str| -> Result<Vec<(String, Vec<u8>)>> {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT entry, value FROM metadata WHERE owner = ?1 AND mailbox_id = ?2 \
                         AND substr(entry, 1, length(?3)) = ?3",
                        )
                        .db()?;
                    let rows = stmt
                        .query_map(params![owner, mailbox, prefix], |r| Ok((r.get(0)?, r.get(1)?)))
                        .db()?;
                    rows.collect::<rusqlite::Result<_>>().db()
                };
            let mut out = match mailbox {
                Some(id) => {
                    require_mailbox(conn, account, id)?;
                    rows(account, id, "/")?
                }
                None => {
                    let mut all = rows(account, SERVER_ENTRY, PRIVATE_PREFIX)?;
                    all.extend(rows(SHARED_OWNER, SERVER_ENTRY, SHARED_PREFIX)?);
                    all
                }
            };
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        changes: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()> {
        let mut keyed = Vec::with_capacity(changes.len());
        for (entry, value) in changes {
            let entry = entry.to_ascii_lowercase();
            let owner = if entry.starts_with(PRIVATE_PREFIX) || mailbox.is_some() {
                account
            } else if entry.starts_with(SHARED_PREFIX) {
                SHARED_OWNER
            } else {
                return Err(StoreError::Invalid { what: "metadata entry", detail: entry });
            };
            if !entry.starts_with(PRIVATE_PREFIX) && !entry.starts_with(SHARED_PREFIX) {
                return Err(StoreError::Invalid { what: "metadata entry", detail: entry });
            }
            keyed.push((owner, entry, value));
        }
        self.write(move |ctx| {
            let conn = ctx.conn;
            let target = match mailbox {
                Some(id) => require_mailbox(conn, account, id)?.id,
                None => SERVER_ENTRY,
            };
            let mut upsert = conn
                .prepare_cached(
                    "INSERT INTO metadata (owner, mailbox_id, entry, value) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (owner, mailbox_id, entry) DO UPDATE SET value = excluded.value",
                )
                .db()?;
            let mut delete = conn
                .prepare_cached("DELETE FROM metadata WHERE owner = ?1 AND mailbox_id = ?2 AND entry = ?3")
                .db()?;
            let mut owners = Vec::new();
            for (owner, entry, value) in &keyed {
                match value {
                    Some(v) => upsert.execute(params![owner, target, entry, v]).db()?,
                    None => delete.execute(params![owner, target, entry]).db()?,
                };
                if !owners.contains(owner) {
                    owners.push(*owner);
                }
            }
            let mut count = conn
                .prepare_cached("SELECT COUNT(*) FROM metadata WHERE owner = ?1 AND mailbox_id = ?2")
                .db()?;
            for owner in owners {
                let n: i64 = count.query_row(params![owner, target], |r| r.get(0)).db()?;
                if usize::try_from(n).unwrap_or(usize::MAX) > max_entries {
                    // The job's savepoint rolls everything back.
                    return Err(StoreError::Invalid {
                        what: "metadata entries",
                        detail: format!("more than {max_entries}"),
                    });
                }
            }
            if let Some(id) = mailbox
                && !keyed.is_empty()
            {
                conn.prepare_cached("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1")
                    .db()?
                    .execute([id])
                    .db()?;
            }
            Ok(())
        })
        .await
    }

    // ---- outbound queue ----

    async fn enqueue(&self, entry: NewQueueEntry) -> Result<QueueId> {
        self.write(move |ctx| insert_queue_entry(ctx, &entry)).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        self.read_large(|conn| {
            let ids: Vec<String> = {
                let mut stmt = conn.prepare_cached("SELECT id FROM queue ORDER BY created, id").db()?;
                let rows = stmt.query_map([], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<_>>().db()?
            };
            let mut entries = Vec::with_capacity(ids.len());
            for id in ids {
                // Same snapshot, so the entry cannot have vanished.
                if let Some(entry) = queue_entry_in(conn, &id)? {
                    entries.push(entry);
                }
            }
            Ok(entries)
        })
        .await
    }

    async fn queue_get(&self, id: &str) -> Result<Option<QueueEntry>> {
        let id = id.to_string();
        self.read(move |conn| queue_entry_in(conn, &id)).await
    }

    async fn queue_delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |ctx| {
            let blob: Option<BlobId> = ctx
                .conn
                .query_row("DELETE FROM queue WHERE id = ?1 RETURNING blob", [&id], |r| get_blob(r, 0))
                .optional()
                .db()?;
            let Some(blob) = blob else {
                return Err(not_found("queue entry", id));
            };
            release_blob(ctx, &blob)
        })
        .await
    }

    async fn queue_claim(&self, now: i64, limit: usize, lease_until: i64) -> Result<Vec<QueueClaim>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The runner polls every second: look on a reader first, so that an idle queue costs
        // no write transaction.
        let any_due = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT 1 FROM queue WHERE next_attempt <= ?1 AND lease_until <= ?1 LIMIT 1",
                )
                .db()?
                .exists([now])
                .db()
            })
            .await?;
        if !any_due {
            return Ok(Vec::new());
        }
        self.write(move |ctx| {
            let ids: Vec<String> = {
                let mut stmt = ctx
                    .conn
                    .prepare_cached(
                        "SELECT id FROM queue WHERE next_attempt <= ?1 AND lease_until <= ?1 \
                         ORDER BY next_attempt, id LIMIT ?2",
                    )
                    .db()?;
                let rows = stmt.query_map(params![now, limit], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<_>>().db()?
            };
            let mut claims = Vec::with_capacity(ids.len());
            for id in ids {
                let token = new_lease_token();
                ctx.conn
                    .prepare_cached("UPDATE queue SET lease_token = ?2, lease_until = ?3 WHERE id = ?1")
                    .db()?
                    .execute(params![id, token, lease_until])
                    .db()?;
                if let Some(entry) = queue_entry_in(ctx.conn, &id)? {
                    claims.push(QueueClaim { entry, token, lease_until });
                }
            }
            Ok(claims)
        })
        .await
    }

    async fn queue_renew(&self, id: &str, token: &str, lease_until: i64) -> Result<()> {
        let (id, token) = (id.to_string(), token.to_string());
        self.write(move |ctx| {
            let updated = ctx
                .conn
                .prepare_cached("UPDATE queue SET lease_until = ?3 WHERE id = ?1 AND lease_token = ?2")
                .db()?
                .execute(params![id, token, lease_until])
                .db()?;
            if updated == 0 {
                return Err(not_found("queue lease", id));
            }
            Ok(())
        })
        .await
    }

    async fn queue_update(&self, id: &str, token: &str, update: QueueUpdate) -> Result<QueueUpdated> {
        let (id, token) = (id.to_string(), token.to_string());
        self.write(move |ctx| {
            let row: Option<(Option<String>, BlobId)> = ctx
                .conn
                .prepare_cached("SELECT lease_token, blob FROM queue WHERE id = ?1")
                .db()?
                .query_row([&id], |r| Ok((r.get(0)?, get_blob(r, 1)?)))
                .optional()
                .db()?;
            let Some((lease, blob)) = row else {
                return Err(not_found("queue entry", id));
            };
            if lease.as_deref() != Some(token.as_str()) {
                return Err(not_found("queue lease", id));
            }
            let mut set = ctx
                .conn
                .prepare_cached(
                    "UPDATE queue_recipients SET status = ?3, last_reply = ?4 \
                     WHERE queue_id = ?1 AND address = ?2",
                )
                .db()?;
            for o in &update.outcomes {
                let changed = set.execute(params![id, o.address, o.status.as_str(), o.last_reply]).db()?;
                if changed == 0 {
                    return Err(StoreError::Invalid {
                        what: "queue update",
                        detail: format!("{:?} is not a recipient of queue entry {id}", o.address),
                    });
                }
            }
            drop(set);
            let notification = match &update.notification {
                Some(batch) => Some(deliver_in(ctx, batch)?),
                None => None,
            };
            let pending: i64 = ctx
                .conn
                .prepare_cached("SELECT COUNT(*) FROM queue_recipients WHERE queue_id = ?1 AND status = ?2")
                .db()?
                .query_row(params![id, RecipientStatus::Pending.as_str()], |r| r.get(0))
                .db()?;
            let completed = pending == 0;
            if completed {
                // The recipients go with the entry (ON DELETE CASCADE).
                ctx.conn.prepare_cached("DELETE FROM queue WHERE id = ?1").db()?.execute([&id]).db()?;
                release_blob(ctx, &blob)?;
            } else {
                ctx.conn
                    .prepare_cached(
                        "UPDATE queue SET attempts = ?2, next_attempt = ?3, lease_token = NULL, \
                         lease_until = 0 WHERE id = ?1",
                    )
                    .db()?
                    .execute(params![id, update.attempts, update.next_attempt])
                    .db()?;
            }
            Ok(QueueUpdated { completed, notification })
        })
        .await
    }

    async fn queue_flush(&self, id: Option<&str>) -> Result<usize> {
        let id = id.map(str::to_string);
        self.write(move |ctx| {
            let now = now();
            match id {
                Some(id) => {
                    let updated = ctx
                        .conn
                        .prepare_cached("UPDATE queue SET next_attempt = MIN(next_attempt, ?2) WHERE id = ?1")
                        .db()?
                        .execute(params![id, now])
                        .db()?;
                    if updated == 0 {
                        return Err(not_found("queue entry", id));
                    }
                    Ok(updated)
                }
                None => ctx
                    .conn
                    .prepare_cached("UPDATE queue SET next_attempt = ?1 WHERE next_attempt > ?1")
                    .db()?
                    .execute([now])
                    .db(),
            }
        })
        .await
    }

    // ---- maintenance ----

    async fn check(&self, grace: Duration) -> Result<crate::CheckReport> {
        check::check(self, grace).await
    }

    // ---- web (SQL in `web.rs`) ----

    async fn create_web_session(&self, session: WebSession) -> Result<()> {
        self.web_create_session(session).await
    }

    async fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>> {
        self.web_get_session(id_hash).await
    }

    async fn touch_web_session(&self, id_hash: &str, last_seen: i64) -> Result<()> {
        self.web_touch_session(id_hash, last_seen).await
    }

    async fn delete_web_session(&self, id_hash: &str) -> Result<()> {
        self.web_delete_session(id_hash).await
    }

    async fn delete_web_sessions(&self, account: AccountId, except: Option<&str>) -> Result<()> {
        self.web_delete_sessions(account, except).await
    }

    async fn create_app_password(&self, new: NewAppPassword) -> Result<AppPassword> {
        self.web_create_app_password(new).await
    }

    async fn list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>> {
        self.web_list_app_passwords(account).await
    }

    async fn app_password(&self, account: AccountId, lookup: &str) -> Result<Option<AppPassword>> {
        self.web_app_password(account, lookup).await
    }

    async fn app_password_used(&self, id: i64, at: i64) -> Result<()> {
        self.web_app_password_used(id, at).await
    }

    async fn delete_app_password(&self, account: AccountId, id: i64) -> Result<()> {
        self.web_delete_app_password(account, id).await
    }

    async fn set_recovery_address(&self, account: AccountId, address: Option<&str>) -> Result<()> {
        self.web_set_recovery_address(account, address).await
    }

    async fn recovery_address(&self, account: AccountId) -> Result<Option<String>> {
        self.web_recovery_address(account).await
    }

    async fn create_reset_token(&self, account: AccountId, token_hash: &str, expires: i64) -> Result<()> {
        self.web_create_reset_token(account, token_hash, expires).await
    }

    async fn reset_token_account(&self, token_hash: &str, now: i64) -> Result<Option<AccountId>> {
        self.web_reset_token_account(token_hash, now).await
    }

    async fn reset_password_with_token(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Account>> {
        self.web_reset_password_with_token(token_hash, password_hash, now).await
    }

    async fn create_api_token(&self, token: ApiToken) -> Result<()> {
        self.web_create_api_token(token).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.web_list_api_tokens().await
    }

    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.web_api_token_by_hash(hash).await
    }

    async fn api_token_used(&self, id: &str, at: i64) -> Result<()> {
        self.web_api_token_used(id, at).await
    }

    async fn delete_api_token(&self, id: &str) -> Result<()> {
        self.web_delete_api_token(id).await
    }

    fn events(&self) -> &EventBus {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use super::*;

    fn open_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        (dir, store)
    }

    /// Queues a job that holds the writer until the returned sender is used (or dropped), so
    /// that everything queued meanwhile lands in the next group.
    fn hold_writer(store: &SqliteStore) -> (mpsc::Sender<()>, oneshot::Receiver<Result<()>>) {
        let (release, gate) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let held = store
            .submit(move |_ctx| {
                let _ = started_tx.send(());
                let _ = gate.recv();
                Ok(())
            })
            .expect("submit");
        // Only once the writer runs it is the held job alone in its group.
        started.recv_timeout(Duration::from_secs(10)).expect("writer picked up the held job");
        (release, held)
    }

    async fn refcount(store: &SqliteStore, blob: &BlobId) -> Option<i64> {
        let hash = blob.to_string();
        store
            .read(move |conn| {
                conn.query_row("SELECT refcount FROM blobs WHERE hash = ?1", [hash], |r| r.get(0))
                    .optional()
                    .db()
            })
            .await
            .expect("read refcount")
    }

    #[tokio::test]
    async fn queued_jobs_share_one_commit_and_fail_alone() {
        let (_dir, store) = open_store();
        let (release, held) = hold_writer(&store);
        let mut replies = Vec::new();
        for i in 0..50 {
            replies.push(
                store
                    .submit(move |ctx| {
                        ctx.conn
                            .execute(
                                "INSERT INTO domains (name, created) VALUES (?1, 0)",
                                [format!("d{i}.example")],
                            )
                            .db()?;
                        if i % 10 == 3 {
                            return Err(StoreError::Invalid { what: "test", detail: "fails".into() });
                        }
                        Ok(i)
                    })
                    .expect("submit"),
            );
        }
        let panics = store
            .submit(|ctx| -> Result<()> {
                ctx.conn.execute("INSERT INTO domains (name, created) VALUES ('p.example', 0)", []).db()?;
                panic!("test panic inside a write job");
            })
            .expect("submit");
        let after = store.submit(|_ctx| Ok("after")).expect("submit");
        release.send(()).expect("release");

        held.await.expect("reply").expect("held job");
        for (i, reply) in replies.into_iter().enumerate() {
            match reply.await.expect("reply") {
                Ok(n) => assert_eq!(n, i),
                Err(StoreError::Invalid { .. }) => assert_eq!(i % 10, 3),
                Err(e) => panic!("job {i}: {e}"),
            }
        }
        assert!(matches!(panics.await.expect("reply"), Err(StoreError::Database(_))));
        assert_eq!(after.await.expect("reply").expect("after"), "after");

        let domains = store.list_domains().await.expect("list");
        assert_eq!(domains.len(), 45, "failed and panicked jobs rolled back alone: {domains:?}");
        assert!(!domains.iter().any(|d| d == "d3.example" || d == "p.example"));
        // The held job alone, then everything queued behind it in one transaction.
        assert_eq!(store.write_stats(), WriteStats { jobs: 53, groups: 2 });
    }

    #[tokio::test]
    async fn blob_freed_and_referenced_again_in_one_group_is_kept() {
        let (dir, store) = open_store();
        store.add_domain("example.org").await.expect("domain");
        let new = NewAccount {
            address: "a@example.org".into(),
            password_hash: String::new(),
            quota: None,
            admin: false,
        };
        let account = store.create_account(new).await.expect("account");
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.expect("get").expect("inbox");
        let body = b"Subject: x\r\n\r\nbody\r\n".to_vec();
        let blob = store.put_blob(Arc::new(body.clone())).await.expect("put");
        let msg = NewMessage {
            blob: blob.clone(),
            size: body.len() as u64,
            internal_date: 0,
            flags: Flags::NONE,
            keywords: Vec::new(),
            info: None,
        };
        store.append(account.id, inbox.id, msg.clone()).await.expect("append");

        let (release, held) = hold_writer(&store);
        // Polled once, each call has queued its job and waits for the reply.
        let mut expunge = store.expunge(account.id, inbox.id, &[1]);
        let mut append = store.append(account.id, inbox.id, msg);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(expunge.as_mut().poll(&mut cx).is_pending());
        assert!(append.as_mut().poll(&mut cx).is_pending());
        release.send(()).expect("release");
        held.await.expect("reply").expect("held");
        assert_eq!(expunge.await.expect("expunge"), [1]);
        assert_eq!(append.await.expect("append").uid, 2);

        // domain, account, append, the held job, then expunge + append together.
        assert_eq!(store.write_stats(), WriteStats { jobs: 6, groups: 5 });
        assert_eq!(refcount(&store, &blob).await, Some(1));
        assert!(BlobDir::open(dir.path()).expect("blobs").exists(&blob).expect("exists"));
        assert_eq!(store.read_blob(&blob).await.expect("read"), body);
    }

    /// The query plan of `sql` with every parameter NULL, one line per step.
    fn query_plan(conn: &Connection, sql: &str) -> Result<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).db()?;
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).db()?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>().db()?.join("; "))
    }

    #[tokio::test]
    async fn message_queries_use_the_primary_key() {
        let (_dir, store) = open_store();
        let [list, by_uid, aggregates] = store
            .read(|conn| {
                Ok([
                    query_plan(conn, &sql_list_messages())?,
                    query_plan(conn, &sql_message_by_uid())?,
                    query_plan(conn, SQL_MAILBOX_AGGREGATES)?,
                ])
            })
            .await
            .expect("plans");
        // A range scan of the clustered key, already in UID order (no sorting step).
        assert_eq!(list, "SEARCH messages USING PRIMARY KEY (mailbox_id=?)");
        assert_eq!(by_uid, "SEARCH messages USING PRIMARY KEY (mailbox_id=? AND uid=?)");
        assert_eq!(aggregates, "SEARCH messages USING PRIMARY KEY (mailbox_id=?)");
    }

    /// "What changed since MODSEQ n" reads index ranges, never the whole mailbox.
    #[tokio::test]
    async fn change_queries_use_the_modseq_indexes() {
        let (_dir, store) = open_store();
        let [changed, expunged] = store
            .read(|conn| {
                Ok([query_plan(conn, &sql_messages_changed_since())?, query_plan(conn, SQL_EXPUNGED_SINCE)?])
            })
            .await
            .expect("plans");
        assert_eq!(changed, "SEARCH messages USING INDEX messages_modseq (mailbox_id=? AND modseq>?)");
        assert_eq!(
            expunged,
            "SEARCH expunged USING COVERING INDEX expunged_modseq (mailbox_id=? AND modseq>?)"
        );
    }

    /// Operations on large UID sets are one write job (one transaction) each, however many
    /// UIDs they touch.
    #[tokio::test]
    async fn large_uid_sets_take_one_write_job() {
        let (_dir, store) = open_store();
        store.add_domain("example.org").await.expect("domain");
        let new = NewAccount {
            address: "a@example.org".into(),
            password_hash: String::new(),
            quota: None,
            admin: false,
        };
        let account = store.create_account(new).await.expect("account");
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.expect("get").expect("inbox");
        let archive = store.mailbox_by_name(account.id, "Archive").await.expect("get").expect("archive");
        let body = Arc::new(b"Subject: many\r\n\r\nbody\r\n".to_vec());
        let size = body.len() as u64;
        let blob = store.put_blob(body).await.expect("put");
        let msg =
            NewMessage { blob, size, internal_date: 0, flags: Flags::NONE, keywords: Vec::new(), info: None };
        store.append(account.id, inbox.id, msg).await.expect("append");
        for _ in 0..14 {
            let uids: Vec<Uid> = store
                .list_messages(account.id, inbox.id)
                .await
                .expect("list")
                .iter()
                .map(|m| m.uid)
                .collect();
            store.copy_messages(account.id, inbox.id, &uids, inbox.id).await.expect("copy");
        }
        let uids: Vec<Uid> =
            store.list_messages(account.id, inbox.id).await.expect("list").iter().map(|m| m.uid).collect();
        assert_eq!(uids.len(), 1 << 14);
        let (some, rest) = uids.split_at(10_000);

        let jobs = || store.write_stats().jobs;
        let before = jobs();
        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: Vec::new() };
        assert_eq!(store.store_flags(account.id, inbox.id, some, op).await.expect("store").len(), 10_000);
        assert_eq!(jobs(), before + 1);
        assert_eq!(
            store.copy_messages(account.id, inbox.id, some, archive.id).await.expect("copy").mapping.len(),
            10_000
        );
        assert_eq!(jobs(), before + 2);
        assert_eq!(store.expunge(account.id, inbox.id, some).await.expect("expunge").len(), 10_000);
        assert_eq!(jobs(), before + 3);
        assert_eq!(
            store.move_messages(account.id, inbox.id, rest, archive.id).await.expect("move").mapping.len(),
            rest.len()
        );
        assert_eq!(jobs(), before + 4);
    }

    #[test]
    fn addresses_are_normalized_and_validated() {
        assert_eq!(
            normalize_address("Alice@Example.ORG", false).expect("valid"),
            ("alice@example.org".to_string(), "example.org".to_string())
        );
        assert_eq!(normalize_address("@Example.org", true).expect("catch-all").0, "@example.org");
        for bad in ["alice", "a@b@c", "@example.org", "a b@example.org", "a@", "a\n@x.org", ""] {
            assert!(matches!(normalize_address(bad, false), Err(StoreError::Invalid { .. })), "{bad:?}");
        }
        assert!(normalize_address("a@", true).is_err());
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(normalize_mailbox_name("inBox").expect("inbox"), "INBOX");
        assert_eq!(normalize_mailbox_name("Inbox/Sub").expect("sub"), "Inbox/Sub");
        assert!(normalize_mailbox_name("").is_err());
        assert!(normalize_mailbox_name("a\0b").is_err());
    }

    #[test]
    fn keywords_sorted_and_checked() {
        let kw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(normalize_keywords(&kw(&["b", "a", "b"])).expect("ok"), kw(&["a", "b"]));
        assert!(normalize_keywords(&kw(&["a b"])).is_err());
        assert!(normalize_keywords(&kw(&["\\Seen"])).is_err());
        assert!(normalize_keywords(&kw(&[""])).is_err());
    }

    #[test]
    fn flag_ops() {
        let kw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let op = |mode, flags, k: &[&str]| FlagOp { mode, flags, keywords: kw(k) };
        let cur_flags = Flags::SEEN;
        let cur_kw = kw(&["$label1"]);

        let add = op(FlagMode::Add, Flags::FLAGGED, &["$junk", "$label1"]);
        assert_eq!(
            apply_flag_op(&add, &add.keywords, cur_flags, &cur_kw),
            (Flags::SEEN.union(Flags::FLAGGED), kw(&["$junk", "$label1"]))
        );
        let remove = op(FlagMode::Remove, Flags::SEEN, &["$label1"]);
        assert_eq!(apply_flag_op(&remove, &remove.keywords, cur_flags, &cur_kw), (Flags::NONE, kw(&[])));
        let replace = op(FlagMode::Replace, Flags::DRAFT, &[]);
        assert_eq!(apply_flag_op(&replace, &replace.keywords, cur_flags, &cur_kw), (Flags::DRAFT, kw(&[])));
    }

    #[test]
    fn queue_ids_are_unique_and_sortable() {
        let a = new_queue_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_queue_id();
        assert!(a < b, "{a} < {b}");
        assert!(a.len() >= 16);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }
}
