//! Header sections (RFC 5322 section 2.2): splitting into fields, unfolding, and locating
//! the end of the header.
//!
//! Lines end at LF, with an optional CR before it. A line starting with a space or tab
//! continues the previous field (folding, RFC 5322 section 2.2.3). An empty line ends the
//! header section (section 2.1). A line without a colon is kept as a field whose name is
//! the whole line, so nothing in a broken header is lost. Positions are byte offsets into
//! the raw message; nothing is copied.

use std::ops::Range;

/// `WSP` of RFC 5234: the characters that start a folded continuation line.
pub(crate) fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// If an empty line (the end of a header section) starts at `pos`, its length (1 for a
/// bare LF, 2 for CRLF).
pub(crate) fn blank_line(raw: &[u8], pos: usize) -> Option<usize> {
    match raw.get(pos..)? {
        [b'\n', ..] => Some(1),
        [b'\r', b'\n', ..] => Some(2),
        _ => None,
    }
}

/// One header field: `name ":" value CRLF`, possibly folded over several lines.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// Offset of the first byte of the field.
    pub start: usize,
    /// The field name, without white space before the colon.
    pub name: Range<usize>,
    /// The value: from after the colon (and the white space following it) to the end of
    /// the last line, excluding its line terminator. Folding line breaks stay inside.
    pub value: Range<usize>,
    /// Offset just past the field's last line terminator.
    pub end: usize,
    /// Length of the last line's terminator: 2 (CRLF), 1 (LF) or 0 (end of input).
    pub newline: usize,
}

/// The line starting at `pos`: (end of its content without CR LF, start of the next
/// line, terminator length).
fn line(raw: &[u8], pos: usize, end: usize) -> (usize, usize, usize) {
    match raw[pos..end].iter().position(|&c| c == b'\n') {
        Some(i) => {
            let lf = pos + i;
            if lf > pos && raw[lf - 1] == b'\r' { (lf - 1, lf + 1, 2) } else { (lf, lf + 1, 1) }
        }
        None => (end, end, 0),
    }
}

/// Read the field starting at `start` (which must be `< end` and not a blank line).
pub(crate) fn read_field(raw: &[u8], start: usize, end: usize) -> Field {
    let (content_end, mut next, mut newline) = line(raw, start, end);
    let (name, value_start) = match raw[start..content_end].iter().position(|&c| c == b':') {
        Some(i) => {
            let colon = start + i;
            let mut name_end = colon;
            while name_end > start && is_wsp(raw[name_end - 1]) {
                name_end -= 1;
            }
            // The value starts after the white space following the colon; a first line
            // of nothing but white space loses only one character of it.
            let mut v = colon + 1;
            while v < content_end && is_wsp(raw[v]) {
                v += 1;
            }
            if v == content_end && content_end > colon + 1 {
                v = colon + 2;
            }
            (start..name_end, v)
        }
        None => (start..content_end, content_end),
    };
    let mut value_end = content_end;
    while newline > 0 && next < end && is_wsp(raw[next]) {
        let (e, n, nl) = line(raw, next, end);
        value_end = e;
        next = n;
        newline = nl;
    }
    Field { start, name, value: value_start..value_end.max(value_start), end: next, newline }
}

/// The fields of the header section in `raw[range]`, up to its blank line.
pub(crate) struct Fields<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(raw: &'a [u8], range: Range<usize>) -> Self {
        let end = range.end.min(raw.len());
        Fields { raw, pos: range.start.min(end), end }
    }
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        if self.pos >= self.end || blank_line(&self.raw[..self.end], self.pos).is_some() {
            return None;
        }
        let field = read_field(self.raw, self.pos, self.end);
        self.pos = field.end;
        Some(field)
    }
}

/// Replace NUL bytes by U+FFFD: header values are text, and an IMAP string cannot carry
/// NUL (RFC 9051 section 4.3).
pub(crate) fn without_nul(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !value.contains(&0) {
        return value.into();
    }
    let mut out = Vec::with_capacity(value.len() + 8);
    for &c in value {
        if c == 0 {
            out.extend_from_slice(crate::lexer::NUL_REPLACEMENT);
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(raw: &[u8]) -> Vec<(String, String)> {
        Fields::new(raw, 0..raw.len())
            .map(|f| {
                (
                    String::from_utf8_lossy(&raw[f.name]).into_owned(),
                    String::from_utf8_lossy(&raw[f.value]).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn folded_and_broken_fields() {
        let raw = b"Subject: a\r\n  b\r\nX-Empty:\r\nno colon\r\nTo :  c \r\n\r\nbody";
        assert_eq!(
            fields(raw),
            [
                ("Subject".into(), "a\r\n  b".into()),
                ("X-Empty".into(), "".into()),
                ("no colon".into(), "".into()),
                ("To".into(), "c ".into())
            ]
        );
    }

    #[test]
    fn white_space_only_first_line() {
        assert_eq!(fields(b"A:   \r\n\tx\r\n"), [("A".into(), "  \r\n\tx".into())]);
        assert_eq!(fields(b"A:\r\n x"), [("A".into(), "\r\n x".into())]);
    }

    #[test]
    fn end_of_input_inside_a_field() {
        let f = read_field(b"Subject: x", 0, 10);
        assert_eq!((f.value, f.end, f.newline), (9..10, 10, 0));
    }
}
