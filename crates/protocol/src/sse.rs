//! Server-sent events: an incremental decoder that keeps every event's raw
//! bytes, and an encoder.
//!
//! The decoder follows the WHATWG event-stream rules (LF, CR and CRLF line
//! ends, `:` comments, one optional space after the colon, `data` lines
//! joined by LF, a blank line dispatches) and is fed chunk by chunk, so the
//! events it yields do not depend on where the network split the bytes.
//!
//! It also keeps the raw bytes of every complete event block until the caller
//! takes them. A pass-through forwards those bytes untouched, usually one
//! slice per upstream chunk, and can still drop a single event when it must.

use bytes::{Buf, Bytes, BytesMut};

/// The largest event block the decoder accepts unless told otherwise.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Why a stream of events could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the limit without ending.
    #[error("an event in the stream is larger than {limit} bytes")]
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A line of the stream is not valid UTF-8.
    #[error("the event stream is not valid UTF-8")]
    InvalidUtf8,
}

/// One dispatched event. It borrows the decoder until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, if the block had one.
    pub event: Option<&'a str>,
    /// The `data:` lines joined with LF.
    pub data: &'a str,
    /// Where this event's raw bytes start among the bytes not yet taken.
    pub raw_start: usize,
    /// How many raw bytes the event block spans, its blank line included.
    pub raw_len: usize,
}

/// An incremental event-stream decoder.
#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent parser flags; an enum per flag would only rename them"
)]
pub struct SseDecoder {
    /// Bytes not yet taken: complete event blocks, then a partial one.
    buf: BytesMut,
    /// End of the complete event blocks in `buf`.
    decoded_end: usize,
    /// Start of the line being read.
    line_start: usize,
    /// How far `buf` has been searched for line ends.
    scanned: usize,
    /// The previous line ended with CR at the end of the data seen so far; an
    /// LF right after it belongs to the same line end.
    skip_lf: bool,
    /// The previous call dispatched an event; its fields are cleared first.
    dispatched: bool,
    data: String,
    has_data: bool,
    event: String,
    has_event: bool,
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder that rejects event blocks larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            decoded_end: 0,
            line_start: 0,
            scanned: 0,
            skip_lf: false,
            dispatched: false,
            data: String::new(),
            has_data: false,
            event: String::new(),
            has_event: false,
            max_event_bytes,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Decodes the next complete event from the bytes pushed so far.
    ///
    /// Blocks without data (comments, keep-alives) are not returned, but
    /// their raw bytes stay with the decoded bytes, so a pass-through still
    /// forwards them.
    pub fn next_event(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        if self.dispatched {
            self.reset_fields();
        }
        loop {
            if self.skip_lf {
                let Some(&next) = self.buf.get(self.scanned) else {
                    return Ok(None);
                };
                self.skip_lf = false;
                if next == b'\n' {
                    self.scanned += 1;
                    self.line_start = self.scanned;
                    if self.line_start - 1 == self.decoded_end {
                        // The LF closes the blank line that ended the block.
                        self.decoded_end = self.line_start;
                    }
                }
            }
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() - self.decoded_end > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                return Ok(None);
            };
            let line_end = self.scanned + offset;
            let mut next_line = line_end + 1;
            if self.buf[line_end] == b'\r' {
                match self.buf.get(next_line) {
                    Some(b'\n') => next_line += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let line_start = self.line_start;
            self.scanned = next_line;
            self.line_start = next_line;
            if next_line - self.decoded_end > self.max_event_bytes {
                return Err(SseError::EventTooLarge {
                    limit: self.max_event_bytes,
                });
            }
            if line_start == line_end {
                // A blank line ends the block.
                let raw_start = self.decoded_end;
                self.decoded_end = next_line;
                if self.has_data {
                    self.dispatched = true;
                    return Ok(Some(SseEvent {
                        event: self.has_event.then_some(self.event.as_str()),
                        data: &self.data,
                        raw_start,
                        raw_len: next_line - raw_start,
                    }));
                }
                self.reset_fields();
                continue;
            }
            let line = std::str::from_utf8(&self.buf[line_start..line_end])
                .map_err(|_| SseError::InvalidUtf8)?;
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                "event" => {
                    self.event.clear();
                    self.event.push_str(value);
                    self.has_event = true;
                }
                // Comments (empty field name), `id`, `retry` and unknown
                // fields carry nothing a gateway acts on; their bytes still
                // travel with the raw block.
                _ => {}
            }
        }
    }

    /// Number of raw bytes of complete blocks not yet taken.
    pub fn decoded_len(&self) -> usize {
        self.decoded_end
    }

    /// Number of bytes that belong to a block not yet complete.
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.decoded_end
    }

    /// Takes the first `len` raw bytes of the complete blocks.
    ///
    /// `len` is clamped to [`Self::decoded_len`].
    pub fn take(&mut self, len: usize) -> Bytes {
        let len = len.min(self.decoded_end);
        self.shift(len);
        self.buf.split_to(len).freeze()
    }

    /// Takes every raw byte of the complete blocks.
    pub fn take_decoded(&mut self) -> Bytes {
        self.take(self.decoded_end)
    }

    /// Drops the first `len` raw bytes of the complete blocks.
    pub fn discard(&mut self, len: usize) {
        let len = len.min(self.decoded_end);
        self.shift(len);
        self.buf.advance(len);
    }

    fn shift(&mut self, len: usize) {
        self.decoded_end -= len;
        self.line_start -= len;
        self.scanned -= len;
    }

    fn reset_fields(&mut self) {
        self.dispatched = false;
        self.data.clear();
        self.has_data = false;
        self.event.clear();
        self.has_event = false;
    }
}

