//! [`Summary`]: what an IMAP server answers from without reading a message again, computed
//! once per stored body and kept by the store next to it.
//!
//! It holds the rendered ENVELOPE, BODY and BODYSTRUCTURE, the SORT/THREAD keys, the
//! PREVIEW text and the header values SEARCH compares (SUBJECT, FROM, TO, CC, BCC, the sent
//! date). Fetching those for a whole mailbox, or searching its headers, then costs one
//! cache read instead of opening and parsing every message file. Delivery computes it when
//! it stores a message, so even the first FETCH of new mail finds it.
//!
//! The encoding is a list of length-prefixed fields. An entry written by a version with a
//! different field list does not decode ([`Summary::decode`] returns `None`), so the reader
//! computes it again and replaces it: adding a field needs no migration.

use crate::{Message, SortKeys};

/// Longest PREVIEW, in characters (RFC 8970 section 3.3: SHOULD at most 200).
pub const PREVIEW_CHARS: usize = 200;

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub body_structure: Vec<u8>,
    pub keys: SortKeys,
    pub preview: String,
    pub search: SearchFields,
}

/// The header values SEARCH's header keys look at (RFC 9051 section 6.4.4), decoded and
/// lower-cased once, since every comparison is a case-insensitive substring match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFields {
    /// Every Subject field's decoded value (usually one).
    pub subject: Vec<String>,
    /// [`Message::address_text`] of From, To, Cc and Bcc.
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    /// The Date field as Unix seconds and its zone in minutes east of UTC.
    pub sent: Option<(i64, i32)>,
}

/// Fields of the encoding, see [`Summary::encode`].
const FIELDS: usize = 20;

/// Ends each Subject value inside its field, so that "no Subject" and "one empty Subject"
/// differ (a character no decoded header value holds).
const VALUE_END: &str = "\u{0}";

impl Summary {
    /// Parses the message once and derives everything.
    pub fn compute(raw: &[u8]) -> Summary {
        let msg = Message::parse(raw);
        let mut envelope = Vec::new();
        let mut body = Vec::new();
        let mut body_structure = Vec::new();
        msg.write_envelope(&mut envelope);
        msg.write_body(&mut body);
        msg.write_body_structure(&mut body_structure);
        let lower = |s: String| s.to_lowercase();
        let search = SearchFields {
            subject: msg.header_text("Subject").into_iter().map(lower).collect(),
            from: lower(msg.address_text("From")),
            to: lower(msg.address_text("To")),
            cc: lower(msg.address_text("Cc")),
            bcc: lower(msg.address_text("Bcc")),
            sent: msg.sent_date_with_zone(),
        };
        Summary {
            envelope,
            body,
            body_structure,
            keys: msg.sort_keys(),
            preview: msg.preview(PREVIEW_CHARS),
            search,
        }
    }

