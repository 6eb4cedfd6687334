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
