//! SMTP replies as a client reads them (RFC 5321 section 4.2), and the EHLO keywords the
//! client cares about. Pure functions over bytes: the session feeds whatever it has read and
//! gets back complete replies.

use std::fmt;

/// Longest reply line accepted, including CRLF. RFC 5321 4.5.3.1.5 sets 512 octets as the
/// minimum a client must accept; real servers send longer lines (EHLO lists, policy texts).
pub const MAX_LINE: usize = 4096;
/// Most lines in one multi-line reply: EHLO has one per extension, a handful in practice.
pub const MAX_LINES: usize = 128;

/// A complete SMTP reply: its code and the text of each line (without code, separator and
/// CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// Why bytes from the server are not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line longer than {MAX_LINE} octets")]
    LineTooLong,
    #[error("reply with more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("reply lines with different codes ({0} and {1})")]
    MixedCodes(u16, u16),
}

/// RFC 3463 enhanced status code, e.g. `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedStatus {
        EnhancedStatus { class, subject, detail }
    }

    /// Parses `class.subject.detail` (RFC 3463 section 2: class 2, 4 or 5, subject and detail
    /// one to three digits).
    pub fn parse(s: &str) -> Option<EnhancedStatus> {
        let mut parts = s.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let digits =
            |p: &str, max: usize| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit());
        if !(class.len() == 1 && matches!(class, "2" | "4" | "5") && digits(subject, 3) && digits(detail, 3))
        {
            return None;
        }
        Some(EnhancedStatus {
            class: class.parse().ok()?,
            subject: subject.parse().ok()?,
            detail: detail.parse().ok()?,
        })
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code at the start of the first line, if the server sent one
    /// (RFC 2034 section 4).
    pub fn enhanced(&self) -> Option<EnhancedStatus> {
        let first = self.lines.first()?;
        let token = first.split(' ').next()?;
        let status = EnhancedStatus::parse(token)?;
        // The class must agree with the reply code (RFC 2034 section 4).
        (u16::from(status.class) == self.code / 100).then_some(status)
    }

    /// The enhanced status to report for this reply: the server's own, or one derived from
    /// the basic code (RFC 3463: X.0.0 when nothing more specific is known).
    pub fn status(&self) -> EnhancedStatus {
        self.enhanced().unwrap_or_else(|| {
            let class = match self.code / 100 {
                2 => 2,
                4 => 4,
                _ => 5,
            };
            EnhancedStatus::new(class, 0, 0)
        })
    }

    /// The reply on one line, lines joined with a space, as logs and Diagnostic-Code fields
    /// show it: `550 5.1.1 User unknown`.
    pub fn one_line(&self) -> String {
        let mut out = self.code.to_string();
        for line in &self.lines {
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Takes one complete reply from the front of `buf`: `Ok(Some((reply, consumed)))`, or
/// `Ok(None)` when more bytes are needed. Lines end with CRLF; a bare LF is tolerated (some
/// servers send it), other control characters are replaced, non-UTF-8 text is decoded lossily.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        if nl + 1 > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let raw = &rest[..nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        let (line_code, last, text) = parse_line(raw)?;
        match code {
            None => code = Some(line_code),
            Some(c) if c != line_code => return Err(ReplyError::MixedCodes(c, line_code)),
            Some(_) => {}
        }
        lines.push(text);
        if last {
            let code = code.unwrap_or(line_code);
            return Ok(Some((Reply { code, lines }, pos)));
        }
        if lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

/// One reply line: `Reply-code [ SP textstring ] CRLF` (last) or `Reply-code "-" text`
/// (RFC 5321 section 4.2). A code alone is accepted as a last line.
fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed(String::from_utf8_lossy(raw).into_owned());
    if raw.len() < 3 || !raw[..3].iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    // RFC 5321 4.2: the first digit is 2 to 5, the second 0 to 5.
    if !(b'2'..=b'5').contains(&raw[0]) || raw[1] > b'5' {
        return Err(malformed());
    }
    let code = u16::from(raw[0] - b'0') * 100 + u16::from(raw[1] - b'0') * 10 + u16::from(raw[2] - b'0');
    let (last, text) = match raw.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &raw[4..]),
        Some(b'-') => (false, &raw[4..]),
        Some(_) => return Err(malformed()),
    };
    let text: String = String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    Ok((code, last, text.trim_end().to_string()))
}

/// What the server announced in its EHLO reply (RFC 5321 4.1.1.1), as far as the client uses
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The greeting line of the EHLO reply (the server's name and text).
    pub greeting: String,
    pub starttls: bool,
    pub pipelining: bool,
    /// `SIZE` present; `Some(0)` means no fixed limit (RFC 1870 section 4).
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub enhanced_status_codes: bool,
    /// SASL mechanisms, upper-case (RFC 4954 section 3).
    pub auth: Vec<String>,
}

