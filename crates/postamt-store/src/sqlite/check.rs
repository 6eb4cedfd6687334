//! [`Store::check`](crate::Store::check) for the SQLite backend.
//!
//! Three steps, so that the check can run beside a busy server without reporting what is
//! merely in flight:
//! 1. One read snapshot: SQLite's `integrity_check` and `foreign_key_check`, reference counts,
//!    sizes, mailbox counters and quota usage, and the list of recorded blobs. A blob's
//!    references are the rows of every table with a column declared `REFERENCES blobs (hash)`
//!    (found in the schema, so a table added later is counted without changing this file).
//! 2. Without any lock: the blob directory is listed and every recorded blob's file is hashed.
//! 3. Under the write lock (a write job that writes nothing): the files found missing and the
//!    unrecorded files past the grace period are looked at again. Files are only recorded or
//!    unlinked under that lock (see the parent module), so what is still wrong then is wrong,
//!    not a delivery or an expunge that happened between steps 1 and 2.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension};

use super::{DbResult, SqliteStore};
use crate::blob::{BlobDir, ScannedFile};
use crate::check::{CheckReport, MailboxCounter, Problem, UsageCounter};
use crate::types::BlobId;
use crate::{Result, StoreError};

/// A recorded blob, as the snapshot of step 1 saw it.
struct RecordedBlob {
    id: BlobId,
    size: u64,
    references: u64,
}

/// What step 2 could not settle on its own.
#[derive(Default)]
struct Suspects {
    /// Recorded blobs whose file was not found, with their reference counts.
    missing: Vec<(BlobId, u64)>,
    /// Unrecorded blob files older than the grace period, with their age.
    unrecorded: Vec<(BlobId, Duration)>,
}

pub(super) async fn check(store: &SqliteStore, grace: Duration) -> Result<CheckReport> {
    let (mut report, recorded) = store.read(check_database).await?;

    let blobs = Arc::clone(&store.blobs);
    let (files_report, suspects) = tokio::task::spawn_blocking(move || check_files(&blobs, &recorded, grace))
        .await
        .map_err(|e| StoreError::Database(format!("blob check task failed: {e}")))??;
    report.blobs = files_report.blobs;
    report.blob_bytes = files_report.blob_bytes;
    report.recent_unreferenced = files_report.recent_unreferenced;
    report.problems.extend(files_report.problems);

    if !suspects.missing.is_empty() || !suspects.unrecorded.is_empty() {
        let confirmed = store
            .write(move |ctx| {
                let mut problems = Vec::new();
                for (blob, references) in suspects.missing {
                    if is_recorded(ctx.conn, &blob)? && !ctx.blobs.exists(&blob)? {
                        problems.push(Problem::BlobMissing { blob, references });
                    }
                }
                for (blob, age) in suspects.unrecorded {
                    if !is_recorded(ctx.conn, &blob)? && ctx.blobs.exists(&blob)? {
                        problems.push(Problem::UnreferencedFile { path: ctx.blobs.path(&blob), age });
                    }
                }
                Ok(problems)
            })
            .await?;
        report.problems.extend(confirmed);
    }
    Ok(report)
}

fn is_recorded(conn: &Connection, blob: &BlobId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1")
        .db()?
        .query_row([blob.hex()], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// A stored counter as a number that can be compared and reported, whatever its SQL type.
fn count(conn: &Connection, sql: &str) -> Result<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0)).db()?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Step 1: everything that can be checked inside the database, in one snapshot.
fn check_database(conn: &Connection) -> Result<(CheckReport, Vec<RecordedBlob>)> {
    let mut report = CheckReport {
        accounts: count(conn, "SELECT COUNT(*) FROM accounts")?,
        mailboxes: count(conn, "SELECT COUNT(*) FROM mailboxes")?,
        messages: count(conn, "SELECT COUNT(*) FROM messages")?,
        queue_entries: count(conn, "SELECT COUNT(*) FROM queue")?,
        ..CheckReport::default()
    };
    let problems = &mut report.problems;

    {
        let mut stmt = conn.prepare("PRAGMA integrity_check").db()?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).db()?;
        for line in rows {
            let line = line.db()?;
            if line != "ok" {
                problems.push(Problem::Database(format!("integrity check: {line}")));
            }
        }
    }
    {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check").db()?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, String>(2)?))
            })
            .db()?;
        for row in rows {
            let (table, rowid, parent) = row.db()?;
            let row = rowid.map(|id| format!(" (rowid {id})")).unwrap_or_default();
            problems.push(Problem::Database(format!(
                "a row of {table}{row} refers to a missing row of {parent}"
            )));
        }
    }

    let recorded = check_references(conn, problems)?;
    check_sizes(conn, problems)?;
    check_mailboxes(conn, problems)?;
    check_usage(conn, problems)?;
    Ok((report, recorded))
}

