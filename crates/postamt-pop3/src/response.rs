//! POP3 status responses (RFC 1939 section 3) with the extended response codes of
//! RFC 2449 section 8 and RFC 3206.

use std::borrow::Cow;

/// An extended response code, sent in brackets after `-ERR` (RFC 2449 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// `[IN-USE]`: another session holds the maildrop lock (RFC 2449 section 8.1.2).
    InUse,
    /// `[AUTH]`: a problem with the user's credentials or the account, retrying the same way
    /// will not help (RFC 3206 section 5).
    Auth,
    /// `[SYS/TEMP]`: a temporary problem on the server (RFC 3206 section 4).
    SysTemp,
    /// `[SYS/PERM]`: a permanent problem on the server (RFC 3206 section 4).
    SysPerm,
}

impl RespCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::Auth => "AUTH",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
        }
    }
}

/// One status line: `+OK text` or `-ERR [CODE] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    pub code: Option<RespCode>,
    pub text: Cow<'static, str>,
}

impl Response {
    pub fn ok(text: impl Into<Cow<'static, str>>) -> Response {
        Response { ok: true, code: None, text: text.into() }
    }

    pub fn err(text: impl Into<Cow<'static, str>>) -> Response {
        Response { ok: false, code: None, text: text.into() }
    }

    pub fn err_code(code: RespCode, text: impl Into<Cow<'static, str>>) -> Response {
        Response { ok: false, code: Some(code), text: text.into() }
    }

    /// Appends the line with its CRLF. An empty text gives a bare `+OK`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.ok { b"+OK" } else { b"-ERR" });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut out = Vec::new();
        Response::ok("2 320").write_to(&mut out);
        Response::ok("").write_to(&mut out);
        Response::err("no such message").write_to(&mut out);
        Response::err_code(RespCode::InUse, "maildrop already locked").write_to(&mut out);
        Response::err_code(RespCode::SysTemp, "").write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+OK 2 320\r\n+OK\r\n-ERR no such message\r\n-ERR [IN-USE] maildrop already locked\r\n-ERR [SYS/TEMP]\r\n"
        );
    }
}
