//! Mail authentication through the wire: DKIM signatures on submitted mail that verify
//! against what `postamt domain dns` tells the admin to publish, SPF/DKIM/DMARC results on
//! incoming mail between two servers, DMARC policy enforcement, and removal of forged
//! Authentication-Results.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use postamt_delivery::mailauth::{AuthResults, Outcome, StaticRecord, Verifier};

const MSG: &str =
    "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: signed\r\n\r\nHello Bob.\r\n";

/// The records of a `postamt domain dns` zone fragment, as a resolver would serve them.
fn zone_records(zone: &str) -> Vec<StaticRecord> {
    let mut out = Vec::new();
    for line in zone.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (name, _ttl, class, kind) = (parts.next(), parts.next(), parts.next(), parts.next());
        assert_eq!(class, Some("IN"), "{line}");
        let name = name.expect("name").to_string();
        let rdata: Vec<&str> = parts.collect();
        match kind {
            Some("TXT") => {
                // Character-strings "..." "..." joined, as resolvers do (no escapes in ours).
                let joined = rdata.join(" ");
                let text: String = joined.split('"').skip(1).step_by(2).collect();
                out.push(StaticRecord::Txt { name, text });
            }
            Some("MX") => out.push(StaticRecord::Mx {
                name,
                preference: rdata[0].parse().expect("preference"),
                exchange: rdata[1].to_string(),
            }),
            _ => {}
        }
    }
    out
}

fn verify(
    records: Vec<StaticRecord>,
    message: &[u8],
    peer: IpAddr,
    helo: &str,
    mail_from: &str,
) -> AuthResults {
    let verifier = Verifier::with_static_records("checker.example", records).expect("verifier");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(verifier.verify(message, peer, helo, mail_from))
}

/// The header section of a stored message, unfolded into (name, value) pairs.
fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let header =
        text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n\t", " ").replace("\r\n ", " ");
    header
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn dkim_tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.split_whitespace().collect::<String>()))
        .collect()
}

/// Drops a domain's DKIM keys, as a domain created by an earlier version had none.
fn forget_dkim_keys(server: &Server, domain: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use postamt_store::Store;
        let store = postamt_store::sqlite::SqliteStore::open(&server.data_dir()).expect("open store");
        store.set_dkim_keys(domain, vec![]).await.expect("clear keys");
        assert!(store.dkim_keys(domain).await.expect("keys").is_empty());
    });
}

