//! Chat Completions requests ↔ canonical.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::canonical::{
    Block, Document, Dropped, Image, Invalid, Message, OutputFormat, Reasoning, Request, Role,
    Signature, Source, SystemPart, Text, Thinking, Tool, ToolChoice, ToolResult, ToolUse,
    joined_text,
};
use crate::codec::Target;

/// What differs between upstreams that all speak Chat Completions; the
/// provider decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChatUpstream {
    /// Send the limit as `max_completion_tokens` (OpenAI's current name,
    /// required by its reasoning models) rather than `max_tokens` (what
    /// most compatible servers know).
    pub max_completion_tokens: bool,
}

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<WireStreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    stop: Option<StopField>,
    n: Option<u64>,
    seed: Option<i64>,
    response_format: Option<WireResponseFormat>,
    reasoning_effort: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct WireStreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    json_schema: Option<WireJsonSchema>,
}

#[derive(Deserialize)]
struct WireJsonSchema {
    name: Option<String>,
    schema: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    tool_call_id: Option<String>,
    /// DeepSeek's, Kimi's and Qwen's reasoning text.
    reasoning_content: Option<String>,
    /// OpenRouter's and vLLM's name for the same.
    reasoning: Option<String>,
    /// OpenRouter's structured reasoning, which can carry signatures.
    #[serde(default)]
    reasoning_details: Vec<WireReasoningDetail>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: WireImageUrl,
    },
    File {
        file: WireFile,
    },
    Refusal {
        refusal: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct WireFile {
    file_data: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireCall,
}

#[derive(Deserialize)]
struct WireCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
pub(crate) struct WireReasoningDetail {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) text: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) signature: Option<String>,
    pub(crate) data: Option<String>,
}

/// A `data:` URL → base64 source; anything else is a URL.
pub(crate) fn source_from_url(url: &str) -> Source {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    Source::Url {
        url: url.to_owned(),
        media_type: None,
    }
}

/// A source as a URL (`data:` for inline bytes).
pub(crate) fn source_to_url(source: &Source) -> String {
    match source {
        Source::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Source::Url { url, .. } => url.clone(),
    }
}

/// Reads a client's `POST /v1/chat/completions` body.
pub fn decode_request(body: &[u8], dropped: &mut Vec<Dropped>) -> Result<Request, Invalid> {
    let wire: WireRequest = crate::parse_json(body)?;
    if wire.n.is_some_and(|n| n > 1) {
        return Err(Invalid::field(
            "n",
            "`n` above 1 needs an upstream that speaks Chat Completions; this model is served by another",
        ));
    }
    let mut request = Request {
        model: wire.model,
        max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        stop: match wire.stop {
            None => Vec::new(),
            Some(StopField::One(one)) => vec![one],
            Some(StopField::Many(many)) => many,
        },
        seed: wire.seed,
        stream: wire.stream.unwrap_or(false),
        include_usage: wire
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        parallel_tool_calls: wire.parallel_tool_calls,
        user: wire.user,
        ..Request::default()
    };
    if let Some(effort) = wire.reasoning_effort {
        request.reasoning = Some(Reasoning::from_effort_name(&effort).ok_or_else(|| {
            Invalid::field(
                "reasoning_effort",
                format!("unknown reasoning effort `{effort}`"),
            )
        })?);
    }
    request.output_format = wire.response_format.map(output_format).transpose()?;
    for tool in wire.tools {
        match (tool.kind.as_deref(), tool.function) {
            (None | Some("function"), Some(function)) => request.tools.push(Tool {
                name: function.name,
                description: function.description,
                parameters: function
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: function.strict,
            }),
            (kind, _) => dropped.push(Dropped(format!("a tool of type `{}`", kind.unwrap_or("?")))),
        }
    }
    request.tool_choice = wire.tool_choice.map(tool_choice).transpose()?;
    for (index, message) in wire.messages.into_iter().enumerate() {
        decode_message(message, index, &mut request, dropped)?;
    }
    Ok(request)
}

