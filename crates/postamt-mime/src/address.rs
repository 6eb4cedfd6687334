//! Address lists (RFC 5322 section 3.4) parsed into the four parts of an IMAP address
//! structure: display name, source route, mailbox and host (RFC 9051 section 7.5.2,
//! ENVELOPE).
//!
//! The parser accepts the obsolete syntax of RFC 5322 section 4.4 (routes, CFWS around
//! dots, missing commas) and never rejects a field: whatever cannot be parsed becomes an
//! address with `MISSING_MAILBOX` / `MISSING_DOMAIN` / `SYNTAX_ERROR` placeholders, the
//! convention UW-IMAP and Dovecot use so that clients still see something. Display names
//! stay raw: RFC 2047 encoded words are not decoded (RFC 9051 leaves that to the client).

use crate::lexer::{Ret, Tokenizer};

/// One element of an address list. Groups (RFC 5322 section 3.4) are flattened as in
/// RFC 9051: a start marker with only `mailbox` (the group name) set, the members, then an
/// end marker with nothing set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub domain: Option<Vec<u8>>,
}

/// Parse an address-list field value.
pub(crate) fn parse(value: &[u8]) -> Vec<Address> {
    let mut p = Parser {
        t: Tokenizer::for_addresses(value),
        out: Vec::new(),
        cur: Address::default(),
        buf: Vec::new(),
    };
    if p.t.skip_lwsp() > Ret::End {
        p.address_list();
    }
    p.out
}

struct Parser<'a> {
    t: Tokenizer<'a>,
    out: Vec<Address>,
    /// The address being built.
    cur: Address,
    /// Scratch buffer for phrases and address parts.
    buf: Vec<u8>,
}

