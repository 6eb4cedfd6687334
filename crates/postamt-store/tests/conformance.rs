//! Conformance tests of the `Store` contract.
//!
//! Written only against the trait (`SharedStore`), so that every backend runs the very same
//! tests: [`backends`] yields one fresh store per backend. The few things the trait cannot show
//! (the blob files on disk, the recorded reference count, a second handle on the same storage)
//! come from small per-backend hooks in [`Backend`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postamt_store::sqlite::SqliteStore;
use postamt_store::*;
use tokio::sync::broadcast;

/// One backend under test, on fresh storage.
struct Backend {
    name: &'static str,
    store: SharedStore,
    /// The data directory (with `blobs/`); removed when the test ends.
    dir: tempfile::TempDir,
    /// Opens another handle on the same storage: the CLI process beside the server, or the
    /// store after a restart.
    open: fn(&Path) -> SharedStore,
    /// The reference count the backend records for a blob; `None` when it has no record.
    refcount: fn(&Path, &BlobId) -> Option<i64>,
}

impl Backend {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Blob files on disk (temporaries excluded).
    fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().join("blobs")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read blob dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "tmp") {
                        stack.push(path);
                    }
                } else {
                    out.push(path);
                }
            }
        }
        out
    }

    fn blob_file_exists(&self, blob: &BlobId) -> bool {
        self.blob_files().iter().any(|p| p.file_name().is_some_and(|n| n == blob.hex().as_str()))
    }

    fn refcount(&self, blob: &BlobId) -> Option<i64> {
        (self.refcount)(self.path(), blob)
    }
}

fn backends() -> Vec<Backend> {
    vec![sqlite_backend()]
}

fn sqlite_backend() -> Backend {
    fn open(dir: &Path) -> SharedStore {
        Arc::new(SqliteStore::open(dir).expect("open SqliteStore"))
    }
    fn refcount(dir: &Path, blob: &BlobId) -> Option<i64> {
        let conn =
            rusqlite::Connection::open(dir.join(postamt_store::sqlite::DB_FILE)).expect("open database");
        conn.query_row("SELECT refcount FROM blobs WHERE hash = ?1", [blob.hex().as_str()], |r| r.get(0)).ok()
    }
    let dir = tempfile::tempdir().expect("tempdir");
    Backend { name: "sqlite", store: open(dir.path()), dir, open, refcount }
}

// ---- helpers ----

const DOMAIN: &str = "example.org";

async fn account(store: &SharedStore, address: &str) -> Account {
    let domain = address.rsplit_once('@').expect("address").1;
    if !store.is_local_domain(domain).await.expect("is_local_domain") {
        store.add_domain(domain).await.expect("add_domain");
    }
    store
        .create_account(NewAccount {
            address: address.to_string(),
            password_hash: "$argon2id$test".into(),
            quota: None,
            admin: false,
        })
        .await
        .expect("create_account")
}

/// A message body of exactly `len` bytes (at least the headers), distinct per `tag`.
fn body(tag: &str, len: usize) -> Vec<u8> {
    let mut b = format!("From: test@example.net\r\nSubject: {tag}\r\n\r\n").into_bytes();
    b.resize(len.max(b.len()), b'x');
    b
}

async fn put(store: &SharedStore, bytes: Vec<u8>) -> (BlobId, u64) {
    let size = bytes.len() as u64;
    (store.put_blob(Arc::new(bytes)).await.expect("put_blob"), size)
}

fn to_inbox(account: AccountId) -> DeliveryTarget {
    DeliveryTarget { account, mailbox: None, flags: Flags::NONE }
}

fn batch(blob: &BlobId, size: u64, targets: Vec<DeliveryTarget>) -> DeliveryBatch {
    DeliveryBatch {
        blob: blob.clone(),
        size,
        internal_date: 1_700_000_000,
        targets,
        enqueue: None,
        info: None,
    }
}

fn new_message(blob: &BlobId, size: u64) -> NewMessage {
    NewMessage {
        blob: blob.clone(),
        size,
        internal_date: 1_700_000_000,
        flags: Flags::NONE,
        keywords: Vec::new(),
        info: None,
    }
}

async fn mailbox(store: &SharedStore, account: AccountId, name: &str) -> Mailbox {
    store.mailbox_by_name(account, name).await.expect("mailbox_by_name").expect("mailbox exists")
}

async fn append_new(store: &SharedStore, account: AccountId, mailbox: MailboxId, tag: &str) -> Appended {
    let (blob, size) = put(store, body(tag, 100)).await;
    store.append(account, mailbox, new_message(&blob, size)).await.expect("append")
}

fn keywords(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn queue_entry(blob: &BlobId, size: u64, recipients: &[&str]) -> NewQueueEntry {
    NewQueueEntry {
        sender: "alice@example.org".into(),
        recipients: recipients
            .iter()
            .map(|r| QueueRecipient { address: r.to_string(), notify: None, orcpt: None })
            .collect(),
        blob: blob.clone(),
        size,
        envid: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
    }
}

fn nf<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

async fn next_event(rx: &mut broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("event in time").expect("event")
}

// ---- directory ----

#[tokio::test]
async fn domains() {
    for b in backends() {
        let s = &b.store;
        s.add_domain("Example.ORG").await.expect("add");
        s.add_domain("b.example").await.expect("add second");
        assert!(
            matches!(s.add_domain("example.org").await, Err(StoreError::AlreadyExists { .. })),
            "{}: duplicate domain",
            b.name
        );
        assert_eq!(s.list_domains().await.expect("list"), ["b.example", "example.org"]);
        assert!(s.is_local_domain("EXAMPLE.org").await.expect("is_local"));
        assert!(!s.is_local_domain("other.example").await.expect("is_local"));
        assert!(matches!(s.add_domain("").await, Err(StoreError::Invalid { .. })));
        assert!(matches!(s.add_domain("a b.example").await, Err(StoreError::Invalid { .. })));
        assert!(matches!(s.remove_domain("nowhere.example").await, Err(StoreError::NotFound { .. })));

        // Refused while an account or an alias of the domain exists.
        let alice = account(s, "alice@example.org").await;
        assert!(matches!(s.remove_domain("example.org").await, Err(StoreError::Invalid { .. })));
        s.add_alias("info@b.example", &alice.address).await.expect("alias");
        assert!(matches!(s.remove_domain("b.example").await, Err(StoreError::Invalid { .. })));
        s.remove_alias("info@b.example").await.expect("remove alias");
        s.remove_domain("B.example").await.expect("remove empty domain");
        s.remove_account("alice@example.org").await.expect("remove account");
        s.remove_domain("example.org").await.expect("remove domain");
        assert!(s.list_domains().await.expect("list").is_empty());
    }
}

#[tokio::test]
async fn dkim_keys_replace_and_go_with_the_domain() {
    fn key(selector: &str, algorithm: DkimAlgorithm, byte: u8) -> DkimKey {
        DkimKey {
            selector: selector.into(),
            algorithm,
            private_key: vec![byte; 48],
            public_key: vec![byte ^ 0xff; 32],
            created: 1_700_000_000,
        }
    }
    for b in backends() {
        let s = &b.store;
        assert!(
            matches!(s.set_dkim_keys("nowhere.example", vec![]).await, Err(StoreError::UnknownDomain(_))),
            "{}",
            b.name
        );
        s.add_domain("example.org").await.expect("add");
        assert!(s.dkim_keys("example.org").await.expect("none yet").is_empty());
        let first =
            vec![key("postamt-rsa", DkimAlgorithm::Rsa, 1), key("postamt-ed", DkimAlgorithm::Ed25519, 2)];
        s.set_dkim_keys("Example.ORG", first.clone()).await.expect("set");
        // Ordered by selector, bytes intact, visible to another handle (the CLI beside the server).
        let other = (b.open)(b.path());
        assert_eq!(other.dkim_keys("example.org").await.expect("keys"), [first[1].clone(), first[0].clone()]);
        // Replaced as a whole.
        let second = vec![key("s2", DkimAlgorithm::Ed25519, 3)];
        s.set_dkim_keys("example.org", second.clone()).await.expect("replace");
        assert_eq!(s.dkim_keys("EXAMPLE.org").await.expect("keys"), second);
        // Bad selectors change nothing.
        let dup = vec![key("a", DkimAlgorithm::Rsa, 4), key("a", DkimAlgorithm::Ed25519, 5)];
        assert!(matches!(s.set_dkim_keys("example.org", dup).await, Err(StoreError::Invalid { .. })));
        assert!(matches!(
            s.set_dkim_keys("example.org", vec![key("", DkimAlgorithm::Rsa, 6)]).await,
            Err(StoreError::Invalid { .. })
        ));
        assert_eq!(s.dkim_keys("example.org").await.expect("keys"), second);
        // The keys go with the domain, and a new domain of the same name starts without keys.
        s.remove_domain("example.org").await.expect("remove");
        s.add_domain("example.org").await.expect("add again");
        assert!(s.dkim_keys("example.org").await.expect("keys").is_empty());
        // Debug output never shows the private key.
        let shown = format!("{:?}", key("x", DkimAlgorithm::Rsa, 0x41));
        assert!(shown.contains("<48 bytes>") && !shown.contains("65, 65"), "{shown}");
    }
}

#[tokio::test]
async fn accounts_and_default_mailboxes() {
    for b in backends() {
        let s = &b.store;
        s.add_domain(DOMAIN).await.expect("domain");
        let alice = s
            .create_account(NewAccount {
                address: "Alice@Example.ORG".into(),
                password_hash: "hash1".into(),
                quota: Some(5000),
                admin: true,
            })
            .await
            .expect("create");
        assert_eq!(alice.address, "alice@example.org");
        assert_eq!(alice.domain, "example.org");
        assert_eq!(alice.password_hash, "hash1");
        assert_eq!(alice.quota, Some(5000));
        assert_eq!((alice.used_bytes, alice.used_messages), (0, 0));
        assert!(alice.imap_enabled && alice.pop3_enabled && alice.admin && !alice.disabled);

        let boxes = s.list_mailboxes(alice.id).await.expect("list_mailboxes");
        let mut got: Vec<_> = boxes.iter().map(|m| (m.name.clone(), m.special_use)).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<_> = DEFAULT_MAILBOXES.iter().map(|(n, r)| (n.to_string(), *r)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want, "{}", b.name);
        assert_eq!(boxes[0].name, "INBOX", "INBOX listed first");
        let validities: HashSet<u32> = boxes.iter().map(|m| m.uidvalidity).collect();
        assert_eq!(validities.len(), boxes.len(), "distinct UIDVALIDITY");
        for m in &boxes {
            assert_eq!(m.account, alice.id);
            assert_eq!((m.uidnext, m.highestmodseq, m.messages), (1, 1, 0));
            assert!(m.subscribed);
            assert!(m.uidvalidity > 0);
        }

        // Case-insensitive lookups.
        let found = s.account_by_address("ALICE@example.org").await.expect("lookup");
        assert_eq!(found.as_ref(), Some(&alice));
        assert_eq!(s.account_by_id(alice.id).await.expect("by id").as_ref(), Some(&alice));
        assert_eq!(s.account_by_id(alice.id + 1000).await.expect("by id"), None);
        assert_eq!(s.account_by_address("bob@example.org").await.expect("lookup"), None);
        assert_eq!(mailbox(s, alice.id, "inbox").await.name, "INBOX");

        // Refusals.
        let dup = NewAccount {
            address: "ALICE@example.org".into(),
            password_hash: String::new(),
            quota: None,
            admin: false,
        };
        assert!(matches!(s.create_account(dup.clone()).await, Err(StoreError::AlreadyExists { .. })));
        let foreign = NewAccount { address: "carol@elsewhere.example".into(), ..dup.clone() };
        assert!(matches!(s.create_account(foreign).await, Err(StoreError::UnknownDomain(_))));
        for bad in ["noat", "two@@example.org", "a@b@example.org", "sp ace@example.org", "@example.org", "x@"]
        {
            let new = NewAccount { address: bad.into(), ..dup.clone() };
            assert!(
                matches!(s.create_account(new).await, Err(StoreError::Invalid { .. })),
                "{}: {bad:?} refused",
                b.name
            );
        }

        // Settings.
        s.set_password_hash("alice@EXAMPLE.org", "hash2").await.expect("set hash");
        s.update_account_settings(
            "alice@example.org",
            AccountSettings { pop3_enabled: Some(false), disabled: Some(true), ..Default::default() },
        )
        .await
        .expect("settings");
        let alice2 = s.account_by_id(alice.id).await.expect("get").expect("exists");
        assert_eq!(alice2.password_hash, "hash2");
        assert!(alice2.imap_enabled && !alice2.pop3_enabled && alice2.admin && alice2.disabled);
        assert!(matches!(
            s.set_password_hash("nobody@example.org", "x").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.update_account_settings("nobody@example.org", AccountSettings::default()).await,
            Err(StoreError::NotFound { .. })
        ));

        let bob = account(s, "bob@example.org").await;
        let listed: Vec<_> = s.list_accounts().await.expect("list").into_iter().map(|a| a.address).collect();
        assert_eq!(listed, ["alice@example.org", "bob@example.org"]);

        // Removal takes mailboxes and aliases along.
        s.add_alias("bobby@example.org", "bob@example.org").await.expect("alias");
        s.remove_account("BOB@example.org").await.expect("remove");
        assert_eq!(s.account_by_id(bob.id).await.expect("get"), None);
        assert!(s.list_mailboxes(bob.id).await.expect("list").is_empty());
        assert!(s.list_aliases().await.expect("aliases").is_empty());
        assert_eq!(s.resolve_address("bobby@example.org").await.expect("resolve"), None);
        assert!(matches!(s.remove_account("bob@example.org").await, Err(StoreError::NotFound { .. })));
        // The address is free again.
        account(s, "bob@example.org").await;
    }
}

#[tokio::test]
async fn aliases_and_resolution() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        s.add_domain("other.example").await.expect("domain");

        s.add_alias("Postmaster@Example.org", "ALICE@example.org").await.expect("alias");
        s.add_alias("@example.org", "bob@example.org").await.expect("catch-all");
        s.add_alias("sales@other.example", "bob@example.org").await.expect("alias other domain");
        assert_eq!(
            s.list_aliases().await.expect("list"),
            [
                Alias { alias: "@example.org".into(), target: "bob@example.org".into() },
                Alias { alias: "postmaster@example.org".into(), target: "alice@example.org".into() },
                Alias { alias: "sales@other.example".into(), target: "bob@example.org".into() },
            ]
        );

        let resolve = |addr: &'static str| {
            let s = s.clone();
            async move { s.resolve_address(addr).await.expect("resolve").map(|a| a.id) }
        };
        // The account itself first, then the exact alias, then the catch-all.
        assert_eq!(resolve("alice@example.org").await, Some(alice.id));
        assert_eq!(resolve("ALICE@EXAMPLE.ORG").await, Some(alice.id));
        assert_eq!(resolve("postmaster@example.org").await, Some(alice.id));
        assert_eq!(resolve("PostMaster@example.org").await, Some(alice.id));
        assert_eq!(resolve("anything@example.org").await, Some(bob.id));
        assert_eq!(resolve("sales@other.example").await, Some(bob.id));
        assert_eq!(resolve("nobody@other.example").await, None);
        assert_eq!(resolve("alice@nowhere.example").await, None);
        assert_eq!(resolve("not an address").await, None);
        assert_eq!(resolve("@example.org").await, None, "a catch-all is not itself an address");

        // Duplicates across accounts and aliases, in both directions.
        for (alias, target) in [
            ("alice@example.org", "bob@example.org"),
            ("POSTMASTER@example.org", "bob@example.org"),
            ("@example.org", "alice@example.org"),
        ] {
            assert!(
                matches!(s.add_alias(alias, target).await, Err(StoreError::AlreadyExists { .. })),
                "{}: alias {alias} refused",
                b.name
            );
        }
        let as_account = NewAccount {
            address: "postmaster@example.org".into(),
            password_hash: String::new(),
            quota: None,
            admin: false,
        };
        assert!(matches!(s.create_account(as_account).await, Err(StoreError::AlreadyExists { .. })));

        // Other refusals.
        assert!(matches!(
            s.add_alias("x@example.org", "nobody@example.org").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.add_alias("x@nowhere.example", "alice@example.org").await,
            Err(StoreError::UnknownDomain(_))
        ));
        assert!(matches!(
            s.add_alias("x y@example.org", "alice@example.org").await,
            Err(StoreError::Invalid { .. })
        ));

        s.remove_alias("@EXAMPLE.org").await.expect("remove catch-all");
        assert_eq!(resolve("anything@example.org").await, None);
        assert!(matches!(s.remove_alias("@example.org").await, Err(StoreError::NotFound { .. })));
    }
}

