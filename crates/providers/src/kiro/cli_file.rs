//! Kiro's logins on disk (`reference/protocols.md` §5.2), as the engine
//! hands them over:
//!
//! - Kiro IDE's `~/.aws/sso/cache/kiro-auth-token.json`, camelCase
//!   (`accessToken`, `refreshToken`, `expiresAt` ISO 8601, `profileArn`,
//!   `region`, `authMethod`, `clientIdHash`) \[2+\]. An `IdC` login's client
//!   registration lives in `<clientIdHash>.json` beside it \[1\]; the engine
//!   puts that file's object under `registration`.
//! - kiro-cli's SQLite `auth_kv` token value, `snake_case` (`access_token`,
//!   `refresh_token`, `expires_at` RFC 3339, `region`, `profile_arn`) \[1\];
//!   the engine adds the device registration under `registration`
//!   (`client_id`, `client_secret`) and, when the token has none, the
//!   profile from the `state` table as `profile_arn`.
//!
//! Either spelling is read from either source, so a format change on one
//! side costs nothing. Renewed tokens are written back in the spelling the
//! value already has (camelCase for the IDE's file, `snake_case` for
//! kiro-cli's row), everything else in it kept.

use serde_json::Value;

use crate::cli_files::text;
use crate::session::{Login, OAuthClient};

pub(crate) fn read(file: &Value) -> Result<Vec<Login>, &'static str> {
    let field = |camel: &str, snake: &str| {
        text(file, &format!("/{camel}")).or_else(|| text(file, &format!("/{snake}")))
    };
    let access = field("accessToken", "access_token")
        .ok_or("no access token: log in to Kiro (the IDE or kiro-cli) first")?;
    let refresh = field("refreshToken", "refresh_token");
    // Kiro IDE sometimes stores a shortened token with an ellipsis
    // (kiro.rs refuses those too) [1].
    if refresh
        .as_deref()
        .is_some_and(|token| token.contains("...") || token.contains('…'))
    {
        return Err(
            "the refresh token in the file is cut short (it contains `...`): log in to Kiro again",
        );
    }
    let registration = file.get("registration").unwrap_or(&Value::Null);
    let client_field = |camel: &str, snake: &str| {
        text(registration, &format!("/{camel}"))
            .or_else(|| text(registration, &format!("/{snake}")))
    };
    let client = match (
        client_field("clientId", "client_id"),
        client_field("clientSecret", "client_secret"),
    ) {
        (Some(id), Some(secret)) => Some(OAuthClient {
            id,
            secret,
            expires_at: client_field("expiresAt", "expires_at")
                .as_deref()
                .and_then(instant),
        }),
        _ => None,
    };
    let idc = field("authMethod", "auth_method").is_some_and(|method| method != "social")
        || field("clientIdHash", "client_id_hash").is_some();
    if idc && client.is_none() {
        return Err(
            "an IdC login without its client registration: the registration file (`<clientIdHash>.json`) was not found",
        );
    }
    Ok(vec![Login {
        access_token: access,
        refresh_token: refresh,
        expires_at: field("expiresAt", "expires_at")
            .as_deref()
            .and_then(instant),
        profile_arn: field("profileArn", "profile_arn"),
        region: field("region", "region").or_else(|| client_field("region", "region")),
        client,
        ..Login::default()
    }])
}

/// Puts renewed tokens into Kiro IDE's file or kiro-cli's token value.
pub(crate) fn write_back(file: &mut Value, login: &Login) {
    let Some(object) = file.as_object_mut() else {
        return;
    };
    // kiro-cli's row is snake_case with a nanosecond fraction; the IDE's
    // file camelCase with milliseconds.
    let snake = object.contains_key("access_token");
    let (access, refresh, expires, profile, fraction) = if snake {
        (
            "access_token",
            "refresh_token",
            "expires_at",
            "profile_arn",
            chrono::SecondsFormat::Nanos,
        )
    } else {
        (
            "accessToken",
            "refreshToken",
            "expiresAt",
            "profileArn",
            chrono::SecondsFormat::Millis,
        )
    };
    object.insert(access.to_owned(), Value::from(login.access_token.clone()));
    if let Some(token) = &login.refresh_token {
        object.insert(refresh.to_owned(), Value::from(token.clone()));
    }
    if let Some(at) = login
        .expires_at
        .and_then(chrono::DateTime::from_timestamp_millis)
    {
        object.insert(
            expires.to_owned(),
            Value::from(at.to_rfc3339_opts(fraction, true)),
        );
    }
    if let Some(arn) = &login.profile_arn {
        object.insert(profile.to_owned(), Value::from(arn.clone()));
    }
}

