//! End-to-end tests of `serve`: implicit TLS, STARTTLS, connection limits,
//! handshake timeout and graceful shutdown, against real loopback sockets.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postamt_config::Config;
use postamt_net::{
    CancellationToken, Conn, ConnLimiter, ServeOptions, Stream, TaskTracker, TlsAcceptor, bind, serve, tls,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const REJECT: &[u8] = b"421 4.7.0 Too many connections\r\n";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Test-only verifier: accepts exactly the certificate the server generated,
/// whatever its issuer, and still checks the handshake signatures.
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected server certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

struct Tls {
    acceptor: TlsAcceptor,
    cert: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

fn server_tls() -> Tls {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default_quickstart();
    config.hostname = "mail.example.test".to_owned();
    config.data_dir = dir.path().to_path_buf();
    let server = tls::load_or_generate(&config).expect("tls config");
    let (cert_path, _) = tls::generated_paths(dir.path());
    Tls { acceptor: tls::acceptor(server), cert: read_cert(&cert_path), _dir: dir }
}

fn read_cert(path: &Path) -> CertificateDer<'static> {
    let pem = std::fs::read(path).expect("read cert");
    rustls_pemfile::certs(&mut pem.as_slice()).next().expect("one cert").expect("valid pem")
}

fn connector(
    cert: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCert { cert: cert.clone(), provider: Arc::clone(&provider) });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from("mail.example.test").expect("server name")
}

/// Reads one CRLF-terminated line a byte at a time, so that nothing after it
/// is consumed (needed before a STARTTLS handshake).
async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n =
            tokio::time::timeout(TIMEOUT, s.read(&mut byte)).await.expect("read timed out").expect("read");
        if n == 0 {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8(line).expect("utf8 line")
}

async fn read_to_end<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("read timed out")
        .expect("read to end");
    out
}

struct Server {
    addr: SocketAddr,
    limiter: Arc<ConnLimiter>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

async fn start<F, Fut>(
    service: &'static str,
    implicit_tls: Option<TlsAcceptor>,
    limiter: ConnLimiter,
    handler: F,
) -> Server
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    start_with(service, implicit_tls, limiter, CancellationToken::new(), handler).await
}

async fn start_with<F, Fut>(
    service: &'static str,
    implicit_tls: Option<TlsAcceptor>,
    limiter: ConnLimiter,
    shutdown: CancellationToken,
    handler: F,
) -> Server
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listeners = bind(service, &["127.0.0.1:0".parse().expect("addr")]).await.expect("bind");
    let addr = listeners[0].local_addr().expect("local addr");
    let limiter = Arc::new(limiter);
    let tracker = TaskTracker::new();
    serve(
        listeners,
        ServeOptions {
            service,
            implicit_tls,
            limiter: Arc::clone(&limiter),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            reject_message: REJECT,
            tls_handshake_timeout: Duration::from_millis(300),
        },
        handler,
    );
    Server { addr, limiter, shutdown, tracker }
}