// ---- quotas ----

#[tokio::test]
async fn quotas() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        s.set_quota("alice@example.org", Some(1000)).await.expect("set quota");
        assert_eq!(
            s.quota(alice.id).await.expect("quota"),
            QuotaUsage { used_bytes: 0, used_messages: 0, limit_bytes: Some(1000), limit_messages: None }
        );
        assert!(matches!(s.set_quota("nobody@example.org", None).await, Err(StoreError::NotFound { .. })));
        assert!(matches!(s.quota(alice.id + bob.id + 100).await, Err(StoreError::NotFound { .. })));

        let (blob, size) = put(s, body("q1", 600)).await;
        let targets = vec![to_inbox(alice.id), to_inbox(bob.id)];
        let first = s.deliver(batch(&blob, size, targets.clone())).await.expect("deliver");
        assert!(first.results.iter().all(Result::is_ok), "{}: {first:?}", b.name);

        // The second does not fit Alice's quota; Bob (unlimited) still gets it.
        let (blob2, size2) = put(s, body("q2", 600)).await;
        let second = s.deliver(batch(&blob2, size2, targets)).await.expect("deliver");
        assert_eq!(second.results[0], Err(DeliveryFailure::OverQuota));
        assert!(second.results[1].is_ok());
        assert_eq!(s.quota(alice.id).await.expect("quota").used_bytes, 600);
        assert_eq!(
            s.quota(bob.id).await.expect("quota"),
            QuotaUsage { used_bytes: 1200, used_messages: 2, limit_bytes: None, limit_messages: None }
        );

        // Append: 600 more does not fit, exactly the remaining 400 does.
        let inbox = mailbox(s, alice.id, "INBOX").await;
        assert!(matches!(
            s.append(alice.id, inbox.id, new_message(&blob2, size2)).await,
            Err(StoreError::OverQuota)
        ));
        let (blob3, size3) = put(s, body("q3", 400)).await;
        s.append(alice.id, inbox.id, new_message(&blob3, size3)).await.expect("append fits");
        let full = s.account_by_id(alice.id).await.expect("get").expect("exists");
        assert!(full.is_full());
        assert_eq!((full.used_bytes, full.used_messages), (1000, 2));
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list").len(), 2);

        // Expunging frees usage.
        s.expunge(alice.id, inbox.id, &[1]).await.expect("expunge");
        assert_eq!(
            s.quota(alice.id).await.expect("quota"),
            QuotaUsage { used_bytes: 400, used_messages: 1, limit_bytes: Some(1000), limit_messages: None }
        );
        s.set_quota("alice@example.org", None).await.expect("unlimited");
        let (big, big_size) = put(s, body("big", 5000)).await;
        s.append(alice.id, inbox.id, new_message(&big, big_size)).await.expect("unlimited append");
    }
}

/// Jobs committed together stay isolated: those over quota fail alone, the others count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_respect_quota_exactly() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        s.set_quota("alice@example.org", Some(10 * 100)).await.expect("quota");
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let (blob, size) = put(&s, body(&format!("c{i}"), 100)).await;
                s.append(alice.id, inbox.id, new_message(&blob, size)).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => ok += 1,
                Err(StoreError::OverQuota) => {}
                Err(e) => panic!("{}: unexpected {e}", b.name),
            }
        }
        assert_eq!(ok, 10, "{}", b.name);
        let q = s.quota(alice.id).await.expect("quota");
        assert_eq!((q.used_bytes, q.used_messages), (1000, 10));
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list").len(), 10);
    }
}

// ---- UIDs, MODSEQs, UIDVALIDITY ----

#[tokio::test]
async fn uids_and_modseqs_grow_and_are_never_reused() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;

        let mut last_modseq = inbox.highestmodseq;
        for expected_uid in 1..=3 {
            let a = append_new(s, alice.id, inbox.id, &format!("m{expected_uid}")).await;
            assert_eq!(a.uid, expected_uid);
            assert_eq!(a.mailbox, inbox.id);
            assert_eq!(a.uidvalidity, inbox.uidvalidity);
            assert!(a.modseq > last_modseq);
            last_modseq = a.modseq;
        }
        let mb = mailbox(s, alice.id, "INBOX").await;
        assert_eq!((mb.uidnext, mb.messages, mb.highestmodseq), (4, 3, last_modseq));

        assert_eq!(s.expunge(alice.id, inbox.id, &[3, 99]).await.expect("expunge"), [3]);
        let mb = mailbox(s, alice.id, "INBOX").await;
        assert_eq!((mb.uidnext, mb.messages), (4, 2));
        assert!(mb.highestmodseq > last_modseq, "expunge bumps HIGHESTMODSEQ");
        let after_expunge = mb.highestmodseq;

        let a = append_new(s, alice.id, inbox.id, "m4").await;
        assert_eq!(a.uid, 4, "UID 3 is not reused");
        assert!(a.modseq > after_expunge);

        // Expunging nothing changes nothing.
        assert!(s.expunge(alice.id, inbox.id, &[3]).await.expect("expunge").is_empty());
        assert_eq!(mailbox(s, alice.id, "INBOX").await.highestmodseq, a.modseq);

        let uids: Vec<Uid> =
            s.list_messages(alice.id, inbox.id).await.expect("list").iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 2, 4]);

        // Expunging everything and appending again still continues upwards.
        s.expunge(alice.id, inbox.id, &[1, 2, 4]).await.expect("expunge all");
        assert_eq!(append_new(s, alice.id, inbox.id, "m5").await.uid, 5);
    }
}

