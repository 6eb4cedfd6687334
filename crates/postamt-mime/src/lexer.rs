//! The lexical layer of structured header fields: RFC 5322 section 3.2 (comments, atoms,
//! dot-atoms, quoted strings, phrases, domains), RFC 2045 section 5.1 (`Content-Type`
//! tokens and parameters) and RFC 2231 (parameter continuations).
//!
//! The tokenizer is deliberately lenient in the same places Dovecot's is, because IMAP
//! clients compare our BODYSTRUCTURE answers with what other servers say about the same
//! message: folding white space (CR and LF included) and comments are skipped between
//! tokens (RFC 5322 section 3.2.2), 8-bit bytes count as atom characters (RFC 6532
//! section 3.2), and every function makes progress or reports [`Ret::Invalid`] instead of
//! failing, so the caller can resynchronise.

/// Character classes: 0 = not `atext`; 1 and 2 = `atext` that is also an RFC 2045
/// `token` character; 4 = `atext` that is an RFC 2045 `tspecial` (`/`, `=`, `?`).
/// Bytes 0x80..=0xff are `atext` (RFC 6532 section 3.2, `UTF8-non-ascii`).
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        table[c] = match c as u8 {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | 0x80..=0xff => 2,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'^' | b'_' | b'`' | b'{'
            | b'|' | b'}' | b'~' => 1,
            b'/' | b'=' | b'?' => 4,
            _ => 0,
        };
        c += 1;
    }
    table
};

/// `atext` of RFC 5322 section 3.2.3 (plus 8-bit bytes).
pub(crate) fn is_atext(c: u8) -> bool {
    CLASS[c as usize] != 0
}

/// `token` character of RFC 2045 section 5.1: `atext` without the `tspecials` `/ = ?`.
fn is_token_char(c: u8) -> bool {
    CLASS[c as usize] & 3 != 0
}

/// The UTF-8 encoding of U+FFFD, which replaces NUL bytes in header values.
pub(crate) const NUL_REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Outcome of one tokenizer step. The order matters: callers test `r <= Ret::End` for
/// "nothing more can follow" and `r == Ret::Invalid` for syntax errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ret {
    /// Syntax error; the position is somewhere inside the offending construct.
    Invalid,
    /// The token was read and the input is exhausted.
    End,
    /// The token was read and more input follows (after skipped white space).
    More,
}

/// A MIME parameter (`attribute=value`) after RFC 2231 merging.
pub(crate) type Param = (Vec<u8>, Vec<u8>);

