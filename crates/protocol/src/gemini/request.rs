//! Gemini requests ↔ canonical.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::MAX_THINKING_BUDGET;
use super::schema::sanitize_schema;
use crate::canonical::{
    Block, Document, Dropped, Effort, Image, Invalid, Message, OutputFormat, Reasoning, Request,
    Role, Signature, Source, SystemPart, Text, Thinking, Tool, ToolChoice, ToolResult, ToolUse,
    joined_text,
};
use crate::codec::Target;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    contents: Vec<WireContent>,
    system_instruction: Option<WireContent>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_config: Option<WireToolConfig>,
    generation_config: Option<WireGenerationConfig>,
}

#[derive(Deserialize)]
pub(crate) struct WireContent {
    pub(crate) role: Option<String>,
    #[serde(default)]
    pub(crate) parts: Vec<WirePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePart {
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) thought: bool,
    pub(crate) thought_signature: Option<String>,
    pub(crate) inline_data: Option<WireData>,
    pub(crate) file_data: Option<WireFile>,
    pub(crate) function_call: Option<WireCall>,
    pub(crate) function_response: Option<WireFunctionResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireData {
    pub(crate) mime_type: String,
    pub(crate) data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireFile {
    pub(crate) mime_type: Option<String>,
    pub(crate) file_uri: String,
}

#[derive(Deserialize)]
pub(crate) struct WireCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) args: Value,
}

