//! Responses requests ↔ canonical.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{pack_reasoning, unpack_reasoning};
use crate::canonical::{
    Block, Document, Dropped, Image, Invalid, Message, OutputFormat, Reasoning, Request, Role,
    Signature, SystemPart, Text, Thinking, Tool, ToolChoice, ToolResult, ToolUse, joined_text,
};
use crate::codec::Target;
use crate::openai_chat::{source_from_url, source_to_url};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    input: Option<Input>,
    instructions: Option<String>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    reasoning: Option<WireReasoning>,
    text: Option<WireText>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stream: Option<bool>,
    previous_response_id: Option<String>,
    user: Option<String>,
    prompt_cache_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Value>),
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct WireReasoning {
    effort: Option<String>,
}

#[derive(Deserialize)]
struct WireText {
    format: Option<WireFormat>,
}

#[derive(Deserialize)]
struct WireFormat {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    schema: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    Message {
        role: String,
        content: ItemContent,
    },
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: ItemContent,
    },
    Reasoning {
        id: Option<String>,
        #[serde(default)]
        summary: Vec<Summary>,
        #[serde(default)]
        content: Vec<Summary>,
        encrypted_content: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ItemContent {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    Refusal {
        refusal: String,
    },
    InputImage {
        image_url: Option<String>,
        detail: Option<String>,
    },
    InputFile {
        file_data: Option<String>,
        filename: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Summary {
    text: String,
}

/// Reads a client's `POST /v1/responses` body.
pub fn decode_request(body: &[u8], dropped: &mut Vec<Dropped>) -> Result<Request, Invalid> {
    let wire: WireRequest = crate::parse_json(body)?;
    if wire.previous_response_id.is_some() {
        return Err(Invalid::field(
            "previous_response_id",
            "`previous_response_id` needs an upstream that speaks the Responses API and stores answers; send the whole conversation in `input` instead",
        ));
    }
    let mut request = Request {
        model: wire.model,
        max_tokens: wire.max_output_tokens,
        temperature: wire.temperature,
        top_p: wire.top_p,
        stream: wire.stream.unwrap_or(false),
        parallel_tool_calls: wire.parallel_tool_calls,
        user: wire.user.or(wire.prompt_cache_key),
        ..Request::default()
    };
    if let Some(instructions) = wire.instructions.filter(|text| !text.is_empty()) {
        request.system.push(SystemPart {
            text: instructions,
            cache: None,
        });
    }
    if let Some(effort) = wire.reasoning.and_then(|reasoning| reasoning.effort) {
        request.reasoning = Some(Reasoning::from_effort_name(&effort).ok_or_else(|| {
            Invalid::field(
                "reasoning.effort",
                format!("unknown reasoning effort `{effort}`"),
            )
        })?);
    }
    request.output_format = match wire.text.and_then(|text| text.format) {
        None => None,
        Some(format) => Some(match format.kind.as_str() {
            "text" => OutputFormat::Text,
            "json_object" => OutputFormat::JsonObject,
            "json_schema" => OutputFormat::JsonSchema {
                name: format.name.unwrap_or_else(|| "response".to_owned()),
                schema: format.schema.unwrap_or_else(|| json!({})),
                strict: format.strict,
            },
            other => {
                return Err(Invalid::field(
                    "text.format.type",
                    format!("unknown format `{other}`"),
                ));
            }
        }),
    };
    for tool in wire.tools {
        match (tool.kind.as_str(), tool.name) {
            ("function", Some(name)) => request.tools.push(Tool {
                name,
                description: tool.description,
                parameters: tool
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: tool.strict,
            }),
            (kind, _) => dropped.push(Dropped(format!("the built-in tool `{kind}`"))),
        }
    }
    request.tool_choice = match wire.tool_choice {
        None => None,
        Some(Value::String(choice)) => Some(match choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(Invalid::field(
                    "tool_choice",
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        }),
        Some(choice) => match (choice["type"].as_str(), choice["name"].as_str()) {
            (Some("function"), Some(name)) => Some(ToolChoice::Tool(name.to_owned())),
            _ => {
                dropped.push(Dropped(format!("the tool_choice {choice}")));
                None
            }
        },
    };
    match wire.input {
        None => {}
        Some(Input::Text(text)) => request.messages.push(Message {
            role: Role::User,
            content: vec![Block::text(text)],
        }),
        Some(Input::Items(items)) => {
            for (index, item) in items.into_iter().enumerate() {
                decode_item(item, index, &mut request, dropped)?;
            }
        }
    }
    Ok(request)
}

fn decode_item(
    item: Value,
    index: usize,
    request: &mut Request,
    dropped: &mut Vec<Dropped>,
) -> Result<(), Invalid> {
    // A message may leave out its `type`.
    let item = match item {
        Value::Object(mut object)
            if !object.contains_key("type") && object.contains_key("role") =>
        {
            object.insert("type".to_owned(), "message".into());
            Value::Object(object)
        }
        other => other,
    };
    let item: Item = serde_json::from_value(item).map_err(|error| {
        Invalid::field(
            format!("input[{index}]"),
            format!("`input[{index}]`: {error}"),
        )
    })?;
    match item {
        Item::Message { role, content } => {
            let blocks = content_to_blocks(content, dropped);
            match role.as_str() {
                "system" | "developer" => request.system.push(SystemPart {
                    text: joined_text(&blocks),
                    cache: None,
                }),
                "user" => blocks.into_iter().for_each(|block| {
                    Message::push_block(&mut request.messages, Role::User, block);
                }),
                "assistant" => blocks.into_iter().for_each(|block| {
                    Message::push_block(&mut request.messages, Role::Assistant, block);
                }),
                other => {
                    return Err(Invalid::field(
                        format!("input[{index}].role"),
                        format!("unknown role `{other}`"),
                    ));
                }
            }
        }
        Item::FunctionCall {
            call_id,
            name,
            arguments,
        } => Message::push_block(
            &mut request.messages,
            Role::Assistant,
            Block::ToolUse(ToolUse {
                id: call_id,
                name,
                input: arguments,
            }),
        ),
        Item::FunctionCallOutput { call_id, output } => Message::push_block(
            &mut request.messages,
            Role::User,
            Block::ToolResult(ToolResult {
                tool_use_id: call_id,
                name: None,
                content: content_to_blocks(output, dropped),
                is_error: false,
            }),
        ),
        Item::Reasoning {
            id,
            summary,
            content,
            encrypted_content,
        } => {
            let texts: Vec<String> = summary
                .into_iter()
                .chain(content)
                .map(|part| part.text)
                .collect();
            let signature = encrypted_content.map(|encrypted| {
                // The client sends back what it got: tagged when a translated
                // answer gave it, bare (id and blob apart) from a pass-through.
                let tagged = Signature::from_client(&encrypted);
                match (&tagged.origin, id) {
                    (None, Some(id)) => Signature {
                        value: pack_reasoning(&id, &encrypted),
                        origin: None,
                    },
                    _ => tagged,
                }
            });
            Message::push_block(
                &mut request.messages,
                Role::Assistant,
                Block::Thinking(Thinking {
                    text: texts.join("\n\n"),
                    signature,
                }),
            );
        }
        Item::Other => dropped.push(Dropped(
            "an input item only the Responses API knows".to_owned(),
        )),
    }
    Ok(())
}

fn content_to_blocks(content: ItemContent, dropped: &mut Vec<Dropped>) -> Vec<Block> {
    match content {
        ItemContent::Text(text) => vec![Block::text(text)],
        ItemContent::Parts(parts) => parts
            .into_iter()
            .filter_map(|part| match part {
                Part::InputText { text }
                | Part::OutputText { text }
                | Part::Refusal { refusal: text } => Some(Block::Text(Text { text, cache: None })),
                Part::InputImage {
                    image_url: Some(url),
                    detail,
                } => Some(Block::Image(Image {
                    source: source_from_url(&url),
                    detail,
                })),
                Part::InputFile {
                    file_data: Some(data),
                    filename,
                } => Some(Block::Document(Document {
                    source: source_from_url(&data),
                    title: filename,
                })),
                Part::InputImage {
                    image_url: None, ..
                }
                | Part::InputFile {
                    file_data: None, ..
                } => {
                    dropped.push(Dropped(
                        "an image or file referenced by id (only OpenAI can read it)".to_owned(),
                    ));
                    None
                }
                Part::Other => {
                    dropped.push(Dropped(
                        "a content part only the Responses API knows".to_owned(),
                    ));
                    None
                }
            })
            .collect(),
    }
}

/// Writes a canonical request for a Responses upstream.
pub fn encode_request(
    request: &Request,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".to_owned(), target.model.into());
    if !request.system.is_empty() {
        let text: Vec<&str> = request
            .system
            .iter()
            .map(|part| part.text.as_str())
            .collect();
        body.insert("instructions".to_owned(), text.join("\n\n").into());
    }
    let mut input = Vec::new();
    for message in &request.messages {
        encode_message(message, target, &mut input, dropped);
    }
    body.insert("input".to_owned(), Value::Array(input));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut value =
                    json!({"type": "function", "name": tool.name, "parameters": tool.parameters});
                if let Some(description) = &tool.description {
                    value["description"] = description.as_str().into();
                }
                value["strict"] = tool.strict.unwrap_or(false).into();
                value
            })
            .collect();
        body.insert("tools".to_owned(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        body.insert(
            "tool_choice".to_owned(),
            match choice {
                ToolChoice::Auto => "auto".into(),
                ToolChoice::None => "none".into(),
                ToolChoice::Required => "required".into(),
                ToolChoice::Tool(name) => json!({"type": "function", "name": name}),
            },
        );
    }
    if let Some(parallel) = request.parallel_tool_calls {
        body.insert("parallel_tool_calls".to_owned(), parallel.into());
    }
    if let Some(effort) = request.reasoning.and_then(Reasoning::effort) {
        body.insert(
            "reasoning".to_owned(),
            json!({"effort": effort.as_str(), "summary": "auto"}),
        );
        body.insert("include".to_owned(), json!(["reasoning.encrypted_content"]));
    }
    if let Some(max_tokens) = request.max_tokens {
        body.insert("max_output_tokens".to_owned(), max_tokens.into());
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".to_owned(), temperature.into());
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".to_owned(), top_p.into());
    }
    match &request.output_format {
        None | Some(OutputFormat::Text) => {}
        Some(OutputFormat::JsonObject) => {
            body.insert(
                "text".to_owned(),
                json!({"format": {"type": "json_object"}}),
            );
        }
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            let mut format = json!({"type": "json_schema", "name": name, "schema": schema});
            if let Some(strict) = strict {
                format["strict"] = (*strict).into();
            }
            body.insert("text".to_owned(), json!({"format": format}));
        }
    }
    if !request.stop.is_empty() {
        dropped.push(Dropped(
            "stop sequences: the Responses API has none".to_owned(),
        ));
    }
    if request.top_k.is_some() || request.seed.is_some() {
        dropped.push(Dropped(
            "top_k and seed: the Responses API has neither".to_owned(),
        ));
    }
    if let Some(user) = &request.user {
        body.insert("prompt_cache_key".to_owned(), user.as_str().into());
    }
    body.insert("store".to_owned(), false.into());
    body.insert("stream".to_owned(), request.stream.into());
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn encode_message(
    message: &Message,
    target: Target<'_>,
    input: &mut Vec<Value>,
    dropped: &mut Vec<Dropped>,
) {
    let (role, text_type) = match message.role {
        Role::User => ("user", "input_text"),
        Role::Assistant => ("assistant", "output_text"),
    };
    let mut parts: Vec<Value> = Vec::new();
    let flush = |parts: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !parts.is_empty() {
            input.push(json!({"type": "message", "role": role, "content": std::mem::take(parts)}));
        }
    };
    for (position, block) in message.content.iter().enumerate() {
        match block {
            Block::Text(text) => parts.push(json!({"type": text_type, "text": text.text})),
            Block::Image(image) if message.role == Role::User => {
                let mut part =
                    json!({"type": "input_image", "image_url": source_to_url(&image.source)});
                part["detail"] = image.detail.as_deref().unwrap_or("auto").into();
                parts.push(part);
            }
            Block::Document(document) if message.role == Role::User => {
                let mut part =
                    json!({"type": "input_file", "file_data": source_to_url(&document.source)});
                part["filename"] = document.title.as_deref().unwrap_or("document").into();
                parts.push(part);
            }
            Block::ToolUse(tool) => {
                flush(&mut parts, input);
                input.push(json!({"type": "function_call", "call_id": tool.id, "name": tool.name, "arguments": tool.input}));
            }
            Block::ToolResult(result) => {
                flush(&mut parts, input);
                let mut output = joined_text(&result.content);
                if result.is_error {
                    output.insert_str(0, "Error: ");
                }
                input.push(json!({"type": "function_call_output", "call_id": result.tool_use_id, "output": output}));
            }
            Block::Thinking(Thinking { text, signature }) => {
                let Some(value) = signature
                    .as_ref()
                    .and_then(|signature| signature.for_upstream(target.provider))
                else {
                    dropped.push(Dropped(
                        "reasoning this upstream did not produce".to_owned(),
                    ));
                    continue;
                };
                flush(&mut parts, input);
                let fallback = format!("rs_{position}");
                let (id, encrypted) = unpack_reasoning(value, &fallback);
                let summary: Vec<Value> = if text.is_empty() {
                    Vec::new()
                } else {
                    vec![json!({"type": "summary_text", "text": text})]
                };
                input.push(json!({"type": "reasoning", "id": id, "summary": summary, "encrypted_content": encrypted}));
            }
            Block::RedactedThinking(_) | Block::Image(_) | Block::Document(_) => {
                dropped.push(Dropped(
                    "a block the Responses API cannot take in this place".to_owned(),
                ));
            }
        }
    }
    flush(&mut parts, input);
}
