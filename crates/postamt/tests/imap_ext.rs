//! IMAP extensions for fast synchronisation and big mailboxes, through the wire: CONDSTORE
//! and QRESYNC (RFC 7162), QUOTA (RFC 9208), BINARY (RFC 3516), UTF8=ACCEPT (RFC 6855),
//! SORT and THREAD (RFC 5256) with ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957). The RFCs'
//! own examples, adapted to our data, byte for byte; their error cases; and a 10,000-message
//! mailbox resynchronised after a few changes.

mod common;

use std::sync::Arc;

use common::*;

fn server() -> Server {
    Server::start_with(ALL_LISTENERS).with_accounts()
}

/// A plain message with the given subject, sender, date and extra header lines.
fn message(subject: &str, from: &str, date: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: bob@example.test\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}\r\nBody of {subject}.\r\n"
    )
}

fn simple(n: u32) -> String {
    message(&format!("message {n}"), "alice@example.test", "Thu, 26 Nov 2026 10:00:00 +0000", "")
}

/// The number in a `[CODE n]` response code of `out`.
fn code(out: &str, name: &str) -> u64 {
    let start =
        out.find(&format!("[{name} ")).unwrap_or_else(|| panic!("no {name} in {out}")) + name.len() + 2;
    out[start..].split(']').next().and_then(|n| n.parse().ok()).expect("number")
}

