//! Random secrets handed to users once (session ids, password-reset links, API tokens) and the
//! hashes kept of them.
//!
//! These secrets carry 256 random bits, so a fast hash (BLAKE3) is as safe to store as a slow
//! one: nobody can guess a preimage. Only the hash is stored, so a copy of the database lets
//! nobody sign in, reset a password or call the API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// A new random 256-bit secret, as 43 characters of unpadded base64url (safe in cookies, URL
/// paths and HTTP headers).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a secret: BLAKE3, lower-case hex.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Whether `s` looks like a token of [`random_token`], before any lookup: cheap input
/// validation for values that arrive in cookies and URLs.
pub fn is_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Prefix of administration API tokens, so that a leaked one is recognisable (secret scanners,
/// logs) and cannot be confused with a password.
pub const API_TOKEN_PREFIX: &str = "postamt_";

/// A new API token: what to show once, and what to store.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Shown to the administrator once: `postamt_` and a random 256-bit secret.
    pub token: String,
    /// Short public id for listing and revoking (12 hex digits, random).
    pub id: String,
    /// [`hash_token`] of `token`.
    pub hash: String,
}

pub fn new_api_token() -> NewApiToken {
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    let id = id.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash_token(&token);
    NewApiToken { token, id, hash }
}

/// Compares two byte strings in time independent of where they differ (CSRF tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_recognised() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert!(is_token(&a), "{a}");
        assert!(!is_token("short"));
        assert!(!is_token(&format!("{}!", &a[..42])));
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn api_tokens() {
        let t = new_api_token();
        assert!(t.token.starts_with(API_TOKEN_PREFIX));
        assert_eq!(t.id.len(), 12);
        assert_eq!(t.hash, hash_token(&t.token));
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
