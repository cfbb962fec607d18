//! AWS event-stream frames (`reference/protocols.md` §5.4), written by hand
//! on `crc32fast`, and the frames of one Kiro answer.

use bytes::Bytes;
use serde_json::{Value, json};

use super::super::common::Wire;
use super::super::{Output, Scenario};
use super::{Interrupt, KiroScript};

/// One event-stream message: the prelude (total length, headers length,
/// CRC-32 of those 8 bytes), the headers (every value a string, type 7),
/// the payload and the CRC-32 of everything before it. Big-endian.
pub(super) fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).expect("a header name under 256 bytes");
        let value_len = u16::try_from(value.len()).expect("a header value under 64 KiB");
        encoded.push(name_len);
        encoded.extend_from_slice(name.as_bytes());
        encoded.push(7);
        encoded.extend_from_slice(&value_len.to_be_bytes());
        encoded.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded.len() + payload.len() + 4;
    let mut message = Vec::with_capacity(total);
    let total = u32::try_from(total).expect("a frame under 4 GiB");
    let headers_len = u32::try_from(encoded.len()).expect("headers under 4 GiB");
    message.extend_from_slice(&total.to_be_bytes());
    message.extend_from_slice(&headers_len.to_be_bytes());
    let prelude_crc = crc32fast::hash(&message);
    message.extend_from_slice(&prelude_crc.to_be_bytes());
    message.extend_from_slice(&encoded);
    message.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&message);
    message.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(message)
}

