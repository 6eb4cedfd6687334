//! SMTP through the wire: exact dialogs against the real server, for the MX port (25) and
//! the submission ports (587 with STARTTLS, 465 with implicit TLS).

mod common;

use common::*;

const MSG: &str =
    "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n";

fn ehlo_lines(extra: &[&str]) -> String {
    let mut lines = vec![
        HOSTNAME,
        "PIPELINING",
        "SIZE 1048576",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ];
    lines.extend_from_slice(extra);
    let n = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
        .collect()
}

#[test]
fn mx_greeting_ehlo_and_simple_commands_exact() {
    let server = Server::start();
    let mut c = Client::connect(server.addr("smtp"));
    assert_eq!(c.reply(), format!("220 {HOSTNAME} ESMTP postamt\r\n"));
    assert_eq!(c.cmd("EHLO client.example"), ehlo_lines(&["STARTTLS"]));
    assert_eq!(c.cmd("HELO client.example"), format!("250 {HOSTNAME}\r\n"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        c.cmd("VRFY alice@example.test"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    assert_eq!(c.cmd("EXPN staff"), "502 5.5.1 EXPN is disabled\r\n");
    assert!(c.cmd("HELP").starts_with("214-2.0.0 Commands:"));
    assert_eq!(c.cmd("FOO bar"), "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>"), "503 5.5.1 Need MAIL before RCPT\r\n");
    assert_eq!(c.cmd("DATA"), "503 5.5.1 Need MAIL command\r\n");
    assert_eq!(c.cmd("AUTH PLAIN"), "503 5.5.1 AUTH not available on this service\r\n");
    assert_eq!(c.cmd("QUIT"), format!("221 2.0.0 {HOSTNAME} closing connection\r\n"));
    assert!(c.is_closed());
}

#[test]
fn mail_before_ehlo_and_nested_mail_are_refused() {
    let server = Server::start().with_accounts();
    let mut c = Client::connect(server.addr("smtp"));
    c.reply();
    assert_eq!(c.cmd("MAIL FROM:<x@remote.example>"), "503 5.5.1 Send EHLO first\r\n");
    c.ok("EHLO client.example", "250");
    c.ok("MAIL FROM:<x@remote.example>", "250 2.1.0");
    assert_eq!(c.cmd("MAIL FROM:<x@remote.example>"), "503 5.5.1 Nested MAIL command\r\n");
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients\r\n");
}

#[test]
fn mx_delivers_to_account_alias_and_catch_all() {
    let server = Server::start().with_accounts();
    server.cli_ok(&["alias", "add", "info@example.test", "bob@example.test"]);
    let mut c = mx_session(&server);
    assert!(
        send_mail(&mut c, "sender@remote.example", &["Bob@Example.Test"], MSG)
            .starts_with("250 2.0.0 Ok: queued as ")
    );
    assert!(
        send_mail(&mut c, "sender@remote.example", &["info@example.test"], MSG)
            .starts_with("250 2.0.0 Ok: queued as ")
    );
    // No catch-all yet: unknown users are refused at RCPT.
    c.ok("MAIL FROM:<sender@remote.example>", "250");
    assert_eq!(c.cmd("RCPT TO:<nobody@example.test>"), "550 5.1.1 User unknown\r\n");
    c.ok("RSET", "250");
    server.cli_ok(&["alias", "add", "@example.test", "alice@example.test"]);
    assert!(
        send_mail(&mut c, "sender@remote.example", &["anything@example.test"], MSG).starts_with("250 2.0.0")
    );
    let bob = server.inbox("bob@example.test");
    assert_eq!(bob.len(), 2);
    let first = String::from_utf8(bob[0].clone()).unwrap();
    assert!(first.starts_with("Return-Path: <sender@remote.example>\r\nReceived: from client.example ([127.0.0.1])\r\n\tby mx.test.example (postamt)"), "{first}");
    assert!(first.contains(" with ESMTP id "));
    assert!(first.contains("\r\n\tfor <Bob@example.test>;"));
    assert!(first.ends_with(MSG));
    assert_eq!(server.inbox("alice@example.test").len(), 1);
}

#[test]
fn duplicate_recipients_after_alias_expansion_get_one_copy_and_one_blob() {
    let server = Server::start().with_accounts();
    server.cli_ok(&["alias", "add", "b@example.test", "bob@example.test"]);
    let mut c = mx_session(&server);
    let reply = send_mail(
        &mut c,
        "s@remote.example",
        &["bob@example.test", "b@example.test", "BOB@example.test"],
        MSG,
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(server.inbox("bob@example.test").len(), 1);
    // One body to two accounts: stored once.
    let before = server.blob_count();
    let reply = send_mail(
        &mut c,
        "s@remote.example",
        &["alice@example.test", "bob@example.test"],
        "Subject: two\r\n\r\nshared body\r\n",
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(server.blob_count(), before + 1);
    let (a, b) = (server.inbox("alice@example.test"), server.inbox("bob@example.test"));
    assert_eq!(a.last(), b.last());
    // Several recipients: the Received header names none of them.
    assert!(!String::from_utf8_lossy(a.last().unwrap()).contains("for <"));
}

#[test]
fn mx_is_never_an_open_relay() {
    let server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    c.ok("MAIL FROM:<alice@example.test>", "250");
    assert_eq!(c.cmd("RCPT TO:<victim@elsewhere.example>"), "554 5.7.1 Relay access denied\r\n");
    assert_eq!(c.cmd("RCPT TO:<victim%elsewhere.example@example.test>"), "550 5.1.1 User unknown\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<@example.test:victim@elsewhere.example>"),
        "554 5.7.1 Relay access denied\r\n"
    );
    assert_eq!(c.cmd("RCPT TO:<victim@[127.0.0.1]>"), "554 5.7.1 Relay access denied\r\n");
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients\r\n");
    // Even a correct password does not make port 25 relay: it offers no AUTH.
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain("alice@example.test", PASSWORD))),
        "503 5.5.1 AUTH not available on this service\r\n"
    );
}

