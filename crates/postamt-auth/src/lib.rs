//! Authentication shared by every protocol: password hashing, the SASL mechanisms PLAIN and
//! LOGIN, and the per-IP throttle that slows down password guessing on all services at once.
//!
//! Protocol crates decode what the client sent with [`sasl`], then call
//! [`Authenticator::authenticate`], which checks the password against the store, applies the
//! account's per-protocol switches and the growing per-IP delay after failures.

pub mod password;
pub mod sasl;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use postamt_store::{Account, SharedStore};
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

/// Checks credentials for all protocols.
#[derive(Clone)]
pub struct Authenticator {
    store: SharedStore,
    throttle: Arc<Throttle>,
}

impl Authenticator {
    pub fn new(store: SharedStore, throttle: Arc<Throttle>) -> Authenticator {
        Authenticator { store, throttle }
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
        // Hash even for unknown users, so the answer's timing does not reveal which exist.
        let hash = account
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &password))
            .await
            .map_err(|e| AuthError::Temporary(e.to_string()))?;
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
}
