//! Mail client settings and the files that carry them to programs: Thunderbird's autoconfig
//! (`config-v1.1.xml`), Outlook's Autodiscover (POX) and Apple's configuration profile
//! (`.mobileconfig`). Pure functions of the configured host name and listener ports, so the
//! settings page and every file always say the same.
//!
//! Formats:
//! - Thunderbird: <https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat>
//!   (`clientConfig version="1.1"`, `incomingServer type="imap|pop3"`,
//!   `outgoingServer type="smtp"`, `socketType` `SSL` or `STARTTLS`, `%EMAILADDRESS%`).
//! - Outlook: `[MS-OXDSCLI]` POX responses in the
//!   `http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a`
//!   namespace, one `Protocol` per service (`IMAP`, `POP3`, `SMTP`) with `Server`, `Port`,
//!   `LoginName`, `SSL` and, for STARTTLS, `Encryption` `TLS` (which overrides `SSL`).
//! - Apple: a `Configuration` profile holding one `com.apple.mail.managed` payload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::RwLock;

use postamt_config::Config;

/// The ports postamt actually listens on, by service name (`imap`, `imaps`, `pop3`, ...): the
/// configured ports, or for port 0 the ones the system picked. Filled by the server as it
/// binds its listeners; read on every request.
#[derive(Debug, Default)]
pub struct Ports {
    inner: RwLock<BTreeMap<String, u16>>,
}

impl Ports {
    pub fn new() -> Ports {
        Ports::default()
    }

    /// Records the port of a service's listener; the first one recorded for a service is the
    /// one shown to users.
    pub fn record(&self, service: &str, port: u16) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.entry(service.to_string()).or_insert(port);
    }

    pub fn get(&self, service: &str) -> Option<u16> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).get(service).copied()
    }
}

/// How a client secures a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (993, 995, 465).
    Tls,
    /// Plain connection upgraded with STARTTLS/STLS (143, 110, 587).
    StartTls,
}

impl Security {
    /// Thunderbird's `socketType`.
    pub fn socket_type(self) -> &'static str {
        match self {
            Security::Tls => "SSL",
            Security::StartTls => "STARTTLS",
        }
    }

    /// How mail programs label it.
    pub fn label(self) -> &'static str {
        match self {
            Security::Tls => "SSL/TLS",
            Security::StartTls => "STARTTLS",
        }
    }
}

/// One way to reach a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

/// Everything a mail program needs, best choice first in each list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The public host name (`hostname` in the configuration).
    pub hostname: String,
    pub imap: Vec<Endpoint>,
    pub pop3: Vec<Endpoint>,
    /// Submission: 465 (TLS) and 587 (STARTTLS); never port 25.
    pub smtp: Vec<Endpoint>,
}

impl ClientSettings {
    /// The settings for the running server. Implicit TLS comes first (RFC 8314 recommends it).
    pub fn new(config: &Config, ports: &Ports) -> ClientSettings {
        let list = |pairs: [(&str, Security); 2]| -> Vec<Endpoint> {
            pairs
                .into_iter()
                .filter_map(|(service, security)| ports.get(service).map(|port| Endpoint { port, security }))
                .collect()
        };
        ClientSettings {
            hostname: config.hostname.clone(),
            imap: list([("imaps", Security::Tls), ("imap", Security::StartTls)]),
            pop3: list([("pop3s", Security::Tls), ("pop3", Security::StartTls)]),
            smtp: list([("submissions", Security::Tls), ("submission", Security::StartTls)]),
        }
    }
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even as references.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// A syntactically plausible mail address (what the autoconfiguration endpoints echo back),
/// lower-cased; `None` for anything else. Existence is never checked: these endpoints answer
/// the same for every address, so they reveal nothing.
pub fn plausible_address(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && s.len() <= 320
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '&'))
        && s.matches('@').count() == 1;
    ok.then(|| s.to_lowercase())
}

