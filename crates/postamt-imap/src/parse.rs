//! IMAP command parser: the bytes of one complete client command to a [`Request`].
//!
//! The grammar is RFC 9051 section 9 (IMAP4rev2), plus the RFC 3501 (IMAP4rev1) forms
//! postamt still serves (`LSUB`, `CHECK`, `STATUS ... RECENT`, `SEARCH NEW/OLD/RECENT`,
//! `CHARSET` as an astring) and the extensions it advertises: LIST-EXTENDED (RFC 5258),
//! LIST-STATUS (RFC 5819), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), MULTIAPPEND
//! (RFC 3502), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), ID (RFC 2971), SASL-IR
//! (RFC 4959), ENABLE (RFC 5161), BINARY (RFC 3516), MOVE (RFC 6851), UIDPLUS's
//! `UID EXPUNGE` (RFC 4315), LITERAL+ / LITERAL- (RFC 7888), CONDSTORE and QRESYNC
//! (RFC 7162: select parameters, FETCH and STORE modifiers, MODSEQ), QUOTA (RFC 9208),
//! SORT and THREAD (RFC 5256) with ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957).
//!
//! # Framing
//!
//! A command may span several lines because of literals. The session's framer reads one
//! line (without its CRLF) and asks [`literal_suffix`] whether it ends with a literal
//! announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`). If so, it checks the size against its
//! limit before reading any literal octet (using [`peek_tag_and_name`] to allow large
//! literals only for APPEND and to answer BAD with the right tag), sends a continuation
//! request for synchronizing literals, reads exactly `n` octets and then the next line, and
//! so on. The complete command -- lines joined with their CRLFs, literal octets in place,
//! the final CRLF optional -- is passed to [`parse_command`].
//!
//! # Robustness
//!
//! The parser is pure and never panics: it indexes only through checked accessors, never
//! allocates according to a size announced by the client (literal data is sliced out of the
//! input), and bounds recursion (nested search keys) at [`MAX_DEPTH`]. Errors carry the tag
//! whenever one could be read, so the session can answer `tag BAD message`.
//!
//! # Strings
//!
//! Strings are returned as sent, after removing quoting or literal framing. They must be
//! UTF-8 (quoted strings may carry UTF-8 per RFC 9051; literals are checked too) and must
//! not contain NUL; otherwise the command is rejected. The one exception is SEARCH with a
//! `CHARSET` other than UTF-8 / US-ASCII: its strings are converted lossily so that the
//! session can answer `NO [BADCHARSET]` (and reset a saved `$` result, RFC 5182) instead of
//! the parser answering BAD. APPEND message data is passed through as octets.

use std::fmt;

use crate::command::{
    AppendMessage, Command, Date, FetchItem, FetchModifiers, ListCommand, ListReturn, ListSelect,
    MetadataDepth, Partial, Qresync, Request, SearchCommand, SearchKey, SearchReturn, Section, SectionText,
    SelectParams, SeqNum, SeqRange, SequenceSet, SortCommand, SortCriterion, SortKey, StatusItem, StoreMode,
    ThreadAlgorithm,
};

/// The deepest nesting of search keys (parentheses, `NOT`, `OR`) accepted; deeper input is
/// rejected with BAD "too deeply nested" instead of risking the stack.
pub const MAX_DEPTH: usize = 64;

/// `number64`: unsigned 63-bit integer (RFC 9051 section 9).
const NUMBER64_MAX: u64 = i64::MAX as u64;

/// How much of a client-supplied token an error message quotes.
const ECHO_LIMIT: usize = 32;

/// A literal announced at the end of a line (see [`literal_suffix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    /// The announced number of octets. Sizes beyond `number64` (2^63 - 1) are reported
    /// as `u64::MAX` so that any size limit rejects them.
    pub size: u64,
    /// `{n}`: the client waits for a continuation request. `false` for `{n+}`
    /// (LITERAL+ / LITERAL-, RFC 7888), which the client sends right away.
    pub sync: bool,
    /// `~{n}`: a `literal8` (RFC 3516), which may contain NUL.
    pub binary: bool,
}

/// A command that could not be parsed; the session answers `tag BAD message`, or
/// `* BAD message` when no tag could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    /// Human-readable reason: ASCII, no CR or LF, suitable as `resp-text`.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Tells whether `line` (one line as received, without CRLF) ends with a literal
/// announcement: `{n}` (synchronizing), `{n+}` (non-synchronizing, RFC 7888), or
/// `~{n}` / `~{n+}` (literal8, RFC 3516).
///
/// Only the end of the line is examined; whether the announcement is well placed is for
/// [`parse_command`] to decide once the command is complete. Treating every such suffix as
/// a literal keeps the framer in step with a client that sends the literal octets anyway.
pub fn literal_suffix(line: &[u8]) -> Option<Literal> {
    let rest = line.strip_suffix(b"}")?;
    let (rest, sync) = match rest.strip_suffix(b"+") {
        Some(rest) => (rest, false),
        None => (rest, true),
    };
    let start = rest.iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |i| i + 1);
    let (before, digits) = rest.split_at_checked(start)?;
    if digits.is_empty() {
        return None;
    }
    let before = before.strip_suffix(b"{")?;
    let binary = before.ends_with(b"~");
    let size = parse_decimal(digits).filter(|&n| n <= NUMBER64_MAX).unwrap_or(u64::MAX);
    Some(Literal { size, sync, binary })
}

/// The tag and the upper-cased command name of a command's first line, e.g.
/// `("a1", "UID FETCH")`. `None` if the line does not start with a valid tag followed by a
/// space or the end of the line; the name is empty when the line holds only a tag.
pub fn peek_tag_and_name(line: &[u8]) -> Option<(String, String)> {
    let mut p = Parser::new(line);
    let tag = p.tag().ok()?;
    if !p.eat(b' ') {
        return Some((tag, String::new()));
    }
    let mut name = ascii_upper(p.take_while(is_atom_char));
    if name == "UID" && p.eat(b' ') {
        let sub = ascii_upper(p.take_while(is_atom_char));
        if !sub.is_empty() {
            name = format!("UID {sub}");
        }
    }
    Some((tag, name))
}

/// Parses one complete command: `tag SP command [CRLF]`, literal octets in place.
pub fn parse_command(input: &[u8]) -> Result<Request, ParseError> {
    let mut p = Parser::new(input);
    let tag = p.tag().map_err(|message| ParseError { tag: None, message })?;
    let fail = |message: String| ParseError { tag: Some(tag.clone()), message };
    if !p.eat(b' ') {
        return Err(fail("missing command name".into()));
    }
    let mut name = ascii_upper(p.take_while(is_atom_char));
    if name.is_empty() {
        return Err(fail("missing command name".into()));
    }
    if name == "UID" {
        if !p.eat(b' ') {
            return Err(fail("UID: missing command name".into()));
        }
        let sub = ascii_upper(p.take_while(is_atom_char));
        if sub.is_empty() {
            return Err(fail("UID: missing command name".into()));
        }
        name = format!("UID {sub}");
    }
    let Some(result) = p.command(&name) else {
        return Err(fail(format!("unknown command {}", echo(&name))));
    };
    match result.and_then(|command| p.finish().map(|()| command)) {
        Ok(command) => Ok(Request { tag: tag.clone(), command }),
        Err(message) => Err(fail(format!("{name}: {message}"))),
    }
}

/// Internal result: the error is the message, the tag is attached by [`parse_command`].
type PResult<T> = Result<T, String>;

/// `ATOM-CHAR = <any CHAR except atom-specials>`;
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
/// resp-specials`.
fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `tag = 1*<any ASTRING-CHAR except "+">`.
fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// Decimal value of a run of ASCII digits; `None` on overflow (or a non-digit).
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// An ASCII token (atom characters only) as an upper-cased `String`.
fn ascii_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b.to_ascii_uppercase())).collect()
}

/// An ASCII token as a `String`, case preserved.
fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A client token quoted in an error message, shortened.
fn echo(token: &str) -> String {
    if token.len() <= ECHO_LIMIT {
        token.to_owned()
    } else {
        let cut: String = token.chars().take(ECHO_LIMIT).collect();
        format!("{cut}...")
    }
}

