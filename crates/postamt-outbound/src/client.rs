//! The SMTP client: one session with one remote host, delivering one message to a group of
//! recipients (RFC 5321 sections 3 and 4).
//!
//! A session is: connect, greeting, EHLO (HELO when EHLO is refused), opportunistic STARTTLS
//! (RFC 3207; the certificate is not verified, as usual between MX hosts without DANE or
//! MTA-STS) and EHLO again, AUTH PLAIN or LOGIN when credentials are configured (RFC 4954;
//! only over TLS), then transactions: MAIL with SIZE (RFC 1870), BODY=8BITMIME (RFC 6152),
//! SMTPUTF8 (RFC 6531) and the DSN parameters RET/ENVID (RFC 3461) where the server offers
//! them, RCPT per recipient with NOTIFY/ORCPT, DATA with the body dot-stuffed. With
//! PIPELINING (RFC 2920) MAIL, all RCPTs and DATA go out in one write. Every wait has the
//! time-out of RFC 5321 section 4.5.3.2.
//!
//! The result says for every recipient whether the server took it, refused it for now, or for
//! good; or that this host could not be used at all and the next one should be tried.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::reply::{Capabilities, EnhancedStatus, Reply, ReplyError, parse_reply};

/// Time-outs of RFC 5321 section 4.5.3.2 (and a connect time-out, which it leaves open).
pub mod timeouts {
    use std::time::Duration;

    /// Establishing the TCP connection (not in RFC 5321; Postfix uses 30 s).
    pub const CONNECT: Duration = Duration::from_secs(30);
    /// 4.5.3.2.1: initial 220 message, 5 minutes.
    pub const GREETING: Duration = Duration::from_secs(5 * 60);
    /// EHLO, STARTTLS, AUTH: not listed; the command time-out of 4.5.3.2.2.
    pub const COMMAND: Duration = Duration::from_secs(5 * 60);
    /// 4.5.3.2.2: MAIL, 5 minutes.
    pub const MAIL: Duration = Duration::from_secs(5 * 60);
    /// 4.5.3.2.3: RCPT, 5 minutes.
    pub const RCPT: Duration = Duration::from_secs(5 * 60);
    /// 4.5.3.2.4: DATA initiation, 2 minutes.
    pub const DATA_INIT: Duration = Duration::from_secs(2 * 60);
    /// 4.5.3.2.5: each data block sent, 3 minutes.
    pub const DATA_BLOCK: Duration = Duration::from_secs(3 * 60);
    /// 4.5.3.2.6: DATA termination, 10 minutes.
    pub const DATA_END: Duration = Duration::from_secs(10 * 60);
    /// QUIT: nothing depends on the answer.
    pub const QUIT: Duration = Duration::from_secs(10);
    /// The TLS handshake after STARTTLS or on connect.
    pub const TLS: Duration = Duration::from_secs(60);
}

/// Bytes written per data block (each with its own time-out).
const DATA_BLOCK_SIZE: usize = 64 * 1024;
/// Recipients per transaction: RFC 5321 4.5.3.1.8 requires servers to take at least 100.
pub const MAX_RCPTS_PER_TRANSACTION: usize = 100;

/// Why a session broke off.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection closed by the server while waiting for {0}")]
    Closed(&'static str),
    #[error("protocol error: {0}")]
    Protocol(#[from] ReplyError),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
}

/// How one recipient fared in one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server took responsibility (2xx after the data).
    Delivered,
    /// Try again later.
    Deferred,
    /// Give up: a permanent refusal.
    Failed,
}

/// What explains a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// The server's reply, and the command it answered.
    Smtp { reply: Reply, after: &'static str },
    /// Our own finding (connection refused, DNS, a missing extension).
    Local(String),
}

/// A recipient's result with what DSNs and logs report about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    pub verdict: Verdict,
    pub status: EnhancedStatus,
    pub diagnostic: Diagnostic,
    /// The host that answered (`name[ip]`), when one did.
    pub remote: Option<Remote>,
    /// Whether the server offered DSN: then it notifies on success itself (RFC 3461 5.2.2).
    pub remote_dsn: bool,
}

/// A remote host as reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.name, self.addr.ip())
    }
}

