//! Crash safety: mail delivered over SMTP by several concurrent clients while the server is
//! killed with SIGKILL at random moments (and restarted each time) is, for every message that
//! got its `250`, in each recipient's mailbox exactly once and byte-identical to what was sent;
//! a message without a `250` is there at most once (and then complete); a message refused with
//! another reply is not there; and `postamt check` finds the store consistent.
//!
//! The kill schedule, the messages and their recipients come from a seeded generator. The seed
//! is printed; `POSTAMT_CRASH_SEED=<seed>` repeats a run (thread timing still varies) and
//! `POSTAMT_CRASH_KILLS=<n>` changes the number of kills (default 20, well under a minute in a
//! debug build).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// Concurrent SMTP clients.
const CLIENTS: usize = 4;
/// The accounts (besides alice and bob of the harness) and an alias of alice.
const CAROL: &str = "carol@example.test";
const ALIAS: &str = "team@example.test";
const ACCOUNTS: [&str; 3] = ["alice@example.test", "bob@example.test", CAROL];

/// SplitMix64: small, seedable, good enough to pick sizes, recipients and kill times.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// How one attempt to deliver a message ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// `250` after the data: the server promised it is stored.
    Acked,
    /// A final reply other than 250 (the server said it did not take it).
    Refused(String),
    /// The connection broke before the final reply: it may or may not be stored.
    Unknown,
}

struct Sent {
    /// The accounts (not addresses: the alias resolves to alice) that must have it.
    accounts: Vec<&'static str>,
    bytes: Vec<u8>,
    outcome: Outcome,
}

/// A message of `size` bytes or a little more, identified by `token` in its Subject. Only
/// letters, digits and spaces in the body, so that no line needs dot-stuffing.
fn message(rng: &mut Rng, token: &str, to: &[&str], size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Crash Test <sender@remote.example>\r\nTo: {}\r\nSubject: crash {token}\r\n\
         Message-ID: <{token}@remote.example>\r\nMIME-Version: 1.0\r\n\r\n",
        to.join(", ")
    )
    .into_bytes();
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     ";
    while m.len() < size {
        let len = rng.range(0, 120) as usize;
        for _ in 0..len {
            m.push(CHARS[rng.range(0, CHARS.len() as u64) as usize]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Mostly a few KB, sometimes large enough that a kill lands in the middle of DATA.
fn message_size(rng: &mut Rng) -> usize {
    match rng.range(0, 100) {
        0..70 => rng.range(300, 8_000) as usize,
        70..95 => rng.range(8_000, 64_000) as usize,
        _ => rng.range(64_000, 400_000) as usize,
    }
}

/// Recipient sets: single accounts, two accounts (one body, two references), and the alias
/// beside its own account (one copy).
fn recipients(rng: &mut Rng) -> (Vec<&'static str>, Vec<&'static str>) {
    let [alice, bob, carol] = ACCOUNTS;
    match rng.range(0, 6) {
        0 => (vec![alice], vec![alice]),
        1 => (vec![bob], vec![bob]),
        2 => (vec![carol], vec![carol]),
        3 => (vec![alice, bob], vec![alice, bob]),
        4 => (vec![ALIAS, alice], vec![alice]),
        _ => (vec![bob, carol, ALIAS], vec![bob, carol, alice]),
    }
}

/// A minimal SMTP client whose every step can fail (the server dies under it).
struct Smtp {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> io::Result<Smtp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        // While the server restarts its old port is free, and a connection to it may get that
        // very port as its source: TCP then connects the socket to itself.
        if stream.local_addr()? == stream.peer_addr()? {
            return Err(io::Error::other("connected to itself"));
        }
        // A live server answers within milliseconds; a dead one resets the connection.
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        let mut c = Smtp { stream, buf: Vec::new() };
        let greeting = c.reply()?;
        if !greeting.starts_with("220 ") {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        c.expect("EHLO crash.example", "250")?;
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// One complete reply; an error if the connection ends first.
    fn reply(&mut self) -> io::Result<String> {
        let mut out = String::new();
        loop {
            let line = loop {
                if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                    break String::from_utf8_lossy(&line).into_owned();
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            };
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(out);
            }
        }
    }

    fn expect(&mut self, line: &str, code: &str) -> io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        let reply = self.reply()?;
        if !reply.starts_with(code) {
            return Err(io::Error::other(format!("{line:?} answered {reply:?}")));
        }
        Ok(reply)
    }

    /// One transaction; `Err` when the connection broke before the final reply, else that
    /// reply. With `bdat`, the message goes in two BDAT chunks instead of DATA.
    fn transaction(&mut self, to: &[&str], message: &[u8], bdat: bool) -> io::Result<String> {
        self.expect("MAIL FROM:<sender@remote.example>", "250")?;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), "250")?;
        }
        if bdat {
            let (first, last) = message.split_at(message.len() / 2);
            self.send(format!("BDAT {}\r\n", first.len()).as_bytes())?;
            self.send(first)?;
            let reply = self.reply()?;
            if !reply.starts_with("250") {
                return Ok(reply);
            }
            self.send(format!("BDAT {} LAST\r\n", last.len()).as_bytes())?;
            self.send(last)?;
        } else {
            self.expect("DATA", "354")?;
            self.send(message)?;
            self.send(b".\r\n")?;
        }
        self.reply()
    }
}

