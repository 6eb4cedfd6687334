//! Authentication shared by every protocol: password hashing, the SASL mechanisms PLAIN and
//! LOGIN, and the per-IP throttle that slows down password guessing on all services at once.
//!
//! Protocol crates decode what the client sent with [`sasl`], then call
//! [`Authenticator::authenticate`], which checks the password against the store, applies the
//! account's per-protocol switches and the growing per-IP delay after failures.

pub mod app_password;
pub mod cache;
pub mod password;
pub mod sasl;
pub mod secret;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use cache::{LoginCache, Matched, digest};
use postamt_store::{Account, AppPassword, SharedStore};
pub use throttle::Throttle;

/// The service a login is for; accounts can be refused IMAP or POP3 individually.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Submission,
    Imap,
    Pop3,
    Web,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Submission => "SMTP submission",
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
            Protocol::Web => "web",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password; deliberately does not say which.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The credentials are right but this account may not use this protocol.
    #[error("{0} access is disabled for this account")]
    ProtocolDisabled(&'static str),
    #[error("account is disabled")]
    AccountDisabled,
    #[error("temporary authentication failure: {0}")]
    Temporary(String),
}

/// Unix seconds now.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Checks credentials for all protocols: the account's password, and for IMAP, POP3 and
/// submission also its app passwords ([`app_password`]). Credentials that passed recently
/// are recognised without hashing again ([`cache`]).
#[derive(Clone)]
pub struct Authenticator {
    store: SharedStore,
    throttle: Arc<Throttle>,
    cache: Arc<LoginCache>,
}

impl Authenticator {
    /// `login_cache`: how long credentials that passed are recognised without hashing again;
    /// zero turns the cache off.
    pub fn new(
        store: SharedStore,
        throttle: Arc<Throttle>,
        login_cache: std::time::Duration,
    ) -> Authenticator {
        Authenticator { store, throttle, cache: Arc::new(LoginCache::new(login_cache)) }
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Verifies `username`/`password` for `protocol` from `ip`. A failure is answered only
    /// after the IP's current penalty delay, which doubles with each failure, so guessing is
    /// slow on every protocol at once.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        username: &str,
        password: &str,
        protocol: Protocol,
    ) -> Result<Account, AuthError> {
        let result = self.check(username, password, protocol).await;
        match &result {
            Ok(_) => self.throttle.record_success(ip),
            Err(AuthError::Temporary(_)) => {}
            Err(err) => {
                let delay = self.throttle.record_failure(ip);
                tracing::warn!(%ip, user = %username, protocol = protocol.name(), error = %err, "authentication failed");
                tokio::time::sleep(delay).await;
            }
        }
        result
    }

    async fn check(&self, username: &str, password: &str, protocol: Protocol) -> Result<Account, AuthError> {
        let account = self
            .store
            .account_by_address(username.trim())
            .await
            .map_err(|e| AuthError::Temporary(e.to_string()))?;
        let matched = match &account {
            Some(a) => self.cached(a, username, password, protocol).await,
            None => None,
        };
        let matched = match matched {
            Some(m) => Some(m),
            None => {
                let m = self.verify(account.as_ref(), password, protocol).await?;
                if let (Some(a), Some(m)) = (&account, m) {
                    self.cache.insert(username, password, a.id, m);
                }
                m
            }
        };
        let ok = matched.is_some();
        let account = match account {
            Some(a) if ok => a,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if account.disabled {
            return Err(AuthError::AccountDisabled);
        }
        match protocol {
            Protocol::Imap if !account.imap_enabled => Err(AuthError::ProtocolDisabled("IMAP")),
            Protocol::Pop3 if !account.pop3_enabled => Err(AuthError::ProtocolDisabled("POP3")),
            _ => Ok(account),
        }
    }

    /// The full check with argon2id: the account's password, then (not for the web pages,
    /// which can create and revoke app passwords) its app passwords. What matched, if any.
    async fn verify(
        &self,
        account: Option<&Account>,
        password: &str,
        protocol: Protocol,
    ) -> Result<Option<Matched>, AuthError> {
        // Hash even for unknown users, so the answer's timing does not reveal which exist.
        let hash = account.map_or_else(|| password::dummy_hash().to_string(), |a| a.password_hash.clone());
        if password::verify_async(&hash, password).await.map_err(|e| AuthError::Temporary(e.to_string()))? {
            return Ok(Some(Matched::Password(digest(&hash))));
        }
        // Devices log in with app passwords; the web pages only with the main password.
        if protocol != Protocol::Web
            && let Some((normalized, lookup)) = app_password::parse(password)
            && let Some(app) = self.check_app_password(account, &normalized, &lookup).await?
        {
            return Ok(Some(Matched::App { id: app.id, hash: digest(&app.hash) }));
        }
        Ok(None)
    }

    /// The login cache's answer, if it still holds: the account still has the password hash
    /// (or the app password) the credentials matched.
    async fn cached(
        &self,
        account: &Account,
        username: &str,
        password: &str,
        protocol: Protocol,
    ) -> Option<Matched> {
        let matched = self.cache.get(username, password, account.id)?;
        let holds = match matched {
            Matched::Password(d) => d == digest(&account.password_hash),
            // The web pages take no app passwords: no answer here, but the entry stays valid
            // for the protocols that do.
            Matched::App { .. } if protocol == Protocol::Web => return None,
            Matched::App { id, hash } => match app_password::parse(password) {
                Some((_, lookup)) => match self.store.app_password(account.id, &lookup).await {
                    Ok(Some(app)) if app.id == id && digest(&app.hash) == hash => {
                        self.record_app_password_use(&app).await;
                        true
                    }
                    _ => false,
                },
                None => false,
            },
        };
        if !holds {
            self.cache.remove(username, password);
        }
        holds.then_some(matched)
    }

    async fn record_app_password_use(&self, app: &AppPassword) {
        tracing::debug!(account = app.account, app_password = %app.label, "app password used");
        if let Err(e) = self.store.app_password_used(app.id, now_unix()).await {
            // Only the "last used" column is lost; the login itself is fine.
            tracing::warn!(error = %e, "cannot record app password use");
        }
    }

    /// Verifies an app password of `account`. Costs one argon2id verification whether or not
    /// the account or the app password exists, so timing tells nothing about either.
    async fn check_app_password(
        &self,
        account: Option<&Account>,
        normalized: &str,
        lookup: &str,
    ) -> Result<Option<AppPassword>, AuthError> {
        let stored = match account {
            Some(account) => self
                .store
                .app_password(account.id, lookup)
                .await
                .map_err(|e| AuthError::Temporary(e.to_string()))?,
            None => None,
        };
        let hash = stored.as_ref().map_or_else(|| password::dummy_hash().to_string(), |a| a.hash.clone());
        let ok = password::verify_async(&hash, normalized)
            .await
            .map_err(|e| AuthError::Temporary(e.to_string()))?;
        match stored {
            Some(app) if ok => {
                self.record_app_password_use(&app).await;
                Ok(Some(app))
            }
            _ => Ok(None),
        }
    }
}
