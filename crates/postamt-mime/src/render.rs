//! ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 section 7.5.2, RFC 3501 section 7.4.2).
//!
//! The `Content-*` fields of a part are read when it is rendered, straight from the raw
//! header: parsing a message only finds the part boundaries.

use crate::header::{Fields, without_nul};
use crate::imap::Out;
use crate::lexer::{Param, Ret, Tokenizer};
use crate::structure::{IS_MIME, Part, RFC822};
use crate::{Message, address};

/// The MIME fields of one part (RFC 2045 sections 5-8, RFC 2183, RFC 3066 / RFC 3282,
/// RFC 2557, RFC 1864). For each field the first occurrence counts.
#[derive(Default)]
pub(crate) struct PartData<'a> {
    /// `type` and `subtype` as written (case kept); both set when `Content-Type` was
    /// present, `subtype` empty if it was unusable.
    pub content_type: Option<(Vec<u8>, Vec<u8>)>,
    pub params: Vec<Param>,
    pub encoding: Option<Vec<u8>>,
    pub id: Option<&'a [u8]>,
    pub description: Option<&'a [u8]>,
    pub md5: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub disposition: Option<Vec<u8>>,
    pub disposition_params: Vec<Param>,
    pub language: Vec<Vec<u8>>,
}

impl<'a> PartData<'a> {
    /// Read the `Content-*` fields of `part`.
    pub(crate) fn of(raw: &'a [u8], part: &Part) -> Self {
        let mut d = PartData::default();
        if !part.is(IS_MIME) {
            // Without MIME-Version or Content-Type, Content-* fields mean nothing
            // (RFC 2045 section 4).
            return d;
        }
        for field in Fields::new(raw, part.header()) {
            let name = &raw[field.name.clone()];
            let Some(suffix) = name.get(8..).filter(|_| name[..8].eq_ignore_ascii_case(b"Content-")) else {
                continue;
            };
            let value = &raw[field.value.clone()];
            let is = |s: &[u8]| suffix.eq_ignore_ascii_case(s);
            if is(b"Type") && d.content_type.is_none() {
                d.parse_content_type(value);
            } else if is(b"Transfer-Encoding") && d.encoding.is_none() {
                // RFC 2045 section 6.1: a single token (comments allowed).
                let mut t = Tokenizer::new(value);
                let mut token = Vec::new();
                t.skip_lwsp();
                if t.mime_token(&mut token) != Ret::Invalid && t.skip_lwsp() == Ret::End && !token.is_empty()
                {
                    d.encoding = Some(token);
                }
            } else if is(b"ID") && d.id.is_none() {
                d.id = Some(value);
            } else if is(b"Description") && d.description.is_none() {
                d.description = Some(value);
            } else if is(b"MD5") && d.md5.is_none() {
                d.md5 = Some(value);
            } else if is(b"Location") && d.location.is_none() {
                d.location = Some(value);
            } else if is(b"Language") && d.language.is_empty() {
                // RFC 3282: a comma-separated list of language tags.
                let mut t = Tokenizer::new(value);
                t.skip_lwsp();
                loop {
                    let mut tag = Vec::new();
                    if t.atom(&mut tag) == Ret::Invalid {
                        break;
                    }
                    d.language.push(tag);
                    if !t.next_is(b',') {
                        break;
                    }
                    t.bump();
                    t.skip_lwsp();
                }
            } else if is(b"Disposition") && d.disposition_params.is_empty() {
                // RFC 2183: `disposition-type *(";" parameter)`. Like Dovecot, a later
                // field replaces one that had no parameters.
                let mut t = Tokenizer::new(value);
                let mut token = Vec::new();
                t.skip_lwsp();
                if t.mime_token(&mut token) != Ret::Invalid {
                    d.disposition = Some(token);
                    d.disposition_params = t.params();
                }
            }
        }
        d
    }

    fn parse_content_type(&mut self, value: &[u8]) {
        let mut t = Tokenizer::new(value);
        let mut mime_type = Vec::new();
        let r = t.content_type(&mut mime_type);
        let (main, sub) = match mime_type.iter().position(|&c| c == b'/') {
            Some(slash) => (mime_type[..slash].to_vec(), mime_type[slash + 1..].to_vec()),
            None => (mime_type, Vec::new()),
        };
        self.content_type = Some((main, sub));
        if r != Ret::Invalid {
            self.params = t.params();
        }
    }

