//! Writing engine results as HTTP responses, errors in the client's dialect.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::Response;
use futures_util::StreamExt;
use http::HeaderValue;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use subgate_core::Dialect;
use subgate_engine::{GatewayError, Reply, ReplyBody};

/// A successful reply as a response.
pub(crate) fn reply(reply: Reply) -> Response {
    let body = match reply.body {
        ReplyBody::Full(bytes) => Body::from(bytes),
        ReplyBody::Stream(stream) => Body::from_stream(stream.map(Ok::<_, Infallible>)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

/// An error as a response in `dialect`.
pub(crate) fn error(dialect: Dialect, error: &GatewayError) -> Response {
    let mut response = Response::new(Body::from(error.body(dialect)));
    *response.status_mut() = error.status;
    let headers = response.headers_mut();
    headers.extend(error.headers.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(retry_after) = error.retry_after_header() {
        headers.insert(RETRY_AFTER, retry_after);
    }
    response
}

/// A JSON body with status 200.
pub(crate) fn json(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
