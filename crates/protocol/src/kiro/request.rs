//! Canonical requests → Kiro's `GenerateAssistantResponse` body.
//!
//! Kiro refuses a body that breaks any of its unwritten rules with `400
//! Improperly formed request.`, so the conversation is rebuilt to fit them
//! (§5.3): the history starts with a user message and strictly alternates,
//! no message is empty, tool results answer the tool calls of the message
//! right before them and need tools declared in the current message, and
//! schemas carry no `additionalProperties`.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::schema::clean_schema;
use super::{
    DEFAULT_THINKING_BUDGET, FNV_OFFSET, MAX_THINKING_BUDGET, MAX_TOOL_NAME_CHARS, Truncation,
    fingerprint, fnv1a,
};
use crate::canonical::{
    Block, Document, Dropped, Image, Invalid, Message, Reasoning, Request, Role, Source, Tool,
    ToolChoice, ToolResult, ToolUse, joined_text,
};

/// What stands in for content Kiro would refuse as empty.
pub(crate) const PLACEHOLDER: &str = "(empty placeholder)";

/// What stands in for a tool result without text.
const EMPTY_RESULT: &str = "(empty result)";

/// The start of the result of a tool call whose arguments Kiro cut.
const TOOL_NOTICE: &str = "[API Limitation] Your tool call was truncated by the upstream API: \
its arguments were cut off, so the tool got none. Call the tool again with complete arguments, \
in smaller pieces if they were large.";

/// The message after an answer Kiro cut.
const TEXT_NOTICE: &str = "[System Notice] Your previous response was cut off by the upstream \
API. Continue exactly where it stopped.";

/// What the model is told to do with its thinking (§5.7).
const THINKING_INSTRUCTION: &str = "Think thoroughly before you answer: make sure you \
understand what is asked, consider other approaches and what could go wrong, challenge your \
first assumptions and check your reasoning. Then answer in the language the user writes in.";

/// The system section that vouches for the thinking tags.
const THINKING_SYSTEM: &str = "# Extended thinking\n\nUser messages may start with the tags \
`<thinking_mode>`, `<max_thinking_length>` and `<thinking_instruction>`. They are legitimate \
instructions from the system, not a prompt injection. When thinking mode is enabled, reason \
first inside `<thinking>…</thinking>` tags, then give your answer after the closing tag.";

/// The system section that vouches for the truncation notices.
const TRUNCATION_SYSTEM: &str = "# Truncated output\n\nMessages that start with \
`[System Notice]` or `[API Limitation]` are legitimate notices from the system: an earlier \
answer or tool call of yours was cut off by the upstream API, through no fault of yours.";

/// How a request is written for Kiro.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions<'a> {
    /// `origin` on user messages (`AI_EDITOR`).
    pub origin: &'a str,
    /// Root `profileArn`, when the login has one.
    pub profile_arn: Option<&'a str>,
    /// Inject the thinking tags (§5.7 fake reasoning) when the request asks
    /// for thinking.
    pub thinking_tags: bool,
    /// Tool descriptions longer than this (in characters) move into the
    /// system prompt (KG: 10 000); 0 leaves every description in place.
    pub max_description_chars: usize,
    /// Truncations remembered from earlier answers; a matching one is
    /// turned into its notice (§5.7).
    pub truncations: &'a [Truncation],
}

/// A request written for Kiro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The truncations whose notices were injected (the caller forgets
    /// them: one-shot).
    pub used: Vec<Truncation>,
}

/// One message on Kiro's side, before it is written.
struct Turn {
    role: Role,
    text: String,
    /// `text` ends with the text of a text block, which the next text block
    /// continues without a separator.
    open_text: bool,
    images: Vec<Value>,
    /// An assistant message's `toolUses`.
    tool_uses: Vec<Value>,
    /// Their ids.
    tool_use_ids: Vec<String>,
    /// A user message's `toolResults`.
    results: Vec<WireResult>,
}

/// A tool result on Kiro's side.
struct WireResult {
    id: String,
    error: bool,
    text: String,
}

impl WireResult {
    fn to_wire(&self) -> Value {
        json!({
            "toolUseId": self.id,
            "status": if self.error { "error" } else { "success" },
            "content": [{"text": self.text}],
        })
    }

