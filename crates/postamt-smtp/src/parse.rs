//! SMTP command parsing (RFC 5321 section 4.1, with the ESMTP parameters of RFC 1870 SIZE,
//! RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 3030 CHUNKING, RFC 4954 AUTH).
//!
//! Pure functions from one command line (without its CRLF) to a [`Command`] or a
//! [`Reply`] saying what is wrong; no I/O, so they can be fuzzed.

use crate::reply::Reply;

/// A mailbox (`local@domain`) from a MAIL or RCPT path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part as sent (a quoted string keeps its quotes).
    pub local: String,
    /// The domain or address literal, lower-cased; empty only for `<Postmaster>`.
    pub domain: String,
}

impl Mailbox {
    /// The address as `local@domain` (bare `postmaster` for `<Postmaster>`).
    pub fn address(&self) -> String {
        if self.domain.is_empty() { self.local.clone() } else { format!("{}@{}", self.local, self.domain) }
    }

    /// Whether any part needs SMTPUTF8 (RFC 6531).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// ENVID as sent (xtext).
    pub envid: Option<String>,
    /// AUTH= (RFC 4954 section 5) as sent; accepted and otherwise ignored.
    pub auth: Option<String>,
}

/// Parameters of RCPT TO (RFC 3461 section 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// NOTIFY, normalised to upper case (`NEVER` or a comma list of SUCCESS/FAILURE/DELAY).
    pub notify: Option<String>,
    /// ORCPT as sent (`addr-type;xtext`).
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `from` is `None` for the null reverse-path `<>`.
    Mail {
        from: Option<Mailbox>,
        params: MailParams,
    },
    Rcpt {
        to: Mailbox,
        params: RcptParams,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// Parses one command line, given without its CRLF.
pub fn parse_command(line: &[u8]) -> Result<Command, Reply> {
    let line =
        std::str::from_utf8(line).map_err(|_| Reply::new(500, "5.5.2", "Command line is not valid UTF-8"))?;
    if line.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(Reply::new(500, "5.5.2", "Control characters in command line"));
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let no_args = |cmd: Command| {
        if rest.trim().is_empty() {
            Ok(cmd)
        } else {
            Err(Reply::new(501, "5.5.4", "Syntax error: no parameters allowed"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Ok(Command::Ehlo(parse_helo_arg(rest)?)),
        "HELO" => Ok(Command::Helo(parse_helo_arg(rest)?)),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_args(Command::Data),
        "BDAT" => parse_bdat(rest),
        "RSET" => no_args(Command::Rset),
        // NOOP and HELP may carry an argument that is ignored (RFC 5321 4.1.1.9, 4.1.1.8).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "QUIT" => no_args(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => parse_auth(rest),
        _ => Err(Reply::new(500, "5.5.1", "Command unrecognized")),
    }
}

fn parse_helo_arg(rest: &str) -> Result<String, Reply> {
    let arg = rest.trim();
    if arg.is_empty() || arg.contains(' ') {
        return Err(Reply::new(501, "5.5.4", "Syntax: EHLO hostname"));
    }
    Ok(arg.to_string())
}

/// Splits `FROM:<path> params` after the verb; tolerates a space after the colon, which many
/// clients send although RFC 5321 has none.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let after = rest[keyword.len()..].trim_start_matches(' ');
    if !after.starts_with('<') {
        return None;
    }
    let end = path_end(after)?;
    let (path, params) = after.split_at(end + 1);
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((path, params.trim()))
}

/// Index of the `>` closing a path that starts with `<`, skipping quoted strings.
fn path_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_mail(rest: &str) -> Result<Command, Reply> {
    let bad = || Reply::new(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]");
    let (path, params) = split_path(rest, "FROM:").ok_or_else(bad)?;
    let from = if path == "<>" {
        None
    } else {
        Some(parse_path(path).ok_or_else(|| Reply::new(501, "5.1.7", "Bad sender address syntax"))?)
    };
    let mut out = MailParams::default();
    for (key, value) in parse_params(params)? {
        let dup = || Reply::new(501, "5.5.4", format!("Duplicate parameter {key}"));
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                let n = v.parse().map_err(|_| Reply::new(501, "5.5.4", "Bad SIZE value"))?;
                if out.size.replace(n).is_some() {
                    return Err(dup());
                }
            }
            ("BODY", Some(v)) => {
                let body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(Reply::new(501, "5.5.4", "Bad BODY value")),
                };
                if out.body.replace(body).is_some() {
                    return Err(dup());
                }
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("RET", Some(v)) => {
                let ret = match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(Reply::new(501, "5.5.4", "Bad RET value")),
                };
                if out.ret.replace(ret).is_some() {
                    return Err(dup());
                }
            }
            ("ENVID", Some(v)) => {
                // RFC 3461 section 4.4: at most 100 characters of xtext.
                if v.len() > 100 || !is_xtext(v) {
                    return Err(Reply::new(501, "5.5.4", "Bad ENVID value"));
                }
                if out.envid.replace(v.to_string()).is_some() {
                    return Err(dup());
                }
            }
            ("AUTH", Some(v)) => out.auth = Some(v.to_string()),
            _ => return Err(unknown_param(key)),
        }
    }
    Ok(Command::Mail { from, params: out })
}