#[tokio::test]
async fn mailbox_lifecycle_and_uidvalidity() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;

        let p1 = s.create_mailbox(alice.id, "Projects", None).await.expect("create");
        assert_eq!((p1.uidnext, p1.highestmodseq, p1.messages), (1, 1, 0));
        assert_eq!(mailbox(s, alice.id, "Projects").await, p1);
        assert!(matches!(
            s.create_mailbox(alice.id, "Projects", None).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.create_mailbox(alice.id, "inbox", None).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(s.create_mailbox(alice.id, "", None).await, Err(StoreError::Invalid { .. })));
        let flagged = s.create_mailbox(alice.id, "Flagged", Some(SpecialUse::Flagged)).await.expect("create");
        assert_eq!(mailbox(s, alice.id, "Flagged").await.special_use, Some(SpecialUse::Flagged));
        assert!(flagged.uidvalidity > p1.uidvalidity);

        append_new(s, alice.id, p1.id, "p1").await;
        assert_eq!(s.quota(alice.id).await.expect("quota").used_messages, 1);

        // Rename keeps identity, UIDVALIDITY and messages.
        s.rename_mailbox(alice.id, p1.id, "Work/Projects").await.expect("rename");
        assert_eq!(s.mailbox_by_name(alice.id, "Projects").await.expect("lookup"), None);
        let renamed = mailbox(s, alice.id, "Work/Projects").await;
        assert_eq!((renamed.id, renamed.uidvalidity, renamed.messages), (p1.id, p1.uidvalidity, 1));
        assert!(matches!(
            s.rename_mailbox(alice.id, p1.id, "Sent").await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.rename_mailbox(alice.id, p1.id, "INBOX").await,
            Err(StoreError::AlreadyExists { .. })
        ));
        let inbox = mailbox(s, alice.id, "INBOX").await;
        assert!(matches!(s.rename_mailbox(alice.id, inbox.id, "Old").await, Err(StoreError::Invalid { .. })));
        assert!(matches!(s.delete_mailbox(alice.id, inbox.id).await, Err(StoreError::Invalid { .. })));

        // Delete releases its messages; a re-created mailbox of the same name gets a new,
        // larger UIDVALIDITY and starts over.
        s.delete_mailbox(alice.id, p1.id).await.expect("delete");
        assert_eq!(s.quota(alice.id).await.expect("quota").used_messages, 0);
        assert!(matches!(s.delete_mailbox(alice.id, p1.id).await, Err(StoreError::NotFound { .. })));
        assert!(matches!(s.list_messages(alice.id, p1.id).await, Err(StoreError::NotFound { .. })));
        let p2 = s.create_mailbox(alice.id, "Work/Projects", None).await.expect("recreate");
        assert_ne!(p2.id, p1.id);
        assert!(p2.uidvalidity > p1.uidvalidity, "{} > {}", p2.uidvalidity, p1.uidvalidity);
        assert!(p2.uidvalidity > flagged.uidvalidity);
        assert_eq!(append_new(s, alice.id, p2.id, "p2").await.uid, 1);

        // UIDVALIDITY is unique store-wide, across accounts too.
        let bob = account(s, "bob@example.org").await;
        let mut all = HashSet::new();
        for acct in [alice.id, bob.id] {
            for m in s.list_mailboxes(acct).await.expect("list") {
                assert!(all.insert(m.uidvalidity), "{}: duplicate UIDVALIDITY", b.name);
            }
        }
        assert!(matches!(
            s.create_mailbox(alice.id + bob.id + 100, "X", None).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

// ---- flags ----

#[tokio::test]
async fn store_flags_semantics() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let (blob, size) = put(s, body("f", 100)).await;
        let seen_msg = NewMessage {
            flags: Flags::SEEN,
            keywords: keywords(&["b", "a", "b"]),
            ..new_message(&blob, size)
        };
        s.append(alice.id, inbox.id, seen_msg).await.expect("append 1");
        s.append(alice.id, inbox.id, new_message(&blob, size)).await.expect("append 2");
        s.append(alice.id, inbox.id, new_message(&blob, size)).await.expect("append 3");
        let listed = s.list_messages(alice.id, inbox.id).await.expect("list");
        assert_eq!(listed[0].flags, Flags::SEEN);
        assert_eq!(listed[0].keywords, keywords(&["a", "b"]), "sorted, de-duplicated");
        let before = mailbox(s, alice.id, "INBOX").await.highestmodseq;

        let op = |mode, flags, kw: &[&str]| FlagOp { mode, flags, keywords: keywords(kw) };

        // Add \Flagged to 1..3 (and a UID that does not exist): all three change, each with its
        // own increasing MODSEQ.
        let changed = s
            .store_flags(alice.id, inbox.id, &[3, 1, 2, 99], op(FlagMode::Add, Flags::FLAGGED, &[]))
            .await
            .expect("store");
        assert_eq!(changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(changed.iter().all(|m| m.flags.contains(Flags::FLAGGED)));
        assert!(changed[0].flags.contains(Flags::SEEN));
        assert!(changed[0].modseq > before);
        assert!(changed.windows(2).all(|w| w[0].modseq < w[1].modseq));
        let hms = mailbox(s, alice.id, "INBOX").await.highestmodseq;
        assert_eq!(hms, changed[2].modseq);

        // Nothing changes: nothing returned, HIGHESTMODSEQ untouched.
        let none = s
            .store_flags(alice.id, inbox.id, &[1, 2, 3], op(FlagMode::Add, Flags::FLAGGED, &[]))
            .await
            .expect("store");
        assert!(none.is_empty());
        assert_eq!(mailbox(s, alice.id, "INBOX").await.highestmodseq, hms);

        // Remove \Seen: only message 1 had it.
        let changed = s
            .store_flags(alice.id, inbox.id, &[1, 2, 3], op(FlagMode::Remove, Flags::SEEN, &["a"]))
            .await
            .expect("store");
        assert_eq!(changed.len(), 1);
        assert_eq!((changed[0].uid, changed[0].flags), (1, Flags::FLAGGED));
        assert_eq!(changed[0].keywords, keywords(&["b"]));
        assert!(changed[0].modseq > hms);

        // Add keywords: sorted and de-duplicated.
        let changed = s
            .store_flags(alice.id, inbox.id, &[1], op(FlagMode::Add, Flags::NONE, &["c", "a", "c", "b"]))
            .await
            .expect("store");
        assert_eq!(changed[0].keywords, keywords(&["a", "b", "c"]));

        // Replace.
        let changed = s
            .store_flags(alice.id, inbox.id, &[1, 2], op(FlagMode::Replace, Flags::DRAFT, &["$x"]))
            .await
            .expect("store");
        assert_eq!(changed.len(), 2);
        let listed = s.list_messages(alice.id, inbox.id).await.expect("list");
        for m in &listed[..2] {
            assert_eq!((m.flags, m.keywords.clone()), (Flags::DRAFT, keywords(&["$x"])));
        }
        assert_eq!(listed[2].flags, Flags::FLAGGED);
        assert_eq!(listed[1].modseq, changed[1].modseq);
        assert_eq!(mailbox(s, alice.id, "INBOX").await.highestmodseq, changed[1].modseq);

        assert!(matches!(
            s.store_flags(alice.id, inbox.id, &[1], op(FlagMode::Add, Flags::NONE, &["a b"])).await,
            Err(StoreError::Invalid { .. })
        ));
    }
}

// ---- isolation between accounts ----

/// RFC 7162: changes since a MODSEQ (flag changes, new messages, tombstones of expunged and
/// moved-away UIDs), conditional STORE, and the message-count quota.
#[tokio::test]
async fn changes_since_tombstones_and_conditional_store() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        for tag in ["1", "2", "3", "4", "5"] {
            append_new(s, alice.id, inbox.id, tag).await;
        }
        let full = s.changes_since(alice.id, inbox.id, 0).await.expect("full");
        assert_eq!(full.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(full.vanished.is_empty());
        assert!(full.changed.iter().all(|m| m.savedate > 1_700_000_000), "savedate is when saved");
        let mark = full.highestmodseq;
        assert_eq!(mark, mailbox(s, alice.id, "INBOX").await.highestmodseq);
        assert_eq!(s.changes_since(alice.id, inbox.id, mark).await.expect("none").changed, []);

        let seen = |mode| FlagOp { mode, flags: Flags::SEEN, keywords: vec![] };
        s.store_flags(alice.id, inbox.id, &[2], seen(FlagMode::Add)).await.expect("flag");
        assert_eq!(s.expunge(alice.id, inbox.id, &[3]).await.expect("expunge"), [3]);
        s.move_messages(alice.id, inbox.id, &[4], archive.id).await.expect("move");
        append_new(s, alice.id, inbox.id, "6").await;
        let changes = s.changes_since(alice.id, inbox.id, mark).await.expect("changes");
        assert_eq!(changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 6]);
        assert_eq!(changes.vanished, [3, 4]);
        assert_eq!(changes.highestmodseq, mark + 4);
        assert_eq!(changes.uidnext, 7);
        // Tombstones carry the MODSEQ of their expunge.
        let later = s.changes_since(alice.id, inbox.id, mark + 2).await.expect("later");
        assert_eq!(later.vanished, [4]);

        // UNCHANGEDSINCE: message 2 changed after `mark`, message 1 did not.
        let cond = s
            .store_flags_if(alice.id, inbox.id, &[1, 2], seen(FlagMode::Add), Some(mark))
            .await
            .expect("conditional");
        assert_eq!(cond.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1]);
        assert_eq!(cond.modified, [2]);
        let zero = s
            .store_flags_if(alice.id, inbox.id, &[5], seen(FlagMode::Add), Some(0))
            .await
            .expect("conditional 0");
        assert!(zero.changed.is_empty());
        assert_eq!(zero.modified, [5]);

        // A deleted mailbox's tombstones go with it.
        s.delete_mailbox(alice.id, archive.id).await.expect("delete");
        assert!(nf(s.changes_since(alice.id, archive.id, 1).await));

        // The message-count limit.
        s.set_quota_limits(alice.id, None, Some(4)).await.expect("limits");
        let usage = s.quota(alice.id).await.expect("quota");
        assert_eq!((usage.used_messages, usage.limit_messages, usage.limit_bytes), (4, Some(4), None));
        let (blob, size) = put(s, body("over", 100)).await;
        assert!(matches!(
            s.append(alice.id, inbox.id, new_message(&blob, size)).await,
            Err(StoreError::OverQuota)
        ));
        s.set_quota_limits(alice.id, Some(10_000), None).await.expect("limits");
        s.append(alice.id, inbox.id, new_message(&blob, size)).await.expect("fits again");
    }
}

#[tokio::test]
async fn cross_account_access_is_refused() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let bob_inbox = mailbox(s, bob.id, "INBOX").await;
        let bob_msg = append_new(s, bob.id, bob_inbox.id, "bob's").await;
        let (blob, size) = put(s, body("x", 100)).await;

        assert!(nf(s.list_messages(alice.id, bob_inbox.id).await));
        assert!(nf(s.append(alice.id, bob_inbox.id, new_message(&blob, size)).await));
        let op = FlagOp { mode: FlagMode::Add, flags: Flags::DELETED, keywords: Vec::new() };
        assert!(nf(s.store_flags(alice.id, bob_inbox.id, &[bob_msg.uid], op).await));
        assert!(nf(s.expunge(alice.id, bob_inbox.id, &[bob_msg.uid]).await));
        let bob_sent = mailbox(s, bob.id, "Sent").await;
        assert!(nf(s.delete_mailbox(alice.id, bob_sent.id).await));
        assert!(nf(s.rename_mailbox(alice.id, bob_sent.id, "Mine").await));

        let out = s
            .deliver(batch(
                &blob,
                size,
                vec![
                    DeliveryTarget { account: alice.id, mailbox: Some(bob_inbox.id), flags: Flags::NONE },
                    to_inbox(alice.id + bob.id + 100),
                    to_inbox(alice.id),
                ],
            ))
            .await
            .expect("deliver");
        assert_eq!(out.results[0], Err(DeliveryFailure::NoSuchMailbox));
        assert_eq!(out.results[1], Err(DeliveryFailure::NoSuchAccount));
        assert!(out.results[2].is_ok());

        // Bob's data is untouched.
        let msgs = s.list_messages(bob.id, bob_inbox.id).await.expect("list");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].flags, Flags::NONE);
        assert!(s.mailbox_by_name(bob.id, "Sent").await.expect("lookup").is_some());
        assert_eq!(s.mailbox_by_name(alice.id, "Mine").await.expect("lookup"), None);
        assert_eq!(s.quota(bob.id).await.expect("quota").used_messages, 1);
    }
}

// ---- blobs ----

#[tokio::test]
async fn blobs_are_deduplicated_and_reference_counted() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let bytes = body("shared", 2000);
        let (blob, size) = put(s, bytes.clone()).await;
        let (again, _) = put(s, bytes.clone()).await;
        assert_eq!(blob, again);
        assert_eq!(blob, BlobId::of(&bytes));
        assert_eq!(b.blob_files().len(), 1);
        assert_eq!(b.refcount(&blob), None, "{}: put_blob alone takes no reference", b.name);

        let out =
            s.deliver(batch(&blob, size, vec![to_inbox(alice.id), to_inbox(bob.id)])).await.expect("deliver");
        assert!(out.results.iter().all(Result::is_ok));
        assert_eq!(b.blob_files().len(), 1, "one file for two messages");
        assert_eq!(b.refcount(&blob), Some(2));
        assert_eq!(s.read_blob(&blob).await.expect("read"), bytes);

        let a_inbox = mailbox(s, alice.id, "INBOX").await;
        let b_inbox = mailbox(s, bob.id, "INBOX").await;
        s.expunge(alice.id, a_inbox.id, &[1]).await.expect("expunge alice");
        assert_eq!(b.refcount(&blob), Some(1));
        assert!(b.blob_file_exists(&blob));

        s.expunge(bob.id, b_inbox.id, &[1]).await.expect("expunge bob");
        assert_eq!(b.refcount(&blob), None);
        assert!(!b.blob_file_exists(&blob), "{}: last reference removes the file", b.name);
        assert!(matches!(s.read_blob(&blob).await, Err(StoreError::BlobMissing(_))));

        // Removing an account or a mailbox releases references too.
        let (blob2, size2) = put(s, body("second", 300)).await;
        let a_sent = mailbox(s, alice.id, "Sent").await;
        s.deliver(batch(
            &blob2,
            size2,
            vec![
                to_inbox(alice.id),
                DeliveryTarget { account: alice.id, mailbox: Some(a_sent.id), flags: Flags::SEEN },
                to_inbox(bob.id),
            ],
        ))
        .await
        .expect("deliver");
        assert_eq!(b.refcount(&blob2), Some(3));
        s.delete_mailbox(alice.id, a_sent.id).await.expect("delete mailbox");
        assert_eq!(b.refcount(&blob2), Some(2));
        s.remove_account("alice@example.org").await.expect("remove account");
        assert_eq!(b.refcount(&blob2), Some(1));
        assert!(b.blob_file_exists(&blob2));
        s.remove_account("bob@example.org").await.expect("remove account");
        assert_eq!(b.refcount(&blob2), None);
        assert!(b.blob_files().is_empty(), "{:?}", b.blob_files());
    }
}

