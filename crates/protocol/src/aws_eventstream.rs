//! The AWS binary event stream (`application/vnd.amazon.eventstream`), the
//! framing of Kiro's (CodeWhisperer's) responses: an incremental decoder and
//! an encoder.
//!
//! Every message is big-endian:
//!
//! ```text
//! [total_len u32][headers_len u32][prelude_crc u32 = CRC32 of the first 8 bytes]
//! [headers: repeated { name_len u8 | name | value_type u8 | value }]
//! [payload: total_len - headers_len - 16 bytes]
//! [message_crc u32 = CRC32 of every byte before it]
//! ```
//!
//! The CRC is the IEEE CRC-32 that zlib and gzip use. The decoder is fed the
//! body in whatever chunks the network delivers and yields the same messages
//! and errors however the bytes were cut. It checks both CRCs and every
//! length before it trusts it, so no input makes it panic or allocate more
//! than the bytes it was given.
//!
//! Written here on `crc32fast` rather than taken from `aws-smithy-eventstream`,
//! whose `aws-smithy-types` brings `http`, `time` and a SIMD base64 into this
//! pure crate and whose minimum Rust version moves close to ours.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message the decoder accepts unless told otherwise.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The prelude: total length, headers length and the prelude CRC.
const PRELUDE_LEN: usize = 12;
/// The prelude plus the message CRC: the smallest possible message.
const MIN_MESSAGE_LEN: usize = 16;
/// The message CRC at the end.
const CRC_LEN: usize = 4;

/// The header Kiro names the kind of message in: `event`, `error` or
/// `exception`.
pub const MESSAGE_TYPE: &str = ":message-type";
/// The header naming an event, such as `assistantResponseEvent`.
pub const EVENT_TYPE: &str = ":event-type";
/// The header naming the payload's media type.
pub const CONTENT_TYPE: &str = ":content-type";
/// The header an `error` message carries its code in.
pub const ERROR_CODE: &str = ":error-code";
/// The header an `exception` message carries its exception's name in.
pub const EXCEPTION_TYPE: &str = ":exception-type";

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prelude's CRC does not match its first eight bytes.
    #[error("an event-stream prelude is corrupt: CRC {actual:#010x}, expected {expected:#010x}")]
    PreludeCrc {
        /// The CRC the prelude carries.
        expected: u32,
        /// The CRC of the bytes received.
        actual: u32,
    },
    /// The total length is below the 16 bytes every message has.
    #[error("an event-stream message claims {total_len} bytes, fewer than the 16 of an empty one")]
    TooShort {
        /// The total length the prelude claims.
        total_len: u32,
    },
    /// The total length is over the decoder's limit.
    #[error("an event-stream message claims {total_len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The total length the prelude claims.
        total_len: u32,
        /// The limit in bytes.
        limit: usize,
    },
    /// The headers would not fit in the message.
    #[error(
        "an event-stream message claims {headers_len} bytes of headers but has room for {room}"
    )]
    HeadersTooLong {
        /// The headers length the prelude claims.
        headers_len: u32,
        /// The total length less the 16 bytes of prelude and CRC.
        room: u32,
    },
    /// The message's CRC does not match its bytes.
    #[error("an event-stream message is corrupt: CRC {actual:#010x}, expected {expected:#010x}")]
    MessageCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of the bytes received.
        actual: u32,
    },
    /// A header ends past the end of the headers.
    #[error("an event-stream header at byte {offset} of the headers is cut short")]
    TruncatedHeader {
        /// Where the header starts within the headers.
        offset: usize,
    },
    /// A header's value type is not one of 0 to 9.
    #[error("the event-stream header `{name}` has the unknown value type {value_type}")]
    UnknownHeaderType {
        /// The header's name.
        name: String,
        /// The value type byte.
        value_type: u8,
    },
    /// A header's name is not UTF-8.
    #[error("an event-stream header name at byte {offset} of the headers is not valid UTF-8")]
    InvalidHeaderName {
        /// Where the header starts within the headers.
        offset: usize,
    },
    /// A string header's value is not UTF-8.
    #[error("the event-stream header `{name}` has a string value that is not valid UTF-8")]
    InvalidHeaderString {
        /// The header's name.
        name: String,
    },
    /// The stream ended inside a message.
    #[error("the event stream ended inside a message: {pending} bytes left over")]
    Truncated {
        /// The bytes received of the unfinished message.
        pending: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A header name is longer than 255 bytes.
    #[error("an event-stream header name is {len} bytes, more than 255")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A string or bytes header value is longer than 65 535 bytes.
    #[error("the event-stream header `{name}` has a value of {len} bytes, more than 65535")]
    ValueTooLong {
        /// The header's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
    },
    /// The message would be longer than a `u32` can say.
    #[error("an event-stream message would be {len} bytes, more than its length field holds")]
    MessageTooLong {
        /// The message's length in bytes.
        len: usize,
    },
}

