//! The web pages, the JSON API and the client autoconfiguration, over HTTP/1.1 against the
//! real server (plain on `http`, TLS on `https`), with a tiny HTTP client on the harness's
//! byte-level connection. App passwords and password resets are checked where they matter:
//! over IMAP, POP3 and SMTP submission.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

/// Every listener, web included.
fn web_config() -> String {
    format!("{ALL_LISTENERS}http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\n")
}

/// A server with alice@ and bob@ (plain accounts) and admin@ (admin role).
fn start() -> Server {
    start_with("")
}

fn start_with(extra: &str) -> Server {
    let server = Server::start_with(&format!("{}{extra}", web_config())).with_accounts();
    server.cli_ok(&["account", "add", "admin@example.test", "--password", PASSWORD, "--admin"]);
    server
}

// ---- a tiny HTTP client ----

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        self
    }
}

/// A browser-like client: keeps cookies, one connection per request.
struct Web {
    addr: SocketAddr,
    tls: bool,
    cookies: Vec<(String, String)>,
    extra: Vec<(String, String)>,
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

impl Web {
    fn https(server: &Server) -> Web {
        Web { addr: server.addr("https"), tls: true, cookies: vec![], extra: vec![] }
    }

    fn http(server: &Server) -> Web {
        Web { addr: server.addr("http"), tls: false, cookies: vec![], extra: vec![] }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut c = if self.tls { Client::connect_tls(self.addr) } else { Client::connect(self.addr) };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {HOSTNAME}\r\nConnection: close\r\n");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        for (k, v) in self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(headers.iter().copied())
        {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method != "GET" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        c.send(req.as_bytes());
        if !body.is_empty() {
            c.send(body);
        }
        let resp = read_response(&mut c);
        for set in resp.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("cookie pair");
            self.cookies.retain(|(k, _)| k != name);
            if !set.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        resp
    }

    fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, &[], b"")
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = form_encode(fields);
        self.send("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
    }

    /// GETs `page`, then posts its form (found by `action`) with its CSRF token and `fields`.
    fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let html = self.get(page).expect(200).text();
        let csrf = csrf_in(&html, action);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(action, &all)
    }

    fn json(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        self.send(method, path, &headers, body.as_bytes())
    }

    /// Logs in through the form; asserts it worked.
    fn login(&mut self, user: &str, password: &str) {
        let r = self.try_login(user, password);
        assert_eq!(r.status, 303, "login as {user}: {}", r.text());
        assert_eq!(r.header("location"), Some("/settings"));
    }

    fn try_login(&mut self, user: &str, password: &str) -> Resp {
        self.submit("/login", "/login", &[("address", user), ("password", password), ("next", "/")])
    }
}

fn read_response(c: &mut Client) -> Resp {
    let status_line = c.line();
    assert!(status_line.starts_with("HTTP/1.1 "), "status line {status_line:?}");
    let status = status_line[9..12].parse().expect("status");
    let mut headers = Vec::new();
    loop {
        let line = c.line();
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header");
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let find =
        |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = if let Some(len) = find("content-length") {
        c.bytes(len.parse().expect("length"))
    } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let size = usize::from_str_radix(c.line().trim(), 16).expect("chunk size");
            if size == 0 {
                let _ = c.line();
                break;
            }
            body.extend(c.bytes(size));
            let _ = c.line();
        }
        body
    } else {
        let mut body = Vec::new();
        loop {
            let l = c.raw_line();
            if l.is_empty() {
                break;
            }
            body.extend(l);
        }
        body
    };
    Resp { status, headers, body }
}

/// The CSRF token of the form posting to `action` on a page.
fn csrf_in(html: &str, action: &str) -> String {
    let form = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action} in {html}"));
    let rest = &html[form..];
    let at = rest.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    rest[at..].split('"').next().expect("token").to_string()
}

/// Polls until `f` returns something (mail arrives in the background).
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- mail protocol logins ----

fn imap_login_result(server: &Server, user: &str, password: &str) -> String {
    let mut c = Client::connect_tls(server.addr("imaps"));
    let greeting = c.imap_line();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let out = c.imap("L1", &format!("LOGIN {user} \"{password}\""));
    out.lines().last().unwrap_or_default().to_string()
}

fn pop3_login_result(server: &Server, user: &str, password: &str) -> String {
    let mut c = Client::connect_tls(server.addr("pop3s"));
    assert!(c.line().starts_with("+OK"));
    c.ok(&format!("USER {user}"), "+OK");
    c.cmd(&format!("PASS {password}"))
}

fn smtp_auth_result(server: &Server, user: &str, password: &str) -> String {
    let mut c = Client::connect(server.addr("submission"));
    assert!(c.reply().starts_with("220 "));
    c.ok("EHLO client.example", "250");
    c.ok("STARTTLS", "220");
    c.upgrade_tls();
    c.ok("EHLO client.example", "250");
    c.cmd(&format!("AUTH PLAIN {}", plain(user, password)))
}

// ---- automatic client configuration ----

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    node.children()
        .find(|n| n.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", node.tag_name().name()))
}

fn text_of(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    child(node, name).text().unwrap_or_default().to_string()
}

