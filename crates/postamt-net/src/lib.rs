//! postamt networking shared by every protocol: listeners, TLS (implicit and
//! STARTTLS), connection limits and graceful shutdown.
//!
//! A server binds its listeners with [`bind`], then hands them to [`serve`]
//! together with a shared [`ConnLimiter`], a [`CancellationToken`] and a
//! [`TaskTracker`]. Shutdown is: cancel the token (listeners close), then
//! `tracker.close()` and `tracker.wait().await` for the running connections.

pub mod io;
pub mod limits;
pub mod listener;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use limits::{ConnGuard, ConnLimiter};
pub use listener::{Conn, ServeOptions, bind, serve};
pub use stream::{Stream, TlsInfo};
pub use tls::{acceptor, load_or_generate};

pub use tokio_rustls::TlsAcceptor;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// Errors while setting up listeners or TLS. Each names the file or address involved.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A certificate or key file could not be read.
    #[error("tls: cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    /// A certificate or key file was read but holds no usable PEM data.
    #[error("tls: {}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    /// The generated certificate or key could not be written.
    #[error("tls: cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
    /// rcgen failed to generate the self-signed certificate.
    #[error("tls: cannot generate a self-signed certificate for {hostname:?}: {err}")]
    Generate { hostname: String, err: rcgen::Error },
    /// rustls refused the certificate chain or key (e.g. key does not match).
    #[error("tls: certificate {} with key {}: {err}", cert.display(), key.display())]
    Tls { cert: PathBuf, key: PathBuf, err: rustls::Error },
    /// A listening socket could not be opened.
    #[error("{service}: cannot listen on {addr}: {err}{hint}")]
    Bind {
        service: String,
        addr: SocketAddr,
        err: std::io::Error,
        /// Extra advice for common causes, empty or starting with "; ".
        hint: &'static str,
    },
}
