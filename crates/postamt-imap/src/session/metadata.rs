//! METADATA and METADATA-SERVER (RFC 5464): annotations on mailboxes and on the server.
//!
//! Entries live in the store, keyed by owner, mailbox and lower-case name. Mailbox
//! annotations (`/private/...` and `/shared/...`) belong to the mailbox's account: without
//! ACLs nobody else can see the mailbox (section 3.3). Server annotations: `/private/...`
//! per account; `/shared/...` one value for the whole server, readable by everyone and
//! settable only by administrators (section 3.3 lets servers restrict them). No unsolicited
//! METADATA responses are sent (section 4.1 makes them optional).

use postamt_store::{MailboxId, StoreError};

use super::{Outcome, Session, bad, no, ok};
use crate::command::MetadataDepth;
use crate::response;

/// Largest value accepted (section 4.1 asks for at least 1024 octets).
pub(crate) const MAX_VALUE: usize = 16 * 1024;
/// Most entries per mailbox, and per account on the server (section 4.1: at least 10).
pub(crate) const MAX_ENTRIES: usize = 100;

/// Whether `name` is `entry` or below it within `depth` (section 4.2.2).
fn within(entry: &str, name: &str, depth: MetadataDepth) -> bool {
    if name == entry {
        return true;
    }
    let Some(rest) = name.strip_prefix(entry).and_then(|r| r.strip_prefix('/')) else { return false };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

/// Appends an annotation value: a string, or a literal8 when it holds NUL (`value = nstring
/// / literal8`, section 5).
fn value(out: &mut Vec<u8>, v: &[u8], utf8: bool) {
    if v.contains(&0) {
        out.push(b'~');
        response::literal(out, v);
    } else {
        response::string(out, v, utf8);
    }
}

impl Session<'_> {
    /// The store's target for a mailbox argument: `None` for the server (`""`).
    async fn metadata_target(&self, raw: &str) -> Result<Option<MailboxId>, Outcome> {
        if raw.is_empty() {
            return Ok(None);
        }
        let Some(account) = &self.account else { return Err(bad("Log in first")) };
        let name = self.mailbox_name(raw)?;
        match self.svc.store.mailbox_by_name(account.id, &name).await {
            Ok(Some(m)) => Ok(Some(m.id)),
            Ok(None) => Err(no("[NONEXISTENT] Mailbox does not exist")),
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// GETMETADATA (RFC 5464 section 4.2): one METADATA response with every requested entry
    /// (NIL for those that do not exist) and, with DEPTH, those below it.
    pub(crate) async fn get_metadata(
        &mut self,
        raw: &str,
        maxsize: Option<u64>,
        depth: MetadataDepth,
        entries: &[String],
    ) -> Outcome {
        let Some(account) = self.account.as_ref().map(|a| a.id) else { return bad("Log in first") };
        let target = match self.metadata_target(raw).await {
            Ok(t) => t,
            Err(o) => return o,
        };
        let stored = match self.svc.store.metadata(account, target).await {
            Ok(s) => s,
            Err(e) => return self.store_error(e),
        };
        let utf8 = self.utf8();
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut longest: Option<usize> = None;
        let mut listed = std::collections::BTreeSet::new();
        for requested in entries {
            let requested = requested.to_ascii_lowercase();
            if !stored.iter().any(|(name, _)| *name == requested) && listed.insert(requested.clone()) {
                let mut item = requested.clone().into_bytes();
                item.extend_from_slice(b" NIL");
                items.push(item);
            }
            for (name, v) in stored.iter().filter(|(name, _)| within(&requested, name, depth)) {
                if !listed.insert(name.clone()) {
                    continue;
                }
                // Section 4.2.1: larger values are left out and the longest reported.
                if maxsize.is_some_and(|max| v.len() as u64 > max) {
                    longest = Some(longest.map_or(v.len(), |l| l.max(v.len())));
                    continue;
                }
                let mut item = Vec::new();
                response::astring(&mut item, name, utf8);
                item.push(b' ');
                value(&mut item, v, utf8);
                items.push(item);
            }
        }
        if !items.is_empty() {
            let mut line = b"* METADATA ".to_vec();
            let mailbox = if raw.is_empty() {
                String::new()
            } else {
                self.encode_name(&self.mailbox_name(raw).unwrap_or_default())
            };
            response::astring(&mut line, &mailbox, utf8);
            line.extend_from_slice(b" (");
            line.extend_from_slice(&items.join(&b' '));
            line.extend_from_slice(b")\r\n");
            self.out().extend_from_slice(&line);
        }
        match longest {
            Some(n) => ok(format!("[METADATA LONGENTRIES {n}] GETMETADATA completed")),
            None => ok("GETMETADATA completed"),
        }
    }

    /// SETMETADATA (RFC 5464 section 4.3): all entries or none.
    pub(crate) async fn set_metadata(
        &mut self,
        raw: &str,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        let target = match self.metadata_target(raw).await {
            Ok(t) => t,
            Err(o) => return o,
        };
        for (entry, v) in &entries {
            let lower = entry.to_ascii_lowercase();
            let scoped = lower.starts_with("/private/") || lower.starts_with("/shared/");
            if !scoped {
                return bad(format!("{entry}: entry names start with /private/ or /shared/"));
            }
            if v.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
                return no(format!("[METADATA MAXSIZE {MAX_VALUE}] Value too large"));
            }
            if target.is_none() && lower.starts_with("/shared/") {
                // Section 3.2.1.1: /shared/admin is read-only; the server's shared entries
                // are the administrators'.
                if lower == "/shared/admin" {
                    return no("[NOPERM] /shared/admin is read-only");
                }
                if !account.admin {
                    return no("[NOPERM] Only administrators may set shared server annotations");
                }
            }
        }
        match self.svc.store.set_metadata(account.id, target, entries, MAX_ENTRIES).await {
            Ok(()) => ok("SETMETADATA completed"),
            Err(StoreError::Invalid { what: "metadata entries", .. }) => {
                no("[METADATA TOOMANY] Too many annotations")
            }
            Err(e) => self.store_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert!(within("/a", "/a", MetadataDepth::Zero));
        assert!(!within("/a", "/a/b", MetadataDepth::Zero));
        assert!(within("/a", "/a/b", MetadataDepth::One));
        assert!(!within("/a", "/a/b/c", MetadataDepth::One));
        assert!(within("/a", "/a/b/c", MetadataDepth::Infinity));
        assert!(!within("/a", "/ab", MetadataDepth::Infinity));
    }
}