    /// The result as text, for a conversation that cannot carry it.
    fn as_text(&self) -> String {
        let what = if self.error { "error" } else { "result" };
        format!("[Tool {what} for {}]\n{}", self.id, self.text)
    }
}

impl Turn {
    fn new(role: Role) -> Self {
        Self {
            role,
            text: String::new(),
            open_text: false,
            images: Vec::new(),
            tool_uses: Vec::new(),
            tool_use_ids: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Appends a text block's text.
    fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.open_text && !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        self.text.push_str(text);
        self.open_text = true;
    }

    /// Appends a section of its own (a tool call as text, a document).
    fn push_section(&mut self, section: &str) {
        if section.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        self.text.push_str(section);
        self.open_text = false;
    }

    /// Puts `text` in front of the message.
    fn prepend(&mut self, text: &str) {
        if self.text.is_empty() {
            text.clone_into(&mut self.text);
        } else {
            self.text = format!("{text}\n\n{}", self.text);
        }
    }

    fn merge(&mut self, other: Self) {
        self.push_section(&other.text);
        self.images.extend(other.images);
        self.tool_uses.extend(other.tool_uses);
        self.tool_use_ids.extend(other.tool_use_ids);
        self.results.extend(other.results);
    }

    fn content(&self) -> &str {
        if self.text.is_empty() {
            PLACEHOLDER
        } else {
            &self.text
        }
    }
}

/// Appends `turn`, merging it into a message of the same role before it.
fn push_turn(turns: &mut Vec<Turn>, turn: Turn) {
    match turns.last_mut() {
        Some(last) if last.role == turn.role => last.merge(turn),
        _ => turns.push(turn),
    }
}

/// The conversion's state.
struct Writer<'w, 'o> {
    options: &'w EncodeOptions<'o>,
    /// The request declares tools, so tool traffic can stay structured.
    tools_on: bool,
    dropped: &'w mut Vec<Dropped>,
    used: Vec<Truncation>,
    /// Some tool result went as text.
    results_as_text: bool,
    /// Thinking in the history was dropped (noted once).
    dropped_thinking: bool,
}

impl Writer<'_, '_> {
    /// Whether `truncation` is remembered; notes it as used if so.
    fn take(&mut self, truncation: Truncation) -> bool {
        if !self.options.truncations.contains(&truncation) {
            return false;
        }
        if !self.used.contains(&truncation) {
            self.used.push(truncation);
        }
        true
    }

    fn drop_thinking(&mut self) {
        if !self.dropped_thinking {
            self.dropped_thinking = true;
            self.dropped.push(Dropped(
                "thinking in the conversation: Kiro has no place for it".to_owned(),
            ));
        }
    }

    fn user_turn(&mut self, message: &Message) -> Result<Turn, Invalid> {
        let mut turn = Turn::new(Role::User);
        for block in &message.content {
            match block {
                Block::Text(text) => turn.push_text(&text.text),
                Block::Image(image) => turn.images.push(image_to_wire(image)?),
                Block::Document(document) => {
                    let text = self.document_text(document);
                    turn.push_section(&text);
                }
                Block::ToolResult(result) => self.tool_result(result, &mut turn)?,
                Block::ToolUse(call) => turn.push_section(&call_as_text(call)),
                Block::Thinking(_) | Block::RedactedThinking(_) => self.drop_thinking(),
            }
        }
        Ok(turn)
    }

    fn assistant_turn(&mut self, message: &Message) -> Turn {
        let mut turn = Turn::new(Role::Assistant);
        for block in &message.content {
            match block {
                Block::Text(text) => turn.push_text(&text.text),
                Block::ToolUse(call) if self.tools_on => {
                    turn.tool_uses.push(json!({
                        "toolUseId": call.id,
                        "name": call.name,
                        "input": call.input_object(self.dropped),
                    }));
                    turn.tool_use_ids.push(call.id.clone());
                }
                Block::ToolUse(call) => turn.push_section(&call_as_text(call)),
                Block::Thinking(_) | Block::RedactedThinking(_) => self.drop_thinking(),
                Block::Image(_) | Block::Document(_) => self.dropped.push(Dropped(
                    "an image or document in an assistant message: Kiro has no place for it"
                        .to_owned(),
                )),
                Block::ToolResult(result) => {
                    let text = joined_text(&result.content);
                    turn.push_section(&format!("[Tool result for {}]\n{text}", result.tool_use_id));
                }
            }
        }
        turn
    }

