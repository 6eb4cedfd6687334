//! Everything IMAP derives from the bytes of a message (RFC 5322 with MIME, CRLF line
//! ends): ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 section 7.5.2, RFC 3501 section
//! 7.4.2), body sections for `FETCH BODY[section]` (RFC 9051 section 6.4.5), decoded
//! parts for `FETCH BINARY[section]` (RFC 3516), and text for SEARCH.
//!
//! [`Message::parse`] makes one pass over the raw bytes and records where each MIME part's
//! header and body are; nothing is copied, and everything else is computed from those
//! offsets on demand. All functions are pure and total: any input, however broken
//! (missing boundaries, truncated headers, 8-bit or NUL bytes), gives a best-effort
//! answer and never a panic.
//!
//! The answers follow Dovecot 2.3 byte for byte where the RFCs leave room (string quoting,
//! lenient boundary matching, defaults, placeholders for broken addresses), because IMAP
//! clients are tuned to what the widespread servers say; `tests/corpus.rs` compares them
//! with Dovecot's on a corpus of real-world and malformed messages. Where Dovecot
//! contradicts the RFCs (it counts the CRLF before some boundary lines into the preceding
//! part, which RFC 2046 section 5.1.1 attaches to the delimiter) we follow the RFCs; that
//! test lists each such difference.
//!
//! Modules: `structure` finds the parts, `header` and `lexer` read header fields,
//! `address` parses address lists, `render` and `imap` write the IMAP structures,
//! `section` cuts sections, `decode` undoes transfer encodings and charsets, `sortkeys`
//! derives SORT/THREAD keys and previews, `summary` bundles what is cached per stored body
//! (see [`Summary`]).

mod address;
mod decode;
mod header;
mod imap;
mod lexer;
mod render;
mod section;
mod sortkeys;
mod structure;
mod summary;

use std::borrow::Cow;

use header::Fields;
use imap::Out;
use render::PartData;
use structure::{MULTIPART, Part, TEXT};

pub use sortkeys::{SortKeys, base_subject};
pub use summary::{PREVIEW_CHARS, SearchFields, Summary};

/// The piece of a part that `BODY[<part>.<text>]` asks for (RFC 9051 section 6.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionText<'n> {
    /// No text specifier: the whole message (`BODY[]`) or the part's body (`BODY[1.2]`).
    Full,
    /// `HEADER`: the header of the message (or of the message/rfc822 part's message),
    /// including the blank line.
    Header,
    /// `HEADER.FIELDS (names)`: only the fields with these names, then a blank line.
    HeaderFields(&'n [String]),
    /// `HEADER.FIELDS.NOT (names)`: all other fields, then a blank line.
    HeaderFieldsNot(&'n [String]),
    /// `TEXT`: the body of the message (or of the message/rfc822 part's message).
    Text,
    /// `MIME`: the MIME header of a part (only with a part number).
    Mime,
}

/// The part of `BINARY[part]` has a `Content-Transfer-Encoding` that cannot be decoded;
/// the server answers `NO [UNKNOWN-CTE]` (RFC 3516, RFC 9051 section 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown Content-Transfer-Encoding")]
pub struct UnknownEncoding;

/// A message parsed once; it borrows the raw bytes.
///
/// Part numbers follow RFC 9051 section 6.4.5: the parts of a multipart are numbered from
/// 1, nested ones `1.2`; a non-multipart message (top-level or encapsulated) has one part
/// numbered 1, its body; the parts of a message/rfc822 part's message are sub-parts of it
/// (`2.1`).
#[derive(Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    /// The part tree; index 0 is the message itself.
    parts: Vec<Part>,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the raw bytes: messages can be megabytes long.
        f.debug_struct("Message").field("len", &self.raw.len()).field("parts", &self.parts.len()).finish()
    }
}

