//! The administration operations behind both the admin pages and the JSON API, so the two
//! always do the same checks and log the same way. Every change is logged with who made it
//! (`actor`: an admin's address, or `token:<id>`).

use postamt_config::parse_size;
use postamt_delivery::mailauth::{self, DnsRecord, ServicePorts};
use postamt_store::{Account, AccountSettings, Alias, NewAccount, QueueEntry};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::pages::{hash_password, weakness_message};
use crate::{Shared, policy};

/// The ports published in the SRV records, from the running listeners.
pub fn service_ports(state: &Shared) -> ServicePorts {
    let p = |s: &str| state.ports.get(s);
    ServicePorts {
        submission: p("submission"),
        submissions: p("submissions"),
        imap: p("imap"),
        imaps: p("imaps"),
        pop3: p("pop3"),
        pop3s: p("pop3s"),
        https: p("https"),
    }
}

/// Adds a domain with its DKIM keys (as `postamt domain add` does).
pub async fn add_domain(state: &Shared, actor: &str, name: &str) -> Result<String, WebError> {
    let name = name.trim().trim_end_matches('.').to_lowercase();
    if name.is_empty()
        || !name.contains('.')
        || name.chars().any(|c| !(c.is_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(WebError::BadRequest(format!("{name:?} is not a domain name")));
    }
    state.store.add_domain(&name).await?;
    ensure_dkim_keys(state, &name).await?;
    tracing::info!(%actor, domain = %name, "domain added");
    Ok(name)
}

async fn ensure_dkim_keys(state: &Shared, domain: &str) -> Result<(), WebError> {
    if state.store.dkim_keys(domain).await?.is_empty() {
        let keys = tokio::task::spawn_blocking(mailauth::generate_domain_keys)
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(|e| WebError::Internal(e.to_string()))?;
        state.store.set_dkim_keys(domain, keys).await?;
    }
    Ok(())
}

pub async fn remove_domain(state: &Shared, actor: &str, name: &str) -> Result<(), WebError> {
    state.store.remove_domain(name).await?;
    tracing::info!(%actor, domain = %name, "domain removed");
    Ok(())
}

/// The DNS records of a local domain (the same as `postamt domain dns`) and their zone text.
pub async fn domain_dns(state: &Shared, domain: &str) -> Result<(Vec<DnsRecord>, String), WebError> {
    let domain = domain.trim_end_matches('.').to_lowercase();
    if !state.store.is_local_domain(&domain).await? {
        return Err(WebError::NotFound);
    }
    ensure_dkim_keys(state, &domain).await?;
    let keys = state.store.dkim_keys(&domain).await?;
    let hostname = &state.config.hostname;
    let records = mailauth::domain_records(&domain, hostname, &service_ports(state), &keys);
    let zone = mailauth::zone_text(&domain, hostname, &records);
    Ok((records, zone))
}

/// Parses a quota as typed: empty or `none` for unlimited, else a size (`500M`, `2G`, bytes).
pub fn parse_quota(s: &str) -> Result<Option<u64>, WebError> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    parse_size(s).map(Some).map_err(WebError::BadRequest)
}

