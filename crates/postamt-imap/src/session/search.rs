//! SEARCH (RFC 9051 section 6.4.4) with ESEARCH result options (RFC 4731) and SEARCHRES
//! (RFC 5182). Flags, sizes and dates come from the view; SUBJECT, FROM, TO, CC, BCC, the
//! SENT* dates and THREADID from each body's cached [`Summary`]; HEADER, BODY and TEXT parse
//! the message. Header values are decoded (RFC 2047) and body text has its transfer encoding
//! undone, then both are matched as case-insensitive substrings.

use postamt_mime::{Message, Summary};
use postamt_store::{Flags, MessageMeta};

use super::fetch::{email_id, thread_id};
use super::selected::uid_set;
use super::{Fatal, Outcome, Session, bad, no, ok};
use crate::command::{Date, SearchCommand, SearchKey, SearchReturn};
use crate::response::days_from_civil;

fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn days(date: &Date) -> i64 {
    days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day))
}

fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// [`contains`] for a haystack that is lower-cased already (the summary's search fields).
fn contains_lower(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.contains(&needle.to_lowercase())
}

/// What evaluating a search key needs beyond the view, from least to most expensive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    /// The body's cached summary (one cache read per 256 messages).
    Summary,
    /// The message itself (a file read and a parse per message).
    Message,
}

fn need(key: &SearchKey) -> Need {
    match key {
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::To(_)
        | SearchKey::ThreadId(_) => Need::Summary,
        SearchKey::Body(_) | SearchKey::Header(..) | SearchKey::Text(_) => Need::Message,
        SearchKey::Not(k) => need(k),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::And(keys) => keys.iter().map(need).max().unwrap_or(Need::Nothing),
        _ => Need::Nothing,
    }
}

/// What a candidate's content is known as: nothing (only view keys are asked), its summary,
/// or the parsed message (which answers everything).
#[derive(Clone, Copy)]
enum Content<'a> {
    None,
    Summary(&'a Summary),
    Message(&'a Message<'a>),
}

struct Candidate<'a> {
    seq: u32,
    meta: &'a MessageMeta,
    recent: bool,
    /// Sequence-set keys resolved beforehand, per key identity.
    in_sets: &'a (dyn Fn(&SearchKey, u32, u32) -> bool + Sync),
}

