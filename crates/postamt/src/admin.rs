//! The administration subcommands: domains, accounts, aliases, quotas, the queue, the store
//! check. They open the store directly, so they work whether or not the server is running.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use postamt_config::{Config, parse_size};
use postamt_delivery::mailauth;
use postamt_store::sqlite::SqliteStore;
use postamt_store::{AccountSettings, NewAccount, SharedStore};

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Add a domain to receive mail for.
    Add { domain: String },
    /// Remove a domain (refused while it has accounts or aliases).
    Remove { domain: String },
    /// List the domains.
    List,
    /// Print the DNS records the domain needs (MX, SPF, DKIM, DMARC, SRV, autoconfig), ready
    /// to paste into its zone file.
    Dns { domain: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl From<Switch> for bool {
    fn from(s: Switch) -> bool {
        matches!(s, Switch::On)
    }
}

#[derive(Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// The password (visible in the process list: prefer --password-stdin).
    #[arg(long)]
    password: Option<String>,
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account with its default folders (INBOX, Sent, Drafts, Trash, Junk, Archive).
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Storage quota, e.g. 500M or 2G (default: none).
        #[arg(long)]
        quota: Option<String>,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
        /// Allow IMAP access (default on).
        #[arg(long, value_enum)]
        imap: Option<Switch>,
        /// Allow POP3 access (default on).
        #[arg(long, value_enum)]
        pop3: Option<Switch>,
    },
    /// Change an account's switches.
    Set {
        address: String,
        #[arg(long, value_enum)]
        imap: Option<Switch>,
        #[arg(long, value_enum)]
        pop3: Option<Switch>,
        #[arg(long, value_enum)]
        admin: Option<Switch>,
        /// Disable (off) or re-enable (on) the account.
        #[arg(long, value_enum)]
        enabled: Option<Switch>,
    },
    /// Remove an account with all its mail.
    Remove { address: String },
    /// List accounts.
    List,
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Deliver ALIAS (or every unknown address of @DOMAIN) into ACCOUNT_ADDRESS's mailbox.
    Add {
        alias: String,
        account_address: String,
    },
    Remove {
        alias: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Set an account's quota: a size such as 500M or 2G, or `none`.
    Set { address: String, size: String },
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// List the messages waiting for delivery to other servers.
    List,
    /// Show one message: envelope, every recipient's state and last reply, attempts, next
    /// attempt.
    Show { id: String },
    /// Retry now: make one message (or every message) due; the running server picks it up
    /// within a second.
    Flush { id: Option<String> },
    /// Remove a message from the queue without delivering it and without a bounce.
    Delete { id: String },
}

pub enum Admin {
    Domain(DomainCommand),
    Account(AccountCommand),
    Alias(AliasCommand),
    Quota(QuotaCommand),
    Queue(QueueCommand),
}

pub fn run(config: &Config, command: Admin) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store: SharedStore = Arc::new(SqliteStore::open(&config.data_dir)?);
        execute(config, &store, command).await
    })
}

/// `postamt check`: prints every problem (one per line) and the summary; an error (exit
/// status 1) when the store is inconsistent. Works while the server runs: it only reads.
pub fn check(config: &Config, grace: std::time::Duration) -> anyhow::Result<()> {
    let db = config.data_dir.join(postamt_store::sqlite::DB_FILE);
    if !db.exists() {
        bail!("no store in {} ({} does not exist)", config.data_dir.display(), db.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let store = SqliteStore::open(&config.data_dir)?;
        postamt_store::Store::check(&store, grace).await
    })?;
    for problem in &report.problems {
        println!("{problem}");
    }
    println!("{}", report.summary());
    if !report.is_consistent() {
        bail!("the store in {} has {} problem(s)", config.data_dir.display(), report.problems.len());
    }
    Ok(())
}

