//! The web pages' part of the `Store` contract: sessions, app passwords, recovery addresses,
//! password-reset tokens and API tokens. Written against the trait only.

use std::sync::Arc;

use postamt_store::sqlite::SqliteStore;
use postamt_store::*;

fn open() -> (tempfile::TempDir, SharedStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    (dir, store)
}

async fn account(store: &SharedStore, address: &str) -> Account {
    if !store.is_local_domain("example.org").await.expect("domain") {
        store.add_domain("example.org").await.expect("add domain");
    }
    store
        .create_account(NewAccount {
            address: address.into(),
            password_hash: "old".into(),
            quota: None,
            admin: false,
        })
        .await
        .expect("account")
}

fn session(id: &str, account: AccountId, expires: i64) -> WebSession {
    WebSession {
        id_hash: id.into(),
        account,
        csrf_token: format!("csrf-{id}"),
        created: 1,
        last_seen: 1,
        expires,
    }
}

const FAR: i64 = i64::MAX / 2;

#[tokio::test]
async fn sessions() {
    let (_dir, store) = open();
    let a = account(&store, "a@example.org").await;
    let b = account(&store, "b@example.org").await;
    store.create_web_session(session("s1", a.id, FAR)).await.expect("s1");
    store.create_web_session(session("s2", a.id, FAR)).await.expect("s2");
    store.create_web_session(session("s3", b.id, FAR)).await.expect("s3");
    assert_eq!(store.web_session("s1").await.expect("get"), Some(session("s1", a.id, FAR)));
    assert_eq!(store.web_session("nope").await.expect("get"), None);

    store.touch_web_session("s1", 42).await.expect("touch");
    assert_eq!(store.web_session("s1").await.expect("get").map(|s| s.last_seen), Some(42));
    store.touch_web_session("nope", 42).await.expect("unknown ids are ignored");

    // All of a's sessions but the current one end (password change), b's stay.
    store.delete_web_sessions(a.id, Some("s1")).await.expect("delete others");
    assert!(store.web_session("s1").await.expect("get").is_some());
    assert!(store.web_session("s2").await.expect("get").is_none());
    assert!(store.web_session("s3").await.expect("get").is_some());
    store.delete_web_session("s1").await.expect("log out");
    assert!(store.web_session("s1").await.expect("get").is_none());

    // Expired sessions are swept when a new one is created.
    store.create_web_session(session("old", b.id, 10)).await.expect("old");
    store.create_web_session(session("new", b.id, FAR)).await.expect("new");
    assert!(store.web_session("old").await.expect("get").is_none());

    // Sessions go with their account.
    store.remove_account("b@example.org").await.expect("remove");
    assert!(store.web_session("s3").await.expect("get").is_none());
}