/// A SELECT answer without FLAGS, PERMANENTFLAGS and the lines that carry the mailbox's
/// UIDVALIDITY (UIDVALIDITY, MAILBOXID): everything else is compared exactly.
fn select_tail(out: &str) -> String {
    out.lines()
        .filter(|l| {
            !l.starts_with("* FLAGS")
                && !l.starts_with("* OK [PERMANENTFLAGS")
                && !l.contains("UIDVALIDITY")
                && !l.contains("MAILBOXID")
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

// ---- CONDSTORE ----

#[test]
fn condstore_fetch_store_search_status() {
    let server = server();
    for n in 1..=3 {
        deliver(&server, "bob@example.test", &simple(n));
    }
    // A session that has not enabled CONDSTORE: SELECT says nothing about MODSEQs.
    let mut plain = imap_login(&server, "bob@example.test");
    let out = plain.imap_ok("p1", "EXAMINE INBOX");
    assert!(!out.contains("HIGHESTMODSEQ"), "{out}");

    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(c.imap("e1", "ENABLE CONDSTORE"), "* ENABLED CONDSTORE\r\ne1 OK ENABLE completed\r\n");
    // The mailbox was created with MODSEQ 1; each delivery took the next.
    let out = c.imap_ok("s1", "SELECT INBOX");
    assert_eq!(
        select_tail(&out),
        "* 3 EXISTS\r\n* 3 RECENT\r\n* OK [UNSEEN 1] First unseen\r\n* OK [UIDNEXT 4] Predicted next UID\r\n\
         * OK [HIGHESTMODSEQ 4] Highest\r\ns1 OK [READ-WRITE] SELECT completed\r\n"
    );
    // RFC 7162 example 13.
    assert_eq!(
        c.imap("a", "FETCH 1:3 (MODSEQ)"),
        "* 1 FETCH (MODSEQ (2))\r\n* 2 FETCH (MODSEQ (3))\r\n* 3 FETCH (MODSEQ (4))\r\na OK FETCH completed\r\n"
    );
    // Example 3: all pass; .SILENT still reports the new MODSEQ, with the UID.
    assert_eq!(
        c.imap("a103", "UID STORE 2,1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Deleted)"),
        "* 1 FETCH (UID 1 MODSEQ (5))\r\n* 2 FETCH (UID 2 MODSEQ (6))\r\na103 OK STORE completed\r\n"
    );
    // Example 6: message 1 changed after 4, message 3 did not.
    assert_eq!(
        c.imap("d105", "STORE 1,3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Seen)"),
        "* 3 FETCH (UID 3 MODSEQ (7))\r\nd105 OK [MODIFIED 1] Conditional STORE failed\r\n"
    );
    // Example 8: UNCHANGEDSINCE 0 always fails.
    assert_eq!(
        c.imap("a102", "STORE 2 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)"),
        "a102 OK [MODIFIED 2] Conditional STORE failed\r\n"
    );
    // Example 12: CHANGEDSINCE, MODSEQ implied right after the UID.
    assert_eq!(
        c.imap("s100", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)"),
        "* 2 FETCH (UID 2 MODSEQ (6) FLAGS (\\Deleted \\Recent))\r\n\
         * 3 FETCH (UID 3 MODSEQ (7) FLAGS (\\Seen \\Recent))\r\ns100 OK FETCH completed\r\n"
    );
    // Section 3.1.5/3.1.6: the highest MODSEQ of the result.
    assert_eq!(
        c.imap("a", "SEARCH MODSEQ \"/flags/\\\\draft\" all 6"),
        "* SEARCH 2 3 (MODSEQ 7)\r\na OK SEARCH completed\r\n"
    );
    assert_eq!(c.imap("t", "SEARCH OR NOT MODSEQ 2 LARGER 50000"), "* SEARCH\r\nt OK SEARCH completed\r\n");
    // Example 19 (ESEARCH).
    assert_eq!(
        c.imap("a", "SEARCH RETURN (ALL) MODSEQ 5"),
        "* ESEARCH (TAG \"a\") ALL 1:3 MODSEQ 7\r\na OK SEARCH completed\r\n"
    );
    // Example 17.
    assert_eq!(
        c.imap("A042", "STATUS Sent (UIDNEXT MESSAGES HIGHESTMODSEQ)"),
        "* STATUS Sent (UIDNEXT 1 MESSAGES 0 HIGHESTMODSEQ 1)\r\nA042 OK STATUS completed\r\n"
    );
    // Example 14: a change by another session arrives with UID and MODSEQ.
    let mut other = imap_login(&server, "bob@example.test");
    other.imap_ok("o1", "SELECT INBOX");
    other.imap_ok("o2", "STORE 2 +FLAGS (\\Flagged)");
    assert_eq!(
        c.imap("C180", "NOOP"),
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Deleted \\Recent) MODSEQ (8))\r\nC180 OK NOOP completed\r\n"
    );
    // The first CONDSTORE enabling command with a mailbox selected reports HIGHESTMODSEQ
    // (section 3.1); later ones do not.
    assert_eq!(
        other.imap("o3", "FETCH 2 (MODSEQ)"),
        "* OK [HIGHESTMODSEQ 8] Highest\r\n* 2 FETCH (MODSEQ (8))\r\no3 OK FETCH completed\r\n"
    );
    assert_eq!(other.imap("o4", "FETCH 2 (MODSEQ)"), "* 2 FETCH (MODSEQ (8))\r\no4 OK FETCH completed\r\n");
    // A plain STORE under CONDSTORE answers with UID and MODSEQ too (section 3.2.4).
    assert_eq!(
        other.imap("o5", "STORE 1 -FLAGS (\\Deleted)"),
        "* 1 FETCH (UID 1 FLAGS () MODSEQ (9))\r\no5 OK STORE completed\r\n"
    );
    // SELECT (CONDSTORE) enables it for a fresh session (example 18).
    let mut fresh = imap_login(&server, "bob@example.test");
    assert!(fresh.imap_ok("A142", "SELECT INBOX (CONDSTORE)").contains("* OK [HIGHESTMODSEQ 9] Highest\r\n"));
    // Errors.
    assert!(fresh.imap("b1", "FETCH 1 (FLAGS) (CHANGEDSINCE 0)").starts_with("b1 BAD "));
    assert!(
        fresh
            .imap("b2", "UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
            .starts_with("b2 BAD VANISHED requires ENABLE QRESYNC")
    );
    assert!(fresh.imap("b3", "SELECT INBOX (QRESYNC (1 1))").starts_with("b3 BAD QRESYNC is not enabled"));
    assert!(
        plain
            .imap("b4", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
            .ends_with("b4 NO [READ-ONLY] Mailbox is read-only\r\n")
    );
}

// ---- QRESYNC ----

#[test]
fn qresync_select_vanished_and_expunge() {
    let server = server();
    for n in 1..=6 {
        deliver(&server, "bob@example.test", &simple(n));
    }
    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(c.imap("e", "ENABLE QRESYNC"), "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n");
    let out = c.imap_ok("s", "SELECT INBOX");
    let uidvalidity = code(&out, "UIDVALIDITY");
    let modseq = code(&out, "HIGHESTMODSEQ");
    assert_eq!(modseq, 7);
    // EXPUNGE reports VANISHED and the new HIGHESTMODSEQ (section 3.2.7).
    c.imap_ok("a1", "STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(
        c.imap("B202", "EXPUNGE"),
        "* VANISHED 2,4\r\nB202 OK [HIGHESTMODSEQ 10] EXPUNGE completed\r\n"
    );
    // Another session expunges and changes flags: this one hears VANISHED, not EXPUNGE.
    let mut other = imap_login(&server, "bob@example.test");
    other.imap_ok("o1", "SELECT INBOX");
    other.imap_ok("o2", "UID STORE 5 +FLAGS (\\Deleted)");
    other.imap_ok("o3", "UID EXPUNGE 5");
    other.imap_ok("o4", "UID STORE 3 +FLAGS (\\Answered)");
    assert_eq!(
        c.imap("n", "NOOP"),
        "* 2 FETCH (UID 3 FLAGS (\\Answered \\Recent) MODSEQ (13))\r\n* VANISHED 5\r\nn OK NOOP completed\r\n"
    );
    // MOVE under QRESYNC (RFC 6851 section 4.4 with RFC 7162).
    let out = c.imap("m", "UID MOVE 6 Archive");
    assert!(out.ends_with("* VANISHED 6\r\nm OK MOVE completed\r\n"), "{out}");
    deliver(&server, "bob@example.test", &simple(7));
    c.imap_ok("l", "LOGOUT");

    // Resynchronise from MODSEQ 7 (section 3.2.5.1): one VANISHED (EARLIER), then FETCHes
    // with UID, FLAGS and MODSEQ for what changed or arrived; [CLOSED] first when a mailbox
    // was selected.
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("e", "ENABLE QRESYNC");
    c.imap_ok("s0", "EXAMINE Sent");
    let out = c.imap_ok("A03", &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:7))"));
    assert_eq!(
        select_tail(&out),
        "* OK [CLOSED] Previous mailbox is now closed\r\n* 3 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 1] First unseen\r\n\
         * OK [UIDNEXT 8] Predicted next UID\r\n* OK [HIGHESTMODSEQ 15] Highest\r\n\
         * VANISHED (EARLIER) 2,4:6\r\n* 2 FETCH (UID 3 FLAGS (\\Answered) MODSEQ (13))\r\n\
         * 3 FETCH (UID 7 FLAGS (\\Recent) MODSEQ (15))\r\nA03 OK [READ-WRITE] SELECT completed\r\n"
    );
    // Known UIDs narrow the report; sequence match data (section 3.2.5.2) proves the client
    // knows everything up to UID 3 (message 2 is UID 3), so only 4:6 are reported.
    let out = c.imap_ok("A04", &format!("EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 4:7 (1,2 1,3)))"));
    assert!(
        out.contains("* VANISHED (EARLIER) 4:6\r\n* 3 FETCH (UID 7 FLAGS () MODSEQ (15))\r\nA04 OK"),
        "{out}"
    );
    let out = c.imap_ok("A05", &format!("EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 1:7 (1,2 1,2)))"));
    assert!(out.contains("* VANISHED (EARLIER) 2,4:6\r\n"), "{out}");
    // A different UIDVALIDITY: nothing is reported (section 3.2.5).
    let out = c.imap_ok("A02", &format!("EXAMINE INBOX (QRESYNC ({} 1))", uidvalidity + 1));
    assert!(!out.contains("VANISHED") && !out.contains("FETCH"), "{out}");
    // The VANISHED UID FETCH modifier (section 3.2.6): VANISHED (EARLIER) before the FETCHes.
    assert_eq!(
        c.imap("s100", &format!("UID FETCH 1:5 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")),
        "* VANISHED (EARLIER) 2,4:5\r\n* 2 FETCH (UID 3 MODSEQ (13) FLAGS (\\Answered))\r\ns100 OK FETCH completed\r\n"
    );
    assert!(c.imap("b1", "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)").starts_with("b1 BAD "));
    assert!(c.imap("b2", "UID FETCH 1 (FLAGS) (VANISHED)").starts_with("b2 BAD "));
}

/// A 10,000-message mailbox resynchronised after a few changes: QRESYNC answers with only
/// the changes, and a session that stays selected hears only the changes too.
#[test]
fn qresync_resync_of_a_big_mailbox_sends_only_the_changes() {
    const COUNT: u32 = 10_000;
    let server = server();
    fill_inbox(&server, "bob@example.test", COUNT);

    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("e", "ENABLE QRESYNC");
    let out = c.imap_ok("s", "SELECT INBOX");
    assert!(out.contains(&format!("* {COUNT} EXISTS\r\n")), "{out}");
    let uidvalidity = code(&out, "UIDVALIDITY");
    let modseq = code(&out, "HIGHESTMODSEQ");
    // A second session stays selected and watches.
    let mut watcher = imap_login(&server, "bob@example.test");
    watcher.imap_ok("e", "ENABLE QRESYNC");
    watcher.imap_ok("s", "SELECT INBOX");
    c.imap_ok("l", "LOGOUT");

    // A few changes elsewhere: three flag changes, two expunges, one new message.
    let mut other = imap_login(&server, "bob@example.test");
    other.imap_ok("o1", "SELECT INBOX");
    other.imap_ok("o2", "UID STORE 5,500,5000 +FLAGS (\\Flagged)");
    other.imap_ok("o3", "UID STORE 10,20 +FLAGS (\\Deleted)");
    other.imap_ok("o4", "UID EXPUNGE 10,20");
    deliver(&server, "bob@example.test", &simple(0));

    let start = std::time::Instant::now();
    let noop = watcher.imap("n", "NOOP");
    assert_eq!(
        noop,
        "* 5 FETCH (UID 5 FLAGS (\\Flagged) MODSEQ (10002))\r\n* 500 FETCH (UID 500 FLAGS (\\Flagged) MODSEQ (10003))\r\n\
         * 5000 FETCH (UID 5000 FLAGS (\\Flagged) MODSEQ (10004))\r\n* VANISHED 10,20\r\n* 9999 EXISTS\r\n\
         * 1 RECENT\r\nn OK NOOP completed\r\n"
    );

    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("e", "ENABLE QRESYNC");
    let out = c.imap_ok("A03", &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))"));
    let elapsed = start.elapsed();
    assert_eq!(
        select_tail(&out),
        "* 9999 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 1] First unseen\r\n* OK [UIDNEXT 10002] Predicted next UID\r\n\
         * OK [HIGHESTMODSEQ 10008] Highest\r\n* VANISHED (EARLIER) 10,20\r\n\
         * 5 FETCH (UID 5 FLAGS (\\Flagged) MODSEQ (10002))\r\n* 498 FETCH (UID 500 FLAGS (\\Flagged) MODSEQ (10003))\r\n\
         * 4998 FETCH (UID 5000 FLAGS (\\Flagged) MODSEQ (10004))\r\n* 9999 FETCH (UID 10001 FLAGS () MODSEQ (10008))\r\n\
         A03 OK [READ-WRITE] SELECT completed\r\n"
    );
    // The whole answer is a few hundred bytes for a 10,000-message mailbox.
    assert!(out.len() < 1024, "{} bytes", out.len());
    assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
}

/// Puts `count` messages into an account's INBOX through the storage interface, many
/// deliveries at a time (they share commits), all with one body.
fn fill_inbox(server: &Server, address: &str, count: u32) {
    use postamt_store::{DeliveryBatch, DeliveryTarget, Flags, Store};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store =
            Arc::new(postamt_store::sqlite::SqliteStore::open(&server.data_dir()).expect("open store"));
        let account = store.account_by_address(address).await.unwrap().expect("account").id;
        let body = simple(1).into_bytes();
        let size = body.len() as u64;
        let blob = store.put_blob(Arc::new(body)).await.expect("blob");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let (store, blob) = (store.clone(), blob.clone());
            tasks.spawn(async move {
                let batch = DeliveryBatch {
                    blob,
                    size,
                    internal_date: 1_795_000_000,
                    targets: vec![DeliveryTarget { account, mailbox: None, flags: Flags::NONE }],
                    enqueue: None,
                    info: None,
                };
                store.deliver(batch).await.expect("deliver").results[0].expect("delivered");
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("task");
        }
    });
}

