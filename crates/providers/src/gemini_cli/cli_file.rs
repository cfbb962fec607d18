//! Gemini CLI's login file (`reference/protocols.md` §4.1):
//! `~/.gemini/oauth_creds.json`, google-auth-library credentials with
//! `access_token`, `refresh_token`, `id_token` and `expiry_date` in
//! milliseconds (possibly fractional). Google does not rotate refresh
//! tokens, so an import is a copy and nothing is written back.

use serde_json::Value;

use super::login::email_claim;
use crate::cli_files::text;
use crate::session::Login;

pub(crate) fn read(file: &Value) -> Result<Vec<Login>, &'static str> {
    let access = text(file, "/access_token")
        .ok_or("no `access_token`: not logged in with a Google account")?;
    let id_token = text(file, "/id_token");
    #[expect(
        clippy::cast_possible_truncation,
        reason = "milliseconds since 1970 fit an i64 long after any expiry"
    )]
    let expires_at = file
        .get("expiry_date")
        .and_then(Value::as_f64)
        .map(|millis| millis as i64);
    Ok(vec![Login {
        access_token: access,
        refresh_token: text(file, "/refresh_token"),
        expires_at,
        email: id_token.as_deref().and_then(email_claim),
        id_token,
        ..Login::default()
    }])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn oauth_creds_are_read_with_a_fractional_expiry() {
        let file = json!({"access_token": "ya29.a", "refresh_token": "1//0r", "scope": "openid",
            "token_type": "Bearer", "expiry_date": 1_769_159_945_362.5_f64});
        let login = read(&file).unwrap().remove(0);
        assert_eq!(login.expires_at, Some(1_769_159_945_362));
        assert_eq!(login.refresh_token.as_deref(), Some("1//0r"));
        assert!(read(&json!({})).is_err());
    }
}
