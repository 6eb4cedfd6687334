//! The state machine of one POP3 connection (RFC 1939 sections 3 to 6).
//!
//! - AUTHORIZATION: USER/PASS (RFC 1939 section 7) or AUTH with SASL PLAIN or LOGIN
//!   (RFC 5034), only over TLS unless `auth.allow_plaintext`; STLS (RFC 2595) on the
//!   cleartext port; CAPA (RFC 2449) in every state. Logins go through the shared
//!   [`Authenticator`] (per-IP growing delay); three failures close the connection.
//! - TRANSACTION: the session works on a snapshot of the account's INBOX taken at login
//!   (message numbers, sizes and unique ids never change during the session), under the
//!   exclusive maildrop lock (RFC 1939 section 8). DELE only marks a message.
//! - UPDATE: at QUIT the marked messages are removed with one `Store::expunge` call, which
//!   publishes `Expunged` events for IMAP sessions. A session that ends any other way
//!   (dropped connection, timeout, server shutdown) removes nothing.
//!
//! Another client (IMAP) may expunge a message of the snapshot meanwhile; RETR and TOP check
//! the store first and answer such a message with `-ERR`, never with its content.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postamt_auth::sasl::{self, SaslError};
use postamt_auth::{AuthError, Authenticator, Protocol};
use postamt_config::Config;
use postamt_net::{CancellationToken, Conn, Stream, TlsAcceptor};
use postamt_store::{Account, AccountId, BlobId, MailboxId, ModSeq, SharedStore, Store, StoreError, Uid};

use crate::lock::{MaildropLock, MaildropLocks};
use crate::message;
use crate::parse::{Command, MessageNumber, parse_command};
use crate::response::{RespCode, Response};
use postamt_net::io::{Io, Line, ReadError};

/// Longest command line accepted, CRLF included. RFC 2449 section 4 limits commands to 255
/// octets; some clients send longer AUTH initial responses, so we are generous.
const LINE_MAX: usize = 1024;
/// Longest SASL response line (RFC 5034 section 4 lifts the 255-octet limit for them).
const AUTH_LINE_MAX: usize = 8 * 1024;
/// Protocol errors (unknown commands, bad syntax, commands out of state) tolerated before
/// the connection is closed.
const MAX_ERRORS: u32 = 10;
/// Failed logins per connection before it is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// Output buffered before a long RETR or TOP response is written out.
const FLUSH_AT: usize = 64 * 1024;
/// Time allowed for the TLS handshake after STLS.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The POP3 service of one listener (`pop3` with STLS, or `pop3s`), shared by all its
/// connections.
pub struct Pop3Service {
    pub config: Arc<Config>,
    /// Offered as STLS on cleartext connections; `None` for implicit TLS (`pop3s`).
    pub starttls: Option<TlsAcceptor>,
    pub auth: Authenticator,
    pub store: SharedStore,
    pub shutdown: CancellationToken,
    /// Maildrop locks; one set shared by all POP3 services of the process.
    pub locks: Arc<MaildropLocks>,
}

impl Pop3Service {
    /// Serves one connection to its end.
    pub async fn handle(self: Arc<Self>, conn: Conn) {
        let Conn { stream, peer, .. } = conn;
        let mut session = Session {
            svc: &self,
            peer,
            io: Io::new(stream),
            user: None,
            maildrop: None,
            errors: 0,
            auth_failures: 0,
        };
        session.run().await;
    }
}

/// One message of the session's snapshot.
#[derive(Debug)]
struct Entry {
    uid: Uid,
    blob: BlobId,
    size: u64,
    /// Marked by DELE; removed at QUIT unless RSET.
    deleted: bool,
    /// Expunged by another session since the snapshot was taken.
    removed: bool,
}

/// The TRANSACTION state: the locked maildrop of the logged-in account.
struct Maildrop {
    account: AccountId,
    address: String,
    mailbox: MailboxId,
    uidvalidity: u32,
    /// The mailbox's HIGHESTMODSEQ when `removed` was last brought up to date; every
    /// expunge raises it.
    checked_modseq: ModSeq,
    messages: Vec<Entry>,
    _lock: MaildropLock,
}

impl Maildrop {
    /// Number and total size of the messages not marked deleted (RFC 1939 section 5, STAT).
    fn totals(&self) -> (usize, u64) {
        self.messages.iter().filter(|m| !m.deleted).fold((0, 0), |(n, size), m| (n + 1, size + m.size))
    }

