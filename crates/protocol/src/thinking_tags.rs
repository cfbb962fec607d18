//! Turns a reply's leading `<thinking>…</thinking>` text into thinking.
//!
//! Some upstreams (Kiro among them) have no native thinking, so the gateway
//! asks the model to wrap its reasoning in a tag and splits the streamed text
//! back apart here. The parser is fed text deltas as they arrive and moves
//! through three states:
//!
//! 1. Before any content, it holds the text while it may still become an
//!    opening tag. A tag counts only at the very start of the reply, after
//!    at most [`MAX_LEADING_WHITESPACE`] bytes of whitespace: `<thinking>`,
//!    `<think>`, `<reasoning>` or `<thought>`. Text that cannot start with
//!    one passes through unchanged, held back only while it could.
//! 2. Inside thinking, everything up to the matching closing tag is
//!    thinking. Whatever the thinking ends with that may begin the closing
//!    tag is held back, so a closing tag cut across deltas is never emitted
//!    as thinking. A reply that ends inside
//!    thinking flushes it as thinking.
//! 3. After the closing tag, leading whitespace is dropped and everything
//!    else is text; later tags are text too.
//!
//! The pieces depend only on the text, never on how it was cut into deltas.

/// The opening tags recognised, each with its closing tag.
const TAGS: [(&str, &str); 4] = [
    ("<thinking>", "</thinking>"),
    ("<think>", "</think>"),
    ("<reasoning>", "</reasoning>"),
    ("<thought>", "</thought>"),
];

/// The most leading whitespace, in bytes, that may stand before an opening
/// tag. It bounds what the parser holds before it knows.
pub const MAX_LEADING_WHITESPACE: usize = 64;

/// A run of the reply, either thinking or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text inside the leading thinking tags.
    Thinking(String),
    /// Reply text.
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No content yet: `held` may still become an opening tag.
    PreContent,
    /// Inside thinking: `held` is thinking that may begin a closing tag.
    InThinking {
        /// The closing tag that ends it.
        close: &'static str,
    },
    /// Past the closing tag, dropping whitespace before the text.
    AfterThinking,
    /// Everything is text.
    Streaming,
}

/// A streaming parser for leading thinking tags.
#[derive(Debug, Clone)]
pub struct ThinkingTags {
    state: State,
    /// Text received but not yet emitted.
    held: String,
    /// The reply opened with a thinking tag.
    opened: bool,
}

impl Default for ThinkingTags {
    fn default() -> Self {
        Self::new()
    }
}

impl ThinkingTags {
    /// A parser at the start of a reply.
    pub fn new() -> Self {
        Self {
            state: State::PreContent,
            held: String::new(),
            opened: false,
        }
    }

    /// Whether the reply opened with a thinking tag (known once the tag is
    /// complete).
    pub fn found_thinking(&self) -> bool {
        self.opened
    }

    /// Feeds one text delta and returns the pieces it completes.
    pub fn push(&mut self, delta: &str) -> Vec<Piece> {
        let mut pieces = Vec::new();
        self.feed(delta, &mut pieces);
        pieces
    }

    /// Ends the reply and returns what was still held.
    pub fn finish(&mut self) -> Vec<Piece> {
        let held = std::mem::take(&mut self.held);
        let piece = match self.state {
            State::InThinking { .. } => Piece::Thinking(held),
            State::PreContent | State::AfterThinking | State::Streaming => Piece::Text(held),
        };
        self.state = State::Streaming;
        let mut pieces = Vec::new();
        emit(&mut pieces, piece);
        pieces
    }

    fn feed(&mut self, delta: &str, pieces: &mut Vec<Piece>) {
        match self.state {
            State::PreContent => {
                self.held.push_str(delta);
                self.pre_content(pieces);
            }
            State::InThinking { close } => {
                self.held.push_str(delta);
                self.in_thinking(close, pieces);
            }
            State::AfterThinking => self.after_thinking(delta, pieces),
            State::Streaming => emit(pieces, Piece::Text(delta.to_owned())),
        }
    }

    /// Decides whether the held text opens with a tag, if it can yet.
    fn pre_content(&mut self, pieces: &mut Vec<Piece>) {
        let content = self.held.trim_start();
        let whitespace = self.held.len() - content.len();
        if whitespace <= MAX_LEADING_WHITESPACE {
            if let Some(&(open, close)) = TAGS.iter().find(|(open, _)| content.starts_with(open)) {
                let rest = content[open.len()..].to_owned();
                self.held = rest;
                self.state = State::InThinking { close };
                self.opened = true;
                self.in_thinking(close, pieces);
                return;
            }
            if content.is_empty() || TAGS.iter().any(|(open, _)| open.starts_with(content)) {
                return;
            }
        }
        self.state = State::Streaming;
        emit(pieces, Piece::Text(std::mem::take(&mut self.held)));
    }