fn eval(key: &SearchKey, c: &Candidate<'_>, content: Content<'_>) -> bool {
    let flags = c.meta.flags;
    let has_keyword = |k: &str| c.meta.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    let msg = match content {
        Content::Message(m) => Some(m),
        _ => None,
    };
    let subject = |needle: &str| match content {
        Content::Message(m) => m.header_text("Subject").iter().any(|v| contains(v, needle)),
        Content::Summary(s) => s.search.subject.iter().any(|v| contains_lower(v, needle)),
        Content::None => false,
    };
    let address = |name: &str, needle: &str| match content {
        Content::Message(m) => contains(&m.address_text(name), needle),
        Content::Summary(s) => {
            let text = match name {
                "From" => &s.search.from,
                "To" => &s.search.to,
                "Cc" => &s.search.cc,
                _ => &s.search.bcc,
            };
            contains_lower(text, needle)
        }
        Content::None => false,
    };
    // The calendar day in the sender's own zone (RFC 9051 section 6.4.4).
    let sent = || {
        let date = match content {
            Content::Message(m) => m.sent_date_with_zone(),
            Content::Summary(s) => s.search.sent,
            Content::None => None,
        };
        date.map(|(secs, zone)| day_of(secs + i64::from(zone) * 60))
    };
    match key {
        SearchKey::All => true,
        SearchKey::Answered => flags.contains(Flags::ANSWERED),
        SearchKey::Deleted => flags.contains(Flags::DELETED),
        SearchKey::Draft => flags.contains(Flags::DRAFT),
        SearchKey::Flagged => flags.contains(Flags::FLAGGED),
        SearchKey::Seen => flags.contains(Flags::SEEN),
        SearchKey::Unanswered => !flags.contains(Flags::ANSWERED),
        SearchKey::Undeleted => !flags.contains(Flags::DELETED),
        SearchKey::Undraft => !flags.contains(Flags::DRAFT),
        SearchKey::Unflagged => !flags.contains(Flags::FLAGGED),
        SearchKey::Unseen => !flags.contains(Flags::SEEN),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !flags.contains(Flags::SEEN),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(k) => has_keyword(k),
        SearchKey::Unkeyword(k) => !has_keyword(k),
        SearchKey::Larger(n) => c.meta.size > *n,
        SearchKey::Smaller(n) => c.meta.size < *n,
        SearchKey::Before(d) => day_of(c.meta.internal_date) < days(d),
        SearchKey::On(d) => day_of(c.meta.internal_date) == days(d),
        SearchKey::Since(d) => day_of(c.meta.internal_date) >= days(d),
        SearchKey::SentBefore(d) => sent().is_some_and(|s| s < days(d)),
        SearchKey::SentOn(d) => sent().is_some_and(|s| s == days(d)),
        SearchKey::SentSince(d) => sent().is_some_and(|s| s >= days(d)),
        SearchKey::Subject(s) => subject(s),
        // RFC 9051: HEADER with an empty string matches every message with that field.
        SearchKey::Header(name, s) => msg.is_some_and(|m| {
            let values = m.header_text(name);
            !values.is_empty() && values.iter().any(|v| contains(v, s))
        }),
        SearchKey::From(s) => address("From", s),
        SearchKey::To(s) => address("To", s),
        SearchKey::Cc(s) => address("Cc", s),
        SearchKey::Bcc(s) => address("Bcc", s),
        SearchKey::Body(s) => msg.is_some_and(|m| contains(&m.body_text(), s)),
        SearchKey::Text(s) => msg.is_some_and(|m| {
            contains(&m.body_text(), s)
                || m.section(&[], postamt_mime::SectionText::Header)
                    .is_some_and(|h| contains(&decode_header_block(&h, m), s))
        }),
        SearchKey::Uid(_) | SearchKey::Sequence(_) => (c.in_sets)(key, c.seq, c.meta.uid),
        SearchKey::ModSeq(n) => c.meta.modseq >= *n,
        SearchKey::EmailId(id) => email_id(&c.meta.blob) == *id,
        SearchKey::ThreadId(id) => match content {
            Content::Message(m) => thread_id(&m.sort_keys(), &c.meta.blob) == *id,
            Content::Summary(s) => thread_id(&s.keys, &c.meta.blob) == *id,
            Content::None => false,
        },
        // RFC 8514 section 5: the save date's day, as for BEFORE/ON/SINCE.
        SearchKey::SavedBefore(d) => day_of(c.meta.savedate) < days(d),
        SearchKey::SavedOn(d) => day_of(c.meta.savedate) == days(d),
        SearchKey::SavedSince(d) => day_of(c.meta.savedate) >= days(d),
        SearchKey::SaveDateSupported => true,
        SearchKey::Not(k) => !eval(k, c, content),
        SearchKey::Or(a, b) => eval(a, c, content) || eval(b, c, content),
        SearchKey::And(keys) => keys.iter().all(|k| eval(k, c, content)),
    }
}

/// The header block as searchable text: raw, plus every field's decoded value.
fn decode_header_block(raw: &[u8], msg: &Message<'_>) -> String {
    let mut text = String::from_utf8_lossy(raw).into_owned();
    for name in ["Subject", "From", "To", "Cc", "Bcc", "Reply-To", "Sender"] {
        for v in msg.header_text(name) {
            text.push('\n');
            text.push_str(&v);
        }
    }
    text
}

/// Whether the search uses the MODSEQ criterion (RFC 7162 section 3.1.5).
pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// Collects the sequence-set keys of a search, so they are resolved once.
fn collect_sets<'k>(key: &'k SearchKey, out: &mut Vec<&'k SearchKey>) {
    match key {
        SearchKey::Uid(_) | SearchKey::Sequence(_) => out.push(key),
        SearchKey::Not(k) => collect_sets(k, out),
        SearchKey::Or(a, b) => {
            collect_sets(a, out);
            collect_sets(b, out);
        }
        SearchKey::And(keys) => keys.iter().for_each(|k| collect_sets(k, out)),
        _ => {}
    }
}

/// One matching message: sequence number, UID and its view index.
#[derive(Clone, Copy)]
pub(crate) struct Hit {
    pub seq: u32,
    pub uid: u32,
    pub index: usize,
}