impl<'a> Message<'a> {
    /// Parse `raw`, a message with CRLF line ends. Never fails: broken input gives a
    /// best-effort view, at worst a text/plain message.
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        Message { raw, parts: structure::parse(raw) }
    }

    /// The raw bytes the message was parsed from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    fn root(&self) -> &Part {
        // `structure::parse` always returns the root part.
        &self.parts[0]
    }

    fn render(&self, utf8: bool, f: impl FnOnce(&mut Out<'_>)) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        f(&mut Out { buf: &mut buf, utf8 });
        buf
    }

    fn render_string(&self, f: impl FnOnce(&mut Out<'_>)) -> String {
        let bytes = self.render(true, f);
        // UTF-8 mode writes only UTF-8; the fallback keeps this total regardless.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The ENVELOPE structure: `(date subject from sender reply-to to cc bcc in-reply-to
    /// message-id)`. Header values are raw (RFC 2047 encoded words are not decoded);
    /// sender and reply-to default to from; groups appear as `(NIL NIL "name" NIL)` ...
    /// `(NIL NIL NIL NIL)`.
    ///
    /// The result is valid UTF-8: header bytes that are not UTF-8 are read as ISO-8859-1
    /// (and literal lengths count the UTF-8 bytes). [`Self::write_envelope`] writes the
    /// original bytes instead.
    pub fn envelope(&self) -> String {
        self.render_string(|out| self.envelope_into(out))
    }

    /// Append the ENVELOPE structure to `out` with the header bytes as they are.
    pub fn write_envelope(&self, out: &mut Vec<u8>) {
        self.envelope_into(&mut Out { buf: out, utf8: false });
    }

    fn envelope_into(&self, out: &mut Out<'_>) {
        out.byte(b'(');
        render::envelope(self, self.root(), out);
        out.byte(b')');
    }

    /// The BODY structure: BODYSTRUCTURE without extension data. UTF-8 as for
    /// [`Self::envelope`].
    pub fn body(&self) -> String {
        self.render_string(|out| self.structure_into(false, out))
    }

    /// The BODYSTRUCTURE, with extension data (MD5, disposition, language, location).
    /// UTF-8 as for [`Self::envelope`].
    pub fn body_structure(&self) -> String {
        self.render_string(|out| self.structure_into(true, out))
    }

    /// Append the BODY structure to `out` with the header bytes as they are.
    pub fn write_body(&self, out: &mut Vec<u8>) {
        self.structure_into(false, &mut Out { buf: out, utf8: false });
    }

    /// Append the BODYSTRUCTURE to `out` with the header bytes as they are.
    pub fn write_body_structure(&self, out: &mut Vec<u8>) {
        self.structure_into(true, &mut Out { buf: out, utf8: false });
    }

    fn structure_into(&self, extended: bool, out: &mut Out<'_>) {
        out.byte(b'(');
        render::body_structure(self, 0, extended, out);
        out.byte(b')');
    }

    /// The content of `BODY[section]`: `part` is the part path (`[]` for the whole
    /// message), `text` which piece of it. `None` when the part does not exist or the
    /// specifier does not apply to it (HEADER, TEXT and the HEADER.FIELDS forms need a
    /// message/rfc822 part when a path is given; MIME needs a path).
    pub fn section(&self, part: &[u32], text: SectionText<'_>) -> Option<Cow<'a, [u8]>> {
        section::section(self, part, text)
    }

    /// The content of `BINARY[part]` (RFC 3516): the part's body with its
    /// Content-Transfer-Encoding removed. `None` if the part does not exist;
    /// `Err(UnknownEncoding)` if the encoding is not one of 7bit, 8bit, binary, base64
    /// and quoted-printable. Multiparts are returned as they are.
    pub fn binary(&self, part: &[u32]) -> Option<Result<Cow<'a, [u8]>, UnknownEncoding>> {
        section::binary(self, part)
    }

    /// Size of the header section in bytes, including the blank line that ends it.
    pub fn header_len(&self) -> usize {
        self.root().body_start
    }

    fn top_fields(&self) -> Fields<'a> {
        Fields::new(self.raw, 0..self.root().body_start)
    }

    /// The values of every `name` field of the message header, unfolded and with RFC 2047
    /// encoded words decoded (for SEARCH HEADER, SUBJECT).
    pub fn header_text(&self, name: &str) -> Vec<String> {
        self.top_fields()
            .filter(|f| self.raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| decode::unstructured(&self.raw[f.value]))
            .collect()
    }

    /// The addresses of every `field` field (From, To, Cc, Bcc, ...) as searchable text:
    /// `Name <mailbox@host>` items with decoded names, joined by `, ` (for SEARCH FROM,
    /// TO, CC, BCC).
    pub fn address_text(&self, field: &str) -> String {
        let mut out = String::new();
        for f in self.top_fields().filter(|f| self.raw[f.name.clone()].eq_ignore_ascii_case(field.as_bytes()))
        {
            let text = decode::address_text(&self.raw[f.value]);
            if !text.is_empty() {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(&text);
            }
        }
        out
    }

    /// The text of all text/* parts, encapsulated messages included, with transfer
    /// encodings undone and charsets decoded to UTF-8, one part after the other separated
    /// by a line break (for SEARCH BODY and TEXT).
    pub fn body_text(&self) -> String {
        let mut out = String::new();
        for part in self.parts.iter().filter(|p| p.is(TEXT) && !p.is(MULTIPART)) {
            let body = &self.raw[part.body()];
            let data = PartData::of(self.raw, part);
            let decoded =
                decode::TransferEncoding::from_token(data.encoding.as_deref()).and_then(|e| e.decode(body));
            let text = decode::charset_to_utf8(decoded.as_deref().unwrap_or(body), data.param("charset"));
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text);
        }
        out
    }

    /// The `Date` field as Unix seconds (for SENTBEFORE, SENTON, SENTSINCE); `None` if it
    /// is missing or cannot be parsed. With several Date fields the last counts, as in the
    /// ENVELOPE.
    pub fn sent_date(&self) -> Option<i64> {
        self.sent_date_with_zone().map(|(seconds, _)| seconds)
    }

    /// The `Date` field as Unix seconds and its zone offset in minutes east of UTC.
    /// SENTBEFORE, SENTON and SENTSINCE compare dates "disregarding time and timezone"
    /// (RFC 9051 section 6.4.4), that is the calendar day of `seconds + offset * 60`.
    pub fn sent_date_with_zone(&self) -> Option<(i64, i32)> {
        let field =
            self.top_fields().filter(|f| self.raw[f.name.clone()].eq_ignore_ascii_case(b"Date")).last()?;
        decode::date(&self.raw[field.value])
    }

    /// The raw value of the first `name` field of the message header.
    fn first_field(&self, name: &str) -> Option<&'a [u8]> {
        let raw = self.raw;
        self.top_fields()
            .find(|f| raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &raw[f.value])
    }

    /// The keys SORT and THREAD compare (RFC 5256, RFC 5957); see [`SortKeys`].
    pub fn sort_keys(&self) -> SortKeys {
        let subject = self.header_text("Subject").into_iter().next().unwrap_or_default();
        let (subject, reply) = base_subject(&subject);
        let address = |name: &str| self.first_field(name).map(sortkeys::first_address).unwrap_or_default();
        let (from, display_from) = address("From");
        let (to, display_to) = address("To");
        let (cc, _) = address("Cc");
        let message_id =
            self.first_field("Message-ID").and_then(|v| sortkeys::message_ids(v).into_iter().next());
        // RFC 5256 section 2.2 step 1: References, else the first id of In-Reply-To.
        let mut references = self.first_field("References").map(sortkeys::message_ids).unwrap_or_default();
        if references.is_empty() {
            references = self
                .first_field("In-Reply-To")
                .and_then(|v| sortkeys::message_ids(v).into_iter().next())
                .into_iter()
                .collect();
        }
        SortKeys {
            date: self.sent_date(),
            subject,
            reply,
            from,
            to,
            cc,
            display_from,
            display_to,
            message_id,
            references,
        }
    }

    /// The preview of RFC 8970: up to `max` characters of the first text/plain part (else
    /// the first text/* part, with HTML tags dropped), white space collapsed. Empty when the
    /// message has no text.
    pub fn preview(&self, max: usize) -> String {
        let texts: Vec<&Part> = self.parts.iter().filter(|p| p.is(TEXT) && !p.is(MULTIPART)).collect();
        let plain = texts.iter().find(|p| PartData::of(self.raw, p).subtype_is(b"plain")).or(texts.first());
        let Some(part) = plain else { return String::new() };
        let data = PartData::of(self.raw, part);
        let body = &self.raw[part.body()];
        let decoded =
            decode::TransferEncoding::from_token(data.encoding.as_deref()).and_then(|e| e.decode(body));
        let text = decode::charset_to_utf8(decoded.as_deref().unwrap_or(body), data.param("charset"));
        let text = if data.subtype_is(b"html") { strip_tags(&text) } else { text };
        sortkeys::collapse(&text, max)
    }
}

/// Text of an HTML body: tags, comments, scripts and styles dropped, the common entities
/// decoded (enough for a preview; not a renderer).
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let lower = after.get(..8).unwrap_or(after).to_ascii_lowercase();
        let close = if lower.starts_with("<!--") {
            after.find("-->").map(|i| i + 3)
        } else if lower.starts_with("<script") || lower.starts_with("<style") {
            let tag = if lower.starts_with("<script") { "</script>" } else { "</style>" };
            after.to_ascii_lowercase().find(tag).map(|i| i + tag.len())
        } else {
            after.find('>').map(|i| i + 1)
        };
        out.push(' ');
        match close {
            Some(n) => rest = &after[n..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}