#[test]
fn thunderbird_autoconfig_follows_the_format() {
    let server = start();
    let mut web = Web::http(&server);
    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.test",
        "/mail/config-v1.1.xml?emailaddress=alice%40example.test",
    ] {
        let r = web.get(path);
        r.expect(200);
        assert!(r.header("content-type").is_some_and(|c| c.contains("xml")));
        let xml = r.text();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "clientConfig");
        assert_eq!(root.attribute("version"), Some("1.1"));
        let provider = child(root, "emailProvider");
        assert_eq!(provider.attribute("id"), Some("example.test"));
        assert_eq!(text_of(provider, "domain"), "example.test");
        assert!(!text_of(provider, "displayName").is_empty());
        let servers: Vec<(String, String, u16, String)> = provider
            .children()
            .filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
            .map(|n| {
                assert_eq!(text_of(n, "hostname"), HOSTNAME);
                assert_eq!(text_of(n, "username"), "%EMAILADDRESS%");
                assert_eq!(text_of(n, "authentication"), "password-cleartext");
                (
                    n.tag_name().name().to_string(),
                    n.attribute("type").unwrap_or_default().to_string(),
                    text_of(n, "port").parse().expect("port"),
                    text_of(n, "socketType"),
                )
            })
            .collect();
        let port = |s: &str| server.addr(s).port();
        let expected = [
            ("incomingServer", "imap", port("imaps"), "SSL"),
            ("incomingServer", "imap", port("imap"), "STARTTLS"),
            ("incomingServer", "pop3", port("pop3s"), "SSL"),
            ("incomingServer", "pop3", port("pop3"), "STARTTLS"),
            ("outgoingServer", "smtp", port("submissions"), "SSL"),
            ("outgoingServer", "smtp", port("submission"), "STARTTLS"),
        ];
        let expected: Vec<_> =
            expected.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), *c, d.to_string())).collect();
        assert_eq!(servers, expected, "{xml}");
    }
    // Without an address: the provider of the host name, still a complete file.
    let xml = web.get("/mail/config-v1.1.xml").expect(200).text();
    assert!(roxmltree::Document::parse(&xml).is_ok());
}

#[test]
fn outlook_autodiscover_follows_the_format() {
    let server = start();
    let mut web = Web::https(&server);
    let request = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
        <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
        <Request><EMailAddress>alice@example.test</EMailAddress>\
        <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\
        </AcceptableResponseSchema></Request></Autodiscover>";
    for path in ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"] {
        let r = web.send("POST", path, &[("Content-Type", "text/xml")], request.as_bytes());
        r.expect(200);
        let xml = r.text();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Autodiscover");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006")
        );
        let response = child(root, "Response");
        assert_eq!(
            response.tag_name().namespace(),
            Some("http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a")
        );
        let account = child(response, "Account");
        assert_eq!(text_of(account, "AccountType"), "email");
        assert_eq!(text_of(account, "Action"), "settings");
        let protocols: Vec<(String, String, u16, String, String, String)> = account
            .children()
            .filter(|n| n.has_tag_name("Protocol"))
            .map(|p| {
                (
                    text_of(p, "Type"),
                    text_of(p, "Server"),
                    text_of(p, "Port").parse().expect("port"),
                    text_of(p, "SSL"),
                    text_of(p, "Encryption"),
                    text_of(p, "LoginName"),
                )
            })
            .collect();
        let port = |s: &str| server.addr(s).port();
        let p = |t: &str, port: u16| {
            (
                t.to_string(),
                HOSTNAME.to_string(),
                port,
                "on".to_string(),
                "SSL".to_string(),
                "alice@example.test".to_string(),
            )
        };
        assert_eq!(
            protocols,
            [p("IMAP", port("imaps")), p("POP3", port("pop3s")), p("SMTP", port("submissions"))]
        );
    }
    // Unknown addresses are answered alike (nothing revealed); garbage gets error 600.
    let unknown = request.replace("alice@example.test", "nobody@example.test");
    let r = web.send(
        "POST",
        "/autodiscover/autodiscover.xml",
        &[("Content-Type", "text/xml")],
        unknown.as_bytes(),
    );
    assert!(r.expect(200).text().contains("<LoginName>nobody@example.test</LoginName>"));
    let r = web.send("POST", "/autodiscover/autodiscover.xml", &[("Content-Type", "text/xml")], b"<x/>");
    let xml = r.expect(200).text();
    let doc = roxmltree::Document::parse(&xml).expect("XML");
    let error = child(child(doc.root_element(), "Response"), "Error");
    assert_eq!(text_of(error, "ErrorCode"), "600");
}

/// The values of a plist `<dict>`, by key.
fn plist_dict<'a, 'i>(dict: roxmltree::Node<'a, 'i>) -> Vec<(String, roxmltree::Node<'a, 'i>)> {
    let elements: Vec<_> = dict.children().filter(|n| n.is_element()).collect();
    elements
        .chunks(2)
        .map(|kv| {
            assert!(kv[0].has_tag_name("key"), "plist dict must alternate key and value");
            (kv[0].text().unwrap_or_default().to_string(), kv[1])
        })
        .collect()
}

fn check_mobileconfig(server: &Server, profile: &str, address: &str) {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(profile, options).expect("plist XML");
    let plist = doc.root_element();
    assert_eq!(plist.tag_name().name(), "plist");
    let top = plist_dict(child(plist, "dict"));
    let get = |d: &[(String, roxmltree::Node<'_, '_>)], k: &str| -> String {
        let node = d.iter().find(|(key, _)| key == k).unwrap_or_else(|| panic!("no {k}")).1;
        node.text().unwrap_or(node.tag_name().name()).to_string()
    };
    assert_eq!(get(&top, "PayloadType"), "Configuration");
    assert_eq!(get(&top, "PayloadVersion"), "1");
    let content = top.iter().find(|(k, _)| k == "PayloadContent").expect("PayloadContent").1;
    let mail = plist_dict(child(content, "dict"));
    assert_eq!(get(&mail, "PayloadType"), "com.apple.mail.managed");
    assert_eq!(get(&mail, "EmailAccountType"), "EmailTypeIMAP");
    assert_eq!(get(&mail, "EmailAddress"), address);
    assert_eq!(get(&mail, "IncomingMailServerHostName"), HOSTNAME);
    assert_eq!(get(&mail, "IncomingMailServerPortNumber"), server.addr("imaps").port().to_string());
    assert_eq!(get(&mail, "IncomingMailServerUseSSL"), "true");
    assert_eq!(get(&mail, "IncomingMailServerUsername"), address);
    assert_eq!(get(&mail, "OutgoingMailServerHostName"), HOSTNAME);
    assert_eq!(get(&mail, "OutgoingMailServerPortNumber"), server.addr("submissions").port().to_string());
    assert_eq!(get(&mail, "IncomingMailServerAuthentication"), "EmailAuthPassword");
    assert_eq!(get(&mail, "PayloadUUID").len(), 36);
}