fn output_format(format: WireResponseFormat) -> Result<OutputFormat, Invalid> {
    Ok(match format.kind.as_str() {
        "text" => OutputFormat::Text,
        "json_object" => OutputFormat::JsonObject,
        "json_schema" => {
            let schema = format.json_schema.unwrap_or(WireJsonSchema {
                name: None,
                schema: None,
                strict: None,
            });
            OutputFormat::JsonSchema {
                name: schema.name.unwrap_or_else(|| "response".to_owned()),
                schema: schema.schema.unwrap_or_else(|| json!({})),
                strict: schema.strict,
            }
        }
        other => {
            return Err(Invalid::field(
                "response_format.type",
                format!("unknown response format `{other}`"),
            ));
        }
    })
}

fn tool_choice(choice: Value) -> Result<ToolChoice, Invalid> {
    match choice {
        Value::String(choice) => match choice.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(Invalid::field(
                "tool_choice",
                format!("unknown tool_choice `{other}`"),
            )),
        },
        choice => match choice["function"]["name"].as_str() {
            Some(name) => Ok(ToolChoice::Tool(name.to_owned())),
            None => Err(Invalid::field(
                "tool_choice",
                "a tool_choice object needs `function.name`",
            )),
        },
    }
}

fn decode_message(
    message: WireMessage,
    index: usize,
    request: &mut Request,
    dropped: &mut Vec<Dropped>,
) -> Result<(), Invalid> {
    match message.role.as_str() {
        "system" | "developer" => {
            let text = match message.content {
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => joined_text(&parts_to_blocks(parts, dropped)),
                None => String::new(),
            };
            request.system.push(SystemPart { text, cache: None });
        }
        "user" => {
            let blocks = match message.content {
                Some(Content::Text(text)) => vec![Block::text(text)],
                Some(Content::Parts(parts)) => parts_to_blocks(parts, dropped),
                None => Vec::new(),
            };
            for block in blocks {
                Message::push_block(&mut request.messages, Role::User, block);
            }
        }
        "assistant" => {
            let mut blocks = reasoning_blocks(&message, dropped);
            match message.content {
                Some(Content::Text(text)) if !text.is_empty() => blocks.push(Block::text(text)),
                Some(Content::Parts(parts)) => blocks.extend(parts_to_blocks(parts, dropped)),
                Some(Content::Text(_)) | None => {}
            }
            for call in message.tool_calls {
                blocks.push(Block::ToolUse(ToolUse {
                    id: call.id,
                    name: call.function.name,
                    input: call.function.arguments,
                }));
            }
            for block in blocks {
                Message::push_block(&mut request.messages, Role::Assistant, block);
            }
        }
        "tool" => {
            let tool_use_id = message.tool_call_id.ok_or_else(|| {
                Invalid::field(
                    format!("messages[{index}].tool_call_id"),
                    "a tool message needs `tool_call_id`",
                )
            })?;
            let content = match message.content {
                Some(Content::Text(text)) => vec![Block::text(text)],
                Some(Content::Parts(parts)) => parts_to_blocks(parts, dropped),
                None => Vec::new(),
            };
            Message::push_block(
                &mut request.messages,
                Role::User,
                Block::ToolResult(ToolResult {
                    tool_use_id,
                    name: None,
                    content,
                    is_error: false,
                }),
            );
        }
        "function" => dropped.push(Dropped("a legacy `function` message".to_owned())),
        other => {
            return Err(Invalid::field(
                format!("messages[{index}].role"),
                format!("unknown role `{other}`"),
            ));
        }
    }
    Ok(())
}

/// The reasoning an assistant message carries, as thinking blocks:
/// `reasoning_details` when present (they can carry signatures), else
/// `reasoning_content` or `reasoning`.
fn reasoning_blocks(message: &WireMessage, dropped: &mut Vec<Dropped>) -> Vec<Block> {
    let mut blocks = Vec::new();
    for detail in &message.reasoning_details {
        match detail.kind.as_str() {
            "reasoning.text" | "reasoning.summary" => blocks.push(Block::Thinking(Thinking {
                text: detail
                    .text
                    .clone()
                    .or_else(|| detail.summary.clone())
                    .unwrap_or_default(),
                signature: detail
                    .signature
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(Signature::from_client),
            })),
            "reasoning.encrypted" => {
                if let Some(data) = &detail.data {
                    blocks.push(Block::RedactedThinking(Signature::from_client(data)));
                }
            }
            other => dropped.push(Dropped(format!("a reasoning detail of type `{other}`"))),
        }
    }
    if blocks.is_empty()
        && let Some(text) = message
            .reasoning_content
            .as_ref()
            .or(message.reasoning.as_ref())
        && !text.is_empty()
    {
        blocks.push(Block::Thinking(Thinking {
            text: text.clone(),
            signature: None,
        }));
    }
    blocks
}

