//! The MIME corpus through the wire: every message APPENDed over IMAP comes back from FETCH
//! with exactly the ENVELOPE, BODY and BODYSTRUCTURE that postamt-mime computes (which its
//! own tests check against Dovecot's answers), both when computed and when read from the
//! store's cache.

mod common;

use common::*;

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, &c) in raw.iter().enumerate() {
        if c == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

#[test]
fn corpus_envelope_and_bodystructure_over_imap() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../postamt-mime/tests/corpus/mime");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("corpus").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    assert!(files.len() >= 100, "corpus missing: {}", dir.display());
    let server = Server::start_with(&format!("{ALL_LISTENERS}\n")).with_accounts();
    server.cli_ok(&["quota", "set", "bob@example.test", "none"]);
    let mut c = imap_login(&server, "bob@example.test");
    let mut expected = Vec::new();
    for path in &files {
        let raw = crlf(&std::fs::read(path).unwrap());
        c.send(format!("A APPEND INBOX {{{}+}}\r\n", raw.len()).as_bytes());
        c.send(&raw);
        c.send(b"\r\n");
        let out = String::from_utf8_lossy(&c.imap_raw_until("A")).into_owned();
        assert!(out.starts_with("A OK [APPENDUID "), "{}: {out}", path.display());
        let msg = postamt_mime::Message::parse(&raw);
        let (mut env, mut body, mut bs) = (Vec::new(), Vec::new(), Vec::new());
        msg.write_envelope(&mut env);
        msg.write_body(&mut body);
        msg.write_body_structure(&mut bs);
        expected.push((path.clone(), raw.len(), env, body, bs));
    }
    c.imap_ok("S", "SELECT INBOX");
    for round in ["computed", "cached"] {
        for (i, (path, size, env, body, bs)) in expected.iter().enumerate() {
            let seq = i + 1;
            c.send(format!("F FETCH {seq} (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)\r\n").as_bytes());
            let out = c.imap_raw_until("F");
            let mut want = format!("* {seq} FETCH (RFC822.SIZE {size} ENVELOPE ").into_bytes();
            want.extend_from_slice(env);
            want.extend_from_slice(b" BODY ");
            want.extend_from_slice(body);
            want.extend_from_slice(b" BODYSTRUCTURE ");
            want.extend_from_slice(bs);
            want.extend_from_slice(b")\r\nF OK FETCH completed\r\n");
            assert!(
                out == want,
                "{round} {}:\n got: {}\nwant: {}",
                path.display(),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