/// An `event` message of `event_type` with a JSON payload, bare or nested
/// under the event type's key.
pub(super) fn event(event_type: &str, payload: &Value, wrapped: bool) -> Bytes {
    let payload = if wrapped {
        json!({ event_type: payload })
    } else {
        payload.clone()
    };
    frame(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An `exception` message: `:exception-type` and the exception's JSON shape
/// `{"message":…}`, as AWS serialises modelled stream exceptions.
pub(super) fn exception(kind: &str, message: &str) -> Bytes {
    frame(
        &[
            (":message-type", "exception"),
            (":exception-type", kind),
            (":content-type", "application/json"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

/// An `error` message: `:error-code` and `:error-message`, with the message
/// as the payload text too (what KRS reads).
fn error(code: &str, message: &str) -> Bytes {
    frame(
        &[
            (":message-type", "error"),
            (":error-code", code),
            (":error-message", message),
        ],
        message.as_bytes(),
    )
}

/// What ends an answer that is not interrupted.
pub(super) struct Tail {
    /// `meteringEvent.usage`.
    pub(super) credits: f64,
    /// `contextUsageEvent.contextUsagePercentage`.
    pub(super) context: f64,
    /// Leave out metering and context usage (and token usage).
    pub(super) truncated: bool,
}

/// The frames of an answer as they are built.
struct Frames<'a> {
    wires: Vec<Wire>,
    script: &'a KiroScript,
    repeated: bool,
}

impl Frames<'_> {
    fn push(&mut self, event_type: &str, payload: &Value, content: bool) {
        let bytes = event(event_type, payload, self.script.wrapped);
        self.wires.push(if content {
            Wire::content(bytes)
        } else {
            Wire::meta(bytes)
        });
    }

    /// A text chunk; the first one twice when the script says so.
    fn text(&mut self, piece: &str) {
        self.push("assistantResponseEvent", &json!({"content": piece}), true);
        if self.script.repeat_text_chunk && !self.repeated {
            self.repeated = true;
            self.push("assistantResponseEvent", &json!({"content": piece}), true);
        }
    }

    /// A tool use: the opening event, the input in fragments (the last with
    /// `stop`), and a re-emission when the script says so. `cut` sends half
    /// the input and no stop.
    fn tool(&mut self, id: &str, name: &str, arguments: &str, cut: bool) {
        let opening = json!({"toolUseId": id, "name": name, "input": ""});
        self.push("toolUseEvent", &opening, false);
        let chars: Vec<char> = arguments.chars().collect();
        if cut {
            let half: String = chars[..chars.len() / 2].iter().collect();
            let payload = json!({"toolUseId": id, "name": name, "input": half});
            self.push("toolUseEvent", &payload, false);
            return;
        }
        let pieces = input_fragments(&chars);
        let last = pieces.len() - 1;
        for (n, piece) in pieces.into_iter().enumerate() {
            let mut payload = json!({"toolUseId": id, "name": name, "input": piece});
            if n == last {
                payload["stop"] = true.into();
            }
            self.push("toolUseEvent", &payload, false);
        }
        if self.script.duplicate_tool_uses {
            let again = json!({"toolUseId": id, "name": name, "input": arguments, "stop": true});
            self.push("toolUseEvent", &again, false);
        }
    }
}

/// A tool's input in three fragments (two for two characters, one for
/// less), cut mid-token.
fn input_fragments(chars: &[char]) -> Vec<String> {
    let count = chars.len().clamp(1, 3);
    let size = chars.len().div_ceil(count).max(1);
    let mut pieces: Vec<String> = chars
        .chunks(size)
        .map(|piece| piece.iter().collect())
        .collect();
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

/// `<thinking>text</thinking>` and a blank line in four chunks, each tag
/// cut in the middle, as a model answering a tag-injected prompt streams it.
pub(super) fn thinking_pieces(text: &str) -> [String; 4] {
    let chars: Vec<char> = text.chars().collect();
    let middle = chars.len() / 2;
    let first: String = chars[..middle].iter().collect();
    let second: String = chars[middle..].iter().collect();
    [
        "<thin".to_owned(),
        format!("king>{first}"),
        format!("{second}</thi"),
        "nking>\n\n".to_owned(),
    ]
}

/// The interruption's frame.
fn interruption(interrupt: &Interrupt, wrapped: bool) -> Bytes {
    match interrupt {
        Interrupt::Exception { kind, message } => exception(kind, message),
        Interrupt::Error { code, message } => error(code, message),
        Interrupt::InvalidState { reason, message } => event(
            "invalidStateEvent",
            &json!({"reason": reason, "message": message}),
            wrapped,
        ),
    }
}

/// The frames of an answer with `outputs`, and whether it reports the
/// credits it used (a `meteringEvent`). Text comes in the scenario's pieces
/// as `assistantResponseEvent`s, reasoning as `reasoningContentEvent`s, tool
/// calls as `toolUseEvent` sequences; then `meteringEvent`,
/// `contextUsageEvent` and, when scripted, `metadataEvent`.
pub(super) fn answer(
    outputs: &[Output],
    scenario: &Scenario,
    script: &KiroScript,
    tail: &Tail,
) -> (Vec<Wire>, bool) {
    let mut frames = Frames {
        wires: Vec::new(),
        script,
        repeated: false,
    };
    if let Some(text) = &script.thinking {
        for piece in thinking_pieces(text) {
            frames.push("assistantResponseEvent", &json!({"content": piece}), true);
        }
    }
    let last_tool = outputs
        .iter()
        .rposition(|output| matches!(output, Output::ToolCall { .. }));
    let mut cut = false;
    for (n, output) in outputs.iter().enumerate() {
        match output {
            Output::Thinking { text, signature } => {
                let pieces = scenario.split(text);
                let last = pieces.len().saturating_sub(1);
                for (at, piece) in pieces.into_iter().enumerate() {
                    let mut payload = json!({"text": piece});
                    if at == last
                        && let Some(signature) = signature
                    {
                        payload["signature"] = signature.as_str().into();
                    }
                    frames.push("reasoningContentEvent", &payload, false);
                }
            }
            Output::Text(text) => {
                for piece in scenario.split(text) {
                    frames.text(&piece);
                }
            }
            Output::ToolCall {
                id,
                name,
                arguments,
            } => {
                cut = script.truncated_tool_input && Some(n) == last_tool;
                frames.tool(id, name, arguments, cut);
                if cut {
                    break;
                }
            }
        }
    }
    let mut wires = frames.wires;
    let answered = wires.len();
    let metered = !cut && !tail.truncated;
    if metered {
        push_tail(&mut wires, script, tail);
    }
    if let Some((after, interrupt)) = &script.interrupt {
        let at = wires
            .iter()
            .enumerate()
            .filter(|(_, wire)| wire.content)
            .nth(*after)
            .map_or(answered, |(at, _)| at);
        wires.truncate(at);
        wires.push(Wire::meta(interruption(interrupt, script.wrapped)));
        return (wires, false);
    }
    (wires, metered)
}

fn push_tail(wires: &mut Vec<Wire>, script: &KiroScript, tail: &Tail) {
    let wrapped = script.wrapped;
    let metering = json!({"unit": "credit", "unitPlural": "credits", "usage": tail.credits});
    wires.push(Wire::meta(event("meteringEvent", &metering, wrapped)));
    let context = json!({"contextUsagePercentage": tail.context});
    wires.push(Wire::meta(event("contextUsageEvent", &context, wrapped)));
    if let Some([uncached, cache_read, cache_write, output]) = script.token_usage {
        let usage = json!({"tokenUsage": {
            "uncachedInputTokens": uncached,
            "cacheReadInputTokens": cache_read,
            "cacheWriteInputTokens": cache_write,
            "outputTokens": output,
            "totalTokens": uncached + cache_read + cache_write + output,
        }});
        wires.push(Wire::meta(event("metadataEvent", &usage, wrapped)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §5.4's test vector: one `assistantResponseEvent` with `{"content":"ok"}`.
    const VECTOR: &str = "0000007c0000005c3bddcf780d3a6d6573736167652d747970650700056576656e740b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b22636f6e74656e74223a226f6b227d37972cb8";

    #[test]
    fn the_encoder_writes_the_reference_vector() {
        let bytes = event("assistantResponseEvent", &json!({"content": "ok"}), false);
        assert_eq!(super::super::super::oauth::hex(&bytes), VECTOR);
        assert_eq!(bytes.len(), 124);
        assert_eq!(&bytes[..4], &124_u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &92_u32.to_be_bytes());
        assert_eq!(&bytes[8..12], &0x3bdd_cf78_u32.to_be_bytes());
        assert_eq!(&bytes[120..], &0x3797_2cb8_u32.to_be_bytes());
    }

    #[test]
    fn tool_inputs_come_in_at_least_two_fragments() {
        let chars: Vec<char> = r#"{"path":"a.txt"}"#.chars().collect();
        let pieces = input_fragments(&chars);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), r#"{"path":"a.txt"}"#);
        assert_eq!(input_fragments(&['{', '}']), ["{", "}"]);
        assert_eq!(input_fragments(&[]), [""]);
    }

    #[test]
    fn thinking_tags_are_cut_mid_tag() {
        let pieces = thinking_pieces("plan it");
        assert_eq!(pieces.concat(), "<thinking>plan it</thinking>\n\n");
        assert!(pieces.iter().all(|piece| piece != "<thinking>"));
        assert_eq!(pieces[0], "<thin");
        assert!(pieces[2].ends_with("</thi"));
    }
}
