//! Command parser tests: every command, every search key and fetch item, the client lines
//! of RFC 9051 section 6, and error cases.

use postamt_imap::command::{
    AppendMessage, Command, Date, FetchItem, ListCommand, ListReturn, ListSelect, Partial, SearchCommand,
    SearchKey, SearchReturn, Section, SectionText, SeqNum, SeqRange, SequenceSet, StatusItem, StoreMode,
};
use postamt_imap::parse::{ParseError, parse_command};

/// Parses `input` both with and without the final CRLF; both must give the same result.
fn parse(input: &[u8]) -> Result<postamt_imap::command::Request, ParseError> {
    let mut with_crlf = input.to_vec();
    with_crlf.extend_from_slice(b"\r\n");
    let a = parse_command(input);
    let b = parse_command(&with_crlf);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{:?}", String::from_utf8_lossy(input)),
        // Messages may differ (e.g. a short literal swallows the CRLF), tags may not.
        (Err(x), Err(y)) => assert_eq!(x.tag, y.tag, "{:?}", String::from_utf8_lossy(input)),
        _ => panic!("with and without CRLF disagree for {:?}: {a:?} / {b:?}", String::from_utf8_lossy(input)),
    }
    a
}

/// The command of a valid input (tag checked against the first word).
fn cmd(input: &str) -> Command {
    cmd_bytes(input.as_bytes())
}

fn cmd_bytes(input: &[u8]) -> Command {
    match parse(input) {
        Ok(request) => {
            let tag = input.split(|&b| b == b' ').next().unwrap_or_default();
            assert_eq!(request.tag.as_bytes(), tag);
            request.command
        }
        Err(e) => panic!("{:?} failed: {e:?}", String::from_utf8_lossy(input)),
    }
}

/// The error of an invalid input; the tag must be the one given.
fn bad_tagged(input: &[u8], tag: Option<&str>) -> ParseError {
    match parse(input) {
        Ok(request) => panic!("{:?} parsed as {request:?}", String::from_utf8_lossy(input)),
        Err(e) => {
            assert_eq!(e.tag.as_deref(), tag, "{:?}: {e:?}", String::from_utf8_lossy(input));
            assert!(!e.message.is_empty());
            assert!(!e.message.contains('\r') && !e.message.contains('\n'));
            e
        }
    }
}

/// The error of an invalid input whose tag is `a`.
fn bad(input: &str) -> ParseError {
    bad_tagged(input.as_bytes(), Some("a"))
}

fn seq(ranges: &[(u32, u32)]) -> SequenceSet {
    SequenceSet::Ranges(
        ranges
            .iter()
            .map(|&(start, end)| SeqRange { start: SeqNum::Value(start), end: SeqNum::Value(end) })
            .collect(),
    )
}

fn one(n: u32) -> SequenceSet {
    seq(&[(n, n)])
}

fn search(input: &str) -> SearchCommand {
    match cmd(input) {
        Command::Search(s) => s,
        other => panic!("not a SEARCH: {other:?}"),
    }
}

/// The single key of `a SEARCH <keys>`.
fn key(keys: &str) -> SearchKey {
    let s = search(&format!("a SEARCH {keys}"));
    assert_eq!(s.keys.len(), 1, "{keys}");
    s.keys.into_iter().next().unwrap_or(SearchKey::All)
}

fn fetch_items(items: &str) -> Vec<FetchItem> {
    match cmd(&format!("a FETCH 1 {items}")) {
        Command::Fetch { items, .. } => items,
        other => panic!("not a FETCH: {other:?}"),
    }
}

