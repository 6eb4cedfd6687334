//! POP3 command parsing: RFC 1939 section 3 (keywords and arguments), RFC 2449 (CAPA),
//! RFC 2595 (STLS) and RFC 5034 (AUTH).
//!
//! A pure function from one command line (without its CRLF) to a [`Command`] or a
//! [`ParseError`] saying what is wrong; no I/O, so it can be fuzzed. Whether a command is
//! allowed in the session's current state is the session's business, not the parser's.

use std::fmt;

/// A message number as the client sent it (RFC 1939 section 3: starts at 1). Numbers too
/// large for `u64` saturate, which no maildrop has, so they answer "no such message".
pub type MessageNumber = u64;

/// One parsed POP3 command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 section 7).
    User(String),
    /// `PASS string`: the whole rest of the line, spaces included (RFC 1939 section 7).
    Pass(String),
    /// `AUTH mechanism [initial-response]` (RFC 5034 section 4). `AUTH` alone asks for the
    /// list of mechanisms, a widespread pre-CAPA convention (RFC 1734 servers).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    /// `STLS` (RFC 2595 section 4).
    Stls,
    /// `CAPA` (RFC 2449 section 5).
    Capa,
    Stat,
    List(Option<MessageNumber>),
    Retr(MessageNumber),
    Dele(MessageNumber),
    Rset,
    Noop,
    Quit,
    /// `TOP msg n` (RFC 1939 section 7).
    Top {
        msg: MessageNumber,
        lines: u64,
    },
    Uidl(Option<MessageNumber>),
}

/// Credentials never reach a log: `Debug` hides the PASS argument and AUTH responses.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::User(name) => f.debug_tuple("User").field(name).finish(),
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::Auth { mechanism, initial } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field("initial", &initial.as_ref().map(|_| "<redacted>"))
                .finish(),
            Command::Stls => f.write_str("Stls"),
            Command::Capa => f.write_str("Capa"),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Rset => f.write_str("Rset"),
            Command::Noop => f.write_str("Noop"),
            Command::Quit => f.write_str("Quit"),
            Command::Top { msg, lines } => {
                f.debug_struct("Top").field("msg", msg).field("lines", lines).finish()
            }
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
        }
    }
}

/// Why a command line was refused; the text becomes the `-ERR` response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    UnknownCommand,
    #[error("command line is not valid UTF-8")]
    NotUtf8,
    #[error("control characters in command line")]
    ControlCharacter,
    /// Wrong number of arguments; the text is the command's usage.
    #[error("syntax: {0}")]
    Syntax(&'static str),
    #[error("invalid message number")]
    InvalidNumber,
}

/// Parses one command line, given without its line end.
///
/// Keywords are case-insensitive (RFC 1939 section 3). Arguments are separated by spaces;
/// runs of spaces are tolerated except in PASS, whose argument is the rest of the line as
/// sent, spaces included.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::ControlCharacter);
    }
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, rest),
        None => (line, ""),
    };
    let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();
    let none = |cmd: Command, usage: &'static str| {
        if args.is_empty() { Ok(cmd) } else { Err(ParseError::Syntax(usage)) }
    };
    let one_number = |usage: &'static str| match args.as_slice() {
        [n] => number(n),
        _ => Err(ParseError::Syntax(usage)),
    };
    let optional_number = |usage: &'static str| match args.as_slice() {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(ParseError::Syntax(usage)),
    };
    match verb.to_ascii_uppercase().as_str() {
        "USER" => match args.as_slice() {
            [name] => Ok(Command::User((*name).to_string())),
            _ => Err(ParseError::Syntax("USER name")),
        },
        "PASS" if !rest.is_empty() => Ok(Command::Pass(rest.to_string())),
        "PASS" => Err(ParseError::Syntax("PASS password")),
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth { mechanism: None, initial: None }),
            [mechanism] => {
                Ok(Command::Auth { mechanism: Some(mechanism.to_ascii_uppercase()), initial: None })
            }
            [mechanism, initial] => Ok(Command::Auth {
                mechanism: Some(mechanism.to_ascii_uppercase()),
                initial: Some((*initial).to_string()),
            }),
            _ => Err(ParseError::Syntax("AUTH mechanism [initial-response]")),
        },
        "STLS" => none(Command::Stls, "STLS"),
        "CAPA" => none(Command::Capa, "CAPA"),
        "STAT" => none(Command::Stat, "STAT"),
        "LIST" => optional_number("LIST [msg]").map(Command::List),
        "RETR" => one_number("RETR msg").map(Command::Retr),
        "DELE" => one_number("DELE msg").map(Command::Dele),
        "RSET" => none(Command::Rset, "RSET"),
        "NOOP" => none(Command::Noop, "NOOP"),
        "QUIT" => none(Command::Quit, "QUIT"),
        "TOP" => match args.as_slice() {
            [msg, lines] => Ok(Command::Top { msg: number(msg)?, lines: number(lines)? }),
            _ => Err(ParseError::Syntax("TOP msg lines")),
        },
        "UIDL" => optional_number("UIDL [msg]").map(Command::Uidl),
        _ => Err(ParseError::UnknownCommand),
    }
}

