//! The state machine of one SMTP connection (RFC 5321 section 4.1.4 command order,
//! RFC 6409 submission rules, RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 3030 BDAT).
//!
//! Commands are parsed by [`crate::parse`]; accepted transactions go to
//! [`postamt_delivery::Delivery`], and `250` is sent only after it returned, that is after the
//! message is durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postamt_auth::sasl::{self, SaslError};
use postamt_auth::{AuthError, Authenticator, Protocol};
use postamt_config::Config;
use postamt_delivery::{Account, DeliveryFailure};
use postamt_delivery::{Delivery, DeliveryError, Envelope, Recipient, Route, Target, Trace, headers};
use postamt_net::TlsAcceptor;
use postamt_net::{Conn, Stream};
use tokio_util::sync::CancellationToken;

use crate::data::{DataReader, normalize_line_ends};
use crate::parse::{Body, Command, MailParams, Mailbox, RcptParams, Ret, parse_command};
use crate::reply::Reply;
use postamt_net::io::{Io, Line, ReadError};

/// Which service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Incoming mail from other servers (port 25): no AUTH, local recipients only.
    Mx,
    /// Mail from our users (ports 587 and 465): AUTH required, any recipient.
    Submission,
}

/// Longest AUTH exchange line (RFC 4954 section 4: 12288 octets).
const AUTH_LINE_MAX: usize = 12_288;
/// Bad commands tolerated per connection before it is closed.
const MAX_ERRORS: u32 = 20;
/// Failed AUTH attempts per connection before it is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// Time allowed for each read while receiving a message (RFC 5321 4.5.3.2.5: 3 minutes per
/// data block; we are a little more patient).
const DATA_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// One SMTP service (MX or submission) shared by all its connections.
pub struct SmtpService {
    pub config: Arc<Config>,
    pub mode: Mode,
    /// Offered as STARTTLS on plain connections.
    pub starttls: Option<TlsAcceptor>,
    pub auth: Authenticator,
    pub delivery: Arc<Delivery>,
    pub shutdown: CancellationToken,
}

struct Transaction {
    sender: String,
    params: MailParams,
    recipients: Vec<Recipient>,
    /// BDAT chunks received so far; `None` until the first BDAT.
    chunks: Option<Vec<u8>>,
    /// Set when the chunks exceeded the size limit; the rest is read and dropped.
    too_big: bool,
}

struct Session<'a> {
    svc: &'a SmtpService,
    peer: SocketAddr,
    io: Io,
    helo: Option<String>,
    esmtp: bool,
    account: Option<Account>,
    tx: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
}

/// How a command handler wants the session to go on.
enum Flow {
    Continue,
    Close,
}

impl SmtpService {
    /// Serves one connection to its end.
    pub async fn handle(self: Arc<Self>, conn: Conn) {
        let Conn { stream, peer, .. } = conn;
        let mut session = Session {
            svc: &self,
            peer,
            io: Io::new(stream),
            helo: None,
            esmtp: false,
            account: None,
            tx: None,
            errors: 0,
            auth_failures: 0,
        };
        session.run().await;
    }

    fn max_size(&self) -> u64 {
        self.config.max_message_size
    }
}