/// One client thread: sessions of a few messages each, reconnecting after every failure,
/// until `stop`. Every attempt is recorded, from before its first byte.
fn client(
    id: usize,
    mut rng: Rng,
    addr: Arc<Mutex<SocketAddr>>,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<BTreeMap<String, Sent>>>,
    acked: Arc<AtomicU64>,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let target = *addr.lock().unwrap();
        let Ok(mut smtp) = Smtp::connect(target) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        for _ in 0..rng.range(1, 8) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            seq += 1;
            let token = format!("c{id}-{seq}");
            let (to, accounts) = recipients(&mut rng);
            let size = message_size(&mut rng);
            let bytes = message(&mut rng, &token, &to, size);
            let bdat = rng.chance(30);
            sent.lock().unwrap().insert(
                token.clone(),
                Sent { accounts: accounts.clone(), bytes: bytes.clone(), outcome: Outcome::Unknown },
            );
            let outcome = match smtp.transaction(&to, &bytes, bdat) {
                Ok(reply) if reply.starts_with("250 ") => Outcome::Acked,
                Ok(reply) => Outcome::Refused(reply),
                Err(_) => Outcome::Unknown,
            };
            let broken = outcome == Outcome::Unknown;
            if outcome == Outcome::Acked {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            sent.lock().unwrap().get_mut(&token).expect("recorded").outcome = outcome;
            if broken {
                break;
            }
        }
        let _ = smtp.send(b"QUIT\r\n");
    }
}

/// The token in a stored message's Subject.
fn token_of(stored: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stored);
    let start = text.find("\r\nSubject: crash ")? + "\r\nSubject: crash ".len();
    let end = text[start..].find("\r\n")? + start;
    Some(text[start..end].to_string())
}

/// The message as the client sent it: the stored one without the `Return-Path`, `Received`
/// and `Authentication-Results` header fields (with their folded lines) that delivery prepends.
fn strip_trace(stored: &[u8]) -> Option<&[u8]> {
    let rest = stored.strip_prefix(b"Return-Path: ")?;
    let mut rest = &rest[rest.windows(2).position(|w| w == b"\r\n")? + 2..];
    rest = rest.strip_prefix(b"Received: ")?;
    // Mail received on port 25 also carries our Authentication-Results field (RFC 8601).
    let mut results_done = false;
    loop {
        rest = &rest[rest.windows(2).position(|w| w == b"\r\n")? + 2..];
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            match rest.strip_prefix(b"Authentication-Results: ") {
                Some(results) if !results_done => {
                    results_done = true;
                    rest = results;
                }
                _ => return Some(rest),
            }
        }
    }
}

