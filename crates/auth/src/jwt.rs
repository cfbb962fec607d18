//! Reading a JWT's claims without checking its signature: subgate only
//! reads tokens the provider just issued it over TLS (the account id,
//! email and plan in an ID token), never trusts one a client sent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The claims object of a JWT (`header.claims.signature`), if it is one.
pub fn claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Some issuers pad; the URL-safe alphabet is the same either way.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_payload_and_refuses_what_is_not_a_jwt() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"email":"a@b.c","exp":5}"#);
        let token = format!("eyJhbGciOiJub25lIn0.{payload}.c2ln");
        assert_eq!(claims(&token).unwrap()["email"], "a@b.c");
        assert!(claims("sk-ant-oat01-abc").is_none());
        assert!(claims("a.b.c.d").is_none());
        assert!(claims(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(b"[1]"))).is_none());
    }
}
