//! The pure half of mail authentication: the Authentication-Results header field (RFC 8601)
//! built from the outcome of the checks, the removal of forged instances of it (RFC 8601
//! section 5), and the choice of header fields a DKIM signature covers (RFC 6376 section
//! 5.4). Nothing here does I/O; everything works on the raw bytes of a message's header
//! section.

use std::borrow::Cow;
use std::ops::Range;

/// The result of one authentication method, with the keywords of RFC 8601 section 2.7
/// (`softfail` and `neutral` are SPF's, RFC 7208 section 2.6; DKIM uses `neutral` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Outcome {
    /// The result keyword as RFC 8601 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

/// Which identity an SPF check authorised (RFC 7208 section 2.3 and 2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfIdentity {
    /// The MAIL FROM address (`smtp.mailfrom`).
    MailFrom(String),
    /// The HELO/EHLO name (`smtp.helo`); also the identity checked for the null sender.
    Helo(String),
}

/// One SPF check (RFC 7208).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfCheck {
    pub result: Outcome,
    pub identity: SpfIdentity,
}

/// The check of one DKIM signature (RFC 6376 section 6), or `dkim=none` when a message has
/// none (then every field but `result` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimCheck {
    pub result: Outcome,
    /// The signing domain, `d=`.
    pub domain: Option<String>,
    /// The selector, `s=`.
    pub selector: Option<String>,
    /// The algorithm, `a=` (e.g. `ed25519-sha256`, RFC 8463).
    pub algorithm: Option<String>,
    /// The first 8 characters of the base64 signature, to tell signatures apart (RFC 6008).
    pub signature_prefix: Option<String>,
    /// Why the signature did not verify, for people reading the header.
    pub reason: Option<String>,
}

/// The policy a DMARC record requests for mail that fails (RFC 7489 section 6.3 `p=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// The DMARC evaluation (RFC 7489 section 6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcCheck {
    pub result: Outcome,
    /// The RFC5322.From domain the policy was looked up for.
    pub from_domain: Option<String>,
    /// The policy that applies to this message (after `sp=` and testing mode), when a record
    /// was found.
    pub policy: Option<DmarcPolicy>,
}

/// Everything the checks of one incoming message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// The MAIL FROM check first (the one DMARC uses), then the HELO check.
    pub spf: Vec<SpfCheck>,
    /// One entry per DKIM-Signature, or one `none`.
    pub dkim: Vec<DkimCheck>,
    pub dmarc: DmarcCheck,
    /// The ARC chain's validation (RFC 8617 section 5.2), `none` without ARC sets.
    pub arc: Outcome,
}

impl AuthResults {
    /// Whether RFC 7489 section 6.6.2 says this message should be refused: DMARC fails and
    /// the From domain asks for `p=reject`.
    pub fn dmarc_rejects(&self) -> bool {
        self.dmarc.result == Outcome::Fail && self.dmarc.policy == Some(DmarcPolicy::Reject)
    }

    /// The whole Authentication-Results header field (RFC 8601 section 2.2), CRLF included,
    /// with `authserv_id` (our host name) naming who did the checks. One result per folded
    /// line:
    ///
    /// ```text
    /// Authentication-Results: mx.example.org;
    ///     spf=pass smtp.mailfrom=alice@example.com;
    ///     dkim=pass header.d=example.com header.s=sel header.a=ed25519-sha256 header.b=AbCdEfGh;
    ///     dmarc=pass (p=reject) header.from=example.com;
    ///     arc=none
    /// ```
    pub fn header(&self, authserv_id: &str) -> String {
        let mut resinfo: Vec<String> = Vec::new();
        for spf in &self.spf {
            let (ptype, value) = match &spf.identity {
                SpfIdentity::MailFrom(address) => ("smtp.mailfrom", address),
                SpfIdentity::Helo(name) => ("smtp.helo", name),
            };
            resinfo.push(format!("spf={} {ptype}={}", spf.result.as_str(), pvalue(value)));
        }
        for dkim in &self.dkim {
            let mut r = format!("dkim={}", dkim.result.as_str());
            if let Some(reason) = &dkim.reason {
                r.push_str(&format!(" reason={}", quoted(reason)));
            }
            let props = [
                ("header.d", &dkim.domain),
                ("header.s", &dkim.selector),
                ("header.a", &dkim.algorithm),
                ("header.b", &dkim.signature_prefix),
            ];
            for (name, value) in props {
                if let Some(value) = value {
                    r.push_str(&format!(" {name}={}", pvalue(value)));
                }
            }
            resinfo.push(r);
        }
        let mut dmarc = format!("dmarc={}", self.dmarc.result.as_str());
        if let Some(policy) = self.dmarc.policy {
            // RFC 8601 section 2.2 comments: what the domain asked for, for people and filters.
            dmarc.push_str(&format!(" (p={})", policy.as_str()));
        }
        if let Some(domain) = &self.dmarc.from_domain {
            dmarc.push_str(&format!(" header.from={}", pvalue(domain)));
        }
        resinfo.push(dmarc);
        resinfo.push(format!("arc={}", self.arc.as_str()));

        let mut header = format!("Authentication-Results: {authserv_id}");
        for r in resinfo {
            header.push_str(";\r\n\t");
            header.push_str(&r);
        }
        header.push_str("\r\n");
        header
    }
}

