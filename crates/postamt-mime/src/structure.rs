//! The MIME structure of a message: a tree of parts with byte offsets into the raw
//! message (RFC 2045, RFC 2046).
//!
//! One pass over the message finds every part's header and body without copying. The
//! rules follow RFC 2046 section 5.1.1 and are as lenient as Dovecot's message parser,
//! whose BODYSTRUCTURE answers IMAP clients are used to:
//!
//! - A boundary delimiter is a line starting with `--` and the boundary; the CRLF before
//!   it belongs to the delimiter, not to the preceding part. Like Dovecot, only the start
//!   of the line has to match, the longest matching boundary of any enclosing multipart
//!   wins, and a line of an *enclosing* multipart's boundary ends the inner multiparts too
//!   (which makes missing close-delimiters harmless).
//! - A boundary line also ends a header section that has no blank line.
//! - Without `Content-Type` a part is `text/plain`, or `message/rfc822` inside a
//!   `multipart/digest` (RFC 2046 section 5.1.5). Without `MIME-Version` or
//!   `Content-Type` the top-level message (or an encapsulated one) is not MIME, and its
//!   other `Content-*` fields are ignored.
//! - The body of a `message/rfc822` part is parsed as a message, whatever its declared
//!   transfer encoding, so its sections exist (RFC 2046 section 5.2.1 forbids encodings
//!   other than 7bit, 8bit and binary there).
//! - Nesting is limited to [`MAX_DEPTH`] levels and [`MAX_PARTS`] parts, so hostile input
//!   cannot blow up memory or recursion; deeper content stays in the enclosing part's
//!   body.

use std::ops::Range;

use crate::header::{self, blank_line};
use crate::lexer::{Ret, Tokenizer};

/// Deepest nesting of multiparts and encapsulated messages (Dovecot's default).
pub(crate) const MAX_DEPTH: u16 = 100;
/// Most parts per message (Dovecot's default).
pub(crate) const MAX_PARTS: usize = 10_000;
/// Longest boundary honoured (RFC 2046 allows 70; some software uses a little more).
const MAX_BOUNDARY: usize = 80;
/// Longest boundary line looked at when it has no line end.
const MAX_BOUNDARY_LINE: usize = MAX_BOUNDARY + 4;

/// The part is `multipart/*` with a usable boundary.
pub(crate) const MULTIPART: u8 = 1;
/// The part is `message/rfc822`; its only child is the encapsulated message.
pub(crate) const RFC822: u8 = 2;
/// The part is `text/*` (or text/plain by default).
pub(crate) const TEXT: u8 = 4;
/// The part is `multipart/digest`: children default to `message/rfc822`.
pub(crate) const DIGEST: u8 = 8;
/// The part's `Content-*` fields are meaningful: it is a MIME body part, or a message
/// with `MIME-Version` or `Content-Type`.
pub(crate) const IS_MIME: u8 = 16;

/// One node of the part tree. Index 0 is the message itself.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Offset of the first header line.
    pub header_start: usize,
    /// Offset of the body: the header section ends here (after its blank line, if any).
    pub body_start: usize,
    /// End of the body (exclusive), before the CRLF of the next boundary delimiter.
    pub body_end: usize,
    pub depth: u16,
    pub flags: u8,
}

impl Part {
    pub(crate) fn is(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The header section, including its blank line.
    pub(crate) fn header(&self) -> Range<usize> {
        self.header_start.min(self.body_start)..self.body_start
    }

    /// The body.
    pub(crate) fn body(&self) -> Range<usize> {
        self.body_start..self.body_end.max(self.body_start)
    }
}

/// What the `Content-Type` field says about a part's structure.
struct ContentType {
    flags: u8,
    boundary: Option<Vec<u8>>,
}

/// Classify a `Content-Type` value (RFC 2045 section 5.1) and find its boundary.
fn content_type(value: &[u8]) -> ContentType {
    let mut t = Tokenizer::new(value);
    let mut mime_type = Vec::new();
    let r = t.content_type(&mut mime_type);
    let lower =
        |s: &[u8], prefix: &[u8]| s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix);
    let flags = if mime_type.eq_ignore_ascii_case(b"message/rfc822") {
        RFC822
    } else if lower(&mime_type, b"text") && (mime_type.len() == 4 || mime_type[4] == b'/') {
        TEXT
    } else if lower(&mime_type, b"multipart/") {
        if mime_type[10..].eq_ignore_ascii_case(b"digest") { MULTIPART | DIGEST } else { MULTIPART }
    } else {
        0
    };
    let boundary = if r != Ret::Invalid && flags & MULTIPART != 0 {
        t.params().into_iter().find(|(k, _)| k.eq_ignore_ascii_case(b"boundary")).map(|(_, mut v)| {
            if let Some(nul) = v.iter().position(|&c| c == 0) {
                v.truncate(nul);
            }
            v.truncate(MAX_BOUNDARY);
            v
        })
    } else {
        None
    };
    ContentType { flags, boundary }
}

