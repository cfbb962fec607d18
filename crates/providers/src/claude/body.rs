//! The body edits a Claude subscription needs (`reference/protocols.md`
//! §1.3): the Claude Code identity as the first system block, and tool
//! names that look like Claude Code's — renamed on the way up, restored in
//! every answer, streamed or whole.
//!
//! Claude Code's own tools (`Bash`, `Read`, …) and MCP tools (`mcp_…`) go
//! up as they are, so Claude Code itself passes through untouched. Any
//! other name becomes `mcp_` plus the name with its first letter upper-cased
//! (`read_file` → `mcp_Read_file`), the form observed to pass; the request
//! keeps the map to restore the names. Typed server tools (`web_search_…`,
//! `bash_…` with a `type`) are left alone.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};
use subgate_http::ChunkTransform;

/// The system block that identifies Claude Code.
pub(crate) const IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

/// Identity blocks Claude Code itself sends; a request already starting
/// with one keeps it.
const IDENTITIES: [&str; 2] = [
    IDENTITY,
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
];

/// Claude Code's built-in tool names.
const CLAUDE_CODE_TOOLS: [&str; 17] = [
    "Read",
    "Write",
    "Edit",
    "Bash",
    "Grep",
    "Glob",
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
    "KillShell",
    "NotebookEdit",
    "Skill",
    "Task",
    "TaskOutput",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
];

/// Names renamed on the way up, to restore on the way back: `(upstream,
/// client)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(Vec<(String, String)>);

impl ToolNames {
    /// The client's name for a tool the upstream named.
    pub fn client_name(&self, upstream: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(up, _)| up == upstream)
            .map(|(_, client)| client.as_str())
    }

    fn rename(&mut self, name: &str) -> Option<String> {
        if CLAUDE_CODE_TOOLS.contains(&name) || name.starts_with("mcp_") {
            return None;
        }
        let mut chars = name.chars();
        let first = chars.next()?;
        let upstream = format!("mcp_{}{}", first.to_uppercase(), chars.as_str());
        if self.client_name(&upstream).is_none() {
            self.0.push((upstream.clone(), name.to_owned()));
        }
        Some(upstream)
    }
}

/// Edits a Messages body for a subscription. Returns the body to send and
/// the renamed tools (`None` when nothing was renamed), or `None` when the
/// body is not a JSON object (it goes up as it is; the upstream explains).
pub(crate) fn prepare(body: &[u8]) -> Option<(Vec<u8>, Option<Arc<ToolNames>>)> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    add_identity(&mut request);
    let mut names = ToolNames::default();
    if let Some(Value::Array(tools)) = request.get_mut("tools") {
        for tool in tools {
            let typed = tool
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|kind| kind != "custom");
            if !typed {
                rename_field(tool, &mut names);
            }
        }
    }
    if let Some(choice) = request.get_mut("tool_choice")
        && choice.get("type").and_then(Value::as_str) == Some("tool")
    {
        rename_field(choice, &mut names);
    }
    if let Some(Value::Array(messages)) = request.get_mut("messages") {
        for message in messages {
            if let Some(Value::Array(blocks)) = message.get_mut("content") {
                for block in blocks {
                    if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                        rename_field(block, &mut names);
                    }
                }
            }
        }
    }
    let body = serde_json::to_vec(&request).ok()?;
    let names = (!names.0.is_empty()).then(|| Arc::new(names));
    Some((body, names))
}

fn rename_field(object: &mut Value, names: &mut ToolNames) {
    if let Some(Value::String(name)) = object.get_mut("name")
        && let Some(upstream) = names.rename(name)
    {
        *name = upstream;
    }
}

/// Puts the identity first in `system`, as its own block.
fn add_identity(request: &mut Map<String, Value>) {
    let identity = json!({"type": "text", "text": IDENTITY});
    let system = match request.remove("system") {
        None | Some(Value::Null) => vec![identity],
        Some(Value::String(text)) if text.is_empty() => vec![identity],
        Some(Value::String(text)) => vec![identity, json!({"type": "text", "text": text})],
        Some(Value::Array(mut blocks)) => {
            let first = blocks
                .first()
                .and_then(|block| block.get("text"))
                .and_then(Value::as_str);
            if !first.is_some_and(|text| IDENTITIES.contains(&text)) {
                blocks.insert(0, identity);
            }
            blocks
        }
        Some(other) => vec![identity, other],
    };
    request.insert("system".to_owned(), Value::Array(system));
}

/// Restores tool names in an answer: per event in a stream (only
/// `content_block_start` names a tool), or in the whole body.
pub(crate) struct Restore {
    names: Arc<ToolNames>,
    stream: bool,
    pending: BytesMut,
}

impl Restore {
    pub(crate) fn new(names: Arc<ToolNames>, stream: bool) -> Self {
        Self {
            names,
            stream,
            pending: BytesMut::new(),
        }
    }

