//! Logins the official CLIs keep on this machine, read for `subgate
//! import`, and written back to in linked mode: where the files are, and
//! the file handling. Each file's format lives with its provider
//! (`subgate_providers::read_cli_logins`, `write_cli_login`). Claude Code
//! on macOS keeps its login in the Keychain instead; that is not read.
//!
//! Kiro keeps an `IdC` login's client registration in a second file named by
//! the token file's `clientIdHash`, and kiro-cli keeps its logins in a
//! SQLite database; both are gathered here into the one JSON value the
//! provider reads.
//!
//! Write-back replaces only the token fields, keeps everything else and
//! the file's permissions, and swaps the file in with a rename so the CLI
//! never reads half a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use subgate_core::ProviderKind;
use subgate_providers::{Linked, Login};

use crate::clock::now_millis;

/// A CLI whose login can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSource {
    /// Claude Code.
    ClaudeCode,
    /// Codex CLI.
    Codex,
    /// GitHub Copilot's editor plugins.
    Copilot,
    /// Gemini CLI.
    GeminiCli,
    /// Kiro IDE.
    Kiro,
    /// kiro-cli (or Amazon Q Developer CLI before it).
    KiroCli,
}

impl ImportSource {
    /// Every source, in the order `import all` tries them.
    pub const ALL: [Self; 6] = [
        Self::ClaudeCode,
        Self::Codex,
        Self::Copilot,
        Self::GeminiCli,
        Self::Kiro,
        Self::KiroCli,
    ];

    /// The source named `name` (as [`Self::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|source| source.as_str() == name)
    }

    /// Its name on the command line and in the stored link.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::Codex => "codex",
            Self::Copilot => "copilot",
            Self::GeminiCli => "gemini-cli",
            Self::Kiro => "kiro",
            Self::KiroCli => "kiro-cli",
        }
    }

    /// The provider kind its login is for.
    pub const fn kind(self) -> ProviderKind {
        match self {
            Self::ClaudeCode => ProviderKind::Claude,
            Self::Codex => ProviderKind::Codex,
            Self::Copilot => ProviderKind::Copilot,
            Self::GeminiCli => ProviderKind::GeminiCli,
            Self::Kiro | Self::KiroCli => ProviderKind::Kiro,
        }
    }

    /// Whether refreshes can rotate its tokens, so linking matters.
    pub const fn refreshes(self) -> bool {
        !matches!(self, Self::Copilot | Self::GeminiCli)
    }

    /// The files it may keep its login in, first match wins.
    pub fn paths(self, home: &Path, codex_home: Option<&Path>) -> Vec<PathBuf> {
        match self {
            Self::ClaudeCode => vec![home.join(".claude/.credentials.json")],
            Self::Codex => vec![
                codex_home
                    .map_or_else(|| home.join(".codex"), Path::to_path_buf)
                    .join("auth.json"),
            ],
            Self::Copilot => vec![
                home.join(".config/github-copilot/apps.json"),
                home.join(".config/github-copilot/hosts.json"),
            ],
            Self::GeminiCli => vec![home.join(".gemini/oauth_creds.json")],
            Self::Kiro => vec![home.join(".aws/sso/cache/kiro-auth-token.json")],
            Self::KiroCli => vec![
                home.join(".local/share/kiro-cli/data.sqlite3"),
                home.join(".local/share/amazon-q/data.sqlite3"),
            ],
        }
    }
}

/// A login found in a CLI's file.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// The login, unlinked.
    pub login: Login,
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ImportError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Reads every login `source` keeps in `path`.
pub async fn read(source: ImportSource, path: &Path) -> Result<Vec<Found>, ImportError> {
    if source == ImportSource::KiroCli {
        let value = kiro_cli(path).await.map_err(|message| ImportError {
            path: path.display().to_string(),
            message,
        })?;
        return logins(source, path, &value);
    }
    read_file(source, path)
}