    /// Emits held thinking up to the closing tag, or all that cannot be
    /// part of one.
    fn in_thinking(&mut self, close: &'static str, pieces: &mut Vec<Piece>) {
        if let Some(at) = self.held.find(close) {
            let rest = self.held.split_off(at);
            emit(pieces, Piece::Thinking(std::mem::take(&mut self.held)));
            self.state = State::AfterThinking;
            self.after_thinking(&rest[close.len()..], pieces);
            return;
        }
        // Hold back the longest end of the thinking that begins the closing
        // tag. It starts at an ASCII `<`, so on a char boundary.
        let held = self.held.len();
        let mut keep = (1..close.len())
            .rev()
            .find(|&len| self.held.ends_with(&close[..len]))
            .map_or(held, |len| held - len);
        while !self.held.is_char_boundary(keep) {
            keep -= 1;
        }
        let rest = self.held.split_off(keep);
        emit(
            pieces,
            Piece::Thinking(std::mem::replace(&mut self.held, rest)),
        );
    }

    /// Drops whitespace after the closing tag, then streams text.
    fn after_thinking(&mut self, delta: &str, pieces: &mut Vec<Piece>) {
        let text = delta.trim_start();
        if !text.is_empty() {
            self.state = State::Streaming;
            emit(pieces, Piece::Text(text.to_owned()));
        }
    }
}

