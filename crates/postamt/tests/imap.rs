//! IMAP through the wire: exact dialogs against the real server (RFC 9051 / RFC 3501 and
//! the extensions postamt advertises), several sessions watching each other, IDLE.

mod common;

use std::time::Duration;

use common::*;

fn server() -> Server {
    Server::start_with(ALL_LISTENERS).with_accounts()
}

const MSG1: &str = "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: first\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello Bob.\r\n.leading dot\r\n";
const MSG2: &str = "From: Carol <carol@remote.example>\r\nTo: bob@example.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nquarterly numbers\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XX--\r\n";

const CAPS_TAIL: &str = "SASL-IR LITERAL+ ID ENABLE";

#[test]
fn greeting_capability_and_login_rules() {
    let server = server();
    let mut c = Client::connect(server.addr("imap"));
    assert_eq!(
        c.imap_line(),
        format!("* OK [CAPABILITY IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED {CAPS_TAIL}] postamt ready\r\n")
    );
    assert_eq!(
        c.imap("a1", "CAPABILITY"),
        format!(
            "* CAPABILITY IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED {CAPS_TAIL}\r\na1 OK CAPABILITY completed\r\n"
        )
    );
    assert_eq!(
        c.imap("a2", &format!("LOGIN bob@example.test \"{PASSWORD}\"")),
        "a2 NO [PRIVACYREQUIRED] Plaintext login is not allowed without TLS; use STARTTLS\r\n"
    );
    assert_eq!(c.imap("a3", "SELECT INBOX"), "a3 BAD Log in first\r\n");
    assert_eq!(c.imap("a4", "NOOP"), "a4 OK NOOP completed\r\n");
    // Input pipelined behind STARTTLS is dropped (CVE-2011-0411 class).
    c.send(b"a5 STARTTLS\r\na6 LOGIN bob@example.test x\r\n");
    assert_eq!(c.imap_line(), "a5 OK Begin TLS negotiation now\r\n");
    c.upgrade_tls();
    assert_eq!(
        c.imap("a7", "CAPABILITY"),
        format!(
            "* CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=PLAIN AUTH=LOGIN {CAPS_TAIL}\r\na7 OK CAPABILITY completed\r\n"
        )
    );
    assert_eq!(
        c.imap("a8", "LOGIN bob@example.test wrong"),
        "a8 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    let ok = c.imap("a9", &format!("AUTHENTICATE PLAIN {}", plain("bob@example.test", PASSWORD)));
    assert!(ok.starts_with("a9 OK [CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE ESEARCH SEARCHRES MULTIAPPEND STATUS=SIZE CONDSTORE QRESYNC QUOTA QUOTASET QUOTA=RES-STORAGE QUOTA=RES-MESSAGE BINARY UTF8=ACCEPT SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES OBJECTID SAVEDATE PREVIEW COMPRESS=DEFLATE METADATA METADATA-SERVER APPENDLIMIT=1048576] Logged in\r\n"), "{ok}");
    assert_eq!(c.imap("b1", "LOGIN x y"), "b1 BAD Already authenticated\r\n");
    assert_eq!(
        c.imap("b2", "ID NIL"),
        format!(
            "* ID (\"name\" \"postamt\" \"version\" \"{}\")\r\nb2 OK ID completed\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(c.imap("b3", "LOGOUT"), "* BYE postamt logging out\r\nb3 OK LOGOUT completed\r\n");
    assert!(c.is_closed());
}

#[test]
fn authenticate_continuations_and_disabled_protocol() {
    let server = server();
    let mut c = Client::connect_tls(server.addr("imaps"));
    c.imap_line();
    c.send(b"a1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.imap_line(), "+ \r\n");
    assert_eq!(c.cmd_raw("*"), "a1 BAD Authentication cancelled\r\n");
    c.send(b"a2 AUTHENTICATE LOGIN\r\n");
    assert_eq!(c.imap_line(), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd_raw(&b64("bob@example.test")), "+ UGFzc3dvcmQ6\r\n");
    assert!(c.cmd_raw(&b64(PASSWORD)).starts_with("a2 OK [CAPABILITY "));
    server.cli_ok(&["account", "set", "alice@example.test", "--imap", "off"]);
    let mut c = Client::connect_tls(server.addr("imaps"));
    c.imap_line();
    assert_eq!(
        c.imap("a1", &format!("LOGIN alice@example.test \"{PASSWORD}\"")),
        "a1 NO [AUTHORIZATIONFAILED] IMAP access is disabled for this account\r\n"
    );
}

#[test]
fn select_reports_exactly_what_rfc_3501_and_9051_ask() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    deliver(&server, "bob@example.test", MSG2);
    let mut c = imap_login(&server, "bob@example.test");
    let out = c.imap_ok("s1", "SELECT inbox");
    let uidvalidity = out.split("[UIDVALIDITY ").nth(1).unwrap().split(']').next().unwrap().to_string();
    assert_eq!(
        out,
        format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
             * 2 EXISTS\r\n* 2 RECENT\r\n* OK [UNSEEN 1] First unseen\r\n\
             * OK [UIDVALIDITY {uidvalidity}] UIDs valid\r\n* OK [UIDNEXT 3] Predicted next UID\r\n\
             * OK [MAILBOXID (M{uidvalidity})] Ok\r\ns1 OK [READ-WRITE] SELECT completed\r\n"
        )
    );
    // \Recent belongs to the first session only.
    let mut other = imap_login(&server, "bob@example.test");
    assert!(other.imap_ok("s1", "EXAMINE INBOX").contains("* 0 RECENT\r\n"));
    assert!(other.imap("s2", "STORE 1 +FLAGS (\\Seen)").starts_with("s2 NO [READ-ONLY]"));
    // IMAP4rev2: no RECENT, no UNSEEN, a LIST response, [CLOSED] on reselect.
    let mut v2 = imap_login(&server, "bob@example.test");
    assert_eq!(v2.imap("e1", "ENABLE IMAP4rev2"), "* ENABLED IMAP4rev2\r\ne1 OK ENABLE completed\r\n");
    let out = v2.imap_ok("e2", "SELECT INBOX");
    assert!(!out.contains("RECENT") && !out.contains("UNSEEN"), "{out}");
    assert!(out.contains("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"), "{out}");
    let out = v2.imap_ok("e3", "SELECT Sent");
    assert!(out.starts_with("* OK [CLOSED] Previous mailbox is now closed\r\n"), "{out}");
    assert!(out.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"), "{out}");
    // [CLOSED] whatever the client enabled (RFC 7162 section 3.2.11), even when the new
    // mailbox cannot be selected.
    assert_eq!(
        c.imap("s2", "SELECT nosuch"),
        "* OK [CLOSED] Previous mailbox is now closed\r\ns2 NO [NONEXISTENT] Mailbox does not exist\r\n"
    );
    assert_eq!(c.imap("s3", "FETCH 1 FLAGS"), "s3 BAD No mailbox selected\r\n");
}

#[test]
fn list_create_delete_rename_subscribe_status() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(c.imap("l0", "LIST \"\" \"\""), "* LIST (\\Noselect) \"/\" \"\"\r\nl0 OK LIST completed\r\n");
    assert_eq!(
        c.imap("l1", "LIST \"\" *"),
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\nl1 OK LIST completed\r\n"
    );
    c.imap_ok("c1", "CREATE Projects/2026/Q4");
    assert_eq!(c.imap("c2", "CREATE Projects"), "c2 NO [ALREADYEXISTS] Mailbox already exists\r\n");
    assert_eq!(c.imap("c3", "CREATE inbox"), "c3 NO [ALREADYEXISTS] INBOX always exists\r\n");
    c.imap_ok("c4", "CREATE \"Saved Mail\" (USE (\\Flagged))");
    assert_eq!(
        c.imap("c5", "CREATE Bad (USE (\\Bogus))"),
        "c5 NO [USEATTR] Unsupported special-use attribute \\Bogus\r\n"
    );
    assert_eq!(
        c.imap("l2", "LIST \"\" Projects/%"),
        "* LIST (\\HasChildren) \"/\" Projects/2026\r\nl2 OK LIST completed\r\n"
    );
    assert_eq!(
        c.imap("l3", "LIST (SPECIAL-USE) \"\" *"),
        "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n* LIST (\\HasNoChildren \\Flagged) \"/\" \"Saved Mail\"\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\nl3 OK LIST completed\r\n"
    );
    // Non-ASCII names: modified UTF-7 for IMAP4rev1.
    c.imap_ok("c6", "CREATE &ZeVnLIqe-");
    assert!(
        c.imap_ok("l4", "LIST \"\" &ZeVnLIqe-").contains("* LIST (\\HasNoChildren) \"/\" &ZeVnLIqe-\r\n")
    );
    c.imap_ok("r1", "RENAME Projects Work");
    assert_eq!(
        c.imap("l5", "LIST \"\" Work*"),
        "* LIST (\\HasChildren) \"/\" Work\r\n* LIST (\\HasChildren) \"/\" Work/2026\r\n* LIST (\\HasNoChildren) \"/\" Work/2026/Q4\r\nl5 OK LIST completed\r\n"
    );
    assert_eq!(c.imap("r2", "RENAME Nope Other"), "r2 NO [NONEXISTENT] Mailbox does not exist\r\n");
    assert_eq!(c.imap("r3", "RENAME Work Sent"), "r3 NO [ALREADYEXISTS] Target mailbox already exists\r\n");
    assert_eq!(c.imap("d1", "DELETE INBOX"), "d1 NO [CANNOT] INBOX cannot be deleted\r\n");
    assert_eq!(c.imap("d2", "DELETE Nope"), "d2 NO [NONEXISTENT] Mailbox does not exist\r\n");
    c.imap_ok("d3", "DELETE Work/2026/Q4");
    // Subscriptions: LSUB, LIST (SUBSCRIBED), RETURN (SUBSCRIBED), and survive DELETE.
    c.imap_ok("u1", "UNSUBSCRIBE Junk");
    assert_eq!(c.imap("u2", "UNSUBSCRIBE Junk"), "u2 NO [NONEXISTENT] Not subscribed\r\n");
    c.imap_ok("u3", "SUBSCRIBE Work");
    c.imap_ok("u4", "SUBSCRIBE Ghost");
    assert_eq!(
        c.imap("u5", "LSUB \"\" *"),
        "* LSUB () \"/\" Archive\r\n* LSUB () \"/\" Drafts\r\n* LSUB (\\Noselect) \"/\" Ghost\r\n* LSUB () \"/\" INBOX\r\n\
         * LSUB () \"/\" Sent\r\n* LSUB () \"/\" Trash\r\n* LSUB () \"/\" Work\r\nu5 OK LSUB completed\r\n"
    );
    let out = c.imap_ok("u6", "LIST (SUBSCRIBED) \"\" *");
    assert!(out.contains("* LIST (\\NonExistent \\Subscribed) \"/\" Ghost\r\n"), "{out}");
    assert!(out.contains("* LIST (\\HasChildren \\Subscribed) \"/\" Work\r\n"), "{out}");
    assert!(!out.contains("Junk"), "{out}");
    let out = c.imap_ok("u7", "LIST \"\" % RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES UNSEEN))");
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n* STATUS Junk (MESSAGES 0 UNSEEN 0)\r\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n* STATUS INBOX (MESSAGES 0 UNSEEN 0)\r\n"
        ),
        "{out}"
    );
    deliver(&server, "bob@example.test", MSG1);
    let status = c.imap_ok("t1", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE)");
    let size = server.inbox("bob@example.test")[0].len();
    assert_eq!(
        status,
        format!(
            "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1 DELETED 0 SIZE {size})\r\nt1 OK STATUS completed\r\n"
        )
    );
    assert_eq!(c.imap("t2", "STATUS Nope (MESSAGES)"), "t2 NO [NONEXISTENT] Mailbox does not exist\r\n");
    assert_eq!(
        c.imap("n1", "NAMESPACE"),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nn1 OK NAMESPACE completed\r\n"
    );
}