fn date(year: i32, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ----- Any state -----

#[test]
fn simple_commands() {
    for (input, expected) in [
        ("a CAPABILITY", Command::Capability),
        ("a capability", Command::Capability),
        ("a Noop", Command::Noop),
        ("a LOGOUT", Command::Logout),
        ("a STARTTLS", Command::StartTls),
        ("a NAMESPACE", Command::Namespace),
        ("a IDLE", Command::Idle),
        ("a CHECK", Command::Check),
        ("a CLOSE", Command::Close),
        ("a UNSELECT", Command::Unselect),
        ("a EXPUNGE", Command::Expunge),
    ] {
        assert_eq!(cmd(input), expected, "{input}");
        assert!(bad(&format!("{input} x")).message.contains("extra"), "{input}");
        bad(&format!("{input} "));
    }
}

#[test]
fn tags() {
    for tag in ["a", "A001", "]", "tag]with]brackets", "*", "1.2", "x-y_z", "$", "~"] {
        // "*" is a list-wildcard, not an ASTRING-CHAR.
        let input = format!("{tag} NOOP");
        if tag == "*" {
            bad_tagged(input.as_bytes(), None);
            continue;
        }
        let request = parse(input.as_bytes()).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(request.tag, tag);
        assert_eq!(request.command, Command::Noop);
    }
    for input in [
        &b""[..],
        b"\r\n",
        b" NOOP",
        b"+ NOOP",
        b"a+b NOOP",
        b"(a) NOOP",
        b"a(b NOOP",
        b"\"a\" NOOP",
        b"{3}\r\nabc NOOP",
        b"a\x00 NOOP",
        b"\xc3\xa4 NOOP",
        b"a\\b NOOP",
        b"a%b NOOP",
    ] {
        bad_tagged(input, None);
    }
    // A tag alone, or a tag with an empty command.
    bad_tagged(b"abc", Some("abc"));
    bad_tagged(b"abc ", Some("abc"));
    bad_tagged(b"abc  NOOP", Some("abc"));
}

#[test]
fn unknown_commands() {
    let e = bad("a XPIG-LATIN");
    assert!(e.message.contains("unknown command"), "{e}");
    bad("a UID");
    bad("a UID ");
    bad("a UID NOOP");
    bad("a UID CAPABILITY");
    bad("a UIDFETCH 1 FLAGS");
    bad("a NOOP\tx");
    bad("a (NOOP)");
    bad("a \"NOOP\"");
    let long = format!("a {}", "X".repeat(10_000));
    assert!(bad(&long).message.len() < 100);
}

#[test]
fn trailing_data() {
    bad("a NOOP\r\n\r\n");
    bad("a NOOP\n");
    bad("a NOOP\r");
    bad_tagged(b"a NOOP\r\nb NOOP", Some("a"));
}

#[test]
fn id() {
    assert_eq!(cmd("a ID NIL"), Command::Id(None));
    assert_eq!(cmd("a id nil"), Command::Id(None));
    assert_eq!(cmd("a ID ()"), Command::Id(Some(vec![])));
    assert_eq!(
        cmd("a ID (\"name\" \"x\" \"version\" NIL)"),
        Command::Id(Some(vec![("name".into(), Some("x".into())), ("version".into(), None)]))
    );
    assert_eq!(
        cmd_bytes(b"a ID (\"name\" {5}\r\nsome  \"os\" \"\")"),
        Command::Id(Some(vec![("name".into(), Some("some ".into())), ("os".into(), Some(String::new()))]))
    );
    assert_eq!(cmd("a ID (\"name\" \"NIL\")"), Command::Id(Some(vec![("name".into(), Some("NIL".into()))])));
    bad("a ID");
    bad("a ID (\"name\")");
    bad("a ID (\"name\" \"x\"");
    bad("a ID (\"name\" \"x\" )");
    bad("a ID \"name\" \"x\"");
    bad("a ID NIL NIL");
}

// ----- Not authenticated -----

#[test]
fn authenticate() {
    assert_eq!(
        cmd("a AUTHENTICATE PLAIN"),
        Command::Authenticate { mechanism: "PLAIN".into(), initial: None }
    );
    assert_eq!(
        cmd("a authenticate scram-sha-256"),
        Command::Authenticate { mechanism: "SCRAM-SHA-256".into(), initial: None }
    );
    assert_eq!(
        cmd("a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q="),
        Command::Authenticate { mechanism: "PLAIN".into(), initial: Some("dGVzdAB0ZXN0AHRlc3Q=".into()) }
    );
    assert_eq!(
        cmd("a AUTHENTICATE EXTERNAL ="),
        Command::Authenticate { mechanism: "EXTERNAL".into(), initial: Some("=".into()) }
    );
    bad("a AUTHENTICATE");
    bad("a AUTHENTICATE ");
    bad("a AUTHENTICATE PLAIN abc");
    bad("a AUTHENTICATE PLAIN ab=c");
    bad("a AUTHENTICATE PLAIN ==");
    bad("a AUTHENTICATE PLAIN AAAA AAAA");
    bad("a AUTHENTICATE \"PLAIN\"");
}

#[test]
fn login() {
    let login = |u: &str, p: &str| Command::Login { username: u.into(), password: p.into() };
    assert_eq!(cmd("a001 LOGIN SMITH SESAME"), login("SMITH", "SESAME"));
    assert_eq!(cmd("a LOGIN \"fred\" \"pass word\""), login("fred", "pass word"));
    assert_eq!(cmd("a LOGIN fred@example.com \"a\\\"b\\\\c\""), login("fred@example.com", "a\"b\\c"));
    assert_eq!(cmd_bytes(b"a LOGIN {4}\r\nfred {3+}\r\n{x}"), login("fred", "{x}"));
    assert_eq!(cmd("a LOGIN \"\" \"\""), login("", ""));
    assert_eq!(cmd("a LOGIN \"j\u{f6}rg\" \"p\u{e4}ss\""), login("j\u{f6}rg", "p\u{e4}ss"));
    assert_eq!(cmd("a LOGIN fred pass]word"), login("fred", "pass]word"));
    bad("a LOGIN");
    bad("a LOGIN fred");
    bad("a LOGIN fred ");
    bad("a LOGIN fred pass extra");
    bad("a LOGIN fred \"pass");
    bad("a LOGIN fred pa%ss");
    bad("a LOGIN fred (pass)");
    bad_tagged(b"a LOGIN fred {2}\r\n\xff\xfe", Some("a"));
    bad_tagged(b"a LOGIN fred {2}\r\na\x00", Some("a"));
    bad_tagged(b"a LOGIN fred ~{2}\r\nab", Some("a"));
    bad_tagged(b"a LOGIN fred \"p\xe4ss\"", Some("a"));
}

// ----- Authenticated -----

#[test]
fn enable() {
    assert_eq!(
        cmd("t2 ENABLE CONDSTORE X-GOOD-IDEA"),
        Command::Enable(strings(&["CONDSTORE", "X-GOOD-IDEA"]))
    );
    assert_eq!(cmd("a enable IMAP4rev2"), Command::Enable(strings(&["IMAP4rev2"])));
    assert_eq!(cmd("a ENABLE UTF8=ACCEPT"), Command::Enable(strings(&["UTF8=ACCEPT"])));
    bad("a ENABLE");
    bad("a ENABLE ");
    bad("a ENABLE A  B");
    bad("a ENABLE \"IMAP4rev2\"");
    bad("a ENABLE (IMAP4rev2)");
}

#[test]
fn select_examine() {
    assert_eq!(
        cmd("A142 SELECT INBOX"),
        Command::Select { mailbox: "INBOX".into(), params: Default::default() }
    );
    assert_eq!(
        cmd("a select inbox"),
        Command::Select { mailbox: "inbox".into(), params: Default::default() }
    );
    assert_eq!(
        cmd("a SELECT \"Sent Items\" ()"),
        Command::Select { mailbox: "Sent Items".into(), params: Default::default() }
    );
    assert_eq!(
        cmd_bytes(b"a SELECT {5}\r\nDraft"),
        Command::Select { mailbox: "Draft".into(), params: Default::default() }
    );
    assert_eq!(
        cmd("A932 EXAMINE blurdybloop"),
        Command::Examine { mailbox: "blurdybloop".into(), params: Default::default() }
    );
    assert_eq!(
        cmd("a EXAMINE \"\u{65e5}\u{672c}\""),
        Command::Examine { mailbox: "\u{65e5}\u{672c}".into(), params: Default::default() }
    );
    assert!(bad("a SELECT INBOX (BOGUS)").message.contains("BOGUS"));
    assert!(bad("a SELECT INBOX (CONDSTORE CONDSTORE)").message.contains("duplicate"));
    // RFC 7162: CONDSTORE and QRESYNC select parameters.
    let params = |input: &str| match cmd(input) {
        Command::Select { params, .. } | Command::Examine { params, .. } => params,
        other => panic!("{other:?}"),
    };
    assert!(params("a SELECT INBOX (CONDSTORE)").condstore);
    let q =
        params("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))").qresync.unwrap();
    assert_eq!((q.uidvalidity, q.modseq), (67_890_007, 20_050_715_194_045_000));
    assert_eq!(q.known_uids, Some(seq(&[(41, 41), (43, 211), (214, 541)])));
    assert_eq!(q.seq_match, None);
    let q =
        params("B04 EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500 15000,22500)))")
            .qresync
            .unwrap();
    assert_eq!(
        q.seq_match,
        Some((seq(&[(5000, 5000), (7500, 7500)]), seq(&[(15000, 15000), (22500, 22500)])))
    );
    let q = params("a SELECT INBOX (QRESYNC (1 2 (1:3 5:7)))").qresync.unwrap();
    assert_eq!((q.known_uids, q.seq_match.is_some()), (None, true));
    for input in [
        "a SELECT INBOX (QRESYNC (0 5))",
        "a SELECT INBOX (QRESYNC (1 0))",
        "a SELECT INBOX (QRESYNC (1 5 1:*))",
        "a SELECT INBOX (QRESYNC (1 5 1:3 (1 2)",
        "a SELECT INBOX (QRESYNC 1 5)",
    ] {
        bad(input);
    }
    bad("a SELECT");
    bad("a SELECT INBOX (");
    bad("a SELECT INBOX x");
    bad("a EXAMINE INBOX (QRESYNC (1 2 3:*))");
    bad("a SELECT INBOX foo");
    bad("a SELECT %");
    bad("a SELECT *");
}

#[test]
fn create() {
    let create = |m: &str, u: &[&str]| Command::Create { mailbox: m.into(), special_use: strings(u) };
    assert_eq!(cmd("A003 CREATE owatagusiam/"), create("owatagusiam/", &[]));
    assert_eq!(cmd("A004 CREATE owatagusiam/blurdybloop"), create("owatagusiam/blurdybloop", &[]));
    assert_eq!(cmd("A002 CREATE \"INBOX.Sent Mail\""), create("INBOX.Sent Mail", &[]));
    assert_eq!(cmd("a CREATE Sent (USE (\\Sent))"), create("Sent", &["\\Sent"]));
    assert_eq!(
        cmd("a CREATE MySpecial (USE (\\Drafts \\Sent))"),
        create("MySpecial", &["\\Drafts", "\\Sent"])
    );
    assert_eq!(cmd("a create x (use ())"), create("x", &[]));
    assert_eq!(cmd("a CREATE x ()"), create("x", &[]));
    assert_eq!(cmd("a CREATE x (USE (\\Archive) USE (\\Junk))"), create("x", &["\\Archive", "\\Junk"]));
    bad("a CREATE");
    bad("a CREATE x (FOO)");
    bad("a CREATE x (USE)");
    bad("a CREATE x (USE \\Sent)");
    bad("a CREATE x (USE (Sent))");
    bad("a CREATE x (USE (\\Sent)");
    bad("a CREATE x (USE (\\Sent) ");
    bad("a CREATE x y");
}

#[test]
fn delete_rename_subscribe() {
    assert_eq!(cmd("A683 DELETE blurdybloop"), Command::Delete { mailbox: "blurdybloop".into() });
    assert_eq!(
        cmd("A683 RENAME blurdybloop sarasoop"),
        Command::Rename { from: "blurdybloop".into(), to: "sarasoop".into() }
    );
    assert_eq!(cmd("a RENAME \"a b\" {3+}\r\nc d"), Command::Rename { from: "a b".into(), to: "c d".into() });
    assert_eq!(
        cmd("A002 SUBSCRIBE #news.comp.mail.mime"),
        Command::Subscribe { mailbox: "#news.comp.mail.mime".into() }
    );
    assert_eq!(
        cmd("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        Command::Unsubscribe { mailbox: "#news.comp.mail.mime".into() }
    );
    bad("a DELETE");
    bad("a DELETE a b");
    bad("a RENAME a");
    bad("a RENAME a b c");
    bad("a SUBSCRIBE");
    bad("a UNSUBSCRIBE \"x");
}

fn list(input: &str) -> ListCommand {
    match cmd(input) {
        Command::List(l) => l,
        other => panic!("not a LIST: {other:?}"),
    }
}

#[test]
fn list_basic() {
    assert_eq!(
        list("A682 LIST \"\" *"),
        ListCommand { reference: String::new(), patterns: strings(&["*"]), select: vec![], ret: vec![] }
    );
    let l = list("A202 LIST ~/Mail/ %");
    assert_eq!((l.reference.as_str(), l.patterns), ("~/Mail/", strings(&["%"])));
    let l = list("A102 LIST #news.comp.mail.misc \"\"");
    assert_eq!((l.reference.as_str(), l.patterns), ("#news.comp.mail.misc", strings(&[""])));
    let l = list("a LIST \"\" foo/%/bar*");
    assert_eq!(l.patterns, strings(&["foo/%/bar*"]));
    let l = list("a LIST {0}\r\n {3}\r\nx%*");
    assert_eq!((l.reference.as_str(), l.patterns), ("", strings(&["x%*"])));
    let l = list("a list \"\" \"\u{65e5}*\"");
    assert_eq!(l.patterns, strings(&["\u{65e5}*"]));
}

#[test]
fn list_extended() {
    let l = list("A02 LIST (SUBSCRIBED) \"\" \"*\"");
    assert_eq!(l.select, vec![ListSelect::Subscribed]);
    let l = list("A03 LIST () \"\" \"%\" RETURN (CHILDREN)");
    assert_eq!((l.select, l.ret), (vec![], vec![ListReturn::Children]));
    let l = list("A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"");
    assert_eq!(l.select, vec![ListSelect::RemoteOnly, ListSelect::Subscribed]);
    let l = list("A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)");
    assert_eq!((l.select, l.ret), (vec![ListSelect::RemoteOnly], vec![ListReturn::Subscribed]));
    let l = list("D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"");
    assert_eq!(l.select, vec![ListSelect::RecursiveMatch, ListSelect::Subscribed]);
    let l = list("a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)");
    assert_eq!(l.patterns, strings(&["foo"]));
    let l = list("a1 LIST \"\" (\"foo\")");
    assert_eq!(l.patterns, strings(&["foo"]));
    let l = list("a3.1 LIST \"\" (% music/rock)");
    assert_eq!(l.patterns, strings(&["%", "music/rock"]));
    let l = list("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))");
    assert_eq!(l.ret, vec![ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen])]);
    let l = list("A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES UNSEEN SIZE))");
    assert_eq!(
        l.ret,
        vec![ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen, StatusItem::Size])]
    );
    let l = list("A002 LIST (SPECIAL-USE) \"\" \"*\"");
    assert_eq!(l.select, vec![ListSelect::SpecialUse]);
    let l = list("a list (special-use subscribed) \"\" * return (special-use children subscribed)");
    assert_eq!(l.select, vec![ListSelect::SpecialUse, ListSelect::Subscribed]);
    assert_eq!(l.ret, vec![ListReturn::SpecialUse, ListReturn::Children, ListReturn::Subscribed]);
    let l = list("a LIST \"\" * RETURN ()");
    assert_eq!(l.ret, vec![]);
    // Duplicates are merged (RFC 5258: act as if the option was given once).
    let l = list(
        "a LIST (SUBSCRIBED SUBSCRIBED) \"\" * RETURN (CHILDREN CHILDREN STATUS (MESSAGES) \
         STATUS (UNSEEN MESSAGES))",
    );
    assert_eq!(l.select, vec![ListSelect::Subscribed]);
    assert_eq!(
        l.ret,
        vec![ListReturn::Children, ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen])]
    );
}