    /// The index of message `n`, or the `-ERR` for a number outside the maildrop or a
    /// message marked deleted (RFC 1939 section 5: such messages may not be referred to).
    fn index(&self, n: MessageNumber) -> Result<usize, Response> {
        let index = self.slot(n).ok_or_else(|| self.no_such_message())?;
        if self.messages[index].deleted {
            return Err(Response::err(format!("message {n} is deleted")));
        }
        Ok(index)
    }

    /// The index of message `n` in the snapshot, deleted or not.
    fn slot(&self, n: MessageNumber) -> Option<usize> {
        usize::try_from(n).ok()?.checked_sub(1).filter(|&i| i < self.messages.len())
    }

    fn no_such_message(&self) -> Response {
        Response::err(format!("no such message, only {} messages in maildrop", self.messages.len()))
    }

    /// The unique-id listing value (RFC 1939 section 7, UIDL): UIDVALIDITY and UID together
    /// never name another message of this account's INBOX, now or later, because UIDs only
    /// grow and a recreated INBOX gets a UIDVALIDITY never used before.
    fn unique_id(&self, index: usize) -> String {
        format!("{}.{}", self.uidvalidity, self.messages[index].uid)
    }

    /// Brings `removed` up to date with the store, which is cheap when nothing was expunged
    /// from the mailbox since the last check (one mailbox row read). With `force`, lists the
    /// mailbox anyway.
    async fn refresh(&mut self, store: &dyn Store, force: bool) -> Result<(), StoreError> {
        let modseq = match store.mailbox_by_name(self.account, "INBOX").await? {
            Some(mb) if mb.id == self.mailbox => Some(mb.highestmodseq),
            // INBOX was renamed or recreated: look for our mailbox under its new name.
            _ => store
                .list_mailboxes(self.account)
                .await?
                .into_iter()
                .find(|mb| mb.id == self.mailbox)
                .map(|mb| mb.highestmodseq),
        };
        let Some(modseq) = modseq else {
            // The mailbox itself is gone, and all its messages with it.
            self.messages.iter_mut().for_each(|m| m.removed = true);
            return Ok(());
        };
        if modseq == self.checked_modseq && !force {
            return Ok(());
        }
        let current = match store.list_messages(self.account, self.mailbox).await {
            Ok(list) => list,
            Err(StoreError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        // Both lists are in UID order.
        for entry in &mut self.messages {
            if current.binary_search_by_key(&entry.uid, |m| m.uid).is_err() {
                entry.removed = true;
            }
        }
        self.checked_modseq = modseq;
        Ok(())
    }
}

struct Session<'a> {
    svc: &'a Pop3Service,
    peer: SocketAddr,
    io: Io,
    /// The name given by USER, waiting for PASS.
    user: Option<String>,
    /// Set in the TRANSACTION state.
    maildrop: Option<Maildrop>,
    errors: u32,
    auth_failures: u32,
}

/// How a command handler wants the session to go on.
enum Flow {
    Continue,
    Close,
}

impl Session<'_> {
    fn respond(&mut self, response: Response) {
        response.write_to(&mut self.io.wbuf);
    }

