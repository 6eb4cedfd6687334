//! Mailbox commands of the authenticated state: LIST (with LIST-EXTENDED, LIST-STATUS,
//! SPECIAL-USE), LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND; and
//! mailbox names: modified UTF-7 for IMAP4rev1 clients, UTF-8 for IMAP4rev2 (RFC 9051 5.1).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use postamt_mime::Summary;
use postamt_store::{Flags, Mailbox, NewMessage, SpecialUse, StoreError, Uid};

use super::selected::{parse_flags, uid_set};
use super::{Fatal, Outcome, Session, bad, no, ok};
use crate::command::{AppendMessage, ListCommand, ListReturn, ListSelect, StatusItem};
use crate::{mutf7, response};

/// One LIST response to write: name, attributes, extended data, the mailbox if it exists.
type ListLine<'m> = (String, Vec<String>, Option<String>, Option<&'m Mailbox>);

/// The hierarchy delimiter of postamt's mailbox names.
pub const DELIMITER: char = postamt_store::HIERARCHY_DELIMITER;
/// Longest LIST pattern we match (the matcher is O(pattern x name)).
const MAX_PATTERN: usize = 1024;

/// Whether `name` matches a LIST pattern: `*` matches anything, `%` anything but the
/// delimiter (RFC 9051 section 6.3.9).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // can[j]: pattern prefix matches name prefix of length j.
    let mut can = vec![false; n.len() + 1];
    can[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                let mut reach = false;
                for j in 0..=n.len() {
                    // `%` cannot stretch over a delimiter.
                    if j > 0 && pc == '%' && n[j - 1] == DELIMITER {
                        reach = false;
                    }
                    if can[j] {
                        reach = true;
                    }
                    next[j] = reach;
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = can[j - 1] && n[j - 1] == c;
                }
            }
        }
        can = next;
    }
    can[n.len()]
}

/// MAILBOXID (RFC 8474 section 4): from the UIDVALIDITY, which a store-wide counter makes
/// unique, which stays across a rename and changes when a mailbox is created anew.
pub(crate) fn mailbox_id(mailbox: &Mailbox) -> String {
    format!("M{}", mailbox.uidvalidity)
}

