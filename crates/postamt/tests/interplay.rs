//! IMAP and POP3 on the same mailbox at once.

mod common;

use common::*;

fn pop3_login(server: &Server, user: &str) -> Client {
    let mut p = Client::connect_tls(server.addr("pop3s"));
    assert!(p.line().starts_with("+OK "));
    assert!(p.cmd_line(&format!("USER {user}")).starts_with("+OK"));
    assert!(p.cmd_line(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    p
}

trait Pop3 {
    fn cmd_line(&mut self, line: &str) -> String;
}

impl Pop3 for Client {
    fn cmd_line(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.line()
    }
}

#[test]
fn imap_sees_pop3_deletions_as_expunges_right_after_quit() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for i in 1..=3 {
        deliver(&server, "bob@example.test", &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"));
    }
    let mut imap = imap_login(&server, "bob@example.test");
    imap.imap_ok("a", "SELECT INBOX");
    let mut pop = pop3_login(&server, "bob@example.test");
    assert!(pop.cmd_line("DELE 1").starts_with("+OK"));
    assert!(pop.cmd_line("DELE 3").starts_with("+OK"));
    // Marked only: nothing changes until QUIT.
    assert_eq!(imap.imap("b", "NOOP"), "b OK NOOP completed\r\n");
    imap.send(b"c IDLE\r\n");
    assert_eq!(imap.imap_line(), "+ idling\r\n");
    assert!(pop.cmd_line("QUIT").starts_with("+OK"));
    // Reported at once to the IDLE session, numbers adjusted as each EXPUNGE applies.
    assert_eq!(imap.imap_line(), "* 1 EXPUNGE\r\n");
    assert_eq!(imap.imap_line(), "* 2 EXPUNGE\r\n");
    imap.send(b"DONE\r\n");
    assert_eq!(imap.imap_line(), "c OK IDLE terminated\r\n");
    assert!(imap.imap_ok("d", "FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]").contains("Subject: m2"));
    assert_eq!(server.inbox("bob@example.test").len(), 1);
}

#[test]
fn message_expunged_over_imap_during_a_pop3_session_answers_retr_with_err() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for i in 1..=3 {
        deliver(&server, "bob@example.test", &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"));
    }
    let mut pop = pop3_login(&server, "bob@example.test");
    let mut imap = imap_login(&server, "bob@example.test");
    imap.imap_ok("a", "SELECT INBOX");
    imap.imap_ok("b", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    imap.imap_ok("c", "EXPUNGE");
    // Mail arriving during the POP3 session waits for the next one.
    deliver(&server, "bob@example.test", "Subject: m4\r\n\r\nlate\r\n");
    assert_eq!(pop.cmd_line("RETR 2"), "-ERR message 2 was removed by another session\r\n");
    assert!(pop.cmd_line("RETR 1").starts_with("+OK"));
    let mut body = String::new();
    loop {
        let line = pop.line();
        if line == ".\r\n" {
            break;
        }
        body.push_str(&line);
    }
    assert!(body.contains("Subject: m1"));
    assert!(pop.cmd_line("STAT").starts_with("+OK 3 "), "the listing is the one from login");
    assert!(pop.cmd_line("QUIT").starts_with("+OK"));
    let mut pop = pop3_login(&server, "bob@example.test");
    assert!(pop.cmd_line("STAT").starts_with("+OK 3 "));
}