#[test]
fn apple_profiles() {
    let server = start();
    let mut web = Web::https(&server);
    let r = web.get("/mobileconfig?emailaddress=bob%40example.test");
    r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/x-apple-aspen-config"));
    check_mobileconfig(&server, &r.text(), "bob@example.test");
    web.get("/mobileconfig?emailaddress=not-an-address").expect(400);

    // The signed-in downloads: the profile and the Thunderbird file of the account.
    web.login("alice@example.test", PASSWORD);
    let r = web.get("/settings/postamt.mobileconfig");
    r.expect(200);
    assert!(r.header("content-disposition").is_some_and(|d| d.starts_with("attachment")));
    check_mobileconfig(&server, &r.text(), "alice@example.test");
    let r = web.get("/settings/thunderbird.xml");
    let doc =
        roxmltree::Document::parse(std::str::from_utf8(&r.expect(200).body).expect("utf-8")).expect("xml");
    assert_eq!(doc.root_element().tag_name().name(), "clientConfig");
}

// ---- signing in and the self-service pages ----

#[test]
fn login_settings_and_logout() {
    let server = start();
    let mut web = Web::https(&server);
    // Not signed in: the pages send to the login, remembering where to go back.
    let r = web.get("/account");
    r.expect(303);
    assert_eq!(r.header("location"), Some("/login?next=%2Faccount"));
    assert_eq!(web.get("/").header("location"), Some("/login"));

    // Wrong password and unknown address: the same answer, byte for byte.
    let wrong = web.try_login("alice@example.test", "not the password");
    let unknown = web.try_login("nobody@example.test", "not the password");
    wrong.expect(401);
    unknown.expect(401);
    assert!(wrong.text().contains("Wrong address or password."));
    assert_eq!(wrong.text().replace("alice@", "nobody@"), unknown.text());

    // Log in: a session cookie that scripts cannot read and other sites do not send.
    let r = web.submit(
        "/login",
        "/login",
        &[("address", "alice@example.test"), ("password", PASSWORD), ("next", "/account")],
    );
    r.expect(303);
    assert_eq!(r.header("location"), Some("/account"));
    let set = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Host-postamt_session="))
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(web.cookie("__Host-postamt_session").is_some_and(|v| v.len() == 43));

    // The settings page: host name, the real ports, security, the address as user name.
    let html = web.get("/settings").expect(200).text();
    for service in ["imaps", "imap", "pop3s", "pop3", "submissions", "submission"] {
        assert!(
            html.contains(&format!(">{}<", server.addr(service).port())),
            "{service} port missing: {html}"
        );
    }
    assert!(html.contains(HOSTNAME) && html.contains("SSL/TLS") && html.contains("STARTTLS"));
    assert!(html.contains("alice@example.test"));

    // The account page: quota and addresses, aliases included.
    server.cli_ok(&["alias", "add", "ali@example.test", "alice@example.test"]);
    server.cli_ok(&["quota", "set", "alice@example.test", "10M"]);
    deliver(&server, "alice@example.test", "Subject: hi\r\n\r\nhello\r\n");
    let html = web.get("/account").expect(200).text();
    assert!(html.contains("ali@example.test"), "{html}");
    assert!(html.contains("of 10 MiB used"), "{html}");
    assert!(html.contains("1 messages"), "{html}");

    // Log out: the session is gone on the server, not only the cookie.
    let session = web.cookie("__Host-postamt_session").expect("cookie").to_string();
    let html = web.get("/settings").text();
    let r = web.post_form("/logout", &[("csrf", &csrf_in(&html, "/logout"))]);
    r.expect(303);
    assert!(
        r.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("__Host-postamt_session=;") && c.contains("Max-Age=0"))
    );
    let mut replay = Web::https(&server);
    replay.cookies.push(("__Host-postamt_session".into(), session));
    assert_eq!(replay.get("/settings").status, 303);

    let log = server.log_text();
    assert!(log.contains("web login") && log.contains("web logout"), "{log}");
    assert!(log.contains("authentication failed"), "failed logins are logged");
}

