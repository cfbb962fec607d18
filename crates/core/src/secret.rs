//! Secrets as types, so they cannot reach a log line by accident.

use secrecy::ExposeSecret;
pub use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// Reads a secret's value, for the few places that must put it on the wire.
///
/// Grep for `expose(` to find every one of them.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

/// A short, stable, non-reversible name for a secret: the first 12 hex
/// digits of its SHA-256. Used as an account id for API keys, so the same key
/// keeps its id (and its health and usage history) when the config is
/// reordered.
pub fn fingerprint(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    let mut out = String::with_capacity(12);
    for byte in &digest[..6] {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
    out
}

/// A display form that shows only enough to recognise a secret: its first
/// four characters, or nothing at all when it is too short to spare them.
pub fn mask(value: &str) -> String {
    let shown: String = value.chars().take(4).collect();
    if value.chars().count() < 12 {
        "[redacted]".to_owned()
    } else {
        format!("{shown}…[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_short() {
        let secret = SecretString::from("sk-test-123");
        assert_eq!(
            fingerprint(&secret),
            fingerprint(&SecretString::from("sk-test-123"))
        );
        assert_eq!(fingerprint(&secret).len(), 12);
        assert_ne!(
            fingerprint(&secret),
            fingerprint(&SecretString::from("sk-test-124"))
        );
    }

    #[test]
    fn mask_hides_all_but_a_prefix() {
        assert_eq!(mask("sk-abcdefghijklmnop"), "sk-a…[redacted]");
        assert_eq!(mask("short"), "[redacted]");
    }

    #[test]
    fn debug_does_not_show_the_value() {
        let secret = SecretString::from("sk-live-secret-value");
        assert!(!format!("{secret:?}").contains("sk-live"));
    }
}
