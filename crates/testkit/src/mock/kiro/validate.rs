//! What `generateAssistantResponse` refuses in a body: the payload quirks
//! KG works around (`reference/protocols.md` §5.3), each of which the real
//! service answers with 400 "Improperly formed request.".

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// Why a body is refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// 400 "Improperly formed request.", and what is wrong (the mock says
    /// it in its `x-mock-refusal` header).
    Malformed(String),
    /// 400 `INVALID_MODEL_ID`.
    InvalidModel,
}

type Checked<T = ()> = Result<T, Fault>;

fn malformed(why: impl Into<String>) -> Fault {
    Fault::Malformed(why.into())
}

/// The image formats Kiro takes.
const IMAGE_FORMATS: [&str; 4] = ["png", "jpeg", "gif", "webp"];

/// The longest tool name Kiro takes.
const MAX_TOOL_NAME: usize = 64;

/// Checks a request body, in the order the module's documentation gives.
/// `social` says the bearer came from a social login, which must name its
/// profile ARN.
pub(super) fn validate(body: &Value, social: bool, models: &[String]) -> Checked {
    let arn = body["profileArn"].as_str().unwrap_or_default();
    if social && !arn.starts_with("arn:aws:codewhisperer:") {
        return Err(malformed("profileArn is required for a social login"));
    }
    let conversation = &body["conversationState"];
    let current = &conversation["currentMessage"]["userInputMessage"];
    if !current.is_object() {
        return Err(malformed(
            "conversationState.currentMessage.userInputMessage is missing",
        ));
    }
    user_message(current, "currentMessage")?;
    let Some(model) = current["modelId"].as_str() else {
        return Err(malformed("currentMessage: modelId is missing"));
    };
    if !models.iter().any(|known| known == model) {
        return Err(Fault::InvalidModel);
    }
    let history = match conversation.get("history") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(history)) => history.as_slice(),
        Some(_) => return Err(malformed("history is not a list")),
    };
    let (uses, mut results) = walk_history(history)?;
    let context = &current["userInputMessageContext"];
    let tools = tools(context)?;
    results |= tool_results(context, &uses, "currentMessage")?;
    if results && tools == 0 {
        return Err(malformed(
            "toolResults need tools in currentMessage.userInputMessageContext",
        ));
    }
    Ok(())
}

/// Checks the history's alternation and messages; returns the tool-use ids
/// of its assistant messages and whether any user message holds results.
fn walk_history(history: &[Value]) -> Checked<(Vec<String>, bool)> {
    let mut uses = Vec::new();
    let mut results = false;
    for (n, entry) in history.iter().enumerate() {
        let from_user = n % 2 == 0;
        let (key, other) = if from_user {
            ("userInputMessage", "assistantResponseMessage")
        } else {
            ("assistantResponseMessage", "userInputMessage")
        };
        let message = &entry[key];
        if !message.is_object() || entry.get(other).is_some() {
            return Err(malformed(format!(
                "history[{n}] must be an {key}: history starts with the user and alternates"
            )));
        }
        let place = format!("history[{n}]");
        if from_user {
            user_message(message, &place)?;
            results |= tool_results(&message["userInputMessageContext"], &uses, &place)?;
        } else {
            assistant_message(message, &mut uses, &place)?;
        }
    }
    if history.len() % 2 == 1 {
        return Err(malformed(
            "history must end with an assistant message: the current message is the user's",
        ));
    }
    Ok((uses, results))
}

fn content(message: &Value, place: &str) -> Checked {
    match message["content"].as_str() {
        Some(text) if !text.is_empty() => Ok(()),
        _ => Err(malformed(format!("{place}: content is empty"))),
    }
}

fn user_message(message: &Value, place: &str) -> Checked {
    content(message, place)?;
    match message.get("images") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(images)) => images.iter().try_for_each(|image| {
            let format = image["format"].as_str().unwrap_or_default();
            if !IMAGE_FORMATS.contains(&format) {
                return Err(malformed(format!(
                    "{place}: image format {format:?} is not one of {IMAGE_FORMATS:?}"
                )));
            }
            let bytes = image["source"]["bytes"].as_str().unwrap_or_default();
            if bytes.is_empty() || STANDARD.decode(bytes).is_err() {
                return Err(malformed(format!(
                    "{place}: image source.bytes is not base64"
                )));
            }
            Ok(())
        }),
        Some(_) => Err(malformed(format!("{place}: images is not a list"))),
    }
}