/// A property value (RFC 8601 section 2.2 `pvalue`): written as is when it is a token or an
/// address of atoms, as a quoted-string otherwise. Control characters (peer data must never
/// break the field) are dropped.
fn pvalue(value: &str) -> Cow<'_, str> {
    let is_token_char = |c: char| !c.is_ascii() || (c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
    let is_atext = |c: char| !c.is_ascii() || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let plain = !value.is_empty()
        && !value.chars().any(char::is_control)
        && (value.chars().all(is_token_char)
            || value.rsplit_once('@').is_some_and(|(local, domain)| {
                local.chars().all(is_atext) && !domain.is_empty() && domain.chars().all(is_atext)
            }));
    if plain { Cow::Borrowed(value) } else { Cow::Owned(quoted(value)) }
}

/// An RFC 5322 quoted-string of `value` without its control characters.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One field of a message's header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// The field name (without the colon and any white space before it).
    pub name: Range<usize>,
    /// The whole field: name, value, folded continuation lines and the final line break.
    pub range: Range<usize>,
}

/// Splits the header section of `message` into fields (RFC 5322 section 2.2: a field starts
/// at a line that does not begin with white space). Returns the fields and the offset where
/// the header section ends (the empty line, or the end of the message). A line without a
/// colon becomes a field with an empty name, so nothing is ever lost.
pub(crate) fn header_fields(message: &[u8]) -> (Vec<Field>, usize) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let line_end = message[pos..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            return (fields, pos);
        }
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(field)) => field.range.end = line_end,
            _ => {
                let name_end = line
                    .iter()
                    .position(|&b| b == b':')
                    .map(|colon| {
                        pos + line[..colon].iter().rposition(|b| !b" \t".contains(b)).map_or(0, |i| i + 1)
                    })
                    .unwrap_or(pos);
                fields.push(Field { name: pos..name_end, range: pos..line_end });
            }
        }
        pos = line_end;
    }
    (fields, message.len())
}