impl Capabilities {
    /// Reads the keywords of a positive EHLO reply; unknown ones are ignored, keywords are
    /// case-insensitive.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            greeting: reply.lines.first().cloned().unwrap_or_default(),
            ..Capabilities::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "AUTH" => caps.auth.extend(words.map(|m| m.to_ascii_uppercase())),
                _ => {}
            }
        }
        caps
    }

    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m == mechanism)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Reply {
        let (reply, used) = parse_reply(bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        reply
    }

    #[test]
    fn single_and_multi_line_replies() {
        let r = parse_all(b"250 2.1.0 Ok\r\n");
        assert_eq!(r, Reply { code: 250, lines: vec!["2.1.0 Ok".into()] });
        assert_eq!(r.enhanced(), Some(EnhancedStatus::new(2, 1, 0)));
        assert!(r.is_positive());

        let r = parse_all(b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n250 DSN\r\n");
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, ["mx.example.org", "PIPELINING", "SIZE 1048576", "DSN"]);
        assert_eq!(r.one_line(), "250 mx.example.org PIPELINING SIZE 1048576 DSN");

        // A code alone, a bare LF, trailing blanks.
        assert_eq!(parse_all(b"354\r\n"), Reply { code: 354, lines: vec![String::new()] });
        assert_eq!(parse_all(b"221 bye  \n").lines, ["bye"]);
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        assert_eq!(parse_reply(b""), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n250 sec"), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n"), Ok(None));
        // Two replies in one buffer: the first is taken, the rest stays.
        let (r, used) = parse_reply(b"250 a\r\n550 b\r\n").expect("ok").expect("complete");
        assert_eq!((r.code, used), (250, 7));
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in
            [&b"25 x\r\n"[..], b"abc\r\n", b"250x\r\n", b"650 no\r\n", b"190 no\r\n", b"\r\n", b"2500 x\r\n"]
        {
            assert!(matches!(parse_reply(bad), Err(ReplyError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(parse_reply(b"250-a\r\n550 b\r\n"), Err(ReplyError::MixedCodes(250, 550)));
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        assert_eq!(parse_reply(long.as_bytes()), Err(ReplyError::LineTooLong));
        assert_eq!(parse_reply(&vec![b'2'; MAX_LINE + 1]), Err(ReplyError::LineTooLong));
        let many = "250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(parse_reply(many.as_bytes()), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn control_characters_and_bad_utf8_are_neutralised() {
        let r = parse_all(b"550 bad\x1b[31m \xff\r\n");
        assert_eq!(r.lines, ["bad?[31m \u{fffd}"]);
    }

    #[test]
    fn enhanced_status_codes() {
        let reply = |code, text: &str| Reply { code, lines: vec![text.to_string()] };
        assert_eq!(reply(550, "5.1.1 User unknown").enhanced(), Some(EnhancedStatus::new(5, 1, 1)));
        assert_eq!(reply(550, "5.1.10 Null MX").status().to_string(), "5.1.10");
        assert_eq!(reply(452, "4.2.2 Mailbox full").status().to_string(), "4.2.2");
        // Absent, malformed, or of another class than the code: derived from the code.
        assert_eq!(reply(550, "User unknown").enhanced(), None);
        assert_eq!(reply(550, "User unknown").status().to_string(), "5.0.0");
        assert_eq!(reply(451, "5.1.1 wrong class").status().to_string(), "4.0.0");
        assert_eq!(reply(554, "5.1.1000 too long").enhanced(), None);
        assert_eq!(reply(554, "3.1.1 bad class").enhanced(), None);
        assert_eq!(EnhancedStatus::parse("5.7.1"), Some(EnhancedStatus::new(5, 7, 1)));
        for bad in ["5.7", "5.7.1.1", "6.0.0", "5..1", "5.a.1", ""] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ehlo_capabilities() {
        let r = parse_all(
            b"250-mx.example.org greets you\r\n250-pipelining\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
              250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-STARTTLS\r\n250-AUTH plain LOGIN\r\n\
              250 CHUNKING\r\n",
        );
        let caps = Capabilities::from_ehlo(&r);
        assert_eq!(caps.greeting, "mx.example.org greets you");
        assert!(caps.pipelining && caps.eight_bit_mime && caps.smtputf8 && caps.dsn && caps.starttls);
        assert!(caps.enhanced_status_codes);
        assert_eq!(caps.size, Some(52_428_800));
        assert!(caps.has_auth("PLAIN") && caps.has_auth("LOGIN") && !caps.has_auth("CRAM-MD5"));

        let bare = Capabilities::from_ehlo(&parse_all(b"250-mx\r\n250 SIZE\r\n"));
        assert_eq!(bare.size, Some(0), "SIZE without a number: no fixed limit");
        assert!(!bare.pipelining && !bare.starttls && bare.auth.is_empty());
        // The greeting line is never a keyword.
        assert!(!Capabilities::from_ehlo(&parse_all(b"250 STARTTLS\r\n")).starttls);
    }
}
