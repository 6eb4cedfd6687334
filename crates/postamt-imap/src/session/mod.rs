//! One IMAP connection: the framer (lines and literals, with limits), the state machine of
//! RFC 9051 section 3 (not authenticated, authenticated, selected, logout), and the commands
//! valid in every state. Mailbox commands live in [`mailboxes`], the selected state in
//! [`selected`], FETCH in [`fetch`], SEARCH in [`search`].

mod fetch;
mod mailboxes;
mod metadata;
mod quota;
mod search;
mod selected;
mod sort;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postamt_auth::sasl::{self, SaslError};
use postamt_auth::{AuthError, Authenticator, Protocol};
use postamt_config::Config;
use postamt_net::io::{Io, Line, ReadError};
use postamt_net::{CancellationToken, Conn, Stream, TlsAcceptor};
use postamt_store::{Account, ChangeEvent, SharedStore};
use tokio::sync::broadcast;

use crate::command::{Command, Request, SearchCommand, SortCommand};
use crate::parse::{self, literal_suffix, peek_tag_and_name};
use selected::View;

/// Longest command line (without literals) we accept.
const MAX_LINE: usize = 64 * 1024;
/// Largest literal outside APPEND (search strings, passwords, ...), and largest command
/// in total outside APPEND.
const MAX_SMALL_LITERAL: u64 = 64 * 1024;
/// Time allowed before login; after it, `[limits] imap_idle_timeout` (RFC 9051 section 5.4:
/// the autologout timer is at least 30 minutes once authenticated, the default).
const PRE_AUTH_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed to send a literal's bytes.
const LITERAL_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Bad commands tolerated before the connection is closed.
const MAX_ERRORS: u32 = 30;
const MAX_AUTH_FAILURES: u32 = 3;
/// Flush output once this much is buffered (large FETCH responses).
const FLUSH_AT: usize = 64 * 1024;

/// The IMAP service shared by all its connections.
pub struct ImapService {
    pub config: Arc<Config>,
    /// Offered as STARTTLS on plain connections.
    pub starttls: Option<TlsAcceptor>,
    pub auth: Authenticator,
    pub store: SharedStore,
    pub shutdown: CancellationToken,
}