fn parts_to_blocks(parts: Vec<WirePart>, dropped: &mut Vec<Dropped>) -> Vec<Block> {
    parts
        .into_iter()
        .filter_map(|part| match part {
            WirePart::Text { text } | WirePart::Refusal { refusal: text } => {
                Some(Block::Text(Text { text, cache: None }))
            }
            WirePart::ImageUrl { image_url } => Some(Block::Image(Image {
                source: source_from_url(&image_url.url),
                detail: image_url.detail,
            })),
            WirePart::File { file } => match file.file_data {
                Some(data) => Some(Block::Document(Document {
                    source: source_from_url(&data),
                    title: file.filename,
                })),
                None => {
                    dropped.push(Dropped(
                        "a file referenced by id (only OpenAI can read it)".to_owned(),
                    ));
                    None
                }
            },
            WirePart::Unknown => {
                dropped.push(Dropped(
                    "a content part of a type only Chat Completions knows".to_owned(),
                ));
                None
            }
        })
        .collect()
}

/// Writes a canonical request for a Chat Completions upstream.
pub fn encode_request(
    request: &Request,
    target: Target<'_>,
    upstream: ChatUpstream,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".to_owned(), target.model.into());
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        // One system message: some compatible servers accept no more.
        let text: Vec<&str> = request
            .system
            .iter()
            .map(|part| part.text.as_str())
            .collect();
        messages.push(json!({"role": "system", "content": text.join("\n\n")}));
    }
    for message in &request.messages {
        match message.role {
            Role::User => encode_user(message, &mut messages, dropped),
            Role::Assistant => encode_assistant(message, &mut messages, dropped),
        }
    }
    body.insert("messages".to_owned(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request.tools.iter().map(tool_to_wire).collect();
        body.insert("tools".to_owned(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        body.insert(
            "tool_choice".to_owned(),
            match choice {
                ToolChoice::Auto => "auto".into(),
                ToolChoice::None => "none".into(),
                ToolChoice::Required => "required".into(),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            },
        );
    }
    if let Some(parallel) = request.parallel_tool_calls
        && !request.tools.is_empty()
    {
        body.insert("parallel_tool_calls".to_owned(), parallel.into());
    }
    if let Some(max_tokens) = request.max_tokens {
        let field = if upstream.max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.to_owned(), max_tokens.into());
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".to_owned(), temperature.into());
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".to_owned(), top_p.into());
    }
    if request.top_k.is_some() {
        dropped.push(Dropped("top_k: Chat Completions has none".to_owned()));
    }
    if !request.stop.is_empty() {
        body.insert("stop".to_owned(), request.stop.clone().into());
    }
    if let Some(seed) = request.seed {
        body.insert("seed".to_owned(), seed.into());
    }
    if let Some(effort) = request.reasoning.and_then(Reasoning::effort) {
        body.insert("reasoning_effort".to_owned(), effort.as_str().into());
    }
    match &request.output_format {
        None | Some(OutputFormat::Text) => {}
        Some(OutputFormat::JsonObject) => {
            body.insert("response_format".to_owned(), json!({"type": "json_object"}));
        }
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            let mut json_schema = json!({"name": name, "schema": schema});
            if let Some(strict) = strict {
                json_schema["strict"] = (*strict).into();
            }
            body.insert(
                "response_format".to_owned(),
                json!({"type": "json_schema", "json_schema": json_schema}),
            );
        }
    }
    if let Some(user) = &request.user {
        body.insert("user".to_owned(), user.as_str().into());
    }
    if request.stream {
        body.insert("stream".to_owned(), true.into());
        // Always: the gateway meters every stream.
        body.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn tool_to_wire(tool: &Tool) -> Value {
    let mut function = json!({"name": tool.name, "parameters": tool.parameters});
    if let Some(description) = &tool.description {
        function["description"] = description.as_str().into();
    }
    if let Some(strict) = tool.strict {
        function["strict"] = strict.into();
    }
    json!({"type": "function", "function": function})
}

/// A content part for text, images and documents; `None` for the rest.
fn part_to_wire(block: &Block) -> Option<Value> {
    match block {
        Block::Text(text) => Some(json!({"type": "text", "text": text.text})),
        Block::Image(image) => {
            let mut image_url = json!({"url": source_to_url(&image.source)});
            if let Some(detail) = &image.detail {
                image_url["detail"] = detail.as_str().into();
            }
            Some(json!({"type": "image_url", "image_url": image_url}))
        }
        Block::Document(document) => {
            let mut file = json!({"file_data": source_to_url(&document.source)});
            if let Some(title) = &document.title {
                file["filename"] = title.as_str().into();
            }
            Some(json!({"type": "file", "file": file}))
        }
        Block::ToolUse(_)
        | Block::ToolResult(_)
        | Block::Thinking(_)
        | Block::RedactedThinking(_) => None,
    }
}

/// Parts as Chat Completions content: a plain string when it is all text.
fn content_value(blocks: &[&Block]) -> Value {
    if blocks.iter().all(|block| matches!(block, Block::Text(_))) {
        let text: String = blocks
            .iter()
            .filter_map(|block| match block {
                Block::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect();
        return text.into();
    }
    Value::Array(
        blocks
            .iter()
            .filter_map(|block| part_to_wire(block))
            .collect(),
    )
}

fn encode_user(message: &Message, messages: &mut Vec<Value>, dropped: &mut Vec<Dropped>) {
    let mut parts: Vec<&Block> = Vec::new();
    for block in &message.content {
        match block {
            Block::ToolResult(result) => {
                let content: Vec<&Block> = result
                    .content
                    .iter()
                    .filter(|block| {
                        matches!(block, Block::Text(_) | Block::Image(_) | Block::Document(_))
                    })
                    .collect();
                let mut text = content_value(&content);
                if result.is_error
                    && let Value::String(message) = &mut text
                {
                    // Chat Completions has no error flag; say it in words.
                    message.insert_str(0, "Error: ");
                }
                messages.push(
                    json!({"role": "tool", "tool_call_id": result.tool_use_id, "content": text}),
                );
            }
            Block::Text(_) | Block::Image(_) | Block::Document(_) => parts.push(block),
            Block::ToolUse(_) | Block::Thinking(_) | Block::RedactedThinking(_) => {
                dropped.push(Dropped("a model-only block in a user message".to_owned()));
            }
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": content_value(&parts)}));
    }
}

fn encode_assistant(message: &Message, messages: &mut Vec<Value>, dropped: &mut Vec<Dropped>) {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text(part) => text.push_str(&part.text),
            Block::Thinking(thinking) => {
                if !reasoning.is_empty() && !thinking.text.is_empty() {
                    reasoning.push_str("\n\n");
                }
                reasoning.push_str(&thinking.text);
            }
            Block::ToolUse(tool) => tool_calls.push(json!({
                "id": tool.id,
                "type": "function",
                "function": {"name": tool.name, "arguments": tool.input},
            })),
            Block::RedactedThinking(_) => dropped.push(Dropped(
                "redacted thinking: Chat Completions cannot carry it".to_owned(),
            )),
            Block::Image(_) | Block::Document(_) | Block::ToolResult(_) => {
                dropped.push(Dropped(
                    "a non-text block in an assistant message".to_owned(),
                ));
            }
        }
    }
    let mut value = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() }});
    if !reasoning.is_empty() {
        // DeepSeek, Kimi and Qwen want their reasoning back in tool loops.
        value["reasoning_content"] = reasoning.into();
    }
    if !tool_calls.is_empty() {
        value["tool_calls"] = Value::Array(tool_calls);
    }
    messages.push(value);
}
