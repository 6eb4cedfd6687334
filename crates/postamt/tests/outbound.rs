//! Outgoing mail through the wire: two postamt servers on loopback. A takes mail from its user
//! over submission and delivers it to B, finding B through a test DNS server (MX b.test ->
//! mx.b.test -> 127.0.0.1) and B's SMTP port through `[relay] port`. Retries, bounces (RFC 3464
//! DSNs into the sender's INBOX), null MX, the smarthost with AUTH, `kill -9` with a full
//! queue, and the `queue` commands.

mod common;

use std::time::{Duration, Instant};

use common::dns::{DnsServer, LOCALHOST, Records};
use common::*;

const B_DOMAIN: &str = "b.test";
const CAROL: &str = "carol@b.test";
const DAVE: &str = "dave@b.test";

/// Polls `check` every 100 ms until it holds; panics with `what` after 30 s.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// DNS for B's domain: MX b.test -> mx.b.test -> 127.0.0.1.
fn dns() -> DnsServer {
    DnsServer::start(Records::new().mx(B_DOMAIN, 10, "mx.b.test").a("mx.b.test", LOCALHOST))
}

/// Server B: receives for b.test (carol, dave).
fn server_b(dns: &DnsServer, extra: &str) -> Server {
    let b = Server::start_with(&format!("{}{extra}", dns.config()));
    b.cli_ok(&["domain", "add", B_DOMAIN]);
    for user in [CAROL, DAVE] {
        b.cli_ok(&["account", "add", user, "--password", PASSWORD]);
    }
    b
}

/// Server A: alice@ and bob@example.test send through it; remote MX hosts on `port`.
fn server_a(dns: &DnsServer, port: u16, extra: &str) -> Server {
    Server::start_with(&format!("{}[relay]\nport = {port}\n{extra}", dns.config())).with_accounts()
}

/// Submits a message on A as alice; `mail_params` go on MAIL FROM, `rcpt_params` per RCPT.
fn submit(a: &Server, to: &[&str], mail_params: &str, rcpt_params: &str, message: &str) {
    let mut c = submission_session(a, "alice@example.test");
    c.ok(&format!("MAIL FROM:<alice@example.test>{mail_params}"), "250");
    for rcpt in to {
        c.ok(&format!("RCPT TO:<{rcpt}>{rcpt_params}"), "250");
    }
    c.ok("DATA", "354");
    c.send(message.as_bytes());
    let reply = c.cmd(".");
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    c.ok("QUIT", "221");
}