/// Greets, then answers one line with what the server sees of the connection.
async fn greet_and_describe(mut conn: Conn) {
    let hello = format!("* OK tls={} peer={} local={}\r\n", conn.stream.is_tls(), conn.peer.ip(), conn.local);
    if conn.stream.write_all(hello.as_bytes()).await.is_err() {
        return;
    }
    let _ = conn.stream.flush().await;
    let line = read_line(&mut conn.stream).await;
    let info = conn.stream.tls_info().map(|i| i.to_string()).unwrap_or_default();
    let reply = format!("echo {} {info}\r\n", line.trim_end());
    let _ = conn.stream.write_all(reply.as_bytes()).await;
    let _ = conn.stream.shutdown().await;
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> (String, String) {
    let greeting = read_line(s).await;
    s.write_all(b"PING\r\n").await.expect("write");
    s.flush().await.expect("flush");
    let reply = read_line(s).await;
    (greeting, reply)
}

#[tokio::test]
async fn implicit_tls_with_tls13_and_tls12() {
    let tls = server_tls();
    let server =
        start("imaps", Some(tls.acceptor.clone()), ConnLimiter::new(10, 10), greet_and_describe).await;

    for (versions, name) in
        [(&[&rustls::version::TLS13][..], "TLSv1.3"), (&[&rustls::version::TLS12][..], "TLSv1.2")]
    {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let mut s = connector(&tls.cert, versions).connect(server_name(), tcp).await.expect("TLS handshake");
        let (greeting, reply) = exchange(&mut s).await;
        assert_eq!(greeting, format!("* OK tls=true peer=127.0.0.1 local={}\r\n", server.addr));
        assert!(reply.starts_with(&format!("echo PING {name} ")), "{reply}");
    }

    server.shutdown.cancel();
    server.tracker.close();
    tokio::time::timeout(TIMEOUT, server.tracker.wait()).await.expect("shutdown");
}

#[tokio::test]
async fn wrong_certificate_is_refused_by_pinned_client() {
    let tls = server_tls();
    let other = server_tls();
    let server =
        start("imaps", Some(tls.acceptor.clone()), ConnLimiter::new(10, 10), greet_and_describe).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let result = connector(&other.cert, &[&rustls::version::TLS13]).connect(server_name(), tcp).await;
    assert!(result.is_err(), "client must not accept another certificate");
    server.shutdown.cancel();
}

#[tokio::test]
async fn start_tls_upgrades_a_plain_connection() {
    let tls = server_tls();
    let acceptor = tls.acceptor.clone();
    let refused_twice = CancellationToken::new();
    let refused = refused_twice.clone();
    let server = start("submission", None, ConnLimiter::new(10, 10), move |conn: Conn| {
        let acceptor = acceptor.clone();
        let refused = refused.clone();
        async move {
            let mut stream = conn.stream;
            assert!(!stream.is_tls());
            if stream.write_all(b"220 ready\r\n").await.is_err() {
                return;
            }
            // Line-at-a-time reads leave nothing buffered before the upgrade.
            if read_line(&mut stream).await != "STARTTLS\r\n" {
                return;
            }
            if stream.write_all(b"220 go ahead\r\n").await.is_err() {
                return;
            }
            let mut stream: Stream = match stream.start_tls(&acceptor).await {
                Ok(s) => s,
                Err(_) => return,
            };
            let reply = format!("250 tls={}\r\n", stream.is_tls());
            let _ = stream.write_all(reply.as_bytes()).await;
            let line = read_line(&mut stream).await;
            let _ = stream.write_all(format!("221 {}", line).as_bytes()).await;
            // Upgrading twice is refused.
            if let Err(e) = stream.start_tls(&acceptor).await
                && e.kind() == std::io::ErrorKind::InvalidInput
            {
                refused.cancel();
            }
        }
    })
    .await;

    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(read_line(&mut tcp).await, "220 ready\r\n");
    tcp.write_all(b"STARTTLS\r\n").await.expect("write");
    assert_eq!(read_line(&mut tcp).await, "220 go ahead\r\n");
    let mut s = connector(&tls.cert, &[&rustls::version::TLS13])
        .connect(server_name(), tcp)
        .await
        .expect("TLS handshake after STARTTLS");
    assert_eq!(read_line(&mut s).await, "250 tls=true\r\n");
    s.write_all(b"QUIT\r\n").await.expect("write");
    assert_eq!(read_line(&mut s).await, "221 QUIT\r\n");
    wait_until(|| refused_twice.is_cancelled()).await;

    server.shutdown.cancel();
    server.tracker.close();
    tokio::time::timeout(TIMEOUT, server.tracker.wait()).await.expect("shutdown");
}

#[tokio::test]
async fn over_limit_connection_gets_reject_message() {
    let server = start("smtp", None, ConnLimiter::new(1, 1), greet_and_describe).await;

    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    assert!(read_line(&mut first).await.starts_with("* OK tls=false"));
    assert_eq!(server.limiter.active(), 1);

    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(read_to_end(&mut second).await, REJECT);

    // Finishing the first connection frees its slot.
    first.write_all(b"BYE\r\n").await.expect("write");
    assert!(read_line(&mut first).await.starts_with("echo BYE"));
    drop(first);
    wait_until(|| server.limiter.active() == 0).await;

    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    let (greeting, _) = exchange(&mut third).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    server.shutdown.cancel();
}

#[tokio::test]
async fn over_limit_on_implicit_tls_just_closes() {
    let tls = server_tls();
    let server = start("pop3s", Some(tls.acceptor.clone()), ConnLimiter::new(1, 1), greet_and_describe).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut first = connector(&tls.cert, &[&rustls::version::TLS13])
        .connect(server_name(), tcp)
        .await
        .expect("handshake");
    assert!(read_line(&mut first).await.starts_with("* OK tls=true"));

    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(read_to_end(&mut second).await, b"");
    server.shutdown.cancel();
}

#[tokio::test]
async fn stalled_tls_handshake_times_out_and_frees_the_slot() {
    let tls = server_tls();
    let server =
        start("imaps", Some(tls.acceptor.clone()), ConnLimiter::new(10, 10), greet_and_describe).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    wait_until(|| server.limiter.active() == 1).await;
    // The server gives up after tls_handshake_timeout (300 ms) and closes.
    let _ = tokio::time::timeout(TIMEOUT, idle.read(&mut [0u8; 16]))
        .await
        .expect("server closed the stalled connection");
    wait_until(|| server.limiter.active() == 0).await;
    server.shutdown.cancel();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_waits_for_handlers() {
    let shutdown = CancellationToken::new();
    let handler_done = CancellationToken::new();
    let (token, done) = (shutdown.clone(), handler_done.clone());
    let server = start_with("smtp", None, ConnLimiter::new(10, 10), shutdown, move |mut conn: Conn| {
        let (shutdown, done) = (token.clone(), done.clone());
        async move {
            let _ = conn.stream.write_all(b"220 hi\r\n").await;
            shutdown.cancelled().await;
            // An in-flight session finishes politely after shutdown starts.
            let _ = conn.stream.write_all(b"421 shutting down\r\n").await;
            done.cancel();
        }
    })
    .await;

    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(read_line(&mut client).await, "220 hi\r\n");

    server.shutdown.cancel();
    server.tracker.close();
    tokio::time::timeout(TIMEOUT, server.tracker.wait()).await.expect("tracker finished");
    assert!(handler_done.is_cancelled(), "handler ran to completion");
    assert_eq!(read_line(&mut client).await, "421 shutting down\r\n");

    let refused = TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "port must be closed after shutdown");
    assert_eq!(server.limiter.active(), 0);
}

#[tokio::test]
async fn bind_error_names_service_and_address() {
    let listeners = bind("smtp", &["127.0.0.1:0".parse().expect("addr")]).await.expect("bind");
    let taken = listeners[0].local_addr().expect("addr");
    let err = bind("submission", &[taken]).await.expect_err("port in use");
    let msg = err.to_string();
    assert!(msg.starts_with("submission: cannot listen on "), "{msg}");
    assert!(msg.contains(&taken.to_string()), "{msg}");
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Io over TLS: input that rustls already decrypted (more than one small read's worth in a
/// single record) is read without waiting for the socket, and a session waiting for input
/// still wakes when more arrives.
#[tokio::test]
async fn io_over_tls_reads_what_rustls_holds_and_then_waits() {
    let tls = server_tls();
    let server =
        start("imaps", Some(tls.acceptor.clone()), ConnLimiter::new(10, 10), |conn: Conn| async move {
            let mut io = postamt_net::io::Io::new(conn.stream);
            let mut lines = 0;
            while let Ok(postamt_net::io::Line::Complete(line)) = io.read_line(4096, TIMEOUT, None).await {
                lines += 1;
                if line == b"END" {
                    io.wbuf.extend_from_slice(format!("{lines} lines\r\n").as_bytes());
                }
            }
            io.shutdown().await;
        })
        .await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut s =
        connector(&tls.cert, &[&rustls::version::TLS13]).connect(server_name(), tcp).await.expect("TLS");
    // Ten lines of 600 octets and END in one write, hence one TLS record of about 6 KB: the
    // server's first small read leaves most of it decrypted inside rustls, and no more
    // arrives on the socket until the server answers.
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.extend_from_slice(format!("{i:03} {}\r\n", "x".repeat(594)).as_bytes());
    }
    batch.extend_from_slice(b"END\r\n");
    s.write_all(&batch).await.expect("write");
    s.flush().await.expect("flush");
    assert_eq!(read_line(&mut s).await, "11 lines\r\n");
    // Now the server waits on the socket, and wakes for more.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"END\r\n").await.expect("write");
    s.flush().await.expect("flush");
    assert_eq!(read_line(&mut s).await, "12 lines\r\n");
    server.shutdown.cancel();
}
