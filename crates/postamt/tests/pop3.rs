//! POP3 through the wire: exact dialogs against the real server on the `pop3` (STLS) and
//! `pop3s` (implicit TLS) ports, the interplay with the store (snapshot, concurrent expunge,
//! locking), and real clients: Python's poplib and fetchmail.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use postamt_store::Store;
use postamt_store::sqlite::SqliteStore;

const LISTEN: &str = "[listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsubmissions = [\"127.0.0.1:0\"]\npop3 = [\"127.0.0.1:0\"]\npop3s = [\"127.0.0.1:0\"]\n";

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

const M1: &str = "From: carol@remote.example\r\nTo: alice@example.test\r\nSubject: one\r\n\r\nHello.\r\n";
const M2: &str = "From: carol@remote.example\r\nTo: alice@example.test\r\nSubject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nnormal\r\n.\r\nlast\r\n";
const M3: &str = "From: carol@remote.example\r\nTo: alice@example.test\r\nSubject: lines\r\n\r\nbody 1\r\nbody 2\r\nbody 3\r\nbody 4\r\nbody 5\r\n";

const TLS_REQUIRED: &str = "-ERR [AUTH] TLS required for login: use STLS first\r\n";
const CAPA_PLAIN: &str = "+OK capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION postamt\r\n.\r\n";
const CAPA_TLS: &str = "+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION postamt\r\n.\r\n";

fn pop3_server() -> Server {
    Server::start_with(LISTEN).with_accounts()
}

/// Delivers `message` to `to` over port 25, dot-stuffing it for SMTP.
fn deliver(server: &Server, to: &str, message: &str) {
    let mut c = mx_session(server);
    let reply = send_mail(&mut c, "carol@remote.example", &[to], &stuff_lines(message));
    assert!(reply.starts_with("250 "), "{reply}");
    c.cmd("QUIT");
}

/// Doubles a leading dot on every line (SMTP DATA and POP3 multi-line responses alike).
fn stuff_lines(message: &str) -> String {
    message
        .split_inclusive('\n')
        .map(|l| if l.starts_with('.') { format!(".{l}") } else { l.to_string() })
        .collect()
}

/// What RETR must send for a stored (CRLF) message: stuffed lines, then the terminator.
fn wire(stored: &[u8]) -> String {
    format!("{}.\r\n", stuff_lines(std::str::from_utf8(stored).expect("utf8 message")))
}

fn store_call<T>(server: &Server, f: impl AsyncFnOnce(&SqliteStore) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&server.data_dir()).expect("open store");
        f(&store).await
    })
}

/// UIDVALIDITY and the UIDs of an account's INBOX.
fn inbox_uids(server: &Server, address: &str) -> (u32, Vec<u32>) {
    store_call(server, async |store| {
        let account = store.account_by_address(address).await.unwrap().expect("account");
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.unwrap().expect("INBOX");
        let uids = store.list_messages(account.id, inbox.id).await.unwrap().iter().map(|m| m.uid).collect();
        (inbox.uidvalidity, uids)
    })
}

/// Expunges INBOX messages as another session (IMAP) would, through the store.
fn expunge_in_store(server: &Server, address: &str, uids: &[u32]) {
    store_call(server, async |store| {
        let account = store.account_by_address(address).await.unwrap().expect("account");
        let inbox = store.mailbox_by_name(account.id, "INBOX").await.unwrap().expect("INBOX");
        assert_eq!(store.expunge(account.id, inbox.id, uids).await.unwrap(), uids);
    })
}

