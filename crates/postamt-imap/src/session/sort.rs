//! SORT and UID SORT (RFC 5256 section 3) with the ESORT return options (RFC 5267) and the
//! DISPLAYFROM / DISPLAYTO keys (RFC 5957); THREAD and UID THREAD with the ORDEREDSUBJECT
//! and REFERENCES algorithms (RFC 5256 section 2.2).
//!
//! Both search first (the same evaluation as SEARCH), then order what matched by keys that
//! `postamt-mime` derives from each body (base subject, first addresses, sent date, message
//! ids). The keys are cached with ENVELOPE and BODYSTRUCTURE in the store's `blob_info`, so
//! a mailbox is parsed once, not at every SORT.

use std::cmp::Ordering;
use std::collections::HashMap;

use postamt_mime::SortKeys;

use super::search::{Hit, uses_modseq};
use super::selected::uid_set;
use super::{Fatal, Outcome, Session, no, ok};
use crate::command::{SearchKey, SearchReturn, SortCommand, SortCriterion, SortKey, ThreadAlgorithm};

/// One matching message with what sorting and threading compare.
struct Item {
    /// Sequence number or UID, as the response reports it.
    number: u32,
    /// Position in the mailbox: the implicit last sort key (RFC 5256 section 3).
    seq: u32,
    size: u64,
    arrival: i64,
    /// Sent date, or the internal date when the Date field is missing or broken (RFC 5256
    /// section 2.2).
    date: i64,
    keys: SortKeys,
}

/// Orders two strings with the i;unicode-casemap collation's effect (the keys are already
/// case-folded); the empty string sorts first (RFC 5256 section 3).
fn compare(a: &Item, b: &Item, criteria: &[SortCriterion]) -> Ordering {
    for c in criteria {
        let order = match c.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Cc => a.keys.cc.cmp(&b.keys.cc),
            SortKey::Date => a.date.cmp(&b.date),
            SortKey::From => a.keys.from.cmp(&b.keys.from),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => a.keys.subject.cmp(&b.keys.subject),
            SortKey::To => a.keys.to.cmp(&b.keys.to),
            SortKey::DisplayFrom => a.keys.display_from.cmp(&b.keys.display_from),
            SortKey::DisplayTo => a.keys.display_to.cmp(&b.keys.display_to),
        };
        let order = if c.reverse { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.seq.cmp(&b.seq)
}

fn charset_supported(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

impl Session<'_> {
    /// The sort data of the matches, in mailbox order.
    async fn items(&mut self, hits: &[Hit], uid: bool) -> Vec<Item> {
        let mut items = Vec::with_capacity(hits.len());
        for chunk in hits.chunks(256) {
            let metas: Vec<_> = {
                let Some(view) = self.selected.as_ref() else { return items };
                chunk.iter().filter_map(|h| view.msgs.get(h.index).map(|m| (h, m.meta.clone()))).collect()
            };
            let blobs: Vec<_> = metas.iter().map(|(_, m)| m.blob.clone()).collect();
            let summaries = self.summaries(&blobs).await;
            for ((hit, meta), summary) in metas.into_iter().zip(summaries) {
                // A body that cannot be read sorts with empty keys rather than vanishing.
                let keys = summary.map(|s| s.keys).unwrap_or_default();
                items.push(Item {
                    number: if uid { hit.uid } else { hit.seq },
                    seq: hit.seq,
                    size: meta.size,
                    arrival: meta.internal_date,
                    date: keys.date.unwrap_or(meta.internal_date),
                    keys,
                });
            }
        }
        items
    }

    /// SORT / UID SORT (RFC 5256 section 3), ESORT (RFC 5267 section 3).
    pub(crate) async fn sort(&mut self, tag: &str, cmd: SortCommand) -> Result<Outcome, Fatal> {
        if !charset_supported(&cmd.charset) {
            return Ok(no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"));
        }
        let hits = match self.matching(&cmd.keys).await {
            Ok(h) => h,
            Err(o) => return Ok(o),
        };
        // RFC 7162 section 3.1.9: with MODSEQ, the highest MODSEQ of the result.
        let modseq =
            (cmd.keys.iter().any(uses_modseq) && !hits.is_empty()).then(|| self.highest_modseq_of(&hits));
        let mut items = self.items(&hits, cmd.uid).await;
        items.sort_by(|a, b| compare(a, b, &cmd.criteria));
        let numbers: Vec<u32> = items.iter().map(|i| i.number).collect();
        match cmd.ret {
            None => {
                let mut line = String::from("SORT");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.untagged(&line);
            }
            Some(mut opts) => {
                if opts.is_empty() {
                    opts.push(SearchReturn::All);
                }
                let mut line = format!("ESEARCH (TAG \"{tag}\")");
                if cmd.uid {
                    line.push_str(" UID");
                }
                for opt in opts {
                    match opt {
                        SearchReturn::Min => {
                            if let Some(first) = numbers.first() {
                                line.push_str(&format!(" MIN {first}"));
                            }
                        }
                        SearchReturn::Max => {
                            if let Some(last) = numbers.last() {
                                line.push_str(&format!(" MAX {last}"));
                            }
                        }
                        SearchReturn::All if !numbers.is_empty() => {
                            // RFC 5267 section 3.2: in sort order, ranges only ascending.
                            line.push_str(&format!(" ALL {}", uid_set(&numbers)));
                        }
                        SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                        SearchReturn::All | SearchReturn::Save => {}
                    }
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" MODSEQ {m}"));
                }
                self.untagged(&line);
            }
        }
        Ok(ok("SORT completed"))
    }

    /// THREAD / UID THREAD (RFC 5256 section 4, BASE.6.4.THREAD).
    pub(crate) async fn thread(
        &mut self,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        keys: Vec<SearchKey>,
    ) -> Result<Outcome, Fatal> {
        if !charset_supported(charset) {
            return Ok(no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"));
        }
        let hits = match self.matching(&keys).await {
            Ok(h) => h,
            Err(o) => return Ok(o),
        };
        let items = self.items(&hits, uid).await;
        let forest = match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&items),
            ThreadAlgorithm::References => references(&items),
        };
        let mut line = b"* THREAD ".to_vec();
        for root in &forest.roots {
            forest.write(*root, &items, &mut line);
        }
        // No thread: `* THREAD` alone (thread-data = "THREAD" [SP 1*thread-list]).
        if forest.roots.is_empty() {
            line.pop();
        }
        line.extend_from_slice(b"\r\n");
        self.out().extend_from_slice(&line);
        Ok(ok("THREAD completed"))
    }
}

