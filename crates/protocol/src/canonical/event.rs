//! Stream events: the most structured of the four dialects' streams.
//!
//! Every upstream stream decoder emits, and every client stream encoder
//! takes, this sequence:
//!
//! ```text
//! Start
//! ( BlockStart{i} Delta{i}* BlockStop{i} )*   blocks numbered 0, 1, … in order, never interleaved
//! Stop                                        why it ended, after the last block
//! End                                         the answer is complete
//! ```
//!
//! `Usage` may come anywhere before `End` and carries running totals (the
//! latest wins). `Error` ends a stream that broke; nothing follows it.

use std::borrow::Cow;

use subgate_core::Usage;

use super::{Signature, StopReason};
use crate::error::ErrorKind;

/// One step of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The answer begins.
    Start {
        /// The upstream's id for it.
        id: Option<Cow<'a, str>>,
        /// The model that answers, as the upstream names it.
        model: Option<Cow<'a, str>>,
    },
    /// A content block begins.
    BlockStart {
        /// Its position among the answer's blocks.
        index: usize,
        /// What it holds.
        kind: BlockKind<'a>,
    },
    /// More of a block's content.
    Delta {
        /// The block.
        index: usize,
        /// The content.
        delta: Delta<'a>,
    },
    /// A block is complete.
    BlockStop {
        /// The block.
        index: usize,
    },
    /// Why generation stopped.
    Stop {
        /// The reason.
        reason: StopReason,
        /// The stop sequence, when that was the reason.
        sequence: Option<Cow<'a, str>>,
    },
    /// Token counts so far.
    Usage(Usage),
    /// The answer is complete.
    End,
    /// The stream broke.
    Error(StreamError),
}

/// What a block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind<'a> {
    /// Text.
    Text,
    /// Reasoning.
    Thinking,
    /// Encrypted reasoning, whole.
    RedactedThinking(Signature),
    /// A tool call.
    ToolUse {
        /// The call's id.
        id: Cow<'a, str>,
        /// The tool's name.
        name: Cow<'a, str>,
    },
}

/// A piece of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta<'a> {
    /// Text.
    Text(Cow<'a, str>),
    /// Reasoning text.
    Thinking(Cow<'a, str>),
    /// The reasoning block's signature (usually right before its stop).
    Signature(Signature),
    /// A fragment of a tool call's JSON arguments.
    ToolInput(Cow<'a, str>),
}

/// A failure in the middle of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// For a human.
    pub message: String,
}

impl Event<'_> {
    /// The same event owning its text, to outlive the buffer it borrows.
    pub fn into_owned(self) -> Event<'static> {
        fn own(text: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(text.into_owned())
        }
        match self {
            Event::Start { id, model } => Event::Start {
                id: id.map(own),
                model: model.map(own),
            },
            Event::BlockStart { index, kind } => Event::BlockStart {
                index,
                kind: match kind {
                    BlockKind::Text => BlockKind::Text,
                    BlockKind::Thinking => BlockKind::Thinking,
                    BlockKind::RedactedThinking(signature) => {
                        BlockKind::RedactedThinking(signature)
                    }
                    BlockKind::ToolUse { id, name } => BlockKind::ToolUse {
                        id: own(id),
                        name: own(name),
                    },
                },
            },
            Event::Delta { index, delta } => Event::Delta {
                index,
                delta: match delta {
                    Delta::Text(text) => Delta::Text(own(text)),
                    Delta::Thinking(text) => Delta::Thinking(own(text)),
                    Delta::Signature(signature) => Delta::Signature(signature),
                    Delta::ToolInput(text) => Delta::ToolInput(own(text)),
                },
            },
            Event::BlockStop { index } => Event::BlockStop { index },
            Event::Stop { reason, sequence } => Event::Stop {
                reason,
                sequence: sequence.map(own),
            },
            Event::Usage(usage) => Event::Usage(usage),
            Event::End => Event::End,
            Event::Error(error) => Event::Error(error),
        }
    }
}
