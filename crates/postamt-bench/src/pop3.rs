//! The POP3 workload: C clients, each on its own maildrop (POP3 locks a maildrop to one
//! session), RETR every message and QUIT without deleting.

use std::time::Instant;

use crate::conn::Conn;
use crate::stats::{Figures, Latencies};
use crate::{Accounts, BenchError, Result, Target};

/// A POP3 client in the TRANSACTION state.
pub struct Pop3 {
    conn: Conn,
}

impl Pop3 {
    /// Connects and logs in with USER and PASS.
    pub async fn login(target: Target, user: &str, password: &str) -> Result<Pop3> {
        let mut pop = Pop3 { conn: Conn::connect(target, None).await? };
        pop.expect_ok("greeting").await?;
        pop.command(&format!("USER {user}")).await?;
        pop.command(&format!("PASS {password}")).await?;
        Ok(pop)
    }

    async fn expect_ok(&mut self, command: &str) -> Result<String> {
        let line = self.conn.read_line().await?;
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        if !line.starts_with("+OK") {
            let command = if command.starts_with("PASS ") { "PASS" } else { command };
            return Err(BenchError::Protocol {
                addr: self.conn.addr(),
                command: command.into(),
                reply: line,
            });
        }
        Ok(line)
    }

    pub async fn command(&mut self, command: &str) -> Result<String> {
        self.conn.write_all(format!("{command}\r\n").as_bytes()).await?;
        self.expect_ok(command).await
    }

    /// STAT: number of messages and their total size.
    pub async fn stat(&mut self) -> Result<(u64, u64)> {
        let line = self.command("STAT").await?;
        let mut words = line.split(' ').skip(1).map(|w| w.parse::<u64>());
        match (words.next(), words.next()) {
            (Some(Ok(n)), Some(Ok(size))) => Ok((n, size)),
            _ => Err(BenchError::Protocol { addr: self.conn.addr(), command: "STAT".into(), reply: line }),
        }
    }

    /// RETR: reads the multi-line answer to its end; returns the bytes received.
    pub async fn retr(&mut self, n: u64) -> Result<u64> {
        self.command(&format!("RETR {n}")).await?;
        let mut bytes = 0;
        loop {
            let line = self.conn.read_line().await?;
            if line == b".\r\n" {
                return Ok(bytes);
            }
            bytes += line.len() as u64;
        }
    }

    pub async fn quit(mut self) -> Result<()> {
        self.command("QUIT").await.map(drop)
    }
}

/// Options of [`read`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub target: Target,
    pub accounts: Accounts,
    /// Clients; at most one per account.
    pub concurrency: usize,
}

/// Client i logs into account i, STATs, RETRs every message, QUITs (nothing deleted). Timed
/// from the first STAT to the last QUIT.
pub async fn read(opts: &ReadOptions) -> Result<Figures> {
    if opts.concurrency > opts.accounts.count {
        return Err(BenchError::Invalid(format!(
            "{} POP3 clients need as many accounts (a maildrop takes one session), only {} given",
            opts.concurrency, opts.accounts.count
        )));
    }
    let login_start = Instant::now();
    let mut sessions = Vec::new();
    for i in 0..opts.concurrency {
        sessions
            .push(Pop3::login(opts.target, &opts.accounts.address(i + 1), &opts.accounts.password).await?);
    }
    let login_time = login_start.elapsed();
    let start = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut pop| {
            tokio::spawn(async move {
                let (count, _) = pop.stat().await?;
                let mut latencies = Latencies::default();
                let mut bytes = 0;
                for n in 1..=count {
                    let t = Instant::now();
                    bytes += pop.retr(n).await?;
                    latencies.push(t.elapsed());
                }
                pop.quit().await?;
                Ok::<_, BenchError>((latencies, bytes))
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut bytes = 0;
    for task in tasks {
        let (l, b) = task.await.map_err(|e| BenchError::Invalid(format!("client task: {e}")))??;
        latencies.extend(l);
        bytes += b;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let messages = latencies.len() as u64;
    let mut f = Figures::new("pop3");
    f.int("clients", opts.concurrency as u64)
        .int("messages", messages)
        .int("bytes", bytes)
        .num("seconds", elapsed)
        .num("msgs_per_s", messages as f64 / elapsed)
        .num("mb_per_s", bytes as f64 / elapsed / 1e6)
        .num("login_ms", login_time.as_secs_f64() * 1000.0 / opts.concurrency.max(1) as f64)
        .latencies("retr", &mut latencies);
    Ok(f)
}