impl Session<'_> {
    /// Evaluates search keys over the selected mailbox: the matches in mailbox order. `Err`
    /// is the response for a bad sequence set. Shared by SEARCH, SORT and THREAD.
    pub(crate) async fn matching(&mut self, keys: &[SearchKey]) -> Result<Vec<Hit>, Outcome> {
        let root = SearchKey::And(keys.to_vec());
        if uses_modseq(&root) {
            self.enable_condstore();
        }
        let Some(view) = self.selected.as_ref() else { return Err(bad("No mailbox selected")) };

        // Resolve each sequence-set key to a sorted list of view indices.
        let mut set_keys = Vec::new();
        collect_sets(&root, &mut set_keys);
        let mut resolved: Vec<(&SearchKey, Vec<usize>)> = Vec::new();
        for key in set_keys {
            let r = match key {
                SearchKey::Uid(set) => view.resolve(set, true),
                SearchKey::Sequence(set) => view.resolve(set, false),
                _ => continue,
            };
            match r {
                Ok(indices) => resolved.push((key, indices)),
                Err(e) => return Err(bad(e)),
            }
        }
        let in_sets = |key: &SearchKey, seq: u32, _uid: u32| {
            resolved
                .iter()
                .find(|(k, _)| std::ptr::eq(*k, key))
                .is_some_and(|(_, indices)| indices.binary_search(&(seq as usize - 1)).is_ok())
        };

        let need = need(&root);
        let live: Vec<usize> = (0..view.msgs.len()).filter(|&i| !view.msgs[i].ghost).collect();
        let mut matched = Vec::new();
        for chunk in live.chunks(256) {
            let summaries = if need == Need::Summary {
                let blobs: Vec<_> = chunk.iter().map(|&i| view.msgs[i].meta.blob.clone()).collect();
                self.summaries(&blobs).await
            } else {
                Vec::new()
            };
            for (n, &i) in chunk.iter().enumerate() {
                let msg = &view.msgs[i];
                let candidate = Candidate {
                    seq: i as u32 + 1,
                    meta: &msg.meta,
                    recent: !self.rev2 && view.recent.contains(&msg.meta.uid),
                    in_sets: &in_sets,
                };
                let hit = match need {
                    Need::Nothing => eval(&root, &candidate, Content::None),
                    // A body whose summary cannot be had (unreadable) matches no content key.
                    Need::Summary => summaries
                        .get(n)
                        .and_then(Option::as_ref)
                        .is_some_and(|s| eval(&root, &candidate, Content::Summary(s))),
                    Need::Message => match self.svc.store.read_blob(&msg.meta.blob).await {
                        Ok(raw) => eval(&root, &candidate, Content::Message(&Message::parse(&raw))),
                        Err(_) => false,
                    },
                };
                if hit {
                    matched.push(Hit { seq: i as u32 + 1, uid: msg.meta.uid, index: i });
                }
            }
        }
        Ok(matched)
    }

    /// The highest MODSEQ of the given matches (RFC 7162 section 3.1.6).
    pub(crate) fn highest_modseq_of(&self, hits: &[Hit]) -> u64 {
        let Some(view) = self.selected.as_ref() else { return 0 };
        hits.iter().filter_map(|h| view.msgs.get(h.index)).map(|m| m.meta.modseq).max().unwrap_or(0)
    }

    pub(crate) async fn search(&mut self, tag: &str, cmd: SearchCommand) -> Result<Outcome, Fatal> {
        // RFC 6855 section 3: after ENABLE UTF8=ACCEPT, a charset conflicts.
        if self.utf8_accept && cmd.charset.is_some() {
            return Ok(bad("No CHARSET after ENABLE UTF8=ACCEPT"));
        }
        if let Some(charset) = &cmd.charset
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("US-ASCII")
        {
            return Ok(no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"));
        }
        let hits = match self.matching(&cmd.keys).await {
            Ok(h) => h,
            Err(o) => return Ok(o),
        };
        // RFC 7162 sections 3.1.5, 3.1.10: with MODSEQ, the highest MODSEQ of the result.
        let modseq =
            (cmd.keys.iter().any(uses_modseq) && !hits.is_empty()).then(|| self.highest_modseq_of(&hits));
        let matched: Vec<(u32, u32)> = hits.iter().map(|h| (h.seq, h.uid)).collect();
        let numbers: Vec<u32> = matched.iter().map(|&(s, u)| if cmd.uid { u } else { s }).collect();
        let uids: Vec<u32> = matched.iter().map(|&(_, u)| u).collect();

        match cmd.ret {
            None if !self.rev2 => {
                let mut line = String::from("SEARCH");
                for n in &numbers {
                    line.push(' ');
                    line.push_str(&n.to_string());
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.untagged(&line);
            }
            ret => {
                let mut opts = ret.unwrap_or_default();
                if opts.is_empty() {
                    opts.push(SearchReturn::All);
                }
                let save = opts.contains(&SearchReturn::Save);
                let (min, max) = (numbers.iter().min().copied(), numbers.iter().max().copied());
                if save {
                    // RFC 5182 section 2.1: with only MIN and/or MAX, those are saved.
                    let only_minmax = !opts.contains(&SearchReturn::All)
                        && !opts.contains(&SearchReturn::Count)
                        && (opts.contains(&SearchReturn::Min) || opts.contains(&SearchReturn::Max));
                    let saved: Vec<u32> = if only_minmax {
                        let mut s = vec![];
                        if opts.contains(&SearchReturn::Min)
                            && let Some(first) = matched.first()
                        {
                            s.push(first.1);
                        }
                        if opts.contains(&SearchReturn::Max)
                            && let Some(last) = matched.last()
                        {
                            s.push(last.1);
                        }
                        s
                    } else {
                        uids.clone()
                    };
                    if let Some(view) = self.selected.as_mut() {
                        view.saved = saved;
                    }
                }
                let reported: Vec<&SearchReturn> =
                    opts.iter().filter(|o| **o != SearchReturn::Save).collect();
                if !reported.is_empty() {
                    let mut line = format!("ESEARCH (TAG \"{tag}\")");
                    if cmd.uid {
                        line.push_str(" UID");
                    }
                    for opt in reported {
                        match opt {
                            SearchReturn::Min => {
                                if let Some(m) = min {
                                    line.push_str(&format!(" MIN {m}"));
                                }
                            }
                            SearchReturn::Max => {
                                if let Some(m) = max {
                                    line.push_str(&format!(" MAX {m}"));
                                }
                            }
                            SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                            SearchReturn::All => {
                                if !numbers.is_empty() {
                                    let mut sorted = numbers.clone();
                                    sorted.sort_unstable();
                                    line.push_str(&format!(" ALL {}", uid_set(&sorted)));
                                }
                            }
                            SearchReturn::Save => {}
                        }
                    }
                    if let Some(m) = modseq {
                        line.push_str(&format!(" MODSEQ {m}"));
                    }
                    self.untagged(&line);
                }
            }
        }
        Ok(ok("SEARCH completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postamt_store::BlobId;

    const MSG: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.org>\r\n\
        To: Team <team@example.com>\r\n\
        Cc: cc@example.net\r\n\
        Bcc: hidden@example.net\r\n\
        Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus Berlin\r\n\
        Date: Fri, 27 Nov 2026 00:30:00 +0100\r\n\
        Message-ID: <id1@example.org>\r\n\
        \r\n\
        Hello.\r\n";

    /// Every key the summary answers gives the same result from the summary as from the
    /// parsed message.
    #[test]
    fn summary_agrees_with_message() {
        let blob = BlobId::of(MSG);
        let meta = MessageMeta {
            uid: 1,
            blob: blob.clone(),
            size: MSG.len() as u64,
            internal_date: 0,
            flags: Flags::NONE,
            keywords: vec![],
            modseq: 1,
            savedate: 0,
        };
        let no_sets = |_: &SearchKey, _: u32, _: u32| false;
        let c = Candidate { seq: 1, meta: &meta, recent: false, in_sets: &no_sets };
        let summary = Summary::compute(MSG);
        let parsed = Message::parse(MSG);
        let thread = thread_id(&parsed.sort_keys(), &blob);
        let day = |day| Date { year: 2026, month: 11, day };
        let keys = [
            SearchKey::Subject("GRÜßE".into()),
            SearchKey::Subject("berlin".into()),
            SearchKey::Subject("".into()),
            SearchKey::Subject("munich".into()),
            SearchKey::From("JÜRGEN".into()),
            SearchKey::From("example.org".into()),
            SearchKey::From("team".into()),
            SearchKey::To("team@".into()),
            SearchKey::Cc("cc@example".into()),
            SearchKey::Bcc("hidden".into()),
            SearchKey::Bcc("juergen".into()),
            // Sent on the 27th in the sender's zone (the 26th in UTC).
            SearchKey::SentOn(day(27)),
            SearchKey::SentOn(day(26)),
            SearchKey::SentBefore(day(27)),
            SearchKey::SentSince(day(27)),
            SearchKey::ThreadId(thread.clone()),
            SearchKey::ThreadId("Tother".into()),
            SearchKey::Not(Box::new(SearchKey::Subject("munich".into()))),
        ];
        let expected = [
            true, true, true, false, true, true, false, true, true, true, false, true, false, false, true,
            true, false, true,
        ];
        for (key, want) in keys.iter().zip(expected) {
            assert_eq!(need(key), Need::Summary, "{key:?}");
            assert_eq!(eval(key, &c, Content::Message(&parsed)), want, "message: {key:?}");
            assert_eq!(eval(key, &c, Content::Summary(&summary)), want, "summary: {key:?}");
        }
        // No Subject field at all: SUBJECT "" matches nothing, either way.
        let bare = Summary::compute(b"From: a@b\r\n\r\nx");
        let key = SearchKey::Subject("".into());
        assert!(!eval(&key, &c, Content::Summary(&bare)));
        assert!(!eval(&key, &c, Content::Message(&Message::parse(b"From: a@b\r\n\r\nx"))));
        assert_eq!(need(&SearchKey::Body("x".into())), Need::Message);
        assert_eq!(
            need(&SearchKey::Or(Box::new(SearchKey::Seen), Box::new(SearchKey::To("x".into())))),
            Need::Summary
        );
        assert_eq!(need(&SearchKey::Seen), Need::Nothing);
    }
}
