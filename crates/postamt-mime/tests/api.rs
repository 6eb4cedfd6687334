//! Section extraction, BINARY, search text and robustness of `postamt_mime::Message`.

use std::borrow::Cow;

use postamt_mime::{Message, SectionText, UnknownEncoding};

/// A message with nested multiparts, an encapsulated message and assorted encodings.
const NESTED: &str = "From: \"Jane\" <jane@example.com>\r\n\
To: =?utf-8?Q?J=C3=BCrgen?= <j@example.net>, team: a@x.test, b@x.test;\r\n\
Subject: =?iso-8859-1?Q?Gr=FC=DFe?= and\r\n more\r\n\
Date: Tue, 7 Apr 2026 10:00:01 +0200\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe aus K=F6ln=\r\n\
!\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PGI+SGk8L2I+\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: bob@example.org\r\n\
Subject: inner\r\n\
X-Folded: a\r\n\x20b\r\n\
\r\n\
Inner body\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--outer--\r\n\
epilogue\r\n";

fn s(section: Option<Cow<'_, [u8]>>) -> Option<String> {
    section.map(|c| String::from_utf8_lossy(&c).into_owned())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn whole_message_sections() {
    let msg = Message::parse(NESTED.as_bytes());
    let header_end = NESTED.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(msg.header_len(), header_end);
    assert_eq!(s(msg.section(&[], SectionText::Full)).unwrap(), NESTED);
    assert_eq!(s(msg.section(&[], SectionText::Header)).unwrap(), &NESTED[..header_end]);
    assert_eq!(s(msg.section(&[], SectionText::Text)).unwrap(), &NESTED[header_end..]);
    assert_eq!(msg.section(&[], SectionText::Mime), None);
    assert_eq!(
        s(msg.section(&[], SectionText::HeaderFields(&names(&["subject", "FROM", "X-None"])))).unwrap(),
        "From: \"Jane\" <jane@example.com>\r\nSubject: =?iso-8859-1?Q?Gr=FC=DFe?= and\r\n more\r\n\r\n"
    );
    assert_eq!(
        s(msg.section(
            &[],
            SectionText::HeaderFieldsNot(&names(&["To", "Subject", "Date", "MIME-Version", "Content-Type"]))
        ))
        .unwrap(),
        "From: \"Jane\" <jane@example.com>\r\n\r\n"
    );
    assert_eq!(s(msg.section(&[], SectionText::HeaderFields(&[]))).unwrap(), "\r\n");
}

#[test]
fn nested_multipart_sections() {
    let msg = Message::parse(NESTED.as_bytes());
    let alternative = s(msg.section(&[1], SectionText::Full)).unwrap();
    assert!(alternative.starts_with("--inner\r\nContent-Type: text/plain"));
    assert!(alternative.ends_with("PGI+SGk8L2I+\r\n--inner--"), "{alternative:?}");
    assert_eq!(s(msg.section(&[1, 1], SectionText::Full)).unwrap(), "Gr=FC=DFe aus K=F6ln=\r\n!");
    assert_eq!(
        s(msg.section(&[1, 1], SectionText::Mime)).unwrap(),
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(s(msg.section(&[1, 2], SectionText::Full)).unwrap(), "PGI+SGk8L2I+");
    assert_eq!(
        s(msg.section(&[1], SectionText::Mime)).unwrap(),
        "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    );
    // HEADER and TEXT need a message/rfc822 part.
    assert_eq!(msg.section(&[1], SectionText::Header), None);
    assert_eq!(msg.section(&[1, 1], SectionText::Text), None);
}

#[test]
fn encapsulated_message_sections() {
    let msg = Message::parse(NESTED.as_bytes());
    let inner_header = "From: bob@example.org\r\nSubject: inner\r\nX-Folded: a\r\n b\r\n\r\n";
    assert_eq!(s(msg.section(&[2], SectionText::Full)).unwrap(), format!("{inner_header}Inner body"));
    assert_eq!(s(msg.section(&[2], SectionText::Header)).unwrap(), inner_header);
    assert_eq!(s(msg.section(&[2], SectionText::Text)).unwrap(), "Inner body");
    assert_eq!(s(msg.section(&[2], SectionText::Mime)).unwrap(), "Content-Type: message/rfc822\r\n\r\n");
    assert_eq!(
        s(msg.section(&[2], SectionText::HeaderFields(&names(&["x-folded", "subject"])))).unwrap(),
        "Subject: inner\r\nX-Folded: a\r\n b\r\n\r\n"
    );
    assert_eq!(
        s(msg.section(&[2], SectionText::HeaderFieldsNot(&names(&["x-folded", "subject"])))).unwrap(),
        "From: bob@example.org\r\n\r\n"
    );
    // The encapsulated message is not multipart: its part 1 is its body.
    assert_eq!(s(msg.section(&[2, 1], SectionText::Full)).unwrap(), "Inner body");
    assert_eq!(s(msg.section(&[2, 1], SectionText::Mime)).unwrap(), inner_header);
    assert_eq!(msg.section(&[2, 1], SectionText::Header), None);
    assert_eq!(msg.section(&[2, 2], SectionText::Full), None);
}

#[test]
fn missing_parts() {
    let msg = Message::parse(NESTED.as_bytes());
    for path in [&[0][..], &[4], &[1, 3], &[1, 1, 1], &[3, 1], &[2, 1, 1], &[u32::MAX]] {
        assert_eq!(msg.section(path, SectionText::Full), None, "{path:?}");
        assert_eq!(msg.section(path, SectionText::Mime), None, "{path:?}");
        assert_eq!(msg.binary(path), None, "{path:?}");
    }
}

#[test]
fn single_part_message() {
    let raw = b"Subject: hi\r\n\r\nline 1\r\nline 2\r\n";
    let msg = Message::parse(raw);
    assert_eq!(s(msg.section(&[1], SectionText::Full)).unwrap(), "line 1\r\nline 2\r\n");
    assert_eq!(s(msg.section(&[1], SectionText::Mime)).unwrap(), "Subject: hi\r\n\r\n");
    assert_eq!(msg.section(&[2], SectionText::Full), None);
    assert_eq!(msg.section(&[1, 1], SectionText::Full), None);
    assert_eq!(msg.body(), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 16 2)");
}

#[test]
fn top_level_encapsulated_message() {
    let raw = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n";
    let msg = Message::parse(raw);
    assert_eq!(s(msg.section(&[1], SectionText::Full)).unwrap(), "Subject: inner\r\n\r\nbody\r\n");
    assert_eq!(s(msg.section(&[1], SectionText::Header)).unwrap(), "Subject: inner\r\n\r\n");
    assert_eq!(s(msg.section(&[1, 1], SectionText::Full)).unwrap(), "body\r\n");
}

#[test]
fn binary_decodes_transfer_encodings() {
    let msg = Message::parse(NESTED.as_bytes());
    assert_eq!(msg.binary(&[1, 1]).unwrap().unwrap().as_ref(), b"Gr\xfc\xdfe aus K\xf6ln!");
    assert_eq!(msg.binary(&[1, 2]).unwrap().unwrap().as_ref(), b"<b>Hi</b>");
    assert_eq!(msg.binary(&[3]), Some(Err(UnknownEncoding)));
    // Identity encodings and multiparts are returned as they are, without copying.
    assert!(matches!(msg.binary(&[2]), Some(Ok(Cow::Borrowed(_)))));
    assert!(matches!(msg.binary(&[1]), Some(Ok(Cow::Borrowed(b))) if b.starts_with(b"--inner")));
    assert_eq!(msg.binary(&[]).unwrap().unwrap().as_ref(), NESTED.as_bytes());
}

#[test]
fn search_text() {
    let msg = Message::parse(NESTED.as_bytes());
    assert_eq!(msg.body_text(), "Grüße aus Köln!\n<b>Hi</b>\nInner body");
    assert_eq!(msg.header_text("SUBJECT"), ["Grüße and more"]);
    assert_eq!(msg.header_text("x-missing"), Vec::<String>::new());
    assert_eq!(msg.address_text("to"), "Jürgen <j@example.net>, team: a@x.test, b@x.test;");
    assert_eq!(msg.address_text("From"), "Jane <jane@example.com>");
    assert_eq!(msg.address_text("Cc"), "");
    // Tue, 7 Apr 2026 10:00:01 +0200 = 08:00:01 UTC.
    assert_eq!(msg.sent_date(), Some(1_775_548_801));
}

#[test]
fn body_text_charsets_and_encodings() {
    let raw = b"Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: base64\r\n\r\nRnLkdWxlaW4gTfxsbGVy\r\n";
    assert_eq!(Message::parse(raw).body_text(), "Fräulein Müller");
    let raw = b"Content-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n=80 5=\r\n0\r\n";
    assert_eq!(Message::parse(raw).body_text(), "€ 50\r\n");
    // Not MIME: Content-Transfer-Encoding means nothing without MIME-Version.
    let raw = b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
    assert_eq!(Message::parse(raw).body_text(), "aGk=\r\n");
    // Non-text parts are not searched.
    let raw = b"Content-Type: image/png\r\n\r\n\x89PNG";
    assert_eq!(Message::parse(raw).body_text(), "");
}

#[test]
fn header_text_decodes_encoded_words() {
    let raw = "Subject: =?UTF-8?B?w4Rw?= =?UTF-8?B?ZmVs?=\r\nSubject: second\r\nX-Raw: Fr\u{f6}sche\r\n\r\n";
    let msg = Message::parse(raw.as_bytes());
    assert_eq!(msg.header_text("subject"), ["Äpfel", "second"]);
    assert_eq!(msg.header_text("x-raw"), ["Frösche"]);
    // Raw ISO-8859-1 bytes in a header are read as such.
    assert_eq!(Message::parse(b"X-Raw: Fr\xf6sche\r\n\r\n").header_text("x-raw"), ["Frösche"]);
}

#[test]
fn envelope_rendering() {
    let msg = Message::parse(NESTED.as_bytes());
    assert_eq!(
        msg.envelope(),
        "(\"Tue, 7 Apr 2026 10:00:01 +0200\" {35}\r\n=?iso-8859-1?Q?Gr=FC=DFe?= and more \
         ((\"Jane\" NIL \"jane\" \"example.com\")) ((\"Jane\" NIL \"jane\" \"example.com\")) \
         ((\"Jane\" NIL \"jane\" \"example.com\")) ((\"=?utf-8?Q?J=C3=BCrgen?=\" NIL \"j\" \"example.net\")\
         (NIL NIL \"team\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL \"b\" \"x.test\")(NIL NIL NIL NIL)) \
         NIL NIL NIL NIL)"
    );
    let msg = Message::parse(b"");
    assert_eq!(msg.envelope(), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

#[test]
fn body_structure_rendering() {
    let msg = Message::parse(NESTED.as_bytes());
    let expected_body = "(((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 24 1)\
(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 12 0) \"alternative\")\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 68 (NIL \"inner\" ((NIL NIL \"bob\" \"example.org\")) \
((NIL NIL \"bob\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0) 5)\
(\"application\" \"octet-stream\" NIL NIL NIL \"x-uuencode\" 11) \"mixed\")";
    assert_eq!(msg.body(), expected_body);
    let structure = msg.body_structure();
    assert!(structure.ends_with("\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"), "{structure}");
    assert!(structure.contains("\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"));
}

#[test]
fn string_api_is_utf8_and_write_api_is_raw() {
    let raw = b"Subject: Fr\xf6sche\r\nFrom: J\xfcrgen <j@example.com>\r\n\r\n";
    let msg = Message::parse(raw);
    let mut bytes = Vec::new();
    msg.write_envelope(&mut bytes);
    assert!(bytes.windows(10).any(|w| w == b"{7}\r\nFr\xf6sc"));
    let text = msg.envelope();
    assert!(text.contains("{8}\r\nFrösche"), "{text}");
    assert!(text.contains("(({7}\r\nJürgen NIL \"j\" \"example.com\"))"), "{text}");
}

/// Every API function on `raw`, for the robustness tests.
fn exercise(raw: &[u8]) {
    let msg = Message::parse(raw);
    let _ = (msg.envelope(), msg.body(), msg.body_structure(), msg.body_text(), msg.sent_date());
    let _ = (msg.header_text("subject"), msg.address_text("from"), msg.address_text("to"), msg.header_len());
    let fields = names(&["subject", "content-type"]);
    let mut paths: Vec<Vec<u32>> = vec![vec![]];
    for a in 0..4 {
        paths.push(vec![a]);
        for b in 0..3 {
            paths.push(vec![a, b]);
            paths.push(vec![a, b, 1]);
        }
    }
    for path in &paths {
        for text in [
            SectionText::Full,
            SectionText::Header,
            SectionText::Text,
            SectionText::Mime,
            SectionText::HeaderFields(&fields),
            SectionText::HeaderFieldsNot(&fields),
        ] {
            let _ = msg.section(path, text);
        }
        let _ = msg.binary(path);
    }
    assert!(msg.header_len() <= raw.len());
}

fn corpus_message(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mime").join(name);
    std::fs::read(path).unwrap()
}

#[test]
fn every_prefix_of_corpus_messages() {
    for name in ["malformed-005.eml", "malformed-013.eml", "malformed-022.eml", "rfc-004.eml", "rfc-009.eml"]
    {
        let raw = corpus_message(name);
        for end in 0..=raw.len() {
            exercise(&raw[..end]);
        }
    }
    // Larger messages: every 7th prefix.
    for name in ["rfc-002.eml", "legacy-026.eml", "thirdparty-015.eml"] {
        let raw = corpus_message(name);
        for end in (0..=raw.len()).step_by(7) {
            exercise(&raw[..end]);
        }
    }
    let raw = NESTED.as_bytes();
    for end in 0..=raw.len() {
        exercise(&raw[..end]);
    }
}

#[test]
fn all_corpus_messages_with_any_line_ends() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mime");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let lf: Vec<u8> = raw.iter().copied().filter(|&c| c != b'\r').collect();
        let mut crlf = Vec::new();
        for &c in &lf {
            if c == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(c);
        }
        for variant in [&raw, &lf, &crlf] {
            exercise(variant);
            // The String API is the byte API with non-UTF-8 values read as ISO-8859-1.
            let msg = Message::parse(variant);
            let mut bytes = Vec::new();
            msg.write_body_structure(&mut bytes);
            if let Ok(text) = String::from_utf8(bytes) {
                assert_eq!(text, msg.body_structure());
            }
        }
        count += 1;
    }
    assert_eq!(count, 107);
}

#[test]
fn sent_date_zone() {
    let msg = Message::parse(b"Date: Mon, 1 Jan 2024 23:30:00 -0500\r\n\r\n");
    // 2 Jan 04:30 UTC, but 1 Jan where it was sent.
    assert_eq!(msg.sent_date_with_zone(), Some((1_704_169_800, -300)));
    assert_eq!(msg.sent_date(), Some(1_704_169_800));
    assert_eq!(Message::parse(b"Subject: x\r\n\r\n").sent_date(), None);
}

#[test]
fn mutated_messages() {
    // Deterministic xorshift: no dependency, reproducible failures.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let tokens: [&[u8]; 14] = [
        b"\r\n",
        b"\n",
        b"\r",
        b"--",
        b"--outer",
        b"--inner--",
        b"\0",
        b"\xff",
        b"=?",
        b"(",
        b"\"",
        b"\\",
        b": ",
        b"\r\n\r\n",
    ];
    let seeds =
        [NESTED.as_bytes().to_vec(), corpus_message("rfc-004.eml"), corpus_message("malformed-019.eml")];
    for seed in &seeds {
        for _ in 0..300 {
            let mut raw = seed.clone();
            for _ in 0..(next() % 8 + 1) {
                let pos = (next() as usize) % (raw.len() + 1);
                match next() % 3 {
                    0 => {
                        let token = tokens[(next() as usize) % tokens.len()];
                        raw.splice(pos..pos, token.iter().copied());
                    }
                    1 if pos < raw.len() => {
                        let end = (pos + (next() as usize) % 40).min(raw.len());
                        raw.drain(pos..end);
                    }
                    _ if pos < raw.len() => raw[pos] = next() as u8,
                    _ => {}
                }
            }
            exercise(&raw);
        }
    }
}

#[test]
fn pathological_inputs() {
    exercise(b"");
    exercise(b"\r\n");
    exercise(b"--");
    exercise(b"\0\0\0:\0\r\n\r\n\0");
    exercise(b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n----\r\n");
    exercise(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x");
    exercise(b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n");
    exercise(b"From: ((((((((\r\nTo: \"\\\r\nCc: <@@@:>\r\nBcc: a@[\r\n\r\n");
    exercise(b"Content-Type: text/plain; a*0*=1; a*=2; a*99999999999999999999=3; b*=x%\r\n\r\n");
    let mut many = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        many.extend_from_slice(b"--b\r\n");
    }
    exercise(&many);
    let mut deep = Vec::new();
    for i in 0..500 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    exercise(&deep);
}
