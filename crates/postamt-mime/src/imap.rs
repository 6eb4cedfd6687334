//! IMAP string rendering (RFC 9051 section 4.3 and the `string` / `nstring` rules of its
//! section 9 grammar), in the forms Dovecot uses so that answers match byte for byte.
//!
//! - A value becomes a quoted string when it has no CR, LF or 8-bit byte and at most four
//!   `"` or `\` (each escaped with `\`); otherwise a synchronizing literal `{n}\r\n...`,
//!   which can carry anything but NUL. Callers never pass NUL: header values have it
//!   replaced by U+FFFD, parameter values are cut at it.
//! - Human-readable text (subjects, display names) is cleaned like Dovecot's
//!   `imap_append_string_for_humans`: line breaks and tabs become spaces, runs of white
//!   space collapse, leading and trailing white space goes; anything it changed is sent
//!   as a literal.
//!
//! In UTF-8 mode (the `String` API of [`crate::Message`]) a value that is not valid UTF-8
//! is decoded as ISO-8859-1 first, so the output is valid UTF-8 and a literal's length
//! counts the bytes actually sent.

use std::borrow::Cow;
use std::io::Write as _;

/// Output buffer plus the encoding mode.
pub(crate) struct Out<'o> {
    pub buf: &'o mut Vec<u8>,
    /// Convert non-UTF-8 values to UTF-8 (ISO-8859-1 fallback) before writing.
    pub utf8: bool,
}

/// Decode bytes as UTF-8 where they are valid and as ISO-8859-1 where they are not.
pub(crate) fn utf8_or_latin1(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| char::from(b)));
    }
    Cow::Owned(out)
}

impl Out<'_> {
    pub(crate) fn raw(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    pub(crate) fn byte(&mut self, c: u8) {
        self.buf.push(c);
    }

    pub(crate) fn number(&mut self, n: usize) {
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "{n}");
    }

    fn convert<'v>(&self, value: &'v [u8]) -> Cow<'v, [u8]> {
        if self.utf8 {
            match utf8_or_latin1(value) {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        } else {
            Cow::Borrowed(value)
        }
    }

    fn literal(&mut self, value: &[u8]) {
        self.byte(b'{');
        self.number(value.len());
        self.raw(b"}\r\n");
        self.raw(value);
    }

    /// `string`: quoted if possible, else a literal. Stops at a NUL byte.
    pub(crate) fn string(&mut self, value: &[u8]) {
        let value = match value.iter().position(|&c| c == 0) {
            Some(nul) => &value[..nul],
            None => value,
        };
        let value = self.convert(value);
        let mut specials = 0;
        let needs_literal = value.iter().any(|&c| match c {
            b'"' | b'\\' => {
                specials += 1;
                specials > 4
            }
            b'\r' | b'\n' => true,
            c => c >= 0x80,
        });
        if needs_literal {
            self.literal(&value);
            return;
        }
        self.byte(b'"');
        for &c in value.iter() {
            if c == b'"' || c == b'\\' {
                self.byte(b'\\');
            }
            self.byte(c);
        }
        self.byte(b'"');
    }

    /// `nstring`: `NIL` for an absent value.
    pub(crate) fn nstring(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => self.string(v),
            None => self.raw(b"NIL"),
        }
    }

    /// `nstring` of a header value with its folding removed: each line break goes, and a
    /// space is put in where the next line does not start with white space.
    pub(crate) fn nstring_unfolded(&mut self, value: Option<&[u8]>) {
        let Some(value) = value else {
            self.raw(b"NIL");
            return;
        };
        if !value.iter().any(|&c| c == b'\r' || c == b'\n') {
            self.string(value);
            return;
        }
        let mut unfolded = Vec::with_capacity(value.len());
        for (i, &c) in value.iter().enumerate() {
            if c != b'\r' && c != b'\n' {
                unfolded.push(c);
            } else if !matches!(value.get(i + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
                unfolded.push(b' ');
            }
        }
        self.string(&unfolded);
    }

    /// Text meant for people (ENVELOPE subject and display names), cleaned up.
    pub(crate) fn string_for_humans(&mut self, value: &[u8]) {
        let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        // Fast path: nothing to clean and nothing to escape.
        let mut modify = false;
        let mut last_space = true;
        let mut only_space_so_far = true;
        for &c in value {
            match c {
                0 | b'"' | b'\\' => modify = true,
                b'\t' | b'\r' | b'\n' => modify = true,
                b' ' if last_space => modify = true,
                c if c >= 0x80 => modify = true,
                _ => {}
            }
            last_space = is_space(c);
            if !last_space {
                only_space_so_far = false;
            }
        }
        if last_space && !value.is_empty() && !only_space_so_far {
            modify = true;
        }
        if !modify {
            self.byte(b'"');
            self.raw(value);
            self.byte(b'"');
            return;
        }
        let mut cleaned = Vec::with_capacity(value.len());
        let mut last_space = true;
        for &c in value {
            if is_space(c) {
                if !last_space {
                    cleaned.push(b' ');
                }
                last_space = true;
            } else {
                // A NUL cannot be sent; Dovecot shows it as 0x80.
                cleaned.push(if c == 0 { 0x80 } else { c });
                last_space = false;
            }
        }
        if last_space && cleaned.last() == Some(&b' ') {
            cleaned.pop();
        }
        if cleaned.is_empty() {
            self.raw(b"\"\"");
            return;
        }
        let cleaned = self.convert(&cleaned);
        self.literal(&cleaned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut Out<'_>), utf8: bool) -> String {
        let mut buf = Vec::new();
        f(&mut Out { buf: &mut buf, utf8 });
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[test]
    fn quoting() {
        assert_eq!(render(|o| o.string(b"a \"b\" \\c"), false), r#""a \"b\" \\c""#);
        assert_eq!(render(|o| o.string(b"\"\"\"\"\""), false), "{5}\r\n\"\"\"\"\"");
        assert_eq!(render(|o| o.string(b"a\r\nb"), false), "{4}\r\na\r\nb");
        assert_eq!(render(|o| o.string(b"cut\0here"), false), "\"cut\"");
        assert_eq!(render(|o| o.nstring(None), false), "NIL");
        assert_eq!(render(|o| o.string("Grüße".as_bytes()), true), "{7}\r\nGrüße");
        assert_eq!(render(|o| o.string(b"Fr\xf6sche"), true), "{8}\r\nFrösche");
    }

    #[test]
    fn unfolding() {
        assert_eq!(render(|o| o.nstring_unfolded(Some(b"<a@b>\r\n <c@d>")), false), "\"<a@b> <c@d>\"");
        assert_eq!(render(|o| o.nstring_unfolded(Some(b"x\ry")), false), "\"x y\"");
    }

    #[test]
    fn text_for_humans() {
        assert_eq!(render(|o| o.string_for_humans(b"Hello world"), false), "\"Hello world\"");
        assert_eq!(render(|o| o.string_for_humans(b"Hello\r\n world"), false), "{11}\r\nHello world");
        assert_eq!(render(|o| o.string_for_humans(b"  a\t b  "), false), "{3}\r\na b");
        assert_eq!(render(|o| o.string_for_humans(b"say \"hi\""), false), "{8}\r\nsay \"hi\"");
        assert_eq!(render(|o| o.string_for_humans(b" \t "), false), "\"\"");
        assert_eq!(render(|o| o.string_for_humans(b""), false), "\"\"");
    }
}