impl RecipientResult {
    pub fn local(verdict: Verdict, status: EnhancedStatus, text: impl Into<String>) -> RecipientResult {
        RecipientResult {
            verdict,
            status,
            diagnostic: Diagnostic::Local(text.into()),
            remote: None,
            remote_dsn: false,
        }
    }

    /// One line for the queue listing and logs: `mx.example[192.0.2.1] said: 550 5.1.1 User
    /// unknown (in reply to RCPT TO)`.
    pub fn summary(&self) -> String {
        match (&self.diagnostic, &self.remote) {
            (Diagnostic::Smtp { reply, after }, Some(remote)) => {
                format!("{remote} said: {} (in reply to {after})", reply.one_line())
            }
            (Diagnostic::Smtp { reply, after }, None) => {
                format!("{} (in reply to {after})", reply.one_line())
            }
            (Diagnostic::Local(text), _) => text.clone(),
        }
    }
}

/// One recipient as the transaction sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rcpt {
    pub address: String,
    /// RFC 3461 NOTIFY and ORCPT, passed on to DSN servers.
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The message and its envelope.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Reverse-path; empty for `<>`.
    pub sender: &'a str,
    pub rcpts: &'a [Rcpt],
    pub envid: Option<&'a str>,
    pub ret: Option<&'a str>,
    /// The client gave SMTPUTF8 when submitting.
    pub smtputf8: bool,
    /// The message cannot be sent without SMTPUTF8 (non-ASCII addresses or headers).
    pub needs_smtputf8: bool,
    /// The body has octets above 127.
    pub eight_bit: bool,
    pub body: &'a [u8],
}

/// Who we are and how we may talk to this host.
#[derive(Clone)]
pub struct SessionConfig {
    /// Our host name for EHLO.
    pub helo_name: String,
    pub tls: Arc<rustls::ClientConfig>,
    /// AUTH credentials (smarthost): require TLS and AUTH.
    pub auth: Option<(String, String)>,
    /// TLS from the first byte (port 465, RFC 8314).
    pub implicit_tls: bool,
    /// Whether to use STARTTLS when offered (false on the plain retry after a failed
    /// handshake).
    pub starttls: bool,
}

/// The result of a session with one host.
#[derive(Debug)]
pub enum SessionOutcome {
    /// Results per recipient, in the order of [`Message::rcpts`].
    Done(Vec<RecipientResult>),
    /// This host could not take the message at all (connection, greeting, EHLO, TLS, AUTH):
    /// try the next host. The result is what to report if no host works.
    NextHost(RecipientResult),
    /// The TLS handshake after STARTTLS failed: connect again without STARTTLS.
    TlsFailed(RecipientResult),
}

/// The client TLS configuration: TLS 1.2 and 1.3 with the ring provider, any certificate
/// accepted (opportunistic TLS protects against passive eavesdropping only; RFC 7435).
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
        // The ring provider supports the default versions; this cannot fail.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
    Arc::new(config)
}

/// Accepts any certificate but still checks the handshake signatures, so that the session is
/// at least encrypted to whoever holds the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the connection is handed to the TLS handshake, and after a failed one.
    Gone,
}

impl Transport {
    fn io(&mut self) -> io::Result<&mut dyn Io> {
        match self {
            Transport::Plain(s) => Ok(s),
            Transport::Tls(s) => Ok(s.as_mut()),
            Transport::Gone => {
                Err(io::Error::new(io::ErrorKind::NotConnected, "connection lost in the TLS handshake"))
            }
        }
    }
}

/// An SMTP connection: the transport and the bytes read but not yet consumed.
struct Connection {
    transport: Transport,
    buf: Vec<u8>,
}

