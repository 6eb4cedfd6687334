//! SMTP workloads: [`ingest`] (throughput of incoming mail) and [`populate`] (mailboxes for
//! the read workloads), and the pipelining SMTP client they share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::imap;
use crate::mail::{Pool, SizeSpec};
use crate::stats::{Figures, Latencies};
use crate::{Accounts, BenchError, Result, Target};

/// The envelope sender of generated mail.
pub const SENDER: &str = "loadgen@bench.example";

/// An SMTP client session after EHLO.
pub struct Smtp {
    conn: Conn,
    pipelining: bool,
}

impl Smtp {
    pub async fn connect(target: Target) -> Result<Smtp> {
        let conn = Conn::connect(target, None).await?;
        let mut smtp = Smtp { conn, pipelining: false };
        smtp.expect("greeting", "220").await?;
        smtp.conn.write_all(b"EHLO loadgen.bench.example\r\n").await?;
        let ehlo = smtp.expect("EHLO", "250").await?;
        smtp.pipelining =
            ehlo.lines().any(|l| l.get(4..).is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING")));
        Ok(smtp)
    }

    /// One complete (possibly multi-line) reply.
    pub async fn reply(&mut self) -> Result<String> {
        let mut out = String::new();
        loop {
            let line = self.conn.read_line().await?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let last = line.len() < 4 || line.as_bytes()[3] != b'-';
            out.push_str(&line);
            if last {
                return Ok(out);
            }
        }
    }

    async fn expect(&mut self, command: &str, code: &str) -> Result<String> {
        let reply = self.reply().await?;
        if !reply.starts_with(code) {
            return Err(BenchError::Protocol {
                addr: self.conn.addr(),
                command: command.to_string(),
                reply: reply.trim_end().to_string(),
            });
        }
        Ok(reply)
    }

    /// Sends one message (already dot-safe: no line starts with `.`) to `rcpt`; MAIL, RCPT and
    /// DATA go in one write when the server offers PIPELINING. `Ok` after the final 250.
    pub async fn send(&mut self, rcpt: &str, message: &[u8]) -> Result<()> {
        let envelope = format!("MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
        if self.pipelining {
            self.conn.write_all(envelope.as_bytes()).await?;
            self.expect("MAIL", "250").await?;
            self.expect("RCPT", "250").await?;
            self.expect("DATA", "354").await?;
        } else {
            for (line, code) in envelope.split_inclusive("\r\n").zip(["250", "250", "354"]) {
                self.conn.write_all(line.as_bytes()).await?;
                self.expect(line.trim_end(), code).await?;
            }
        }
        let mut data = Vec::with_capacity(message.len() + 5);
        data.extend_from_slice(message);
        if !message.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        self.conn.write_all(&data).await?;
        self.expect("end of data", "250").await.map(drop)
    }

    pub async fn quit(mut self) {
        if self.conn.write_all(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply().await;
        }
    }
}

/// Options of [`ingest`].
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub target: Target,
    /// Recipients: message i goes to account i (wrapping).
    pub accounts: Accounts,
    pub messages: u64,
    pub concurrency: usize,
    pub size: SizeSpec,
    pub seed: u64,
    /// Wait until IMAP shows every message in its INBOX (on this server), and report the
    /// delivered rate too.
    pub wait_imap: Option<Target>,
    /// How long to wait for delivery at most.
    pub wait_timeout: Duration,
}

/// Sends `messages` messages over `concurrency` sessions (each session sends many) as fast as
/// the server acknowledges them.
pub async fn ingest(opts: &IngestOptions) -> Result<Figures> {
    let pool = Arc::new(Pool::new(opts.size, opts.seed));
    let mut watchers = match opts.wait_imap {
        Some(target) => Some(imap::Watchers::login(target, &opts.accounts).await?),
        None => None,
    };
    let before = match watchers.as_mut() {
        Some(w) => Some(w.counts().await?),
        None => None,
    };
    let (start, latencies, bytes) = send_all(opts, &pool).await?;
    let accepted = start.elapsed().as_secs_f64();

    let mut f = Figures::new("smtp");
    let mut latencies = latencies;
    f.int("messages", opts.messages)
        .int("sessions", opts.concurrency as u64)
        .int("bytes", bytes)
        .int("mean_message_bytes", bytes / opts.messages.max(1))
        .num("accepted_s", accepted)
        .num("accepted_msgs_per_s", opts.messages as f64 / accepted)
        .num("accepted_mb_per_s", bytes as f64 / accepted / 1e6)
        .latencies("message", &mut latencies);
    if let (Some(watchers), Some(before)) = (watchers.as_mut(), before) {
        let n = opts.accounts.count.max(1) as u64;
        let targets: Vec<u64> = before
            .iter()
            .enumerate()
            .map(|(i, count)| {
                // Messages 0..N go to accounts 1, 2, .. in turn.
                count + opts.messages / n + u64::from((i as u64) < opts.messages % n)
            })
            .collect();
        let done = watchers.wait(&targets, opts.wait_timeout).await?;
        let delivered = done.duration_since(start).as_secs_f64();
        f.num("delivered_s", delivered)
            .num("msgs_per_s", opts.messages as f64 / delivered)
            .num("mb_per_s", bytes as f64 / delivered / 1e6);
    }
    Ok(f)
}

/// Runs the sessions; returns when they started, the per-message latencies and the bytes sent.
async fn send_all(opts: &IngestOptions, pool: &Arc<Pool>) -> Result<(Instant, Latencies, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..opts.concurrency.max(1))
        .map(|_| {
            let (next, pool, accounts, target, total) =
                (next.clone(), pool.clone(), opts.accounts.clone(), opts.target, opts.messages);
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut bytes = 0u64;
                let mut smtp: Option<Smtp> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    if smtp.is_none() {
                        smtp = Some(Smtp::connect(target).await?);
                    }
                    let session = smtp.as_mut().expect("connected");
                    let rcpt = accounts.address(i as usize + 1);
                    let message = pool.message(i, SENDER, &rcpt);
                    let t = Instant::now();
                    session.send(&rcpt, &message).await?;
                    latencies.push(t.elapsed());
                    bytes += message.len() as u64;
                }
                if let Some(s) = smtp {
                    s.quit().await;
                }
                Ok::<_, BenchError>((latencies, bytes))
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut bytes = 0;
    for task in tasks {
        let (l, b) = task.await.map_err(|e| BenchError::Invalid(format!("session task: {e}")))??;
        latencies.extend(l);
        bytes += b;
    }
    Ok((start, latencies, bytes))
}

/// Delivers `per_account` messages into every account's INBOX over SMTP and waits until IMAP
/// shows them (the read workloads need full mailboxes, identical on every server).
pub async fn populate(
    smtp: Target,
    imap_target: Target,
    accounts: &Accounts,
    per_account: u64,
    concurrency: usize,
    size: SizeSpec,
    seed: u64,
) -> Result<Figures> {
    let opts = IngestOptions {
        target: smtp,
        accounts: accounts.clone(),
        messages: per_account * accounts.count as u64,
        concurrency,
        size,
        seed,
        wait_imap: Some(imap_target),
        wait_timeout: Duration::from_secs(3600),
    };
    let mut f = ingest(&opts).await?;
    f.text("workload", "populate").int("accounts", accounts.count as u64).int("per_account", per_account);
    Ok(f)
}
