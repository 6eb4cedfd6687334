//! The memory workload: K authenticated IMAP connections, each with INBOX selected and in
//! IDLE, held open; the server's memory is measured before and after, summed over its whole
//! process tree (Dovecot runs a process per IMAP session), as RSS and as PSS (which splits
//! pages shared between processes fairly, so that shared libraries are not counted K times).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::imap::Imap;
use crate::stats::Figures;
use crate::{Accounts, BenchError, Result, Target};

/// Memory of a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeMemory {
    pub processes: u64,
    pub rss_kb: u64,
    pub pss_kb: u64,
}

/// Sums the memory of `root` and all its descendants, from `/proc`. Processes that exit
/// while being read are skipped.
pub fn tree_memory(root: u32) -> Result<TreeMemory> {
    let proc_err = |source| BenchError::System { what: "reading /proc".into(), source };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").map_err(proc_err)?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = parent_pid(&stat) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    if !std::path::Path::new(&format!("/proc/{root}")).exists() {
        return Err(BenchError::Invalid(format!("no process {root}")));
    }
    let mut total = TreeMemory::default();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        total.processes += 1;
        total.rss_kb += kb_field(&status, "VmRSS:").unwrap_or(0);
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            total.pss_kb += kb_field(&rollup, "Pss:").unwrap_or(0);
        }
    }
    Ok(total)
}

/// The parent pid from `/proc/<pid>/stat` (the field after the state, after the command name
/// in parentheses, which may itself contain spaces and parentheses).
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A `Name:   1234 kB` line's number.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Options of [`idle`].
#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub target: Target,
    /// Connection i logs in as account i (wrapping).
    pub accounts: Accounts,
    pub connections: usize,
    /// Root of the server's process tree.
    pub pid: u32,
    /// Handshakes (connect, login, SELECT, IDLE) in flight at once.
    pub parallel: usize,
    /// Pause before each measurement, for the server to settle.
    pub settle: Duration,
    /// Loopback source addresses to spread connections over (a source address has about
    /// 28,000 ephemeral ports); empty or one: the system's choice.
    pub sources: Vec<IpAddr>,
    /// Connections opened and closed again before the first measurement, so that what the
    /// server allocates once (thread pools, allocator arenas, caches) is not counted per
    /// connection.
    pub warmup: usize,
}

/// Warms up, measures, opens the connections, measures, closes them.
pub async fn idle(opts: &IdleOptions) -> Result<Figures> {
    let permits = Arc::new(Semaphore::new(opts.parallel.max(1)));
    if opts.warmup > 0 {
        drop(open(opts, opts.warmup.min(opts.connections), &permits).await?);
    }
    tokio::time::sleep(opts.settle).await;
    let before = tree_memory(opts.pid)?;

    let start = Instant::now();
    let held = open(opts, opts.connections, &permits).await?;
    let setup = start.elapsed();

    tokio::time::sleep(opts.settle).await;
    let after = tree_memory(opts.pid)?;
    // Every connection must still be there: each ends its IDLE and must get its OK.
    let checks: Vec<_> = held
        .into_iter()
        .map(|(mut imap, tag)| {
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire().await.ok()?;
                imap.done(&tag).await.ok()
            })
        })
        .collect();
    let mut still_open = 0u64;
    for check in checks {
        if let Ok(Some(())) = check.await {
            still_open += 1;
        }
    }

    let k = opts.connections.max(1) as f64;
    let mut f = Figures::new("memory");
    f.int("connections", opts.connections as u64)
        .text("tls", if opts.target.tls { "yes" } else { "no" })
        .int("held", still_open)
        .int("warmup", opts.warmup.min(opts.connections) as u64)
        .num("setup_s", setup.as_secs_f64())
        .int("processes_before", before.processes)
        .int("processes_after", after.processes)
        .int("rss_before_kb", before.rss_kb)
        .int("rss_after_kb", after.rss_kb)
        .int("pss_before_kb", before.pss_kb)
        .int("pss_after_kb", after.pss_kb)
        .num("rss_per_conn_kb", (after.rss_kb as f64 - before.rss_kb as f64) / k)
        .num("pss_per_conn_kb", (after.pss_kb as f64 - before.pss_kb as f64) / k);
    Ok(f)
}

/// Opens `count` connections, each logged in with INBOX selected and in IDLE.
async fn open(opts: &IdleOptions, count: usize, permits: &Arc<Semaphore>) -> Result<Vec<(Imap, String)>> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let permits = permits.clone();
            let (target, user, password) =
                (opts.target, opts.accounts.address(i + 1), opts.accounts.password.clone());
            // One source address: no bind, so that connect() picks the port for the whole
            // address pair and may reuse ports of earlier runs still in TIME_WAIT (a bind to
            // port 0 cannot, and fails with EADDRINUSE after ~28,000 recent connections).
            let source = (opts.sources.len() > 1).then(|| opts.sources[i % opts.sources.len()]);
            tokio::spawn(async move {
                let _permit =
                    permits.acquire().await.map_err(|_| BenchError::Invalid("semaphore closed".into()))?;
                let mut imap = Imap::connect(target, source).await?;
                imap.authenticate(&user, &password).await?;
                imap.ok("SELECT INBOX").await?;
                let tag = imap.idle().await?;
                imap.shrink();
                Ok::<_, BenchError>((imap, tag))
            })
        })
        .collect();
    let mut held = Vec::with_capacity(count);
    for task in tasks {
        held.push(task.await.map_err(|e| BenchError::Invalid(format!("connection task: {e}")))??);
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        assert_eq!(parent_pid("123 (imap (x) y) S 45 123 123 0"), Some(45));
        assert_eq!(kb_field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
        assert_eq!(kb_field("Rss: 5 kB\nPss:  17 kB\n", "Pss:"), Some(17));
    }

    #[test]
    fn own_process_tree_is_measured() {
        let me = tree_memory(std::process::id()).expect("measure");
        assert!(me.processes >= 1);
        assert!(me.rss_kb > 0);
    }
}