impl Connection {
    async fn read_reply(
        &mut self,
        timeout: Duration,
        waiting_for: &'static str,
    ) -> Result<Reply, SessionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf)? {
                self.buf.drain(..used);
                tracing::trace!(reply = %reply, "smtp client <");
                return Ok(reply);
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.transport.io()?.read(&mut chunk))
                .await
                .map_err(|_| SessionError::Timeout(waiting_for))??;
            if read == 0 {
                return Err(SessionError::Closed(waiting_for));
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    async fn send(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
        what: &'static str,
    ) -> Result<(), SessionError> {
        let io = self.transport.io()?;
        tokio::time::timeout(timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| SessionError::Timeout(what))??;
        Ok(())
    }

    async fn command(
        &mut self,
        line: &str,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Reply, SessionError> {
        tracing::trace!(command = %redact(line), "smtp client >");
        self.send(format!("{line}\r\n").as_bytes(), timeout, what).await?;
        self.read_reply(timeout, what).await
    }

    /// Upgrades a plain connection to TLS. On failure the connection is gone.
    async fn start_tls(
        &mut self,
        connector: TlsConnector,
        name: ServerName<'static>,
    ) -> Result<(), SessionError> {
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Gone) else {
            return Err(SessionError::Tls(io::Error::other("TLS is already active")));
        };
        // Anything the server sent before the handshake is discarded (RFC 3207 section 4.2).
        self.buf.clear();
        let tls = tokio::time::timeout(timeouts::TLS, connector.connect(name, tcp))
            .await
            .map_err(|_| SessionError::Timeout("the TLS handshake"))?
            .map_err(SessionError::Tls)?;
        self.transport = Transport::Tls(Box::new(tls));
        Ok(())
    }
}

/// Hides AUTH arguments in traces.
fn redact(line: &str) -> &str {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case("AUTH") { "AUTH ..." } else { line }
}

/// The name for SNI: the host name when it is one, else the address.
fn server_name(host: &str, addr: SocketAddr) -> ServerName<'static> {
    ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()))
}