// ---- QUOTA ----

#[test]
fn quota_roots_limits_and_overquota() {
    let server = server();
    server.cli_ok(&["account", "add", "admin@example.test", "--password", PASSWORD, "--admin"]);
    deliver(&server, "bob@example.test", &simple(1));
    let mut c = imap_login(&server, "bob@example.test");
    // RFC 9208 section 4.2.1: no limits, an empty list.
    assert_eq!(
        c.imap("G0002", "GETQUOTAROOT INBOX"),
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" ()\r\nG0002 OK GETQUOTAROOT completed\r\n"
    );
    // STORAGE in units of 1024 octets, usage rounded up.
    server.cli_ok(&["quota", "set", "bob@example.test", "10K"]);
    let size = server.inbox("bob@example.test")[0].len();
    assert_eq!(
        c.imap("G0001", "GETQUOTA \"\""),
        format!("* QUOTA \"\" (STORAGE {} 10)\r\nG0001 OK GETQUOTA completed\r\n", size.div_ceil(1024))
    );
    // The mailbox need not exist (section 4.1.2).
    assert!(c.imap_ok("G3", "GETQUOTAROOT Nonexistent").starts_with("* QUOTAROOT Nonexistent \"\"\r\n"));
    assert_eq!(c.imap("G4", "GETQUOTA \"#user/bob\""), "G4 NO [NONEXISTENT] No such quota root\r\n");
    assert_eq!(
        c.imap("S1", "SETQUOTA \"\" (STORAGE 512)"),
        "S1 NO [NOPERM] Only administrators may set quotas\r\n"
    );
    // STATUS DELETED and DELETED-STORAGE (section 4.1.4).
    c.imap_ok("s", "SELECT INBOX");
    c.imap_ok("d", "STORE 1 +FLAGS (\\Deleted)");
    assert_eq!(
        c.imap("S0003", "STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)"),
        format!(
            "* STATUS INBOX (MESSAGES 1 DELETED 1 DELETED-STORAGE {size})\r\nS0003 OK STATUS completed\r\n"
        )
    );

    // An administrator sets its own limits; unlisted ones are removed (section 4.1.3).
    let mut a = imap_login(&server, "admin@example.test");
    assert_eq!(
        a.imap("S0001", "SETQUOTA \"\" (STORAGE 1 MESSAGE 1)"),
        "* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 1)\r\nS0001 OK SETQUOTA completed\r\n"
    );
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(2000));
    a.send(format!("A003 APPEND INBOX {{{}}}\r\n", big.len()).as_bytes());
    assert_eq!(a.imap_line(), "+ Ready for literal data\r\n");
    a.send(format!("{big}\r\n").as_bytes());
    assert_eq!(a.imap_line(), "A003 NO [OVERQUOTA] Quota exceeded\r\n");
    assert_eq!(
        a.imap("S2", "SETQUOTA \"\" (MESSAGE 1)"),
        "* QUOTA \"\" (MESSAGE 0 1)\r\nS2 OK SETQUOTA completed\r\n"
    );
    a.send(b"A4 APPEND INBOX {12+}\r\nSubject: a\r\n\r\n");
    assert!(a.imap_until("A4").starts_with("A4 OK [APPENDUID "));
    a.send(b"A5 APPEND INBOX {12+}\r\nSubject: b\r\n\r\n");
    assert_eq!(a.imap_until("A5"), "A5 NO [OVERQUOTA] Quota exceeded\r\n");
    a.imap_ok("s", "SELECT INBOX");
    assert_eq!(a.imap("C1", "COPY 1 Archive"), "C1 NO [OVERQUOTA] Quota exceeded\r\n");
    assert_eq!(
        a.imap("S3", "SETQUOTA \"\" (STORAGE 1 BOGUS 2)"),
        "S3 NO [CANNOT] Unsupported resource BOGUS\r\n"
    );
    assert_eq!(a.imap("S4", "SETQUOTA \"x\" ()"), "S4 NO [NONEXISTENT] No such quota root\r\n");
    assert_eq!(a.imap("S5", "SETQUOTA \"\" ()"), "* QUOTA \"\" ()\r\nS5 OK SETQUOTA completed\r\n");
    a.imap_ok("C2", "COPY 1 Archive");
}

