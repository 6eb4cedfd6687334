//! FETCH (RFC 9051 section 6.4.5) and the rendering of its data items (section 7.5.2).
//!
//! ENVELOPE, BODY and BODYSTRUCTURE come from the body's [`Summary`], computed once per
//! stored body (by delivery, or here on first use) and cached in the store (`blob_info`), so
//! fetching them for a whole mailbox does not re-parse messages. Body sections read the blob
//! and cut the section out with `postamt-mime`.

use std::borrow::Cow;

use postamt_mime::{Message, SectionText as MimeText, SortKeys, Summary};
use postamt_store::{BlobId, FlagMode, FlagOp, Flags, MessageMeta};

use super::selected::{set_contains, uid_set};
use super::{Fatal, Outcome, Session, bad, no, ok};
use crate::command::{FetchItem, FetchModifiers, Partial, Section, SectionText, SequenceSet};
use crate::response;

fn needs_summary(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Envelope
            | FetchItem::Body
            | FetchItem::BodyStructure
            | FetchItem::ThreadId
            | FetchItem::Preview { .. }
    )
}

/// EMAILID (RFC 8474 section 5.1): from the content hash, so a copy or move keeps it and
/// identical content shares it.
pub(crate) fn email_id(blob: &BlobId) -> String {
    format!("E{}", &blob.hex()[..32])
}

/// THREADID (RFC 8474 section 5.2): from the thread's root message id (the first of
/// References, else In-Reply-To, else the message's own), so it never changes and related
/// messages in any mailbox share it; a message without ids is a thread of its own.
pub(crate) fn thread_id(keys: &SortKeys, blob: &BlobId) -> String {
    let root = keys.references.first().or(keys.message_id.as_ref());
    let hash = match root {
        Some(id) => BlobId::of(id.as_bytes()),
        None => blob.clone(),
    };
    format!("T{}", &hash.hex()[..32])
}

fn needs_raw(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Header
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { .. }
            | FetchItem::Binary { .. }
            | FetchItem::BinarySize { .. }
    )
}

/// Whether fetching the item sets \Seen (RFC 9051 section 6.4.5).
fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
    )
}

fn part_path(part: &[u32]) -> String {
    part.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

/// The section specification as echoed in the response, e.g. `1.2.HEADER.FIELDS (FROM)`.
fn section_name(section: &Section, utf8: bool) -> Vec<u8> {
    let mut out = part_path(&section.part).into_bytes();
    let text = match &section.text {
        None => return out,
        Some(t) => t,
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let fields = |out: &mut Vec<u8>, name: &str, list: &[String]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b" (");
        for (i, f) in list.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            response::astring(out, &f.to_ascii_uppercase(), utf8);
        }
        out.push(b')');
    };
    match text {
        SectionText::Header => out.extend_from_slice(b"HEADER"),
        SectionText::Text => out.extend_from_slice(b"TEXT"),
        SectionText::Mime => out.extend_from_slice(b"MIME"),
        SectionText::HeaderFields(list) => fields(&mut out, "HEADER.FIELDS", list),
        SectionText::HeaderFieldsNot(list) => fields(&mut out, "HEADER.FIELDS.NOT", list),
    }
    out
}

fn mime_text(text: &Option<SectionText>) -> MimeText<'_> {
    match text {
        None => MimeText::Full,
        Some(SectionText::Header) => MimeText::Header,
        Some(SectionText::Text) => MimeText::Text,
        Some(SectionText::Mime) => MimeText::Mime,
        Some(SectionText::HeaderFields(f)) => MimeText::HeaderFields(f),
        Some(SectionText::HeaderFieldsNot(f)) => MimeText::HeaderFieldsNot(f),
    }
}

/// Applies `<offset.count>` (RFC 9051: an origin beyond the end gives an empty string).
fn apply_partial(data: &[u8], partial: Option<Partial>) -> &[u8] {
    match partial {
        None => data,
        Some(p) => {
            let start = (p.offset as usize).min(data.len());
            let end = start.saturating_add(p.count as usize).min(data.len());
            &data[start..end]
        }
    }
}