/// An active boundary: the multipart part that declared it, and its text.
struct Boundary {
    part: usize,
    text: Vec<u8>,
}

/// Where the parser continues.
enum Next {
    /// Parse the header of the current part starting at this offset.
    Header(usize),
    /// Scan the body of the current part from this line start.
    Body(usize),
    /// The rest of the message belongs to the open parts.
    Done,
}

struct Parser<'a> {
    raw: &'a [u8],
    parts: Vec<Part>,
    /// The boundaries of the enclosing multiparts, innermost last.
    boundaries: Vec<Boundary>,
    cur: usize,
    /// A boundary line that directly follows a header section without blank line, or a
    /// close-delimiter line: (offset of that line, offset of the line break before it).
    /// That line break is the delimiter's CRLF (RFC 2046 section 5.1.1), so bodies ending
    /// there end before it.
    cut: Option<(usize, usize)>,
}

/// Parse the MIME structure of `raw`. Never fails: any input gives at least the root.
pub(crate) fn parse(raw: &[u8]) -> Vec<Part> {
    let root = Part {
        parent: None,
        children: Vec::new(),
        header_start: 0,
        body_start: 0,
        body_end: 0,
        depth: 0,
        flags: 0,
    };
    let mut p = Parser { raw, parts: vec![root], boundaries: Vec::new(), cur: 0, cut: None };
    let mut next = Next::Header(0);
    loop {
        next = match next {
            Next::Header(pos) => p.header(pos),
            Next::Body(pos) => p.body(pos),
            Next::Done => break,
        };
    }
    // End of input closes every open part.
    let mut open = Some(p.cur);
    while let Some(i) = open {
        p.finish(i, raw.len());
        open = p.parts[i].parent;
    }
    p.parts
}