/// A cursor over one header field value.
pub(crate) struct Tokenizer<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
    /// The text of the most recently skipped comment, when tracked (address parsing uses
    /// it as the display name of `addr-spec (Name)` forms).
    comment: Option<Vec<u8>>,
    /// Replace NUL bytes inside quoted strings, comments and domain literals with U+FFFD.
    replace_nul: bool,
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer for MIME fields (`Content-*`): NUL bytes are kept as they are.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Tokenizer { data, pos: 0, comment: None, replace_nul: false }
    }

    /// A tokenizer for address fields: comments are remembered, NUL bytes replaced.
    pub(crate) fn for_addresses(data: &'a [u8]) -> Self {
        Tokenizer { data, pos: 0, comment: Some(Vec::new()), replace_nul: true }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Whether the next byte is `c`.
    pub(crate) fn next_is(&self, c: u8) -> bool {
        self.peek() == Some(c)
    }

    /// Consume one byte (no-op at the end).
    pub(crate) fn bump(&mut self) {
        if self.pos < self.data.len() {
            self.pos += 1;
        }
    }

    fn state(&self) -> Ret {
        if self.at_end() { Ret::End } else { Ret::More }
    }

    pub(crate) fn last_comment(&self) -> &[u8] {
        self.comment.as_deref().unwrap_or_default()
    }

    pub(crate) fn clear_comment(&mut self) {
        if let Some(c) = self.comment.as_mut() {
            c.clear();
        }
    }

    /// Skip a (nested) comment, RFC 5322 section 3.2.2. Expects to be at `(`.
    fn skip_comment(&mut self) -> Ret {
        let data = self.data;
        let tracking = self.comment.is_some();
        let mut text = self.comment.take();
        if let Some(t) = text.as_mut() {
            t.clear();
        }
        self.pos += 1;
        let mut start = self.pos;
        let mut level = 1u32;
        let mut result = Ret::Invalid;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if tracking && self.replace_nul => {
                    if let Some(t) = text.as_mut() {
                        t.extend_from_slice(&data[start..self.pos]);
                        t.extend_from_slice(NUL_REPLACEMENT);
                    }
                    start = self.pos + 1;
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if let Some(t) = text.as_mut() {
                            t.extend_from_slice(&data[start..self.pos]);
                        }
                        self.pos += 1;
                        result = self.state();
                        break;
                    }
                }
                // Unfold: a line break inside a comment is folding white space.
                b'\n' if tracking => {
                    let mut end = self.pos;
                    if end > start && data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    if let Some(t) = text.as_mut() {
                        t.extend_from_slice(&data[start..end]);
                    }
                    start = self.pos + 1;
                }
                // quoted-pair (RFC 5322 section 3.2.1); a backslash before a line break
                // or NUL is kept literally.
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        break;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        if let Some(t) = text.as_mut() {
                            t.extend_from_slice(&data[start..self.pos - 1]);
                        }
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.comment = text;
        result
    }

    /// Skip CFWS (RFC 5322 section 3.2.2): spaces, tabs, line breaks and comments.
    pub(crate) fn skip_lwsp(&mut self) -> Ret {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() == Ret::Invalid {
                        return Ret::Invalid;
                    }
                }
                _ => break,
            }
        }
        self.state()
    }

    /// After a token: skip trailing CFWS, or report the end.
    fn after_token(&mut self) -> Ret {
        if self.at_end() { Ret::End } else { self.skip_lwsp() }
    }

    /// `atom` (RFC 5322 section 3.2.3), appended to `out`.
    pub(crate) fn atom(&mut self, out: &mut Vec<u8>) -> Ret {
        if !self.peek().is_some_and(is_atext) {
            return Ret::Invalid;
        }
        let start = self.pos;
        while self.peek().is_some_and(is_atext) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.after_token()
    }

    /// `dot-atom` (RFC 5322 section 3.2.3) with the obsolete CFWS around dots allowed
    /// (`obs-local-part`, `obs-domain`, section 4.4).
    pub(crate) fn dot_atom(&mut self, out: &mut Vec<u8>) -> Ret {
        if !self.peek().is_some_and(is_atext) {
            return Ret::Invalid;
        }
        let mut start = self.pos;
        loop {
            while self.peek().is_some_and(is_atext) {
                self.pos += 1;
            }
            if self.at_end() {
                break;
            }
            if start == self.pos {
                // Empty label after a dot.
                return Ret::Invalid;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            let r = self.skip_lwsp();
            if r <= Ret::End {
                return r;
            }
            if !self.next_is(b'.') {
                return Ret::More;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() <= Ret::End {
                return Ret::Invalid;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        Ret::End
    }

    /// An RFC 2045 `token` (dots allowed), possibly empty.
    pub(crate) fn mime_token(&mut self, out: &mut Vec<u8>) -> Ret {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_token_char(c) || c == b'.') {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.after_token()
    }

    /// `quoted-string` (RFC 5322 section 3.2.4), unquoted into `out`. Expects `"`.
    pub(crate) fn quoted_string(&mut self, out: &mut Vec<u8>) -> Ret {
        let data = self.data;
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if self.replace_nul => {
                    out.extend_from_slice(&data[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(&data[start..self.pos]);
                    self.pos += 1;
                    return self.after_token();
                }
                // Folding inside the quotes is removed (RFC 5322 section 3.2.4).
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        return Ret::Invalid;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        out.extend_from_slice(&data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Ret::Invalid
    }

    /// A run of `atext` and dots (the obsolete phrase of RFC 5322 section 4.1), possibly
    /// empty.
    fn atom_or_dot(&mut self, out: &mut Vec<u8>) -> Ret {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_atext(c) || c == b'.') {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.after_token()
    }

    /// `phrase` (RFC 5322 section 3.2.5, with `obs-phrase` dots): words joined by one
    /// space.
    pub(crate) fn phrase(&mut self, out: &mut Vec<u8>) -> Ret {
        match self.peek() {
            None => return Ret::End,
            Some(b'.') => return Ret::Invalid,
            Some(_) => {}
        }
        loop {
            let r = if self.next_is(b'"') { self.quoted_string(out) } else { self.atom_or_dot(out) };
            if r <= Ret::End {
                return r;
            }
            match self.peek() {
                Some(c) if is_atext(c) || c == b'"' || c == b'.' => out.push(b' '),
                _ => break,
            }
        }
        self.skip_lwsp()
    }

    /// `domain` after `@` (RFC 5322 section 3.4.1): a dot-atom or a domain literal.
    /// Expects `@`.
    pub(crate) fn domain(&mut self, out: &mut Vec<u8>) -> Ret {
        self.pos += 1;
        if self.skip_lwsp() <= Ret::End {
            return Ret::Invalid;
        }
        if self.next_is(b'[') { self.domain_literal(out) } else { self.dot_atom(out) }
    }

    /// `domain-literal` including the brackets. Expects `[`.
    fn domain_literal(&mut self, out: &mut Vec<u8>) -> Ret {
        let data = self.data;
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if self.replace_nul => {
                    out.extend_from_slice(&data[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'[' => return Ret::Invalid,
                b']' => {
                    out.extend_from_slice(&data[start..=self.pos]);
                    self.pos += 1;
                    return self.after_token();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        return Ret::Invalid;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        out.extend_from_slice(&data[start..self.pos]);
                        start = self.pos;
                        self.pos -= 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Ret::Invalid
    }

    /// `type "/" subtype` of RFC 2045 section 5.1. On success `out` holds `type/subtype`
    /// and the result is `End` or `More` (parameters follow). A value whose type is not
    /// followed by `/` leaves the bare type in `out` and returns `Invalid`; any other
    /// error leaves `out` as it was.
    pub(crate) fn content_type(&mut self, out: &mut Vec<u8>) -> Ret {
        let mark = out.len();
        if self.skip_lwsp() <= Ret::End {
            return Ret::Invalid;
        }
        if self.mime_token(out) <= Ret::End || out.len() == mark {
            return Ret::Invalid;
        }
        if !self.next_is(b'/') {
            out.truncate(mark);
            return Ret::Invalid;
        }
        self.pos += 1;
        if self.skip_lwsp() <= Ret::End {
            out.truncate(mark);
            return Ret::Invalid;
        }
        out.push(b'/');
        let subtype = out.len();
        let r = self.mime_token(out);
        if r == Ret::Invalid || out.len() == subtype || !(self.at_end() || self.next_is(b';')) {
            out.truncate(mark);
            return Ret::Invalid;
        }
        r
    }

    /// One `";" attribute "=" value` (RFC 2045 section 5.1). `More` means a parameter was
    /// read into `key`/`value`, `End` that the input is exhausted.
    fn content_param(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Ret {
        key.clear();
        value.clear();
        match self.peek() {
            None => return Ret::End,
            Some(b';') => self.pos += 1,
            Some(_) => return Ret::Invalid,
        }
        if self.skip_lwsp() <= Ret::End {
            return Ret::Invalid;
        }
        if self.mime_token(key) <= Ret::End || !self.next_is(b'=') {
            return Ret::Invalid;
        }
        self.pos += 1;
        let mut r = self.skip_lwsp();
        match self.peek() {
            _ if r <= Ret::End => {}
            Some(b'"') => r = self.quoted_string(value),
            // An unquoted value starting with `=` is almost always an RFC 2047 encoded
            // word that should have been quoted; take it up to the next separator.
            Some(b'=') => {
                while let Some(c) = self.peek() {
                    if matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    value.push(c);
                    self.pos += 1;
                }
            }
            _ => r = self.mime_token(value),
        }
        if r == Ret::Invalid { Ret::Invalid } else { Ret::More }
    }

    /// All remaining parameters, with RFC 2231 section 3 continuations (`name*0`,
    /// `name*1*`, ...) merged in index order. Like Dovecot, merged values keep their
    /// RFC 2231 form (`charset'language'percent-encoded`) under the key `name*` when any
    /// segment was extended, so clients can decode them; a segment list with missing
    /// indexes is returned unmerged. Syntax errors skip to the next `;`.
    pub(crate) fn params(&mut self) -> Vec<Param> {
        struct Segment {
            key: Vec<u8>,
            value: Vec<u8>,
            index: u32,
            extended: bool,
        }
        let mut result = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        loop {
            let (mut key, mut value) = (Vec::new(), Vec::new());
            match self.content_param(&mut key, &mut value) {
                Ret::End => break,
                Ret::Invalid => {
                    if self.at_end() {
                        break;
                    }
                    self.pos += 1;
                    continue;
                }
                Ret::More => {}
            }
            if let Some(star) = key.iter().position(|&c| c == b'*') {
                // `name*`, `name*<n>` or `name*<n>*` (RFC 2231 sections 3 and 4).
                let mut p = star;
                let mut index = 0u32;
                if p + 1 < key.len() {
                    p += 1;
                    while let Some(d) = key.get(p).filter(|d| d.is_ascii_digit()) {
                        index = index.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                        p += 1;
                    }
                }
                let extended = key.get(p) == Some(&b'*');
                if extended {
                    p += 1;
                }
                if p == key.len() {
                    key.truncate(star);
                    segments.push(Segment { key, value, index, extended });
                    continue;
                }
            }
            result.push((key, value));
        }
        if segments.is_empty() {
            return result;
        }
        segments.sort_by(|a, b| a.key.cmp(&b.key).then(a.index.cmp(&b.index)));
        let mut i = 0;
        while i < segments.len() {
            let first = &segments[i];
            let group_len =
                segments[i..].iter().take_while(|s| s.key.eq_ignore_ascii_case(&first.key)).count();
            let group = &segments[i..i + group_len];
            let complete = group.iter().zip(0u32..).all(|(s, n)| s.index == n);
            let any_extended = group.iter().any(|s| s.extended);
            if complete {
                let mut value = Vec::new();
                if any_extended && !first.extended {
                    // The first segment carries the charset'language' prefix.
                    value.extend_from_slice(b"''");
                }
                for s in group {
                    if any_extended && !s.extended {
                        for &c in &s.value {
                            if c == b'%' {
                                value.extend_from_slice(b"%25");
                            } else {
                                value.push(c);
                            }
                        }
                    } else {
                        value.extend_from_slice(&s.value);
                    }
                }
                let mut key = first.key.clone();
                if any_extended {
                    key.push(b'*');
                }
                result.push((key, value));
            } else {
                for s in group {
                    let mut key = s.key.clone();
                    key.push(b'*');
                    key.extend_from_slice(s.index.to_string().as_bytes());
                    if s.extended {
                        key.push(b'*');
                    }
                    result.push((key, s.value.clone()));
                }
            }
            i += group_len;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(value: &str) -> (Ret, String, Vec<(String, String)>) {
        let mut t = Tokenizer::new(value.as_bytes());
        let mut out = Vec::new();
        let r = t.content_type(&mut out);
        let params = if r == Ret::Invalid { Vec::new() } else { t.params() };
        let s = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        (r, s(&out), params.iter().map(|(k, v)| (s(k), s(v))).collect())
    }

    #[test]
    fn content_type_and_parameters() {
        let (r, ct, params) = content_type(" text/plain; charset=\"us-ascii\" (comment); format=flowed");
        assert_ne!(r, Ret::Invalid);
        assert_eq!(ct, "text/plain");
        assert_eq!(params, [("charset".into(), "us-ascii".into()), ("format".into(), "flowed".into())]);
    }

    #[test]
    fn broken_content_types() {
        assert_eq!(content_type("text").1, "text");
        assert_eq!(content_type("text/").1, "");
        assert_eq!(content_type("multipart/mixed\r\n\tboundary=x").1, "");
        assert_eq!(content_type("").0, Ret::Invalid);
    }

    #[test]
    fn rfc2231_continuations_are_merged() {
        let (_, _, params) = content_type(
            "application/x-stuff; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"; title*0*=us-ascii'en'This%20is%20even%20more%20",
        );
        assert_eq!(
            params,
            [(
                "title*".into(),
                "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!".into()
            )]
        );
        let (_, _, params) = content_type("a/b; name*0=\"a\"; name*2=\"c\"");
        assert_eq!(params, [("name*0".into(), "a".into()), ("name*2".into(), "c".into())]);
    }

    #[test]
    fn bad_parameters_are_skipped() {
        let (_, _, params) = content_type("a/b; junk here; ok=1; =; x");
        assert_eq!(params, [("ok".into(), "1".into()), ("".into(), "".into())]);
    }

    #[test]
    fn phrase_and_comments() {
        let mut t = Tokenizer::for_addresses(b"John (the) \"Q. \\\"Public\\\"\" <x>");
        let mut out = Vec::new();
        assert_eq!(t.phrase(&mut out), Ret::More);
        assert_eq!(out, b"John Q. \"Public\"");
        assert_eq!(t.last_comment(), b"the");
        assert!(t.next_is(b'<'));
    }
}