fn parse_rcpt(rest: &str) -> Result<Command, Reply> {
    let bad = || Reply::new(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]");
    let (path, params) = split_path(rest, "TO:").ok_or_else(bad)?;
    // RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted.
    let to = if path.eq_ignore_ascii_case("<postmaster>") {
        Mailbox { local: "postmaster".into(), domain: String::new() }
    } else {
        parse_path(path).ok_or_else(|| Reply::new(501, "5.1.3", "Bad recipient address syntax"))?
    };
    let mut out = RcptParams::default();
    for (key, value) in parse_params(params)? {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let v = v.to_ascii_uppercase();
                let items: Vec<&str> = v.split(',').collect();
                let valid = if items.contains(&"NEVER") {
                    items.len() == 1
                } else {
                    items.iter().all(|i| matches!(*i, "SUCCESS" | "FAILURE" | "DELAY"))
                };
                if !valid || out.notify.is_some() {
                    return Err(Reply::new(501, "5.5.4", "Bad NOTIFY value"));
                }
                out.notify = Some(v);
            }
            ("ORCPT", Some(v)) => {
                // addr-type ";" xtext (RFC 3461 section 4.2)
                let ok = v.split_once(';').is_some_and(|(t, a)| {
                    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && is_xtext(a)
                });
                if !ok || v.len() > 500 || out.orcpt.is_some() {
                    return Err(Reply::new(501, "5.5.4", "Bad ORCPT value"));
                }
                out.orcpt = Some(v.to_string());
            }
            _ => return Err(unknown_param(key)),
        }
    }
    Ok(Command::Rcpt { to, params: out })
}

fn unknown_param(key: &str) -> Reply {
    Reply::new(555, "5.5.4", format!("Unsupported parameter {}", key.to_ascii_uppercase()))
}

