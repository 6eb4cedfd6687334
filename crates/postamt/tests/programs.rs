//! Real mail programs against the real server, checked by the server's resulting state:
//! swaks and msmtp submitting over 587 and 465, getmail6 over POP3, offlineimap3 syncing
//! over IMAP, and the imapclient library from PyPI.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("{program} must be installed to run this test (.ci/run installs it): {e}")
    });
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn subjects(messages: &[Vec<u8>]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find(|l| l.starts_with("Subject: "))
                .map(|l| l[9..].to_string())
        })
        .collect()
}

#[test]
fn swaks_submits_over_587_and_465_and_delivers_over_25() {
    let server = Server::start().with_accounts();
    let sub = server.addr("submission").to_string();
    let subs = server.addr("submissions").to_string();
    let mx = server.addr("smtp").to_string();
    let common = [
        "--from",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.test",
        "--auth-password",
        PASSWORD,
    ];
    let mut args = vec!["--server", &sub, "--tls", "--header", "Subject: swaks 587"];
    args.extend(common);
    assert_ok("swaks 587", &run("swaks", &args, None));
    let mut args = vec!["--server", &subs, "--tlsc", "--auth", "LOGIN", "--header", "Subject: swaks 465"];
    args.extend([
        "--from",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--auth-user",
        "alice@example.test",
        "--auth-password",
        PASSWORD,
    ]);
    assert_ok("swaks 465", &run("swaks", &args, None));
    assert_ok(
        "swaks 25",
        &run(
            "swaks",
            &[
                "--server",
                &mx,
                "--from",
                "x@remote.example",
                "--to",
                "bob@example.test",
                "--header",
                "Subject: swaks 25",
            ],
            None,
        ),
    );
    // Refusals are refusals for swaks too.
    let out = run(
        "swaks",
        &["--server", &mx, "--from", "x@remote.example", "--to", "victim@elsewhere.example"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("554 5.7.1 Relay access denied"));
    assert_eq!(subjects(&server.inbox("bob@example.test")), ["swaks 587", "swaks 465", "swaks 25"]);
}

#[test]
fn msmtp_submits_over_587_and_465() {
    let server = Server::start().with_accounts();
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("msmtprc");
    let account = |name: &str, port: u16, starttls: &str| {
        format!(
            "account {name}\nhost 127.0.0.1\nport {port}\nfrom alice@example.test\nauth on\nuser alice@example.test\npassword {PASSWORD}\ntls on\ntls_starttls {starttls}\ntls_certcheck off\n\n"
        )
    };
    let text = format!(
        "{}{}",
        account("starttls", server.addr("submission").port(), "on"),
        account("implicit", server.addr("submissions").port(), "off")
    );
    std::fs::write(&rc, text).unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rc = rc.to_string_lossy().to_string();
    for (name, subject) in [("starttls", "msmtp 587"), ("implicit", "msmtp 465")] {
        let msg = format!(
            "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\r\nvia msmtp\r\n"
        );
        assert_ok(name, &run("msmtp", &["-C", &rc, "-a", name, "bob@example.test"], Some(msg.as_bytes())));
    }
    assert_eq!(subjects(&server.inbox("bob@example.test")), ["msmtp 587", "msmtp 465"]);
}

fn maildir_count(dir: &Path) -> usize {
    ["cur", "new"].iter().map(|s| std::fs::read_dir(dir.join(s)).map(|r| r.count()).unwrap_or(0)).sum()
}

#[test]
fn getmail6_keeps_then_deletes_over_pop3s() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for i in 1..=3 {
        deliver(&server, "bob@example.test", &format!("Subject: g{i}\r\n\r\nbody {i}\r\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let write_rc = |delete: bool| {
        std::fs::write(
            dir.path().join("getmailrc"),
            format!(
                "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = {}\nusername = bob@example.test\npassword = {PASSWORD}\n\n\
                 [destination]\ntype = MDA_external\npath = /bin/sh\narguments = (\"-c\", \"cat > {}/new/$(date +%s%N)\")\n\
                 allow_root_commands = true\n\n[options]\nread_all = false\ndelete = {delete}\nverbose = 0\n",
                server.addr("pop3s").port(),
                maildir.display()
            ),
        )
        .unwrap();
    };
    let getmail =
        || run("getmail", &["--getmaildir", &dir.path().to_string_lossy(), "--rcfile", "getmailrc"], None);
    write_rc(false);
    for _ in 0..2 {
        assert_ok("getmail keep", &getmail());
    }
    // Kept on the server, and downloaded once only (UIDL). (An external delivery command
    // rather than getmail's Maildir writer, which refuses to run as root, as CI does.)
    assert_eq!(maildir_count(&maildir), 3);
    assert_eq!(server.inbox("bob@example.test").len(), 3);
    deliver(&server, "bob@example.test", "Subject: g4\r\n\r\nlate\r\n");
    write_rc(true);
    let dir_str = dir.path().to_string_lossy().to_string();
    let out = run("getmail", &["--getmaildir", &dir_str, "--rcfile", "getmailrc", "--all"], None);
    assert_ok("getmail delete", &out);
    assert!(maildir_count(&maildir) >= 4);
    assert!(server.inbox("bob@example.test").is_empty());
}

#[test]
fn offlineimap3_syncs_both_ways() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    for subject in ["keep", "remove me"] {
        deliver(
            &server,
            "bob@example.test",
            &format!("From: alice@example.test\r\nSubject: {subject}\r\n\r\n{subject}\r\n"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("mail");
    let cert = std::fs::read_to_string(server.data_dir().join("tls/cert.pem")).unwrap();
    let fingerprint = pem_sha512(&cert);
    let rc = dir.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = Test\nmetadata = {meta}\n\n[Account Test]\nlocalrepository = Local\nremoterepository = Remote\n\n\
             [Repository Local]\ntype = Maildir\nlocalfolders = {local}\n\n\
             [Repository Remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\nremoteuser = bob@example.test\nremotepass = {PASSWORD}\n\
             ssl = yes\ncert_fingerprint = {fingerprint}\nfolderfilter = lambda f: f in ['INBOX', 'Archive']\n",
            meta = dir.path().join("meta").display(),
            local = local.display(),
            port = server.addr("imaps").port(),
        ),
    )
    .unwrap();
    let rc_str = rc.to_string_lossy().to_string();
    let sync = || assert_ok("offlineimap", &run("offlineimap", &["-c", &rc_str, "-u", "basic", "-o"], None));
    sync();
    let inbox = local.join("INBOX");
    assert_eq!(maildir_count(&inbox), 2);
    // Local: delete one, add one to Archive. Server: flag the other.
    let files: Vec<_> = ["cur", "new"]
        .iter()
        .flat_map(|s| std::fs::read_dir(inbox.join(s)).unwrap().flatten().map(|e| e.path()))
        .collect();
    let remove = files.iter().find(|f| std::fs::read_to_string(f).unwrap().contains("remove me")).unwrap();
    std::fs::remove_file(remove).unwrap();
    std::fs::write(
        local.join("Archive/new/1700000000.1.host"),
        "From: bob@example.test\r\nSubject: local archive\r\n\r\nx\r\n",
    )
    .unwrap();
    let mut imap = imap_login(&server, "bob@example.test");
    imap.imap_ok("a", "SELECT INBOX");
    imap.imap_ok("b", "UID STORE 1 +FLAGS (\\Flagged)");
    sync();
    assert_eq!(subjects(&server.inbox("bob@example.test")), ["keep"]);
    assert_eq!(subjects(&server.mailbox("bob@example.test", "Archive")), ["local archive"]);
    let files: Vec<_> = ["cur", "new"]
        .iter()
        .flat_map(|s| std::fs::read_dir(inbox.join(s)).unwrap().flatten().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().contains(":2,F"), "{files:?}");
}

/// SHA-512 fingerprint of a PEM certificate, as offlineimap's cert_fingerprint wants it.
fn pem_sha512(pem: &str) -> String {
    let out = run(
        "python3",
        &[
            "-c",
            "import ssl,sys,hashlib; print(hashlib.sha512(ssl.PEM_cert_to_DER_cert(sys.stdin.read())).hexdigest())",
        ],
        Some(pem.as_bytes()),
    );
    assert_ok("fingerprint", &out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn imapclient_from_pypi() {
    let server = Server::start_with(ALL_LISTENERS).with_accounts();
    deliver(
        &server,
        "bob@example.test",
        "From: alice@example.test\r\nSubject: hello imapclient\r\n\r\nbody\r\n",
    );
    let script = format!("{}/tests/clients/imapclient_client.py", env!("CARGO_MANIFEST_DIR"));
    let port = server.addr("imaps").port().to_string();
    assert_ok("imapclient", &run("python3", &[&script, &port, "bob@example.test", PASSWORD], None));
    assert_eq!(subjects(&server.mailbox("bob@example.test", "Archive")), ["hello imapclient"]);
    assert!(server.inbox("bob@example.test").is_empty());
}