fn subjects(messages: &[Vec<u8>]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// A POP3 client talking byte by byte.
struct Pop(Client);

impl Pop {
    /// Connects to `pop3` (cleartext) or `pop3s` (implicit TLS) and checks the greeting.
    fn connect(server: &Server, service: &str) -> Pop {
        let mut c = match service {
            "pop3s" => Client::connect_tls(server.addr(service)),
            _ => Client::connect(server.addr(service)),
        };
        assert_eq!(c.line(), format!("+OK {HOSTNAME} POP3 server ready\r\n"));
        Pop(c)
    }

    /// Sends a command, returns the one-line response.
    fn cmd(&mut self, line: &str) -> String {
        self.0.send(format!("{line}\r\n").as_bytes());
        self.0.line()
    }

    /// Sends a command, returns its whole response: the status line and, after `+OK`, the
    /// lines up to and including the terminating `.`.
    fn multi(&mut self, line: &str) -> String {
        self.0.send(format!("{line}\r\n").as_bytes());
        self.read_multi()
    }

    fn read_multi(&mut self) -> String {
        let mut out = self.0.line();
        if !out.starts_with("+OK") {
            return out;
        }
        loop {
            let line = self.0.line();
            assert!(!line.is_empty(), "connection closed inside a multi-line response: {out:?}");
            out.push_str(&line);
            if line == ".\r\n" {
                return out;
            }
        }
    }

    /// USER/PASS login; returns the response to PASS.
    fn login(&mut self, user: &str) -> String {
        assert_eq!(self.cmd(&format!("USER {user}")), "+OK send PASS\r\n");
        self.cmd(&format!("PASS {PASSWORD}"))
    }

    /// Logs in on pop3s, waiting for a session that is ending (dropped connection) to let
    /// go of the maildrop.
    fn open(server: &Server, user: &str) -> Pop {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut pop = Pop::connect(server, "pop3s");
            let reply = pop.login(user);
            if reply.starts_with("+OK logged in") {
                return pop;
            }
            assert!(reply.starts_with("-ERR [IN-USE]") && Instant::now() < deadline, "{reply}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn quit(&mut self) -> String {
        let reply = self.cmd("QUIT");
        assert!(self.0.is_closed(), "connection still open after QUIT");
        reply
    }
}

/// A server with M1, M2, M3 in alice's INBOX; returns it with the stored messages.
fn server_with_three() -> (Server, Vec<Vec<u8>>) {
    let server = pop3_server();
    for m in [M1, M2, M3] {
        deliver(&server, ALICE, m);
    }
    let stored = server.inbox(ALICE);
    assert_eq!(subjects(&stored), ["one", "dots", "lines"]);
    (server, stored)
}

#[test]
fn cleartext_port_offers_stls_and_refuses_passwords_before_tls() {
    let server = pop3_server();
    let mut c = Pop::connect(&server, "pop3");
    assert_eq!(c.multi("CAPA"), CAPA_PLAIN);
    assert_eq!(c.cmd("USER alice@example.test"), TLS_REQUIRED);
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), TLS_REQUIRED);
    assert_eq!(c.cmd(&format!("AUTH PLAIN {}", plain(ALICE, PASSWORD))), TLS_REQUIRED);
    assert_eq!(c.cmd("AUTH"), TLS_REQUIRED);
    assert_eq!(c.cmd("STAT"), "-ERR not logged in\r\n");
    assert_eq!(c.cmd("RETR 1"), "-ERR not logged in\r\n");
    assert_eq!(c.cmd("STLS"), "+OK begin TLS negotiation\r\n");
    c.0.upgrade_tls();
    assert_eq!(c.multi("CAPA"), CAPA_TLS);
    assert_eq!(c.cmd("STLS"), "-ERR command not permitted when TLS active\r\n");
    assert_eq!(c.login(ALICE), "+OK logged in, 0 messages (0 octets)\r\n");
    // The same list in TRANSACTION state (RFC 2449 section 5).
    assert_eq!(c.multi("CAPA"), CAPA_TLS);
    assert_eq!(c.cmd("STAT"), "+OK 0 0\r\n");
    assert_eq!(c.multi("LIST"), "+OK 0 messages (0 octets)\r\n.\r\n");
    assert_eq!(c.quit(), format!("+OK {HOSTNAME} POP3 server signing off\r\n"));
}

#[test]
fn quit_before_login_and_unknown_commands() {
    let server = pop3_server();
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.cmd("APOP alice c4c9334bac560ecc979e58001b3e22fb"), "-ERR unknown command\r\n");
    assert_eq!(c.cmd("PASS secret"), "-ERR send USER first\r\n");
    assert_eq!(c.cmd("USER"), "-ERR syntax: USER name\r\n");
    assert_eq!(c.cmd("STLS"), "-ERR command not permitted when TLS active\r\n");
    assert_eq!(c.quit(), format!("+OK {HOSTNAME} POP3 server signing off\r\n"));
}

