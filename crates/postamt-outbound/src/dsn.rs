//! Delivery status notifications (RFC 3464, with the SMTP specifics of RFC 3461 section 6):
//! the bounce a sender gets for recipients that failed, and the "relayed" notice RFC 3461
//! 5.2.2 (b) requires when a recipient asked for NOTIFY=SUCCESS and the next server cannot
//! pass that request on.
//!
//! A DSN is a `multipart/report; report-type=delivery-status` (RFC 6522) of three parts: a
//! human-readable explanation, the machine-readable `message/delivery-status` (per-message
//! fields, then one block per recipient), and the original message (RET=FULL, or by default
//! when it is not too large: `message/rfc822`) or only its header (RET=HDRS:
//! `text/rfc822-headers`). Messages with non-ASCII addresses or headers get the RFC 6533
//! types `message/global-delivery-status`, `message/global` and `message/global-headers`.
//!
//! Which recipients get reported is decided by [`notify_allows`]: NOTIFY=NEVER never,
//! FAILURE (also the default when NOTIFY was absent) for failures, SUCCESS for successes.
//! A message from the null sender never causes a DSN (RFC 5321 section 4.5.5).

use std::fmt::Write as _;

use crate::reply::EnhancedStatus;

/// Above this size the original is returned as headers only unless RET=FULL asked for all
/// of it (RFC 3461 4.3 leaves the default to the MTA).
pub const FULL_RETURN_LIMIT: usize = 1024 * 1024;

/// The `Action` of a recipient (RFC 3464 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// Which NOTIFY keyword (RFC 3461 4.1) an action is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Success,
    Failure,
    Delay,
}

/// Whether a recipient's NOTIFY value asks for a DSN on `event`. Without NOTIFY, an MTA
/// reports failures (RFC 3461 4.1: "as if NOTIFY=FAILURE,DELAY"); delays we do not report
/// unless asked for explicitly. NEVER excludes everything.
pub fn notify_allows(notify: Option<&str>, event: Event) -> bool {
    let Some(notify) = notify else {
        return event == Event::Failure;
    };
    let mut keywords = notify.split(',').map(str::trim);
    let wanted = match event {
        Event::Success => "SUCCESS",
        Event::Failure => "FAILURE",
        Event::Delay => "DELAY",
    };
    keywords.any(|k| k.eq_ignore_ascii_case(wanted))
}

/// What the report says about a recipient's diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosticCode {
    /// An SMTP reply: code and lines (RFC 3461 9.2).
    Smtp { code: u16, lines: Vec<String> },
    /// Our own explanation (`X-Postamt` diagnostic type).
    Local(String),
}

/// One recipient's block of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The envelope recipient (RFC 3464 2.3.2).
    pub final_recipient: String,
    /// The ORCPT parameter as received (`addr-type;xtext`), if any (RFC 3461 6.3 (d)).
    pub orcpt: Option<String>,
    pub action: Action,
    pub status: EnhancedStatus,
    /// Host name of the server that answered (RFC 3464 2.3.5).
    pub remote_mta: Option<String>,
    pub diagnostic: Option<DiagnosticCode>,
    /// Unix seconds of the last attempt.
    pub last_attempt: i64,
    /// The line the human-readable part shows for this recipient.
    pub explanation: String,
}

/// How much of the original to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Full,
    Headers,
}

impl Return {
    /// RET=FULL returns everything, RET=HDRS the header; without RET the whole message up
    /// to [`FULL_RETURN_LIMIT`].
    pub fn choose(ret: Option<&str>, size: usize) -> Return {
        match ret {
            Some(r) if r.eq_ignore_ascii_case("FULL") => Return::Full,
            Some(r) if r.eq_ignore_ascii_case("HDRS") => Return::Headers,
            _ if size <= FULL_RETURN_LIMIT => Return::Full,
            _ => Return::Headers,
        }
    }
}

