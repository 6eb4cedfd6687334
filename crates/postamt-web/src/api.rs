//! The administration JSON API under `/api/v1`, described by the OpenAPI 3 document served at
//! `/api/v1/openapi.json` (hand-written: `openapi.json` beside this file; a test checks that it
//! lists exactly the routes below).
//!
//! Callers authenticate with one of:
//! - `Authorization: Bearer postamt_...`, an API token from `postamt token create` (stored
//!   hashed);
//! - `Authorization: Basic`, an admin account's address and password (through the shared
//!   authenticator and its per-IP throttle);
//! - the session cookie of a signed-in admin, with the session's CSRF token in the
//!   `X-CSRF-Token` header on every call that changes something.
//!
//! Like every credentialed route, only over TLS (or loopback). Request bodies must be
//! `application/json`, which a cross-site form cannot send without a CORS preflight that we
//! never grant.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use postamt_auth::{AuthError, Protocol, secret};
use postamt_store::{Account, QueueEntry};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Shared;
use crate::ctx::{CSRF_HEADER, Ctx, current_session, now};
use crate::error::WebError;
use crate::i18n::Lang;
use crate::ops::{self, AccountChanges, AccountInput};

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every API route as (method, path) in OpenAPI's path syntax, for the test that keeps
/// `openapi.json` complete.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/domains"),
    ("post", "/api/v1/domains"),
    ("delete", "/api/v1/domains/{name}"),
    ("get", "/api/v1/domains/{name}/dns"),
    ("get", "/api/v1/accounts"),
    ("post", "/api/v1/accounts"),
    ("get", "/api/v1/accounts/{address}"),
    ("patch", "/api/v1/accounts/{address}"),
    ("delete", "/api/v1/accounts/{address}"),
    ("get", "/api/v1/aliases"),
    ("post", "/api/v1/aliases"),
    ("delete", "/api/v1/aliases/{alias}"),
    ("get", "/api/v1/queue"),
    ("post", "/api/v1/queue/{id}/retry"),
    ("delete", "/api/v1/queue/{id}"),
];

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/domains", get(list_domains).post(add_domain))
        .route("/api/v1/domains/{name}", axum::routing::delete(delete_domain))
        .route("/api/v1/domains/{name}/dns", get(domain_dns))
        .route("/api/v1/accounts", get(list_accounts).post(create_account))
        .route("/api/v1/accounts/{address}", get(get_account).patch(patch_account).delete(delete_account))
        .route("/api/v1/aliases", get(list_aliases).post(add_alias))
        .route("/api/v1/aliases/{alias}", axum::routing::delete(delete_alias))
        .route("/api/v1/queue", get(list_queue))
        .route("/api/v1/queue/{id}/retry", post(retry_queue))
        .route("/api/v1/queue/{id}", axum::routing::delete(delete_queue))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An API error: `{"error": "<code>", "message": "<text>"}` with the matching status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "credentials missing or wrong")
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> ApiError {
        let status = e.status();
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "API request failed");
        }
        ApiError { status, code, message: e.message(Lang::En) }
    }
}

impl From<postamt_store::StoreError> for ApiError {
    fn from(e: postamt_store::StoreError) -> ApiError {
        WebError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(serde_json::json!({ "error": self.code, "message": self.message })))
                .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"postamt API\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// An authenticated administrator (or API token); `actor` names it in the log.
pub struct ApiAdmin {
    pub actor: String,
}

impl FromRequestParts<Shared> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<ApiAdmin, ApiError> {
        let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
        let ip = ctx.ip();
        let authorization =
            parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default().to_string());
        match authorization {
            Some(value) => {
                let (scheme, credentials) = value.split_once(' ').unwrap_or((&value, ""));
                let credentials = credentials.trim();
                if scheme.eq_ignore_ascii_case("bearer") {
                    bearer(state, ip, credentials).await
                } else if scheme.eq_ignore_ascii_case("basic") {
                    basic(state, ip, credentials).await
                } else {
                    Err(ApiError::unauthorized())
                }
            }
            None => {
                let Some((session, account)) = current_session(state, &ctx).await? else {
                    return Err(ApiError::unauthorized());
                };
                if !account.admin {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "the admin role is needed",
                    ));
                }
                if !matches!(parts.method, Method::GET | Method::HEAD) {
                    let given =
                        parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    if !secret::constant_time_eq(given.as_bytes(), session.csrf_token.as_bytes()) {
                        tracing::warn!(account = %account.address, %ip, "API call with session cookie but without CSRF token");
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "csrf",
                            "X-CSRF-Token header missing or wrong",
                        ));
                    }
                }
                Ok(ApiAdmin { actor: account.address })
            }
        }
    }
}

