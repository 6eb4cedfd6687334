//! A load generator for mail servers: postamt, and the peers it is compared with (Postfix
//! delivering to Dovecot over LMTP, Dovecot for IMAP and POP3).
//!
//! Every workload talks the plain protocol over TCP (TLS optional) to `host:port`, with
//! accounts named `<prefix><n>@<domain>` (n = 1..=accounts) sharing one password, so that the
//! same run works against any server configured with those accounts. Each returns its figures
//! as a flat JSON object ([`Figures`]); the `postamt-bench` binary prints one per line, and
//! `postamt-bench table` puts the lines of several servers side by side.
//!
//! Workloads:
//! - [`smtp::ingest`]: N messages of realistic mixed sizes (or a fixed size) from C concurrent
//!   sessions to local mailboxes; optionally waits until IMAP shows them all (a server that
//!   queues first, like Postfix, delivers later than it acknowledges).
//! - [`smtp::populate`]: fills every account's INBOX with M messages, for the read workloads.
//! - [`imap::read`]: C clients SELECT, FETCH `1:* (FLAGS ENVELOPE BODYSTRUCTURE)`, then
//!   `BODY.PEEK[]` of every message.
//! - [`imap::mixed`]: C clients on one account's shared mailboxes (SEARCH, STORE, APPEND,
//!   COPY, MOVE, EXPUNGE) with IDLE watchers; ops/s and latency percentiles.
//! - [`pop3::read`]: C clients RETR every message of their own maildrop.
//! - [`memory::idle`]: K authenticated IMAP connections in IDLE; the server's memory (RSS and
//!   PSS of its whole process tree) before and after, per connection.
//! - [`startup::measure`]: time from spawning a server to its first greeting.
//!
//! [`dns::serve`] answers DNS on loopback for a server that checks incoming mail (postamt's
//! SPF, DKIM and DMARC), in place of a local caching resolver.
//!
//! The load generator shares the machine with the server under test: message bodies come from
//! a small pool generated up front ([`mail::Pool`]), so that producing load costs little CPU.

pub mod conn;
pub mod dns;
pub mod imap;
pub mod mail;
pub mod memory;
pub mod pop3;
pub mod smtp;
pub mod startup;
pub mod stats;
pub mod table;

use std::net::SocketAddr;

pub use stats::Figures;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{addr}: {source}")]
    Io { addr: SocketAddr, source: std::io::Error },
    #[error("{what}: {source}")]
    System { what: String, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{addr}: unexpected answer to {command}: {reply}")]
    Protocol { addr: SocketAddr, command: String, reply: String },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Who to log in as: `<prefix><n>@<domain>` for n = 1..=count, all with one password.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub prefix: String,
    pub domain: String,
    pub count: usize,
    pub password: String,
}

impl Accounts {
    /// The address of account `n` (1-based, wrapping around `count`).
    pub fn address(&self, n: usize) -> String {
        let n = (n.saturating_sub(1) % self.count.max(1)) + 1;
        format!("{}{n}@{}", self.prefix, self.domain)
    }

    /// Every address, in order.
    pub fn all(&self) -> Vec<String> {
        (1..=self.count).map(|n| self.address(n)).collect()
    }
}

/// Where a workload connects: the address and whether TLS is spoken from the first byte.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: bool,
}