/// Thunderbird's autoconfig file. `domain` is the mail domain asked about (the `<domain>`
/// and provider id); `domains` all local domains, listed so one file serves them all.
pub fn thunderbird(settings: &ClientSettings, domain: &str, domains: &[String]) -> String {
    let mut x = String::new();
    let domain = xml_escape(domain);
    let host = xml_escape(&settings.hostname);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    let _ = writeln!(x, "  <emailProvider id=\"{domain}\">");
    let _ = writeln!(x, "    <domain>{domain}</domain>");
    for d in domains {
        let d = xml_escape(d);
        if d != domain {
            let _ = writeln!(x, "    <domain>{d}</domain>");
        }
    }
    let _ = writeln!(x, "    <displayName>{domain} (postamt)</displayName>");
    let _ = writeln!(x, "    <displayShortName>{domain}</displayShortName>");
    let server = |x: &mut String, tag: &str, kind: &str, e: &Endpoint| {
        let _ = writeln!(x, "    <{tag} type=\"{kind}\">");
        let _ = writeln!(x, "      <hostname>{host}</hostname>");
        let _ = writeln!(x, "      <port>{}</port>", e.port);
        let _ = writeln!(x, "      <socketType>{}</socketType>", e.security.socket_type());
        let _ = writeln!(x, "      <authentication>password-cleartext</authentication>");
        let _ = writeln!(x, "      <username>%EMAILADDRESS%</username>");
        let _ = writeln!(x, "    </{tag}>");
    };
    for e in &settings.imap {
        server(&mut x, "incomingServer", "imap", e);
    }
    for e in &settings.pop3 {
        server(&mut x, "incomingServer", "pop3", e);
    }
    for e in &settings.smtp {
        server(&mut x, "outgoingServer", "smtp", e);
    }
    x.push_str("  </emailProvider>\n</clientConfig>\n");
    x
}

/// The namespaces of an Autodiscover POX response.
pub const AUTODISCOVER_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
pub const AUTODISCOVER_OUTLOOK_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// The address in an Autodiscover request (`<Autodiscover><Request><EMailAddress>`), with or
/// without a namespace prefix on the element. `None` when there is none or it is implausible.
pub fn autodiscover_request_address(body: &str) -> Option<String> {
    let start_tag = body.find("EMailAddress>")?;
    let rest = &body[start_tag + "EMailAddress>".len()..];
    let end = rest.find("</")?;
    plausible_address(&rest[..end])
}

/// An Autodiscover POX answer for `address`: the first (preferred) endpoint of each service.
pub fn autodiscover(settings: &ClientSettings, address: &str) -> String {
    let mut x = String::new();
    let host = xml_escape(&settings.hostname);
    let login = xml_escape(address);
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(x, "<Autodiscover xmlns=\"{AUTODISCOVER_NS}\">");
    let _ = writeln!(x, "  <Response xmlns=\"{AUTODISCOVER_OUTLOOK_NS}\">");
    x.push_str("    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n");
    let services =
        [("IMAP", settings.imap.first()), ("POP3", settings.pop3.first()), ("SMTP", settings.smtp.first())];
    for (kind, endpoint) in services {
        let Some(e) = endpoint else { continue };
        x.push_str("      <Protocol>\n");
        let _ = writeln!(x, "        <Type>{kind}</Type>");
        let _ = writeln!(x, "        <Server>{host}</Server>");
        let _ = writeln!(x, "        <Port>{}</Port>", e.port);
        let _ = writeln!(x, "        <LoginName>{login}</LoginName>");
        x.push_str("        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n");
        x.push_str("        <SSL>on</SSL>\n");
        let encryption = match e.security {
            Security::Tls => "SSL",
            Security::StartTls => "TLS",
        };
        let _ = writeln!(x, "        <Encryption>{encryption}</Encryption>");
        x.push_str("        <AuthRequired>on</AuthRequired>\n");
        if kind == "SMTP" {
            x.push_str("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n");
        }
        x.push_str("      </Protocol>\n");
    }
    x.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    x
}

