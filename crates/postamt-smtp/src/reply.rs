//! SMTP replies (RFC 5321 section 4.2) with enhanced status codes (RFC 2034, RFC 3463).

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code such as `5.1.1`; empty for replies that carry none (greeting).
    pub enhanced: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply { code, enhanced, text: text.into() }
    }

    /// Writes the reply as one line (or, if the text has several lines, as a multi-line
    /// reply with `code-` continuation lines), each ending in CRLF.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if !self.enhanced.is_empty() {
                out.extend_from_slice(self.enhanced.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut out = Vec::new();
        Reply::new(250, "2.1.0", "Ok").write_to(&mut out);
        Reply::new(214, "2.0.0", "one\ntwo").write_to(&mut out);
        Reply::new(220, "", "host ESMTP").write_to(&mut out);
        assert_eq!(out, b"250 2.1.0 Ok\r\n214-2.0.0 one\r\n214 2.0.0 two\r\n220 host ESMTP\r\n");
    }
}