/// Reference counts against the referencing rows; returns the recorded blobs.
fn check_references(conn: &Connection, problems: &mut Vec<Problem>) -> Result<Vec<RecordedBlob>> {
    let columns: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT m.name, f.\"from\" FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f \
                 WHERE m.type = 'table' AND f.\"table\" = 'blobs' ORDER BY 1, 2",
            )
            .db()?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let mut references: HashMap<String, u64> = HashMap::new();
    for (table, column) in &columns {
        let column = quote_ident(column);
        let sql = format!("SELECT {column}, COUNT(*) FROM {} GROUP BY {column}", quote_ident(table));
        let mut stmt = conn.prepare(&sql).db()?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).db()?;
        for row in rows {
            let (hash, n) = row.db()?;
            *references.entry(hash).or_default() += u64::try_from(n).unwrap_or(0);
        }
    }

    let mut recorded = Vec::new();
    let mut stmt = conn.prepare("SELECT hash, size, refcount FROM blobs ORDER BY hash").db()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
        .db()?;
    for row in rows {
        let (hash, size, refcount) = row.db()?;
        let actual = references.remove(&hash).unwrap_or(0);
        let Some(blob) = BlobId::parse(&hash) else {
            problems.push(Problem::Database(format!("blobs has a row with the invalid hash {hash:?}")));
            continue;
        };
        if actual == 0 {
            problems.push(Problem::UnreferencedBlob { blob: blob.clone() });
        } else if u64::try_from(refcount).ok() != Some(actual) {
            problems.push(Problem::Refcount { blob: blob.clone(), recorded: refcount, actual });
        }
        recorded.push(RecordedBlob { id: blob, size: u64::try_from(size).unwrap_or(0), references: actual });
    }
    let mut unrecorded: Vec<(String, u64)> = references.into_iter().collect();
    unrecorded.sort();
    for (hash, references) in unrecorded {
        match BlobId::parse(&hash) {
            Some(blob) => problems.push(Problem::UnrecordedReference { blob, references }),
            None => problems.push(Problem::Database(format!(
                "{references} row(s) refer to the invalid blob hash {hash:?}"
            ))),
        }
    }
    Ok(recorded)
}

/// Every message's and queue entry's size is its body's.
fn check_sizes(conn: &Connection, problems: &mut Vec<Problem>) -> Result<()> {
    let mut stmt = conn
        .prepare(
            "SELECT a.address, mb.name, m.uid, m.size, b.size FROM messages m \
             JOIN blobs b ON b.hash = m.blob JOIN mailboxes mb ON mb.id = m.mailbox_id \
             JOIN accounts a ON a.id = mb.account_id WHERE m.size <> b.size \
             ORDER BY a.address, mb.name, m.uid",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .db()?;
    for row in rows {
        let (account, mailbox, uid, recorded, blob_size) = row.db()?;
        problems.push(Problem::SizeMismatch {
            what: format!("message UID {uid} in mailbox {mailbox:?} of {account}"),
            recorded: u64::try_from(recorded).unwrap_or(0),
            blob_size: u64::try_from(blob_size).unwrap_or(0),
        });
    }
    let mut stmt = conn
        .prepare("SELECT q.id, q.size, b.size FROM queue q JOIN blobs b ON b.hash = q.blob WHERE q.size <> b.size ORDER BY q.id")
        .db()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
        .db()?;
    for row in rows {
        let (id, recorded, blob_size) = row.db()?;
        problems.push(Problem::SizeMismatch {
            what: format!("queue entry {id}"),
            recorded: u64::try_from(recorded).unwrap_or(0),
            blob_size: u64::try_from(blob_size).unwrap_or(0),
        });
    }
    Ok(())
}

/// UIDNEXT, HIGHESTMODSEQ, the message count and the `\Recent` marker of every mailbox.
fn check_mailboxes(conn: &Connection, problems: &mut Vec<Problem>) -> Result<()> {
    let mut stmt = conn
        .prepare(
            "SELECT a.address, mb.name, mb.uidnext, mb.highestmodseq, mb.message_count, mb.recent_uid, \
             COALESCE(s.n, 0), MAX(COALESCE(s.max_uid, 0), COALESCE(e.max_uid, 0)), \
             MAX(COALESCE(s.max_modseq, 0), COALESCE(e.max_modseq, 0)) \
             FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id \
             LEFT JOIN (SELECT mailbox_id, COUNT(*) AS n, MAX(uid) AS max_uid, MAX(modseq) AS max_modseq \
                        FROM messages GROUP BY mailbox_id) s ON s.mailbox_id = mb.id \
             LEFT JOIN (SELECT mailbox_id, MAX(uid) AS max_uid, MAX(modseq) AS max_modseq \
                        FROM expunged GROUP BY mailbox_id) e ON e.mailbox_id = mb.id \
             ORDER BY a.address, mb.name",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            let values: [i64; 7] =
                [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?];
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, values))
        })
        .db()?;
    for row in rows {
        let (account, mailbox, [uidnext, highestmodseq, message_count, recent_uid, n, max_uid, max_modseq]) =
            row.db()?;
        let mut report = |counter, recorded, actual| {
            problems.push(Problem::Mailbox {
                account: account.clone(),
                mailbox: mailbox.clone(),
                counter,
                recorded,
                actual,
            });
        };
        if max_uid > 0 && uidnext <= max_uid {
            report(MailboxCounter::UidNext, uidnext, max_uid);
        }
        if highestmodseq < max_modseq {
            report(MailboxCounter::HighestModSeq, highestmodseq, max_modseq);
        }
        if message_count != n {
            report(MailboxCounter::MessageCount, message_count, n);
        }
        if recent_uid > uidnext {
            report(MailboxCounter::RecentMarker, recent_uid, uidnext);
        }
    }
    Ok(())
}