#[test]
fn input_pipelined_after_stls_is_discarded() {
    let server = pop3_server();
    let mut c = Pop::connect(&server, "pop3");
    // A man in the middle appends commands to the cleartext STLS (CVE-2011-0411).
    c.0.send(b"STLS\r\nUSER alice@example.test\r\n");
    assert_eq!(c.0.line(), "+OK begin TLS negotiation\r\n");
    c.0.upgrade_tls();
    // Had the USER been kept, PASS would log in.
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), "-ERR send USER first\r\n");
    assert_eq!(c.login(ALICE), "+OK logged in, 0 messages (0 octets)\r\n");
    c.quit();
}

#[test]
fn sasl_plain_and_login_with_and_without_initial_response() {
    let server = pop3_server();
    let ok = "+OK logged in, 0 messages (0 octets)\r\n";

    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.multi("AUTH"), "+OK supported mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    assert_eq!(c.cmd(&format!("AUTH PLAIN {}", plain(ALICE, PASSWORD))), ok);
    c.quit();

    // PLAIN with a continuation: the server sends "+ " (RFC 5034 section 4).
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(c.cmd(&plain(ALICE, PASSWORD)), ok);
    c.quit();

    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&b64(ALICE)), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64(PASSWORD)), ok);
    assert_eq!(c.cmd("AUTH PLAIN"), "-ERR already logged in\r\n");
    assert_eq!(c.cmd("USER alice@example.test"), "-ERR already logged in\r\n");
    c.quit();

    // LOGIN with the user name as initial response; STLS then AUTH on the cleartext port.
    let mut c = Pop::connect(&server, "pop3");
    assert_eq!(c.cmd("STLS"), "+OK begin TLS negotiation\r\n");
    c.0.upgrade_tls();
    assert_eq!(c.cmd(&format!("auth login {}", b64(ALICE))), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64(PASSWORD)), ok);
    c.quit();
}

#[test]
fn sasl_cancel_bad_input_and_three_failures_close() {
    let server = pop3_server();
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(c.cmd("*"), "-ERR authentication cancelled\r\n");
    assert_eq!(c.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd("*"), "-ERR authentication cancelled\r\n");
    assert_eq!(c.cmd("AUTH CRAM-MD5"), "-ERR unsupported authentication mechanism\r\n");
    assert_eq!(c.cmd("AUTH PLAIN !!!"), "-ERR cannot decode the SASL response\r\n");
    let bad = "-ERR [AUTH] invalid user name or password\r\n";
    assert_eq!(c.cmd(&format!("AUTH PLAIN {}", plain(ALICE, "wrong"))), bad);
    assert_eq!(c.cmd("USER alice@example.test"), "+OK send PASS\r\n");
    assert_eq!(c.cmd("PASS wrong password"), bad);
    // Unknown users get the same answer.
    assert_eq!(c.cmd("USER nobody@example.test"), "+OK send PASS\r\n");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), bad);
    assert!(c.0.is_closed(), "connection must close after three failed logins");
    assert!(!server.log_text().contains("wrong password"), "a password reached the log");
}

#[test]
fn pop3_switch_off_refuses_the_account() {
    let server = pop3_server();
    server.cli_ok(&["account", "set", BOB, "--pop3", "off"]);
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.login(BOB), "-ERR [AUTH] POP3 access is disabled for this account\r\n");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain(BOB, PASSWORD))),
        "-ERR [AUTH] POP3 access is disabled for this account\r\n"
    );
    assert_eq!(c.login(ALICE), "+OK logged in, 0 messages (0 octets)\r\n");
    c.quit();
    server.cli_ok(&["account", "set", BOB, "--pop3", "on"]);
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.login(BOB), "+OK logged in, 0 messages (0 octets)\r\n");
    c.quit();
}

