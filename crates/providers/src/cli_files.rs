//! The login files the official CLIs keep, read for `subgate import` and
//! written back to in linked mode. Each format lives with its provider
//! (`claude::cli_file`, `codex::cli_file`, …); the engine
//! does the file handling.

use serde_json::Value;
use subgate_core::ProviderKind;

use crate::session::Login;
use crate::{claude, codex, copilot, gemini_cli, kiro};

/// Every login a CLI's file of `kind` holds, or why it holds none.
pub fn read_cli_logins(kind: ProviderKind, file: &Value) -> Result<Vec<Login>, &'static str> {
    match kind {
        ProviderKind::Claude => claude::cli_file::read(file),
        ProviderKind::Codex => codex::cli_file::read(file),
        ProviderKind::Copilot => Ok(copilot::cli_file::read(file)),
        ProviderKind::GeminiCli => gemini_cli::cli_file::read(file),
        ProviderKind::Kiro => kiro::cli_file::read(file),
        ProviderKind::OpenAiCompatible
        | ProviderKind::OpenAi
        | ProviderKind::Anthropic
        | ProviderKind::Gemini
        | ProviderKind::Kimi => Err("no CLI login file is known for this kind"),
    }
}

/// Puts a renewed login's tokens into a CLI's file of `kind`, keeping
/// everything else; `now` (Unix ms) stamps files that record the refresh.
/// `false` for kinds whose logins do not rotate (nothing to write).
pub fn write_cli_login(kind: ProviderKind, file: &mut Value, login: &Login, now: i64) -> bool {
    match kind {
        ProviderKind::Claude => claude::cli_file::write_back(file, login),
        ProviderKind::Codex => codex::cli_file::write_back(file, login, now),
        ProviderKind::Kiro => kiro::cli_file::write_back(file, login),
        ProviderKind::Copilot
        | ProviderKind::GeminiCli
        | ProviderKind::OpenAiCompatible
        | ProviderKind::OpenAi
        | ProviderKind::Anthropic
        | ProviderKind::Gemini
        | ProviderKind::Kimi => return false,
    }
    true
}

/// A non-empty string at `pointer`.
pub(crate) fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}
