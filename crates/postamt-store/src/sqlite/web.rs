//! The SQL behind the web pages' part of the `Store` trait: sessions, app passwords, recovery
//! addresses, password-reset tokens and API tokens (tables of `SCHEMA_WEB`).
//!
//! Kept apart from the mail data so the trait implementation in the parent module stays a list
//! of one-line delegations. Every table cascades with its account, so `remove_account` needs
//! no change for them.

use rusqlite::{OptionalExtension, Row, params};

use super::{DbResult, SqliteStore, account_by_id_in, normalize_address, not_found, now};
use crate::types::{Account, AccountId, ApiToken, AppPassword, NewAppPassword, WebSession};
use crate::{Result, StoreError};

/// Longest label of an app password or API token.
const MAX_LABEL_LEN: usize = 100;

fn check_label(label: &str) -> Result<String> {
    let label = label.trim();
    if label.chars().count() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            what: "label",
            detail: format!("at most {MAX_LABEL_LEN} characters, no control characters"),
        });
    }
    Ok(label.to_string())
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<WebSession> {
    Ok(WebSession {
        id_hash: row.get(0)?,
        account: row.get(1)?,
        csrf_token: row.get(2)?,
        created: row.get(3)?,
        last_seen: row.get(4)?,
        expires: row.get(5)?,
    })
}

const APP_PASSWORD_COLS: &str = "id, account_id, label, lookup, hash, created, last_used";

fn app_password_from_row(row: &Row<'_>) -> rusqlite::Result<AppPassword> {
    Ok(AppPassword {
        id: row.get(0)?,
        account: row.get(1)?,
        label: row.get(2)?,
        lookup: row.get(3)?,
        hash: row.get(4)?,
        created: row.get(5)?,
        last_used: row.get(6)?,
    })
}

const API_TOKEN_COLS: &str = "id, label, hash, created, last_used";

fn api_token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        label: row.get(1)?,
        hash: row.get(2)?,
        created: row.get(3)?,
        last_used: row.get(4)?,
    })
}

impl SqliteStore {
    pub(super) async fn web_create_session(&self, s: WebSession) -> Result<()> {
        self.write(move |ctx| {
            // Expired sessions are useless; dropping them here keeps the table small without
            // a separate sweeper.
            ctx.conn.execute("DELETE FROM web_sessions WHERE expires <= ?1", [now()]).db()?;
            ctx.conn
                .execute(
                    "INSERT INTO web_sessions (id_hash, account_id, csrf_token, created, last_seen, \
                     expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![s.id_hash, s.account, s.csrf_token, s.created, s.last_seen, s.expires],
                )
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_get_session(&self, id_hash: &str) -> Result<Option<WebSession>> {
        let id_hash = id_hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id_hash, account_id, csrf_token, created, last_seen, expires FROM web_sessions \
                 WHERE id_hash = ?1",
            )
            .db()?
            .query_row([&id_hash], session_from_row)
            .optional()
            .db()
        })
        .await
    }