#[test]
fn list_errors() {
    bad("a LIST");
    bad("a LIST \"\"");
    bad("a LIST \"\" ");
    bad("a LIST (RECURSIVEMATCH) \"\" *");
    bad("a LIST (REMOTE RECURSIVEMATCH) \"\" *");
    bad("a LIST (SPECIAL-USE RECURSIVEMATCH) \"\" *");
    bad("a LIST (FOO) \"\" *");
    bad("a LIST (SUBSCRIBED \"\" *");
    bad("a LIST \"\" * RETURN (FOO)");
    bad("a LIST \"\" * RETURN");
    bad("a LIST \"\" * RETURN CHILDREN");
    bad("a LIST \"\" * RETURN (STATUS)");
    bad("a LIST \"\" * RETURN (STATUS ())");
    bad("a LIST \"\" * RETURN (STATUS (FOO))");
    bad("a LIST \"\" * FOO (CHILDREN)");
    bad("a LIST \"\" ()");
    bad("a LIST \"\" (a");
    bad("a LIST * *");
    bad("a LIST \"\" * *");
}

#[test]
fn lsub() {
    assert_eq!(
        cmd("a LSUB \"#news.\" \"comp.mail.*\""),
        Command::Lsub { reference: "#news.".into(), pattern: "comp.mail.*".into() }
    );
    assert_eq!(cmd("a lsub \"\" %"), Command::Lsub { reference: String::new(), pattern: "%".into() });
    bad("a LSUB \"\"");
    bad("a LSUB \"\" (%)");
}

