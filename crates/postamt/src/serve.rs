//! `postamt serve`: opens the store, binds every configured listener, runs until SIGTERM or
//! SIGINT, then shuts down gracefully (stops accepting, lets running transactions finish).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postamt_auth::{Authenticator, Throttle};
use postamt_config::Config;
use postamt_delivery::Delivery;
use postamt_imap::ImapService;
use postamt_net::{ConnLimiter, ServeOptions, TlsAcceptor};
use postamt_pop3::{MaildropLocks, Pop3Service};
use postamt_smtp::{Mode, SmtpService};
use postamt_store::SharedStore;
use postamt_store::sqlite::SqliteStore;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long in-flight sessions get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn run(config: Config) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(Arc::new(config)))
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let store: SharedStore = Arc::new(SqliteStore::open(&config.data_dir).context("cannot open the store")?);
    let tls = postamt_net::tls::load_or_generate(&config)?;
    let acceptor = postamt_net::tls::acceptor(tls);
    let throttle = Arc::new(Throttle::new(config.auth.failure_delay, config.auth.max_failure_delay));
    let auth = Authenticator::new(store.clone(), throttle);
    let delivery = Delivery::new(store.clone(), config.hostname.clone());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limiter = Arc::new(ConnLimiter::new(config.limits.connections, config.limits.connections_per_ip));

    let listeners = Listeners {
        acceptor: acceptor.clone(),
        limiter,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };

    let smtp_services = [
        ("smtp", &config.listen.smtp, Mode::Mx, false),
        ("submission", &config.listen.submission, Mode::Submission, false),
        ("submissions", &config.listen.submissions, Mode::Submission, true),
    ];
    for (service, addrs, mode, implicit_tls) in smtp_services {
        let svc = Arc::new(SmtpService {
            config: config.clone(),
            mode,
            starttls: (!implicit_tls).then(|| acceptor.clone()),
            auth: auth.clone(),
            delivery: delivery.clone(),
            shutdown: shutdown.clone(),
        });
        let reject = b"421 4.7.0 Too many connections, try again later\r\n";
        listeners.start(service, addrs, implicit_tls, reject, move |conn| svc.clone().handle(conn)).await?;
    }

    // POP3 (RFC 1939): one set of maildrop locks for both services, so that a maildrop open
    // on one port is IN-USE on the other.
    let pop3_locks = Arc::new(MaildropLocks::new());
    let pop3_services = [("pop3", &config.listen.pop3, false), ("pop3s", &config.listen.pop3s, true)];
    for (service, addrs, implicit_tls) in pop3_services {
        let svc = Arc::new(Pop3Service {
            config: config.clone(),
            starttls: (!implicit_tls).then(|| acceptor.clone()),
            auth: auth.clone(),
            store: store.clone(),
            shutdown: shutdown.clone(),
            locks: pop3_locks.clone(),
        });
        let reject = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n";
        listeners.start(service, addrs, implicit_tls, reject, move |conn| svc.clone().handle(conn)).await?;
    }

    let imap_services = [("imap", &config.listen.imap, false), ("imaps", &config.listen.imaps, true)];
    for (service, addrs, implicit_tls) in imap_services {
        let svc = Arc::new(ImapService {
            config: config.clone(),
            starttls: (!implicit_tls).then(|| acceptor.clone()),
            auth: auth.clone(),
            store: store.clone(),
            shutdown: shutdown.clone(),
        });
        let reject = b"* BYE Too many connections, try again later\r\n";
        listeners.start(service, addrs, implicit_tls, reject, move |conn| svc.clone().handle(conn)).await?;
    }

    let later = [("http", &config.listen.http), ("https", &config.listen.https)];
    for (service, addrs) in later {
        if !addrs.is_empty() {
            tracing::warn!(
                service,
                "this service is not part of this version of postamt yet; listener not started"
            );
        }
    }
    tracing::info!(hostname = %config.hostname, data_dir = %config.data_dir.display(), "ready");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("sessions still running after the grace period; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What every listener shares: TLS, connection limits, shutdown.
struct Listeners {
    acceptor: TlsAcceptor,
    limiter: Arc<ConnLimiter>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Listeners {
    /// Binds `addrs` (nothing when empty: the service is off) and serves each connection
    /// with `handler`, after the TLS handshake when `implicit_tls`.
    async fn start<F, Fut>(
        &self,
        service: &'static str,
        addrs: &[std::net::SocketAddr],
        implicit_tls: bool,
        reject_message: &'static [u8],
        handler: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(postamt_net::Conn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if addrs.is_empty() {
            return Ok(());
        }
        let bound = postamt_net::bind(service, addrs).await?;
        let options = ServeOptions {
            service,
            implicit_tls: implicit_tls.then(|| self.acceptor.clone()),
            limiter: self.limiter.clone(),
            shutdown: self.shutdown.clone(),
            tracker: self.tracker.clone(),
            reject_message,
            tls_handshake_timeout: Duration::from_secs(30),
        };
        postamt_net::serve(bound, options, handler);
        Ok(())
    }
}
