//! `postamt-bench`: runs one workload against a mail server and prints its figures as one
//! line of JSON; `postamt-bench table FILE` compares such lines of several servers. See the
//! library documentation for the workloads and `bench/run.sh` for a complete comparison.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use postamt_bench::mail::SizeSpec;
use postamt_bench::{Accounts, BenchError, Figures, Target, imap, memory, pop3, smtp, startup, table};

#[derive(Parser)]
#[command(name = "postamt-bench", version, about = "Load generator for mail servers (SMTP, IMAP, POP3)")]
struct Cli {
    /// Name of the server under test, copied into the output (e.g. postamt, dovecot).
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// Name of this measurement, the same for every server compared (`table` pairs by it).
    #[arg(long, global = true)]
    case: Option<String>,
    /// Accounts are <prefix><n>@<domain> for n = 1..=accounts.
    #[arg(long, global = true, default_value = "bench")]
    prefix: String,
    #[arg(long, global = true, default_value = "bench.test")]
    domain: String,
    #[arg(long, global = true, default_value_t = 1)]
    accounts: usize,
    /// The password of every account.
    #[arg(long, global = true, default_value = "benchmark")]
    password: String,
    /// Speak TLS from the first byte on the IMAP and POP3 ports (SMTP stays plain).
    #[arg(long, global = true)]
    tls: bool,
    /// Seed of the generated messages and operation mix.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Fill every account's INBOX with --messages messages (over SMTP; waits until IMAP shows them).
    Populate {
        #[arg(long)]
        smtp: SocketAddr,
        #[arg(long)]
        imap: SocketAddr,
        /// Messages per account.
        #[arg(long)]
        messages: u64,
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        /// `mixed` (log-normal, median 20 KB, 1 KB..1 MB) or a fixed size such as `10k`.
        #[arg(long, default_value = "mixed", value_parser = parse_size)]
        size: SizeSpec,
    },
    /// SMTP ingest: --messages messages from --concurrency sessions, to the accounts in turn.
    Smtp {
        #[arg(long)]
        smtp: SocketAddr,
        #[arg(long)]
        messages: u64,
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        #[arg(long, default_value = "mixed", value_parser = parse_size)]
        size: SizeSpec,
        /// Also wait until this IMAP server shows every message, and report that rate.
        #[arg(long)]
        wait_imap: Option<SocketAddr>,
        /// Seconds to wait for delivery at most.
        #[arg(long, default_value_t = 600)]
        wait_timeout: u64,
    },
    /// IMAP read: SELECT, FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), BODY.PEEK[] of every message.
    ImapRead {
        #[arg(long)]
        imap: SocketAddr,
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
    },
    /// IMAP mixed: SEARCH, STORE, APPEND, COPY, MOVE, EXPUNGE on the first account's mailboxes.
    ImapMixed {
        #[arg(long)]
        imap: SocketAddr,
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
        /// Operations per client.
        #[arg(long, default_value_t = 500)]
        ops: usize,
        /// Connections in IDLE on the same INBOX.
        #[arg(long, default_value_t = 5)]
        idle: usize,
    },
    /// POP3: every client RETRs its whole maildrop (one client per account).
    Pop3 {
        #[arg(long)]
        pop3: SocketAddr,
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
    },
    /// Memory of K authenticated IMAP connections idle in IDLE.
    Memory {
        #[arg(long)]
        imap: SocketAddr,
        #[arg(long)]
        connections: usize,
        /// Process id of the server (its whole process tree is measured).
        #[arg(long, required_unless_present = "pidfile")]
        pid: Option<u32>,
        /// File holding that process id.
        #[arg(long)]
        pidfile: Option<PathBuf>,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 32)]
        parallel: usize,
        /// Seconds to wait before each measurement.
        #[arg(long, default_value_t = 5)]
        settle: u64,
        /// Spread connections over the source addresses 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 1)]
        sources: u8,
        /// Connections opened and closed before the first measurement (at most --connections).
        #[arg(long, default_value_t = 100)]
        warmup: usize,
    },
    /// Start a server (the command after `--`, in the foreground) and time its first greeting.
    Startup {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Write the server's process id here.
        #[arg(long)]
        pidfile: Option<PathBuf>,
        /// Append the server's output to this file (default: passed through).
        #[arg(long)]
        log: Option<PathBuf>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Answer every DNS query on LISTEN (UDP) with NXDOMAIN, until killed: a stand-in for a
    /// local caching resolver.
    DnsStub {
        #[arg(long, default_value = "127.0.0.1:5353")]
        listen: SocketAddr,
    },
    /// Print a Markdown table comparing the results in FILE (JSON lines) by case.
    Table {
        file: PathBuf,
        /// The label of the server compared with all others.
        #[arg(long, default_value = "postamt")]
        ours: String,
    },
}