/// Appends one event to `out` in wire form: an optional `event:` line, one
/// `data:` line per line of `data`, and the blank line that dispatches it.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    use super::*;

    /// An event as (event, data, raw bytes).
    type Decoded = (Option<String>, String, Vec<u8>);

    /// Decodes `chunks` in order and returns each event plus every raw byte
    /// taken, in order.
    fn decode(chunks: &[&[u8]]) -> (Vec<Decoded>, Vec<u8>) {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        let mut raw = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event().unwrap() {
                let (start, len) = (event.raw_start, event.raw_len);
                let fields = (event.event.map(str::to_owned), event.data.to_owned());
                raw.extend_from_slice(&decoder.take(start));
                let own = decoder.take(len);
                raw.extend_from_slice(&own);
                events.push((fields.0, fields.1, own.to_vec()));
            }
            raw.extend_from_slice(&decoder.take_decoded());
        }
        (events, raw)
    }

    #[test]
    fn decodes_fields_comments_and_multiline_data() {
        let input = b": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: one\ndata:two\nid: 7\nretry: 10\n\n";
        let (events, raw) = decode(&[input]);
        assert_eq!(
            events,
            vec![
                (
                    Some("message_start".to_owned()),
                    "{\"a\":1}".to_owned(),
                    b"event: message_start\ndata: {\"a\":1}\n\n".to_vec()
                ),
                (
                    None,
                    "one\ntwo".to_owned(),
                    b"data: one\ndata:two\nid: 7\nretry: 10\n\n".to_vec()
                ),
            ]
        );
        assert_eq!(raw, input.to_vec());
    }

    #[test]
    fn accepts_crlf_and_cr_line_ends() {
        let (events, _) = decode(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]);
        let data: Vec<_> = events.into_iter().map(|(_, data, _)| data).collect();
        assert_eq!(data, vec!["a", "b", "c"]);
    }

    #[test]
    fn empty_data_line_still_dispatches() {
        let (events, _) = decode(&[b"data:\n\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, "");
    }

    #[test]
    fn incomplete_block_is_held_back() {
        let mut decoder = SseDecoder::default();
        decoder.push(b"data: [DONE]\n\ndata: {\"cut");
        assert_eq!(decoder.next_event().unwrap().unwrap().data, "[DONE]");
        assert_eq!(decoder.next_event().unwrap(), None);
        assert_eq!(
            decoder.take_decoded(),
            Bytes::from_static(b"data: [DONE]\n\n")
        );
        assert_eq!(decoder.pending_len(), 11);
    }

    #[test]
    fn rejects_oversized_events_and_invalid_utf8() {
        let mut decoder = SseDecoder::new(16);
        decoder.push(b"data: 0123456789abcdef");
        assert_eq!(
            decoder.next_event(),
            Err(SseError::EventTooLarge { limit: 16 })
        );

        let mut decoder = SseDecoder::default();
        decoder.push(b"data: \xff\xfe\n\n");
        assert_eq!(decoder.next_event(), Err(SseError::InvalidUtf8));
    }

    #[test]
    fn utf8_split_across_chunks_decodes_whole() {
        let text = "data: héllo 世界\n\n".as_bytes();
        let (events, _) = decode(&[&text[..8], &text[8..13], &text[13..]]);
        assert_eq!(events[0].1, "héllo 世界");
    }

    #[test]
    fn discard_drops_one_event_and_keeps_the_rest() {
        let mut decoder = SseDecoder::default();
        decoder.push(b"data: a\n\ndata: b\n\ndata: c\n\n");
        let mut out = Vec::new();
        while let Some(event) = decoder.next_event().unwrap() {
            if event.data == "b" {
                let (start, len) = (event.raw_start, event.raw_len);
                out.extend_from_slice(&decoder.take(start));
                decoder.discard(len);
            }
        }
        out.extend_from_slice(&decoder.take_decoded());
        assert_eq!(out, b"data: a\n\ndata: c\n\n".to_vec());
    }

    #[test]
    fn encoder_output_decodes_back() {
        let mut out = Vec::new();
        write_event(&mut out, Some("ping"), "{}");
        write_event(&mut out, None, "line one\nline two");
        let (events, raw) = decode(&[&out]);
        assert_eq!(raw, out);
        assert_eq!(events[0].0.as_deref(), Some("ping"));
        assert_eq!(events[1].1, "line one\nline two");
    }

    fn stream_text() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            Just(b"data: {\"k\":\"v\"}".to_vec()),
            Just(b"data: h\xc3\xa9llo \xe4\xb8\x96".to_vec()),
            Just(b"event: delta".to_vec()),
            Just(b": comment".to_vec()),
            Just(b"data:".to_vec()),
            Just(b"id: 3".to_vec()),
            Just(Vec::new()),
        ];
        let end = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec())
        ];
        proptest::collection::vec((line, end), 0..40).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(mut line, end)| {
                    line.extend_from_slice(&end);
                    line
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_change_the_events(
            text in stream_text(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(text.len() + 1)).collect();
            positions.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut from = 0;
            for position in positions {
                chunks.push(&text[from..position]);
                from = position;
            }
            chunks.push(&text[from..]);

            let (whole_events, whole_raw) = decode(&[&text]);
            let (split_events, split_raw) = decode(&chunks);
            let whole: Vec<_> = whole_events.into_iter().map(|(e, d, _)| (e, d)).collect();
            let split: Vec<_> = split_events.into_iter().map(|(e, d, _)| (e, d)).collect();
            prop_assert_eq!(whole, split);
            // Raw bytes of complete blocks come out unchanged and in order.
            prop_assert!(text.starts_with(&split_raw));
            prop_assert_eq!(whole_raw.len(), split_raw.len());
        }
    }
}
