//! The consistency check of a store ([`Store::check`](crate::Store::check), `postamt check`):
//! what it verifies and how it reports what it found.
//!
//! A consistent store satisfies, beside whatever the backend's own engine checks:
//! - every blob that is recorded exists as a file, whose content hashes to its name and whose
//!   length is the recorded size;
//! - each blob's reference count equals the number of rows that reference it (messages and
//!   queue entries), and every referenced blob is recorded;
//! - every blob file is recorded, except files younger than a grace period (a delivery may have
//!   written the body and not yet committed the message that references it);
//! - per mailbox: UIDNEXT is above every UID (of its messages and of the tombstones of expunged
//!   ones), HIGHESTMODSEQ is at least every MODSEQ (the same), the message counter is the
//!   number of messages, the `\Recent` marker is not above UIDNEXT;
//! - per account: the quota usage (bytes and messages) is the sum over its messages;
//! - every message's size is its body's size.
//!
//! Problems are reported as values, one per finding, each of which prints as one line naming
//! the blob, mailbox or account concerned.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::BlobId;

/// What [`Store::check`](crate::Store::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub accounts: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub queue_entries: u64,
    /// Recorded blobs, each of which was read and hashed.
    pub blobs: u64,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// Unrecorded blob files younger than the grace period: not reported as problems, since a
    /// delivery in progress may be about to reference them.
    pub recent_unreferenced: u64,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line: what was checked and whether it is consistent.
    pub fn summary(&self) -> String {
        let verdict = if self.is_consistent() {
            "store consistent".to_string()
        } else {
            format!("store INCONSISTENT: {} problem(s)", self.problems.len())
        };
        let mut line = format!(
            "{verdict}: {} account(s), {} mailbox(es), {} message(s), {} queue entr{}, {} blob(s) ({}) verified",
            self.accounts,
            self.mailboxes,
            self.messages,
            self.queue_entries,
            if self.queue_entries == 1 { "y" } else { "ies" },
            self.blobs,
            human_bytes(self.blob_bytes),
        );
        if self.recent_unreferenced > 0 {
            line.push_str(&format!(
                ", {} recent unreferenced blob file(s) left alone",
                self.recent_unreferenced
            ));
        }
        line
    }
}

/// Which per-mailbox counter disagrees with the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxCounter {
    /// UIDNEXT must be above the highest UID (`actual` is that UID).
    UidNext,
    /// HIGHESTMODSEQ must be at least the highest MODSEQ (`actual` is that MODSEQ).
    HighestModSeq,
    /// The stored message count must equal the number of messages.
    MessageCount,
    /// The `\Recent` marker must not be above UIDNEXT (`actual` is UIDNEXT).
    RecentMarker,
}

