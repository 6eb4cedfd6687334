//! Test harness: starts the real `postamt` binary on port-0 loopback listeners with a
//! temporary data directory, runs its CLI, and talks to it as a client does (plain TCP or
//! TLS, byte by byte).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const HOSTNAME: &str = "mx.test.example";
pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub ports: HashMap<String, SocketAddr>,
    pub log: Arc<Mutex<Vec<String>>>,
    extra: String,
    /// Answers the server's DNS questions (NXDOMAIN for every name) unless `extra` has its
    /// own `[dns]`: tests never depend on the machine's resolver, and a lookup (mail
    /// authentication on every port 25 delivery, MX lookups) fails at once instead of
    /// waiting for a time-out.
    dns: Option<dns::DnsServer>,
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_postamt")
}

impl Server {
    /// A server with the smtp, submission and submissions listeners.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// A server whose configuration has `extra` appended (TOML, e.g. a `[limits]` table).
    pub fn start_with(extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("postamt.toml");
        let mut server = Server {
            child: None,
            dir,
            config_path,
            ports: HashMap::new(),
            log: Arc::default(),
            extra: extra.to_string(),
            dns: (!extra.contains("[dns]")).then(|| dns::DnsServer::start(dns::Records::new())),
        };
        server.write_config();
        server.spawn();
        server
    }

    fn write_config(&self) {
        let data = self.dir.path().join("data");
        let mut config = format!(
            "hostname = \"{HOSTNAME}\"\ndata_dir = \"{}\"\nmax_message_size = \"1M\"\n{}\n",
            data.display(),
            self.extra
        );
        if !self.extra.contains("[listen]") {
            config.push_str("[listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsubmissions = [\"127.0.0.1:0\"]\n");
        }
        if !self.extra.contains("[auth]") {
            config.push_str("[auth]\nfailure_delay = \"20ms\"\nmax_failure_delay = \"100ms\"\n");
        }
        if let Some(dns) = &self.dns {
            // Tests that need DNS records start their own server and pass its `[dns]`.
            config.push_str(&dns.config());
        }
        std::fs::write(&self.config_path, config).expect("write config");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let mut child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn postamt");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        self.ports.clear();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("server did not become ready; log:\n{}", self.log_text()));
            if line.contains("listening") {
                let service = field(&line, "service").expect("service field");
                let addr = field(&line, "addr").expect("addr field").parse().expect("addr");
                self.ports.insert(service, addr);
            }
            if line.contains(" ready") {
                break;
            }
        }
        self.child = Some(child);
    }

    /// Process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn addr(&self, service: &str) -> SocketAddr {
        *self.ports.get(service).unwrap_or_else(|| panic!("no {service} listener"))
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and starts it again on the
    /// same data directory.
    pub fn kill9_and_restart(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill");
        child.wait().expect("wait");
        self.spawn();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn sigterm(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a CLI subcommand against this server's configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_with_config(&self.config_path, args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        cli_with_config(&self.config_path, args, Some(stdin))
    }

    /// Runs a CLI subcommand that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "postamt {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Creates `example.test` with accounts alice@ and bob@ (password [`PASSWORD`]).
    pub fn with_accounts(self) -> Server {
        self.cli_ok(&["domain", "add", "example.test"]);
        for user in ["alice@example.test", "bob@example.test"] {
            self.cli_ok(&["account", "add", user, "--password", PASSWORD]);
        }
        self
    }

    /// The messages in an account's INBOX, read through the storage interface.
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        self.mailbox(address, "INBOX")
    }

    pub fn mailbox(&self, address: &str, mailbox: &str) -> Vec<Vec<u8>> {
        let data = self.data_dir();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = postamt_store::sqlite::SqliteStore::open(&data).expect("open store");
            use postamt_store::Store;
            let account = store.account_by_address(address).await.unwrap().expect("account");
            let mbox = store.mailbox_by_name(account.id, mailbox).await.unwrap().expect("mailbox");
            let mut out = Vec::new();
            for meta in store.list_messages(account.id, mbox.id).await.unwrap() {
                out.push(store.read_blob(&meta.blob).await.unwrap());
            }
            out
        })
    }

    /// Number of blob files stored.
    pub fn blob_count(&self) -> usize {
        fn walk(p: &Path) -> usize {
            let Ok(rd) = std::fs::read_dir(p) else { return 0 };
            rd.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        if path.file_name().is_some_and(|n| n == "tmp") { 0 } else { walk(&path) }
                    } else {
                        1
                    }
                })
                .sum()
        }
        walk(&self.data_dir().join("blobs"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn cli_with_config(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).arg("--config").arg(config);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cli");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("cli output")
}

/// Extracts `key=value` from a log line (value up to the next space).
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let value = rest.split_whitespace().next()?;
    Some(value.trim_matches('"').to_string())
}

// ---- a byte-level client ----

enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    None,
}

pub struct Client {
    transport: Transport,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client { transport: Transport::Plain(stream), buf: Vec::new() }
    }

    /// Connects with implicit TLS.
    pub fn connect_tls(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr);
        c.upgrade_tls();
        c
    }

    /// Starts TLS on the connection (after the server said 220 to STARTTLS). Bytes the client
    /// had buffered from before are dropped, as a correct client must.
    pub fn upgrade_tls(&mut self) {
        let Transport::Plain(stream) = std::mem::replace(&mut self.transport, Transport::None) else {
            panic!("not plain")
        };
        self.buf.clear();
        let conn = rustls::ClientConnection::new(
            postamt_outbound::client::tls_config(),
            HOSTNAME.try_into().unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, stream);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        self.transport = Transport::Tls(Box::new(tls));
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let r = match &mut self.transport {
            Transport::Plain(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Transport::Tls(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Transport::None => unreachable!(),
        };
        r.expect("send");
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16384];
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(&mut chunk),
            Transport::Tls(s) => s.read(&mut chunk),
            Transport::None => unreachable!(),
        };
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one line including CRLF; empty string at end of stream.
    pub fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return String::from_utf8(line).expect("utf8 reply");
            }
            if self.fill() == 0 {
                let rest: Vec<u8> = self.buf.drain(..).collect();
                return String::from_utf8(rest).expect("utf8");
            }
        }
    }

    /// Reads one complete (possibly multi-line) SMTP reply, exact bytes.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    /// Sends a command line (CRLF appended) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Asserts the reply to `line` starts with `expect`.
    pub fn ok(&mut self, line: &str, expect: &str) -> String {
        let reply = self.cmd(line);
        assert!(reply.starts_with(expect), "{line:?}: expected {expect:?}, got {reply:?}");
        reply
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill() == 0
    }
}