/// An Autodiscover error answer (code 600, "Invalid Request"), for requests without a usable
/// address.
pub fn autodiscover_error() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{AUTODISCOVER_NS}\">\n  \
         <Response>\n    <Error Time=\"00:00:00\" Id=\"0\">\n      <ErrorCode>600</ErrorCode>\n      \
         <Message>Invalid Request</Message>\n      <DebugData />\n    </Error>\n  </Response>\n\
         </Autodiscover>\n"
    )
}

/// A random version 4 UUID in upper-case text form (profiles need unique payload ids).
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|v| format!("{v:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Reverses a host name for payload identifiers: `mail.example.org` → `org.example.mail`.
fn reverse_dns(host: &str) -> String {
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

/// An Apple configuration profile (`.mobileconfig`) setting up one mail account: IMAP when
/// offered (else POP3) and SMTP submission, each with its preferred endpoint. The password is
/// not included: the device asks for it (an app password is the right thing to type there).
pub fn mobileconfig(settings: &ClientSettings, address: &str) -> String {
    let host = xml_escape(&settings.hostname);
    let addr = xml_escape(address);
    let ident = xml_escape(&reverse_dns(&settings.hostname));
    let (incoming_type, incoming) = match (settings.imap.first(), settings.pop3.first()) {
        (Some(e), _) => ("EmailTypeIMAP", Some(e)),
        (None, Some(e)) => ("EmailTypePOP", Some(e)),
        (None, None) => ("EmailTypeIMAP", None),
    };
    let mut x = String::new();
    x.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n",
    );
    x.push_str("  <key>PayloadContent</key>\n  <array>\n    <dict>\n");
    let kv = |x: &mut String, key: &str, value: &str| {
        let _ = writeln!(x, "      <key>{key}</key>\n      <string>{value}</string>");
    };
    let kb = |x: &mut String, key: &str, value: bool| {
        let _ = writeln!(x, "      <key>{key}</key>\n      <{}/>", if value { "true" } else { "false" });
    };
    let ki = |x: &mut String, key: &str, value: u16| {
        let _ = writeln!(x, "      <key>{key}</key>\n      <integer>{value}</integer>");
    };
    kv(&mut x, "EmailAccountDescription", &addr);
    kv(&mut x, "EmailAccountName", &addr);
    kv(&mut x, "EmailAccountType", incoming_type);
    kv(&mut x, "EmailAddress", &addr);
    kv(&mut x, "IncomingMailServerAuthentication", "EmailAuthPassword");
    kv(&mut x, "IncomingMailServerHostName", &host);
    if let Some(e) = incoming {
        ki(&mut x, "IncomingMailServerPortNumber", e.port);
    }
    // Apple's UseSSL means "use TLS", implicit or by STARTTLS, whichever the port speaks.
    kb(&mut x, "IncomingMailServerUseSSL", true);
    kv(&mut x, "IncomingMailServerUsername", &addr);
    kv(&mut x, "OutgoingMailServerAuthentication", "EmailAuthPassword");
    kv(&mut x, "OutgoingMailServerHostName", &host);
    if let Some(e) = settings.smtp.first() {
        ki(&mut x, "OutgoingMailServerPortNumber", e.port);
    }
    kb(&mut x, "OutgoingMailServerUseSSL", true);
    kv(&mut x, "OutgoingMailServerUsername", &addr);
    kb(&mut x, "OutgoingPasswordSameAsIncomingPassword", true);
    kv(&mut x, "PayloadDescription", &format!("Mail account {addr}"));
    kv(&mut x, "PayloadDisplayName", &addr);
    kv(&mut x, "PayloadIdentifier", &format!("{ident}.postamt.mail.{}", uuid_v4()));
    kv(&mut x, "PayloadType", "com.apple.mail.managed");
    kv(&mut x, "PayloadUUID", &uuid_v4());
    let _ = writeln!(x, "      <key>PayloadVersion</key>\n      <integer>1</integer>");
    kb(&mut x, "SMIMEEnabled", false);
    x.push_str("    </dict>\n  </array>\n");
    let top = |x: &mut String, key: &str, value: &str| {
        let _ = writeln!(x, "  <key>{key}</key>\n  <string>{value}</string>");
    };
    top(&mut x, "PayloadDescription", &format!("Mail settings for {addr} at {host}"));
    top(&mut x, "PayloadDisplayName", &format!("{addr} (postamt)"));
    top(&mut x, "PayloadIdentifier", &format!("{ident}.postamt.{}", uuid_v4()));
    top(&mut x, "PayloadOrganization", &host);
    x.push_str("  <key>PayloadRemovalDisallowed</key>\n  <false/>\n");
    top(&mut x, "PayloadType", "Configuration");
    top(&mut x, "PayloadUUID", &uuid_v4());
    x.push_str("  <key>PayloadVersion</key>\n  <integer>1</integer>\n</dict>\n</plist>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        let ports = Ports::new();
        for (service, port) in [("imaps", 993), ("imap", 143), ("pop3s", 995), ("submission", 587)] {
            ports.record(service, port);
        }
        ports.record("imaps", 1);
        let mut config = Config::default_quickstart();
        config.hostname = "mail.example.org".into();
        ClientSettings::new(&config, &ports)
    }

    #[test]
    fn settings_follow_the_listeners() {
        let s = settings();
        assert_eq!(
            s.imap,
            [
                Endpoint { port: 993, security: Security::Tls },
                Endpoint { port: 143, security: Security::StartTls }
            ]
        );
        assert_eq!(s.pop3, [Endpoint { port: 995, security: Security::Tls }]);
        assert_eq!(s.smtp, [Endpoint { port: 587, security: Security::StartTls }]);
    }

    #[test]
    fn thunderbird_file() {
        let x = thunderbird(&settings(), "example.org", &["example.org".into(), "other.test".into()]);
        assert!(x.contains("<emailProvider id=\"example.org\">"), "{x}");
        assert!(x.contains("<domain>other.test</domain>"), "{x}");
        assert_eq!(x.matches("<incomingServer type=\"imap\">").count(), 2);
        assert_eq!(x.matches("<incomingServer type=\"pop3\">").count(), 1);
        assert!(x.contains("<socketType>STARTTLS</socketType>"));
        assert!(x.contains("<username>%EMAILADDRESS%</username>"));
    }

    #[test]
    fn autodiscover_request_and_answer() {
        let req = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/\
                   autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>Me@Example.org\
                   </EMailAddress><AcceptableResponseSchema>x</AcceptableResponseSchema></Request>\
                   </Autodiscover>";
        assert_eq!(autodiscover_request_address(req).as_deref(), Some("me@example.org"));
        assert_eq!(
            autodiscover_request_address("<a:EMailAddress>x@y</a:EMailAddress>").as_deref(),
            Some("x@y")
        );
        assert_eq!(autodiscover_request_address("<EMailAddress>no address</EMailAddress>"), None);
        assert_eq!(autodiscover_request_address("garbage"), None);
        let x = autodiscover(&settings(), "me@example.org");
        assert!(
            x.contains("<Type>IMAP</Type>")
                && x.contains("<Type>POP3</Type>")
                && x.contains("<Type>SMTP</Type>")
        );
        assert!(x.contains("<Encryption>TLS</Encryption>"), "{x}");
    }

    #[test]
    fn profile_escapes_and_has_unique_ids() {
        let x = mobileconfig(&settings(), "a&b@example.org");
        assert!(x.contains("a&amp;b@example.org"));
        assert!(x.contains("<string>com.apple.mail.managed</string>"));
        let uuid = uuid_v4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_ne!(uuid, uuid_v4());
    }

    #[test]
    fn addresses() {
        assert_eq!(plausible_address(" A@B.test ").as_deref(), Some("a@b.test"));
        for bad in ["", "a", "@b", "a@", "a b@c", "<a@b>", "a@b@c"] {
            assert_eq!(plausible_address(bad), None, "{bad}");
        }
    }
}