/// Which quota usage counter of an account disagrees with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageCounter {
    Bytes,
    Messages,
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The database engine's own check (integrity, foreign keys) reported this.
    Database(String),
    /// A recorded blob's file does not exist.
    BlobMissing { blob: BlobId, references: u64 },
    /// A blob file's content does not hash to its name.
    BlobCorrupt { blob: BlobId, actual: BlobId },
    /// A blob file exists but could not be read.
    BlobUnreadable { blob: BlobId, error: String },
    /// A blob file's length differs from the recorded size.
    BlobSize { blob: BlobId, recorded: u64, actual: u64 },
    /// A blob's reference count differs from the rows referencing it.
    Refcount { blob: BlobId, recorded: i64, actual: u64 },
    /// Rows reference a blob that is not recorded.
    UnrecordedReference { blob: BlobId, references: u64 },
    /// A blob is recorded although nothing references it.
    UnreferencedBlob { blob: BlobId },
    /// A message or queue entry's size differs from its body's.
    SizeMismatch { what: String, recorded: u64, blob_size: u64 },
    /// A blob file nobody references, older than the grace period.
    UnreferencedFile { path: PathBuf, age: Duration },
    /// A file under the blob directory where no blob belongs.
    StrayFile { path: PathBuf },
    /// A mailbox counter disagrees with the mailbox's messages.
    Mailbox { account: String, mailbox: String, counter: MailboxCounter, recorded: i64, actual: i64 },
    /// An account's quota usage disagrees with the sum over its messages.
    Usage { account: String, counter: UsageCounter, recorded: i64, actual: i64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Database(detail) => write!(f, "database: {detail}"),
            Problem::BlobMissing { blob, references } => {
                write!(f, "blob {blob}: file missing ({references} reference(s))")
            }
            Problem::BlobCorrupt { blob, actual } => {
                write!(f, "blob {blob}: content corrupt (it hashes to {actual})")
            }
            Problem::BlobUnreadable { blob, error } => {
                write!(f, "blob {blob}: cannot read the file: {error}")
            }
            Problem::BlobSize { blob, recorded, actual } => {
                write!(f, "blob {blob}: recorded size {recorded}, file has {actual} bytes")
            }
            Problem::Refcount { blob, recorded, actual } => {
                write!(f, "blob {blob}: reference count is {recorded}, but {actual} row(s) reference it")
            }
            Problem::UnrecordedReference { blob, references } => {
                write!(f, "blob {blob}: referenced by {references} row(s) but not recorded")
            }
            Problem::UnreferencedBlob { blob } => {
                write!(f, "blob {blob}: recorded, but nothing references it")
            }
            Problem::SizeMismatch { what, recorded, blob_size } => {
                write!(f, "{what}: recorded size {recorded}, its body has {blob_size} bytes")
            }
            Problem::UnreferencedFile { path, age } => {
                write!(f, "unreferenced blob file {} ({} old)", path.display(), human_duration(*age))
            }
            Problem::StrayFile { path } => {
                write!(f, "unexpected file in the blob directory: {}", path.display())
            }
            Problem::Mailbox { account, mailbox, counter, recorded, actual } => {
                let what = format!("mailbox {mailbox:?} of {account}");
                match counter {
                    MailboxCounter::UidNext => {
                        write!(f, "{what}: UIDNEXT {recorded} is not above the highest UID {actual}")
                    }
                    MailboxCounter::HighestModSeq => {
                        write!(f, "{what}: HIGHESTMODSEQ {recorded} is below the highest MODSEQ {actual}")
                    }
                    MailboxCounter::MessageCount => {
                        write!(f, "{what}: message count is {recorded}, but it holds {actual} message(s)")
                    }
                    MailboxCounter::RecentMarker => {
                        write!(f, "{what}: \\Recent marker {recorded} is above UIDNEXT {actual}")
                    }
                }
            }
            Problem::Usage { account, counter, recorded, actual } => match counter {
                UsageCounter::Bytes => write!(
                    f,
                    "account {account}: quota usage is {recorded} bytes, its messages add up to {actual}"
                ),
                UsageCounter::Messages => {
                    write!(f, "account {account}: quota usage is {recorded} message(s), it has {actual}")
                }
            },
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let mut report = CheckReport {
            accounts: 2,
            mailboxes: 12,
            messages: 5,
            queue_entries: 1,
            blobs: 4,
            blob_bytes: 3 << 20,
            ..CheckReport::default()
        };
        assert_eq!(
            report.summary(),
            "store consistent: 2 account(s), 12 mailbox(es), 5 message(s), 1 queue entry, 4 blob(s) (3.0 MiB) verified"
        );
        report.recent_unreferenced = 1;
        report.problems.push(Problem::Database("x".into()));
        assert!(report.summary().starts_with("store INCONSISTENT: 1 problem(s): 2 account(s)"));
        assert!(report.summary().ends_with(", 1 recent unreferenced blob file(s) left alone"));
    }

    #[test]
    fn problems_print_as_one_line_each() {
        let blob = BlobId::of(b"x");
        let problems = [
            Problem::BlobMissing { blob: blob.clone(), references: 2 },
            Problem::Refcount { blob: blob.clone(), recorded: 3, actual: 2 },
            Problem::UnreferencedFile { path: "/d/blobs/ab/cd/x".into(), age: Duration::from_secs(7300) },
            Problem::Mailbox {
                account: "a@example.org".into(),
                mailbox: "INBOX".into(),
                counter: MailboxCounter::UidNext,
                recorded: 3,
                actual: 3,
            },
            Problem::Usage {
                account: "a@example.org".into(),
                counter: UsageCounter::Bytes,
                recorded: 1,
                actual: 2,
            },
        ];
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines[0], format!("blob {blob}: file missing (2 reference(s))"));
        assert_eq!(lines[1], format!("blob {blob}: reference count is 3, but 2 row(s) reference it"));
        assert_eq!(lines[2], "unreferenced blob file /d/blobs/ab/cd/x (2 h old)");
        assert_eq!(lines[3], "mailbox \"INBOX\" of a@example.org: UIDNEXT 3 is not above the highest UID 3");
        assert_eq!(lines[4], "account a@example.org: quota usage is 1 bytes, its messages add up to 2");
        assert!(lines.iter().all(|l| !l.contains('\n')));
    }
}