/// A header's value, by the type byte that precedes it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6: bytes behind a `u16` length.
    Bytes(Bytes),
    /// Type 7: UTF-8 behind a `u16` length.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: sixteen bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(value) => Some(value),
            _ => None,
        }
    }

    /// The type byte that precedes this value on the wire.
    pub fn type_byte(&self) -> u8 {
        match self {
            Self::Bool(true) => 0,
            Self::Bool(false) => 1,
            Self::Byte(_) => 2,
            Self::Int16(_) => 3,
            Self::Int32(_) => 4,
            Self::Int64(_) => 5,
            Self::Bytes(_) => 6,
            Self::String(_) => 7,
            Self::Timestamp(_) => 8,
            Self::Uuid(_) => 9,
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The headers in wire order; a name may repeat.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload, for Kiro usually JSON.
    pub payload: Bytes,
}

impl Message {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value)
    }

    /// The first header called `name`, when its value is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// The `:message-type` header: `event`, `error` or `exception`.
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(MESSAGE_TYPE)
    }

    /// The `:event-type` header, such as `assistantResponseEvent`.
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(EVENT_TYPE)
    }

    /// The `:content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.header_str(CONTENT_TYPE)
    }

    /// The `:error-code` header of an `error` message.
    pub fn error_code(&self) -> Option<&str> {
        self.header_str(ERROR_CODE)
    }

    /// The `:exception-type` header of an `exception` message.
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(EXCEPTION_TYPE)
    }

    /// Writes the message as one frame.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            encode_header(name, value, &mut headers)?;
        }
        let len = MIN_MESSAGE_LEN + headers.len() + self.payload.len();
        let too_long = || EncodeError::MessageTooLong { len };
        let total_len = u32::try_from(len).map_err(|_| too_long())?;
        let headers_len = u32::try_from(headers.len()).map_err(|_| too_long())?;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(&headers);
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        Ok(out)
    }
}

