//! postamt's web pages and JSON API, served on the `http` and `https` listeners.
//!
//! - **Self-service** for every account: mail client settings (with Thunderbird and Apple
//!   downloads), quota and addresses, password change, app passwords for devices, a recovery
//!   address ([`pages`]).
//! - **Password reset** by a single-use link mailed to the recovery address ([`reset`]).
//! - **Administration** for accounts with the admin role: domains with their DNS records,
//!   accounts, aliases, the outbound queue ([`admin`]); the same as a JSON API under `/api/v1`
//!   with an OpenAPI description ([`api`]).
//! - **Automatic client configuration**: Thunderbird autoconfig, Outlook Autodiscover, Apple
//!   profiles ([`clients`]).
//!
//! # Serving
//! The binary's listeners accept the connections (shared connection limits, implicit TLS on
//! `https`, graceful shutdown) and hand each [`postamt_net::Conn`] to [`WebService::handle`],
//! which speaks HTTP/1.1 over it with hyper and routes with axum. Pages are rendered on the
//! server (maud, escaped at compile time) and need no JavaScript.
//!
//! # Sessions and security
//! Signing in goes through [`postamt_auth::Authenticator`] with [`postamt_auth::Protocol::Web`],
//! so the per-IP failure delay is the one SMTP, IMAP and POP3 share. Sessions are server-side
//! rows (random 256-bit ids, only their hash stored; 12 hours at most, 2 hours idle); the
//! cookie is `HttpOnly`, `SameSite=Lax` and, on https, `Secure` with the `__Host-` prefix.
//! Every form carries a CSRF token: the session's synchronizer token once signed in, a
//! double-submit cookie before (login, forgotten password). See [`ctx`] for the details and
//! [`http`] for the headers every answer carries.

pub mod admin;
pub mod api;
pub mod clients;
pub mod ctx;
pub mod error;
pub mod http;
pub mod i18n;
pub mod layout;
pub mod mail;
pub mod ops;
pub mod pages;
pub mod policy;
pub mod ratelimit;
pub mod reset;

use std::sync::Arc;
use std::time::Duration;

use postamt_auth::Authenticator;
use postamt_config::Config;
use postamt_delivery::Delivery;
use postamt_net::{CancellationToken, Conn};
use postamt_store::SharedStore;

pub use clients::Ports;

use crate::ratelimit::RateLimiter;

/// Password-reset requests allowed per client IP address per window.
const RESET_PER_IP: u32 = 10;
/// Password-reset mails sent per account address per window.
const RESET_PER_ADDRESS: u32 = 3;
const RESET_WINDOW: Duration = Duration::from_secs(3600);

/// What the web service needs from the server.
pub struct WebOptions {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub delivery: Arc<Delivery>,
    pub store: SharedStore,
    /// The ports of the running listeners, shown on the settings pages and in the files.
    pub ports: Arc<Ports>,
    /// Cancelled at shutdown: open connections finish their request and close.
    pub shutdown: CancellationToken,
}

/// State shared by every request.
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub delivery: Arc<Delivery>,
    pub store: SharedStore,
    pub ports: Arc<Ports>,
    /// Password-reset requests per client IP.
    pub reset_per_ip: RateLimiter,
    /// Password-reset mails per account address.
    pub reset_per_address: RateLimiter,
}

/// The state handle handlers receive.
pub type Shared = Arc<AppState>;

impl AppState {
    /// The settings mail programs need, from the running listeners.
    pub fn client_settings(&self) -> clients::ClientSettings {
        clients::ClientSettings::new(&self.config, &self.ports)
    }

    /// The address of these pages that links in mails point to: https when it is served,
    /// else http; the host is always the configured `hostname`, never the request's `Host`
    /// header (which a client chooses, so a reset link could be made to point elsewhere).
    pub fn public_base_url(&self) -> String {
        let host = &self.config.hostname;
        match (self.ports.get("https"), self.ports.get("http")) {
            (Some(443), _) => format!("https://{host}"),
            (Some(port), _) => format!("https://{host}:{port}"),
            (None, Some(80)) => format!("http://{host}"),
            (None, Some(port)) => format!("http://{host}:{port}"),
            (None, None) => format!("https://{host}"),
        }
    }
}

/// The web service: one per server, shared by the `http` and `https` listeners.
pub struct WebService {
    router: axum::Router,
    shutdown: CancellationToken,
}

impl WebService {
    pub fn new(options: WebOptions) -> Arc<WebService> {
        let state = Arc::new(AppState {
            config: options.config,
            auth: options.auth,
            delivery: options.delivery,
            store: options.store,
            ports: options.ports,
            reset_per_ip: RateLimiter::new(RESET_PER_IP, RESET_WINDOW),
            reset_per_address: RateLimiter::new(RESET_PER_ADDRESS, RESET_WINDOW),
        });
        Arc::new(WebService { router: http::router(state), shutdown: options.shutdown })
    }

    /// Serves one accepted connection (plain on `http`, after the TLS handshake on `https`)
    /// until the client closes it, it idles out, or the server shuts down.
    pub async fn handle(self: Arc<Self>, conn: Conn) {
        http::serve_connection(self.router.clone(), conn, self.shutdown.clone()).await;
    }
}