fn message(subject: &str, id: &str) -> String {
    format!(
        "From: Alice <alice@example.test>\r\nTo: carol@b.test\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@example.test>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n\
         Hello from A: {subject}.\r\n"
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A port nothing listens on (bound once, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The ids in `queue list`.
fn queue_ids(server: &Server) -> Vec<String> {
    server
        .cli_ok(&["queue", "list"])
        .lines()
        .filter(|l| !l.starts_with('\t') && *l != "queue is empty")
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

/// The parts of a multipart/report DSN: (part headers, part body).
fn report_parts(dsn: &str) -> Vec<(String, String)> {
    let boundary = dsn.split("boundary=\"").nth(1).and_then(|s| s.split('"').next()).expect("boundary");
    let delimiter = format!("\r\n--{boundary}");
    let body = dsn.split_once("\r\n\r\n").expect("header").1;
    body.split(&delimiter)
        .skip(1)
        .take_while(|p| !p.starts_with("--"))
        .map(|p| {
            let p = p.strip_prefix("\r\n").expect("CRLF after the boundary");
            let (h, b) = p.split_once("\r\n\r\n").expect("part header");
            (h.to_string(), b.to_string())
        })
        .collect()
}

#[test]
fn submitted_mail_is_delivered_to_the_other_server() {
    let dns = dns();
    let b = server_b(&dns, "");
    let a = server_a(&dns, b.addr("smtp").port(), "");
    submit(&a, &[CAROL, DAVE], "", "", &message("first", "m1"));

    wait_for("delivery to carol and dave", || b.inbox(CAROL).len() == 1 && b.inbox(DAVE).len() == 1);
    let got = text(&b.inbox(CAROL)[0]);
    assert!(got.starts_with("Return-Path: <alice@example.test>\r\n"), "{got}");
    assert!(got.contains("Message-ID: <m1@example.test>"), "{got}");
    assert!(got.ends_with("Hello from A: first.\r\n"), "{got}");
    // B's trace shows A's EHLO name and TLS; A's own Received line came along.
    assert!(got.contains(&format!("Received: from {HOSTNAME} ([127.0.0.1])")), "{got}");
    assert!(got.contains("with ESMTPS"), "{got}");
    assert!(got.matches("Received: ").count() >= 2, "{got}");
    wait_for("an empty queue on A", || queue_ids(&a).is_empty());
    assert!(dns.queries().iter().any(|(name, _)| name == B_DOMAIN), "{:?}", dns.queries());
    let log = a.log_text();
    assert!(
        log.lines().any(|l| l.contains("delivery attempt")
            && l.contains("mx.b.test[127.0.0.1]")
            && l.contains("delivered=2")),
        "{log}"
    );
    // Nothing bounced.
    assert!(a.inbox("alice@example.test").is_empty());
}

#[test]
fn temporary_rejection_is_retried_until_delivered() {
    let dns = dns();
    let b = server_b(&dns, "");
    // A one-byte quota: B answers 452 4.2.2 at RCPT (the SIZE A declares does not fit).
    b.cli_ok(&["quota", "set", CAROL, "1"]);
    let a = server_a(&dns, b.addr("smtp").port(), "[queue]\nretry = [\"1s\"]\n");
    submit(&a, &[CAROL], "", "", &message("later", "m2"));

    let mut id = String::new();
    wait_for("a deferred attempt", || {
        let Some(first) = queue_ids(&a).into_iter().next() else { return false };
        id = first;
        a.cli_ok(&["queue", "show", &id]).contains("452 4.2.2")
    });
    let shown = a.cli_ok(&["queue", "show", &id]);
    assert!(shown.contains(&format!("  {CAROL}\tpending\tmx.b.test[127.0.0.1] said: 452 4.2.2")), "{shown}");
    assert!(b.inbox(CAROL).is_empty());

    b.cli_ok(&["quota", "set", CAROL, "none"]);
    wait_for("delivery after the quota was lifted", || b.inbox(CAROL).len() == 1);
    wait_for("an empty queue on A", || queue_ids(&a).is_empty());
    assert!(a.inbox("alice@example.test").is_empty(), "no bounce for a delivered message");
    let log = a.log_text();
    assert!(log.lines().any(|l| l.contains("queue entry done") && !l.contains("attempt=1 ")), "{log}");
}

#[test]
fn permanent_rejections_make_one_dsn_for_all_failed_recipients() {
    let dns = dns();
    let b = server_b(&dns, "");
    let a = server_a(&dns, b.addr("smtp").port(), "");
    let mut c = submission_session(&a, "alice@example.test");
    c.ok("MAIL FROM:<alice@example.test> RET=HDRS ENVID=env+2B42", "250");
    c.ok("RCPT TO:<nobody@b.test> ORCPT=rfc822;Nobody@B.test", "250");
    c.ok("RCPT TO:<ghost@b.test>", "250");
    c.ok(&format!("RCPT TO:<{CAROL}>"), "250");
    c.ok("DATA", "354");
    c.send(message("partly", "m3").as_bytes());
    assert!(c.cmd(".").starts_with("250 2.0.0"));

    wait_for("the bounce", || !a.inbox("alice@example.test").is_empty());
    assert_eq!(b.inbox(CAROL).len(), 1, "the good recipient got it");
    wait_for("an empty queue on A", || queue_ids(&a).is_empty());
    std::thread::sleep(Duration::from_millis(1500));
    let inbox = a.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "one DSN for both failed recipients");
    let dsn = text(&inbox[0]);

    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(dsn.contains(&format!("\r\nFrom: Mail Delivery System <MAILER-DAEMON@{HOSTNAME}>\r\n")), "{dsn}");
    assert!(dsn.contains("\r\nTo: <alice@example.test>\r\n"), "{dsn}");
    assert!(dsn.contains("Content-Type: multipart/report; report-type=delivery-status;"), "{dsn}");
    let parts = report_parts(&dsn);
    assert_eq!(parts.len(), 3, "{dsn}");

    assert!(parts[0].0.contains("Content-Type: text/plain"), "{}", parts[0].0);
    assert!(
        parts[0].1.contains("<nobody@b.test>: mx.b.test[127.0.0.1] said: 550 5.1.1 User unknown"),
        "{}",
        parts[0].1
    );
    assert!(parts[0].1.contains("<ghost@b.test>: "), "{}", parts[0].1);

    assert!(parts[1].0.contains("Content-Type: message/delivery-status"), "{}", parts[1].0);
    let blocks: Vec<&str> = parts[1].1.trim_end().split("\r\n\r\n").collect();
    assert_eq!(blocks.len(), 3, "per-message fields and two recipients: {}", parts[1].1);
    assert!(blocks[0].starts_with(&format!("Reporting-MTA: dns; {HOSTNAME}\r\n")), "{}", blocks[0]);
    assert!(blocks[0].contains("Original-Envelope-Id: env+42\r\n"), "{}", blocks[0]);
    assert!(blocks[0].contains("Arrival-Date: "), "{}", blocks[0]);
    for (block, rcpt) in blocks[1..].iter().zip(["nobody@b.test", "ghost@b.test"]) {
        assert!(block.contains(&format!("Final-Recipient: rfc822; {rcpt}\r\n")), "{block}");
        assert!(block.contains("Action: failed\r\nStatus: 5.1.1\r\n"), "{block}");
        assert!(block.contains("Remote-MTA: dns; mx.b.test\r\n"), "{block}");
        assert!(block.contains("Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"), "{block}");
    }
    assert!(blocks[1].contains("Original-Recipient: rfc822; Nobody@B.test\r\n"), "{}", blocks[1]);
    assert!(!blocks[2].contains("Original-Recipient"), "{}", blocks[2]);
    assert!(!parts[1].1.contains(CAROL), "the delivered recipient is not reported");

    // RET=HDRS: the original header only.
    assert!(parts[2].0.contains("Content-Type: text/rfc822-headers"), "{}", parts[2].0);
    assert!(parts[2].1.contains("Message-ID: <m3@example.test>"), "{}", parts[2].1);
    assert!(!parts[2].1.contains("Hello from A"), "{}", parts[2].1);
}

#[test]
fn unreachable_host_is_retried_then_bounced_at_lifetime() {
    let dns = dns();
    let port = closed_port();
    let a = Server::start_with(&format!(
        "{}[relay.routes]\n\"dead.test\" = \"127.0.0.1:{port}\"\n[queue]\nretry = [\"1s\"]\nlifetime = \"3s\"\n",
        dns.config()
    ))
    .with_accounts();
    submit(&a, &["someone@dead.test"], "", " NOTIFY=FAILURE", &message("nowhere", "m4"));

    wait_for("a failed connection attempt", || {
        queue_ids(&a).first().is_some_and(|id| a.cli_ok(&["queue", "show", id]).contains("refused"))
    });
    wait_for("the bounce at the end of the lifetime", || !a.inbox("alice@example.test").is_empty());
    wait_for("an empty queue", || queue_ids(&a).is_empty());
    let dsn = text(&a.inbox("alice@example.test")[0]);
    let parts = report_parts(&dsn);
    let status = &parts[1].1;
    assert!(
        status.contains("Final-Recipient: rfc822; someone@dead.test\r\nAction: failed\r\nStatus: 4.4.1\r\n"),
        "{status}"
    );
    assert!(status.contains("Diagnostic-Code: X-Postamt; connect to 127.0.0.1[127.0.0.1]"), "{status}");
    // Tried more than once before giving up.
    let attempts: u32 = parts[0]
        .1
        .split("gave up after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in {}", parts[0].1));
    assert!(attempts >= 2, "{attempts} attempts");
    // The whole message comes back (no RET, small).
    assert!(parts[2].0.contains("Content-Type: message/rfc822"), "{}", parts[2].0);
    assert!(parts[2].1.contains("Hello from A: nowhere."), "{}", parts[2].1);
}

#[test]
fn null_mx_bounces_at_once_and_notify_never_is_silent() {
    let dns = DnsServer::start(Records::new().null_mx("nomail.test"));
    let a = server_a(&dns, 25, "[queue]\nretry = [\"1h\"]\n");
    submit(&a, &["x@nomail.test"], "", "", &message("void", "m5"));
    wait_for("the bounce", || !a.inbox("alice@example.test").is_empty());
    let dsn = text(&a.inbox("alice@example.test")[0]);
    let parts = report_parts(&dsn);
    assert!(parts[1].1.contains("Action: failed\r\nStatus: 5.1.10\r\n"), "{}", parts[1].1);
    assert!(parts[0].1.contains("null MX"), "{}", parts[0].1);
    wait_for("an empty queue", || queue_ids(&a).is_empty());

    // NOTIFY=NEVER: the recipient fails the same way, and nobody is told.
    submit(&a, &["y@nomail.test"], "", " NOTIFY=NEVER", &message("void again", "m6"));
    wait_for("the failure", || a.log_text().matches("failed=1").count() >= 2 && queue_ids(&a).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.inbox("alice@example.test").len(), 1, "no DSN for NOTIFY=NEVER");
}

#[test]
fn smarthost_with_starttls_and_auth() {
    let dns = dns();
    // B knows alice@example.test as an account of its own: the credentials A logs in with.
    let b = server_b(&dns, "").with_accounts();
    let submission = b.addr("submission");
    let a = Server::start_with(&format!(
        "{}[relay]\nsmarthost = \"{submission}\"\nsmarthost_user = \"alice@example.test\"\n\
         smarthost_password = \"{PASSWORD}\"\n",
        dns.config()
    ))
    .with_accounts();
    submit(&a, &[DAVE], "", "", &message("via smarthost", "m7"));
    wait_for("delivery through the smarthost", || b.inbox(DAVE).len() == 1);
    let got = text(&b.inbox(DAVE)[0]);
    // Received by B's submission service after STARTTLS and AUTH.
    assert!(got.contains("with ESMTPSA"), "{got}");
    assert!(got.contains("Message-ID: <m7@example.test>"), "{got}");
    wait_for("an empty queue", || queue_ids(&a).is_empty());
    assert!(!dns.queries().iter().any(|(name, _)| name == B_DOMAIN), "no MX lookup with a smarthost");

    // Wrong credentials: deferred (a configuration problem of ours), never bounced.
    let c = Server::start_with(&format!(
        "{}[relay]\nsmarthost = \"{submission}\"\nsmarthost_user = \"alice@example.test\"\n\
         smarthost_password = \"wrong\"\n",
        dns.config()
    ))
    .with_accounts();
    submit(&c, &[DAVE], "", "", &message("refused", "m8"));
    wait_for("a deferred attempt", || {
        queue_ids(&c).first().is_some_and(|id| c.cli_ok(&["queue", "show", id]).contains("535"))
    });
    assert!(c.inbox("alice@example.test").is_empty());
}

#[test]
fn kill_9_with_a_full_queue_loses_and_duplicates_nothing() {
    let dns = dns();
    // B's port is known but nothing listens there yet.
    let port = closed_port();
    let mut a = server_a(&dns, port, "[queue]\nretry = [\"1h\"]\n");
    let ids = ["k1", "k2", "k3"];
    for id in ids {
        submit(&a, &[CAROL], "", "", &message(id, id));
    }
    submit(&a, &[CAROL, DAVE], "", "", &message("both", "k4"));
    wait_for("a failed first attempt of every message", || {
        let list = a.cli_ok(&["queue", "list"]);
        list.matches("attempts 1").count() == 4
    });

    a.kill9_and_restart();
    let b =
        server_b(&dns, &format!("[listen]\nsmtp = [\"127.0.0.1:{port}\"]\nsubmission = [\"127.0.0.1:0\"]\n"));
    assert_eq!(queue_ids(&a).len(), 4, "the queue survived kill -9");
    assert_eq!(a.cli_ok(&["queue", "flush"]), "4 queue entries made due now\n");

    wait_for("every message at B", || b.inbox(CAROL).len() == 4 && b.inbox(DAVE).len() == 1);
    wait_for("an empty queue", || queue_ids(&a).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    let carol: Vec<String> = b.inbox(CAROL).iter().map(|m| text(m)).collect();
    assert_eq!(carol.len(), 4, "nothing twice");
    let mut message_ids: Vec<String> = carol
        .iter()
        .map(|m| {
            m.split("Message-ID: <").nth(1).and_then(|s| s.split('@').next()).unwrap_or_default().to_string()
        })
        .collect();
    message_ids.sort();
    assert_eq!(message_ids, ["k1", "k2", "k3", "k4"]);
    assert_eq!(b.inbox(DAVE).len(), 1);
    assert!(a.inbox("alice@example.test").is_empty(), "no bounce");
}

#[test]
fn queue_commands() {
    let dns = dns();
    let port = closed_port();
    let a = Server::start_with(&format!(
        "{}[relay.routes]\n\"dead.test\" = \"127.0.0.1:{port}\"\n[queue]\nretry = [\"1h\"]\n",
        dns.config()
    ))
    .with_accounts();
    submit(
        &a,
        &["x@dead.test", "y@dead.test"],
        " ENVID=abc RET=HDRS",
        " NOTIFY=SUCCESS,FAILURE",
        &message("cli", "q1"),
    );
    wait_for("the first attempt", || a.cli_ok(&["queue", "list"]).contains("attempts 1"));
    let id = queue_ids(&a).pop().expect("one entry");

    let shown = a.cli_ok(&["queue", "show", &id]);
    assert!(
        shown.starts_with(&format!("id:           {id}\nsender:       <alice@example.test>\n")),
        "{shown}"
    );
    assert!(shown.contains("\nattempts:     1\n"), "{shown}");
    assert!(shown.contains("\nnext attempt: "), "{shown}");
    assert!(shown.contains("(in "), "{shown}");
    assert!(shown.contains("\nparameters:   ENVID=abc RET=HDRS\n"), "{shown}");
    assert!(
        shown.contains("\n  x@dead.test\tpending\tNOTIFY=SUCCESS,FAILURE\tconnect to 127.0.0.1[127.0.0.1]"),
        "{shown}"
    );
    assert!(shown.contains("\n  y@dead.test\tpending\t"), "{shown}");

    for args in [
        ["queue", "show", "nonexistent"],
        ["queue", "delete", "nonexistent"],
        ["queue", "flush", "nonexistent"],
    ] {
        let out = a.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "postamt: queue entry \"nonexistent\" does not exist\n"
        );
    }

    // Flushed: the running server tries again at once.
    assert_eq!(a.cli_ok(&["queue", "flush", &id]), format!("queue entry {id} is due now\n"));
    wait_for("the second attempt", || a.cli_ok(&["queue", "show", &id]).contains("\nattempts:     2\n"));
    assert_eq!(a.cli_ok(&["queue", "flush"]), "1 queue entries made due now\n");
    wait_for("the third attempt", || a.cli_ok(&["queue", "show", &id]).contains("\nattempts:     3\n"));

    assert_eq!(a.cli_ok(&["queue", "delete", &id]), format!("deleted queue entry {id}\n"));
    assert_eq!(a.cli_ok(&["queue", "list"]), "queue is empty\n");
    assert!(a.inbox("alice@example.test").is_empty(), "deleting does not bounce");
}
