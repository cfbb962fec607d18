//! Codex CLI's login file (`reference/protocols.md` §2.2):
//! `$CODEX_HOME/auth.json`, `{"auth_mode","tokens":{"id_token",
//! "access_token","refresh_token","account_id"},"last_refresh"}`; the
//! expiry is the access token's `exp` claim.

use serde_json::{Value, json};

use super::login::{identify, token_expiry};
use crate::cli_files::text;
use crate::session::Login;

pub(crate) fn read(file: &Value) -> Result<Vec<Login>, &'static str> {
    let access = text(file, "/tokens/access_token")
        .ok_or("no `tokens.access_token`: not logged in with ChatGPT (an API-key login is not a subscription)")?;
    let mut login = Login {
        expires_at: token_expiry(&access),
        refresh_token: text(file, "/tokens/refresh_token"),
        id_token: text(file, "/tokens/id_token"),
        access_token: access,
        ..Login::default()
    };
    identify(&mut login);
    if let Some(account) = text(file, "/tokens/account_id") {
        login.account_id = Some(account);
    }
    Ok(vec![login])
}

pub(crate) fn write_back(file: &mut Value, login: &Login, now: i64) {
    let tokens = &mut file["tokens"];
    tokens["access_token"] = json!(login.access_token);
    if let Some(refresh) = &login.refresh_token {
        tokens["refresh_token"] = json!(refresh);
    }
    if let Some(id_token) = &login.id_token {
        tokens["id_token"] = json!(id_token);
    }
    let now = chrono::DateTime::from_timestamp_millis(now)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    file["last_refresh"] = json!(now);
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::codex::login::tests::jwt;

    #[test]
    fn auth_json_is_read_and_written_back_in_place() {
        let id_token = jwt(&json!({"email": "dev@example.com",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "pro"}}));
        let mut file = json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null, "tokens": {
            "id_token": id_token, "access_token": jwt(&json!({"exp": 1_767_225_600})),
            "refresh_token": "rt_1", "account_id": "acc-1"}, "last_refresh": "2026-01-01T00:00:00Z"});
        let login = read(&file).unwrap().remove(0);
        assert_eq!(login.account_id.as_deref(), Some("acc-1"));
        assert_eq!(login.email.as_deref(), Some("dev@example.com"));
        assert_eq!(login.plan.as_deref(), Some("pro"));
        assert_eq!(login.expires_at, Some(1_767_225_600_000));

        let renewed = Login {
            access_token: "at-2".into(),
            refresh_token: Some("rt_2".into()),
            ..login
        };
        write_back(&mut file, &renewed, 1_767_312_000_000);
        assert_eq!(file["tokens"]["access_token"], "at-2");
        assert_eq!(file["tokens"]["refresh_token"], "rt_2");
        assert_eq!(file["tokens"]["account_id"], "acc-1");
        assert_eq!(file["auth_mode"], "chatgpt");
        assert_eq!(file["last_refresh"], "2026-01-02T00:00:00Z");
        let api_key = json!({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-x"});
        assert!(
            read(&api_key)
                .unwrap_err()
                .contains("not logged in with ChatGPT")
        );
    }
}