/// Adds a piece unless it is empty.
fn emit(pieces: &mut Vec<Piece>, piece: Piece) {
    let empty = match &piece {
        Piece::Thinking(text) | Piece::Text(text) => text.is_empty(),
    };
    if !empty {
        pieces.push(piece);
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn thinking(text: &str) -> Piece {
        Piece::Thinking(text.to_owned())
    }

    fn text(text: &str) -> Piece {
        Piece::Text(text.to_owned())
    }

    /// Feeds `chunks` and returns every piece, with no empty ones.
    fn run(chunks: &[&str]) -> Vec<Piece> {
        let mut parser = ThinkingTags::new();
        let mut pieces = Vec::new();
        for chunk in chunks {
            pieces.extend(parser.push(chunk));
        }
        pieces.extend(parser.finish());
        for piece in &pieces {
            let (Piece::Thinking(part) | Piece::Text(part)) = piece;
            assert!(!part.is_empty(), "an empty piece from {chunks:?}");
        }
        pieces
    }

    /// Joins neighbouring pieces of the same kind.
    fn merge(pieces: Vec<Piece>) -> Vec<Piece> {
        let mut merged: Vec<Piece> = Vec::new();
        for piece in pieces {
            match (merged.last_mut(), piece) {
                (Some(Piece::Thinking(last)), Piece::Thinking(next))
                | (Some(Piece::Text(last)), Piece::Text(next)) => last.push_str(&next),
                (_, piece) => merged.push(piece),
            }
        }
        merged
    }

    fn whole(input: &str) -> Vec<Piece> {
        merge(run(&[input]))
    }

    #[test]
    fn every_tag_becomes_thinking() {
        for (open, close) in TAGS {
            let input = format!("{open}plan it{close}\n\nThe answer.");
            assert_eq!(
                whole(&input),
                vec![thinking("plan it"), text("The answer.")],
                "{open}"
            );
        }
    }

    #[test]
    fn only_the_matching_close_ends_thinking() {
        assert_eq!(
            whole("<think>a</thinking>b</think>c"),
            vec![thinking("a</thinking>b"), text("c")]
        );
    }

    #[test]
    fn text_without_a_tag_passes_through_unchanged() {
        for input in [
            "Hello there",
            "  indented answer",
            "<b>bold</b>",
            "<thinkin",
            "<thinkingx>",
            "<Thinking>no</Thinking>",
            "\n\n",
            "<",
            "",
        ] {
            let expected = if input.is_empty() {
                vec![]
            } else {
                vec![text(input)]
            };
            assert_eq!(whole(input), expected, "{input:?}");
        }
    }

    #[test]
    fn a_tag_later_in_the_text_is_text() {
        let input = "Sure. <thinking>not thinking</thinking> done";
        assert_eq!(whole(input), vec![text(input)]);
        let mut parser = ThinkingTags::new();
        assert_eq!(parser.push("Sure"), vec![text("Sure")]);
        assert_eq!(parser.push("<thinking>"), vec![text("<thinking>")]);
        assert!(!parser.found_thinking());
    }

    #[test]
    fn tags_after_the_thinking_are_text() {
        assert_eq!(
            whole("<thinking>a</thinking>b <thinking>c</thinking>"),
            vec![thinking("a"), text("b <thinking>c</thinking>")]
        );
    }

    #[test]
    fn unclosed_thinking_flushes_as_thinking() {
        assert_eq!(
            whole("<thinking>still going </thin"),
            vec![thinking("still going </thin")]
        );
        assert_eq!(whole("<think>"), vec![]);
        let mut parser = ThinkingTags::new();
        assert_eq!(parser.push("<thought>abc</thou"), vec![thinking("abc")]);
        assert!(parser.found_thinking());
        assert_eq!(parser.finish(), vec![thinking("</thou")]);
        assert!(parser.found_thinking());
        assert_eq!(parser.finish(), vec![]);
    }

    #[test]
    fn whitespace_around_the_tags() {
        assert_eq!(
            whole(" \n\t<thinking>\n step \n</thinking> \n\n Answer \n"),
            vec![thinking("\n step \n"), text("Answer \n")]
        );
        assert_eq!(whole("<thinking>x</thinking>   "), vec![thinking("x")]);
        let leading = " ".repeat(MAX_LEADING_WHITESPACE);
        assert_eq!(
            whole(&format!("{leading}<think>x</think>y")),
            vec![thinking("x"), text("y")]
        );
        let too_much = format!("{leading} <think>x</think>y");
        assert_eq!(whole(&too_much), vec![text(&too_much)]);
    }

    #[test]
    fn holds_back_only_what_may_be_a_tag() {
        let mut parser = ThinkingTags::new();
        assert_eq!(parser.push("  <rea"), vec![]);
        assert_eq!(parser.push("soning>"), vec![]);
        assert_eq!(parser.push("0123<"), vec![thinking("0123")]);
        assert_eq!(parser.push("/rea"), vec![]);
        assert_eq!(parser.push("d"), vec![thinking("</read")]);
        assert_eq!(parser.push("</reasoning"), vec![]);
        assert_eq!(parser.push(">\n"), vec![]);
        assert_eq!(parser.push("Hi"), vec![text("Hi")]);
        assert!(parser.found_thinking());
        assert_eq!(parser.push(" there"), vec![text(" there")]);
        assert_eq!(parser.finish(), vec![]);
        assert!(parser.found_thinking());
        let mut parser = ThinkingTags::new();
        assert_eq!(parser.push("<thinking"), vec![]);
        assert_eq!(parser.push("!"), vec![text("<thinking!")]);
        assert_eq!(parser.finish(), vec![]);
        assert!(!parser.found_thinking());
    }

    #[test]
    fn never_cuts_a_multibyte_character() {
        let mut parser = ThinkingTags::new();
        assert_eq!(parser.push("<think>é漢字</"), vec![thinking("é漢字")]);
        assert_eq!(parser.push("🦀</th"), vec![thinking("</🦀")]);
        assert_eq!(parser.push("ink>"), vec![]);
        assert_eq!(parser.push("ünïcødé"), vec![text("ünïcødé")]);
        assert_eq!(
            whole("\u{3000}<thought>🦀</thought>\u{3000}答え"),
            vec![thinking("🦀"), text("答え")]
        );
    }

    /// Every char boundary of `input`.
    fn boundaries(input: &str) -> Vec<usize> {
        (0..=input.len())
            .filter(|&at| input.is_char_boundary(at))
            .collect()
    }

    #[test]
    fn the_same_pieces_however_the_text_is_cut() {
        let samples = [
            "<thinking>a plan</thinking>\n\nthe answer",
            "  <think>é漢🦀</think> 答え <think>x</think>",
            "<reasoning>r</reason</reasoning>ok",
            "\n<thought>unclosed </though",
            "<thinkin> not a tag",
            "plain text < <thinking>",
            "<thinking></thinking>",
            " \u{3000} ",
        ];
        for input in samples {
            let expected = whole(input);
            let cuts = boundaries(input);
            for &first in &cuts {
                let two = [&input[..first], &input[first..]];
                assert_eq!(merge(run(&two)), expected, "{two:?}");
                for &second in cuts.iter().filter(|&&at| at >= first) {
                    let three = [&input[..first], &input[first..second], &input[second..]];
                    assert_eq!(merge(run(&three)), expected, "{three:?}");
                }
            }
            let chars: Vec<String> = input.chars().map(String::from).collect();
            let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
            assert_eq!(merge(run(&chars)), expected, "{input:?} char by char");
        }
    }
}