    /// Answers a protocol error (unknown command, bad syntax, wrong state), which counts
    /// towards [`MAX_ERRORS`]; the last one tolerated says that the connection closes.
    fn protocol_error(&mut self, response: Response) {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            tracing::info!("too many protocol errors, closing connection");
            self.respond(Response::err(format!("{}; too many errors, closing connection", response.text)));
        } else {
            self.respond(response);
        }
    }

    async fn run(&mut self) {
        let greeting = format!("{} POP3 server ready", self.svc.config.hostname);
        self.respond(Response::ok(greeting));
        loop {
            let line = match self.io.read_line(LINE_MAX, self.idle_timeout(), Some(&self.svc.shutdown)).await
            {
                Ok(line) => line,
                Err(e) => return self.end(e).await,
            };
            let flow = match line {
                Line::TooLong(_) => {
                    self.protocol_error(Response::err("command line too long"));
                    Flow::Continue
                }
                Line::Complete(bytes) => match parse_command(&bytes) {
                    Ok(cmd) => match self.command(cmd).await {
                        Ok(flow) => flow,
                        Err(e) => return self.end(e).await,
                    },
                    Err(e) => {
                        self.protocol_error(Response::err(e.to_string()));
                        Flow::Continue
                    }
                },
            };
            if matches!(flow, Flow::Close) || self.errors >= MAX_ERRORS {
                self.io.shutdown().await;
                return self.ended();
            }
        }
    }

    /// Ends the session after a read stopped.
    /// The inactivity autologout timer, `[limits] pop3_idle_timeout` (RFC 1939 section 3 asks
    /// for at least 10 minutes, the default).
    fn idle_timeout(&self) -> Duration {
        self.svc.config.limits.pop3_idle_timeout
    }

    async fn end(&mut self, reason: ReadError) {
        match reason {
            // RFC 1939 section 3: on autologout the server closes the connection without
            // entering UPDATE and without a response.
            ReadError::Timeout => tracing::debug!("idle timeout"),
            ReadError::Shutdown => {
                self.respond(Response::err_code(RespCode::SysTemp, "server shutting down, try again later"));
            }
            ReadError::Io(e) => tracing::debug!(error = %e, "connection error"),
            ReadError::Eof => {}
        }
        self.io.shutdown().await;
        self.ended();
    }

    fn ended(&mut self) {
        if let Some(md) = self.maildrop.take() {
            let kept = md.messages.iter().filter(|m| m.deleted).count();
            if kept > 0 {
                tracing::info!(user = %md.address, kept, "session ended without QUIT; nothing deleted");
            }
        }
        tracing::debug!("session ended");
    }

    async fn command(&mut self, cmd: Command) -> Result<Flow, ReadError> {
        tracing::trace!(?cmd, "command");
        if self.maildrop.is_none() { self.authorization(cmd).await } else { self.transaction(cmd).await }
    }

    /// Commands of the AUTHORIZATION state (RFC 1939 section 4).
    async fn authorization(&mut self, cmd: Command) -> Result<Flow, ReadError> {
        match cmd {
            Command::Capa => self.capa(),
            Command::Quit => {
                let bye = format!("{} POP3 server signing off", self.svc.config.hostname);
                self.respond(Response::ok(bye));
                return Ok(Flow::Close);
            }
            Command::Stls => return self.stls().await,
            Command::User(name) => {
                if !self.login_allowed() {
                    self.user = None;
                    self.protocol_error(tls_required());
                } else {
                    // Says nothing about whether the user exists.
                    self.user = Some(name);
                    self.respond(Response::ok("send PASS"));
                }
            }
            Command::Pass(password) => {
                if !self.login_allowed() {
                    self.protocol_error(tls_required());
                } else if let Some(user) = self.user.take() {
                    return self.login(&user, &password).await;
                } else {
                    self.protocol_error(Response::err("send USER first"));
                }
            }
            Command::Auth { mechanism, initial } => {
                self.user = None;
                return self.authenticate(mechanism, initial).await;
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Rset
            | Command::Noop
            | Command::Top { .. }
            | Command::Uidl(_) => self.protocol_error(Response::err("not logged in")),
        }
        Ok(Flow::Continue)
    }

    /// Commands of the TRANSACTION state (RFC 1939 section 5), and QUIT into UPDATE.
    async fn transaction(&mut self, cmd: Command) -> Result<Flow, ReadError> {
        let Some(md) = self.maildrop.as_mut() else { return Ok(Flow::Continue) };
        let out = &mut self.io.wbuf;
        match cmd {
            Command::Capa => self.capa(),
            Command::Quit => return Ok(self.quit().await),
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls => {
                self.protocol_error(Response::err("already logged in"));
            }
            Command::Stat => {
                let (count, size) = md.totals();
                Response::ok(format!("{count} {size}")).write_to(out);
            }
            Command::List(None) => {
                let (count, size) = md.totals();
                Response::ok(format!("{count} messages ({size} octets)")).write_to(out);
                for (i, m) in md.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    out.extend_from_slice(format!("{} {}\r\n", i + 1, m.size).as_bytes());
                }
                out.extend_from_slice(message::TERMINATOR);
            }
            Command::List(Some(n)) => match md.index(n) {
                Ok(i) => Response::ok(format!("{n} {}", md.messages[i].size)).write_to(out),
                Err(e) => e.write_to(out),
            },
            Command::Uidl(None) => {
                Response::ok("unique-id listing follows").write_to(out);
                for i in (0..md.messages.len()).filter(|&i| !md.messages[i].deleted) {
                    out.extend_from_slice(format!("{} {}\r\n", i + 1, md.unique_id(i)).as_bytes());
                }
                out.extend_from_slice(message::TERMINATOR);
            }
            Command::Uidl(Some(n)) => match md.index(n) {
                Ok(i) => Response::ok(format!("{n} {}", md.unique_id(i))).write_to(out),
                Err(e) => e.write_to(out),
            },
            Command::Dele(n) => match md.slot(n) {
                None => md.no_such_message().write_to(out),
                Some(i) if md.messages[i].deleted => {
                    Response::err(format!("message {n} already deleted")).write_to(out);
                }
                Some(i) => {
                    md.messages[i].deleted = true;
                    Response::ok(format!("message {n} deleted")).write_to(out);
                }
            },
            Command::Rset => {
                md.messages.iter_mut().for_each(|m| m.deleted = false);
                let (count, size) = md.totals();
                Response::ok(format!("maildrop has {count} messages ({size} octets)")).write_to(out);
            }
            Command::Noop => Response::ok("").write_to(out),
            Command::Retr(n) => return self.send_message(n, None).await,
            Command::Top { msg, lines } => return self.send_message(msg, Some(lines)).await,
        }
        Ok(Flow::Continue)
    }

    /// Whether USER/PASS and AUTH may be used on this connection (RFC 2595 section 2.1:
    /// passwords only under TLS, unless the configuration allows cleartext).
    fn login_allowed(&self) -> bool {
        self.io.is_tls() || self.svc.config.auth.allow_plaintext
    }

    fn stls_offered(&self) -> bool {
        self.svc.starttls.is_some() && !self.io.is_tls()
    }

    /// CAPA (RFC 2449 section 5). The list is the same in both states: capabilities of the
    /// AUTHORIZATION state must be announced in TRANSACTION too.
    fn capa(&mut self) {
        let mut caps = vec!["TOP".to_string(), "UIDL".to_string()];
        if self.login_allowed() {
            caps.push("USER".into());
            caps.push(format!("SASL {}", sasl::MECHANISMS.join(" ")));
        }
        if self.stls_offered() {
            caps.push("STLS".into());
        }
        caps.extend(
            ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION postamt"]
                .map(String::from),
        );
        self.respond(Response::ok("capability list follows"));
        for cap in caps {
            message::write_line(cap.as_bytes(), &mut self.io.wbuf);
        }
        self.io.wbuf.extend_from_slice(message::TERMINATOR);
    }

    /// STLS (RFC 2595 section 4).
    async fn stls(&mut self) -> Result<Flow, ReadError> {
        let acceptor = match &self.svc.starttls {
            _ if self.io.is_tls() => {
                self.protocol_error(Response::err("command not permitted when TLS active"));
                return Ok(Flow::Continue);
            }
            None => {
                self.protocol_error(Response::err("STLS not available"));
                return Ok(Flow::Continue);
            }
            Some(acceptor) => acceptor.clone(),
        };
        self.respond(Response::ok("begin TLS negotiation"));
        self.io.flush().await?;
        let Some((stream, discarded)) = self.io.take_for_tls() else { return Ok(Flow::Close) };
        if discarded > 0 {
            tracing::warn!(discarded, "discarded input pipelined after STLS");
        }
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, Stream::start_tls(stream, &acceptor)).await {
            Ok(Ok(tls)) => self.io.put_stream(tls),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return Ok(Flow::Close);
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return Ok(Flow::Close);
            }
        }
        // RFC 2595 section 4: forget what the client said before TLS (the USER name).
        self.user = None;
        Ok(Flow::Continue)
    }

    /// AUTH (RFC 5034 section 4) with PLAIN (RFC 4616) or LOGIN.
    async fn authenticate(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Result<Flow, ReadError> {
        if !self.login_allowed() {
            self.protocol_error(tls_required());
            return Ok(Flow::Continue);
        }
        let Some(mechanism) = mechanism else {
            // AUTH alone lists the mechanisms, as RFC 1734 servers did.
            self.respond(Response::ok("supported mechanisms follow"));
            for mechanism in sasl::MECHANISMS {
                message::write_line(mechanism.as_bytes(), &mut self.io.wbuf);
            }
            self.io.wbuf.extend_from_slice(message::TERMINATOR);
            return Ok(Flow::Continue);
        };
        let Some((mut exchange, mut step)) = sasl::Exchange::start(&mechanism, initial.as_deref()) else {
            self.protocol_error(Response::err("unsupported authentication mechanism"));
            return Ok(Flow::Continue);
        };
        let credentials = loop {
            match step {
                sasl::Step::Done(result) => break result,
                sasl::Step::Challenge(challenge) => {
                    let line = self.challenge(challenge).await?;
                    step = exchange.respond(&line);
                }
            }
        };
        match credentials {
            Ok(c) => self.login(&c.username, &c.password).await,
            // RFC 5034 section 4: "*" cancels, and the server rejects the AUTH command.
            Err(SaslError::Cancelled) => {
                self.respond(Response::err("authentication cancelled"));
                Ok(Flow::Continue)
            }
            Err(SaslError::AuthzidMismatch) => {
                self.respond(Response::err_code(
                    RespCode::Auth,
                    "authorization identity must be the user's own",
                ));
                Ok(self.auth_failed())
            }
            Err(SaslError::Base64 | SaslError::Malformed) => {
                self.protocol_error(Response::err("cannot decode the SASL response"));
                Ok(Flow::Continue)
            }
        }
    }

    /// Sends a continuation (`+ base64`, RFC 5034 section 4) and reads the client's answer.
    async fn challenge(&mut self, challenge: &'static str) -> Result<String, ReadError> {
        self.io.wbuf.extend_from_slice(format!("+ {challenge}\r\n").as_bytes());
        match self.io.read_line(AUTH_LINE_MAX, self.idle_timeout(), None).await? {
            Line::Complete(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            // Not base64 of anything: answered as undecodable.
            Line::TooLong(_) => Ok("!".to_string()),
        }
    }

    /// Checks the password, then locks and opens the maildrop.
    async fn login(&mut self, username: &str, password: &str) -> Result<Flow, ReadError> {
        let result = self.svc.auth.authenticate(self.peer.ip(), username, password, Protocol::Pop3).await;
        let response = match result {
            Ok(account) => return Ok(self.open_maildrop(account).await),
            Err(AuthError::Temporary(e)) => {
                tracing::error!(error = %e, "authentication backend failed");
                self.respond(Response::err_code(
                    RespCode::SysTemp,
                    "temporary authentication failure, try again later",
                ));
                return Ok(Flow::Continue);
            }
            Err(AuthError::InvalidCredentials) => "invalid user name or password".into(),
            Err(AuthError::ProtocolDisabled(protocol)) => {
                format!("{protocol} access is disabled for this account")
            }
            Err(AuthError::AccountDisabled) => "account is disabled".into(),
        };
        // RFC 3206 section 5: [AUTH] says the credentials or the account are the problem.
        self.respond(Response::err_code(RespCode::Auth, response));
        Ok(self.auth_failed())
    }

    fn auth_failed(&mut self) -> Flow {
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            tracing::info!("too many authentication failures, closing connection");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Enters the TRANSACTION state: takes the maildrop lock and the snapshot of the INBOX.
    async fn open_maildrop(&mut self, account: Account) -> Flow {
        let Some(lock) = self.svc.locks.try_lock(account.id) else {
            tracing::info!(user = %account.address, "maildrop in use by another POP3 session");
            self.respond(Response::err_code(
                RespCode::InUse,
                "maildrop already in use by another POP3 session",
            ));
            return Flow::Continue;
        };
        let store = &self.svc.store;
        let snapshot = async {
            let mailbox = store.mailbox_by_name(account.id, "INBOX").await?;
            match mailbox {
                Some(mb) => store.list_messages(account.id, mb.id).await.map(|list| Some((mb, list))),
                None => Ok(None),
            }
        };
        let (mailbox, list) = match snapshot.await {
            Ok(Some(found)) => found,
            Ok(None) => {
                tracing::error!(user = %account.address, "account has no INBOX");
                self.respond(Response::err_code(RespCode::SysPerm, "the account has no INBOX"));
                return Flow::Continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the maildrop");
                self.respond(Response::err_code(
                    RespCode::SysTemp,
                    "cannot open the maildrop, try again later",
                ));
                return Flow::Continue;
            }
        };
        let messages: Vec<Entry> = list
            .into_iter()
            .map(|m| Entry { uid: m.uid, blob: m.blob, size: m.size, deleted: false, removed: false })
            .collect();
        let md = Maildrop {
            account: account.id,
            address: account.address,
            mailbox: mailbox.id,
            uidvalidity: mailbox.uidvalidity,
            checked_modseq: mailbox.highestmodseq,
            messages,
            _lock: lock,
        };
        let (count, size) = md.totals();
        tracing::info!(user = %md.address, messages = count, tls = self.io.is_tls(), "logged in");
        self.respond(Response::ok(format!("logged in, {count} messages ({size} octets)")));
        self.maildrop = Some(md);
        Flow::Continue
    }

    /// RETR (`lines` = `None`) and TOP: the message, or its header and first `lines` body
    /// lines, byte-stuffed (RFC 1939 section 7). Checks the store first, so a message that
    /// another session expunged is never served.
    async fn send_message(&mut self, n: MessageNumber, lines: Option<u64>) -> Result<Flow, ReadError> {
        let store = &*self.svc.store;
        let Some(md) = self.maildrop.as_mut() else { return Ok(Flow::Continue) };
        let index = match md.index(n) {
            Ok(i) => i,
            Err(e) => {
                e.write_to(&mut self.io.wbuf);
                return Ok(Flow::Continue);
            }
        };
        let mut forced = false;
        let bytes = loop {
            if let Err(e) = md.refresh(store, forced).await {
                tracing::error!(error = %e, "cannot check the maildrop");
                Response::err_code(RespCode::SysTemp, "cannot read the message, try again later")
                    .write_to(&mut self.io.wbuf);
                return Ok(Flow::Continue);
            }
            let entry = &md.messages[index];
            if entry.removed {
                Response::err(format!("message {n} was removed by another session"))
                    .write_to(&mut self.io.wbuf);
                return Ok(Flow::Continue);
            }
            match store.read_blob(&entry.blob).await {
                Ok(bytes) => break bytes,
                // The body went with an expunge we have not seen yet: look again.
                Err(StoreError::BlobMissing(_)) if !forced => forced = true,
                Err(e) => {
                    tracing::error!(error = %e, uid = entry.uid, "cannot read message");
                    Response::err_code(RespCode::SysTemp, "cannot read the message, try again later")
                        .write_to(&mut self.io.wbuf);
                    return Ok(Flow::Continue);
                }
            }
        };
        let (body, first) = match lines {
            None => (&bytes[..], Response::ok(format!("{} octets", md.messages[index].size))),
            Some(lines) => {
                (&bytes[..message::top_len(&bytes, lines)], Response::ok("top of message follows"))
            }
        };
        first.write_to(&mut self.io.wbuf);
        for line in message::lines(body) {
            message::write_line(line, &mut self.io.wbuf);
            if self.io.wbuf.len() >= FLUSH_AT {
                self.io.flush().await?;
            }
        }
        self.io.wbuf.extend_from_slice(message::TERMINATOR);
        Ok(Flow::Continue)
    }

    /// QUIT in TRANSACTION: the UPDATE state (RFC 1939 section 6). All marked messages are
    /// removed in one store call; then the maildrop lock is released.
    async fn quit(&mut self) -> Flow {
        let Some(md) = self.maildrop.take() else { return Flow::Close };
        let hostname = &self.svc.config.hostname;
        let uids: Vec<Uid> = md.messages.iter().filter(|m| m.deleted).map(|m| m.uid).collect();
        if uids.is_empty() {
            self.respond(Response::ok(format!("{hostname} POP3 server signing off")));
            return Flow::Close;
        }
        match self.svc.store.expunge(md.account, md.mailbox, &uids).await {
            Ok(removed) => {
                tracing::info!(user = %md.address, deleted = removed.len(), "maildrop updated");
                let text = format!("{hostname} POP3 server signing off ({} messages deleted)", removed.len());
                self.respond(Response::ok(text));
            }
            Err(e) => {
                tracing::error!(error = %e, user = %md.address, "cannot remove deleted messages");
                self.respond(Response::err_code(RespCode::SysTemp, "some deleted messages not removed"));
            }
        }
        Flow::Close
    }
}

/// The answer to a login attempt over cleartext when `auth.allow_plaintext` is off.
fn tls_required() -> Response {
    Response::err_code(RespCode::Auth, "TLS required for login: use STLS first")
}