    /// Whether the part's subtype is `subtype` (case-insensitive); a part without a usable
    /// Content-Type is text/plain (RFC 2045 section 5.2).
    pub(crate) fn subtype_is(&self, subtype: &[u8]) -> bool {
        match &self.content_type {
            Some((_, sub)) if !sub.is_empty() => sub.eq_ignore_ascii_case(subtype),
            _ => subtype.eq_ignore_ascii_case(b"plain"),
        }
    }

    /// The value of parameter `name` of `Content-Type` (first match, case-insensitive).
    pub(crate) fn param(&self, name: &str) -> Option<&[u8]> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }
}

/// The ten ENVELOPE fields in order (RFC 9051 section 7.5.2).
const ENVELOPE_FIELDS: [&str; 10] =
    ["Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID"];

/// Write the ENVELOPE of the message whose header is `part`'s header, without the
/// enclosing parentheses.
pub(crate) fn envelope(msg: &Message<'_>, part: &Part, out: &mut Out<'_>) {
    let raw = msg.raw;
    // The last occurrence of a field wins, as with Dovecot (RFC 5322 allows one).
    let mut values: [Option<&[u8]>; 10] = [None; 10];
    for field in Fields::new(raw, part.header()) {
        let name = &raw[field.name.clone()];
        if let Some(i) = ENVELOPE_FIELDS.iter().position(|f| name.eq_ignore_ascii_case(f.as_bytes())) {
            values[i] = Some(&raw[field.value.clone()]);
        }
    }
    let [date, subject, from, sender, reply_to, to, cc, bcc, in_reply_to, message_id] = values;
    out.nstring(date.map(without_nul).as_deref());
    out.byte(b' ');
    match subject {
        Some(s) => out.string_for_humans(&without_nul(s)),
        None => out.raw(b"NIL"),
    }
    let parse = |v: Option<&[u8]>| v.map(address::parse).unwrap_or_default();
    let from = parse(from);
    let sender = parse(sender);
    let reply_to = parse(reply_to);
    // Sender and Reply-To default to From (RFC 9051 section 7.5.2).
    let sender = if sender.is_empty() { &from } else { &sender };
    let reply_to = if reply_to.is_empty() { &from } else { &reply_to };
    for list in [&from, sender, reply_to, &parse(to), &parse(cc), &parse(bcc)] {
        out.byte(b' ');
        addresses(list, out);
    }
    out.byte(b' ');
    out.nstring(in_reply_to.map(without_nul).as_deref());
    out.byte(b' ');
    out.nstring(message_id.map(without_nul).as_deref());
}

/// An address list: `NIL` when empty, else `((name adl mailbox host) ...)`.
fn addresses(list: &[address::Address], out: &mut Out<'_>) {
    if list.is_empty() {
        out.raw(b"NIL");
        return;
    }
    out.byte(b'(');
    for a in list {
        out.byte(b'(');
        match &a.name {
            Some(name) => out.string_for_humans(name),
            None => out.raw(b"NIL"),
        }
        out.byte(b' ');
        out.nstring(a.route.as_deref());
        out.byte(b' ');
        out.nstring(a.mailbox.as_deref());
        out.byte(b' ');
        out.nstring(a.domain.as_deref());
        out.byte(b')');
    }
    out.byte(b')');
}

/// The body of a multipart without parts, which RFC 2046 does not allow: an empty
/// text/plain part stands in (as Dovecot does).
const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";
const EMPTY_ENVELOPE: &[u8] = b"NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL";