/// Everything a DSN is made of.
#[derive(Debug, Clone)]
pub struct Dsn<'a> {
    /// Our host name: Reporting-MTA and the MAILER-DAEMON address.
    pub hostname: &'a str,
    /// The envelope sender of the original: the DSN's recipient.
    pub to: &'a str,
    /// The ENVID as received (xtext).
    pub envid: Option<&'a str>,
    /// Unix seconds when the original arrived.
    pub arrival: i64,
    /// Unix seconds now (the Date of the DSN).
    pub now: i64,
    pub returned: Return,
    /// The original message as queued.
    pub original: &'a [u8],
    pub recipients: &'a [DsnRecipient],
    /// Unique part of the Message-ID and the MIME boundary.
    pub unique: &'a str,
}

/// Decodes xtext (RFC 3461 section 4): `+XX` is the octet with that hex value. Invalid
/// escapes are kept as they are.
pub fn decode_xtext(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The header section of a message (up to and including the empty line, or everything when
/// there is none).
pub fn header_section(message: &[u8]) -> &[u8] {
    if let Some(pos) = message.windows(4).position(|w| w == b"\r\n\r\n") {
        return &message[..pos + 4];
    }
    if let Some(pos) = message.windows(2).position(|w| w == b"\n\n") {
        return &message[..pos + 2];
    }
    message
}

fn non_ascii(s: &str) -> bool {
    !s.is_ascii()
}

/// Folds a header-style field at spaces so that lines stay under 78 characters where
/// possible (RFC 5322 2.2.3); continuation lines start with a space.
fn fold(field: &str) -> String {
    const WIDTH: usize = 76;
    let mut out = String::with_capacity(field.len() + 8);
    let mut line_len = 0;
    for (i, word) in field.split(' ').enumerate() {
        if i > 0 {
            if line_len + 1 + word.len() > WIDTH && line_len > 0 {
                out.push_str("\r\n ");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// Makes text safe for one header line: control characters become spaces, and in the ASCII
/// report non-ASCII characters become `?`.
fn clean(text: &str, utf8: bool) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if !utf8 && !c.is_ascii() {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn address_type(address: &str) -> &'static str {
    // RFC 6533 section 3: "utf-8" for addresses that are not all ASCII.
    if non_ascii(address) { "utf-8" } else { "rfc822" }
}

/// Builds the DSN message (CRLF line ends), from `MAILER-DAEMON@hostname` to `to`.
pub fn build(dsn: &Dsn<'_>) -> Vec<u8> {
    let header = header_section(dsn.original);
    let utf8 = non_ascii(dsn.to)
        || dsn.recipients.iter().any(|r| non_ascii(&r.final_recipient))
        || std::str::from_utf8(header).map_or(true, non_ascii);
    let boundary = format!("{}/{}", dsn.unique, dsn.hostname);
    let failed = dsn.recipients.iter().any(|r| r.action == Action::Failed);
    let delayed = dsn.recipients.iter().any(|r| r.action == Action::Delayed);
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else if delayed {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };

    let mut out = String::new();
    // RFC 3834 5.1: automatically generated; RFC 3464 2.1: MIME structure.
    let _ = write!(
        out,
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{unique}@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n",
        host = dsn.hostname,
        to = dsn.to,
        date = postamt_delivery::format_date(dsn.now),
        unique = dsn.unique,
    );

    // Part 1: for people.
    let _ = write!(
        out,
        "--{boundary}\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset={charset}\r\n\
         Content-Transfer-Encoding: {cte}\r\n\
         \r\n\
         This is the mail system at host {host}.\r\n\r\n",
        charset = if utf8 { "utf-8" } else { "us-ascii" },
        cte = if utf8 { "8bit" } else { "7bit" },
        host = dsn.hostname,
    );
    if failed {
        out.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. It's attached below.\r\n\r\n\
             The mail system\r\n\r\n",
        );
    }
    for r in dsn.recipients.iter().filter(|r| r.action == Action::Failed) {
        let _ = write!(out, "<{}>: {}\r\n", r.final_recipient, clean(&r.explanation, utf8));
    }
    let relayed: Vec<_> = dsn.recipients.iter().filter(|r| r.action != Action::Failed).collect();
    if !relayed.is_empty() {
        if failed {
            out.push_str("\r\n");
        }
        out.push_str(
            "Your message was delivered to the next server for the following recipients,\r\n\
             which cannot confirm the final delivery:\r\n\r\n",
        );
        for r in relayed {
            let _ = write!(out, "<{}>: {}\r\n", r.final_recipient, clean(&r.explanation, utf8));
        }
    }
    out.push_str("\r\n");

    // Part 2: for programs (RFC 3464 section 2.2, 2.3).
    let _ = write!(
        out,
        "--{boundary}\r\n\
         Content-Description: Delivery report\r\n\
         Content-Type: message/{kind}\r\n\
         \r\n\
         Reporting-MTA: dns; {host}\r\n",
        kind = if utf8 { "global-delivery-status" } else { "delivery-status" },
        host = dsn.hostname,
    );
    if let Some(envid) = dsn.envid {
        // RFC 3461 6.3 (a): decoded from xtext.
        let _ = write!(
            out,
            "{}\r\n",
            fold(&format!("Original-Envelope-Id: {}", clean(&decode_xtext(envid), utf8)))
        );
    }
    let _ = write!(out, "Arrival-Date: {}\r\n", postamt_delivery::format_date(dsn.arrival));
    for r in dsn.recipients {
        out.push_str("\r\n");
        let _ = write!(
            out,
            "Final-Recipient: {}; {}\r\n",
            address_type(&r.final_recipient),
            clean(&r.final_recipient, utf8)
        );
        if let Some(orcpt) = &r.orcpt {
            let (kind, address) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            let _ = write!(
                out,
                "Original-Recipient: {}; {}\r\n",
                kind.trim(),
                clean(&decode_xtext(address.trim()), utf8)
            );
        }
        let _ = write!(out, "Action: {}\r\nStatus: {}\r\n", r.action.as_str(), r.status);
        if let Some(mta) = &r.remote_mta {
            let _ = write!(out, "Remote-MTA: dns; {mta}\r\n");
        }
        match &r.diagnostic {
            Some(DiagnosticCode::Smtp { code, lines }) => {
                // RFC 3461 9.2: the reply transcribed, its lines separated by a space.
                let n = lines.len();
                let text: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let sep = if i + 1 == n { ' ' } else { '-' };
                        clean(&format!("{code}{sep}{l}"), utf8).trim_end().to_string()
                    })
                    .collect();
                // Each reply line on a line of its own, as in RFC 3461's example.
                let mut field = String::from("Diagnostic-Code: smtp;");
                for line in text {
                    field.push_str(if field.ends_with(';') { " " } else { "\r\n " });
                    field.push_str(&line);
                }
                let folded: Vec<String> = field.split("\r\n ").map(fold).collect();
                let _ = write!(out, "{}\r\n", folded.join("\r\n "));
            }
            Some(DiagnosticCode::Local(text)) => {
                let _ = write!(
                    out,
                    "{}\r\n",
                    fold(&format!("Diagnostic-Code: X-Postamt; {}", clean(text, utf8)))
                );
            }
            None => {}
        }
        let _ = write!(out, "Last-Attempt-Date: {}\r\n", postamt_delivery::format_date(r.last_attempt));
    }
    out.push_str("\r\n");

    // Part 3: what was sent.
    let mut bytes = out.into_bytes();
    let (kind, content): (&str, &[u8]) = match (dsn.returned, utf8) {
        (Return::Full, false) => ("message/rfc822", dsn.original),
        (Return::Full, true) => ("message/global", dsn.original),
        (Return::Headers, false) => ("text/rfc822-headers", header),
        (Return::Headers, true) => ("message/global-headers", header),
    };
    let description =
        if dsn.returned == Return::Full { "Undelivered Message" } else { "Undelivered Message Headers" };
    let eight_bit = content.iter().any(|&b| b >= 0x80);
    let _ = write!(
        PushStr(&mut bytes),
        "--{boundary}\r\nContent-Description: {description}\r\nContent-Type: {kind}\r\n{cte}\r\n",
        cte = if eight_bit { "Content-Transfer-Encoding: 8bit\r\n" } else { "" },
    );
    bytes.extend_from_slice(content);
    if !content.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    let _ = write!(PushStr(&mut bytes), "\r\n--{boundary}--\r\n");
    bytes
}

/// `fmt::Write` onto a byte vector.
struct PushStr<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for PushStr<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &[u8] = b"Received: from x\r\nFrom: alice@a.example\r\nTo: bob@b.example\r\nMessage-ID: <m1@a.example>\r\nSubject: hi\r\n\r\nHello Bob.\r\n";

    fn recipient(address: &str, action: Action, status: &str) -> DsnRecipient {
        DsnRecipient {
            final_recipient: address.into(),
            orcpt: None,
            action,
            status: crate::reply::EnhancedStatus::parse(status).unwrap(),
            remote_mta: Some("mx.b.example".into()),
            diagnostic: Some(DiagnosticCode::Smtp { code: 550, lines: vec!["5.1.1 User unknown".into()] }),
            last_attempt: 1_700_000_100,
            explanation: "host mx.b.example[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO)"
                .into(),
        }
    }

    fn dsn<'a>(recipients: &'a [DsnRecipient], returned: Return, original: &'a [u8]) -> Dsn<'a> {
        Dsn {
            hostname: "mx.a.example",
            to: "alice@a.example",
            envid: Some("QQ+2B1"),
            arrival: 1_700_000_000,
            now: 1_700_000_200,
            returned,
            original,
            recipients,
            unique: "abc123",
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("utf-8")
    }

    /// Splits a multipart body at the boundary into (headers, body) parts.
    fn parts(message: &str) -> Vec<(String, String)> {
        let boundary = "--abc123/mx.a.example";
        let body = message.split_once("\r\n\r\n").unwrap().1;
        let mut out = Vec::new();
        for chunk in body.split(boundary).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap();
            let (h, b) = chunk.split_once("\r\n\r\n").unwrap();
            out.push((h.to_string(), b.to_string()));
        }
        out
    }

    #[test]
    fn failure_report_structure() {
        let mut second = recipient("carol@b.example", Action::Failed, "5.2.2");
        second.orcpt = Some("rfc822;Carol+2Bx@B.example".into());
        second.diagnostic = Some(DiagnosticCode::Smtp {
            code: 552,
            lines: vec!["5.2.2 Mailbox full".into(), "Please try again much later".into()],
        });
        let rcpts = [recipient("bob@b.example", Action::Failed, "5.1.1"), second];
        let msg = text(build(&dsn(&rcpts, Return::Full, ORIGINAL)));

        assert!(msg.starts_with(
            "From: Mail Delivery System <MAILER-DAEMON@mx.a.example>\r\nTo: <alice@a.example>\r\n"
        ));
        assert!(msg.contains("\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
        assert!(msg.contains("\r\nMessage-ID: <abc123@mx.a.example>\r\n"));
        assert!(msg.contains("\r\nAuto-Submitted: auto-replied\r\n"));
        assert!(msg.contains(
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"abc123/mx.a.example\"\r\n"
        ));
        assert!(msg.ends_with("\r\n--abc123/mx.a.example--\r\n"));
        assert!(!msg.replace("\r\n", "").contains('\n'), "only CRLF line ends");

        let parts = parts(&msg);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].0.contains("Content-Type: text/plain; charset=us-ascii"));
        assert!(
            parts[0].1.contains("<bob@b.example>: host mx.b.example[192.0.2.1] said: 550 5.1.1 User unknown")
        );
        assert!(parts[0].1.contains("<carol@b.example>: "));

        assert!(parts[1].0.contains("Content-Type: message/delivery-status"));
        let status = &parts[1].1;
        let blocks: Vec<&str> = status.trim_end().split("\r\n\r\n").collect();
        assert_eq!(blocks.len(), 3, "{status}");
        assert_eq!(
            blocks[0],
            "Reporting-MTA: dns; mx.a.example\r\nOriginal-Envelope-Id: QQ+1\r\n\
             Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(
            blocks[1],
            "Final-Recipient: rfc822; bob@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Remote-MTA: dns; mx.b.example\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
             Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000"
        );
        assert!(blocks[2].contains("Original-Recipient: rfc822; Carol+x@B.example\r\n"), "{}", blocks[2]);
        assert!(
            blocks[2].contains(
                "Diagnostic-Code: smtp; 552-5.2.2 Mailbox full\r\n 552 Please try again much later\r\n"
            ),
            "{}",
            blocks[2]
        );

        assert!(parts[2].0.contains("Content-Type: message/rfc822"));
        assert_eq!(
            parts[2].1.trim_end_matches("\r\n"),
            std::str::from_utf8(ORIGINAL).unwrap().trim_end_matches("\r\n")
        );
    }

    #[test]
    fn headers_only_and_relayed() {
        let mut relayed = recipient("dave@c.example", Action::Relayed, "2.0.0");
        relayed.diagnostic = Some(DiagnosticCode::Smtp { code: 250, lines: vec!["2.0.0 Ok: queued".into()] });
        relayed.explanation = "delivered to mx.c.example, which does not offer DSN".into();
        let msg = text(build(&dsn(std::slice::from_ref(&relayed), Return::Headers, ORIGINAL)));
        assert!(msg.contains("\r\nSubject: Successful Mail Delivery Report\r\n"));
        let parts = parts(&msg);
        assert!(parts[0].1.contains("<dave@c.example>: delivered to mx.c.example"));
        assert!(parts[1].1.contains("Action: relayed\r\nStatus: 2.0.0\r\n"));
        assert!(parts[2].0.contains("Content-Type: text/rfc822-headers"));
        assert!(parts[2].1.contains("Subject: hi\r\n"));
        assert!(!parts[2].1.contains("Hello Bob."));
    }

    #[test]
    fn utf8_messages_get_global_types() {
        let original = "From: jörg@a.example\r\nSubject: grüße\r\n\r\nbody ü\r\n".as_bytes();
        let mut r = recipient("jürgen@b.example", Action::Failed, "5.1.1");
        r.diagnostic = Some(DiagnosticCode::Local("host not found".into()));
        let msg = text(build(&Dsn {
            to: "jörg@a.example",
            ..dsn(std::slice::from_ref(&r), Return::Full, original)
        }));
        assert!(msg.contains("Content-Type: message/global-delivery-status"));
        assert!(msg.contains("Final-Recipient: utf-8; jürgen@b.example"));
        assert!(msg.contains("Diagnostic-Code: X-Postamt; host not found"));
        assert!(msg.contains("Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n"));
        assert!(msg.contains("charset=utf-8"));
    }

    #[test]
    fn notify_rules() {
        // RFC 3461 4.1: absent NOTIFY reports failures only (delays at the MTA's discretion).
        assert!(notify_allows(None, Event::Failure));
        assert!(!notify_allows(None, Event::Success));
        assert!(!notify_allows(None, Event::Delay));
        assert!(!notify_allows(Some("NEVER"), Event::Failure));
        assert!(!notify_allows(Some("NEVER"), Event::Success));
        assert!(notify_allows(Some("SUCCESS,FAILURE"), Event::Failure));
        assert!(notify_allows(Some("success,delay"), Event::Success));
        assert!(!notify_allows(Some("SUCCESS,DELAY"), Event::Failure));
        assert!(notify_allows(Some("FAILURE, DELAY"), Event::Delay));
    }

    #[test]
    fn returned_content_choice() {
        assert_eq!(Return::choose(Some("HDRS"), 10), Return::Headers);
        assert_eq!(Return::choose(Some("full"), FULL_RETURN_LIMIT * 4), Return::Full);
        assert_eq!(Return::choose(None, 10), Return::Full);
        assert_eq!(Return::choose(None, FULL_RETURN_LIMIT + 1), Return::Headers);
    }

    #[test]
    fn xtext_and_folding() {
        assert_eq!(decode_xtext("a+2Bb+3Dc"), "a+b=c");
        assert_eq!(decode_xtext("broken+2"), "broken+2");
        assert_eq!(decode_xtext("+zz"), "+zz");
        let long = format!("Diagnostic-Code: smtp; 550 {}", "word ".repeat(40).trim_end());
        let folded = fold(&long);
        assert!(folded.lines().all(|l| l.trim_end_matches('\r').len() <= 78), "{folded}");
        assert_eq!(folded.replace("\r\n ", " "), long);
        assert_eq!(header_section(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\n");
        assert_eq!(header_section(b"A: b\r\n"), b"A: b\r\n");
    }
}