#[test]
fn pipelined_transaction_is_answered_in_order() {
    let server = Server::start().with_accounts();
    let mut c = Client::connect(server.addr("smtp"));
    c.reply();
    c.send(b"EHLO client.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250-"));
    assert_eq!(c.reply(), "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply(), "550 5.1.1 User unknown\r\n");
    assert_eq!(c.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"Subject: piped\r\n\r\n..dot\r\n.\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(c.reply(), "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"Subject: second\r\n\r\nx\r\n.\r\nQUIT\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("221 2.0.0"));
    let alice = server.inbox("alice@example.test");
    assert_eq!(alice.len(), 2);
    assert!(alice[0].ends_with(b"Subject: piped\r\n\r\n.dot\r\n"), "dot-unstuffed");
}

#[test]
fn bdat_chunks_are_delivered_and_line_ends_normalised() {
    let server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    c.ok("MAIL FROM:<s@remote.example> BODY=8BITMIME", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    let part1 = b"Subject: chunky\r\n\r\nfirst line\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    assert_eq!(c.reply(), format!("{} 2.0.0 {} octets received\r\n", 250, part1.len()));
    // A chunk with the CRLF.CRLF sequence inside: BDAT content is not dot-terminated.
    let part2 = b".\r\nQUIT\r\nlast\r\n";
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    assert!(
        server.inbox("alice@example.test")[0]
            .ends_with(b"Subject: chunky\r\n\r\nfirst line\r\n.\r\nQUIT\r\nlast\r\n")
    );
    // BDAT without a transaction: the chunk is still consumed, the stream stays in step.
    c.send(b"BDAT 6 LAST\r\nNOOP\r\n");
    assert_eq!(c.reply(), "503 5.5.1 Need MAIL command\r\n");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    // DATA after BDAT in one transaction is refused.
    c.ok("MAIL FROM:<s@remote.example>", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    c.send(b"BDAT 3\r\nabc");
    assert!(c.reply().starts_with("250"));
    assert_eq!(c.cmd("DATA"), "503 5.5.1 DATA not allowed after BDAT\r\n");
}

#[test]
fn smtp_smuggling_attempts_never_end_the_message() {
    let server = Server::start().with_accounts();
    for (i, smuggle) in
        [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r"].into_iter().enumerate()
    {
        let mut c = mx_session(&server);
        c.ok("MAIL FROM:<s@remote.example>", "250");
        c.ok("RCPT TO:<alice@example.test>", "250");
        c.ok("DATA", "354");
        c.send(b"Subject: legit\r\n\r\nbody");
        c.send(smuggle);
        c.send(b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n");
        // The only end of data is the final CRLF.CRLF; the message had bare line ends and
        // is refused as a whole, nothing in it ran as a command.
        assert_eq!(
            c.reply(),
            "554 5.6.0 Message contains bare CR or LF; lines must end with CRLF\r\n",
            "case {i}"
        );
        assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n", "case {i}");
    }
    assert!(server.inbox("alice@example.test").is_empty());
    assert!(server.inbox("bob@example.test").is_empty());
}

#[test]
fn overlong_lines_and_bad_syntax_get_clear_errors() {
    let server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    let long = format!("MAIL FROM:<{}@remote.example>", "a".repeat(5000));
    assert_eq!(c.cmd(&long), "500 5.5.6 Line too long\r\n");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:no-brackets@remote.example"),
        "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@b> FROB=1"), "555 5.5.4 Unsupported parameter FROB\r\n");
    assert_eq!(c.cmd("MAIL FROM:<jö@remote.example>"), "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n");
    c.ok("MAIL FROM:<jö@remote.example> SMTPUTF8", "250 2.1.0");
    assert_eq!(c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS"), "501 5.5.4 Bad NOTIFY value\r\n");
    c.ok("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test", "250 2.1.5");
    // Too many errors end the session.
    let mut c = mx_session(&server);
    for _ in 0..19 {
        assert!(c.cmd("BOGUS").starts_with("500"));
    }
    assert_eq!(
        c.cmd("BOGUS"),
        "500 5.5.1 Command unrecognized\r\n421 4.7.0 Too many errors, closing connection\r\n"
            .split_inclusive("\r\n")
            .next()
            .unwrap()
    );
    assert_eq!(c.reply(), "421 4.7.0 Too many errors, closing connection\r\n");
    assert!(c.is_closed());
}

#[test]
fn oversized_messages_are_refused_and_the_session_goes_on() {
    let server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    assert_eq!(
        c.cmd("MAIL FROM:<s@remote.example> SIZE=2000000"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    c.ok("MAIL FROM:<s@remote.example> SIZE=1000", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    c.ok("DATA", "354");
    let line = format!("{}\r\n", "x".repeat(998));
    for _ in 0..1100 {
        c.send(line.as_bytes());
    }
    assert_eq!(c.cmd("."), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    c.ok("MAIL FROM:<s@remote.example>", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    c.send(b"BDAT 1048000\r\n");
    c.send(&vec![b'y'; 1_048_000]);
    assert!(c.reply().starts_with("250 2.0.0 1048000 octets"));
    c.send(b"BDAT 1000 LAST\r\n");
    c.send(&[b'y'; 1000]);
    assert_eq!(c.reply(), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert!(server.inbox("alice@example.test").is_empty());
}

#[test]
fn quota_is_enforced_at_rcpt_and_at_end_of_data() {
    let server = Server::start().with_accounts();
    server.cli_ok(&["quota", "set", "alice@example.test", "2K"]);
    let mut c = mx_session(&server);
    c.ok("MAIL FROM:<s@remote.example> SIZE=5000", "250");
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>"), "452 4.2.2 Mailbox full\r\n");
    c.ok("RSET", "250");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "z".repeat(3000));
    c.ok("MAIL FROM:<s@remote.example>", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    c.ok("RCPT TO:<bob@example.test>", "250");
    c.ok("DATA", "354");
    c.send(big.as_bytes());
    // All or nothing: Bob does not get a copy either, the sender will retry.
    assert_eq!(c.cmd("."), "452 4.2.2 Mailbox full\r\n");
    assert!(server.inbox("bob@example.test").is_empty());
    assert!(
        send_mail(&mut c, "s@remote.example", &["alice@example.test"], "Subject: small\r\n\r\nok\r\n")
            .starts_with("250 2.0.0")
    );
    server.cli_ok(&["quota", "set", "alice@example.test", "100"]);
    c.ok("MAIL FROM:<s@remote.example>", "250");
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>"), "452 4.2.2 Mailbox full\r\n");
    server.cli_ok(&["quota", "set", "alice@example.test", "none"]);
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn submission_requires_tls_before_auth() {
    let server = Server::start().with_accounts();
    let mut c = Client::connect(server.addr("submission"));
    c.reply();
    assert_eq!(c.cmd("EHLO client.example"), ehlo_lines(&["STARTTLS"]));
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain("alice@example.test", PASSWORD))),
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>"), "530 5.7.0 Authentication required\r\n");
    c.ok("STARTTLS", "220 2.0.0 Ready to start TLS");
    c.upgrade_tls();
    // RFC 3207: the session starts over after TLS.
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>"), "503 5.5.1 Send EHLO first\r\n");
    assert_eq!(c.cmd("EHLO client.example"), ehlo_lines(&["AUTH PLAIN LOGIN"]));
    assert_eq!(c.cmd("STARTTLS"), "503 5.5.1 TLS not available or already active\r\n");
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>"), "530 5.7.0 Authentication required\r\n");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain("alice@example.test", PASSWORD))),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(c.cmd("AUTH PLAIN"), "503 5.5.1 Already authenticated\r\n");
    assert!(
        send_mail(&mut c, "alice@example.test", &["bob@example.test"], MSG)
            .starts_with("250 2.0.0 Ok: queued as ")
    );
    let bob = server.inbox("bob@example.test");
    assert_eq!(bob.len(), 1);
    let text = String::from_utf8(bob[0].clone()).unwrap();
    assert!(text.contains(" with ESMTPSA id "), "{text}");
    // The submission server added the missing Date and Message-ID (RFC 6409 section 8).
    assert!(text.contains("\r\nDate: ") && text.contains("\r\nMessage-ID: <"), "{text}");
}

#[test]
fn auth_login_and_failures() {
    let server = Server::start().with_accounts();
    let mut c = Client::connect_tls(server.addr("submissions"));
    assert_eq!(c.reply(), format!("220 {HOSTNAME} ESMTP postamt\r\n"));
    assert_eq!(c.cmd("EHLO client.example"), ehlo_lines(&["AUTH PLAIN LOGIN"]));
    assert_eq!(c.cmd("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type\r\n");
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&b64("alice@example.test")), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64("wrong")), "535 5.7.8 Authentication credentials invalid\r\n");
    assert_eq!(c.cmd("AUTH PLAIN"), "334 \r\n");
    assert_eq!(c.cmd("*"), "501 5.0.0 Authentication cancelled\r\n");
    assert_eq!(c.cmd("AUTH PLAIN !!!notbase64"), "501 5.5.2 Cannot decode response\r\n");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain("nobody@example.test", PASSWORD))),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(c.cmd(&format!("AUTH LOGIN {}", b64("alice@example.test"))), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        c.cmd(&b64("bad")),
        "535 5.7.8 Authentication credentials invalid\r\n421 4.7.0 Too many authentication failures, closing connection\r\n"
            .split_inclusive("\r\n")
            .next()
            .unwrap()
    );
    assert_eq!(c.reply(), "421 4.7.0 Too many authentication failures, closing connection\r\n");
    assert!(c.is_closed());
    // The right password works on a new connection (after the per-IP delay).
    let mut c = Client::connect_tls(server.addr("submissions"));
    c.reply();
    c.ok("EHLO client.example", "250");
    assert_eq!(c.cmd(&format!("AUTH LOGIN {}", b64("alice@example.test"))), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64(PASSWORD)), "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn failed_auth_slows_down_per_ip() {
    let server = Server::start_with("[auth]\nfailure_delay = \"200ms\"\nmax_failure_delay = \"800ms\"\n")
        .with_accounts();
    let mut c = Client::connect_tls(server.addr("submissions"));
    c.reply();
    c.ok("EHLO client.example", "250");
    let mut delays = vec![];
    for _ in 0..2 {
        let start = std::time::Instant::now();
        c.ok(&format!("AUTH PLAIN {}", plain("alice@example.test", "nope")), "535");
        delays.push(start.elapsed());
    }
    assert!(delays[0] >= std::time::Duration::from_millis(200), "{delays:?}");
    assert!(delays[1] >= std::time::Duration::from_millis(400), "{delays:?}");
}

#[test]
fn submission_sender_must_belong_to_the_account() {
    let server = Server::start().with_accounts();
    server.cli_ok(&["alias", "add", "sales@example.test", "alice@example.test"]);
    let mut c = submission_session(&server, "alice@example.test");
    assert_eq!(
        c.cmd("MAIL FROM:<bob@example.test>"),
        "550 5.7.1 Sender address not owned by authenticated user\r\n"
    );
    assert_eq!(c.cmd("MAIL FROM:<>"), "550 5.7.1 Sender address not owned by authenticated user\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<ceo@bank.example>"),
        "550 5.7.1 Sender address not owned by authenticated user\r\n"
    );
    // An alias of the account is its own address.
    c.ok("MAIL FROM:<sales@example.test>", "250 2.1.0");
    c.ok("RCPT TO:<bob@example.test>", "250");
    c.ok("DATA", "354");
    c.send(b"From: Bob <bob@example.test>\r\nSubject: forged\r\n\r\nx\r\n");
    assert_eq!(c.cmd("."), "550 5.7.1 From header address not owned by authenticated user\r\n");
    c.ok("MAIL FROM:<alice@example.test>", "250");
    c.ok("RCPT TO:<bob@example.test>", "250");
    c.ok("DATA", "354");
    c.send(b"Subject: no from\r\n\r\nx\r\n");
    assert_eq!(c.cmd("."), "550 5.6.0 Message has no From header\r\n");
    let reply = send_mail(
        &mut c,
        "alice@example.test",
        &["bob@example.test"],
        "From: Sales <Sales@Example.test>\r\nSubject: ok\r\n\r\nx\r\n",
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(server.inbox("bob@example.test").len(), 1);
}

#[test]
fn submission_queues_remote_recipients() {
    let server = Server::start().with_accounts();
    let mut c = submission_session(&server, "alice@example.test");
    c.ok("MAIL FROM:<alice@example.test> RET=HDRS ENVID=abc123", "250");
    c.ok("RCPT TO:<friend@remote.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;friend@remote.example", "250");
    c.ok("RCPT TO:<bob@example.test>", "250");
    assert_eq!(c.cmd("RCPT TO:<nobody@example.test>"), "550 5.1.1 User unknown\r\n");
    c.ok("DATA", "354");
    c.send(MSG.as_bytes());
    assert!(c.cmd(".").starts_with("250 2.0.0"));
    assert_eq!(server.inbox("bob@example.test").len(), 1);
    let queue = server.cli_ok(&["queue", "list"]);
    assert!(queue.contains("alice@example.test"), "{queue}");
    assert!(queue.contains("\tfriend@remote.example\tpending"), "{queue}");
    assert!(!queue.contains("bob@example.test"), "{queue}");
}

#[test]
fn input_pipelined_before_starttls_is_discarded() {
    let server = Server::start().with_accounts();
    let mut c = Client::connect(server.addr("submission"));
    c.reply();
    c.ok("EHLO client.example", "250");
    // CVE-2011-0411: commands sent in the same packet as STARTTLS must not run after TLS.
    c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<alice@example.test>\r\n");
    assert_eq!(c.reply(), "220 2.0.0 Ready to start TLS\r\n");
    c.upgrade_tls();
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("QUIT"), format!("221 2.0.0 {HOSTNAME} closing connection\r\n"));
}

#[test]
fn recipients_and_connections_are_limited() {
    let server = Server::start_with("[limits]\nrecipients = 3\nconnections_per_ip = 2\n").with_accounts();
    let mut c = mx_session(&server);
    c.ok("MAIL FROM:<s@remote.example>", "250");
    for _ in 0..3 {
        c.ok("RCPT TO:<alice@example.test>", "250");
    }
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>"), "452 4.5.3 Too many recipients\r\n");
    let mut second = Client::connect(server.addr("smtp"));
    assert!(second.reply().starts_with("220 "));
    let mut third = Client::connect(server.addr("submission"));
    assert_eq!(third.reply(), "421 4.7.0 Too many connections, try again later\r\n");
    assert!(third.is_closed());
    drop(second);
    c.ok("QUIT", "221");
}

#[test]
fn acknowledged_mail_survives_kill_9() {
    let mut server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    for i in 0..5 {
        let reply = send_mail(
            &mut c,
            "s@remote.example",
            &["alice@example.test"],
            &format!("Subject: durable {i}\r\n\r\nx\r\n"),
        );
        assert!(reply.starts_with("250 2.0.0"));
    }
    // SIGKILL right after the last 250: nothing gets flushed at exit.
    server.kill9_and_restart();
    let inbox = server.inbox("alice@example.test");
    assert_eq!(inbox.len(), 5);
    assert!(String::from_utf8_lossy(&inbox[4]).contains("Subject: durable 4"));
    let mut c = mx_session(&server);
    assert!(
        send_mail(&mut c, "s@remote.example", &["alice@example.test"], "Subject: after\r\n\r\nx\r\n")
            .starts_with("250 2.0.0")
    );
    assert_eq!(server.inbox("alice@example.test").len(), 6);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut server = Server::start().with_accounts();
    let mut c = mx_session(&server);
    c.ok("MAIL FROM:<s@remote.example>", "250");
    c.ok("RCPT TO:<alice@example.test>", "250");
    c.ok("DATA", "354");
    c.send(b"Subject: in flight\r\n\r\n");
    let mut idle = mx_session(&server);
    let stopper = std::thread::spawn(move || server.sigterm().code().map(|code| (code, server)));
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The idle session is told, the transaction in flight finishes.
    assert_eq!(idle.reply(), "421 4.3.2 Server shutting down, try again later\r\n");
    c.send(b"body\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    let (code, server) = stopper.join().unwrap().expect("exit code");
    assert_eq!(code, 0, "{}", server.log_text());
    assert_eq!(server.inbox("alice@example.test").len(), 1);
}
