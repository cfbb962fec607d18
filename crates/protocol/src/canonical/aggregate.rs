//! Events → a whole [`Response`]: how a client that did not ask for a
//! stream is served from a stream (and how tests compare streams).

use std::borrow::Cow;

use subgate_core::Usage;

use super::{
    Block, BlockKind, Delta, Event, Response, StopReason, StreamError, Text, Thinking, ToolUse,
};

/// Collects a stream's events into the answer they describe.
#[derive(Debug, Default)]
pub struct Aggregator {
    id: Option<String>,
    model: Option<String>,
    blocks: Vec<Block>,
    stop_reason: Option<StopReason>,
    stop_sequence: Option<String>,
    usage: Option<Usage>,
    ended: bool,
    error: Option<StreamError>,
}

impl Aggregator {
    /// Takes one event.
    pub fn push(&mut self, event: Event<'_>) {
        match event {
            Event::Start { id, model } => {
                self.id = id.map(Cow::into_owned);
                self.model = model.map(Cow::into_owned);
            }
            Event::BlockStart { kind, .. } => self.blocks.push(match kind {
                BlockKind::Text => Block::Text(Text::default()),
                BlockKind::Thinking => Block::Thinking(Thinking::default()),
                BlockKind::RedactedThinking(signature) => Block::RedactedThinking(signature),
                BlockKind::ToolUse { id, name } => Block::ToolUse(ToolUse {
                    id: id.into_owned(),
                    name: name.into_owned(),
                    input: String::new(),
                }),
            }),
            Event::Delta { delta, .. } => match (self.blocks.last_mut(), delta) {
                (Some(Block::Text(text)), Delta::Text(more)) => text.text.push_str(&more),
                (Some(Block::Thinking(thinking)), Delta::Thinking(more)) => {
                    thinking.text.push_str(&more);
                }
                (Some(Block::Thinking(thinking)), Delta::Signature(signature)) => {
                    thinking.signature = Some(signature);
                }
                (Some(Block::ToolUse(tool)), Delta::ToolInput(more)) => tool.input.push_str(&more),
                // A delta that does not fit its block is a decoder bug; it
                // is ignored rather than corrupting another block.
                _ => {}
            },
            Event::BlockStop { .. } => {}
            Event::Stop { reason, sequence } => {
                self.stop_reason = Some(reason);
                self.stop_sequence = sequence.map(Cow::into_owned);
            }
            Event::Usage(usage) => self.usage = Some(usage),
            Event::End => self.ended = true,
            Event::Error(error) => self.error = Some(error),
        }
    }

    /// The answer, or the error that broke the stream. A stream that ended
    /// without `End` is an error too.
    pub fn finish(self) -> Result<Response, StreamError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if !self.ended {
            return Err(StreamError {
                kind: crate::error::ErrorKind::Upstream,
                message: "the upstream stream ended before it was complete".to_owned(),
            });
        }
        let stop_reason = self.stop_reason.unwrap_or_else(|| {
            if self
                .blocks
                .iter()
                .any(|block| matches!(block, Block::ToolUse(_)))
            {
                StopReason::ToolUse
            } else {
                StopReason::EndTurn
            }
        });
        Ok(Response {
            id: self.id,
            model: self.model,
            content: self.blocks,
            stop_reason,
            stop_sequence: self.stop_sequence,
            usage: self.usage,
        })
    }
}