impl Session<'_> {
    /// Loads the summaries of the given bodies; those not cached yet (bodies stored before
    /// delivery computed them, or by an older version) are computed from the body and cached,
    /// all in one write, which FETCH does not wait for: the cache can always be rebuilt.
    /// `None` for a body that cannot be read.
    pub(crate) async fn summaries(&self, blobs: &[BlobId]) -> Vec<Option<Summary>> {
        let store = &self.svc.store;
        let cached = store.blob_info(blobs).await.unwrap_or_else(|_| vec![None; blobs.len()]);
        let mut out: Vec<Option<Summary>> =
            cached.iter().map(|info| info.as_deref().and_then(Summary::decode)).collect();
        let mut computed = Vec::new();
        for (i, blob) in blobs.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let Ok(raw) = store.read_blob(blob).await else { continue };
            let Ok(summary) = tokio::task::spawn_blocking(move || Summary::compute(&raw)).await else {
                continue;
            };
            computed.push((blob.clone(), summary.encode()));
            out[i] = Some(summary);
        }
        if !computed.is_empty() {
            let store = std::sync::Arc::clone(store);
            tokio::spawn(async move {
                if let Err(e) = store.set_blob_infos(computed).await {
                    tracing::debug!(error = %e, "cannot cache message summaries");
                }
            });
        }
        out
    }

    pub(crate) async fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchItem],
        modifiers: FetchModifiers,
    ) -> Result<Outcome, Fatal> {
        // RFC 7162 section 3.2.6: VANISHED only after ENABLE QRESYNC.
        if modifiers.vanished && !self.qresync {
            return Ok(bad("VANISHED requires ENABLE QRESYNC"));
        }
        // CONDSTORE enabling (RFC 7162 section 3.1): the MODSEQ item or CHANGEDSINCE.
        let want_modseq = modifiers.changed_since.is_some() || items.contains(&FetchItem::ModSeq);
        if want_modseq && self.selected.is_some() {
            self.enable_condstore();
        }
        let Some(view) = self.selected.as_ref() else { return Ok(bad("No mailbox selected")) };
        let mut indices = match view.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => return Ok(bad(e)),
        };
        if let Some(since) = modifiers.changed_since {
            // RFC 7162 section 3.1.4.1: only messages with a higher MODSEQ.
            indices.retain(|&i| view.msgs[i].meta.modseq > since);
            if modifiers.vanished {
                // RFC 7162 section 3.2.6: expunged UIDs of the set, before any FETCH.
                let Some(account) = self.account.as_ref().map(|a| a.id) else {
                    return Ok(bad("Log in first"));
                };
                let vanished = match self.svc.store.changes_since(account, view.mailbox.id, since).await {
                    Ok(c) => c.vanished,
                    Err(e) => return Ok(self.store_error(e)),
                };
                let vanished: Vec<u32> =
                    vanished.into_iter().filter(|&u| set_contains(set, u, u32::MAX)).collect();
                if !vanished.is_empty() {
                    self.untagged(&format!("VANISHED (EARLIER) {}", uid_set(&vanished)));
                }
            }
        }
        let Some(view) = self.selected.as_ref() else { return Ok(bad("No mailbox selected")) };
        let read_only = view.read_only;
        let mailbox = view.mailbox.id;
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(bad("Log in first")) };

        // Side effect first: \Seen for non-peek body fetches, reported with the data.
        let mut seen_changed = std::collections::HashSet::new();
        if !read_only && items.iter().any(sets_seen) {
            let unseen: Vec<u32> = indices
                .iter()
                .map(|&i| &view.msgs[i])
                .filter(|m| !m.ghost && !m.meta.flags.contains(Flags::SEEN))
                .map(|m| m.meta.uid)
                .collect();
            if !unseen.is_empty() {
                let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: vec![] };
                match self.svc.store.store_flags(account, mailbox, &unseen, op).await {
                    Ok(changed) => {
                        if let Some(view) = self.selected.as_mut() {
                            for meta in changed {
                                if let Some(i) = view.index_of(meta.uid) {
                                    seen_changed.insert(i);
                                    view.msgs[i].meta = meta;
                                }
                            }
                        }
                    }
                    Err(e) => return Ok(self.store_error(e)),
                }
            }
        }

        let want_summary = items.iter().any(needs_summary);
        let want_raw = items.iter().any(needs_raw);
        let want_uid = uid && !items.contains(&FetchItem::Uid);
        // CHANGEDSINCE adds MODSEQ implicitly; RFC 7162 section 3.1.4.1 shows it after UID.
        let implicit_modseq = modifiers.changed_since.is_some() && !items.contains(&FetchItem::ModSeq);
        let condstore = self.condstore;
        let utf8 = self.utf8();
        let mut any_ghost = false;
        let mut unknown_cte = false;
        for chunk in indices.chunks(256) {
            let metas: Vec<(usize, MessageMeta, bool)> = {
                let Some(view) = self.selected.as_ref() else { break };
                chunk.iter().map(|&i| (i, view.msgs[i].meta.clone(), view.msgs[i].ghost)).collect()
            };
            let summaries = if want_summary {
                let blobs: Vec<BlobId> = metas.iter().map(|(_, m, _)| m.blob.clone()).collect();
                self.summaries(&blobs).await
            } else {
                Vec::new()
            };
            for (n, (index, meta, ghost)) in metas.into_iter().enumerate() {
                if ghost {
                    // Expunged by another session, not yet reported: nothing to return.
                    any_ghost = true;
                    continue;
                }
                let raw = if want_raw {
                    match self.svc.store.read_blob(&meta.blob).await {
                        Ok(r) => Some(r),
                        Err(_) => {
                            any_ghost = true;
                            continue;
                        }
                    }
                } else {
                    None
                };
                let recent =
                    !self.rev2 && self.selected.as_ref().is_some_and(|v| v.recent.contains(&meta.uid));
                let mut line = format!("* {} FETCH (", index + 1).into_bytes();
                let mut first = true;
                let mut sep = |line: &mut Vec<u8>| {
                    if !first {
                        line.push(b' ');
                    }
                    first = false;
                };
                // RFC 7162 section 3.2.4: a FETCH that set \Seen reports UID and MODSEQ too
                // once CONDSTORE is enabled.
                let seen_update = condstore && seen_changed.contains(&index);
                if want_uid || (seen_update && !items.contains(&FetchItem::Uid)) {
                    sep(&mut line);
                    line.extend_from_slice(format!("UID {}", meta.uid).as_bytes());
                }
                if implicit_modseq || (seen_update && !want_modseq) {
                    sep(&mut line);
                    line.extend_from_slice(format!("MODSEQ ({})", meta.modseq).as_bytes());
                }
                let parsed = raw.as_deref().map(Message::parse);
                let mut flags_written = false;
                for item in items {
                    sep(&mut line);
                    match item {
                        FetchItem::Flags => {
                            flags_written = true;
                            line.extend_from_slice(b"FLAGS ");
                            response::flag_list(&mut line, meta.flags, &meta.keywords, recent);
                        }
                        FetchItem::Uid => line.extend_from_slice(format!("UID {}", meta.uid).as_bytes()),
                        FetchItem::ModSeq => {
                            line.extend_from_slice(format!("MODSEQ ({})", meta.modseq).as_bytes())
                        }
                        FetchItem::EmailId => {
                            line.extend_from_slice(format!("EMAILID ({})", email_id(&meta.blob)).as_bytes())
                        }
                        FetchItem::SaveDate => {
                            line.extend_from_slice(b"SAVEDATE ");
                            line.extend_from_slice(response::date_time(meta.savedate).as_bytes());
                        }
                        FetchItem::ThreadId | FetchItem::Preview { .. } => {
                            let Some(d) = summaries.get(n).and_then(Option::as_ref) else {
                                any_ghost = true;
                                continue;
                            };
                            if matches!(item, FetchItem::ThreadId) {
                                let id = thread_id(&d.keys, &meta.blob);
                                line.extend_from_slice(format!("THREADID ({id})").as_bytes());
                            } else {
                                // RFC 8970 section 3.2: UTF-8 text, possibly empty.
                                line.extend_from_slice(b"PREVIEW ");
                                response::string(&mut line, d.preview.as_bytes(), utf8);
                            }
                        }
                        FetchItem::InternalDate => {
                            line.extend_from_slice(b"INTERNALDATE ");
                            line.extend_from_slice(response::date_time(meta.internal_date).as_bytes());
                        }
                        FetchItem::Rfc822Size => {
                            line.extend_from_slice(format!("RFC822.SIZE {}", meta.size).as_bytes())
                        }
                        FetchItem::Envelope | FetchItem::Body | FetchItem::BodyStructure => {
                            let (name, value) = match (item, summaries.get(n).and_then(Option::as_ref)) {
                                (FetchItem::Envelope, Some(d)) => ("ENVELOPE ", &d.envelope),
                                (FetchItem::Body, Some(d)) => ("BODY ", &d.body),
                                (_, Some(d)) => ("BODYSTRUCTURE ", &d.body_structure),
                                (_, None) => {
                                    any_ghost = true;
                                    continue;
                                }
                            };
                            line.extend_from_slice(name.as_bytes());
                            line.extend_from_slice(value);
                        }
                        FetchItem::Rfc822 | FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                            let (name, text) = match item {
                                FetchItem::Rfc822 => ("RFC822 ", MimeText::Full),
                                FetchItem::Rfc822Header => ("RFC822.HEADER ", MimeText::Header),
                                _ => ("RFC822.TEXT ", MimeText::Text),
                            };
                            line.extend_from_slice(name.as_bytes());
                            let data = parsed.as_ref().and_then(|m| m.section(&[], text));
                            response::nstring(&mut line, data.as_deref(), false);
                        }
                        FetchItem::BodySection { section, partial, .. } => {
                            line.extend_from_slice(b"BODY[");
                            line.extend_from_slice(&section_name(section, self.rev2));
                            line.push(b']');
                            if let Some(p) = partial {
                                line.extend_from_slice(format!("<{}>", p.offset).as_bytes());
                            }
                            line.push(b' ');
                            let data = parsed
                                .as_ref()
                                .and_then(|m| m.section(&section.part, mime_text(&section.text)));
                            match data {
                                Some(d) => response::literal(&mut line, apply_partial(&d, *partial)),
                                None => line.extend_from_slice(b"NIL"),
                            }
                        }
                        FetchItem::Binary { part, partial, .. } => {
                            line.extend_from_slice(format!("BINARY[{}]", part_path(part)).as_bytes());
                            if let Some(p) = partial {
                                line.extend_from_slice(format!("<{}>", p.offset).as_bytes());
                            }
                            line.push(b' ');
                            match parsed.as_ref().and_then(|m| m.binary(part)) {
                                Some(Ok(data)) => {
                                    let data: Cow<[u8]> = data;
                                    let data = apply_partial(&data, *partial);
                                    // RFC 3516: literal8 when the data holds NUL.
                                    if data.contains(&0) {
                                        line.push(b'~');
                                    }
                                    response::literal(&mut line, data);
                                }
                                Some(Err(_)) => {
                                    unknown_cte = true;
                                    line.extend_from_slice(b"NIL");
                                }
                                None => line.extend_from_slice(b"NIL"),
                            }
                        }
                        FetchItem::BinarySize { part } => {
                            line.extend_from_slice(format!("BINARY.SIZE[{}] ", part_path(part)).as_bytes());
                            match parsed.as_ref().and_then(|m| m.binary(part)) {
                                Some(Ok(data)) => line.extend_from_slice(data.len().to_string().as_bytes()),
                                Some(Err(_)) => {
                                    unknown_cte = true;
                                    line.extend_from_slice(b"NIL");
                                }
                                None => line.extend_from_slice(b"NIL"),
                            }
                        }
                    }
                }
                if seen_changed.contains(&index) && !flags_written {
                    sep(&mut line);
                    line.extend_from_slice(b"FLAGS ");
                    response::flag_list(&mut line, meta.flags, &meta.keywords, recent);
                }
                line.extend_from_slice(b")\r\n");
                self.out().extend_from_slice(&line);
                self.maybe_flush().await?;
            }
        }
        if unknown_cte {
            return Ok(no("[UNKNOWN-CTE] Unknown Content-Transfer-Encoding"));
        }
        if any_ghost {
            return Ok(no("[EXPUNGEISSUED] Some of the requested messages no longer exist"));
        }
        Ok(ok("FETCH completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_partials() {
        let s = Section {
            part: vec![1, 2],
            text: Some(SectionText::HeaderFields(vec!["From".into(), "to".into()])),
        };
        assert_eq!(section_name(&s, false), b"1.2.HEADER.FIELDS (FROM TO)");
        assert_eq!(section_name(&Section::default(), false), b"");
        assert_eq!(apply_partial(b"0123456789", Some(Partial { offset: 2, count: 3 })), b"234");
        assert_eq!(apply_partial(b"0123", Some(Partial { offset: 9, count: 3 })), b"");
    }
}