/// How a command ended, for the tagged response.
pub(crate) enum Outcome {
    Ok(Cow<'static, str>),
    No(Cow<'static, str>),
    Bad(Cow<'static, str>),
    /// The tagged response was already written (or the connection must close silently).
    Done,
    /// `* BYE` was written; close the connection.
    Close,
}

pub(crate) fn ok(s: impl Into<Cow<'static, str>>) -> Outcome {
    Outcome::Ok(s.into())
}
pub(crate) fn no(s: impl Into<Cow<'static, str>>) -> Outcome {
    Outcome::No(s.into())
}
pub(crate) fn bad(s: impl Into<Cow<'static, str>>) -> Outcome {
    Outcome::Bad(s.into())
}

/// Errors that end the connection.
pub(crate) enum Fatal {
    Read(ReadError),
}

impl From<ReadError> for Fatal {
    fn from(e: ReadError) -> Fatal {
        Fatal::Read(e)
    }
}

impl From<std::io::Error> for Fatal {
    fn from(e: std::io::Error) -> Fatal {
        Fatal::Read(ReadError::Io(e))
    }
}

pub(crate) struct Session<'a> {
    pub(crate) svc: &'a ImapService,
    pub(crate) peer: SocketAddr,
    pub(crate) io: Io,
    pub(crate) account: Option<Account>,
    pub(crate) events: Option<broadcast::Receiver<ChangeEvent>>,
    pub(crate) selected: Option<View>,
    /// The client enabled IMAP4rev2 (RFC 9051 section 6.3.1): UTF-8 names, ESEARCH, no \Recent.
    pub(crate) rev2: bool,
    /// The client enabled UTF8=ACCEPT (RFC 6855): UTF-8 names and strings, without the other
    /// IMAP4rev2 changes.
    pub(crate) utf8_accept: bool,
    /// A CONDSTORE enabling command was issued (RFC 7162 section 3.1): every untagged FETCH
    /// carries UID and MODSEQ, SELECT reports HIGHESTMODSEQ.
    pub(crate) condstore: bool,
    /// ENABLE QRESYNC was answered (RFC 7162 section 3.2.3): VANISHED replaces EXPUNGE, the
    /// QRESYNC select parameter and the VANISHED FETCH modifier are allowed.
    pub(crate) qresync: bool,
    errors: u32,
    auth_failures: u32,
}

impl ImapService {
    /// Serves one connection to its end.
    ///
    /// Not an `async fn`: that would keep its arguments in the future twice (as passed and as
    /// locals), and the future lives as long as the connection. Only what the session needs
    /// is moved in; the connection-limit slot is held until it ends.
    pub fn handle(self: Arc<Self>, conn: Conn) -> impl Future<Output = ()> + Send + 'static {
        let Conn { stream, peer, guard, .. } = conn;
        async move {
            let mut session = Session {
                svc: &self,
                peer,
                io: Io::new(stream),
                account: None,
                events: None,
                selected: None,
                rev2: false,
                utf8_accept: false,
                condstore: false,
                qresync: false,
                errors: 0,
                auth_failures: 0,
            };
            session.run().await;
            // The connection-limit slot is held until here.
            drop(guard);
        }
    }
}

impl Session<'_> {
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.io.wbuf
    }

    /// Writes an untagged line (`* ` + text + CRLF).
    pub(crate) fn untagged(&mut self, text: &str) {
        let out = &mut self.io.wbuf;
        out.extend_from_slice(b"* ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Flushes when much output is pending, so large responses do not pile up in memory.
    pub(crate) async fn maybe_flush(&mut self) -> Result<(), Fatal> {
        if self.io.wbuf.len() >= FLUSH_AT {
            self.io.flush().await?;
        }
        Ok(())
    }

    /// Whether mailbox names and strings travel as UTF-8 (IMAP4rev2, or UTF8=ACCEPT of
    /// RFC 6855 section 3) rather than modified UTF-7 and 7-bit quoted strings.
    pub(crate) fn utf8(&self) -> bool {
        self.rev2 || self.utf8_accept
    }

    /// A CONDSTORE enabling command (RFC 7162 section 3.1) other than SELECT/EXAMINE with
    /// parameters: the first one with a mailbox selected reports its HIGHESTMODSEQ.
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(modseq) = self.selected.as_ref().map(|v| v.modseq) {
            self.untagged(&format!("OK [HIGHESTMODSEQ {modseq}] Highest"));
        }
    }

    fn timeout(&self) -> Duration {
        if self.account.is_some() { self.svc.config.limits.imap_idle_timeout } else { PRE_AUTH_TIMEOUT }
    }

    async fn run(&mut self) {
        // One statement: a `greeting` local would live (with its heap text) for the whole
        // connection.
        self.untagged(&format!("OK [CAPABILITY {}] postamt ready", self.capabilities()));
        loop {
            let request = match self.read_command().await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    if self.errors >= MAX_ERRORS {
                        self.untagged("BYE Too many errors");
                        break;
                    }
                    continue;
                }
                Err(Fatal::Read(e)) => {
                    match e {
                        ReadError::Timeout => self.untagged("BYE Autologout; idle for too long"),
                        ReadError::Shutdown => self.untagged("BYE Server shutting down"),
                        ReadError::Eof | ReadError::Io(_) => {}
                    }
                    break;
                }
            };
            let tag = request.tag.clone();
            let name = request.command.name();
            tracing::trace!(tag = %tag, command = name, "command");
            // RFC 9051 section 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH
            // (their UID forms may carry them).
            // The same holds for SORT and THREAD, which are searches (RFC 5256 section 4).
            let expunge_allowed = !matches!(
                request.command,
                Command::Fetch { uid: false, .. }
                    | Command::Store { uid: false, .. }
                    | Command::Search(SearchCommand { uid: false, .. })
                    | Command::Sort(SortCommand { uid: false, .. })
                    | Command::Thread { uid: false, .. }
            );
            // Changes made elsewhere are reported before the command runs, so that it works
            // on current data (a UID FETCH of a message just delivered, say).
            let presync = self.selected.is_some()
                && !matches!(
                    request.command,
                    Command::Select { .. }
                        | Command::Examine { .. }
                        | Command::Close
                        | Command::Unselect
                        | Command::Logout
                );
            if presync && let Err(Fatal::Read(_)) = self.sync(expunge_allowed).await {
                break;
            }
            // A connection's future is as large as its largest await point, for as long as
            // the connection lasts. IDLE, where idle connections wait, runs inline and is
            // small; every other command runs in a box of its own, only while it runs (the
            // largest commands' futures are kilobytes).
            let dispatched = match request.command {
                Command::Idle if self.account.is_some() => self.idle().await,
                _ => Box::pin(self.dispatch(request)).await,
            };
            let result = match dispatched {
                Ok(outcome @ (Outcome::Ok(_) | Outcome::No(_) | Outcome::Bad(_)))
                    if self.selected.is_some() =>
                {
                    let synced = self.sync(expunge_allowed).await;
                    self.report_modseq_floor();
                    synced.map(|_| outcome)
                }
                other => other,
            };
            let outcome = match result {
                Ok(o) => o,
                Err(Fatal::Read(ReadError::Timeout)) => {
                    self.untagged("BYE Autologout; idle for too long");
                    break;
                }
                Err(Fatal::Read(ReadError::Shutdown)) => {
                    self.untagged("BYE Server shutting down");
                    break;
                }
                Err(Fatal::Read(_)) => break,
            };
            let close = self.finish(&tag, outcome);
            if close {
                break;
            }
            if self.errors >= MAX_ERRORS {
                self.untagged("BYE Too many errors");
                break;
            }
        }
        self.io.shutdown().await;
    }

    /// Writes the tagged response; returns whether the connection must close.
    fn finish(&mut self, tag: &str, outcome: Outcome) -> bool {
        let (status, text) = match outcome {
            Outcome::Ok(t) => ("OK", t),
            Outcome::No(t) => ("NO", t),
            Outcome::Bad(t) => {
                self.errors += 1;
                ("BAD", t)
            }
            Outcome::Done => return false,
            Outcome::Close => return true,
        };
        let line = format!("{tag} {status} {text}\r\n");
        self.io.wbuf.extend_from_slice(line.as_bytes());
        false
    }

    /// Reads one complete command, literals included. Returns `None` when the command was
    /// refused before it was complete (the response is already written).
    async fn read_command(&mut self) -> Result<Option<Request>, Fatal> {
        let mut buf = Vec::new();
        let mut first: Option<(String, String)> = None;
        loop {
            let interruptible = buf.is_empty().then_some(&self.svc.shutdown);
            let timeout = if buf.is_empty() { self.timeout() } else { LITERAL_TIMEOUT };
            let line = match self.io.read_line(MAX_LINE, timeout, interruptible).await? {
                Line::Complete(line) => line,
                Line::TooLong(prefix) => {
                    self.errors += 1;
                    let tag = first
                        .or_else(|| peek_tag_and_name(&prefix))
                        .map(|(t, _)| t)
                        .unwrap_or_else(|| "*".into());
                    self.io.wbuf.extend_from_slice(format!("{tag} BAD Command line too long\r\n").as_bytes());
                    return Ok(None);
                }
            };
            if buf.is_empty() && line.is_empty() {
                continue; // stray empty line between commands
            }
            if first.is_none() {
                first = peek_tag_and_name(&line);
            }
            buf.extend_from_slice(&line);
            let Some(literal) = literal_suffix(&line) else { break };
            let (tag, name) = first.clone().unwrap_or_else(|| ("*".into(), String::new()));
            let limit = if name == "APPEND" { self.svc.config.max_message_size } else { MAX_SMALL_LITERAL };
            let too_big =
                if name == "APPEND" { literal.size > limit } else { buf.len() as u64 + literal.size > limit };
            if too_big {
                if literal.sync {
                    // Refused before a byte of it is sent (RFC 9051 section 7.1, RFC 7889).
                    let text = format!("{tag} NO [TOOBIG] Literal larger than {limit} octets\r\n");
                    self.io.wbuf.extend_from_slice(text.as_bytes());
                    return Ok(None);
                }
                // A non-synchronizing literal is already on its way: the stream cannot be
                // resynchronised (RFC 7888 section 4).
                self.untagged(&format!("BYE [TOOBIG] Literal larger than {limit} octets"));
                return Err(Fatal::Read(ReadError::Eof));
            }
            if literal.sync {
                self.io.wbuf.extend_from_slice(b"+ Ready for literal data\r\n");
            }
            buf.extend_from_slice(b"\r\n");
            self.io.read_exact_into(literal.size, Some(&mut buf), LITERAL_TIMEOUT).await?;
        }
        match parse::parse_command(&buf) {
            Ok(request) => Ok(Some(request)),
            Err(e) => {
                self.errors += 1;
                let tag = e.tag.unwrap_or_else(|| "*".into());
                self.io.wbuf.extend_from_slice(format!("{tag} BAD {}\r\n", e.message).as_bytes());
                Ok(None)
            }
        }
    }

    pub(crate) fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev2", "IMAP4rev1"];
        let tls = self.io.is_tls();
        let login_allowed = tls || self.svc.config.auth.allow_plaintext;
        if self.account.is_none() {
            if !tls && self.svc.starttls.is_some() {
                caps.push("STARTTLS");
            }
            if login_allowed {
                caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.extend(["SASL-IR", "LITERAL+", "ID", "ENABLE"]);
        let mut caps: Vec<String> = caps.into_iter().map(String::from).collect();
        if self.account.is_some() {
            caps.extend(
                [
                    "IDLE",
                    "NAMESPACE",
                    "UNSELECT",
                    "UIDPLUS",
                    "MOVE",
                    "CHILDREN",
                    "LIST-EXTENDED",
                    "LIST-STATUS",
                    "SPECIAL-USE",
                    "CREATE-SPECIAL-USE",
                    "ESEARCH",
                    "SEARCHRES",
                    "MULTIAPPEND",
                    "STATUS=SIZE",
                    "CONDSTORE",
                    "QRESYNC",
                    "QUOTA",
                    "QUOTASET",
                    "QUOTA=RES-STORAGE",
                    "QUOTA=RES-MESSAGE",
                    "BINARY",
                    "UTF8=ACCEPT",
                    "SORT",
                    "SORT=DISPLAY",
                    "ESORT",
                    "THREAD=ORDEREDSUBJECT",
                    "THREAD=REFERENCES",
                    "OBJECTID",
                    "SAVEDATE",
                    "PREVIEW",
                    "COMPRESS=DEFLATE",
                    "METADATA",
                    "METADATA-SERVER",
                ]
                .map(String::from),
            );
            caps.push(format!("APPENDLIMIT={}", self.svc.config.max_message_size));
        }
        caps.join(" ")
    }

    async fn dispatch(&mut self, request: Request) -> Result<Outcome, Fatal> {
        let Request { tag, command } = request;
        let authenticated = self.account.is_some();
        let selected = self.selected.is_some();
        let outcome = match command {
            Command::Capability => {
                let caps = format!("CAPABILITY {}", self.capabilities());
                self.untagged(&caps);
                ok("CAPABILITY completed")
            }
            Command::Noop => {
                if selected {
                    self.sync(true).await?;
                }
                ok("NOOP completed")
            }
            Command::Logout => {
                self.untagged("BYE postamt logging out");
                self.finish(&tag, ok("LOGOUT completed"));
                return Ok(Outcome::Close);
            }
            Command::Id(fields) => {
                if let Some(fields) = fields {
                    let summary: Vec<String> = fields
                        .iter()
                        .take(10)
                        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                        .collect();
                    tracing::debug!(client = %summary.join(" "), "client ID");
                }
                self.untagged(&format!(
                    "ID (\"name\" \"postamt\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                ok("ID completed")
            }
            Command::StartTls if !authenticated => return self.starttls(&tag).await,
            Command::Authenticate { mechanism, initial } if !authenticated => {
                self.authenticate(&mechanism, initial).await?
            }
            Command::Login { username, password } if !authenticated => {
                if !(self.io.is_tls() || self.svc.config.auth.allow_plaintext) {
                    no("[PRIVACYREQUIRED] Plaintext login is not allowed without TLS; use STARTTLS")
                } else {
                    self.login(&username, &password).await
                }
            }
            Command::StartTls | Command::Authenticate { .. } | Command::Login { .. } => {
                bad("Already authenticated")
            }
            _ if !authenticated => bad("Log in first"),

            Command::Enable(caps) => {
                if selected {
                    bad("ENABLE is only valid before SELECT")
                } else {
                    // RFC 5161 section 3.1: ENABLED lists what this command newly enabled.
                    let mut enabled = vec![];
                    for cap in caps {
                        let flag = match cap.to_ascii_uppercase().as_str() {
                            "IMAP4REV2" => Some((&mut self.rev2, "IMAP4rev2")),
                            "CONDSTORE" => Some((&mut self.condstore, "CONDSTORE")),
                            "QRESYNC" => Some((&mut self.qresync, "QRESYNC")),
                            "UTF8=ACCEPT" => Some((&mut self.utf8_accept, "UTF8=ACCEPT")),
                            _ => None,
                        };
                        if let Some((flag, name)) = flag
                            && !*flag
                        {
                            *flag = true;
                            enabled.push(name);
                        }
                    }
                    // RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE.
                    if self.qresync {
                        self.condstore = true;
                    }
                    let line = if enabled.is_empty() {
                        "ENABLED".to_string()
                    } else {
                        format!("ENABLED {}", enabled.join(" "))
                    };
                    self.untagged(&line);
                    ok("ENABLE completed")
                }
            }
            Command::Select { mailbox, params } => self.select(&mailbox, false, params).await?,
            Command::Examine { mailbox, params } => self.select(&mailbox, true, params).await?,
            Command::GetMetadata { mailbox, maxsize, depth, entries } => {
                self.get_metadata(&mailbox, maxsize, depth, &entries).await
            }
            Command::SetMetadata { mailbox, entries } => self.set_metadata(&mailbox, entries).await,
            Command::GetQuota(root) => self.get_quota(&root).await,
            Command::GetQuotaRoot(mailbox) => self.get_quota_root(&mailbox).await,
            Command::SetQuota { root, limits } => self.set_quota(&root, &limits).await,
            Command::Create { mailbox, special_use } => self.create(&mailbox, &special_use).await,
            Command::Delete { mailbox } => self.delete(&mailbox).await,
            Command::Rename { from, to } => self.rename(&from, &to).await,
            Command::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            Command::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            Command::List(list) => self.list(list).await?,
            Command::Lsub { reference, pattern } => self.lsub(&reference, &pattern).await?,
            Command::Namespace => {
                let line = "NAMESPACE ((\"\" \"/\")) NIL NIL";
                self.untagged(line);
                ok("NAMESPACE completed")
            }
            Command::Status { mailbox, items } => self.status(&mailbox, &items).await,
            Command::Append { mailbox, messages } => self.append(&mailbox, messages).await?,
            // `run` serves IDLE itself, outside the box; kept so that dispatch stays complete.
            Command::Idle => return self.idle().await,
            Command::Compress(mechanism) => {
                if self.io.is_compressed() {
                    no("[COMPRESSIONACTIVE] DEFLATE is already active")
                } else if !mechanism.eq_ignore_ascii_case("DEFLATE") {
                    bad("Unknown compression mechanism")
                } else {
                    // RFC 4978 section 3: compressed from right after this response's CRLF.
                    self.finish(&tag, ok("DEFLATE active"));
                    self.io.flush().await?;
                    self.io.start_deflate();
                    return Ok(Outcome::Done);
                }
            }

            _ if !selected => bad("No mailbox selected"),
            Command::Check => {
                self.sync(true).await?;
                ok("CHECK completed")
            }
            Command::Close => self.close(true).await,
            Command::Unselect => self.close(false).await,
            Command::Expunge => self.expunge(None).await?,
            Command::UidExpunge(set) => self.expunge(Some(set)).await?,
            Command::Search(search) => self.search(&tag, search).await?,
            Command::Fetch { uid, set, items, modifiers } => self.fetch(uid, &set, &items, modifiers).await?,
            Command::Store { uid, set, mode, silent, flags, unchanged_since } => {
                self.store(uid, &set, mode, silent, &flags, unchanged_since).await?
            }
            Command::Sort(sort) => self.sort(&tag, sort).await?,
            Command::Thread { uid, algorithm, charset, keys } => {
                self.thread(uid, algorithm, &charset, keys).await?
            }
            Command::Copy { uid, set, mailbox } => self.copy(uid, &set, &mailbox, false).await?,
            Command::Move { uid, set, mailbox } => self.copy(uid, &set, &mailbox, true).await?,
        };
        Ok(outcome)
    }

    async fn starttls(&mut self, tag: &str) -> Result<Outcome, Fatal> {
        let Some(acceptor) = self.svc.starttls.clone().filter(|_| !self.io.is_tls()) else {
            return Ok(bad("TLS is not available or already active"));
        };
        self.finish(tag, ok("Begin TLS negotiation now"));
        self.io.flush().await?;
        let Some((stream, discarded)) = self.io.take_for_tls() else { return Ok(Outcome::Close) };
        if discarded > 0 {
            // RFC 9051 section 6.2.1: input sent ahead of the handshake is not processed.
            tracing::warn!(discarded, "discarded input pipelined after STARTTLS");
        }
        match tokio::time::timeout(Duration::from_secs(30), Stream::start_tls(stream, &acceptor)).await {
            Ok(Ok(tls)) => {
                self.io.put_stream(tls);
                Ok(Outcome::Done)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                Ok(Outcome::Close)
            }
            Err(_) => Ok(Outcome::Close),
        }
    }

    async fn login(&mut self, username: &str, password: &str) -> Outcome {
        let result = self.svc.auth.authenticate(self.peer.ip(), username, password, Protocol::Imap).await;
        match result {
            Ok(mut account) => {
                tracing::info!(user = %account.address, "authenticated");
                // Never needed again: not kept for the session's life (~100 bytes each, and
                // the hash stays out of long-lived memory).
                account.password_hash = String::new();
                self.events = Some(self.svc.store.events().subscribe(account.id));
                self.account = Some(account);
                let caps = self.capabilities();
                ok(format!("[CAPABILITY {caps}] Logged in"))
            }
            Err(AuthError::ProtocolDisabled(p)) => {
                self.auth_failures += 1;
                no(format!("[AUTHORIZATIONFAILED] {p} access is disabled for this account"))
            }
            Err(AuthError::Temporary(e)) => {
                tracing::error!(error = %e, "authentication backend failed");
                no("[UNAVAILABLE] Temporary authentication failure")
            }
            Err(_) => {
                self.auth_failures += 1;
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    self.untagged("BYE Too many authentication failures");
                    return Outcome::Close;
                }
                no("[AUTHENTICATIONFAILED] Authentication failed")
            }
        }
    }

    async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) -> Result<Outcome, Fatal> {
        if !(self.io.is_tls() || self.svc.config.auth.allow_plaintext) {
            return Ok(no("[PRIVACYREQUIRED] Authentication is not allowed without TLS; use STARTTLS"));
        }
        let Some((mut exchange, mut step)) =
            sasl::Exchange::start(&mechanism.to_ascii_uppercase(), initial.as_deref())
        else {
            return Ok(no("[CANNOT] Unsupported authentication mechanism"));
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
            Ok(c) => Ok(self.login(&c.username, &c.password).await),
            Err(SaslError::Cancelled) => Ok(bad("Authentication cancelled")),
            Err(_) => Ok(bad("Invalid SASL response")),
        }
    }

    /// Sends a `+` continuation and reads the client's response line.
    async fn challenge(&mut self, text: &str) -> Result<String, Fatal> {
        self.io.wbuf.extend_from_slice(format!("+ {text}\r\n").as_bytes());
        match self.io.read_line(16 * 1024, PRE_AUTH_TIMEOUT, None).await? {
            Line::Complete(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Line::TooLong(_) => Ok("!".to_string()),
        }
    }

    /// IDLE (RFC 2177): report changes as they happen until the client says DONE.
    async fn idle(&mut self) -> Result<Outcome, Fatal> {
        self.io.wbuf.extend_from_slice(b"+ idling\r\n");
        if self.selected.is_some() {
            self.sync(true).await?;
        }
        loop {
            if let Some(pos) = self.io.buffered().iter().position(|&b| b == b'\n') {
                let line = self.io.buffered()[..pos].to_vec();
                self.io.consume(pos + 1);
                let line = String::from_utf8_lossy(&line);
                if line.trim_end_matches('\r').eq_ignore_ascii_case("DONE") {
                    return Ok(ok("IDLE terminated"));
                }
                return Ok(bad("Expected DONE"));
            }
            if self.io.buffered().len() > 1024 {
                return Ok(bad("Expected DONE"));
            }
            enum Wake {
                Input(Result<(), ReadError>),
                Event,
            }
            let timeout = self.timeout();
            let events = self.events.as_mut();
            let wake = match events {
                Some(rx) => tokio::select! {
                    r = self.io.fill(timeout, Some(&self.svc.shutdown)) => Wake::Input(r),
                    _ = rx.recv() => Wake::Event,
                },
                None => Wake::Input(self.io.fill(timeout, Some(&self.svc.shutdown)).await),
            };
            match wake {
                Wake::Input(r) => r?,
                Wake::Event => {
                    if let Some(view) = self.selected.as_mut() {
                        view.dirty = true;
                    }
                    if self.selected.is_some() {
                        self.sync(true).await?;
                    }
                }
            }
        }
    }

    /// Drains pending store events; marks the selected view dirty when they concern it.
    pub(crate) fn drain_events(&mut self) {
        let Some(rx) = self.events.as_mut() else { return };
        let mailbox = self.selected.as_ref().map(|v| v.mailbox.id);
        loop {
            match rx.try_recv() {
                Ok(event) => {
                    let concerns = match &event {
                        ChangeEvent::MessageAdded { mailbox: m, .. }
                        | ChangeEvent::FlagsChanged { mailbox: m, .. }
                        | ChangeEvent::Expunged { mailbox: m, .. }
                        | ChangeEvent::MailboxDeleted { mailbox: m }
                        | ChangeEvent::MailboxRenamed { mailbox: m } => Some(*m) == mailbox,
                        ChangeEvent::MailboxCreated { .. } => false,
                    };
                    if concerns && let Some(view) = self.selected.as_mut() {
                        view.dirty = true;
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    if let Some(view) = self.selected.as_mut() {
                        view.dirty = true;
                    }
                }
                Err(_) => break,
            }
        }
    }
}
