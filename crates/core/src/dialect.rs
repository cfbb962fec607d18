//! Wire formats, named once.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One wire format a client speaks (and most upstreams too).
///
/// Formats only an upstream speaks are [`Wire`] variants, so a client can
/// never be handed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    #[serde(rename = "openai_chat")]
    OpenAiChat,
    /// OpenAI Responses (`POST /v1/responses`).
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent`.
    Gemini,
}

impl Dialect {
    /// The stable name used in logs, usage records and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai_chat",
            Self::OpenAiResponses => "openai_responses",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    /// Parses the name written by [`Dialect::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::OpenAiChat,
            Self::OpenAiResponses,
            Self::Anthropic,
            Self::Gemini,
        ]
        .into_iter()
        .find(|dialect| dialect.as_str() == name)
    }
}

/// The format a request goes upstream in: a client dialect, or one only an
/// upstream speaks. Variants of a client dialect (Codex's Responses flavour,
/// Code Assist's wrapper) are that dialect plus their provider's edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// A client dialect.
    Dialect(Dialect),
    /// Kiro's CodeWhisperer conversation, answered as an AWS event stream.
    Kiro,
}

impl Wire {
    /// The stable name used in logs, usage records and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dialect(dialect) => dialect.as_str(),
            Self::Kiro => "kiro",
        }
    }

    /// The client dialect this is, if it is one.
    pub const fn dialect(self) -> Option<Dialect> {
        match self {
            Self::Dialect(dialect) => Some(dialect),
            Self::Kiro => None,
        }
    }
}

impl From<Dialect> for Wire {
    fn from(dialect: Dialect) -> Self {
        Self::Dialect(dialect)
    }
}

impl PartialEq<Dialect> for Wire {
    fn eq(&self, other: &Dialect) -> bool {
        *self == Self::Dialect(*other)
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dialect in [
            Dialect::OpenAiChat,
            Dialect::OpenAiResponses,
            Dialect::Anthropic,
            Dialect::Gemini,
        ] {
            assert_eq!(Dialect::from_name(dialect.as_str()), Some(dialect));
            let json = serde_json::to_string(&dialect).unwrap();
            assert_eq!(json, format!("\"{}\"", dialect.as_str()));
        }
        assert_eq!(Dialect::from_name("soap"), None);
    }
}
