//! App passwords: one random password per device or program, for IMAP, POP3 and SMTP
//! submission, so that a device never holds the account's main password and losing one device
//! means revoking one password.
//!
//! Format: 24 characters of a 30-character alphabet without look-alikes (`0 1 i l o u`), shown
//! in groups of four: `abcd-efgh-jkmn-pqrs-tvwx-yz23`. The first group is the public *lookup*
//! that finds the stored row (one argon2id verification per login, however many app passwords
//! an account has); the other 20 characters are the secret (about 98 bits). Dashes, spaces and case
//! are ignored when a client sends it back, since people retype these.

use rand::Rng;

/// The alphabet: lower-case letters and digits without `0 1 i l o u`.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstvwxyz23456789";
/// Characters of a whole app password, without dashes.
pub const LEN: usize = 24;
/// Characters of the lookup part.
pub const LOOKUP_LEN: usize = 4;

/// A freshly generated app password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// For display, grouped with dashes.
    pub display: String,
    /// The normalized password (what is hashed).
    pub normalized: String,
    /// The public part that finds it again.
    pub lookup: String,
}

/// Generates a new app password.
pub fn generate() -> Generated {
    // Uniform over 30 characters: log2(30) ≈ 4.9 bits each, ≈ 98 for the 20 secret ones.
    let mut rng = rand::rng();
    let normalized: String =
        (0..LEN).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let display =
        normalized.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("-");
    let lookup = normalized[..LOOKUP_LEN].to_string();
    Generated { display, normalized, lookup }
}

/// If `password` has the shape of an app password, its normalized form (no dashes or spaces,
/// lower case) and lookup part. Anything else is `None` and is never looked up.
pub fn parse(password: &str) -> Option<(String, String)> {
    let normalized: String =
        password.chars().filter(|c| *c != '-' && *c != ' ').map(|c| c.to_ascii_lowercase()).collect();
    if normalized.len() != LEN || !normalized.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let lookup = normalized[..LOOKUP_LEN].to_string();
    Some((normalized, lookup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_parse_back() {
        for _ in 0..50 {
            let g = generate();
            assert_eq!(g.display.len(), LEN + 5);
            assert_eq!(parse(&g.display), Some((g.normalized.clone(), g.lookup.clone())));
            assert_eq!(parse(&g.display.to_uppercase().replace('-', " ")), Some((g.normalized, g.lookup)));
        }
    }

    #[test]
    fn other_passwords_are_not_app_passwords() {
        assert_eq!(parse("correct horse battery"), None);
        assert_eq!(parse("abcd-efgh-jkmn-pqrs-tvwx-yz2"), None);
        // Look-alike characters are not in the alphabet.
        assert_eq!(parse("abcd-efgh-jkmn-pqrs-tvwx-yz20"), None);
        assert_eq!(parse(""), None);
    }
}
