//! Messages on the wire: the multi-line response body of RETR and TOP (RFC 1939 section 3).
//!
//! Every line goes out ending in CRLF, and a line that starts with `.` gets another `.` in
//! front ("byte-stuffing"), so that only the terminating `.CRLF` line starts with a lone dot.
//! Stored messages already use CRLF; a bare LF is still sent as CRLF, and a last line
//! without a line end gets one. Pure functions, no I/O.

/// The lines of `message`, each with its line end (the last one may have none).
pub fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message.split_inclusive(|&b| b == b'\n')
}

/// Appends one line (given with or without its line end) as sent: byte-stuffed, ending in
/// CRLF.
pub fn write_line(line: &[u8], out: &mut Vec<u8>) {
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    if content.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
}

/// The terminator of a multi-line response.
pub const TERMINATOR: &[u8] = b".\r\n";

/// Appends a whole message (or the part [`top_len`] chose) and the terminator.
pub fn write_body(message: &[u8], out: &mut Vec<u8>) {
    for line in lines(message) {
        write_line(line, out);
    }
    out.extend_from_slice(TERMINATOR);
}

/// How many leading bytes of `message` TOP sends for `body_lines`: the header, the blank
/// line that ends it, and then at most `body_lines` lines of the body (RFC 1939 section 7).
/// A message without a blank line is all header and is sent whole.
pub fn top_len(message: &[u8], body_lines: u64) -> usize {
    let mut pos = 0;
    let mut in_body = false;
    let mut left = body_lines;
    for line in lines(message) {
        if in_body {
            if left == 0 {
                return pos;
            }
            left -= 1;
        } else if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
        pos += line.len();
    }
    message.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(message: &[u8]) -> String {
        let mut out = Vec::new();
        write_body(message, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stuffs_dots_and_terminates() {
        assert_eq!(
            wire(b"A: b\r\n\r\n.hidden\r\n..two\r\nx.y\r\n.\r\n"),
            "A: b\r\n\r\n..hidden\r\n...two\r\nx.y\r\n..\r\n.\r\n"
        );
        assert_eq!(wire(b""), ".\r\n");
    }

    #[test]
    fn normalizes_line_ends() {
        assert_eq!(wire(b"A: b\n\nbody\n.dot\n"), "A: b\r\n\r\nbody\r\n..dot\r\n.\r\n");
        // A last line without a line end gets CRLF before the terminator.
        assert_eq!(wire(b"A: b\r\n\r\nno end"), "A: b\r\n\r\nno end\r\n.\r\n");
        // A bare CR inside a line is content, not a line end.
        assert_eq!(wire(b"A: b\r\n\r\nx\ry\r\n"), "A: b\r\n\r\nx\ry\r\n.\r\n");
    }

    #[test]
    fn crlf_message_goes_out_unchanged_apart_from_stuffing() {
        let msg = b"Subject: s\r\n\r\nline 1\r\nline 2\r\n";
        let mut out = Vec::new();
        write_body(msg, &mut out);
        assert_eq!(&out[..msg.len()], msg);
        assert_eq!(&out[msg.len()..], TERMINATOR);
    }

    #[test]
    fn top() {
        let msg = b"Subject: s\r\nFrom: a@b\r\n\r\none\r\ntwo\r\nthree\r\n";
        let head = b"Subject: s\r\nFrom: a@b\r\n\r\n".len();
        assert_eq!(top_len(msg, 0), head);
        assert_eq!(&msg[..top_len(msg, 2)], b"Subject: s\r\nFrom: a@b\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top_len(msg, 3), msg.len());
        assert_eq!(top_len(msg, u64::MAX), msg.len());
        // No blank line: all header.
        assert_eq!(top_len(b"Subject: s\r\nX: y\r\n", 0), 18);
        // Empty header: the blank line comes first.
        assert_eq!(top_len(b"\r\nbody\r\n", 0), 2);
        // Bare LF message.
        assert_eq!(top_len(b"A: b\n\none\ntwo\n", 1), b"A: b\n\none\n".len());
        // A body with an empty line counts it as a line.
        assert_eq!(top_len(b"A: b\r\n\r\n\r\nx\r\n", 1), 10);
    }
}