#[tokio::test]
async fn missing_blob_fails_until_written_again() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let bytes = body("gc", 500);
        let (blob, size) = put(s, bytes.clone()).await;
        s.deliver(batch(&blob, size, vec![to_inbox(alice.id)])).await.expect("deliver");
        s.expunge(alice.id, inbox.id, &[1]).await.expect("expunge");
        assert!(!b.blob_file_exists(&blob));

        // The body is gone: delivering it again must fail as a whole, with nothing stored.
        let failed = s.deliver(batch(&blob, size, vec![to_inbox(alice.id)])).await;
        assert!(matches!(failed, Err(StoreError::BlobMissing(_))), "{}: {failed:?}", b.name);
        assert!(s.list_messages(alice.id, inbox.id).await.expect("list").is_empty());
        assert_eq!(s.quota(alice.id).await.expect("quota").used_messages, 0);
        let never = BlobId::of(b"never stored");
        assert!(matches!(
            s.append(alice.id, inbox.id, new_message(&never, 12)).await,
            Err(StoreError::BlobMissing(_))
        ));
        assert!(matches!(
            s.enqueue(queue_entry(&never, 12, &["x@remote.example"])).await,
            Err(StoreError::BlobMissing(_))
        ));
        assert!(s.queue_list().await.expect("queue").is_empty());

        // Written again, the same id works.
        let (again, _) = put(s, bytes.clone()).await;
        assert_eq!(again, blob);
        let out = s.deliver(batch(&blob, size, vec![to_inbox(alice.id)])).await.expect("deliver");
        assert_eq!(out.results[0].map(|a| a.uid), Ok(2));
        assert_eq!(s.read_blob(&blob).await.expect("read"), bytes);
        assert_eq!(b.refcount(&blob), Some(1));
    }
}

// ---- queue ----

#[tokio::test]
async fn outbound_queue() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let (blob, size) = put(s, body("outbound", 700)).await;
        let entry = NewQueueEntry {
            sender: String::new(),
            recipients: vec![
                QueueRecipient {
                    address: "x@remote.example".into(),
                    notify: Some("SUCCESS,FAILURE".into()),
                    orcpt: Some("rfc822;x@remote.example".into()),
                },
                QueueRecipient { address: "y@remote.example".into(), notify: None, orcpt: None },
            ],
            blob: blob.clone(),
            size,
            envid: Some("env-1".into()),
            ret: Some("HDRS".into()),
            smtputf8: true,
            body_8bit: true,
        };
        let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
            as i64;
        let id1 = s.enqueue(entry.clone()).await.expect("enqueue");
        assert_eq!(b.refcount(&blob), Some(1));

        let got = s.queue_get(&id1).await.expect("get").expect("exists");
        assert_eq!(got.id, id1);
        assert_eq!(got.sender, "");
        assert_eq!((got.blob.clone(), got.size), (blob.clone(), size));
        assert_eq!((got.envid.as_deref(), got.ret.as_deref()), (Some("env-1"), Some("HDRS")));
        assert!(got.smtputf8 && got.body_8bit);
        assert_eq!(got.attempts, 0);
        assert_eq!(got.created, got.next_attempt);
        assert!((got.created - t0).abs() <= 5);
        let recipients: Vec<_> = got.recipients.iter().map(|r| r.recipient.clone()).collect();
        assert_eq!(recipients, entry.recipients);
        assert!(
            got.recipients.iter().all(|r| r.status == RecipientStatus::Pending && r.last_reply.is_none())
        );

        // A delivery with local and remote recipients: one transaction, two references.
        let mut with_queue = batch(&blob, size, vec![to_inbox(alice.id)]);
        with_queue.enqueue = Some(queue_entry(&blob, size, &["z@remote.example"]));
        let out = s.deliver(with_queue).await.expect("deliver");
        assert!(out.results[0].is_ok());
        let id2 = out.queued.expect("queued");
        assert_ne!(id1, id2);
        assert_eq!(b.refcount(&blob), Some(3));

        let listed: Vec<_> = s.queue_list().await.expect("list").into_iter().map(|e| e.id).collect();
        assert_eq!(listed, [id1.clone(), id2.clone()], "ordered by creation");

        s.queue_delete(&id1).await.expect("delete");
        assert_eq!(s.queue_get(&id1).await.expect("get"), None);
        assert!(matches!(s.queue_delete(&id1).await, Err(StoreError::NotFound { .. })));
        assert_eq!(b.refcount(&blob), Some(2));
        s.queue_delete(&id2).await.expect("delete");
        assert_eq!(b.refcount(&blob), Some(1));
        assert!(b.blob_file_exists(&blob), "the local message still holds it");
        s.expunge(alice.id, mailbox(s, alice.id, "INBOX").await.id, &[1]).await.expect("expunge");
        assert!(!b.blob_file_exists(&blob));
        assert!(s.queue_list().await.expect("list").is_empty());

        let (blob2, size2) = put(s, body("only queued", 100)).await;
        let id3 = s.enqueue(queue_entry(&blob2, size2, &["q@remote.example"])).await.expect("enqueue");
        s.queue_delete(&id3).await.expect("delete");
        assert!(!b.blob_file_exists(&blob2), "queue_delete releases the last reference");

        assert!(matches!(
            s.enqueue(queue_entry(&blob2, size2, &[])).await,
            Err(StoreError::Invalid { .. }) | Err(StoreError::BlobMissing(_))
        ));
    }
}

#[tokio::test]
async fn queue_claims_updates_and_flushes() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let (blob, size) = put(s, body("to deliver", 300)).await;
        let id = s
            .enqueue(queue_entry(&blob, size, &["x@remote.example", "y@remote.example", "z@other.example"]))
            .await
            .expect("enqueue");
        let t = s.queue_get(&id).await.expect("get").expect("exists").next_attempt;

        // Due at its creation; leased entries are not claimed twice.
        assert!(s.queue_claim(t - 1, 10, t + 60).await.expect("claim").is_empty(), "not due yet");
        assert!(s.queue_claim(t, 0, t + 60).await.expect("claim").is_empty(), "limit 0");
        let claims = s.queue_claim(t, 10, t + 60).await.expect("claim");
        assert_eq!(claims.len(), 1, "{}", b.name);
        assert_eq!(claims[0].entry.id, id);
        assert_eq!(claims[0].lease_until, t + 60);
        assert!(s.queue_claim(t + 30, 10, t + 90).await.expect("claim").is_empty(), "leased");
        let other = (b.open)(b.path());
        assert!(
            other.queue_claim(t + 30, 10, t + 90).await.expect("claim").is_empty(),
            "leased for others too"
        );
        // Renewing keeps it; an expired lease is taken over with a new token.
        s.queue_renew(&id, &claims[0].token, t + 120).await.expect("renew");
        assert!(s.queue_claim(t + 100, 10, t + 200).await.expect("claim").is_empty(), "renewed");
        let taken = other.queue_claim(t + 120, 10, t + 300).await.expect("claim");
        assert_eq!(taken.len(), 1);
        assert_ne!(taken[0].token, claims[0].token);
        let stale = claims[0].token.clone();
        let token = taken[0].token.clone();
        assert!(nf(s.queue_renew(&id, &stale, t + 500).await), "stale lease cannot renew");
        assert!(nf(s.queue_renew("nonexistent", &token, t + 500).await));

        // The outcome of an attempt, with a notification, in one transaction.
        let (dsn_blob, dsn_size) = put(s, body("a delivery status notification", 200)).await;
        let update = |outcomes: Vec<RecipientOutcome>, notification: Option<DeliveryBatch>| QueueUpdate {
            outcomes,
            attempts: 1,
            next_attempt: t + 600,
            notification,
        };
        let outcome = |address: &str, status, reply: &str| RecipientOutcome {
            address: address.into(),
            status,
            last_reply: Some(reply.into()),
        };
        let first = vec![
            outcome("x@remote.example", RecipientStatus::Delivered, "250 ok"),
            outcome("y@remote.example", RecipientStatus::Failed, "550 5.1.1 unknown"),
            outcome("z@other.example", RecipientStatus::Pending, "452 4.2.2 full"),
        ];
        let stale_update = s.queue_update(&id, &stale, update(first.clone(), None)).await;
        assert!(nf(stale_update), "a lost lease changes nothing");
        let bogus = vec![outcome("nobody@remote.example", RecipientStatus::Delivered, "250 ok")];
        assert!(matches!(
            s.queue_update(&id, &token, update(bogus, None)).await,
            Err(StoreError::Invalid { .. })
        ));
        let notification = batch(&dsn_blob, dsn_size, vec![to_inbox(alice.id)]);
        let done = s.queue_update(&id, &token, update(first, Some(notification))).await.expect("update");
        assert!(!done.completed);
        let filed = done.notification.expect("notification outcome");
        assert!(filed.results[0].is_ok());
        let inbox = mailbox(s, alice.id, "INBOX").await;
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list").len(), 1);

        let got = s.queue_get(&id).await.expect("get").expect("still queued");
        assert_eq!((got.attempts, got.next_attempt), (1, t + 600));
        let states: Vec<_> =
            got.recipients.iter().map(|r| (r.status, r.last_reply.clone().unwrap_or_default())).collect();
        assert_eq!(
            states,
            [
                (RecipientStatus::Delivered, "250 ok".to_string()),
                (RecipientStatus::Failed, "550 5.1.1 unknown".to_string()),
                (RecipientStatus::Pending, "452 4.2.2 full".to_string()),
            ]
        );
        // The lease is released with the update, and the entry waits for its next attempt.
        assert!(nf(s.queue_renew(&id, &token, t + 700).await));
        assert!(s.queue_claim(t + 599, 10, t + 700).await.expect("claim").is_empty());

        // Flushing makes it due now (the store's clock), for one id or all.
        assert!(nf(s.queue_flush(Some("nonexistent")).await));
        assert_eq!(s.queue_flush(Some(&id)).await.expect("flush"), 1);
        let flushed = s.queue_get(&id).await.expect("get").expect("queued").next_attempt;
        assert!(flushed <= t + 5, "{flushed} vs {t}");
        assert_eq!(s.queue_flush(None).await.expect("flush all"), 0, "nothing is in the future");
        let claims = s.queue_claim(flushed, 10, flushed + 60).await.expect("claim");
        assert_eq!(claims.len(), 1);
        let pending: Vec<_> = claims[0]
            .entry
            .recipients
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
            .map(|r| r.recipient.address.as_str())
            .collect();
        assert_eq!(pending, ["z@other.example"]);

        // The last pending recipient done: the entry goes, and with it the blob reference.
        assert_eq!(b.refcount(&blob), Some(1));
        let last = QueueUpdate {
            outcomes: vec![outcome("z@other.example", RecipientStatus::Delivered, "250 ok")],
            attempts: 2,
            next_attempt: flushed + 60,
            notification: None,
        };
        let done = s.queue_update(&id, &claims[0].token, last).await.expect("final update");
        assert!(done.completed && done.notification.is_none());
        assert_eq!(s.queue_get(&id).await.expect("get"), None);
        assert_eq!(b.refcount(&blob), None);
        assert!(!b.blob_file_exists(&blob));
        assert!(b.blob_file_exists(&dsn_blob), "the notification holds its own body");

        // Two runners sharing the storage claim disjoint entries.
        let mut ids = HashSet::new();
        for i in 0..6 {
            let (blob, size) = put(s, body(&format!("many {i}"), 50)).await;
            ids.insert(s.enqueue(queue_entry(&blob, size, &["m@remote.example"])).await.expect("enqueue"));
        }
        let now = t + 10_000;
        let (mine, theirs) =
            tokio::join!(s.queue_claim(now, 4, now + 60), other.queue_claim(now, 4, now + 60));
        let (mine, theirs) = (mine.expect("claim"), theirs.expect("claim"));
        assert_eq!(mine.len() + theirs.len(), 6, "{} + {}", mine.len(), theirs.len());
        let claimed: HashSet<_> = mine.iter().chain(&theirs).map(|c| c.entry.id.clone()).collect();
        assert_eq!(claimed, ids);
    }
}

