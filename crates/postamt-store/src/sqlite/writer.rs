//! The writer thread: one connection, jobs from a channel, group commit.
//!
//! See the parent module for the design; this is its mechanics. A job is type-erased into
//! [`WriteJob`] so that jobs with different result types share one queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::blob::BlobDir;
use crate::events::{ChangeEvent, EventBus};
use crate::types::{AccountId, BlobId};
use crate::{Result, StoreError};

/// Most jobs committed together. Bounds the latency one group adds to its first job.
const MAX_GROUP: usize = 256;

/// Counters behind `SqliteStore::write_stats`.
#[derive(Default)]
pub(super) struct WriterCounters {
    pub(super) jobs: AtomicU64,
    pub(super) groups: AtomicU64,
}

/// What a write job sees: the open group transaction, the blob directory, and where to record
/// the events and freed blobs that take effect only if this job's savepoint survives.
pub(super) struct JobCtx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) blobs: &'a BlobDir,
    events: Vec<(AccountId, ChangeEvent)>,
    freed: Vec<BlobId>,
}

impl JobCtx<'_> {
    /// Records an event to publish once the transaction has committed.
    pub(super) fn event(&mut self, account: AccountId, event: ChangeEvent) {
        self.events.push((account, event));
    }

    /// Records a blob whose last reference this job dropped; its file goes after the commit.
    pub(super) fn freed(&mut self, blob: BlobId) {
        self.freed.push(blob);
    }
}

/// A type-erased write job: runs in the transaction, then learns how the group ended.
pub(super) trait WriteJob: Send {
    /// Runs the work; returns whether it succeeded (and so whether its savepoint is kept).
    fn run(&mut self, ctx: &mut JobCtx<'_>) -> bool;
    /// Replies to the caller. `group_error` is set when the whole transaction failed.
    fn finish(self: Box<Self>, group_error: Option<&str>);
}

pub(super) struct TypedJob<F, R> {
    work: Option<F>,
    result: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> TypedJob<F, R> {
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<R>>) -> TypedJob<F, R> {
        TypedJob { work: Some(work), result: None, reply }
    }
}

impl<F, R> WriteJob for TypedJob<F, R>
where
    R: Send,
    F: FnOnce(&mut JobCtx<'_>) -> Result<R> + Send,
{
    fn run(&mut self, ctx: &mut JobCtx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(ctx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, group_error: Option<&str>) {
        let reply = match (self.result, group_error) {
            // A job's own failure is the most useful answer even if the group failed too.
            (Some(Err(e)), _) => Err(e),
            (_, Some(group)) => Err(StoreError::Database(group.to_string())),
            (Some(Ok(r)), None) => Ok(r),
            (None, None) => Err(StoreError::Database("write job panicked".into())),
        };
        // The caller may have gone away (cancelled request); the work is committed regardless.
        let _ = self.reply.send(reply);
    }
}

pub(super) fn writer_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<Box<dyn WriteJob>>,
    blobs: &BlobDir,
    events: &EventBus,
    stats: &WriterCounters,
) {
    // Ends when every SqliteStore handle (and so every sender) is gone.
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Counted before running, so a caller that got its reply sees its group counted.
        stats.jobs.fetch_add(group.len() as u64, Ordering::Relaxed);
        stats.groups.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(jobs = group.len(), "running write group");
        run_group(&mut conn, blobs, events, group);
    }
}

type JobEvents = Vec<(AccountId, ChangeEvent)>;

fn run_group(conn: &mut Connection, blobs: &BlobDir, bus: &EventBus, group: Vec<Box<dyn WriteJob>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = format!("cannot begin write transaction: {e}");
            tracing::error!("{msg}");
            for job in group {
                job.finish(Some(&msg));
            }
            return;
        }
    };

    let mut done: Vec<(Box<dyn WriteJob>, JobEvents)> = Vec::with_capacity(group.len());
    let mut freed = Vec::new();
    let mut abort: Option<String> = None;
    for mut job in group {
        if abort.is_none() {
            match run_in_savepoint(&tx, blobs, job.as_mut()) {
                Ok(Some((job_events, job_freed))) => {
                    freed.extend(job_freed);
                    done.push((job, job_events));
                    continue;
                }
                Ok(None) => {}
                Err(e) => abort = Some(e),
            }
        }
        done.push((job, Vec::new()));
    }

    if let Some(msg) = abort {
        tracing::error!("write transaction aborted: {msg}");
        drop(tx); // rolls back
        for (job, _) in done {
            job.finish(Some(&msg));
        }
        return;
    }
    if let Err(e) = tx.commit() {
        let msg = format!("commit failed: {e}");
        tracing::error!("{msg}");
        for (job, _) in done {
            job.finish(Some(&msg));
        }
        return;
    }

    if !freed.is_empty() {
        unlink_freed(conn, blobs, freed);
    }
    for (job, job_events) in done {
        for (account, event) in job_events {
            bus.publish(account, [event]);
        }
        job.finish(None);
    }
}

/// Runs one job inside its own savepoint. `Ok(Some(..))`: kept, with its events and freed blobs;
/// `Ok(None)`: the job failed and was rolled back alone; `Err`: the whole transaction is lost.
fn run_in_savepoint(
    conn: &Connection,
    blobs: &BlobDir,
    job: &mut dyn WriteJob,
) -> Result<Option<(JobEvents, Vec<BlobId>)>, String> {
    conn.execute_batch("SAVEPOINT job").map_err(|e| format!("savepoint: {e}"))?;
    let mut ctx = JobCtx { conn, blobs, events: Vec::new(), freed: Vec::new() };
    let ok = catch_unwind(AssertUnwindSafe(|| job.run(&mut ctx))).unwrap_or_else(|_| {
        tracing::error!("write job panicked; rolling it back");
        false
    });
    // Some errors (I/O, disk full) make SQLite roll back the whole transaction by itself.
    if conn.is_autocommit() {
        return Err("the transaction was rolled back by SQLite after an error".into());
    }
    if ok {
        conn.execute_batch("RELEASE job").map_err(|e| format!("release savepoint: {e}"))?;
        Ok(Some((ctx.events, ctx.freed)))
    } else {
        conn.execute_batch("ROLLBACK TO job; RELEASE job")
            .map_err(|e| format!("rollback to savepoint: {e}"))?;
        Ok(None)
    }
}

/// Unlinks the files of blobs whose last reference went away in the group just committed, under
/// the write lock and only if no row re-appeared meanwhile (see the module docs). Failures only
/// leave unreferenced files behind, so they are logged, not returned.
fn unlink_freed(conn: &mut Connection, blobs: &BlobDir, mut freed: Vec<BlobId>) {
    freed.sort();
    freed.dedup();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, count = freed.len(), "cannot lock to remove unreferenced blobs");
            return;
        }
    };
    for blob in &freed {
        let referenced =
            tx.query_row("SELECT 1 FROM blobs WHERE hash = ?1", [blob.hex()], |_| Ok(())).optional();
        match referenced {
            Ok(Some(())) => {}
            Ok(None) => {
                if let Err(e) = blobs.remove(blob) {
                    tracing::warn!(%blob, error = %e, "cannot remove unreferenced blob file");
                }
            }
            Err(e) => {
                tracing::warn!(%blob, error = %e, "cannot check blob reference");
                break;
            }
        }
    }
    // Nothing was written: this only releases the lock.
    if let Err(e) = tx.commit() {
        tracing::warn!(error = %e, "ending blob removal transaction");
    }
}