#[test]
fn stat_list_uidl_retr_top_exact() {
    let (server, stored) = server_with_three();
    let sizes: Vec<usize> = stored.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    let (uidvalidity, uids) = inbox_uids(&server, ALICE);
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.login(ALICE), format!("+OK logged in, 3 messages ({total} octets)\r\n"));
    assert_eq!(c.cmd("STAT"), format!("+OK 3 {total}\r\n"));
    assert_eq!(
        c.multi("LIST"),
        format!(
            "+OK 3 messages ({total} octets)\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n",
            sizes[0], sizes[1], sizes[2]
        )
    );
    assert_eq!(c.cmd("LIST 2"), format!("+OK 2 {}\r\n", sizes[1]));
    assert_eq!(c.cmd("LIST 4"), "-ERR no such message, only 3 messages in maildrop\r\n");
    assert_eq!(c.cmd("LIST 0"), "-ERR no such message, only 3 messages in maildrop\r\n");
    assert_eq!(c.cmd("LIST one"), "-ERR invalid message number\r\n");
    assert_eq!(c.cmd("LIST 1 2"), "-ERR syntax: LIST [msg]\r\n");
    let uidl = |i: usize| format!("{uidvalidity}.{}", uids[i]);
    assert_eq!(
        c.multi("UIDL"),
        format!("+OK unique-id listing follows\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n", uidl(0), uidl(1), uidl(2))
    );
    assert_eq!(c.cmd("UIDL 3"), format!("+OK 3 {}\r\n", uidl(2)));
    assert_eq!(c.cmd("UIDL 9"), "-ERR no such message, only 3 messages in maildrop\r\n");

    // RETR: the stored bytes, byte-stuffed; the octet count is the LIST size.
    let m2 = &stored[1];
    let text = String::from_utf8_lossy(m2);
    assert!(text.contains("\r\n.starts with a dot\r\n..two dots\r\nnormal\r\n.\r\nlast\r\n"), "{text}");
    let retr = c.multi("RETR 2");
    assert_eq!(retr, format!("+OK {} octets\r\n{}", sizes[1], wire(m2)));
    assert!(
        retr.contains("\r\n..starts with a dot\r\n...two dots\r\nnormal\r\n..\r\nlast\r\n.\r\n"),
        "{retr}"
    );
    assert_eq!(c.multi("RETR 1"), format!("+OK {} octets\r\n{}", sizes[0], wire(&stored[0])));
    assert_eq!(c.cmd("RETR 4"), "-ERR no such message, only 3 messages in maildrop\r\n");
    assert_eq!(c.cmd("RETR"), "-ERR syntax: RETR msg\r\n");

    // TOP: header, blank line, exactly n body lines.
    let m3 = String::from_utf8(stored[2].clone()).unwrap();
    let header_end = m3.find("\r\n\r\n").expect("blank line") + 4;
    let header = &m3[..header_end];
    assert!(header.starts_with("Return-Path: <carol@remote.example>\r\nReceived: "), "{header}");
    assert_eq!(c.multi("TOP 3 0"), format!("+OK top of message follows\r\n{header}.\r\n"));
    assert_eq!(
        c.multi("TOP 3 2"),
        format!("+OK top of message follows\r\n{header}body 1\r\nbody 2\r\n.\r\n")
    );
    assert_eq!(c.multi("TOP 3 5"), format!("+OK top of message follows\r\n{m3}.\r\n"));
    assert_eq!(c.multi("TOP 3 1000"), format!("+OK top of message follows\r\n{m3}.\r\n"));
    let m2_header = &text[..text.find("\r\n\r\n").unwrap() + 4];
    assert_eq!(
        c.multi("TOP 2 1"),
        format!("+OK top of message follows\r\n{m2_header}..starts with a dot\r\n.\r\n")
    );
    assert_eq!(c.cmd("TOP 3"), "-ERR syntax: TOP msg lines\r\n");
    assert_eq!(c.cmd("NOOP"), "+OK\r\n");
    assert_eq!(c.quit(), format!("+OK {HOSTNAME} POP3 server signing off\r\n"));
    assert_eq!(server.inbox(ALICE).len(), 3, "nothing was deleted");
}

