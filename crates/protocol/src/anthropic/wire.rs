//! Anthropic's wire shapes, as far as the gateway reads them.

use serde::Deserialize;
use serde_json::Value;

/// Text or a list of blocks: `system`, message `content`, tool results.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum TextOrBlocks {
    Text(String),
    Blocks(Vec<WireBlock>),
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireRequest {
    pub(crate) model: String,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) messages: Vec<WireMessage>,
    pub(crate) system: Option<TextOrBlocks>,
    #[serde(default)]
    pub(crate) tools: Vec<WireTool>,
    pub(crate) tool_choice: Option<WireToolChoice>,
    pub(crate) thinking: Option<WireThinking>,
    pub(crate) temperature: Option<f64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) top_k: Option<u64>,
    #[serde(default)]
    pub(crate) stop_sequences: Vec<String>,
    pub(crate) stream: Option<bool>,
    pub(crate) metadata: Option<WireMetadata>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMetadata {
    pub(crate) user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    pub(crate) role: String,
    pub(crate) content: TextOrBlocks,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireCacheControl {
    pub(crate) ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireBlock {
    Text {
        text: String,
        cache_control: Option<WireCacheControl>,
    },
    Image {
        source: WireSource,
    },
    Document {
        source: WireSource,
        title: Option<String>,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<TextOrBlocks>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    /// Server tools, citations' search results, container uploads and
    /// whatever comes next: nothing the other dialects can carry.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    Text {
        data: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireTool {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) input_schema: Option<Value>,
    /// Absent or `custom` for a client tool; a versioned name such as
    /// `web_search_20250305` for a server tool.
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireToolChoice {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: Option<String>,
    pub(crate) disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireThinking {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) budget_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_creation_input_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireResponse {
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    /// Required: an answer without it is not a message (an error object
    /// sent with a 200, say).
    pub(crate) content: Vec<WireBlock>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) stop_sequence: Option<String>,
    pub(crate) usage: Option<WireUsage>,
}
