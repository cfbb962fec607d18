//! The Copilot editor plugins' login file (`reference/protocols.md` §3.3):
//! `~/.config/github-copilot/apps.json` (or the older `hosts.json`),
//! `{"github.com:<app>": {"user", "oauth_token"}}`. GitHub tokens do not
//! rotate, so nothing is written back.

use serde_json::Value;

use crate::cli_files::text;
use crate::session::Login;

/// Every github.com login in the file (Enterprise hosts need their own
/// `auth_url`), each token once.
pub(crate) fn read(file: &Value) -> Vec<Login> {
    let Some(entries) = file.as_object() else {
        return Vec::new();
    };
    let mut logins: Vec<Login> = Vec::new();
    for (host, entry) in entries {
        let Some(token) = text(entry, "/oauth_token") else {
            continue;
        };
        if !host.starts_with("github.com") || logins.iter().any(|l| l.access_token == token) {
            continue;
        }
        logins.push(Login {
            access_token: token,
            account_id: text(entry, "/user"),
            ..Login::default()
        });
    }
    logins
}