impl Session<'_> {
    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.io.wbuf);
    }

    fn say(&mut self, code: u16, enhanced: &'static str, text: impl Into<std::borrow::Cow<'static, str>>) {
        self.reply(Reply::new(code, enhanced, text));
    }

    async fn run(&mut self) {
        let greeting = format!("{} ESMTP postamt", self.svc.config.hostname);
        self.say(220, "", greeting);
        let limits = &self.svc.config.limits;
        let (line_max, timeout) = (limits.smtp_line, limits.command_timeout);
        loop {
            let line = match self.io.read_line(line_max, timeout, Some(&self.svc.shutdown)).await {
                Ok(line) => line,
                Err(e) => return self.end(e).await,
            };
            let flow = match line {
                Line::TooLong(_) => {
                    self.error(Reply::new(500, "5.5.6", "Line too long"));
                    Flow::Continue
                }
                Line::Complete(bytes) => match parse_command(&bytes) {
                    Ok(cmd) => match self.command(cmd).await {
                        Ok(flow) => flow,
                        Err(e) => return self.end(e).await,
                    },
                    Err(reply) => {
                        self.error(reply);
                        Flow::Continue
                    }
                },
            };
            if self.errors >= MAX_ERRORS {
                self.say(421, "4.7.0", "Too many errors, closing connection");
                return self.io.shutdown().await;
            }
            if let Flow::Close = flow {
                return self.io.shutdown().await;
            }
        }
    }

    /// Ends the session after a read stopped, telling the client why where that helps.
    async fn end(&mut self, reason: ReadError) {
        match reason {
            ReadError::Timeout => self.say(421, "4.4.2", "Timeout, closing connection"),
            ReadError::Shutdown => self.say(421, "4.3.2", "Server shutting down, try again later"),
            ReadError::Io(e) => tracing::debug!(error = %e, "connection error"),
            ReadError::Eof => {}
        }
        tracing::debug!("session ended");
        self.io.shutdown().await;
    }

    fn error(&mut self, reply: Reply) {
        self.errors += 1;
        self.reply(reply);
    }

    async fn command(&mut self, cmd: Command) -> Result<Flow, ReadError> {
        tracing::trace!(?cmd, "command");
        match cmd {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => return self.data().await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Rset => {
                self.tx = None;
                self.say(250, "2.0.0", "Ok");
            }
            Command::Noop => self.say(250, "2.0.0", "Ok"),
            Command::Quit => {
                let bye = format!("{} closing connection", self.svc.config.hostname);
                self.say(221, "2.0.0", bye);
                return Ok(Flow::Close);
            }
            Command::Help => self.say(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH\nSee RFC 5321",
            ),
            // Never reveal which addresses exist (RFC 5321 3.5.3 allows 252).
            Command::Vrfy => self.say(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
            Command::Expn => self.error(Reply::new(502, "5.5.1", "EXPN is disabled")),
            Command::StartTls => return self.starttls().await,
            Command::Auth { mechanism, initial } => return self.authenticate(mechanism, initial).await,
        }
        Ok(Flow::Continue)
    }

    fn ehlo(&mut self, name: String, esmtp: bool) {
        // EHLO/HELO reset any transaction (RFC 5321 4.1.4).
        self.tx = None;
        self.helo = Some(name);
        self.esmtp = esmtp;
        let host = &self.svc.config.hostname;
        if !esmtp {
            let text = host.to_string();
            return self.say(250, "", text);
        }
        let mut lines = vec![host.clone()];
        lines.push("PIPELINING".into());
        lines.push(format!("SIZE {}", self.svc.max_size()));
        lines.push("8BITMIME".into());
        lines.push("SMTPUTF8".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push("CHUNKING".into());
        lines.push("DSN".into());
        if !self.io.is_tls() && self.svc.starttls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.account.is_none() {
            lines.push(format!("AUTH {}", sasl::MECHANISMS.join(" ")));
        }
        self.say(250, "", lines.join("\n"));
    }

    /// AUTH exists only on submission, and only under TLS unless plaintext is configured.
    fn auth_offered(&self) -> bool {
        self.svc.mode == Mode::Submission && (self.io.is_tls() || self.svc.config.auth.allow_plaintext)
    }

    async fn mail(&mut self, from: Option<Mailbox>, params: MailParams) {
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.tx.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if self.svc.mode == Mode::Submission && self.account.is_none() {
            return self.error(Reply::new(530, "5.7.0", "Authentication required"));
        }
        if !self.esmtp && params != MailParams::default() {
            return self.error(Reply::new(555, "5.5.4", "Parameters require EHLO"));
        }
        if params.body == Some(Body::BinaryMime) {
            return self.error(Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported"));
        }
        if params.size.is_some_and(|s| s > self.svc.max_size()) {
            return self.error(Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size"));
        }
        if from.as_ref().is_some_and(|m| m.is_utf8()) && !params.smtputf8 {
            return self.error(Reply::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
        }
        let sender = from.map(|m| m.address()).unwrap_or_default();
        if let Some(account) = &self.account {
            // RFC 6409 section 6.1: the MSA may check that the sender is the user's.
            let owned =
                !sender.is_empty() && self.svc.delivery.may_send_as(account, &sender).await.unwrap_or(false);
            if !owned {
                return self.error(Reply::new(
                    550,
                    "5.7.1",
                    "Sender address not owned by authenticated user",
                ));
            }
        }
        self.tx = Some(Transaction { sender, params, recipients: Vec::new(), chunks: None, too_big: false });
        self.say(250, "2.1.0", "Ok");
    }

    async fn rcpt(&mut self, to: Mailbox, params: RcptParams) {
        let Some(tx) = &self.tx else {
            return self.error(Reply::new(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if !self.esmtp && params != RcptParams::default() {
            return self.error(Reply::new(555, "5.5.4", "Parameters require EHLO"));
        }
        if tx.recipients.len() >= self.svc.config.limits.recipients {
            // RFC 5321 4.5.3.1.10: 452 tells the client to send the rest in another transaction.
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if to.is_utf8() && !tx.params.smtputf8 {
            return self.error(Reply::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
        }
        let declared = tx.params.size.unwrap_or(0);
        let address = to.address();
        let target = match self.svc.delivery.route(&address).await {
            Err(e) => {
                tracing::error!(error = %e, "recipient lookup failed");
                return self.reply(Reply::new(451, "4.3.0", "Temporary lookup failure, try again later"));
            }
            Ok(Route::UnknownLocal) => return self.error(Reply::new(550, "5.1.1", "User unknown")),
            Ok(Route::Remote) if self.svc.mode == Mode::Mx => {
                return self.error(Reply::new(554, "5.7.1", "Relay access denied"));
            }
            Ok(Route::Remote) => Target::Remote,
            Ok(Route::Local(account)) => {
                if account.disabled {
                    return self.error(Reply::new(550, "5.2.1", "Mailbox disabled"));
                }
                if account.is_full() || !account.has_room_for(declared) {
                    return self.reply(Reply::new(452, "4.2.2", "Mailbox full"));
                }
                Target::Local(account.id)
            }
        };
        if let Some(tx) = &mut self.tx {
            tx.recipients.push(Recipient { address, target, notify: params.notify, orcpt: params.orcpt });
        }
        self.say(250, "2.1.5", "Ok");
    }

    async fn data(&mut self) -> Result<Flow, ReadError> {
        match &self.tx {
            None => {
                self.error(Reply::new(503, "5.5.1", "Need MAIL command"));
                return Ok(Flow::Continue);
            }
            Some(tx) if tx.chunks.is_some() => {
                self.error(Reply::new(503, "5.5.1", "DATA not allowed after BDAT"));
                return Ok(Flow::Continue);
            }
            Some(tx) if tx.recipients.is_empty() => {
                // RFC 2920 section 3.1: with no valid recipients DATA fails.
                self.error(Reply::new(554, "5.5.1", "No valid recipients"));
                return Ok(Flow::Continue);
            }
            Some(_) => {}
        }
        self.say(354, "", "End data with <CR><LF>.<CR><LF>");
        let limit = usize::try_from(self.svc.max_size()).unwrap_or(usize::MAX);
        let mut reader = DataReader::new(limit);
        loop {
            let buffered = self.io.buffered();
            let (consumed, done) = match reader.feed(buffered) {
                Some(n) => (n, true),
                None => (buffered.len(), false),
            };
            self.io.consume(consumed);
            if done {
                break;
            }
            self.io.fill(DATA_TIMEOUT, None).await?;
        }
        if reader.too_big() {
            self.tx = None;
            self.reply(Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size"));
            return Ok(Flow::Continue);
        }
        if reader.bare_line_end() {
            self.tx = None;
            self.error(Reply::new(554, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF"));
            return Ok(Flow::Continue);
        }
        self.finish(reader.into_message()).await;
        Ok(Flow::Continue)
    }

    /// BDAT (RFC 3030): the chunk is always read, whatever the reply, so the byte stream
    /// stays in step.
    async fn bdat(&mut self, size: u64, last: bool) -> Result<Flow, ReadError> {
        let max = self.svc.max_size();
        let keep = match &mut self.tx {
            Some(tx) if !tx.recipients.is_empty() => {
                let chunks = tx.chunks.get_or_insert_with(Vec::new);
                if tx.too_big || chunks.len() as u64 + size > max {
                    tx.too_big = true;
                    chunks.clear();
                    false
                } else {
                    true
                }
            }
            _ => false,
        };
        let mut sink = if keep { self.tx.as_mut().and_then(|t| t.chunks.take()) } else { None };
        let read = self.io.read_exact_into(size, sink.as_mut(), DATA_TIMEOUT).await;
        if let (Some(tx), Some(chunks)) = (self.tx.as_mut(), sink) {
            tx.chunks = Some(chunks);
        }
        read?;
        let Some(tx) = &mut self.tx else {
            self.error(Reply::new(503, "5.5.1", "Need MAIL command"));
            return Ok(Flow::Continue);
        };
        if tx.recipients.is_empty() {
            self.error(Reply::new(554, "5.5.1", "No valid recipients"));
            return Ok(Flow::Continue);
        }
        if tx.too_big {
            if last {
                self.tx = None;
            }
            self.reply(Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size"));
            return Ok(Flow::Continue);
        }
        if !last {
            self.say(250, "2.0.0", format!("{size} octets received"));
            return Ok(Flow::Continue);
        }
        let message = tx.chunks.take().unwrap_or_default();
        self.finish(normalize_line_ends(message)).await;
        Ok(Flow::Continue)
    }

    /// Checks and delivers a complete message, then answers the end of data.
    async fn finish(&mut self, message: Vec<u8>) {
        let Some(tx) = self.tx.take() else { return };
        let mut message = message;
        if let Some(account) = &self.account {
            let summary = headers::summarize(&message);
            if summary.from.is_empty() {
                return self.reply(Reply::new(550, "5.6.0", "Message has no From header"));
            }
            for from in &summary.from {
                if !self.svc.delivery.may_send_as(account, from).await.unwrap_or(false) {
                    return self.reply(Reply::new(
                        550,
                        "5.7.1",
                        "From header address not owned by authenticated user",
                    ));
                }
            }
            message = headers::complete_submission(message, &summary, &self.svc.config.hostname);
            // DKIM (RFC 6376) with the domain of the From address the user was just checked to
            // own, over the final header (with the Date and Message-ID added above).
            let domain = summary.from[0].rsplit_once('@').map_or("", |(_, d)| d).to_string();
            message = match self.svc.delivery.sign_submission(message, &domain).await {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::error!(error = %e, domain, "DKIM signing failed");
                    return self.reply(Reply::new(
                        451,
                        "4.3.0",
                        "Local error in processing, try again later",
                    ));
                }
            };
        }
        if self.svc.mode == Mode::Mx {
            // SPF, DKIM, DMARC, ARC; our Authentication-Results goes on top (RFC 8601).
            let helo = self.helo.as_deref().unwrap_or_default();
            let checked =
                self.svc.delivery.authenticate_incoming(message, self.peer.ip(), helo, &tx.sender).await;
            // RFC 7489 section 6.6.2 (and 7.1 on the reply): refuse what the From domain asks
            // to be refused, when configured to.
            if self.svc.config.auth.dmarc_reject
                && checked.results.as_ref().is_some_and(|r| r.dmarc_rejects())
            {
                tracing::info!(peer = %self.peer, sender = %tx.sender, "refused: DMARC policy is reject");
                return self.reply(Reply::new(
                    550,
                    "5.7.1",
                    "Message rejected: it fails the DMARC policy of its From domain",
                ));
            }
            message = checked.message;
        }
        let envelope = Envelope {
            sender: tx.sender,
            recipients: tx.recipients,
            envid: tx.params.envid,
            ret: tx.params.ret.map(|r| match r {
                Ret::Full => "FULL".to_string(),
                Ret::Hdrs => "HDRS".to_string(),
            }),
            smtputf8: tx.params.smtputf8,
            body_8bit: tx.params.body == Some(Body::EightBitMime),
        };
        let trace = Trace {
            helo: self.helo.clone().unwrap_or_default(),
            peer: self.peer.ip(),
            protocol: self.protocol_name(envelope.smtputf8),
            tls: self.io.tls_info(),
        };
        match self.svc.delivery.deliver(&envelope, &trace, &message).await {
            Ok(report) if report.delivered.is_empty() && report.queued.is_none() => {
                let full = report.failed.iter().any(|(_, f)| *f == DeliveryFailure::OverQuota);
                if full {
                    self.reply(Reply::new(452, "4.2.2", "Mailbox full"));
                } else {
                    self.reply(Reply::new(451, "4.3.0", "Recipient no longer available, try again later"));
                }
            }
            Ok(report) => {
                if !report.failed.is_empty() {
                    tracing::warn!(id = %report.id, failed = ?report.failed, "some local recipients refused the message after acceptance");
                }
                self.say(250, "2.0.0", format!("Ok: queued as {}", report.id));
            }
            Err(DeliveryError::OverQuota(_)) => self.reply(Reply::new(452, "4.2.2", "Mailbox full")),
            Err(e) => {
                tracing::error!(error = %e, "delivery failed");
                self.reply(Reply::new(451, "4.3.0", "Local error in processing, try again later"));
            }
        }
    }

    /// The `with` keyword of the Received header (RFC 3848, RFC 6531 section 4.3).
    fn protocol_name(&self, utf8: bool) -> String {
        let mut name = String::from(match (utf8, self.esmtp) {
            (true, _) => "UTF8SMTP",
            (false, true) => "ESMTP",
            (false, false) => "SMTP",
        });
        if self.io.is_tls() {
            name.push('S');
        }
        if self.account.is_some() {
            name.push('A');
        }
        name
    }

    async fn starttls(&mut self) -> Result<Flow, ReadError> {
        let Some(acceptor) = self.svc.starttls.clone().filter(|_| !self.io.is_tls()) else {
            self.error(Reply::new(503, "5.5.1", "TLS not available or already active"));
            return Ok(Flow::Continue);
        };
        self.say(220, "2.0.0", "Ready to start TLS");
        self.io.flush().await?;
        let Some((stream, discarded)) = self.io.take_for_tls() else { return Ok(Flow::Close) };
        if discarded > 0 {
            tracing::warn!(discarded, "discarded input pipelined after STARTTLS");
        }
        match tokio::time::timeout(Duration::from_secs(30), Stream::start_tls(stream, &acceptor)).await {
            Ok(Ok(tls)) => self.io.put_stream(tls),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return Ok(Flow::Close);
            }
            Err(_) => return Ok(Flow::Close),
        }
        // RFC 3207 section 4.2: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.account = None;
        Ok(Flow::Continue)
    }

    async fn authenticate(&mut self, mechanism: String, initial: Option<String>) -> Result<Flow, ReadError> {
        if self.svc.mode != Mode::Submission {
            self.error(Reply::new(503, "5.5.1", "AUTH not available on this service"));
            return Ok(Flow::Continue);
        }
        if !self.auth_offered() {
            // RFC 4954 section 6.
            self.error(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
            return Ok(Flow::Continue);
        }
        if self.helo.is_none() || !self.esmtp {
            self.error(Reply::new(503, "5.5.1", "Send EHLO first"));
            return Ok(Flow::Continue);
        }
        if self.account.is_some() {
            self.error(Reply::new(503, "5.5.1", "Already authenticated"));
            return Ok(Flow::Continue);
        }
        if self.tx.is_some() {
            self.error(Reply::new(503, "5.5.1", "AUTH not allowed during a mail transaction"));
            return Ok(Flow::Continue);
        }
        let Some((mut exchange, mut step)) = sasl::Exchange::start(&mechanism, initial.as_deref()) else {
            self.error(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
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
        let credentials = match credentials {
            Ok(c) => c,
            Err(SaslError::Cancelled) => {
                self.error(Reply::new(501, "5.0.0", "Authentication cancelled"));
                return Ok(Flow::Continue);
            }
            Err(_) => {
                self.error(Reply::new(501, "5.5.2", "Cannot decode response"));
                return Ok(Flow::Continue);
            }
        };
        let result = self
            .svc
            .auth
            .authenticate(self.peer.ip(), &credentials.username, &credentials.password, Protocol::Submission)
            .await;
        match result {
            Ok(account) => {
                tracing::info!(user = %account.address, "authenticated");
                self.account = Some(account);
                self.say(235, "2.7.0", "Authentication successful");
            }
            Err(AuthError::Temporary(e)) => {
                tracing::error!(error = %e, "authentication backend failed");
                self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"));
            }
            Err(_) => {
                self.auth_failures += 1;
                self.error(Reply::new(535, "5.7.8", "Authentication credentials invalid"));
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    self.say(421, "4.7.0", "Too many authentication failures, closing connection");
                    return Ok(Flow::Close);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Sends a `334` challenge and reads the client's response line.
    async fn challenge(&mut self, text: &'static str) -> Result<String, ReadError> {
        self.say(334, "", text);
        let timeout = self.svc.config.limits.command_timeout;
        match self.io.read_line(AUTH_LINE_MAX, timeout, None).await? {
            Line::Complete(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            // Not base64 of anything sensible: answered as undecodable.
            Line::TooLong(_) => Ok("!".to_string()),
        }
    }
}