    pub(super) async fn web_touch_session(&self, id_hash: &str, last_seen: i64) -> Result<()> {
        let id_hash = id_hash.to_string();
        self.write(move |ctx| {
            ctx.conn
                .execute(
                    "UPDATE web_sessions SET last_seen = ?1 WHERE id_hash = ?2",
                    params![last_seen, id_hash],
                )
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_delete_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_string();
        self.write(move |ctx| {
            ctx.conn.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [&id_hash]).db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_delete_sessions(&self, account: AccountId, except: Option<&str>) -> Result<()> {
        let except = except.map(str::to_string);
        self.write(move |ctx| {
            ctx.conn
                .execute(
                    "DELETE FROM web_sessions WHERE account_id = ?1 AND id_hash IS NOT ?2",
                    params![account, except],
                )
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_create_app_password(&self, new: NewAppPassword) -> Result<AppPassword> {
        let label = check_label(&new.label)?;
        self.write(move |ctx| {
            if account_by_id_in(ctx.conn, new.account)?.is_none() {
                return Err(not_found("account", new.account));
            }
            let taken: bool = ctx
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM app_passwords WHERE account_id = ?1 AND lookup = ?2)",
                    params![new.account, new.lookup],
                    |r| r.get(0),
                )
                .db()?;
            if taken {
                return Err(StoreError::AlreadyExists { kind: "app password", name: new.lookup });
            }
            ctx.conn
                .query_row(
                    &format!(
                        "INSERT INTO app_passwords (account_id, label, lookup, hash, created) \
                         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {APP_PASSWORD_COLS}"
                    ),
                    params![new.account, label, new.lookup, new.hash, now()],
                    app_password_from_row,
                )
                .db()
        })
        .await
    }

    pub(super) async fn web_list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {APP_PASSWORD_COLS} FROM app_passwords WHERE account_id = ?1 ORDER BY id"
                ))
                .db()?;
            let rows = stmt.query_map([account], app_password_from_row).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    pub(super) async fn web_app_password(
        &self,
        account: AccountId,
        lookup: &str,
    ) -> Result<Option<AppPassword>> {
        let lookup = lookup.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {APP_PASSWORD_COLS} FROM app_passwords WHERE account_id = ?1 AND lookup = ?2"
            ))
            .db()?
            .query_row(params![account, lookup], app_password_from_row)
            .optional()
            .db()
        })
        .await
    }

    pub(super) async fn web_app_password_used(&self, id: i64, at: i64) -> Result<()> {
        self.write(move |ctx| {
            ctx.conn
                .execute("UPDATE app_passwords SET last_used = ?1 WHERE id = ?2", params![at, id])
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_delete_app_password(&self, account: AccountId, id: i64) -> Result<()> {
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute("DELETE FROM app_passwords WHERE id = ?1 AND account_id = ?2", params![id, account])
                .db()?;
            if n == 0 {
                return Err(not_found("app password", id));
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn web_set_recovery_address(
        &self,
        account: AccountId,
        address: Option<&str>,
    ) -> Result<()> {
        let address = address.map(|a| normalize_address(a.trim(), false).map(|(a, _)| a)).transpose()?;
        self.write(move |ctx| {
            if account_by_id_in(ctx.conn, account)?.is_none() {
                return Err(not_found("account", account));
            }
            match address {
                Some(address) => ctx
                    .conn
                    .execute(
                        "INSERT INTO recovery_addresses (account_id, address) VALUES (?1, ?2) \
                         ON CONFLICT (account_id) DO UPDATE SET address = excluded.address",
                        params![account, address],
                    )
                    .db()?,
                None => ctx
                    .conn
                    .execute("DELETE FROM recovery_addresses WHERE account_id = ?1", [account])
                    .db()?,
            };
            Ok(())
        })
        .await
    }

    pub(super) async fn web_recovery_address(&self, account: AccountId) -> Result<Option<String>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT address FROM recovery_addresses WHERE account_id = ?1")
                .db()?
                .query_row([account], |r| r.get(0))
                .optional()
                .db()
        })
        .await
    }

    pub(super) async fn web_create_reset_token(
        &self,
        account: AccountId,
        token_hash: &str,
        expires: i64,
    ) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |ctx| {
            let now = now();
            ctx.conn.execute("DELETE FROM reset_tokens WHERE expires <= ?1", [now]).db()?;
            ctx.conn
                .execute(
                    "INSERT INTO reset_tokens (token_hash, account_id, created, expires) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![token_hash, account, now, expires],
                )
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_reset_token_account(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<AccountId>> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT account_id FROM reset_tokens WHERE token_hash = ?1 AND expires > ?2")
                .db()?
                .query_row(params![token_hash, now], |r| r.get(0))
                .optional()
                .db()
        })
        .await
    }

    pub(super) async fn web_reset_password_with_token(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Account>> {
        let token_hash = token_hash.to_string();
        let password_hash = password_hash.to_string();
        self.write(move |ctx| {
            let account: Option<AccountId> = ctx
                .conn
                .query_row(
                    "SELECT account_id FROM reset_tokens WHERE token_hash = ?1 AND expires > ?2",
                    params![token_hash, now],
                    |r| r.get(0),
                )
                .optional()
                .db()?;
            let Some(account) = account else { return Ok(None) };
            ctx.conn
                .execute(
                    "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
                    params![password_hash, account],
                )
                .db()?;
            ctx.conn.execute("DELETE FROM reset_tokens WHERE account_id = ?1", [account]).db()?;
            ctx.conn.execute("DELETE FROM web_sessions WHERE account_id = ?1", [account]).db()?;
            account_by_id_in(ctx.conn, account)
        })
        .await
    }

    pub(super) async fn web_create_api_token(&self, token: ApiToken) -> Result<()> {
        let label = check_label(&token.label)?;
        self.write(move |ctx| {
            let taken: bool = ctx
                .conn
                .query_row("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE id = ?1)", [&token.id], |r| r.get(0))
                .db()?;
            if taken {
                return Err(StoreError::AlreadyExists { kind: "API token", name: token.id });
            }
            ctx.conn
                .execute(
                    "INSERT INTO api_tokens (id, label, hash, created, last_used) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![token.id, label, token.hash, token.created, token.last_used],
                )
                .db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {API_TOKEN_COLS} FROM api_tokens ORDER BY created, id"))
                .db()?;
            let rows = stmt.query_map([], api_token_from_row).db()?;
            rows.collect::<rusqlite::Result<_>>().db()
        })
        .await
    }

    pub(super) async fn web_api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let hash = hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE hash = ?1"))
                .db()?
                .query_row([&hash], api_token_from_row)
                .optional()
                .db()
        })
        .await
    }

    pub(super) async fn web_api_token_used(&self, id: &str, at: i64) -> Result<()> {
        let id = id.to_string();
        self.write(move |ctx| {
            ctx.conn.execute("UPDATE api_tokens SET last_used = ?1 WHERE id = ?2", params![at, id]).db()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn web_delete_api_token(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |ctx| {
            let n = ctx.conn.execute("DELETE FROM api_tokens WHERE id = ?1", [&id]).db()?;
            if n == 0 {
                return Err(not_found("API token", id));
            }
            Ok(())
        })
        .await
    }
}