/// Reads every login `source` keeps in the JSON file at `path`.
fn read_file(source: ImportSource, path: &Path) -> Result<Vec<Found>, ImportError> {
    let fail = |message: String| ImportError {
        path: path.display().to_string(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|error| fail(error.to_string()))?;
    let mut value: Value =
        serde_json::from_str(&text).map_err(|error| fail(format!("not JSON: {error}")))?;
    if source == ImportSource::Kiro {
        kiro_registration(path, &mut value).map_err(fail)?;
    }
    logins(source, path, &value)
}

fn logins(source: ImportSource, path: &Path, value: &Value) -> Result<Vec<Found>, ImportError> {
    let fail = |message: String| ImportError {
        path: path.display().to_string(),
        message,
    };
    let logins = subgate_providers::read_cli_logins(source.kind(), value)
        .map_err(|message| fail(message.to_owned()))?;
    Ok(logins
        .into_iter()
        .map(|login| Found {
            path: path.to_path_buf(),
            login,
        })
        .collect())
}

/// The login in a linked file now, if it differs from `current` (the CLI
/// refreshed it): `current` with the file's tokens.
pub(crate) async fn read_linked(linked: &Linked, current: &Login) -> Option<Login> {
    let source = ImportSource::from_name(&linked.format)?;
    let found = read(source, &linked.path)
        .await
        .ok()?
        .into_iter()
        .next()?
        .login;
    if found.access_token == current.access_token {
        return None;
    }
    Some(Login {
        access_token: found.access_token,
        refresh_token: found
            .refresh_token
            .or_else(|| current.refresh_token.clone()),
        expires_at: found.expires_at,
        id_token: found.id_token.or_else(|| current.id_token.clone()),
        ..current.clone()
    })
}

/// Writes a renewed login back into the linked file (or kiro-cli's
/// database).
pub(crate) async fn write_back(linked: &Linked, login: &Login) -> io::Result<()> {
    if linked.format == ImportSource::KiroCli.as_str() {
        return kiro_cli_write_back(&linked.path, login)
            .await
            .map_err(io::Error::other);
    }
    let text = fs::read_to_string(&linked.path)?;
    let mut value: Value = serde_json::from_str(&text).map_err(io::Error::other)?;
    let written = ImportSource::from_name(&linked.format).is_some_and(|source| {
        subgate_providers::write_cli_login(source.kind(), &mut value, login, now_millis())
    });
    if !written {
        return Err(io::Error::other(format!(
            "no write-back for `{}` files",
            linked.format
        )));
    }
    let mut bytes = serde_json::to_vec_pretty(&value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    replace_file(&linked.path, &bytes)
}

/// Puts an `IdC` login's client registration (`<clientIdHash>.json` beside
/// Kiro's token file) under `registration`.
fn kiro_registration(path: &Path, token: &mut Value) -> Result<(), String> {
    let Some(hash) = token.get("clientIdHash").and_then(Value::as_str) else {
        return Ok(());
    };
    if hash.is_empty() || !hash.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("its `clientIdHash` is not a file name".to_owned());
    }
    let file = path.with_file_name(format!("{hash}.json"));
    // A missing registration is the provider's to explain.
    if let Ok(text) = fs::read_to_string(&file) {
        let registration: Value = serde_json::from_str(&text)
            .map_err(|error| format!("{} is not JSON: {error}", file.display()))?;
        token["registration"] = registration;
    }
    Ok(())
}

/// kiro-cli's login from its SQLite database (`auth_kv`, and the profile in
/// `state`) as one JSON value: the token's fields, its device registration
/// under `registration`, and `profile_arn` from the state when the token
/// has none. Keys tried in kiro-gateway's order \[1\].
async fn kiro_cli(path: &Path) -> Result<Value, String> {
    const REGISTRATIONS: [&str; 2] = [
        "kirocli:odic:device-registration",
        "codewhisperer:odic:device-registration",
    ];
    let mut connection = kiro_cli_open(path, true).await?;
    let (key, mut token) = kiro_cli_token(&mut connection).await?;
    if !key.contains(":social:") {
        if token.get("auth_method").is_none() {
            token["auth_method"] = Value::from("IdC");
        }
        for key in REGISTRATIONS {
            if let Some(registration) = kv(&mut connection, AUTH_KV, key).await {
                token["registration"] = registration;
                break;
            }
        }
    }
    if token.get("profile_arn").is_none()
        && let Some(arn) = kv(&mut connection, STATE, "api.codewhisperer.profile")
            .await
            .and_then(|profile| profile.get("arn").cloned())
    {
        token["profile_arn"] = arn;
    }
    Ok(token)
}

/// Where kiro-cli keeps its login, in the order tried \[1\].
const KIRO_CLI_TOKENS: [&str; 3] = [
    "kirocli:social:token",
    "kirocli:odic:token",
    "codewhisperer:odic:token",
];

async fn kiro_cli_open(
    path: &Path,
    read_only: bool,
) -> Result<sqlx::sqlite::SqliteConnection, String> {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only)
        // kiro-cli may be writing too.
        .busy_timeout(std::time::Duration::from_secs(5));
    sqlx::sqlite::SqliteConnection::connect_with(&options)
        .await
        .map_err(|error| format!("not a readable SQLite database: {error}"))
}