fn encode_header(name: &str, value: &HeaderValue, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let name_len =
        u8::try_from(name.len()).map_err(|_| EncodeError::NameTooLong { len: name.len() })?;
    out.push(name_len);
    out.extend_from_slice(name.as_bytes());
    out.push(value.type_byte());
    let with_len = |bytes: &[u8], out: &mut Vec<u8>| {
        let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::ValueTooLong {
            name: name.to_owned(),
            len: bytes.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    };
    match value {
        HeaderValue::Bool(_) => {}
        HeaderValue::Byte(value) => out.extend_from_slice(&value.to_be_bytes()),
        HeaderValue::Int16(value) => out.extend_from_slice(&value.to_be_bytes()),
        HeaderValue::Int32(value) => out.extend_from_slice(&value.to_be_bytes()),
        HeaderValue::Int64(value) | HeaderValue::Timestamp(value) => {
            out.extend_from_slice(&value.to_be_bytes());
        }
        HeaderValue::Bytes(value) => with_len(value, out)?,
        HeaderValue::String(value) => with_len(value.as_bytes(), out)?,
        HeaderValue::Uuid(value) => out.extend_from_slice(value),
    }
    Ok(())
}

/// An incremental event-stream decoder.
///
/// Push bytes as they arrive, then call [`Decoder::next_message`] until it
/// returns `Ok(None)`. After an error the stream cannot be framed again: the
/// decoder drops what it holds and whatever is pushed later, and returns
/// `Ok(None)` from then on, so a loop that logs and carries on still ends.
#[derive(Debug)]
pub struct Decoder {
    /// Bytes of messages not yet decoded.
    buf: BytesMut,
    /// The lengths of the message at the front of `buf`, once its prelude
    /// has been checked.
    lengths: Option<Lengths>,
    max_message_bytes: usize,
    failed: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl Decoder {
    /// A decoder that rejects messages larger than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            lengths: None,
            max_message_bytes,
            failed: false,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Whether an error has ended the stream.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// How many bytes wait for the rest of their message.
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// Decodes the next complete message from the bytes pushed so far.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if self.failed {
            return Ok(None);
        }
        match self.decode() {
            Ok(message) => Ok(message),
            Err(error) => {
                self.failed = true;
                self.buf = BytesMut::new();
                self.lengths = None;
                Err(error)
            }
        }
    }

    /// Ends the stream: an error when it stopped inside a message.
    ///
    /// Call it once [`Decoder::next_message`] has returned `Ok(None)`; a
    /// decoder that already failed reports nothing more.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                pending: self.buf.len(),
            })
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, FrameError> {
        let lengths = match self.lengths {
            Some(lengths) => lengths,
            None => {
                let Some(prelude) = self.buf.first_chunk::<PRELUDE_LEN>() else {
                    return Ok(None);
                };
                let lengths = check_prelude(prelude, self.max_message_bytes)?;
                self.lengths = Some(lengths);
                // Checked against the limit, so the reservation is bounded.
                self.buf
                    .reserve(lengths.total.saturating_sub(self.buf.len()));
                lengths
            }
        };
        if self.buf.len() < lengths.total {
            return Ok(None);
        }
        self.lengths = None;
        let frame = self.buf.split_to(lengths.total).freeze();
        decode_frame(frame, lengths).map(Some)
    }
}

/// The lengths of a message whose prelude has been checked.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    total: usize,
    headers: usize,
}

/// Checks a prelude and returns the message's lengths.
fn check_prelude(prelude: &[u8; PRELUDE_LEN], max: usize) -> Result<Lengths, FrameError> {
    let [t0, t1, t2, t3, h0, h1, h2, h3, c0, c1, c2, c3] = *prelude;
    let expected = u32::from_be_bytes([c0, c1, c2, c3]);
    let actual = crc32fast::hash(&prelude[..8]);
    if actual != expected {
        return Err(FrameError::PreludeCrc { expected, actual });
    }
    let total_len = u32::from_be_bytes([t0, t1, t2, t3]);
    let headers_len = u32::from_be_bytes([h0, h1, h2, h3]);
    let total = usize::try_from(total_len).unwrap_or(usize::MAX);
    if total < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort { total_len });
    }
    if total > max {
        return Err(FrameError::TooLarge {
            total_len,
            limit: max,
        });
    }
    let room = total_len.saturating_sub(16);
    if headers_len > room {
        return Err(FrameError::HeadersTooLong { headers_len, room });
    }
    let headers = usize::try_from(headers_len).unwrap_or(usize::MAX);
    Ok(Lengths { total, headers })
}

/// Decodes one whole message whose prelude has been checked: `frame` is
/// `lengths.total` bytes long.
fn decode_frame(mut frame: Bytes, lengths: Lengths) -> Result<Message, FrameError> {
    let Some(&crc) = frame.last_chunk::<CRC_LEN>() else {
        return Err(FrameError::Truncated {
            pending: frame.len(),
        });
    };
    let body_len = frame.len() - CRC_LEN;
    let expected = u32::from_be_bytes(crc);
    let actual = crc32fast::hash(&frame[..body_len]);
    if actual != expected {
        return Err(FrameError::MessageCrc { expected, actual });
    }
    frame.truncate(body_len);
    // The prelude's checks keep both within the frame; `min` only guards.
    frame.advance(PRELUDE_LEN.min(frame.len()));
    let headers = frame.split_to(lengths.headers.min(frame.len()));
    Ok(Message {
        headers: decode_headers(&headers)?,
        payload: frame,
    })
}