#[test]
fn csrf_tokens_are_required() {
    let server = start();
    let mut web = Web::https(&server);
    // Log in without the form's token (or with another one): refused.
    web.get("/login").expect(200);
    web.post_form("/login", &[("address", "alice@example.test"), ("password", PASSWORD)]).expect(403);
    web.post_form(
        "/login",
        &[("csrf", "x".repeat(43).as_str()), ("address", "alice@example.test"), ("password", PASSWORD)],
    )
    .expect(403);
    // A forged request from another site has no cookie to match.
    let mut forger = Web::https(&server);
    let token = csrf_in(&web.get("/login").text(), "/login");
    forger
        .post_form("/login", &[("csrf", &token), ("address", "alice@example.test"), ("password", PASSWORD)])
        .expect(403);

    web.login("alice@example.test", PASSWORD);
    for (path, fields) in [
        (
            "/password",
            vec![
                ("current", PASSWORD),
                ("new", "another long passphrase"),
                ("repeat", "another long passphrase"),
            ],
        ),
        ("/app-passwords", vec![("label", "x")]),
        ("/recovery", vec![("recovery", "bob@example.test"), ("current", PASSWORD)]),
        ("/logout", vec![]),
    ] {
        web.post_form(path, &fields).expect(403);
        let mut with_wrong = vec![("csrf", "wrong")];
        with_wrong.extend(fields.iter().copied());
        web.post_form(path, &with_wrong).expect(403);
    }
    // Nothing changed: the password is the old one, the session still works.
    assert!(imap_login_result(&server, "alice@example.test", PASSWORD).starts_with("L1 OK"));
    web.get("/settings").expect(200);
    assert!(server.log_text().contains("CSRF token mismatch"));
}

#[test]
fn failed_logins_are_throttled_across_protocols() {
    let server = start_with("[auth]\nfailure_delay = \"100ms\"\nmax_failure_delay = \"5s\"\n");
    let mut web = Web::https(&server);
    let mut timings = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        web.try_login("alice@example.test", "wrong password").expect(401);
        timings.push(started.elapsed());
    }
    // 100 ms, 200 ms, 400 ms: the delay doubles.
    assert!(timings[2] >= Duration::from_millis(380), "{timings:?}");
    // The fourth failure, over IMAP from the same address, waits 800 ms: one shared throttle.
    let started = Instant::now();
    assert!(imap_login_result(&server, "alice@example.test", "wrong").starts_with("L1 NO"));
    assert!(started.elapsed() >= Duration::from_millis(750), "{:?}", started.elapsed());
    // A success clears it: the next failure waits 100 ms again, not 1600 ms.
    web.login("alice@example.test", PASSWORD);
    let mut again = Web::https(&server);
    again.get("/login").expect(200);
    let started = Instant::now();
    again.try_login("alice@example.test", "wrong password").expect(401);
    assert!(started.elapsed() < Duration::from_millis(1200), "{:?}", started.elapsed());
}

#[test]
fn change_password() {
    let server = start();
    let mut web = Web::https(&server);
    web.login("alice@example.test", PASSWORD);
    let mut other = Web::https(&server);
    other.login("alice@example.test", PASSWORD);

    let html = web.get("/password").expect(200).text();
    assert!(html.contains("at least 10 characters"), "the rules are explained: {html}");
    let change = |web: &mut Web, current: &str, new: &str, repeat: &str| {
        web.submit("/password", "/password", &[("current", current), ("new", new), ("repeat", repeat)])
    };
    let r = change(&mut web, "not it", "a brand new passphrase", "a brand new passphrase");
    assert!(r.expect(403).text().contains("The current password is wrong."));
    for (new, message) in [
        ("short", "too short"),
        ("password123", "too common"),
        ("alice@example.test", "must not be the mail address"),
    ] {
        assert!(change(&mut web, PASSWORD, new, new).expect(400).text().contains(message), "{new}");
    }
    assert!(
        change(&mut web, PASSWORD, "a brand new passphrase", "a different one!!")
            .expect(400)
            .text()
            .contains("differ")
    );

    let r = change(&mut web, PASSWORD, "a brand new passphrase", "a brand new passphrase");
    r.expect(303);
    assert!(web.get("/password?done=changed").text().contains("Your password is changed."));
    // The old password is refused everywhere, the new one works; other sessions are over.
    assert!(imap_login_result(&server, "alice@example.test", PASSWORD).starts_with("L1 NO"));
    assert!(imap_login_result(&server, "alice@example.test", "a brand new passphrase").starts_with("L1 OK"));
    assert!(smtp_auth_result(&server, "alice@example.test", "a brand new passphrase").starts_with("235"));
    assert_eq!(other.get("/settings").status, 303);
    web.get("/settings").expect(200);
    assert!(server.log_text().contains("password changed"));
}

#[test]
fn app_passwords_work_for_imap_pop3_and_submission() {
    let server = start();
    let mut web = Web::https(&server);
    web.login("alice@example.test", PASSWORD);
    let html = web.submit("/app-passwords", "/app-passwords", &[("label", "Phone")]).expect(200).text();
    let start = html.find("id=\"new-app-password\">").expect("shown once") + "id=\"new-app-password\">".len();
    let app = html[start..].split('<').next().expect("password").to_string();
    assert_eq!(app.len(), 29, "{app}");
    assert!(html.contains("App password for “Phone”"));
    // Not shown again.
    assert!(!web.get("/app-passwords").text().contains(&app));

    assert!(imap_login_result(&server, "alice@example.test", &app).starts_with("L1 OK"));
    assert!(pop3_login_result(&server, "alice@example.test", &app).starts_with("+OK"));
    assert!(smtp_auth_result(&server, "alice@example.test", &app).starts_with("235"));
    // Typed without dashes, in capitals: the same password.
    let retyped = app.replace('-', "").to_uppercase();
    assert!(imap_login_result(&server, "alice@example.test", &retyped).starts_with("L1 OK"));
    // Another account's app password, and the web login, are not for it.
    assert!(imap_login_result(&server, "bob@example.test", &app).starts_with("L1 NO"));
    let mut browser = Web::https(&server);
    browser.try_login("alice@example.test", &app).expect(401);
    // The main password still works too.
    assert!(imap_login_result(&server, "alice@example.test", PASSWORD).starts_with("L1 OK"));

    // Listed with its last use; revoked, it is refused.
    let html = web.get("/app-passwords").expect(200).text();
    assert!(html.contains("Phone") && !html.contains(">never<"), "{html}");
    let at = html.find("/app-passwords/").expect("revoke form");
    let action = html[at..].split('"').next().expect("action").to_string();
    let r = web.post_form(&action, &[("csrf", &csrf_in(&html, &action))]);
    r.expect(303);
    assert!(web.get("/app-passwords?done=revoked").text().contains("revoked"));
    assert!(imap_login_result(&server, "alice@example.test", &app).starts_with("L1 NO"));
    assert!(pop3_login_result(&server, "alice@example.test", &app).starts_with("-ERR"));
    assert!(smtp_auth_result(&server, "alice@example.test", &app).starts_with("535"));
    // bob cannot revoke alice's app passwords.
    let html = web.submit("/app-passwords", "/app-passwords", &[("label", "Laptop")]).expect(200).text();
    let at = html.find("/app-passwords/").expect("revoke form");
    let action = html[at..].split('"').next().expect("action").to_string();
    let mut bob = Web::https(&server);
    bob.login("bob@example.test", PASSWORD);
    let bob_html = bob.get("/app-passwords").text();
    bob.post_form(&action, &[("csrf", &csrf_in(&bob_html, "/app-passwords"))]).expect(404);
}

