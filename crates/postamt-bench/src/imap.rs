//! IMAP workloads ([`read`], [`mixed`]), the IMAP client they use, and [`Watchers`], which
//! watch mailboxes fill up after SMTP deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::conn::Conn;
use crate::mail::{Pool, SizeSpec};
use crate::stats::{Figures, Latencies};
use crate::{Accounts, BenchError, Result, Target};

/// How a tagged response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// Everything up to and including a tagged response. Literals are counted, not kept.
#[derive(Debug, Default)]
pub struct Response {
    /// Untagged lines (a literal shows as `{n}` in them).
    pub untagged: Vec<String>,
    pub literal_bytes: u64,
    pub literals: u64,
    pub tagged: String,
}

/// A logged-in (or about to be) IMAP client. Tracks the selected mailbox's message count from
/// `EXISTS` and `EXPUNGE` responses.
pub struct Imap {
    conn: Conn,
    tag: u64,
    pub exists: u32,
}

impl Imap {
    /// Connects and reads the greeting.
    pub async fn connect(target: Target, local: Option<std::net::IpAddr>) -> Result<Imap> {
        let mut imap = Imap { conn: Conn::connect(target, local).await?, tag: 0, exists: 0 };
        let greeting = imap.conn.read_line().await?;
        if !greeting.starts_with(b"* OK") {
            return Err(imap.protocol("greeting", &greeting));
        }
        Ok(imap)
    }

    /// Connects and logs in with LOGIN.
    pub async fn login(target: Target, user: &str, password: &str) -> Result<Imap> {
        let mut imap = Imap::connect(target, None).await?;
        imap.authenticate(user, password).await?;
        Ok(imap)
    }

    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<()> {
        self.ok(&format!("LOGIN {} {}", quote(user), quote(password))).await.map(drop)
    }

