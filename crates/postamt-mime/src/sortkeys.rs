//! What SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957) compare: the base subject
//! (RFC 5256 section 2.1), the first address of From, To and Cc, the sent date, and the
//! message ids of the REFERENCES threading algorithm (section 2.2 step 1). Also the short
//! preview text of RFC 8970.

use crate::address;
use crate::decode;

/// The sort and thread keys of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// The `Date` field as Unix seconds (UTC); `None` when missing or unparsable (RFC 5256
    /// section 2.2: the internal date is used then).
    pub date: Option<i64>,
    /// The base subject, case-folded for comparison (i;unicode-casemap).
    pub subject: String,
    /// Whether extracting the base subject removed a reply or forward marker (`Re:`,
    /// `Fwd:`, `(fwd)`, `[fwd: ...]`), for THREAD=REFERENCES step 5.
    pub reply: bool,
    /// `addr-mailbox` of the first From, To and Cc address (RFC 5256 section 3).
    pub from: String,
    pub to: String,
    pub cc: String,
    /// The DISPLAY sort value of the first From and To address (RFC 5957 section 3).
    pub display_from: String,
    pub display_to: String,
    /// The message's own Message-ID, without the angle brackets.
    pub message_id: Option<String>,
    /// The message ids of References, or else the first of In-Reply-To (RFC 5256 section
    /// 2.2 step 1), oldest first.
    pub references: Vec<String>,
}

/// `subj-fwd-hdr = "[fwd:"`, `subj-fwd-trl = "]"`.
const FWD_HDR: &str = "[fwd:";

/// RFC 5256 section 2.1: the base subject of a (decoded, whitespace-collapsed) subject,
/// case-folded, and whether reply/forward markers were removed.
pub fn base_subject(subject: &str) -> (String, bool) {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let mut reply = false;
    loop {
        // (2) Remove all trailing text of the form subj-trailer ("(fwd)" / WSP).
        loop {
            let trimmed = s.trim_end();
            if let Some(rest) = trimmed.strip_suffix("(fwd)") {
                s = rest.to_string();
                reply = true;
            } else {
                s.truncate(trimmed.len());
                break;
            }
        }
        // (3)-(5) Remove leading subj-leader and subj-blob until nothing changes.
        loop {
            let before = s.len();
            s = strip_leader(&s, &mut reply);
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd:" ... "]": remove and start over.
        if s.starts_with(FWD_HDR) && s.ends_with(']') && s.len() > FWD_HDR.len() {
            s = s[FWD_HDR.len()..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: the rest after one blob, if `s` starts with one.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    let after = rest[end..].strip_prefix(']')?;
    Some(after.trim_start())
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP`;
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn strip_leader(s: &str, reply: &mut bool) -> String {
    if let Some(rest) = s.strip_prefix(' ') {
        return rest.to_string();
    }
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    let after = ["re", "fwd", "fw"].iter().find_map(|p| rest.strip_prefix(p));
    if let Some(after) = after {
        let mut after = after.trim_start_matches([' ', '\t']);
        if let Some(r) = strip_blob(after) {
            after = r;
        }
        if let Some(r) = after.strip_prefix(':') {
            *reply = true;
            return r.to_string();
        }
    }
    s.to_string()
}

/// The message ids (`<id>`) in a field value, without brackets and white space.
pub(crate) fn message_ids(value: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(value);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start + 1..].find('>') else { break };
        let id: String = rest[start + 1..start + 1 + len].chars().filter(|c| !c.is_whitespace()).collect();
        if !id.is_empty() {
            out.push(id);
        }
        rest = &rest[start + 1 + len + 1..];
    }
    out
}

/// `addr-mailbox` and the DISPLAY value (RFC 5957 section 3) of the first real address of a
/// field value (group markers skipped); empty strings when there is none.
pub(crate) fn first_address(value: &[u8]) -> (String, String) {
    let list = address::parse(value);
    let Some(first) = list.iter().find(|a| a.mailbox.is_some() && a.domain.is_some()) else {
        return (String::new(), String::new());
    };
    let mailbox = String::from_utf8_lossy(first.mailbox.as_deref().unwrap_or_default()).into_owned();
    let host = String::from_utf8_lossy(first.domain.as_deref().unwrap_or_default()).into_owned();
    let name = first.name.as_deref().map(decode::unstructured).unwrap_or_default();
    let display = if !name.is_empty() {
        name
    } else if !host.is_empty() {
        format!("{mailbox}@{host}")
    } else {
        mailbox.clone()
    };
    (mailbox.to_lowercase(), display.to_lowercase())
}

/// Up to `max` characters of `text` with white space runs collapsed (RFC 8970 preview).
pub(crate) fn collapse(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if count > 0 {
            // A separator only when a character can follow it.
            if count + 2 > max {
                break;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count == max {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_per_rfc_5256() {
        let b = |s: &str| base_subject(s);
        assert_eq!(b("Hello"), ("hello".into(), false));
        assert_eq!(b("Re: Hello"), ("hello".into(), true));
        assert_eq!(b("RE:  re: Fwd: hello  "), ("hello".into(), true));
        assert_eq!(b("Re[2]: hello"), ("hello".into(), true));
        assert_eq!(b("[list] Re: hello (fwd)"), ("hello".into(), true));
        assert_eq!(b("[fwd: Re: hello]"), ("hello".into(), true));
        assert_eq!(b("[list] hello"), ("hello".into(), false));
        // A blob that is all that is left stays.
        assert_eq!(b("[only]"), ("[only]".into(), false));
        assert_eq!(b("Reply"), ("reply".into(), false));
        assert_eq!(b("   "), (String::new(), false));
        assert_eq!(b("re:"), (String::new(), true));
    }

    #[test]
    fn ids_addresses_previews() {
        assert_eq!(message_ids(b" <a@b> <c @d>\r\n <e>"), ["a@b", "c@d", "e"]);
        assert_eq!(message_ids(b"no ids <"), Vec::<String>::new());
        assert_eq!(first_address(b"\"Zed, A\" <Zed@X.test>, b@y"), ("zed".to_string(), "zed, a".to_string()));
        assert_eq!(first_address(b"friends: ann@x.test;"), ("ann".to_string(), "ann@x.test".to_string()));
        assert_eq!(first_address(b""), (String::new(), String::new()));
        assert_eq!(collapse("  a\r\n\r\n  b\tc ", 200), "a b c");
        assert_eq!(collapse("abc def", 5), "abc d");
    }
}