// ---- password reset ----

/// The reset link's path from the newest mail in `address`'s INBOX that has one.
fn reset_link(server: &Server, address: &str, count: usize) -> String {
    let mail = wait_for("the reset mail", || {
        let inbox = server.inbox(address);
        (inbox.len() >= count).then(|| String::from_utf8_lossy(&inbox[count - 1]).to_string())
    });
    assert!(mail.contains("From: postamt <postmaster@mx.test.example>"), "{mail}");
    assert!(mail.contains("Auto-Submitted: auto-generated"));
    let url_start =
        mail.find(&format!("https://{HOSTNAME}:{}/reset/", server.addr("https").port())).expect("link");
    let url = mail[url_start..].split_whitespace().next().expect("url");
    url[url.find("/reset/").expect("path")..].to_string()
}

#[test]
fn reset_password_by_mail() {
    let server = start();
    let mut web = Web::https(&server);
    web.login("alice@example.test", PASSWORD);
    // The recovery address needs the current password.
    let r = web.submit("/account", "/recovery", &[("recovery", "bob@example.test"), ("current", "wrong")]);
    assert!(r.expect(403).text().contains("The current password is wrong."));
    let r = web.submit("/account", "/recovery", &[("recovery", "alice@example.test"), ("current", PASSWORD)]);
    r.expect(400);
    web.submit("/account", "/recovery", &[("recovery", "bob@example.test"), ("current", PASSWORD)])
        .expect(303);
    assert!(web.get("/account?done=recovery").text().contains("value=\"bob@example.test\""));

    // Asking: the same page for an account with recovery address, one without, and nobody.
    let mut anon = Web::https(&server);
    let mut answers = Vec::new();
    for address in ["alice@example.test", "bob@example.test", "nobody@example.test", "x@elsewhere.example"] {
        let started = Instant::now();
        let r = anon.submit("/forgot", "/forgot", &[("address", address)]);
        answers.push((r.status, r.text(), started.elapsed()));
    }
    for (status, text, elapsed) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(text, &answers[0].1, "the answers must not differ");
        assert!(*elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
    assert!(answers[0].1.contains("If this address has an account"));

    let path = reset_link(&server, "bob@example.test", 1);
    // Only one mail: the others had no recovery address.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.inbox("bob@example.test").len(), 1);

    // Follow the link in a fresh browser (as from a mail program), set a new password.
    let mut browser = Web::https(&server);
    let html = browser.get(&path).expect(200).text();
    assert!(html.contains("alice@example.test"));
    let weak = browser.submit(&path, &path, &[("new", "short"), ("repeat", "short")]);
    assert!(weak.expect(400).text().contains("too short"));
    let r =
        browser.submit(&path, &path, &[("new", "recovered passphrase"), ("repeat", "recovered passphrase")]);
    r.expect(303);
    assert_eq!(r.header("location"), Some("/login?done=reset"));
    // The old password is refused, the new one works, the old session is over.
    assert!(imap_login_result(&server, "alice@example.test", PASSWORD).starts_with("L1 NO"));
    assert!(imap_login_result(&server, "alice@example.test", "recovered passphrase").starts_with("L1 OK"));
    assert_eq!(web.get("/settings").status, 303);
    browser.login("alice@example.test", "recovered passphrase");
    // The link works once.
    Web::https(&server).get(&path).expect(404);
    // Garbage and unknown tokens are just invalid links.
    Web::https(&server).get("/reset/nonsense").expect(404);
    Web::https(&server).get(&format!("/reset/{}", "A".repeat(43))).expect(404);
    assert!(server.log_text().contains("password reset with a mailed link"));
}

#[test]
fn reset_requests_are_rate_limited() {
    let server = start();
    let mut web = Web::https(&server);
    web.login("alice@example.test", PASSWORD);
    web.submit("/account", "/recovery", &[("recovery", "bob@example.test"), ("current", PASSWORD)])
        .expect(303);
    let mut anon = Web::https(&server);
    // Per address: three mails an hour, whatever is asked; the page does not tell.
    for _ in 0..5 {
        anon.submit("/forgot", "/forgot", &[("address", "alice@example.test")]).expect(200);
    }
    reset_link(&server, "bob@example.test", 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.inbox("bob@example.test").len(), 3);
    // Per client address: ten requests an hour, then 429.
    for i in 0..5 {
        anon.submit("/forgot", "/forgot", &[("address", &format!("n{i}@example.test"))]).expect(200);
    }
    anon.submit("/forgot", "/forgot", &[("address", "n9@example.test")]).expect(429);
}

#[test]
fn reset_mail_to_a_remote_recovery_address_is_queued() {
    let server =
        start_with("[relay.routes]\n\"remote.example\" = \"127.0.0.1:1\"\n[queue]\nretry = [\"1h\"]\n");
    let mut web = Web::https(&server);
    web.login("alice@example.test", PASSWORD);
    web.submit("/account", "/recovery", &[("recovery", "me@remote.example"), ("current", PASSWORD)])
        .expect(303);
    Web::https(&server).submit("/forgot", "/forgot", &[("address", "alice@example.test")]).expect(200);
    let mut admin = Web::https(&server);
    admin.login("admin@example.test", PASSWORD);
    let html = wait_for("the queued reset mail", || {
        let html = admin.get("/admin/queue").text();
        html.contains("me@remote.example").then_some(html)
    });
    assert!(html.contains("postmaster@mx.test.example"), "{html}");
    // Retry now, then delete.
    let at = html.find("/admin/queue/").expect("retry form");
    let retry = html[at..].split('"').next().expect("action").to_string();
    assert!(retry.ends_with("/retry"));
    let r = admin.post_form(&retry, &[("csrf", &csrf_in(&html, &retry))]);
    r.expect(303);
    let delete = retry.replace("/retry", "/delete");
    let html = admin.get("/admin/queue").text();
    admin.post_form(&delete, &[("csrf", &csrf_in(&html, &delete))]).expect(303);
    assert!(!admin.get("/admin/queue").text().contains("me@remote.example"));
}

// ---- administration ----

#[test]
fn admin_pages() {
    let server = start();
    let mut user = Web::https(&server);
    user.login("alice@example.test", PASSWORD);
    for page in
        ["/admin/accounts", "/admin/domains", "/admin/aliases", "/admin/queue", "/admin/domains/example.test"]
    {
        user.get(page).expect(403);
    }
    assert!(!user.get("/settings").text().contains("/admin"), "no admin menu for users");

    let mut admin = Web::https(&server);
    admin.login("admin@example.test", PASSWORD);
    assert_eq!(admin.get("/admin").expect(303).header("location"), Some("/admin/accounts"));
    assert!(admin.get("/settings").text().contains("href=\"/admin\""), "admin menu");
    // Domains, with the DNS records to publish.
    admin.submit("/admin/domains", "/admin/domains", &[("name", "new.test")]).expect(303);
    let html = admin.get("/admin/domains/new.test").expect(200).text();
    assert!(html.contains("10 mx.test.example."), "MX: {html}");
    assert!(html.contains("v=spf1 mx -all") && html.contains("v=DKIM1") && html.contains("v=DMARC1"));
    assert!(html.contains(&format!("0 1 {} mx.test.example.", server.addr("imaps").port())), "SRV: {html}");
    let dup = admin.submit("/admin/domains", "/admin/domains", &[("name", "new.test")]);
    assert!(dup.expect(409).text().contains("already exists"));

    // Accounts: create, change switches and quota, set a password, disable, delete.
    let weak = admin.submit(
        "/admin/accounts",
        "/admin/accounts",
        &[("address", "carol@new.test"), ("password", "short"), ("quota", "")],
    );
    weak.expect(400);
    admin
        .submit(
            "/admin/accounts",
            "/admin/accounts",
            &[("address", "carol@new.test"), ("password", "carol's passphrase"), ("quota", "50M")],
        )
        .expect(303);
    assert!(imap_login_result(&server, "carol@new.test", "carol's passphrase").starts_with("L1 OK"));
    let page = "/admin/accounts/carol%40new.test";
    let html = admin.get(page).expect(200).text();
    assert!(html.contains("value=\"50M\""), "{html}");
    let r = admin.post_form(
        page,
        &[
            ("csrf", &csrf_in(&html, page)),
            ("pop3", "on"),
            ("enabled", "on"),
            ("quota", "1G"),
            ("admin", "on"),
        ],
    );
    r.expect(303);
    let list = server.cli_ok(&["account", "list"]);
    let carol = list.lines().find(|l| l.starts_with("carol@new.test")).expect("listed");
    assert!(carol.contains("quota=1G") && carol.contains("-imap") && carol.contains("admin"), "{carol}");
    assert!(imap_login_result(&server, "carol@new.test", "carol's passphrase").starts_with("L1 NO"));
    let action = format!("{page}/password");
    admin.submit(page, &action, &[("password", "set by the admin")]).expect(303);
    assert!(pop3_login_result(&server, "carol@new.test", "set by the admin").starts_with("+OK"));
    // Disabling ends the account's sessions.
    let mut carol_web = Web::https(&server);
    carol_web.login("carol@new.test", "set by the admin");
    let html = admin.get(page).text();
    admin.post_form(page, &[("csrf", &csrf_in(&html, page)), ("pop3", "on"), ("quota", "1G")]).expect(303);
    assert_eq!(carol_web.get("/settings").status, 303);
    // An admin cannot lock themselves out.
    let own = "/admin/accounts/admin%40example.test";
    let html = admin.get(own).text();
    let r = admin.post_form(own, &[("csrf", &csrf_in(&html, own)), ("imap", "on"), ("enabled", "on")]);
    assert!(r.expect(400).text().contains("cannot disable, demote or delete"));

    // Aliases and catch-alls.
    admin
        .submit(
            "/admin/aliases",
            "/admin/aliases",
            &[("alias", "info@new.test"), ("target", "carol@new.test")],
        )
        .expect(303);
    admin
        .submit("/admin/aliases", "/admin/aliases", &[("alias", "@new.test"), ("target", "carol@new.test")])
        .expect(303);
    let html = admin.get("/admin/aliases").expect(200).text();
    assert!(html.contains("info@new.test") && html.contains("catch-all"));
    let aliases = server.cli_ok(&["alias", "list"]);
    assert!(aliases.contains("@new.test\tcarol@new.test"), "{aliases}");
    let html = admin.get("/admin/aliases").text();
    admin
        .post_form(
            "/admin/aliases/delete",
            &[("csrf", &csrf_in(&html, "/admin/aliases/delete")), ("alias", "info@new.test")],
        )
        .expect(303);
    assert!(!server.cli_ok(&["alias", "list"]).contains("info@new.test"));

    // A domain with accounts cannot go; delete the account (confirmed) first.
    let r = admin.submit("/admin/domains", "/admin/domains/new.test/delete", &[]);
    r.expect(400);
    let del = format!("{page}/delete");
    admin.submit(page, &del, &[]).expect(400);
    admin.submit(page, &del, &[("confirm", "on")]).expect(303);
    admin.submit("/admin/domains", "/admin/domains/new.test/delete", &[]).expect(303);
    assert!(!server.cli_ok(&["domain", "list"]).contains("new.test"));
    let log = server.log_text();
    assert!(
        log.contains("account created") && log.contains("alias added") && log.contains("domain removed"),
        "{log}"
    );
    assert!(log.contains("admin page refused"));
}

// ---- the JSON API ----

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(&format!("{user}:{password}")))
}