/// Removes every Authentication-Results field whose authserv-id is `authserv_id` (compared
/// without case and trailing dot): a message arriving from outside cannot carry results we
/// produced, so such fields are forged (RFC 8601 section 5). Fields of other authserv-ids
/// stay. Returns the message and how many fields were removed.
pub fn remove_forged_results(message: Vec<u8>, authserv_id: &str) -> (Vec<u8>, usize) {
    let ours = authserv_id.trim_end_matches('.');
    let (fields, _) = header_fields(&message);
    let forged: Vec<Range<usize>> = fields
        .into_iter()
        .filter(|f| message[f.name.clone()].eq_ignore_ascii_case(b"Authentication-Results"))
        .filter(|f| {
            // After the name: optional white space, the colon, the value.
            let value = &message[f.name.end..f.range.end];
            let value = value.iter().position(|&b| b == b':').map_or(&value[..0], |i| &value[i + 1..]);
            authserv_id_of(value).is_some_and(|id| id.trim_end_matches('.').eq_ignore_ascii_case(ours))
        })
        .map(|f| f.range)
        .collect();
    if forged.is_empty() {
        return (message, 0);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut last = 0;
    for range in &forged {
        out.extend_from_slice(&message[last..range.start]);
        last = range.end;
    }
    out.extend_from_slice(&message[last..]);
    (out, forged.len())
}

/// The authserv-id at the start of an Authentication-Results value (RFC 8601 section 2.2:
/// `[CFWS] value`, a token or a quoted-string), after comments and folding white space.
fn authserv_id_of(value: &[u8]) -> Option<String> {
    let mut i = 0;
    let mut depth = 0usize;
    // Skip CFWS: white space, line breaks and (nested) comments with quoted-pairs.
    while i < value.len() {
        match value[i] {
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b'\\' if depth > 0 => i += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => break,
        }
        i += 1;
    }
    let rest = value.get(i..)?;
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut id = Vec::new();
        let mut escaped = false;
        for &b in quoted {
            match b {
                _ if escaped => {
                    id.push(b);
                    escaped = false;
                }
                b'\\' => escaped = true,
                b'"' => return String::from_utf8(id).ok(),
                _ => id.push(b),
            }
        }
        return None;
    }
    let end = rest.iter().position(|b| b" \t\r\n;(".contains(b)).unwrap_or(rest.len());
    (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Fields that may appear at most once (RFC 5322 section 3.6): each is signed and then named
/// once more (RFC 6376 section 8.15 "over-signing"), so that none can be added to a signed
/// message without breaking the signature; an absent one is still named, so none can be added
/// later either.
const OVERSIGNED: &[&str] = &["From", "To", "Cc", "Subject", "Reply-To", "Date", "Message-ID"];

/// Further fields signed when present (RFC 6376 section 5.4.1's list of what should be).
const SIGNED_IF_PRESENT: &[&str] = &[
    "Sender",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Language",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Autocrypt",
];

/// The `h=` list for signing `message` (RFC 6376 section 5.4). The signer covers every
/// instance of a named field and adds the names it finds no (further) instance of, which is
/// how the second entry of an over-signed field comes out.
pub(crate) fn signed_headers(message: &[u8]) -> Vec<&'static str> {
    let (fields, _) = header_fields(message);
    let present =
        |name: &str| fields.iter().any(|f| message[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()));
    let mut list = Vec::new();
    for &name in OVERSIGNED {
        list.push(name);
        if present(name) {
            list.push(name);
        }
    }
    list.extend(SIGNED_IF_PRESENT.iter().copied().filter(|name| present(name)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> AuthResults {
        AuthResults {
            spf: vec![
                SpfCheck {
                    result: Outcome::Pass,
                    identity: SpfIdentity::MailFrom("alice@example.com".into()),
                },
                SpfCheck { result: Outcome::None, identity: SpfIdentity::Helo("mail.example.com".into()) },
            ],
            dkim: vec![
                DkimCheck {
                    result: Outcome::Pass,
                    domain: Some("example.com".into()),
                    selector: Some("postamt-ed".into()),
                    algorithm: Some("ed25519-sha256".into()),
                    signature_prefix: Some("AbCd+/12".into()),
                    reason: None,
                },
                DkimCheck {
                    result: Outcome::Fail,
                    domain: Some("example.com".into()),
                    selector: Some("postamt-rsa".into()),
                    algorithm: Some("rsa-sha256".into()),
                    signature_prefix: None,
                    reason: Some("body hash \"did\" not verify".into()),
                },
            ],
            dmarc: DmarcCheck {
                result: Outcome::Pass,
                from_domain: Some("example.com".into()),
                policy: Some(DmarcPolicy::Reject),
            },
            arc: Outcome::None,
        }
    }

    #[test]
    fn header_lists_every_result() {
        assert_eq!(
            results().header("mx.example.org"),
            "Authentication-Results: mx.example.org;\r\n\
             \tspf=pass smtp.mailfrom=alice@example.com;\r\n\
             \tspf=none smtp.helo=mail.example.com;\r\n\
             \tdkim=pass header.d=example.com header.s=postamt-ed header.a=ed25519-sha256 header.b=\"AbCd+/12\";\r\n\
             \tdkim=fail reason=\"body hash \\\"did\\\" not verify\" header.d=example.com header.s=postamt-rsa header.a=rsa-sha256;\r\n\
             \tdmarc=pass (p=reject) header.from=example.com;\r\n\
             \tarc=none\r\n"
        );
        let none = AuthResults {
            spf: vec![SpfCheck {
                result: Outcome::TempError,
                identity: SpfIdentity::Helo("[192.0.2.1]".into()),
            }],
            dkim: vec![DkimCheck {
                result: Outcome::None,
                domain: None,
                selector: None,
                algorithm: None,
                signature_prefix: None,
                reason: None,
            }],
            dmarc: DmarcCheck { result: Outcome::None, from_domain: None, policy: None },
            arc: Outcome::None,
        };
        assert_eq!(
            none.header("mx"),
            "Authentication-Results: mx;\r\n\tspf=temperror smtp.helo=\"[192.0.2.1]\";\r\n\tdkim=none;\r\n\tdmarc=none;\r\n\tarc=none\r\n"
        );
    }

    #[test]
    fn peer_data_cannot_break_the_field() {
        assert_eq!(pvalue("a b;c"), "\"a b;c\"");
        assert_eq!(pvalue("x\r\nInjected: yes"), "\"xInjected: yes\"");
        assert_eq!(pvalue("\"quoted\"@example.com"), "\"\\\"quoted\\\"@example.com\"");
        assert_eq!(pvalue(""), "\"\"");
        assert_eq!(pvalue("user+tag@example.com"), "user+tag@example.com");
        assert_eq!(pvalue("jörg@bücher.example"), "jörg@bücher.example");
        let mut r = results();
        r.spf[0].identity = SpfIdentity::MailFrom("evil\r\n@x".into());
        let header = r.header("mx");
        assert_eq!(header.matches("\r\n").count(), 7, "{header}");
        assert!(header.lines().skip(1).all(|l| l.starts_with('\t')), "{header}");
    }

    #[test]
    fn dmarc_rejects_only_failures_under_p_reject() {
        let mut r = results();
        assert!(!r.dmarc_rejects());
        r.dmarc.result = Outcome::Fail;
        assert!(r.dmarc_rejects());
        r.dmarc.policy = Some(DmarcPolicy::Quarantine);
        assert!(!r.dmarc_rejects());
        r.dmarc =
            DmarcCheck { result: Outcome::TempError, from_domain: None, policy: Some(DmarcPolicy::Reject) };
        assert!(!r.dmarc_rejects());
    }

    #[test]
    fn header_fields_follow_folding() {
        let msg = b"A: 1\r\nB : two\r\n  folded\r\n\tagain\r\nnocolon\r\nC:\r\n\r\nBody: no\r\n";
        let (fields, end) = header_fields(msg);
        let names: Vec<&[u8]> = fields.iter().map(|f| &msg[f.name.clone()]).collect();
        assert_eq!(names, [&b"A"[..], b"B", b"", b"C"]);
        assert_eq!(&msg[fields[1].range.clone()], b"B : two\r\n  folded\r\n\tagain\r\n");
        assert_eq!(&msg[end..], b"\r\nBody: no\r\n");
        assert_eq!(header_fields(b"X: no body").1, 10);
        assert_eq!(header_fields(b"\r\nbody").0, []);
        assert_eq!(header_fields(b"").0, []);
    }

    #[test]
    fn forged_results_are_removed_others_kept() {
        let msg = b"Authentication-Results: MX.example.org.; dkim=pass header.d=bank.example\r\n\
Received: from x\r\n\
Authentication-Results: other.example; spf=pass\r\n\
authentication-results : (comment (nested) \\) ) \"mx.example.org\"\r\n\
\t; dmarc=pass\r\n\
Authentication-Results:\r\n mx.example.org; none\r\n\
Authentication-Results: mx.example.org.evil; none\r\n\
Authentication-Results: mx.example.orgx; none\r\n\
Subject: hi\r\n\
\r\n\
Authentication-Results: mx.example.org; body is not header\r\n";
        let (out, removed) = remove_forged_results(msg.to_vec(), "mx.example.org");
        assert_eq!(removed, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from x\r\n\
Authentication-Results: other.example; spf=pass\r\n\
Authentication-Results: mx.example.org.evil; none\r\n\
Authentication-Results: mx.example.orgx; none\r\n\
Subject: hi\r\n\
\r\n\
Authentication-Results: mx.example.org; body is not header\r\n"
        );
        let clean = b"Subject: x\r\n\r\nbody".to_vec();
        assert_eq!(remove_forged_results(clean.clone(), "mx.example.org"), (clean, 0));
        assert_eq!(authserv_id_of(b" \"unterminated"), None);
        assert_eq!(authserv_id_of(b"   "), None);
        assert_eq!(authserv_id_of(b" host(comment); x").as_deref(), Some("host"));
    }

    #[test]
    fn signed_header_list_oversigns_singletons() {
        let msg =
            b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\nDate: d\r\nMessage-ID: <i@x>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain\r\nX-Mailer: m\r\nReceived: r\r\n\r\nbody\r\n";
        assert_eq!(
            signed_headers(msg),
            [
                "From",
                "From",
                "To",
                "To",
                "Cc",
                "Subject",
                "Subject",
                "Reply-To",
                "Date",
                "Date",
                "Message-ID",
                "Message-ID",
                "MIME-Version",
                "Content-Type"
            ]
        );
    }
}