// ---- events ----

#[tokio::test]
async fn events_follow_committed_changes() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        s.set_quota("alice@example.org", Some(10_000)).await.expect("quota");
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let mut rx = s.events().subscribe(alice.id);
        let mut bob_rx = s.events().subscribe(bob.id);

        let (blob, size) = put(s, body("ev", 100)).await;
        let out = s.deliver(batch(&blob, size, vec![to_inbox(alice.id)])).await.expect("deliver");
        let added = out.results[0].expect("delivered");
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::MessageAdded { mailbox: inbox.id, uid: added.uid, modseq: added.modseq }
        );

        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: Vec::new() };
        let changed = s.store_flags(alice.id, inbox.id, &[added.uid], op).await.expect("flags");
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::FlagsChanged { mailbox: inbox.id, uid: added.uid, modseq: changed[0].modseq }
        );

        s.expunge(alice.id, inbox.id, &[added.uid, 77]).await.expect("expunge");
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::Expunged { mailbox: inbox.id, uids: vec![added.uid] }
        );

        let created = s.create_mailbox(alice.id, "Lists", None).await.expect("create");
        assert_eq!(next_event(&mut rx).await, ChangeEvent::MailboxCreated { mailbox: created.id });
        s.rename_mailbox(alice.id, created.id, "Lists2").await.expect("rename");
        assert_eq!(next_event(&mut rx).await, ChangeEvent::MailboxRenamed { mailbox: created.id });
        s.delete_mailbox(alice.id, created.id).await.expect("delete");
        assert_eq!(next_event(&mut rx).await, ChangeEvent::MailboxDeleted { mailbox: created.id });

        // Failed operations publish nothing.
        let (big, big_size) = put(s, body("too big", 20_000)).await;
        assert!(s.append(alice.id, inbox.id, new_message(&big, big_size)).await.is_err());
        let out = s.deliver(batch(&big, big_size, vec![to_inbox(alice.id)])).await.expect("deliver");
        assert_eq!(out.results[0], Err(DeliveryFailure::OverQuota));
        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: Vec::new() };
        assert!(s.store_flags(alice.id, inbox.id, &[added.uid], op).await.expect("flags").is_empty());
        // A later event shows that nothing else was queued before it.
        let last = append_new(s, alice.id, inbox.id, "last").await;
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::MessageAdded { mailbox: inbox.id, uid: last.uid, modseq: last.modseq }
        );
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)));
        assert!(
            matches!(bob_rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)),
            "{}: other accounts hear nothing",
            b.name
        );
    }
}

// ---- concurrency and persistence ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_get_distinct_uids() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        const N: u32 = 200;
        let mut tasks = Vec::new();
        for i in 0..N {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let (blob, size) = put(&s, body(&format!("concurrent {i}"), 200)).await;
                s.deliver(batch(&blob, size, vec![to_inbox(alice.id), to_inbox(bob.id)])).await
            }));
        }
        let mut uids = HashSet::new();
        let mut modseqs = HashSet::new();
        for t in tasks {
            let out = t.await.expect("join").expect("deliver");
            let a = out.results[0].expect("alice");
            assert!(uids.insert(a.uid), "{}: UID {} given twice", b.name, a.uid);
            assert!(modseqs.insert(a.modseq));
            out.results[1].expect("bob");
        }
        assert_eq!(uids, (1..=N).collect::<HashSet<_>>());
        for acct in [alice.id, bob.id] {
            let inbox = mailbox(s, acct, "INBOX").await;
            assert_eq!((inbox.uidnext, inbox.messages), (N + 1, N));
            let listed = s.list_messages(acct, inbox.id).await.expect("list");
            assert_eq!(listed.len(), N as usize);
            assert!(listed.windows(2).all(|w| w[0].uid < w[1].uid));
            assert_eq!(s.quota(acct).await.expect("quota").used_messages, u64::from(N));
        }
        assert_eq!(b.blob_files().len(), N as usize);
    }
}

#[tokio::test]
async fn reopening_keeps_everything() {
    for b in backends() {
        let alice;
        let inbox;
        let first;
        let queued;
        {
            let s = &b.store;
            alice = account(s, "alice@example.org").await;
            s.add_alias("al@example.org", "alice@example.org").await.expect("alias");
            s.set_quota("alice@example.org", Some(1_000_000)).await.expect("quota");
            inbox = mailbox(s, alice.id, "INBOX").await;
            first = append_new(s, alice.id, inbox.id, "persist").await;
            let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: keywords(&["$done"]) };
            s.store_flags(alice.id, inbox.id, &[first.uid], op).await.expect("flags");
            let (blob, size) = put(s, body("queued", 100)).await;
            queued = s.enqueue(queue_entry(&blob, size, &["r@remote.example"])).await.expect("enqueue");
        }
        let before_msgs = b.store.list_messages(alice.id, inbox.id).await.expect("list");
        let before_boxes = b.store.list_mailboxes(alice.id).await.expect("list");
        let Backend { store, dir, open, name, .. } = b;
        drop(store);

        let s = open(dir.path());
        assert_eq!(s.list_domains().await.expect("domains"), [DOMAIN]);
        let again = s.account_by_address("alice@example.org").await.expect("get").expect("exists");
        assert_eq!(again.id, alice.id);
        assert_eq!(again.quota, Some(1_000_000));
        assert_eq!(again.used_messages, 1);
        assert_eq!(s.resolve_address("al@example.org").await.expect("resolve").map(|a| a.id), Some(alice.id));
        assert_eq!(s.list_mailboxes(alice.id).await.expect("list"), before_boxes, "{name}");
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list"), before_msgs);
        let msg = &before_msgs[0];
        assert!(msg.flags.contains(Flags::SEEN));
        assert_eq!(s.read_blob(&msg.blob).await.expect("body").len(), 100);
        assert!(s.queue_get(&queued).await.expect("queue").is_some());

        let next = append_new(&s, alice.id, inbox.id, "after reopen").await;
        assert_eq!(next.uid, first.uid + 1);
        assert_eq!(next.uidvalidity, first.uidvalidity);
        assert!(next.modseq > msg.modseq);
        drop(dir);
    }
}

/// Two handles on one directory, as the CLI process beside a running server: both write at the
/// same time without errors, and each sees the other's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_directory() {
    for b in backends() {
        let server = b.store.clone();
        let cli = (b.open)(b.path());
        let alice = account(&server, "alice@example.org").await;

        const N: usize = 60;
        let mut tasks = Vec::new();
        for i in 0..N {
            for (who, s) in [("server", server.clone()), ("cli", cli.clone())] {
                tasks.push(tokio::spawn(async move {
                    let (blob, size) = put(&s, body(&format!("{who} {i}"), 150)).await;
                    let out = s.deliver(batch(&blob, size, vec![to_inbox(alice.id)])).await?;
                    out.results[0].map_err(|e| StoreError::Database(format!("{e:?}")))
                }));
            }
        }
        // Directory changes from the "CLI" at the same time.
        let admin = {
            let cli = cli.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let new = NewAccount {
                        address: format!("user{i}@example.org"),
                        password_hash: String::new(),
                        quota: None,
                        admin: false,
                    };
                    cli.create_account(new).await?;
                }
                Ok::<_, StoreError>(())
            })
        };
        let mut uids = HashSet::new();
        for t in tasks {
            let appended = t.await.expect("join").unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert!(uids.insert(appended.uid));
        }
        admin.await.expect("join").expect("create accounts from the second instance");

        assert_eq!(uids.len(), 2 * N);
        let inbox_server = mailbox(&server, alice.id, "INBOX").await;
        let inbox_cli = mailbox(&cli, alice.id, "INBOX").await;
        assert_eq!(inbox_server, inbox_cli);
        assert_eq!(inbox_server.messages as usize, 2 * N);
        assert_eq!(inbox_server.uidnext as usize, 2 * N + 1);
        assert_eq!(server.list_accounts().await.expect("list").len(), 11);
        assert_eq!(cli.quota(alice.id).await.expect("quota").used_messages as usize, 2 * N);
    }
}

// ---- IMAP support: copy and move ----

#[tokio::test]
async fn copy_keeps_metadata_and_shares_the_blob() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        let (blob1, size1) = put(s, body("copy 1", 300)).await;
        let (blob2, size2) = put(s, body("copy 2", 500)).await;
        let m1 = NewMessage {
            flags: Flags::SEEN.union(Flags::FLAGGED),
            keywords: keywords(&["work", "$label1"]),
            internal_date: 1_600_000_000,
            ..new_message(&blob1, size1)
        };
        let m1 = s.append(alice.id, inbox.id, m1).await.expect("append 1");
        let m2 =
            NewMessage { flags: Flags::DELETED, internal_date: 1_650_000_000, ..new_message(&blob2, size2) };
        let m2 = s.append(alice.id, inbox.id, m2).await.expect("append 2");
        // Something in the target already, so the copies' UIDs do not start at 1.
        append_new(s, alice.id, archive.id, "already there").await;
        let archive_before = mailbox(s, alice.id, "Archive").await;
        let originals = s.list_messages(alice.id, inbox.id).await.expect("list");
        let mut rx = s.events().subscribe(alice.id);

        // Unsorted, duplicated and nonexistent UIDs: the mapping is in source UID order.
        let copied = s
            .copy_messages(alice.id, inbox.id, &[m2.uid, 99, m1.uid, m2.uid], archive.id)
            .await
            .expect("copy");
        assert_eq!(copied.uidvalidity, archive.uidvalidity, "{}", b.name);
        assert_eq!(copied.mapping, [(m1.uid, 2), (m2.uid, 3)]);

        let copies = s.list_messages(alice.id, archive.id).await.expect("list");
        assert_eq!(copies.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        for (orig, copy) in originals.iter().zip(&copies[1..]) {
            assert_eq!(
                (&copy.blob, copy.size, copy.internal_date, copy.flags, &copy.keywords),
                (&orig.blob, orig.size, orig.internal_date, orig.flags, &orig.keywords),
                "{}: copy of UID {}",
                b.name,
                orig.uid
            );
            assert!(copy.modseq > archive_before.highestmodseq);
        }
        assert_eq!(copies[1].keywords, keywords(&["$label1", "work"]));
        assert!(copies[1].modseq < copies[2].modseq);
        let archive_after = mailbox(s, alice.id, "Archive").await;
        assert_eq!(
            (archive_after.uidnext, archive_after.messages, archive_after.highestmodseq),
            (4, 3, copies[2].modseq)
        );
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list"), originals, "source untouched");
        assert_eq!((b.refcount(&blob1), b.refcount(&blob2)), (Some(2), Some(2)));
        let usage = s.quota(alice.id).await.expect("quota");
        assert_eq!((usage.used_bytes, usage.used_messages), (300 + 500 + 100 + 300 + 500, 5));

        for (i, copy) in copies[1..].iter().enumerate() {
            assert_eq!(
                next_event(&mut rx).await,
                ChangeEvent::MessageAdded { mailbox: archive.id, uid: copy.uid, modseq: copy.modseq },
                "{}: event {i}",
                b.name
            );
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)));

        // Into the same mailbox: a duplicate with the next UID.
        let dup = s.copy_messages(alice.id, inbox.id, &[m1.uid], inbox.id).await.expect("copy to itself");
        assert_eq!(dup, CopyResult { uidvalidity: inbox.uidvalidity, mapping: vec![(m1.uid, 3)] });
        assert_eq!(b.refcount(&blob1), Some(3));

        // Nothing that exists: nothing changes, but the target's UIDVALIDITY is still reported.
        let hms = mailbox(s, alice.id, "Archive").await.highestmodseq;
        let none = s.copy_messages(alice.id, inbox.id, &[42, 43], archive.id).await.expect("copy nothing");
        assert_eq!(none, CopyResult { uidvalidity: archive.uidvalidity, mapping: Vec::new() });
        assert_eq!(s.copy_messages(alice.id, inbox.id, &[], archive.id).await.expect("copy nothing"), none);
        assert_eq!(mailbox(s, alice.id, "Archive").await.highestmodseq, hms);
        let _ = next_event(&mut rx).await; // the duplicate in INBOX
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)));

        // The copies are independent messages: they keep their bodies without the originals.
        s.expunge(alice.id, inbox.id, &[1, 2, 3]).await.expect("expunge originals");
        assert_eq!((b.refcount(&blob1), b.refcount(&blob2)), (Some(1), Some(1)));
        assert!(b.blob_file_exists(&blob1) && b.blob_file_exists(&blob2));
        assert_eq!(s.read_blob(&copies[2].blob).await.expect("read").len(), 500);
        assert!(nf(s.copy_messages(alice.id, inbox.id, &[1], archive.id + 1000).await));
    }
}

