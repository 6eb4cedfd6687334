//! The command line: configuration errors, administration commands and their error messages.

mod common;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let cases = [
        ("hostname = \"mx.example\"\ncolour = \"blue\"\n", "colour"),
        ("[listen]\nsmtp = [\"127.0.0.1:0\"]\nsmpt = [\"127.0.0.1:0\"]\n", "smpt"),
        ("[listen]\nsubmission = [\"0.0.0.0\"]\n", "listen.submission"),
        ("max_message_size = \"50X\"\n", "max_message_size"),
        ("[tls]\ncert = \"/nonexistent.pem\"\n", "key"),
    ];
    for (toml, key) in cases {
        std::fs::write(&path, toml).unwrap();
        let out = cli_with_config(&path, &["serve"], None);
        assert!(!out.status.success(), "{toml} was accepted");
        let err = stderr(&out);
        assert!(err.contains(key), "error for {toml:?} does not name {key:?}: {err}");
        assert!(err.starts_with("postamt: "), "{err}");
    }
    let out = cli_with_config(&dir.path().join("missing.toml"), &["domain", "list"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn administration_commands_and_their_errors() {
    let server = Server::start();
    assert_eq!(server.cli_ok(&["domain", "add", "Example.TEST"]), "added domain example.test\n");
    assert_eq!(server.cli_ok(&["domain", "list"]), "example.test\n");
    let dup = server.cli(&["domain", "add", "example.test"]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(stderr(&dup), "postamt: domain \"example.test\" already exists\n");

    let out = server.cli(&["account", "add", "joe@unknown.test", "--password", "pw"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out), "postamt: domain \"unknown.test\" is not a local domain\n");
    let out = server.cli(&["account", "add", "joe@example.test"]);
    assert!(stderr(&out).contains("--password-stdin or --password"), "{}", stderr(&out));
    let out = server.cli(&["account", "add", "joe@example.test", "--password", "pw", "--quota", "lots"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid size \"lots\""), "{}", stderr(&out));

    let out = server.cli_stdin(
        &["account", "add", "joe@example.test", "--password-stdin", "--quota", "500M"],
        "s3cret pass\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["account", "add", "JOE@example.test", "--password", "x"]);
    assert_eq!(stderr(&out), "postamt: address \"joe@example.test\" already exists\n");
    server.cli_ok(&["account", "add", "ann@example.test", "--password", "pw", "--admin", "--pop3", "off"]);
    let list = server.cli_ok(&["account", "list"]);
    assert!(list.contains("joe@example.test\tused=0 messages=0 quota=500M\timap,pop3\n"), "{list}");
    assert!(list.contains("ann@example.test\tused=0 messages=0 quota=none\timap,-pop3,admin\n"), "{list}");

    server.cli_ok(&["alias", "add", "info@example.test", "joe@example.test"]);
    server.cli_ok(&["alias", "add", "@example.test", "ann@example.test"]);
    let out = server.cli(&["alias", "add", "joe@example.test", "ann@example.test"]);
    assert!(!out.status.success());
    let out = server.cli(&["alias", "add", "x@example.test", "ghost@example.test"]);
    assert!(stderr(&out).contains("ghost@example.test"), "{}", stderr(&out));
    assert_eq!(
        server.cli_ok(&["alias", "list"]),
        "@example.test\tann@example.test\ninfo@example.test\tjoe@example.test\n"
    );

    assert_eq!(
        server.cli_ok(&["quota", "set", "joe@example.test", "2G"]),
        "quota of joe@example.test set to 2G\n"
    );
    let out = server.cli(&["quota", "set", "joe@example.test", "-5"]);
    assert!(!out.status.success());
    let out = server.cli(&["quota", "set", "ghost@example.test", "1G"]);
    assert!(!out.status.success());

    // Domains with accounts cannot be removed; the password changes at once, even for
    // credentials the server has just seen pass (its login cache).
    assert!(!server.cli(&["domain", "remove", "example.test"]).status.success());
    for _ in 0..2 {
        let mut c = Client::connect_tls(server.addr("submissions"));
        c.reply();
        c.ok("EHLO x", "250");
        c.ok(&format!("AUTH PLAIN {}", plain("joe@example.test", "s3cret pass")), "235");
    }
    server.cli_ok(&["account", "passwd", "joe@example.test", "--password", "new password"]);
    let mut c = Client::connect_tls(server.addr("submissions"));
    c.reply();
    c.ok("EHLO x", "250");
    c.ok(&format!("AUTH PLAIN {}", plain("joe@example.test", "s3cret pass")), "535");
    c.ok(&format!("AUTH PLAIN {}", plain("joe@example.test", "new password")), "235");

    server.cli_ok(&["account", "set", "joe@example.test", "--enabled", "off"]);
    let mut c = Client::connect_tls(server.addr("submissions"));
    c.reply();
    c.ok("EHLO x", "250");
    c.ok(&format!("AUTH PLAIN {}", plain("joe@example.test", "new password")), "535");

    server.cli_ok(&["alias", "remove", "@example.test"]);
    server.cli_ok(&["alias", "remove", "info@example.test"]);
    server.cli_ok(&["account", "remove", "joe@example.test"]);
    server.cli_ok(&["account", "remove", "ann@example.test"]);
    assert_eq!(server.cli_ok(&["account", "list"]), "");
    server.cli_ok(&["domain", "remove", "example.test"]);
    assert_eq!(server.cli_ok(&["queue", "list"]), "queue is empty\n");
}

#[test]
fn new_accounts_get_the_special_use_folders() {
    let server = Server::start().with_accounts();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let names: Vec<(String, Option<&str>)> = runtime.block_on(async {
        use postamt_store::Store;
        let store = postamt_store::sqlite::SqliteStore::open(&server.data_dir()).unwrap();
        let account = store.account_by_address("alice@example.test").await.unwrap().unwrap();
        store
            .list_mailboxes(account.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.special_use.map(|s| s.attribute())))
            .collect()
    });
    for expected in [
        ("INBOX", None),
        ("Sent", Some("\\Sent")),
        ("Drafts", Some("\\Drafts")),
        ("Trash", Some("\\Trash")),
        ("Junk", Some("\\Junk")),
        ("Archive", Some("\\Archive")),
    ] {
        assert!(names.contains(&(expected.0.to_string(), expected.1)), "{names:?}");
    }
}
