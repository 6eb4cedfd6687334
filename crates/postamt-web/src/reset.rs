//! "Forgot password": a single-use link, valid for an hour, mailed to the account's recovery
//! address.
//!
//! - The request page answers the same, at once, whether the address has an account, a
//!   recovery address, or neither: the lookup and the mail happen in a background task, so
//!   neither the text nor the time of the answer tells anything.
//! - Requests are limited per client IP (answered with 429) and per account address (silently:
//!   at most a few mails an hour, so nobody can flood someone's recovery mailbox).
//! - The link carries a random 256-bit token; only its BLAKE3 hash is stored. Using it sets
//!   the new password, deletes every reset token of the account and signs out its sessions,
//!   in one store transaction.
//! - The link points at the configured `hostname`, never at the request's `Host` header.

use std::net::IpAddr;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use postamt_auth::secret;
use serde::Deserialize;

use crate::Shared;
use crate::ctx::{CSRF_FIELD, Ctx, now};
use crate::error::WebError;
use crate::http::see_other;
use crate::i18n::{Lang, fill};
use crate::layout::{self, page};
use crate::mail::{self, ResetMail};
use crate::pages::{hash_password, password_rules, weakness_message};
use crate::policy::{self, MIN_LENGTH};

/// How long a reset link works.
pub const RESET_VALIDITY_SECS: i64 = 3600;

fn forgot_page(ctx: &Ctx, csrf: &str, sent: bool) -> Markup {
    let t = ctx.t();
    page(
        ctx,
        None,
        t.forgot_title,
        html! {
            @if sent {
                (layout::ok(t.forgot_sent))
            }
            section.card {
                p { (t.forgot_lead) }
                form.stack method="post" action="/forgot" {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    label { (t.field_address)
                        input type="email" name="address" autocomplete="username" required autofocus; }
                    div { button type="submit" { (t.forgot_button) } }
                }
                p.hint { (t.forgot_no_recovery) }
                p.hint { a href="/login" { (t.back_to_login) } }
            }
        },
    )
}

/// `GET /forgot`.
pub async fn forgot_form(ctx: Ctx) -> Response {
    let (csrf, cookie) = ctx.pre_session_csrf();
    let mut response = forgot_page(&ctx, &csrf, false).into_response();
    if let Some(c) = cookie {
        response.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    response
}

#[derive(Deserialize, Default)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
}

/// `POST /forgot`: always the same answer; the work happens in the background.
pub async fn forgot(
    State(state): State<Shared>,
    ctx: Ctx,
    Form(form): Form<ForgotForm>,
) -> Result<Response, WebError> {
    ctx.check_pre_session_csrf(&form.csrf)?;
    let ip = ctx.ip();
    if !state.reset_per_ip.allow(&ip.to_string()) {
        tracing::warn!(%ip, "password reset requests from this address exceed the limit");
        return Err(WebError::TooManyRequests);
    }
    let address = form.address.trim().to_lowercase();
    if address.len() <= 320 && state.reset_per_address.allow(&address) {
        let lang = ctx.lang;
        let tls = ctx.conn.tls;
        let task_state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = send_reset_link(&task_state, &address, lang, ip, tls).await {
                tracing::error!(%address, error = %e, "password reset mail failed");
            }
        });
    } else {
        tracing::warn!(%ip, %address, "password reset mails for this address exceed the limit; not sent");
    }
    let (csrf, cookie) = ctx.pre_session_csrf();
    let mut response = forgot_page(&ctx, &csrf, true).into_response();
    if let Some(c) = cookie {
        response.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(response)
}

