//! The selected state: the session's view of one mailbox (message sequence numbers to UIDs,
//! flags as last reported), keeping it in step with the store, and the commands that change
//! messages (STORE, EXPUNGE, COPY, MOVE, CLOSE).
//!
//! Sequence numbers exist only here. Changes made by other sessions reach the view through
//! [`Session::sync`], which runs at the points RFC 9051 allows (section 7.5.1): new messages
//! and flag changes after any command, expunges only when no FETCH, STORE or SEARCH is being
//! answered. Until then an expunged message stays in the view as a ghost, so sequence
//! numbers keep meaning what the client thinks.
//!
//! The view remembers the MODSEQ it is in step with; a sync asks the store only for what
//! changed since (`Store::changes_since`, an index range scan), so its cost follows the
//! changes, not the mailbox size. The same MODSEQs serve CONDSTORE and QRESYNC (RFC 7162):
//! HIGHESTMODSEQ, `SELECT ... (QRESYNC ...)` with `VANISHED (EARLIER)`, `VANISHED` instead
//! of `EXPUNGE`, `STORE ... (UNCHANGEDSINCE n)` with `[MODIFIED]`.

use std::collections::{BTreeSet, HashSet};

use postamt_store::{FlagMode, FlagOp, Flags, Mailbox, MessageMeta, ModSeq, StoreError, Uid};

use super::{Fatal, Outcome, Session, bad, no, ok};
use crate::command::{Qresync, SelectParams, SeqNum, SequenceSet, StoreMode};
use crate::response;

pub(crate) struct Msg {
    pub meta: MessageMeta,
    /// Expunged by someone else, not yet reported.
    pub ghost: bool,
}

pub(crate) struct View {
    pub mailbox: Mailbox,
    pub read_only: bool,
    pub msgs: Vec<Msg>,
    /// Keywords announced in FLAGS so far.
    pub keywords: BTreeSet<String>,
    /// UIDs that are \Recent in this session (IMAP4rev1).
    pub recent: HashSet<Uid>,
    /// The result saved by SEARCH RETURN (SAVE) (RFC 5182), as UIDs.
    pub saved: Vec<Uid>,
    /// Events arrived that may concern this mailbox.
    pub dirty: bool,
    /// The mailbox's HIGHESTMODSEQ the view is in step with: changes above it are unseen.
    pub modseq: ModSeq,
    /// While ghosts wait to be reported: a MODSEQ below all of their expunges.
    pub ghost_floor: Option<ModSeq>,
}