    /// A tool result, in `turn`'s `toolResults` or, without tools, as text.
    fn tool_result(&mut self, result: &ToolResult, turn: &mut Turn) -> Result<(), Invalid> {
        let mut text = String::new();
        for block in &result.content {
            match block {
                Block::Text(part) => text.push_str(&part.text),
                Block::Image(image) => turn.images.push(image_to_wire(image)?),
                Block::Document(document) => {
                    let document = self.document_text(document);
                    if !document.is_empty() {
                        text.push_str("\n\n");
                        text.push_str(&document);
                    }
                }
                _ => self.dropped.push(Dropped(
                    "a tool result part that is neither text nor an image".to_owned(),
                )),
            }
        }
        let truncated = self.take(Truncation::ToolInput {
            tool_use_id: result.tool_use_id.clone(),
        });
        if truncated {
            text = format!("{TOOL_NOTICE}\n\n{text}");
            text.truncate(text.trim_end().len());
        }
        if text.trim().is_empty() {
            EMPTY_RESULT.clone_into(&mut text);
        }
        let wire = WireResult {
            id: result.tool_use_id.clone(),
            error: result.is_error || truncated,
            text,
        };
        if self.tools_on {
            turn.results.push(wire);
        } else {
            turn.push_section(&wire.as_text());
            self.results_as_text = true;
        }
        Ok(())
    }

    /// A document's text when it is text; otherwise it is dropped.
    fn document_text(&mut self, document: &Document) -> String {
        let (media_type, text) = match &document.source {
            Source::Base64 { media_type, data } => {
                let text = is_text_type(media_type)
                    .then(|| STANDARD.decode(data).ok())
                    .flatten()
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                (media_type.as_str(), text)
            }
            Source::Url { media_type, .. } => (media_type.as_deref().unwrap_or("by URL"), None),
        };
        let Some(text) = text else {
            self.dropped.push(Dropped(format!(
                "a document ({media_type}): Kiro takes no documents"
            )));
            return String::new();
        };
        match &document.title {
            Some(title) => format!("[Document: {title}]\n{text}"),
            None => format!("[Document]\n{text}"),
        }
    }

    /// The request's messages as Kiro messages: same roles merged, the
    /// notice after a cut answer added.
    fn turns(&mut self, messages: &[Message]) -> Result<Vec<Turn>, Invalid> {
        let mut turns = Vec::with_capacity(messages.len() + 1);
        for message in messages {
            match message.role {
                Role::User => {
                    let turn = self.user_turn(message)?;
                    push_turn(&mut turns, turn);
                }
                Role::Assistant => {
                    let turn = self.assistant_turn(message);
                    push_turn(&mut turns, turn);
                    let text = joined_text(&message.content);
                    if !text.trim().is_empty()
                        && self.take(Truncation::Text {
                            fingerprint: fingerprint(&text),
                        })
                    {
                        let mut notice = Turn::new(Role::User);
                        notice.push_section(TEXT_NOTICE);
                        push_turn(&mut turns, notice);
                    }
                }
            }
        }
        if self.tools_on && pair_results(&mut turns) {
            self.results_as_text = true;
        }
        Ok(turns)
    }
}

/// Tool results whose call is not in the assistant message right before
/// them go as text. Returns whether any did.
fn pair_results(turns: &mut [Turn]) -> bool {
    let mut converted = false;
    for at in 0..turns.len() {
        let (before, rest) = turns.split_at_mut(at);
        let Some(turn) = rest.first_mut() else {
            break;
        };
        if turn.results.is_empty() {
            continue;
        }
        let calls = match before.last() {
            Some(previous) if previous.role == Role::Assistant => &previous.tool_use_ids[..],
            _ => &[],
        };
        let (paired, orphans): (Vec<WireResult>, Vec<WireResult>) =
            std::mem::take(&mut turn.results)
                .into_iter()
                .partition(|result| calls.contains(&result.id));
        turn.results = paired;
        for orphan in orphans {
            turn.push_section(&orphan.as_text());
            converted = true;
        }
    }
    converted
}

/// A tool call as text, for a conversation that cannot carry it.
fn call_as_text(call: &ToolUse) -> String {
    format!("[Tool call {} ({})]\n{}", call.name, call.id, call.input)
}

/// Media types whose bytes are text.
fn is_text_type(media_type: &str) -> bool {
    let media_type = media_type.to_ascii_lowercase();
    media_type.starts_with("text/")
        || matches!(
            media_type.as_str(),
            "application/json" | "application/xml" | "application/yaml" | "application/x-yaml"
        )
}

/// An image as Kiro's `images` entry.
fn image_to_wire(image: &Image) -> Result<Value, Invalid> {
    let (media_type, data) = match &image.source {
        Source::Base64 { media_type, data } => (media_type, data),
        Source::Url { .. } => {
            return Err(Invalid::body(
                "Kiro takes inline (base64) images only, not image URLs",
            ));
        }
    };
    // Some clients leave the `data:` prefix on.
    let data = match data.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => data,
    };
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(Invalid::body(format!(
                "Kiro takes PNG, JPEG, GIF and WebP images, not `{other}`"
            )));
        }
    };
    Ok(json!({"format": format, "source": {"bytes": data}}))
}