    fn protocol(&self, command: &str, reply: &[u8]) -> BenchError {
        BenchError::Protocol {
            addr: self.conn.addr(),
            command: command.to_string(),
            reply: String::from_utf8_lossy(reply).trim_end().to_string(),
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    /// Sends a command and reads its response.
    pub async fn command(&mut self, command: &str) -> Result<(Status, Response)> {
        let tag = self.next_tag();
        self.conn.write_all(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.response(&tag).await
    }

    /// Like [`Imap::command`], but anything other than OK is an error.
    pub async fn ok(&mut self, command: &str) -> Result<Response> {
        match self.command(command).await? {
            (Status::Ok, r) => Ok(r),
            (_, r) => Err(self.protocol(command, r.tagged.as_bytes())),
        }
    }

    /// `APPEND mailbox (flags) {n+}` with the message as a non-synchronising literal.
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> Result<(Status, Response)> {
        let tag = self.next_tag();
        let mut out =
            format!("{tag} APPEND {} ({flags}) {{{}+}}\r\n", quote(mailbox), message.len()).into_bytes();
        out.extend_from_slice(message);
        out.extend_from_slice(b"\r\n");
        self.conn.write_all(&out).await?;
        self.response(&tag).await
    }

    /// Reads responses up to the one tagged `tag`.
    pub async fn response(&mut self, tag: &str) -> Result<(Status, Response)> {
        let mut response = Response::default();
        loop {
            let line = self.logical_line(&mut response).await?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let status = match rest.split(' ').next() {
                    Some("OK") => Status::Ok,
                    Some("NO") => Status::No,
                    _ => Status::Bad,
                };
                response.tagged = line;
                return Ok((status, response));
            }
            self.track(&line);
            response.untagged.push(line);
        }
    }

    /// Reads one response line, skipping (and counting) the literals inside it.
    async fn logical_line(&mut self, response: &mut Response) -> Result<String> {
        let mut out = String::new();
        loop {
            let line = self.conn.read_line().await?;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            out.push_str(text);
            match literal_len(text) {
                Some(n) => {
                    self.conn.skip(n).await?;
                    response.literal_bytes += n as u64;
                    response.literals += 1;
                }
                None => return Ok(out),
            }
        }
    }

    /// Follows `* n EXISTS` and `* n EXPUNGE`.
    fn track(&mut self, line: &str) {
        let mut words = line.split(' ');
        if words.next() != Some("*") {
            return;
        }
        let (Some(n), Some(what)) = (words.next().and_then(|n| n.parse::<u32>().ok()), words.next()) else {
            return;
        };
        if what.eq_ignore_ascii_case("EXISTS") {
            self.exists = n;
        } else if what.eq_ignore_ascii_case("EXPUNGE") {
            self.exists = self.exists.saturating_sub(1);
        }
    }

    /// Starts IDLE: sends the command and waits for the continuation.
    pub async fn idle(&mut self) -> Result<String> {
        let tag = self.next_tag();
        self.conn.write_all(format!("{tag} IDLE\r\n").as_bytes()).await?;
        let mut ignored = Response::default();
        loop {
            let line = self.logical_line(&mut ignored).await?;
            if line.starts_with('+') {
                return Ok(tag);
            }
            if line.starts_with(&tag) {
                return Err(self.protocol("IDLE", line.as_bytes()));
            }
            self.track(&line);
        }
    }

    /// One line received while in IDLE.
    pub async fn idle_line(&mut self) -> Result<String> {
        let mut ignored = Response::default();
        let line = self.logical_line(&mut ignored).await?;
        self.track(&line);
        Ok(line)
    }

    /// Ends IDLE started with `tag`.
    pub async fn done(&mut self, tag: &str) -> Result<()> {
        self.conn.write_all(b"DONE\r\n").await?;
        match self.response(tag).await? {
            (Status::Ok, _) => Ok(()),
            (_, r) => Err(self.protocol("DONE", r.tagged.as_bytes())),
        }
    }

    /// Releases the read buffer (for connections held idle).
    pub fn shrink(&mut self) {
        self.conn.shrink();
    }

    /// `STATUS mailbox (MESSAGES)`.
    pub async fn message_count(&mut self, mailbox: &str) -> Result<u64> {
        let r = self.ok(&format!("STATUS {} (MESSAGES)", quote(mailbox))).await?;
        r.untagged
            .iter()
            .find_map(|l| {
                let upper = l.to_ascii_uppercase();
                let i = upper.find("MESSAGES ")? + "MESSAGES ".len();
                upper[i..].split([' ', ')']).next()?.parse().ok()
            })
            .ok_or_else(|| self.protocol("STATUS", r.tagged.as_bytes()))
    }
}

/// The length of the literal a response line ends with (`{n}` or `~{n}`).
fn literal_len(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    line[open + 1..line.len() - 1].trim_end_matches('+').parse().ok()
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One logged-in connection per account, for watching INBOXes fill up: logged in before the
/// mail is sent, so that logging in (password hashing) is not counted as delivery time.
pub struct Watchers {
    sessions: Vec<(String, Imap)>,
}

impl Watchers {
    pub async fn login(target: Target, accounts: &Accounts) -> Result<Watchers> {
        let mut sessions = Vec::new();
        for address in accounts.all() {
            let imap = Imap::login(target, &address, &accounts.password).await?;
            sessions.push((address, imap));
        }
        Ok(Watchers { sessions })
    }

    /// The INBOX message count of every account, in account order.
    pub async fn counts(&mut self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for (_, imap) in &mut self.sessions {
            out.push(imap.message_count("INBOX").await?);
        }
        Ok(out)
    }

    /// Polls `STATUS INBOX (MESSAGES)` (every 20 ms) until each account has at least its
    /// count in `targets` (account order); returns when the last one did.
    pub async fn wait(&mut self, targets: &[u64], timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<usize> = (0..self.sessions.len().min(targets.len())).collect();
        loop {
            let mut still = Vec::new();
            for i in pending {
                if self.sessions[i].1.message_count("INBOX").await? < targets[i] {
                    still.push(i);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                let waiting: Vec<&str> = pending.iter().map(|&i| self.sessions[i].0.as_str()).collect();
                return Err(BenchError::Timeout(format!("mail not delivered to {}", waiting.join(", "))));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Options of [`read`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub target: Target,
    pub accounts: Accounts,
    pub concurrency: usize,
}

/// C clients, client i on account i (wrapping): login, SELECT INBOX, FETCH 1:* (FLAGS
/// ENVELOPE BODYSTRUCTURE), then `FETCH n BODY.PEEK[]` for every message, one at a time.
/// Timed from the first SELECT to the last body (logins are timed apart: password hashing
/// is not what this measures).
pub async fn read(opts: &ReadOptions) -> Result<Figures> {
    let login_start = Instant::now();
    let mut sessions = Vec::new();
    for i in 0..opts.concurrency {
        sessions
            .push(Imap::login(opts.target, &opts.accounts.address(i + 1), &opts.accounts.password).await?);
    }
    let login_time = login_start.elapsed();

    let start = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut imap| {
            tokio::spawn(async move {
                let mut fetches = Latencies::default();
                let select = Instant::now();
                imap.ok("SELECT INBOX").await?;
                let r = imap.ok("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)").await?;
                let overview = select.elapsed();
                let mut bytes = r.literal_bytes;
                for n in 1..=imap.exists {
                    let t = Instant::now();
                    let r = imap.ok(&format!("FETCH {n} BODY.PEEK[]")).await?;
                    fetches.push(t.elapsed());
                    if r.literals == 0 {
                        return Err(BenchError::Protocol {
                            addr: opts_addr(&imap),
                            command: format!("FETCH {n} BODY.PEEK[]"),
                            reply: "no literal".into(),
                        });
                    }
                    bytes += r.literal_bytes;
                }
                let _ = imap.command("LOGOUT").await;
                Ok::<_, BenchError>((fetches, overview, bytes))
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut overviews = Latencies::default();
    let mut bytes = 0;
    for task in tasks {
        let (l, overview, b) = task.await.map_err(|e| BenchError::Invalid(format!("client task: {e}")))??;
        latencies.extend(l);
        overviews.push(overview);
        bytes += b;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let messages = latencies.len() as u64;
    let mut f = Figures::new("imap-read");
    f.int("clients", opts.concurrency as u64)
        .int("messages", messages)
        .int("bytes", bytes)
        .num("seconds", elapsed)
        .num("msgs_per_s", messages as f64 / elapsed)
        .num("mb_per_s", bytes as f64 / elapsed / 1e6)
        .num("login_ms", login_time.as_secs_f64() * 1000.0 / opts.concurrency.max(1) as f64)
        .latencies("select_and_overview", &mut overviews)
        .latencies("fetch_body", &mut latencies);
    Ok(f)
}

fn opts_addr(imap: &Imap) -> std::net::SocketAddr {
    imap.conn.addr()
}

/// Options of [`mixed`].
#[derive(Debug, Clone)]
pub struct MixedOptions {
    pub target: Target,
    pub accounts: Accounts,
    pub concurrency: usize,
    /// Operations per client.
    pub ops: usize,
    /// IDLE watchers on the INBOX.
    pub idle: usize,
    pub seed: u64,
}

/// The operations of [`mixed`], with their weights (percent).
const MIX: [(&str, u32); 6] =
    [("search", 30), ("store", 30), ("append", 15), ("copy", 10), ("move", 5), ("expunge", 10)];

/// The second mailbox COPY and MOVE go to.
const ARCHIVE: &str = "Archive";

/// C clients on the first account's INBOX (shared by all of them) doing a mix of SEARCH,
/// STORE, APPEND, COPY, MOVE and EXPUNGE (`MIX`), while IDLE watchers on the same INBOX
/// receive the changes. Reports operations per second and latency percentiles per kind.
pub async fn mixed(opts: &MixedOptions) -> Result<Figures> {
    let user = opts.accounts.address(1);
    let password = opts.accounts.password.clone();
    let pool = Arc::new(Pool::new(SizeSpec::Fixed(4 * 1024), opts.seed));
    {
        let mut setup = Imap::login(opts.target, &user, &password).await?;
        // Exists already on servers that create it with the account.
        let _ = setup.command(&format!("CREATE {ARCHIVE}")).await?;
        let _ = setup.command("LOGOUT").await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let notifications = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for _ in 0..opts.idle {
        let mut imap = Imap::login(opts.target, &user, &password).await?;
        imap.ok("SELECT INBOX").await?;
        let tag = imap.idle().await?;
        let (stop, notifications) = (stop.clone(), notifications.clone());
        watchers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    line = imap.idle_line() => {
                        line?;
                        notifications.fetch_add(1, Ordering::Relaxed);
                    }
                    _ = wait_for(&stop) => break,
                }
            }
            imap.done(&tag).await?;
            let _ = imap.command("LOGOUT").await;
            Ok::<_, BenchError>(())
        }));
    }

    let mut clients = Vec::new();
    for i in 0..opts.concurrency {
        let mut imap = Imap::login(opts.target, &user, &password).await?;
        imap.ok("SELECT INBOX").await?;
        clients.push((imap, StdRng::seed_from_u64(opts.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9))));
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (mut imap, mut rng))| {
            let (pool, user, ops) = (pool.clone(), user.clone(), opts.ops);
            tokio::spawn(async move {
                let mut lat: Vec<Latencies> = vec![Latencies::default(); MIX.len()];
                let mut failed = 0u64;
                for op_n in 0..ops {
                    let mut pick = rng.random_range(0..100);
                    let kind = MIX
                        .iter()
                        .position(|(_, w)| {
                            let hit = pick < *w;
                            pick = pick.saturating_sub(*w);
                            hit
                        })
                        .unwrap_or(0);
                    let exists = imap.exists.max(1);
                    let n = rng.random_range(1..=exists);
                    let t = Instant::now();
                    let status = match MIX[kind].0 {
                        "search" => {
                            let key = match op_n % 3 {
                                0 => "UNSEEN".to_string(),
                                1 => format!("SUBJECT {}", quote(["invoice", "meeting", "report"][op_n % 3])),
                                _ => "FLAGGED".to_string(),
                            };
                            imap.command(&format!("UID SEARCH {key}")).await?.0
                        }
                        "store" => {
                            let sign = if rng.random_range(0..2) == 0 { '+' } else { '-' };
                            imap.command(&format!("STORE {n} {sign}FLAGS.SILENT (\\Seen \\Flagged)")).await?.0
                        }
                        "append" => {
                            let seq = (i as u64) << 32 | op_n as u64;
                            let message = pool.message(seq, "mixed@bench.example", &user);
                            imap.append("INBOX", "", &message).await?.0
                        }
                        "copy" => imap.command(&format!("COPY {n} {ARCHIVE}")).await?.0,
                        "move" => imap.command(&format!("MOVE {n} {ARCHIVE}")).await?.0,
                        _ => {
                            let flagged =
                                imap.command(&format!("STORE {n} +FLAGS.SILENT (\\Deleted)")).await?.0;
                            if flagged == Status::Ok { imap.command("EXPUNGE").await?.0 } else { flagged }
                        }
                    };
                    lat[kind].push(t.elapsed());
                    // A message expunged by another client meanwhile may answer NO; counted.
                    if status != Status::Ok {
                        failed += 1;
                    }
                }
                let _ = imap.command("LOGOUT").await;
                Ok::<_, BenchError>((lat, failed))
            })
        })
        .collect();
    let mut per_kind: Vec<Latencies> = vec![Latencies::default(); MIX.len()];
    let mut failed = 0;
    for task in tasks {
        let (lat, f) = task.await.map_err(|e| BenchError::Invalid(format!("client task: {e}")))??;
        for (all, mine) in per_kind.iter_mut().zip(lat) {
            all.extend(mine);
        }
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Let the watchers see the last changes before they stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for w in watchers {
        w.await.map_err(|e| BenchError::Invalid(format!("watcher task: {e}")))??;
    }

    let mut all = Latencies::default();
    for l in &per_kind {
        all.extend(l.clone());
    }
    let ops = all.len() as u64;
    let mut f = Figures::new("imap-mixed");
    f.int("clients", opts.concurrency as u64)
        .int("idle_watchers", opts.idle as u64)
        .int("ops", ops)
        .int("not_ok", failed)
        .int("idle_notifications", notifications.load(Ordering::Relaxed))
        .num("seconds", elapsed)
        .num("ops_per_s", ops as f64 / elapsed)
        .latencies("op", &mut all);
    for ((name, _), l) in MIX.iter().zip(per_kind.iter_mut()) {
        f.latencies(name, l);
    }
    Ok(f)
}

async fn wait_for(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_found_at_line_ends() {
        assert_eq!(literal_len("* 1 FETCH (BODY[] {1234}"), Some(1234));
        assert_eq!(literal_len("* 1 FETCH (BINARY[] ~{12}"), Some(12));
        assert_eq!(literal_len("a APPEND INBOX {12+}"), Some(12));
        assert_eq!(literal_len("* OK {not a literal}"), None);
        assert_eq!(literal_len("* 3 EXISTS"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