/// A quota as it is typed back: `2G`, `500M`, or the exact number of bytes.
pub fn quota_text(bytes: u64) -> String {
    for (unit, size) in [("T", 1u64 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// A new account, as the admin page or API gives it.
pub struct AccountInput {
    pub address: String,
    pub password: String,
    pub quota: Option<u64>,
    pub admin: bool,
    pub imap: bool,
    pub pop3: bool,
}

pub async fn create_account(
    state: &Shared,
    actor: &str,
    lang: Lang,
    input: AccountInput,
) -> Result<Account, WebError> {
    let address = input.address.trim().to_lowercase();
    policy::check(&input.password, &input.password, &address)
        .map_err(|w| WebError::BadRequest(weakness_message(lang, w)))?;
    let password_hash = hash_password(&input.password).await?;
    let account = state
        .store
        .create_account(NewAccount { address, password_hash, quota: input.quota, admin: input.admin })
        .await?;
    if !input.imap || !input.pop3 {
        let settings = AccountSettings {
            imap_enabled: Some(input.imap),
            pop3_enabled: Some(input.pop3),
            ..AccountSettings::default()
        };
        state.store.update_account_settings(&account.address, settings).await?;
    }
    tracing::info!(%actor, account = %account.address, admin = input.admin, quota = ?input.quota, "account created");
    state.store.account_by_id(account.id).await?.ok_or(WebError::NotFound)
}

/// Changes to an account; `None` leaves a value alone. `quota: Some(None)` removes the limit.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub imap: Option<bool>,
    pub pop3: Option<bool>,
    pub admin: Option<bool>,
    pub enabled: Option<bool>,
    pub quota: Option<Option<u64>>,
    pub password: Option<String>,
}

/// The account `address`, or `NotFound`.
pub async fn account(state: &Shared, address: &str) -> Result<Account, WebError> {
    state.store.account_by_address(address).await?.ok_or(WebError::NotFound)
}

/// Applies changes. An administrator cannot take the admin role from, disable or remove the
/// account they are signed in with, so nobody locks themselves out by accident.
pub async fn update_account(
    state: &Shared,
    actor: &str,
    lang: Lang,
    address: &str,
    changes: AccountChanges,
) -> Result<Account, WebError> {
    let account = account(state, address).await?;
    if account.address == actor && (changes.admin == Some(false) || changes.enabled == Some(false)) {
        return Err(WebError::BadRequest(lang.texts().admin_self_lockout.to_string()));
    }
    if let Some(password) = &changes.password {
        policy::check(password, password, &account.address)
            .map_err(|w| WebError::BadRequest(weakness_message(lang, w)))?;
    }
    let settings = AccountSettings {
        imap_enabled: changes.imap,
        pop3_enabled: changes.pop3,
        admin: changes.admin,
        disabled: changes.enabled.map(|e| !e),
    };
    state.store.update_account_settings(&account.address, settings).await?;
    if let Some(quota) = changes.quota {
        state.store.set_quota(&account.address, quota).await?;
    }
    if let Some(password) = &changes.password {
        let hash = hash_password(password).await?;
        state.store.set_password_hash(&account.address, &hash).await?;
        // Whoever was signed in with the old password is signed out.
        state.store.delete_web_sessions(account.id, None).await?;
    }
    if changes.enabled == Some(false) {
        state.store.delete_web_sessions(account.id, None).await?;
    }
    tracing::info!(
        %actor, account = %account.address, imap = ?changes.imap, pop3 = ?changes.pop3, admin = ?changes.admin,
        enabled = ?changes.enabled, quota = ?changes.quota, password = changes.password.is_some(), "account changed"
    );
    self::account(state, &account.address).await
}

pub async fn delete_account(state: &Shared, actor: &str, lang: Lang, address: &str) -> Result<(), WebError> {
    let account = account(state, address).await?;
    if account.address == actor {
        return Err(WebError::BadRequest(lang.texts().admin_self_lockout.to_string()));
    }
    state.store.remove_account(&account.address).await?;
    tracing::info!(%actor, account = %account.address, "account removed");
    Ok(())
}

pub async fn add_alias(state: &Shared, actor: &str, alias: &str, target: &str) -> Result<Alias, WebError> {
    let alias = alias.trim().to_lowercase();
    let target = target.trim().to_lowercase();
    state.store.add_alias(&alias, &target).await?;
    tracing::info!(%actor, %alias, %target, "alias added");
    Ok(Alias { alias, target })
}

pub async fn remove_alias(state: &Shared, actor: &str, alias: &str) -> Result<(), WebError> {
    state.store.remove_alias(alias).await?;
    tracing::info!(%actor, %alias, "alias removed");
    Ok(())
}

pub async fn queue(state: &Shared) -> Result<Vec<QueueEntry>, WebError> {
    Ok(state.store.queue_list().await?)
}

/// Makes a queue entry due now (the queue runner picks it up at its next poll).
pub async fn retry_queue_entry(state: &Shared, actor: &str, id: &str) -> Result<(), WebError> {
    state.store.queue_flush(Some(id)).await?;
    tracing::info!(%actor, queue_id = %id, "queue entry set for retry");
    Ok(())
}

pub async fn delete_queue_entry(state: &Shared, actor: &str, id: &str) -> Result<(), WebError> {
    state.store.queue_delete(id).await?;
    tracing::info!(%actor, queue_id = %id, "queue entry deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas() {
        assert_eq!(parse_quota("").ok(), Some(None));
        assert_eq!(parse_quota("None").ok(), Some(None));
        assert_eq!(parse_quota("2G").ok(), Some(Some(2 << 30)));
        assert!(parse_quota("lots").is_err());
        assert_eq!(quota_text(2 << 30), "2G");
        assert_eq!(quota_text(1500), "1500");
        assert_eq!(parse_quota(&quota_text(3 << 20)).ok(), Some(Some(3 << 20)));
    }
}
