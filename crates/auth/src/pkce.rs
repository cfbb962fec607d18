//! PKCE (RFC 7636, S256) and random tokens for `state`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A PKCE pair: the verifier kept until the token exchange, and the
/// challenge sent with the authorization request.
#[derive(Clone)]
pub struct Pkce {
    /// Sent with the code exchange; secret until then.
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`, sent with `code_challenge_method=S256`.
    pub challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh pair: a 43-character verifier from 32 random bytes.
    pub fn new() -> Result<Self, getrandom::Error> {
        Ok(Self::from_verifier(random_token(32)?))
    }

    /// The pair for a known verifier (a device flow hands one back).
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// `bytes` random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn fresh_pairs_differ_and_have_the_right_length() {
        let one = Pkce::new().unwrap();
        let two = Pkce::new().unwrap();
        assert_ne!(one.verifier, two.verifier);
        assert_eq!(one.verifier.len(), 43);
        assert!(!format!("{one:?}").contains(&one.verifier));
    }
}
