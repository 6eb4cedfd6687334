//! The frame of every page (header, navigation, language switch, footer) and small rendering
//! helpers. Markup is maud's: every interpolated value is HTML-escaped.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::ctx::{CSRF_FIELD, Ctx, Signed, percent_encode};
use crate::i18n::Lang;

/// The navigation state of a signed-in page.
pub struct Nav<'a> {
    pub address: &'a str,
    pub admin: bool,
    pub csrf: &'a str,
    /// Path of the current section, to mark it in the menu.
    pub current: &'static str,
}

impl<'a> Nav<'a> {
    pub fn of(signed: &'a Signed, current: &'static str) -> Nav<'a> {
        Nav {
            address: &signed.account.address,
            admin: signed.account.admin,
            csrf: &signed.session.csrf_token,
            current,
        }
    }
}

/// A whole page.
pub fn page(ctx: &Ctx, nav: Option<Nav<'_>>, title: &str, body: Markup) -> Markup {
    let t = ctx.t();
    let other = ctx.lang.other();
    let switch = format!("/lang/{}?next={}", other.code(), percent_encode(&ctx.path));
    let narrow = nav.is_none();
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " – postamt" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header.top {
                    div.bar {
                        a.brand href="/" { "postamt" small { (t.brand_tagline) } }
                        @if let Some(nav) = &nav {
                            nav.main aria-label=(t.nav_label) {
                                @for (href, label) in menu(ctx.lang, nav.admin) {
                                    @if nav.current == href {
                                        a.current href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                            div.who {
                                span.mono { (nav.address) }
                                form method="post" action="/logout" {
                                    input type="hidden" name=(CSRF_FIELD) value=(nav.csrf);
                                    button.link type="submit" { (t.log_out) }
                                }
                                a href=(switch) hreflang=(other.code()) lang=(other.code()) { (other.name()) }
                            }
                        } @else {
                            div.who { a href=(switch) hreflang=(other.code()) lang=(other.code()) { (other.name()) } }
                        }
                    }
                }
                main class=[narrow.then_some("narrow")] {
                    h1 { (title) }
                    (body)
                }
                footer { (t.footer) }
            }
        }
    }
}

fn menu(lang: Lang, admin: bool) -> Vec<(&'static str, &'static str)> {
    let t = lang.texts();
    let mut items = vec![
        ("/settings", t.nav_settings),
        ("/account", t.nav_account),
        ("/password", t.nav_password),
        ("/app-passwords", t.nav_app_passwords),
    ];
    if admin {
        items.push(("/admin", t.nav_admin));
    }
    items
}

/// The page for an error, without navigation (it may be shown to anyone).
pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (status.as_u16()) " – postamt" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header.top { div.bar { a.brand href="/" { "postamt" } } }
                main.narrow {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    div.notice.err role="alert" { (message) }
                    p { a href="/" { (t.back_home) } }
                }
            }
        }
    }
}

/// A hidden CSRF field.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A success notice.
pub fn ok(message: &str) -> Markup {
    html! { div.notice.ok role="status" { (message) } }
}

/// An error notice.
pub fn err(message: &str) -> Markup {
    html! { div.notice.err role="alert" { (message) } }
}

/// Bytes for people: `512 B`, `1.5 MiB`, `2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A Unix time as `2026-11-26 13:14 UTC`.
pub fn time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", secs / 3600, secs / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(2 << 30), "2 GiB");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(time(1_795_698_868), "2026-11-26 13:14 UTC");
    }
}