/// Greeted, EHLO'd session on the MX port.
pub fn mx_session(server: &Server) -> Client {
    let mut c = Client::connect(server.addr("smtp"));
    assert!(c.reply().starts_with("220 "));
    c.ok("EHLO client.example", "250");
    c
}

/// Submission session on 587 after STARTTLS and AUTH PLAIN as `user`.
pub fn submission_session(server: &Server, user: &str) -> Client {
    let mut c = Client::connect(server.addr("submission"));
    assert!(c.reply().starts_with("220 "));
    c.ok("EHLO client.example", "250");
    c.ok("STARTTLS", "220 2.0.0");
    c.upgrade_tls();
    c.ok("EHLO client.example", "250");
    c.ok(&format!("AUTH PLAIN {}", plain(user, PASSWORD)), "235 2.7.0");
    c
}

pub fn plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Sends a whole transaction and returns the final reply.
pub fn send_mail(c: &mut Client, from: &str, to: &[&str], message: &str) -> String {
    c.ok(&format!("MAIL FROM:<{from}>"), "250");
    for rcpt in to {
        c.ok(&format!("RCPT TO:<{rcpt}>"), "250");
    }
    c.ok("DATA", "354");
    c.send(message.as_bytes());
    c.send(if message.ends_with("\r\n") { b".\r\n" } else { b"\r\n.\r\n" });
    c.reply()
}

// ---- IMAP helpers ----

impl Client {
    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill() > 0, "connection closed while reading {n} bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one IMAP response line, with any literals it announces inlined.
    pub fn imap_line(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return out;
            }
            out.push_str(&line);
            let trimmed = line.trim_end_matches("\r\n");
            let literal = trimmed
                .strip_suffix('}')
                .and_then(|t| t.rfind('{').map(|i| &t[i + 1..]))
                .and_then(|n| n.parse::<usize>().ok());
            match literal {
                Some(n) => out.push_str(&String::from_utf8_lossy(&self.bytes(n))),
                None => return out,
            }
        }
    }

    /// Sends `tag command` and returns every response line up to and including the tagged
    /// one, exactly as received.
    pub fn imap(&mut self, tag: &str, command: &str) -> String {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.imap_until(tag)
    }

    /// Reads responses up to and including the one tagged `tag`.
    pub fn imap_until(&mut self, tag: &str) -> String {
        let mut out = String::new();
        loop {
            let line = self.imap_line();
            assert!(!line.is_empty(), "connection closed; so far: {out}");
            out.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return out;
            }
        }
    }

    /// Like [`Client::imap`], asserting the tagged response is OK.
    pub fn imap_ok(&mut self, tag: &str, command: &str) -> String {
        let out = self.imap(tag, command);
        let last = out.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("{tag} OK")), "{command}: {out}");
        out
    }
}

/// Configuration adding IMAP and POP3 listeners to the SMTP ones.
pub const ALL_LISTENERS: &str = "[listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsubmissions = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\npop3 = [\"127.0.0.1:0\"]\npop3s = [\"127.0.0.1:0\"]\n";

/// An IMAP session over implicit TLS, logged in as `user`.
pub fn imap_login(server: &Server, user: &str) -> Client {
    let mut c = Client::connect_tls(server.addr("imaps"));
    let greeting = c.imap_line();
    assert!(greeting.starts_with("* OK "), "{greeting}");
    c.imap_ok("L1", &format!("LOGIN {user} \"{PASSWORD}\""));
    c
}

/// Delivers a message to `to` over SMTP port 25.
pub fn deliver(server: &Server, to: &str, message: &str) {
    let mut c = mx_session(server);
    let reply = send_mail(&mut c, "sender@remote.example", &[to], message);
    assert!(reply.starts_with("250 "), "{reply}");
    c.ok("QUIT", "221");
}

impl Client {
    /// Reads one line as raw bytes, including CRLF (empty at end of stream).
    pub fn raw_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.buf.drain(..pos + 2).collect();
            }
            if self.fill() == 0 {
                return self.buf.drain(..).collect();
            }
        }
    }

    /// Reads IMAP responses as raw bytes (literals included) up to the line tagged `tag`.
    pub fn imap_raw_until(&mut self, tag: &str) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line = self.raw_line();
            assert!(!line.is_empty(), "connection closed");
            out.extend_from_slice(&line);
            if line.starts_with(format!("{tag} ").as_bytes()) {
                return out;
            }
            let body = &line[..line.len().saturating_sub(2)];
            if body.ends_with(b"}")
                && let Some(open) = body.iter().rposition(|&b| b == b'{')
                && let Ok(n) =
                    std::str::from_utf8(&body[open + 1..body.len() - 1]).unwrap_or("x").parse::<usize>()
            {
                let literal = self.bytes(n);
                out.extend_from_slice(&literal);
                // The rest of the line after the literal follows; keep reading lines.
            }
        }
    }
}

pub mod dns;