impl Parser<'_> {
    fn add_part(&mut self, parent: usize, header_start: usize, flags: u8) -> usize {
        let index = self.parts.len();
        let depth = self.parts[parent].depth.saturating_add(1);
        self.parts.push(Part {
            parent: Some(parent),
            children: Vec::new(),
            header_start,
            body_start: header_start,
            body_end: header_start,
            depth,
            flags,
        });
        self.parts[parent].children.push(index);
        index
    }

    /// Close part `i` with its body ending at `end`.
    fn finish(&mut self, i: usize, end: usize) {
        let part = &mut self.parts[i];
        part.body_end = end.max(part.body_start);
    }

    /// Room for one more nesting level below `part` and one more part.
    fn can_nest(&self, part: usize) -> bool {
        self.parts[part].depth + 1 < MAX_DEPTH && self.parts.len() < MAX_PARTS
    }

    /// If a boundary delimiter line of an enclosing multipart starts at `pos`, the index
    /// of that boundary in `self.boundaries`.
    ///
    /// Only the start of the line has to match (RFC 2046 section 5.1.1 allows trailing
    /// white space; broken software adds more). Searching from the innermost boundary
    /// outwards, the longest boundary that prefixes the line wins, and an exact match
    /// (with or without the `--` of a close-delimiter) ends the search at once.
    fn boundary_at(&self, pos: usize) -> Option<usize> {
        let line = self.raw.get(pos..)?;
        let rest = line.strip_prefix(b"--")?;
        let (len, dashes) = match rest.iter().position(|&c| c == b'\n') {
            Some(lf) => {
                let mut n = lf;
                if n > 0 && rest[n - 1] == b'\r' {
                    n -= 1;
                }
                (n, n > 2 && rest[n - 2..n] == *b"--")
            }
            None => (rest.len().min(MAX_BOUNDARY_LINE), false),
        };
        let candidate = &rest[..len];
        let mut best: Option<usize> = None;
        for (i, b) in self.boundaries.iter().enumerate().rev() {
            let n = b.text.len();
            if candidate.starts_with(&b.text) && best.is_none_or(|best| self.boundaries[best].text.len() < n)
            {
                best = Some(i);
                if n == len || (dashes && n + 2 == len) {
                    break;
                }
            }
        }
        best
    }

    /// Parse the header section of the current part from `start`.
    fn header(&mut self, start: usize) -> Next {
        let raw = self.raw;
        let part = self.cur;
        let mut pos = start;
        let mut last_newline = 0;
        let mut seen_content_type = false;
        let mut boundary: Option<Vec<u8>> = None;
        let mut multipart = false;
        let mut cut_at = None;
        while pos < raw.len() {
            if let Some(n) = blank_line(raw, pos) {
                // End of the header (RFC 5322 section 2.1). A multipart's boundary becomes
                // active here, so that its own delimiter lines are told apart from those
                // of enclosing multiparts that share a prefix.
                if let Some(text) = boundary.take() {
                    if self.can_nest(part) {
                        self.boundaries.push(Boundary { part, text });
                        multipart = true;
                    } else {
                        self.parts[part].flags &= !(MULTIPART | DIGEST);
                    }
                }
                pos += n;
                break;
            }
            if self.boundary_at(pos).is_some_and(|b| self.boundaries[b].part != part) {
                cut_at = Some(pos);
                break;
            }
            let field = header::read_field(raw, pos, raw.len());
            let name = &raw[field.name.clone()];
            if name.eq_ignore_ascii_case(b"MIME-Version") {
                self.parts[part].flags |= IS_MIME;
            } else if name.eq_ignore_ascii_case(b"Content-Type") {
                self.parts[part].flags |= IS_MIME;
                if !seen_content_type {
                    seen_content_type = true;
                    let ct = content_type(&raw[field.value.clone()]);
                    self.parts[part].flags |= ct.flags;
                    boundary = ct.boundary;
                }
            }
            last_newline = field.newline;
            pos = field.end;
        }
        self.parts[part].body_start = match cut_at {
            Some(line) => {
                // The line break before a boundary line belongs to the delimiter
                // (RFC 2046 section 5.1.1), so the header ends before it.
                let end = line - last_newline;
                self.cut = Some(match self.cut {
                    Some((l, c)) if l == line => (line, c.min(end)),
                    _ => (line, end),
                });
                end
            }
            None => pos,
        };

        if !seen_content_type {
            // The default type (RFC 2045 section 5.2, RFC 2046 section 5.1.5).
            let in_digest = self.parts[part].parent.is_some_and(|parent| self.parts[parent].is(DIGEST));
            self.parts[part].flags |= if in_digest { RFC822 } else { TEXT };
        }
        if multipart {
            Next::Body(pos)
        } else if self.parts[part].is(RFC822) {
            if self.can_nest(part) {
                self.cur = self.add_part(part, pos, 0);
                Next::Header(pos)
            } else {
                self.parts[part].flags &= !RFC822;
                Next::Body(pos)
            }
        } else {
            Next::Body(pos)
        }
    }

    /// Scan a body from the line start `pos` to the next boundary delimiter line of an
    /// enclosing multipart (or to the end of the message).
    fn body(&mut self, pos: usize) -> Next {
        let raw = self.raw;
        if self.boundaries.is_empty() {
            return Next::Done;
        }
        let cut = self.cut.take();
        let found = if let Some(b) = self.boundary_at(pos) {
            // The body is empty: the delimiter starts right away.
            let start = match cut {
                Some((line, end)) if line == pos => end,
                _ => pos,
            };
            Some((pos, start, b))
        } else {
            let mut search = pos;
            let mut found = None;
            while let Some(i) = raw[search..].iter().position(|&c| c == b'\n') {
                let lf = search + i;
                let line = lf + 1;
                if let Some(b) = self.boundary_at(line) {
                    let start = if lf > pos && raw[lf - 1] == b'\r' { lf - 1 } else { lf };
                    found = Some((line, start, b));
                    break;
                }
                search = line;
            }
            found
        };
        match found {
            Some((line, start, b)) => self.delimiter(line, start, b),
            None => Next::Done,
        }
    }

    /// Handle the delimiter line at `line` (whose CRLF starts at `start`) of boundary
    /// `b`: close the parts it ends and open the next one.
    fn delimiter(&mut self, line: usize, start: usize, b: usize) -> Next {
        let raw = self.raw;
        let owner = self.boundaries[b].part;
        while self.cur != owner {
            self.finish(self.cur, start);
            match self.parts[self.cur].parent {
                Some(parent) => self.cur = parent,
                None => break,
            }
        }
        // A close-delimiter (`--boundary--`) ends the multipart (RFC 2046 section
        // 5.1.1); the epilogue that follows is part of its body.
        let text_end = line + 2 + self.boundaries[b].text.len();
        let closed = raw.get(text_end..text_end + 2) == Some(b"--");
        self.boundaries.truncate(if closed { b } else { b + 1 });
        let (next_line, newline) = match raw[line..].iter().position(|&c| c == b'\n') {
            Some(i) if i > 0 && raw[line + i - 1] == b'\r' => (line + i + 1, 2),
            Some(i) => (line + i + 1, 1),
            None => (raw.len(), 0),
        };
        if self.boundaries.last().is_some_and(|last| last.part == self.cur) && self.parts.len() < MAX_PARTS {
            // A body part starts: its header is MIME by definition (RFC 2046 5.1.1).
            self.cur = self.add_part(self.cur, next_line, IS_MIME);
            Next::Header(next_line)
        } else {
            // The epilogue. If another delimiter follows at once, the line break ending
            // this one is that delimiter's CRLF, not epilogue.
            self.cut = Some((next_line, next_line - newline));
            Next::Body(next_line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(raw: &str) -> Vec<(usize, usize, usize, u8, usize)> {
        parse(raw.as_bytes())
            .iter()
            .map(|p| (p.header_start, p.body_start, p.body_end, p.flags, p.children.len()))
            .collect()
    }

    #[test]
    fn single_part() {
        assert_eq!(tree("Subject: x\r\n\r\nbody\r\n"), [(0, 14, 20, TEXT, 0)]);
        assert_eq!(tree("Subject: x"), [(0, 10, 10, TEXT, 0)]);
        assert_eq!(tree(""), [(0, 0, 0, TEXT, 0)]);
    }

    #[test]
    fn multipart_offsets() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\nepi\r\n";
        let parts = parse(raw.as_bytes());
        assert_eq!(parts.len(), 3);
        assert_eq!(&raw[parts[1].body_start..parts[1].body_end], "one");
        assert_eq!(&raw[parts[2].header_start..parts[2].body_start], "Content-Type: text/html\r\n\r\n");
        assert_eq!(&raw[parts[2].body_start..parts[2].body_end], "two");
        assert_eq!(parts[0].body_end, raw.len());
        assert!(parts[0].is(MULTIPART | IS_MIME));
    }

    #[test]
    fn non_mime_content_type_is_ignored() {
        // Content-Type makes a message MIME even without MIME-Version (as most software).
        assert_eq!(tree("Content-Type: image/png\r\n\r\nx")[0].3, IS_MIME);
        assert_eq!(tree("Content-Transfer-Encoding: base64\r\n\r\nx")[0].3, TEXT);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = String::new();
        for i in 0..300 {
            raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"));
        }
        let parts = parse(raw.as_bytes());
        assert!(parts.iter().all(|p| p.depth < MAX_DEPTH));
        let mut raw = String::new();
        for _ in 0..300 {
            raw.push_str("Content-Type: message/rfc822\r\n\r\n");
        }
        let parts = parse(raw.as_bytes());
        assert_eq!(parts.len(), MAX_DEPTH as usize);
    }
}