#[test]
fn dele_marks_rset_unmarks_and_quit_commits() {
    let (server, stored) = server_with_three();
    let sizes: Vec<usize> = stored.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    let (uidvalidity, uids) = inbox_uids(&server, ALICE);
    let mut c = Pop::connect(&server, "pop3s");
    c.login(ALICE);
    assert_eq!(c.cmd("DELE 1"), "+OK message 1 deleted\r\n");
    assert_eq!(c.cmd("DELE 1"), "-ERR message 1 already deleted\r\n");
    assert_eq!(c.cmd("DELE 7"), "-ERR no such message, only 3 messages in maildrop\r\n");
    for cmd in ["RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"] {
        assert_eq!(c.cmd(cmd), "-ERR message 1 is deleted\r\n", "{cmd}");
    }
    assert_eq!(c.cmd("STAT"), format!("+OK 2 {}\r\n", sizes[1] + sizes[2]));
    assert_eq!(
        c.multi("LIST"),
        format!(
            "+OK 2 messages ({} octets)\r\n2 {}\r\n3 {}\r\n.\r\n",
            sizes[1] + sizes[2],
            sizes[1],
            sizes[2]
        )
    );
    assert_eq!(
        c.multi("UIDL"),
        format!(
            "+OK unique-id listing follows\r\n2 {uidvalidity}.{}\r\n3 {uidvalidity}.{}\r\n.\r\n",
            uids[1], uids[2]
        )
    );
    assert_eq!(c.cmd("RSET"), format!("+OK maildrop has 3 messages ({total} octets)\r\n"));
    assert_eq!(c.multi("RETR 1"), format!("+OK {} octets\r\n{}", sizes[0], wire(&stored[0])));
    assert_eq!(c.cmd("DELE 1"), "+OK message 1 deleted\r\n");
    assert_eq!(c.cmd("DELE 3"), "+OK message 3 deleted\r\n");
    assert_eq!(server.inbox(ALICE).len(), 3, "DELE only marks");
    assert_eq!(c.quit(), format!("+OK {HOSTNAME} POP3 server signing off (2 messages deleted)\r\n"));
    assert_eq!(subjects(&server.inbox(ALICE)), ["dots"]);

    // The survivor keeps its unique id in the next session.
    let mut c = Pop::open(&server, ALICE);
    assert_eq!(
        c.multi("UIDL"),
        format!("+OK unique-id listing follows\r\n1 {uidvalidity}.{}\r\n.\r\n", uids[1])
    );
    c.quit();
}

#[test]
fn dropped_connection_and_shutdown_delete_nothing() {
    let (mut server, _) = server_with_three();
    let mut c = Pop::connect(&server, "pop3s");
    c.login(ALICE);
    assert_eq!(c.cmd("DELE 1"), "+OK message 1 deleted\r\n");
    assert_eq!(c.cmd("DELE 2"), "+OK message 2 deleted\r\n");
    drop(c);

    // The next session waits for the lock of the dropped one, then sees everything.
    let mut c = Pop::open(&server, ALICE);
    assert!(c.cmd("STAT").starts_with("+OK 3 "));
    assert_eq!(c.cmd("DELE 3"), "+OK message 3 deleted\r\n");
    // Server shutdown while the session waits for a command: told, closed, nothing deleted.
    let status = server.sigterm();
    assert!(status.success(), "{status:?}");
    assert_eq!(c.0.line(), "-ERR [SYS/TEMP] server shutting down, try again later\r\n");
    assert!(c.0.is_closed());
    assert_eq!(server.inbox(ALICE).len(), 3);
}