#[test]
fn acknowledged_mail_survives_random_kill_9() {
    let seed = env_u64("POSTAMT_CRASH_SEED").unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let kills = env_u64("POSTAMT_CRASH_KILLS").unwrap_or(20);
    println!("crash test: seed {seed}, {kills} kills (repeat with POSTAMT_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    let limits = "[limits]\nconnections_per_ip = 200\n";
    // Incoming mail is checked (SPF, DKIM, DMARC): a local name server answers at once.
    let dns = dns::DnsServer::start(dns::Records::new());
    let mut server = Server::start_with(&format!("{limits}{}{ALL_LISTENERS}", dns.config())).with_accounts();
    server.cli_ok(&["account", "add", CAROL, "--password", PASSWORD]);
    server.cli_ok(&["alias", "add", ALIAS, "alice@example.test"]);

    let addr = Arc::new(Mutex::new(server.addr("smtp")));
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Mutex<BTreeMap<String, Sent>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let client_rng = Rng(rng.next());
            let (addr, stop, sent, acked) = (addr.clone(), stop.clone(), sent.clone(), acked.clone());
            std::thread::spawn(move || client(id, client_rng, addr, stop, sent, acked))
        })
        .collect();

    let started = Instant::now();
    for kill in 0..kills {
        // Mostly while mail flows, now and then right after the restart.
        let wait = if rng.chance(15) { rng.range(0, 150) } else { rng.range(300, 2_500) };
        std::thread::sleep(Duration::from_millis(wait));
        let before = acked.load(Ordering::Relaxed);
        server.kill9_and_restart();
        *addr.lock().unwrap() = server.addr("smtp");
        println!(
            "kill {}/{kills} after {wait} ms, {before} acknowledged so far ({:.1} s)",
            kill + 1,
            started.elapsed().as_secs_f64()
        );
    }
    // Some mail after the last restart, then the clients finish their transactions.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    println!("clients stopped ({:.1} s)", started.elapsed().as_secs_f64());

    // What is stored, per account: token -> bodies.
    let mut stored: HashMap<&str, HashMap<String, Vec<Vec<u8>>>> = HashMap::new();
    for account in ACCOUNTS {
        let by_token = stored.entry(account).or_default();
        for body in server.inbox(account) {
            let token = token_of(&body).unwrap_or_else(|| {
                panic!(
                    "seed {seed}: a message in {account} without a token:\n{}",
                    String::from_utf8_lossy(&body)
                )
            });
            by_token.entry(token).or_default().push(body);
        }
    }

    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (token, msg) in &sent {
        let label = match &msg.outcome {
            Outcome::Acked => "acknowledged",
            Outcome::Refused(_) => "refused",
            Outcome::Unknown => "unknown",
        };
        *counts.entry(label).or_default() += 1;
        let copies: Vec<(&str, usize)> =
            msg.accounts.iter().map(|a| (*a, stored[a].get(token).map_or(0, Vec::len))).collect();
        for (account, n) in &copies {
            let expected_ok = match &msg.outcome {
                Outcome::Acked => *n == 1,
                Outcome::Refused(_) => *n == 0,
                Outcome::Unknown => *n <= 1,
            };
            if !expected_ok {
                problems.push(format!("{token} ({label} {:?}): {n} copies in {account}", msg.outcome));
            }
        }
        if matches!(msg.outcome, Outcome::Unknown) {
            let present = copies.iter().filter(|(_, n)| *n > 0).count();
            if present != 0 && present != copies.len() {
                problems.push(format!("{token} (unknown): delivered to some recipients only: {copies:?}"));
            }
        }
        for account in &msg.accounts {
            for body in stored[account].get(token).into_iter().flatten() {
                if strip_trace(body) != Some(&msg.bytes[..]) {
                    problems.push(format!("{token} in {account}: stored bytes differ from the sent ones"));
                }
            }
        }
    }
    for (account, by_token) in &stored {
        for token in by_token.keys() {
            if !sent.get(token).is_some_and(|m| m.accounts.contains(account)) {
                problems.push(format!("{token} in {account}: never sent there"));
            }
        }
    }
    println!("messages: {counts:?}, verified ({:.1} s)", started.elapsed().as_secs_f64());
    assert!(problems.is_empty(), "seed {seed}: {} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert!(
        counts.get("acknowledged").copied().unwrap_or(0) >= 50,
        "seed {seed}: too little mail got through"
    );

    // Readable through the server, too: every INBOX's size and a sample of bodies over IMAP.
    for account in ACCOUNTS {
        let expected: Vec<Vec<u8>> = server.inbox(account);
        let mut imap = imap_login(&server, account);
        let selected = imap.imap_ok("S", "SELECT INBOX");
        assert!(selected.contains(&format!("* {} EXISTS\r\n", expected.len())), "{account}: {selected}");
        for _ in 0..if expected.is_empty() { 0 } else { 3 } {
            let n = rng.range(1, expected.len() as u64 + 1);
            let fetched = imap.imap_ok("F", &format!("FETCH {n} BODY.PEEK[]"));
            let body = String::from_utf8_lossy(&expected[n as usize - 1]).into_owned();
            assert!(fetched.contains(&body), "seed {seed}: {account} message {n} differs over IMAP");
        }
        imap.imap_ok("Q", "LOGOUT");
    }

    println!("read over IMAP ({:.1} s)", started.elapsed().as_secs_f64());

    // The store is consistent; with no grace period, the only leftovers of the kills are blob
    // files written for deliveries that never committed.
    let check = server.cli(&["check"]);
    let report = String::from_utf8_lossy(&check.stdout);
    println!("postamt check: {}", report.trim_end());
    assert!(
        check.status.success(),
        "seed {seed}: postamt check failed:\n{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let strict = server.cli(&["check", "--grace", "0s"]);
    let strict_report = String::from_utf8_lossy(&strict.stdout);
    let leftovers: Vec<&str> = strict_report.lines().filter(|l| !l.starts_with("store ")).collect();
    assert!(
        leftovers.iter().all(|l| l.starts_with("unreferenced blob file ")),
        "seed {seed}: unexpected problems:\n{strict_report}"
    );
    println!(
        "{} unreferenced blob file(s) left by interrupted deliveries ({:.1} s)",
        leftovers.len(),
        started.elapsed().as_secs_f64()
    );
}
