//! The `postamt` program: the command line, and the wiring of the libraries into a server.
//!
//! `serve` runs the server; every other subcommand administers the same data directory and
//! may run while the server does (changes take effect at once, the server reads the
//! directory from the store on every lookup).

mod admin;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use postamt_config::Config;

#[derive(Parser)]
#[command(name = "postamt", version, about = "A complete mail server: SMTP, IMAP, POP3 in one program")]
struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults serve ./data on 127.0.0.1
    /// with unprivileged ports.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mail server until SIGTERM or SIGINT.
    Serve,
    /// Manage the domains postamt receives mail for.
    Domain {
        #[command(subcommand)]
        command: admin::DomainCommand,
    },
    /// Manage accounts (mailboxes with a password).
    Account {
        #[command(subcommand)]
        command: admin::AccountCommand,
    },
    /// Manage extra addresses that deliver into an account, and catch-alls (@domain).
    Alias {
        #[command(subcommand)]
        command: admin::AliasCommand,
    },
    /// Set storage quotas.
    Quota {
        #[command(subcommand)]
        command: admin::QuotaCommand,
    },
    /// Inspect and manage the outbound queue.
    Queue {
        #[command(subcommand)]
        command: admin::QueueCommand,
    },
    /// Manage the tokens of the administration API (/api/v1).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Verify the store: blob files against their hashes, reference counts, mailbox counters,
    /// quota usage, SQLite's integrity. Exits 0 when consistent, 1 listing every problem.
    Check {
        /// Unreferenced blob files younger than this are left alone (a delivery in progress
        /// may be about to reference them).
        #[arg(long, default_value = "10m", value_parser = postamt_config::parse_duration)]
        grace: std::time::Duration,
    },
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default_quickstart()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postamt: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve::run(config),
        Command::Domain { command } => admin::run(&config, admin::Admin::Domain(command)),
        Command::Account { command } => admin::run(&config, admin::Admin::Account(command)),
        Command::Alias { command } => admin::run(&config, admin::Admin::Alias(command)),
        Command::Quota { command } => admin::run(&config, admin::Admin::Quota(command)),
        Command::Queue { command } => admin::run(&config, admin::Admin::Queue(command)),
        Command::Token { command } => token::run(&config, command),
        Command::Check { grace } => admin::check(&config, grace),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postamt: {e:#}");
            ExitCode::FAILURE
        }
    }
}
