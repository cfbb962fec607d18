//! A client of each dialect, for the matrix: it writes requests and reads
//! answers with the protocol crate's codecs (the SDK suite checks the same
//! answers with the official SDKs).

use bytes::Bytes;
use reqwest::header::HeaderMap;
use subgate_core::Dialect;
use subgate_protocol::canonical::{Aggregator, Dropped, Request, Response, StreamError};
use subgate_protocol::codec::Target;
use subgate_protocol::dispatch::{self, RequestLine};
use subgate_protocol::openai_chat::ChatUpstream;
use subgate_testkit::{TestGateway, http_client};

/// Where a client of `dialect` sends a request for `model`.
pub(crate) fn path(dialect: Dialect, model: &str, stream: bool) -> String {
    match dialect {
        Dialect::OpenAiChat => "/v1/chat/completions".to_owned(),
        Dialect::OpenAiResponses => "/v1/responses".to_owned(),
        Dialect::Anthropic => "/v1/messages".to_owned(),
        Dialect::Gemini if stream => {
            format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
        }
        Dialect::Gemini => format!("/v1beta/models/{model}:generateContent"),
    }
}

/// The body a client of `dialect` sends for `request`.
pub(crate) fn body(dialect: Dialect, request: &Request) -> Vec<u8> {
    // Signatures the client got from the gateway go back to it as they came.
    let target = Target {
        provider: "gateway",
        model: &request.model,
    };
    dispatch::encode_request(
        dialect,
        request,
        target,
        ChatUpstream::default(),
        &mut Vec::new(),
    )
}

/// What came back.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Bytes,
}

/// Sends `request` as a client of `dialect` would.
pub(crate) async fn send(gateway: &TestGateway, dialect: Dialect, request: &Request) -> Answer {
    let response = http_client()
        .post(gateway.url(&path(dialect, &request.model, request.stream)))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body(dialect, request))
        .send()
        .await
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.unwrap(),
    }
}

/// Reads an answer as a client of `dialect`; a stream that ends in an
/// error event reads as that error.
pub(crate) fn read(dialect: Dialect, stream: bool, bytes: &[u8]) -> Result<Response, StreamError> {
    if !stream {
        let mut dropped: Vec<Dropped> = Vec::new();
        return dispatch::decode_response(dialect, bytes, "gateway", &mut dropped).map_err(
            |error| StreamError {
                kind: subgate_protocol::error::ErrorKind::Upstream,
                message: format!("{error}: {}", String::from_utf8_lossy(bytes)),
            },
        );
    }
    let mut decoder = dispatch::stream_decoder(dialect, "gateway", 16 << 20);
    let mut aggregator = Aggregator::default();
    let fed = decoder.feed(bytes, &mut |event| aggregator.push(event));
    let finished = decoder.finish(&mut |event| aggregator.push(event));
    if let Err(error) = fed.and(finished) {
        // The error event itself ends the stream; a decoder may still have
        // collected it.
        aggregator.finish()?;
        return Err(StreamError {
            kind: subgate_protocol::error::ErrorKind::Upstream,
            message: error.0,
        });
    }
    aggregator.finish()
}

/// A request line for reading a body a mock received in `dialect`.
pub(crate) fn line(model: &str) -> RequestLine<'_> {
    RequestLine {
        model: Some(model),
        stream: false,
        sse: true,
    }
}