#[test]
fn second_session_on_the_same_maildrop_is_in_use() {
    let server = pop3_server();
    deliver(&server, ALICE, M1);
    let mut first = Pop::connect(&server, "pop3s");
    first.login(ALICE);
    let in_use = "-ERR [IN-USE] maildrop already in use by another POP3 session\r\n";
    // On the other port too: one lock per account for the whole server.
    let mut second = Pop::connect(&server, "pop3");
    second.cmd("STLS");
    second.0.upgrade_tls();
    assert_eq!(second.login(ALICE), in_use);
    assert_eq!(second.cmd(&format!("AUTH PLAIN {}", plain(ALICE, PASSWORD))), in_use);
    // Another account is not affected.
    let mut bob = Pop::connect(&server, "pop3s");
    assert_eq!(bob.login(BOB), "+OK logged in, 0 messages (0 octets)\r\n");
    bob.quit();
    // An IN-USE answer is no failed login: the session may try again once the lock is free.
    assert!(first.cmd("DELE 1").starts_with("+OK"));
    first.quit();
    assert!(second.login(ALICE).starts_with("+OK logged in, 0 messages"));
    second.quit();
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let (server, stored) = server_with_three();
    let total: usize = stored.iter().map(Vec::len).sum();
    let (uidvalidity, uids) = inbox_uids(&server, ALICE);
    let mut c = Pop::connect(&server, "pop3s");
    c.0.send(
        format!("USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE 2\r\nUIDL 1\r\nRETR 1\r\nBOGUS\r\nLIST\r\nNOOP\r\n")
            .as_bytes(),
    );
    assert_eq!(c.0.line(), "+OK send PASS\r\n");
    assert_eq!(c.0.line(), format!("+OK logged in, 3 messages ({total} octets)\r\n"));
    assert_eq!(c.0.line(), format!("+OK 3 {total}\r\n"));
    assert_eq!(c.0.line(), "+OK message 2 deleted\r\n");
    assert_eq!(c.0.line(), format!("+OK 1 {uidvalidity}.{}\r\n", uids[0]));
    assert_eq!(c.read_multi(), format!("+OK {} octets\r\n{}", stored[0].len(), wire(&stored[0])));
    assert_eq!(c.0.line(), "-ERR unknown command\r\n");
    let list = c.read_multi();
    assert!(
        list.starts_with("+OK 2 messages") && list.contains("\r\n3 ") && !list.contains("\r\n2 "),
        "{list}"
    );
    assert_eq!(c.0.line(), "+OK\r\n");
    c.quit();
}

#[test]
fn large_message_is_sent_exactly_in_pipelined_retrs() {
    let server = pop3_server();
    let mut message = String::from("Subject: large\r\n\r\n");
    for i in 0..20_000 {
        let dot = if i % 7 == 0 { "." } else { "" };
        message.push_str(&format!("{dot}line {i} of a large message\r\n"));
    }
    deliver(&server, ALICE, &message);
    let stored = server.inbox(ALICE).remove(0);
    assert!(stored.len() > 500_000 && stored.ends_with(message.as_bytes()));
    let mut c = Pop::open(&server, ALICE);
    // Several responses larger than the output buffer, asked for in one go.
    c.0.send(b"RETR 1\r\nTOP 1 2\r\nRETR 1\r\nLIST 1\r\n");
    let retr = format!("+OK {} octets\r\n{}", stored.len(), wire(&stored));
    assert!(c.read_multi() == retr, "first RETR differs");
    let text = String::from_utf8(stored.clone()).unwrap();
    let header = &text[..text.find("\r\n\r\n").unwrap() + 4];
    assert_eq!(
        c.read_multi(),
        format!(
            "+OK top of message follows\r\n{header}..line 0 of a large message\r\nline 1 of a large message\r\n.\r\n"
        )
    );
    assert!(c.read_multi() == retr, "second RETR differs");
    assert_eq!(c.0.line(), format!("+OK 1 {}\r\n", stored.len()));
    c.quit();
}