// ---- BINARY ----

const MULTIPART: &str = "From: Carol <carol@remote.example>\r\nTo: bob@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XX\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--XX--\r\n";

#[test]
fn binary_fetch_size_literal8_and_unknown_cte() {
    let server = server();
    deliver(&server, "bob@example.test", MULTIPART);
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("s", "SELECT INBOX");
    // RFC 3516 section 4.2: decoded content; literal8 only when it holds NUL.
    assert_eq!(
        c.imap("f1", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[2])"),
        "* 1 FETCH (BINARY[1] {7}\r\nGrüße BINARY.SIZE[1] 7 BINARY.SIZE[2] 3)\r\nf1 OK FETCH completed\r\n"
    );
    assert_eq!(
        c.imap("f2", "FETCH 1 BINARY.PEEK[2]<1.5>"),
        "* 1 FETCH (BINARY[2]<1> {2}\r\n\u{1}\u{2})\r\nf2 OK FETCH completed\r\n"
    );
    // BINARY without .PEEK sets \Seen, reported with the data.
    assert_eq!(
        c.imap("f3", "FETCH 1 BINARY[2]"),
        "* 1 FETCH (BINARY[2] ~{3}\r\n\u{0}\u{1}\u{2} FLAGS (\\Seen \\Recent))\r\nf3 OK FETCH completed\r\n"
    );
    // Section 4.3: NO [UNKNOWN-CTE] for an encoding the server cannot decode.
    assert_eq!(
        c.imap("f4", "FETCH 1 BINARY.PEEK[3]"),
        "* 1 FETCH (BINARY[3] NIL)\r\nf4 NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding\r\n"
    );
    assert_eq!(
        c.imap("f5", "FETCH 1 BINARY.PEEK[9]"),
        "* 1 FETCH (BINARY[9] NIL)\r\nf5 OK FETCH completed\r\n"
    );
    // APPEND of a literal8 with NUL octets (section 4.4), read back as a literal8.
    let body = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01bin\x00\r\n";
    c.send(format!("A1 APPEND INBOX ~{{{}}}\r\n", body.len()).as_bytes());
    assert_eq!(c.imap_line(), "+ Ready for literal data\r\n");
    c.send(body);
    c.send(b"\r\n");
    let out = c.imap_until("A1");
    assert!(out.contains("A1 OK [APPENDUID "), "{out}");
    assert_eq!(
        c.imap("f6", "FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])"),
        "* 2 FETCH (BINARY.SIZE[1] 8 BINARY[1] ~{8}\r\n\u{0}\u{1}bin\u{0}\r\n)\r\nf6 OK FETCH completed\r\n"
    );
}

// ---- UTF8=ACCEPT ----

#[test]
fn utf8_accept_names_and_append() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(c.imap("e", "ENABLE UTF8=ACCEPT"), "* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed\r\n");
    c.imap_ok("c1", "CREATE \"Grüße/日本\"");
    assert_eq!(
        c.imap("l1", "LIST \"\" \"Grüße*\""),
        "* LIST (\\HasChildren) \"/\" \"Grüße\"\r\n* LIST (\\HasNoChildren) \"/\" \"Grüße/日本\"\r\nl1 OK LIST completed\r\n"
    );
    // Still IMAP4rev1 otherwise: \Recent and SEARCH answers.
    let out = c.imap_ok("s", "SELECT \"Grüße/日本\"");
    assert!(out.contains("* 0 RECENT\r\n"), "{out}");
    // RFC 6855 section 4: APPEND with the UTF8 data item.
    let msg = "Subject: Grüße\r\n\r\nhallo\r\n";
    c.send(format!("A1 APPEND \"Grüße/日本\" UTF8 (~{{{}+}}\r\n{msg})\r\n", msg.len()).as_bytes());
    let out = c.imap_until("A1");
    assert!(out.starts_with("* 1 EXISTS\r\n* 1 RECENT\r\nA1 OK [APPENDUID "), "{out}");
    assert_eq!(
        c.imap("f", "FETCH 1 BODY.PEEK[HEADER]"),
        "* 1 FETCH (BODY[HEADER] {20}\r\nSubject: Grüße\r\n\r\n)\r\nf OK FETCH completed\r\n"
    );
    // RFC 6855 section 3: no CHARSET once UTF-8 is enabled.
    assert!(c.imap("b", "SEARCH CHARSET UTF-8 ALL").starts_with("b BAD "));
    // An IMAP4rev1 session without it sees modified UTF-7.
    let mut old = imap_login(&server, "bob@example.test");
    assert_eq!(
        old.imap("l2", "LIST \"\" Gr*"),
        "* LIST (\\HasChildren) \"/\" Gr&APwA3w-e\r\n* LIST (\\HasNoChildren) \"/\" Gr&APwA3w-e/&ZeVnLA-\r\nl2 OK LIST completed\r\n"
    );
    assert!(old.imap("a2", "APPEND INBOX UTF8 ({5+}\r\nx\r\n\r\n)").starts_with("a2 BAD "));
}

// ---- SORT, ESORT, THREAD ----

fn sort_server() -> (Server, Client) {
    let server = server();
    // seq: 1 "Hello" from zed, 2 "Re: hello" from ann (reply), 3 "Apples" from bob,
    // 4 "[list] Re: Apples" from carol, 5 no subject, no Date.
    let msgs = [
        message("Hello", "Zed Zulu <zed@x.test>", "Mon, 23 Nov 2026 10:00:00 +0000", "Message-ID: <1@x>\r\n"),
        message(
            "Re: hello",
            "ann@y.test",
            "Wed, 25 Nov 2026 10:00:00 +0000",
            "Message-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nCc: Cc Person <cc@z.test>\r\n",
        ),
        message(
            "Apples",
            "\"Adam\" <bob@b.test>",
            "Tue, 24 Nov 2026 10:00:00 +0100",
            "Message-ID: <3@x>\r\n",
        ),
        message(
            "[list] Re: Apples",
            "Carol <carol@c.test>",
            "Tue, 24 Nov 2026 11:00:00 +0000",
            "Message-ID: <4@x>\r\nReferences: <3@x> <gone@x>\r\n",
        ),
        "From: nobody@n.test\r\nMessage-ID: <5@x>\r\n\r\nNo subject, no date.\r\n".to_string(),
    ];
    for m in &msgs {
        deliver(&server, "bob@example.test", m);
    }
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("s", "SELECT INBOX");
    (server, c)
}