impl View {
    pub fn max_uid(&self) -> Uid {
        self.msgs.last().map_or(0, |m| m.meta.uid)
    }

    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.meta.uid).ok()
    }

    /// The messages QRESYNC reports (RFC 7162 section 3.2.5.1): the known UIDs the client
    /// gave, else `1:<UIDNEXT - 1>`; and, with sequence match data (section 3.2.5.2), the UID
    /// at or below which the client knows every expunge.
    fn qresync_scope(&self, q: &Qresync, uidnext: Uid) -> (impl Fn(Uid) -> bool + use<>, Uid) {
        let known = q.known_uids.clone();
        let last = uidnext.saturating_sub(1);
        let in_scope = move |uid: Uid| match &known {
            Some(set) => set_contains(set, uid, Uid::MAX),
            None => uid <= last,
        };
        let mut boundary = 0;
        if let Some((seqs, uids)) = &q.seq_match {
            // Both sets are in ascending order; pairs are matched until the first mismatch.
            for (seq, uid) in expand(seqs).zip(expand(uids)) {
                match self.msgs.get((seq as usize).wrapping_sub(1)) {
                    Some(m) if m.meta.uid == uid => boundary = uid,
                    _ => break,
                }
            }
        }
        (in_scope, boundary)
    }

    /// Resolves a sequence set (message numbers, or UIDs when `uid`) to view indices,
    /// ascending and without duplicates. Message numbers beyond the mailbox are an error
    /// (RFC 9051 section 9 `seq-number`); UIDs that do not exist are skipped.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, String> {
        let ranges = match set {
            SequenceSet::Saved => {
                let mut out: Vec<usize> = self.saved.iter().filter_map(|&u| self.index_of(u)).collect();
                out.sort_unstable();
                out.dedup();
                return Ok(out);
            }
            SequenceSet::Ranges(r) => r,
        };
        let mut out = Vec::new();
        if uid {
            let max = self.max_uid();
            for r in ranges {
                let value = |n: SeqNum| match n {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => max,
                };
                let (a, b) = (value(r.start), value(r.end));
                let (lo, hi) = (a.min(b), a.max(b));
                let start = self.msgs.partition_point(|m| m.meta.uid < lo);
                let end = self.msgs.partition_point(|m| m.meta.uid <= hi);
                out.extend(start..end);
                // "n:*" always includes the last message (RFC 9051 section 6.4.8).
                if (matches!(r.start, SeqNum::Star) || matches!(r.end, SeqNum::Star))
                    && let Some(last) = self.msgs.len().checked_sub(1)
                {
                    out.push(last);
                }
            }
        } else {
            let count = self.msgs.len() as u32;
            for r in ranges {
                let value = |n: SeqNum| -> Result<u32, String> {
                    match n {
                        SeqNum::Value(v) if v <= count => Ok(v),
                        SeqNum::Value(v) => Err(format!("Invalid message number {v} (mailbox has {count})")),
                        SeqNum::Star if count > 0 => Ok(count),
                        SeqNum::Star => Err("No messages in mailbox".to_string()),
                    }
                };
                let (a, b) = (value(r.start)?, value(r.end)?);
                let (lo, hi) = (a.min(b), a.max(b));
                out.extend((lo as usize - 1)..(hi as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Whether `n` is in a sequence set of plain numbers; `*` stands for `star`.
pub(crate) fn set_contains(set: &SequenceSet, n: u32, star: u32) -> bool {
    let SequenceSet::Ranges(ranges) = set else { return false };
    let value = |s: SeqNum| match s {
        SeqNum::Value(v) => v,
        SeqNum::Star => star,
    };
    ranges.iter().any(|r| {
        let (a, b) = (value(r.start), value(r.end));
        a.min(b) <= n && n <= a.max(b)
    })
}

/// The numbers of a sequence set in the order given (ranges ascending), at most
/// [`MAX_EXPANDED`] of them: enough for any real sequence match data, bounded for the rest.
fn expand(set: &SequenceSet) -> impl Iterator<Item = u32> + '_ {
    let ranges: &[crate::command::SeqRange] = match set {
        SequenceSet::Ranges(r) => r,
        SequenceSet::Saved => &[],
    };
    ranges
        .iter()
        .flat_map(|r| match (r.start, r.end) {
            (SeqNum::Value(a), SeqNum::Value(b)) => a.min(b)..=a.max(b),
            #[allow(clippy::reversed_empty_ranges)]
            _ => 1..=0,
        })
        .take(MAX_EXPANDED)
}

/// Bound on the numbers taken from QRESYNC sequence match data.
const MAX_EXPANDED: usize = 100_000;

/// Parses flag names into system flags and keywords (RFC 9051 section 2.3.2).
pub(crate) fn parse_flags(names: &[String]) -> Result<(Flags, Vec<String>), String> {
    let mut flags = Flags::NONE;
    let mut keywords = Vec::new();
    for name in names {
        if let Some(system) = name.strip_prefix('\\') {
            let flag = response::SYSTEM_FLAGS.iter().find(|(_, n)| n[1..].eq_ignore_ascii_case(system));
            match flag {
                Some((f, _)) => flags = flags.union(*f),
                None if system.eq_ignore_ascii_case("Recent") => {
                    return Err("\\Recent cannot be changed".to_string());
                }
                None => return Err(format!("Unknown system flag {name}")),
            }
        } else if !keywords.iter().any(|k: &String| k.eq_ignore_ascii_case(name)) {
            keywords.push(name.clone());
        }
    }
    Ok((flags, keywords))
}

impl Session<'_> {
    pub(crate) fn permanent_flags(&self) -> String {
        let mut out = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
        if let Some(view) = &self.selected {
            for k in &view.keywords {
                out.push(' ');
                out.push_str(k);
            }
        }
        out
    }

    fn announce_flags(&mut self) {
        let flags = self.permanent_flags();
        self.untagged(&format!("FLAGS ({flags})"));
        self.untagged(&format!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"));
    }

    /// Announces keywords not yet in FLAGS (before any FETCH shows them).
    fn learn_keywords<'k>(&mut self, keywords: impl IntoIterator<Item = &'k String>) {
        let Some(view) = self.selected.as_mut() else { return };
        let mut new = false;
        for k in keywords {
            if !view.keywords.contains(k) {
                view.keywords.insert(k.clone());
                new = true;
            }
        }
        if new {
            self.announce_flags();
        }
    }

    /// Writes `* n FETCH (UID u FLAGS (...))` for one view index; once CONDSTORE is
    /// enabled always with UID and MODSEQ (RFC 7162 sections 3.1 and 3.2.4). Without
    /// `flags`, only UID and MODSEQ (a STORE .SILENT under CONDSTORE, section 3.1.3).
    pub(crate) fn write_flags_fetch(&mut self, index: usize, with_uid: bool) {
        self.write_fetch_update(index, with_uid, true);
    }

    fn write_fetch_update(&mut self, index: usize, with_uid: bool, flags: bool) {
        let Some(view) = &self.selected else { return };
        let Some(msg) = view.msgs.get(index).map(|m| &m.meta) else { return };
        let recent = !self.rev2 && view.recent.contains(&msg.uid);
        let mut line = format!("* {} FETCH (", index + 1).into_bytes();
        let mut items = Vec::new();
        if with_uid || self.condstore {
            items.push(format!("UID {}", msg.uid).into_bytes());
        }
        if flags {
            let mut list = b"FLAGS ".to_vec();
            response::flag_list(&mut list, msg.flags, &msg.keywords, recent);
            items.push(list);
        }
        if self.condstore {
            items.push(format!("MODSEQ ({})", msg.modseq).into_bytes());
        }
        line.extend_from_slice(&items.join(&b' '));
        line.extend_from_slice(b")\r\n");
        self.io.wbuf.extend_from_slice(&line);
    }

    pub(crate) async fn select(
        &mut self,
        raw: &str,
        read_only: bool,
        params: SelectParams,
    ) -> Result<Outcome, Fatal> {
        // RFC 7162 section 3.2.5: QRESYNC before ENABLE QRESYNC is BAD.
        if params.qresync.is_some() && !self.qresync {
            return Ok(bad("QRESYNC is not enabled"));
        }
        // RFC 7162 section 3.2.11 (and RFC 9051): the boundary between the two mailboxes'
        // responses, whatever the client enabled.
        if self.selected.take().is_some() {
            self.untagged("OK [CLOSED] Previous mailbox is now closed");
        }
        if params.condstore || params.qresync.is_some() {
            self.condstore = true;
        }
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return Ok(o),
        };
        let Some(account) = self.account.clone() else { return Ok(bad("Log in first")) };
        let store = self.svc.store.clone();
        let mailbox = match store.mailbox_by_name(account.id, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(no("[NONEXISTENT] Mailbox does not exist")),
            Err(e) => return Ok(self.store_error(e)),
        };
        // The messages and the counters of one snapshot, so that the view's MODSEQ is exact.
        let state = match store.changes_since(account.id, mailbox.id, 0).await {
            Ok(s) => s,
            Err(e) => return Ok(self.store_error(e)),
        };
        let metas = state.changed;
        let mut recent = HashSet::new();
        if !read_only && !self.rev2 {
            match store.claim_recent(account.id, mailbox.id).await {
                Ok(from) => recent.extend(metas.iter().map(|m| m.uid).filter(|&u| u >= from)),
                Err(e) => return Ok(self.store_error(e)),
            }
        }
        let keywords: BTreeSet<String> = metas.iter().flat_map(|m| m.keywords.iter().cloned()).collect();
        let first_unseen = metas.iter().position(|m| !m.flags.contains(Flags::SEEN));
        let view = View {
            mailbox: mailbox.clone(),
            read_only,
            msgs: metas.into_iter().map(|meta| Msg { meta, ghost: false }).collect(),
            keywords,
            recent,
            saved: Vec::new(),
            dirty: false,
            modseq: state.highestmodseq,
            ghost_floor: None,
        };
        let (exists, recent_count) = (view.msgs.len(), view.recent.len());
        self.selected = Some(view);
        self.announce_flags();
        self.untagged(&format!("{exists} EXISTS"));
        if !self.rev2 {
            self.untagged(&format!("{recent_count} RECENT"));
            if let Some(i) = first_unseen {
                self.untagged(&format!("OK [UNSEEN {}] First unseen", i + 1));
            }
        }
        self.untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", state.uidvalidity));
        self.untagged(&format!("OK [UIDNEXT {}] Predicted next UID", state.uidnext));
        // RFC 8474 section 4.2.
        self.untagged(&format!("OK [MAILBOXID ({})] Ok", super::mailboxes::mailbox_id(&mailbox)));
        // RFC 7162 section 3.1.2.1: after a CONDSTORE enabling command, every SELECT.
        if self.condstore {
            self.untagged(&format!("OK [HIGHESTMODSEQ {}] Highest", state.highestmodseq));
        }
        if self.rev2 {
            let mut line = b"* LIST (".to_vec();
            line.extend_from_slice(self.mailbox_attributes(&mailbox).await.join(" ").as_bytes());
            line.extend_from_slice(b") \"/\" ");
            let encoded = self.encode_name(&mailbox.name);
            response::astring(&mut line, &encoded, true);
            line.extend_from_slice(b"\r\n");
            self.io.wbuf.extend_from_slice(&line);
        }
        if let Some(q) = params.qresync.filter(|q| q.uidvalidity == state.uidvalidity) {
            self.qresync_report(&q, state.uidnext).await?;
        }
        Ok(if read_only { ok("[READ-ONLY] EXAMINE completed") } else { ok("[READ-WRITE] SELECT completed") })
    }

    /// What a QRESYNC select reports (RFC 7162 section 3.2.5.1): the expunges since the
    /// client's MODSEQ as one `VANISHED (EARLIER)`, then a FETCH with UID, FLAGS and MODSEQ
    /// for every message changed since (new ones included), all within the client's scope.
    /// (With a different UIDVALIDITY nothing is reported, section 3.2.5.)
    async fn qresync_report(&mut self, q: &Qresync, uidnext: Uid) -> Result<(), Fatal> {
        let Some(view) = self.selected.as_ref() else { return Ok(()) };
        let (in_scope, boundary) = view.qresync_scope(q, uidnext);
        let mailbox = view.mailbox.id;
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(()) };
        let changes = match self.svc.store.changes_since(account, mailbox, q.modseq).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read changes for QRESYNC");
                return Ok(());
            }
        };
        let vanished: Vec<Uid> =
            changes.vanished.into_iter().filter(|&u| u > boundary && in_scope(u)).collect();
        if !vanished.is_empty() {
            self.untagged(&format!("VANISHED (EARLIER) {}", uid_set(&vanished)));
        }
        let Some(view) = self.selected.as_ref() else { return Ok(()) };
        let changed: Vec<usize> = view
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.meta.modseq > q.modseq && in_scope(m.meta.uid))
            .map(|(i, _)| i)
            .collect();
        for i in changed {
            self.write_flags_fetch(i, true);
            self.maybe_flush().await?;
        }
        Ok(())
    }

    /// Brings the view in step with the store and reports what changed: flag changes as
    /// FETCH, new messages as EXISTS (and RECENT for IMAP4rev1), expunges as EXPUNGE (or
    /// VANISHED under QRESYNC) when `allow_expunge`. Only what changed since the view's
    /// MODSEQ is read.
    pub(crate) async fn sync(&mut self, allow_expunge: bool) -> Result<(), Fatal> {
        self.drain_events();
        let Some(view) = self.selected.as_ref() else { return Ok(()) };
        let has_ghosts = view.msgs.iter().any(|m| m.ghost);
        if !(view.dirty || allow_expunge && has_ghosts) {
            return Ok(());
        }
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(()) };
        let (mailbox, read_only, since) = (view.mailbox.id, view.read_only, view.modseq);
        let changes = if view.dirty {
            match self.svc.store.changes_since(account, mailbox, since).await {
                Ok(c) => Some(c),
                // The mailbox is gone (deleted or renamed away): every message is expunged.
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot refresh the selected mailbox");
                    return Ok(());
                }
            }
        } else {
            // Only ghosts to report: nothing to read.
            Some(postamt_store::MailboxChanges { highestmodseq: since, ..Default::default() })
        };
        let Some(view) = self.selected.as_mut() else { return Ok(()) };
        view.dirty = false;
        let mut changed = Vec::new();
        let mut new: Vec<MessageMeta> = Vec::new();
        match changes {
            None => view.msgs.iter_mut().for_each(|m| m.ghost = true),
            Some(changes) => {
                view.modseq = view.modseq.max(changes.highestmodseq);
                for uid in changes.vanished {
                    if let Some(i) = view.index_of(uid) {
                        view.msgs[i].ghost = true;
                        // Every expunge read now has a MODSEQ above `since`.
                        view.ghost_floor.get_or_insert(since);
                    }
                }
                let max = view.max_uid();
                for meta in changes.changed {
                    match view.index_of(meta.uid) {
                        Some(i) => {
                            let msg = &mut view.msgs[i];
                            if meta.modseq != msg.meta.modseq {
                                let flags_differ =
                                    meta.flags != msg.meta.flags || meta.keywords != msg.meta.keywords;
                                msg.meta = meta;
                                if flags_differ && !msg.ghost {
                                    changed.push(i);
                                }
                            }
                        }
                        None if meta.uid > max => new.push(meta),
                        // Below the view's last UID and not in it: cannot happen for a view in
                        // step; never renumber behind the client's back.
                        None => {}
                    }
                }
            }
        }

        let keywords: Vec<String> = changed
            .iter()
            .flat_map(|&i| view.msgs[i].meta.keywords.clone())
            .chain(new.iter().flat_map(|m| m.keywords.clone()))
            .collect();
        self.learn_keywords(keywords.iter());
        for i in changed {
            self.write_flags_fetch(i, true);
        }
        if allow_expunge {
            self.report_ghosts();
        }
        if !new.is_empty() {
            let mut recent_from = Uid::MAX;
            if !self.rev2
                && !read_only
                && let Ok(from) = self.svc.store.claim_recent(account, mailbox).await
            {
                recent_from = from;
            }
            let Some(view) = self.selected.as_mut() else { return Ok(()) };
            for meta in new {
                if meta.uid >= recent_from {
                    view.recent.insert(meta.uid);
                }
                view.msgs.push(Msg { meta, ghost: false });
            }
            let (exists, recent) = (view.msgs.len(), view.recent.len());
            self.untagged(&format!("{exists} EXISTS"));
            if !self.rev2 {
                self.untagged(&format!("{recent} RECENT"));
            }
        }
        Ok(())
    }

    /// Removes ghosts from the view, writing EXPUNGE for each (RFC 9051 section 7.5.1: each
    /// EXPUNGE renumbers the messages after it, so numbers are adjusted as we go), or one
    /// `VANISHED` with their UIDs once QRESYNC is enabled (RFC 7162 section 3.2.10.2).
    fn report_ghosts(&mut self) {
        let qresync = self.qresync;
        let Some(view) = self.selected.as_mut() else { return };
        let mut lines = String::new();
        let mut removed = 0;
        let mut i = 0;
        let mut gone = Vec::new();
        view.msgs.retain(|m| {
            i += 1;
            if m.ghost {
                gone.push(m.meta.uid);
                if !qresync {
                    lines.push_str(&format!("* {} EXPUNGE\r\n", i - removed));
                }
                removed += 1;
                false
            } else {
                true
            }
        });
        for uid in &gone {
            view.recent.remove(uid);
        }
        view.ghost_floor = None;
        if qresync && !gone.is_empty() {
            lines = format!("* VANISHED {}\r\n", uid_set(&gone));
        }
        self.io.wbuf.extend_from_slice(lines.as_bytes());
    }

    /// RFC 7162 section 3.2: while expunges wait (a FETCH, STORE or SEARCH was answered),
    /// the MODSEQs sent may be above theirs; a QRESYNC client that stopped now and resumed
    /// from the highest MODSEQ it saw would miss them. So it is told a HIGHESTMODSEQ below
    /// them.
    pub(crate) fn report_modseq_floor(&mut self) {
        if !self.qresync {
            return;
        }
        let floor =
            self.selected.as_ref().filter(|v| v.msgs.iter().any(|m| m.ghost)).and_then(|v| v.ghost_floor);
        if let Some(floor) = floor {
            self.untagged(&format!("OK [HIGHESTMODSEQ {floor}] Expunges pending"));
        }
    }

    /// CLOSE (removing \Deleted messages silently, RFC 9051 6.4.2) or UNSELECT (RFC 3691).
    pub(crate) async fn close(&mut self, expunge: bool) -> Outcome {
        let Some(view) = self.selected.take() else { return bad("No mailbox selected") };
        if expunge && !view.read_only {
            let uids: Vec<Uid> = view
                .msgs
                .iter()
                .filter(|m| m.meta.flags.contains(Flags::DELETED))
                .map(|m| m.meta.uid)
                .collect();
            if let (false, Some(account)) = (uids.is_empty(), &self.account)
                && let Err(e) = self.svc.store.expunge(account.id, view.mailbox.id, &uids).await
            {
                return self.store_error(e);
            }
        }
        if expunge { ok("CLOSE completed") } else { ok("UNSELECT completed") }
    }

    /// EXPUNGE, or UID EXPUNGE of a set (RFC 9051 6.4.3, 6.4.9).
    pub(crate) async fn expunge(&mut self, set: Option<SequenceSet>) -> Result<Outcome, Fatal> {
        let Some(view) = self.selected.as_ref() else { return Ok(bad("No mailbox selected")) };
        if view.read_only {
            return Ok(no("[READ-ONLY] Mailbox is read-only"));
        }
        let candidates: Vec<usize> = match &set {
            Some(set) => match view.resolve(set, true) {
                Ok(c) => c,
                Err(e) => return Ok(bad(e)),
            },
            None => (0..view.msgs.len()).collect(),
        };
        let uids: Vec<Uid> = candidates
            .into_iter()
            .map(|i| &view.msgs[i])
            .filter(|m| !m.ghost && m.meta.flags.contains(Flags::DELETED))
            .map(|m| m.meta.uid)
            .collect();
        let mailbox = view.mailbox.id;
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(bad("Log in first")) };
        if !uids.is_empty() {
            let removed = match self.svc.store.expunge(account, mailbox, &uids).await {
                Ok(r) => r,
                Err(e) => return Ok(self.store_error(e)),
            };
            if let Some(view) = self.selected.as_mut() {
                for uid in removed {
                    if let Some(i) = view.index_of(uid) {
                        view.msgs[i].ghost = true;
                    }
                }
                view.dirty = true;
            }
            // Reports the expunges and brings the view's MODSEQ past them.
            self.sync(true).await?;
            // RFC 7162 sections 3.2.7 and 3.2.9: the new HIGHESTMODSEQ under QRESYNC.
            if self.qresync
                && let Some(view) = &self.selected
            {
                return Ok(ok(format!("[HIGHESTMODSEQ {}] EXPUNGE completed", view.modseq)));
            }
        }
        Ok(ok("EXPUNGE completed"))
    }

    /// STORE (RFC 9051 section 6.4.6), with UNCHANGEDSINCE (RFC 7162 section 3.1.3).
    pub(crate) async fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        names: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<Outcome, Fatal> {
        let Some(view) = self.selected.as_ref() else { return Ok(bad("No mailbox selected")) };
        if view.read_only {
            return Ok(no("[READ-ONLY] Mailbox is read-only"));
        }
        let indices = match view.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(bad(e)),
        };
        let (flags, keywords) = match parse_flags(names) {
            Ok(f) => f,
            Err(e) => return Ok(bad(e)),
        };
        let uids: Vec<Uid> =
            indices.iter().map(|&i| &view.msgs[i]).filter(|m| !m.ghost).map(|m| m.meta.uid).collect();
        let mailbox = view.mailbox.id;
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(bad("Log in first")) };
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let mode = match mode {
            StoreMode::Replace => FlagMode::Replace,
            StoreMode::Add => FlagMode::Add,
            StoreMode::Remove => FlagMode::Remove,
        };
        let op = FlagOp { mode, flags, keywords: keywords.clone() };
        let result = if uids.is_empty() {
            postamt_store::FlagsStored::default()
        } else {
            match self.svc.store.store_flags_if(account, mailbox, &uids, op, unchanged_since).await {
                Ok(c) => c,
                Err(e) => return Ok(self.store_error(e)),
            }
        };
        if mode != FlagMode::Remove {
            self.learn_keywords(result.changed.iter().flat_map(|m| m.keywords.iter()));
        }
        let mut changed = HashSet::new();
        if let Some(view) = self.selected.as_mut() {
            for meta in result.changed {
                if let Some(i) = view.index_of(meta.uid) {
                    changed.insert(i);
                    view.msgs[i].meta = meta;
                }
            }
        }
        let modified: HashSet<Uid> = result.modified.iter().copied().collect();
        let any_ghost = self.selected.as_ref().is_some_and(|v| indices.iter().any(|&i| v.msgs[i].ghost));
        let mut failed = Vec::new();
        for &i in &indices {
            let Some(msg) = self.selected.as_ref().and_then(|v| v.msgs.get(i)) else { continue };
            if msg.ghost {
                continue;
            }
            if modified.contains(&msg.meta.uid) {
                // Reported in [MODIFIED]; the sync after the command sends its current flags
                // (RFC 7162 section 3.1.3, example 10).
                failed.push(if uid { msg.meta.uid } else { i as u32 + 1 });
                continue;
            }
            if !silent {
                self.write_flags_fetch(i, uid);
            } else if self.condstore && (unchanged_since.is_some() || changed.contains(&i)) {
                // RFC 7162 section 3.1.3: the new MODSEQ even for .SILENT.
                self.write_fetch_update(i, uid, false);
            }
        }
        if !failed.is_empty() {
            let code = format!("[MODIFIED {}]", uid_set(&failed));
            return Ok(if any_ghost {
                no(format!("{code} Some of the messages no longer exist"))
            } else {
                ok(format!("{code} Conditional STORE failed"))
            });
        }
        if any_ghost {
            return Ok(no("[EXPUNGEISSUED] Some of the messages were expunged by another session"));
        }
        Ok(ok("STORE completed"))
    }

    /// COPY (RFC 9051 6.4.7) and MOVE (RFC 6851), with COPYUID (RFC 4315).
    pub(crate) async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        target: &str,
        mv: bool,
    ) -> Result<Outcome, Fatal> {
        let name = match self.mailbox_name(target) {
            Ok(n) => n,
            Err(o) => return Ok(o),
        };
        let Some(view) = self.selected.as_ref() else { return Ok(bad("No mailbox selected")) };
        if mv && view.read_only {
            return Ok(no("[READ-ONLY] Mailbox is read-only"));
        }
        let indices = match view.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(bad(e)),
        };
        let uids: Vec<Uid> =
            indices.iter().map(|&i| &view.msgs[i]).filter(|m| !m.ghost).map(|m| m.meta.uid).collect();
        let from = view.mailbox.id;
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(bad("Log in first")) };
        let store = self.svc.store.clone();
        let to = match store.mailbox_by_name(account, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(no("[TRYCREATE] Target mailbox does not exist")),
            Err(e) => return Ok(self.store_error(e)),
        };
        if uids.is_empty() {
            return Ok(ok(if mv { "MOVE completed" } else { "COPY completed" }));
        }
        if mv && to.id == from {
            return Ok(no("[CANNOT] Cannot move messages into the same mailbox"));
        }
        let result = if mv {
            store.move_messages(account, from, &uids, to.id).await
        } else {
            store.copy_messages(account, from, &uids, to.id).await
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return Ok(self.store_error(e)),
        };
        let code = if result.mapping.is_empty() {
            String::new()
        } else {
            let src: Vec<Uid> = result.mapping.iter().map(|p| p.0).collect();
            let dst: Vec<Uid> = result.mapping.iter().map(|p| p.1).collect();
            format!("[COPYUID {} {} {}] ", result.uidvalidity, uid_set(&src), uid_set(&dst))
        };
        if !mv {
            return Ok(ok(format!("{code}COPY completed")));
        }
        // RFC 6851 section 4.3: COPYUID in an untagged OK before the EXPUNGEs.
        if !code.is_empty() {
            self.untagged(&format!("OK {code}Moved"));
        }
        if let Some(view) = self.selected.as_mut() {
            for (src, _) in &result.mapping {
                if let Some(i) = view.index_of(*src) {
                    view.msgs[i].ghost = true;
                }
            }
        }
        self.report_ghosts();
        Ok(ok("MOVE completed"))
    }
}

/// Compresses sorted-or-not UIDs into a sequence set string like `1:3,7`, keeping order
/// (COPYUID pairs source and target sets element by element, RFC 4315 section 3).
pub(crate) fn uid_set(uids: &[Uid]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[9, 3, 4]), "9,3:4");
    }

    #[test]
    fn flags() {
        let (f, k) =
            parse_flags(&["\\Seen".into(), "\\deleted".into(), "$Label".into(), "$label".into()]).unwrap();
        assert_eq!(f, Flags::SEEN.union(Flags::DELETED));
        assert_eq!(k, vec!["$Label".to_string()]);
        assert!(parse_flags(&["\\Recent".into()]).is_err());
        assert!(parse_flags(&["\\Bogus".into()]).is_err());
    }
}