#[test]
fn append_with_flags_dates_literals_and_limits() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    let msg = "Subject: appended\r\n\r\nbody\r\n";
    c.send(
        format!("p1 APPEND Drafts (\\Draft \\Seen) \"05-Mar-2024 10:11:12 +0100\" {{{}}}\r\n", msg.len())
            .as_bytes(),
    );
    assert_eq!(c.imap_line(), "+ Ready for literal data\r\n");
    c.send(format!("{msg}\r\n").as_bytes());
    let out = c.imap_until("p1");
    let uidvalidity = out.split("[APPENDUID ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(out, format!("p1 OK [APPENDUID {uidvalidity} 1] APPEND completed\r\n"));
    // LITERAL+ and MULTIAPPEND in one go.
    c.send(format!("p2 APPEND Drafts {{{0}+}}\r\n{msg} ($Work) {{{0}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    assert_eq!(c.imap_until("p2"), format!("p2 OK [APPENDUID {uidvalidity} 2:3] APPEND completed\r\n"));
    assert_eq!(c.imap("p3", "APPEND Nope {1+}\r\nx"), "p3 NO [TRYCREATE] Mailbox does not exist\r\n");
    assert_eq!(
        c.imap("p4", "APPEND Drafts {2000000}"),
        "p4 NO [TOOBIG] Literal larger than 1048576 octets\r\n"
    );
    assert_eq!(
        c.imap("p5", "APPEND Drafts (\\Recent) {1+}\r\nx"),
        "p5 BAD APPEND: \\Recent cannot be stored\r\n"
    );
    c.imap_ok("p6", "SELECT Drafts");
    let now = internal_date(&mut c, 2);
    assert_eq!(
        c.imap("p7", "FETCH 1:3 (FLAGS INTERNALDATE RFC822.SIZE)"),
        format!(
            "* 1 FETCH (FLAGS (\\Seen \\Draft \\Recent) INTERNALDATE \"05-Mar-2024 09:11:12 +0000\" RFC822.SIZE {0})\r\n\
             * 2 FETCH (FLAGS (\\Recent) INTERNALDATE {now} RFC822.SIZE {0})\r\n\
             * 3 FETCH (FLAGS (\\Recent $Work) INTERNALDATE {now} RFC822.SIZE {0})\r\np7 OK FETCH completed\r\n",
            msg.len()
        )
    );
    // An oversized non-synchronizing literal cannot be skipped: BYE.
    c.send(b"p8 APPEND Drafts {2000000+}\r\n");
    assert_eq!(c.imap_line(), "* BYE [TOOBIG] Literal larger than 1048576 octets\r\n");
    assert!(c.is_closed());
}

#[test]
fn fetch_sections_envelope_and_seen_side_effect() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    deliver(&server, "bob@example.test", MSG2);
    let stored = server.inbox("bob@example.test");
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("f0", "SELECT INBOX");
    let out = c.imap_ok("f1", "FETCH 1 (UID ENVELOPE)");
    assert_eq!(
        out,
        "* 1 FETCH (UID 1 ENVELOPE (\"Thu, 26 Nov 2026 10:00:00 +0000\" \"first\" ((\"Alice\" NIL \"alice\" \"example.test\")) ((\"Alice\" NIL \"alice\" \"example.test\")) ((\"Alice\" NIL \"alice\" \"example.test\")) ((NIL NIL \"bob\" \"example.test\")) NIL NIL NIL \"<1@example.test>\"))\r\nf1 OK FETCH completed\r\n"
    );
    // Encoded words stay raw in ENVELOPE.
    assert!(c.imap_ok("f2", "FETCH 2 ENVELOPE").contains("\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\""));
    let out = c.imap_ok("f3", "FETCH 2 BODYSTRUCTURE");
    assert!(
        out.contains("(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 17 0 NIL NIL NIL NIL)"),
        "{out}"
    );
    assert!(out.contains("\"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"), "{out}");
    let whole = String::from_utf8(stored[0].clone()).unwrap();
    assert_eq!(
        c.imap("f4", "FETCH 1 BODY.PEEK[]"),
        format!("* 1 FETCH (BODY[] {{{}}}\r\n{whole})\r\nf4 OK FETCH completed\r\n", whole.len())
    );
    assert_eq!(
        c.imap("f5", "FETCH 1 BODY.PEEK[TEXT]<0.5>"),
        "* 1 FETCH (BODY[TEXT]<0> {5}\r\nHello)\r\nf5 OK FETCH completed\r\n"
    );
    assert_eq!(
        c.imap("f6", "FETCH 1 BODY.PEEK[HEADER.FIELDS (subject from)]"),
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {52}\r\nFrom: Alice <alice@example.test>\r\nSubject: first\r\n\r\n)\r\nf6 OK FETCH completed\r\n"
    );
    assert_eq!(
        c.imap("f7", "FETCH 2 BODY.PEEK[1]"),
        "* 2 FETCH (BODY[1] {17}\r\nquarterly numbers)\r\nf7 OK FETCH completed\r\n"
    );
    assert_eq!(
        c.imap("f8", "FETCH 2 BODY.PEEK[2.MIME]"),
        "* 2 FETCH (BODY[2.MIME] {77}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n)\r\nf8 OK FETCH completed\r\n"
    );
    assert_eq!(c.imap("f9", "FETCH 2 BODY.PEEK[7]"), "* 2 FETCH (BODY[7] NIL)\r\nf9 OK FETCH completed\r\n");
    // Not peeking sets \Seen and says so in the same response.
    assert_eq!(
        c.imap("g1", "FETCH 1 (FLAGS BODY[TEXT]<0.5>)"),
        "* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT]<0> {5}\r\nHello)\r\ng1 OK FETCH completed\r\n"
    );
    let header_len = stored[1].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        c.imap("g2", "UID FETCH 2 RFC822.HEADER"),
        format!(
            "* 2 FETCH (UID 2 RFC822.HEADER {{{header_len}}}\r\n{})\r\ng2 OK FETCH completed\r\n",
            String::from_utf8_lossy(&stored[1][..header_len])
        )
    );
    assert_eq!(c.imap("g3", "FETCH 2 FLAGS"), "* 2 FETCH (FLAGS (\\Recent))\r\ng3 OK FETCH completed\r\n");
    assert_eq!(c.imap("g4", "FETCH 3 FLAGS"), "g4 BAD Invalid message number 3 (mailbox has 2)\r\n");
    // "n:*" always includes the last message (RFC 9051 section 6.4.9); "3:5" is empty.
    assert_eq!(
        c.imap("g5", "UID FETCH 3:* FLAGS"),
        "* 2 FETCH (UID 2 FLAGS (\\Recent))\r\ng5 OK FETCH completed\r\n"
    );
    assert_eq!(c.imap("g55", "UID FETCH 3:5 FLAGS"), "g55 OK FETCH completed\r\n");
    assert_eq!(c.imap("g6", "UID FETCH 7 FLAGS"), "g6 OK FETCH completed\r\n");
    assert_eq!(
        c.imap("g7", "FETCH 1:* FAST"),
        format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE {} RFC822.SIZE {})\r\n* 2 FETCH (FLAGS (\\Recent) INTERNALDATE {} RFC822.SIZE {})\r\ng7 OK FETCH completed\r\n",
            internal_date(&mut c, 1),
            stored[0].len(),
            internal_date(&mut c, 2),
            stored[1].len()
        )
    );
}

