//! The SMTP client against scripted servers: the dialogs postamt's own server never produces
//! (no PIPELINING, no ESMTP, missing extensions, multi-line refusals, "too many recipients",
//! a connection that drops), checked command by command.

use std::net::SocketAddr;

use postamt_outbound::client::{
    self, Diagnostic, Message, Rcpt, SessionConfig, SessionOutcome, Verdict, dot_stuff,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server that greets, then answers each command line with `answer(line)` (`None` closes
/// the connection), and takes the data after a 354 until the final dot. Returns everything
/// it received, data included.
async fn server<F>(answer: F) -> (SocketAddr, JoinHandle<Vec<String>>)
where
    F: Fn(&str) -> Option<String> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let mut seen = Vec::new();
        write.write_all(b"220 scripted.example ESMTP\r\n").await.expect("greeting");
        let mut in_data = false;
        let mut data = String::new();
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    seen.push(format!("DATA:{data}"));
                    data.clear();
                    let reply = answer(".").unwrap_or_else(|| "250 2.0.0 queued\r\n".into());
                    write.write_all(reply.as_bytes()).await.expect("reply");
                } else {
                    data.push_str(&line);
                }
                continue;
            }
            let command = line.trim_end().to_string();
            seen.push(command.clone());
            let Some(reply) = answer(&command) else { break };
            if reply.starts_with("354") {
                in_data = true;
            }
            write.write_all(reply.as_bytes()).await.expect("reply");
            if command == "QUIT" {
                break;
            }
        }
        seen
    });
    (addr, task)
}

/// Answers like a minimal RFC 5321 server with the given EHLO keywords.
fn plain_server(ehlo_keywords: &'static [&'static str]) -> impl Fn(&str) -> Option<String> + Send + 'static {
    move |line: &str| {
        let upper = line.to_ascii_uppercase();
        Some(if upper.starts_with("EHLO") {
            ehlo(ehlo_keywords)
        } else if upper.starts_with("MAIL") || upper.starts_with("RCPT") || upper.starts_with("RSET") {
            "250 2.1.0 Ok\r\n".into()
        } else if upper == "DATA" {
            "354 go ahead\r\n".into()
        } else if upper == "QUIT" {
            "221 bye\r\n".into()
        } else if upper == "." {
            "250 2.0.0 queued\r\n".into()
        } else {
            "502 5.5.1 unrecognized\r\n".into()
        })
    }
}

fn ehlo(keywords: &[&str]) -> String {
    let mut lines = vec!["scripted.example"];
    lines.extend_from_slice(keywords);
    let n = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
        .collect()
}

fn config() -> SessionConfig {
    SessionConfig {
        helo_name: "client.example".into(),
        tls: client::tls_config(),
        auth: None,
        implicit_tls: false,
        starttls: true,
    }
}

fn rcpts(addresses: &[&str]) -> Vec<Rcpt> {
    addresses
        .iter()
        .map(|a| Rcpt {
            address: a.to_string(),
            notify: Some("SUCCESS,FAILURE".into()),
            orcpt: Some(format!("rfc822;{a}")),
        })
        .collect()
}

fn message<'a>(rcpts: &'a [Rcpt], body: &'a [u8]) -> Message<'a> {
    Message {
        sender: "alice@a.example",
        rcpts,
        envid: Some("e1"),
        ret: Some("HDRS"),
        smtputf8: false,
        needs_smtputf8: false,
        eight_bit: false,
        body,
    }
}

const BODY: &[u8] = b"Subject: test\r\n\r\n.leading dot\r\nend\r\n";

fn done(outcome: SessionOutcome) -> Vec<client::RecipientResult> {
    match outcome {
        SessionOutcome::Done(results) => results,
        other => panic!("expected per-recipient results, got {other:?}"),
    }
}