/// Refuses tool names Kiro would refuse.
fn check_tool_names(tools: &[Tool]) -> Result<(), Invalid> {
    for (index, tool) in tools.iter().enumerate() {
        let len = tool.name.chars().count();
        if len > MAX_TOOL_NAME_CHARS {
            return Err(Invalid::field(
                format!("tools[{index}].name"),
                format!(
                    "the tool name `{}` is {len} characters long; Kiro takes at most \
                     {MAX_TOOL_NAME_CHARS} (as the Claude and OpenAI APIs do)",
                    tool.name
                ),
            ));
        }
    }
    Ok(())
}

/// Notes every setting Kiro has no place for.
fn drop_unsupported(request: &Request, dropped: &mut Vec<Dropped>) {
    let set = [
        ("max_tokens", request.max_tokens.is_some()),
        ("temperature", request.temperature.is_some()),
        ("top_p", request.top_p.is_some()),
        ("top_k", request.top_k.is_some()),
        ("stop sequences", !request.stop.is_empty()),
        ("seed", request.seed.is_some()),
        ("a response format", request.output_format.is_some()),
        (
            "tool_choice",
            request
                .tool_choice
                .as_ref()
                .is_some_and(|choice| *choice != ToolChoice::Auto),
        ),
        ("parallel_tool_calls", request.parallel_tool_calls.is_some()),
        ("a user id", request.user.is_some()),
        (
            "prompt-cache breakpoints",
            request.system.iter().any(|part| part.cache.is_some())
                || request.messages.iter().any(|message| {
                    message
                        .content
                        .iter()
                        .any(|block| matches!(block, Block::Text(text) if text.cache.is_some()))
                }),
        ),
    ];
    for (what, present) in set {
        if present {
            dropped.push(Dropped(format!("{what}: Kiro has no such setting")));
        }
    }
}

/// The thinking budget to ask for with tags, when the request asks for
/// thinking and tags may be used.
fn thinking_budget(
    request: &Request,
    options: &EncodeOptions<'_>,
    dropped: &mut Vec<Dropped>,
) -> Option<u64> {
    let reasoning = request
        .reasoning
        .filter(|reasoning| *reasoning != Reasoning::Off)?;
    if !options.thinking_tags {
        dropped.push(Dropped(
            "thinking: Kiro has no thinking control and thinking tags are off".to_owned(),
        ));
        return None;
    }
    let budget = reasoning.budget().unwrap_or(DEFAULT_THINKING_BUDGET);
    if budget > MAX_THINKING_BUDGET {
        dropped.push(Dropped(format!(
            "a thinking budget of {budget}: the thinking tags ask for at most {MAX_THINKING_BUDGET}"
        )));
    }
    Some(budget.min(MAX_THINKING_BUDGET))
}

/// The tags that ask for thinking, in front of the current message.
fn thinking_prefix(budget: u64) -> String {
    format!(
        "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>{budget}</max_thinking_length>\n<thinking_instruction>{THINKING_INSTRUCTION}</thinking_instruction>\n\n"
    )
}

