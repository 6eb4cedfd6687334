//! The rules a new password must meet, explained on every page that sets one:
//! - at least [`MIN_LENGTH`] characters (length is what makes guessing slow);
//! - not the account's address, nor its part before the `@`;
//! - not one of the most common passwords (a small list embedded here), nor one character
//!   repeated.
//!
//! Deliberately no rules about character classes: they make passwords harder to remember, not
//! to guess (NIST SP 800-63B section 5.1.1.2).

/// Fewest characters a password may have.
pub const MIN_LENGTH: usize = 10;
/// Most characters: beyond this nothing is gained and hashing gets slower.
pub const MAX_LENGTH: usize = 256;

/// Common passwords of at least [`MIN_LENGTH`] characters (shorter ones fail the length rule
/// anyway), compared case-insensitively.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "0123456789",
    "0987654321",
    "1111111111",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "abcdefghij",
    "abc1234567",
    "abcd123456",
    "qwertyuiop",
    "qwertzuiop",
    "asdfghjkl1",
    "zxcvbnm123",
    "qwerty1234",
    "qwerty12345",
    "qwertz1234",
    "qwertz12345",
    "password12",
    "password123",
    "password1234",
    "password!1",
    "passw0rd123",
    "passwort12",
    "passwort123",
    "passwort1234",
    "iloveyou12",
    "iloveyou123",
    "ichliebedich",
    "letmein123",
    "welcome123",
    "willkommen",
    "willkommen1",
    "willkommen123",
    "administrator",
    "admin12345",
    "admin123456",
    "changeme123",
    "football12",
    "basketball",
    "sunshine12",
    "princess12",
    "starwars12",
    "dragon1234",
    "monkey1234",
    "superman12",
    "trustno1234",
    "baseball12",
    "whatever12",
    "michael123",
    "jennifer12",
    "hallo12345",
    "hallohallo",
    "geheim1234",
    "schalke04!",
    "fussball12",
    "sommer2024",
    "sommer2025",
    "winter2024",
    "winter2025",
    "summer2024",
    "summer2025",
    "spring2025",
    "autumn2025",
    "qwerty123456",
    "1234qwerty",
    "q1w2e3r4t5",
    "aa12345678",
    "a123456789",
    "123456789q",
    "computer12",
    "internet12",
    "mailserver",
    "postamt123",
    "correcthorse",
    "p@ssw0rd123",
];

/// Why a password was refused; the page shows the matching explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort,
    TooLong,
    IsAddress,
    Common,
    /// New password and its repetition differ.
    Mismatch,
}

/// Checks a new password for `address`.
pub fn check(password: &str, repeat: &str, address: &str) -> Result<(), Weakness> {
    if password != repeat {
        return Err(Weakness::Mismatch);
    }
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(Weakness::TooShort);
    }
    if len > MAX_LENGTH {
        return Err(Weakness::TooLong);
    }
    let lower = password.trim().to_lowercase();
    let address = address.to_lowercase();
    let local = address.split('@').next().unwrap_or_default();
    if lower == address || (!local.is_empty() && lower == local) {
        return Err(Weakness::IsAddress);
    }
    let mut chars = lower.chars();
    let first = chars.next();
    if COMMON.contains(&lower.as_str()) || chars.all(|c| Some(c) == first) {
        return Err(Weakness::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let a = "me@example.org";
        assert_eq!(check("a long passphrase", "a long passphrase", a), Ok(()));
        assert_eq!(check("short", "short", a), Err(Weakness::TooShort));
        assert_eq!(check("a long passphrase", "a long passphrasE", a), Err(Weakness::Mismatch));
        assert_eq!(check("ME@example.org", "ME@example.org", a), Err(Weakness::IsAddress));
        let b = "somebodylong@example.org";
        assert_eq!(check("SomebodyLong", "SomebodyLong", b), Err(Weakness::IsAddress));
        assert_eq!(check("Password123", "Password123", a), Err(Weakness::Common));
        assert_eq!(check("zzzzzzzzzzzz", "zzzzzzzzzzzz", a), Err(Weakness::Common));
        let long = "x".repeat(300) + "y";
        assert_eq!(check(&long, &long, a), Err(Weakness::TooLong));
        // Every listed password would pass the length rule: the list is not dead weight.
        assert!(COMMON.iter().all(|p| p.chars().count() >= MIN_LENGTH && *p == p.to_lowercase()));
    }
}