/// `base64 = *(4base64-char) [base64-terminal]`, non-empty (the empty response is `=`).
fn is_base64(s: &[u8]) -> bool {
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return false;
    }
    let body = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    body.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Charsets whose strings the parser can keep as UTF-8 (RFC 9051 requires UTF-8 and
/// US-ASCII support for SEARCH).
fn is_utf8_charset(charset: &str) -> bool {
    ["UTF-8", "UTF8", "US-ASCII"].iter().any(|c| charset.eq_ignore_ascii_case(c))
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `date-month`, case-insensitive.
fn month_number(name: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"];
    let index = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(m.as_slice()))?;
    u8::try_from(index + 1).ok()
}

/// A cursor over one command.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Current nesting of search keys.
    depth: usize,
    /// Convert invalid UTF-8 lossily instead of failing (SEARCH with a charset the server
    /// will refuse anyway).
    lossy: bool,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Self {
        Parser { input, pos: 0, depth: 0, lossy: false }
    }

    // ----- Low-level cursor operations -----

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.pos.saturating_add(offset)).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.input.len());
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.advance(1);
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.advance(n);
        rest.get(..n).unwrap_or_default()
    }

    /// The command is complete: nothing left but an optional final CRLF.
    fn at_end(&self) -> bool {
        matches!(self.rest(), b"" | b"\r\n")
    }

    /// Describes the next octet for an error message.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of command".into(),
            Some(b'\r') if self.rest() == b"\r\n" => "end of command".into(),
            Some(b' ') => "space".into(),
            Some(b) if b.is_ascii_graphic() => format!("'{}'", char::from(b)),
            Some(b) => format!("octet 0x{b:02x}"),
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> PResult<()> {
        if self.eat(b) { Ok(()) } else { Err(format!("expected {what}, found {}", self.found())) }
    }

    /// `SP` between arguments.
    fn sp(&mut self) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else if self.at_end() {
            Err("missing argument".into())
        } else {
            Err(format!("expected space, found {}", self.found()))
        }
    }

    /// After an element of a parenthesised list: `SP` (more follow, `false`) or `")"`
    /// (the list ends, `true`).
    fn list_next(&mut self) -> PResult<bool> {
        if self.eat(b')') {
            Ok(true)
        } else if self.eat(b' ') {
            Ok(false)
        } else if self.at_end() {
            Err("unterminated parenthesised list".into())
        } else {
            Err(format!("expected space or ')', found {}", self.found()))
        }
    }

    /// Nothing may follow the command but its CRLF.
    fn finish(&mut self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else if self.peek() == Some(b' ') {
            Err("unexpected extra arguments".into())
        } else {
            Err(format!("unexpected {} after the arguments", self.found()))
        }
    }

    /// Enters one level of search-key nesting.
    fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err("too deeply nested".into());
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ----- Tokens -----

    /// `tag`, which must be followed by SP or the end of the line.
    fn tag(&mut self) -> PResult<String> {
        let tag = self.take_while(is_tag_char);
        if tag.is_empty() {
            return Err(if self.at_end() { "empty command".into() } else { "missing or invalid tag".into() });
        }
        if self.peek() == Some(b' ') || self.at_end() { Ok(ascii(tag)) } else { Err("invalid tag".into()) }
    }

    /// `atom = 1*ATOM-CHAR`.
    fn atom(&mut self, what: &str) -> PResult<&'a [u8]> {
        let atom = self.take_while(is_atom_char);
        if !atom.is_empty() {
            Ok(atom)
        } else if self.at_end() {
            Err(format!("missing {what}"))
        } else {
            Err(format!("expected {what}, found {}", self.found()))
        }
    }

    /// An atom used as a keyword, upper-cased.
    fn word(&mut self, what: &str) -> PResult<String> {
        self.atom(what).map(ascii_upper)
    }

    /// Consumes `keyword` if the next atom is exactly it (case-insensitively).
    fn eat_word(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !is_atom_char(b)).unwrap_or(rest.len());
        let matches = rest.get(..n).is_some_and(|atom| atom.eq_ignore_ascii_case(keyword.as_bytes()));
        if matches {
            self.advance(n);
        }
        matches
    }

    /// `number` (32-bit) / `number64` digits, value bounded by `max`.
    fn number(&mut self, max: u64, what: &str) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(format!("expected {what}, found {}", self.found()));
        }
        parse_decimal(digits).filter(|&n| n <= max).ok_or_else(|| format!("{what} out of range"))
    }

    /// `nz-number = digit-nz *DIGIT`, 32-bit.
    fn nz_number(&mut self, what: &str) -> PResult<u32> {
        if self.peek() == Some(b'0') {
            return Err(format!("{what} must not be zero or start with 0"));
        }
        let n = self.number(u64::from(u32::MAX), what)?;
        u32::try_from(n).map_err(|_| format!("{what} out of range"))
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`; `QUOTED-CHAR = <any TEXT-CHAR except
    /// quoted-specials> / "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4`.
    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.advance(1);
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.advance(2);
                    }
                    _ => return Err("invalid escape in quoted string".into()),
                },
                Some(0) => return Err("NUL in quoted string".into()),
                Some(c) => {
                    out.push(c);
                    self.advance(1);
                }
            }
        }
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` or
    /// `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET`: the data and whether it was a
    /// literal8.
    fn literal(&mut self) -> PResult<(&'a [u8], bool)> {
        let binary = self.eat(b'~');
        self.expect(b'{', "literal")?;
        let size = self.number(NUMBER64_MAX, "literal size")?;
        self.eat(b'+');
        self.expect(b'}', "'}' of the literal announcement")?;
        if !self.rest().starts_with(b"\r\n") {
            return Err("a literal announcement must end the line".into());
        }
        self.advance(2);
        let rest = self.rest();
        let data = usize::try_from(size).ok().and_then(|n| rest.get(..n)).ok_or("literal data truncated")?;
        self.advance(data.len());
        Ok((data, binary))
    }

    /// A literal used as a string: not a literal8, no NUL.
    fn string_literal(&mut self) -> PResult<Vec<u8>> {
        if self.peek() == Some(b'~') {
            return Err("literal8 is only allowed for APPEND data".into());
        }
        let (data, _) = self.literal()?;
        if data.contains(&0) {
            return Err("NUL in literal".into());
        }
        Ok(data.to_vec())
    }

    /// `string = quoted / literal`, as raw octets.
    fn string_bytes(&mut self) -> PResult<Option<Vec<u8>>> {
        match self.peek() {
            Some(b'"') => self.quoted().map(Some),
            Some(b'{') => self.string_literal().map(Some),
            Some(b'~') if self.peek_at(1) == Some(b'{') => self.string_literal().map(Some),
            _ => Ok(None),
        }
    }

    /// Validates string octets as UTF-8 (lossily in SEARCH under a foreign charset).
    fn text(&self, bytes: Vec<u8>) -> PResult<String> {
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) if self.lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Err(_) => Err("string is not valid UTF-8".into()),
        }
    }

    /// A token of `1*<chars>` or a `string`.
    fn string_or(&mut self, chars: fn(u8) -> bool, what: &str) -> PResult<String> {
        if let Some(bytes) = self.string_bytes()? {
            return self.text(bytes);
        }
        let token = self.take_while(chars);
        if !token.is_empty() {
            Ok(ascii(token))
        } else if self.at_end() {
            Err(format!("missing {what}"))
        } else {
            Err(format!("expected {what}, found {}", self.found()))
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    fn astring(&mut self, what: &str) -> PResult<String> {
        self.string_or(is_astring_char, what)
    }

    /// `mailbox = "INBOX" / astring` (kept as sent; the session folds INBOX).
    fn mailbox(&mut self) -> PResult<String> {
        self.astring("mailbox name")
    }

    /// `list-mailbox = 1*list-char / string`.
    fn list_mailbox(&mut self) -> PResult<String> {
        self.string_or(is_list_char, "mailbox pattern")
    }

    /// `nstring = string / nil`; an atom other than NIL is accepted as a string too.
    fn nstring(&mut self, what: &str) -> PResult<Option<String>> {
        if self.eat_word("NIL") {
            return Ok(None);
        }
        self.astring(what).map(Some)
    }

    /// `sequence-set = (seq-number / seq-range) ["," sequence-set]` / `"$"` (RFC 5182).
    /// Ranges are kept in the order given.
    fn sequence_set(&mut self) -> PResult<SequenceSet> {
        let set = if self.eat(b'$') {
            SequenceSet::Saved
        } else {
            let mut ranges = Vec::new();
            loop {
                let start = self.seq_number()?;
                let end = if self.eat(b':') { self.seq_number()? } else { start };
                ranges.push(SeqRange { start, end });
                if !self.eat(b',') {
                    break;
                }
            }
            SequenceSet::Ranges(ranges)
        };
        match self.peek() {
            None | Some(b' ' | b')' | b'\r') => Ok(set),
            Some(_) => Err(format!("invalid sequence set: unexpected {}", self.found())),
        }
    }

    /// `seq-number = nz-number / "*"`.
    fn seq_number(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(format!("invalid sequence set: expected a number, found {}", self.found()));
        }
        self.nz_number("message number").map(SeqNum::Value)
    }

    /// Exactly `n` digits (`2DIGIT`, `4DIGIT`).
    fn fixed_digits(&mut self, n: usize, what: &str) -> PResult<u32> {
        let digits = self
            .rest()
            .get(..n)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("invalid {what}"))?;
        self.advance(n);
        parse_decimal(digits).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| format!("invalid {what}"))
    }

    /// `date-month`.
    fn month(&mut self) -> PResult<u8> {
        let month = self.rest().get(..3).and_then(month_number).ok_or("invalid month")?;
        self.advance(3);
        Ok(month)
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`;
    /// `date-text = date-day "-" date-month "-" date-year`; `date-day = 1*2DIGIT`.
    fn date(&mut self) -> PResult<Date> {
        let quoted = self.eat(b'"');
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err("invalid date (expected e.g. 1-Feb-1994)".into());
        }
        let day = parse_decimal(day).and_then(|d| u8::try_from(d).ok()).unwrap_or(0);
        self.expect(b'-', "'-' in date")?;
        let month = self.month()?;
        self.expect(b'-', "'-' in date")?;
        let year = self.fixed_digits(4, "year")?;
        let year = i32::try_from(year).map_err(|_| "invalid year")?;
        if quoted {
            self.expect(b'"', "closing quote of the date")?;
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err("invalid day of month".into());
        }
        Ok(Date { year, month, day })
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
    /// DQUOTE` as Unix seconds. `date-day-fixed = (SP DIGIT) / 2DIGIT`; a single digit is
    /// accepted too.
    fn date_time(&mut self) -> PResult<i64> {
        self.expect(b'"', "date-time")?;
        let day = if self.eat(b' ') {
            self.fixed_digits(1, "day")?
        } else {
            let digits = self.take_while(|b| b.is_ascii_digit());
            if digits.is_empty() || digits.len() > 2 {
                return Err("invalid date-time (expected e.g. \"17-Jul-1996 02:44:25 -0700\")".into());
            }
            parse_decimal(digits).and_then(|d| u32::try_from(d).ok()).unwrap_or(0)
        };
        self.expect(b'-', "'-' in date-time")?;
        let month = self.month()?;
        self.expect(b'-', "'-' in date-time")?;
        let year = i32::try_from(self.fixed_digits(4, "year")?).map_err(|_| "invalid year")?;
        self.expect(b' ', "space in date-time")?;
        // time = 2DIGIT ":" 2DIGIT ":" 2DIGIT
        let hour = self.fixed_digits(2, "hour")?;
        self.expect(b':', "':' in time")?;
        let minute = self.fixed_digits(2, "minute")?;
        self.expect(b':', "':' in time")?;
        let second = self.fixed_digits(2, "second")?;
        self.expect(b' ', "space in date-time")?;
        // zone = ("+" / "-") 4DIGIT
        let sign: i64 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return Err("invalid time zone".into());
        };
        let zone_hours = self.fixed_digits(2, "time zone")?;
        let zone_minutes = self.fixed_digits(2, "time zone")?;
        self.expect(b'"', "closing quote of the date-time")?;
        let day = u8::try_from(day).unwrap_or(0);
        if day == 0 || day > days_in_month(year, month) {
            return Err("invalid day of month".into());
        }
        // Second 60 admits a leap second.
        if hour > 23 || minute > 59 || second > 60 || zone_minutes > 59 {
            return Err("invalid time".into());
        }
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second);
        let offset = i64::from(zone_hours) * 3600 + i64::from(zone_minutes) * 60;
        Ok(local - sign * offset)
    }

    /// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
    /// flag-extension`; `flag-extension = "\" atom`. Kept as sent. `\Recent` is not a
    /// `flag` ("Does not include \Recent") and is rejected.
    fn flag(&mut self) -> PResult<String> {
        if self.eat(b'\\') {
            let name = self.atom("flag name after '\\'")?;
            if name.eq_ignore_ascii_case(b"Recent") {
                return Err("\\Recent cannot be stored".into());
            }
            Ok(format!("\\{}", ascii(name)))
        } else {
            self.atom("flag").map(ascii)
        }
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`.
    fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(', "flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.list_next()? {
                return Ok(flags);
            }
        }
    }

    /// `"(" status-att *(SP status-att) ")"`; duplicates are dropped.
    fn status_atts(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(', "'(' of the status items")?;
        let mut items = Vec::new();
        loop {
            let word = self.word("status item")?;
            let item = match word.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "RECENT" => StatusItem::Recent,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                "DELETED-STORAGE" => StatusItem::DeletedStorage,
                "MAILBOXID" => StatusItem::MailboxId,
                _ => return Err(format!("unsupported status item {}", echo(&word))),
            };
            if !items.contains(&item) {
                items.push(item);
            }
            if self.list_next()? {
                return Ok(items);
            }
        }
    }

    // ----- Commands -----

    /// Parses the arguments of command `name` (upper-cased, `UID ` folded in); `None` if
    /// there is no such command.
    fn command(&mut self, name: &str) -> Option<PResult<Command>> {
        let simple = |command| Some(Ok(command));
        match name {
            "CAPABILITY" => simple(Command::Capability),
            "NOOP" => simple(Command::Noop),
            "LOGOUT" => simple(Command::Logout),
            "STARTTLS" => simple(Command::StartTls),
            "NAMESPACE" => simple(Command::Namespace),
            "IDLE" => simple(Command::Idle),
            "CHECK" => simple(Command::Check),
            "CLOSE" => simple(Command::Close),
            "UNSELECT" => simple(Command::Unselect),
            "EXPUNGE" => simple(Command::Expunge),
            "ID" => Some(self.id()),
            "AUTHENTICATE" => Some(self.authenticate()),
            "LOGIN" => Some(self.login()),
            "ENABLE" => Some(self.enable()),
            "SELECT" => Some(self.select().map(|(mailbox, params)| Command::Select { mailbox, params })),
            "EXAMINE" => Some(self.select().map(|(mailbox, params)| Command::Examine { mailbox, params })),
            // compress = "COMPRESS" SP algorithm; algorithm = "DEFLATE" (RFC 4978 section 7)
            "COMPRESS" => {
                Some(self.sp().and_then(|()| self.word("compression mechanism")).map(Command::Compress))
            }
            "GETMETADATA" => Some(self.getmetadata()),
            "SETMETADATA" => Some(self.setmetadata()),
            "GETQUOTA" => Some(self.sp().and_then(|()| self.astring("quota root")).map(Command::GetQuota)),
            "GETQUOTAROOT" => Some(self.one_mailbox().map(Command::GetQuotaRoot)),
            "SETQUOTA" => Some(self.setquota()),
            "SORT" => Some(self.sort(false)),
            "UID SORT" => Some(self.sort(true)),
            "THREAD" => Some(self.thread(false)),
            "UID THREAD" => Some(self.thread(true)),
            "CREATE" => Some(self.create()),
            "DELETE" => Some(self.one_mailbox().map(|mailbox| Command::Delete { mailbox })),
            "RENAME" => Some(self.rename()),
            "SUBSCRIBE" => Some(self.one_mailbox().map(|mailbox| Command::Subscribe { mailbox })),
            "UNSUBSCRIBE" => Some(self.one_mailbox().map(|mailbox| Command::Unsubscribe { mailbox })),
            "LIST" => Some(self.list()),
            "LSUB" => Some(self.lsub()),
            "STATUS" => Some(self.status()),
            "APPEND" => Some(self.append()),
            "SEARCH" => Some(self.search(false)),
            "UID SEARCH" => Some(self.search(true)),
            "FETCH" => Some(self.fetch(false)),
            "UID FETCH" => Some(self.fetch(true)),
            "STORE" => Some(self.store(false)),
            "UID STORE" => Some(self.store(true)),
            "COPY" => Some(self.copy_move(false, false)),
            "UID COPY" => Some(self.copy_move(true, false)),
            "MOVE" => Some(self.copy_move(false, true)),
            "UID MOVE" => Some(self.copy_move(true, true)),
            "UID EXPUNGE" => Some(self.uid_expunge()),
            _ => None,
        }
    }

    /// `SP mailbox`.
    fn one_mailbox(&mut self) -> PResult<String> {
        self.sp()?;
        self.mailbox()
    }

    /// `id = "ID" SP id_params_list`;
    /// `id_params_list = "(" #(string SPACE nstring) ")" / nil` (RFC 2971).
    fn id(&mut self) -> PResult<Command> {
        self.sp()?;
        if self.eat_word("NIL") {
            return Ok(Command::Id(None));
        }
        self.expect(b'(', "'(' or NIL")?;
        let mut params = Vec::new();
        if self.eat(b')') {
            return Ok(Command::Id(Some(params)));
        }
        loop {
            let field = self.astring("ID field name")?;
            self.sp()?;
            let value = self.nstring("ID field value")?;
            params.push((field, value));
            if self.list_next()? {
                return Ok(Command::Id(Some(params)));
            }
        }
    }

    /// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`;
    /// `initial-resp = (base64 / "=")` (RFC 4959).
    fn authenticate(&mut self) -> PResult<Command> {
        self.sp()?;
        let mechanism = self.word("mechanism name")?;
        let initial = if self.eat(b' ') {
            let response = self.atom("initial response")?;
            if response != b"=" && !is_base64(response) {
                return Err("initial response is not valid base64".into());
            }
            Some(ascii(response))
        } else {
            None
        };
        Ok(Command::Authenticate { mechanism, initial })
    }

    /// `login = "LOGIN" SP userid SP password`.
    fn login(&mut self) -> PResult<Command> {
        self.sp()?;
        let username = self.astring("user name")?;
        self.sp()?;
        let password = self.astring("password")?;
        Ok(Command::Login { username, password })
    }

    /// `enable = "ENABLE" 1*(SP capability)`; `capability = ("AUTH=" auth-type) / atom`.
    fn enable(&mut self) -> PResult<Command> {
        let mut caps = Vec::new();
        loop {
            self.sp()?;
            caps.push(ascii(self.atom("capability")?));
            if self.at_end() {
                return Ok(Command::Enable(caps));
            }
        }
    }

    /// `select = "SELECT" SP mailbox [select-params]`;
    /// `select-params = SP "(" select-param *(SP select-param) ")"` (RFC 4466), with
    /// `CONDSTORE` and `QRESYNC (...)` (RFC 7162 section 7). An empty list is accepted.
    fn select(&mut self) -> PResult<(String, SelectParams)> {
        let mailbox = self.one_mailbox()?;
        let mut params = SelectParams::default();
        if self.eat(b' ') {
            self.expect(b'(', "'(' of the select parameters")?;
            if !self.eat(b')') {
                loop {
                    let word = self.word("select parameter")?;
                    match word.as_str() {
                        "CONDSTORE" if !params.condstore => params.condstore = true,
                        "QRESYNC" if params.qresync.is_none() => {
                            self.sp()?;
                            params.qresync = Some(self.qresync_param()?);
                        }
                        "CONDSTORE" | "QRESYNC" => return Err(format!("duplicate select parameter {word}")),
                        _ => return Err(format!("unsupported select parameter {}", echo(&word))),
                    }
                    if self.list_next()? {
                        break;
                    }
                }
            }
        }
        Ok((mailbox, params))
    }

    /// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`;
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"` (RFC 7162 section 7).
    fn qresync_param(&mut self) -> PResult<Qresync> {
        self.expect(b'(', "'(' of the QRESYNC parameter")?;
        let uidvalidity = self.nz_number("UIDVALIDITY")?;
        self.sp()?;
        let modseq = self.mod_sequence_value()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.star_free_set("known UIDs")?);
                if self.eat(b' ') && self.peek() != Some(b'(') {
                    return Err(format!("expected '(' of the sequence match data, found {}", self.found()));
                }
            }
            if self.eat(b'(') {
                let seqs = self.star_free_set("known message numbers")?;
                self.sp()?;
                let uids = self.star_free_set("known UIDs")?;
                self.expect(b')', "')' of the sequence match data")?;
                seq_match = Some((seqs, uids));
            }
        }
        self.expect(b')', "')' of the QRESYNC parameter")?;
        Ok(Qresync { uidvalidity, modseq, known_uids, seq_match })
    }

    /// A `sequence-set` in which `*` and `$` are not allowed (RFC 7162 `known-uids`).
    fn star_free_set(&mut self, what: &str) -> PResult<SequenceSet> {
        let set = self.sequence_set()?;
        match &set {
            SequenceSet::Ranges(ranges)
                if ranges
                    .iter()
                    .all(|r| matches!((r.start, r.end), (SeqNum::Value(_), SeqNum::Value(_)))) =>
            {
                Ok(set)
            }
            _ => Err(format!("{what}: '*' and '$' are not allowed here")),
        }
    }

    /// `mod-sequence-value = 1*DIGIT`, 1 to 2^63 - 1 (RFC 7162 section 7).
    fn mod_sequence_value(&mut self) -> PResult<u64> {
        let n = self.number(NUMBER64_MAX, "mod-sequence")?;
        if n == 0 { Err("mod-sequence must not be zero".into()) } else { Ok(n) }
    }

    /// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries`;
    /// `getmetadata-option = "MAXSIZE" SP number / "DEPTH" SP ("0" / "1" / "infinity")`;
    /// `entries = entry / "(" entry *(SP entry) ")"` (RFC 5464 section 5). Several entries
    /// without parentheses, as in the RFC's own examples, are accepted too.
    fn getmetadata(&mut self) -> PResult<Command> {
        self.sp()?;
        let (mut maxsize, mut depth) = (None, None);
        if self.peek() == Some(b'(') {
            self.metadata_options(&mut maxsize, &mut depth)?;
            self.sp()?;
        }
        let mailbox = self.mailbox()?;
        self.sp()?;
        // The RFC's examples put the options after the mailbox (erratum 2785): accepted too.
        let rest = self.rest();
        let option_follows = rest.first() == Some(&b'(')
            && ["MAXSIZE ", "DEPTH "]
                .iter()
                .any(|w| rest.get(1..1 + w.len()).is_some_and(|r| r.eq_ignore_ascii_case(w.as_bytes())));
        if option_follows {
            self.metadata_options(&mut maxsize, &mut depth)?;
            self.sp()?;
        }
        let mut entries = Vec::new();
        if self.eat(b'(') {
            loop {
                entries.push(self.metadata_entry()?);
                if self.list_next()? {
                    break;
                }
            }
        } else {
            entries.push(self.metadata_entry()?);
            while self.eat(b' ') {
                entries.push(self.metadata_entry()?);
            }
        }
        Ok(Command::GetMetadata { mailbox, maxsize, depth: depth.unwrap_or_default(), entries })
    }

    /// `getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"`, each at
    /// most once.
    fn metadata_options(
        &mut self,
        maxsize: &mut Option<u64>,
        depth: &mut Option<MetadataDepth>,
    ) -> PResult<()> {
        self.expect(b'(', "'(' of the GETMETADATA options")?;
        loop {
            let option = self.word("GETMETADATA option")?;
            self.sp()?;
            match option.as_str() {
                "MAXSIZE" if maxsize.is_none() => {
                    *maxsize = Some(self.number(u64::from(u32::MAX), "MAXSIZE")?)
                }
                "DEPTH" if depth.is_none() => {
                    *depth = Some(match self.word("depth")?.as_str() {
                        "0" => MetadataDepth::Zero,
                        "1" => MetadataDepth::One,
                        "INFINITY" => MetadataDepth::Infinity,
                        other => return Err(format!("invalid DEPTH {}", echo(other))),
                    })
                }
                _ => return Err(format!("unsupported or repeated GETMETADATA option {}", echo(&option))),
            }
            if self.list_next()? {
                return Ok(());
            }
        }
    }

    /// `setmetadata = "SETMETADATA" SP mailbox SP entry-values`;
    /// `entry-values = "(" entry-value *(SP entry-value) ")"`; `entry-value = entry SP value`;
    /// `value = nstring / literal8` (RFC 5464 section 5).
    fn setmetadata(&mut self) -> PResult<Command> {
        let mailbox = self.one_mailbox()?;
        self.sp()?;
        self.expect(b'(', "'(' of the entry values")?;
        let mut entries = Vec::new();
        loop {
            let entry = self.metadata_entry()?;
            self.sp()?;
            let value = match self.peek() {
                Some(b'~') => Some(self.literal()?.0.to_vec()),
                Some(b'"' | b'{') => self.string_bytes()?,
                _ if self.eat_word("NIL") => None,
                _ => return Err(format!("expected a value, found {}", self.found())),
            };
            entries.push((entry, value));
            if self.list_next()? {
                break;
            }
        }
        Ok(Command::SetMetadata { mailbox, entries })
    }

    /// `entry = astring`: a slash-separated path; RFC 5464 section 3.2: no `*`, `%`, `//`,
    /// trailing `/`, non-ASCII or control characters (BAD otherwise).
    fn metadata_entry(&mut self) -> PResult<String> {
        let entry = self.astring("metadata entry")?;
        let valid = entry.starts_with('/')
            && entry.len() > 1
            && !entry.ends_with('/')
            && !entry.contains("//")
            && entry.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'*' && b != b'%');
        if valid { Ok(entry) } else { Err(format!("invalid metadata entry name {}", echo(&entry))) }
    }

    /// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`;
    /// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`;
    /// `setquota-resource = resource-name SP resource-limit` (RFC 9208 section 7).
    fn setquota(&mut self) -> PResult<Command> {
        self.sp()?;
        let root = self.astring("quota root")?;
        self.sp()?;
        self.expect(b'(', "'(' of the resource limits")?;
        let mut limits = Vec::new();
        if !self.eat(b')') {
            loop {
                let name = self.word("resource name")?;
                self.sp()?;
                let limit = self.number(NUMBER64_MAX, "resource limit")?;
                limits.push((name, limit));
                if self.list_next()? {
                    break;
                }
            }
        }
        Ok(Command::SetQuota { root, limits })
    }

    /// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-charset
    /// 1*(SP search-key)` (RFC 5256 section 5, RFC 5267 section 3);
    /// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`;
    /// `sort-criterion = ["REVERSE" SP] sort-key`.
    fn sort(&mut self, uid: bool) -> PResult<Command> {
        self.sp()?;
        let mut ret = None;
        if self.eat_word("RETURN") {
            self.sp()?;
            let opts = self.search_return_opts()?;
            if opts.contains(&SearchReturn::Save) {
                return Err("SAVE is not a SORT return option".into());
            }
            ret = Some(opts);
            self.sp()?;
        }
        self.expect(b'(', "'(' of the sort criteria")?;
        let mut criteria = Vec::new();
        loop {
            let mut word = self.word("sort key")?;
            let reverse = word == "REVERSE";
            if reverse {
                self.sp()?;
                word = self.word("sort key")?;
            }
            let key = match word.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                _ => return Err(format!("unknown sort key {}", echo(&word))),
            };
            criteria.push(SortCriterion { reverse, key });
            if self.list_next()? {
                break;
            }
        }
        let (charset, keys) = self.charset_and_keys()?;
        Ok(Command::Sort(SortCommand { uid, ret, criteria, charset, keys }))
    }

    /// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-charset 1*(SP search-key)`
    /// (RFC 5256 section 5).
    fn thread(&mut self, uid: bool) -> PResult<Command> {
        self.sp()?;
        let word = self.word("threading algorithm")?;
        let algorithm = match word.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            _ => return Err(format!("unsupported threading algorithm {}", echo(&word))),
        };
        let (charset, keys) = self.charset_and_keys()?;
        Ok(Command::Thread { uid, algorithm, charset, keys })
    }

    /// `SP search-charset 1*(SP search-key)` of SORT and THREAD (the charset is required).
    fn charset_and_keys(&mut self) -> PResult<(String, Vec<SearchKey>)> {
        self.sp()?;
        let charset = self.astring("charset")?;
        self.lossy = !is_utf8_charset(&charset);
        self.sp()?;
        let mut keys = vec![self.search_key()?];
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        Ok((charset, keys))
    }

    /// `create = "CREATE" SP mailbox [create-params]`;
    /// `create-params = SP "(" create-param *(SP create-param) ")"` (RFC 4466);
    /// `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154).
    fn create(&mut self) -> PResult<Command> {
        let mailbox = self.one_mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.expect(b'(', "'(' of the create parameters")?;
            if !self.eat(b')') {
                loop {
                    let param = self.word("create parameter")?;
                    if param != "USE" {
                        return Err(format!("unsupported create parameter {}", echo(&param)));
                    }
                    self.sp()?;
                    self.expect(b'(', "'(' of the USE attributes")?;
                    if !self.eat(b')') {
                        loop {
                            // use-attr = "\All" / ... / use-attr-ext; use-attr-ext = "\" atom
                            self.expect(b'\\', "special-use attribute")?;
                            let attr = self.atom("special-use attribute")?;
                            special_use.push(format!("\\{}", ascii(attr)));
                            if self.list_next()? {
                                break;
                            }
                        }
                    }
                    if self.list_next()? {
                        break;
                    }
                }
            }
        }
        Ok(Command::Create { mailbox, special_use })
    }

    /// `rename = "RENAME" SP mailbox SP mailbox`.
    fn rename(&mut self) -> PResult<Command> {
        let from = self.one_mailbox()?;
        let to = self.one_mailbox()?;
        Ok(Command::Rename { from, to })
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    /// [SP list-return-opts]` (RFC 9051, RFC 5258).
    fn list(&mut self) -> PResult<Command> {
        self.sp()?;
        let mut list = ListCommand::default();
        if self.peek() == Some(b'(') {
            list.select = self.list_select_opts()?;
            self.sp()?;
        }
        list.reference = self.mailbox()?;
        self.sp()?;
        // mbox-or-pat = list-mailbox / patterns;
        // patterns = "(" list-mailbox *(SP list-mailbox) ")"
        if self.eat(b'(') {
            loop {
                list.patterns.push(self.list_mailbox()?);
                if self.list_next()? {
                    break;
                }
            }
        } else {
            list.patterns.push(self.list_mailbox()?);
        }
        if self.eat(b' ') {
            if !self.eat_word("RETURN") {
                return Err(format!("expected RETURN, found {}", self.found()));
            }
            self.sp()?;
            list.ret = self.list_return_opts()?;
        }
        Ok(Command::List(list))
    }

    /// `list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"`; options are
    /// deduplicated, RECURSIVEMATCH requires a base option (SUBSCRIBED), unknown options
    /// are BAD (RFC 5258 section 3).
    fn list_select_opts(&mut self) -> PResult<Vec<ListSelect>> {
        self.expect(b'(', "'(' of the selection options")?;
        let mut opts = Vec::new();
        if !self.eat(b')') {
            loop {
                let word = self.word("selection option")?;
                let opt = match word.as_str() {
                    "SUBSCRIBED" => ListSelect::Subscribed,
                    "REMOTE" => ListSelect::RemoteOnly,
                    "RECURSIVEMATCH" => ListSelect::RecursiveMatch,
                    "SPECIAL-USE" => ListSelect::SpecialUse,
                    _ => return Err(format!("unsupported selection option {}", echo(&word))),
                };
                if !opts.contains(&opt) {
                    opts.push(opt);
                }
                if self.list_next()? {
                    break;
                }
            }
        }
        if opts.contains(&ListSelect::RecursiveMatch) && !opts.contains(&ListSelect::Subscribed) {
            return Err("RECURSIVEMATCH requires another selection option such as SUBSCRIBED".into());
        }
        Ok(opts)
    }

    /// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"`;
    /// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option`.
    /// Duplicates are merged.
    fn list_return_opts(&mut self) -> PResult<Vec<ListReturn>> {
        self.expect(b'(', "'(' of the return options")?;
        let mut opts: Vec<ListReturn> = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let word = self.word("return option")?;
            let opt = match word.as_str() {
                "SUBSCRIBED" => ListReturn::Subscribed,
                "CHILDREN" => ListReturn::Children,
                "SPECIAL-USE" => ListReturn::SpecialUse,
                // status-option = "STATUS" SP "(" status-att *(SP status-att) ")"
                "STATUS" => {
                    self.sp()?;
                    ListReturn::Status(self.status_atts()?)
                }
                _ => return Err(format!("unsupported return option {}", echo(&word))),
            };
            match opt {
                ListReturn::Status(items) => {
                    let existing = opts.iter_mut().find_map(|o| match o {
                        ListReturn::Status(existing) => Some(existing),
                        _ => None,
                    });
                    match existing {
                        Some(existing) => {
                            for item in items {
                                if !existing.contains(&item) {
                                    existing.push(item);
                                }
                            }
                        }
                        None => opts.push(ListReturn::Status(items)),
                    }
                }
                opt if !opts.contains(&opt) => opts.push(opt),
                _ => {}
            }
            if self.list_next()? {
                return Ok(opts);
            }
        }
    }

    /// `lsub = "LSUB" SP mailbox SP list-mailbox` (RFC 3501).
    fn lsub(&mut self) -> PResult<Command> {
        let reference = self.one_mailbox()?;
        self.sp()?;
        let pattern = self.list_mailbox()?;
        Ok(Command::Lsub { reference, pattern })
    }

    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`.
    fn status(&mut self) -> PResult<Command> {
        let mailbox = self.one_mailbox()?;
        self.sp()?;
        let items = self.status_atts()?;
        Ok(Command::Status { mailbox, items })
    }

    /// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502);
    /// `append-message = [SP flag-list] [SP date-time] SP (literal / literal8)`.
    fn append(&mut self) -> PResult<Command> {
        let mailbox = self.one_mailbox()?;
        let mut messages = Vec::new();
        while self.eat(b' ') {
            let flags = if self.peek() == Some(b'(') {
                let flags = self.flag_list()?;
                self.sp()?;
                flags
            } else {
                Vec::new()
            };
            let date = if self.peek() == Some(b'"') {
                let date = self.date_time()?;
                self.sp()?;
                Some(date)
            } else {
                None
            };
            match self.peek() {
                Some(b'{' | b'~') => {
                    let (data, binary) = self.literal()?;
                    messages.push(AppendMessage { flags, date, data: data.to_vec(), binary, utf8: false });
                }
                // utf8-literal = "UTF8" SP "(" literal8 ")" (RFC 6855 section 4)
                Some(_) if self.eat_word("UTF8") => {
                    self.sp()?;
                    self.expect(b'(', "'(' of the UTF8 data")?;
                    if self.peek() != Some(b'~') {
                        return Err("UTF8 data must be a literal8".into());
                    }
                    let (data, _) = self.literal()?;
                    self.expect(b')', "')' of the UTF8 data")?;
                    messages.push(AppendMessage {
                        flags,
                        date,
                        data: data.to_vec(),
                        binary: true,
                        utf8: true,
                    });
                }
                Some(b) if is_atom_char(b) => {
                    let ext = self.take_while(is_atom_char);
                    return Err(format!("unsupported APPEND extension {}", echo(&ascii(ext))));
                }
                _ if self.at_end() => return Err("missing message literal".into()),
                _ => return Err(format!("expected message literal, found {}", self.found())),
            }
        }
        if messages.is_empty() {
            return Err("missing message literal".into());
        }
        Ok(Command::Append { mailbox, messages })
    }

    /// `search = "SEARCH" [search-return-opts] SP search-program`;
    /// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
    fn search(&mut self, uid: bool) -> PResult<Command> {
        self.sp()?;
        let mut ret = None;
        if self.eat_word("RETURN") {
            self.sp()?;
            ret = Some(self.search_return_opts()?);
            self.sp()?;
        }
        let mut charset = None;
        if self.eat_word("CHARSET") {
            self.sp()?;
            // charset = atom / quoted (RFC 9051); astring (RFC 3501).
            let name = self.astring("charset")?;
            self.lossy = !is_utf8_charset(&name);
            charset = Some(name);
            self.sp()?;
        }
        let mut keys = vec![self.search_key()?];
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        Ok(Command::Search(SearchCommand { uid, ret, charset, keys }))
    }

    /// `search-return-opts = SP "RETURN" SP "(" [search-return-opt
    /// *(SP search-return-opt)] ")"`; `search-return-opt = "MIN" / "MAX" / "ALL" /
    /// "COUNT" / "SAVE"` (extensions are BAD).
    fn search_return_opts(&mut self) -> PResult<Vec<SearchReturn>> {
        self.expect(b'(', "'(' of the return options")?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let word = self.word("return option")?;
            let opt = match word.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                _ => return Err(format!("unsupported SEARCH return option {}", echo(&word))),
            };
            if !opts.contains(&opt) {
                opts.push(opt);
            }
            if self.list_next()? {
                return Ok(opts);
            }
        }
    }

    /// One `search-key`, nesting bounded by [`MAX_DEPTH`].
    fn search_key(&mut self) -> PResult<SearchKey> {
        self.enter()?;
        let key = self.search_key_inner();
        self.leave();
        key
    }

    /// A search-key string argument (`astring`).
    fn search_string(&mut self) -> PResult<String> {
        self.sp()?;
        self.astring("search string")
    }

    /// `SP date`.
    fn search_date(&mut self) -> PResult<Date> {
        self.sp()?;
        self.date()
    }

    /// `SP number64`.
    fn search_size(&mut self) -> PResult<u64> {
        self.sp()?;
        self.number(NUMBER64_MAX, "size")
    }

    /// `SP objectid`; `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474).
    fn object_id(&mut self) -> PResult<String> {
        self.sp()?;
        let id = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if id.is_empty() || id.len() > 255 {
            return Err(format!("expected object id, found {}", self.found()));
        }
        Ok(ascii(id))
    }

    /// `SP flag-keyword`; `flag-keyword = atom`.
    fn search_keyword(&mut self) -> PResult<String> {
        self.sp()?;
        self.atom("keyword").map(ascii)
    }

    /// `search-key` of RFC 9051 section 9, plus RFC 3501's NEW, OLD and RECENT.
    fn search_key_inner(&mut self) -> PResult<SearchKey> {
        match self.peek() {
            // "(" search-key *(SP search-key) ")"
            Some(b'(') => {
                self.advance(1);
                let mut keys = Vec::new();
                loop {
                    keys.push(self.search_key()?);
                    if self.list_next()? {
                        return Ok(SearchKey::And(keys));
                    }
                }
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.sequence_set().map(SearchKey::Sequence),
            _ => {}
        }
        let word = self.word("search key")?;
        Ok(match word.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "BCC" => SearchKey::Bcc(self.search_string()?),
            "BEFORE" => SearchKey::Before(self.search_date()?),
            "BODY" => SearchKey::Body(self.search_string()?),
            "CC" => SearchKey::Cc(self.search_string()?),
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "FROM" => SearchKey::From(self.search_string()?),
            "HEADER" => {
                self.sp()?;
                let field = self.astring("header field name")?;
                SearchKey::Header(field, self.search_string()?)
            }
            "KEYWORD" => SearchKey::Keyword(self.search_keyword()?),
            "LARGER" => SearchKey::Larger(self.search_size()?),
            // objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 section 7)
            "EMAILID" => SearchKey::EmailId(self.object_id()?),
            "THREADID" => SearchKey::ThreadId(self.object_id()?),
            "SAVEDBEFORE" => SearchKey::SavedBefore(self.search_date()?),
            "SAVEDON" => SearchKey::SavedOn(self.search_date()?),
            "SAVEDSINCE" => SearchKey::SavedSince(self.search_date()?),
            "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            // search-modsequence = "MODSEQ" [SP entry-name SP entry-type-req] SP
            // mod-sequence-valzer (RFC 7162 section 7)
            "MODSEQ" => {
                self.sp()?;
                if self.peek() == Some(b'"') {
                    let entry = self.quoted()?;
                    if !entry.get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"/flags/")) {
                        return Err("MODSEQ entry name must be \"/flags/...\"".into());
                    }
                    self.sp()?;
                    let kind = self.word("entry type")?;
                    if !matches!(kind.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return Err(format!("invalid MODSEQ entry type {}", echo(&kind)));
                    }
                    self.sp()?;
                }
                SearchKey::ModSeq(self.number(NUMBER64_MAX, "mod-sequence")?)
            }
            "NEW" => SearchKey::New,
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key()?))
            }
            "OLD" => SearchKey::Old,
            "ON" => SearchKey::On(self.search_date()?),
            "OR" => {
                self.sp()?;
                let a = self.search_key()?;
                self.sp()?;
                let b = self.search_key()?;
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "SENTBEFORE" => SearchKey::SentBefore(self.search_date()?),
            "SENTON" => SearchKey::SentOn(self.search_date()?),
            "SENTSINCE" => SearchKey::SentSince(self.search_date()?),
            "SINCE" => SearchKey::Since(self.search_date()?),
            "SMALLER" => SearchKey::Smaller(self.search_size()?),
            "SUBJECT" => SearchKey::Subject(self.search_string()?),
            "TEXT" => SearchKey::Text(self.search_string()?),
            "TO" => SearchKey::To(self.search_string()?),
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNKEYWORD" => SearchKey::Unkeyword(self.search_keyword()?),
            "UNSEEN" => SearchKey::Unseen,
            _ => return Err(format!("unknown search key {}", echo(&word))),
        })
    }

    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    /// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`, with the CHANGEDSINCE and
    /// VANISHED modifiers (RFC 7162).
    fn fetch(&mut self, uid: bool) -> PResult<Command> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let items = if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                let name = self.fetch_att_name()?;
                items.push(self.fetch_att(&name)?);
                if self.list_next()? {
                    break items;
                }
            }
        } else {
            let name = self.fetch_att_name()?;
            match name.as_str() {
                "ALL" => vec![
                    FetchItem::Flags,
                    FetchItem::InternalDate,
                    FetchItem::Rfc822Size,
                    FetchItem::Envelope,
                ],
                "FAST" => vec![FetchItem::Flags, FetchItem::InternalDate, FetchItem::Rfc822Size],
                "FULL" => vec![
                    FetchItem::Flags,
                    FetchItem::InternalDate,
                    FetchItem::Rfc822Size,
                    FetchItem::Envelope,
                    FetchItem::Body,
                ],
                _ => vec![self.fetch_att(&name)?],
            }
        };
        // fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")" (RFC 4466)
        let mut modifiers = FetchModifiers::default();
        if self.eat(b' ') {
            self.expect(b'(', "'(' of the FETCH modifiers")?;
            loop {
                let word = self.word("FETCH modifier")?;
                match word.as_str() {
                    "CHANGEDSINCE" if modifiers.changed_since.is_none() => {
                        self.sp()?;
                        modifiers.changed_since = Some(self.mod_sequence_value()?);
                    }
                    "VANISHED" if uid && !modifiers.vanished => modifiers.vanished = true,
                    "VANISHED" if !uid => return Err("VANISHED is only allowed with UID FETCH".into()),
                    "CHANGEDSINCE" | "VANISHED" => return Err(format!("duplicate FETCH modifier {word}")),
                    _ => return Err(format!("unsupported FETCH modifier {}", echo(&word))),
                }
                if self.list_next()? {
                    break;
                }
            }
            if modifiers.vanished && modifiers.changed_since.is_none() {
                return Err("VANISHED requires CHANGEDSINCE".into());
            }
        }
        Ok(Command::Fetch { uid, set, items, modifiers })
    }

    /// The name part of a fetch-att (letters, digits and dots), upper-cased.
    fn fetch_att_name(&mut self) -> PResult<String> {
        let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
        if name.is_empty() {
            return Err(if self.at_end() {
                "missing fetch item".into()
            } else {
                format!("expected fetch item, found {}", self.found())
            });
        }
        Ok(ascii_upper(name))
    }

    /// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" / "BODY"
    /// ["STRUCTURE"] / "UID" / "BODY" section [partial] / "BODY.PEEK" section [partial] /
    /// "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary`, plus
    /// RFC 3501's RFC822, RFC822.HEADER and RFC822.TEXT.
    fn fetch_att(&mut self, name: &str) -> PResult<FetchItem> {
        Ok(match name {
            "ENVELOPE" => FetchItem::Envelope,
            "FLAGS" => FetchItem::Flags,
            "INTERNALDATE" => FetchItem::InternalDate,
            "RFC822.SIZE" => FetchItem::Rfc822Size,
            "RFC822" => FetchItem::Rfc822,
            "RFC822.HEADER" => FetchItem::Rfc822Header,
            "RFC822.TEXT" => FetchItem::Rfc822Text,
            "BODYSTRUCTURE" => FetchItem::BodyStructure,
            "UID" => FetchItem::Uid,
            "MODSEQ" => FetchItem::ModSeq,
            "EMAILID" => FetchItem::EmailId,
            "THREADID" => FetchItem::ThreadId,
            "SAVEDATE" => FetchItem::SaveDate,
            // fetch-att =/ "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"] (RFC 8970)
            "PREVIEW" => {
                let mut lazy = false;
                if self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(') {
                    self.advance(2);
                    loop {
                        let word = self.word("preview modifier")?;
                        if word != "LAZY" {
                            return Err(format!("unknown preview modifier {}", echo(&word)));
                        }
                        lazy = true;
                        if self.list_next()? {
                            break;
                        }
                    }
                }
                FetchItem::Preview { lazy }
            }
            "BODY" if self.peek() != Some(b'[') => FetchItem::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchItem::BodySection { peek: name == "BODY.PEEK", section, partial }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                let partial = self.partial()?;
                FetchItem::Binary { peek: name == "BINARY.PEEK", part, partial }
            }
            "BINARY.SIZE" => FetchItem::BinarySize { part: self.section_binary()? },
            "ALL" | "FAST" | "FULL" => {
                return Err(format!("{name} cannot be used inside a list"));
            }
            _ => return Err(format!("unknown fetch item {}", echo(name))),
        })
    }

    /// `section-part = nz-number *("." nz-number)`, stopping before a `.` that is not
    /// followed by a digit.
    fn section_part(&mut self) -> PResult<Vec<u32>> {
        let mut part = vec![self.nz_number("section part number")?];
        while self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.advance(1);
            part.push(self.nz_number("section part number")?);
        }
        Ok(part)
    }

    /// `section = "[" [section-spec] "]"`;
    /// `section-spec = section-msgtext / (section-part ["." section-text])`;
    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
    /// `section-text = section-msgtext / "MIME"`.
    fn section(&mut self) -> PResult<Section> {
        self.expect(b'[', "'['")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            section.part = self.section_part()?;
            if self.eat(b']') {
                return Ok(section);
            }
            self.expect(b'.', "'.' or ']' in section")?;
        }
        let word = ascii_upper(self.take_while(|b| b.is_ascii_alphabetic() || b == b'.'));
        let text = match word.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if section.part.is_empty() => {
                return Err("MIME requires a part number".into());
            }
            "MIME" => SectionText::Mime,
            "HEADER.FIELDS" => SectionText::HeaderFields(self.header_list()?),
            "HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(self.header_list()?),
            "" => return Err(format!("invalid section: unexpected {}", self.found())),
            _ => return Err(format!("invalid section {}", echo(&word))),
        };
        section.text = Some(text);
        self.expect(b']', "']' of the section")?;
        Ok(section)
    }

    /// `SP header-list`; `header-list = "(" header-fld-name *(SP header-fld-name) ")"`;
    /// `header-fld-name = astring`.
    fn header_list(&mut self) -> PResult<Vec<String>> {
        self.sp()?;
        self.expect(b'(', "'(' of the header field list")?;
        let mut fields = Vec::new();
        loop {
            fields.push(self.astring("header field name")?);
            if self.list_next()? {
                return Ok(fields);
            }
        }
    }

    /// `section-binary = "[" [section-part] "]"`.
    fn section_binary(&mut self) -> PResult<Vec<u32>> {
        self.expect(b'[', "'['")?;
        if self.eat(b']') {
            return Ok(Vec::new());
        }
        let part = self.section_part()?;
        self.expect(b']', "']' of the section")?;
        Ok(part)
    }

    /// `partial = "<" number64 "." nz-number64 ">"`, limited to 32 bits.
    fn partial(&mut self) -> PResult<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number(u64::from(u32::MAX), "partial offset")?;
        self.expect(b'.', "'.' in partial range")?;
        let count = self.nz_number("partial length")?;
        self.expect(b'>', "'>' of the partial range")?;
        let offset = u32::try_from(offset).map_err(|_| "partial offset out of range")?;
        Ok(Some(Partial { offset, count }))
    }

    /// `store = "STORE" SP sequence-set SP store-att-flags`;
    /// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list /
    /// (flag *(SP flag)))`, with the UNCHANGEDSINCE modifier (RFC 7162).
    fn store(&mut self, uid: bool) -> PResult<Command> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        // store-modifiers = SP "(" store-modifier *(SP store-modifier) ")" (RFC 4466);
        // store-modifier =/ "UNCHANGEDSINCE" SP mod-sequence-valzer (RFC 7162).
        let mut unchanged_since = None;
        if self.eat(b'(') {
            loop {
                let word = self.word("STORE modifier")?;
                match word.as_str() {
                    "UNCHANGEDSINCE" if unchanged_since.is_none() => {
                        self.sp()?;
                        unchanged_since = Some(self.number(NUMBER64_MAX, "mod-sequence")?);
                    }
                    "UNCHANGEDSINCE" => return Err("duplicate UNCHANGEDSINCE".into()),
                    _ => return Err(format!("unsupported STORE modifier {}", echo(&word))),
                }
                if self.list_next()? {
                    break;
                }
            }
            self.sp()?;
        }
        let mode = if self.eat(b'+') {
            StoreMode::Add
        } else if self.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        let item = ascii_upper(self.take_while(|b| b.is_ascii_alphabetic() || b == b'.'));
        let silent = match item.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            "" => return Err(format!("expected FLAGS, found {}", self.found())),
            _ => return Err(format!("unsupported store item {}", echo(&item))),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(Command::Store { uid, set, mode, silent, flags, unchanged_since })
    }

    /// `copy = "COPY" SP sequence-set SP mailbox`; `move = "MOVE" SP sequence-set SP
    /// mailbox` (RFC 6851).
    fn copy_move(&mut self, uid: bool, is_move: bool) -> PResult<Command> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.one_mailbox()?;
        Ok(if is_move { Command::Move { uid, set, mailbox } } else { Command::Copy { uid, set, mailbox } })
    }

    /// `uid-expunge = "EXPUNGE" SP sequence-set`.
    fn uid_expunge(&mut self) -> PResult<Command> {
        self.sp()?;
        self.sequence_set().map(Command::UidExpunge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(input: &[u8]) -> Parser<'_> {
        Parser::new(input)
    }

    fn range(start: u32, end: u32) -> SeqRange {
        SeqRange { start: SeqNum::Value(start), end: SeqNum::Value(end) }
    }

    #[test]
    fn character_classes() {
        for b in b"abcXYZ019!#$&'+,-./:;<=>?@[^_`|}~" {
            assert!(is_atom_char(*b), "{}", char::from(*b));
        }
        for b in b"(){ %*\"\\]\x00\x1f\x7f\x80\xff" {
            assert!(!is_atom_char(*b), "{b:#x}");
        }
        assert!(is_astring_char(b']'));
        assert!(!is_tag_char(b'+'));
        assert!(is_tag_char(b']'));
        assert!(is_list_char(b'%') && is_list_char(b'*') && !is_list_char(b'('));
    }

    #[test]
    fn literal_suffixes() {
        let lit = |size, sync, binary| Some(Literal { size, sync, binary });
        assert_eq!(literal_suffix(b"a LOGIN {5}"), lit(5, true, false));
        assert_eq!(literal_suffix(b"a LOGIN {5+}"), lit(5, false, false));
        assert_eq!(literal_suffix(b"a APPEND x ~{12}"), lit(12, true, true));
        assert_eq!(literal_suffix(b"a APPEND x ~{0+}"), lit(0, false, true));
        assert_eq!(literal_suffix(b"{007}"), lit(7, true, false));
        assert_eq!(literal_suffix(b" (\\Draft) {2}"), lit(2, true, false));
        assert_eq!(
            literal_suffix(b"a APPEND x {9223372036854775807}"),
            lit(9_223_372_036_854_775_807, true, false)
        );
        // Beyond number64: reported as u64::MAX so that the size limit rejects it.
        assert_eq!(literal_suffix(b"a APPEND x {9223372036854775808}"), lit(u64::MAX, true, false));
        assert_eq!(literal_suffix(b"a APPEND x {99999999999999999999999999+}"), lit(u64::MAX, false, false));
        for none in [
            &b""[..],
            b"a NOOP",
            b"{}",
            b"{+}",
            b"a {5",
            b"a 5}",
            b"a {5}x",
            b"a {5 }",
            b"a {-5}",
            b"a {5++}",
            b"a {+5}",
            b"}",
            b"a {5}\r",
        ] {
            assert_eq!(literal_suffix(none), None, "{:?}", String::from_utf8_lossy(none));
        }
    }

    #[test]
    fn tag_and_name() {
        let some = |t: &str, n: &str| Some((t.to_owned(), n.to_owned()));
        assert_eq!(peek_tag_and_name(b"a1 append INBOX {5}"), some("a1", "APPEND"));
        assert_eq!(peek_tag_and_name(b"x uid fetch 1:* FLAGS"), some("x", "UID FETCH"));
        assert_eq!(peek_tag_and_name(b"x UID"), some("x", "UID"));
        assert_eq!(peek_tag_and_name(b"x UID "), some("x", "UID"));
        assert_eq!(peek_tag_and_name(b"x"), some("x", ""));
        assert_eq!(peek_tag_and_name(b"x "), some("x", ""));
        assert_eq!(peek_tag_and_name(b"]tag] NOOP"), some("]tag]", "NOOP"));
        assert_eq!(peek_tag_and_name(b""), None);
        assert_eq!(peek_tag_and_name(b" NOOP"), None);
        assert_eq!(peek_tag_and_name(b"a+b NOOP"), None);
        assert_eq!(peek_tag_and_name(b"a(b NOOP"), None);
        assert_eq!(peek_tag_and_name(b"a\"b NOOP"), None);
        assert_eq!(peek_tag_and_name(b"\xc3\xa4 NOOP"), None);
    }

    #[test]
    fn quoted_strings() {
        let q = |s: &[u8]| parser(s).quoted();
        assert_eq!(q(b"\"\"").as_deref(), Ok(&b""[..]));
        assert_eq!(q(b"\"a b\"").as_deref(), Ok(&b"a b"[..]));
        assert_eq!(q(b"\"a\\\"b\\\\c\"").as_deref(), Ok(&b"a\"b\\c"[..]));
        assert_eq!(q("\"\u{43e}\u{442}\"".as_bytes()).as_deref(), Ok("\u{43e}\u{442}".as_bytes()));
        assert!(q(b"\"abc").is_err());
        assert!(q(b"\"abc\r\n\"").is_err());
        assert!(q(b"\"a\\nb\"").is_err());
        assert!(q(b"\"a\\").is_err());
        assert!(q(b"\"a\x00b\"").is_err());
        assert!(q(b"abc").is_err());
        // The cursor stops right after the closing quote.
        let mut p = parser(b"\"x\" rest");
        assert!(p.quoted().is_ok());
        assert_eq!(p.rest(), b" rest");
    }

    #[test]
    fn literals() {
        let mut p = parser(b"{3}\r\nabc rest");
        assert_eq!(p.literal(), Ok((&b"abc"[..], false)));
        assert_eq!(p.rest(), b" rest");
        let mut p = parser(b"{3+}\r\na\r\n");
        assert_eq!(p.literal(), Ok((&b"a\r\n"[..], false)));
        assert!(p.at_end());
        let mut p = parser(b"~{2}\r\n\x00\x01");
        assert_eq!(p.literal(), Ok((&b"\x00\x01"[..], true)));
        let mut p = parser(b"{0}\r\n");
        assert_eq!(p.literal(), Ok((&b""[..], false)));
        assert!(parser(b"{5}\r\nabc").literal().is_err());
        assert!(parser(b"{3}abc").literal().is_err());
        assert!(parser(b"{3}\nabc").literal().is_err());
        assert!(parser(b"{}\r\n").literal().is_err());
        assert!(parser(b"{3").literal().is_err());
        assert!(parser(b"{99999999999999999999}\r\n").literal().is_err());
        assert!(parser(b"{9223372036854775807}\r\nabc").literal().is_err());
        // As a string: no literal8, no NUL.
        assert!(parser(b"~{1}\r\na").string_literal().is_err());
        assert!(parser(b"{1}\r\n\x00").string_literal().is_err());
    }

    #[test]
    fn astrings() {
        let a = |s: &[u8]| parser(s).astring("string");
        assert_eq!(a(b"INBOX"), Ok("INBOX".into()));
        assert_eq!(a(b"foo]bar baz"), Ok("foo]bar".into()));
        assert_eq!(a(b"~peter/mail"), Ok("~peter/mail".into()));
        assert_eq!(a(b"\"a b\""), Ok("a b".into()));
        assert_eq!(a(b"{3}\r\na b"), Ok("a b".into()));
        assert_eq!(a("{4}\r\n\u{43e}\u{442}".as_bytes()), Ok("\u{43e}\u{442}".into()));
        assert!(a(b"{2}\r\n\xc3\x28").is_err());
        assert!(a(b"\"\xff\"").is_err());
        assert!(a(b"").is_err());
        assert!(a(b"(x)").is_err());
        assert!(a(b"%").is_err());
        // list-mailbox allows the wildcards.
        assert_eq!(parser(b"foo/%/*").list_mailbox(), Ok("foo/%/*".into()));
        // Lossy conversion only when asked for.
        let mut p = parser(b"{2}\r\n\xe0\xe1");
        p.lossy = true;
        assert_eq!(p.astring("string"), Ok("\u{fffd}\u{fffd}".into()));
    }

    #[test]
    fn numbers() {
        assert_eq!(parser(b"0").number(u64::from(u32::MAX), "n"), Ok(0));
        assert_eq!(parser(b"4294967295").number(u64::from(u32::MAX), "n"), Ok(4_294_967_295));
        assert!(parser(b"4294967296").number(u64::from(u32::MAX), "n").is_err());
        assert!(parser(b"99999999999999999999999").number(NUMBER64_MAX, "n").is_err());
        assert_eq!(parser(b"9223372036854775807").number(NUMBER64_MAX, "n"), Ok(NUMBER64_MAX));
        assert!(parser(b"9223372036854775808").number(NUMBER64_MAX, "n").is_err());
        assert!(parser(b"x").number(NUMBER64_MAX, "n").is_err());
        assert_eq!(parser(b"17").nz_number("n"), Ok(17));
        assert!(parser(b"0").nz_number("n").is_err());
        assert!(parser(b"01").nz_number("n").is_err());
        assert_eq!(parse_decimal(b""), Some(0));
        assert_eq!(parse_decimal(b"1a"), None);
    }

    #[test]
    fn sequence_sets() {
        let set = |s: &[u8]| parser(s).sequence_set();
        assert_eq!(
            set(b"1,3:5,7:*,*"),
            Ok(SequenceSet::Ranges(vec![
                range(1, 1),
                range(3, 5),
                SeqRange { start: SeqNum::Value(7), end: SeqNum::Star },
                SeqRange { start: SeqNum::Star, end: SeqNum::Star },
            ]))
        );
        assert_eq!(set(b"5:2"), Ok(SequenceSet::Ranges(vec![range(5, 2)])));
        assert_eq!(set(b"4294967295"), Ok(SequenceSet::Ranges(vec![range(u32::MAX, u32::MAX)])));
        assert_eq!(set(b"$"), Ok(SequenceSet::Saved));
        assert_eq!(set(b"1:2)"), Ok(SequenceSet::Ranges(vec![range(1, 2)])));
        assert_eq!(set(b"1 x"), Ok(SequenceSet::Ranges(vec![range(1, 1)])));
        for bad in [
            &b""[..],
            b"0",
            b"0:5",
            b"1:0",
            b"4294967296",
            b"1,",
            b",1",
            b"1:",
            b":1",
            b"1::2",
            b"1,,2",
            b"1x",
            b"$1",
            b"$,1",
            b"1,$",
            b"**",
            b"-1",
            b"1.5",
        ] {
            assert!(set(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn dates() {
        let date = |s: &[u8]| parser(s).date();
        let d = |year, month, day| Ok(Date { year, month, day });
        assert_eq!(date(b"1-Feb-1994"), d(1994, 2, 1));
        assert_eq!(date(b"01-feb-1994"), d(1994, 2, 1));
        assert_eq!(date(b"\"28-OCT-2006\""), d(2006, 10, 28));
        assert_eq!(date(b"29-Feb-2024"), d(2024, 2, 29));
        assert_eq!(date(b"29-Feb-2000"), d(2000, 2, 29));
        assert_eq!(date(b"31-Dec-9999"), d(9999, 12, 31));
        for bad in [
            &b"29-Feb-2023"[..],
            b"29-Feb-1900",
            b"31-Apr-2020",
            b"0-Jan-2020",
            b"32-Jan-2020",
            b"001-Jan-2020",
            b"1-Foo-2020",
            b"1-Jan-20",
            b"1 Jan 2020",
            b"\"1-Jan-2020",
            b"Jan-1-2020",
            b"",
        ] {
            assert!(date(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // A date is followed by a delimiter; the caller rejects what remains.
        let mut p = parser(b"1-Jan-20201");
        assert_eq!(p.date(), d(2020, 1, 1));
        assert_eq!(p.rest(), b"1");
    }

    #[test]
    fn date_times() {
        let dt = |s: &[u8]| parser(s).date_time();
        assert_eq!(dt(b"\"17-Jul-1996 02:44:25 -0700\""), Ok(837_596_665));
        assert_eq!(dt(b"\"07-Feb-1994 21:52:25 +0000\""), Ok(760_657_945));
        assert_eq!(dt(b"\" 7-Feb-1994 21:52:25 +0000\""), Ok(760_657_945));
        assert_eq!(dt(b"\"7-Feb-1994 21:52:25 +0000\""), Ok(760_657_945));
        assert_eq!(dt(b"\"29-Feb-2024 00:00:00 +0530\""), Ok(1_709_145_000));
        assert_eq!(dt(b"\"31-Dec-1969 23:59:59 +0000\""), Ok(-1));
        assert_eq!(dt(b"\"01-Jan-1970 00:00:00 +0000\""), Ok(0));
        for bad in [
            &b"17-Jul-1996 02:44:25 -0700"[..],
            b"\"17-Jul-1996 02:44:25 -0700",
            b"\"17-Jul-1996 02:44:25\"",
            b"\"17-Jul-1996 2:44:25 -0700\"",
            b"\"17-Jul-1996 24:00:00 -0700\"",
            b"\"17-Jul-1996 02:60:00 -0700\"",
            b"\"17-Jul-1996 02:44:61 -0700\"",
            b"\"17-Jul-1996 02:44:25 -0760\"",
            b"\"17-Jul-1996 02:44:25 0700\"",
            b"\"17-Jul-1996 02:44:25 -070\"",
            b"\"30-Feb-1996 02:44:25 -0700\"",
            b"\"  7-Feb-1994 21:52:25 +0000\"",
            b"\"17-Jul-1996  02:44:25 -0700\"",
            b"\"17-Jul-96 02:44:25 -0700\"",
            b"\"\"",
        ] {
            assert!(dt(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn flags() {
        let list = |s: &[u8]| parser(s).flag_list();
        assert_eq!(list(b"()"), Ok(vec![]));
        assert_eq!(
            list(b"(\\Seen \\deleted $Forwarded foo \\X-Ext)"),
            Ok(vec![
                "\\Seen".to_owned(),
                "\\deleted".into(),
                "$Forwarded".into(),
                "foo".into(),
                "\\X-Ext".into()
            ])
        );
        for bad in [
            &b"("[..],
            b"(\\Seen",
            b"(\\Seen )",
            b"( \\Seen)",
            b"(\\)",
            b"(\\*)",
            b"(\\Recent)",
            b"(\\recent)",
            b"(\"quoted\")",
            b"(a  b)",
            b"\\Seen",
        ] {
            assert!(list(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn base64() {
        assert!(is_base64(b"dGVzdAB0ZXN0AHRlc3Q="));
        assert!(is_base64(b"AAAA"));
        assert!(is_base64(b"AA=="));
        assert!(is_base64(b"a+/A"));
        assert!(!is_base64(b""));
        assert!(!is_base64(b"AAA"));
        assert!(!is_base64(b"A==="));
        assert!(!is_base64(b"A=AA"));
        assert!(!is_base64(b"AA-_"));
    }

    #[test]
    fn nesting_limit() {
        let nested = |depth: usize| {
            let mut s = String::from("a SEARCH ");
            s.push_str(&"(".repeat(depth));
            s.push_str("ALL");
            s.push_str(&")".repeat(depth));
            s
        };
        assert!(parse_command(nested(MAX_DEPTH - 1).as_bytes()).is_ok());
        let err = parse_command(nested(MAX_DEPTH).as_bytes()).unwrap_err();
        assert!(err.message.contains("too deeply nested"), "{err}");
        let err = parse_command(nested(100_000).as_bytes()).unwrap_err();
        assert_eq!(err.tag.as_deref(), Some("a"));
        assert!(err.message.contains("too deeply nested"), "{err}");
    }

    #[test]
    fn error_messages_are_single_line_ascii() {
        for input in [
            &b"a FETCH 1 (BODY[\xff])"[..],
            b"a SELECT \x01",
            b"a LOGIN \"abc",
            b"a \x7fFOO",
            b"a STORE 1 FLAGS (\\Seen\r\n",
        ] {
            let err = parse_command(input).unwrap_err();
            assert!(err.message.bytes().all(|b| (0x20..0x7f).contains(&b)), "{:?}", err.message);
        }
    }
}