/// Delivers `msg` to the server at `addr` (named `host`), one session.
pub async fn deliver(
    config: &SessionConfig,
    host: &str,
    addr: SocketAddr,
    msg: &Message<'_>,
) -> SessionOutcome {
    let remote = Remote { name: host.to_string(), addr };
    let transient = |status: EnhancedStatus, text: String| RecipientResult {
        verdict: Verdict::Deferred,
        status,
        diagnostic: Diagnostic::Local(text),
        remote: Some(remote.clone()),
        remote_dsn: false,
    };

    let tcp = match tokio::time::timeout(timeouts::CONNECT, TcpStream::connect(addr)).await {
        Err(_) => {
            return SessionOutcome::NextHost(transient(
                CONNECT_FAILED,
                format!("connect to {remote}:{}: timed out", addr.port()),
            ));
        }
        Ok(Err(e)) => {
            return SessionOutcome::NextHost(transient(
                CONNECT_FAILED,
                format!("connect to {remote}:{}: {e}", addr.port()),
            ));
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let mut conn = Connection { transport: Transport::Plain(tcp), buf: Vec::new() };
    let connector = TlsConnector::from(config.tls.clone());
    if config.implicit_tls
        && let Err(e) = conn.start_tls(connector.clone(), server_name(host, addr)).await
    {
        return SessionOutcome::NextHost(transient(TLS_FAILED, format!("{remote}: {e}")));
    }

    let mut session =
        Session { conn, remote: remote.clone(), caps: Capabilities::default(), tls: config.implicit_tls };
    let outcome = session.run(config, connector, host, addr, msg).await;
    session.quit().await;
    outcome
}

/// X.4.1: no answer from host (RFC 3463).
const CONNECT_FAILED: EnhancedStatus = EnhancedStatus::new(4, 4, 1);
/// X.4.2: bad connection.
const CONNECTION_LOST: EnhancedStatus = EnhancedStatus::new(4, 4, 2);
/// X.7.0 for TLS and AUTH trouble (RFC 3463 "other or undefined security status").
const TLS_FAILED: EnhancedStatus = EnhancedStatus::new(4, 7, 0);
/// X.5.0: other or undefined protocol status (the server broke the protocol).
const PROTOCOL: EnhancedStatus = EnhancedStatus::new(4, 5, 0);

struct Session {
    conn: Connection,
    remote: Remote,
    caps: Capabilities,
    tls: bool,
}

/// Where a session went wrong before the transaction, for [`SessionOutcome::NextHost`].
enum Setup {
    Next(RecipientResult),
    TlsFailed(RecipientResult),
}

impl Session {
    fn result(&self, verdict: Verdict, status: EnhancedStatus, diagnostic: Diagnostic) -> RecipientResult {
        RecipientResult {
            verdict,
            status,
            diagnostic,
            remote: Some(self.remote.clone()),
            remote_dsn: self.caps.dsn,
        }
    }

    fn reply_result(&self, reply: &Reply, after: &'static str) -> RecipientResult {
        let verdict = if reply.is_positive() {
            Verdict::Delivered
        } else if reply.is_permanent() {
            Verdict::Failed
        } else {
            Verdict::Deferred
        };
        self.result(verdict, reply.status(), Diagnostic::Smtp { reply: reply.clone(), after })
    }

    fn error_result(&self, e: &SessionError) -> RecipientResult {
        let status = match e {
            SessionError::Protocol(_) => PROTOCOL,
            SessionError::Tls(_) => TLS_FAILED,
            _ => CONNECTION_LOST,
        };
        self.result(Verdict::Deferred, status, Diagnostic::Local(format!("{}: {e}", self.remote)))
    }

    fn local(&self, verdict: Verdict, status: EnhancedStatus, text: String) -> RecipientResult {
        self.result(verdict, status, Diagnostic::Local(format!("{}: {text}", self.remote)))
    }

    async fn run(
        &mut self,
        config: &SessionConfig,
        connector: TlsConnector,
        host: &str,
        addr: SocketAddr,
        msg: &Message<'_>,
    ) -> SessionOutcome {
        match self.setup(config, connector, host, addr).await {
            Ok(()) => {}
            Err(Setup::Next(r)) => return SessionOutcome::NextHost(r),
            Err(Setup::TlsFailed(r)) => return SessionOutcome::TlsFailed(r),
        }
        if let Err(r) = self.check_extensions(msg) {
            return SessionOutcome::Done(vec![r; msg.rcpts.len()]);
        }

        // Transactions of at most 100 recipients; recipients refused with 452 4.5.3 ("too
        // many recipients", RFC 5321 4.5.3.1.10) go into the next transaction at once.
        let mut results: Vec<Option<RecipientResult>> = vec![None; msg.rcpts.len()];
        let mut todo: Vec<usize> = (0..msg.rcpts.len()).collect();
        while !todo.is_empty() {
            let batch: Vec<usize> = todo.iter().copied().take(MAX_RCPTS_PER_TRANSACTION).collect();
            let (outcome, broken) = self.transaction(msg, &batch).await;
            let accepted_any = outcome.iter().any(|r| r.verdict == Verdict::Delivered);
            let mut again = Vec::new();
            for (&i, r) in batch.iter().zip(outcome) {
                if accepted_any && broken.is_none() && is_too_many_recipients(&r) {
                    again.push(i);
                } else {
                    results[i] = Some(r);
                }
            }
            todo = again.into_iter().chain(todo.into_iter().skip(batch.len())).collect();
            if todo.is_empty() {
                break;
            }
            // The connection broke, or the server refuses to reset: the rest waits for the
            // next attempt.
            let stop = match broken {
                Some(broken) => Some(broken),
                None => match self.conn.command("RSET", timeouts::COMMAND, "the RSET reply").await {
                    Ok(r) if r.is_positive() => None,
                    Ok(r) => {
                        Some(RecipientResult { verdict: Verdict::Deferred, ..self.reply_result(&r, "RSET") })
                    }
                    Err(e) => Some(self.error_result(&e)),
                },
            };
            if let Some(stop) = stop {
                for i in todo.drain(..) {
                    results[i] = Some(stop.clone());
                }
            }
        }
        SessionOutcome::Done(
            results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| RecipientResult::local(Verdict::Deferred, PROTOCOL, "not attempted"))
                })
                .collect(),
        )
    }

    /// Greeting, EHLO, STARTTLS, AUTH.
    async fn setup(
        &mut self,
        config: &SessionConfig,
        connector: TlsConnector,
        host: &str,
        addr: SocketAddr,
    ) -> Result<(), Setup> {
        let greeting = self
            .conn
            .read_reply(timeouts::GREETING, "the greeting")
            .await
            .map_err(|e| Setup::Next(self.error_result(&e)))?;
        if !greeting.is_positive() {
            // RFC 5321 3.1: 554 means no SMTP service here; 4xx try later. Either way, the next
            // host may do better.
            return Err(Setup::Next(self.reply_result(&greeting, "the initial greeting")));
        }
        self.ehlo(config).await?;

        if !self.tls && config.starttls && self.caps.starttls {
            let reply = self
                .conn
                .command("STARTTLS", timeouts::COMMAND, "the STARTTLS reply")
                .await
                .map_err(|e| Setup::Next(self.error_result(&e)))?;
            if reply.code == 220 {
                if let Err(e) = self.conn.start_tls(connector, server_name(host, addr)).await {
                    return Err(Setup::TlsFailed(self.error_result(&e)));
                }
                self.tls = true;
                // RFC 3207 4.2: forget everything learnt before TLS and greet again.
                self.caps = Capabilities::default();
                self.ehlo(config).await?;
            } else if config.auth.is_some() {
                return Err(Setup::Next(self.reply_result(&reply, "STARTTLS")).map_deferred());
            }
        }

        if let Some((user, password)) = &config.auth {
            if !self.tls {
                return Err(Setup::Next(self.local(
                    Verdict::Deferred,
                    TLS_FAILED,
                    "offers no STARTTLS; not sending the password in the clear".into(),
                )));
            }
            self.authenticate(user, password).await?;
        }
        Ok(())
    }

    async fn ehlo(&mut self, config: &SessionConfig) -> Result<(), Setup> {
        let reply = self
            .conn
            .command(&format!("EHLO {}", config.helo_name), timeouts::COMMAND, "the EHLO reply")
            .await
            .map_err(|e| Setup::Next(self.error_result(&e)))?;
        if reply.is_positive() {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(());
        }
        if reply.is_transient() {
            return Err(Setup::Next(self.reply_result(&reply, "EHLO")));
        }
        // RFC 5321 3.2: a server that does not know EHLO; try HELO, without extensions.
        let helo = self
            .conn
            .command(&format!("HELO {}", config.helo_name), timeouts::COMMAND, "the HELO reply")
            .await
            .map_err(|e| Setup::Next(self.error_result(&e)))?;
        if !helo.is_positive() {
            return Err(Setup::Next(self.reply_result(&helo, "HELO")));
        }
        self.caps = Capabilities {
            greeting: helo.lines.first().cloned().unwrap_or_default(),
            ..Capabilities::default()
        };
        Ok(())
    }

    /// AUTH PLAIN (RFC 4616) or LOGIN. A refusal is a configuration problem of ours: deferred,
    /// never bounced.
    async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), Setup> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let err = |s: &Session, e: SessionError| Setup::Next(s.error_result(&e));
        let reply = if self.caps.has_auth("PLAIN") {
            let token = b64(format!("\0{user}\0{password}").as_bytes());
            self.conn
                .command(&format!("AUTH PLAIN {token}"), timeouts::COMMAND, "the AUTH reply")
                .await
                .map_err(|e| err(self, e))?
        } else if self.caps.has_auth("LOGIN") {
            let mut reply = self
                .conn
                .command("AUTH LOGIN", timeouts::COMMAND, "the AUTH reply")
                .await
                .map_err(|e| err(self, e))?;
            for secret in [user, password] {
                if reply.code != 334 {
                    break;
                }
                reply = self
                    .conn
                    .command(&b64(secret.as_bytes()), timeouts::COMMAND, "the AUTH reply")
                    .await
                    .map_err(|e| err(self, e))?;
            }
            reply
        } else {
            return Err(Setup::Next(self.local(
                Verdict::Deferred,
                TLS_FAILED,
                format!("offers neither AUTH PLAIN nor AUTH LOGIN (AUTH {})", self.caps.auth.join(" ")),
            )));
        };
        if reply.is_positive() {
            return Ok(());
        }
        Err(Setup::Next(self.reply_result(&reply, "AUTH")).map_deferred())
    }

    /// What the message needs that this server must offer.
    fn check_extensions(&self, msg: &Message<'_>) -> Result<(), RecipientResult> {
        if let Some(limit) = self.caps.size.filter(|&l| l > 0)
            && msg.body.len() as u64 > limit
        {
            // RFC 1870 section 6: the message will not fit; no use trying again.
            return Err(self.local(
                Verdict::Failed,
                EnhancedStatus::new(5, 3, 4),
                format!("message of {} bytes exceeds the size limit of {limit} bytes", msg.body.len()),
            ));
        }
        if msg.needs_smtputf8 && !self.caps.smtputf8 {
            // RFC 6531 3.4: a message that needs SMTPUTF8 is not downgraded but returned.
            return Err(self.local(
                Verdict::Failed,
                EnhancedStatus::new(5, 6, 7),
                "does not support SMTPUTF8, which this message needs (non-ASCII addresses or headers)".into(),
            ));
        }
        if msg.eight_bit && !self.caps.eight_bit_mime {
            // RFC 6152 section 3: 8-bit data to a server without 8BITMIME is returned (we do
            // not convert).
            return Err(self.local(
                Verdict::Failed,
                EnhancedStatus::new(5, 6, 3),
                "does not support 8BITMIME, which this message needs".into(),
            ));
        }
        Ok(())
    }

    fn mail_command(&self, msg: &Message<'_>) -> String {
        let mut cmd = format!("MAIL FROM:<{}>", msg.sender);
        if self.caps.size.is_some() {
            cmd.push_str(&format!(" SIZE={}", msg.body.len()));
        }
        if msg.eight_bit && self.caps.eight_bit_mime {
            cmd.push_str(" BODY=8BITMIME");
        }
        if (msg.smtputf8 || msg.needs_smtputf8) && self.caps.smtputf8 {
            cmd.push_str(" SMTPUTF8");
        }
        if self.caps.dsn {
            if let Some(ret) = msg.ret {
                cmd.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = msg.envid {
                cmd.push_str(&format!(" ENVID={envid}"));
            }
        }
        cmd
    }

    fn rcpt_command(&self, rcpt: &Rcpt) -> String {
        let mut cmd = format!("RCPT TO:<{}>", rcpt.address);
        if self.caps.dsn {
            if let Some(notify) = &rcpt.notify {
                cmd.push_str(&format!(" NOTIFY={notify}"));
            }
            if let Some(orcpt) = &rcpt.orcpt {
                cmd.push_str(&format!(" ORCPT={orcpt}"));
            }
        }
        cmd
    }

    /// One transaction for the recipients `batch` (indexes into `msg.rcpts`); results in the
    /// same order, and what broke the connection if it broke.
    async fn transaction(
        &mut self,
        msg: &Message<'_>,
        batch: &[usize],
    ) -> (Vec<RecipientResult>, Option<RecipientResult>) {
        let n = batch.len();
        match self.transaction_inner(msg, batch).await {
            Ok(results) => (results, None),
            Err((e, partial)) => {
                let broken = self.error_result(&e);
                let results = partial
                    .into_iter()
                    .chain(std::iter::repeat(None))
                    .take(n)
                    .map(|r| r.unwrap_or_else(|| broken.clone()))
                    .collect();
                (results, Some(broken))
            }
        }
    }

    /// The transaction proper. On a broken connection returns the error and whatever final
    /// results were known by then (a recipient refused at RCPT stays refused).
    #[allow(clippy::type_complexity)]
    async fn transaction_inner(
        &mut self,
        msg: &Message<'_>,
        batch: &[usize],
    ) -> Result<Vec<RecipientResult>, (SessionError, Vec<Option<RecipientResult>>)> {
        let mail = self.mail_command(msg);
        let rcpts: Vec<String> = batch.iter().map(|&i| self.rcpt_command(&msg.rcpts[i])).collect();
        let mut results: Vec<Option<RecipientResult>> = vec![None; batch.len()];
        let fail = |e: SessionError, results: &Vec<Option<RecipientResult>>| (e, results.clone());

        let (mail_reply, rcpt_replies, data_reply) = if self.caps.pipelining {
            // RFC 2920 3.1: MAIL, RCPTs and DATA in one group, then the replies in order.
            let mut group = String::new();
            for line in std::iter::once(&mail).chain(&rcpts) {
                group.push_str(line);
                group.push_str("\r\n");
            }
            group.push_str("DATA\r\n");
            tracing::trace!(commands = %group.trim_end(), "smtp client > (pipelined)");
            self.conn
                .send(group.as_bytes(), timeouts::MAIL, "sending MAIL")
                .await
                .map_err(|e| fail(e, &results))?;
            let mail_reply = self
                .conn
                .read_reply(timeouts::MAIL, "the MAIL reply")
                .await
                .map_err(|e| fail(e, &results))?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                rcpt_replies.push(
                    self.conn
                        .read_reply(timeouts::RCPT, "the RCPT reply")
                        .await
                        .map_err(|e| fail(e, &results))?,
                );
            }
            let data_reply = self
                .conn
                .read_reply(timeouts::DATA_INIT, "the DATA reply")
                .await
                .map_err(|e| fail(e, &results))?;
            (mail_reply, rcpt_replies, Some(data_reply))
        } else {
            let mail_reply = self
                .conn
                .command(&mail, timeouts::MAIL, "the MAIL reply")
                .await
                .map_err(|e| fail(e, &results))?;
            if !mail_reply.is_positive() {
                (mail_reply, Vec::new(), None)
            } else {
                let mut rcpt_replies = Vec::with_capacity(rcpts.len());
                for line in &rcpts {
                    rcpt_replies.push(
                        self.conn
                            .command(line, timeouts::RCPT, "the RCPT reply")
                            .await
                            .map_err(|e| fail(e, &results))?,
                    );
                }
                let data_reply = if rcpt_replies.iter().any(Reply::is_positive) {
                    Some(
                        self.conn
                            .command("DATA", timeouts::DATA_INIT, "the DATA reply")
                            .await
                            .map_err(|e| fail(e, &results))?,
                    )
                } else {
                    None
                };
                (mail_reply, rcpt_replies, data_reply)
            }
        };

        if !mail_reply.is_positive() {
            // The sender was refused: every recipient shares that fate.
            let r = self.reply_result(&mail_reply, "MAIL FROM");
            let r = if r.verdict == Verdict::Delivered {
                RecipientResult { verdict: Verdict::Deferred, ..r }
            } else {
                r
            };
            if data_reply.as_ref().is_some_and(|d| d.code == 354) {
                self.abort_data().await.map_err(|e| fail(e, &vec![Some(r.clone()); batch.len()]))?;
            }
            return Ok(vec![r; batch.len()]);
        }
        let mut accepted = Vec::new();
        for (i, reply) in rcpt_replies.iter().enumerate() {
            if reply.is_positive() {
                accepted.push(i);
            } else {
                let r = self.reply_result(reply, "RCPT TO");
                results[i] = Some(if reply.is_intermediate() {
                    RecipientResult { verdict: Verdict::Deferred, ..r }
                } else {
                    r
                });
            }
        }
        let Some(data_reply) = data_reply else {
            return Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| RecipientResult::local(Verdict::Deferred, PROTOCOL, "no DATA reply"))
                })
                .collect());
        };
        if accepted.is_empty() {
            // Every RCPT refused; a pipelined DATA was refused too (or, from a broken server,
            // accepted: end it at once with an empty message it must refuse).
            if data_reply.code == 354 {
                self.abort_data().await.map_err(|e| fail(e, &results))?;
            }
            return Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| RecipientResult::local(Verdict::Deferred, PROTOCOL, "no RCPT reply"))
                })
                .collect());
        }
        if data_reply.code != 354 {
            let r = self.reply_result(&data_reply, "DATA");
            let r = if r.is_delivered_or_intermediate() {
                RecipientResult { verdict: Verdict::Deferred, ..r }
            } else {
                r
            };
            for &i in &accepted {
                results[i] = Some(r.clone());
            }
            return Ok(results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| RecipientResult::local(Verdict::Deferred, PROTOCOL, "no reply")))
                .collect());
        }

        let data = dot_stuff(msg.body);
        for block in data.chunks(DATA_BLOCK_SIZE) {
            self.conn
                .send(block, timeouts::DATA_BLOCK, "sending the message")
                .await
                .map_err(|e| fail(e, &results))?;
        }
        let end = self
            .conn
            .read_reply(timeouts::DATA_END, "the reply to the end of data")
            .await
            .map_err(|e| fail(e, &results))?;
        let r = self.reply_result(&end, "end of DATA");
        let r = if end.is_intermediate() { RecipientResult { verdict: Verdict::Deferred, ..r } } else { r };
        for &i in &accepted {
            results[i] = Some(r.clone());
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| RecipientResult::local(Verdict::Deferred, PROTOCOL, "no reply")))
            .collect())
    }

    /// Ends a DATA that should not have been accepted, with an empty message.
    async fn abort_data(&mut self) -> Result<(), SessionError> {
        self.conn.send(b".\r\n", timeouts::DATA_BLOCK, "ending DATA").await?;
        self.conn.read_reply(timeouts::DATA_END, "the reply to the end of data").await.map(|_| ())
    }

    async fn quit(&mut self) {
        if self.conn.send(b"QUIT\r\n", timeouts::QUIT, "QUIT").await.is_ok() {
            let _ = self.conn.read_reply(timeouts::QUIT, "the QUIT reply").await;
        }
        if let Ok(io) = self.conn.transport.io() {
            let _ = tokio::time::timeout(timeouts::QUIT, io.shutdown()).await;
        }
    }
}