/// Every account's quota usage against the sum over its messages.
fn check_usage(conn: &Connection, problems: &mut Vec<Problem>) -> Result<()> {
    let mut stmt = conn
        .prepare(
            "SELECT a.address, a.used_bytes, a.used_messages, COALESCE(SUM(m.size), 0), COUNT(m.uid) \
             FROM accounts a LEFT JOIN mailboxes mb ON mb.account_id = a.id \
             LEFT JOIN messages m ON m.mailbox_id = mb.id GROUP BY a.id ORDER BY a.address",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })
        .db()?;
    for row in rows {
        let (account, [used_bytes, used_messages, bytes, messages]) = row.db()?;
        if used_bytes != bytes {
            problems.push(Problem::Usage {
                account: account.clone(),
                counter: UsageCounter::Bytes,
                recorded: used_bytes,
                actual: bytes,
            });
        }
        if used_messages != messages {
            problems.push(Problem::Usage {
                account,
                counter: UsageCounter::Messages,
                recorded: used_messages,
                actual: messages,
            });
        }
    }
    Ok(())
}

/// Step 2: lists the blob directory and hashes every recorded blob's file. Returns the blob
/// figures and file problems of the report, and what must be looked at again under the lock.
fn check_files(
    blobs: &BlobDir,
    recorded: &[RecordedBlob],
    grace: Duration,
) -> Result<(CheckReport, Suspects)> {
    let mut report = CheckReport::default();
    let mut suspects = Suspects::default();
    let mut on_disk: HashMap<BlobId, SystemTime> = HashMap::new();
    for file in blobs.scan()? {
        match file {
            ScannedFile::Blob { id, modified, .. } => {
                on_disk.insert(id, modified);
            }
            ScannedFile::Stray(path) => report.problems.push(Problem::StrayFile { path }),
        }
    }

    for blob in recorded {
        report.blobs += 1;
        report.blob_bytes = report.blob_bytes.saturating_add(blob.size);
        if on_disk.remove(&blob.id).is_none() {
            suspects.missing.push((blob.id.clone(), blob.references));
            continue;
        }
        match blobs.hash_file(&blob.id) {
            Ok((actual, _)) if actual != blob.id => {
                report.problems.push(Problem::BlobCorrupt { blob: blob.id.clone(), actual });
            }
            Ok((_, len)) if len != blob.size => {
                report.problems.push(Problem::BlobSize {
                    blob: blob.id.clone(),
                    recorded: blob.size,
                    actual: len,
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                suspects.missing.push((blob.id.clone(), blob.references));
            }
            Err(e) => {
                report.problems.push(Problem::BlobUnreadable { blob: blob.id.clone(), error: e.to_string() })
            }
        }
    }

    let now = SystemTime::now();
    let mut unrecorded: Vec<(BlobId, SystemTime)> = on_disk.into_iter().collect();
    unrecorded.sort();
    for (id, modified) in unrecorded {
        // A clock set back makes a file look new: it is left alone, which errs on the safe side.
        let age = now.duration_since(modified).unwrap_or_default();
        if age > grace {
            suspects.unrecorded.push((id, age));
        } else {
            report.recent_unreferenced += 1;
        }
    }
    Ok((report, suspects))
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};

    use super::*;
    use crate::Store;
    use crate::sqlite::DB_FILE;
    use crate::types::*;

    /// A store with one account holding three messages (two sharing a body) and a queue entry.
    async fn populated() -> (tempfile::TempDir, SqliteStore, Account, Vec<BlobId>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.add_domain("example.org").await.expect("domain");
        let new = NewAccount {
            address: "a@example.org".into(),
            password_hash: String::new(),
            quota: None,
            admin: false,
        };
        let account = store.create_account(new).await.expect("account");
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.expect("get").expect("inbox");
        let mut ids = Vec::new();
        for body in
            [&b"Subject: one\r\n\r\n1\r\n"[..], b"Subject: two\r\n\r\n22\r\n", b"Subject: one\r\n\r\n1\r\n"]
        {
            let blob = store.put_blob(Arc::new(body.to_vec())).await.expect("put");
            let msg = NewMessage {
                blob: blob.clone(),
                size: body.len() as u64,
                internal_date: 0,
                flags: Flags::NONE,
                keywords: Vec::new(),
                info: None,
            };
            store.append(account.id, inbox.id, msg).await.expect("append");
            ids.push(blob);
        }
        let queued = b"Subject: out\r\n\r\nx\r\n";
        let blob = store.put_blob(Arc::new(queued.to_vec())).await.expect("put");
        store
            .enqueue(NewQueueEntry {
                sender: "a@example.org".into(),
                recipients: vec![QueueRecipient {
                    address: "b@remote.example".into(),
                    notify: None,
                    orcpt: None,
                }],
                blob: blob.clone(),
                size: queued.len() as u64,
                envid: None,
                ret: None,
                smtputf8: false,
                body_8bit: false,
            })
            .await
            .expect("enqueue");
        ids.push(blob);
        (dir, store, account, ids)
    }

    /// Changes the database behind the store's back, as a bug or a broken disk would.
    fn raw_sql(dir: &std::path::Path, sql: &str) {
        let conn = Connection::open(dir.join(DB_FILE)).expect("open");
        conn.execute_batch(sql).expect("raw sql");
    }

    #[tokio::test]
    async fn a_consistent_store_passes() {
        let (_dir, store, _, _) = populated().await;
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
        assert_eq!((report.accounts, report.mailboxes, report.messages, report.queue_entries), (1, 6, 3, 1));
        assert_eq!(report.blobs, 3);
        assert_eq!(report.blob_bytes, 19 + 20 + 19);
    }

    #[tokio::test]
    async fn broken_counters_are_reported() {
        let (dir, store, _, ids) = populated().await;
        raw_sql(
            dir.path(),
            &format!(
                "UPDATE mailboxes SET uidnext = 3, highestmodseq = 2, message_count = 7, recent_uid = 9 \
                 WHERE name = 'INBOX';
                 UPDATE accounts SET used_bytes = used_bytes + 5, used_messages = 1;
                 UPDATE blobs SET refcount = 5 WHERE hash = '{}';",
                ids[0]
            ),
        );
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        let mb = |counter, recorded, actual| Problem::Mailbox {
            account: "a@example.org".into(),
            mailbox: "INBOX".into(),
            counter,
            recorded,
            actual,
        };
        let usage = |counter, recorded, actual| Problem::Usage {
            account: "a@example.org".into(),
            counter,
            recorded,
            actual,
        };
        assert_eq!(
            report.problems,
            [
                Problem::Refcount { blob: ids[0].clone(), recorded: 5, actual: 2 },
                mb(MailboxCounter::UidNext, 3, 3),
                // The messages' MODSEQs are 2, 3 and 4.
                mb(MailboxCounter::HighestModSeq, 2, 4),
                mb(MailboxCounter::MessageCount, 7, 3),
                mb(MailboxCounter::RecentMarker, 9, 3),
                usage(UsageCounter::Bytes, 63, 58),
                usage(UsageCounter::Messages, 1, 3),
            ]
        );
    }

    #[tokio::test]
    async fn tombstones_count_for_the_mailbox_counters() {
        let (dir, store, account, _) = populated().await;
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.expect("get").expect("inbox");
        // Removing UID 3 remembers it with MODSEQ 5 (RFC 7162 3.2.7).
        store.expunge(account.id, inbox.id, &[3]).await.expect("expunge");
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);

        raw_sql(dir.path(), "UPDATE mailboxes SET uidnext = 3, highestmodseq = 4 WHERE name = 'INBOX'");
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        let mb = |counter, recorded, actual| Problem::Mailbox {
            account: "a@example.org".into(),
            mailbox: "INBOX".into(),
            counter,
            recorded,
            actual,
        };
        assert_eq!(
            report.problems,
            [mb(MailboxCounter::UidNext, 3, 3), mb(MailboxCounter::HighestModSeq, 4, 5)]
        );
    }

    #[tokio::test]
    async fn broken_references_and_sizes_are_reported() {
        let (dir, store, _, ids) = populated().await;
        let ghost = BlobId::of(b"never stored");
        raw_sql(
            dir.path(),
            &format!(
                "PRAGMA foreign_keys = OFF;
                 UPDATE messages SET blob = '{ghost}' WHERE uid = 2;
                 UPDATE messages SET size = 99 WHERE uid = 3;
                 UPDATE queue SET size = 1;"
            ),
        );
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.starts_with("database: a row of messages refers to a missing row of blobs")),
            "{text:#?}"
        );
        assert!(report.problems.contains(&Problem::UnreferencedBlob { blob: ids[1].clone() }), "{text:#?}");
        assert!(
            report.problems.contains(&Problem::UnrecordedReference { blob: ghost, references: 1 }),
            "{text:#?}"
        );
        assert!(report.problems.contains(&Problem::SizeMismatch {
            what: "message UID 3 in mailbox \"INBOX\" of a@example.org".into(),
            recorded: 99,
            blob_size: 19,
        }));
        assert!(
            text.iter()
                .any(|p| p.starts_with("queue entry ")
                    && p.ends_with(": recorded size 1, its body has 19 bytes")),
            "{text:#?}"
        );
    }

    #[tokio::test]
    async fn blob_file_damage_is_reported() {
        let (dir, store, _, ids) = populated().await;
        fs::remove_file(store.blobs.path(&ids[0])).expect("delete blob file");
        let mut bytes = fs::read(store.blobs.path(&ids[1])).expect("read");
        bytes[3] ^= 0x20;
        fs::write(store.blobs.path(&ids[1]), &bytes).expect("flip a byte");
        let stray = dir.path().join("blobs/README");
        fs::write(&stray, b"x").expect("stray file");
        // An unreferenced body: recent (a delivery in progress) until it is older than the grace.
        let orphan = store.blobs.write(b"Subject: orphan\r\n\r\n").expect("orphan");

        let report = store.check(Duration::from_secs(600)).await.expect("check");
        assert_eq!(report.recent_unreferenced, 1);
        assert_eq!(
            report.problems,
            [
                Problem::StrayFile { path: stray.clone() },
                Problem::BlobCorrupt { blob: ids[1].clone(), actual: BlobId::of(&bytes) },
                Problem::BlobMissing { blob: ids[0].clone(), references: 2 },
            ]
        );

        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(store.blobs.path(&orphan))
            .and_then(|f| f.set_modified(old))
            .expect("age");
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        assert_eq!(report.recent_unreferenced, 0);
        let Some(Problem::UnreferencedFile { path, age }) = report.problems.last() else {
            panic!("{:?}", report.problems);
        };
        assert_eq!(*path, store.blobs.path(&orphan));
        assert!(*age >= Duration::from_secs(3600));
        assert_eq!(report.problems.len(), 4);
    }

    #[tokio::test]
    async fn blob_size_differing_from_the_file_is_reported() {
        let (dir, store, _, ids) = populated().await;
        raw_sql(dir.path(), &format!("UPDATE blobs SET size = 3 WHERE hash = '{}'", ids[1]));
        let report = store.check(Duration::from_secs(600)).await.expect("check");
        // The message sizes (20) now differ from the recorded blob size too.
        assert!(
            report.problems.contains(&Problem::BlobSize { blob: ids[1].clone(), recorded: 3, actual: 20 }),
            "{:?}",
            report.problems
        );
    }
}