#[tokio::test]
async fn copy_over_quota_is_refused_as_a_whole() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        s.set_quota("alice@example.org", Some(1000)).await.expect("quota");
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        let (blob1, size1) = put(s, body("q1", 300)).await;
        let (blob2, size2) = put(s, body("q2", 300)).await;
        s.append(alice.id, inbox.id, new_message(&blob1, size1)).await.expect("append");
        s.append(alice.id, inbox.id, new_message(&blob2, size2)).await.expect("append");
        let mut rx = s.events().subscribe(alice.id);

        // 600 more do not fit into the remaining 400: nothing is copied, not even one.
        let refused = s.copy_messages(alice.id, inbox.id, &[1, 2], archive.id).await;
        assert!(matches!(refused, Err(StoreError::OverQuota)), "{}: {refused:?}", b.name);
        assert!(s.list_messages(alice.id, archive.id).await.expect("list").is_empty());
        assert_eq!(mailbox(s, alice.id, "Archive").await, archive, "counters untouched");
        assert_eq!((b.refcount(&blob1), b.refcount(&blob2)), (Some(1), Some(1)));
        let usage = s.quota(alice.id).await.expect("quota");
        assert_eq!((usage.used_bytes, usage.used_messages), (600, 2));

        // One of them fits.
        let copied = s.copy_messages(alice.id, inbox.id, &[2], archive.id).await.expect("copy fits");
        assert_eq!(copied.mapping, [(2, 1)]);
        assert_eq!(s.quota(alice.id).await.expect("quota").used_bytes, 900);
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::MessageAdded { mailbox: archive.id, uid: 1, modseq: archive.highestmodseq + 1 },
            "{}: the refused copy published nothing",
            b.name
        );
    }
}

#[tokio::test]
async fn move_removes_the_source_atomically() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        let (blob, size) = put(s, body("move 1", 250)).await;
        let flagged = NewMessage {
            flags: Flags::ANSWERED,
            keywords: keywords(&["$forwarded"]),
            internal_date: 1_500_000_000,
            ..new_message(&blob, size)
        };
        s.append(alice.id, inbox.id, flagged).await.expect("append 1");
        append_new(s, alice.id, inbox.id, "move 2").await;
        append_new(s, alice.id, inbox.id, "move 3").await;
        append_new(s, alice.id, archive.id, "already there").await;
        let originals = s.list_messages(alice.id, inbox.id).await.expect("list");
        let inbox_before = mailbox(s, alice.id, "INBOX").await;
        let usage_before = s.quota(alice.id).await.expect("quota");
        // Full: moving must still work, it adds nothing to the account.
        s.set_quota("alice@example.org", Some(usage_before.used_bytes)).await.expect("quota");
        let mut rx = s.events().subscribe(alice.id);

        let moved = s.move_messages(alice.id, inbox.id, &[3, 77, 1], archive.id).await.expect("move");
        assert_eq!(moved, CopyResult { uidvalidity: archive.uidvalidity, mapping: vec![(1, 2), (3, 3)] });

        let left = s.list_messages(alice.id, inbox.id).await.expect("list");
        assert_eq!(left, [originals[1].clone()], "{}", b.name);
        let arrived = s.list_messages(alice.id, archive.id).await.expect("list");
        assert_eq!(arrived.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        for (orig, new) in [(&originals[0], &arrived[1]), (&originals[2], &arrived[2])] {
            assert_eq!(
                (&new.blob, new.size, new.internal_date, new.flags, &new.keywords),
                (&orig.blob, orig.size, orig.internal_date, orig.flags, &orig.keywords)
            );
        }
        assert_eq!(b.refcount(&blob), Some(1), "{}: references unchanged", b.name);
        assert_eq!(s.quota(alice.id).await.expect("quota").used_bytes, usage_before.used_bytes);
        assert_eq!(s.quota(alice.id).await.expect("quota").used_messages, usage_before.used_messages);
        let inbox_after = mailbox(s, alice.id, "INBOX").await;
        assert_eq!((inbox_after.messages, inbox_after.uidnext), (1, 4));
        assert!(inbox_after.highestmodseq > inbox_before.highestmodseq, "the removal is a change");
        let archive_after = mailbox(s, alice.id, "Archive").await;
        assert_eq!((archive_after.messages, archive_after.uidnext), (3, 4));
        assert_eq!(archive_after.highestmodseq, arrived[2].modseq);

        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::MessageAdded { mailbox: archive.id, uid: 2, modseq: arrived[1].modseq }
        );
        assert_eq!(
            next_event(&mut rx).await,
            ChangeEvent::MessageAdded { mailbox: archive.id, uid: 3, modseq: arrived[2].modseq }
        );
        assert_eq!(next_event(&mut rx).await, ChangeEvent::Expunged { mailbox: inbox.id, uids: vec![1, 3] });

        // Moving back gives new UIDs: they are never reused.
        let back = s.move_messages(alice.id, archive.id, &[2], inbox.id).await.expect("move back");
        assert_eq!(back.mapping, [(2, 4)]);
        assert_eq!(back.uidvalidity, inbox.uidvalidity);
        let _ = (next_event(&mut rx).await, next_event(&mut rx).await);

        // Nothing that exists: nothing happens, nothing is published.
        let none = s.move_messages(alice.id, inbox.id, &[1, 3], archive.id).await.expect("move nothing");
        assert!(none.mapping.is_empty());
        assert_eq!(mailbox(s, alice.id, "Archive").await.highestmodseq, archive_after.highestmodseq + 1);
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)));

        assert!(matches!(
            s.move_messages(alice.id, inbox.id, &[2], inbox.id).await,
            Err(StoreError::Invalid { .. })
        ));
        assert_eq!(s.list_messages(alice.id, inbox.id).await.expect("list").len(), 2);
    }
}

#[tokio::test]
async fn copy_and_move_refuse_other_accounts_mailboxes() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let alice_inbox = mailbox(s, alice.id, "INBOX").await;
        let bob_inbox = mailbox(s, bob.id, "INBOX").await;
        let alice_msg = append_new(s, alice.id, alice_inbox.id, "alice's").await;
        let bob_msg = append_new(s, bob.id, bob_inbox.id, "bob's").await;
        let (alice_before, bob_before) =
            (mailbox(s, alice.id, "INBOX").await, mailbox(s, bob.id, "INBOX").await);

        // Reading from, or writing into, a mailbox of another account.
        assert!(nf(s.copy_messages(alice.id, bob_inbox.id, &[bob_msg.uid], alice_inbox.id).await));
        assert!(nf(s.copy_messages(alice.id, alice_inbox.id, &[alice_msg.uid], bob_inbox.id).await));
        assert!(nf(s.move_messages(alice.id, bob_inbox.id, &[bob_msg.uid], alice_inbox.id).await));
        assert!(nf(s.move_messages(alice.id, alice_inbox.id, &[alice_msg.uid], bob_inbox.id).await));
        // Nothing moved either way.
        assert_eq!(s.list_messages(alice.id, alice_inbox.id).await.expect("list").len(), 1, "{}", b.name);
        assert_eq!(s.list_messages(bob.id, bob_inbox.id).await.expect("list").len(), 1);
        assert_eq!(mailbox(s, alice.id, "INBOX").await, alice_before, "counters untouched");
        assert_eq!(mailbox(s, bob.id, "INBOX").await, bob_before);
        assert_eq!(s.quota(bob.id).await.expect("quota").used_messages, 1);
        assert_eq!(s.quota(alice.id).await.expect("quota").used_messages, 1);
    }
}

/// UID sets of IMAP size (`1:*` on a large mailbox) go through in one call each.
#[tokio::test]
async fn many_uids_in_one_call() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        append_new(s, alice.id, inbox.id, "many").await;
        // Doubling by copying into the same mailbox: 2^14 messages in 14 calls.
        for round in 0..14 {
            let uids: Vec<Uid> =
                s.list_messages(alice.id, inbox.id).await.expect("list").iter().map(|m| m.uid).collect();
            let copied = s.copy_messages(alice.id, inbox.id, &uids, inbox.id).await.expect("copy");
            assert_eq!(copied.mapping.len(), uids.len(), "{}: round {round}", b.name);
        }
        const TOTAL: usize = 1 << 14;
        const N: usize = 10_000;
        let all = s.list_messages(alice.id, inbox.id).await.expect("list");
        assert_eq!(all.len(), TOTAL);
        let blob = all[0].blob.clone();
        assert_eq!(b.refcount(&blob), Some(TOTAL as i64));

        let some: Vec<Uid> = all.iter().map(|m| m.uid).take(N).collect();
        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: Vec::new() };
        let changed = s.store_flags(alice.id, inbox.id, &some, op).await.expect("store");
        assert_eq!(changed.len(), N);
        assert!(changed.windows(2).all(|w| w[0].modseq < w[1].modseq));
        let status = s.mailbox_status(alice.id, inbox.id).await.expect("status");
        assert_eq!((status.messages as usize, status.unseen as usize), (TOTAL, TOTAL - N));

        let removed = s.expunge(alice.id, inbox.id, &some).await.expect("expunge");
        assert_eq!(removed, some);
        let left = s.list_messages(alice.id, inbox.id).await.expect("list");
        assert_eq!(left.len(), TOTAL - N);
        assert!(left.iter().all(|m| !m.flags.contains(Flags::SEEN) && m.uid > some[N - 1]));
        assert_eq!(b.refcount(&blob), Some((TOTAL - N) as i64));
        let usage = s.quota(alice.id).await.expect("quota");
        assert_eq!(usage.used_messages as usize, TOTAL - N);
        assert_eq!(usage.used_bytes, (TOTAL - N) as u64 * 100);

        let archive = mailbox(s, alice.id, "Archive").await;
        let rest: Vec<Uid> = left.iter().map(|m| m.uid).collect();
        let moved = s.move_messages(alice.id, inbox.id, &rest, archive.id).await.expect("move");
        assert_eq!(moved.mapping.len(), TOTAL - N);
        assert!(s.list_messages(alice.id, inbox.id).await.expect("list").is_empty());
        assert_eq!(mailbox(s, alice.id, "Archive").await.messages as usize, TOTAL - N);
    }
}

// ---- IMAP support: mailboxes ----

