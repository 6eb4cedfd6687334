//! postamt configuration: the TOML file format, its defaults and its validation.
//!
//! The file is parsed in two steps. First serde reads it into "raw" structs that
//! mirror the file exactly, with `deny_unknown_fields` everywhere so that a
//! misspelt key is an error rather than a silently ignored setting. Then
//! [`Config`] is built from the raw structs: sizes, durations and addresses are
//! parsed and every value is checked, and each failure names the key (for
//! example `listen.submission[0]`) and, where known, the line.
//!
//! ```toml
//! hostname = "mail.example.test"
//! data_dir = "./data"
//! max_message_size = "50M"
//!
//! [listen]            # an absent key turns that service off
//! smtp = ["0.0.0.0:25"]
//! submission = ["0.0.0.0:587"]
//!
//! [tls]               # optional; without it a self-signed certificate is generated
//! cert = "/path/fullchain.pem"
//! key = "/path/key.pem"
//!
//! [auth]
//! allow_plaintext = false
//! failure_delay = "1s"
//! max_failure_delay = "15s"
//!
//! [limits]
//! connections = 2000
//! connections_per_ip = 50
//! recipients = 100
//! smtp_line = 4096
//! command_timeout = "5m"
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// Default for `max_message_size`: 50 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

/// Smallest accepted `limits.smtp_line`: RFC 5321 4.5.3.1.4 requires servers
/// to accept command lines of at least 512 octets including CRLF.
pub const MIN_SMTP_LINE: usize = 512;

/// The validated configuration of a postamt server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name used in greetings, `Received` headers and the generated certificate.
    pub hostname: String,
    /// Directory holding the embedded store, blobs, generated keys and certificates.
    pub data_dir: PathBuf,
    /// Largest message accepted, in bytes.
    pub max_message_size: u64,
    /// Listening addresses per service.
    pub listen: Listen,
    /// Certificate and key files; `None` means a self-signed certificate is generated.
    pub tls: Option<TlsFiles>,
    /// Authentication policy.
    pub auth: AuthConfig,
    /// Resource limits.
    pub limits: Limits,
}

/// Listening addresses per service; an empty list means the service is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listen {
    pub smtp: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub imap: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub pop3: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
}

impl Listen {
    /// Every service with its addresses, in a fixed order, named as in the file.
    pub fn services(&self) -> [(&'static str, &[SocketAddr]); 9] {
        [
            ("smtp", &self.smtp),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("pop3", &self.pop3),
            ("pop3s", &self.pop3s),
            ("http", &self.http),
            ("https", &self.https),
        ]
    }

    /// True when no service listens anywhere.
    pub fn is_empty(&self) -> bool {
        self.services().iter().all(|(_, addrs)| addrs.is_empty())
    }
}

/// PEM files of an administrator-provided certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate.
    pub key: PathBuf,
}

/// Authentication policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Allow passwords on connections without TLS.
    pub allow_plaintext: bool,
    /// Base of the per-IP delay after a failed login; doubles per failure.
    pub failure_delay: Duration,
    /// Cap of that growing delay.
    pub max_failure_delay: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext: false,
            failure_delay: Duration::from_secs(1),
            max_failure_delay: Duration::from_secs(15),
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent connections, all services together.
    pub connections: usize,
    /// Concurrent connections from one client address.
    pub connections_per_ip: usize,
    /// Recipients per SMTP transaction.
    pub recipients: usize,
    /// Longest SMTP command line accepted, in bytes including CRLF.
    pub smtp_line: usize,
    /// Idle time allowed between commands.
    pub command_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 2000,
            connections_per_ip: 50,
            // RFC 5321 4.5.3.1.8: the minimum a server must accept.
            recipients: 100,
            smtp_line: 4096,
            command_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config: cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    /// TOML syntax error, unknown key or wrong value type, as reported by the
    /// TOML parser (which names the key and shows the line).
    #[error("config: {}{}", PathPrefix(path.as_deref()), err.to_string().trim_end())]
    Syntax { path: Option<PathBuf>, err: toml::de::Error },
    /// A value that is well-formed TOML but not acceptable.
    #[error(
        "config: {}{key}: {message}{}",
        PathPrefix(path.as_deref()),
        LineSuffix(*line)
    )]
    Invalid {
        path: Option<PathBuf>,
        /// Dotted key of the offending value, e.g. `listen.smtp[1]`.
        key: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
        message: String,
    },
}