/// An RFC 3339 instant (any fraction) in Unix ms.
fn instant(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_social_login_from_the_ide() {
        let file = json!({"accessToken": "aoa-1", "refreshToken": "aor-1",
            "expiresAt": "2026-01-12T23:00:00.000Z",
            "profileArn": "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
            "region": "us-east-1", "authMethod": "social", "provider": "Google"});
        let login = read(&file).unwrap().remove(0);
        assert_eq!(login.expires_at, Some(1_768_258_800_000));
        assert_eq!(login.refresh_token.as_deref(), Some("aor-1"));
        assert!(login.client.is_none());
        assert_eq!(login.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn an_idc_login_needs_its_registration() {
        let mut file = json!({"accessToken": "aoa", "refreshToken": "aor",
            "expiresAt": "2026-01-12T23:00:00.000Z", "region": "eu-west-1",
            "authMethod": "IdC", "provider": "BuilderId", "clientIdHash": "abc"});
        assert!(read(&file).unwrap_err().contains("registration"));
        file["registration"] =
            json!({"clientId": "cid", "clientSecret": "cs", "expiresAt": "2026-03-01T00:00:00Z"});
        let login = read(&file).unwrap().remove(0);
        let client = login.client.unwrap();
        assert_eq!((client.id.as_str(), client.secret.as_str()), ("cid", "cs"));
        assert_eq!(login.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn kiro_cli_rows_in_snake_case() {
        let file = json!({"access_token": "aoa", "refresh_token": "aor",
            "expires_at": "2026-01-12T23:00:00.123456789Z", "region": "us-east-1",
            "profile_arn": "arn:aws:codewhisperer:eu-central-1:1:profile/P",
            "registration": {"client_id": "cid", "client_secret": "cs", "region": "us-east-1"}});
        let login = read(&file).unwrap().remove(0);
        assert_eq!(login.expires_at, Some(1_768_258_800_123));
        assert_eq!(login.client.unwrap().id, "cid");
        assert!(login.profile_arn.unwrap().contains("eu-central-1"));
    }

    #[test]
    fn kiro_cli_rows_are_written_back_in_snake_case() {
        let mut row = json!({"access_token": "old", "refresh_token": "old-r",
            "expires_at": "2026-01-12T23:00:00.123456789Z", "scopes": ["a"]});
        let login = Login {
            access_token: "new".to_owned(),
            refresh_token: Some("new-r".to_owned()),
            expires_at: Some(1_768_262_400_000),
            ..Login::default()
        };
        write_back(&mut row, &login);
        assert_eq!(
            row,
            json!({"access_token": "new", "refresh_token": "new-r",
                "expires_at": "2026-01-13T00:00:00.000000000Z", "scopes": ["a"]})
        );
    }

    #[test]
    fn cut_tokens_are_refused() {
        let file = json!({"accessToken": "aoa", "refreshToken": "aorAbc...xyz"});
        assert!(read(&file).unwrap_err().contains("cut short"));
    }

    #[test]
    fn renewed_tokens_go_back_in_camel_case() {
        let mut file = json!({"accessToken": "old", "refreshToken": "old-r",
            "expiresAt": "2026-01-12T23:00:00.000Z", "provider": "Google"});
        let login = Login {
            access_token: "new".to_owned(),
            refresh_token: Some("new-r".to_owned()),
            expires_at: Some(1_768_262_400_000),
            ..Login::default()
        };
        write_back(&mut file, &login);
        assert_eq!(
            file,
            json!({"accessToken": "new", "refreshToken": "new-r",
                "expiresAt": "2026-01-13T00:00:00.000Z", "provider": "Google"})
        );
    }
}
