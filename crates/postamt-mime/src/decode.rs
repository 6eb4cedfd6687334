//! Content decoding: transfer encodings (RFC 2045 section 6), charsets, and RFC 2047
//! encoded words in header fields, for BINARY and SEARCH.
//!
//! The decoders are lenient, as RFC 2045 asks of them: base64 ignores characters outside
//! its alphabet (section 6.8), quoted-printable keeps a `=` that does not start a valid
//! escape and drops trailing white space (section 6.7).

use crate::imap::utf8_or_latin1;
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};

/// Known `Content-Transfer-Encoding` values (RFC 2045 section 6.1, RFC 3516).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    /// 7bit, 8bit or binary: the body is used as it is.
    Identity,
    Base64,
    QuotedPrintable,
}

impl TransferEncoding {
    /// Classify a `Content-Transfer-Encoding` token; `None` for unknown ones (including
    /// `x-` tokens, which nobody can decode).
    pub(crate) fn from_token(token: Option<&[u8]>) -> Option<Self> {
        let Some(token) = token else {
            // RFC 2045 section 6.1: the default is 7bit.
            return Some(Self::Identity);
        };
        let is = |s: &[u8]| token.eq_ignore_ascii_case(s);
        if is(b"7bit") || is(b"8bit") || is(b"binary") {
            Some(Self::Identity)
        } else if is(b"base64") {
            Some(Self::Base64)
        } else if is(b"quoted-printable") {
            Some(Self::QuotedPrintable)
        } else {
            None
        }
    }

    /// Decode `body`; `None` for identity (the body stays as it is).
    pub(crate) fn decode(self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Identity => None,
            Self::Base64 => Some(base64(body)),
            Self::QuotedPrintable => Some(quoted_printable(body)),
        }
    }
}

/// Value of a base64 alphabet character (RFC 2045 table 1), or 0xff.
const BASE64: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decode base64, ignoring everything outside the alphabet. `=` ends a group, so
/// concatenated encodings decode too.
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut n = 0;
    for &c in input {
        let v = BASE64[c as usize];
        if v != 0xff {
            acc = (acc << 6) | u32::from(v);
            n += 1;
            if n == 4 {
                out.extend_from_slice(&acc.to_be_bytes()[1..]);
                acc = 0;
                n = 0;
            }
        } else if c == b'=' {
            flush(&mut out, acc, n);
            acc = 0;
            n = 0;
        }
    }
    flush(&mut out, acc, n);
    out
}

/// Emit the bytes of an incomplete base64 group of `n` characters.
fn flush(out: &mut Vec<u8>, acc: u32, n: u32) {
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decode quoted-printable (RFC 2045 section 6.7). Line breaks are kept as they are,
/// soft line breaks (`=` at the end of a line) removed.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for segment in input.split_inclusive(|&c| c == b'\n') {
        let (line, newline): (&[u8], &[u8]) = match segment {
            [line @ .., b'\r', b'\n'] => (line, b"\r\n"),
            [line @ .., b'\n'] => (line, b"\n"),
            line => (line, b""),
        };
        // Rule 3: trailing white space was added in transport and is dropped.
        let line = line.trim_ascii_end();
        let (line, soft_break) = match line.strip_suffix(b"=") {
            Some(line) => (line, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            if c == b'='
                && let (Some(h), Some(l)) =
                    (line.get(i + 1).and_then(|&c| hex(c)), line.get(i + 2).and_then(|&c| hex(c)))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(c);
            i += 1;
        }
        if !soft_break {
            out.extend_from_slice(newline);
        }
    }
    out
}

/// Decode text in `charset` (RFC 2046 section 4.1.2) to UTF-8. Without a charset, and
/// for us-ascii (often mislabelled UTF-8 in practice), bytes are taken as UTF-8 where
/// valid and as ISO-8859-1 elsewhere.
pub(crate) fn charset_to_utf8(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let plain = |cs: &[u8]| {
        [&b"us-ascii"[..], b"ascii", b"utf-8", b"utf8"].iter().any(|known| cs.eq_ignore_ascii_case(known))
    };
    match charset {
        Some(cs) if !plain(cs) => match mail_parser::decoders::charsets::map::charset_decoder(cs) {
            Some(decoder) => decoder(bytes),
            None => utf8_or_latin1(bytes).into_owned(),
        },
        _ => utf8_or_latin1(bytes).into_owned(),
    }
}

