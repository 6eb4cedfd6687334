//! QUOTA (RFC 9208): one quota root per account, named `""`, covering all its mailboxes,
//! with the STORAGE (units of 1024 octets, section 5.1) and MESSAGE (section 5.2)
//! resources. GETQUOTA and GETQUOTAROOT for every user; SETQUOTA (QUOTASET) only for
//! administrator accounts, on their own root. Exceeding a limit makes APPEND and COPY fail
//! with `NO [OVERQUOTA]` (section 4.3.1, mapped from the store's `OverQuota`); MOVE keeps
//! the account's usage, and deliveries over either limit are refused by SMTP.

use postamt_store::QuotaUsage;

use super::{Outcome, Session, bad, no, ok};
use crate::response;

/// The one quota root of an account.
const ROOT: &str = "";

/// Octets per STORAGE unit (RFC 9208 section 5.1).
const KIB: u64 = 1024;

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`: only limited resources are listed
/// (section 4.2.1: "Resources not named in the list are not limited").
fn quota_line(usage: &QuotaUsage, utf8: bool) -> Vec<u8> {
    let mut resources = Vec::new();
    if let Some(limit) = usage.limit_bytes {
        resources.push(format!("STORAGE {} {}", usage.used_bytes.div_ceil(KIB), limit / KIB));
    }
    if let Some(limit) = usage.limit_messages {
        resources.push(format!("MESSAGE {} {limit}", usage.used_messages));
    }
    let mut line = b"* QUOTA ".to_vec();
    response::astring(&mut line, ROOT, utf8);
    line.extend_from_slice(format!(" ({})\r\n", resources.join(" ")).as_bytes());
    line
}

impl Session<'_> {
    async fn usage(&self) -> Result<QuotaUsage, Outcome> {
        let Some(account) = &self.account else { return Err(bad("Log in first")) };
        self.svc.store.quota(account.id).await.map_err(|e| self.store_error(e))
    }

    /// GETQUOTA (RFC 9208 section 4.1.1).
    pub(crate) async fn get_quota(&mut self, root: &str) -> Outcome {
        if root != ROOT {
            return no("[NONEXISTENT] No such quota root");
        }
        match self.usage().await {
            Ok(usage) => {
                let line = quota_line(&usage, self.utf8());
                self.out().extend_from_slice(&line);
                ok("GETQUOTA completed")
            }
            Err(o) => o,
        }
    }

    /// GETQUOTAROOT (RFC 9208 section 4.1.2): every mailbox, existing or not, is under `""`.
    pub(crate) async fn get_quota_root(&mut self, raw: &str) -> Outcome {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let usage = match self.usage().await {
            Ok(u) => u,
            Err(o) => return o,
        };
        let mut line = b"* QUOTAROOT ".to_vec();
        response::astring(&mut line, &self.encode_name(&name), self.utf8());
        line.push(b' ');
        response::astring(&mut line, ROOT, self.utf8());
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(&quota_line(&usage, self.utf8()));
        self.out().extend_from_slice(&line);
        ok("GETQUOTAROOT completed")
    }

    /// SETQUOTA (RFC 9208 section 4.1.3): administrators only. Limits not listed are
    /// removed; STORAGE is given in units of 1024 octets.
    pub(crate) async fn set_quota(&mut self, root: &str, limits: &[(String, u64)]) -> Outcome {
        let Some(account) = self.account.clone() else { return bad("Log in first") };
        if !account.admin {
            return no("[NOPERM] Only administrators may set quotas");
        }
        if root != ROOT {
            return no("[NONEXISTENT] No such quota root");
        }
        let (mut bytes, mut messages) = (None, None);
        for (name, limit) in limits {
            match name.as_str() {
                "STORAGE" if bytes.is_none() => match limit.checked_mul(KIB) {
                    Some(b) if b <= i64::MAX as u64 => bytes = Some(b),
                    _ => return no("[LIMIT] STORAGE limit too large"),
                },
                "MESSAGE" if messages.is_none() => messages = Some(*limit),
                "STORAGE" | "MESSAGE" => return bad(format!("{name} given twice")),
                _ => return no(format!("[CANNOT] Unsupported resource {name}")),
            }
        }
        if let Err(e) = self.svc.store.set_quota_limits(account.id, bytes, messages).await {
            return self.store_error(e);
        }
        match self.usage().await {
            Ok(usage) => {
                let line = quota_line(&usage, self.utf8());
                self.out().extend_from_slice(&line);
                ok("SETQUOTA completed")
            }
            Err(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_lines_count_storage_in_kib() {
        let usage = QuotaUsage {
            used_bytes: 1025,
            used_messages: 3,
            limit_bytes: Some(10 * 1024 + 1023),
            limit_messages: Some(7),
        };
        assert_eq!(quota_line(&usage, false), b"* QUOTA \"\" (STORAGE 2 10 MESSAGE 3 7)\r\n");
        let unlimited =
            QuotaUsage { used_bytes: 0, used_messages: 0, limit_bytes: None, limit_messages: None };
        assert_eq!(quota_line(&unlimited, false), b"* QUOTA \"\" ()\r\n");
    }
}
