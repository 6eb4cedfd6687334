//! The DATA reader (RFC 5321 section 4.1.1.4 and 4.5.2): finds the end of the message and
//! removes dot-stuffing, incrementally, as bytes arrive.
//!
//! Only `CRLF . CRLF` ends a message. A bare LF or bare CR is never taken as a line end, so
//! `LF . LF`, `LF . CRLF` or `CR . CR` cannot end the message early and smuggle a second
//! message past us (SMTP smuggling, CVE-2023-51766 and relatives); such bytes are recorded
//! in [`DataReader::bare_line_end`] so that the session can refuse the message.
//! The stored size is bounded: beyond the limit bytes are counted but dropped.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or at the very beginning).
    LineStart,
    Middle,
    /// After a CR inside a line.
    Cr,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` CR at the start of a line.
    DotCr,
}

pub struct DataReader {
    state: State,
    message: Vec<u8>,
    limit: usize,
    /// Unstuffed bytes seen, including those dropped beyond the limit.
    total: u64,
    bare_line_end: bool,
}

impl DataReader {
    pub fn new(limit: usize) -> DataReader {
        DataReader { state: State::LineStart, message: Vec::new(), limit, total: 0, bare_line_end: false }
    }

    /// Consumes bytes from `input`; returns `Some(n)` when the terminating `CRLF.CRLF` ends
    /// within the first `n` bytes (the rest belongs to the next command), else `None` with
    /// all of `input` consumed.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        for (i, &b) in input.iter().enumerate() {
            self.state = match (self.state, b) {
                (State::LineStart, b'.') => State::Dot,
                (State::Dot, b'\r') => State::DotCr,
                (State::DotCr, b'\n') => return Some(i + 1),
                (State::DotCr, b) => {
                    // ".<CR>x": the dot was stuffing, the CR is bare.
                    self.bare_line_end = true;
                    self.push(b'\r');
                    self.after_cr(b)
                }
                (State::Cr, b) => {
                    if b == b'\n' {
                        self.push_slice(b"\r\n");
                        State::LineStart
                    } else {
                        self.bare_line_end = true;
                        self.push(b'\r');
                        self.after_cr(b)
                    }
                }
                (_, b'\r') => State::Cr,
                (_, b) => {
                    if b == b'\n' {
                        self.bare_line_end = true;
                    }
                    // A leading dot (State::Dot) is dropped: it was stuffing.
                    self.push(b);
                    State::Middle
                }
            };
        }
        None
    }

    /// The byte after a bare CR starts over in mid-line (never at a line start).
    fn after_cr(&mut self, b: u8) -> State {
        match b {
            b'\r' => State::Cr,
            b => {
                if b == b'\n' {
                    self.bare_line_end = true;
                }
                self.push(b);
                State::Middle
            }
        }
    }

    fn push(&mut self, b: u8) {
        self.total += 1;
        if self.message.len() < self.limit {
            self.message.push(b);
        }
    }

    fn push_slice(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Whether a bare CR or LF appeared in the message.
    pub fn bare_line_end(&self) -> bool {
        self.bare_line_end
    }

    /// Whether more bytes arrived than the limit allows.
    pub fn too_big(&self) -> bool {
        self.total > self.limit as u64
    }

    pub fn into_message(self) -> Vec<u8> {
        self.message
    }
}

/// Turns every bare LF and bare CR into CRLF (used for BDAT content, which is length-framed
/// and carries no dot-stuffing but must still be stored with canonical line ends).
pub fn normalize_line_ends(input: Vec<u8>) -> Vec<u8> {
    let clean = input.windows(2).all(|w| (w[0] == b'\r') == (w[1] == b'\n'))
        && input.first() != Some(&b'\n')
        && input.last() != Some(&b'\r');
    if clean {
        return input;
    }
    let mut out = Vec::with_capacity(input.len() + input.len() / 64);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> (Option<usize>, Vec<u8>, bool) {
        let mut r = DataReader::new(1000);
        let end = r.feed(input);
        let bare = r.bare_line_end();
        (end, r.into_message(), bare)
    }

    #[test]
    fn ends_only_on_crlf_dot_crlf() {
        assert_eq!(
            read(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
            (Some(23), b"Subject: x\r\n\r\nbody\r\n".to_vec(), false)
        );
        assert_eq!(read(b".\r\n"), (Some(3), vec![], false));
        // Smuggling attempts: none of these end the message.
        for s in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL",
            b"a\r.\r\nX",
            b"a\r\n.\nX",
            b"a\r\n.\rX",
            b"a\r\r\n.\r\n",
        ] {
            let (end, _, bare) = read(s);
            if s == b"a\r\r\n.\r\n" {
                // "a CR" then CRLF . CRLF: ends, but the stray CR is flagged.
                assert_eq!(end, Some(s.len()));
            } else {
                assert_eq!(end, None, "{:?}", String::from_utf8_lossy(s));
            }
            assert!(bare, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn unstuffs_dots() {
        assert_eq!(read(b"..leading\r\n...\r\n.\r\n").1, b".leading\r\n..\r\n");
        // A dot not at a line start stays.
        assert_eq!(read(b"a.b\r\n.\r\n").1, b"a.b\r\n");
    }

    #[test]
    fn incremental_across_chunks() {
        let input = b"line one\r\n..two\r\n.\r\n";
        for split in 0..input.len() {
            let mut r = DataReader::new(1000);
            let first = r.feed(&input[..split]);
            let end = first.or_else(|| r.feed(&input[split..]).map(|n| n + split));
            assert_eq!(end, Some(input.len()), "split at {split}");
            assert_eq!(r.into_message(), b"line one\r\n.two\r\n");
        }
    }

    #[test]
    fn limits_size() {
        let mut r = DataReader::new(4);
        assert_eq!(r.feed(b"123456\r\n.\r\n"), Some(11));
        assert!(r.too_big());
        assert_eq!(r.into_message(), b"1234");
        let mut r = DataReader::new(8);
        r.feed(b"123456\r\n.\r\n");
        assert!(!r.too_big());
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_line_ends(b"a\r\nb\r\n".to_vec()), b"a\r\nb\r\n");
        assert_eq!(normalize_line_ends(b"a\nb\rc\r\n\r".to_vec()), b"a\r\nb\r\nc\r\n\r\n");
        assert_eq!(normalize_line_ends(b"\nx".to_vec()), b"\r\nx");
    }
}
