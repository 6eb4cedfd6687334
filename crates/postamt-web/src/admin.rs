//! Administration pages, for accounts with the admin role: domains (with the DNS records to
//! publish), accounts, aliases and catch-alls, the outbound queue. The operations themselves
//! are in [`crate::ops`], shared with the JSON API.

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use postamt_store::RecipientStatus;
use serde::Deserialize;

use crate::Shared;
use crate::ctx::{AdminUser, percent_encode};
use crate::error::WebError;
use crate::http::see_other;
use crate::i18n::fill;
use crate::layout::{self, Nav, page};
use crate::ops::{self, AccountChanges, AccountInput};
use crate::pages::password_rules;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/admin", get(|| async { see_other("/admin/accounts") }))
        .route("/admin/domains", get(domains).post(add_domain))
        .route("/admin/domains/{name}", get(domain_dns))
        .route("/admin/domains/{name}/delete", post(delete_domain))
        .route("/admin/accounts", get(accounts).post(create_account))
        .route("/admin/accounts/{address}", get(account).post(update_account))
        .route("/admin/accounts/{address}/password", post(set_password))
        .route("/admin/accounts/{address}/delete", post(delete_account))
        .route("/admin/aliases", get(aliases).post(add_alias))
        .route("/admin/aliases/delete", post(delete_alias))
        .route("/admin/queue", get(queue))
        .route("/admin/queue/{id}/retry", post(retry_queue))
        .route("/admin/queue/{id}/delete", post(delete_queue))
}

/// The frame of an admin page: the sub-navigation, a notice or error, the content.
fn admin_page(
    admin: &AdminUser,
    current: &'static str,
    title: &str,
    notice: Option<&str>,
    error: Option<&str>,
    body: Markup,
) -> Markup {
    let s = &admin.0;
    let t = s.t();
    let tabs = [
        ("/admin/accounts", t.admin_accounts),
        ("/admin/aliases", t.admin_aliases),
        ("/admin/domains", t.admin_domains),
        ("/admin/queue", t.admin_queue),
    ];
    page(
        &s.ctx,
        Some(Nav::of(s, "/admin")),
        title,
        html! {
            nav.main aria-label=(t.nav_admin) {
                @for (href, label) in tabs {
                    @if href == current { a.current href=(href) aria-current="page" { (label) } }
                    @else { a href=(href) { (label) } }
                }
            }
            p {}
            @if let Some(n) = notice { (layout::ok(n)) }
            @if let Some(e) = error { (layout::err(e)) }
            (body)
        },
    )
}

/// The error of a failed change that the page shows (status and message), or `None` when it
/// worked; server errors propagate.
fn failure(
    result: Result<(), WebError>,
    lang: crate::i18n::Lang,
) -> Result<Option<(StatusCode, String)>, WebError> {
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.status().is_client_error() => Ok(Some((e.status(), e.message(lang)))),
        Err(e) => Err(e),
    }
}

/// Redirects to `$ok_to` after a change that worked, or shows the page again with the error.
macro_rules! respond {
    ($result:expr, $ok_to:expr, $lang:expr, |$msg:ident| $page:expr) => {
        match failure($result, $lang)? {
            None => Ok(see_other($ok_to)),
            Some((status, $msg)) => Ok((status, $page.await?).into_response()),
        }
    };
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

fn done_message(admin: &AdminUser, done: Option<&str>) -> Option<&'static str> {
    let t = admin.0.t();
    match done? {
        "created" | "added" => Some(t.admin_done_added),
        "deleted" => Some(t.admin_done_deleted),
        "saved" => Some(t.admin_done_saved),
        "retry" => Some(t.admin_done_retry),
        _ => None,
    }
}

fn csrf(admin: &AdminUser) -> Markup {
    layout::csrf(&admin.0.session.csrf_token)
}

#[derive(Deserialize, Default)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

// ---- domains ----

async fn domains_page(
    state: &Shared,
    admin: &AdminUser,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = admin.0.t();
    let domains = state.store.list_domains().await?;
    let accounts = state.store.list_accounts().await?;
    let body = html! {
        section.card {
            h2 { (t.admin_add_domain) }
            form.inline method="post" action="/admin/domains" {
                (csrf(admin))
                label { (t.field_domain) input type="text" name="name" placeholder="example.org" required; }
                button type="submit" { (t.add) }
            }
        }
        section.card {
            div.table-wrap { table {
                thead { tr { th { (t.field_domain) } th { (t.admin_accounts) } th {} } }
                tbody {
                    @for d in &domains {
                        tr {
                            td.mono { a href=(format!("/admin/domains/{}", percent_encode(d))) { (d) } }
                            td { (accounts.iter().filter(|a| &a.domain == d).count()) }
                            td {
                                a href=(format!("/admin/domains/{}", percent_encode(d))) { (t.admin_dns_records) }
                                " "
                                form method="post" action=(format!("/admin/domains/{}/delete", percent_encode(d))) {
                                    (csrf(admin))
                                    button.danger type="submit" { (t.delete) }
                                }
                            }
                        }
                    }
                }
            } }
            @if domains.is_empty() { p.hint { (t.admin_no_domains) } }
        }
    };
    Ok(admin_page(admin, "/admin/domains", t.admin_domains, notice, error, body))
}