fn internal_date(c: &mut Client, seq: u32) -> String {
    let out = c.imap_ok("id", &format!("FETCH {seq} INTERNALDATE"));
    out.split("INTERNALDATE ").nth(1).unwrap().split(')').next().unwrap().to_string()
}

#[test]
fn store_keywords_and_empty_flag_lists() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    deliver(&server, "bob@example.test", MSG2);
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("s0", "SELECT INBOX");
    assert_eq!(
        c.imap("s1", "STORE 1 +FLAGS (\\Flagged)"),
        "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\ns1 OK STORE completed\r\n"
    );
    // A new keyword is announced in FLAGS before any FETCH shows it.
    assert_eq!(
        c.imap("s2", "STORE 1:2 +FLAGS ($Important)"),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important \\*)] Flags permitted\r\n\
         * 1 FETCH (FLAGS (\\Flagged \\Recent $Important))\r\n* 2 FETCH (FLAGS (\\Recent $Important))\r\ns2 OK STORE completed\r\n"
    );
    assert_eq!(c.imap("s3", "STORE 2 FLAGS.SILENT (\\Seen)"), "s3 OK STORE completed\r\n");
    assert_eq!(
        c.imap("s4", "UID STORE 1 FLAGS ()"),
        "* 1 FETCH (UID 1 FLAGS (\\Recent))\r\ns4 OK STORE completed\r\n"
    );
    assert_eq!(
        c.imap("s5", "STORE 2 -FLAGS \\Seen $Important"),
        "* 2 FETCH (FLAGS (\\Recent))\r\ns5 OK STORE completed\r\n"
    );
    assert_eq!(c.imap("s6", "STORE 1 +FLAGS (\\Bogus)"), "s6 BAD Unknown system flag \\Bogus\r\n");
    assert_eq!(
        c.imap("s7", "STORE 9 +FLAGS (\\Seen)"),
        "s7 BAD Invalid message number 9 (mailbox has 2)\r\n"
    );
}

