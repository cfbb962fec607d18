//! Anthropic requests ↔ canonical.

use serde_json::{Map, Value, json};

use super::wire::{TextOrBlocks, WireBlock, WireRequest, WireSource};
use super::{DEFAULT_MAX_TOKENS, tool_id};
use crate::canonical::{
    Block, CacheControl, Document, Dropped, Image, Invalid, Message, Reasoning, Request, Role,
    Signature, Source, SystemPart, Text, Thinking, Tool, ToolChoice, ToolResult, ToolUse,
};
use crate::codec::Target;

/// Reads a client's `POST /v1/messages` body.
pub fn decode_request(body: &[u8], dropped: &mut Vec<Dropped>) -> Result<Request, Invalid> {
    let wire: WireRequest = crate::parse_json(body)?;
    let mut request = Request {
        model: wire.model,
        max_tokens: wire.max_tokens,
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        stop: wire.stop_sequences,
        stream: wire.stream.unwrap_or(false),
        user: wire.metadata.and_then(|metadata| metadata.user_id),
        ..Request::default()
    };
    match wire.system {
        None => {}
        Some(TextOrBlocks::Text(text)) => request.system.push(SystemPart { text, cache: None }),
        Some(TextOrBlocks::Blocks(blocks)) => {
            for block in blocks {
                match block {
                    WireBlock::Text {
                        text,
                        cache_control,
                    } => request.system.push(SystemPart {
                        text,
                        cache: cache_control.map(|cache| CacheControl { ttl: cache.ttl }),
                    }),
                    _ => dropped.push(Dropped("a non-text system block".to_owned())),
                }
            }
        }
    }
    for (index, message) in wire.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(Invalid::field(
                    format!("messages[{index}].role"),
                    format!("unknown role `{other}`; use `user` or `assistant`"),
                ));
            }
        };
        let blocks = blocks_from_wire(message.content, dropped);
        if !blocks.is_empty() {
            request.messages.push(Message {
                role,
                content: blocks,
            });
        }
    }
    for tool in wire.tools {
        match tool.kind.as_deref() {
            None | Some("custom") => request.tools.push(Tool {
                name: tool.name,
                description: tool.description,
                parameters: tool
                    .input_schema
                    .unwrap_or_else(|| json!({"type": "object"})),
                strict: None,
            }),
            Some(kind) => dropped.push(Dropped(format!("the server tool `{kind}`"))),
        }
    }
    if let Some(choice) = wire.tool_choice {
        request.tool_choice = match (choice.kind.as_str(), choice.name) {
            ("auto", _) => Some(ToolChoice::Auto),
            ("any", _) => Some(ToolChoice::Required),
            ("none", _) => Some(ToolChoice::None),
            ("tool", Some(name)) => Some(ToolChoice::Tool(name)),
            (other, _) => {
                return Err(Invalid::field(
                    "tool_choice.type",
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        };
        if choice.disable_parallel_tool_use == Some(true) {
            request.parallel_tool_calls = Some(false);
        }
    }
    request.reasoning = match wire.thinking {
        None => None,
        Some(thinking) => match (thinking.kind.as_str(), thinking.budget_tokens) {
            ("enabled", Some(budget)) => Some(Reasoning::Budget(budget)),
            ("enabled", None) => {
                return Err(Invalid::field(
                    "thinking.budget_tokens",
                    "enabled thinking needs `budget_tokens`",
                ));
            }
            ("adaptive", _) => Some(Reasoning::Adaptive),
            ("disabled", _) => Some(Reasoning::Off),
            (other, _) => {
                return Err(Invalid::field(
                    "thinking.type",
                    format!("unknown thinking type `{other}`"),
                ));
            }
        },
    };
    Ok(request)
}

fn blocks_from_wire(content: TextOrBlocks, dropped: &mut Vec<Dropped>) -> Vec<Block> {
    match content {
        TextOrBlocks::Text(text) => vec![Block::text(text)],
        TextOrBlocks::Blocks(blocks) => blocks
            .into_iter()
            .filter_map(|block| block_from_wire(block, dropped))
            .collect(),
    }
}

fn block_from_wire(block: WireBlock, dropped: &mut Vec<Dropped>) -> Option<Block> {
    Some(match block {
        WireBlock::Text {
            text,
            cache_control,
        } => Block::Text(Text {
            text,
            cache: cache_control.map(|cache| CacheControl { ttl: cache.ttl }),
        }),
        WireBlock::Image { source } => Block::Image(Image {
            source: source_from_wire(source, "an image", dropped)?,
            detail: None,
        }),
        WireBlock::Document { source, title } => Block::Document(Document {
            source: source_from_wire(source, "a document", dropped)?,
            title,
        }),
        WireBlock::ToolUse { id, name, input } => Block::ToolUse(ToolUse {
            id,
            name,
            input: if input.is_null() {
                "{}".to_owned()
            } else {
                input.to_string()
            },
        }),
        WireBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => Block::ToolResult(ToolResult {
            tool_use_id,
            name: None,
            content: content
                .map(|content| blocks_from_wire(content, dropped))
                .unwrap_or_default(),
            is_error,
        }),
        WireBlock::Thinking {
            thinking,
            signature,
        } => Block::Thinking(Thinking {
            text: thinking,
            signature: (!signature.is_empty()).then(|| Signature::from_client(&signature)),
        }),
        WireBlock::RedactedThinking { data } => {
            Block::RedactedThinking(Signature::from_client(&data))
        }
        WireBlock::Unknown => {
            dropped.push(Dropped(
                "a content block of a type only Anthropic knows".to_owned(),
            ));
            return None;
        }
    })
}

fn source_from_wire(source: WireSource, what: &str, dropped: &mut Vec<Dropped>) -> Option<Source> {
    match source {
        WireSource::Base64 { media_type, data } => Some(Source::Base64 { media_type, data }),
        WireSource::Url { url } => Some(Source::Url {
            url,
            media_type: None,
        }),
        WireSource::Text { data } => {
            // A plain-text document: base64 keeps it one kind of source.
            Some(Source::Base64 {
                media_type: "text/plain".to_owned(),
                data: crate::base64::encode(data.as_bytes()),
            })
        }
        WireSource::Unknown => {
            dropped.push(Dropped(format!(
                "{what} with a source type only Anthropic knows"
            )));
            None
        }
    }
}

/// Writes a canonical request as Anthropic expects it.
pub fn encode_request(
    request: &Request,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".to_owned(), target.model.into());
    let (max_tokens, thinking) = thinking_and_max_tokens(request, target, dropped);
    let thinking_on = thinking
        .as_ref()
        .is_some_and(|value| value["type"] != "disabled");
    body.insert("max_tokens".to_owned(), max_tokens.into());
    if let Some(thinking) = thinking {
        body.insert("thinking".to_owned(), thinking);
    }
    if !request.system.is_empty() {
        let system: Vec<Value> = request
            .system
            .iter()
            .map(|part| text_block(&part.text, part.cache.as_ref()))
            .collect();
        body.insert("system".to_owned(), Value::Array(system));
    }
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter_map(|message| message_to_wire(message, target, dropped))
        .collect();
    body.insert("messages".to_owned(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut entry =
                    json!({"name": tool.name, "input_schema": input_schema(&tool.parameters)});
                if let Some(description) = &tool.description {
                    entry["description"] = description.as_str().into();
                }
                entry
            })
            .collect();
        body.insert("tools".to_owned(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice_to_wire(request) {
        body.insert("tool_choice".to_owned(), choice);
    }
    sampling_to_wire(request, thinking_on, &mut body, dropped);
    if !request.stop.is_empty() {
        body.insert("stop_sequences".to_owned(), request.stop.clone().into());
    }
    if let Some(user) = &request.user {
        body.insert("metadata".to_owned(), json!({"user_id": user}));
    }
    if request.stream {
        body.insert("stream".to_owned(), true.into());
    }
    if request.output_format.is_some() {
        dropped.push(Dropped(
            "response_format: Anthropic has no structured output mode here".to_owned(),
        ));
    }
    if request.seed.is_some() {
        dropped.push(Dropped("seed: Anthropic has none".to_owned()));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// `max_tokens` and `thinking`, which constrain each other: the budget must
/// stay below `max_tokens`, and a forced tool call rules thinking out.
fn thinking_and_max_tokens(
    request: &Request,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> (u64, Option<Value>) {
    let mut max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let forced_tool = matches!(
        request.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    );
    let thinking = match request.reasoning {
        None => None,
        Some(Reasoning::Off) => Some(json!({"type": "disabled"})),
        Some(_) if forced_tool => {
            dropped.push(Dropped(
                "thinking: Anthropic cannot think while a tool call is forced".to_owned(),
            ));
            None
        }
        Some(_) if !tool_loop_keeps_its_thinking(request, target) => {
            dropped.push(Dropped(
                "thinking: the tool call being answered lost its signed thinking, which Anthropic requires".to_owned(),
            ));
            None
        }
        Some(Reasoning::Adaptive) => Some(json!({"type": "adaptive"})),
        Some(reasoning) => {
            let budget = reasoning.budget().unwrap_or(1_024).max(1_024);
            if request.max_tokens.is_none() && max_tokens <= budget {
                max_tokens = budget + DEFAULT_MAX_TOKENS;
            }
            if max_tokens > 1_024 {
                Some(json!({"type": "enabled", "budget_tokens": budget.min(max_tokens - 1)}))
            } else {
                dropped.push(Dropped(
                    "thinking: max_tokens is too small to leave a thinking budget".to_owned(),
                ));
                None
            }
        }
    };
    (max_tokens, thinking)
}

/// With thinking on, Anthropic wants the assistant turn whose tool calls
/// are being answered to start with its signed thinking. A client that
/// could not keep it (Chat Completions has no place for signatures) cannot
/// think on this turn.
fn tool_loop_keeps_its_thinking(request: &Request, target: Target<'_>) -> bool {
    let Some(last) = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::Assistant)
    else {
        return true;
    };
    if !last
        .content
        .iter()
        .any(|block| matches!(block, Block::ToolUse(_)))
    {
        return true;
    }
    last.content.iter().any(|block| match block {
        Block::Thinking(thinking) => thinking
            .signature
            .as_ref()
            .is_some_and(|signature| signature.for_upstream(target.provider).is_some()),
        Block::RedactedThinking(signature) => signature.for_upstream(target.provider).is_some(),
        _ => false,
    })
}

fn tool_choice_to_wire(request: &Request) -> Option<Value> {
    let disable_parallel = request.parallel_tool_calls == Some(false);
    let mut choice = match &request.tool_choice {
        None if disable_parallel && !request.tools.is_empty() => json!({"type": "auto"}),
        None => return None,
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
    };
    if disable_parallel && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = true.into();
    }
    Some(choice)
}

/// Temperature, `top_p`, `top_k`: Anthropic rejects them while thinking,
/// and its temperature ends at 1.
fn sampling_to_wire(
    request: &Request,
    thinking_on: bool,
    body: &mut Map<String, Value>,
    dropped: &mut Vec<Dropped>,
) {
    if thinking_on {
        if request.temperature.is_some() || request.top_k.is_some() || request.top_p.is_some() {
            dropped.push(Dropped(
                "temperature, top_p and top_k: Anthropic ignores them while thinking".to_owned(),
            ));
        }
        return;
    }
    if let Some(temperature) = request.temperature {
        if temperature > 1.0 {
            dropped.push(Dropped(format!(
                "temperature {temperature}: Anthropic's range ends at 1"
            )));
        }
        body.insert("temperature".to_owned(), temperature.min(1.0).into());
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".to_owned(), top_p.into());
    }
    if let Some(top_k) = request.top_k {
        body.insert("top_k".to_owned(), top_k.into());
    }
}

/// Anthropic requires an object schema; a tool without parameters gets an
/// empty one.
fn input_schema(parameters: &Value) -> Value {
    match parameters {
        Value::Object(schema) if !schema.is_empty() => parameters.clone(),
        _ => json!({"type": "object", "properties": {}}),
    }
}

fn text_block(text: &str, cache: Option<&CacheControl>) -> Value {
    let mut block = json!({"type": "text", "text": text});
    if let Some(cache) = cache {
        block["cache_control"] = match &cache.ttl {
            Some(ttl) => json!({"type": "ephemeral", "ttl": ttl}),
            None => json!({"type": "ephemeral"}),
        };
    }
    block
}

fn source_to_wire(source: &Source) -> Value {
    match source {
        Source::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Source::Url { url, .. } => json!({"type": "url", "url": url}),
    }
}

fn message_to_wire(
    message: &Message,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> Option<Value> {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut results = Vec::new();
    let mut others = Vec::new();
    for block in &message.content {
        let Some(value) = block_to_wire(block, target, dropped) else {
            continue;
        };
        // Tool results must open a user message.
        if matches!(block, Block::ToolResult(_)) {
            results.push(value);
        } else {
            others.push(value);
        }
    }
    results.append(&mut others);
    (!results.is_empty()).then(|| json!({"role": role, "content": results}))
}

fn block_to_wire(block: &Block, target: Target<'_>, dropped: &mut Vec<Dropped>) -> Option<Value> {
    Some(match block {
        Block::Text(text) => {
            if text.text.is_empty() {
                // Anthropic rejects empty text blocks.
                return None;
            }
            text_block(&text.text, text.cache.as_ref())
        }
        Block::Image(image) => json!({"type": "image", "source": source_to_wire(&image.source)}),
        Block::Document(document) => {
            let mut value = json!({"type": "document", "source": source_to_wire(&document.source)});
            if let Some(title) = &document.title {
                value["title"] = title.as_str().into();
            }
            value
        }
        Block::ToolUse(tool) => json!({
            "type": "tool_use",
            "id": tool_id(&tool.id),
            "name": tool.name,
            "input": tool.input_object(dropped),
        }),
        Block::ToolResult(result) => {
            let content: Vec<Value> = result
                .content
                .iter()
                .filter_map(|block| match block {
                    Block::Text(_) | Block::Image(_) | Block::Document(_) => {
                        block_to_wire(block, target, dropped)
                    }
                    _ => None,
                })
                .collect();
            let mut value =
                json!({"type": "tool_result", "tool_use_id": tool_id(&result.tool_use_id)});
            if !content.is_empty() {
                value["content"] = Value::Array(content);
            }
            if result.is_error {
                value["is_error"] = true.into();
            }
            value
        }
        Block::Thinking(thinking) => {
            let Some(signature) = thinking
                .signature
                .as_ref()
                .and_then(|signature| signature.for_upstream(target.provider))
            else {
                dropped.push(Dropped(
                    "a thinking block this upstream did not sign".to_owned(),
                ));
                return None;
            };
            json!({"type": "thinking", "thinking": thinking.text, "signature": signature})
        }
        Block::RedactedThinking(signature) => {
            let Some(data) = signature.for_upstream(target.provider) else {
                dropped.push(Dropped(
                    "redacted thinking from another upstream".to_owned(),
                ));
                return None;
            };
            json!({"type": "redacted_thinking", "data": data})
        }
    })
}
