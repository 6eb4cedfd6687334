//! Listening sockets and the accept loop shared by every service: connection
//! limits, implicit TLS, per-connection tasks and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::NetError;
use crate::limits::{ConnGuard, ConnLimiter};
use crate::stream::Stream;

/// Pause after an accept error that is not about one connection (EMFILE,
/// ENFILE, ENOBUFS, ...), so the loop does not spin while resources are short.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Binds one listener per address. The error names the service and address.
///
/// Logs every bound local address (which shows the real port when port 0 was
/// asked for).
pub async fn bind(service: &str, addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, NetError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let bind_err = |err: io::Error| {
            let hint = if err.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 {
                "; ports below 1024 need root or CAP_NET_BIND_SERVICE"
            } else if err.kind() == io::ErrorKind::AddrInUse {
                "; another program (or another postamt) is using this port"
            } else {
                ""
            };
            NetError::Bind { service: service.to_owned(), addr, err, hint }
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        tracing::info!(service = %service, addr = %local_addr, "listening");
        listeners.push(listener);
    }
    Ok(listeners)
}

/// An accepted connection, handed to the service's handler.
#[derive(Debug)]
pub struct Conn {
    /// Plain, or TLS when the listener does implicit TLS.
    pub stream: Stream,
    /// Client address; IPv4-mapped IPv6 addresses are given as IPv4.
    pub peer: SocketAddr,
    /// Local address the client connected to.
    pub local: SocketAddr,
    /// Connection-limit slot; released when the connection is dropped.
    pub guard: ConnGuard,
}

/// How [`serve`] runs one service.
#[derive(Clone)]
pub struct ServeOptions {
    /// Service name for logs, e.g. `"smtp"`.
    pub service: &'static str,
    /// Acceptor for implicit TLS (smtps/imaps/pop3s/https); `None` for plain.
    pub implicit_tls: Option<TlsAcceptor>,
    /// Limiter shared by all services.
    pub limiter: Arc<ConnLimiter>,
    /// Cancelled to stop accepting; handlers should watch it too.
    pub shutdown: CancellationToken,
    /// Tracks accept loops and connection tasks, for waiting at shutdown.
    pub tracker: TaskTracker,
    /// Written to connections refused by the limiter, e.g.
    /// `b"421 4.7.0 Too many connections\r\n"`. Not sent on implicit-TLS
    /// listeners, where plaintext would only be a protocol error to the client.
    pub reject_message: &'static [u8],
    /// Time allowed for the implicit TLS handshake.
    pub tls_handshake_timeout: Duration,
}

/// Starts one accept loop per listener on `opts.tracker`, and returns.
///
/// Each accepted connection gets TCP_NODELAY and a limiter slot (or the
/// reject message and close), then the implicit TLS handshake if configured,
/// then `handler` runs in its own tracked task inside a `conn` span carrying
/// the service and peer. When `opts.shutdown` is cancelled the loops stop and
/// drop their listeners, closing the ports; running handlers are not
/// interrupted. To wait for everything: `tracker.close(); tracker.wait().await`.
///
/// # Panics
/// When called outside a tokio runtime.
pub fn serve<F, Fut>(listeners: Vec<TcpListener>, opts: ServeOptions, handler: F)
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let opts = Arc::new(opts);
    for listener in listeners {
        opts.tracker.spawn(accept_loop(listener, Arc::clone(&opts), Arc::clone(&handler)));
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, opts: Arc<ServeOptions>, handler: Arc<F>)
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let service = opts.service;
    let addr = match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(_) => "?".to_owned(),
    };
    loop {
        let accepted = tokio::select! {
            biased;
            () = opts.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => accept_one(tcp, peer, &opts, &handler),
            // Failures of a single pending connection: nothing to wait for.
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(service, addr = %addr, error = %e, "accept failed");
            }
            Err(e) => {
                tracing::warn!(service, addr = %addr, error = %e, "accept failed; pausing");
                tokio::select! {
                    () = opts.shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    tracing::info!(service, addr = %addr, "stopped listening");
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Admits or refuses one connection without blocking the accept loop.
fn accept_one<F, Fut>(tcp: TcpStream, peer: SocketAddr, opts: &ServeOptions, handler: &Arc<F>)
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let service = opts.service;
    // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d.
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(service, peer = %peer, error = %e, "cannot set TCP_NODELAY");
    }
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(e) => {
            // The connection is already dead (e.g. reset right after accept).
            tracing::debug!(service, peer = %peer, error = %e, "dropping connection");
            return;
        }
    };
    let Some(guard) = opts.limiter.try_acquire(peer.ip()) else {
        if opts.implicit_tls.is_none() && !opts.reject_message.is_empty() {
            // A fresh socket's send buffer always has room for one short
            // line; try_write never waits on a client that does not read.
            let _ = tcp.try_write(opts.reject_message);
        }
        tracing::debug!(service, peer = %peer, "connection limit reached; connection refused");
        return;
    };

    let span = tracing::info_span!("conn", service, peer = %peer);
    let tls = opts.implicit_tls.clone();
    let timeout = opts.tls_handshake_timeout;
    let shutdown = opts.shutdown.clone();
    let handler = Arc::clone(handler);
    opts.tracker.spawn(
        async move {
            let stream = match tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(timeout, acceptor.accept(tcp));
                    let result = tokio::select! {
                        () = shutdown.cancelled() => return,
                        r = handshake => r,
                    };
                    match result {
                        Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(?timeout, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            handler(Conn { stream, peer, local, guard }).await;
        }
        .instrument(span),
    );
}
