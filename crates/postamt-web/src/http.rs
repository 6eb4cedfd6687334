//! HTTP plumbing: the route table, HTTP/1.1 over postamt-net's connections, and what every
//! answer carries (security headers, language, body size limit).
//!
//! Headers on every response: `Content-Security-Policy` (`default-src 'self'`, no framing, no
//! plugins, forms only to us), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` (a reset link's token must not leak to other sites),
//! `Cache-Control: no-store` unless the handler chose otherwise, and on https
//! `Strict-Transport-Security`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use postamt_net::{CancellationToken, Conn};
use tower::ServiceExt;

use crate::ctx::{ConnInfo, LANG, lang_of};
use crate::error::WebError;
use crate::{Shared, admin, api, pages, reset};

/// Largest request body: every form and API call is tiny.
pub const MAX_BODY: usize = 64 * 1024;
/// Time a client gets to send a request's header, and that an idle keep-alive connection is
/// kept open.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection may live, however busy; a browser simply opens a new one.
const MAX_CONNECTION_TIME: Duration = Duration::from_secs(15 * 60);

const STYLE: &str = include_str!("../static/style.css");

/// The route table.
pub fn router(state: Shared) -> Router {
    // Pages and API calls that take credentials: only over TLS (or from loopback, e.g. a
    // reverse proxy on the same host, or with `auth.allow_plaintext`).
    let credentialed = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/settings", get(pages::settings))
        .route("/settings/thunderbird.xml", get(pages::download_thunderbird))
        .route("/settings/postamt.mobileconfig", get(pages::download_mobileconfig))
        .route("/account", get(pages::account))
        .route("/recovery", post(pages::set_recovery))
        .route("/password", get(pages::password_form).post(pages::change_password))
        .route("/app-passwords", get(pages::app_passwords).post(pages::create_app_password))
        .route("/app-passwords/{id}/revoke", post(pages::revoke_app_password))
        .route("/forgot", get(reset::forgot_form).post(reset::forgot))
        .route("/reset/{token}", get(reset::reset_form).post(reset::reset))
        .merge(admin::routes())
        .merge(api::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_secure));
    // Public, credential-free: mail programs fetch these, also over plain http.
    let public = Router::new()
        .route("/static/style.css", get(style))
        .route("/lang/{code}", get(pages::set_language))
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(pages::autoconfig))
        .route("/mail/config-v1.1.xml", get(pages::autoconfig))
        .route("/autodiscover/autodiscover.xml", post(pages::autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(pages::autodiscover))
        .route("/mobileconfig", get(pages::public_mobileconfig))
        .route("/api/v1/openapi.json", get(api::openapi));
    Router::new()
        .merge(credentialed)
        .merge(public)
        .fallback(|| async { WebError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(frame))
        .with_state(state)
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        STYLE,
    )
        .into_response()
}

/// Chooses the language, runs the handler with it, and adds the security headers.
async fn frame(mut req: Request, next: Next) -> Response {
    let lang = lang_of(req.headers());
    req.extensions_mut().insert(lang);
    let tls = req.extensions().get::<ConnInfo>().is_some_and(|c| c.tls);
    let mut response = LANG.scope(lang, next.run(req)).await;
    security_headers(response.headers_mut(), tls);
    response
}

fn security_headers(h: &mut HeaderMap, tls: bool) {
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

/// Keeps passwords, session cookies and tokens off unencrypted connections: a GET is sent to
/// the https listener, anything else refused. Loopback clients are exempt (a reverse proxy
/// terminating TLS on the same host, or trying postamt out locally), as Dovecot does, and so
/// is everyone when `auth.allow_plaintext` is set.
async fn require_secure(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnInfo>().copied();
    let secure = conn.is_none_or(|c| c.tls || c.peer.ip().to_canonical().is_loopback());
    if secure || state.config.auth.allow_plaintext {
        return next.run(req).await;
    }
    if req.method() == Method::GET
        && let Some(port) = state.ports.get("https")
    {
        let host = &state.config.hostname;
        let authority = if port == 443 { host.clone() } else { format!("{host}:{port}") };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        return Redirect::to(&format!("https://{authority}{path}")).into_response();
    }
    WebError::Insecure.into_response()
}

/// Serves HTTP/1.1 on one connection. The request's [`ConnInfo`] (client address, TLS) is
/// attached to every request for the handlers.
pub async fn serve_connection(router: Router, conn: Conn, shutdown: CancellationToken) {
    let Conn { stream, peer, guard, .. } = conn;
    let info = ConnInfo { peer, tls: stream.is_tls() };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info);
        let router = router.clone();
        async move { router.oneshot(req.map(Body::new)).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BODY.max(16 * 1024) * 2)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let deadline = tokio::time::sleep(MAX_CONNECTION_TIME);
    tokio::pin!(deadline);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            // Finish the request in progress, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        () = &mut deadline => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HEADER_TIMEOUT, connection).await;
        }
    }
    drop(guard);
}

/// A 303 redirect (after a form POST, the browser follows with GET).
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}
