//! The parser must never panic and must keep its error contract on any input: every
//! prefix and many byte mutations of valid commands, plus pseudo-random noise.

use postamt_imap::parse::{literal_suffix, parse_command, peek_tag_and_name};

const SEEDS: &[&[u8]] = &[
    b"a1 LOGIN {4+}\r\nfred \"se\\\"cret\"\r\n",
    b"a2 APPEND INBOX (\\Seen $Junk) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello ~{3}\r\na\x00b\r\n",
    b"a3 UID FETCH 1:*,5 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS.NOT (To {2}\r\nCc)]<0.10> BINARY[1]<5.5> BINARY.SIZE[2])\r\n",
    b"a4 SEARCH RETURN (MIN SAVE) CHARSET UTF-8 OR (NOT SEEN UID 1,2:4) HEADER X-A {3}\r\nabc SINCE \"1-Feb-1994\" LARGER 100 $\r\n",
    b"a5 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% \"a/*\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
    b"a6 STORE 1:3 +FLAGS.SILENT \\Seen \\Flagged\r\n",
    b"a7 CREATE \"Sent\" (USE (\\Sent))\r\n",
    b"a8 ID (\"name\" \"x\" \"version\" NIL)\r\n",
    b"a9 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
    b"b1 STATUS INBOX (MESSAGES UIDNEXT SIZE)\r\n",
    b"b2 UID MOVE 42:69 foo\r\n",
];

const INTERESTING: &[u8] = b"\x00 ()[]{}<>\"\\\r\n*%.:,$~+-09A\xff\x7f";

/// Runs every entry point on `input` and checks the error contract.
fn check(input: &[u8]) {
    let result = parse_command(input);
    if let Err(e) = &result {
        assert!(!e.message.is_empty(), "{input:?}");
        assert!(e.message.bytes().all(|b| (0x20..0x7f).contains(&b)), "{input:?}: {:?}", e.message);
        if let Some(tag) = &e.tag {
            assert!(input.starts_with(tag.as_bytes()), "{input:?}: {tag:?}");
        }
    }
    if let Ok(request) = &result {
        assert!(input.starts_with(request.tag.as_bytes()));
    }
    // The framer's helpers see single lines.
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let _ = literal_suffix(line);
        if let Some((tag, name)) = peek_tag_and_name(line) {
            assert!(line.starts_with(tag.as_bytes()));
            assert!(!name.contains(|c: char| c.is_ascii_lowercase()));
        }
    }
}

#[test]
fn seeds_are_valid() {
    for seed in SEEDS {
        assert!(
            parse_command(seed).is_ok(),
            "{:?}: {:?}",
            String::from_utf8_lossy(seed),
            parse_command(seed)
        );
    }
}

#[test]
fn all_prefixes() {
    for seed in SEEDS {
        for end in 0..=seed.len() {
            check(seed.get(..end).unwrap_or_default());
        }
    }
}

#[test]
fn byte_mutations() {
    for seed in SEEDS {
        for i in 0..seed.len() {
            let mut input = seed.to_vec();
            for &b in INTERESTING {
                if let Some(slot) = input.get_mut(i) {
                    *slot = b;
                }
                check(&input);
            }
            // Deletion and duplication of the byte at i.
            let mut deleted = seed.to_vec();
            deleted.remove(i);
            check(&deleted);
            let mut doubled = seed.to_vec();
            doubled.insert(i, seed.get(i).copied().unwrap_or(b' '));
            check(&doubled);
        }
    }
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap_or(0)
    }
}

#[test]
fn random_mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let mut input = seed.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(input.len() + 1);
            let byte = if rng.below(2) == 0 {
                INTERESTING[rng.below(INTERESTING.len())]
            } else {
                (rng.next() & 0xff) as u8
            };
            match rng.below(3) {
                0 if at < input.len() => input[at] = byte,
                1 if at < input.len() => {
                    input.remove(at);
                }
                _ => input.insert(at, byte),
            }
        }
        check(&input);
    }
}

#[test]
fn random_noise() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let len = rng.below(64);
        let mut input = b"t ".to_vec();
        for _ in 0..len {
            input.push(INTERESTING[rng.below(INTERESTING.len())]);
        }
        check(&input);
    }
}

#[test]
fn hostile_sizes() {
    for input in [
        &b"a APPEND INBOX {18446744073709551615}\r\n"[..],
        b"a APPEND INBOX {9223372036854775807}\r\nx",
        b"a APPEND INBOX ~{9223372036854775807+}\r\nx",
        b"a FETCH 1 BODY[]<18446744073709551615.18446744073709551615>",
        b"a FETCH 1 BODY[99999999999999999999999999999]",
        b"a SEARCH LARGER 999999999999999999999999999999999999",
    ] {
        check(input);
        assert!(parse_command(input).is_err());
    }
    // Long inputs stay linear: one megabyte of repeated options parses quickly.
    let statuses = "STATUS (MESSAGES UNSEEN) ".repeat(40_000);
    let list = format!("a LIST \"\" * RETURN ({}CHILDREN)", statuses);
    let started = std::time::Instant::now();
    assert!(parse_command(list.as_bytes()).is_ok());
    let keys = format!("a SEARCH {}ALL", "SEEN 1:2,3 ".repeat(100_000));
    assert!(parse_command(keys.as_bytes()).is_ok());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let mut deep = b"a SEARCH ".to_vec();
    deep.extend(std::iter::repeat_n(b'(', 1 << 20));
    check(&deep);
    let mut nots = b"a SEARCH ".to_vec();
    for _ in 0..200_000 {
        nots.extend_from_slice(b"NOT ");
    }
    check(&nots);
}
