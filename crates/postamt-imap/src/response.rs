//! Writing IMAP response syntax (RFC 9051 section 9): strings as atoms, quoted strings or
//! literals, flag lists, dates. Everything appends to a byte buffer; nothing here does I/O.

use postamt_store::Flags;

/// Appends `s` as an IMAP `string`: quoted when that is possible (no CR, LF, NUL, and in
/// IMAP4rev1 mode no 8-bit bytes), else as a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable =
        s.len() <= 1024 && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0 && (utf8 || b < 0x80));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `{n}CRLF` and the bytes.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends an `astring`: an atom when the value is a plain atom, else a string.
pub fn astring(out: &mut Vec<u8>, s: &str, utf8: bool) {
    let atom = !s.is_empty()
        && !s.eq_ignore_ascii_case("NIL")
        && s.bytes().all(|b| b.is_ascii_graphic() && !b"(){ %*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(s.as_bytes());
    } else {
        string(out, s.as_bytes(), utf8);
    }
}

/// Appends `NIL` or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        Some(s) => string(out, s, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// The system flags with their IMAP names, in the order they are listed.
pub const SYSTEM_FLAGS: [(Flags, &str); 5] = [
    (Flags::ANSWERED, "\\Answered"),
    (Flags::FLAGGED, "\\Flagged"),
    (Flags::DELETED, "\\Deleted"),
    (Flags::SEEN, "\\Seen"),
    (Flags::DRAFT, "\\Draft"),
];

/// Appends `(\Seen $Label ...)`; `recent` adds `\Recent` (IMAP4rev1 only).
pub fn flag_list(out: &mut Vec<u8>, flags: Flags, keywords: &[String], recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut item = |out: &mut Vec<u8>, s: &str| {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(s.as_bytes());
    };
    for (flag, name) in SYSTEM_FLAGS {
        if flags.contains(flag) {
            item(out, name);
        }
    }
    if recent {
        item(out, "\\Recent");
    }
    for k in keywords {
        item(out, k);
    }
    out.push(b')');
}

/// Formats an internal date (`date-time`, RFC 9051 section 9) in UTC:
/// `"17-Jul-1996 09:44:25 +0000"`.
pub fn date_time(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\" \\", false);
        out.push(b' ');
        string(&mut out, b"line\r\nbreak", false);
        out.push(b' ');
        string(&mut out, "Grüße".as_bytes(), false);
        out.push(b' ');
        string(&mut out, "Grüße".as_bytes(), true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a \\\"b\\\" \\\\\" {11}\r\nline\r\nbreak {7}\r\nGrüße \"Grüße\""
        );
        let mut out = Vec::new();
        astring(&mut out, "INBOX", false);
        out.push(b' ');
        astring(&mut out, "My Folder", false);
        out.push(b' ');
        astring(&mut out, "nil", false);
        assert_eq!(out, b"INBOX \"My Folder\" \"nil\"");
    }

    #[test]
    fn flags_and_dates() {
        let mut out = Vec::new();
        flag_list(&mut out, Flags::SEEN.union(Flags::ANSWERED), &["$Forwarded".into()], true);
        assert_eq!(out, b"(\\Answered \\Seen \\Recent $Forwarded)");
        let mut out = Vec::new();
        flag_list(&mut out, Flags::NONE, &[], false);
        assert_eq!(out, b"()");
        assert_eq!(date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(date_time(1_795_698_868), "\"26-Nov-2026 13:14:28 +0000\"");
        for d in [-1000, 0, 59, 60, 10_957, 20_000, 737_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