#[tokio::test]
async fn lockstep_dialog_without_extensions() {
    let (addr, seen) = server(plain_server(&[])).await;
    let list = rcpts(&["b@b.example", "c@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    assert!(results.iter().all(|r| r.verdict == Verdict::Delivered), "{results:?}");
    assert!(!results[0].remote_dsn);
    let seen = seen.await.expect("server");
    // No parameters the server did not announce (RFC 3461 5.2.2 (a)); the data dot-stuffed.
    assert_eq!(
        seen,
        [
            "EHLO client.example",
            "MAIL FROM:<alice@a.example>",
            "RCPT TO:<b@b.example>",
            "RCPT TO:<c@b.example>",
            "DATA",
            "DATA:Subject: test\r\n\r\n..leading dot\r\nend\r\n",
            "QUIT",
        ]
    );
}

#[tokio::test]
async fn pipelined_dialog_passes_dsn_parameters_on() {
    let (addr, seen) = server(plain_server(&["PIPELINING", "SIZE 100000", "DSN", "8BITMIME"])).await;
    let list = rcpts(&["b@b.example"]);
    let mut msg = message(&list, BODY);
    msg.eight_bit = true;
    let results = done(client::deliver(&config(), "mx.b.example", addr, &msg).await);
    assert_eq!(results[0].verdict, Verdict::Delivered);
    assert!(results[0].remote_dsn);
    let seen = seen.await.expect("server");
    assert_eq!(
        seen[1],
        format!("MAIL FROM:<alice@a.example> SIZE={} BODY=8BITMIME RET=HDRS ENVID=e1", BODY.len())
    );
    assert_eq!(seen[2], "RCPT TO:<b@b.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@b.example");
    assert_eq!(seen[3], "DATA");
}

#[tokio::test]
async fn ehlo_refused_falls_back_to_helo() {
    let (addr, seen) = server(|line: &str| {
        Some(match line.split(' ').next().unwrap_or_default() {
            "EHLO" => "500 5.5.1 what?\r\n".to_string(),
            "HELO" => "250 scripted.example\r\n".to_string(),
            "DATA" => "354 go\r\n".to_string(),
            "QUIT" => "221 bye\r\n".to_string(),
            _ => "250 ok\r\n".to_string(),
        })
    })
    .await;
    let list = rcpts(&["b@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    assert_eq!(results[0].verdict, Verdict::Delivered);
    let seen = seen.await.expect("server");
    assert_eq!(&seen[..3], ["EHLO client.example", "HELO client.example", "MAIL FROM:<alice@a.example>"]);
}

#[tokio::test]
async fn missing_extensions_refuse_before_mail() {
    // SIZE too small: 5.3.4 without sending anything.
    let (addr, seen) = server(plain_server(&["SIZE 10"])).await;
    let list = rcpts(&["b@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    assert_eq!((results[0].verdict, results[0].status.to_string()), (Verdict::Failed, "5.3.4".to_string()));
    assert!(!seen.await.expect("server").iter().any(|l| l.starts_with("MAIL")));

    // A message that needs SMTPUTF8, to a server without it: 5.6.7.
    let (addr, seen) = server(plain_server(&["8BITMIME"])).await;
    let list = rcpts(&["jürgen@b.example"]);
    let mut msg = message(&list, BODY);
    msg.smtputf8 = true;
    msg.needs_smtputf8 = true;
    let results = done(client::deliver(&config(), "mx.b.example", addr, &msg).await);
    assert_eq!((results[0].verdict, results[0].status.to_string()), (Verdict::Failed, "5.6.7".to_string()));
    let Diagnostic::Local(text) = &results[0].diagnostic else { panic!("{results:?}") };
    assert!(text.contains("SMTPUTF8"), "{text}");
    assert!(!seen.await.expect("server").iter().any(|l| l.starts_with("MAIL")));

    // 8-bit data to a server without 8BITMIME: 5.6.3.
    let (addr, _) = server(plain_server(&[])).await;
    let list = rcpts(&["b@b.example"]);
    let mut msg = message(&list, "Subject: x\r\n\r\nGrüße\r\n".as_bytes());
    msg.eight_bit = true;
    let results = done(client::deliver(&config(), "mx.b.example", addr, &msg).await);
    assert_eq!(results[0].status.to_string(), "5.6.3");
}

#[tokio::test]
async fn per_recipient_replies_and_multi_line_refusals() {
    let (addr, _) = server(|line: &str| {
        Some(if line.starts_with("EHLO") {
            ehlo(&["PIPELINING", "ENHANCEDSTATUSCODES"])
        } else if line.starts_with("RCPT TO:<gone@") {
            "550-5.1.1 The account does not exist.\r\n550 5.1.1 Please check the address.\r\n".into()
        } else if line.starts_with("RCPT TO:<full@") {
            "452 4.2.2 Mailbox full\r\n".into()
        } else if line == "DATA" {
            "354 go\r\n".into()
        } else if line == "QUIT" {
            "221 bye\r\n".into()
        } else {
            "250 2.0.0 ok\r\n".into()
        })
    })
    .await;
    let list = rcpts(&["gone@b.example", "full@b.example", "ok@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    let verdicts: Vec<_> = results.iter().map(|r| (r.verdict, r.status.to_string())).collect();
    assert_eq!(
        verdicts,
        [
            (Verdict::Failed, "5.1.1".to_string()),
            (Verdict::Deferred, "4.2.2".to_string()),
            (Verdict::Delivered, "2.0.0".to_string()),
        ]
    );
    let Diagnostic::Smtp { reply, after } = &results[0].diagnostic else { panic!("{results:?}") };
    assert_eq!(*after, "RCPT TO");
    assert_eq!(reply.lines, ["5.1.1 The account does not exist.", "5.1.1 Please check the address."]);
    assert_eq!(
        results[0].summary(),
        format!(
            "mx.b.example[127.0.0.1] said: 550 5.1.1 The account does not exist. 5.1.1 Please check the \
             address. (in reply to RCPT TO)"
        )
    );
}

#[tokio::test]
async fn too_many_recipients_go_into_another_transaction() {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let (addr, seen) = server(move |line: &str| {
        Some(if line.starts_with("EHLO") {
            ehlo(&["ENHANCEDSTATUSCODES"])
        } else if line.starts_with("RCPT") {
            // One recipient per transaction.
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                "250 2.1.5 ok\r\n".into()
            } else {
                "452 4.5.3 Too many recipients\r\n".into()
            }
        } else if line.starts_with("MAIL") || line == "RSET" {
            count.store(0, std::sync::atomic::Ordering::SeqCst);
            "250 2.1.0 ok\r\n".into()
        } else if line == "DATA" {
            "354 go\r\n".into()
        } else if line == "QUIT" {
            "221 bye\r\n".into()
        } else {
            "250 2.0.0 ok\r\n".into()
        })
    })
    .await;
    let list = rcpts(&["one@b.example", "two@b.example", "three@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    assert!(results.iter().all(|r| r.verdict == Verdict::Delivered), "{results:?}");
    let seen = seen.await.expect("server");
    assert_eq!(seen.iter().filter(|l| l.starts_with("DATA:")).count(), 3, "{seen:?}");
    assert_eq!(seen.iter().filter(|l| *l == "RSET").count(), 2, "{seen:?}");
}

#[tokio::test]
async fn dropped_connection_defers_and_refusing_greeting_means_next_host() {
    // The server hangs up after RCPT: deferred, with what happened.
    let (addr, _) = server(|line: &str| {
        if line.starts_with("EHLO") {
            Some(ehlo(&[]))
        } else if line.starts_with("MAIL") {
            Some("250 ok\r\n".into())
        } else {
            None
        }
    })
    .await;
    let list = rcpts(&["b@b.example"]);
    let results = done(client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await);
    assert_eq!(results[0].verdict, Verdict::Deferred);
    assert_eq!(results[0].status.to_string(), "4.4.2");
    assert!(results[0].summary().contains("closed by the server"), "{}", results[0].summary());

    // 554 greeting: this host does not take mail; the next may.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let _ = s.write_all(b"554 5.3.2 no service here\r\n").await;
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut [0u8; 64]).await;
    });
    match client::deliver(&config(), "mx.b.example", addr, &message(&list, BODY)).await {
        SessionOutcome::NextHost(r) => {
            assert_eq!(r.verdict, Verdict::Failed);
            assert!(r.summary().contains("554 5.3.2 no service here"), "{}", r.summary());
        }
        other => panic!("{other:?}"),
    }

    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    match client::deliver(&config(), "mx.b.example", closed, &message(&list, BODY)).await {
        SessionOutcome::NextHost(r) => {
            assert_eq!((r.verdict, r.status.to_string()), (Verdict::Deferred, "4.4.1".to_string()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_is_dot_stuffed() {
    assert_eq!(dot_stuff(b".\r\n..\r\nx"), b"..\r\n...\r\nx\r\n.\r\n");
}