impl Parser<'_> {
    fn push(&mut self) {
        self.out.push(std::mem::take(&mut self.cur));
    }

    /// Push the current address, filling in placeholders for missing parts.
    fn push_fixed(&mut self) {
        if self.cur.mailbox.is_none() {
            self.cur.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if self.cur.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.cur.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        self.push();
    }

    /// `address-list = address *("," address)`.
    fn address_list(&mut self) {
        loop {
            if self.address() == Ret::End {
                break;
            }
            if !self.t.next_is(b',') {
                break;
            }
            self.t.bump();
            let r = self.t.skip_lwsp();
            if r <= Ret::End {
                if r == Ret::Invalid {
                    // Trailing garbage (an unterminated comment).
                    self.push_fixed();
                }
                break;
            }
        }
    }

    /// `address = mailbox / group`.
    fn address(&mut self) -> Ret {
        let start = self.t.pos;
        let r = self.group();
        if r != Ret::Invalid {
            return r;
        }
        self.t.pos = start;
        self.mailbox()
    }

    /// `group = display-name ":" [group-list] ";" [CFWS]`. `Invalid` only when this is not
    /// a group at all; a group with broken members still reports success.
    fn group(&mut self) -> Ret {
        self.buf.clear();
        if self.t.phrase(&mut self.buf) <= Ret::End || !self.t.next_is(b':') {
            return Ret::Invalid;
        }
        self.t.bump();
        let mut r = self.t.skip_lwsp();
        self.cur.mailbox = Some(self.buf.clone());
        self.push();
        if r > Ret::End && !self.t.next_is(b';') {
            loop {
                // Broken members are kept as they are; go on with the next one.
                let _ = self.mailbox();
                if !self.t.next_is(b',') {
                    break;
                }
                self.t.bump();
                if self.t.skip_lwsp() <= Ret::End {
                    r = Ret::Invalid;
                    break;
                }
            }
        }
        if r >= Ret::End {
            if self.t.next_is(b';') {
                self.t.bump();
                r = self.t.skip_lwsp();
            } else {
                r = Ret::Invalid;
            }
        }
        self.push();
        if r == Ret::End { Ret::End } else { Ret::More }
    }

    /// `mailbox = name-addr / addr-spec`; always produces one address.
    fn mailbox(&mut self) -> Ret {
        let start = self.t.pos;
        let mut r = self.name_addr();
        if r == Ret::Invalid {
            self.t.pos = start;
            let (ret, invalid) = self.addr_spec();
            r = ret;
            // A lone word is more likely a name than a mailbox without a domain.
            if invalid && self.cur.name.is_none() && self.cur.mailbox.is_some() && self.cur.domain.is_none() {
                self.cur.name = self.cur.mailbox.take();
            }
        }
        self.push_fixed();
        r
    }

    /// `name-addr = [display-name] angle-addr`.
    fn name_addr(&mut self) -> Ret {
        self.buf.clear();
        if self.t.phrase(&mut self.buf) <= Ret::End || !self.t.next_is(b'<') {
            return Ret::Invalid;
        }
        self.cur.name = (!self.buf.is_empty()).then(|| self.buf.clone());
        if self.angle_addr() == Ret::Invalid {
            self.cur.domain = Some(b"SYNTAX_ERROR".to_vec());
        }
        if self.t.at_end() { Ret::End } else { Ret::More }
    }

    /// `angle-addr = "<" [obs-route] addr-spec ">"`; `<>` is accepted as empty.
    fn angle_addr(&mut self) -> Ret {
        self.t.bump();
        if self.t.skip_lwsp() <= Ret::End {
            return Ret::Invalid;
        }
        if self.t.next_is(b'@') {
            if self.route() > Ret::End && self.t.next_is(b':') {
                self.t.bump();
            } else {
                self.cur.route = Some(b"INVALID_ROUTE".to_vec());
                if self.t.at_end() {
                    return Ret::Invalid;
                }
            }
            if self.t.skip_lwsp() <= Ret::End {
                return Ret::Invalid;
            }
        }
        if !self.t.next_is(b'>') {
            if self.local_part() <= Ret::End {
                return Ret::Invalid;
            }
            if self.t.next_is(b'@') && self.domain() <= Ret::End {
                return Ret::Invalid;
            }
        }
        if !self.t.next_is(b'>') {
            return Ret::Invalid;
        }
        self.t.bump();
        self.t.skip_lwsp()
    }

    /// `obs-route = obs-domain-list ":"` (RFC 5322 section 4.4), kept as `@a,@b`.
    fn route(&mut self) -> Ret {
        self.buf.clear();
        loop {
            if self.t.at_end() {
                return Ret::End;
            }
            if !self.t.next_is(b'@') {
                break;
            }
            if !self.buf.is_empty() {
                self.buf.push(b',');
            }
            self.buf.push(b'@');
            let r = self.t.domain(&mut self.buf);
            if r <= Ret::End {
                return r;
            }
            while self.t.skip_lwsp() > Ret::End && self.t.next_is(b',') {
                self.t.bump();
            }
        }
        self.cur.route = Some(self.buf.clone());
        Ret::More
    }

    /// `local-part = dot-atom / quoted-string / obs-local-part`.
    fn local_part(&mut self) -> Ret {
        self.buf.clear();
        let r = if self.t.next_is(b'"') {
            self.t.quoted_string(&mut self.buf)
        } else {
            self.t.dot_atom(&mut self.buf)
        };
        if r == Ret::Invalid {
            return Ret::Invalid;
        }
        self.cur.mailbox = Some(self.buf.clone());
        r
    }

    /// `domain` after `@`.
    fn domain(&mut self) -> Ret {
        self.buf.clear();
        let r = self.t.domain(&mut self.buf);
        if r == Ret::Invalid {
            return Ret::Invalid;
        }
        self.cur.domain = Some(self.buf.clone());
        r
    }

    /// `addr-spec = local-part "@" domain`, with a trailing comment as display name.
    /// Returns the result and whether the syntax was invalid.
    fn addr_spec(&mut self) -> (Ret, bool) {
        self.t.clear_comment();
        let quoted = self.t.next_is(b'"');
        let mut r = self.local_part();
        let mut invalid = r <= Ret::End;
        let mut domain_parsed = false;
        if r != Ret::End && self.t.next_is(b'@') {
            domain_parsed = true;
            let r2 = self.domain();
            if r2 <= Ret::End {
                r = r2;
            }
        }
        if !self.t.last_comment().is_empty() {
            self.cur.name = Some(self.t.last_comment().to_vec());
        } else if !domain_parsed {
            // A word without @domain: if more words follow, it was a display name.
            self.buf.push(b' ');
            let len = self.buf.len();
            let _ = self.t.phrase(&mut self.buf);
            if self.buf.len() != len {
                self.cur.mailbox = None;
                self.cur.name = Some(self.buf.clone());
            } else if !quoted {
                self.cur.domain = Some(Vec::new());
            }
            invalid = true;
            r = Ret::Invalid;
        }
        (r, invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(value: &str) -> Vec<[Option<String>; 4]> {
        let s = |v: &Option<Vec<u8>>| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
        parse(value.as_bytes())
            .iter()
            .map(|a| [s(&a.name), s(&a.route), s(&a.mailbox), s(&a.domain)])
            .collect()
    }

    fn a(
        name: Option<&str>,
        route: Option<&str>,
        mailbox: Option<&str>,
        domain: Option<&str>,
    ) -> [Option<String>; 4] {
        [name.map(Into::into), route.map(Into::into), mailbox.map(Into::into), domain.map(Into::into)]
    }

    #[test]
    fn common_forms() {
        assert_eq!(
            show(
                "\"Joe Q. Public\" <john.q.public@example.com>, Mary Smith <mary@x.test>, jdoe@one.test (John Doe)"
            ),
            [
                a(Some("Joe Q. Public"), None, Some("john.q.public"), Some("example.com")),
                a(Some("Mary Smith"), None, Some("mary"), Some("x.test")),
                a(Some("John Doe"), None, Some("jdoe"), Some("one.test")),
            ]
        );
    }

    #[test]
    fn groups_and_routes() {
        assert_eq!(
            show("A Group:Ed Jones <c@a.test>,joe@where.test;, <@r1,@r2:x@y>"),
            [
                a(None, None, Some("A Group"), None),
                a(Some("Ed Jones"), None, Some("c"), Some("a.test")),
                a(None, None, Some("joe"), Some("where.test")),
                a(None, None, None, None),
                a(None, Some("@r1,@r2"), Some("x"), Some("y")),
            ]
        );
        assert_eq!(
            show("undisclosed-recipients:;"),
            [a(None, None, Some("undisclosed-recipients"), None), a(None, None, None, None)]
        );
    }

    #[test]
    fn broken_addresses_get_placeholders() {
        assert_eq!(show("Whomever"), [a(None, None, Some("Whomever"), Some("MISSING_DOMAIN"))]);
        assert_eq!(
            show("Someone Else"),
            [a(Some("Someone Else"), None, Some("MISSING_MAILBOX"), Some("MISSING_DOMAIN"))]
        );
        assert_eq!(show("Bad <a@>"), [a(Some("Bad"), None, Some("a"), Some("SYNTAX_ERROR"))]);
        assert!(show("").is_empty());
    }
}