    /// Serialises as length-prefixed fields (the rendered strings may hold any byte).
    pub fn encode(&self) -> Vec<u8> {
        let k = &self.keys;
        let s = &self.search;
        let date = k.date.map(|d| d.to_le_bytes().to_vec()).unwrap_or_default();
        let sent = s
            .sent
            .map(|(secs, zone)| [secs.to_le_bytes().as_slice(), zone.to_le_bytes().as_slice()].concat())
            .unwrap_or_default();
        let subject: String = s.subject.iter().flat_map(|v| [v.as_str(), VALUE_END]).collect();
        let references = k.references.join(" ");
        let fields: [&[u8]; FIELDS] = [
            &self.envelope,
            &self.body,
            &self.body_structure,
            &date,
            k.subject.as_bytes(),
            if k.reply { b"1" } else { b"0" },
            k.from.as_bytes(),
            k.to.as_bytes(),
            k.cc.as_bytes(),
            k.display_from.as_bytes(),
            k.display_to.as_bytes(),
            k.message_id.as_deref().unwrap_or_default().as_bytes(),
            references.as_bytes(),
            self.preview.as_bytes(),
            subject.as_bytes(),
            s.from.as_bytes(),
            s.to.as_bytes(),
            s.cc.as_bytes(),
            s.bcc.as_bytes(),
            &sent,
        ];
        let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
        for field in fields {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    /// The inverse of [`Summary::encode`]; `None` for anything else, including entries of a
    /// version with other fields.
    pub fn decode(bytes: &[u8]) -> Option<Summary> {
        let mut rest = bytes;
        let mut fields: Vec<&[u8]> = Vec::with_capacity(FIELDS);
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            fields.push(rest.get(4..4usize.checked_add(len)?)?);
            rest = &rest[4 + len..];
        }
        if fields.len() != FIELDS {
            return None;
        }
        let mut it = fields.into_iter();
        let mut next = || it.next().unwrap_or_default();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        let (envelope, body, body_structure) = (next().to_vec(), next().to_vec(), next().to_vec());
        let date = next();
        let date = if date.is_empty() { None } else { Some(i64::from_le_bytes(date.try_into().ok()?)) };
        let subject = text(next())?;
        let reply = next() == b"1";
        let (from, to, cc) = (text(next())?, text(next())?, text(next())?);
        let (display_from, display_to) = (text(next())?, text(next())?);
        let message_id = Some(text(next())?).filter(|m| !m.is_empty());
        let references = text(next())?.split(' ').filter(|r| !r.is_empty()).map(str::to_string).collect();
        let preview = text(next())?;
        let keys =
            SortKeys { date, subject, reply, from, to, cc, display_from, display_to, message_id, references };
        let subjects = text(next())?;
        let subject = subjects.split_terminator(VALUE_END).map(str::to_string).collect();
        let (from, to, cc, bcc) = (text(next())?, text(next())?, text(next())?, text(next())?);
        let sent = match next() {
            [] => None,
            b if b.len() == 12 => Some((
                i64::from_le_bytes(b[..8].try_into().ok()?),
                i32::from_le_bytes(b[8..].try_into().ok()?),
            )),
            _ => return None,
        };
        let search = SearchFields { subject, from, to, cc, bcc, sent };
        Some(Summary { envelope, body, body_structure, keys, preview, search })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\n\
        To: a@example.com, B <b@example.com>\r\n\
        Cc: c@example.com\r\n\
        Subject: Re: Hello =?ISO-8859-1?Q?W=F6rld?=\r\n\
        Subject: second\r\n\
        Date: Tue, 3 Mar 2026 10:00:00 +0100\r\n\
        Message-ID: <m1@example.org>\r\n\
        References: <r0@example.org> <r1@example.org>\r\n\
        \r\n\
        Body text.\r\n";

    #[test]
    fn round_trips() {
        let s = Summary::compute(MSG);
        assert_eq!(s.search.subject, ["re: hello wörld", "second"]);
        assert!(s.search.from.contains("jürgen"), "{}", s.search.from);
        assert!(s.search.to.contains("b@example.com"));
        assert_eq!(s.search.bcc, "");
        assert_eq!(s.search.sent.map(|(_, zone)| zone), Some(60));
        assert_eq!(Summary::decode(&s.encode()), Some(s));
    }

    #[test]
    fn keys_and_preview() {
        let s = Summary::compute(
            b"Subject: Re: Hi\r\nFrom: A <a@x>\r\nMessage-ID: <m@x>\r\nIn-Reply-To: <p@x>\r\n\r\nBody  text\r\n",
        );
        assert_eq!(s.keys.subject, "hi");
        assert_eq!(s.keys.references, ["p@x"]);
        assert_eq!(s.preview, "Body text");
        assert_eq!(s.envelope, Message::parse(b"Subject: Re: Hi\r\nFrom: A <a@x>\r\nMessage-ID: <m@x>\r\nIn-Reply-To: <p@x>\r\n\r\nBody  text\r\n").envelope().into_bytes());
        assert_eq!(Summary::decode(&s.encode()), Some(s));
    }

    #[test]
    fn no_subject_and_no_date() {
        let s = Summary::compute(b"From: a@b\r\n\r\nx");
        assert!(s.search.subject.is_empty());
        assert_eq!(Summary::decode(&s.encode()), Some(s));
        let s = Summary::compute(b"Subject:\r\n\r\nx");
        assert_eq!(s.search.subject, [""]);
        assert_eq!(s.search.sent, None);
        assert_eq!(Summary::decode(&s.encode()), Some(s));
    }

    #[test]
    fn refuses_other_encodings() {
        let s = Summary::compute(MSG).encode();
        assert_eq!(Summary::decode(&s[..s.len() - 1]), None);
        assert_eq!(Summary::decode(b""), None);
        // An entry with fewer fields (an older version's) is refused, so it gets recomputed.
        let mut short = Vec::new();
        for _ in 0..14 {
            short.extend_from_slice(&0u32.to_le_bytes());
        }
        assert_eq!(Summary::decode(&short), None);
    }
}
