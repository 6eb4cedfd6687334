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
    keep_large_blocks_out_of_arenas();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(Arc::new(config)))
}

/// glibc's malloc raises its mmap threshold to the size of each large block freed (up to
/// 32 MiB) and from then on serves such blocks from its per-thread arenas, which keep the memory
/// after `free`. A login hashes its password with argon2id (19 MiB) on one of the blocking
/// pool's threads, so a burst of logins left up to three such blocks resident in every arena:
/// gigabytes, and 16 MB per connection in the idle-connection benchmark (BENCHMARKS.md). A
/// fixed threshold keeps every block of 1 MiB or more in a mapping of its own, returned to the
/// system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_blocks_out_of_arenas() {
    const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // SAFETY: mallopt only sets a tuning parameter of the allocator; no thread runs yet.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_out_of_arenas() {}

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
    let auth = Authenticator::new(store.clone(), throttle, config.auth.login_cache);
    // SPF, DKIM, DMARC and ARC of incoming mail, through `[dns] resolver` or the system's.
    let verifier = postamt_delivery::mailauth::Verifier::new(&config.hostname, config.dns.resolver)
        .context("cannot set up the checks of incoming mail")?;
    let delivery = Delivery::with_verifier(store.clone(), config.hostname.clone(), verifier);
    // Domains created before DKIM signing get their keys now rather than at their first
    // message; in the background, since RSA keys take a moment each.
    let signing = delivery.clone();
    tokio::spawn(async move {
        match signing.signer().ensure_all().await {
            Ok(0) => {}
            Ok(domains) => {
                tracing::warn!(domains, "generated DKIM keys; publish them (postamt domain dns DOMAIN)")
            }
            Err(e) => tracing::error!(error = %e, "cannot generate missing DKIM keys"),
        }
    });
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limiter = Arc::new(ConnLimiter::new(config.limits.connections, config.limits.connections_per_ip));

    let listeners = Listeners {
        ports: Arc::new(postamt_web::Ports::new()),
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

    // Outgoing mail: the queue runner delivers what submission queued; it stops with the
    // sessions (running deliveries finish or stay queued for the next start).
    let outbound = postamt_outbound::Outbound::new(&config, store.clone(), delivery.clone())
        .context("cannot set up outgoing mail")?;
    tracker.spawn(outbound.run(shutdown.clone()));

    // Web pages, API and client autoconfiguration (postamt-web): started last, so that the
    // ports they show are those of the running mail listeners (with port 0, the picked ones).
    let web = postamt_web::WebService::new(postamt_web::WebOptions {
        config: config.clone(),
        auth: auth.clone(),
        delivery: delivery.clone(),
        store: store.clone(),
        ports: listeners.ports.clone(),
        shutdown: shutdown.clone(),
    });
    for (service, addrs, implicit_tls) in
        [("http", &config.listen.http, false), ("https", &config.listen.https, true)]
    {
        let svc = web.clone();
        let reject = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        listeners.start(service, addrs, implicit_tls, reject, move |conn| svc.clone().handle(conn)).await?;
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
    /// The bound port of every service, for the web pages' client settings.
    ports: Arc<postamt_web::Ports>,
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
        if let Some(addr) = bound.first().and_then(|l| l.local_addr().ok()) {
            self.ports.record(service, addr.port());
        }
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
