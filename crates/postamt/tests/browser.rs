//! The web pages in a real browser: runs `tests/browser/run.mjs` (playwright-core driving
//! Debian's headless Chromium) against a server on port-0 listeners. It logs in, changes the
//! password, creates an app password and uses it over IMAP, and resets the password through
//! the link mailed to the recovery mailbox; screenshots of the main pages land in
//! `target/tmp/browser-screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in `tests/browser`
//! (`.ci/run` installs all three); fails with instructions when one is missing.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TIMEOUT: Duration = Duration::from_secs(240);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// Panics with what to install when a prerequisite is missing.
fn check_prerequisites() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the browser test needs Node.js: `apt-get install nodejs npm` (.ci/run does this)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        Path::new(&chromium).exists(),
        "the browser test needs Chromium at {chromium}: `apt-get install chromium` (.ci/run does this), \
         or set CHROMIUM to its path"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "the browser test needs playwright-core: run `npm ci` in {} (.ci/run does this)",
        browser_dir().display()
    );
}

#[test]
fn web_pages_in_a_real_browser() {
    check_prerequisites();
    let config = format!("{ALL_LISTENERS}http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\n");
    let server = Server::start_with(&config).with_accounts();
    server.cli_ok(&["account", "add", "admin@example.test", "--password", PASSWORD, "--admin"]);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);

    let imaps = server.addr("imaps").to_string();
    let base = format!("https://{}", server.addr("https"));
    let mut child = Command::new("node")
        .current_dir(browser_dir())
        .arg("run.mjs")
        .arg(&base)
        .args(["--imaps", &imaps, "--user", "alice@example.test", "--password", PASSWORD])
        .args(["--recovery", "bob@example.test", "--recovery-password", PASSWORD])
        .args(["--admin", "admin@example.test", "--admin-password", PASSWORD])
        .arg("--screenshots")
        .arg(&screenshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    // Read both pipes in threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    println!("{stdout}");
    eprintln!("{stderr}");
    let status = status
        .unwrap_or_else(|| panic!("the browser test did not finish within {TIMEOUT:?}:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log_text()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // What the browser did is real: the reset password works, the first one does not.
    let last = |password: &str| {
        let mut c = Client::connect_tls(server.addr("imaps"));
        c.imap_line();
        c.imap("L1", &format!("LOGIN alice@example.test \"{password}\""))
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    assert!(last("reset in the browser").starts_with("L1 OK"));
    assert!(last(PASSWORD).starts_with("L1 NO"));
    for name in [
        "login",
        "settings",
        "settings-phone",
        "password",
        "app-passwords",
        "account",
        "reset",
        "admin-accounts",
    ] {
        assert!(screenshots.join(format!("{name}.png")).is_file(), "screenshot {name} missing");
    }
}