/// A non-negative decimal number (RFC 1939 section 3: arguments are digits); values too
/// large for `u64` saturate.
fn number(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::InvalidNumber);
    }
    Ok(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse("STAT"), Ok(Command::Stat));
        assert_eq!(parse("stat"), Ok(Command::Stat));
        assert_eq!(parse("CAPA"), Ok(Command::Capa));
        assert_eq!(parse("STLS"), Ok(Command::Stls));
        assert_eq!(parse("RSET"), Ok(Command::Rset));
        assert_eq!(parse("NOOP"), Ok(Command::Noop));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(parse("Quit "), Ok(Command::Quit));
        assert_eq!(parse("QUIT now"), Err(ParseError::Syntax("QUIT")));
        assert_eq!(parse("STAT 1"), Err(ParseError::Syntax("STAT")));
        assert_eq!(parse("APOP mrose c4c9334bac560ecc979e58001b3e22fb"), Err(ParseError::UnknownCommand));
        assert_eq!(parse(""), Err(ParseError::UnknownCommand));
        assert_eq!(parse("XYZZY"), Err(ParseError::UnknownCommand));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("LIST 2"), Ok(Command::List(Some(2))));
        assert_eq!(parse("list  2"), Ok(Command::List(Some(2))));
        assert_eq!(parse("LIST 1 2"), Err(ParseError::Syntax("LIST [msg]")));
        assert_eq!(parse("LIST x"), Err(ParseError::InvalidNumber));
        assert_eq!(parse("LIST -1"), Err(ParseError::InvalidNumber));
        assert_eq!(parse("LIST +1"), Err(ParseError::InvalidNumber));
        assert_eq!(parse("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(parse("RETR"), Err(ParseError::Syntax("RETR msg")));
        assert_eq!(parse("RETR 99999999999999999999999"), Ok(Command::Retr(u64::MAX)));
        assert_eq!(parse("DELE 0"), Ok(Command::Dele(0)));
        assert_eq!(parse("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(parse("UIDL 3"), Ok(Command::Uidl(Some(3))));
        assert_eq!(parse("TOP 1 0"), Ok(Command::Top { msg: 1, lines: 0 }));
        assert_eq!(parse("TOP 1 10"), Ok(Command::Top { msg: 1, lines: 10 }));
        assert_eq!(parse("TOP 1"), Err(ParseError::Syntax("TOP msg lines")));
        assert_eq!(parse("TOP 1 x"), Err(ParseError::InvalidNumber));
    }

    #[test]
    fn login_commands() {
        assert_eq!(parse("USER alice@example.test"), Ok(Command::User("alice@example.test".into())));
        assert_eq!(parse("USER"), Err(ParseError::Syntax("USER name")));
        assert_eq!(parse("USER a b"), Err(ParseError::Syntax("USER name")));
        // PASS keeps spaces, also leading and trailing ones (RFC 1939 section 7).
        assert_eq!(parse("PASS a long  secret "), Ok(Command::Pass("a long  secret ".into())));
        assert_eq!(parse("pass x"), Ok(Command::Pass("x".into())));
        assert_eq!(parse("PASS"), Err(ParseError::Syntax("PASS password")));
        assert_eq!(parse("PASS "), Err(ParseError::Syntax("PASS password")));
        assert_eq!(parse("AUTH"), Ok(Command::Auth { mechanism: None, initial: None }));
        assert_eq!(parse("AUTH plain"), Ok(Command::Auth { mechanism: Some("PLAIN".into()), initial: None }));
        assert_eq!(
            parse("AUTH PLAIN AGFsaWNlAHg="),
            Ok(Command::Auth { mechanism: Some("PLAIN".into()), initial: Some("AGFsaWNlAHg=".into()) })
        );
        assert_eq!(parse("AUTH PLAIN a b"), Err(ParseError::Syntax("AUTH mechanism [initial-response]")));
    }

    #[test]
    fn bad_bytes() {
        assert_eq!(parse_command(b"USER \xff"), Err(ParseError::NotUtf8));
        assert_eq!(parse_command(b"USER a\0b"), Err(ParseError::ControlCharacter));
        assert_eq!(parse_command(b"NOOP\r"), Err(ParseError::ControlCharacter));
        assert_eq!(parse_command(b"PASS tab\there"), Ok(Command::Pass("tab\there".into())));
    }

    #[test]
    fn debug_hides_credentials() {
        let pass = format!("{:?}", parse("PASS hunter2").unwrap());
        assert!(!pass.contains("hunter2"), "{pass}");
        let auth = format!("{:?}", parse("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=").unwrap());
        assert!(!auth.contains("AGFsaWNl"), "{auth}");
        assert!(auth.contains("PLAIN"), "{auth}");
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(ParseError::Syntax("RETR msg").to_string(), "syntax: RETR msg");
        assert_eq!(ParseError::UnknownCommand.to_string(), "unknown command");
    }
}