#[test]
fn submitted_mail_carries_two_dkim_signatures_that_verify_against_domain_dns() {
    let server = Server::start().with_accounts();
    let zone = server.cli_ok(&["domain", "dns", "example.test"]);
    let unknown = server.cli(&["domain", "dns", "nowhere.example"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nowhere.example is not a local domain"));

    let mut c = submission_session(&server, "alice@example.test");
    let reply = send_mail(&mut c, "alice@example.test", &["bob@example.test"], MSG);
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = server.inbox("bob@example.test").pop().expect("delivered");

    let fields = header_fields(&stored);
    let signatures: Vec<Vec<(String, String)>> =
        fields.iter().filter(|(n, _)| n == "DKIM-Signature").map(|(_, v)| dkim_tags(v)).collect();
    assert_eq!(signatures.len(), 2, "{}", String::from_utf8_lossy(&stored));
    let tag = |sig: &Vec<(String, String)>, t: &str| sig.iter().find(|(k, _)| k == t).map(|(_, v)| v.clone());
    let mut seen: Vec<(String, String, String)> = signatures
        .iter()
        .map(|s| (tag(s, "a").expect("a"), tag(s, "d").expect("d"), tag(s, "s").expect("s")))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ed25519-sha256".to_string(), "example.test".to_string(), "postamt-ed".to_string()),
            ("rsa-sha256".to_string(), "example.test".to_string(), "postamt-rsa".to_string()),
        ]
    );
    for sig in &signatures {
        assert_eq!(tag(sig, "c").as_deref(), Some("relaxed/relaxed"));
        // The Date and Message-ID that submission added are covered, From over-signed.
        let h = tag(sig, "h").expect("h").to_ascii_lowercase();
        let h: Vec<&str> = h.split(':').collect();
        for name in ["from", "to", "subject", "date", "message-id"] {
            assert!(h.contains(&name), "{name} not in {h:?}");
        }
        assert_eq!(h.iter().filter(|n| **n == "from").count(), 2, "{h:?}");
    }

    // Verified against exactly the published records; the server's address is the A record
    // of its host name, which the MX record names.
    let mut records = zone_records(&zone);
    records.push(StaticRecord::A { name: HOSTNAME.into(), address: Ipv4Addr::LOCALHOST });
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let results = verify(records.clone(), &stored, localhost, HOSTNAME, "alice@example.test");
    let dkim: Vec<(Outcome, Option<&str>)> =
        results.dkim.iter().map(|d| (d.result, d.selector.as_deref())).collect();
    assert_eq!(
        dkim,
        [(Outcome::Pass, Some("postamt-ed")), (Outcome::Pass, Some("postamt-rsa"))],
        "{results:?}"
    );
    assert_eq!(results.spf[0].result, Outcome::Pass);
    assert_eq!(results.dmarc.result, Outcome::Pass);

    // The signatures are over the final header: another Date breaks them.
    let text = String::from_utf8(stored.clone()).expect("utf8");
    let date = fields.iter().find(|(n, _)| n == "Date").expect("Date added").1.clone();
    let tampered = text.replace(&date, "Thu, 1 Jan 2026 00:00:00 +0000");
    let results = verify(records, tampered.as_bytes(), localhost, HOSTNAME, "alice@example.test");
    assert!(results.dkim.iter().all(|d| d.result == Outcome::Fail), "{results:?}");

    // A domain without keys (created before this version) gets them at its first message,
    // and `domain dns` shows those.
    server.cli_ok(&["domain", "add", "second.test"]);
    server.cli_ok(&["alias", "add", "alice@second.test", "alice@example.test"]);
    forget_dkim_keys(&server, "second.test");
    let reply = send_mail(
        &mut c,
        "alice@second.test",
        &["bob@example.test"],
        "From: alice@second.test\r\nTo: bob@example.test\r\nSubject: 2\r\n\r\nx\r\n",
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = server.inbox("bob@example.test").pop().expect("delivered");
    let fields = header_fields(&stored);
    assert!(fields.iter().filter(|(n, _)| n == "DKIM-Signature").all(|(_, v)| v.contains("d=second.test")));
    let mut records = zone_records(&server.cli_ok(&["domain", "dns", "second.test"]));
    records.push(StaticRecord::A { name: HOSTNAME.into(), address: Ipv4Addr::LOCALHOST });
    let results = verify(records, &stored, localhost, HOSTNAME, "alice@second.test");
    assert!(results.dkim.len() == 2 && results.dkim.iter().all(|d| d.result == Outcome::Pass), "{results:?}");
}

#[test]
fn domains_without_keys_get_them_at_server_start() {
    let mut server = Server::start().with_accounts();
    forget_dkim_keys(&server, "example.test");
    server.kill9_and_restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.log_text().contains("generated DKIM keys") {
        assert!(std::time::Instant::now() < deadline, "no keys generated; log:\n{}", server.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let zone = server.cli_ok(&["domain", "dns", "example.test"]);
    assert!(zone.contains("postamt-ed._domainkey.example.test."), "{zone}");
    assert!(zone.contains("postamt-rsa._domainkey.example.test."), "{zone}");
}

#[test]
fn forged_authentication_results_are_removed_others_kept() {
    let server = Server::start().with_accounts();
    let incoming = format!(
        "Authentication-Results: {HOSTNAME}; dkim=pass header.d=bank.example\r\n\
         Authentication-Results: other.example; spf=pass smtp.mailfrom=x@other.example\r\n\
         Authentication-Results: {}.;\r\n  dmarc=pass header.from=bank.example\r\n\
         From: ceo@bank.example\r\nTo: alice@example.test\r\nSubject: urgent\r\n\r\nPay now.\r\n",
        HOSTNAME.to_uppercase()
    );
    deliver(&server, "alice@example.test", &incoming);
    let stored =
        String::from_utf8(server.inbox("alice@example.test").pop().expect("delivered")).expect("utf8");
    let results: Vec<&str> =
        stored.split("\r\n").filter(|l| l.starts_with("Authentication-Results:")).collect();
    assert_eq!(
        results,
        [
            format!("Authentication-Results: {HOSTNAME};").as_str(),
            "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@other.example",
        ],
        "{stored}"
    );
    // Ours is the one we wrote: the real (unauthenticated) state of the message.
    assert!(stored.contains("\tspf=none smtp.mailfrom=sender@remote.example;\r\n"), "{stored}");
    assert!(stored.contains("\tdkim=none;\r\n"), "{stored}");
    assert!(!stored.contains("header.d=bank.example"), "{stored}");
    assert!(stored.ends_with(
        "From: ceo@bank.example\r\nTo: alice@example.test\r\nSubject: urgent\r\n\r\nPay now.\r\n"
    ));
    // Its place: after our Received header, before the message.
    let received = stored.find("Received: from client.example").expect("received");
    let ours = stored.find(&format!("Authentication-Results: {HOSTNAME};")).expect("ours");
    assert!(received < ours);

    // Our users cannot plant one either (local recipients would trust it).
    let mut c = submission_session(&server, "alice@example.test");
    let submitted =
        format!("Authentication-Results: {HOSTNAME}; dmarc=pass header.from=bank.example\r\n{MSG}");
    let reply = send_mail(&mut c, "alice@example.test", &["bob@example.test"], &submitted);
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = String::from_utf8(server.inbox("bob@example.test").pop().expect("delivered")).expect("utf8");
    assert!(!stored.contains("Authentication-Results"), "{stored}");
    assert!(stored.contains("DKIM-Signature:"));
}

/// Publishes what `postamt domain dns` prints in the test DNS server.
fn publish(dns: &dns::DnsServer, zone: &str) {
    for record in zone_records(zone) {
        match record {
            StaticRecord::Txt { name, text } => dns.add_txt(&name, &text),
            StaticRecord::Mx { name, preference, exchange } => dns.add_mx(&name, preference, &exchange),
            StaticRecord::A { name, address } => dns.add_a(&name, address),
        }
    }
}

/// Waits until `address` on `server` has `count` messages in its INBOX.
fn wait_for_inbox(server: &Server, address: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let inbox = server.inbox(address);
        if inbox.len() >= count {
            return inbox;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery to {address}; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Our Authentication-Results field of a stored message, unfolded.
fn our_results(message: &[u8]) -> String {
    header_fields(message)
        .into_iter()
        .find(|(n, v)| n == "Authentication-Results" && v.starts_with(&format!("{HOSTNAME};")))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no results in {}", String::from_utf8_lossy(message)))
}

const FORGED: &str = "From: Alice <alice@example.test>\r\nTo: bob@b.test\r\nSubject: please pay\r\n\
Date: Thu, 26 Nov 2026 13:14:28 +0000\r\nMessage-ID: <forged@example.test>\r\n\r\nPay now.\r\n";

fn send_forged(server: &Server) -> String {
    let mut c = mx_session(server);
    send_mail(&mut c, "alice@example.test", &["bob@b.test"], FORGED)
}

/// Server A (example.test) sends to server B (b.test) through MX lookups in a test DNS
/// server that publishes what `postamt domain dns` printed on A: B finds SPF, both DKIM
/// signatures and DMARC passing. Then a forgery of A's domain from an address SPF does not
/// allow, under `p=reject`: B marks it, and a B with `[auth] dmarc_reject` refuses it.
#[test]
fn two_servers_authenticate_each_other_and_forgeries_fail_dmarc() {
    use dns::{DnsServer, LOCALHOST, Records};
    let dns = DnsServer::start(Records::new().mx("b.test", 10, "mx.b.test").a("mx.b.test", LOCALHOST));
    let b = Server::start_with(&dns.config());
    b.cli_ok(&["domain", "add", "b.test"]);
    b.cli_ok(&["account", "add", "bob@b.test", "--password", PASSWORD]);
    let a = Server::start_with(&format!("{}[relay]\nport = {}\n", dns.config(), b.addr("smtp").port()))
        .with_accounts();
    // A's records; its host name's address is the A record the `mx` of its SPF record names.
    publish(&dns, &a.cli_ok(&["domain", "dns", "example.test"]));
    dns.add_a(HOSTNAME, LOCALHOST);

    let mut c = submission_session(&a, "alice@example.test");
    let reply = send_mail(
        &mut c,
        "alice@example.test",
        &["bob@b.test"],
        &MSG.replace("bob@example.test", "bob@b.test"),
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let inbox = wait_for_inbox(&b, "bob@b.test", 1);
    let results = our_results(&inbox[0]);
    assert!(results.contains("spf=pass smtp.mailfrom=alice@example.test;"), "{results}");
    for selector in ["postamt-ed", "postamt-rsa"] {
        assert!(
            results.contains(&format!("dkim=pass header.d=example.test header.s={selector} ")),
            "{selector}: {results}"
        );
    }
    assert!(results.contains("dmarc=pass (p=quarantine) header.from=example.test;"), "{results}");
    assert!(results.ends_with("arc=none"), "{results}");

    // A's domain now asks receivers to reject failures, and its address is elsewhere: mail
    // from here (127.0.0.1) claiming example.test fails SPF.
    dns.remove("_dmarc.example.test");
    dns.add_txt("_dmarc.example.test", "v=DMARC1; p=reject");
    dns.remove(HOSTNAME);
    dns.add_a(HOSTNAME, std::net::Ipv4Addr::new(192, 0, 2, 1));

    // B (dmarc_reject off) delivers the forgery, marked.
    let reply = send_forged(&b);
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let inbox = wait_for_inbox(&b, "bob@b.test", 2);
    let results = our_results(&inbox[1]);
    assert!(results.contains("spf=fail smtp.mailfrom=alice@example.test;"), "{results}");
    assert!(results.contains("dkim=none;"), "{results}");
    assert!(results.contains("dmarc=fail (p=reject) header.from=example.test;"), "{results}");

    // Signed mail from A still passes DMARC through DKIM although SPF now fails.
    let reply = send_mail(
        &mut c,
        "alice@example.test",
        &["bob@b.test"],
        &MSG.replace("bob@example.test", "bob@b.test"),
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let inbox = wait_for_inbox(&b, "bob@b.test", 3);
    let results = our_results(&inbox[2]);
    assert!(results.contains("spf=fail smtp.mailfrom=alice@example.test;"), "{results}");
    assert!(results.contains("dkim=pass header.d=example.test"), "{results}");
    assert!(results.contains("dmarc=pass (p=reject) header.from=example.test;"), "{results}");

    // A B that enforces DMARC refuses the forgery at the end of data.
    let strict = Server::start_with(&format!("{}[auth]\ndmarc_reject = true\n", dns.config()));
    strict.cli_ok(&["domain", "add", "b.test"]);
    strict.cli_ok(&["account", "add", "bob@b.test", "--password", PASSWORD]);
    assert_eq!(
        send_forged(&strict),
        "550 5.7.1 Message rejected: it fails the DMARC policy of its From domain\r\n"
    );
    assert!(strict.inbox("bob@b.test").is_empty());
    // What DMARC lets through still arrives there.
    let mut legit = mx_session(&strict);
    let reply = send_mail(
        &mut legit,
        "someone@elsewhere.test",
        &["bob@b.test"],
        "From: someone@elsewhere.test\r\n\r\nhi\r\n",
    );
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
}