#[derive(Deserialize)]
pub(crate) struct WireFunctionResponse {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) response: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTool {
    #[serde(default)]
    function_declarations: Vec<WireDeclaration>,
    #[serde(flatten)]
    others: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDeclaration {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    parameters_json_schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolConfig {
    function_calling_config: Option<WireCallingConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCallingConfig {
    mode: Option<String>,
    #[serde(default)]
    allowed_function_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGenerationConfig {
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    candidate_count: Option<u64>,
    seed: Option<i64>,
    response_mime_type: Option<String>,
    response_schema: Option<Value>,
    response_json_schema: Option<Value>,
    thinking_config: Option<WireThinkingConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireThinkingConfig {
    thinking_budget: Option<i64>,
    thinking_level: Option<String>,
}

/// A media type as an image or a document block.
fn media(source: Source, mime: &str) -> Block {
    if mime.starts_with("image/") {
        Block::Image(Image {
            source,
            detail: None,
        })
    } else {
        Block::Document(Document {
            source,
            title: None,
        })
    }
}

/// Reads a client's `generateContent` body; the model and whether it
/// streams come from the URL.
pub fn decode_request(
    body: &[u8],
    model: &str,
    stream: bool,
    dropped: &mut Vec<Dropped>,
) -> Result<Request, Invalid> {
    let wire: WireRequest = crate::parse_json(body)?;
    let mut request = Request {
        model: model.to_owned(),
        stream,
        ..Request::default()
    };
    if let Some(system) = wire.system_instruction {
        let text: Vec<String> = system
            .parts
            .into_iter()
            .filter_map(|part| part.text)
            .collect();
        request.system.push(SystemPart {
            text: text.join("\n"),
            cache: None,
        });
    }
    // Ids given to the calls of the last model turn, by name, for pairing
    // responses that carry no id.
    let mut pending: Vec<(String, String)> = Vec::new();
    for (turn, content) in wire.contents.into_iter().enumerate() {
        let role = match content.role.as_deref() {
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(Invalid::field(
                    format!("contents[{turn}].role"),
                    format!("unknown role `{other}`; use `user` or `model`"),
                ));
            }
        };
        if role == Role::Assistant {
            pending.clear();
        }
        let mut calls = 0;
        for part in content.parts {
            for block in part_to_blocks(part, turn, &mut calls, &mut pending, dropped) {
                push_merging_thoughts(&mut request.messages, role, block);
            }
        }
    }
    for tool in wire.tools {
        for declaration in tool.function_declarations {
            request.tools.push(Tool {
                name: declaration.name,
                description: declaration.description,
                parameters: declaration
                    .parameters_json_schema
                    .or(declaration.parameters)
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: None,
            });
        }
        for name in tool.others.keys() {
            dropped.push(Dropped(format!("the Gemini tool `{name}`")));
        }
    }
    if let Some(config) = wire
        .tool_config
        .and_then(|config| config.function_calling_config)
    {
        request.tool_choice = match config.mode.as_deref() {
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") if config.allowed_function_names.len() == 1 => config
                .allowed_function_names
                .into_iter()
                .next()
                .map(ToolChoice::Tool),
            Some("ANY") => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        };
    }
    if let Some(config) = wire.generation_config {
        apply_generation_config(&mut request, config)?;
    }
    Ok(request)
}

fn apply_generation_config(
    request: &mut Request,
    config: WireGenerationConfig,
) -> Result<(), Invalid> {
    if config.candidate_count.is_some_and(|count| count > 1) {
        return Err(Invalid::field(
            "generationConfig.candidateCount",
            "`candidateCount` above 1 needs a Gemini upstream; this model is served by another",
        ));
    }
    request.temperature = config.temperature;
    request.top_p = config.top_p;
    request.top_k = config.top_k;
    request.max_tokens = config.max_output_tokens;
    request.stop = config.stop_sequences;
    request.seed = config.seed;
    if config.response_mime_type.as_deref() == Some("application/json") {
        request.output_format = Some(
            match config.response_json_schema.or(config.response_schema) {
                Some(schema) => OutputFormat::JsonSchema {
                    name: "response".to_owned(),
                    schema,
                    strict: None,
                },
                None => OutputFormat::JsonObject,
            },
        );
    }
    if let Some(thinking) = config.thinking_config {
        request.reasoning = match (thinking.thinking_budget, thinking.thinking_level.as_deref()) {
            (Some(0), _) => Some(Reasoning::Off),
            (Some(-1), _) => Some(Reasoning::Adaptive),
            (Some(budget), _) => Some(Reasoning::Budget(u64::try_from(budget).unwrap_or(0))),
            (None, Some(level)) => Some(Reasoning::Effort(
                Effort::parse(&level.to_ascii_lowercase()).unwrap_or(Effort::Medium),
            )),
            (None, None) => None,
        };
    }
    Ok(())
}

/// Consecutive thought parts are one thought (streams split them, and put
/// the signature on the last).
fn push_merging_thoughts(messages: &mut Vec<Message>, role: Role, block: Block) {
    if let (Some(last), Block::Thinking(next)) = (messages.last_mut(), &block)
        && last.role == role
        && let Some(Block::Thinking(previous)) = last.content.last_mut()
        && previous.signature.is_none()
        && !previous.text.is_empty()
    {
        previous.text.push_str(&next.text);
        previous.signature.clone_from(&next.signature);
        return;
    }
    Message::push_block(messages, role, block);
}

/// One part → the blocks it stands for: a signature on a part that is not
/// a thought comes first, as a thinking block without text.
fn part_to_blocks(
    part: WirePart,
    turn: usize,
    calls: &mut usize,
    pending: &mut Vec<(String, String)>,
    dropped: &mut Vec<Dropped>,
) -> Vec<Block> {
    let signature = part
        .thought_signature
        .as_deref()
        .map(Signature::from_client);
    let mut blocks = Vec::with_capacity(2);
    if part.thought {
        blocks.push(Block::Thinking(Thinking {
            text: part.text.unwrap_or_default(),
            signature,
        }));
        return blocks;
    }
    if let Some(signature) = signature {
        blocks.push(Block::Thinking(Thinking {
            text: String::new(),
            signature: Some(signature),
        }));
    }
    if let Some(text) = part.text {
        blocks.push(Block::Text(Text { text, cache: None }));
    } else if let Some(data) = part.inline_data {
        blocks.push(media(
            Source::Base64 {
                media_type: data.mime_type.clone(),
                data: data.data,
            },
            &data.mime_type,
        ));
    } else if let Some(file) = part.file_data {
        let mime = file.mime_type.clone().unwrap_or_default();
        blocks.push(media(
            Source::Url {
                url: file.file_uri,
                media_type: file.mime_type,
            },
            &mime,
        ));
    } else if let Some(call) = part.function_call {
        let id = call.id.unwrap_or_else(|| format!("call_{turn}_{calls}"));
        *calls += 1;
        pending.push((call.name.clone(), id.clone()));
        blocks.push(Block::ToolUse(ToolUse {
            id,
            name: call.name,
            input: if call.args.is_null() {
                "{}".to_owned()
            } else {
                call.args.to_string()
            },
        }));
    } else if let Some(response) = part.function_response {
        let id = response.id.unwrap_or_else(|| {
            match pending.iter().position(|(name, _)| *name == response.name) {
                Some(position) => pending.remove(position).1,
                None => format!("call_{}", response.name),
            }
        });
        // `{"output": …}` and `{"error": …}` are the SDKs' wrappers; unwrap them.
        let (text, is_error) = match &response.response {
            Value::Object(object)
                if object.len() == 1
                    && (object.contains_key("output") || object.contains_key("error")) =>
            {
                let (key, value) = object
                    .iter()
                    .next()
                    .map_or(("output", &Value::Null), |(key, value)| {
                        (key.as_str(), value)
                    });
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (text, key == "error")
            }
            other => (other.to_string(), false),
        };
        blocks.push(Block::ToolResult(ToolResult {
            tool_use_id: id,
            name: Some(response.name),
            content: vec![Block::text(text)],
            is_error,
        }));
    } else {
        dropped.push(Dropped("a part of a kind only Gemini knows".to_owned()));
    }
    blocks
}

/// Writes a canonical request for a Gemini upstream (without the model,
/// which goes in the URL).
pub fn encode_request(
    request: &Request,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut body = Map::new();
    let contents = contents_to_wire(request, target, dropped);
    body.insert("contents".to_owned(), Value::Array(contents));
    if !request.system.is_empty() {
        let text: Vec<&str> = request
            .system
            .iter()
            .map(|part| part.text.as_str())
            .collect();
        body.insert(
            "systemInstruction".to_owned(),
            json!({"parts": [{"text": text.join("\n\n")}]}),
        );
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut declaration =
                    json!({"name": tool.name, "parameters": sanitize_schema(&tool.parameters)});
                if let Some(description) = &tool.description {
                    declaration["description"] = description.as_str().into();
                }
                declaration
            })
            .collect();
        body.insert(
            "tools".to_owned(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = &request.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert(
            "toolConfig".to_owned(),
            json!({"functionCallingConfig": config}),
        );
    }
    let config = generation_config(request, dropped);
    if !config.is_empty() {
        body.insert("generationConfig".to_owned(), Value::Object(config));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// The conversation as Gemini contents.
fn contents_to_wire(
    request: &Request,
    target: Target<'_>,
    dropped: &mut Vec<Dropped>,
) -> Vec<Value> {
    // Tool results need the tool's name; earlier calls say it.
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut contents = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let mut parts: Vec<Value> = Vec::with_capacity(message.content.len());
        let mut signature: Option<&str> = None;
        for block in &message.content {
            let part = match block {
                Block::Thinking(thinking) => {
                    let own = thinking
                        .signature
                        .as_ref()
                        .and_then(|signature| signature.for_upstream(target.provider));
                    if thinking.text.is_empty() {
                        // A signature that belongs on the next part.
                        signature = own;
                        continue;
                    }
                    let Some(own) = own else {
                        dropped.push(Dropped("a thought this upstream did not sign".to_owned()));
                        continue;
                    };
                    json!({"text": thinking.text, "thought": true, "thoughtSignature": own})
                }
                Block::RedactedThinking(redacted) => {
                    signature = redacted.for_upstream(target.provider);
                    continue;
                }
                Block::Text(text) => json!({"text": text.text}),
                Block::Image(Image { source, .. }) | Block::Document(Document { source, .. }) => {
                    source_part(source, block)
                }
                Block::ToolUse(tool) => {
                    names.push((&tool.id, &tool.name));
                    json!({"functionCall": {"name": tool.name, "args": tool.input_object(dropped)}})
                }
                Block::ToolResult(result) => {
                    let name = result.name.as_deref().or_else(|| {
                        names
                            .iter()
                            .find(|(id, _)| *id == result.tool_use_id)
                            .map(|(_, name)| *name)
                    });
                    let Some(name) = name else {
                        dropped.push(Dropped(
                            "a tool result whose call is not in the conversation".to_owned(),
                        ));
                        continue;
                    };
                    json!({"functionResponse": {"name": name, "response": response_object(result)}})
                }
            };
            let mut part = part;
            if let Some(signature) = signature.take() {
                part["thoughtSignature"] = signature.into();
            }
            parts.push(part);
        }
        if !parts.is_empty() {
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            contents.push(json!({"role": role, "parts": parts}));
        }
    }
    contents
}

fn source_part(source: &Source, block: &Block) -> Value {
    match source {
        Source::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Source::Url { url, media_type } => {
            let mime = media_type.clone().unwrap_or_else(|| {
                if matches!(block, Block::Image(_)) {
                    "image/jpeg".to_owned()
                } else {
                    "application/pdf".to_owned()
                }
            });
            json!({"fileData": {"mimeType": mime, "fileUri": url}})
        }
    }
}

/// A tool result as the object Gemini's `functionResponse.response` wants.
fn response_object(result: &ToolResult) -> Value {
    let text = joined_text(&result.content);
    if result.is_error {
        return json!({"error": text});
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => json!({"output": text}),
    }
}

fn generation_config(request: &Request, dropped: &mut Vec<Dropped>) -> Map<String, Value> {
    let mut config = Map::new();
    let mut set = |key: &str, value: Value| {
        config.insert(key.to_owned(), value);
    };
    if let Some(temperature) = request.temperature {
        set("temperature", temperature.into());
    }
    if let Some(top_p) = request.top_p {
        set("topP", top_p.into());
    }
    if let Some(top_k) = request.top_k {
        set("topK", top_k.into());
    }
    if let Some(max_tokens) = request.max_tokens {
        set("maxOutputTokens", max_tokens.into());
    }
    if !request.stop.is_empty() {
        set("stopSequences", request.stop.clone().into());
    }
    if let Some(seed) = request.seed {
        set("seed", seed.into());
    }
    match &request.output_format {
        None | Some(OutputFormat::Text) => {}
        Some(OutputFormat::JsonObject) => set("responseMimeType", "application/json".into()),
        Some(OutputFormat::JsonSchema { schema, .. }) => {
            set("responseMimeType", "application/json".into());
            set("responseSchema", sanitize_schema(schema));
        }
    }
    match request.reasoning {
        None => {}
        Some(Reasoning::Off) => set("thinkingConfig", json!({"thinkingBudget": 0})),
        Some(Reasoning::Adaptive) => set(
            "thinkingConfig",
            json!({"thinkingBudget": -1, "includeThoughts": true}),
        ),
        Some(reasoning) => {
            let budget = reasoning.budget().unwrap_or(0);
            if budget > MAX_THINKING_BUDGET {
                dropped.push(Dropped(format!(
                    "a thinking budget of {budget}: Gemini's stops at {MAX_THINKING_BUDGET}"
                )));
            }
            set(
                "thinkingConfig",
                json!({"thinkingBudget": budget.min(MAX_THINKING_BUDGET), "includeThoughts": true}),
            );
        }
    }
    config
}
