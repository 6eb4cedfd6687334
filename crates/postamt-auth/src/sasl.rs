//! SASL mechanisms PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login): pure decoding of
//! the client's base64 responses. The protocol crates drive the exchange.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The mechanisms postamt offers, in the order it advertises them.
pub const MECHANISMS: &[&str] = &["PLAIN", "LOGIN"];

/// Base64 of "Username:" and "Password:", the traditional LOGIN challenges.
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN response")]
    Malformed,
    #[error("authorization identity differs from authentication identity")]
    AuthzidMismatch,
    #[error("authentication cancelled")]
    Cancelled,
}

/// User name and password from a PLAIN or LOGIN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Decodes one base64 client response. `*` is the client cancelling (RFC 4954 section 4,
/// RFC 9051 section 6.2.2); an empty line is an empty response.
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    if line.is_empty() || line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Decodes a PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2). Acting
/// as another user (an authzid different from authcid) is refused.
pub fn decode_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    let (authzid, username, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if username.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(&username) {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(Credentials { username, password })
}

/// Decodes one LOGIN step (a user name or a password) as UTF-8 text.
pub fn decode_login_step(message: &[u8]) -> Result<String, SaslError> {
    String::from_utf8(message.to_vec()).map_err(|_| SaslError::Malformed)
}

/// What a session does next in a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this (base64) challenge in the protocol's syntax (`334 `, `+ `) and pass the
    /// client's answer line to [`Exchange::respond`].
    Challenge(&'static str),
    /// The exchange is over.
    Done(Result<Credentials, SaslError>),
}

#[derive(Debug)]
enum State {
    Plain,
    LoginUser,
    LoginPassword(String),
    Done,
}

/// One PLAIN or LOGIN exchange, the same for SMTP (RFC 4954), IMAP (RFC 9051 6.2.2) and
/// POP3 (RFC 5034): only the framing of challenges differs, and that stays in the session.
#[derive(Debug)]
pub struct Exchange {
    state: State,
}

impl Exchange {
    /// Starts an exchange for `mechanism` (upper case) with the optional initial response
    /// (SASL-IR); `None` for a mechanism we do not offer.
    pub fn start(mechanism: &str, initial: Option<&str>) -> Option<(Exchange, Step)> {
        let mut exchange = match mechanism {
            "PLAIN" => Exchange { state: State::Plain },
            "LOGIN" => Exchange { state: State::LoginUser },
            _ => return None,
        };
        let step = match (initial, &exchange.state) {
            (Some(line), _) => exchange.respond(line),
            (None, State::Plain) => Step::Challenge(""),
            (None, _) => Step::Challenge(LOGIN_USERNAME_CHALLENGE),
        };
        Some((exchange, step))
    }

    /// Takes the client's answer to the last challenge.
    pub fn respond(&mut self, line: &str) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        let decoded = decode_response(line);
        match state {
            State::Plain => Step::Done(decoded.and_then(|m| decode_plain(&m))),
            State::LoginUser => match decoded.and_then(|m| decode_login_step(&m)) {
                Ok(username) => {
                    self.state = State::LoginPassword(username);
                    Step::Challenge(LOGIN_PASSWORD_CHALLENGE)
                }
                Err(e) => Step::Done(Err(e)),
            },
            State::LoginPassword(username) => Step::Done(
                decoded
                    .and_then(|m| decode_login_step(&m))
                    .map(|password| Credentials { username, password }),
            ),
            State::Done => Step::Done(Err(SaslError::Malformed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges() {
        let creds = Credentials { username: "tim".into(), password: "pw".into() };
        let (_, step) = Exchange::start("PLAIN", Some("AHRpbQBwdw==")).unwrap();
        assert_eq!(step, Step::Done(Ok(creds.clone())));
        let (mut ex, step) = Exchange::start("PLAIN", None).unwrap();
        assert_eq!(step, Step::Challenge(""));
        assert_eq!(ex.respond("*"), Step::Done(Err(SaslError::Cancelled)));
        let (mut ex, step) = Exchange::start("LOGIN", None).unwrap();
        assert_eq!(step, Step::Challenge(LOGIN_USERNAME_CHALLENGE));
        assert_eq!(ex.respond("dGlt"), Step::Challenge(LOGIN_PASSWORD_CHALLENGE));
        assert_eq!(ex.respond("cHc="), Step::Done(Ok(creds.clone())));
        let (mut ex, step) = Exchange::start("LOGIN", Some("dGlt")).unwrap();
        assert_eq!(step, Step::Challenge(LOGIN_PASSWORD_CHALLENGE));
        assert_eq!(ex.respond("cHc="), Step::Done(Ok(creds)));
        assert!(Exchange::start("CRAM-MD5", None).is_none());
    }

    #[test]
    fn plain() {
        let msg = decode_response("AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
        assert_eq!(
            decode_plain(&msg).unwrap(),
            Credentials { username: "tim".into(), password: "tanstaaftanstaaf".into() }
        );
        assert_eq!(decode_plain(b"tim\0tim\0pw").unwrap().username, "tim");
        assert_eq!(decode_plain(b"other\0tim\0pw"), Err(SaslError::AuthzidMismatch));
        assert_eq!(decode_plain(b"\0tim"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"\0tim\0pw\0x"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"\0tim\xff\0pw"), Err(SaslError::Malformed));
    }

    #[test]
    fn responses() {
        assert_eq!(decode_response("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response("=").unwrap(), b"");
        assert_eq!(decode_response("!!!"), Err(SaslError::Base64));
        assert_eq!(decode_response("dGlt\r\n").unwrap(), b"tim");
        assert_eq!(decode_login_step(b"tim").unwrap(), "tim");
    }
}
