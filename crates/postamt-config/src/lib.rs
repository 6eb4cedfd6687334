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
//! login_cache = "10m"   # recognise credentials that passed recently; "0s" turns it off
//! dmarc_reject = false   # refuse incoming mail whose DMARC check fails under p=reject
//!
//! [limits]
//! connections = 2000
//! connections_per_ip = 50
//! recipients = 100
//! smtp_line = 4096
//! command_timeout = "5m"
//! imap_idle_timeout = "30m"   # RFC 9051: at least 30 minutes
//! pop3_idle_timeout = "10m"   # RFC 1939: at least 10 minutes
//!
//! [dns]               # optional; default: the system's resolvers
//! resolver = "127.0.0.1:53"
//!
//! [relay]             # how outgoing mail reaches other servers
//! port = 25
//! smarthost = "smtp.provider.example:587"     # optional: everything through this host
//! smarthost_user = "user"                     # optional AUTH, only over TLS
//! smarthost_password = "secret"
//! [relay.routes]      # optional static routes, domain -> host:port
//! "partner.example" = "192.0.2.7:25"
//!
//! [queue]
//! retry = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]   # the last interval repeats
//! lifetime = "5d"     # then the message bounces
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
    /// Name resolution for outgoing mail.
    pub dns: DnsConfig,
    /// How outgoing mail reaches other servers.
    pub relay: RelayConfig,
    /// Retry schedule and lifetime of queued outgoing mail.
    pub queue: QueueConfig,
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
    /// How long credentials that passed are recognised without hashing them again (the
    /// login cache); zero turns it off.
    pub login_cache: Duration,
    /// Refuse incoming mail (port 25) whose DMARC check fails while the From domain publishes
    /// `p=reject` (RFC 7489 section 6.6.2), with `550 5.7.1` at the end of data; otherwise
    /// such mail is delivered and marked in its Authentication-Results header.
    pub dmarc_reject: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext: false,
            failure_delay: Duration::from_secs(1),
            max_failure_delay: Duration::from_secs(15),
            login_cache: Duration::from_secs(10 * 60),
            dmarc_reject: false,
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
    /// Logged-in IMAP sessions (IDLE included) silent this long are logged out. RFC 9051
    /// section 5.4: at least 30 minutes; clients renew IDLE every 29 minutes or so.
    pub imap_idle_timeout: Duration,
    /// POP3 sessions silent this long are closed. RFC 1939 section 3: at least 10 minutes.
    pub pop3_idle_timeout: Duration,
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
            imap_idle_timeout: Duration::from_secs(30 * 60),
            pop3_idle_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// `[dns]`: name resolution for outgoing mail (MX, A, AAAA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// The name server to ask (`ip` or `ip:port`, port 53 by default); `None` uses the
    /// system's resolvers (`/etc/resolv.conf`).
    pub resolver: Option<SocketAddr>,
}

/// A host name or IP address with a port, e.g. `smtp.provider.example:587`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name (lower-case) or IP address, without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `[relay]`: how outgoing mail reaches other servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Port of remote MX hosts (25; tests point it elsewhere).
    pub port: u16,
    /// Send all outgoing mail through this host instead of the recipients' MX hosts.
    pub smarthost: Option<HostPort>,
    /// AUTH credentials for the smarthost (user, password); only ever sent over TLS.
    pub smarthost_auth: Option<(String, String)>,
    /// Static routes: recipient domain (lower-case) to the host that takes its mail.
    pub routes: std::collections::BTreeMap<String, HostPort>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig { port: 25, smarthost: None, smarthost_auth: None, routes: Default::default() }
    }
}