/// Write the BODY (`extended == false`) or BODYSTRUCTURE of part `index`, without the
/// enclosing parentheses.
pub(crate) fn body_structure(msg: &Message<'_>, index: usize, extended: bool, out: &mut Out<'_>) {
    let Some(part) = msg.parts.get(index) else {
        return;
    };
    let data = PartData::of(msg.raw, part);
    if part.is(crate::structure::MULTIPART) {
        // body-type-mpart: the parts, then the subtype.
        if part.children.is_empty() {
            out.raw(if extended { EMPTY_BODYSTRUCTURE } else { EMPTY_BODY });
        }
        for &child in &part.children {
            out.byte(b'(');
            body_structure(msg, child, extended, out);
            out.byte(b')');
        }
        out.byte(b' ');
        out.string(data.content_type.as_ref().map(|(_, sub)| sub.as_slice()).unwrap_or(b"x-unknown"));
        if extended {
            // body-ext-mpart: parameters, disposition, language, location.
            out.byte(b' ');
            params(&data.params, false, out);
            extension_common(&data, out);
        }
        return;
    }

    // body-type-1part: type, subtype, parameters, id, description, encoding, size.
    let text = if part.is(RFC822) {
        out.raw(b"\"message\" \"rfc822\"");
        false
    } else {
        match &data.content_type {
            None => {
                out.raw(b"\"text\" \"plain\"");
                true
            }
            Some((main, sub)) => {
                out.string(main);
                out.byte(b' ');
                out.string(sub);
                main.eq_ignore_ascii_case(b"text")
            }
        }
    };
    out.byte(b' ');
    params(&data.params, text, out);
    out.byte(b' ');
    out.nstring_unfolded(data.id.map(without_nul).as_deref());
    out.byte(b' ');
    out.nstring_unfolded(data.description.map(without_nul).as_deref());
    out.byte(b' ');
    match &data.encoding {
        Some(e) => out.string(e),
        None => out.raw(b"\"7bit\""),
    }
    out.byte(b' ');
    out.number(part.body().len());
    let lines = || msg.raw[part.body()].iter().filter(|&&c| c == b'\n').count();
    if text {
        // body-type-text: the size in lines.
        out.byte(b' ');
        out.number(lines());
    } else if part.is(RFC822) {
        // body-type-msg: envelope and body of the encapsulated message, then lines.
        out.raw(b" (");
        match part.children.first().and_then(|&c| msg.parts.get(c).map(|p| (c, p))) {
            Some((child, child_part)) => {
                envelope(msg, child_part, out);
                out.raw(b") (");
                body_structure(msg, child, extended, out);
                out.byte(b')');
            }
            None => {
                out.raw(EMPTY_ENVELOPE);
                out.raw(b") ");
                out.raw(if extended { EMPTY_BODYSTRUCTURE } else { EMPTY_BODY });
            }
        }
        out.byte(b' ');
        out.number(lines());
    }
    if extended {
        // body-ext-1part: MD5, disposition, language, location.
        out.byte(b' ');
        out.nstring_unfolded(data.md5.map(without_nul).as_deref());
        extension_common(&data, out);
    }
}

/// `body-fld-param`: `NIL` or `(name value ...)`. Text parts always list a charset,
/// us-ascii by default (RFC 2045 section 5.2).
fn params(list: &[Param], text: bool, out: &mut Out<'_>) {
    if list.is_empty() && !text {
        out.raw(b"NIL");
        return;
    }
    out.byte(b'(');
    for (i, (name, value)) in list.iter().enumerate() {
        if i > 0 {
            out.byte(b' ');
        }
        out.string(name);
        out.byte(b' ');
        out.string(value);
    }
    if text && !list.iter().any(|(name, _)| name.eq_ignore_ascii_case(b"charset")) {
        if !list.is_empty() {
            out.byte(b' ');
        }
        out.raw(b"\"charset\" \"us-ascii\"");
    }
    out.byte(b')');
}

/// `body-fld-dsp SP body-fld-lang SP body-fld-loc`.
fn extension_common(data: &PartData<'_>, out: &mut Out<'_>) {
    out.byte(b' ');
    match &data.disposition {
        Some(d) => {
            out.byte(b'(');
            out.string(d);
            out.byte(b' ');
            params(&data.disposition_params, false, out);
            out.byte(b')');
        }
        None => out.raw(b"NIL"),
    }
    out.byte(b' ');
    if data.language.is_empty() {
        out.raw(b"NIL");
    } else {
        out.byte(b'(');
        for (i, tag) in data.language.iter().enumerate() {
            if i > 0 {
                out.byte(b' ');
            }
            out.string(tag);
        }
        out.byte(b')');
    }
    out.byte(b' ');
    out.nstring_unfolded(data.location.map(without_nul).as_deref());
}
