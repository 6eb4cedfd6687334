//! The SQLite schema, its migrations, and how connections are configured.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{BUSY_TIMEOUT, DbResult, db_context};
use crate::{Result, StoreError};

/// Schema migrations; entry `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_IMAP_EXT, SCHEMA_DKIM, SCHEMA_QUEUE, SCHEMA_WEB];

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

/// Version 2, for IMAP:
/// - `subscriptions`: subscribed names per account, independent of mailboxes (RFC 9051 6.3.7:
///   a subscription outlives its mailbox). Replaces `mailboxes.subscribed`; every mailbox was
///   subscribed in version 1, and those subscriptions are kept. Cascading is fine here (no blob
///   references hang off it).
/// - `mailboxes.recent_uid`: the lowest UID no session has claimed as `\Recent`. 1 for existing
///   mailboxes: no session ever claimed anything in version 1.
/// - `blobs.info`: opaque data derived from the body, cached by the protocol layers; it goes
///   with the row, i.e. with the blob's last reference.
/// - `messages` becomes a `WITHOUT ROWID` table clustered on `(mailbox_id, uid)`: listing a
///   mailbox is then one contiguous range scan instead of an index scan plus a row lookup per
///   message (rows of one mailbox were interleaved with every other delivery), and each
///   per-UID lookup is one B-tree search. Rows are small (a hash, a few integers, usually few keywords), as that layout wants.
///   Nothing references `messages`, so it is rebuilt the documented way (create, copy, drop,
///   rename). PostgreSQL gets the same access path from the primary key index.
const SCHEMA_V2: &str = "
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;
ALTER TABLE mailboxes DROP COLUMN subscribed;
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
ALTER TABLE blobs ADD COLUMN info BLOB;
CREATE TABLE messages_v2 (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    uid INTEGER NOT NULL,
    blob TEXT NOT NULL REFERENCES blobs (hash),
    size INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL DEFAULT '',
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO messages_v2 (mailbox_id, uid, blob, size, internal_date, flags, keywords, modseq)
    SELECT mailbox_id, uid, blob, size, internal_date, flags, keywords, modseq FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_blob ON messages (blob);
";

/// IMAP extensions for fast resynchronisation and big mailboxes:
/// - `messages_modseq`: messages by `(mailbox_id, modseq)`, so that "what changed since MODSEQ
///   n" (CONDSTORE/QRESYNC, RFC 7162, and every session's view sync) is an index range scan
///   instead of a scan of the whole mailbox.
/// - `expunged`: one tombstone `(mailbox_id, uid, modseq)` per message expunged or moved away,
///   with the MODSEQ of that expunge (RFC 7162 section 3.2.7: the server remembers the UIDs
///   of expunged messages with the incremented mod-sequence), so that `VANISHED (EARLIER)`
///   answers exactly. Removed with the mailbox.
/// - `messages.savedate`: when the message was saved into its mailbox (RFC 8514 SAVEDATE);
///   existing rows take their internal date.
/// - `accounts.quota_messages`: a limit on the number of messages (RFC 9208 MESSAGE
///   resource); NULL is unlimited.
/// - `metadata`: IMAP METADATA annotations (RFC 5464), keyed by owner (the account; 0 for the
///   server's shared entries), mailbox (0 for server entries) and lower-case entry name.
///   Removed with the mailbox or the account; renames keep them (the mailbox id stays).
const SCHEMA_IMAP_EXT: &str = "
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
ALTER TABLE messages ADD COLUMN savedate INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET savedate = internal_date;
ALTER TABLE accounts ADD COLUMN quota_messages INTEGER;
CREATE TABLE metadata (
    owner INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,
    entry TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (owner, mailbox_id, entry)
) WITHOUT ROWID;
";

/// DKIM signing keys (RFC 6376), several per local domain (one per algorithm: ed25519 and
/// rsa), each under its own selector. Private keys are PKCS#8 DER; `public_key` is what the
/// `p=` tag publishes. They go with their domain.
const SCHEMA_DKIM: &str = "
CREATE TABLE dkim_keys (
    domain TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
);
";

/// The outbound queue's delivery state:
/// - `queue.lease_token`, `queue.lease_until`: a claim on an entry by one queue runner (of
///   possibly several processes sharing the database), valid until `lease_until` (unix
///   seconds) and renewed while the delivery runs; an expired lease may be taken over, so a
///   crashed process delays its entries by at most one lease period.
/// - `queue_due`: due entries by `next_attempt`, the runner's poll.
const SCHEMA_QUEUE: &str = "
ALTER TABLE queue ADD COLUMN lease_token TEXT;
ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX queue_due ON queue (next_attempt);
";

/// The web pages' state (`postamt-web`); everything cascades with its account (no blob
/// references hang off it):
/// - `web_sessions`: signed-in sessions, keyed by a hash of the cookie value, with the CSRF
///   synchronizer token and an absolute expiry.
/// - `app_passwords`: per-device passwords (argon2id) for IMAP, POP3 and submission, found by
///   their public `lookup` part.
/// - `recovery_addresses`: where password-reset links go.
/// - `reset_tokens`: hashes of single-use password-reset tokens with their expiry.
/// - `api_tokens`: hashes of administration API tokens.
const SCHEMA_WEB: &str = "
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires);
CREATE TABLE app_passwords (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    lookup TEXT NOT NULL,
    hash TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER,
    UNIQUE (account_id, lookup)
);
CREATE TABLE recovery_addresses (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    address TEXT NOT NULL
);
CREATE TABLE reset_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX reset_tokens_account ON reset_tokens (account_id);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    last_used INTEGER
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::sqlite::{DB_FILE, SqliteStore};
    use crate::types::{Flags, MailboxStatus};

    /// A data directory written by version 1: every mailbox had a `subscribed` column (all 1
    /// in practice), messages lived in a rowid table.
    fn write_version_1(dir: &Path) {
        let conn = Connection::open(dir.join(DB_FILE)).expect("open");
        conn.execute_batch(SCHEMA_V1).expect("schema v1");
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version (version) VALUES (1);
             INSERT INTO domains (name, created) VALUES ('example.org', 0);
             INSERT INTO accounts (id, address, domain, password_hash, used_bytes, used_messages,
                 created) VALUES (1, 'a@example.org', 'example.org', '', 300, 2, 0);
             INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity, uidnext,
                 highestmodseq, subscribed, message_count)
                 VALUES (1, 1, 'INBOX', NULL, 100, 3, 5, 1, 2),
                        (2, 1, 'Old', NULL, 101, 1, 1, 0, 0);
             INSERT INTO blobs (hash, size, refcount) VALUES
                 ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 100, 1),
                 ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 200, 1);
             INSERT INTO messages (mailbox_id, uid, blob, size, internal_date, flags, keywords,
                 modseq) VALUES
                 (1, 1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 100, 7, 1,
                  'x y', 3),
                 (1, 2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 200, 8, 8,
                  '', 4);",
        )
        .expect("version 1 data");
    }

    #[tokio::test]
    async fn version_1_data_dirs_are_upgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_version_1(dir.path());
        let store = SqliteStore::open(dir.path()).expect("open and migrate");

        let (version, messages_sql, subscribed_column): (i64, String, i64) = store
            .read(|conn| {
                conn.query_row(
                    "SELECT (SELECT MAX(version) FROM schema_version), \
                     (SELECT sql FROM sqlite_master WHERE name = 'messages'), \
                     (SELECT COUNT(*) FROM pragma_table_info('mailboxes') WHERE name = 'subscribed')",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .db()
            })
            .await
            .expect("schema");
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert!(messages_sql.ends_with("WITHOUT ROWID"), "{messages_sql}");
        assert_eq!(subscribed_column, 0);

        // Subscriptions carried over from the old column.
        assert_eq!(store.list_subscriptions(1).await.expect("subscriptions"), ["INBOX"]);
        let boxes = store.list_mailboxes(1).await.expect("mailboxes");
        assert_eq!(
            boxes.iter().map(|m| (m.name.as_str(), m.subscribed)).collect::<Vec<_>>(),
            [("INBOX", true), ("Old", false)]
        );

        // Messages intact, and usable by everything new.
        let msgs = store.list_messages(1, 1).await.expect("messages");
        assert_eq!(
            msgs.iter().map(|m| (m.uid, m.flags, m.modseq)).collect::<Vec<_>>(),
            [(1, Flags::SEEN, 3), (2, Flags::DELETED, 4)]
        );
        assert_eq!(msgs[0].keywords, ["x", "y"]);
        assert_eq!(
            store.mailbox_status(1, 1).await.expect("status"),
            MailboxStatus {
                messages: 2,
                unseen: 1,
                deleted: 1,
                size: 300,
                uidnext: 3,
                uidvalidity: 100,
                highestmodseq: 5,
                first_unseen_uid: Some(2),
                recent: 2,
            }
        );
        // No session ever claimed anything before the upgrade.
        assert_eq!(store.claim_recent(1, 1).await.expect("claim"), 1);
        let copied = store.copy_messages(1, 1, &[1, 2], 2).await.expect("copy");
        assert_eq!(copied.mapping, [(1, 1), (2, 2)]);
        store.set_blob_infos(vec![(msgs[0].blob.clone(), b"info".to_vec())]).await.expect("set info");
        assert_eq!(store.blob_info(&[msgs[0].blob.clone()]).await.expect("info"), [Some(b"info".to_vec())]);
        drop(store);

        // Opening again does not migrate again.
        let store = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(store.list_messages(1, 2).await.expect("messages").len(), 2);
    }
}