impl ConfigError {
    /// The dotted key an [`ConfigError::Invalid`] error is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The file the error is about, when the configuration came from a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigError::Read { path, .. } => Some(path),
            ConfigError::Syntax { path, .. } | ConfigError::Invalid { path, .. } => path.as_deref(),
        }
    }

    fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            ConfigError::Read { .. } => {}
            ConfigError::Syntax { path, .. } | ConfigError::Invalid { path, .. } => {
                *path = Some(file.to_path_buf());
            }
        }
        self
    }
}

struct PathPrefix<'a>(Option<&'a Path>);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}: ", path.display()),
            None => Ok(()),
        }
    }
}

struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

impl Config {
    /// Parses and validates a configuration from TOML text.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(s).map_err(|err| ConfigError::Syntax { path: None, err })?;
        Validator { src: s }.config(raw)
    }

    /// Reads, parses and validates a configuration file. Every error names the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::Read { path: path.to_path_buf(), err })?;
        Config::from_toml_str(&text).map_err(|e| e.with_path(path))
    }

    /// Built-in configuration for running without a file: everything on
    /// 127.0.0.1 with unprivileged ports and a self-signed certificate.
    pub fn default_quickstart() -> Config {
        let local = |port: u16| vec![SocketAddr::from(([127, 0, 0, 1], port))];
        Config {
            hostname: "localhost".to_owned(),
            data_dir: PathBuf::from("./data"),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            listen: Listen {
                smtp: local(2525),
                submission: local(5870),
                submissions: local(4650),
                imap: local(1430),
                imaps: local(9930),
                pop3: local(1100),
                pop3s: local(9950),
                http: local(8080),
                https: local(8443),
            },
            tls: None,
            auth: AuthConfig::default(),
            limits: Limits::default(),
        }
    }
}

/// Parses a size: a whole number with an optional binary unit, e.g. `"1024"`,
/// `"500K"`, `"50M"`, `"10MB"`, `"2GiB"`, `"1T"`. Units are case-insensitive
/// and K = 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const HINT: &str = "expected a whole number with an optional unit K, M, G or T \
                        (binary multiples), e.g. \"50M\"";
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!("{s:?} is not a size: {HINT}"));
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{s:?} is not a size: {HINT}")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: a whole number with a unit, e.g. `"500ms"`, `"30s"`,
/// `"5m"`, `"1h"`, `"2d"`. The unit is required so that `"30"` cannot be
/// misread as milliseconds or minutes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a whole number with a unit ms, s, m, h or d, e.g. \"30s\"";
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!("{s:?} is not a duration: {HINT}"));
    }
    let (millis_per_unit, secs_per_unit): (u64, u64) = match unit.trim_start() {
        "ms" => (1, 0),
        "s" => (0, 1),
        "m" => (0, 60),
        "h" => (0, 3600),
        "d" => (0, 86400),
        "" => return Err(format!("{s:?} has no unit: {HINT}")),
        _ => return Err(format!("{s:?} is not a duration: {HINT}")),
    };
    let n = number.parse::<u64>().map_err(|_| format!("{s:?} is too large"))?;
    if millis_per_unit > 0 {
        return Ok(Duration::from_millis(n));
    }
    n.checked_mul(secs_per_unit).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is too large"))
}

/// Checks that `name` is a plausible DNS host name (RFC 1123 labels).
fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!("{name:?} is an IP address; a host name is required"));
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "{name:?} is not a valid host name (dot-separated labels of at most \
                 63 letters, digits and inner hyphens)"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Raw file structure. Every struct denies unknown fields; values that need
// checking are `Spanned` so that errors can name the line.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    max_message_size: Option<Spanned<SizeValue>>,
    #[serde(default)]
    listen: RawListen,
    tls: Option<RawTls>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    limits: RawLimits,
}