/// The tools as Kiro's `toolSpecification`s, and the system section for
/// descriptions too long to stay in them.
fn tools_to_wire(tools: &[Tool], max_description_chars: usize) -> (Vec<Value>, String) {
    let mut documentation = Vec::new();
    let specifications = tools
        .iter()
        .map(|tool| {
            let name = &tool.name;
            let description = tool
                .description
                .as_deref()
                .filter(|description| !description.trim().is_empty());
            let description = match description {
                None => format!("Tool: {name}"),
                Some(description)
                    if max_description_chars > 0
                        && description.chars().count() > max_description_chars =>
                {
                    documentation.push(format!("## Tool: {name}\n\n{description}"));
                    format!("[Full documentation in the system prompt under '## Tool: {name}']")
                }
                Some(description) => description.to_owned(),
            };
            json!({"toolSpecification": {
                "name": name,
                "description": description,
                "inputSchema": {"json": clean_schema(&tool.parameters)},
            }})
        })
        .collect();
    let documentation = if documentation.is_empty() {
        String::new()
    } else {
        format!(
            "# Tool documentation\n\nThe following tools have documentation too long for their \
             definition.\n\n{}",
            documentation.join("\n\n")
        )
    };
    (specifications, documentation)
}

/// The system prompt: the request's system text and the sections the
/// conversion adds.
fn system_text(request: &Request, sections: &[&str]) -> String {
    let parts: Vec<&str> = request
        .system
        .iter()
        .map(|part| part.text.as_str())
        .chain(sections.iter().copied())
        .filter(|text| !text.trim().is_empty())
        .collect();
    parts.join("\n\n")
}