/// Splits `KEY[=VALUE] KEY[=VALUE] ...` (RFC 5321 4.1.2 esmtp-param).
fn parse_params(s: &str) -> Result<Vec<(&str, Option<&str>)>, Reply> {
    let mut out = Vec::new();
    for item in s.split(' ').filter(|i| !i.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let key_ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // esmtp-value: %d33-60 / %d62-126, plus UTF-8 under RFC 6531.
        let value_ok =
            value.is_none_or(|v| !v.is_empty() && v.chars().all(|c| c != '=' && (c > ' ' && c != '\x7f')));
        if !key_ok || !value_ok {
            return Err(Reply::new(501, "5.5.4", "Syntax error in parameters"));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// xtext (RFC 3461 section 4): printable ASCII except '+' and '=', or "+" two upper hex.
fn is_xtext(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            33..=126 if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Parses `<[@route,...:]local@domain>` (RFC 5321 4.1.2 Path); the source route is
/// accepted and ignored (RFC 5321 section C).
fn parse_path(path: &str) -> Option<Mailbox> {
    let inner = path.strip_prefix('<')?.strip_suffix('>')?;
    let inner = if inner.starts_with('@') { inner.split_once(':')?.1 } else { inner };
    let at = if inner.starts_with('"') {
        let close = quoted_end(inner)?;
        (inner.as_bytes().get(close + 1) == Some(&b'@')).then_some(close + 1)?
    } else {
        inner.rfind('@')?
    };
    let (local, domain) = (&inner[..at], &inner[at + 1..]);
    if local.len() > 64 * 4 || domain.len() > 255 {
        return None;
    }
    let local_ok = if local.starts_with('"') { true } else { is_dot_string(local) };
    if !local_ok || !is_domain_or_literal(domain) {
        return None;
    }
    Some(Mailbox { local: local.to_string(), domain: domain.to_lowercase() })
}

/// Index of the closing quote of a quoted string starting at 0.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_domain_or_literal(d: &str) -> bool {
    if let Some(lit) = d.strip_prefix('[') {
        let Some(lit) = lit.strip_suffix(']') else { return false };
        return match lit.strip_prefix("IPv6:").or_else(|| lit.strip_prefix("ipv6:")) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => lit.parse::<std::net::Ipv4Addr>().is_ok(),
        };
    }
    !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

fn parse_bdat(rest: &str) -> Result<Command, Reply> {
    let bad = || Reply::new(501, "5.5.4", "Syntax: BDAT size [LAST]");
    let mut parts = rest.split(' ').filter(|p| !p.is_empty());
    let size = parts.next().ok_or_else(bad)?;
    if !size.bytes().all(|b| b.is_ascii_digit()) || size.len() > 18 {
        return Err(bad());
    }
    let size: u64 = size.parse().map_err(|_| bad())?;
    let last = match parts.next() {
        None => false,
        Some(p) if p.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Command::Bdat { size, last })
}

fn parse_auth(rest: &str) -> Result<Command, Reply> {
    let mut parts = rest.split(' ').filter(|p| !p.is_empty());
    let mechanism = parts
        .next()
        .ok_or_else(|| Reply::new(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"))?
        .to_ascii_uppercase();
    let initial = parts.next().map(str::to_string);
    if parts.next().is_some() {
        return Err(Reply::new(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"));
    }
    Ok(Command::Auth { mechanism, initial })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(local: &str, domain: &str) -> Mailbox {
        Mailbox { local: local.into(), domain: domain.into() }
    }

    fn code(line: &str) -> u16 {
        parse_command(line.as_bytes()).unwrap_err().code
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse_command(b"EHLO client.example").unwrap(), Command::Ehlo("client.example".into()));
        assert_eq!(parse_command(b"helo [192.0.2.1]").unwrap(), Command::Helo("[192.0.2.1]".into()));
        assert_eq!(parse_command(b"DATA").unwrap(), Command::Data);
        assert_eq!(parse_command(b"rset").unwrap(), Command::Rset);
        assert_eq!(parse_command(b"NOOP anything").unwrap(), Command::Noop);
        assert_eq!(parse_command(b"QUIT").unwrap(), Command::Quit);
        assert_eq!(parse_command(b"STARTTLS").unwrap(), Command::StartTls);
        assert_eq!(parse_command(b"VRFY joe").unwrap(), Command::Vrfy);
        assert_eq!(code("EHLO"), 501);
        assert_eq!(code("DATA x"), 501);
        assert_eq!(code("FOO"), 500);
        assert_eq!(code("MAIL\0FROM:<a@b>"), 500);
        assert_eq!(parse_command(b"\xff").unwrap_err().code, 500);
    }

    #[test]
    fn mail_from() {
        let Command::Mail { from, params } = parse_command(
            b"MAIL FROM:<Joe@Example.COM> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(from, Some(mb("Joe", "example.com")));
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert!(params.smtputf8);
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("QQ+2B1"));
        assert_eq!(
            parse_command(b"mail from:<>").unwrap(),
            Command::Mail { from: None, params: MailParams::default() }
        );
        // A space after the colon is tolerated; source routes are ignored.
        assert_eq!(
            parse_command(b"MAIL FROM: <@relay.example:a@b.example>").unwrap(),
            Command::Mail { from: Some(mb("a", "b.example")), params: MailParams::default() }
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<\"john doe\"@example.com>").unwrap(),
            Command::Mail { from: Some(mb("\"john doe\"", "example.com")), params: MailParams::default() }
        );
        assert_eq!(code("MAIL FROM:a@b"), 501);
        assert_eq!(code("MAIL FROM:<a@b"), 501);
        assert_eq!(code("MAIL FROM:<a@@b>"), 501);
        assert_eq!(code("MAIL FROM:<a..b@c>"), 501);
        assert_eq!(code("MAIL FROM:<a@b>x"), 501);
        assert_eq!(code("MAIL FROM:<a@b> SIZE=x"), 501);
        assert_eq!(code("MAIL FROM:<a@b> SIZE=1 SIZE=2"), 501);
        assert_eq!(code("MAIL FROM:<a@b> BODY=9BIT"), 501);
        assert_eq!(code("MAIL FROM:<a@b> FOO=BAR"), 555);
        assert_eq!(code("MAIL FROM:<a@b> ENVID=a=b"), 501);
        assert_eq!(code("MAIL TO:<a@b>"), 501);
        assert_eq!(code("MAIL FROM:<a@-b.example>"), 501);
    }

    #[test]
    fn rcpt_to() {
        let Command::Rcpt { to, params } =
            parse_command(b"RCPT TO:<bob@example.org> NOTIFY=success,failure ORCPT=rfc822;bob@example.org")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(to, mb("bob", "example.org"));
        assert_eq!(params.notify.as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;bob@example.org"));
        assert_eq!(
            parse_command(b"RCPT TO:<Postmaster>").unwrap(),
            Command::Rcpt { to: mb("postmaster", ""), params: RcptParams::default() }
        );
        assert!(parse_command("RCPT TO:<jösé@bücher.example>".as_bytes()).is_ok());
        assert!(parse_command(b"RCPT TO:<a@[192.0.2.1]>").is_ok());
        assert!(parse_command(b"RCPT TO:<a@[IPv6:2001:db8::1]>").is_ok());
        assert_eq!(code("RCPT TO:<a@[300.1.1.1]>"), 501);
        assert_eq!(code("RCPT TO:<>"), 501);
        assert_eq!(code("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS"), 501);
        assert_eq!(code("RCPT TO:<a@b> NOTIFY=SOMETIMES"), 501);
        assert_eq!(code("RCPT TO:<a@b> ORCPT=nosemicolon"), 501);
        assert_eq!(code("RCPT TO:<a@b> SIZE=10"), 555);
    }

    #[test]
    fn bdat_and_auth() {
        assert_eq!(parse_command(b"BDAT 100").unwrap(), Command::Bdat { size: 100, last: false });
        assert_eq!(parse_command(b"BDAT 0 last").unwrap(), Command::Bdat { size: 0, last: true });
        assert_eq!(code("BDAT"), 501);
        assert_eq!(code("BDAT -1"), 501);
        assert_eq!(code("BDAT 1 LAST x"), 501);
        assert_eq!(code("BDAT 99999999999999999999"), 501);
        assert_eq!(
            parse_command(b"AUTH plain AGZvbwBiYXI=").unwrap(),
            Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGZvbwBiYXI=".into()) }
        );
        assert_eq!(code("AUTH"), 501);
    }

    #[test]
    fn xtext() {
        assert!(is_xtext("abc+2B"));
        assert!(!is_xtext("abc+2"));
        assert!(!is_xtext("abc+zz"));
        assert!(!is_xtext("a=b"));
        assert!(!is_xtext("a b"));
    }
}