/// Looks the address up and, when it is an enabled account with a recovery address, stores a
/// token and mails the link.
async fn send_reset_link(
    state: &Shared,
    address: &str,
    lang: Lang,
    ip: IpAddr,
    tls: bool,
) -> Result<(), WebError> {
    let Some(account) = state.store.account_by_address(address).await? else {
        tracing::info!(%address, %ip, "password reset asked for an address without account");
        return Ok(());
    };
    if account.disabled {
        tracing::info!(%address, %ip, "password reset asked for a disabled account");
        return Ok(());
    }
    let Some(recovery) = state.store.recovery_address(account.id).await? else {
        tracing::info!(%address, %ip, "password reset asked for an account without recovery address");
        return Ok(());
    };
    let token = secret::random_token();
    let now = now();
    state
        .store
        .create_reset_token(account.id, &secret::hash_token(&token), now + RESET_VALIDITY_SECS)
        .await?;
    let hostname = &state.config.hostname;
    let from = format!("postmaster@{hostname}");
    let url = format!("{}/reset/{token}", state.public_base_url());
    let message_id = format!("{}@{hostname}", secret::random_token());
    let message = mail::reset_message(&ResetMail {
        hostname,
        from: &from,
        to: &recovery,
        account: &account.address,
        url: &url,
        ip,
        lang,
        date: now,
        message_id: &message_id,
        valid_minutes: RESET_VALIDITY_SECS / 60,
    });
    mail::send(&state.delivery, &from, &recovery, ip, tls, &message).await?;
    tracing::info!(account = %account.address, %recovery, %ip, "password reset link sent");
    Ok(())
}

fn invalid_link(ctx: &Ctx) -> Response {
    let t = ctx.t();
    let body = html! {
        (layout::err(t.reset_invalid))
        p { a href="/forgot" { (t.forgot_again) } }
    };
    (StatusCode::NOT_FOUND, page(ctx, None, t.reset_title, body)).into_response()
}

fn reset_page(ctx: &Ctx, csrf: &str, token: &str, address: &str, error: Option<&str>) -> Markup {
    let t = ctx.t();
    page(
        ctx,
        None,
        t.reset_title,
        html! {
            @if let Some(e) = error { (layout::err(e)) }
            section.card {
                p { (fill(t.reset_lead, &[address])) }
                form.stack method="post" action=(format!("/reset/{token}")) {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="username" value=(address) autocomplete="username";
                    label { (t.field_new_password)
                        input type="password" name="new" autocomplete="new-password" minlength=(MIN_LENGTH) required autofocus; }
                    label { (t.field_repeat_password)
                        input type="password" name="repeat" autocomplete="new-password" minlength=(MIN_LENGTH) required; }
                    (password_rules(ctx.lang))
                    div { button type="submit" { (t.reset_button) } }
                }
            }
        },
    )
}

/// The account a link's token is for, if the link is valid now.
async fn account_of_token(state: &Shared, token: &str) -> Result<Option<postamt_store::Account>, WebError> {
    if !secret::is_token(token) {
        return Ok(None);
    }
    let Some(id) = state.store.reset_token_account(&secret::hash_token(token), now()).await? else {
        return Ok(None);
    };
    Ok(state.store.account_by_id(id).await?.filter(|a| !a.disabled))
}

/// `GET /reset/{token}`: the form, if the link is valid.
pub async fn reset_form(
    State(state): State<Shared>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let Some(account) = account_of_token(&state, &token).await? else { return Ok(invalid_link(&ctx)) };
    let (csrf, cookie) = ctx.pre_session_csrf();
    let mut response = reset_page(&ctx, &csrf, &token, &account.address, None).into_response();
    if let Some(c) = cookie {
        response.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /reset/{token}`: sets the new password; the link is used up.
pub async fn reset(
    State(state): State<Shared>,
    ctx: Ctx,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, WebError> {
    ctx.check_pre_session_csrf(&form.csrf)?;
    let Some(account) = account_of_token(&state, &token).await? else { return Ok(invalid_link(&ctx)) };
    if let Err(w) = policy::check(&form.new, &form.repeat, &account.address) {
        let message = weakness_message(ctx.lang, w);
        let body = reset_page(&ctx, &form.csrf, &token, &account.address, Some(&message));
        return Ok((StatusCode::BAD_REQUEST, body).into_response());
    }
    let hash = hash_password(&form.new).await?;
    match state.store.reset_password_with_token(&secret::hash_token(&token), &hash, now()).await? {
        Some(account) => {
            tracing::info!(account = %account.address, ip = %ctx.ip(), "password reset with a mailed link");
            Ok(see_other("/login?done=reset"))
        }
        // Used or expired between the check and now.
        None => Ok(invalid_link(&ctx)),
    }
}