async fn domains(
    State(state): State<Shared>,
    admin: AdminUser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = done_message(&admin, q.done.as_deref());
    Ok(domains_page(&state, &admin, notice, None).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct DomainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn add_domain(
    State(state): State<Shared>,
    admin: AdminUser,
    Form(form): Form<DomainForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result = ops::add_domain(&state, &admin.0.account.address, &form.name).await.map(|_| ());
    respond!(result, "/admin/domains?done=added", admin.0.ctx.lang, |e| domains_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}

async fn delete_domain(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result = ops::remove_domain(&state, &admin.0.account.address, &name).await;
    respond!(result, "/admin/domains?done=deleted", admin.0.ctx.lang, |e| domains_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}

async fn domain_dns(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let t = admin.0.t();
    let (records, zone) = ops::domain_dns(&state, &name).await?;
    let body = html! {
        section.card {
            h2 { (fill(t.admin_dns_for, &[&name])) }
            p.hint { (fill(t.admin_dns_hint, &[&state.config.hostname])) }
            div.table-wrap { table {
                thead { tr { th { (t.col_name) } th { (t.col_type) } th { (t.col_value) } } }
                tbody {
                    @for r in &records {
                        tr { td.mono { (r.name) } td { (r.kind()) } td { code { (r.rdata()) } } }
                    }
                }
            } }
        }
        section.card {
            h2 { (t.admin_zone_file) }
            pre { (zone) }
        }
    };
    Ok(admin_page(&admin, "/admin/domains", &name, None, None, body).into_response())
}

// ---- accounts ----

fn tag(on: bool, label: &str) -> Markup {
    html! { span class=(if on { "tag on" } else { "tag off" }) { (label) } }
}

async fn accounts_page(
    state: &Shared,
    admin: &AdminUser,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = admin.0.t();
    let accounts = state.store.list_accounts().await?;
    let domains = state.store.list_domains().await?;
    let body = html! {
        section.card {
            h2 { (t.admin_new_account) }
            @if domains.is_empty() {
                p.hint { (t.admin_no_domains) " " a href="/admin/domains" { (t.admin_add_domain) } }
            }
            form.stack method="post" action="/admin/accounts" {
                (csrf(admin))
                label { (t.field_address) input type="email" name="address" required autocomplete="off"; }
                label { (t.field_password) input type="password" name="password" required autocomplete="new-password"; }
                (password_rules(admin.0.ctx.lang))
                label { (t.field_quota) input type="text" name="quota" placeholder="2G"; span.hint { (t.quota_hint) } }
                label.check { input type="checkbox" name="admin" value="on"; (t.field_admin_role) }
                div { button type="submit" { (t.create) } }
            }
        }
        section.card {
            div.table-wrap { table {
                thead { tr { th { (t.field_address) } th { (t.quota_heading) } th { (t.col_access) } } }
                tbody {
                    @for a in &accounts {
                        tr {
                            td.mono { a href=(format!("/admin/accounts/{}", percent_encode(&a.address))) { (a.address) } }
                            td {
                                (layout::bytes(a.used_bytes)) " / "
                                (a.quota.map_or_else(|| t.unlimited.to_string(), layout::bytes))
                            }
                            td {
                                (tag(a.imap_enabled, "IMAP")) " " (tag(a.pop3_enabled, "POP3"))
                                @if a.admin { " " span.tag { "admin" } }
                                @if a.disabled { " " (tag(false, t.disabled)) }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(admin_page(admin, "/admin/accounts", t.admin_accounts, notice, error, body))
}

async fn accounts(
    State(state): State<Shared>,
    admin: AdminUser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = done_message(&admin, q.done.as_deref());
    Ok(accounts_page(&state, &admin, notice, None).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct NewAccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    quota: String,
    #[serde(default)]
    admin: Option<String>,
}

async fn create_account(
    State(state): State<Shared>,
    admin: AdminUser,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let lang = admin.0.ctx.lang;
    let result = async {
        let input = AccountInput {
            address: form.address.clone(),
            password: form.password.clone(),
            quota: ops::parse_quota(&form.quota)?,
            admin: form.admin.is_some(),
            imap: true,
            pop3: true,
        };
        ops::create_account(&state, &admin.0.account.address, lang, input).await.map(|_| ())
    }
    .await;
    respond!(result, "/admin/accounts?done=created", lang, |e| accounts_page(&state, &admin, None, Some(&e)))
}

async fn account_page(
    state: &Shared,
    admin: &AdminUser,
    address: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = admin.0.t();
    let a = ops::account(state, address).await?;
    let base = format!("/admin/accounts/{}", percent_encode(&a.address));
    let quota = a.quota.map(ops::quota_text).unwrap_or_default();
    let body = html! {
        section.card {
            h2 { (t.admin_settings) }
            p.hint { (fill(t.admin_usage, &[&layout::bytes(a.used_bytes), &a.used_messages.to_string()])) }
            form.stack method="post" action=(base) {
                (csrf(admin))
                label.check { input type="checkbox" name="imap" value="on" checked[a.imap_enabled]; "IMAP" }
                label.check { input type="checkbox" name="pop3" value="on" checked[a.pop3_enabled]; "POP3" }
                label.check { input type="checkbox" name="admin" value="on" checked[a.admin]; (t.field_admin_role) }
                label.check { input type="checkbox" name="enabled" value="on" checked[!a.disabled]; (t.field_enabled) }
                label { (t.field_quota) input type="text" name="quota" value=(quota) placeholder="2G"; span.hint { (t.quota_hint) } }
                div { button type="submit" { (t.save) } }
            }
        }
        section.card {
            h2 { (t.admin_set_password) }
            form.stack method="post" action=(format!("{base}/password")) {
                (csrf(admin))
                input type="hidden" name="username" value=(a.address) autocomplete="username";
                label { (t.field_new_password) input type="password" name="password" required autocomplete="new-password"; }
                (password_rules(admin.0.ctx.lang))
                div { button type="submit" { (t.change_password_button) } }
            }
        }
        section.card {
            h2 { (t.admin_delete_account) }
            p.hint { (t.admin_delete_warning) }
            form.stack method="post" action=(format!("{base}/delete")) {
                (csrf(admin))
                label.check { input type="checkbox" name="confirm" value="on" required; (t.admin_confirm_delete) }
                div { button.danger type="submit" { (t.delete) } }
            }
        }
    };
    Ok(admin_page(admin, "/admin/accounts", &a.address, notice, error, body))
}

async fn account(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(address): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = done_message(&admin, q.done.as_deref());
    Ok(account_page(&state, &admin, &address, notice, None).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    imap: Option<String>,
    #[serde(default)]
    pop3: Option<String>,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    quota: String,
}

async fn update_account(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(address): Path<String>,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let lang = admin.0.ctx.lang;
    let result = async {
        let changes = AccountChanges {
            // Unchecked boxes are absent from the form: off.
            imap: Some(form.imap.is_some()),
            pop3: Some(form.pop3.is_some()),
            admin: Some(form.admin.is_some()),
            enabled: Some(form.enabled.is_some()),
            quota: Some(ops::parse_quota(&form.quota)?),
            password: None,
        };
        ops::update_account(&state, &admin.0.account.address, lang, &address, changes).await.map(|_| ())
    }
    .await;
    let to = format!("/admin/accounts/{}?done=saved", percent_encode(&address));
    respond!(result, &to, lang, |e| account_page(&state, &admin, &address, None, Some(&e)))
}

#[derive(Deserialize, Default)]
pub struct SetPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn set_password(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(address): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let lang = admin.0.ctx.lang;
    let changes = AccountChanges { password: Some(form.password.clone()), ..AccountChanges::default() };
    let result =
        ops::update_account(&state, &admin.0.account.address, lang, &address, changes).await.map(|_| ());
    let to = format!("/admin/accounts/{}?done=saved", percent_encode(&address));
    respond!(result, &to, lang, |e| account_page(&state, &admin, &address, None, Some(&e)))
}

#[derive(Deserialize, Default)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: Option<String>,
}

async fn delete_account(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(address): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let lang = admin.0.ctx.lang;
    let result = if form.confirm.is_some() {
        ops::delete_account(&state, &admin.0.account.address, lang, &address).await
    } else {
        Err(WebError::BadRequest(admin.0.t().admin_confirm_delete.to_string()))
    };
    respond!(result, "/admin/accounts?done=deleted", lang, |e| account_page(
        &state,
        &admin,
        &address,
        None,
        Some(&e)
    ))
}

// ---- aliases ----

async fn aliases_page(
    state: &Shared,
    admin: &AdminUser,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = admin.0.t();
    let aliases = state.store.list_aliases().await?;
    let accounts = state.store.list_accounts().await?;
    let body = html! {
        section.card {
            h2 { (t.admin_new_alias) }
            p.hint { (t.admin_alias_hint) }
            form.inline method="post" action="/admin/aliases" {
                (csrf(admin))
                label { (t.field_alias) input type="text" name="alias" placeholder="info@example.org" required; }
                label { (t.field_target)
                    select name="target" required {
                        @for a in &accounts { option value=(a.address) { (a.address) } }
                    }
                }
                button type="submit" { (t.add) }
            }
        }
        section.card {
            div.table-wrap { table {
                thead { tr { th { (t.field_alias) } th { (t.field_target) } th {} } }
                tbody {
                    @for a in &aliases {
                        tr {
                            td.mono { (a.alias) @if a.alias.starts_with('@') { " " span.tag { (t.catch_all) } } }
                            td.mono { (a.target) }
                            td {
                                form method="post" action="/admin/aliases/delete" {
                                    (csrf(admin))
                                    input type="hidden" name="alias" value=(a.alias);
                                    button.danger type="submit" { (t.delete) }
                                }
                            }
                        }
                    }
                }
            } }
            @if aliases.is_empty() { p.hint { (t.admin_no_aliases) } }
        }
    };
    Ok(admin_page(admin, "/admin/aliases", t.admin_aliases, notice, error, body))
}

async fn aliases(
    State(state): State<Shared>,
    admin: AdminUser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = done_message(&admin, q.done.as_deref());
    Ok(aliases_page(&state, &admin, notice, None).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct AliasForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    alias: String,
    #[serde(default)]
    target: String,
}

async fn add_alias(
    State(state): State<Shared>,
    admin: AdminUser,
    Form(form): Form<AliasForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result =
        ops::add_alias(&state, &admin.0.account.address, &form.alias, &form.target).await.map(|_| ());
    respond!(result, "/admin/aliases?done=added", admin.0.ctx.lang, |e| aliases_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}

async fn delete_alias(
    State(state): State<Shared>,
    admin: AdminUser,
    Form(form): Form<AliasForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result = ops::remove_alias(&state, &admin.0.account.address, &form.alias).await;
    respond!(result, "/admin/aliases?done=deleted", admin.0.ctx.lang, |e| aliases_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}

// ---- queue ----

fn status_label(t: &crate::i18n::Texts, s: RecipientStatus) -> &'static str {
    match s {
        RecipientStatus::Pending => t.queue_pending,
        RecipientStatus::Delivered => t.queue_delivered,
        RecipientStatus::Failed => t.queue_failed,
    }
}

async fn queue_page(
    state: &Shared,
    admin: &AdminUser,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let t = admin.0.t();
    let entries = ops::queue(state).await?;
    let body = html! {
        section.card {
            @if entries.is_empty() {
                p { (t.queue_empty) }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { "ID" } th { (t.queue_sender) } th { (t.queue_recipients) } th { (t.queue_size) }
                        th { (t.col_created) } th { (t.queue_next) } th { (t.queue_attempts) } th {}
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td.mono { (e.id) }
                                td.mono { @if e.sender.is_empty() { "<>" } @else { (e.sender) } }
                                td {
                                    @for r in &e.recipients {
                                        div {
                                            span.mono { (r.recipient.address) } " "
                                            span.tag { (status_label(t, r.status)) }
                                            @if let Some(reply) = &r.last_reply { br; span.hint { (reply) } }
                                        }
                                    }
                                }
                                td { (layout::bytes(e.size)) }
                                td { (layout::time(e.created)) }
                                td { (layout::time(e.next_attempt)) }
                                td { (e.attempts) }
                                td {
                                    form method="post" action=(format!("/admin/queue/{}/retry", percent_encode(&e.id))) {
                                        (csrf(admin)) button.secondary type="submit" { (t.queue_retry) }
                                    }
                                    " "
                                    form method="post" action=(format!("/admin/queue/{}/delete", percent_encode(&e.id))) {
                                        (csrf(admin)) button.danger type="submit" { (t.delete) }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(admin_page(admin, "/admin/queue", t.admin_queue, notice, error, body))
}

async fn queue(
    State(state): State<Shared>,
    admin: AdminUser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = done_message(&admin, q.done.as_deref());
    Ok(queue_page(&state, &admin, notice, None).await?.into_response())
}

async fn retry_queue(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result = ops::retry_queue_entry(&state, &admin.0.account.address, &id).await;
    respond!(result, "/admin/queue?done=retry", admin.0.ctx.lang, |e| queue_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}

async fn delete_queue(
    State(state): State<Shared>,
    admin: AdminUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin.0.check_csrf(&form.csrf)?;
    let result = ops::delete_queue_entry(&state, &admin.0.account.address, &id).await;
    respond!(result, "/admin/queue?done=deleted", admin.0.ctx.lang, |e| queue_page(
        &state,
        &admin,
        None,
        Some(&e)
    ))
}
