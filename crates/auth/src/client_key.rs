//! The secrets of subgate's own client keys: `sg-` and 43 characters of
//! URL-safe base64 (32 random bytes). Only a SHA-256 of a secret is kept,
//! with its first characters as a public prefix to recognise it by.

use sha2::{Digest, Sha256};

/// What every secret starts with.
pub const KEY_PREFIX: &str = "sg-";

/// How much of a secret is shown to recognise it: `sg-` and 8 characters.
const SHOWN: usize = KEY_PREFIX.len() + 8;

/// A freshly made secret, its public prefix and its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSecret {
    /// The secret, shown once.
    pub secret: String,
    /// Its first characters.
    pub prefix: String,
    /// Its hash, the only thing stored.
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Makes a new secret from the OS's randomness.
pub fn new_secret() -> Result<NewSecret, getrandom::Error> {
    let secret = format!("{KEY_PREFIX}{}", crate::random_token(32)?);
    Ok(NewSecret {
        prefix: secret[..SHOWN].to_owned(),
        hash: hash(&secret),
        secret,
    })
}

/// The hash a secret is stored and looked up by.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two hashes in time that does not depend on where they differ.
pub fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// Compares two secrets in time that does not depend on where they
/// differ (their lengths may show).
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A hash as lowercase hex (the stored form).
pub fn hex(hash: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(64);
    for byte in hash {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_only_their_prefix_shows() {
        let one = new_secret().unwrap();
        let two = new_secret().unwrap();
        assert!(one.secret.starts_with("sg-"));
        assert_eq!(one.secret.len(), 3 + 43);
        assert_ne!(one.secret, two.secret);
        assert_eq!(one.prefix, one.secret[..11]);
        assert!(same_hash(&one.hash, &hash(&one.secret)));
        assert!(!same_hash(&one.hash, &two.hash));
        assert_eq!(hex(&one.hash).len(), 64);
        assert!(!format!("{one:?}").contains(&one.secret));
    }
}
