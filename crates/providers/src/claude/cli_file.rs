//! Claude Code's login file (`reference/protocols.md` §1.2):
//! `~/.claude/.credentials.json`, `{"claudeAiOauth": {"accessToken",
//! "refreshToken", "expiresAt" (ms), "scopes", "subscriptionType"}}`.

use serde_json::{Value, json};

use crate::cli_files::text;
use crate::session::Login;

pub(crate) fn read(file: &Value) -> Result<Vec<Login>, &'static str> {
    let access = text(file, "/claudeAiOauth/accessToken")
        .ok_or("no `claudeAiOauth.accessToken`: not logged in with a Claude subscription")?;
    Ok(vec![Login {
        access_token: access,
        refresh_token: text(file, "/claudeAiOauth/refreshToken"),
        expires_at: file
            .pointer("/claudeAiOauth/expiresAt")
            .and_then(Value::as_i64),
        plan: text(file, "/claudeAiOauth/subscriptionType"),
        ..Login::default()
    }])
}

pub(crate) fn write_back(file: &mut Value, login: &Login) {
    let oauth = &mut file["claudeAiOauth"];
    oauth["accessToken"] = json!(login.access_token);
    if let Some(refresh) = &login.refresh_token {
        oauth["refreshToken"] = json!(refresh);
    }
    if let Some(expires) = login.expires_at {
        oauth["expiresAt"] = json!(expires);
    }
}