/// A header value as a line for mail-parser's field parsers, which expect the field to
/// end with a line break.
fn as_line(value: &[u8]) -> Vec<u8> {
    let mut line = utf8_or_latin1(value).into_owned().into_bytes();
    line.push(b'\n');
    line
}

/// An unstructured header value (RFC 5322 section 3.2.5) unfolded, with RFC 2047 encoded
/// words decoded and white space runs collapsed.
pub(crate) fn unstructured(value: &[u8]) -> String {
    let line = as_line(value);
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// An address list header value as searchable text: `Name <mailbox@host>` items (names
/// decoded) joined by `, `; a group as `Group: items;`.
pub(crate) fn address_text(value: &[u8]) -> String {
    fn item(a: &mail_parser::Addr<'_>) -> String {
        match (a.name(), a.address()) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(s), None) | (None, Some(s)) => s.to_owned(),
            (None, None) => String::new(),
        }
    }
    let line = as_line(value);
    let items: Vec<String> = match MessageStream::new(&line).parse_address() {
        HeaderValue::Address(Address::List(list)) => list.iter().map(item).collect(),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .map(|g| {
                let members: Vec<String> = g.addresses.iter().map(item).filter(|s| !s.is_empty()).collect();
                match g.name.as_deref() {
                    Some(name) => format!("{name}: {};", members.join(", ")),
                    None => members.join(", "),
                }
            })
            .collect(),
        _ => return unstructured(value),
    };
    items.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
}

/// A `Date` value (RFC 5322 section 3.3) as Unix seconds and the zone offset in minutes
/// east of UTC.
pub(crate) fn date(value: &[u8]) -> Option<(i64, i32)> {
    let line = as_line(value);
    let text = std::str::from_utf8(&line).ok()?;
    let date = mail_parser::DateTime::parse_rfc822(text).filter(|d| d.is_valid())?;
    let offset = i32::from(date.tz_hour) * 60 + i32::from(date.tz_minute);
    Some((date.to_timestamp(), if date.tz_before_gmt { -offset } else { offset }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_lenient() {
        assert_eq!(base64(b"aGVs\r\nbG8g\r\nd29y bGQ="), b"hello world");
        assert_eq!(base64(b"aGk=aGk="), b"hihi");
        assert_eq!(base64(b"aGVsbG8*!"), b"hello");
        assert_eq!(base64(b""), b"");
    }

    #[test]
    fn quoted_printable_rules() {
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\nx=3d=zz="),
            "café au lait\r\nx==zz".as_bytes()
        );
        assert_eq!(quoted_printable(b"a=\nb\n"), b"ab\n");
    }

    #[test]
    fn charsets() {
        assert_eq!(charset_to_utf8(b"Fr\xf6sche", Some(b"ISO-8859-1")), "Frösche");
        assert_eq!(charset_to_utf8("Grüße".as_bytes(), Some(b"us-ascii")), "Grüße");
        assert_eq!(charset_to_utf8(b"\xe9t\xe9", None), "été");
        assert_eq!(charset_to_utf8(b"x", Some(b"no-such-charset")), "x");
    }

    #[test]
    fn charset_decoders_take_any_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let charsets = [
            "utf-16",
            "utf-16le",
            "utf-16be",
            "utf-7",
            "iso-2022-jp",
            "shift_jis",
            "euc-jp",
            "euc-kr",
            "big5",
            "gb18030",
            "gbk",
            "koi8-r",
            "windows-1251",
            "iso-8859-7",
            "ibm850",
            "x-unknown",
            "",
        ];
        for len in 0..40 {
            for cs in charsets {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let _ = charset_to_utf8(&bytes, Some(cs.as_bytes()));
                let _ = unstructured(&bytes);
                let _ = address_text(&bytes);
                let _ = date(&bytes);
            }
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(
            unstructured(b"=?iso-8859-1?Q?Die_Hasen_und_die_Fr=F6sche?=\r\n  (bis)"),
            "Die Hasen und die Frösche (bis)"
        );
        assert_eq!(unstructured(b"=?utf-8?B?w6l0w6k=?= =?utf-8?Q?_=C3=A0?="), "été à");
        assert_eq!(
            address_text(b"=?utf-8?Q?J=C3=BCrgen?= <j@example.com>, x@y.test"),
            "Jürgen <j@example.com>, x@y.test"
        );
        assert_eq!(date(b"Wed, 17 May 2000 19:35:05 -0400"), Some((958606505, -240)));
        assert_eq!(date(b"Sun, 1 Jan 2023 00:30:00 +0530 (IST)"), Some((1672513200, 330)));
        assert_eq!(date(b"yesterday"), None);
    }
}