#[test]
fn status() {
    assert_eq!(
        cmd("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        Command::Status {
            mailbox: "blurdybloop".into(),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        cmd("a status INBOX (messages uidnext uidvalidity unseen deleted size recent)"),
        Command::Status {
            mailbox: "INBOX".into(),
            items: vec![
                StatusItem::Messages,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Deleted,
                StatusItem::Size,
                StatusItem::Recent
            ]
        }
    );
    assert_eq!(
        cmd("a STATUS INBOX (UNSEEN MESSAGES UNSEEN)"),
        Command::Status { mailbox: "INBOX".into(), items: vec![StatusItem::Unseen, StatusItem::Messages] }
    );
    bad("a STATUS INBOX");
    bad("a STATUS INBOX ()");
    bad("a STATUS INBOX MESSAGES");
    bad("a STATUS INBOX (MESSAGES");
    assert_eq!(
        cmd("a STATUS INBOX (HIGHESTMODSEQ DELETED-STORAGE)"),
        Command::Status {
            mailbox: "INBOX".into(),
            items: vec![StatusItem::HighestModSeq, StatusItem::DeletedStorage]
        }
    );
    bad("a STATUS INBOX (MESSAGES  UNSEEN)");
}

// ----- APPEND -----

const RFC_MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

fn append(input: &[u8]) -> (String, Vec<AppendMessage>) {
    match cmd_bytes(input) {
        Command::Append { mailbox, messages } => (mailbox, messages),
        other => panic!("not an APPEND: {other:?}"),
    }
}

fn message(flags: &[&str], date: Option<i64>, data: &[u8], binary: bool) -> AppendMessage {
    AppendMessage { flags: strings(flags), date, data: data.to_vec(), binary, utf8: false }
}

#[test]
fn append_rfc_example() {
    assert_eq!(RFC_MESSAGE.len(), 326);
    for announce in ["{326}", "{326+}"] {
        let input = format!("A003 APPEND saved-messages (\\Seen) {announce}\r\n{RFC_MESSAGE}");
        let (mailbox, messages) = append(input.as_bytes());
        assert_eq!(mailbox, "saved-messages");
        assert_eq!(messages, vec![message(&["\\Seen"], None, RFC_MESSAGE.as_bytes(), false)]);
    }
}

#[test]
fn append_variants() {
    let (_, m) = append(b"a APPEND INBOX {3}\r\nabc");
    assert_eq!(m, vec![message(&[], None, b"abc", false)]);
    let (_, m) = append(b"a APPEND INBOX () {0}\r\n");
    assert_eq!(m, vec![message(&[], None, b"", false)]);
    let (_, m) = append(b"a APPEND INBOX \"17-Jul-1996 02:44:25 -0700\" {1}\r\nx");
    assert_eq!(m, vec![message(&[], Some(837_596_665), b"x", false)]);
    let (_, m) = append(b"a APPEND INBOX (\\Seen $Forwarded) \" 7-Feb-1994 21:52:25 +0000\" {1+}\r\nx");
    assert_eq!(m, vec![message(&["\\Seen", "$Forwarded"], Some(760_657_945), b"x", false)]);
    // The literal may contain anything, including CRLF and what looks like more syntax.
    let (_, m) = append(b"a append \"Sent Items\" {9}\r\n\r\n) {3}\r\n");
    assert_eq!(m, vec![message(&[], None, b"\r\n) {3}\r\n", false)]);
    // literal8 (RFC 3516) may contain NUL.
    let (_, m) = append(b"a APPEND INBOX ~{3}\r\na\x00b");
    assert_eq!(m, vec![message(&[], None, b"a\x00b", true)]);
    let (_, m) = append(b"a APPEND INBOX (\\Draft) ~{2+}\r\n\xff\x00");
    assert_eq!(m, vec![message(&["\\Draft"], None, b"\xff\x00", true)]);
    // 8-bit data in an ordinary literal is passed through.
    let (_, m) = append(b"a APPEND INBOX {2}\r\n\xc3\xa4");
    assert_eq!(m, vec![message(&[], None, b"\xc3\xa4", false)]);
}

#[test]
fn multiappend() {
    let (mailbox, m) = append(b"a APPEND mbox (\\Seen) {3}\r\nabc (\\Draft) {2}\r\nxy");
    assert_eq!(mailbox, "mbox");
    assert_eq!(m, vec![message(&["\\Seen"], None, b"abc", false), message(&["\\Draft"], None, b"xy", false)]);
    let (_, m) = append(
        b"A003 APPEND saved-messages (\\Seen) {3}\r\none \"07-Feb-1994 22:43:04 -0800\" {3+}\r\ntwo ~{5}\r\nthree {0}\r\n",
    );
    assert_eq!(
        m,
        vec![
            message(&["\\Seen"], None, b"one", false),
            message(&[], Some(760_689_784), b"two", false),
            message(&[], None, b"three", true),
            message(&[], None, b"", false),
        ]
    );
}

#[test]
fn append_errors() {
    bad("a APPEND");
    bad("a APPEND INBOX");
    bad("a APPEND INBOX ");
    bad("a APPEND INBOX (\\Seen)");
    bad("a APPEND INBOX (\\Seen) ");
    bad("a APPEND INBOX abc");
    bad("a APPEND INBOX \"abc\"");
    bad("a APPEND INBOX (\\Recent) {1}\r\nx");
    bad("a APPEND INBOX (\\Seen {1}\r\nx");
    bad("a APPEND INBOX \"17-Jul-1996 02:44:25\" {1}\r\nx");
    bad("a APPEND INBOX \"31-Jun-1996 02:44:25 +0000\" {1}\r\nx");
    bad("a APPEND INBOX {1}\r\nx ");
    bad("a APPEND INBOX {1}\r\nx y");
    bad("a APPEND INBOX {1}\r\nx  {1}\r\ny");
    bad("a APPEND INBOX {1}\r\nxyz");
    bad("a APPEND INBOX {6}\r\nxyz");
    bad("a APPEND INBOX {1}x");
    bad("a APPEND INBOX {1} \r\nx");
    bad("a APPEND INBOX {-1}\r\nx");
    bad("a APPEND INBOX {99999999999999999999}\r\nx");
    bad("a APPEND INBOX {18446744073709551615}\r\nx");
    bad("a APPEND INBOX () () {1}\r\nx");
    bad("a APPEND INBOX \"17-Jul-1996 02:44:25 -0700\" (\\Seen) {1}\r\nx");
    bad("a APPEND INBOX CATENATE (TEXT {1}\r\nx)");
    bad("a APPEND INBOX {1}\r\nx (\\Seen)");
}

// ----- SEARCH -----

#[test]
fn search_every_key() {
    let s = |v: &str| v.to_owned();
    let cases: Vec<(&str, SearchKey)> = vec![
        ("ALL", SearchKey::All),
        ("ANSWERED", SearchKey::Answered),
        ("BCC joe", SearchKey::Bcc(s("joe"))),
        ("BEFORE 1-Feb-1994", SearchKey::Before(date(1994, 2, 1))),
        ("BODY \"hello world\"", SearchKey::Body(s("hello world"))),
        ("CC {3}\r\na b", SearchKey::Cc(s("a b"))),
        ("DELETED", SearchKey::Deleted),
        ("DRAFT", SearchKey::Draft),
        ("FLAGGED", SearchKey::Flagged),
        ("FROM Smith", SearchKey::From(s("Smith"))),
        ("HEADER Message-ID <x@y>", SearchKey::Header(s("Message-ID"), s("<x@y>"))),
        ("HEADER \"X-Spam\" \"\"", SearchKey::Header(s("X-Spam"), s(""))),
        ("KEYWORD $Junk", SearchKey::Keyword(s("$Junk"))),
        ("LARGER 4096", SearchKey::Larger(4096)),
        ("LARGER 9223372036854775807", SearchKey::Larger(9_223_372_036_854_775_807)),
        ("NEW", SearchKey::New),
        ("NOT SEEN", SearchKey::Not(Box::new(SearchKey::Seen))),
        ("OLD", SearchKey::Old),
        ("ON \"28-Oct-2006\"", SearchKey::On(date(2006, 10, 28))),
        ("OR SEEN FLAGGED", SearchKey::Or(Box::new(SearchKey::Seen), Box::new(SearchKey::Flagged))),
        ("RECENT", SearchKey::Recent),
        ("SEEN", SearchKey::Seen),
        ("SENTBEFORE 1-Jan-2000", SearchKey::SentBefore(date(2000, 1, 1))),
        ("SENTON 29-Feb-2024", SearchKey::SentOn(date(2024, 2, 29))),
        ("SENTSINCE 31-Dec-1999", SearchKey::SentSince(date(1999, 12, 31))),
        ("SINCE 12-Feb-2006", SearchKey::Since(date(2006, 2, 12))),
        ("SMALLER 0", SearchKey::Smaller(0)),
        ("SUBJECT \"afternoon meeting\"", SearchKey::Subject(s("afternoon meeting"))),
        ("TEXT \"string not in mailbox\"", SearchKey::Text(s("string not in mailbox"))),
        ("TO mooch@example.com", SearchKey::To(s("mooch@example.com"))),
        ("UID 1:5,7", SearchKey::Uid(seq(&[(1, 5), (7, 7)]))),
        ("UID $", SearchKey::Uid(SequenceSet::Saved)),
        ("UNANSWERED", SearchKey::Unanswered),
        ("UNDELETED", SearchKey::Undeleted),
        ("UNDRAFT", SearchKey::Undraft),
        ("UNFLAGGED", SearchKey::Unflagged),
        ("UNKEYWORD foo", SearchKey::Unkeyword(s("foo"))),
        ("UNSEEN", SearchKey::Unseen),
        ("1:5000", SearchKey::Sequence(seq(&[(1, 5000)]))),
        (
            "2,4:7,9,12:*",
            SearchKey::Sequence(SequenceSet::Ranges(vec![
                SeqRange { start: SeqNum::Value(2), end: SeqNum::Value(2) },
                SeqRange { start: SeqNum::Value(4), end: SeqNum::Value(7) },
                SeqRange { start: SeqNum::Value(9), end: SeqNum::Value(9) },
                SeqRange { start: SeqNum::Value(12), end: SeqNum::Star },
            ])),
        ),
        (
            "*",
            SearchKey::Sequence(SequenceSet::Ranges(vec![SeqRange {
                start: SeqNum::Star,
                end: SeqNum::Star,
            }])),
        ),
        ("$", SearchKey::Sequence(SequenceSet::Saved)),
        ("(SEEN FLAGGED)", SearchKey::And(vec![SearchKey::Seen, SearchKey::Flagged])),
        ("(ALL)", SearchKey::And(vec![SearchKey::All])),
    ];
    for (input, expected) in cases {
        assert_eq!(key(input), expected, "{input}");
        // Keywords are case-insensitive.
        assert_eq!(key(&input.to_lowercase()), lowercase_args(&expected), "{input}");
    }
}

/// What a lower-cased search key parses to: keywords fold, arguments stay as typed.
fn lowercase_args(key: &SearchKey) -> SearchKey {
    let l = |s: &String| s.to_lowercase();
    match key {
        SearchKey::Bcc(s) => SearchKey::Bcc(l(s)),
        SearchKey::Body(s) => SearchKey::Body(l(s)),
        SearchKey::Cc(s) => SearchKey::Cc(l(s)),
        SearchKey::From(s) => SearchKey::From(l(s)),
        SearchKey::Header(a, b) => SearchKey::Header(l(a), l(b)),
        SearchKey::Keyword(s) => SearchKey::Keyword(l(s)),
        SearchKey::Unkeyword(s) => SearchKey::Unkeyword(l(s)),
        SearchKey::Subject(s) => SearchKey::Subject(l(s)),
        SearchKey::Text(s) => SearchKey::Text(l(s)),
        SearchKey::To(s) => SearchKey::To(l(s)),
        other => other.clone(),
    }
}

#[test]
fn search_structure() {
    let s = search("a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    assert_eq!(
        s,
        SearchCommand {
            uid: false,
            ret: None,
            charset: None,
            keys: vec![
                SearchKey::Flagged,
                SearchKey::Since(date(1994, 2, 1)),
                SearchKey::Not(Box::new(SearchKey::From("Smith".into())))
            ]
        }
    );
    let s = search("a UID SEARCH OR (SEEN FLAGGED) NOT (OR DELETED 1:3 UNDRAFT) UID 5");
    assert!(s.uid);
    assert_eq!(
        s.keys,
        vec![
            SearchKey::Or(
                Box::new(SearchKey::And(vec![SearchKey::Seen, SearchKey::Flagged])),
                Box::new(SearchKey::Not(Box::new(SearchKey::And(vec![
                    SearchKey::Or(
                        Box::new(SearchKey::Deleted),
                        Box::new(SearchKey::Sequence(seq(&[(1, 3)])))
                    ),
                    SearchKey::Undraft
                ]))))
            ),
            SearchKey::Uid(one(5))
        ]
    );
    let s = search("a SEARCH ((((ALL))))");
    assert_eq!(
        s.keys,
        vec![SearchKey::And(vec![SearchKey::And(vec![SearchKey::And(vec![SearchKey::And(vec![
            SearchKey::All
        ])])])])]
    );
    // Ranges are kept as given.
    assert_eq!(key("5:2"), SearchKey::Sequence(seq(&[(5, 2)])));
}

#[test]
fn search_return_and_charset() {
    let s = search("A282 SEARCH RETURN (MIN COUNT) FLAGGED");
    assert_eq!(s.ret, Some(vec![SearchReturn::Min, SearchReturn::Count]));
    let s = search("A283 SEARCH RETURN () FLAGGED");
    assert_eq!(s.ret, Some(vec![]));
    let s = search("a search return (min max all count save) ALL");
    assert_eq!(
        s.ret,
        Some(vec![
            SearchReturn::Min,
            SearchReturn::Max,
            SearchReturn::All,
            SearchReturn::Count,
            SearchReturn::Save
        ])
    );
    let s = search("a SEARCH RETURN (SAVE SAVE) ALL");
    assert_eq!(s.ret, Some(vec![SearchReturn::Save]));
    let s = search("A285 UID SEARCH RETURN (MIN MAX) 1:5000");
    assert!(s.uid);
    assert_eq!(s.keys, vec![SearchKey::Sequence(seq(&[(1, 5000)]))]);
    let s = search("a SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{43e}\u{442}\u{43f}\u{443}\u{441}\u{43a}");
    assert_eq!(s.charset.as_deref(), Some("UTF-8"));
    assert_eq!(s.keys, vec![SearchKey::Text("\u{43e}\u{442}\u{43f}\u{443}\u{441}\u{43a}".into())]);
    let s = search("a SEARCH CHARSET \"us-ascii\" ALL");
    assert_eq!(s.charset.as_deref(), Some("us-ascii"));
    let s = search("a SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT \"\u{e4}\"");
    assert_eq!(s.ret, Some(vec![SearchReturn::Count]));
    assert_eq!(s.keys, vec![SearchKey::Subject("\u{e4}".into())]);
    // Under an unsupported charset, strings are converted lossily so that the session can
    // answer NO [BADCHARSET] rather than BAD.
    let s = match cmd_bytes(
        b"B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\n\xcd\xc1\xd4\xd8",
    ) {
        Command::Search(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.charset.as_deref(), Some("KOI8-R"));
    assert_eq!(
        s.keys,
        vec![
            SearchKey::And(vec![SearchKey::Or(
                Box::new(SearchKey::Sequence(SequenceSet::Saved)),
                Box::new(SearchKey::Sequence(seq(&[(1, 1), (3000, 3021)])))
            )]),
            SearchKey::Text("\u{fffd}".repeat(4))
        ]
    );
    // Without a charset (or with UTF-8), invalid UTF-8 is BAD.
    bad_tagged(b"a SEARCH TEXT {2}\r\n\xcd\xc1", Some("a"));
    bad_tagged(b"a SEARCH CHARSET UTF-8 TEXT {2}\r\n\xcd\xc1", Some("a"));
}

#[test]
fn search_errors() {
    for input in [
        "a SEARCH",
        "a SEARCH ",
        "a SEARCH ALL ",
        "a SEARCH ALL  SEEN",
        "a SEARCH FOO",
        "a SEARCH SEEN FOO",
        "a SEARCH ()",
        "a SEARCH (SEEN",
        "a SEARCH (SEEN))",
        "a SEARCH SEEN)",
        "a SEARCH ( SEEN)",
        "a SEARCH NOT",
        "a SEARCH NOT ",
        "a SEARCH OR SEEN",
        "a SEARCH OR SEEN ",
        "a SEARCH BCC",
        "a SEARCH FROM (x)",
        "a SEARCH HEADER Subject",
        "a SEARCH BEFORE",
        "a SEARCH BEFORE 1-Feb-94",
        "a SEARCH BEFORE 30-Feb-1994",
        "a SEARCH BEFORE \"1-Feb-1994",
        "a SEARCH BEFORE Feb-1-1994",
        "a SEARCH SINCE 1-Feb-1994x",
        "a SEARCH LARGER",
        "a SEARCH LARGER x",
        "a SEARCH LARGER -1",
        "a SEARCH LARGER 9223372036854775808",
        "a SEARCH SMALLER 99999999999999999999999",
        "a SEARCH KEYWORD",
        "a SEARCH KEYWORD \\Seen",
        "a SEARCH KEYWORD \"foo\"",
        "a SEARCH UID",
        "a SEARCH UID x",
        "a SEARCH UID 0",
        "a SEARCH 0",
        "a SEARCH 1:0",
        "a SEARCH 4294967296",
        "a SEARCH 1,,2",
        "a SEARCH 1:2x",
        "a SEARCH $x",
        "a SEARCH $,1",
        "a SEARCH RETURN",
        "a SEARCH RETURN ALL",
        "a SEARCH RETURN (FOO) ALL",
        "a SEARCH RETURN (PARTIAL 1:10) ALL",
        "a SEARCH RETURN (MIN)",
        "a SEARCH RETURN (MIN) ",
        "a SEARCH CHARSET",
        "a SEARCH CHARSET UTF-8",
        "a SEARCH CHARSET UTF-8 ",
        "a SEARCH CHARSET UTF-8 RETURN (MIN) ALL",
        "a SEARCH TEXT \"unterminated",
        "a SEARCH TEXT \"bad \\escape\"",
        "a SEARCH TEXT {6}\r\nabc",
        "a SEARCH TEXT {2}\r\nabc",
        "a SEARCH MODSEQ",
        "a SEARCH MODSEQ \"/x/y\" all 5",
        "a SEARCH MODSEQ \"/flags/\\\\draft\" some 5",
    ] {
        bad(input);
    }
}

#[test]
fn search_nesting_limit() {
    for prefix in ["NOT ", "(", "OR ALL "] {
        let mut input = String::from("a SEARCH ");
        for _ in 0..100_000 {
            input.push_str(prefix);
        }
        input.push_str("ALL");
        let e = bad(&input);
        assert!(e.message.contains("too deeply nested"), "{prefix}: {e}");
    }
    // 63 NOTs plus the innermost key is exactly the limit.
    let ok = format!("a SEARCH {}ALL", "NOT ".repeat(63));
    assert!(parse(ok.as_bytes()).is_ok());
    let too_deep = format!("a SEARCH {}ALL", "NOT ".repeat(64));
    assert!(bad(&too_deep).message.contains("too deeply nested"));
    // Width is not depth.
    let wide = format!("a SEARCH ({})", vec!["SEEN"; 10_000].join(" "));
    assert!(parse(wide.as_bytes()).is_ok());
}

// ----- FETCH -----

fn body(peek: bool, part: &[u32], text: Option<SectionText>, partial: Option<(u32, u32)>) -> FetchItem {
    FetchItem::BodySection {
        peek,
        section: Section { part: part.to_vec(), text },
        partial: partial.map(|(offset, count)| Partial { offset, count }),
    }
}

#[test]
fn fetch_macros_and_simple_items() {
    use FetchItem::*;
    assert_eq!(fetch_items("ALL"), vec![Flags, InternalDate, Rfc822Size, Envelope]);
    assert_eq!(fetch_items("fast"), vec![Flags, InternalDate, Rfc822Size]);
    assert_eq!(fetch_items("Full"), vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    for (input, item) in [
        ("FLAGS", Flags),
        ("INTERNALDATE", InternalDate),
        ("RFC822.SIZE", Rfc822Size),
        ("ENVELOPE", Envelope),
        ("BODY", Body),
        ("BODYSTRUCTURE", BodyStructure),
        ("UID", Uid),
        ("RFC822", Rfc822),
        ("RFC822.HEADER", Rfc822Header),
        ("RFC822.TEXT", Rfc822Text),
    ] {
        assert_eq!(fetch_items(input), vec![item.clone()], "{input}");
        assert_eq!(fetch_items(&format!("({})", input.to_lowercase())), vec![item], "{input}");
    }
    assert_eq!(
        fetch_items("(UID INTERNALDATE FLAGS BODY.PEEK[HEADER])"),
        vec![Uid, InternalDate, Flags, body(true, &[], Some(SectionText::Header), None)]
    );
    // Duplicates are kept (the session may coalesce).
    assert_eq!(fetch_items("(FLAGS FLAGS)"), vec![Flags, Flags]);
}

#[test]
fn fetch_sections() {
    let fields = |v: &[&str]| Some(SectionText::HeaderFields(strings(v)));
    for (input, item) in [
        ("BODY[]", body(false, &[], None, None)),
        ("BODY.PEEK[]", body(true, &[], None, None)),
        ("BODY[1]", body(false, &[1], None, None)),
        ("BODY[1.2.3]", body(false, &[1, 2, 3], None, None)),
        ("BODY[HEADER]", body(false, &[], Some(SectionText::Header), None)),
        ("body.peek[header]", body(true, &[], Some(SectionText::Header), None)),
        ("BODY[TEXT]", body(false, &[], Some(SectionText::Text), None)),
        ("BODY[1.MIME]", body(false, &[1], Some(SectionText::Mime), None)),
        ("BODY[1.2.HEADER]", body(false, &[1, 2], Some(SectionText::Header), None)),
        ("BODY[4.2.TEXT]", body(false, &[4, 2], Some(SectionText::Text), None)),
        ("BODY[HEADER.FIELDS (DATE FROM)]", body(false, &[], fields(&["DATE", "FROM"]), None)),
        (
            "BODY.PEEK[HEADER.FIELDS (\"Subject\" {2}\r\nTo)]",
            body(true, &[], fields(&["Subject", "To"]), None),
        ),
        (
            "BODY[HEADER.FIELDS.NOT (Received)]",
            body(false, &[], Some(SectionText::HeaderFieldsNot(strings(&["Received"]))), None),
        ),
        ("BODY[2.HEADER.FIELDS (X-A)]", body(false, &[2], fields(&["X-A"]), None)),
        ("BODY[]<0.100>", body(false, &[], None, Some((0, 100)))),
        ("BODY.PEEK[1]<4294967295.4294967295>", body(true, &[1], None, Some((u32::MAX, u32::MAX)))),
        ("BODY[TEXT]<10.1>", body(false, &[], Some(SectionText::Text), Some((10, 1)))),
    ] {
        assert_eq!(fetch_items(input), vec![item], "{input}");
    }
    assert_eq!(
        fetch_items("(FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        vec![FetchItem::Flags, body(false, &[], fields(&["DATE", "FROM"]), None)]
    );
}

#[test]
fn fetch_binary() {
    let binary = |peek, part: &[u32], partial: Option<(u32, u32)>| FetchItem::Binary {
        peek,
        part: part.to_vec(),
        partial: partial.map(|(offset, count)| Partial { offset, count }),
    };
    assert_eq!(fetch_items("BINARY[1]"), vec![binary(false, &[1], None)]);
    assert_eq!(fetch_items("BINARY[]"), vec![binary(false, &[], None)]);
    assert_eq!(fetch_items("BINARY.PEEK[1]<0.10>"), vec![binary(true, &[1], Some((0, 10)))]);
    assert_eq!(fetch_items("binary.peek[1.2.3]"), vec![binary(true, &[1, 2, 3], None)]);
    assert_eq!(fetch_items("BINARY.SIZE[1]"), vec![FetchItem::BinarySize { part: vec![1] }]);
    assert_eq!(
        fetch_items("(BINARY.SIZE[] BINARY[2])"),
        vec![FetchItem::BinarySize { part: vec![] }, binary(false, &[2], None)]
    );
}

#[test]
fn fetch_commands() {
    assert_eq!(
        cmd("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        Command::Fetch {
            uid: false,
            set: seq(&[(2, 4)]),
            items: vec![
                FetchItem::Flags,
                body(false, &[], Some(SectionText::HeaderFields(strings(&["DATE", "FROM"]))), None)
            ],
            modifiers: Default::default()
        }
    );
    assert_eq!(
        cmd("A999 UID FETCH 4827313:4828442 FLAGS"),
        Command::Fetch {
            uid: true,
            set: seq(&[(4_827_313, 4_828_442)]),
            items: vec![FetchItem::Flags],
            modifiers: Default::default()
        }
    );
    assert_eq!(
        cmd("a uid fetch $ (UID)"),
        Command::Fetch {
            uid: true,
            set: SequenceSet::Saved,
            items: vec![FetchItem::Uid],
            modifiers: Default::default()
        }
    );
}

#[test]
fn fetch_errors() {
    for input in [
        "a FETCH",
        "a FETCH 1",
        "a FETCH 1 ",
        "a FETCH 0 FLAGS",
        "a FETCH x FLAGS",
        "a FETCH 1:x FLAGS",
        "a FETCH 1 ()",
        "a FETCH 1 (FLAGS",
        "a FETCH 1 (FLAGS ",
        "a FETCH 1 (FLAGS))",
        "a FETCH 1 ( FLAGS)",
        "a FETCH 1 FLAGS UID",
        "a FETCH 1 (ALL)",
        "a FETCH 1 (FAST FLAGS)",
        "a FETCH 1 FOO",
        "a FETCH 1 BODY.PEEK",
        "a FETCH 1 BODY[",
        "a FETCH 1 BODY[1",
        "a FETCH 1 BODY[0]",
        "a FETCH 1 BODY[1.0]",
        "a FETCH 1 BODY[01]",
        "a FETCH 1 BODY[1.]",
        "a FETCH 1 BODY[.1]",
        "a FETCH 1 BODY[4294967296]",
        "a FETCH 1 BODY[MIME]",
        "a FETCH 1 BODY[FOO]",
        "a FETCH 1 BODY[HEADER.FIELDS]",
        "a FETCH 1 BODY[HEADER.FIELDS ()]",
        "a FETCH 1 BODY[HEADER.FIELDS (a]",
        "a FETCH 1 BODY[HEADER.FIELDS(a)]",
        "a FETCH 1 BODY[HEADER.FIELDS.NOT]",
        "a FETCH 1 BODY[TEXT",
        "a FETCH 1 BODY[TEXT ]",
        "a FETCH 1 BODY[1.TEXT.MIME]",
        "a FETCH 1 BODY[]<>",
        "a FETCH 1 BODY[]<0>",
        "a FETCH 1 BODY[]<0.0>",
        "a FETCH 1 BODY[]<1.2",
        "a FETCH 1 BODY[]<4294967296.1>",
        "a FETCH 1 BODY[]<0.4294967296>",
        "a FETCH 1 BODY[]<-1.2>",
        "a FETCH 1 BODY <0.10>",
        "a FETCH 1 BODY[] <0.10>",
        "a FETCH 1 BODYSTRUCTURE[]",
        "a FETCH 1 BINARY",
        "a FETCH 1 BINARY[HEADER]",
        "a FETCH 1 BINARY[1.MIME]",
        "a FETCH 1 BINARY.SIZE[1]<0.1>",
        "a FETCH 1 BINARY.SIZE",
        "a FETCH 1 RFC822.SIZE[]",
        "a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        "a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)",
        "a UID FETCH 1 FLAGS (VANISHED)",
        "a UID FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        "a FETCH 1:* (FLAGS) (BOGUS 1)",
        "a UID FETCH 1 FLAGS extra",
    ] {
        bad(input);
    }
}

// ----- STORE / COPY / MOVE / UID EXPUNGE -----

#[test]
fn store() {
    let store = |uid, set, mode, silent, flags: &[&str]| Command::Store {
        uid,
        set,
        mode,
        silent,
        flags: strings(flags),
        unchanged_since: None,
    };
    assert_eq!(
        cmd("A003 STORE 2:4 +FLAGS (\\Deleted)"),
        store(false, seq(&[(2, 4)]), StoreMode::Add, false, &["\\Deleted"])
    );
    assert_eq!(
        cmd("F284 STORE $ +FLAGS.Silent (\\Deleted)"),
        store(false, SequenceSet::Saved, StoreMode::Add, true, &["\\Deleted"])
    );
    assert_eq!(cmd("a STORE 1 FLAGS ()"), store(false, one(1), StoreMode::Replace, false, &[]));
    assert_eq!(
        cmd("a store 1 -flags.silent (\\Seen $Forwarded)"),
        store(false, one(1), StoreMode::Remove, true, &["\\Seen", "$Forwarded"])
    );
    assert_eq!(
        cmd("a STORE 1 +FLAGS \\Seen \\Flagged"),
        store(false, one(1), StoreMode::Add, false, &["\\Seen", "\\Flagged"])
    );
    assert_eq!(
        cmd("a UID STORE 1:* FLAGS.SILENT \\Answered"),
        store(
            true,
            SequenceSet::Ranges(vec![SeqRange { start: SeqNum::Value(1), end: SeqNum::Star }]),
            StoreMode::Replace,
            true,
            &["\\Answered"]
        )
    );
    // flag-extension and keywords are kept as sent.
    assert_eq!(
        cmd("a STORE 1 +FLAGS (\\X-Custom Junk-ish)"),
        store(false, one(1), StoreMode::Add, false, &["\\X-Custom", "Junk-ish"])
    );
    for input in [
        "a STORE",
        "a STORE 1",
        "a STORE 1 FLAGS",
        "a STORE 1 FLAGS ",
        "a STORE 1 +FLAGS",
        "a STORE 0 FLAGS ()",
        "a STORE 1 FLAG (\\Seen)",
        "a STORE 1 +FLAGS.LOUD (\\Seen)",
        "a STORE 1 *FLAGS (\\Seen)",
        "a STORE 1 ++FLAGS (\\Seen)",
        "a STORE 1 + FLAGS (\\Seen)",
        "a STORE 1 FLAGS (\\Seen",
        "a STORE 1 FLAGS (\\Seen) (\\Draft)",
        "a STORE 1 FLAGS \\Seen (\\Draft)",
        "a STORE 1 FLAGS \\Seen ",
        "a STORE 1 FLAGS (\\Recent)",
        "a STORE 1 +FLAGS \\Recent",
        "a STORE 1 FLAGS (\\*)",
        "a STORE 1 FLAGS (\"\\Seen\")",
        "a STORE 1 FLAGS {5}\r\n\\Seen",
        "a STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
        "a STORE 1 (BOGUS 5) +FLAGS (\\Seen)",
        "a STORE 1 X-GM-LABELS (foo)",
    ] {
        bad(input);
    }
}

#[test]
fn copy_move() {
    assert_eq!(
        cmd("A004 COPY 2:4 meeting"),
        Command::Copy { uid: false, set: seq(&[(2, 4)]), mailbox: "meeting".into() }
    );
    assert_eq!(
        cmd("A005 UID COPY 305:310 meeting"),
        Command::Copy { uid: true, set: seq(&[(305, 310)]), mailbox: "meeting".into() }
    );
    assert_eq!(
        cmd("E283 COPY $ \"Other Messages\""),
        Command::Copy { uid: false, set: SequenceSet::Saved, mailbox: "Other Messages".into() }
    );
    assert_eq!(
        cmd("a UID MOVE 42:69 foo"),
        Command::Move { uid: true, set: seq(&[(42, 69)]), mailbox: "foo".into() }
    );
    assert_eq!(
        cmd("a move 1,2 {3}\r\nx y"),
        Command::Move { uid: false, set: seq(&[(1, 1), (2, 2)]), mailbox: "x y".into() }
    );
    for input in [
        "a COPY",
        "a COPY 1",
        "a COPY 1 ",
        "a COPY x y",
        "a COPY 1 a b",
        "a MOVE 1:2",
        "a UID MOVE 0 x",
        "a UID COPY 1 (x)",
    ] {
        bad(input);
    }
}

#[test]
fn uid_expunge() {
    assert_eq!(cmd("A003 UID EXPUNGE 3000:3002"), Command::UidExpunge(seq(&[(3000, 3002)])));
    assert_eq!(cmd("a uid expunge $"), Command::UidExpunge(SequenceSet::Saved));
    bad("a UID EXPUNGE");
    bad("a UID EXPUNGE ");
    bad("a UID EXPUNGE 0");
    bad("a UID EXPUNGE 1 2");
}

#[test]
fn sequence_set_edge_cases() {
    let fetch_set = |s: &str| match cmd(&format!("a FETCH {s} FLAGS")) {
        Command::Fetch { set, .. } => set,
        other => panic!("{other:?}"),
    };
    assert_eq!(fetch_set("4294967295"), one(u32::MAX));
    assert_eq!(fetch_set("7:3"), seq(&[(7, 3)]));
    assert_eq!(
        fetch_set("*:4,5:7"),
        SequenceSet::Ranges(vec![
            SeqRange { start: SeqNum::Star, end: SeqNum::Value(4) },
            SeqRange { start: SeqNum::Value(5), end: SeqNum::Value(7) }
        ])
    );
    for set in ["0", "4294967296", "99999999999999999999999", "1,", "1::2", "1:*:2", "$:1", "-1", "1 ,2"] {
        bad(&format!("a FETCH {set} FLAGS"));
    }
}

// ----- RFC 9051 section 6 client lines -----

#[test]
fn rfc9051_section6_examples() {
    let lines: &[&[u8]] = &[
        b"abcd CAPABILITY",
        b"efgh STARTTLS",
        b"ijkl CAPABILITY",
        b"a002 NOOP",
        b"a047 NOOP",
        b"A023 LOGOUT",
        b"a004 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        b"A001 AUTHENTICATE GSSAPI",
        b"A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        b"A01 AUTHENTICATE PLAIN",
        b"A01 AUTHENTICATE EXTERNAL =",
        b"a001 LOGIN SMITH SESAME",
        b"t2 ENABLE CONDSTORE X-GOOD-IDEA",
        b"a1 ENABLE CONDSTORE",
        b"A142 SELECT INBOX",
        b"A143 SELECT Drafts",
        b"A932 EXAMINE blurdybloop",
        b"A003 CREATE owatagusiam/",
        b"A004 CREATE owatagusiam/blurdybloop",
        b"A005 CREATE NonNormalized",
        b"A682 LIST \"\" *",
        b"A683 DELETE blurdybloop",
        b"A685 DELETE foo/bar",
        b"A86 LIST \"\" %",
        b"A683 RENAME blurdybloop sarasoop",
        b"A684 RENAME foo zowie",
        b"Z433 RENAME INBOX old-mail",
        b"1001 RENAME X Y",
        b"1002 SUBSCRIBE Y",
        b"1003 UNSUBSCRIBE X",
        b"A002 SUBSCRIBE #news.comp.mail.mime",
        b"A002 UNSUBSCRIBE #news.comp.mail.mime",
        b"A101 LIST \"\" \"\"",
        b"A102 LIST #news.comp.mail.misc \"\"",
        b"A103 LIST /usr/staff/jones \"\"",
        b"A202 LIST ~/Mail/ %",
        b"A01 LIST \"\" \"*\"",
        b"A02 LIST (SUBSCRIBED) \"\" \"*\"",
        b"A03 LIST () \"\" \"%\" RETURN (CHILDREN)",
        b"A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)",
        b"A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"",
        b"A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)",
        b"CA3 LIST \"\" \"%\" RETURN (CHILDREN)",
        b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"",
        b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)",
        b"D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"",
        b"a1 LIST \"\" (\"foo\")",
        b"a2 LIST (SUBSCRIBED) \"\" \"foo/*\"",
        b"a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)",
        b"a1 LIST (REMOTE) \"\" *",
        b"a2 LIST () \"\" %",
        b"a3.1 LIST \"\" (% music/rock)",
        b"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))",
        b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES))",
        b"A001 NAMESPACE",
        b"A002 CREATE \"INBOX.Sent Mail\"",
        b"A002 LIST (SPECIAL-USE) \"\" \"*\"",
        b"A003 LIST (SPECIAL-USE) \"#mh/\" \"*\"",
        b"A004 CREATE \"Sent Mail\"",
        b"A006 CREATE \"#mh/Deleted Items\"",
        b"A002 LIST \"\" \"Other Users/%\"",
        b"A002 LIST \"\" \"#Users/%\"",
        b"A002 LIST \"\" \"~mark/%\"",
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
        b"A004 COPY 2:4 meeting",
        b"A005 UID COPY 305:310 meeting",
        b"A006 COPY 2 funny",
        b"A007 SELECT funny",
        b"A002 IDLE",
        b"A003 FETCH 4 ALL",
        b"A341 CLOSE",
        b"A342 UNSELECT",
        b"A202 EXPUNGE",
        b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        b"A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        b"A284 SEARCH TEXT \"string not in mailbox\"",
        "A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{43e}\u{442}\u{43f}\u{443}\u{441}\u{43a}".as_bytes(),
        b"A284 SEARCH RETURN (MIN) UNSEEN",
        b"A285 UID SEARCH RETURN (MIN MAX) 1:5000",
        b"A286 SEARCH RETURN (COUNT) DELETED",
        b"A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        b"A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
        b"A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\" FROM \"Murray\"",
        b"A301 UID SEARCH UID $ SMALLER 4096",
        b"A301 UID SEARCH $ SMALLER 4096",
        b"P282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        "P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\n\u{43c}\u{430}\u{442}\u{44c}".as_bytes(),
        b"E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006 NOT FROM \"Eric Brown\"",
        b"E283 COPY $ \"Other Messages\"",
        b"F282 SEARCH RETURN (SAVE) KEYWORD $Junk",
        b"F283 COPY $ \"Junk\"",
        b"F284 STORE $ +FLAGS.Silent (\\Deleted)",
        b"G283 SEARCH RETURN (ALL) SINCE 28-Oct-2006 FROM \"Eric Brown\"",
        b"C283 SEARCH RETURN (ALL SAVE) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        b"C284 SEARCH RETURN (SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        b"C285 SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        b"C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        b"A003 STORE 2:4 +FLAGS (\\Deleted)",
        b"A003 COPY 2:4 MEETING",
        b"a UID MOVE 42:69 foo",
        b"A003 UID EXPUNGE 3000:3002",
        b"A999 UID FETCH 4827313:4828442 FLAGS",
        b"a441 CAPABILITY",
    ];
    for line in lines {
        cmd_bytes(line);
    }
    // The one command of section 6 that is meant to fail.
    let e = bad_tagged(b"A442 XPIG-LATIN", Some("A442"));
    assert!(e.message.contains("XPIG-LATIN"));
}

// ----- Literal framing errors -----

#[test]
fn literal_errors() {
    // Too short, too long, no CRLF after the announcement, announcement not at a line end.
    bad_tagged(b"a LOGIN {5}\r\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {3}\r\nabcd pass", Some("a"));
    bad_tagged(b"a LOGIN {3}abc pass", Some("a"));
    bad_tagged(b"a LOGIN {3}\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {3} \r\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {3\r\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {x}\r\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {3+x}\r\nabc pass", Some("a"));
    bad_tagged(b"a LOGIN {3}\r\nabc {4}\r\npas", Some("a"));
    bad_tagged(b"a LOGIN fred{3}\r\nabc", Some("a"));
    bad_tagged(b"a LOGIN {18446744073709551616}\r\nabc pass", Some("a"));
}

#[test]
fn error_display() {
    let e = bad("a FETCH 0 FLAGS");
    assert_eq!(e.to_string(), e.message);
    assert!(e.message.starts_with("FETCH"), "{e}");
    let e = bad("a UID FETCH 0 FLAGS");
    assert!(e.message.starts_with("UID FETCH"), "{e}");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(!boxed.to_string().is_empty());
}

// ----- CONDSTORE / QRESYNC / QUOTA / SORT / THREAD -----

#[test]
fn condstore_modifiers_and_keys() {
    // RFC 7162 examples 3, 12, 15 and section 3.2.6.
    match cmd("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)") {
        Command::Store { uid: true, silent: true, unchanged_since: Some(12_121_230_045), .. } => {}
        other => panic!("{other:?}"),
    }
    match cmd("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)") {
        Command::Fetch { uid: true, modifiers, .. } => {
            assert_eq!((modifiers.changed_since, modifiers.vanished), (Some(12345), true))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fetch_items("(MODSEQ)"), vec![FetchItem::ModSeq]);
    assert_eq!(
        search("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338").keys,
        vec![SearchKey::ModSeq(620_162_338)]
    );
    assert_eq!(search("t SEARCH OR NOT MODSEQ 720162338 LARGER 50000").keys.len(), 1);
}

#[test]
fn quota_commands() {
    assert_eq!(cmd("G0001 GETQUOTA \"!partition/sda4\""), Command::GetQuota("!partition/sda4".into()));
    assert_eq!(cmd("G0002 GETQUOTAROOT INBOX"), Command::GetQuotaRoot("INBOX".into()));
    assert_eq!(
        cmd("S0001 SETQUOTA \"#user/alice\" (STORAGE 510 message 7)"),
        Command::SetQuota {
            root: "#user/alice".into(),
            limits: vec![("STORAGE".into(), 510), ("MESSAGE".into(), 7)]
        }
    );
    assert_eq!(cmd("a SETQUOTA \"\" ()"), Command::SetQuota { root: String::new(), limits: vec![] });
    for input in ["a GETQUOTA", "a SETQUOTA x", "a SETQUOTA x (STORAGE)", "a SETQUOTA x (STORAGE -1)"] {
        bad(input);
    }
}

#[test]
fn sort_and_thread_commands() {
    use postamt_imap::command::{SortCommand, SortCriterion, SortKey, ThreadAlgorithm};
    let key = |key, reverse| SortCriterion { key, reverse };
    assert_eq!(
        cmd("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
        Command::Sort(SortCommand {
            uid: false,
            ret: None,
            criteria: vec![key(SortKey::Subject, false), key(SortKey::Date, true)],
            charset: "UTF-8".into(),
            keys: vec![SearchKey::All],
        })
    );
    match cmd("E01 UID SORT RETURN () (REVERSE DATE DISPLAYFROM) UTF-8 UNDELETED UNKEYWORD $Junk") {
        Command::Sort(s) => {
            assert!(s.uid);
            assert_eq!(s.ret, Some(vec![]));
            assert_eq!(s.criteria, vec![key(SortKey::Date, true), key(SortKey::DisplayFrom, false)]);
            assert_eq!(s.keys.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cmd("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000"),
        Command::Thread {
            uid: false,
            algorithm: ThreadAlgorithm::OrderedSubject,
            charset: "UTF-8".into(),
            keys: vec![SearchKey::Since(Date { year: 2000, month: 3, day: 5 })],
        }
    );
    assert!(matches!(
        cmd("a UID THREAD references US-ASCII ALL"),
        Command::Thread { uid: true, algorithm: ThreadAlgorithm::References, .. }
    ));
    for input in [
        "a SORT (SUBJECT) ALL",
        "a SORT () UTF-8 ALL",
        "a SORT (REVERSE) UTF-8 ALL",
        "a SORT (BOGUS) UTF-8 ALL",
        "a SORT RETURN (SAVE) (DATE) UTF-8 ALL",
        "a THREAD BOGUS UTF-8 ALL",
        "a THREAD REFERENCES ALL",
    ] {
        bad(input);
    }
}

#[test]
fn metadata_compress_and_object_commands() {
    use postamt_imap::command::MetadataDepth;
    // RFC 5464 section 4.2 examples, options before (ABNF) or after (examples) the mailbox.
    assert_eq!(
        cmd("a GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)"),
        Command::GetMetadata {
            mailbox: "INBOX".into(),
            maxsize: Some(1024),
            depth: MetadataDepth::Zero,
            entries: strings(&["/shared/comment", "/private/comment"]),
        }
    );
    assert_eq!(
        cmd("a GETMETADATA (DEPTH infinity MAXSIZE 5) \"\" /shared/comment"),
        Command::GetMetadata {
            mailbox: String::new(),
            maxsize: Some(5),
            depth: MetadataDepth::Infinity,
            entries: strings(&["/shared/comment"]),
        }
    );
    assert_eq!(
        cmd_bytes(
            b"a SETMETADATA INBOX (/private/comment {3}\r\nabc /shared/x NIL /private/b ~{2}\r\n\x00\x01)"
        ),
        Command::SetMetadata {
            mailbox: "INBOX".into(),
            entries: vec![
                ("/private/comment".into(), Some(b"abc".to_vec())),
                ("/shared/x".into(), None),
                ("/private/b".into(), Some(vec![0, 1])),
            ],
        }
    );
    for input in [
        "a GETMETADATA INBOX (DEPTH 2) /a/b",
        "a GETMETADATA INBOX (DEPTH 1 DEPTH 1) /a/b",
        "a GETMETADATA INBOX /a/*",
        "a GETMETADATA INBOX a/b",
        "a SETMETADATA INBOX /private/x \"v\"",
        "a SETMETADATA INBOX (/private/x)",
    ] {
        bad(input);
    }
    assert_eq!(cmd("c compress deflate"), Command::Compress("DEFLATE".into()));
    bad("a COMPRESS");
    assert_eq!(
        fetch_items("(EMAILID THREADID SAVEDATE PREVIEW PREVIEW (LAZY))"),
        vec![
            FetchItem::EmailId,
            FetchItem::ThreadId,
            FetchItem::SaveDate,
            FetchItem::Preview { lazy: false },
            FetchItem::Preview { lazy: true }
        ]
    );
    assert_eq!(key("EMAILID M6d99ac3275bb4e"), SearchKey::EmailId("M6d99ac3275bb4e".into()));
    assert_eq!(key("SAVEDON 28-Dec-2014"), SearchKey::SavedOn(Date { year: 2014, month: 12, day: 28 }));
    assert_eq!(key("SAVEDATESUPPORTED"), SearchKey::SaveDateSupported);
    assert_eq!(
        cmd("6 status foo (mailboxid)"),
        Command::Status { mailbox: "foo".into(), items: vec![StatusItem::MailboxId] }
    );
    // RFC 6855 section 4: APPEND's UTF8 data item wraps a literal8.
    match cmd_bytes(b"a APPEND INBOX UTF8 (~{3}\r\nabc)") {
        Command::Append { messages, .. } => assert!(messages[0].utf8 && messages[0].data == b"abc"),
        other => panic!("{other:?}"),
    }
    bad("a APPEND INBOX UTF8 ({3}\r\nabc)");
}