fn read_password(args: PasswordArgs) -> anyhow::Result<String> {
    let password = match (args.password_stdin, args.password) {
        (true, _) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("cannot read password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (false, Some(p)) => p,
        (false, None) => bail!("give the password with --password-stdin or --password"),
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(password)
}

fn hash(password: &str) -> anyhow::Result<String> {
    Ok(postamt_auth::password::hash(password)?)
}

fn parse_quota(s: &str) -> anyhow::Result<Option<u64>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    parse_size(s).map(Some).map_err(|e| anyhow::anyhow!("invalid size {s:?}: {e}"))
}

fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

async fn execute(config: &Config, store: &SharedStore, command: Admin) -> anyhow::Result<()> {
    match command {
        Admin::Domain(DomainCommand::Add { domain }) => {
            store.add_domain(&domain).await?;
            // Its DKIM keys (RFC 6376): Ed25519 and RSA-2048, published with `domain dns`.
            let keys = tokio::task::spawn_blocking(mailauth::generate_domain_keys).await??;
            store.set_dkim_keys(&domain, keys).await?;
            println!("added domain {}", domain.to_lowercase());
            eprintln!("publish its DNS records: postamt domain dns {}", domain.to_lowercase());
        }
        Admin::Domain(DomainCommand::Dns { domain }) => {
            let domain = domain.trim_end_matches('.').to_lowercase();
            if !store.is_local_domain(&domain).await? {
                bail!("{domain} is not a local domain (postamt domain add {domain})");
            }
            let keys = store.dkim_keys(&domain).await?;
            if keys.is_empty() {
                // Created before DKIM signing; the server would generate them at its next start.
                let keys = tokio::task::spawn_blocking(mailauth::generate_domain_keys).await??;
                store.set_dkim_keys(&domain, keys).await?;
                eprintln!("generated DKIM keys for {domain}");
            }
            let keys = store.dkim_keys(&domain).await?;
            let port = |addrs: &[std::net::SocketAddr]| addrs.first().map(|a| a.port());
            let l = &config.listen;
            let ports = mailauth::ServicePorts {
                submission: port(&l.submission),
                submissions: port(&l.submissions),
                imap: port(&l.imap),
                imaps: port(&l.imaps),
                pop3: port(&l.pop3),
                pop3s: port(&l.pop3s),
                https: port(&l.https),
            };
            let records = mailauth::domain_records(&domain, &config.hostname, &ports, &keys);
            print!("{}", mailauth::zone_text(&domain, &config.hostname, &records));
        }
        Admin::Domain(DomainCommand::Remove { domain }) => {
            store.remove_domain(&domain).await?;
            println!("removed domain {}", domain.to_lowercase());
        }
        Admin::Domain(DomainCommand::List) => {
            for d in store.list_domains().await? {
                println!("{d}");
            }
        }
        Admin::Account(AccountCommand::Add { address, password, quota, admin, imap, pop3 }) => {
            let quota = quota.as_deref().map(parse_quota).transpose()?.flatten();
            let password_hash = hash(&read_password(password)?)?;
            let account = store.create_account(NewAccount { address, password_hash, quota, admin }).await?;
            if imap.is_some() || pop3.is_some() {
                let settings = AccountSettings {
                    imap_enabled: imap.map(bool::from),
                    pop3_enabled: pop3.map(bool::from),
                    ..AccountSettings::default()
                };
                store.update_account_settings(&account.address, settings).await?;
            }
            println!("added account {}", account.address);
        }
        Admin::Account(AccountCommand::Set { address, imap, pop3, admin, enabled }) => {
            let settings = AccountSettings {
                imap_enabled: imap.map(bool::from),
                pop3_enabled: pop3.map(bool::from),
                admin: admin.map(bool::from),
                disabled: enabled.map(|e| !bool::from(e)),
            };
            store.update_account_settings(&address, settings).await?;
            println!("updated account {}", address.to_lowercase());
        }
        Admin::Account(AccountCommand::Remove { address }) => {
            store.remove_account(&address).await?;
            println!("removed account {}", address.to_lowercase());
        }
        Admin::Account(AccountCommand::List) => {
            for a in store.list_accounts().await? {
                let quota = a.quota.map_or("none".to_string(), human);
                let mut tags = vec![];
                tags.push(if a.imap_enabled { "imap" } else { "-imap" });
                tags.push(if a.pop3_enabled { "pop3" } else { "-pop3" });
                if a.admin {
                    tags.push("admin");
                }
                if a.disabled {
                    tags.push("disabled");
                }
                println!(
                    "{}\tused={} messages={} quota={}\t{}",
                    a.address,
                    human(a.used_bytes),
                    a.used_messages,
                    quota,
                    tags.join(",")
                );
            }
        }
        Admin::Account(AccountCommand::Passwd { address, password }) => {
            let password_hash = hash(&read_password(password)?)?;
            store.set_password_hash(&address, &password_hash).await?;
            println!("changed password of {}", address.to_lowercase());
        }
        Admin::Alias(AliasCommand::Add { alias, account_address }) => {
            store.add_alias(&alias, &account_address).await?;
            println!("added alias {} -> {}", alias.to_lowercase(), account_address.to_lowercase());
        }
        Admin::Alias(AliasCommand::Remove { alias }) => {
            store.remove_alias(&alias).await?;
            println!("removed alias {}", alias.to_lowercase());
        }
        Admin::Alias(AliasCommand::List) => {
            for a in store.list_aliases().await? {
                println!("{}\t{}", a.alias, a.target);
            }
        }
        Admin::Quota(QuotaCommand::Set { address, size }) => {
            let quota = parse_quota(&size)?;
            store.set_quota(&address, quota).await?;
            println!(
                "quota of {} set to {}",
                address.to_lowercase(),
                quota.map_or("none".to_string(), human)
            );
        }
        Admin::Queue(QueueCommand::List) => {
            let entries = store.queue_list().await?;
            if entries.is_empty() {
                println!("queue is empty");
            }
            for e in entries {
                let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
                println!(
                    "{}\t{}\t{} bytes\tcreated {}\tattempts {}",
                    e.id,
                    sender,
                    e.size,
                    postamt_delivery::format_date(e.created),
                    e.attempts
                );
                for r in e.recipients {
                    let reply = r.last_reply.map(|r| format!("\t{r}")).unwrap_or_default();
                    println!("\t{}\t{}{}", r.recipient.address, r.status.as_str(), reply);
                }
            }
        }
        Admin::Queue(QueueCommand::Show { id }) => {
            let Some(e) = store.queue_get(&id).await? else {
                bail!("queue entry {id:?} does not exist");
            };
            let now = postamt_delivery::now_unix();
            let next = if e.next_attempt <= now {
                "now".to_string()
            } else {
                format!("{} (in {}s)", postamt_delivery::format_date(e.next_attempt), e.next_attempt - now)
            };
            println!("id:           {}", e.id);
            println!("sender:       <{}>", e.sender);
            println!("size:         {} bytes", e.size);
            println!("created:      {}", postamt_delivery::format_date(e.created));
            println!("attempts:     {}", e.attempts);
            println!("next attempt: {next}");
            let mut params = Vec::new();
            if let Some(envid) = &e.envid {
                params.push(format!("ENVID={envid}"));
            }
            if let Some(ret) = &e.ret {
                params.push(format!("RET={ret}"));
            }
            if e.body_8bit {
                params.push("BODY=8BITMIME".to_string());
            }
            if e.smtputf8 {
                params.push("SMTPUTF8".to_string());
            }
            if !params.is_empty() {
                println!("parameters:   {}", params.join(" "));
            }
            println!("recipients:");
            for r in e.recipients {
                let mut line = format!("  {}\t{}", r.recipient.address, r.status.as_str());
                if let Some(notify) = &r.recipient.notify {
                    line.push_str(&format!("\tNOTIFY={notify}"));
                }
                if let Some(reply) = &r.last_reply {
                    line.push_str(&format!("\t{reply}"));
                }
                println!("{line}");
            }
        }
        Admin::Queue(QueueCommand::Flush { id }) => {
            let flushed = store.queue_flush(id.as_deref()).await?;
            match id {
                Some(id) => println!("queue entry {id} is due now"),
                None => println!("{flushed} queue entries made due now"),
            }
        }
        Admin::Queue(QueueCommand::Delete { id }) => {
            store.queue_delete(&id).await?;
            println!("deleted queue entry {id}");
        }
    }
    Ok(())
}
