//! What a handler knows about a request: the connection, the language, cookies, and — for the
//! signed-in pages — the session and its account.
//!
//! # Sessions
//! A session is a row in the store ([`postamt_store::WebSession`]) found by the BLAKE3 hash of
//! the cookie value, a random 256-bit token. It ends 12 hours after sign-in or after 2 hours
//! without a request, at log out, and for all other sessions of the account when its password
//! is changed or reset. Server-side rows (rather than signed cookies) make log out and "sign
//! out everywhere" real.
//!
//! # CSRF
//! Signed-in forms carry the session's synchronizer token (`csrf` field; `X-CSRF-Token`
//! header for API calls made with the cookie), compared in constant time. Forms shown before
//! signing in (log in, forgotten password, reset) use a double-submit cookie: a random token
//! in an `HttpOnly`, `SameSite=Lax` cookie (`__Host-` prefixed on https, so a sibling
//! host cannot plant one) that the form must repeat.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use postamt_auth::secret;
use postamt_store::{Account, WebSession};

use crate::Shared;
use crate::error::WebError;
use crate::http::see_other;
use crate::i18n::{Lang, Texts};

/// Longest a session lives after signing in.
pub const SESSION_LIFETIME: i64 = 12 * 3600;
/// A session unused this long has ended.
pub const SESSION_IDLE: i64 = 2 * 3600;
/// `last_seen` is written at most this often, so browsing costs no write per page.
const TOUCH_EVERY: i64 = 60;

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The header carrying it on cookie-authenticated API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "postamt_lang";

tokio::task_local! {
    /// The language of the request being handled, for answers rendered far from the handler
    /// (error pages).
    pub static LANG: Lang;
}

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The value of cookie `name`, if the request has one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The language: the cookie set by the switch link, else the best of `Accept-Language`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Lang::En, Lang::from_accept_language)
}

/// A `Set-Cookie` value. `max_age` `None` is a browser-session cookie, `Some(0)` deletes.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    secure: bool,
    same_site: &str,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Names and values are ours (tokens, fixed names): always valid header text.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Request context every page handler takes.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub conn: ConnInfo,
    /// Path and query of the request, for "back here" links.
    pub path: String,
    pub headers: HeaderMap,
}

impl Ctx {
    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie(&self.headers, name)
    }

    /// Cookies get the `Secure` flag and `__Host-` prefix on https.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.conn.tls { "__Host-postamt_session" } else { "postamt_session" }
    }

    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.conn.tls { "__Host-postamt_csrf" } else { "postamt_csrf" }
    }

    pub fn ip(&self) -> std::net::IpAddr {
        self.conn.peer.ip().to_canonical()
    }

    /// The double-submit token for a form shown before signing in: the cookie's, or a new
    /// one with the `Set-Cookie` header that plants it.
    pub fn pre_session_csrf(&self) -> (String, Option<HeaderValue>) {
        match self.cookie(self.csrf_cookie_name()).filter(|t| secret::is_token(t)) {
            Some(token) => (token.to_string(), None),
            None => {
                let token = secret::random_token();
                let cookie = set_cookie(self.csrf_cookie_name(), &token, None, self.conn.tls, "Lax");
                (token, Some(cookie))
            }
        }
    }

    /// Checks a pre-session form's token against its cookie.
    pub fn check_pre_session_csrf(&self, given: &str) -> Result<(), WebError> {
        match self.cookie(self.csrf_cookie_name()) {
            Some(expected)
                if secret::is_token(expected)
                    && secret::constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
            {
                Ok(())
            }
            _ => Err(WebError::Csrf),
        }
    }
}

impl FromRequestParts<Shared> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Shared) -> Result<Ctx, Self::Rejection> {
        Ok(Ctx {
            lang: parts.extensions.get::<Lang>().copied().unwrap_or(Lang::En),
            conn: parts
                .extensions
                .get::<ConnInfo>()
                .copied()
                .unwrap_or(ConnInfo { peer: SocketAddr::from(([0, 0, 0, 0], 0)), tls: false }),
            path: parts.uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            headers: parts.headers.clone(),
        })
    }
}

/// A signed-in request: its context, account and session.
#[derive(Debug, Clone)]
pub struct Signed {
    pub ctx: Ctx,
    pub account: Account,
    pub session: WebSession,
}

impl Signed {
    pub fn t(&self) -> &'static Texts {
        self.ctx.t()
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        if secret::constant_time_eq(self.session.csrf_token.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            tracing::warn!(account = %self.account.address, ip = %self.ctx.ip(), "CSRF token mismatch");
            Err(WebError::Csrf)
        }
    }
}

/// The session behind a request's cookie, if it is valid now, with its account. Touches the
/// session now and then. Errors only when the store fails.
pub async fn current_session(state: &Shared, ctx: &Ctx) -> Result<Option<(WebSession, Account)>, WebError> {
    let Some(token) = ctx.cookie(ctx.session_cookie_name()).filter(|t| secret::is_token(t)) else {
        return Ok(None);
    };
    let id_hash = secret::hash_token(token);
    let Some(session) = state.store.web_session(&id_hash).await? else { return Ok(None) };
    let now = now();
    if now >= session.expires || now >= session.last_seen.saturating_add(SESSION_IDLE) {
        state.store.delete_web_session(&id_hash).await?;
        return Ok(None);
    }
    let Some(account) = state.store.account_by_id(session.account).await? else { return Ok(None) };
    if account.disabled {
        return Ok(None);
    }
    if now - session.last_seen >= TOUCH_EVERY {
        state.store.touch_web_session(&id_hash, now).await?;
    }
    Ok(Some((session, account)))
}

/// Where an unauthenticated request for `path` is sent.
pub fn login_redirect(path: &str) -> Response {
    if path == "/" || path.is_empty() {
        return see_other("/login");
    }
    see_other(&format!("/login?next={}", percent_encode(path)))
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Signed, Response> {
        let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
        match current_session(state, &ctx).await {
            Ok(Some((session, account))) => Ok(Signed { ctx, account, session }),
            Ok(None) => Err(login_redirect(&ctx.path)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A signed-in request of an account with the admin role; others get 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Signed);

impl FromRequestParts<Shared> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<AdminUser, Response> {
        let signed = Signed::from_request_parts(parts, state).await?;
        if !signed.account.admin {
            tracing::warn!(account = %signed.account.address, path = %signed.ctx.path, "admin page refused");
            return Err(WebError::Forbidden.into_response());
        }
        Ok(AdminUser(signed))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for query values.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A local path to return to after signing in or switching language. Anything that is not a
/// plain absolute path on this site (`//evil.example`, `https://...`, `/\evil`) becomes `/`,
/// so the parameter cannot send anyone elsewhere.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; postamt_lang=de; b=\"2\""));
        assert_eq!(cookie(&h, "postamt_lang"), Some("de"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(lang_of(&h), Lang::De);
    }

    #[test]
    fn next_is_local() {
        assert_eq!(safe_next(Some("/settings?x=1")), "/settings?x=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "evil", "/a\r\nb"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(percent_encode("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
    }
}