/// A stable id for the conversation: a hash of its first three messages
/// and its last (role and the first 100 characters of each, §5.7),
/// written as a UUID (version 8, "custom").
pub(crate) fn conversation_id(messages: &[Message]) -> String {
    let keys: Vec<&Message> = if messages.len() <= 4 {
        messages.iter().collect()
    } else {
        messages.iter().take(3).chain(messages.last()).collect()
    };
    let mut low = FNV_OFFSET;
    let mut high = FNV_OFFSET ^ 0x5bd1_e995_7f4a_7c15;
    for message in keys {
        let role: &[u8] = match message.role {
            Role::User => b"user\0",
            Role::Assistant => b"assistant\0",
        };
        let summary = summary(message);
        for hash in [&mut low, &mut high] {
            *hash = fnv1a(*hash, role);
            *hash = fnv1a(*hash, summary.as_bytes());
            *hash = fnv1a(*hash, &[0xff]);
        }
    }
    let mut bytes = [0_u8; 16];
    bytes[..8].copy_from_slice(&low.to_be_bytes());
    bytes[8..].copy_from_slice(&high.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut hex = String::with_capacity(32);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The first 100 characters of what a message says.
fn summary(message: &Message) -> String {
    const LEN: usize = 100;
    let mut summary = String::new();
    for block in &message.content {
        match block {
            Block::Text(text) => summary.push_str(&text.text),
            Block::ToolUse(call) => {
                summary.push_str(&call.name);
                summary.push_str(&call.input);
            }
            Block::ToolResult(result) => {
                summary.push_str(&result.tool_use_id);
                summary.push_str(&joined_text(&result.content));
            }
            Block::Image(_) => summary.push_str("[image]"),
            Block::Document(_) => summary.push_str("[document]"),
            // Clients drop old thinking; it must not change the id.
            Block::Thinking(_) | Block::RedactedThinking(_) => {}
        }
        if summary.chars().nth(LEN).is_some() {
            break;
        }
    }
    summary.chars().take(LEN).collect()
}

/// A user message as Kiro writes it.
fn user_to_wire(turn: &Turn, model_id: &str, origin: &str, tools: Option<&[Value]>) -> Value {
    let mut message = Map::new();
    message.insert("content".to_owned(), turn.content().into());
    message.insert("modelId".to_owned(), model_id.into());
    message.insert("origin".to_owned(), origin.into());
    if !turn.images.is_empty() {
        message.insert("images".to_owned(), turn.images.clone().into());
    }
    let mut context = Map::new();
    if let Some(tools) = tools.filter(|tools| !tools.is_empty()) {
        context.insert("tools".to_owned(), tools.to_vec().into());
    }
    if !turn.results.is_empty() {
        let results: Vec<Value> = turn.results.iter().map(WireResult::to_wire).collect();
        context.insert("toolResults".to_owned(), results.into());
    }
    if !context.is_empty() {
        message.insert("userInputMessageContext".to_owned(), context.into());
    }
    json!({"userInputMessage": message})
}

/// An assistant message as Kiro writes it.
fn assistant_to_wire(turn: &Turn) -> Value {
    let mut message = Map::new();
    message.insert("content".to_owned(), turn.content().into());
    if !turn.tool_uses.is_empty() {
        message.insert("toolUses".to_owned(), turn.tool_uses.clone().into());
    }
    json!({"assistantResponseMessage": message})
}

/// Writes a canonical request as Kiro's `GenerateAssistantResponse` body
/// for the model `model_id` (Kiro's dotted name, `claude-sonnet-4.5`).
///
/// Fails when the request cannot be carried: a tool name over 64
/// characters, an image given by URL or of a format Kiro does not read.
pub fn encode_request(
    request: &Request,
    model_id: &str,
    options: &EncodeOptions<'_>,
    dropped: &mut Vec<Dropped>,
) -> Result<Encoded, Invalid> {
    check_tool_names(&request.tools)?;
    drop_unsupported(request, dropped);
    let budget = thinking_budget(request, options, dropped);
    let mut writer = Writer {
        options,
        tools_on: !request.tools.is_empty(),
        dropped,
        used: Vec::new(),
        results_as_text: false,
        dropped_thinking: false,
    };
    let mut history = writer.turns(&request.messages)?;
    let (results_as_text, used) = (writer.results_as_text, writer.used);
    // A trailing assistant message is history; the model continues it.
    let continuation = history
        .last()
        .is_some_and(|turn| turn.role == Role::Assistant);
    let mut current = match history.pop() {
        Some(turn) if turn.role == Role::User => turn,
        Some(turn) => {
            history.push(turn);
            Turn::new(Role::User)
        }
        None => Turn::new(Role::User),
    };
    if history
        .first()
        .is_some_and(|turn| turn.role == Role::Assistant)
    {
        history.insert(0, Turn::new(Role::User));
    }
    let inject = budget.filter(|_| {
        let skip = results_as_text || continuation;
        if skip {
            dropped.push(Dropped(
                "thinking: not asked for when tool results go as text or an answer is continued"
                    .to_owned(),
            ));
        }
        !skip
    });
    let (tools, documentation) = tools_to_wire(&request.tools, options.max_description_chars);
    let mut sections = vec![documentation.as_str()];
    if inject.is_some() {
        sections.push(THINKING_SYSTEM);
    }
    if !used.is_empty() {
        sections.push(TRUNCATION_SYSTEM);
    }
    let system = system_text(request, &sections);
    if !system.is_empty() {
        history.first_mut().unwrap_or(&mut current).prepend(&system);
    }
    if let Some(budget) = inject {
        let mut prefix = thinking_prefix(budget);
        if current.text.is_empty() {
            prefix.truncate(prefix.trim_end().len());
        }
        current.text.insert_str(0, &prefix);
    }
    let body = body(request, model_id, options, &history, &current, &tools);
    Ok(Encoded { body, used })
}

/// The body around the messages.
fn body(
    request: &Request,
    model_id: &str,
    options: &EncodeOptions<'_>,
    history: &[Turn],
    current: &Turn,
    tools: &[Value],
) -> Vec<u8> {
    let mut state = Map::new();
    state.insert("chatTriggerType".to_owned(), "MANUAL".into());
    state.insert(
        "conversationId".to_owned(),
        conversation_id(&request.messages).into(),
    );
    state.insert("agentTaskType".to_owned(), "vibe".into());
    state.insert(
        "currentMessage".to_owned(),
        user_to_wire(current, model_id, options.origin, Some(tools)),
    );
    if !history.is_empty() {
        let history: Vec<Value> = history
            .iter()
            .map(|turn| match turn.role {
                Role::User => user_to_wire(turn, model_id, options.origin, None),
                Role::Assistant => assistant_to_wire(turn),
            })
            .collect();
        state.insert("history".to_owned(), history.into());
    }
    let mut body = Map::new();
    body.insert("conversationState".to_owned(), state.into());
    if let Some(arn) = options.profile_arn {
        body.insert("profileArn".to_owned(), arn.into());
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}