#[test]
fn sort_by_every_key_with_reverse_and_esort() {
    let (_server, mut c) = sort_server();
    // Base subjects: "", apples, apples, hello, hello; ties by sequence number.
    assert_eq!(c.imap("A282", "SORT (SUBJECT) UTF-8 ALL"), "* SORT 5 3 4 1 2\r\nA282 OK SORT completed\r\n");
    // RFC 5256 example A283: (SUBJECT REVERSE DATE). Message 5 has no Date: its
    // internal date (the newest) counts.
    assert_eq!(
        c.imap("A283", "SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
        "* SORT 5 4 3 2 1\r\nA283 OK SORT completed\r\n"
    );
    assert_eq!(c.imap("a", "SORT (DATE) UTF-8 ALL"), "* SORT 1 3 4 2 5\r\na OK SORT completed\r\n");
    assert_eq!(c.imap("a", "SORT (ARRIVAL) US-ASCII ALL"), "* SORT 1 2 3 4 5\r\na OK SORT completed\r\n");
    // FROM: the addr-mailbox (ann, bob, carol, nobody, zed).
    assert_eq!(c.imap("a", "SORT (FROM) UTF-8 ALL"), "* SORT 2 3 4 5 1\r\na OK SORT completed\r\n");
    // DISPLAYFROM (RFC 5957): the display name, else the address.
    assert_eq!(c.imap("a", "SORT (DISPLAYFROM) UTF-8 ALL"), "* SORT 3 2 4 5 1\r\na OK SORT completed\r\n");
    // CC: empty sorts first.
    assert_eq!(c.imap("a", "SORT (CC) UTF-8 ALL"), "* SORT 1 3 4 5 2\r\na OK SORT completed\r\n");
    // Messages 1 and 3 have the same size: REVERSE leaves ties in mailbox order.
    assert_eq!(c.imap("a", "SORT (REVERSE SIZE) UTF-8 ALL"), "* SORT 4 2 1 3 5\r\na OK SORT completed\r\n");
    assert_eq!(
        c.imap("A284", "SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\""),
        "* SORT\r\nA284 OK SORT completed\r\n"
    );
    // UID SORT, and ESORT (RFC 5267): results in sort order; MIN/MAX the first and last.
    // Message 5 has no To: the empty string sorts first.
    assert_eq!(
        c.imap("a", "UID SORT (TO DATE) UTF-8 SINCE 1-Jan-2000"),
        "* SORT 5 1 3 4 2\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        c.imap("E01", "UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED"),
        "* ESEARCH (TAG \"E01\") UID ALL 5,2,4,3,1\r\nE01 OK SORT completed\r\n"
    );
    assert_eq!(
        c.imap("E02", "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 NOT 2"),
        "* ESEARCH (TAG \"E02\") MIN 5 MAX 1 COUNT 4 ALL 5,3:4,1\r\nE02 OK SORT completed\r\n"
    );
    assert_eq!(
        c.imap("E03", "SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing"),
        "* ESEARCH (TAG \"E03\") COUNT 0\r\nE03 OK SORT completed\r\n"
    );
    // RFC 7162 section 3.1.9/3.1.10: with MODSEQ, the highest MODSEQ of the result.
    assert_eq!(
        c.imap("a", "SORT (DATE) UTF-8 MODSEQ 4"),
        "* OK [HIGHESTMODSEQ 6] Highest\r\n* SORT 3 4 5 (MODSEQ 6)\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        c.imap("a", "SORT RETURN (ALL) (DATE) UTF-8 MODSEQ 4"),
        "* ESEARCH (TAG \"a\") ALL 3:5 MODSEQ 6\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        c.imap("b", "SORT (SUBJECT) ISO-8859-1 ALL"),
        "b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    assert!(c.imap("b", "SORT (SUBJECT) UTF-8 99").starts_with("b BAD "));
}

#[test]
fn thread_references_and_orderedsubject() {
    let (server, mut c) = sort_server();
    // REFERENCES: 2 replies to 1; 4 to 3 through a reference to a message never seen,
    // whose empty container is pruned; 5 stands alone. Threads ordered by their first date.
    assert_eq!(
        c.imap("a", "THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (1 2)(3 4)(5)\r\na OK THREAD completed\r\n"
    );
    // ORDEREDSUBJECT: by base subject, the first message the parent of the others.
    assert_eq!(
        c.imap("a", "THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "* THREAD (1 2)(3 4)(5)\r\na OK THREAD completed\r\n"
    );
    // Two unrelated messages with the same subject: siblings under a dummy.
    deliver(
        &server,
        "bob@example.test",
        &message("Hello", "x@x.test", "Mon, 30 Nov 2026 10:00:00 +0000", "Message-ID: <6@x>\r\n"),
    );
    c.imap_ok("n", "NOOP");
    assert_eq!(
        c.imap("a", "UID THREAD REFERENCES UTF-8 ALL"),
        "* THREAD ((1 2)(6))(3 4)(5)\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        c.imap("a", "THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "* THREAD (1 (2)(6))(3 4)(5)\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        c.imap("a", "THREAD REFERENCES UTF-8 SUBJECT nothing"),
        "* THREAD\r\na OK THREAD completed\r\n"
    );
    assert!(c.imap("b", "THREAD BOGUS UTF-8 ALL").starts_with("b BAD "));
}

// ---- OBJECTID, SAVEDATE, PREVIEW ----

/// The id inside `NAME (id)` of `out`.
fn object_id(out: &str, name: &str) -> String {
    let start =
        out.find(&format!("{name} (")).unwrap_or_else(|| panic!("no {name} in {out}")) + name.len() + 2;
    out[start..].split(')').next().expect("id").to_string()
}

#[test]
fn objectid_mailbox_email_and_thread_ids() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    // RFC 8474 section 4.1, 4.3: CREATE reports the MAILBOXID; it survives RENAME.
    let out = c.imap_ok("3", "CREATE foo");
    let id = object_id(&out, "MAILBOXID");
    assert!(out.starts_with(&format!("3 OK [MAILBOXID ({id})] CREATE completed")), "{out}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()) && id.len() <= 255);
    let other = object_id(&c.imap_ok("4", "CREATE bar"), "MAILBOXID");
    assert_ne!(id, other);
    c.imap_ok("8", "RENAME foo renamed");
    assert_eq!(
        c.imap("9", "STATUS renamed (MAILBOXID)"),
        format!("* STATUS renamed (MAILBOXID ({id}))\r\n9 OK STATUS completed\r\n")
    );
    let out = c.imap_ok("11", "LIST \"\" renamed RETURN (STATUS (MAILBOXID))");
    assert!(out.contains(&format!("* STATUS renamed (MAILBOXID ({id}))\r\n")), "{out}");
    // Section 4.2: SELECT reports it.
    assert!(c.imap_ok("27", "SELECT renamed").contains(&format!("* OK [MAILBOXID ({id})] Ok\r\n")));
    // A mailbox created anew under an old name gets a new id.
    c.imap_ok("u", "UNSELECT");
    c.imap_ok("d", "DELETE renamed");
    let again = object_id(&c.imap_ok("c", "CREATE renamed"), "MAILBOXID");
    assert_ne!(again, id);

    // Section 5.3: the example's three messages; B replies to A.
    let a = message(
        "Message A",
        "a@x.test",
        "Tue, 20 Mar 2018 03:07:37 +1100",
        "Message-ID: <fake.1521475657.54797@example.com>\r\n",
    );
    let b = message(
        "Re: Message A",
        "b@x.test",
        "Tue, 20 Mar 2018 03:08:37 +1100",
        "Message-ID: <fake.1521475657.21213@example.org>\r\nReferences: <fake.1521475657.54797@example.com>\r\n",
    );
    let m = message(
        "Message C",
        "c@x.test",
        "Tue, 20 Mar 2018 03:09:37 +1100",
        "Message-ID: <fake.1521475657.60280@example.com>\r\n",
    );
    for msg in [&a, &b, &m] {
        deliver(&server, "bob@example.test", msg);
    }
    c.imap_ok("s", "SELECT INBOX");
    let out = c.imap_ok("22", "FETCH 1:* (EMAILID THREADID)");
    let lines: Vec<&str> = out.lines().collect();
    let ids: Vec<(String, String)> =
        lines[..3].iter().map(|l| (object_id(l, "EMAILID"), object_id(l, "THREADID"))).collect();
    assert_eq!(ids[0].1, ids[1].1, "a reply shares the thread");
    assert_ne!(ids[0].1, ids[2].1);
    assert_ne!(ids[0].0, ids[1].0);
    assert!(ids.iter().all(|(e, t)| e != t));
    // Section 6: SEARCH by them.
    assert_eq!(
        c.imap("27", &format!("SEARCH EMAILID {}", ids[0].0)),
        "* SEARCH 1\r\n27 OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.imap("28", &format!("SEARCH THREADID {}", ids[0].1)),
        "* SEARCH 1 2\r\n28 OK SEARCH completed\r\n"
    );
    assert_eq!(c.imap("29", "SEARCH THREADID Tnothing"), "* SEARCH\r\n29 OK SEARCH completed\r\n");
    // A moved message keeps its EMAILID and THREADID (section 5.1).
    c.imap_ok("23", "MOVE 2 bar");
    c.imap_ok("25", "SELECT bar");
    assert_eq!(
        c.imap("26", "FETCH 1:* (EMAILID THREADID)"),
        format!("* 1 FETCH (EMAILID ({}) THREADID ({}))\r\n26 OK FETCH completed\r\n", ids[1].0, ids[1].1)
    );
    assert!(c.imap("b", "SEARCH EMAILID bad!id").starts_with("b BAD "));
}

#[test]
fn savedate_and_preview() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    let msg = "Subject: p\r\n\r\nHello   world,\r\n\r\n  second\tline.\r\n";
    c.send(
        format!("A1 APPEND INBOX \"01-Jan-2015 18:50:53 +0100\" {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes(),
    );
    assert!(c.imap_until("A1").starts_with("A1 OK [APPENDUID "));
    let html = "Subject: h\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><style>p {x}</style><p>Caf&eacute; &amp; <b>tea</b></p></html>\r\n";
    deliver(&server, "bob@example.test", html);
    let binary = "Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n";
    deliver(&server, "bob@example.test", binary);
    let long = format!("Subject: l\r\n\r\n{}\r\n", "word ".repeat(100));
    deliver(&server, "bob@example.test", &long);
    c.imap_ok("s", "SELECT INBOX");
    // RFC 8514 section 4: SAVEDATE is when it was saved, not the INTERNALDATE.
    let out = c.imap_ok("A101", "FETCH 1 (INTERNALDATE SAVEDATE)");
    assert!(out.starts_with("* 1 FETCH (INTERNALDATE \"01-Jan-2015 17:50:53 +0000\" SAVEDATE \""), "{out}");
    assert!(!out.contains("SAVEDATE \"01-Jan-2015"), "{out}");
    // Section 5: the saved-date search keys.
    assert_eq!(c.imap("A102", "SEARCH SAVEDBEFORE 1-Jan-2020"), "* SEARCH\r\nA102 OK SEARCH completed\r\n");
    assert_eq!(
        c.imap("A103", "SEARCH SAVEDSINCE 28-Dec-2014"),
        "* SEARCH 1 2 3 4\r\nA103 OK SEARCH completed\r\n"
    );
    assert_eq!(c.imap("A104", "SEARCH BEFORE 1-Jan-2020"), "* SEARCH 1\r\nA104 OK SEARCH completed\r\n");
    assert_eq!(c.imap("A105", "SEARCH NOT SAVEDATESUPPORTED"), "* SEARCH\r\nA105 OK SEARCH completed\r\n");
    // RFC 8970: white space collapsed; HTML without markup; no text: the empty string.
    assert_eq!(
        c.imap("A1", "FETCH 1:3 (PREVIEW)"),
        "* 1 FETCH (PREVIEW \"Hello world, second line.\")\r\n* 2 FETCH (PREVIEW \"Caf&eacute; & tea\")\r\n\
         * 3 FETCH (PREVIEW \"\")\r\nA1 OK FETCH completed\r\n"
    );
    // At most 200 characters; LAZY is accepted (and answered in full here).
    let out = c.imap_ok("B1", "FETCH 4 (PREVIEW (LAZY))");
    let preview = out.split('"').nth(1).expect("quoted preview");
    assert_eq!(preview.chars().count(), 199, "{preview:?}");
    assert!(c.imap("b", "FETCH 1 (PREVIEW (EAGER))").starts_with("b BAD "));
}

// ---- COMPRESS=DEFLATE ----

/// A client speaking raw deflate in both directions (RFC 4978), over plain TCP.
struct DeflateClient {
    stream: std::net::TcpStream,
    compress: flate2::Compress,
    decompress: flate2::Decompress,
    /// Inflated input not yet returned.
    buf: Vec<u8>,
    /// Whether compression is on.
    on: bool,
}

impl DeflateClient {
    fn send(&mut self, text: &[u8]) {
        use std::io::Write;
        let bytes = if self.on {
            let mut out = Vec::with_capacity(text.len() + 64);
            self.compress.compress_vec(text, &mut out, flate2::FlushCompress::Sync).expect("deflate");
            out
        } else {
            text.to_vec()
        };
        self.stream.write_all(&bytes).expect("send");
    }

    /// Reads (and inflates) until the response tagged `tag`; returns everything.
    fn until(&mut self, tag: &str) -> String {
        use std::io::Read;
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(pos) = text.find(&format!("{tag} ")).filter(|&p| p == 0 || text[..p].ends_with('\n'))
                && let Some(end) = text[pos..].find("\r\n")
            {
                let all = text[..pos + end + 2].to_string();
                self.buf.drain(..all.len());
                return all;
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "closed; so far {text:?}");
            if self.on {
                let mut input = &chunk[..n];
                while !input.is_empty() {
                    self.buf.reserve(65536);
                    let before = self.decompress.total_in();
                    self.decompress
                        .decompress_vec(input, &mut self.buf, flate2::FlushDecompress::None)
                        .expect("inflate");
                    input = &input[(self.decompress.total_in() - before) as usize..];
                }
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    fn cmd(&mut self, tag: &str, command: &str) -> String {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until(tag)
    }
}

#[test]
fn compress_deflate_both_directions() {
    let server = Server::start_with(&format!(
        "{ALL_LISTENERS}[auth]\nallow_plaintext = true\nfailure_delay = \"20ms\"\nmax_failure_delay = \"100ms\"\n"
    ))
    .with_accounts();
    let big =
        format!("Subject: big\r\n\r\n{}", "All work and no play makes Jack a dull boy.\r\n".repeat(3000));
    deliver(&server, "bob@example.test", &big);
    let stream = std::net::TcpStream::connect(server.addr("imap")).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut c = DeflateClient {
        stream,
        compress: flate2::Compress::new(flate2::Compression::default(), false),
        decompress: flate2::Decompress::new(false),
        buf: Vec::new(),
        on: false,
    };
    assert!(c.until("*").starts_with("* OK [CAPABILITY "));
    let out = c.cmd("a", &format!("LOGIN bob@example.test \"{PASSWORD}\""));
    assert!(out.contains("COMPRESS=DEFLATE"), "{out}");
    assert_eq!(c.cmd("b", "COMPRESS BOGUS"), "b BAD Unknown compression mechanism\r\n");
    // RFC 4978 section 3: the OK itself is uncompressed, everything after it compressed.
    assert_eq!(c.cmd("c", "COMPRESS DEFLATE"), "c OK DEFLATE active\r\n");
    c.on = true;
    assert_eq!(c.cmd("d", "NOOP"), "d OK NOOP completed\r\n");
    assert_eq!(c.cmd("e", "COMPRESS DEFLATE"), "e NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n");
    c.cmd("f", "SELECT INBOX");
    // A large literal through the compressed stream, and pipelined commands.
    let out = c.cmd("g", "FETCH 1 BODY.PEEK[TEXT]");
    assert!(
        out.starts_with(&format!("* 1 FETCH (BODY[TEXT] {{{}}}\r\nAll work", 3000 * 45)),
        "{}",
        &out[..80]
    );
    assert!(out.ends_with("dull boy.\r\n)\r\ng OK FETCH completed\r\n"));
    c.send(b"h1 NOOP\r\nh2 STATUS INBOX (MESSAGES)\r\n");
    assert_eq!(
        c.until("h2"),
        "h1 OK NOOP completed\r\n* STATUS INBOX (MESSAGES 1)\r\nh2 OK STATUS completed\r\n"
    );
    // A message appended through it, as a synchronising literal.
    c.send(b"i APPEND INBOX {12}\r\n");
    assert_eq!(c.until("+"), "+ Ready for literal data\r\n");
    c.send(b"Subject: x\r\n\r\n");
    assert!(c.until("i").contains("i OK [APPENDUID "));
    assert_eq!(c.cmd("j", "LOGOUT"), "* BYE postamt logging out\r\nj OK LOGOUT completed\r\n");
}

// ---- METADATA ----

#[test]
fn metadata_mailbox_and_server_annotations() {
    let server = server();
    server.cli_ok(&["account", "add", "admin@example.test", "--password", PASSWORD, "--admin"]);
    let mut c = imap_login(&server, "bob@example.test");
    // RFC 5464 section 4.3 examples: a multi-line literal, then several entries at once.
    c.send(b"a SETMETADATA INBOX (/private/comment {33}\r\n");
    assert_eq!(c.imap_line(), "+ Ready for literal data\r\n");
    c.send(b"My new comment across\r\ntwo lines.)\r\n");
    assert_eq!(c.imap_until("a"), "a OK SETMETADATA completed\r\n");
    assert_eq!(
        c.imap("a", "GETMETADATA \"INBOX\" /private/comment"),
        "* METADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)\r\na OK GETMETADATA completed\r\n"
    );
    c.imap_ok(
        "a",
        "SETMETADATA INBOX (/private/comment \"My new comment\" /shared/comment \"This one is for you!\")",
    );
    // Section 4.2: a list of entries; names are case-insensitive; a missing one is NIL.
    assert_eq!(
        c.imap("a", "GETMETADATA \"INBOX\" (/shared/comment /PRIVATE/Comment /private/none)"),
        "* METADATA INBOX (/shared/comment \"This one is for you!\" /private/comment \"My new comment\" /private/none NIL)\r\n\
         a OK GETMETADATA completed\r\n"
    );
    // Section 4.2.1: MAXSIZE leaves out longer values and reports the longest.
    assert_eq!(
        c.imap("a", "GETMETADATA \"INBOX\" (MAXSIZE 15) (/shared/comment /private/comment)"),
        "* METADATA INBOX (/private/comment \"My new comment\")\r\na OK [METADATA LONGENTRIES 20] GETMETADATA completed\r\n"
    );
    // Section 4.2.2: DEPTH 1 and infinity.
    c.imap_ok(
        "a",
        "SETMETADATA INBOX (/private/filters/values/small \"SMALLER 5000\" /private/filters/values/boss \"FROM \\\"boss@example.com\\\"\" /private/filters/values/boss/x \"deep\")",
    );
    assert_eq!(
        c.imap("a", "GETMETADATA \"INBOX\" (DEPTH 1) (/private/filters/values)"),
        "* METADATA INBOX (/private/filters/values NIL /private/filters/values/boss \"FROM \\\"boss@example.com\\\"\" \
         /private/filters/values/small \"SMALLER 5000\")\r\na OK GETMETADATA completed\r\n"
    );
    let out = c.imap_ok("a", "GETMETADATA INBOX (DEPTH infinity) /private/filters");
    assert!(out.contains("/private/filters/values/boss/x \"deep\""), "{out}");
    // NIL removes (section 4.3); binary values come back as literal8.
    c.imap_ok("a", "SETMETADATA INBOX (/private/comment NIL)");
    c.send(b"b SETMETADATA INBOX (/private/vendor/x/bin ~{3}\r\n");
    assert_eq!(c.imap_line(), "+ Ready for literal data\r\n");
    c.send(b"a\x00b)\r\n");
    assert_eq!(c.imap_until("b"), "b OK SETMETADATA completed\r\n");
    assert_eq!(
        c.imap("a", "GETMETADATA INBOX (/private/comment /private/vendor/x/bin)"),
        "* METADATA INBOX (/private/comment NIL /private/vendor/x/bin ~{3}\r\na\u{0}b)\r\na OK GETMETADATA completed\r\n"
    );
    // Server annotations: private ones for everybody, shared ones for administrators only.
    c.imap_ok("a", "SETMETADATA \"\" (/private/vendor/example/x \"mine\")");
    assert_eq!(
        c.imap("a", "SETMETADATA \"\" (/shared/comment \"Shared comment\")"),
        "a NO [NOPERM] Only administrators may set shared server annotations\r\n"
    );
    let mut admin = imap_login(&server, "admin@example.test");
    admin.imap_ok("a", "SETMETADATA \"\" (/shared/comment \"Shared comment\")");
    assert_eq!(
        admin.imap("a", "SETMETADATA \"\" (/shared/admin \"mailto:x@example.test\")"),
        "a NO [NOPERM] /shared/admin is read-only\r\n"
    );
    assert_eq!(
        c.imap("a", "GETMETADATA \"\" /shared/comment"),
        "* METADATA \"\" (/shared/comment \"Shared comment\")\r\na OK GETMETADATA completed\r\n"
    );
    assert_eq!(
        admin.imap("a", "GETMETADATA \"\" (/private/vendor/example/x)"),
        "* METADATA \"\" (/private/vendor/example/x NIL)\r\na OK GETMETADATA completed\r\n"
    );
    // Limits (sections 4.1 and 4.3): value size, entry count; all or nothing.
    let big = "x".repeat(16 * 1024 + 1);
    c.send(format!("a SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})\r\n", big.len()).as_bytes());
    assert_eq!(c.imap_until("a"), "a NO [METADATA MAXSIZE 16384] Value too large\r\n");
    let many: Vec<String> = (0..120).map(|i| format!("/private/n{i} \"v\"")).collect();
    assert_eq!(
        c.imap("a", &format!("SETMETADATA Archive ({})", many.join(" "))),
        "a NO [METADATA TOOMANY] Too many annotations\r\n"
    );
    assert_eq!(
        c.imap("a", "GETMETADATA Archive /private/n1"),
        "* METADATA Archive (/private/n1 NIL)\r\na OK GETMETADATA completed\r\n"
    );
    // Errors: unknown mailbox, bad names (section 3.2).
    assert_eq!(
        c.imap("a", "GETMETADATA Nope /private/comment"),
        "a NO [NONEXISTENT] Mailbox does not exist\r\n"
    );
    for bad_entry in ["/private/*", "/private//x", "/private/x/", "private/x", "/private/\u{e9}"] {
        assert!(
            c.imap("b", &format!("GETMETADATA INBOX \"{bad_entry}\"")).starts_with("b BAD "),
            "{bad_entry}"
        );
    }
    assert!(c.imap("b", "SETMETADATA INBOX (/other/x \"v\")").starts_with("b BAD "));
    // Annotations follow a rename and go with a deleted mailbox (section 4.1).
    c.imap_ok("c", "CREATE Work");
    c.imap_ok("c", "SETMETADATA Work (/shared/comment \"w\")");
    c.imap_ok("c", "RENAME Work Job");
    assert!(
        c.imap_ok("c", "GETMETADATA Job /shared/comment")
            .starts_with("* METADATA Job (/shared/comment \"w\")")
    );
    c.imap_ok("c", "DELETE Job");
    c.imap_ok("c", "CREATE Job");
    assert!(
        c.imap_ok("c", "GETMETADATA Job /shared/comment").starts_with("* METADATA Job (/shared/comment NIL)")
    );
}

/// RFC 7162 section 3.2: with METADATA, a mailbox annotation change raises its MODSEQ.
#[test]
fn metadata_change_raises_the_mailbox_modseq() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(
        c.imap("a", "STATUS Sent (HIGHESTMODSEQ)"),
        "* STATUS Sent (HIGHESTMODSEQ 1)\r\na OK STATUS completed\r\n"
    );
    c.imap_ok("b", "SETMETADATA Sent (/private/comment \"x\")");
    assert_eq!(
        c.imap("c", "STATUS Sent (HIGHESTMODSEQ)"),
        "* STATUS Sent (HIGHESTMODSEQ 2)\r\nc OK STATUS completed\r\n"
    );
}

/// RFC 7162 section 3.2 and section 6: while an expunge cannot be reported (FETCH, STORE and
/// SEARCH answers), a QRESYNC client is told a HIGHESTMODSEQ below it, so that resuming from
/// what it saw cannot skip the expunge; the VANISHED follows at the next allowed point.
#[test]
fn qresync_delayed_expunge_keeps_the_client_below_it() {
    let server = server();
    for n in 1..=3 {
        deliver(&server, "bob@example.test", &simple(n));
    }
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("e", "ENABLE QRESYNC");
    assert!(c.imap_ok("s", "SELECT INBOX").contains("[HIGHESTMODSEQ 4]"));
    let mut other = imap_login(&server, "bob@example.test");
    other.imap_ok("o1", "SELECT INBOX");
    other.imap_ok("o2", "STORE 1 +FLAGS (\\Deleted)");
    other.imap_ok("o3", "EXPUNGE");
    other.imap_ok("o4", "STORE 2 +FLAGS (\\Seen)");
    // Message 1 (UID 1) went at MODSEQ 6 (its flag change is not reported: it is gone); UID 3
    // changed at 7.
    assert_eq!(
        c.imap("f", "FETCH 3 (FLAGS)"),
        "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent) MODSEQ (7))\r\n* 3 FETCH (FLAGS (\\Seen \\Recent))\r\n* OK [HIGHESTMODSEQ 4] Expunges pending\r\nf OK FETCH completed\r\n"
    );
    assert_eq!(c.imap("n", "NOOP"), "* VANISHED 1\r\nn OK NOOP completed\r\n");
    assert_eq!(c.imap("n2", "NOOP"), "n2 OK NOOP completed\r\n");
}
