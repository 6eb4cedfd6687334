//! Mails the web service sends (the password-reset link), composed here and handed to
//! postamt's own delivery: local delivery when the recipient is one of our accounts, else the
//! outbound queue.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postamt_delivery::{Delivery, Envelope, Recipient, Route, Target, Trace, format_date};

use crate::error::WebError;
use crate::i18n::{Lang, fill};

/// A header value, as RFC 2047 encoded words when it is not plain ASCII.
pub fn encode_header(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    // Each encoded word at most 75 characters (RFC 2047 section 2): 45 bytes of UTF-8 become
    // 60 of base64 plus 12 of framing. Words split on character boundaries.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?utf-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// What goes into a reset mail.
pub struct ResetMail<'a> {
    pub hostname: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// The account whose password the link resets.
    pub account: &'a str,
    pub url: &'a str,
    /// Who asked.
    pub ip: IpAddr,
    pub lang: Lang,
    pub date: i64,
    pub message_id: &'a str,
    pub valid_minutes: i64,
}

/// The complete message (header and body, CRLF line ends, UTF-8 body in 8bit).
pub fn reset_message(m: &ResetMail<'_>) -> Vec<u8> {
    let t = m.lang.texts();
    let subject = fill(t.reset_mail_subject, &[m.account]);
    let body = fill(
        t.reset_mail_body,
        &[m.account, m.hostname, &m.ip.to_string(), m.url, &m.valid_minutes.to_string()],
    );
    let mut out = String::new();
    out.push_str(&format!("From: postamt <{}>\r\n", m.from));
    out.push_str(&format!("To: <{}>\r\n", m.to));
    out.push_str(&format!("Subject: {}\r\n", encode_header(&subject)));
    out.push_str(&format!("Date: {}\r\n", format_date(m.date)));
    out.push_str(&format!("Message-ID: <{}>\r\n", m.message_id));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n");
    // RFC 3834: no vacation replies or other automatic answers to this.
    out.push_str("Auto-Submitted: auto-generated\r\n");
    out.push_str(&format!("Content-Language: {}\r\n", m.lang.code()));
    out.push_str("\r\n");
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// Delivers a message from `sender` to one recipient through postamt's own mail path.
pub async fn send(
    delivery: &Delivery,
    sender: &str,
    recipient: &str,
    peer: IpAddr,
    tls: bool,
    message: &[u8],
) -> Result<(), WebError> {
    let target = match delivery.route(recipient).await? {
        Route::Local(account) => Target::Local(account.id),
        Route::Remote => Target::Remote,
        Route::UnknownLocal => {
            return Err(WebError::BadRequest(format!("{recipient} is a local address nobody receives")));
        }
    };
    let remote = matches!(target, Target::Remote);
    let env = Envelope {
        sender: sender.to_string(),
        recipients: vec![Recipient { address: recipient.to_string(), target, notify: None, orcpt: None }],
        envid: None,
        ret: None,
        smtputf8: !recipient.is_ascii(),
        body_8bit: true,
    };
    let trace = Trace {
        helo: "web".to_string(),
        peer,
        protocol: if tls { "HTTPS" } else { "HTTP" }.to_string(),
        tls: None,
    };
    // Mail leaving the server is DKIM-signed like any submitted message, when the sender's
    // domain is ours (it has keys); unsigned is still better than not sent.
    let sender_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
    let mut message = message.to_vec();
    if remote && delivery.store().is_local_domain(sender_domain).await? {
        match delivery.sign_submission(message.clone(), sender_domain).await {
            Ok(signed) => message = signed,
            Err(e) => {
                tracing::warn!(error = %e, domain = sender_domain, "cannot DKIM-sign a web mail; sending it unsigned")
            }
        }
    }
    let report = delivery.deliver(&env, &trace, &message).await?;
    if !report.failed.is_empty() {
        return Err(WebError::Internal(format!("delivery to {recipient} refused: {:?}", report.failed)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_encoded_when_needed() {
        assert_eq!(encode_header("Reset"), "Reset");
        let e = encode_header("Passwort zurücksetzen");
        assert!(e.starts_with("=?utf-8?B?") && e.ends_with("?="), "{e}");
        let long = encode_header(&"ü".repeat(60));
        assert!(long.split("\r\n ").all(|w| w.len() <= 75), "{long}");
    }

    #[test]
    fn reset_mail() {
        let m = ResetMail {
            hostname: "mail.example.org",
            from: "postmaster@mail.example.org",
            to: "me@elsewhere.example",
            account: "me@example.org",
            url: "https://mail.example.org/reset/abc",
            ip: "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            lang: Lang::De,
            date: 0,
            message_id: "x@mail.example.org",
            valid_minutes: 60,
        };
        let text = String::from_utf8(reset_message(&m)).unwrap_or_default();
        assert!(text.contains("\r\nhttps://mail.example.org/reset/abc\r\n"), "{text}");
        assert!(text.contains("Subject: =?utf-8?B?"), "{text}");
        assert!(!text.contains("\n\n") && !text.replace("\r\n", "").contains('\n'));
    }
}