/// Canonical form of a name: `INBOX` in any case (also as the first level) becomes `INBOX`.
pub fn canonical(name: &str) -> String {
    let (first, rest) = match name.find(DELIMITER) {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    if first.eq_ignore_ascii_case("INBOX") { format!("INBOX{rest}") } else { name.to_string() }
}

impl Session<'_> {
    /// Decodes a mailbox name from the wire: modified UTF-7 for IMAP4rev1 clients.
    pub(crate) fn mailbox_name(&self, raw: &str) -> Result<String, Outcome> {
        let decoded = if self.utf8() {
            raw.to_string()
        } else {
            mutf7::decode(raw).ok_or_else(|| no("[CANNOT] Mailbox name is not valid modified UTF-7"))?
        };
        let name = canonical(decoded.trim_end_matches(DELIMITER));
        if name.is_empty() {
            return Err(no("[CANNOT] Empty mailbox name"));
        }
        Ok(name)
    }

    /// Encodes a name for the wire.
    pub(crate) fn encode_name(&self, name: &str) -> String {
        if self.utf8() { name.to_string() } else { mutf7::encode(name) }
    }

    pub(crate) fn store_error(&self, e: StoreError) -> Outcome {
        match e {
            StoreError::NotFound { .. } => no("[NONEXISTENT] Mailbox does not exist"),
            StoreError::AlreadyExists { .. } => no("[ALREADYEXISTS] Mailbox already exists"),
            StoreError::OverQuota => no("[OVERQUOTA] Quota exceeded"),
            StoreError::Invalid { detail, .. } => no(format!("[CANNOT] {detail}")),
            e => {
                tracing::error!(error = %e, "store failure");
                no("[SERVERBUG] Internal error, try again later")
            }
        }
    }

    /// The LIST attributes of an existing mailbox.
    pub(crate) async fn mailbox_attributes(&self, mailbox: &Mailbox) -> Vec<&'static str> {
        let Some(account) = &self.account else { return vec![] };
        let all = self.svc.store.list_mailboxes(account.id).await.unwrap_or_default();
        let prefix = format!("{}{DELIMITER}", mailbox.name);
        let mut attrs = vec![if all.iter().any(|m| m.name.starts_with(&prefix)) {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        }];
        if let Some(role) = mailbox.special_use {
            attrs.push(role.attribute());
        }
        attrs
    }

    pub(crate) async fn list(&mut self, cmd: ListCommand) -> Result<Outcome, Fatal> {
        let Some(account) = self.account.clone() else { return Ok(bad("Log in first")) };
        if cmd.patterns.iter().any(|p| p.len() > MAX_PATTERN) || cmd.reference.len() > MAX_PATTERN {
            return Ok(bad("Pattern too long"));
        }
        // LIST "" "": the hierarchy delimiter and root (RFC 9051 section 6.3.9).
        if cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() && cmd.select.is_empty() {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(ok("LIST completed"));
        }
        let store = self.svc.store.clone();
        let mailboxes = match store.list_mailboxes(account.id).await {
            Ok(m) => m,
            Err(e) => return Ok(self.store_error(e)),
        };
        let subscriptions: HashSet<String> = match store.list_subscriptions(account.id).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => return Ok(self.store_error(e)),
        };
        let patterns: Vec<String> = cmd
            .patterns
            .iter()
            .map(|p| {
                let decoded =
                    if self.utf8() { p.clone() } else { mutf7::decode(p).unwrap_or_else(|| p.clone()) };
                let reference = if self.utf8() {
                    cmd.reference.clone()
                } else {
                    mutf7::decode(&cmd.reference).unwrap_or_else(|| cmd.reference.clone())
                };
                canonical(&format!("{reference}{decoded}"))
            })
            .collect();
        let select_subscribed = cmd.select.contains(&ListSelect::Subscribed);
        let recursive = cmd.select.contains(&ListSelect::RecursiveMatch);
        let special_only = cmd.select.contains(&ListSelect::SpecialUse);
        let want_subscribed = select_subscribed || cmd.ret.contains(&ListReturn::Subscribed);
        let status_items: Option<Vec<StatusItem>> = cmd.ret.iter().find_map(|r| match r {
            ListReturn::Status(items) => Some(items.clone()),
            _ => None,
        });

        // Every name to consider: existing mailboxes, their missing ancestors (shown as
        // \Noselect), and, when listing subscriptions, subscribed names that do not exist.
        let existing: BTreeMap<String, &Mailbox> = mailboxes.iter().map(|m| (m.name.clone(), m)).collect();
        let mut names: BTreeSet<String> = existing.keys().cloned().collect();
        for name in existing.keys() {
            let mut parent = name.as_str();
            while let Some(i) = parent.rfind(DELIMITER) {
                parent = &parent[..i];
                names.insert(parent.to_string());
            }
        }
        if select_subscribed {
            names.extend(subscriptions.iter().cloned());
        }
        let has_children = |name: &str| {
            let prefix = format!("{name}{DELIMITER}");
            names.iter().any(|n| n.starts_with(&prefix) && existing.contains_key(n))
        };
        let mut lines: Vec<ListLine<'_>> = Vec::new();
        let mut order: Vec<&String> = names.iter().collect();
        // INBOX first, as clients expect.
        order.sort_by_key(|n| (n.as_str() != "INBOX", n.to_string()));
        for name in order {
            let matched = patterns.iter().any(|p| pattern_matches(p, name));
            let mailbox = existing.get(name).copied();
            let subscribed = subscriptions.contains(name);
            let mut child_info = None;
            if select_subscribed && !subscribed {
                // RECURSIVEMATCH: a parent of subscribed names is listed with CHILDINFO.
                let prefix = format!("{name}{DELIMITER}");
                if matched && recursive && subscriptions.iter().any(|s| s.starts_with(&prefix)) {
                    child_info = Some("(\"CHILDINFO\" (\"SUBSCRIBED\"))".to_string());
                } else {
                    continue;
                }
            }
            if !matched {
                continue;
            }
            if special_only && mailbox.is_none_or(|m| m.special_use.is_none()) {
                continue;
            }
            let mut attrs: Vec<String> = Vec::new();
            match mailbox {
                None if select_subscribed && subscribed => attrs.push("\\NonExistent".into()),
                None => attrs.push("\\Noselect".into()),
                Some(_) => {}
            }
            if mailbox.is_some() || !attrs.contains(&"\\NonExistent".to_string()) {
                attrs.push(if has_children(name) {
                    "\\HasChildren".into()
                } else {
                    "\\HasNoChildren".into()
                });
            }
            if want_subscribed && subscribed {
                attrs.push("\\Subscribed".into());
            }
            if let Some(role) = mailbox.and_then(|m| m.special_use) {
                attrs.push(role.attribute().into());
            }
            lines.push((name.clone(), attrs, child_info, mailbox));
        }
        for (name, attrs, child_info, mailbox) in lines {
            let mut line = b"* LIST (".to_vec();
            line.extend_from_slice(attrs.join(" ").as_bytes());
            line.extend_from_slice(b") \"/\" ");
            response::astring(&mut line, &self.encode_name(&name), self.utf8());
            if let Some(info) = child_info {
                line.push(b' ');
                line.extend_from_slice(info.as_bytes());
            }
            line.extend_from_slice(b"\r\n");
            self.out().extend_from_slice(&line);
            if let (Some(items), Some(mailbox)) = (&status_items, mailbox) {
                // LIST-STATUS (RFC 5819): STATUS right after the mailbox's LIST.
                if let Ok(line) = self.status_line(mailbox, items).await {
                    self.out().extend_from_slice(&line);
                }
            }
            self.maybe_flush().await?;
        }
        Ok(ok("LIST completed"))
    }

    pub(crate) async fn lsub(&mut self, reference: &str, pattern: &str) -> Result<Outcome, Fatal> {
        let Some(account) = self.account.clone() else { return Ok(bad("Log in first")) };
        if pattern.len() > MAX_PATTERN || reference.len() > MAX_PATTERN {
            return Ok(bad("Pattern too long"));
        }
        let store = self.svc.store.clone();
        let (mailboxes, subscriptions) =
            match (store.list_mailboxes(account.id).await, store.list_subscriptions(account.id).await) {
                (Ok(m), Ok(s)) => (m, s),
                (Err(e), _) | (_, Err(e)) => return Ok(self.store_error(e)),
            };
        let full = {
            let joined = format!("{reference}{pattern}");
            canonical(&if self.utf8() { joined.clone() } else { mutf7::decode(&joined).unwrap_or(joined) })
        };
        let existing: HashSet<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        let mut subscriptions = subscriptions;
        subscriptions.sort();
        for name in subscriptions.iter().filter(|s| pattern_matches(&full, s)) {
            let attrs = if existing.contains(name.as_str()) { "" } else { "\\Noselect" };
            let mut line = format!("* LSUB ({attrs}) \"/\" ").into_bytes();
            response::astring(&mut line, &self.encode_name(name), self.utf8());
            line.extend_from_slice(b"\r\n");
            self.out().extend_from_slice(&line);
        }
        Ok(ok("LSUB completed"))
    }

    pub(crate) async fn create(&mut self, raw: &str, special_use: &[String]) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return o,
        };
        if name == "INBOX" {
            return no("[ALREADYEXISTS] INBOX always exists");
        }
        if name.split(DELIMITER).any(str::is_empty)
            || name.contains(['*', '%'])
            || name.chars().any(char::is_control)
        {
            return no("[CANNOT] Invalid mailbox name");
        }
        let mut roles = Vec::new();
        for attr in special_use {
            match SpecialUse::from_attribute(attr) {
                Some(role) => roles.push(role),
                None => return no(format!("[USEATTR] Unsupported special-use attribute {attr}")),
            }
        }
        if roles.len() > 1 {
            return no("[USEATTR] Only one special-use attribute per mailbox");
        }
        let store = self.svc.store.clone();
        match store.mailbox_by_name(account.id, &name).await {
            Ok(Some(_)) => return no("[ALREADYEXISTS] Mailbox already exists"),
            Ok(None) => {}
            Err(e) => return self.store_error(e),
        }
        // Create missing superiors (RFC 9051 section 6.3.4).
        let mut prefix = String::new();
        let parts: Vec<&str> = name.split(DELIMITER).collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push(DELIMITER);
            }
            prefix.push_str(part);
            match store.mailbox_by_name(account.id, &prefix).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    if let Err(e) = store.create_mailbox(account.id, &prefix, None).await
                        && !matches!(e, StoreError::AlreadyExists { .. })
                    {
                        return self.store_error(e);
                    }
                }
                Err(e) => return self.store_error(e),
            }
        }
        match store.create_mailbox(account.id, &name, roles.first().copied()).await {
            // RFC 8474 section 4.1.
            Ok(mailbox) => ok(format!("[MAILBOXID ({})] CREATE completed", mailbox_id(&mailbox))),
            Err(e) => self.store_error(e),
        }
    }

    pub(crate) async fn delete(&mut self, raw: &str) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return o,
        };
        if name == "INBOX" {
            return no("[CANNOT] INBOX cannot be deleted");
        }
        let store = self.svc.store.clone();
        let mailbox = match store.mailbox_by_name(account.id, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return no("[NONEXISTENT] Mailbox does not exist"),
            Err(e) => return self.store_error(e),
        };
        if self.selected.as_ref().is_some_and(|v| v.mailbox.id == mailbox.id) {
            self.selected = None;
        }
        match store.delete_mailbox(account.id, mailbox.id).await {
            Ok(()) => ok("DELETE completed"),
            Err(e) => self.store_error(e),
        }
    }

    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(o), _) | (_, Err(o)) => return o,
        };
        if to.split(DELIMITER).any(str::is_empty)
            || to.contains(['*', '%'])
            || to.chars().any(char::is_control)
        {
            return no("[CANNOT] Invalid mailbox name");
        }
        let store = self.svc.store.clone();
        let source = match store.mailbox_by_name(account.id, &from).await {
            Ok(Some(m)) => m,
            Ok(None) => return no("[NONEXISTENT] Mailbox does not exist"),
            Err(e) => return self.store_error(e),
        };
        match store.mailbox_by_name(account.id, &to).await {
            Ok(Some(_)) => return no("[ALREADYEXISTS] Target mailbox already exists"),
            Ok(None) => {}
            Err(e) => return self.store_error(e),
        }
        if to.starts_with(&format!("{from}{DELIMITER}")) {
            return no("[CANNOT] Cannot rename a mailbox into itself");
        }
        if from == "INBOX" {
            // RFC 9051 section 6.3.6: renaming INBOX moves its messages to a new mailbox
            // and leaves INBOX empty.
            if let Outcome::No(t) = self.create(&self.encode_name(&to), &[]).await {
                return Outcome::No(t);
            }
            let target = match store.mailbox_by_name(account.id, &to).await {
                Ok(Some(m)) => m,
                Ok(None) => return no("[SERVERBUG] Target vanished"),
                Err(e) => return self.store_error(e),
            };
            let uids: Vec<Uid> = match store.list_messages(account.id, source.id).await {
                Ok(m) => m.into_iter().map(|m| m.uid).collect(),
                Err(e) => return self.store_error(e),
            };
            if !uids.is_empty()
                && let Err(e) = store.move_messages(account.id, source.id, &uids, target.id).await
            {
                return self.store_error(e);
            }
            return ok("RENAME completed");
        }
        // Superiors of the new name.
        let parts: Vec<&str> = to.split(DELIMITER).collect();
        let mut prefix = String::new();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push(DELIMITER);
            }
            prefix.push_str(part);
            if let Ok(None) = store.mailbox_by_name(account.id, &prefix).await
                && let Err(e) = store.create_mailbox(account.id, &prefix, None).await
                && !matches!(e, StoreError::AlreadyExists { .. })
            {
                return self.store_error(e);
            }
        }
        match store.rename_mailbox(account.id, source.id, &to).await {
            Ok(()) => ok("RENAME completed"),
            Err(e) => self.store_error(e),
        }
    }

    pub(crate) async fn subscribe(&mut self, raw: &str, on: bool) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let store = self.svc.store.clone();
        if on {
            match store.subscribe(account.id, &name).await {
                Ok(()) => ok("SUBSCRIBE completed"),
                Err(e) => self.store_error(e),
            }
        } else {
            match store.unsubscribe(account.id, &name).await {
                Ok(()) => ok("UNSUBSCRIBE completed"),
                Err(StoreError::NotFound { .. }) => no("[NONEXISTENT] Not subscribed"),
                Err(e) => self.store_error(e),
            }
        }
    }

    /// `* STATUS name (...)` for a mailbox.
    async fn status_line(&self, mailbox: &Mailbox, items: &[StatusItem]) -> Result<Vec<u8>, StoreError> {
        let Some(account) = &self.account else { return Ok(Vec::new()) };
        let status = self.svc.store.mailbox_status(account.id, mailbox.id).await?;
        // \Recent: this session's own when it has the mailbox selected, else the messages
        // no session has seen yet.
        let recent = self
            .selected
            .as_ref()
            .filter(|v| v.mailbox.id == mailbox.id)
            .map_or(status.recent as usize, |v| v.recent.len());
        // DELETED-STORAGE (RFC 9208 section 4.1.4) sums the \Deleted messages' sizes.
        let deleted_storage = if items.contains(&StatusItem::DeletedStorage) {
            let all = self.svc.store.changes_since(account.id, mailbox.id, 0).await?;
            all.changed.iter().filter(|m| m.flags.contains(Flags::DELETED)).map(|m| m.size).sum()
        } else {
            0
        };
        let mut values = Vec::new();
        for item in items {
            values.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", status.messages),
                StatusItem::UidNext => format!("UIDNEXT {}", status.uidnext),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", status.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", status.unseen),
                StatusItem::Deleted => format!("DELETED {}", status.deleted),
                StatusItem::Size => format!("SIZE {}", status.size),
                StatusItem::Recent => format!("RECENT {recent}"),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", status.highestmodseq),
                StatusItem::DeletedStorage => format!("DELETED-STORAGE {deleted_storage}"),
                StatusItem::MailboxId => format!("MAILBOXID ({})", mailbox_id(mailbox)),
            });
        }
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &self.encode_name(&mailbox.name), self.utf8());
        line.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        Ok(line)
    }

    pub(crate) async fn status(&mut self, raw: &str, items: &[StatusItem]) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let mailbox = match self.svc.store.mailbox_by_name(account.id, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return no("[NONEXISTENT] Mailbox does not exist"),
            Err(e) => return self.store_error(e),
        };
        // RFC 7162 section 3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE.
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore();
        }
        match self.status_line(&mailbox, items).await {
            Ok(line) => {
                self.out().extend_from_slice(&line);
                ok("STATUS completed")
            }
            Err(e) => self.store_error(e),
        }
    }

    /// APPEND and MULTIAPPEND (RFC 3502: all messages or none), with APPENDUID.
    pub(crate) async fn append(&mut self, raw: &str, messages: Vec<AppendMessage>) -> Result<Outcome, Fatal> {
        let Some(account) = self.account.clone() else { return Ok(bad("Log in first")) };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return Ok(o),
        };
        let store = self.svc.store.clone();
        let mailbox = match store.mailbox_by_name(account.id, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(no("[TRYCREATE] Mailbox does not exist")),
            Err(e) => return Ok(self.store_error(e)),
        };
        let mut parsed = Vec::new();
        for m in &messages {
            // RFC 6855 section 3: UTF-8 data is for clients that enabled UTF8=ACCEPT.
            if m.utf8 && !self.utf8() {
                return Ok(bad("UTF8 APPEND data requires ENABLE UTF8=ACCEPT"));
            }
            if m.data.is_empty() {
                return Ok(no("[CANNOT] Cannot append an empty message"));
            }
            if m.data.len() as u64 > self.svc.config.max_message_size {
                return Ok(no("[TOOBIG] Message too large"));
            }
            match parse_flags(&m.flags) {
                Ok(f) => parsed.push(f),
                Err(e) => return Ok(bad(e)),
            }
        }
        let mut uids = Vec::new();
        let mut uidvalidity = mailbox.uidvalidity;
        let now = postamt_store_now();
        for (m, (flags, keywords)) in messages.into_iter().zip(parsed) {
            let size = m.data.len() as u64;
            let data = Arc::new(m.data);
            // The summary FETCH and SEARCH answer from, derived while the body is written.
            let body = Arc::clone(&data);
            let summary = tokio::task::spawn_blocking(move || Summary::compute(&body).encode());
            let blob = match store.put_blob(data).await {
                Ok(b) => b,
                Err(e) => return Ok(self.rollback_append(account.id, mailbox.id, &uids, e).await),
            };
            let info = summary.await.ok();
            let new = NewMessage { blob, size, internal_date: m.date.unwrap_or(now), flags, keywords, info };
            match store.append(account.id, mailbox.id, new).await {
                Ok(appended) => {
                    uidvalidity = appended.uidvalidity;
                    uids.push(appended.uid);
                }
                Err(e) => return Ok(self.rollback_append(account.id, mailbox.id, &uids, e).await),
            }
        }
        Ok(ok(format!("[APPENDUID {uidvalidity} {}] APPEND completed", uid_set(&uids))))
    }

    async fn rollback_append(&self, account: i64, mailbox: i64, uids: &[Uid], e: StoreError) -> Outcome {
        if !uids.is_empty() {
            let _ = self.svc.store.expunge(account, mailbox, uids).await;
        }
        self.store_error(e)
    }
}

fn postamt_store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "a/b/c"));
        assert!(pattern_matches("%", "INBOX"));
        assert!(!pattern_matches("%", "a/b"));
        assert!(pattern_matches("a/%", "a/b"));
        assert!(!pattern_matches("a/%", "a/b/c"));
        assert!(pattern_matches("a/*", "a/b/c"));
        assert!(pattern_matches("*b*", "a/b/c"));
        assert!(pattern_matches("%/%", "a/b"));
        assert!(!pattern_matches("%/%", "a"));
        assert!(pattern_matches("INBOX", "INBOX"));
        assert!(!pattern_matches("INBOX", "INBOX/x"));
        assert!(pattern_matches("", ""));
        assert!(pattern_matches("S%", "Sent"));
        assert!(!pattern_matches("S%", "Trash"));
        assert!(pattern_matches(&"*%".repeat(400), "abc"));
    }

    #[test]
    fn canonical_inbox() {
        assert_eq!(canonical("inbox"), "INBOX");
        assert_eq!(canonical("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(canonical("Inboxes"), "Inboxes");
    }
}