/// kiro-cli's login row: its key and value.
async fn kiro_cli_token(
    connection: &mut sqlx::sqlite::SqliteConnection,
) -> Result<(&'static str, Value), String> {
    for key in KIRO_CLI_TOKENS {
        if let Some(found) = kv(connection, AUTH_KV, key).await {
            return Ok((key, found));
        }
    }
    Err("no login in `auth_kv`: log in with `kiro-cli login` first".to_owned())
}

/// Puts renewed tokens into kiro-cli's login row, keeping its other
/// fields.
async fn kiro_cli_write_back(path: &Path, login: &Login) -> Result<(), String> {
    let mut connection = kiro_cli_open(path, false).await?;
    let (key, mut token) = kiro_cli_token(&mut connection).await?;
    subgate_providers::write_cli_login(ProviderKind::Kiro, &mut token, login, now_millis());
    sqlx::query("UPDATE auth_kv SET value = ? WHERE key = ?")
        .bind(token.to_string())
        .bind(key)
        .execute(&mut connection)
        .await
        .map_err(|error| format!("the login could not be written: {error}"))?;
    Ok(())
}

/// kiro-cli's logins and registrations.
const AUTH_KV: &str = "SELECT value FROM auth_kv WHERE key = ?";
/// kiro-cli's other settings (the profile).
const STATE: &str = "SELECT value FROM state WHERE key = ?";

/// The JSON value under `key`, read with `statement` ([`AUTH_KV`] or
/// [`STATE`]).
async fn kv(
    connection: &mut sqlx::sqlite::SqliteConnection,
    statement: &'static str,
    key: &str,
) -> Option<Value> {
    let text: Option<String> = sqlx::query_scalar(statement)
        .bind(key)
        .fetch_optional(connection)
        .await
        .ok()
        .flatten();
    text.and_then(|text| serde_json::from_str(&text).ok())
}

/// Writes `bytes` to a temporary file beside `path` with `path`'s
/// permissions, then renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let permissions = fs::metadata(path)?.permissions();
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the linked path names no file"))?;
    let temporary = path.with_file_name(format!(
        ".{}.subgate-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.set_permissions(permissions)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn claude_code_files_are_read_and_written_back_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".credentials.json");
        fs::write(
            &path,
            r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-a","refreshToken":"sk-ant-ort01-r","expiresAt":1712345678000,"scopes":["user:inference"],"subscriptionType":"max"},"other":1}"#,
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let found = read_file(ImportSource::ClaudeCode, &path).unwrap();
        let mut login = found[0].login.clone();
        assert_eq!(login.refresh_token.as_deref(), Some("sk-ant-ort01-r"));
        assert_eq!(login.expires_at, Some(1_712_345_678_000));
        assert_eq!(login.plan.as_deref(), Some("max"));

        login.access_token = "sk-ant-oat01-b".into();
        login.refresh_token = Some("sk-ant-ort01-s".into());
        let linked = Linked {
            path: path.clone(),
            format: "claude-code".into(),
        };
        write_back(&linked, &login).await.unwrap();
        let value: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(value["claudeAiOauth"]["accessToken"], "sk-ant-oat01-b");
        assert_eq!(value["claudeAiOauth"]["refreshToken"], "sk-ant-ort01-s");
        assert_eq!(value["claudeAiOauth"]["scopes"][0], "user:inference");
        assert_eq!(value["other"], 1);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn copilot_and_codex_files_name_their_account() {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("apps.json");
        fs::write(
            &apps,
            r#"{"github.com:Iv1.b507a08c87ecfe98":{"user":"octocat","oauth_token":"ghu_abc","githubAppId":"Iv1.b507a08c87ecfe98"},"ghe.example.com:Iv1.x":{"user":"o","oauth_token":"ghu_ent"}}"#,
        )
        .unwrap();
        let found = read_file(ImportSource::Copilot, &apps).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].login.account_id.as_deref(), Some("octocat"));

        let auth = dir.path().join("auth.json");
        fs::write(&auth, r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-x"}"#).unwrap();
        let error = read_file(ImportSource::Codex, &auth).unwrap_err();
        assert!(
            error.message.contains("not logged in with ChatGPT"),
            "{error}"
        );
    }
}