#[test]
fn api_with_tokens_and_basic_auth() {
    let server = start();
    let token = server.cli_ok(&["token", "create", "--label", "tests"]).trim().to_string();
    assert!(token.starts_with("postamt_"), "{token}");
    let bearer = format!("Bearer {token}");
    let mut api = Web::https(&server);

    // No or wrong credentials: 401 with a challenge; a user without the admin role: 403.
    let r = api.json("GET", "/api/v1/accounts", None, None);
    r.expect(401);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")));
    assert_eq!(r.json()["error"], "unauthorized");
    api.json("GET", "/api/v1/accounts", Some("Bearer postamt_wrong"), None).expect(401);
    api.json("GET", "/api/v1/accounts", Some(&basic("admin@example.test", "wrong")), None).expect(401);
    api.json("GET", "/api/v1/accounts", Some(&basic("alice@example.test", PASSWORD)), None).expect(403);

    // Token and Basic both work.
    let accounts = api.json("GET", "/api/v1/accounts", Some(&bearer), None);
    let list = accounts.expect(200).json();
    assert!(list.as_array().expect("array").iter().any(|a| a["address"] == "alice@example.test"));
    api.json("GET", "/api/v1/accounts", Some(&basic("admin@example.test", PASSWORD)), None).expect(200);

    // Domains.
    let r =
        api.json("POST", "/api/v1/domains", Some(&bearer), Some(serde_json::json!({ "name": "api.test" })));
    assert_eq!(r.expect(201).json()["name"], "api.test");
    api.json("POST", "/api/v1/domains", Some(&bearer), Some(serde_json::json!({ "name": "api.test" })))
        .expect(409);
    let domains = api.json("GET", "/api/v1/domains", Some(&bearer), None).expect(200).json();
    assert!(domains.as_array().expect("array").iter().any(|d| d["name"] == "api.test"));
    let dns = api.json("GET", "/api/v1/domains/api.test/dns", Some(&bearer), None).expect(200).json();
    let records = dns["records"].as_array().expect("records");
    assert!(records.iter().any(|r| r["type"] == "MX" && r["value"] == "10 mx.test.example."));
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "TXT" && r["value"].as_str().is_some_and(|v| v.contains("v=DKIM1")))
    );
    assert!(dns["zone"].as_str().is_some_and(|z| z.contains("IN MX")));
    api.json("GET", "/api/v1/domains/nothere.test/dns", Some(&bearer), None).expect(404);

    // Accounts.
    let new =
        serde_json::json!({ "address": "dave@api.test", "password": "dave's passphrase", "quota": 1048576 });
    let r = api.json("POST", "/api/v1/accounts", Some(&bearer), Some(new));
    let dave = r.expect(201).json();
    assert_eq!(dave["quota"], 1048576);
    assert_eq!(dave["enabled"], true);
    let weak = serde_json::json!({ "address": "eve@api.test", "password": "short" });
    let r = api.json("POST", "/api/v1/accounts", Some(&bearer), Some(weak));
    assert_eq!(r.expect(400).json()["error"], "invalid");
    api.json("POST", "/api/v1/accounts", Some(&bearer), Some(serde_json::json!({ "address": 1 })))
        .expect(400);
    let patch = serde_json::json!({ "quota": null, "imap": false, "password": "dave's new passphrase" });
    let r = api.json("PATCH", "/api/v1/accounts/dave@api.test", Some(&bearer), Some(patch));
    let dave = r.expect(200).json();
    assert_eq!(dave["quota"], serde_json::Value::Null);
    assert_eq!(dave["imap"], false);
    assert!(pop3_login_result(&server, "dave@api.test", "dave's new passphrase").starts_with("+OK"));
    api.json("GET", "/api/v1/accounts/dave@api.test", Some(&bearer), None).expect(200);
    api.json("GET", "/api/v1/accounts/nobody@api.test", Some(&bearer), None).expect(404);
    // An admin cannot disable itself through the API either.
    let r = api.json(
        "PATCH",
        "/api/v1/accounts/admin@example.test",
        Some(&basic("admin@example.test", PASSWORD)),
        Some(serde_json::json!({ "enabled": false })),
    );
    r.expect(400);

    // Aliases.
    let alias = serde_json::json!({ "alias": "@api.test", "target": "dave@api.test" });
    api.json("POST", "/api/v1/aliases", Some(&bearer), Some(alias)).expect(201);
    let aliases = api.json("GET", "/api/v1/aliases", Some(&bearer), None).expect(200).json();
    assert!(aliases.as_array().expect("array").iter().any(|a| a["alias"] == "@api.test"));
    api.json("DELETE", "/api/v1/aliases/@api.test", Some(&bearer), None).expect(204);
    api.json("DELETE", "/api/v1/aliases/@api.test", Some(&bearer), None).expect(404);

    // Queue.
    assert_eq!(
        api.json("GET", "/api/v1/queue", Some(&bearer), None).expect(200).json(),
        serde_json::json!([])
    );
    api.json("POST", "/api/v1/queue/nothere/retry", Some(&bearer), None).expect(404);
    api.json("DELETE", "/api/v1/queue/nothere", Some(&bearer), None).expect(404);

    api.json("DELETE", "/api/v1/accounts/dave@api.test", Some(&bearer), None).expect(204);
    api.json("DELETE", "/api/v1/domains/api.test", Some(&bearer), None).expect(204);

    // Tokens are listed without their secret, and revoked ones stop working.
    let listed = server.cli_ok(&["token", "list"]);
    assert!(listed.contains("tests") && !listed.contains(&token), "{listed}");
    let id = listed.split('\t').next().expect("id").to_string();
    server.cli_ok(&["token", "revoke", &id]);
    api.json("GET", "/api/v1/accounts", Some(&bearer), None).expect(401);
    assert!(server.log_text().contains(&format!("actor=token:{id}")), "changes are logged with the token");
}

