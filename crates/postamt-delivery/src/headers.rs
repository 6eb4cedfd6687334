//! Trace headers and dates: the Received header of RFC 5321 section 4.4, RFC 5322 dates,
//! message identifiers.

use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{HeaderName, MessageParser};
use rand::Rng;

use crate::Trace;

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A random identifier for a transaction: 16 characters of lower-case base32.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Formats a Unix time as an RFC 5322 date-time in UTC, e.g. `Thu, 26 Nov 2026 13:14:28 +0000`.
pub fn format_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Builds the Received header we prepend (RFC 5321 section 4.4, RFC 3848 `with` types).
/// `for` names the recipient only when there is exactly one, so one stored body serves all
/// recipients and no recipient learns of the others.
pub fn received(trace: &Trace, hostname: &str, id: &str, single_rcpt: Option<&str>, now: i64) -> String {
    let helo = sanitize(&trace.helo);
    let mut h = format!("Received: from {helo} ([{}])\r\n\tby {hostname} (postamt)", trace.peer);
    if let Some(tls) = &trace.tls {
        h.push_str(&format!("\r\n\t({})", sanitize(tls)));
    }
    h.push_str(&format!(" with {} id {id}", trace.protocol));
    if let Some(rcpt) = single_rcpt {
        h.push_str(&format!("\r\n\tfor <{}>", sanitize(rcpt)));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", format_date(now)));
    h
}

/// Keeps peer-supplied text from breaking the header: no control characters, no comment
/// delimiters.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || c == '(' || c == ')' { '_' } else { c }).take(255).collect()
}

/// What a submission server needs to know of a message's header (RFC 6409 section 8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    /// Addresses of every From header, lower-cased.
    pub from: Vec<String>,
    pub has_date: bool,
    pub has_message_id: bool,
}

/// Reads the header section of a message (only the header is parsed).
pub fn summarize(message: &[u8]) -> HeaderSummary {
    let Some(parsed) = MessageParser::new().parse_headers(message) else {
        return HeaderSummary::default();
    };
    let mut summary = HeaderSummary::default();
    for header in parsed.headers() {
        match header.name {
            HeaderName::From => {
                if let Some(addr) = header.value.as_address() {
                    summary.from.extend(addr.iter().filter_map(|a| a.address()).map(str::to_lowercase));
                }
            }
            HeaderName::Date => summary.has_date = true,
            HeaderName::MessageId => summary.has_message_id = true,
            _ => {}
        }
    }
    summary
}

/// Adds the Date and Message-ID fields a submitted message lacks (RFC 6409 sections 8.2, 8.3).
pub fn complete_submission(message: Vec<u8>, summary: &HeaderSummary, hostname: &str) -> Vec<u8> {
    if summary.has_date && summary.has_message_id {
        return message;
    }
    let mut added = String::new();
    if !summary.has_date {
        added.push_str(&format!("Date: {}\r\n", format_date(now_unix())));
    }
    if !summary.has_message_id {
        added.push_str(&format!("Message-ID: <{}@{}>\r\n", new_id(), hostname));
    }
    let mut out = Vec::with_capacity(added.len() + message.len());
    out.extend_from_slice(added.as_bytes());
    out.extend_from_slice(&message);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn summaries() {
        let s = summarize(b"From: \"Joe\" <Joe@Example.com>, ann@example.org\r\nSubject: x\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\nFrom: body@x\r\n");
        assert_eq!(s.from, vec!["joe@example.com", "ann@example.org"]);
        assert!(s.has_date);
        assert!(!s.has_message_id);
        let completed = complete_submission(
            b"Subject: x\r\n\r\nhi\r\n".to_vec(),
            &summarize(b"Subject: x\r\n\r\n"),
            "mx.example",
        );
        let text = String::from_utf8(completed).unwrap();
        assert!(text.starts_with("Date: "));
        assert!(text.contains("Message-ID: <"));
        assert!(text.ends_with("Subject: x\r\n\r\nhi\r\n"));
        assert_eq!(summarize(b"").from, Vec::<String>::new());
    }

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(format_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(format_date(1_795_698_868), "Thu, 26 Nov 2026 13:14:28 +0000");
    }

    #[test]
    fn received_header() {
        let trace = Trace {
            helo: "client(x)\r\nInjected: yes".into(),
            peer: "192.0.2.7".parse().unwrap(),
            protocol: "ESMTPS".into(),
            tls: Some("TLSv1.3".into()),
        };
        let h = received(&trace, "mx.example", "abc", Some("bob@example.org"), 0);
        assert_eq!(
            h,
            "Received: from client_x___Injected: yes ([192.0.2.7])\r\n\tby mx.example (postamt)\r\n\t(TLSv1.3) with ESMTPS id abc\r\n\tfor <bob@example.org>;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        assert!(!received(&trace, "mx", "id", None, 0).contains(" for "));
        assert_eq!(new_id().len(), 16);
    }
}