#[tokio::test]
async fn app_passwords() {
    let (_dir, store) = open();
    let a = account(&store, "a@example.org").await;
    let b = account(&store, "b@example.org").await;
    let new = |account: AccountId, lookup: &str| NewAppPassword {
        account,
        label: " Phone ".into(),
        lookup: lookup.into(),
        hash: format!("hash-{lookup}"),
    };
    let p1 = store.create_app_password(new(a.id, "abcd")).await.expect("create");
    assert_eq!(p1.label, "Phone");
    assert_eq!(p1.last_used, None);
    assert!(matches!(
        store.create_app_password(new(a.id, "abcd")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // The lookup is per account.
    store.create_app_password(new(b.id, "abcd")).await.expect("same lookup, other account");
    assert!(matches!(store.create_app_password(new(9999, "wxyz")).await, Err(StoreError::NotFound { .. })));
    let long = NewAppPassword { label: "x".repeat(101), ..new(a.id, "long") };
    assert!(matches!(store.create_app_password(long).await, Err(StoreError::Invalid { .. })));

    assert_eq!(
        store.app_password(a.id, "abcd").await.expect("get").map(|p| p.hash),
        Some("hash-abcd".into())
    );
    assert_eq!(store.app_password(a.id, "none").await.expect("get"), None);
    store.app_password_used(p1.id, 77).await.expect("used");
    let listed = store.list_app_passwords(a.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used, Some(77));

    // Revoking is scoped by account.
    assert!(matches!(store.delete_app_password(b.id, p1.id).await, Err(StoreError::NotFound { .. })));
    store.delete_app_password(a.id, p1.id).await.expect("revoke");
    assert!(store.list_app_passwords(a.id).await.expect("list").is_empty());
    assert_eq!(store.list_app_passwords(b.id).await.expect("list").len(), 1);
}

#[tokio::test]
async fn recovery_and_reset_tokens() {
    let (_dir, store) = open();
    let a = account(&store, "a@example.org").await;
    assert_eq!(store.recovery_address(a.id).await.expect("get"), None);
    store.set_recovery_address(a.id, Some("Me@Elsewhere.Example")).await.expect("set");
    assert_eq!(store.recovery_address(a.id).await.expect("get").as_deref(), Some("me@elsewhere.example"));
    store.set_recovery_address(a.id, Some("other@elsewhere.example")).await.expect("change");
    assert_eq!(store.recovery_address(a.id).await.expect("get").as_deref(), Some("other@elsewhere.example"));
    assert!(matches!(
        store.set_recovery_address(a.id, Some("no at sign")).await,
        Err(StoreError::Invalid { .. })
    ));
    store.set_recovery_address(a.id, None).await.expect("clear");
    assert_eq!(store.recovery_address(a.id).await.expect("get"), None);

    // Tokens expired at their creation are swept; these live 1000 s.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
    store.create_reset_token(a.id, "t1", now + 1000).await.expect("t1");
    store.create_reset_token(a.id, "t2", now + 1000).await.expect("t2");
    store.create_web_session(session("s", a.id, FAR)).await.expect("session");
    assert_eq!(store.reset_token_account("t1", now + 999).await.expect("valid"), Some(a.id));
    assert_eq!(store.reset_token_account("t1", now + 1000).await.expect("expired"), None);
    assert_eq!(store.reset_password_with_token("t1", "new", now + 1000).await.expect("expired"), None);
    assert_eq!(
        store.account_by_id(a.id).await.expect("account").map(|a| a.password_hash),
        Some("old".into())
    );

    let changed =
        store.reset_password_with_token("t1", "new", now + 999).await.expect("reset").expect("valid token");
    assert_eq!(changed.password_hash, "new");
    // Every token of the account is used up, and its sessions are over.
    assert_eq!(store.reset_token_account("t1", 0).await.expect("get"), None);
    assert_eq!(store.reset_token_account("t2", 0).await.expect("get"), None);
    assert!(store.web_session("s").await.expect("get").is_none());
    assert_eq!(store.reset_password_with_token("t2", "again", 0).await.expect("used"), None);
}

#[tokio::test]
async fn api_tokens() {
    let (_dir, store) = open();
    let token = |id: &str, hash: &str| ApiToken {
        id: id.into(),
        label: "ci".into(),
        hash: hash.into(),
        created: 5,
        last_used: None,
    };
    store.create_api_token(token("id1", "h1")).await.expect("create");
    assert!(matches!(
        store.create_api_token(token("id1", "h2")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store.create_api_token(token("id2", "h2")).await.expect("second");
    assert_eq!(store.api_token_by_hash("h1").await.expect("get"), Some(token("id1", "h1")));
    assert_eq!(store.api_token_by_hash("hx").await.expect("get"), None);
    store.api_token_used("id1", 9).await.expect("used");
    let listed = store.list_api_tokens().await.expect("list");
    assert_eq!(
        listed.iter().map(|t| (t.id.as_str(), t.last_used)).collect::<Vec<_>>(),
        [("id1", Some(9)), ("id2", None)]
    );
    store.delete_api_token("id1").await.expect("revoke");
    assert!(matches!(store.delete_api_token("id1").await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.api_token_by_hash("h1").await.expect("get"), None);
}
