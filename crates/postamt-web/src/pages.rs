//! The self-service pages every account has: signing in and out, mail client settings (with
//! downloads), quota and addresses, the recovery address, password change and app passwords;
//! and the public autoconfiguration endpoints mail programs call.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use postamt_auth::{AuthError, Protocol, app_password, password, secret};
use postamt_store::{NewAppPassword, StoreError, WebSession};
use serde::Deserialize;

use crate::Shared;
use crate::clients::{self, ClientSettings, Endpoint};
use crate::ctx::{
    CSRF_FIELD, Ctx, LANG_COOKIE, SESSION_LIFETIME, Signed, current_session, now, percent_encode, safe_next,
    set_cookie,
};
use crate::error::WebError;
use crate::http::see_other;
use crate::i18n::{Lang, Texts, fill};
use crate::layout::{self, Nav, page};
use crate::policy::{self, MIN_LENGTH, Weakness};

/// `/`: the settings when signed in, else the login.
pub async fn home(State(state): State<Shared>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(match current_session(&state, &ctx).await? {
        Some(_) => see_other("/settings"),
        None => see_other("/login"),
    })
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `/lang/{code}`: remembers the language for a year and goes back.
pub async fn set_language(ctx: Ctx, Path(code): Path<String>, Query(q): Query<NextQuery>) -> Response {
    let mut response = see_other(&safe_next(q.next.as_deref()));
    if let Some(lang) = Lang::parse(&code) {
        let cookie = set_cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400), ctx.conn.tls, "Lax");
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn login_page(
    ctx: &Ctx,
    csrf: &str,
    next: &str,
    address: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Markup {
    let t = ctx.t();
    page(
        ctx,
        None,
        t.login_title,
        html! {
            @if let Some(n) = notice { (layout::ok(n)) }
            @if let Some(e) = error { (layout::err(e)) }
            section.card {
                form.stack method="post" action="/login" {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label { (t.field_address)
                        input type="email" name="address" value=(address) autocomplete="username" required autofocus; }
                    label { (t.field_password)
                        input type="password" name="password" autocomplete="current-password" required; }
                    div { button type="submit" { (t.login_button) } }
                }
                p.hint { a href="/forgot" { (t.forgot_link) } }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// Adds a pre-session CSRF cookie to a response when one was minted.
fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<Shared>,
    ctx: Ctx,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    if current_session(&state, &ctx).await?.is_some() {
        return Ok(see_other(if next == "/" { "/settings" } else { &next }));
    }
    let t = ctx.t();
    let notice = match q.done.as_deref() {
        Some("reset") => Some(t.reset_done),
        Some("logout") => Some(t.logged_out),
        _ => None,
    };
    let (csrf, cookie) = ctx.pre_session_csrf();
    Ok(with_cookie(login_page(&ctx, &csrf, &next, "", None, notice).into_response(), cookie))
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: checks the password through the shared authenticator (so failures slow
/// down this IP on every protocol) and starts a session.
pub async fn login(
    State(state): State<Shared>,
    ctx: Ctx,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    ctx.check_pre_session_csrf(&form.csrf)?;
    let t = ctx.t();
    let next = safe_next(Some(&form.next));
    let address = form.address.trim();
    let account = match state.auth.authenticate(ctx.ip(), address, &form.password, Protocol::Web).await {
        Ok(account) => account,
        Err(AuthError::Temporary(e)) => return Err(WebError::Temporary(e)),
        Err(_) => {
            // The Authenticator logged the failure; the message never says which part was wrong.
            let (csrf, cookie) = ctx.pre_session_csrf();
            let body = login_page(&ctx, &csrf, &next, address, Some(t.login_failed), None);
            return Ok(with_cookie((StatusCode::UNAUTHORIZED, body).into_response(), cookie));
        }
    };
    let token = secret::random_token();
    let now = now();
    state
        .store
        .create_web_session(WebSession {
            id_hash: secret::hash_token(&token),
            account: account.id,
            csrf_token: secret::random_token(),
            created: now,
            last_seen: now,
            expires: now + SESSION_LIFETIME,
        })
        .await?;
    tracing::info!(account = %account.address, ip = %ctx.ip(), "web login");
    let target = if next == "/" { "/settings".to_string() } else { next };
    let mut response = see_other(&target);
    let cookie = set_cookie(ctx.session_cookie_name(), &token, None, ctx.conn.tls, "Lax");
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session and deletes the cookie.
pub async fn logout(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    state.store.delete_web_session(&signed.session.id_hash).await?;
    tracing::info!(account = %signed.account.address, "web logout");
    let mut response = see_other("/login?done=logout");
    let cookie = set_cookie(signed.ctx.session_cookie_name(), "", Some(0), signed.ctx.conn.tls, "Lax");
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

fn endpoint_rows(t: &Texts, settings: &ClientSettings, endpoints: &[Endpoint], user: &str) -> Markup {
    html! {
        @for e in endpoints {
            tr {
                td.mono data-label=(t.col_server) { (settings.hostname) }
                td.mono data-label=(t.col_port) { (e.port) }
                td data-label=(t.col_security) { (e.security.label()) }
                td.mono data-label=(t.col_username) { (user) }
            }
        }
    }
}

/// `GET /settings`: what to type into a mail program.
pub async fn settings(State(state): State<Shared>, signed: Signed) -> Result<Response, WebError> {
    let t = signed.t();
    let s = state.client_settings();
    let user = &signed.account.address;
    let services = [
        (t.incoming_imap, t.imap_hint, &s.imap, signed.account.imap_enabled),
        (t.incoming_pop3, t.pop3_hint, &s.pop3, signed.account.pop3_enabled),
        (t.outgoing_smtp, t.smtp_hint, &s.smtp, true),
    ];
    let body = html! {
        p.lead { (t.settings_lead) }
        @for (title, hint, endpoints, enabled) in services {
            section.card {
                h2 { (title) }
                p.hint { (hint) }
                @if !enabled {
                    div.notice.warn { (t.protocol_disabled) }
                } @else if endpoints.is_empty() {
                    p { (t.not_offered) }
                } @else {
                    div.table-wrap { table.stack {
                        thead { tr { th { (t.col_server) } th { (t.col_port) } th { (t.col_security) } th { (t.col_username) } } }
                        tbody { (endpoint_rows(t, &s, endpoints, user)) }
                    } }
                }
            }
        }
        section.card {
            h2 { (t.password_heading) }
            p { (t.password_hint) " " a href="/app-passwords" { (t.nav_app_passwords) } "." }
        }
        section.card {
            h2 { (t.downloads_heading) }
            p.hint { (t.downloads_hint) }
            div.actions {
                a.button.secondary href="/settings/thunderbird.xml" download="config-v1.1.xml" { (t.download_thunderbird) }
                a.button.secondary href="/settings/postamt.mobileconfig" download="postamt.mobileconfig" { (t.download_apple) }
            }
        }
    };
    Ok(page(&signed.ctx, Some(Nav::of(&signed, "/settings")), t.settings_title, body).into_response())
}

fn xml_download(content_type: &'static str, filename: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET /settings/thunderbird.xml`: the autoconfig file for the account's domain.
pub async fn download_thunderbird(State(state): State<Shared>, signed: Signed) -> Result<Response, WebError> {
    let domains = state.store.list_domains().await?;
    let xml = clients::thunderbird(&state.client_settings(), &signed.account.domain, &domains);
    Ok(xml_download("application/xml; charset=utf-8", "config-v1.1.xml", xml))
}

/// `GET /settings/postamt.mobileconfig`: an Apple profile for the account.
pub async fn download_mobileconfig(
    State(state): State<Shared>,
    signed: Signed,
) -> Result<Response, WebError> {
    let profile = clients::mobileconfig(&state.client_settings(), &signed.account.address);
    Ok(xml_download("application/x-apple-aspen-config", "postamt.mobileconfig", profile))
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn account_page(
    state: &Shared,
    signed: &Signed,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = signed.t();
    let quota = state.store.quota(signed.account.id).await?;
    let aliases: Vec<String> = state
        .store
        .list_aliases()
        .await?
        .into_iter()
        .filter(|a| a.target == signed.account.address)
        .map(|a| a.alias)
        .collect();
    let recovery = state.store.recovery_address(signed.account.id).await?;
    let body = html! {
        @if let Some(n) = notice { (layout::ok(n)) }
        @if let Some(e) = error { (layout::err(e)) }
        div.grid {
            section.card {
                h2 { (t.quota_heading) }
                @match quota.limit_bytes {
                    Some(limit) => {
                        meter min="0" max=(limit) value=(quota.used_bytes.min(limit)) {}
                        p { (fill(t.quota_used_of, &[&layout::bytes(quota.used_bytes), &layout::bytes(limit)])) }
                    }
                    None => { p { (fill(t.quota_used_unlimited, &[&layout::bytes(quota.used_bytes)])) } }
                }
                p.hint { (fill(t.quota_messages, &[&quota.used_messages.to_string()])) }
            }
            section.card {
                h2 { (t.addresses_heading) }
                dl.kv {
                    dt { (t.primary_address) } dd.mono { (signed.account.address) }
                    @for alias in &aliases {
                        dt { (t.alias_address) }
                        @if let Some(domain) = alias.strip_prefix('@') {
                            dd { span.mono { (alias) } " " span.hint { (fill(t.catch_all_hint, &[domain])) } }
                        } @else {
                            dd.mono { (alias) }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t.recovery_heading) }
            p.hint { (t.recovery_hint) }
            form.stack method="post" action="/recovery" {
                (layout::csrf(&signed.session.csrf_token))
                label { (t.field_recovery)
                    input type="email" name="recovery" value=(recovery.as_deref().unwrap_or("")) autocomplete="email"; }
                label { (t.field_current_password)
                    input type="password" name="current" autocomplete="current-password" required; }
                div { button type="submit" { (t.save) } }
            }
        }
    };
    Ok(page(&signed.ctx, Some(Nav::of(signed, "/account")), t.account_title, body))
}

/// `GET /account`: quota, addresses, recovery address.
pub async fn account(
    State(state): State<Shared>,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let t = signed.t();
    let notice = (q.done.as_deref() == Some("recovery")).then_some(t.recovery_saved);
    Ok(account_page(&state, &signed, notice, None).await?.into_response())
}

/// Confirms the signed-in account's current password (as a login, so failures are throttled
/// and logged like any other). `Ok(false)` when it is wrong.
async fn confirm_password(state: &Shared, signed: &Signed, password: &str) -> Result<bool, WebError> {
    match state.auth.authenticate(signed.ctx.ip(), &signed.account.address, password, Protocol::Web).await {
        Ok(_) => Ok(true),
        Err(AuthError::Temporary(e)) => Err(WebError::Temporary(e)),
        Err(_) => Ok(false),
    }
}

#[derive(Deserialize, Default)]
pub struct RecoveryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    recovery: String,
    #[serde(default)]
    current: String,
}

/// `POST /recovery`: sets or clears the recovery address; needs the current password, since
/// whoever controls it can reset the password.
pub async fn set_recovery(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<RecoveryForm>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    let t = signed.t();
    if !confirm_password(&state, &signed, &form.current).await? {
        return Ok((
            StatusCode::FORBIDDEN,
            account_page(&state, &signed, None, Some(t.wrong_current_password)).await?,
        )
            .into_response());
    }
    let recovery = form.recovery.trim();
    let address = if recovery.is_empty() {
        None
    } else {
        match clients::plausible_address(recovery) {
            Some(a) if a != signed.account.address => Some(a),
            _ => {
                let page = account_page(&state, &signed, None, Some(t.recovery_invalid)).await?;
                return Ok((StatusCode::BAD_REQUEST, page).into_response());
            }
        }
    };
    state.store.set_recovery_address(signed.account.id, address.as_deref()).await?;
    tracing::info!(account = %signed.account.address, recovery = ?address, "recovery address changed");
    Ok(see_other("/account?done=recovery"))
}

/// The explanation of the password rules, shown next to every new-password field.
pub fn password_rules(lang: Lang) -> Markup {
    let t = lang.texts();
    html! {
        div.hint {
            (t.rules_intro)
            ul {
                li { (fill(t.rule_length, &[&MIN_LENGTH.to_string()])) }
                li { (t.rule_address) }
                li { (t.rule_common) }
            }
        }
    }
}

/// The message for a refused new password.
pub fn weakness_message(lang: Lang, w: Weakness) -> String {
    let t = lang.texts();
    match w {
        Weakness::TooShort => fill(t.weak_short, &[&MIN_LENGTH.to_string()]),
        Weakness::TooLong => t.weak_long.to_string(),
        Weakness::IsAddress => t.weak_address.to_string(),
        Weakness::Common => t.weak_common.to_string(),
        Weakness::Mismatch => t.weak_mismatch.to_string(),
    }
}

/// Hashes a password off the async threads (argon2id takes tens of milliseconds), within the
/// process-wide limit on concurrent hashing.
pub async fn hash_password(password: &str) -> Result<String, WebError> {
    password::hash_async(password).await.map_err(|e| WebError::Internal(e.to_string()))
}

fn password_page(signed: &Signed, notice: Option<&str>, error: Option<&str>) -> Markup {
    let t = signed.t();
    page(
        &signed.ctx,
        Some(Nav::of(signed, "/password")),
        t.password_title,
        html! {
            @if let Some(n) = notice { (layout::ok(n)) }
            @if let Some(e) = error { (layout::err(e)) }
            section.card {
                form.stack method="post" action="/password" {
                    (layout::csrf(&signed.session.csrf_token))
                    input type="hidden" name="username" value=(signed.account.address) autocomplete="username";
                    label { (t.field_current_password)
                        input type="password" name="current" autocomplete="current-password" required; }
                    label { (t.field_new_password)
                        input type="password" name="new" autocomplete="new-password" minlength=(MIN_LENGTH) required; }
                    label { (t.field_repeat_password)
                        input type="password" name="repeat" autocomplete="new-password" minlength=(MIN_LENGTH) required; }
                    (password_rules(signed.ctx.lang))
                    div { button type="submit" { (t.change_password_button) } }
                }
                p.hint { (t.password_change_effect) }
            }
        },
    )
}

/// `GET /password`.
pub async fn password_form(signed: Signed, Query(q): Query<DoneQuery>) -> Response {
    let notice = (q.done.as_deref() == Some("changed")).then_some(signed.t().password_changed);
    password_page(&signed, notice, None).into_response()
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /password`: current password, then the new one twice; signs out every other session.
pub async fn change_password(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    let t = signed.t();
    if let Err(w) = policy::check(&form.new, &form.repeat, &signed.account.address) {
        let message = weakness_message(signed.ctx.lang, w);
        return Ok((StatusCode::BAD_REQUEST, password_page(&signed, None, Some(&message))).into_response());
    }
    if !confirm_password(&state, &signed, &form.current).await? {
        return Ok((StatusCode::FORBIDDEN, password_page(&signed, None, Some(t.wrong_current_password)))
            .into_response());
    }
    let hash = hash_password(&form.new).await?;
    state.store.set_password_hash(&signed.account.address, &hash).await?;
    state.store.delete_web_sessions(signed.account.id, Some(&signed.session.id_hash)).await?;
    tracing::info!(account = %signed.account.address, ip = %signed.ctx.ip(), "password changed");
    Ok(see_other("/password?done=changed"))
}

async fn app_passwords_page(
    state: &Shared,
    signed: &Signed,
    created: Option<(&str, &str)>,
    notice: Option<&str>,
) -> Result<Markup, WebError> {
    let t = signed.t();
    let list = state.store.list_app_passwords(signed.account.id).await?;
    let body = html! {
        p.lead { (t.app_passwords_lead) }
        @if let Some(n) = notice { (layout::ok(n)) }
        @if let Some((label, password)) = created {
            section.card {
                h2 { (fill(t.app_password_created, &[label])) }
                code.secret id="new-app-password" { (password) }
                p.hint { (t.app_password_shown_once) }
            }
        }
        section.card {
            h2 { (t.app_password_new_heading) }
            form.inline method="post" action="/app-passwords" {
                (layout::csrf(&signed.session.csrf_token))
                label { (t.field_label)
                    input type="text" name="label" maxlength="100" placeholder=(t.label_placeholder) required; }
                button type="submit" { (t.create) }
            }
        }
        section.card {
            h2 { (t.app_passwords_existing) }
            @if list.is_empty() {
                p.hint { (t.app_passwords_none) }
            } @else {
                div.table-wrap { table.stack {
                    thead { tr { th { (t.field_label) } th { (t.col_created) } th { (t.col_last_used) } th {} } }
                    tbody {
                        @for ap in &list {
                            tr {
                                td data-label=(t.field_label) { (ap.label) }
                                td data-label=(t.col_created) { (layout::time(ap.created)) }
                                td data-label=(t.col_last_used) { (ap.last_used.map_or_else(|| t.never.to_string(), layout::time)) }
                                td {
                                    form method="post" action=(format!("/app-passwords/{}/revoke", ap.id)) {
                                        (layout::csrf(&signed.session.csrf_token))
                                        button.danger type="submit" { (t.revoke) }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(page(&signed.ctx, Some(Nav::of(signed, "/app-passwords")), t.app_passwords_title, body))
}

/// `GET /app-passwords`.
pub async fn app_passwords(
    State(state): State<Shared>,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = (q.done.as_deref() == Some("revoked")).then_some(signed.t().app_password_revoked);
    Ok(app_passwords_page(&state, &signed, None, notice).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct AppPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

/// `POST /app-passwords`: creates one and shows it, this once (the answer is not cached).
pub async fn create_app_password(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<AppPasswordForm>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    let label = form.label.trim();
    let label = if label.is_empty() { signed.t().unnamed_device } else { label };
    // A lookup clash within one account is a 1-in-a-million event; draw again.
    let mut attempt = 0;
    let (generated, stored) = loop {
        attempt += 1;
        let generated = app_password::generate();
        let hash = hash_password(&generated.normalized).await?;
        let new = NewAppPassword {
            account: signed.account.id,
            label: label.to_string(),
            lookup: generated.lookup.clone(),
            hash,
        };
        match state.store.create_app_password(new).await {
            Ok(stored) => break (generated, stored),
            Err(StoreError::AlreadyExists { .. }) if attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(account = %signed.account.address, app_password = %stored.label, id = stored.id, "app password created");
    Ok(app_passwords_page(&state, &signed, Some((&stored.label, &generated.display)), None)
        .await?
        .into_response())
}

/// `POST /app-passwords/{id}/revoke`.
pub async fn revoke_app_password(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    state.store.delete_app_password(signed.account.id, id).await?;
    tracing::info!(account = %signed.account.address, id, "app password revoked");
    Ok(see_other("/app-passwords?done=revoked"))
}

// ---- automatic client configuration (public) ----

#[derive(Deserialize, Default)]
pub struct AddressQuery {
    #[serde(default)]
    emailaddress: Option<String>,
}

/// `GET /.well-known/autoconfig/mail/config-v1.1.xml` and `GET /mail/config-v1.1.xml`:
/// Thunderbird's autoconfig. The domain comes from `emailaddress`, else from the host name
/// the client asked for (`autoconfig.example.org` → `example.org`), else `hostname`.
pub async fn autoconfig(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AddressQuery>,
) -> Result<Response, WebError> {
    let domains = state.store.list_domains().await?;
    let from_address = q
        .emailaddress
        .as_deref()
        .and_then(clients::plausible_address)
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()));
    let from_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host).to_lowercase())
        .and_then(|h| h.strip_prefix("autoconfig.").map(str::to_string))
        .filter(|d| domains.contains(d));
    let domain = from_address.or(from_host).unwrap_or_else(|| state.config.hostname.clone());
    let xml = clients::thunderbird(&state.client_settings(), &domain, &domains);
    Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response())
}

/// `POST /autodiscover/autodiscover.xml`: Outlook's Autodiscover (POX). Answers every
/// plausible address alike, so it reveals nothing about which exist.
pub async fn autodiscover(State(state): State<Shared>, body: String) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/xml; charset=utf-8")];
    match clients::autodiscover_request_address(&body) {
        Some(address) => {
            (content_type, clients::autodiscover(&state.client_settings(), &address)).into_response()
        }
        None => (content_type, clients::autodiscover_error()).into_response(),
    }
}

/// `GET /mobileconfig?emailaddress=...`: an Apple profile for any address (no password in it).
pub async fn public_mobileconfig(
    State(state): State<Shared>,
    Query(q): Query<AddressQuery>,
) -> Result<Response, WebError> {
    let address = q.emailaddress.as_deref().and_then(clients::plausible_address).ok_or_else(|| {
        WebError::BadRequest(format!(
            "emailaddress={}: not a mail address",
            percent_encode(q.emailaddress.as_deref().unwrap_or(""))
        ))
    })?;
    let profile = clients::mobileconfig(&state.client_settings(), &address);
    Ok(xml_download("application/x-apple-aspen-config", "postamt.mobileconfig", profile))
}