#[test]
fn api_with_the_session_cookie_needs_the_csrf_header() {
    let server = start();
    let mut web = Web::https(&server);
    web.login("admin@example.test", PASSWORD);
    web.json("GET", "/api/v1/domains", None, None).expect(200);
    let body = serde_json::json!({ "name": "cookie.test" });
    let r = web.json("POST", "/api/v1/domains", None, Some(body.clone()));
    assert_eq!(r.expect(403).json()["error"], "csrf");
    let html = web.get("/settings").text();
    let token = csrf_in(&html, "/logout");
    let r = web.send(
        "POST",
        "/api/v1/domains",
        &[("Content-Type", "application/json"), ("X-CSRF-Token", &token)],
        body.to_string().as_bytes(),
    );
    r.expect(201);
    // Not an admin: 403 even with the token.
    let mut user = Web::https(&server);
    user.login("alice@example.test", PASSWORD);
    user.json("GET", "/api/v1/domains", None, None).expect(403);
}

#[test]
fn openapi_document_lists_every_route() {
    let server = start();
    let mut api = Web::https(&server);
    let r = api.get("/api/v1/openapi.json");
    r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let token = server.cli_ok(&["token", "create"]).trim().to_string();
    let bearer = format!("Bearer {token}");
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            count += 1;
            // Every documented route exists: with placeholders filled in, it answers with
            // something other than "no such route" (404 with an HTML page) or 405.
            let concrete = path.replace("{name}", "nothere.test").replace("{address}", "nobody@example.test");
            let concrete = concrete.replace("{alias}", "nothere@example.test").replace("{id}", "nothere");
            let body = match method.as_str() {
                "post" | "patch" => Some(serde_json::json!({})),
                _ => None,
            };
            let r = api.json(&method.to_uppercase(), &concrete, Some(&bearer), body);
            assert_ne!(r.status, 405, "{method} {path}");
            if r.status == 404 {
                assert_eq!(r.json()["error"], "not_found", "{method} {path}: route missing");
            }
        }
    }
    assert_eq!(count, 16);
}

