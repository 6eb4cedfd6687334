//! Credentials never travel over plain http from other hosts: the router, called as the
//! server calls it, with a client address that is not loopback. (The integration tests run on
//! loopback, which is allowed for reverse proxies on the same host.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use postamt_auth::{Authenticator, Throttle};
use postamt_config::Config;
use postamt_delivery::Delivery;
use postamt_store::SharedStore;
use postamt_store::sqlite::SqliteStore;
use postamt_web::ctx::ConnInfo;
use postamt_web::ratelimit::RateLimiter;
use postamt_web::{AppState, Ports};
use tower::ServiceExt;

fn state(dir: &std::path::Path, allow_plaintext: bool) -> Arc<AppState> {
    let store: SharedStore = Arc::new(SqliteStore::open(dir).expect("store"));
    let mut config = Config::default_quickstart();
    config.hostname = "mail.example.org".into();
    config.auth.allow_plaintext = allow_plaintext;
    let ports = Arc::new(Ports::new());
    ports.record("https", 8443);
    ports.record("imaps", 993);
    let throttle = Arc::new(Throttle::new(Duration::from_millis(1), Duration::from_millis(2)));
    Arc::new(AppState {
        config: Arc::new(config),
        auth: Authenticator::new(store.clone(), throttle, Duration::from_secs(60)),
        delivery: Delivery::new(store.clone(), "mail.example.org".into()),
        store,
        ports,
        reset_per_ip: RateLimiter::new(10, Duration::from_secs(60)),
        reset_per_address: RateLimiter::new(3, Duration::from_secs(60)),
    })
}

fn request(method: &str, path: &str, peer: &str, tls: bool) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("address=a%40example.org&password=x"))
        .expect("request");
    let peer: SocketAddr = peer.parse().expect("peer");
    req.extensions_mut().insert(ConnInfo { peer, tls });
    req
}

#[tokio::test]
async fn credentials_need_tls_from_other_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = postamt_web::http::router(state(dir.path(), false));
    let remote = "192.0.2.7:40000";

    // Pages are sent to the https listener, on the configured host name.
    let r = router
        .clone()
        .oneshot(request("GET", "/login?next=%2Faccount", remote, false))
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some("https://mail.example.org:8443/login?next=%2Faccount")
    );
    // A password posted over plain http is refused, not processed.
    for path in ["/login", "/forgot", "/api/v1/accounts"] {
        let r = router.clone().oneshot(request("POST", path, remote, false)).await.expect("answer");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Autoconfiguration stays available over http (Thunderbird asks there first).
    let r = router
        .clone()
        .oneshot(request("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", remote, false))
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);

    // Over TLS, or from loopback, the login page is served.
    let r = router.clone().oneshot(request("GET", "/login", remote, true)).await.expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    let r = router.clone().oneshot(request("GET", "/login", "127.0.0.1:5000", false)).await.expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    let r = router.oneshot(request("GET", "/login", "[::1]:5000", false)).await.expect("answer");
    assert_eq!(r.status(), StatusCode::OK);

    // `auth.allow_plaintext` lifts the rule.
    let dir = tempfile::tempdir().expect("tempdir");
    let router = postamt_web::http::router(state(dir.path(), true));
    let r = router.oneshot(request("GET", "/login", remote, false)).await.expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
}