#[tokio::test]
async fn subscriptions_are_kept_by_name() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let defaults = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"];
        assert_eq!(s.list_subscriptions(alice.id).await.expect("list"), defaults, "{}", b.name);

        // CREATE does not subscribe; SUBSCRIBE does, and twice is fine.
        let lists = s.create_mailbox(alice.id, "Lists", None).await.expect("create");
        assert!(!lists.subscribed);
        assert!(!mailbox(s, alice.id, "Lists").await.subscribed);
        s.subscribe(alice.id, "Lists").await.expect("subscribe");
        s.subscribe(alice.id, "Lists").await.expect("subscribe again");
        assert!(mailbox(s, alice.id, "Lists").await.subscribed);
        s.subscribe(alice.id, "inbox").await.expect("INBOX is case-insensitive");

        // A name without a mailbox may be subscribed; a mailbox created later is subscribed.
        s.subscribe(alice.id, "Ghost").await.expect("subscribe nonexistent");
        assert_eq!(s.mailbox_by_name(alice.id, "Ghost").await.expect("lookup"), None);
        assert!(s.create_mailbox(alice.id, "Ghost", None).await.expect("create").subscribed);

        // DELETE keeps the subscription.
        s.delete_mailbox(alice.id, lists.id).await.expect("delete");
        let subs = s.list_subscriptions(alice.id).await.expect("list");
        assert_eq!(
            subs,
            ["INBOX", "Archive", "Drafts", "Ghost", "Junk", "Lists", "Sent", "Trash"],
            "{}",
            b.name
        );
        assert!(s.create_mailbox(alice.id, "Lists", None).await.expect("recreate").subscribed);

        s.unsubscribe(alice.id, "Lists").await.expect("unsubscribe");
        assert!(!mailbox(s, alice.id, "Lists").await.subscribed);
        assert!(nf(s.unsubscribe(alice.id, "Lists").await));
        assert!(nf(s.unsubscribe(alice.id, "Never").await));
        assert!(nf(s.unsubscribe(alice.id, "").await));
        s.unsubscribe(alice.id, "Inbox").await.expect("unsubscribe INBOX");
        assert!(!mailbox(s, alice.id, "INBOX").await.subscribed);
        assert!(matches!(s.subscribe(alice.id, "").await, Err(StoreError::Invalid { .. })));
        assert!(matches!(s.subscribe(alice.id, "a\nb").await, Err(StoreError::Invalid { .. })));
        assert!(nf(s.subscribe(alice.id + bob.id + 100, "X").await));

        // RENAME moves the subscriptions of the mailbox and its inferiors, and only those.
        let work = s.create_mailbox(alice.id, "Work", None).await.expect("create");
        s.create_mailbox(alice.id, "Work/A", None).await.expect("create");
        s.create_mailbox(alice.id, "Work/B", None).await.expect("create");
        for name in ["Work", "Work/A", "Work/Ghost"] {
            s.subscribe(alice.id, name).await.expect("subscribe");
        }
        s.rename_mailbox(alice.id, work.id, "Job").await.expect("rename");
        assert!(mailbox(s, alice.id, "Job").await.subscribed);
        assert!(mailbox(s, alice.id, "Job/A").await.subscribed);
        assert!(!mailbox(s, alice.id, "Job/B").await.subscribed);
        let subs = s.list_subscriptions(alice.id).await.expect("list");
        assert!(subs.iter().any(|n| n == "Job") && subs.iter().any(|n| n == "Job/A"), "{subs:?}");
        assert!(!subs.iter().any(|n| n == "Work" || n == "Work/A" || n == "Job/B"), "{subs:?}");
        assert!(subs.iter().any(|n| n == "Work/Ghost"), "a subscription without a mailbox stays: {subs:?}");

        // Other accounts are not affected; removing an account removes its subscriptions.
        assert_eq!(s.list_subscriptions(bob.id).await.expect("list"), defaults);
        s.subscribe(bob.id, "Bob's").await.expect("subscribe");
        s.remove_account("bob@example.org").await.expect("remove account with subscriptions");
        assert!(s.list_subscriptions(bob.id).await.expect("list").is_empty());
        let bob = account(s, "bob@example.org").await;
        assert_eq!(s.list_subscriptions(bob.id).await.expect("list"), defaults);
    }
}

#[tokio::test]
async fn rename_takes_inferiors_along() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let mut created = Vec::new();
        for name in ["Work", "Work/A", "Work/A/B", "Workshop", "Work_", "Other/A/B"] {
            created.push(s.create_mailbox(alice.id, name, None).await.expect("create"));
        }
        let work_a = &created[1];
        append_new(s, alice.id, work_a.id, "in Work/A").await;
        let mut rx = s.events().subscribe(alice.id);

        s.rename_mailbox(alice.id, created[0].id, "Job").await.expect("rename");
        for (old, new) in [(0, "Job"), (1, "Job/A"), (2, "Job/A/B")] {
            let m = mailbox(s, alice.id, new).await;
            assert_eq!(
                (m.id, m.uidvalidity),
                (created[old].id, created[old].uidvalidity),
                "{}: {new}",
                b.name
            );
        }
        for gone in ["Work", "Work/A", "Work/A/B"] {
            assert_eq!(s.mailbox_by_name(alice.id, gone).await.expect("lookup"), None, "{gone}");
        }
        // Only inferiors move: a name merely starting with the same letters stays.
        assert_eq!(mailbox(s, alice.id, "Workshop").await.id, created[3].id);
        assert_eq!(mailbox(s, alice.id, "Work_").await.id, created[4].id);
        assert_eq!(s.list_messages(alice.id, work_a.id).await.expect("list").len(), 1);
        let mut renamed = HashSet::new();
        for _ in 0..3 {
            match next_event(&mut rx).await {
                ChangeEvent::MailboxRenamed { mailbox } => assert!(renamed.insert(mailbox)),
                other => panic!("{}: unexpected {other:?}", b.name),
            }
        }
        assert_eq!(renamed, created[..3].iter().map(|m| m.id).collect::<HashSet<_>>());

        // A conflict on any inferior refuses the whole rename.
        let refused = s.rename_mailbox(alice.id, created[0].id, "Other").await;
        assert!(matches!(refused, Err(StoreError::AlreadyExists { .. })), "{}: {refused:?}", b.name);
        assert_eq!(mailbox(s, alice.id, "Job/A").await.id, created[1].id);
        assert_eq!(mailbox(s, alice.id, "Job").await.id, created[0].id);
        assert_eq!(s.mailbox_by_name(alice.id, "Other").await.expect("lookup"), None);
        assert!(matches!(
            s.rename_mailbox(alice.id, created[0].id, "Workshop").await,
            Err(StoreError::AlreadyExists { .. })
        ));
        // Into itself: refused.
        assert!(matches!(
            s.rename_mailbox(alice.id, created[0].id, "Job/Deeper").await,
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            s.rename_mailbox(alice.id, created[0].id, "Job").await,
            Err(StoreError::AlreadyExists { .. })
        ));

        // An inferior alone: its parent stays.
        s.rename_mailbox(alice.id, created[1].id, "Top").await.expect("rename inferior");
        assert_eq!(mailbox(s, alice.id, "Top/B").await.id, created[2].id);
        assert_eq!(mailbox(s, alice.id, "Job").await.id, created[0].id);
        assert_eq!(s.mailbox_by_name(alice.id, "Job/A").await.expect("lookup"), None);

        // Up one level: an inferior takes over the mailbox's own old name.
        let x = s.create_mailbox(alice.id, "X/Y", None).await.expect("create");
        let xyy = s.create_mailbox(alice.id, "X/Y/Y", None).await.expect("create");
        s.subscribe(alice.id, "X/Y").await.expect("subscribe");
        s.subscribe(alice.id, "X/Y/Y").await.expect("subscribe");
        s.rename_mailbox(alice.id, x.id, "X").await.expect("rename up");
        assert_eq!(mailbox(s, alice.id, "X").await.id, x.id);
        assert_eq!(mailbox(s, alice.id, "X/Y").await.id, xyy.id);
        assert!(mailbox(s, alice.id, "X").await.subscribed && mailbox(s, alice.id, "X/Y").await.subscribed);
        assert_eq!(s.mailbox_by_name(alice.id, "X/Y/Y").await.expect("lookup"), None);
        assert!(!s.list_subscriptions(alice.id).await.expect("list").iter().any(|n| n == "X/Y/Y"));
    }
}

#[tokio::test]
async fn special_use_can_be_changed() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let stuff = s.create_mailbox(alice.id, "Stuff", None).await.expect("create");
        s.set_mailbox_special_use(alice.id, stuff.id, Some(SpecialUse::All)).await.expect("set");
        assert_eq!(mailbox(s, alice.id, "Stuff").await.special_use, Some(SpecialUse::All), "{}", b.name);
        // Roles need not be unique.
        s.set_mailbox_special_use(alice.id, stuff.id, Some(SpecialUse::Trash)).await.expect("set");
        assert_eq!(mailbox(s, alice.id, "Trash").await.special_use, Some(SpecialUse::Trash));
        assert_eq!(mailbox(s, alice.id, "Stuff").await.special_use, Some(SpecialUse::Trash));
        s.set_mailbox_special_use(alice.id, stuff.id, None).await.expect("clear");
        assert_eq!(mailbox(s, alice.id, "Stuff").await.special_use, None);

        let bob_sent = mailbox(s, bob.id, "Sent").await;
        assert!(nf(s.set_mailbox_special_use(alice.id, bob_sent.id, None).await));
        assert_eq!(mailbox(s, bob.id, "Sent").await.special_use, Some(SpecialUse::Sent));
        assert!(nf(s.set_mailbox_special_use(alice.id, stuff.id + 1000, None).await));
    }
}

#[tokio::test]
async fn mailbox_status_counts() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let empty = s.mailbox_status(alice.id, inbox.id).await.expect("status");
        assert_eq!(
            empty,
            MailboxStatus {
                messages: 0,
                unseen: 0,
                deleted: 0,
                size: 0,
                uidnext: 1,
                uidvalidity: inbox.uidvalidity,
                highestmodseq: inbox.highestmodseq,
                first_unseen_uid: None,
                recent: 0,
            },
            "{}",
            b.name
        );

        for (i, flags) in [Flags::SEEN, Flags::NONE, Flags::SEEN.union(Flags::DELETED), Flags::DELETED]
            .into_iter()
            .enumerate()
        {
            let (blob, size) = put(s, body(&format!("status {i}"), 100 * (i + 1))).await;
            s.append(alice.id, inbox.id, NewMessage { flags, ..new_message(&blob, size) })
                .await
                .expect("append");
        }
        let status = s.mailbox_status(alice.id, inbox.id).await.expect("status");
        let mb = mailbox(s, alice.id, "INBOX").await;
        assert_eq!(
            status,
            MailboxStatus {
                messages: 4,
                unseen: 2,
                deleted: 2,
                size: 1000,
                uidnext: 5,
                uidvalidity: inbox.uidvalidity,
                highestmodseq: mb.highestmodseq,
                first_unseen_uid: Some(2),
                recent: 4,
            },
            "{}",
            b.name
        );
        assert_eq!((status.messages, status.uidnext), (mb.messages, mb.uidnext));

        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: Vec::new() };
        s.store_flags(alice.id, inbox.id, &[2], op).await.expect("flags");
        let status = s.mailbox_status(alice.id, inbox.id).await.expect("status");
        assert_eq!((status.unseen, status.first_unseen_uid), (1, Some(4)));
        assert_eq!(status.highestmodseq, mailbox(s, alice.id, "INBOX").await.highestmodseq);

        s.expunge(alice.id, inbox.id, &[4]).await.expect("expunge");
        s.claim_recent(alice.id, inbox.id).await.expect("claim");
        let status = s.mailbox_status(alice.id, inbox.id).await.expect("status");
        assert_eq!(
            (
                status.messages,
                status.unseen,
                status.deleted,
                status.size,
                status.first_unseen_uid,
                status.recent
            ),
            (3, 0, 1, 600, None, 0)
        );
        assert_eq!(status.uidnext, 5);

        let bob_inbox = mailbox(s, bob.id, "INBOX").await;
        assert!(nf(s.mailbox_status(alice.id, bob_inbox.id).await));
        assert!(nf(s.mailbox_status(alice.id, bob_inbox.id + 1000).await));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_is_claimed_by_exactly_one_caller() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;

        // Nothing arrived yet: the marker is UIDNEXT, and stays there.
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), 1, "{}", b.name);
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), 1);
        append_new(s, alice.id, inbox.id, "r1").await;
        append_new(s, alice.id, inbox.id, "r2").await;
        // The first claim gets UIDs 1 and 2; the next one nothing (no UID >= 3 exists).
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), 1);
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), 3);
        let r3 = append_new(s, alice.id, inbox.id, "r3").await;
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), r3.uid);
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), r3.uid + 1);

        // Concurrent claims: exactly one gets the new messages.
        for i in 0..3 {
            append_new(s, alice.id, inbox.id, &format!("c{i}")).await;
        }
        let uidnext = mailbox(s, alice.id, "INBOX").await.uidnext;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { s.claim_recent(alice.id, inbox.id).await }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.expect("join").expect("claim"));
        }
        got.sort_unstable();
        assert_eq!(got[0], r3.uid + 1, "{}: {got:?}", b.name);
        assert!(got[1..].iter().all(|&m| m == uidnext), "{}: {got:?}", b.name);

        // Copied and moved messages are new in their target.
        let archive = mailbox(s, alice.id, "Archive").await;
        assert_eq!(s.claim_recent(alice.id, archive.id).await.expect("claim"), 1);
        s.copy_messages(alice.id, inbox.id, &[1, 2], archive.id).await.expect("copy");
        assert_eq!(s.claim_recent(alice.id, archive.id).await.expect("claim"), 1);
        assert_eq!(s.claim_recent(alice.id, archive.id).await.expect("claim"), 3);
        // Per mailbox: INBOX was not touched by the claims on Archive.
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), uidnext);

        let bob_inbox = mailbox(s, bob.id, "INBOX").await;
        assert!(nf(s.claim_recent(alice.id, bob_inbox.id).await));
        assert_eq!(s.claim_recent(bob.id, bob_inbox.id).await.expect("claim"), 1, "untouched by Alice");
    }
}

