//! Real client programs against the real server: Python's smtplib.

mod common;

use std::process::Command;

use common::*;

fn python(script: &str, args: &[String]) -> std::process::Output {
    Command::new("python3")
        .arg(format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .expect("python3 must be installed to run the client tests")
}

#[test]
fn python_smtplib_submits_over_starttls_and_implicit_tls_and_delivers_over_25() {
    let server = Server::start().with_accounts();
    server.cli_ok(&["alias", "add", "alice.alias@example.test", "alice@example.test"]);
    let args = vec![
        server.addr("submission").port().to_string(),
        server.addr("submissions").port().to_string(),
        server.addr("smtp").port().to_string(),
        PASSWORD.to_string(),
    ];
    let out = python("smtplib_client.py", &args);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let alice = server.inbox("alice@example.test");
    let subjects: Vec<String> = alice
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        subjects,
        ["Subject: via 587", "Subject: via 465", "Subject: via 25", "Subject: via 25 to alias"]
    );
}

#[test]
fn python_imaplib_typical_session() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for subject in ["one", "two", "three"] {
        deliver(
            &server,
            "bob@example.test",
            &format!("From: alice@example.test\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n"),
        );
    }
    let args =
        vec![server.addr("imaps").port().to_string(), "bob@example.test".to_string(), PASSWORD.to_string()];
    let out = python("imaplib_client.py", &args);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The server's state, not just the client's exit code.
    let inbox = server.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: one"));
    let trash = server.mailbox("bob@example.test", "Trash");
    assert_eq!(trash.len(), 1);
    assert!(String::from_utf8_lossy(&trash[0]).contains("Subject: two"));
    let sent = server.mailbox("bob@example.test", "Sent");
    assert_eq!(sent.len(), 1);
    assert!(String::from_utf8_lossy(&sent[0]).contains("Subject: sent copy"));
}

fn maildir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            out.extend(rd.flatten().map(|e| e.path()));
        }
    }
    out.sort();
    out
}

fn run_mbsync(rc: &std::path::Path) {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(rc)
        .arg("-a")
        .output()
        .expect("mbsync (Debian package isync) must be installed to run this test");
    assert!(
        out.status.success(),
        "mbsync failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mbsync_syncs_two_folders_both_ways() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for subject in ["keep", "delete me", "flag me", "gone on the server"] {
        deliver(
            &server,
            "bob@example.test",
            &format!("From: alice@example.test\r\nSubject: {subject}\r\n\r\n{subject}\r\n"),
        );
    }
    let mut imap = imap_login(&server, "bob@example.test");
    imap.imap_ok("a", "SELECT INBOX");
    imap.imap_ok("b", "COPY 1 Archive");

    let local = tempfile::tempdir().unwrap();
    let mail = local.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let rc = local.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount postamt\nHost 127.0.0.1\nPort {port}\nUser bob@example.test\nPass \"{PASSWORD}\"\nSSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore remote\nAccount postamt\n\n\
             MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX Archive\nCreate Both\nExpunge Both\nSyncState *\n",
            port = server.addr("imaps").port(),
            cert = server.data_dir().join("tls/cert.pem").display(),
            mail = mail.display(),
        ),
    )
    .unwrap();
    run_mbsync(&rc);
    let inbox = mail.join("INBOX");
    let archive = mail.join("Archive");
    assert_eq!(maildir_files(&inbox).len(), 4);
    assert_eq!(maildir_files(&archive).len(), 1);

    // Local changes: read one, delete one, file a new one into Archive.
    let files = maildir_files(&inbox);
    let find = |needle: &str| {
        files.iter().find(|f| std::fs::read_to_string(f).unwrap().contains(needle)).unwrap().clone()
    };
    let keep = find("Subject: keep");
    let delete = find("Subject: delete me");
    let name = keep.file_name().unwrap().to_string_lossy().to_string();
    let base = name.split(":2,").next().unwrap().to_string();
    std::fs::rename(&keep, inbox.join("cur").join(format!("{base}:2,S"))).unwrap();
    std::fs::remove_file(delete).unwrap();
    std::fs::write(
        archive.join("new").join("1700000000.local.host"),
        "From: bob@example.test\r\nSubject: filed locally\r\n\r\nnew\r\n",
    )
    .unwrap();
    // Server-side changes: a flag, a deletion and a new message.
    imap.imap_ok("c", "STORE 3 +FLAGS (\\Flagged)");
    imap.imap_ok("c2", "STORE 4 +FLAGS (\\Deleted)");
    imap.imap_ok("c3", "EXPUNGE");
    deliver(
        &server,
        "bob@example.test",
        "From: carol@remote.example\r\nSubject: arrived later\r\n\r\nlate\r\n",
    );
    run_mbsync(&rc);

    // Server state after the second sync.
    let out = imap.imap_ok("d", "UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(out.contains("FLAGS (\\Seen") && out.contains("Subject: keep"), "{out}");
    assert!(!out.contains("delete me"), "{out}");
    assert!(out.contains("arrived later"), "{out}");
    let archive_server = server.mailbox("bob@example.test", "Archive");
    assert_eq!(archive_server.len(), 2);
    assert!(archive_server.iter().any(|m| String::from_utf8_lossy(m).contains("Subject: filed locally")));
    // Local state: the new message arrived, the flag came down.
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(!files.iter().any(|f| std::fs::read_to_string(f).unwrap().contains("gone on the server")));
    let flagged =
        files.iter().find(|f| std::fs::read_to_string(f).unwrap().contains("Subject: flag me")).unwrap();
    assert!(flagged.to_string_lossy().contains(":2,F"), "{flagged:?}");
    assert!(files.iter().any(|f| std::fs::read_to_string(f).unwrap().contains("arrived later")));
}
