//! Code Assist wraps every answer as `{"response":<GenerateContentResponse>,
//! "traceId":…}`: each `data:` line of a stream, and a whole body. This
//! takes the wrapper off as the answer arrives, so the rest of the gateway
//! reads plain Gemini (with `responseId` set from `traceId` when the answer
//! has none, as Gemini CLI does).

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use subgate_http::ChunkTransform;

pub(crate) struct Unwrap {
    stream: bool,
    pending: BytesMut,
}

impl Unwrap {
    pub(crate) fn new(stream: bool) -> Self {
        Self {
            stream,
            pending: BytesMut::new(),
        }
    }
}

/// The inner response of one wrapped JSON value; anything else as it was.
fn unwrap_json(text: &[u8]) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut outer)) = serde_json::from_slice::<Value>(text) else {
        return None;
    };
    let mut response = outer.remove("response")?;
    if let (Value::Object(inner), Some(Value::String(trace))) =
        (&mut response, outer.remove("traceId"))
    {
        inner
            .entry("responseId")
            .or_insert_with(|| Value::String(trace));
    }
    serde_json::to_vec(&response).ok()
}

/// One line of an event stream, unwrapped if it is a `data:` line.
fn line(line: &[u8], out: &mut BytesMut) {
    let Some(data) = line.strip_prefix(b"data:") else {
        out.extend_from_slice(line);
        return;
    };
    let body = data.trim_ascii();
    match unwrap_json(body) {
        Some(inner) => {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&inner);
            out.extend_from_slice(b"\n");
        }
        None => out.extend_from_slice(line),
    }
}

impl ChunkTransform for Unwrap {
    fn chunk(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        if !self.stream {
            return Bytes::new();
        }
        // Whole lines only: a `data:` line is one JSON value.
        let Some(last) = memchr::memrchr(b'\n', &self.pending) else {
            return Bytes::new();
        };
        let complete = self.pending.split_to(last + 1);
        let mut out = BytesMut::with_capacity(complete.len());
        for piece in complete.split_inclusive(|&byte| byte == b'\n') {
            line(piece, &mut out);
        }
        out.freeze()
    }

    fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending);
        if self.stream {
            let mut out = BytesMut::with_capacity(rest.len());
            line(&rest, &mut out);
            return out.freeze();
        }
        unwrap_json(&rest).map_or_else(|| rest.freeze(), Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn streams_and_bodies_lose_their_wrapper_wherever_chunks_split() {
        let stream = "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]}}]},\"traceId\":\"t1\"}\r\n\r\ndata: {\"response\":{\"candidates\":[],\"usageMetadata\":{\"totalTokenCount\":5}},\"traceId\":\"t1\"}\n\n";
        let expected = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]}}],\"responseId\":\"t1\"}\n\r\ndata: {\"candidates\":[],\"usageMetadata\":{\"totalTokenCount\":5},\"responseId\":\"t1\"}\n\n";
        for split in 0..stream.len() {
            let mut unwrap = Unwrap::new(true);
            let mut out = Vec::new();
            out.extend_from_slice(&unwrap.chunk(&stream.as_bytes()[..split]));
            out.extend_from_slice(&unwrap.chunk(&stream.as_bytes()[split..]));
            out.extend_from_slice(&unwrap.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "split at {split}"
            );
        }
        let mut whole = Unwrap::new(false);
        assert!(whole.chunk(br#"{"response":{"candidates":[]},"#).is_empty());
        assert!(whole.chunk(br#""traceId":"t2"}"#).is_empty());
        assert_eq!(
            whole.finish(),
            Bytes::from_static(br#"{"candidates":[],"responseId":"t2"}"#)
        );
    }
}