fn parse_size(s: &str) -> Result<SizeSpec, String> {
    SizeSpec::parse(s).ok_or_else(|| format!("{s:?}: expected `mixed` or a size such as 10k"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postamt-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(Some(mut figures)) => {
            figures.text("label", cli.label.clone());
            if let Some(case) = &cli.case {
                figures.text("case", case.clone());
            }
            println!("{}", figures.to_json());
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postamt-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<Option<Figures>, BenchError> {
    let accounts = Accounts {
        prefix: cli.prefix.clone(),
        domain: cli.domain.clone(),
        count: cli.accounts,
        password: cli.password.clone(),
    };
    let tls = |addr| Target { addr, tls: cli.tls };
    let plain = |addr| Target { addr, tls: false };
    let figures = match &cli.workload {
        Workload::Populate { smtp, imap, messages, concurrency, size } => {
            smtp::populate(plain(*smtp), tls(*imap), &accounts, *messages, *concurrency, *size, cli.seed)
                .await?
        }
        Workload::Smtp { smtp, messages, concurrency, size, wait_imap, wait_timeout } => {
            let opts = smtp::IngestOptions {
                target: plain(*smtp),
                accounts,
                messages: *messages,
                concurrency: *concurrency,
                size: *size,
                seed: cli.seed,
                wait_imap: wait_imap.map(tls),
                wait_timeout: Duration::from_secs(*wait_timeout),
            };
            smtp::ingest(&opts).await?
        }
        Workload::ImapRead { imap, concurrency } => {
            imap::read(&imap::ReadOptions { target: tls(*imap), accounts, concurrency: *concurrency }).await?
        }
        Workload::ImapMixed { imap, concurrency, ops, idle } => {
            let opts = imap::MixedOptions {
                target: tls(*imap),
                accounts,
                concurrency: *concurrency,
                ops: *ops,
                idle: *idle,
                seed: cli.seed,
            };
            imap::mixed(&opts).await?
        }
        Workload::Pop3 { pop3, concurrency } => {
            pop3::read(&pop3::ReadOptions { target: tls(*pop3), accounts, concurrency: *concurrency }).await?
        }
        Workload::Memory { imap, connections, pid, pidfile, parallel, settle, sources, warmup } => {
            let pid = match (pid, pidfile) {
                (Some(pid), _) => *pid,
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|source| BenchError::System {
                        what: format!("reading {}", path.display()),
                        source,
                    })?
                    .trim()
                    .parse()
                    .map_err(|_| BenchError::Invalid(format!("{} holds no process id", path.display())))?,
                (None, None) => return Err(BenchError::Invalid("give --pid or --pidfile".into())),
            };
            let opts = memory::IdleOptions {
                target: tls(*imap),
                accounts,
                connections: *connections,
                pid,
                parallel: *parallel,
                settle: Duration::from_secs(*settle),
                sources: (1..=(*sources).max(1)).map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))).collect(),
                warmup: *warmup,
            };
            memory::idle(&opts).await?
        }
        Workload::Startup { connect, timeout, pidfile, log, command } => {
            let opts = startup::StartupOptions {
                connect: *connect,
                command: command.clone(),
                timeout: Duration::from_secs(*timeout),
                pidfile: pidfile.clone(),
                output: log.clone().map_or(startup::ChildOutput::Inherit, startup::ChildOutput::File),
            };
            startup::measure(&opts).await?
        }
        Workload::DnsStub { listen } => {
            postamt_bench::dns::serve(*listen).await?;
            return Ok(None);
        }
        Workload::Table { file, ours } => {
            let results = std::fs::read_to_string(file).map_err(|source| BenchError::System {
                what: format!("reading {}", file.display()),
                source,
            })?;
            print!("{}", table::render(&results, ours));
            return Ok(None);
        }
    };
    Ok(Some(figures))
}