/// Reads headers one after another from their bytes.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
    /// Where the header being read starts.
    start: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], FrameError> {
        let end = self.at.saturating_add(len);
        let Some(bytes) = self.bytes.get(self.at..end) else {
            return Err(FrameError::TruncatedHeader { offset: self.start });
        };
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let offset = self.start;
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| FrameError::TruncatedHeader { offset })
    }

    fn byte(&mut self) -> Result<u8, FrameError> {
        self.array::<1>().map(|[byte]| byte)
    }

    /// Bytes behind a `u16` length, shared with the frame.
    fn with_len(&mut self) -> Result<Bytes, FrameError> {
        let len = usize::from(u16::from_be_bytes(self.array()?));
        let start = self.at;
        self.take(len)?;
        Ok(self.bytes.slice(start..self.at))
    }
}

fn decode_headers(bytes: &Bytes) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut reader = Reader {
        bytes,
        at: 0,
        start: 0,
    };
    let mut headers = Vec::new();
    while reader.at < bytes.len() {
        reader.start = reader.at;
        let offset = reader.start;
        let name_len = usize::from(reader.byte()?);
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(|_| FrameError::InvalidHeaderName { offset })?
            .to_owned();
        let value = match reader.byte()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(reader.array()?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(reader.array()?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(reader.array()?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(reader.array()?)),
            6 => HeaderValue::Bytes(reader.with_len()?),
            7 => match String::from_utf8(reader.with_len()?.to_vec()) {
                Ok(value) => HeaderValue::String(value),
                Err(_) => return Err(FrameError::InvalidHeaderString { name }),
            },
            8 => HeaderValue::Timestamp(i64::from_be_bytes(reader.array()?)),
            9 => HeaderValue::Uuid(reader.array()?),
            value_type => return Err(FrameError::UnknownHeaderType { name, value_type }),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    /// protocols.md §5.4: one `assistantResponseEvent` with payload
    /// `{"content":"ok"}`, CRCs computed with zlib.
    const VECTOR: &str = "0000007c0000005c3bddcf780d3a6d6573736167652d747970650700056576656e740b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b22636f6e74656e74223a226f6b227d37972cb8";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    fn vector() -> Vec<u8> {
        hex(VECTOR)
    }

    fn string(value: &str) -> HeaderValue {
        HeaderValue::String(value.to_owned())
    }

    fn vector_message() -> Message {
        Message {
            headers: vec![
                (":message-type".to_owned(), string("event")),
                (":event-type".to_owned(), string("assistantResponseEvent")),
                (":content-type".to_owned(), string("application/json")),
            ],
            payload: Bytes::from_static(br#"{"content":"ok"}"#),
        }
    }

    /// Frames raw header bytes and a payload with correct lengths and CRCs,
    /// independently of [`Message::encode`].
    fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = u32::try_from(16 + headers.len() + payload.len()).unwrap();
        let headers_len = u32::try_from(headers.len()).unwrap();
        prelude_frame(total, headers_len, &[headers, payload].concat())
    }

    /// A frame with the given lengths, a correct prelude CRC, `body` and a
    /// correct message CRC.
    fn prelude_frame(total: u32, headers_len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    /// Decodes `chunks` in order: the messages, then the first error or the
    /// outcome of `finish`.
    fn decode_with(
        mut decoder: Decoder,
        chunks: &[&[u8]],
    ) -> (Vec<Message>, Result<(), FrameError>) {
        let mut messages = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            loop {
                match decoder.next_message() {
                    Ok(Some(message)) => messages.push(message),
                    Ok(None) => break,
                    Err(error) => return (messages, Err(error)),
                }
            }
        }
        let end = decoder.finish();
        (messages, end)
    }

    fn decode(chunks: &[&[u8]]) -> (Vec<Message>, Result<(), FrameError>) {
        decode_with(Decoder::default(), chunks)
    }

    fn error_of(bytes: &[u8]) -> FrameError {
        let (messages, end) = decode(&[bytes]);
        assert_eq!(messages, vec![]);
        end.unwrap_err()
    }

    #[test]
    fn decodes_the_reference_vector_whole() {
        let bytes = vector();
        assert_eq!(bytes.len(), 124);
        let (messages, end) = decode(&[&bytes]);
        end.unwrap();
        assert_eq!(messages, vec![vector_message()]);
        let message = &messages[0];
        assert_eq!(message.message_type(), Some("event"));
        assert_eq!(message.event_type(), Some("assistantResponseEvent"));
        assert_eq!(message.content_type(), Some("application/json"));
        assert_eq!(
            message.header_str(":content-type"),
            Some("application/json")
        );
        assert_eq!(message.error_code(), None);
        assert_eq!(message.exception_type(), None);
        assert_eq!(message.header_str(":missing"), None);
    }

    #[test]
    fn decodes_the_reference_vector_one_byte_at_a_time() {
        let bytes = vector();
        let mut decoder = Decoder::default();
        let mut messages = Vec::new();
        for (at, byte) in bytes.iter().enumerate() {
            decoder.push(std::slice::from_ref(byte));
            if let Some(message) = decoder.next_message().unwrap() {
                assert_eq!(at, bytes.len() - 1, "a message before its last byte");
                messages.push(message);
            }
            assert_eq!(decoder.next_message().unwrap(), None);
        }
        decoder.finish().unwrap();
        assert_eq!(messages, vec![vector_message()]);
    }

    #[test]
    fn encodes_the_reference_vector() {
        assert_eq!(vector_message().encode().unwrap(), vector());
    }

    #[test]
    fn decodes_every_header_type() {
        let mut headers = Vec::new();
        let mut header = |name: &str, value_type: u8, value: &[u8]| {
            headers.push(u8::try_from(name.len()).unwrap());
            headers.extend_from_slice(name.as_bytes());
            headers.push(value_type);
            headers.extend_from_slice(value);
        };
        header("t", 0, &[]);
        header("f", 1, &[]);
        header("byte", 2, &[0xfe]);
        header("i16", 3, &[0x80, 0x01]);
        header("i32", 4, &[0xff, 0xff, 0xff, 0xfd]);
        header("i64", 5, &[0x01, 0, 0, 0, 0, 0, 0, 0x02]);
        header("bytes", 6, &[0, 3, 0xff, 0x00, 0x7f]);
        header("str", 7, &[0, 4, b'h', 0xc3, 0xa9, b'!']);
        header("ts", 8, &1_700_000_000_123_i64.to_be_bytes());
        header("id", 9, &(1..=16).collect::<Vec<u8>>());
        header("", 7, &[0, 0]);
        let bytes = frame(&headers, b"payload");
        let (messages, end) = decode(&[&bytes]);
        end.unwrap();
        let uuid: [u8; 16] = core::array::from_fn(|at| u8::try_from(at + 1).unwrap());
        let expected = Message {
            headers: vec![
                ("t".to_owned(), HeaderValue::Bool(true)),
                ("f".to_owned(), HeaderValue::Bool(false)),
                ("byte".to_owned(), HeaderValue::Byte(-2)),
                ("i16".to_owned(), HeaderValue::Int16(-32767)),
                ("i32".to_owned(), HeaderValue::Int32(-3)),
                ("i64".to_owned(), HeaderValue::Int64((1 << 56) + 2)),
                (
                    "bytes".to_owned(),
                    HeaderValue::Bytes(Bytes::from_static(&[0xff, 0x00, 0x7f])),
                ),
                ("str".to_owned(), string("hé!")),
                ("ts".to_owned(), HeaderValue::Timestamp(1_700_000_000_123)),
                ("id".to_owned(), HeaderValue::Uuid(uuid)),
                (String::new(), string("")),
            ],
            payload: Bytes::from_static(b"payload"),
        };
        assert_eq!(messages, vec![expected.clone()]);
        // Every type byte survives the encoder too.
        assert_eq!(expected.encode().unwrap(), bytes);
        assert_eq!(messages[0].header_str("i32"), None);
        assert_eq!(messages[0].header("byte"), Some(&HeaderValue::Byte(-2)));
    }

    #[test]
    fn decodes_an_empty_message() {
        let bytes = frame(&[], &[]);
        assert_eq!(bytes.len(), 16);
        let (messages, end) = decode(&[&bytes]);
        end.unwrap();
        assert_eq!(messages, vec![Message::default()]);
        assert_eq!(Message::default().encode().unwrap(), bytes);
    }

    #[test]
    fn rejects_a_corrupt_prelude() {
        let mut bytes = vector();
        bytes[3] = 0x7d;
        let actual = crc32fast::hash(&bytes[..8]);
        assert_eq!(
            error_of(&bytes),
            FrameError::PreludeCrc {
                expected: 0x3bdd_cf78,
                actual,
            }
        );
        // The prelude is judged as soon as it is complete.
        let mut decoder = Decoder::default();
        decoder.push(&bytes[..11]);
        assert_eq!(decoder.next_message(), Ok(None));
        decoder.push(&bytes[11..12]);
        assert!(matches!(
            decoder.next_message(),
            Err(FrameError::PreludeCrc { .. })
        ));
    }

    #[test]
    fn rejects_a_corrupt_message() {
        let mut bytes = vector();
        let last = bytes.len() - 5;
        bytes[last] = b'}' ^ 1;
        let actual = crc32fast::hash(&bytes[..bytes.len() - 4]);
        assert_ne!(actual, 0x3797_2cb8);
        assert_eq!(
            error_of(&bytes),
            FrameError::MessageCrc {
                expected: 0x3797_2cb8,
                actual,
            }
        );
    }

    #[test]
    fn rejects_lengths_out_of_range() {
        for total in [0, 1, 12, 15] {
            let bytes = prelude_frame(total, 0, &[]);
            assert_eq!(error_of(&bytes), FrameError::TooShort { total_len: total });
        }
        let bytes = prelude_frame(u32::MAX, 0, &[]);
        assert_eq!(
            error_of(&bytes),
            FrameError::TooLarge {
                total_len: u32::MAX,
                limit: DEFAULT_MAX_MESSAGE_BYTES,
            }
        );
        let (messages, end) = decode_with(Decoder::new(123), &[&vector()]);
        assert_eq!(messages, vec![]);
        assert_eq!(
            end,
            Err(FrameError::TooLarge {
                total_len: 124,
                limit: 123,
            })
        );
        let (messages, end) = decode_with(Decoder::new(124), &[&vector()]);
        end.unwrap();
        assert_eq!(messages.len(), 1);
        let bytes = prelude_frame(20, 5, &[0; 4]);
        assert_eq!(
            error_of(&bytes),
            FrameError::HeadersTooLong {
                headers_len: 5,
                room: 4,
            }
        );
        let bytes = prelude_frame(16, u32::MAX, &[]);
        assert_eq!(
            error_of(&bytes),
            FrameError::HeadersTooLong {
                headers_len: u32::MAX,
                room: 0,
            }
        );
    }

    #[test]
    fn a_huge_length_reserves_nothing() {
        let mut decoder = Decoder::default();
        decoder.push(&prelude_frame(u32::MAX, 0, &[])[..12]);
        assert!(decoder.next_message().is_err());
        assert_eq!(decoder.pending_len(), 0);
        let mut decoder = Decoder::default();
        let valid = u32::try_from(DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        decoder.push(&prelude_frame(valid, 0, &[])[..12]);
        assert_eq!(decoder.next_message(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated { pending: 12 }));
    }

    #[test]
    fn rejects_bad_headers() {
        let cases: [(&[u8], FrameError); 7] = [
            (
                &[1, b'x', 10],
                FrameError::UnknownHeaderType {
                    name: "x".to_owned(),
                    value_type: 10,
                },
            ),
            (&[5, b'a', b'b'], FrameError::TruncatedHeader { offset: 0 }),
            (&[1, b'x'], FrameError::TruncatedHeader { offset: 0 }),
            (
                &[1, b'x', 0, 1, b'y', 4, 0, 0, 0],
                FrameError::TruncatedHeader { offset: 3 },
            ),
            (
                &[1, b'x', 7, 0, 3, b'a', b'b'],
                FrameError::TruncatedHeader { offset: 0 },
            ),
            (&[1, 0xff, 0], FrameError::InvalidHeaderName { offset: 0 }),
            (
                &[1, b's', 7, 0, 2, 0xc3, 0x28],
                FrameError::InvalidHeaderString {
                    name: "s".to_owned(),
                },
            ),
        ];
        for (headers, error) in cases {
            assert_eq!(error_of(&frame(headers, b"{}")), error, "{headers:?}");
        }
    }

    #[test]
    fn decodes_two_messages_in_one_chunk() {
        let second = Message {
            headers: vec![
                (":message-type".to_owned(), string("exception")),
                (":exception-type".to_owned(), string("ThrottlingException")),
            ],
            payload: Bytes::from_static(b"slow down"),
        };
        let bytes = [vector(), second.encode().unwrap()].concat();
        let (messages, end) = decode(&[&bytes]);
        end.unwrap();
        assert_eq!(messages, vec![vector_message(), second.clone()]);
        assert_eq!(messages[1].message_type(), Some("exception"));
        assert_eq!(messages[1].exception_type(), Some("ThrottlingException"));
    }

    #[test]
    fn the_same_messages_however_the_stream_is_cut() {
        let error = Message {
            headers: vec![
                (":message-type".to_owned(), string("error")),
                (":error-code".to_owned(), string("InternalError")),
            ],
            payload: Bytes::from_static(b"boom"),
        };
        let bytes = [vector(), frame(&[], &[]), error.encode().unwrap()].concat();
        let (whole, end) = decode(&[&bytes]);
        end.unwrap();
        assert_eq!(whole.len(), 3);
        for first in 0..=bytes.len() {
            let (cut, end) = decode(&[&bytes[..first], &bytes[first..]]);
            end.unwrap();
            assert_eq!(cut, whole, "cut at {first}");
            for second in (first..=bytes.len()).step_by(7) {
                let chunks = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                let (cut, end) = decode(&chunks);
                end.unwrap();
                assert_eq!(cut, whole, "cut at {first} and {second}");
            }
        }
    }

    #[test]
    fn a_cut_stream_is_truncated() {
        let bytes = vector();
        for len in 1..bytes.len() {
            let (messages, end) = decode(&[&bytes[..len]]);
            assert_eq!(messages, vec![]);
            assert_eq!(end, Err(FrameError::Truncated { pending: len }));
        }
        let (messages, end) = decode(&[&bytes, &bytes[..3]]);
        assert_eq!(messages.len(), 1);
        assert_eq!(end, Err(FrameError::Truncated { pending: 3 }));
    }

    #[test]
    fn a_failed_decoder_stays_quiet() {
        let mut bytes = vector();
        bytes[0] = 1;
        let mut decoder = Decoder::default();
        decoder.push(&bytes);
        assert!(decoder.next_message().is_err());
        assert!(decoder.is_failed());
        decoder.push(&vector());
        for _ in 0..3 {
            assert_eq!(decoder.next_message(), Ok(None));
        }
        assert_eq!(decoder.pending_len(), 0);
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn refuses_to_encode_what_cannot_be_framed() {
        let long_name = Message {
            headers: vec![("n".repeat(256), HeaderValue::Bool(true))],
            payload: Bytes::new(),
        };
        assert_eq!(
            long_name.encode(),
            Err(EncodeError::NameTooLong { len: 256 })
        );
        let long_value = Message {
            headers: vec![("v".to_owned(), string(&"x".repeat(65_536)))],
            payload: Bytes::new(),
        };
        assert_eq!(
            long_value.encode(),
            Err(EncodeError::ValueTooLong {
                name: "v".to_owned(),
                len: 65_536,
            })
        );
    }

    #[test]
    fn errors_read_clearly() {
        assert_eq!(
            FrameError::PreludeCrc {
                expected: 0x3bdd_cf78,
                actual: 1,
            }
            .to_string(),
            "an event-stream prelude is corrupt: CRC 0x00000001, expected 0x3bddcf78"
        );
        assert_eq!(
            FrameError::Truncated { pending: 3 }.to_string(),
            "the event stream ended inside a message: 3 bytes left over"
        );
    }
}
