//! Body sections (RFC 9051 section 6.4.5) and BINARY (RFC 3516).

use std::borrow::Cow;

use crate::decode::TransferEncoding;
use crate::header::Fields;
use crate::render::PartData;
use crate::structure::{MULTIPART, Part, RFC822};
use crate::{Message, SectionText, UnknownEncoding};

/// Find the part with number `path` (non-empty), following RFC 9051 section 6.4.5:
/// a multipart's parts are numbered from 1; a non-multipart message (the top level or a
/// message/rfc822 part's message) has one part, 1, its body; the parts of a
/// message/rfc822 part's message are its sub-parts.
fn resolve(msg: &Message<'_>, path: &[u32]) -> Option<usize> {
    let mut node = 0;
    // Whether `node` is a message (top level or encapsulated) rather than a body part.
    let mut is_message = true;
    for (i, &n) in path.iter().enumerate() {
        let part = msg.parts.get(node)?;
        if part.is(MULTIPART) {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            node = *part.children.get(index)?;
        } else if !(is_message && n == 1) {
            return None;
        }
        is_message = false;
        if i + 1 < path.len() && msg.parts.get(node)?.is(RFC822) {
            node = *msg.parts.get(node)?.children.first()?;
            is_message = true;
        }
    }
    Some(node)
}

fn header<'a>(msg: &Message<'a>, part: &Part) -> &'a [u8] {
    &msg.raw[part.header()]
}

fn body<'a>(msg: &Message<'a>, part: &Part) -> &'a [u8] {
    &msg.raw[part.body()]
}

/// The header fields of `part` whose names are (`keep == true`) or are not in `names`,
/// exactly as in the message (folding kept), followed by a blank line.
fn header_fields(msg: &Message<'_>, part: &Part, names: &[String], keep: bool) -> Vec<u8> {
    let raw = msg.raw;
    let mut out = Vec::new();
    for field in Fields::new(raw, part.header()) {
        let name = &raw[field.name.clone()];
        if names.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes())) == keep {
            out.extend_from_slice(&raw[field.start..field.end]);
            if field.newline == 0 {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// HEADER, HEADER.FIELDS[.NOT] or TEXT of the message whose header is `part`'s.
fn message_text<'a>(msg: &Message<'a>, part: &Part, text: SectionText<'_>) -> Option<Cow<'a, [u8]>> {
    Some(match text {
        SectionText::Header => Cow::Borrowed(header(msg, part)),
        SectionText::Text => Cow::Borrowed(body(msg, part)),
        SectionText::HeaderFields(names) => Cow::Owned(header_fields(msg, part, names, true)),
        SectionText::HeaderFieldsNot(names) => Cow::Owned(header_fields(msg, part, names, false)),
        SectionText::Full | SectionText::Mime => return None,
    })
}

pub(crate) fn section<'a>(msg: &Message<'a>, path: &[u32], text: SectionText<'_>) -> Option<Cow<'a, [u8]>> {
    let root = msg.parts.first()?;
    if path.is_empty() {
        return match text {
            SectionText::Full => Some(Cow::Borrowed(msg.raw)),
            SectionText::Mime => None,
            _ => message_text(msg, root, text),
        };
    }
    let part = msg.parts.get(resolve(msg, path)?)?;
    match text {
        // The body of a part; for message/rfc822 that is the whole encapsulated message.
        SectionText::Full => Some(Cow::Borrowed(body(msg, part))),
        SectionText::Mime => Some(Cow::Borrowed(header(msg, part))),
        // HEADER and TEXT with a part number address a message/rfc822 part's message.
        _ if part.is(RFC822) => message_text(msg, msg.parts.get(*part.children.first()?)?, text),
        _ => None,
    }
}

pub(crate) fn binary<'a>(msg: &Message<'a>, path: &[u32]) -> Option<Result<Cow<'a, [u8]>, UnknownEncoding>> {
    if path.is_empty() {
        return Some(Ok(Cow::Borrowed(msg.raw)));
    }
    let part = msg.parts.get(resolve(msg, path)?)?;
    let content = body(msg, part);
    if part.is(MULTIPART) {
        // Multiparts have no transfer encoding of their own (RFC 2045 section 6.4).
        return Some(Ok(Cow::Borrowed(content)));
    }
    let data = PartData::of(msg.raw, part);
    Some(match TransferEncoding::from_token(data.encoding.as_deref()) {
        Some(encoding) => Ok(encoding.decode(content).map_or(Cow::Borrowed(content), Cow::Owned)),
        None => Err(UnknownEncoding),
    })
}