/// A failed credential check: counted by the shared throttle and answered after its delay.
async fn refuse(state: &Shared, ip: std::net::IpAddr, what: &str) -> ApiError {
    let delay = state.auth.throttle().record_failure(ip);
    tracing::warn!(%ip, what, "API authentication failed");
    tokio::time::sleep(delay).await;
    ApiError::unauthorized()
}

async fn bearer(state: &Shared, ip: std::net::IpAddr, token: &str) -> Result<ApiAdmin, ApiError> {
    if !token.starts_with(secret::API_TOKEN_PREFIX) || token.len() > 200 {
        return Err(refuse(state, ip, "malformed API token").await);
    }
    let Some(found) = state.store.api_token_by_hash(&secret::hash_token(token)).await? else {
        return Err(refuse(state, ip, "unknown API token").await);
    };
    let now = now();
    // Coarse: one write a minute at most per token.
    if found.last_used.is_none_or(|t| now - t >= 60) {
        state.store.api_token_used(&found.id, now).await?;
    }
    Ok(ApiAdmin { actor: format!("token:{}", found.id) })
}

async fn basic(state: &Shared, ip: std::net::IpAddr, credentials: &str) -> Result<ApiAdmin, ApiError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(refuse(state, ip, "malformed Basic credentials").await);
    };
    match state.auth.authenticate(ip, user, password, Protocol::Web).await {
        Ok(account) if account.admin => Ok(ApiAdmin { actor: account.address }),
        Ok(account) => {
            tracing::warn!(account = %account.address, %ip, "API call by an account without the admin role");
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the admin role is needed"))
        }
        Err(AuthError::Temporary(e)) => Err(WebError::Temporary(e).into()),
        // The Authenticator logged and delayed the failure.
        Err(_) => Err(ApiError::unauthorized()),
    }
}

/// A JSON body, with a JSON error when it is missing or malformed.
fn body<T>(json: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    json.map(|Json(v)| v).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.body_text()))
}

// ---- JSON shapes ----

#[derive(Serialize)]
pub struct AccountJson {
    address: String,
    domain: String,
    quota: Option<u64>,
    used_bytes: u64,
    used_messages: u64,
    imap: bool,
    pop3: bool,
    admin: bool,
    enabled: bool,
}

impl From<Account> for AccountJson {
    fn from(a: Account) -> AccountJson {
        AccountJson {
            address: a.address,
            domain: a.domain,
            quota: a.quota,
            used_bytes: a.used_bytes,
            used_messages: a.used_messages,
            imap: a.imap_enabled,
            pop3: a.pop3_enabled,
            admin: a.admin,
            enabled: !a.disabled,
        }
    }
}

#[derive(Serialize)]
pub struct QueueRecipientJson {
    address: String,
    status: &'static str,
    last_reply: Option<String>,
}

#[derive(Serialize)]
pub struct QueueEntryJson {
    id: String,
    sender: String,
    size: u64,
    created: i64,
    next_attempt: i64,
    attempts: u32,
    recipients: Vec<QueueRecipientJson>,
}

impl From<QueueEntry> for QueueEntryJson {
    fn from(e: QueueEntry) -> QueueEntryJson {
        QueueEntryJson {
            id: e.id,
            sender: e.sender,
            size: e.size,
            created: e.created,
            next_attempt: e.next_attempt,
            attempts: e.attempts,
            recipients: e
                .recipients
                .into_iter()
                .map(|r| QueueRecipientJson {
                    address: r.recipient.address,
                    status: r.status.as_str(),
                    last_reply: r.last_reply,
                })
                .collect(),
        }
    }
}

// ---- domains ----

async fn list_domains(State(state): State<Shared>, _: ApiAdmin) -> ApiResult<Response> {
    let domains: Vec<_> = state
        .store
        .list_domains()
        .await?
        .into_iter()
        .map(|name| serde_json::json!({ "name": name }))
        .collect();
    Ok(Json(domains).into_response())
}

#[derive(Deserialize)]
pub struct NewDomain {
    name: String,
}

async fn add_domain(
    State(state): State<Shared>,
    admin: ApiAdmin,
    json: Result<Json<NewDomain>, JsonRejection>,
) -> ApiResult<Response> {
    let new = body(json)?;
    let name = ops::add_domain(&state, &admin.actor, &new.name).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "name": name }))).into_response())
}

