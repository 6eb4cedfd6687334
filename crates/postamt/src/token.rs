//! `postamt token create|list|revoke`: the administration API's tokens. A token is printed
//! once, at creation; the store keeps only its hash (see `postamt_auth::secret`).

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use postamt_config::Config;
use postamt_store::sqlite::SqliteStore;
use postamt_store::{ApiToken, SharedStore};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for the JSON API (/api/v1) and print it, this once.
    Create {
        /// What the token is for, e.g. "backup script".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List the tokens (id, label, created, last used); never the tokens themselves.
    List,
    /// Revoke a token by its id (from `token list`).
    Revoke { id: String },
}

pub fn run(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store: SharedStore = Arc::new(SqliteStore::open(&config.data_dir)?);
        execute(&store, command).await
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn execute(store: &SharedStore, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { label } => {
            let new = postamt_auth::secret::new_api_token();
            let token =
                ApiToken { id: new.id.clone(), label, hash: new.hash, created: now(), last_used: None };
            store.create_api_token(token).await?;
            println!("{}", new.token);
            eprintln!(
                "created API token {} (shown only now; use it as \"Authorization: Bearer TOKEN\")",
                new.id
            );
        }
        TokenCommand::List => {
            let tokens = store.list_api_tokens().await?;
            if tokens.is_empty() {
                println!("no API tokens");
            }
            for t in tokens {
                let used = t.last_used.map_or_else(|| "never".to_string(), postamt_delivery::format_date);
                println!(
                    "{}\t{}\tcreated {}\tlast used {}",
                    t.id,
                    t.label,
                    postamt_delivery::format_date(t.created),
                    used
                );
            }
        }
        TokenCommand::Revoke { id } => {
            store.delete_api_token(&id).await?;
            println!("revoked API token {id}");
        }
    }
    Ok(())
}