#[test]
fn overlong_lines_and_too_many_errors() {
    let server = pop3_server();
    let mut c = Pop::connect(&server, "pop3s");
    assert_eq!(c.cmd(&format!("USER {}", "x".repeat(5000))), "-ERR command line too long\r\n");
    // The rest of the long line was discarded; the session goes on.
    assert_eq!(c.login(ALICE), "+OK logged in, 0 messages (0 octets)\r\n");
    // A long SASL response is fine up to a few KB, then refused.
    let mut c2 = Pop::connect(&server, "pop3s");
    assert_eq!(c2.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(c2.cmd(&"A".repeat(20_000)), "-ERR cannot decode the SASL response\r\n");
    for i in 2..10 {
        assert_eq!(c2.cmd("FOO"), "-ERR unknown command\r\n", "error {i}");
    }
    assert_eq!(c2.cmd("FOO"), "-ERR unknown command; too many errors, closing connection\r\n");
    assert!(c2.0.is_closed());
    c.quit();
}

#[test]
fn snapshot_ignores_new_mail_and_refuses_messages_expunged_elsewhere() {
    let (server, stored) = server_with_three();
    let (_, uids) = inbox_uids(&server, ALICE);
    let total: usize = stored.iter().map(Vec::len).sum();
    let mut c = Pop::connect(&server, "pop3s");
    c.login(ALICE);
    // Mail arriving during the session waits for the next one.
    deliver(&server, ALICE, "Subject: late\r\n\r\nlate\r\n");
    assert_eq!(c.cmd("STAT"), format!("+OK 3 {total}\r\n"));
    assert_eq!(c.cmd("LIST 4"), "-ERR no such message, only 3 messages in maildrop\r\n");
    // Another session (IMAP) expunges message 2 through the store.
    expunge_in_store(&server, ALICE, &[uids[1]]);
    assert_eq!(c.cmd("RETR 2"), "-ERR message 2 was removed by another session\r\n");
    assert_eq!(c.cmd("TOP 2 0"), "-ERR message 2 was removed by another session\r\n");
    assert_eq!(c.multi("RETR 1"), format!("+OK {} octets\r\n{}", stored[0].len(), wire(&stored[0])));
    assert_eq!(c.multi("RETR 3"), format!("+OK {} octets\r\n{}", stored[2].len(), wire(&stored[2])));
    // Numbering stays as at login.
    assert!(c.cmd("STAT").starts_with("+OK 3 "));
    assert_eq!(c.cmd("DELE 2"), "+OK message 2 deleted\r\n");
    assert_eq!(c.cmd("DELE 3"), "+OK message 3 deleted\r\n");
    // Only message 3 was still there to delete.
    assert_eq!(c.quit(), format!("+OK {HOSTNAME} POP3 server signing off (1 messages deleted)\r\n"));
    assert_eq!(subjects(&server.inbox(ALICE)), ["one", "late"]);
    let mut c = Pop::open(&server, ALICE);
    assert!(c.cmd("STAT").starts_with("+OK 2 "));
    c.quit();
}

#[test]
fn unique_ids_are_never_reused_after_quit_deletes() {
    let server = pop3_server();
    deliver(&server, ALICE, M1);
    let (_, uids) = inbox_uids(&server, ALICE);
    let mut c = Pop::open(&server, ALICE);
    c.cmd("DELE 1");
    c.quit();
    assert!(server.inbox(ALICE).is_empty());
    // UIDs are never reused: the next message gets a new unique id.
    deliver(&server, ALICE, M1);
    let (_, after) = inbox_uids(&server, ALICE);
    assert!(after[0] > uids[0]);
}

// ---- real clients ----

fn client_failure(what: &str, out: &std::process::Output, server: &Server) -> String {
    format!(
        "{what} failed: {}\nstdout: {}\nstderr: {}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    )
}

#[test]
fn python_poplib_stls_user_pass_list_retr_dele_quit() {
    let server = pop3_server();
    deliver(&server, ALICE, "Subject: first\r\n\r\nHello from POP3.\r\n.leading dot\r\n");
    deliver(&server, ALICE, "Subject: second\r\n\r\nSecond.\r\n");
    let out = Command::new("python3")
        .arg(format!("{}/tests/clients/pop3_poplib.py", env!("CARGO_MANIFEST_DIR")))
        .args([server.addr("pop3").port().to_string(), server.addr("pop3s").port().to_string()])
        .arg(PASSWORD)
        .output()
        .expect("python3 must be installed to run the client tests");
    assert!(out.status.success(), "{}", client_failure("poplib", &out, &server));
    assert_eq!(subjects(&server.inbox(ALICE)), ["second"]);
}

/// Runs fetchmail once with `rc` and the UID list file `idfile` (a client's memory of what it
/// has seen); returns its exit status (0: mail fetched, 1: none) and its verbose output.
fn fetchmail(dir: &std::path::Path, rc: &str, idfile: &str, server: &Server) -> (i32, String) {
    let rcfile = dir.join("fetchmailrc");
    std::fs::write(&rcfile, rc).unwrap();
    // fetchmail refuses a run control file others can read.
    std::process::Command::new("chmod").arg("600").arg(&rcfile).status().expect("chmod");
    let out = match Command::new("fetchmail")
        .arg("-f")
        .arg(&rcfile)
        .arg("--idfile")
        .arg(dir.join(idfile))
        .args(["--nodetach", "-v"])
        .env("FETCHMAILHOME", dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "fetchmail cannot run ({e}): install it (`apt-get install fetchmail`; .ci/run does) to run the POP3 client tests"
        ),
    };
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{}", client_failure("fetchmail", &out, server));
    (code, format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn fetchmail_keep_downloads_each_message_once_then_delete_mode_empties_the_inbox() {
    let server = pop3_server();
    for m in [M1, M2, M3] {
        deliver(&server, ALICE, m);
    }
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.mbox");
    let fetched = dir.path().join("fetched.mbox");
    let user = format!("user \"{ALICE}\" there with password \"{PASSWORD}\" is \"tester\" here");
    // pop3s with implicit TLS, keep mode with client-side UIDL tracking.
    let keep_rc = format!(
        "poll 127.0.0.1 service {} protocol pop3 uidl\n  {user}\n  options keep ssl no sslcertck mda \"cat >> {}\"\n",
        server.addr("pop3s").port(),
        kept.display()
    );
    assert_eq!(fetchmail(dir.path(), &keep_rc, "keep.ids", &server).0, 0, "first run fetches");
    deliver(&server, ALICE, "Subject: fourth\r\n\r\nfour\r\n");
    assert_eq!(fetchmail(dir.path(), &keep_rc, "keep.ids", &server).0, 0, "second run fetches the new one");
    assert_eq!(fetchmail(dir.path(), &keep_rc, "keep.ids", &server).0, 1, "third run finds nothing new");
    let text = std::fs::read_to_string(&kept).unwrap();
    let got: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Subject: ")).collect();
    assert_eq!(got, ["one", "dots", "lines", "fourth"]);
    assert!(text.contains("\n.starts with a dot\n..two dots\nnormal\n.\nlast\n"), "{text}");
    assert_eq!(server.inbox(ALICE).len(), 4, "keep mode deletes nothing");

    // The cleartext port with STLS required, delete mode.
    let delete_rc = format!(
        "poll 127.0.0.1 service {} protocol pop3\n  {user}\n  options nokeep sslproto 'TLS1.2+' no sslcertck mda \"cat >> {}\"\n",
        server.addr("pop3").port(),
        fetched.display()
    );
    let (code, log) = fetchmail(dir.path(), &delete_rc, "delete.ids", &server);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("POP3> STLS") && log.contains("upgrade to TLS succeeded"), "{log}");
    let text = std::fs::read_to_string(&fetched).unwrap();
    let got: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Subject: ")).collect();
    assert_eq!(got, ["one", "dots", "lines", "fourth"]);
    assert!(server.inbox(ALICE).is_empty(), "delete mode removes the messages");
}

#[test]
fn silent_session_is_closed_after_the_idle_timeout_without_update() {
    let server =
        Server::start_with(&format!("{LISTEN}[limits]\npop3_idle_timeout = \"2s\"\n")).with_accounts();
    deliver(&server, ALICE, M1);
    let mut c = Pop::connect(&server, "pop3s");
    c.login(ALICE);
    assert_eq!(c.cmd("DELE 1"), "+OK message 1 deleted\r\n");
    std::thread::sleep(Duration::from_millis(2600));
    // RFC 1939 section 3: the autologout closes the connection without a response and
    // without entering the UPDATE state, so nothing is deleted.
    assert!(c.0.is_closed());
    assert_eq!(server.inbox(ALICE).len(), 1);

    // The timer counts silence, not the session's age.
    let mut c = Pop::open(&server, ALICE);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(c.cmd("NOOP"), "+OK\r\n");
    }
    assert!(c.cmd("STAT").starts_with("+OK 1 "));
}