type AddrList = Option<Vec<Spanned<String>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListen {
    smtp: AddrList,
    submission: AddrList,
    submissions: AddrList,
    imap: AddrList,
    imaps: AddrList,
    pop3: AddrList,
    pop3s: AddrList,
    http: AddrList,
    https: AddrList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    allow_plaintext: Option<bool>,
    failure_delay: Option<Spanned<String>>,
    max_failure_delay: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    // Signed so that zero and negative values get the same keyed message.
    connections: Option<Spanned<i64>>,
    connections_per_ip: Option<Spanned<i64>>,
    recipients: Option<Spanned<i64>>,
    smtp_line: Option<Spanned<i64>>,
    command_timeout: Option<Spanned<String>>,
}

/// A size written either as a string with a unit or as a plain byte count.
enum SizeValue {
    Text(String),
    Bytes(i64),
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"50M\" or a number of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Validation: raw structs to `Config`.

struct Validator<'a> {
    src: &'a str,
}

impl Validator<'_> {
    fn line(&self, span: Range<usize>) -> Option<usize> {
        let before = self.src.get(..span.start)?;
        Some(before.bytes().filter(|&b| b == b'\n').count() + 1)
    }

    fn invalid(&self, key: &str, span: Option<Range<usize>>, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: None,
            key: key.to_owned(),
            line: span.and_then(|s| self.line(s)),
            message,
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let hostname = match raw.hostname {
            None => "localhost".to_owned(),
            Some(h) => {
                check_hostname(h.get_ref()).map_err(|m| self.invalid("hostname", Some(h.span()), m))?;
                h.into_inner()
            }
        };
        let data_dir = match raw.data_dir {
            None => PathBuf::from("./data"),
            Some(d) => PathBuf::from(self.non_empty_path("data_dir", d)?),
        };
        let max_message_size = match raw.max_message_size {
            None => DEFAULT_MAX_MESSAGE_SIZE,
            Some(v) => self.size("max_message_size", v)?,
        };
        let listen = self.listen(raw.listen)?;
        let tls = match raw.tls {
            None => None,
            Some(t) => Some(self.tls(t)?),
        };
        let auth = self.auth(raw.auth)?;
        let limits = self.limits(raw.limits)?;
        Ok(Config { hostname, data_dir, max_message_size, listen, tls, auth, limits })
    }

    fn non_empty_path(&self, key: &str, v: Spanned<String>) -> Result<String, ConfigError> {
        if v.get_ref().trim().is_empty() {
            return Err(self.invalid(key, Some(v.span()), "must not be empty".to_owned()));
        }
        Ok(v.into_inner())
    }

    fn size(&self, key: &str, v: Spanned<SizeValue>) -> Result<u64, ConfigError> {
        let span = v.span();
        let n = match v.into_inner() {
            SizeValue::Text(s) => parse_size(&s).map_err(|m| self.invalid(key, Some(span.clone()), m))?,
            SizeValue::Bytes(n) => u64::try_from(n)
                .map_err(|_| self.invalid(key, Some(span.clone()), format!("{n} is negative")))?,
        };
        if n == 0 {
            return Err(self.invalid(key, Some(span), "must be greater than zero".to_owned()));
        }
        Ok(n)
    }

    fn duration(
        &self,
        key: &str,
        v: Option<Spanned<String>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) => parse_duration(v.get_ref()).map_err(|m| self.invalid(key, Some(v.span()), m)),
        }
    }

    fn count(&self, key: &str, v: Option<Spanned<i64>>, default: usize) -> Result<usize, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.invalid(key, Some(v.span()), format!("{} is not a positive number", v.get_ref()))),
        }
    }

    fn listen(&self, raw: RawListen) -> Result<Listen, ConfigError> {
        // Where each explicit (non-zero) port was first used, to report
        // duplicates here rather than as a bind failure at start.
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();
        let mut list = |name: &str, v: AddrList| -> Result<Vec<SocketAddr>, ConfigError> {
            let mut out = Vec::new();
            for (i, entry) in v.unwrap_or_default().into_iter().enumerate() {
                let key = format!("listen.{name}[{i}]");
                let addr: SocketAddr = entry.get_ref().trim().parse().map_err(|_| {
                    self.invalid(
                        &key,
                        Some(entry.span()),
                        format!(
                            "{:?} is not an ip:port address (e.g. \"0.0.0.0:25\" or \"[::]:25\")",
                            entry.get_ref()
                        ),
                    )
                })?;
                if addr.port() != 0 {
                    if let Some(first) = seen.get(&addr) {
                        return Err(self.invalid(
                            &key,
                            Some(entry.span()),
                            format!("{addr} is already used by {first}"),
                        ));
                    }
                    seen.insert(addr, key);
                }
                out.push(addr);
            }
            Ok(out)
        };
        Ok(Listen {
            smtp: list("smtp", raw.smtp)?,
            submission: list("submission", raw.submission)?,
            submissions: list("submissions", raw.submissions)?,
            imap: list("imap", raw.imap)?,
            imaps: list("imaps", raw.imaps)?,
            pop3: list("pop3", raw.pop3)?,
            pop3s: list("pop3s", raw.pop3s)?,
            http: list("http", raw.http)?,
            https: list("https", raw.https)?,
        })
    }

    fn tls(&self, raw: RawTls) -> Result<TlsFiles, ConfigError> {
        match (raw.cert, raw.key) {
            (Some(cert), Some(key)) => Ok(TlsFiles {
                cert: PathBuf::from(self.non_empty_path("tls.cert", cert)?),
                key: PathBuf::from(self.non_empty_path("tls.key", key)?),
            }),
            (Some(cert), None) => Err(self.invalid(
                "tls.key",
                Some(cert.span()),
                "missing: tls.cert is set, so tls.key must be set too".to_owned(),
            )),
            (None, Some(key)) => Err(self.invalid(
                "tls.cert",
                Some(key.span()),
                "missing: tls.key is set, so tls.cert must be set too".to_owned(),
            )),
            (None, None) => Err(self.invalid(
                "tls",
                None,
                "both cert and key must be set (remove [tls] to use a generated \
                 self-signed certificate)"
                    .to_owned(),
            )),
        }
    }

    fn auth(&self, raw: RawAuth) -> Result<AuthConfig, ConfigError> {
        let d = AuthConfig::default();
        let max_span = raw.max_failure_delay.as_ref().map(Spanned::span);
        let auth = AuthConfig {
            allow_plaintext: raw.allow_plaintext.unwrap_or(d.allow_plaintext),
            failure_delay: self.duration("auth.failure_delay", raw.failure_delay, d.failure_delay)?,
            max_failure_delay: self.duration(
                "auth.max_failure_delay",
                raw.max_failure_delay,
                d.max_failure_delay,
            )?,
        };
        if auth.max_failure_delay < auth.failure_delay {
            return Err(self.invalid(
                "auth.max_failure_delay",
                max_span,
                format!(
                    "{:?} is shorter than auth.failure_delay ({:?})",
                    auth.max_failure_delay, auth.failure_delay
                ),
            ));
        }
        Ok(auth)
    }

    fn limits(&self, raw: RawLimits) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let line_span = raw.smtp_line.as_ref().map(Spanned::span);
        let timeout_span = raw.command_timeout.as_ref().map(Spanned::span);
        let limits = Limits {
            connections: self.count("limits.connections", raw.connections, d.connections)?,
            connections_per_ip: self.count(
                "limits.connections_per_ip",
                raw.connections_per_ip,
                d.connections_per_ip,
            )?,
            recipients: self.count("limits.recipients", raw.recipients, d.recipients)?,
            smtp_line: self.count("limits.smtp_line", raw.smtp_line, d.smtp_line)?,
            command_timeout: self.duration(
                "limits.command_timeout",
                raw.command_timeout,
                d.command_timeout,
            )?,
        };
        if limits.smtp_line < MIN_SMTP_LINE {
            return Err(self.invalid(
                "limits.smtp_line",
                line_span,
                format!("{} is below {MIN_SMTP_LINE}, the minimum RFC 5321 requires", limits.smtp_line),
            ));
        }
        if limits.command_timeout.is_zero() {
            return Err(self.invalid(
                "limits.command_timeout",
                timeout_span,
                "must be greater than zero".to_owned(),
            ));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
hostname = "mail.example.test"
data_dir = "/var/lib/postamt"
max_message_size = "20M"

[listen]
smtp = ["0.0.0.0:25", "[::]:25"]
submission = ["0.0.0.0:587"]
submissions = ["0.0.0.0:465"]
imap = ["0.0.0.0:143"]
imaps = ["0.0.0.0:993"]
pop3 = ["0.0.0.0:110"]
pop3s = ["0.0.0.0:995"]
http = ["127.0.0.1:8080"]
https = ["0.0.0.0:8443"]

[tls]
cert = "/etc/postamt/fullchain.pem"
key = "/etc/postamt/key.pem"

[auth]
allow_plaintext = true
failure_delay = "500ms"
max_failure_delay = "30s"

[limits]
connections = 100
connections_per_ip = 5
recipients = 250
smtp_line = 1000
command_timeout = "10m"
"#;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn err(toml: &str) -> String {
        match Config::from_toml_str(toml) {
            Ok(c) => panic!("expected an error for {toml:?}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_key_parses() {
        let c = Config::from_toml_str(FULL).expect("full config");
        assert_eq!(c.hostname, "mail.example.test");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/postamt"));
        assert_eq!(c.max_message_size, 20 * 1024 * 1024);
        assert_eq!(c.listen.smtp, vec![addr("0.0.0.0:25"), addr("[::]:25")]);
        assert_eq!(c.listen.submission, vec![addr("0.0.0.0:587")]);
        assert_eq!(c.listen.submissions, vec![addr("0.0.0.0:465")]);
        assert_eq!(c.listen.imap, vec![addr("0.0.0.0:143")]);
        assert_eq!(c.listen.imaps, vec![addr("0.0.0.0:993")]);
        assert_eq!(c.listen.pop3, vec![addr("0.0.0.0:110")]);
        assert_eq!(c.listen.pop3s, vec![addr("0.0.0.0:995")]);
        assert_eq!(c.listen.http, vec![addr("127.0.0.1:8080")]);
        assert_eq!(c.listen.https, vec![addr("0.0.0.0:8443")]);
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/etc/postamt/fullchain.pem"),
                key: PathBuf::from("/etc/postamt/key.pem"),
            })
        );
        assert_eq!(
            c.auth,
            AuthConfig {
                allow_plaintext: true,
                failure_delay: Duration::from_millis(500),
                max_failure_delay: Duration::from_secs(30),
            }
        );
        assert_eq!(
            c.limits,
            Limits {
                connections: 100,
                connections_per_ip: 5,
                recipients: 250,
                smtp_line: 1000,
                command_timeout: Duration::from_secs(600),
            }
        );
    }

    #[test]
    fn empty_file_gives_defaults_with_nothing_listening() {
        let c = Config::from_toml_str("").expect("empty config");
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
        assert!(c.listen.is_empty());
        assert_eq!(c.tls, None);
        assert_eq!(c.auth, AuthConfig::default());
        assert_eq!(c.limits, Limits::default());
        assert!(!c.auth.allow_plaintext);
        assert_eq!(c.auth.failure_delay, Duration::from_secs(1));
        assert_eq!(c.auth.max_failure_delay, Duration::from_secs(15));
        assert_eq!(c.limits.connections, 2000);
        assert_eq!(c.limits.connections_per_ip, 50);
        assert_eq!(c.limits.recipients, 100);
        assert_eq!(c.limits.smtp_line, 4096);
        assert_eq!(c.limits.command_timeout, Duration::from_secs(300));
    }

    #[test]
    fn absent_listen_key_turns_service_off() {
        let c = Config::from_toml_str("[listen]\nimap = [\"127.0.0.1:1430\"]\n").expect("config");
        assert_eq!(c.listen.imap, vec![addr("127.0.0.1:1430")]);
        assert!(c.listen.smtp.is_empty());
        assert!(c.listen.https.is_empty());
        let on: Vec<_> =
            c.listen.services().into_iter().filter(|(_, a)| !a.is_empty()).map(|(n, _)| n).collect();
        assert_eq!(on, ["imap"]);
    }

    #[test]
    fn quickstart_defaults() {
        let c = Config::default_quickstart();
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.max_message_size, 50 * 1024 * 1024);
        let expect = [
            ("smtp", 2525),
            ("submission", 5870),
            ("submissions", 4650),
            ("imap", 1430),
            ("imaps", 9930),
            ("pop3", 1100),
            ("pop3s", 9950),
            ("http", 8080),
            ("https", 8443),
        ];
        for ((name, addrs), (want_name, port)) in c.listen.services().into_iter().zip(expect) {
            assert_eq!(name, want_name);
            assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], port))], "{name}");
        }
        assert_eq!(c.tls, None);
        assert_eq!(c.auth, AuthConfig::default());
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn unknown_keys_are_rejected_everywhere() {
        let e = err("hostname = \"a.test\"\nhostnme = \"x\"\n");
        assert!(e.contains("hostnme"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        for table in ["listen", "tls", "auth", "limits"] {
            let e = err(&format!("[{table}]\nbogus_key = 1\n"));
            assert!(e.contains("bogus_key"), "[{table}]: {e}");
            assert!(e.starts_with("config: "), "{e}");
        }
        let e = err("[smtp]\nport = 25\n");
        assert!(e.contains("smtp"), "{e}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let e = err("[listen]\nsmtp = \"0.0.0.0:25\"\n");
        assert!(e.contains("line 2"), "{e}");
        let e = err("[auth]\nallow_plaintext = \"yes\"\n");
        assert!(e.contains("allow_plaintext") || e.contains("line 2"), "{e}");
        let e = err("[limits]\nconnections = \"many\"\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_addresses_name_the_key() {
        let e = err("[listen]\nsubmission = [\"0.0.0.0\"]\n");
        assert!(e.starts_with(r#"config: listen.submission[0]: "0.0.0.0" is not an ip:port address"#), "{e}");
        assert!(e.contains("(line 2)"), "{e}");
        let e = err("[listen]\nsmtp = [\"0.0.0.0:25\", \"mail.example.test:25\"]\n");
        assert!(e.starts_with("config: listen.smtp[1]: "), "{e}");
        let e = err("[listen]\nimaps = [\"1.2.3.4:99999\"]\n");
        assert!(e.starts_with("config: listen.imaps[0]: "), "{e}");
    }

    #[test]
    fn duplicate_addresses_are_rejected_but_port_zero_is_not() {
        let e = err("[listen]\nsmtp = [\"0.0.0.0:25\"]\nsubmission = [\"0.0.0.0:25\"]\n");
        assert!(e.contains("listen.submission[0]"), "{e}");
        assert!(e.contains("already used by listen.smtp[0]"), "{e}");
        let c = Config::from_toml_str("[listen]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\n")
            .expect("port 0 twice");
        assert_eq!(c.listen.smtp, c.listen.imap);
    }

    #[test]
    fn bad_sizes_name_the_key() {
        for bad in ["\"50X\"", "\"\"", "\"1.5G\"", "0", "\"0M\"", "-5", "\"99999999999T\""] {
            let e = err(&format!("max_message_size = {bad}\n"));
            assert!(e.starts_with("config: max_message_size: "), "{bad}: {e}");
            assert!(e.contains("(line 1)"), "{bad}: {e}");
        }
        let c = Config::from_toml_str("max_message_size = 1000\n").expect("integer size");
        assert_eq!(c.max_message_size, 1000);
    }

    #[test]
    fn bad_durations_name_the_key() {
        for (key, table) in
            [("failure_delay", "auth"), ("max_failure_delay", "auth"), ("command_timeout", "limits")]
        {
            for bad in ["\"5\"", "\"5x\"", "\"s\"", "\"1.5s\"", "\"\""] {
                let e = err(&format!("[{table}]\n{key} = {bad}\n"));
                assert!(e.starts_with(&format!("config: {table}.{key}: ")), "{bad}: {e}");
                assert!(e.contains("(line 2)"), "{bad}: {e}");
            }
        }
        let e = err("[limits]\ncommand_timeout = \"0s\"\n");
        assert!(e.starts_with("config: limits.command_timeout: "), "{e}");
        let e = err("[auth]\nfailure_delay = \"20s\"\n");
        assert!(e.starts_with("config: auth.max_failure_delay: "), "{e}");
    }

    #[test]
    fn bad_limits_name_the_key() {
        for key in ["connections", "connections_per_ip", "recipients", "smtp_line"] {
            for bad in ["0", "-1"] {
                let e = err(&format!("[limits]\n{key} = {bad}\n"));
                assert!(e.starts_with(&format!("config: limits.{key}: ")), "{e}");
            }
        }
        let e = err("[limits]\nsmtp_line = 100\n");
        assert!(e.contains("512"), "{e}");
    }

    #[test]
    fn bad_hostnames_are_rejected() {
        for bad in ["", "-mail.test", "mail..test", "mail.test.", "ma il.test", "192.0.2.1", "a_b.test"] {
            let e = err(&format!("hostname = {bad:?}\n"));
            assert!(e.starts_with("config: hostname: "), "{bad:?}: {e}");
        }
        for good in ["localhost", "mail.example.test", "MX-1.Example.Test", "xn--bcher-kva.test"] {
            let c = Config::from_toml_str(&format!("hostname = {good:?}\n")).expect(good);
            assert_eq!(c.hostname, good);
        }
        let long = format!("hostname = \"{}.test\"\n", "a".repeat(64));
        assert!(err(&long).starts_with("config: hostname: "));
    }

    #[test]
    fn tls_needs_both_files() {
        let e = err("[tls]\ncert = \"/c.pem\"\n");
        assert!(e.starts_with("config: tls.key: missing"), "{e}");
        let e = err("[tls]\nkey = \"/k.pem\"\n");
        assert!(e.starts_with("config: tls.cert: missing"), "{e}");
        let e = err("[tls]\n");
        assert!(e.starts_with("config: tls: "), "{e}");
        let e = err("[tls]\ncert = \"\"\nkey = \"/k.pem\"\n");
        assert!(e.starts_with("config: tls.cert: "), "{e}");
        let e = err("data_dir = \"\"\n");
        assert!(e.starts_with("config: data_dir: "), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500K"), Ok(500 * 1024));
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size(" 7 k "), Ok(7 * 1024));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "M", "1.5G", "-1", "5X", "none", "1 2", "18446744073709551616", "20000000T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 10 s"), Ok(Duration::from_secs(10)));
        for bad in ["", "30", "s", "1.5s", "-1s", "5M", "5 min", "99999999999999999999s", "1h30m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();

        let missing = dir.join("missing.toml");
        let e = Config::load(&missing).expect_err("missing file");
        assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
        assert_eq!(e.path(), Some(missing.as_path()));

        let syntax = dir.join("syntax.toml");
        std::fs::write(&syntax, "[limits]\nconections = 5\n").expect("write");
        let e = Config::load(&syntax).expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("config: {}: ", syntax.display())), "{msg}");
        assert!(msg.contains("conections"), "{msg}");

        let invalid = dir.join("invalid.toml");
        std::fs::write(&invalid, "hostname = \"a.test\"\n[listen]\nsmtp = [\"nope\"]\n").expect("write");
        let e = Config::load(&invalid).expect_err("bad address");
        assert_eq!(e.key(), Some("listen.smtp[0]"));
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("config: {}: listen.smtp[0]: ", invalid.display())), "{msg}");
        assert!(msg.ends_with("(line 3)"), "{msg}");

        let good = dir.join("good.toml");
        std::fs::write(&good, FULL).expect("write");
        assert_eq!(Config::load(&good).expect("good file"), Config::from_toml_str(FULL).expect("full"));
    }
}