/// A node of a thread tree: a message (index into the items) or a dummy.
#[derive(Default, Clone)]
struct Node {
    item: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// Thread trees over the nodes; `roots` in response order.
#[derive(Default)]
struct Forest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

impl Forest {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Node { item, ..Node::default() });
        self.nodes.len() - 1
    }

    /// Whether `ancestor` is `node` or above it.
    fn is_ancestor(&self, ancestor: usize, mut node: usize) -> bool {
        let mut steps = 0;
        loop {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) if steps <= self.nodes.len() => {
                    node = p;
                    steps += 1;
                }
                _ => return false,
            }
        }
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The date a node sorts by: its message's, or for a dummy its first child's
    /// (RFC 5256 section 2.2 step 4), with the mailbox position as tie breaker.
    fn sort_date(&self, node: usize, items: &[Item]) -> (i64, u32) {
        match self.nodes[node].item {
            Some(i) => (items[i].date, items[i].seq),
            None => self.nodes[node].children.first().map_or((0, 0), |&c| self.sort_date(c, items)),
        }
    }

    /// Sorts every set of siblings below `node` by sent date, children first.
    fn sort_children(&mut self, node: usize, items: &[Item]) {
        let mut stack = vec![node];
        let mut order = Vec::new();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        for n in order.into_iter().rev() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            children.sort_by_key(|&c| self.sort_date(c, items));
            self.nodes[n].children = children;
        }
    }

    /// Writes one `thread-list` (RFC 5256 section 5): a chain of single children as
    /// `a b c`, several children as nested lists.
    fn write(&self, node: usize, items: &[Item], out: &mut Vec<u8>) {
        out.push(b'(');
        let mut cur = node;
        let mut first = true;
        loop {
            let n = &self.nodes[cur];
            if let Some(i) = n.item {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(items[i].number.to_string().as_bytes());
                first = false;
            }
            match n.children.as_slice() {
                [only] => cur = *only,
                [] => break,
                many => {
                    if !first {
                        out.push(b' ');
                    }
                    for &c in many {
                        self.write(c, items, out);
                    }
                    break;
                }
            }
        }
        out.push(b')');
    }
}