/// `[queue]`: when queued outgoing mail is tried again, and when it is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Waits between delivery attempts; the last one repeats. Never empty.
    pub retry: Vec<Duration>,
    /// Age at which a message that still could not be delivered bounces.
    pub lifetime: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        QueueConfig {
            retry: vec![m(1), m(5), m(15), m(30), m(60), m(120), m(240)],
            lifetime: Duration::from_secs(5 * 86400),
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
            dns: DnsConfig::default(),
            relay: RelayConfig::default(),
            queue: QueueConfig::default(),
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
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    relay: RawRelay,
    #[serde(default)]
    queue: RawQueue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    resolver: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    port: Option<Spanned<i64>>,
    smarthost: Option<Spanned<String>>,
    smarthost_user: Option<Spanned<String>>,
    smarthost_password: Option<Spanned<String>>,
    routes: Option<std::collections::BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    retry: Option<Spanned<Vec<Spanned<String>>>>,
    lifetime: Option<Spanned<String>>,
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
    login_cache: Option<Spanned<String>>,
    dmarc_reject: Option<bool>,
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
    imap_idle_timeout: Option<Spanned<String>>,
    pop3_idle_timeout: Option<Spanned<String>>,
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
        let dns = self.dns(raw.dns)?;
        let relay = self.relay(raw.relay)?;
        let queue = self.queue(raw.queue)?;
        Ok(Config { hostname, data_dir, max_message_size, listen, tls, auth, limits, dns, relay, queue })
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
            login_cache: self.duration("auth.login_cache", raw.login_cache, d.login_cache)?,
            dmarc_reject: raw.dmarc_reject.unwrap_or(d.dmarc_reject),
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

    fn dns(&self, raw: RawDns) -> Result<DnsConfig, ConfigError> {
        let Some(v) = raw.resolver else { return Ok(DnsConfig::default()) };
        let text = v.get_ref().trim();
        let addr = text
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
            .ok_or_else(|| {
                self.invalid(
                    "dns.resolver",
                    Some(v.span()),
                    format!("{:?} is not an ip or ip:port address (e.g. \"127.0.0.1:53\")", v.get_ref()),
                )
            })?;
        if addr.port() == 0 {
            return Err(self.invalid("dns.resolver", Some(v.span()), "port 0 is not a port".to_owned()));
        }
        Ok(DnsConfig { resolver: Some(addr) })
    }

    fn relay(&self, raw: RawRelay) -> Result<RelayConfig, ConfigError> {
        let mut relay = RelayConfig::default();
        if let Some(p) = raw.port {
            relay.port = match u16::try_from(*p.get_ref()) {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(self.invalid(
                        "relay.port",
                        Some(p.span()),
                        format!("{} is not a port (1 to 65535)", p.get_ref()),
                    ));
                }
            };
        }
        if let Some(v) = raw.smarthost {
            relay.smarthost = Some(self.host_port("relay.smarthost", &v)?);
        }
        match (raw.smarthost_user, raw.smarthost_password) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                if relay.smarthost.is_none() {
                    return Err(self.invalid(
                        "relay.smarthost_user",
                        Some(user.span()),
                        "set, but relay.smarthost is not".to_owned(),
                    ));
                }
                if user.get_ref().is_empty() {
                    return Err(self.invalid(
                        "relay.smarthost_user",
                        Some(user.span()),
                        "must not be empty".to_owned(),
                    ));
                }
                relay.smarthost_auth = Some((user.into_inner(), password.into_inner()));
            }
            (Some(user), None) => {
                return Err(self.invalid(
                    "relay.smarthost_password",
                    Some(user.span()),
                    "missing: relay.smarthost_user is set, so relay.smarthost_password must be set too"
                        .to_owned(),
                ));
            }
            (None, Some(password)) => {
                return Err(self.invalid(
                    "relay.smarthost_user",
                    Some(password.span()),
                    "missing: relay.smarthost_password is set, so relay.smarthost_user must be set too"
                        .to_owned(),
                ));
            }
        }
        for (domain, target) in raw.routes.unwrap_or_default() {
            let key = format!("relay.routes.{domain:?}");
            check_hostname(&domain).map_err(|m| self.invalid(&key, Some(target.span()), m))?;
            let target = self.host_port(&key, &target)?;
            if relay.routes.insert(domain.to_ascii_lowercase(), target).is_some() {
                return Err(self.invalid(
                    &key,
                    None,
                    "given twice (domains are case-insensitive)".to_owned(),
                ));
            }
        }
        Ok(relay)
    }

    /// Parses `host:port`: `name:port`, `1.2.3.4:port` or `[v6]:port`; the port is required.
    fn host_port(&self, key: &str, v: &Spanned<String>) -> Result<HostPort, ConfigError> {
        let text = v.get_ref().trim();
        let bad = |detail: &str| {
            self.invalid(
                key,
                Some(v.span()),
                format!("{text:?} {detail} (expected host:port, e.g. \"smtp.example.net:587\")"),
            )
        };
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(bad("has port 0"));
            }
            return Ok(HostPort { host: addr.ip().to_string(), port: addr.port() });
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(bad("has no port"));
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("has no valid port")),
        };
        check_hostname(host).map_err(|m| self.invalid(key, Some(v.span()), m))?;
        Ok(HostPort { host: host.to_ascii_lowercase(), port })
    }

    fn queue(&self, raw: RawQueue) -> Result<QueueConfig, ConfigError> {
        let d = QueueConfig::default();
        let retry = match raw.retry {
            None => d.retry,
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.invalid(
                        "queue.retry",
                        Some(list.span()),
                        "must list at least one interval".to_owned(),
                    ));
                }
                let mut out = Vec::new();
                for (i, v) in list.into_inner().into_iter().enumerate() {
                    let key = format!("queue.retry[{i}]");
                    let span = v.span();
                    let interval = self.duration(&key, Some(v), Duration::ZERO)?;
                    if interval < Duration::from_secs(1) {
                        return Err(self.invalid(&key, Some(span), "must be at least 1s".to_owned()));
                    }
                    out.push(interval);
                }
                out
            }
        };
        let span = raw.lifetime.as_ref().map(Spanned::span);
        let lifetime = self.duration("queue.lifetime", raw.lifetime, d.lifetime)?;
        if lifetime < Duration::from_secs(1) {
            return Err(self.invalid("queue.lifetime", span, "must be at least 1s".to_owned()));
        }
        Ok(QueueConfig { retry, lifetime })
    }

    fn limits(&self, raw: RawLimits) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let line_span = raw.smtp_line.as_ref().map(Spanned::span);
        let timeout_spans = [
            ("limits.command_timeout", raw.command_timeout.as_ref().map(Spanned::span)),
            ("limits.imap_idle_timeout", raw.imap_idle_timeout.as_ref().map(Spanned::span)),
            ("limits.pop3_idle_timeout", raw.pop3_idle_timeout.as_ref().map(Spanned::span)),
        ];
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
            imap_idle_timeout: self.duration(
                "limits.imap_idle_timeout",
                raw.imap_idle_timeout,
                d.imap_idle_timeout,
            )?,
            pop3_idle_timeout: self.duration(
                "limits.pop3_idle_timeout",
                raw.pop3_idle_timeout,
                d.pop3_idle_timeout,
            )?,
        };
        if limits.smtp_line < MIN_SMTP_LINE {
            return Err(self.invalid(
                "limits.smtp_line",
                line_span,
                format!("{} is below {MIN_SMTP_LINE}, the minimum RFC 5321 requires", limits.smtp_line),
            ));
        }
        let values = [limits.command_timeout, limits.imap_idle_timeout, limits.pop3_idle_timeout];
        for ((key, span), value) in timeout_spans.into_iter().zip(values) {
            if value.is_zero() {
                return Err(self.invalid(key, span, "must be greater than zero".to_owned()));
            }
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
login_cache = "0s"
dmarc_reject = true

[limits]
connections = 100
connections_per_ip = 5
recipients = 250
smtp_line = 1000
command_timeout = "10m"
imap_idle_timeout = "45m"
pop3_idle_timeout = "20s"
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
                login_cache: Duration::ZERO,
                dmarc_reject: true,
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
                imap_idle_timeout: Duration::from_secs(45 * 60),
                pop3_idle_timeout: Duration::from_secs(20),
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
        assert!(!c.auth.dmarc_reject);
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
        for key in ["command_timeout", "imap_idle_timeout", "pop3_idle_timeout"] {
            let e = err(&format!("[limits]\n{key} = \"0s\"\n"));
            assert!(e.starts_with(&format!("config: limits.{key}: ")), "{e}");
        }
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
    #[test]
    fn outbound_tables_parse() {
        let c = Config::from_toml_str(
            r#"
[dns]
resolver = "127.0.0.1:5353"
[relay]
port = 2525
smarthost = "SMTP.Provider.example:587"
smarthost_user = "me@provider.example"
smarthost_password = "secret"
[relay.routes]
"Partner.example" = "192.0.2.7:25"
"v6.example" = "[2001:db8::1]:2525"
"named.example" = "mx.partner.example:26"
[queue]
retry = ["1s", "2m", "1h"]
lifetime = "3d"
"#,
        )
        .expect("outbound config");
        assert_eq!(c.dns.resolver, Some(addr("127.0.0.1:5353")));
        assert_eq!(c.relay.port, 2525);
        assert_eq!(c.relay.smarthost, Some(HostPort { host: "smtp.provider.example".into(), port: 587 }));
        assert_eq!(c.relay.smarthost_auth, Some(("me@provider.example".into(), "secret".into())));
        let routes: Vec<_> = c.relay.routes.iter().map(|(d, t)| (d.as_str(), t.to_string())).collect();
        assert_eq!(
            routes,
            [
                ("named.example", "mx.partner.example:26".to_string()),
                ("partner.example", "192.0.2.7:25".to_string()),
                ("v6.example", "[2001:db8::1]:2525".to_string()),
            ]
        );
        assert_eq!(
            c.queue.retry,
            [Duration::from_secs(1), Duration::from_secs(120), Duration::from_secs(3600)]
        );
        assert_eq!(c.queue.lifetime, Duration::from_secs(3 * 86400));

        let c = Config::from_toml_str("[dns]\nresolver = \"::1\"\n").expect("bare ip");
        assert_eq!(c.dns.resolver, Some(addr("[::1]:53")));
    }

    #[test]
    fn outbound_defaults() {
        let c = Config::from_toml_str("").expect("empty config");
        assert_eq!(c.dns, DnsConfig { resolver: None });
        assert_eq!(c.relay, RelayConfig::default());
        assert_eq!(c.relay.port, 25);
        assert!(c.relay.smarthost.is_none() && c.relay.routes.is_empty());
        let minutes: Vec<u64> = c.queue.retry.iter().map(|d| d.as_secs() / 60).collect();
        assert_eq!(minutes, [1, 5, 15, 30, 60, 120, 240]);
        assert_eq!(c.queue.lifetime, Duration::from_secs(5 * 86400));
        assert_eq!(Config::default_quickstart().queue, QueueConfig::default());
    }

    #[test]
    fn bad_outbound_values_name_the_key() {
        let cases = [
            ("[dns]\nresolver = \"dns.example\"\n", "dns.resolver"),
            ("[dns]\nresolver = \"127.0.0.1:0\"\n", "dns.resolver"),
            ("[relay]\nport = 0\n", "relay.port"),
            ("[relay]\nport = 70000\n", "relay.port"),
            ("[relay]\nsmarthost = \"smtp.example\"\n", "relay.smarthost"),
            ("[relay]\nsmarthost = \"smtp.example:0\"\n", "relay.smarthost"),
            ("[relay]\nsmarthost = \"bad_host:25\"\n", "relay.smarthost"),
            ("[relay]\nsmarthost_user = \"u\"\nsmarthost_password = \"p\"\n", "relay.smarthost_user"),
            ("[relay]\nsmarthost = \"s.example:587\"\nsmarthost_user = \"u\"\n", "relay.smarthost_password"),
            ("[relay]\nsmarthost = \"s.example:587\"\nsmarthost_password = \"p\"\n", "relay.smarthost_user"),
            ("[relay.routes]\n\"partner.example\" = \"10.0.0.1\"\n", "relay.routes.\"partner.example\""),
            ("[relay.routes]\n\"bad domain\" = \"10.0.0.1:25\"\n", "relay.routes.\"bad domain\""),
            ("[queue]\nretry = []\n", "queue.retry"),
            ("[queue]\nretry = [\"1m\", \"5\"]\n", "queue.retry[1]"),
            ("[queue]\nretry = [\"500ms\"]\n", "queue.retry[0]"),
            ("[queue]\nlifetime = \"0s\"\n", "queue.lifetime"),
            ("[queue]\nlifetime = \"5 days\"\n", "queue.lifetime"),
        ];
        for (toml, key) in cases {
            let e = err(toml);
            assert!(e.starts_with(&format!("config: {key}: ")), "{toml:?}: {e}");
        }
        for table in ["dns", "relay", "queue", "relay.routes"] {
            let e = err(&format!("[{table}]\nbogus_key = 1\n"));
            assert!(e.contains("bogus_key") || table == "relay.routes", "[{table}]: {e}");
        }
        let e = err("[relay]\nsource = \"192.0.2.1\"\n");
        assert!(e.contains("source"), "{e}");
    }
}
