//! The kinds of upstream subgate can reach.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One kind of upstream service, as written in `kind = "…"` in the config.
///
/// Adding a provider adds one variant here; the compiler then points at every
/// `match` that must learn about it (no wildcard arms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Any service that speaks OpenAI Chat Completions with an API key
    /// (OpenRouter, DeepSeek, Groq, Ollama, vLLM, LM Studio, …).
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// OpenAI's own API with an API key: Chat Completions and Responses.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's API with an API key: Messages.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google's Gemini API with an API key: `generateContent`.
    #[serde(rename = "gemini")]
    Gemini,
    /// Moonshot's Kimi For Coding with an API key: Chat Completions on its
    /// coding endpoint, which serves only known coding agents.
    #[serde(rename = "kimi")]
    Kimi,
    /// A Claude Pro/Max subscription, as Claude Code uses it: Anthropic
    /// Messages with an OAuth login.
    #[serde(rename = "claude")]
    Claude,
    /// A ChatGPT subscription, as Codex CLI uses it: the Codex Responses
    /// backend with an OAuth login.
    #[serde(rename = "codex")]
    Codex,
    /// A GitHub Copilot subscription: Chat Completions, Responses or
    /// Messages per model, with a GitHub login exchanged for Copilot tokens.
    #[serde(rename = "copilot")]
    Copilot,
    /// A Google account as Gemini CLI uses it: Gemini through the Code
    /// Assist API with an OAuth login.
    #[serde(rename = "gemini-cli")]
    GeminiCli,
    /// A Kiro subscription (AWS CodeWhisperer): Kiro's own conversation
    /// API, answered as an AWS event stream, with a Kiro or AWS login.
    #[serde(rename = "kiro")]
    Kiro,
}

impl ProviderKind {
    /// Every kind this build knows, in the order the docs list them.
    pub const ALL: &'static [Self] = &[
        Self::OpenAiCompatible,
        Self::OpenAi,
        Self::Anthropic,
        Self::Gemini,
        Self::Kimi,
        Self::Claude,
        Self::Codex,
        Self::Copilot,
        Self::GeminiCli,
        Self::Kiro,
    ];

    /// The subscription kinds: their accounts come from logins
    /// (`subgate login`, `subgate import`), not from API keys in the config.
    pub const SUBSCRIPTIONS: &'static [Self] = &[
        Self::Claude,
        Self::Codex,
        Self::Copilot,
        Self::GeminiCli,
        Self::Kiro,
    ];

    /// The name written in the config file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAiCompatible => "openai-compatible",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Kimi => "kimi",
            Self::Claude => "claude",
            Self::Codex => "codex",
            Self::Copilot => "copilot",
            Self::GeminiCli => "gemini-cli",
            Self::Kiro => "kiro",
        }
    }

    /// Whether accounts of this kind are logins rather than API keys.
    pub const fn is_subscription(self) -> bool {
        matches!(
            self,
            Self::Claude | Self::Codex | Self::Copilot | Self::GeminiCli | Self::Kiro
        )
    }

    /// The kind named `name` in the config (`"claude"`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_round_trip() {
        for kind in ProviderKind::ALL {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ProviderKind>(&json).unwrap(), *kind);
        }
    }
}