/// ORDEREDSUBJECT (RFC 5256 section 2.2): by base subject then sent date; each subject is
/// one thread whose first message is the parent of all the others.
fn ordered_subject(items: &[Item]) -> Forest {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&items[a], &items[b]);
        x.keys.subject.cmp(&y.keys.subject).then(x.date.cmp(&y.date)).then(x.seq.cmp(&y.seq))
    });
    let mut forest = Forest::default();
    let mut current: Option<(usize, &str)> = None;
    for i in order {
        let node = forest.add(Some(i));
        match current {
            Some((root, subject)) if subject == items[i].keys.subject => forest.link(root, node),
            _ => {
                forest.roots.push(node);
                current = Some((node, &items[i].keys.subject));
            }
        }
    }
    let mut roots = std::mem::take(&mut forest.roots);
    roots.sort_by_key(|&r| forest.sort_date(r, items));
    forest.roots = roots;
    forest
}

/// REFERENCES (RFC 5256 section 2.2, steps 1 to 6).
fn references(items: &[Item]) -> Forest {
    let mut forest = Forest::default();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    // Step 1: one container per message id; a missing or duplicate id gets a unique one.
    let mut own = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let node = match item.keys.message_id.as_deref() {
            Some(id) => match by_id.get(id).copied() {
                Some(existing) if forest.nodes[existing].item.is_none() => {
                    forest.nodes[existing].item = Some(i);
                    existing
                }
                // A duplicate id: this message stands alone, as if it had none.
                Some(_) => forest.add(Some(i)),
                None => {
                    let n = forest.add(Some(i));
                    by_id.insert(id.to_string(), n);
                    n
                }
            },
            None => forest.add(Some(i)),
        };
        own.push(node);
    }
    let mut container = |forest: &mut Forest, id: &str| match by_id.get(id) {
        Some(&n) => n,
        None => {
            let n = forest.add(None);
            by_id.insert(id.to_string(), n);
            n
        }
    };
    for (i, item) in items.iter().enumerate() {
        let refs: Vec<usize> = item.keys.references.iter().map(|id| container(&mut forest, id)).collect();
        // 1A: each reference the parent of the next, unless one already has a parent or
        // the link would make a loop.
        for pair in refs.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if parent != child && forest.nodes[child].parent.is_none() && !forest.is_ancestor(child, parent) {
                forest.link(parent, child);
            }
        }
        // 1B: the last reference becomes the message's parent (replacing any), unless that
        // makes a loop; no references: no parent.
        let node = own[i];
        match refs.last() {
            Some(&parent) if parent != node && !forest.is_ancestor(node, parent) => forest.link(parent, node),
            Some(_) => {}
            None => forest.unlink(node),
        }
    }
    // Step 2: the root set.
    let roots: Vec<usize> = (0..forest.nodes.len()).filter(|&n| forest.nodes[n].parent.is_none()).collect();
    // Step 3: prune dummies.
    let mut pruned_roots = Vec::new();
    for root in roots {
        prune(&mut forest, root);
        let n = &forest.nodes[root];
        match (n.item, n.children.len()) {
            (None, 0) => {}
            // A dummy root with one child: the child becomes the root.
            (None, 1) => {
                let child = n.children[0];
                forest.unlink(child);
                pruned_roots.push(child);
            }
            _ => pruned_roots.push(root),
        }
    }
    // Step 4: sort each thread's siblings, and the roots, by sent date.
    for &root in &pruned_roots {
        forest.sort_children(root, items);
    }
    pruned_roots.sort_by_key(|&r| forest.sort_date(r, items));
    // Step 5: gather roots with the same base subject.
    let subject_of = |forest: &Forest, root: usize| -> Option<(String, bool)> {
        let node = match forest.nodes[root].item {
            Some(_) => root,
            None => *forest.nodes[root].children.first()?,
        };
        let item = &items[forest.nodes[node].item?];
        Some((item.keys.subject.clone(), item.keys.reply)).filter(|(s, _)| !s.is_empty())
    };
    let mut table: HashMap<String, usize> = HashMap::new();
    for &root in &pruned_roots {
        let Some((subject, reply)) = subject_of(&forest, root) else { continue };
        let replace = match table.get(&subject) {
            None => true,
            Some(&other) => {
                let other_reply = subject_of(&forest, other).is_some_and(|(_, r)| r);
                (forest.nodes[root].item.is_none() && forest.nodes[other].item.is_some())
                    || (other_reply && !reply)
            }
        };
        if replace {
            table.insert(subject, root);
        }
    }
    for &root in &pruned_roots {
        let Some((subject, reply)) = subject_of(&forest, root) else { continue };
        let Some(&other) = table.get(&subject) else { continue };
        if other == root || forest.nodes[root].parent.is_some() {
            continue;
        }
        let root_dummy = forest.nodes[root].item.is_none();
        let other_dummy = forest.nodes[other].item.is_none();
        let other_reply = subject_of(&forest, other).is_some_and(|(_, r)| r);
        if root_dummy && other_dummy {
            for c in forest.nodes[root].children.clone() {
                forest.link(other, c);
            }
        } else if other_dummy || (reply && !other_reply) {
            forest.link(other, root);
        } else {
            // Both messages (or this one a dummy): a new dummy holds both, in the table's
            // place.
            let dummy = forest.add(None);
            forest.link(dummy, other);
            forest.link(dummy, root);
            table.insert(subject, dummy);
        }
    }
    // The roots now: containers without a parent that hold something (emptied and pruned
    // dummies drop out), each sorted again (step 6).
    let mut final_roots: Vec<usize> = (0..forest.nodes.len())
        .filter(|&n| {
            let node = &forest.nodes[n];
            node.parent.is_none() && (node.item.is_some() || !node.children.is_empty())
        })
        .collect();
    for &root in &final_roots {
        forest.sort_children(root, items);
    }
    final_roots.sort_by_key(|&r| forest.sort_date(r, items));
    forest.roots = final_roots;
    forest
}

