//! Modified UTF-7 mailbox names (RFC 3501 section 5.1.3).
//!
//! IMAP4rev1 clients that have not enabled `UTF8=ACCEPT` (RFC 6855) or IMAP4rev2 send and
//! expect mailbox names in this encoding:
//!
//! - printable US-ASCII (`0x20..=0x7e`) except `&` represents itself;
//! - `&` is written `&-`;
//! - every other run of characters is encoded as UTF-16 (big-endian), then base64 with
//!   `,` instead of `/` and without `=` padding, between `&` and `-`.
//!
//! [`decode`] is strict: it rejects anything [`encode`] would not have produced (raw
//! 8-bit or control octets, bad base64, non-zero padding bits, encoded printable ASCII,
//! two adjacent encoded runs, unterminated shifts, unpaired surrogates), so that every
//! mailbox name has exactly one encoded form.

/// The modified base64 alphabet (RFC 3501: "," replaces "/").
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Whether `c` is written as itself (printable US-ASCII, `&` being written `&-`).
fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes a mailbox name in modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in s.chars() {
        if is_direct(c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Writes the pending UTF-16 units as one `&...-` run.
fn flush(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut nbits: u32 = 0;
    for unit in units.drain(..) {
        for byte in unit.to_be_bytes() {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(char::from(ALPHABET[((bits >> nbits) & 0x3f) as usize]));
            }
            bits &= (1 << nbits) - 1;
        }
    }
    if nbits > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// The value of one modified base64 character.
fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes a modified UTF-7 mailbox name; `None` if it is not in canonical modified UTF-7.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0usize;
    // Whether the previous element was an encoded run: two adjacent runs are not canonical
    // (the encoder merges them).
    let mut after_run = false;
    while let Some(&b) = bytes.get(i) {
        if !(0x20..=0x7e).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(char::from(b));
            i += 1;
            after_run = false;
            continue;
        }
        let start = i + 1;
        let tail = bytes.get(start..)?;
        let len = tail.iter().position(|&c| c == b'-')?;
        let run = tail.get(..len)?;
        i = start + len + 1;
        if run.is_empty() {
            out.push('&');
            after_run = false;
            continue;
        }
        if after_run {
            return None;
        }
        decode_run(run, &mut out)?;
        after_run = true;
    }
    Some(out)
}

/// Decodes the base64 between `&` and `-`, appending the characters to `out`.
fn decode_run(run: &[u8], out: &mut String) -> Option<()> {
    let mut bits: u32 = 0;
    let mut nbits: u32 = 0;
    let mut units = Vec::with_capacity(run.len() * 3 / 8 + 1);
    let mut high: Option<u8> = None;
    for &c in run {
        bits = (bits << 6) | sextet(c)?;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            let byte = ((bits >> nbits) & 0xff) as u8;
            match high.take() {
                None => high = Some(byte),
                Some(h) => units.push(u16::from_be_bytes([h, byte])),
            }
        }
        bits &= (1 << nbits) - 1;
    }
    // Leftover bits are padding: fewer than six and all zero; the octets must pair up
    // into UTF-16 code units.
    if nbits >= 6 || bits != 0 || high.is_some() {
        return None;
    }
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        if is_direct(c) {
            // Printable ASCII must be written as itself.
            return None;
        }
        out.push(c);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        let decoded = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(), Some(decoded));
        assert_eq!(encode(decoded), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    }

    #[test]
    fn ascii_and_ampersand() {
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        assert_eq!(encode("&&"), "&-&-");
        assert_eq!(decode("&-&-").as_deref(), Some("&&"));
        assert_eq!(encode(""), "");
        assert_eq!(decode("").as_deref(), Some(""));
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(encode("\u{e9}"), "&AOk-");
        assert_eq!(encode("Gel\u{f6}scht"), "Gel&APY-scht");
        // A character outside the BMP (surrogate pair).
        assert_eq!(encode("\u{1f600}"), "&2D3eAA-");
        assert_eq!(decode("&2D3eAA-").as_deref(), Some("\u{1f600}"));
        // Control characters are encoded too.
        assert_eq!(encode("a\tb"), "a&AAk-b");
        assert_eq!(decode("a&AAk-b").as_deref(), Some("a\tb"));
    }

    #[test]
    fn round_trips() {
        for s in [
            "INBOX",
            "Tom & Jerry",
            "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}",
            "\u{1f600}\u{1f601}x\u{1f602}",
            "\u{e9}\u{e8}\u{ea}",
            "a\u{e9}b\u{e8}c&d",
            "\u{7f}\u{0}",
            "Gesendete Objekte/\u{c4}rger",
            "\u{444}\u{43e}\u{43b}\u{434}\u{435}\u{440}",
        ] {
            let enc = encode(s);
            assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{enc}");
            assert_eq!(decode(&enc).as_deref(), Some(s), "{enc}");
        }
        // Every run length (padding cases).
        for n in 1..12 {
            let s: String = std::iter::repeat_n('\u{e9}', n).collect();
            assert_eq!(decode(&encode(&s)).as_deref(), Some(s.as_str()));
        }
    }

    #[test]
    fn malformed() {
        for bad in [
            "&",                  // unterminated shift
            "&U,BTFw",            // unterminated shift
            "&U,BTFw!-",          // not base64
            "&U/BTFw-",           // "/" is not modified base64
            "&U,BTFw=-",          // padding is not used
            "&AGE-",              // "a" must not be encoded
            "&ACY-",              // "&" must be "&-"
            "&U,BTFw-&ZeVnLIqe-", // adjacent runs must be merged
            "&AOl-",              // non-zero padding bits
            "&AO-",               // odd number of octets
            "&A-",                // a single sextet
            "&2D0-",              // unpaired high surrogate
            "&3gA-",              // unpaired low surrogate
            "caf\u{e9}",          // raw 8-bit
            "a\tb",               // raw control character
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