fn assistant_message(message: &Value, uses: &mut Vec<String>, place: &str) -> Checked {
    content(message, place)?;
    let list = match message.get("toolUses") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(malformed(format!("{place}: toolUses is not a list"))),
    };
    for tool_use in list {
        let id = tool_use["toolUseId"].as_str().unwrap_or_default();
        let name = tool_use["name"].as_str().unwrap_or_default();
        if id.is_empty() || name.is_empty() || !tool_use["input"].is_object() {
            return Err(malformed(format!(
                "{place}: a toolUse needs toolUseId, name and an input object"
            )));
        }
        uses.push(id.to_owned());
    }
    Ok(())
}

/// Checks a message context's `toolResults` against the tool uses so far;
/// returns whether there are any.
fn tool_results(context: &Value, uses: &[String], place: &str) -> Checked<bool> {
    let results = match context.get("toolResults") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(results)) => results,
        Some(_) => return Err(malformed(format!("{place}: toolResults is not a list"))),
    };
    for result in results {
        let id = result["toolUseId"].as_str().unwrap_or_default();
        if !uses.iter().any(|used| used == id) {
            return Err(malformed(format!(
                "{place}: toolResult {id:?} answers no toolUse of an earlier assistant message"
            )));
        }
        if !matches!(
            result.get("status").map(Value::as_str),
            None | Some(Some("success" | "error"))
        ) {
            return Err(malformed(format!(
                "{place}: toolResult status must be success or error"
            )));
        }
        let blocks = result["content"].as_array().map_or(&[][..], Vec::as_slice);
        let filled = |block: &Value| match block.get("text") {
            Some(text) => text.as_str().is_some_and(|text| !text.is_empty()),
            None => block.get("json").is_some(),
        };
        if blocks.is_empty() || !blocks.iter().all(filled) {
            return Err(malformed(format!(
                "{place}: toolResult {id:?} has empty content"
            )));
        }
    }
    Ok(!results.is_empty())
}

/// Checks the current message's tools; returns how many there are.
fn tools(context: &Value) -> Checked<usize> {
    let tools = match context.get("tools") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(malformed("tools is not a list")),
    };
    for tool in tools {
        let spec = &tool["toolSpecification"];
        let name = spec["name"].as_str().unwrap_or_default();
        if name.is_empty() || name.chars().count() > MAX_TOOL_NAME {
            return Err(malformed(format!(
                "tool name {name:?} must be 1 to {MAX_TOOL_NAME} characters"
            )));
        }
        if spec["description"].as_str().is_none_or(str::is_empty) {
            return Err(malformed(format!("tool {name}: description is empty")));
        }
        let schema = &spec["inputSchema"]["json"];
        if !schema.is_object() {
            return Err(malformed(format!(
                "tool {name}: inputSchema.json is not an object"
            )));
        }
        if let Some(why) = schema_fault(schema) {
            return Err(malformed(format!("tool {name}: {why}")));
        }
    }
    Ok(tools.len())
}

/// What Kiro rejects anywhere in a JSON Schema.
fn schema_fault(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(object) => {
            if object.contains_key("additionalProperties") {
                return Some("inputSchema contains additionalProperties");
            }
            if object
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                return Some("inputSchema has an empty required list");
            }
            object.values().find_map(schema_fault)
        }
        Value::Array(items) => items.iter().find_map(schema_fault),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn models() -> Vec<String> {
        vec!["claude-sonnet-4.5".to_owned()]
    }

    fn body(history: &Value, context: &Value) -> Value {
        json!({"conversationState": {
            "chatTriggerType": "MANUAL", "conversationId": "c-1",
            "currentMessage": {"userInputMessage": {
                "content": "go on", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR",
                "userInputMessageContext": context,
            }},
            "history": history,
        }})
    }

    #[test]
    fn a_tool_round_trip_passes() {
        let history = json!([
            {"userInputMessage": {"content": "read a.txt", "modelId": "claude-sonnet-4.5"}},
            {"assistantResponseMessage": {"content": "(empty placeholder)",
                "toolUses": [{"toolUseId": "tooluse_1", "name": "read", "input": {"path": "a.txt"}}]}},
        ]);
        let context = json!({
            "tools": [{"toolSpecification": {"name": "read", "description": "Reads a file",
                "inputSchema": {"json": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}}],
            "toolResults": [{"toolUseId": "tooluse_1", "status": "success", "content": [{"text": "body"}]}],
        });
        assert_eq!(
            validate(&body(&history, &context), false, &models()),
            Ok(())
        );
    }

    #[test]
    fn nested_schema_faults_are_found() {
        let nested = json!({"type": "object", "properties": {"a": {"type": "object", "additionalProperties": false}}});
        assert!(schema_fault(&nested).is_some());
        let empty = json!({"anyOf": [{"type": "object", "required": []}]});
        assert!(schema_fault(&empty).is_some());
        let fine = json!({"type": "object", "required": ["a"]});
        assert_eq!(schema_fault(&fine), None);
    }
}