async fn delete_domain(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    ops::remove_domain(&state, &admin.actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn domain_dns(
    State(state): State<Shared>,
    _: ApiAdmin,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (records, zone) = ops::domain_dns(&state, &name).await?;
    let records: Vec<_> = records
        .iter()
        .map(|r| serde_json::json!({ "name": r.name, "type": r.kind(), "value": r.rdata() }))
        .collect();
    Ok(Json(serde_json::json!({ "domain": name.to_lowercase(), "records": records, "zone": zone }))
        .into_response())
}

// ---- accounts ----

async fn list_accounts(State(state): State<Shared>, _: ApiAdmin) -> ApiResult<Response> {
    let accounts: Vec<AccountJson> = state.store.list_accounts().await?.into_iter().map(Into::into).collect();
    Ok(Json(accounts).into_response())
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
pub struct NewAccountJson {
    address: String,
    password: String,
    #[serde(default)]
    quota: Option<u64>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "default_true")]
    imap: bool,
    #[serde(default = "default_true")]
    pop3: bool,
}

async fn create_account(
    State(state): State<Shared>,
    admin: ApiAdmin,
    json: Result<Json<NewAccountJson>, JsonRejection>,
) -> ApiResult<Response> {
    let new = body(json)?;
    let input = AccountInput {
        address: new.address,
        password: new.password,
        quota: new.quota,
        admin: new.admin,
        imap: new.imap,
        pop3: new.pop3,
    };
    let account = ops::create_account(&state, &admin.actor, Lang::En, input).await?;
    Ok((StatusCode::CREATED, Json(AccountJson::from(account))).into_response())
}

async fn get_account(
    State(state): State<Shared>,
    _: ApiAdmin,
    Path(address): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(AccountJson::from(ops::account(&state, &address).await?)).into_response())
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn explicit_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default)]
    imap: Option<bool>,
    #[serde(default)]
    pop3: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "explicit_null")]
    quota: Option<Option<u64>>,
    #[serde(default)]
    password: Option<String>,
}

async fn patch_account(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(address): Path<String>,
    json: Result<Json<AccountPatch>, JsonRejection>,
) -> ApiResult<Response> {
    let p = body(json)?;
    let changes = AccountChanges {
        imap: p.imap,
        pop3: p.pop3,
        admin: p.admin,
        enabled: p.enabled,
        quota: p.quota,
        password: p.password,
    };
    let account = ops::update_account(&state, &admin.actor, Lang::En, &address, changes).await?;
    Ok(Json(AccountJson::from(account)).into_response())
}

async fn delete_account(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    ops::delete_account(&state, &admin.actor, Lang::En, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- aliases ----

async fn list_aliases(State(state): State<Shared>, _: ApiAdmin) -> ApiResult<Response> {
    let aliases: Vec<_> = state
        .store
        .list_aliases()
        .await?
        .into_iter()
        .map(|a| serde_json::json!({ "alias": a.alias, "target": a.target }))
        .collect();
    Ok(Json(aliases).into_response())
}

#[derive(Deserialize)]
pub struct NewAlias {
    alias: String,
    target: String,
}

async fn add_alias(
    State(state): State<Shared>,
    admin: ApiAdmin,
    json: Result<Json<NewAlias>, JsonRejection>,
) -> ApiResult<Response> {
    let new = body(json)?;
    let alias = ops::add_alias(&state, &admin.actor, &new.alias, &new.target).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "alias": alias.alias, "target": alias.target })))
        .into_response())
}

async fn delete_alias(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(alias): Path<String>,
) -> ApiResult<StatusCode> {
    ops::remove_alias(&state, &admin.actor, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- queue ----

async fn list_queue(State(state): State<Shared>, _: ApiAdmin) -> ApiResult<Response> {
    let entries: Vec<QueueEntryJson> = ops::queue(&state).await?.into_iter().map(Into::into).collect();
    Ok(Json(entries).into_response())
}

async fn retry_queue(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ops::retry_queue_entry(&state, &admin.actor, &id).await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

async fn delete_queue(
    State(state): State<Shared>,
    admin: ApiAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ops::delete_queue_entry(&state, &admin.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document lists exactly the routes served, each with a summary and answers.
    #[test]
    fn openapi_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = Vec::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
                assert!(op["responses"].is_object(), "{method} {path} has no responses");
                documented.push((method.clone(), path.clone()));
            }
        }
        let mut served: Vec<(String, String)> =
            ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