// ---- what every answer carries ----

#[test]
fn security_headers_language_and_limits() {
    let server = start();
    let mut web = Web::https(&server);
    let r = web.get("/login");
    r.expect(200);
    assert!(r.header("content-security-policy").is_some_and(|c| c.starts_with("default-src 'self'")));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("strict-transport-security").is_some());
    let css = web.get("/static/style.css");
    assert!(css.expect(200).header("content-type").is_some_and(|c| c.starts_with("text/css")));
    web.get("/no/such/page").expect(404);

    // German from Accept-Language; the switch link sets a cookie that wins.
    let mut de = Web::https(&server);
    de.extra.push(("Accept-Language".into(), "de-DE,de;q=0.9,en;q=0.5".into()));
    let html = de.get("/login").text();
    assert!(html.contains("<html lang=\"de\">") && html.contains("Anmelden"), "{html}");
    let r = de.get("/lang/en?next=%2Fforgot");
    assert_eq!(r.expect(303).header("location"), Some("/forgot"));
    assert!(de.get("/forgot").text().contains("Forgot password"));
    // The switch never leads off the site.
    assert_eq!(de.get("/lang/de?next=%2F%2Fevil.example").header("location"), Some("/"));
    assert!(de.get("/login").text().contains("Anmelden"));

    // Bodies beyond 64 KiB are refused before any handler runs.
    let big = vec![b'a'; 100 * 1024];
    let r = web.send("POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &big);
    r.expect(413);

    // Plain http from loopback works (a local reverse proxy); the session cookie is then
    // without the __Host- prefix.
    let mut plain = Web::http(&server);
    plain.login("alice@example.test", PASSWORD);
    assert!(plain.cookie("postamt_session").is_some());
    assert!(plain.get("/login").header("strict-transport-security").is_none());
}