// ---- IMAP support: derived data cached per blob ----

#[tokio::test]
async fn blob_info_round_trip_and_removal() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        let bytes = body("info", 400);
        let (blob, size) = put(s, bytes.clone()).await;
        let (other, other_size) = put(s, body("other", 400)).await;
        let unknown = BlobId::of(b"never stored");
        assert!(s.blob_info(&[]).await.expect("nothing").is_empty());

        // A blob nobody references has nothing to describe: setting is a silent no-op.
        s.set_blob_infos(vec![(blob.clone(), b"early".to_vec())]).await.expect("set unreferenced");
        assert_eq!(s.blob_info(std::slice::from_ref(&blob)).await.expect("info"), [None], "{}", b.name);

        s.append(alice.id, inbox.id, new_message(&blob, size)).await.expect("append");
        s.append(alice.id, inbox.id, new_message(&other, other_size)).await.expect("append");
        assert_eq!(s.blob_info(std::slice::from_ref(&blob)).await.expect("info"), [None]);
        s.set_blob_infos(vec![(blob.clone(), b"ENVELOPE 1".to_vec())]).await.expect("set");
        let want = [Some(b"ENVELOPE 1".to_vec()), None, None, Some(b"ENVELOPE 1".to_vec())];
        let got =
            s.blob_info(&[blob.clone(), unknown.clone(), other.clone(), blob.clone()]).await.expect("info");
        assert_eq!(got, want, "{}: in request order", b.name);

        // Replaced; setting the same value again is fine; an empty value is a value.
        s.set_blob_infos(vec![(blob.clone(), b"ENVELOPE 2".to_vec())]).await.expect("replace");
        s.set_blob_infos(vec![(blob.clone(), b"ENVELOPE 2".to_vec())]).await.expect("same again");
        s.set_blob_infos(vec![(other.clone(), Vec::new())]).await.expect("empty");
        assert_eq!(
            s.blob_info(&[other.clone(), blob.clone()]).await.expect("info"),
            [Some(Vec::new()), Some(b"ENVELOPE 2".to_vec())]
        );

        // Kept while any message references the blob, gone with its last reference.
        s.copy_messages(alice.id, inbox.id, &[1], archive.id).await.expect("copy");
        s.expunge(alice.id, inbox.id, &[1]).await.expect("expunge original");
        assert_eq!(
            s.blob_info(std::slice::from_ref(&blob)).await.expect("info"),
            [Some(b"ENVELOPE 2".to_vec())]
        );
        s.expunge(alice.id, archive.id, &[1]).await.expect("expunge copy");
        assert_eq!(s.blob_info(std::slice::from_ref(&blob)).await.expect("info"), [None]);
        assert!(!b.blob_file_exists(&blob));

        // The same content stored again starts without cached data.
        let (again, again_size) = put(s, bytes).await;
        s.append(alice.id, inbox.id, new_message(&again, again_size)).await.expect("append again");
        assert_eq!(s.blob_info(&[again, other]).await.expect("info"), [None, Some(Vec::new())]);
    }
}

#[tokio::test]
async fn small_and_large_blobs_read_back() {
    // Backends may read small and large bodies in different ways.
    for b in backends() {
        for len in [0, 1, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (id, _) = put(&b.store, bytes.clone()).await;
            assert_eq!(b.store.read_blob(&id).await.expect("read"), bytes, "{}: {len} bytes", b.name);
        }
    }
}

#[tokio::test]
async fn blob_info_set_with_delivery_and_append() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let (delivered, size) = put(s, body("delivered", 300)).await;
        let mut with_info = batch(&delivered, size, vec![to_inbox(alice.id)]);
        with_info.info = Some(b"summary d".to_vec());
        s.deliver(with_info).await.expect("deliver");
        let (appended, size2) = put(s, body("appended", 300)).await;
        let msg = NewMessage { info: Some(b"summary a".to_vec()), ..new_message(&appended, size2) };
        s.append(alice.id, inbox.id, msg).await.expect("append");
        assert_eq!(
            s.blob_info(&[delivered.clone(), appended.clone()]).await.expect("info"),
            [Some(b"summary d".to_vec()), Some(b"summary a".to_vec())],
            "{}",
            b.name
        );
        // A delivery that stored nothing (over quota) sets nothing either.
        s.set_quota_limits(alice.id, Some(1), None).await.expect("quota");
        let (refused, size3) = put(s, body("refused", 300)).await;
        let mut over = batch(&refused, size3, vec![to_inbox(alice.id)]);
        over.info = Some(b"summary r".to_vec());
        let outcome = s.deliver(over).await.expect("deliver");
        assert!(outcome.results[0].is_err(), "{}", b.name);
        assert_eq!(s.blob_info(&[refused]).await.expect("info"), [None], "{}", b.name);

        // The cache is an optimisation: a value beyond the backend's limit (16 MiB for SQLite)
        // is dropped, never a reason to refuse the message it came with.
        s.set_quota_limits(alice.id, None, None).await.expect("quota");
        let huge = vec![b'x'; (16 << 20) + 1];
        let (big_d, size_d) = put(s, body("big delivered", 300)).await;
        let mut with_huge = batch(&big_d, size_d, vec![to_inbox(alice.id)]);
        with_huge.info = Some(huge.clone());
        assert!(s.deliver(with_huge).await.expect("deliver").results[0].is_ok(), "{}", b.name);
        let (big_a, size_a) = put(s, body("big appended", 300)).await;
        let msg = NewMessage { info: Some(huge.clone()), ..new_message(&big_a, size_a) };
        s.append(alice.id, inbox.id, msg).await.expect("append");
        s.set_blob_infos(vec![(big_d.clone(), huge), (big_a.clone(), b"small".to_vec())]).await.expect("set");
        assert_eq!(
            s.blob_info(&[big_d, big_a]).await.expect("info"),
            [None, Some(b"small".to_vec())],
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn imap_state_survives_reopening() {
    for b in backends() {
        let alice = account(&b.store, "alice@example.org").await;
        let inbox = mailbox(&b.store, alice.id, "INBOX").await;
        let first = append_new(&b.store, alice.id, inbox.id, "persist").await;
        let blob = b.store.list_messages(alice.id, inbox.id).await.expect("list")[0].blob.clone();
        b.store.subscribe(alice.id, "Ghost").await.expect("subscribe");
        b.store.set_blob_infos(vec![(blob.clone(), b"cached".to_vec())]).await.expect("set");
        assert_eq!(b.store.claim_recent(alice.id, inbox.id).await.expect("claim"), first.uid);
        let subscriptions = b.store.list_subscriptions(alice.id).await.expect("list");
        let Backend { store, dir, open, name, .. } = b;
        drop(store);

        let s = open(dir.path());
        assert_eq!(s.list_subscriptions(alice.id).await.expect("list"), subscriptions, "{name}");
        assert_eq!(s.blob_info(std::slice::from_ref(&blob)).await.expect("info"), [Some(b"cached".to_vec())]);
        assert_eq!(s.claim_recent(alice.id, inbox.id).await.expect("claim"), first.uid + 1);
        drop(dir);
    }
}

// ---- consistency check ----

const GRACE: Duration = Duration::from_secs(600);

#[tokio::test]
async fn check_passes_after_every_kind_of_change() {
    for b in backends() {
        let s = &b.store;
        let report = s.check(GRACE).await.expect("check empty store");
        assert!(report.is_consistent(), "{}: {:?}", b.name, report.problems);

        let alice = account(s, "alice@example.org").await;
        let bob = account(s, "bob@example.org").await;
        let carol = account(s, "carol@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let archive = mailbox(s, alice.id, "Archive").await;
        // One body for two accounts, plus a queue entry of its own.
        let (shared, size) = put(s, body("shared", 500)).await;
        let mut both = batch(&shared, size, vec![to_inbox(alice.id), to_inbox(bob.id)]);
        let (queued, queued_size) = put(s, body("queued", 300)).await;
        both.enqueue = Some(queue_entry(&queued, queued_size, &["x@remote.example"]));
        s.deliver(both).await.expect("deliver");
        for i in 0..6 {
            append_new(s, alice.id, inbox.id, &format!("m{i}")).await;
        }
        append_new(s, carol.id, mailbox(s, carol.id, "INBOX").await.id, "carol").await;
        s.copy_messages(alice.id, inbox.id, &[1, 2, 3], archive.id).await.expect("copy");
        s.move_messages(alice.id, inbox.id, &[4, 5], archive.id).await.expect("move");
        let op = FlagOp { mode: FlagMode::Add, flags: Flags::SEEN, keywords: keywords(&["$x"]) };
        s.store_flags(alice.id, archive.id, &[1, 2], op).await.expect("flags");
        s.expunge(alice.id, inbox.id, &[1, 6]).await.expect("expunge");
        let work = s.create_mailbox(alice.id, "Work", None).await.expect("create");
        s.copy_messages(alice.id, archive.id, &[1, 2, 3, 4], work.id).await.expect("copy");
        s.rename_mailbox(alice.id, work.id, "Job").await.expect("rename");
        s.delete_mailbox(alice.id, archive.id).await.expect("delete mailbox");
        s.remove_account("carol@example.org").await.expect("remove account");
        let (twice, twice_size) = put(s, body("queued twice", 200)).await;
        let first = s.enqueue(queue_entry(&twice, twice_size, &["y@remote.example"])).await.expect("enqueue");
        s.enqueue(queue_entry(&twice, twice_size, &["z@remote.example"])).await.expect("enqueue");
        s.queue_delete(&first).await.expect("queue delete");

        let report = s.check(GRACE).await.expect("check");
        assert!(report.is_consistent(), "{}: {:#?}", b.name, report.problems);
        // alice: INBOX m0, m1, m5 and Job (shared, m0, m1, m2); bob: shared.
        assert_eq!((report.accounts, report.messages, report.queue_entries), (2, 8, 2), "{}", b.name);
        // shared, queued, twice, m0, m1, m2, m5 (m3 went with Archive, m4 was expunged).
        assert_eq!(report.blobs, 7, "{}", b.name);
        assert!(report.summary().starts_with("store consistent: 2 account(s)"), "{}", report.summary());
    }
}

#[tokio::test]
async fn check_reports_missing_and_corrupt_blob_files() {
    for b in backends() {
        let s = &b.store;
        let alice = account(s, "alice@example.org").await;
        let inbox = mailbox(s, alice.id, "INBOX").await;
        let (lost, lost_size) = put(s, body("lost", 1000)).await;
        let (flipped, flipped_size) = put(s, body("flipped", 1000)).await;
        s.append(alice.id, inbox.id, new_message(&lost, lost_size)).await.expect("append");
        s.append(alice.id, inbox.id, new_message(&flipped, flipped_size)).await.expect("append");
        assert!(s.check(GRACE).await.expect("check").is_consistent(), "{}", b.name);

        let files = b.blob_files();
        let file_of = |blob: &BlobId| {
            files
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == blob.hex().as_str()))
                .expect("blob file")
                .clone()
        };
        std::fs::remove_file(file_of(&lost)).expect("delete a blob file");
        let path = file_of(&flipped);
        let mut bytes = std::fs::read(&path).expect("read blob file");
        bytes[500] ^= 1;
        std::fs::write(&path, &bytes).expect("flip a byte");

        let report = s.check(GRACE).await.expect("check");
        assert!(!report.is_consistent());
        assert!(report.summary().starts_with("store INCONSISTENT: 2 problem(s)"), "{}", report.summary());
        assert!(
            report.problems.contains(&Problem::BlobMissing { blob: lost.clone(), references: 1 }),
            "{}: {:?}",
            b.name,
            report.problems
        );
        assert!(
            report
                .problems
                .contains(&Problem::BlobCorrupt { blob: flipped.clone(), actual: BlobId::of(&bytes) }),
            "{}: {:?}",
            b.name,
            report.problems
        );
        let text = report.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(text.contains(&format!("blob {lost}: file missing")), "{text}");
        assert!(text.contains(&format!("blob {flipped}: content corrupt")), "{text}");
    }
}