    fn restore_block(&self, block: &mut Value) {
        if block.get("type").and_then(Value::as_str) == Some("tool_use")
            && let Some(Value::String(name)) = block.get_mut("name")
            && let Some(client) = self.names.client_name(name)
        {
            *name = client.to_owned();
        }
    }

    /// One SSE event, rewritten if it starts a renamed tool's block.
    fn event(&self, event: &[u8], out: &mut BytesMut) {
        let needs = memchr::memmem::find(event, b"\"tool_use\"").is_some();
        let rewritten = needs.then(|| self.rewrite_event(event)).flatten();
        match rewritten {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => out.extend_from_slice(event),
        }
    }

    fn rewrite_event(&self, event: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(event).ok()?;
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let Some(data) = line.strip_prefix("data:") else {
                out.push_str(line);
                continue;
            };
            let mut value: Value = serde_json::from_str(data.trim()).ok()?;
            if let Some(block) = value.get_mut("content_block") {
                self.restore_block(block);
            }
            out.push_str("data: ");
            out.push_str(&serde_json::to_string(&value).ok()?);
            out.push('\n');
        }
        Some(out)
    }
}

impl ChunkTransform for Restore {
    fn chunk(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        if !self.stream {
            return Bytes::new();
        }
        let mut out = BytesMut::with_capacity(self.pending.len());
        while let Some(end) = memchr::memmem::find(&self.pending, b"\n\n") {
            let event = self.pending.split_to(end + 2);
            self.event(&event, &mut out);
        }
        out.freeze()
    }

    fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending);
        if self.stream {
            let mut out = BytesMut::new();
            self.event(&rest, &mut out);
            return out.freeze();
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&rest) else {
            return rest.freeze();
        };
        if let Some(Value::Array(blocks)) = answer.get_mut("content") {
            for block in blocks {
                self.restore_block(block);
            }
        }
        serde_json::to_vec(&answer).map_or_else(|_| rest.freeze(), Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn identity_goes_first_and_foreign_tools_are_renamed_everywhere() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.",
            "tools": [
                {"name": "read_file", "input_schema": {}},
                {"name": "Bash", "input_schema": {}},
                {"name": "mcp__github__search", "input_schema": {}},
                {"type": "web_search_20250305", "name": "web_search"}
            ],
            "tool_choice": {"type": "tool", "name": "read_file"},
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read_file", "input": {}}]}
            ]
        });
        let (sent, names) = prepare(&serde_json::to_vec(&body).unwrap()).unwrap();
        let sent: Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(
            sent["system"],
            json!([{"type": "text", "text": IDENTITY}, {"type": "text", "text": "Be brief."}])
        );
        let tools: Vec<&str> = sent["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tools,
            ["mcp_Read_file", "Bash", "mcp__github__search", "web_search"]
        );
        assert_eq!(sent["tool_choice"]["name"], "mcp_Read_file");
        assert_eq!(sent["messages"][1]["content"][0]["name"], "mcp_Read_file");
        let names = names.unwrap();
        assert_eq!(names.client_name("mcp_Read_file"), Some("read_file"));
        assert_eq!(names.client_name("Bash"), None);
    }

    #[test]
    fn claude_code_passes_unchanged() {
        let body = json!({
            "system": [{"type": "text", "text": IDENTITY}, {"type": "text", "text": "rules"}],
            "tools": [{"name": "Read", "input_schema": {}}],
            "messages": []
        });
        let (sent, names) = prepare(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&sent).unwrap(), body);
        assert!(names.is_none());
        assert!(prepare(b"not json").is_none());
    }

    #[test]
    fn names_come_back_in_streams_split_anywhere_and_in_whole_answers() {
        let mut names = ToolNames::default();
        names.rename("read_file");
        let names = Arc::new(names);
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"mcp_Read_file\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
        );
        for split in [1, 7, 60, 150, stream.len()] {
            let mut restore = Restore::new(names.clone(), true);
            let mut out = Vec::new();
            for piece in stream.as_bytes().chunks(split) {
                out.extend_from_slice(&restore.chunk(piece));
            }
            out.extend_from_slice(&restore.finish());
            let out = String::from_utf8(out).unwrap();
            assert!(out.contains("\"name\":\"read_file\""), "{out}");
            assert!(!out.contains("mcp_Read_file"));
            assert!(
                out.starts_with("event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
            );
            assert_eq!(out.matches("\n\n").count(), 3);
        }
        let mut restore = Restore::new(names, false);
        let whole = br#"{"content":[{"type":"text","text":"mcp_Read_file"},{"type":"tool_use","id":"t","name":"mcp_Read_file","input":{}}]}"#;
        assert!(restore.chunk(whole).is_empty());
        let out: Value = serde_json::from_slice(&restore.finish()).unwrap();
        assert_eq!(out["content"][1]["name"], "read_file");
        assert_eq!(out["content"][0]["text"], "mcp_Read_file");
    }
}