#[test]
fn search_keys_esearch_and_searchres() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    deliver(&server, "bob@example.test", MSG2);
    deliver(&server, "bob@example.test", "From: dave@remote.example\r\nSubject: third\r\n\r\nsmall\r\n");
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("x0", "SELECT INBOX");
    c.imap_ok("x1", "STORE 2 +FLAGS (\\Seen $Work)");
    let search = |c: &mut Client, q: &str| -> String {
        let out = c.imap_ok("q", q);
        out.lines().next().unwrap().to_string()
    };
    assert_eq!(search(&mut c, "SEARCH ALL"), "* SEARCH 1 2 3");
    assert_eq!(search(&mut c, "SEARCH SEEN"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH UNSEEN"), "* SEARCH 1 3");
    assert_eq!(search(&mut c, "SEARCH KEYWORD $work"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH UNKEYWORD $Work"), "* SEARCH 1 3");
    assert_eq!(search(&mut c, "SEARCH CHARSET UTF-8 SUBJECT \"grüße\""), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH CHARSET UTF-8 SUBJECT {6+}\r\ngrüß"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH FROM carol"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH FROM \"Alice\""), "* SEARCH 1");
    assert_eq!(search(&mut c, "SEARCH TO bob@example.test"), "* SEARCH 1 2");
    assert_eq!(search(&mut c, "SEARCH BODY quarterly"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH TEXT dave"), "* SEARCH 3");
    assert_eq!(search(&mut c, "SEARCH HEADER Message-ID \"\""), "* SEARCH 1");
    assert_eq!(search(&mut c, "SEARCH OR SEEN SUBJECT third"), "* SEARCH 2 3");
    assert_eq!(search(&mut c, "SEARCH NOT (SEEN OR SUBJECT first SUBJECT third)"), "* SEARCH 1 2 3");
    assert_eq!(search(&mut c, "SEARCH NOT (OR SUBJECT first SUBJECT third)"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH 2:* NOT 3"), "* SEARCH 2");
    let sizes: Vec<usize> = server.inbox("bob@example.test").iter().map(Vec::len).collect();
    assert!(sizes[2] < sizes[0] && sizes[0] < sizes[1], "{sizes:?}");
    assert_eq!(search(&mut c, &format!("UID SEARCH UID 2:3 SMALLER {}", sizes[2] + 1)), "* SEARCH 3");
    assert_eq!(search(&mut c, &format!("SEARCH LARGER {}", sizes[2])), "* SEARCH 1 2");
    assert_eq!(search(&mut c, "SEARCH LARGER 100000"), "* SEARCH");
    assert_eq!(search(&mut c, "SEARCH SENTON 27-Nov-2026"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH SENTBEFORE 27-Nov-2026"), "* SEARCH 1");
    assert_eq!(search(&mut c, "SEARCH SENTSINCE 27-Nov-2026"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH SINCE 1-Jan-2000 BEFORE 1-Jan-2100"), "* SEARCH 1 2 3");
    assert_eq!(search(&mut c, "SEARCH ON 1-Jan-2000"), "* SEARCH");
    assert_eq!(search(&mut c, "SEARCH NEW"), "* SEARCH 1 3");
    assert_eq!(search(&mut c, "SEARCH OLD"), "* SEARCH");
    assert_eq!(search(&mut c, "SEARCH RECENT"), "* SEARCH 1 2 3");
    assert_eq!(
        c.imap("q", "SEARCH CHARSET KOI8-R ALL"),
        "q NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    assert_eq!(
        search(&mut c, "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN"),
        "* ESEARCH (TAG \"q\") MIN 1 MAX 3 COUNT 2 ALL 1,3"
    );
    assert_eq!(search(&mut c, "UID SEARCH RETURN () ALL"), "* ESEARCH (TAG \"q\") UID ALL 1:3");
    assert_eq!(search(&mut c, "SEARCH RETURN (COUNT) DRAFT"), "* ESEARCH (TAG \"q\") COUNT 0");
    // SEARCHRES: save, then use $.
    assert_eq!(c.imap("r1", "SEARCH RETURN (SAVE) FROM carol"), "r1 OK SEARCH completed\r\n");
    assert_eq!(c.imap("r2", "FETCH $ (UID)"), "* 2 FETCH (UID 2)\r\nr2 OK FETCH completed\r\n");
    assert_eq!(c.imap("r3", "SEARCH $"), "* SEARCH 2\r\nr3 OK SEARCH completed\r\n");
    assert!(c.imap("r4", "SEARCH BADKEY").starts_with("r4 BAD "));
    // IMAP4rev2: plain SEARCH answers with ESEARCH.
    let mut v2 = imap_login(&server, "bob@example.test");
    v2.imap_ok("e", "ENABLE IMAP4rev2");
    v2.imap_ok("e", "SELECT INBOX");
    assert_eq!(
        v2.imap("e2", "SEARCH UNSEEN"),
        "* ESEARCH (TAG \"e2\") ALL 1,3\r\ne2 OK SEARCH completed\r\n"
    );
}

#[test]
fn copy_move_expunge_close_with_uidplus() {
    let server = server();
    for _ in 0..4 {
        deliver(&server, "bob@example.test", MSG1);
    }
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("c0", "SELECT INBOX");
    let out = c.imap_ok("c1", "COPY 1:2 Archive");
    let v = out.split("[COPYUID ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(out, format!("c1 OK [COPYUID {v} 1:2 1:2] COPY completed\r\n"));
    assert_eq!(c.imap("c2", "COPY 1 Nope"), "c2 NO [TRYCREATE] Target mailbox does not exist\r\n");
    let out = c.imap_ok("c3", "UID MOVE 2:3 Trash");
    let t = out.split("[COPYUID ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(
        out,
        format!("* OK [COPYUID {t} 2:3 1:2] Moved\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nc3 OK MOVE completed\r\n")
    );
    c.imap_ok("c4", "STORE 1:2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(c.imap("c5", "UID EXPUNGE 4"), "* 2 EXPUNGE\r\nc5 OK EXPUNGE completed\r\n");
    assert_eq!(c.imap("c6", "EXPUNGE"), "* 1 EXPUNGE\r\nc6 OK EXPUNGE completed\r\n");
    assert_eq!(server.inbox("bob@example.test").len(), 0);
    assert_eq!(server.mailbox("bob@example.test", "Trash").len(), 2);
    c.imap_ok("c7", "SELECT Trash");
    c.imap_ok("c8", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(c.imap("c9", "CLOSE"), "c9 OK CLOSE completed\r\n");
    assert_eq!(server.mailbox("bob@example.test", "Trash").len(), 1);
    c.imap_ok("d1", "SELECT Trash");
    c.imap_ok("d2", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(c.imap("d3", "UNSELECT"), "d3 OK UNSELECT completed\r\n");
    assert_eq!(server.mailbox("bob@example.test", "Trash").len(), 1);
}

#[test]
fn two_sessions_see_each_other_at_the_allowed_points() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    deliver(&server, "bob@example.test", MSG2);
    let mut a = imap_login(&server, "bob@example.test");
    let mut b = imap_login(&server, "bob@example.test");
    a.imap_ok("a0", "SELECT INBOX");
    b.imap_ok("b0", "SELECT INBOX");
    a.imap_ok("a1", "STORE 1 +FLAGS.SILENT (\\Seen)");
    assert_eq!(b.imap("b1", "NOOP"), "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\nb1 OK NOOP completed\r\n");
    a.imap_ok("a2", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    a.imap_ok("a3", "EXPUNGE");
    // b is answering a FETCH: no EXPUNGE now (RFC 9051 7.5.1), flags of the ghost are not returned.
    assert_eq!(b.imap("b2", "FETCH 2 FLAGS"), "* 2 FETCH (FLAGS ())\r\nb2 OK FETCH completed\r\n");
    assert_eq!(
        b.imap("b3", "FETCH 1 FLAGS"),
        "b3 NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
    );
    assert_eq!(b.imap("b4", "SEARCH ALL"), "* SEARCH 2\r\nb4 OK SEARCH completed\r\n");
    assert_eq!(b.imap("b5", "NOOP"), "* 1 EXPUNGE\r\nb5 OK NOOP completed\r\n");
    assert_eq!(b.imap("b6", "FETCH 1 UID"), "* 1 FETCH (UID 2)\r\nb6 OK FETCH completed\r\n");
    // A message delivered by SMTP is announced by EXISTS before it can be fetched.
    deliver(&server, "bob@example.test", MSG1);
    // b is the first session to see it, so it is \\Recent there (IMAP4rev1).
    assert_eq!(
        b.imap("b7", "FETCH 1 UID"),
        "* 2 EXISTS\r\n* 1 RECENT\r\n* 1 FETCH (UID 2)\r\nb7 OK FETCH completed\r\n"
    );
    // Own APPEND into the selected mailbox: EXISTS before the tagged OK.
    let out = a.imap_ok("a4", "APPEND INBOX {3+}\r\nx\r\n");
    // First the delivery (UID 3, \\Recent for b), then the append (UID 4, \\Recent for a,
    // as UID 2 still is).
    assert!(
        out.starts_with("* 2 EXISTS\r\n* 1 RECENT\r\n* 3 EXISTS\r\n* 2 RECENT\r\na4 OK [APPENDUID "),
        "{out}"
    );
}

#[test]
fn idle_reports_smtp_delivery_at_once() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("i0", "SELECT INBOX");
    c.send(b"i1 IDLE\r\n");
    assert_eq!(c.imap_line(), "+ idling\r\n");
    deliver(&server, "bob@example.test", MSG1);
    assert_eq!(c.imap_line(), "* 1 EXISTS\r\n");
    assert_eq!(c.imap_line(), "* 1 RECENT\r\n");
    let mut other = imap_login(&server, "bob@example.test");
    other.imap_ok("o0", "SELECT INBOX");
    other.imap_ok("o1", "STORE 1 +FLAGS.SILENT (\\Flagged)");
    assert_eq!(c.imap_line(), "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n");
    other.imap_ok("o2", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(c.imap_line(), "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted \\Recent))\r\n");
    other.imap_ok("o3", "EXPUNGE");
    assert_eq!(c.imap_line(), "* 1 EXPUNGE\r\n");
    c.send(b"DONE\r\n");
    assert_eq!(c.imap_line(), "i1 OK IDLE terminated\r\n");
}

#[test]
fn pipelined_commands_answer_in_order() {
    let server = server();
    deliver(&server, "bob@example.test", MSG1);
    let mut c = imap_login(&server, "bob@example.test");
    c.send(
        b"p1 SELECT INBOX\r\np2 STORE 1 +FLAGS (\\Seen)\r\np3 FETCH 1 FLAGS\r\np4 SEARCH SEEN\r\np5 NOOP\r\n",
    );
    let out = c.imap_until("p5");
    let tags: Vec<&str> = out.lines().filter(|l| l.starts_with('p')).collect();
    assert_eq!(
        tags,
        [
            "p1 OK [READ-WRITE] SELECT completed",
            "p2 OK STORE completed",
            "p3 OK FETCH completed",
            "p4 OK SEARCH completed",
            "p5 OK NOOP completed"
        ]
    );
    assert!(out.contains("* 1 FETCH (FLAGS (\\Seen \\Recent))\r\np2 OK"), "{out}");
    assert!(out.contains("* SEARCH 1\r\np4 OK"), "{out}");
}

#[test]
fn bad_input_gets_tagged_errors_not_hangs() {
    let server = server();
    let mut c = imap_login(&server, "bob@example.test");
    assert_eq!(first_words(&mut c, b"x1 FROBNICATE\r\n"), "x1 BAD");
    assert_eq!(first_words(&mut c, b"x2 SELECT\r\n"), "x2 BAD");
    assert_eq!(first_words(&mut c, b"x3 LOGIN {999999999}\r\n"), "x3 NO");
    c.send(format!("x4 NOOP {}\r\n", "a".repeat(70_000)).as_bytes());
    assert_eq!(c.imap_line(), "x4 BAD Command line too long\r\n");
    assert_eq!(c.imap("x5", "NOOP"), "x5 OK NOOP completed\r\n");
}

/// Sends raw bytes and returns the first two words of the next response line.
fn first_words(c: &mut Client, bytes: &[u8]) -> String {
    c.send(bytes);
    c.imap_line().split(' ').take(2).collect::<Vec<_>>().join(" ")
}

trait Raw {
    fn cmd_raw(&mut self, line: &str) -> String;
}
impl Raw for Client {
    fn cmd_raw(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.imap_line()
    }
}

#[test]
fn autologout_after_the_idle_timeout_in_commands_and_in_idle() {
    let server =
        Server::start_with(&format!("{ALL_LISTENERS}[limits]\nimap_idle_timeout = \"2s\"\n")).with_accounts();
    let mut c = imap_login(&server, "bob@example.test");
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(c.imap_line(), "* BYE Autologout; idle for too long\r\n");
    assert!(c.is_closed());

    // IDLE is no exception: a client must renew it before the timer runs out (RFC 2177).
    let mut c = imap_login(&server, "bob@example.test");
    c.imap_ok("s1", "SELECT INBOX");
    c.send(b"i1 IDLE\r\n");
    assert_eq!(c.imap_line(), "+ idling\r\n");
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(c.imap_line(), "* BYE Autologout; idle for too long\r\n");
    assert!(c.is_closed());

    // The timer counts silence, not the session's age.
    let mut c = imap_login(&server, "bob@example.test");
    for n in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        c.imap_ok(&format!("n{n}"), "NOOP");
    }
}
