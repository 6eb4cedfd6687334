//! The SQLite schema, its migrations, and how connections are configured.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{BUSY_TIMEOUT, DbResult, db_context};
use crate::{Result, StoreError};

/// Schema migrations; entry `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// Booleans are INTEGER 0/1 (BOOLEAN in PostgreSQL); times are unix seconds. Messages and
/// mailboxes are deliberately not `ON DELETE CASCADE`: deleting them must release blob
/// references, so the code deletes them explicitly and a forgotten path fails loudly.
const SCHEMA_V1: &str = "
CREATE TABLE domains (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL
);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL REFERENCES domains (name),
    password_hash TEXT NOT NULL,
    quota_bytes INTEGER,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    used_messages INTEGER NOT NULL DEFAULT 0,
    imap INTEGER NOT NULL DEFAULT 1,
    pop3 INTEGER NOT NULL DEFAULT 1,
    admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE INDEX accounts_domain ON accounts (domain);
CREATE TABLE aliases (
    alias TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain TEXT NOT NULL REFERENCES domains (name)
);
CREATE INDEX aliases_account ON aliases (account_id);
CREATE INDEX aliases_domain ON aliases (domain);
CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    special_use TEXT,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    subscribed INTEGER NOT NULL DEFAULT 1,
    message_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL
);
CREATE TABLE messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    uid INTEGER NOT NULL,
    blob TEXT NOT NULL REFERENCES blobs (hash),
    size INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL DEFAULT '',
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages (blob);
CREATE TABLE queue (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    blob TEXT NOT NULL REFERENCES blobs (hash),
    size INTEGER NOT NULL,
    envid TEXT,
    ret TEXT,
    smtputf8 INTEGER NOT NULL,
    body_8bit INTEGER NOT NULL,
    created INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX queue_blob ON queue (blob);
CREATE INDEX queue_created ON queue (created);
CREATE TABLE queue_recipients (
    queue_id TEXT NOT NULL REFERENCES queue (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    notify TEXT,
    orcpt TEXT,
    status TEXT NOT NULL,
    last_reply TEXT,
    PRIMARY KEY (queue_id, position)
);
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

pub(super) fn open_connection(path: &Path, reader: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !reader {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| db_context(&format!("cannot open {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    // Room for every statement the store prepares, so none is re-parsed on a hot path.
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", "ON").db()?;
    // Acknowledged means durable: every commit fsyncs the WAL.
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    if reader {
        // Readers are opened read-write (a read-only connection cannot always set up the WAL
        // index) but refuse to write.
        conn.pragma_update(None, "query_only", "ON").db()?;
    }
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    // IMMEDIATE: two processes opening a fresh directory at once must not both migrate.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").db()?;
    let current: i64 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0)).db()?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "database schema version {current} is newer than this program supports ({})",
            MIGRATIONS.len()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)
            .map_err(|e| db_context(&format!("schema migration to version {}", version + 1), e))?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [version as i64 + 1]).db()?;
    }
    tx.commit().db()
}