impl RecipientResult {
    fn is_delivered_or_intermediate(&self) -> bool {
        self.verdict == Verdict::Delivered
            || matches!(&self.diagnostic, Diagnostic::Smtp { reply, .. } if reply.is_intermediate())
    }
}

impl Setup {
    /// A refusal that is our configuration's fault (STARTTLS refused to the smarthost, AUTH
    /// refused): deferred, never bounced.
    fn map_deferred(self) -> Setup {
        match self {
            Setup::Next(r) => Setup::Next(RecipientResult {
                verdict: Verdict::Deferred,
                status: EnhancedStatus { class: 4, ..r.status },
                ..r
            }),
            other => other,
        }
    }
}

/// `452 4.5.3`: the server takes no more recipients in this transaction.
fn is_too_many_recipients(r: &RecipientResult) -> bool {
    matches!(&r.diagnostic, Diagnostic::Smtp { reply, after: "RCPT TO" }
        if reply.code == 452 && reply.enhanced() == Some(EnhancedStatus::new(4, 5, 3)))
}

/// The body as DATA sends it (RFC 5321 4.5.2): lines end in CRLF (a bare LF becomes CRLF),
/// a line starting with `.` gets another `.`, the last line is terminated, then `.` CRLF.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !body.is_empty() && !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..c\r\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no final newline"), b"no final newline\r\n.\r\n");
        assert_eq!(dot_stuff(b"bare\nlf\n.x"), b"bare\r\nlf\r\n..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        // A dot inside a line is not at a line start.
        assert_eq!(dot_stuff(b"a.b\r\n"), b"a.b\r\n.\r\n");
    }

    #[test]
    fn summaries() {
        let remote = Remote { name: "mx.example".into(), addr: "192.0.2.1:25".parse().unwrap() };
        let reply = Reply { code: 550, lines: vec!["5.1.1 User unknown".into()] };
        let r = RecipientResult {
            verdict: Verdict::Failed,
            status: reply.status(),
            diagnostic: Diagnostic::Smtp { reply, after: "RCPT TO" },
            remote: Some(remote),
            remote_dsn: true,
        };
        assert_eq!(r.summary(), "mx.example[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO)");
        let local = RecipientResult::local(Verdict::Deferred, CONNECT_FAILED, "connect to x: refused");
        assert_eq!(local.summary(), "connect to x: refused");
        assert!(is_too_many_recipients(&RecipientResult {
            diagnostic: Diagnostic::Smtp {
                reply: Reply { code: 452, lines: vec!["4.5.3 Too many recipients".into()] },
                after: "RCPT TO"
            },
            ..local.clone()
        }));
        assert!(!is_too_many_recipients(&RecipientResult {
            diagnostic: Diagnostic::Smtp {
                reply: Reply { code: 452, lines: vec!["4.2.2 Mailbox full".into()] },
                after: "RCPT TO"
            },
            ..local
        }));
    }

    #[test]
    fn auth_lines_are_redacted() {
        assert_eq!(redact("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "AUTH ...");
        assert_eq!(redact("auth login"), "AUTH ...");
        assert_eq!(redact("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }
}
