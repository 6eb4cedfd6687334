//! A tiny run of every load generator workload (`postamt-bench`, see `bench/run.sh`) against a
//! test server, so that the benchmark keeps working: each must finish and report sane figures.
//! Nothing here is timed against a target.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use postamt_bench::mail::SizeSpec;
use postamt_bench::{Accounts, Figures, Target, imap, memory, pop3, smtp, startup, table};

fn int(f: &Figures, key: &str) -> u64 {
    f.get(key).and_then(|v| v.as_u64()).unwrap_or_else(|| panic!("no {key} in {}", f.to_json()))
}

fn num(f: &Figures, key: &str) -> f64 {
    f.get(key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("no {key} in {}", f.to_json()))
}

fn plain(addr: SocketAddr) -> Target {
    Target { addr, tls: false }
}

#[test]
fn every_workload_runs_and_reports_sane_figures() {
    // Incoming mail is checked (SPF, DKIM, DMARC): a local name server answers at once.
    let dns = dns::DnsServer::start(dns::Records::new());
    let config = format!(
        "[auth]\nallow_plaintext = true\nfailure_delay = \"20ms\"\nmax_failure_delay = \"100ms\"\n{}{ALL_LISTENERS}",
        dns.config()
    );
    let server = Server::start_with(&config);
    server.cli_ok(&["domain", "add", "bench.test"]);
    for n in 1..=2 {
        server.cli_ok(&["account", "add", &format!("bench{n}@bench.test"), "--password", "benchmark"]);
    }
    let accounts = Accounts {
        prefix: "bench".into(),
        domain: "bench.test".into(),
        count: 2,
        password: "benchmark".into(),
    };
    let (smtp_addr, imap_addr, pop3_addr) = (server.addr("smtp"), server.addr("imap"), server.addr("pop3"));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut lines = Vec::new();
    runtime.block_on(async {
        let populated =
            smtp::populate(plain(smtp_addr), plain(imap_addr), &accounts, 5, 2, SizeSpec::Mixed, 1)
                .await
                .expect("populate");
        assert_eq!(int(&populated, "messages"), 10);
        assert!(num(&populated, "msgs_per_s") > 0.0);

        let ingest = smtp::ingest(&smtp::IngestOptions {
            target: plain(smtp_addr),
            accounts: accounts.clone(),
            messages: 20,
            concurrency: 3,
            size: SizeSpec::Fixed(10 * 1024),
            seed: 2,
            wait_imap: Some(plain(imap_addr)),
            wait_timeout: Duration::from_secs(60),
        })
        .await
        .expect("smtp ingest");
        assert_eq!(int(&ingest, "messages"), 20);
        let mean = int(&ingest, "mean_message_bytes");
        assert!((10 * 1024..12 * 1024).contains(&mean), "{mean}");
        // postamt acknowledges only what is in the mailbox: delivered as soon as accepted.
        assert!(num(&ingest, "msgs_per_s") > 0.0 && num(&ingest, "message_p99_ms") > 0.0);
        lines.push(ingest);

        let read = imap::read(&imap::ReadOptions {
            target: plain(imap_addr),
            accounts: accounts.clone(),
            concurrency: 2,
        })
        .await
        .expect("imap read");
        // Each account got 5 + 10 messages.
        assert_eq!(int(&read, "messages"), 30);
        assert!(int(&read, "bytes") > 30 * 1024);
        lines.push(read);

        let pop = pop3::read(&pop3::ReadOptions {
            target: plain(pop3_addr),
            accounts: accounts.clone(),
            concurrency: 2,
        })
        .await
        .expect("pop3");
        assert_eq!(int(&pop, "messages"), 30);
        lines.push(pop);

        let mixed = imap::mixed(&imap::MixedOptions {
            target: plain(imap_addr),
            accounts: accounts.clone(),
            concurrency: 2,
            ops: 25,
            idle: 1,
            seed: 3,
        })
        .await
        .expect("imap mixed");
        assert_eq!(int(&mixed, "ops"), 50);
        assert!(int(&mixed, "not_ok") < 50, "{}", mixed.to_json());
        assert!(int(&mixed, "idle_notifications") > 0, "{}", mixed.to_json());
        lines.push(mixed);

        let memory = memory::idle(&memory::IdleOptions {
            target: plain(imap_addr),
            accounts: accounts.clone(),
            connections: 20,
            pid: server.pid(),
            parallel: 4,
            settle: Duration::from_millis(100),
            sources: Vec::new(),
            warmup: 5,
        })
        .await
        .expect("memory");
        assert_eq!(int(&memory, "held"), 20);
        assert_eq!(int(&memory, "processes_after"), 1);
        assert!(int(&memory, "rss_after_kb") > 1000);
        lines.push(memory);
    });

    // Start-up of a second server on a port of its own.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postamt.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[listen]\nimap = [\"127.0.0.1:{port}\"]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let started = runtime
        .block_on(startup::measure(&startup::StartupOptions {
            connect: format!("127.0.0.1:{port}").parse().unwrap(),
            command: vec![
                env!("CARGO_BIN_EXE_postamt").into(),
                "serve".into(),
                "--config".into(),
                config.display().to_string(),
            ],
            timeout: Duration::from_secs(60),
            pidfile: None,
            output: startup::ChildOutput::Discard,
        }))
        .expect("startup");
    let pid = int(&started, "pid").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(num(&started, "startup_ms") > 0.0);
    lines.push(started);

    let results: String = lines
        .iter_mut()
        .map(|f| {
            f.text("label", "postamt");
            f.text("case", f.get("workload").and_then(|w| w.as_str()).unwrap_or_default().to_string());
            f.to_json() + "\n"
        })
        .collect();
    let rendered = table::render(&results, "postamt");
    for figure in ["msgs_per_s", "ops_per_s", "rss_per_conn_kb", "startup_ms"] {
        assert!(rendered.contains(&format!("| {figure} |")), "{rendered}");
    }
}