/// Step 3 below `node`: a dummy without children goes; a dummy's children take its place
/// (at the root level only when there is one child, which the caller handles).
fn prune(forest: &mut Forest, node: usize) {
    let children = forest.nodes[node].children.clone();
    for child in children {
        prune(forest, child);
        if forest.nodes[child].item.is_none() {
            let grandchildren = forest.nodes[child].children.clone();
            forest.unlink(child);
            for g in grandchildren {
                forest.link(node, g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> Item {
        let (subject, reply) = postamt_mime::base_subject(subject);
        Item {
            number: seq,
            seq,
            size: 0,
            arrival: date,
            date,
            keys: SortKeys {
                subject,
                reply,
                message_id: (!id.is_empty()).then(|| id.to_string()),
                references: refs.iter().map(|r| r.to_string()).collect(),
                ..SortKeys::default()
            },
        }
    }

    fn render(forest: &Forest, items: &[Item]) -> String {
        let mut out = Vec::new();
        for &r in &forest.roots {
            forest.write(r, items, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn references_threads_replies_and_missing_parents() {
        let items = vec![
            item(1, 10, "Hello", "a", &[]),
            item(2, 20, "Re: Hello", "b", &["a"]),
            item(3, 30, "Other", "c", &[]),
            item(4, 40, "Re: Hello", "d", &["a", "b"]),
            item(5, 25, "Re: Hello", "e", &["a"]),
            // Parent never seen: a dummy for "x" with two children.
            item(6, 50, "Lost", "f", &["x"]),
            item(7, 60, "Re: Lost", "g", &["x"]),
            // A loop through references is ignored.
            item(8, 70, "Loop", "h", &["h"]),
        ];
        let forest = references(&items);
        assert_eq!(render(&forest, &items), "(1 (2 4)(5))(3)((6)(7))(8)");
    }

    #[test]
    fn references_gathers_subjects() {
        let items = vec![
            item(1, 10, "Topic", "a", &[]),
            // No references but the same base subject, as a reply: under message 1.
            item(2, 20, "Re: Topic", "b", &[]),
            // Two non-replies with the same subject: a dummy holds both.
            item(3, 30, "Twice", "c", &[]),
            item(4, 40, "Twice", "d", &[]),
            // Duplicate message id: stands alone.
            item(5, 50, "Dup", "c", &[]),
        ];
        let forest = references(&items);
        assert_eq!(render(&forest, &items), "(1 2)((3)(4))(5)");
    }

    #[test]
    fn ordered_subject_threads() {
        let items = vec![
            item(1, 30, "b", "", &[]),
            item(2, 10, "Re: a", "", &[]),
            item(3, 20, "b", "", &[]),
            item(4, 40, "a", "", &[]),
            item(5, 50, "a", "", &[]),
        ];
        let forest = ordered_subject(&items);
        assert_eq!(render(&forest, &items), "(2 (4)(5))(3 1)");
    }

    #[test]
    fn sort_criteria_with_reverse_and_ties() {
        let mut items = [item(1, 30, "b", "", &[]), item(2, 10, "a", "", &[]), item(3, 10, "b", "", &[])];
        let by = |key, reverse| SortCriterion { key, reverse };
        items.sort_by(|a, b| compare(a, b, &[by(SortKey::Subject, false), by(SortKey::Date, true)]));
        assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [2, 1, 3]);
        items.sort_by(|a, b| compare(a, b, &[by(SortKey::Date, false)]));
        assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [2, 3, 1]);
    }
}
