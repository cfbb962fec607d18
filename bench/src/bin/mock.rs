//! A lean upstream for the benchmark: OpenAI Chat Completions and Anthropic
//! Messages, whole and streamed, and the model lists. Unlike the testkit's
//! mock it records nothing, so it stays small under millions of requests.
//!
//!     bench-mock --port 18431 [--chunks 20]
//!
//! `--chunks` is the answer's length in content chunks (words of a whole
//! answer) when the request carries no `[bench chunks=N]` marker; see
//! `Directive` for the marker (chunks, gap between chunks, hold after the
//! first one).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use subgate_bench::{Directive, Flags};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep, sleep_until};

/// The answer's words, cycled; the first content chunk is always `Hello`
/// so that clients can spot the first token in any API's shape.
const WORDS: [&str; 8] = [
    " the", " quick", " brown", " fox", " jumps", " over", " lazy", " dogs",
];
const CREATED: u64 = 1_741_570_283;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("bench-mock: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    let port: u16 = flags.get("port", 0)?;
    let chunks: u32 = flags.get("chunks", 20)?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|error| format!("binding port {port}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("bench-mock listening on http://{address}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Real upstreams answer without Nagle's delay; so does this one.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, chunks));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The fields of a request body the mock looks at.
#[derive(Deserialize)]
struct Asked {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

async fn answer(request: Request<Incoming>, chunks: u32) -> Result<Response<MockBody>, Infallible> {
    let api = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => return Ok(whole(StatusCode::OK, "text/plain", "ok".into())),
        (&Method::GET, "/v1/models") => {
            let anthropic = request.headers().contains_key("anthropic-version");
            return Ok(whole(
                StatusCode::OK,
                "application/json",
                models(anthropic).into(),
            ));
        }
        (&Method::POST, "/v1/chat/completions") => Api::OpenAi,
        (&Method::POST, "/v1/messages") => Api::Anthropic,
        _ => return Ok(error(StatusCode::NOT_FOUND, "no such route")),
    };
    let Ok(body) = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return Ok(error(StatusCode::BAD_REQUEST, "the body could not be read"));
    };
    let Ok(asked) = serde_json::from_slice::<Asked>(&body) else {
        return Ok(error(StatusCode::BAD_REQUEST, "the body is not JSON"));
    };
    let directive = Directive::find(&body);
    let plan = Plan {
        api,
        model: serde_json::to_string(&asked.model).unwrap_or_else(|_| "\"\"".into()),
        chunks: directive.chunks.unwrap_or(chunks).max(1),
        input_tokens: body.len() as u64 / 4,
        include_usage: asked
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
    };
    if asked.stream != Some(true) {
        return Ok(whole(
            StatusCode::OK,
            "application/json",
            plan.whole().into(),
        ));
    }
    let mut response = Response::new(MockBody::Stream(Box::new(Stream {
        plan,
        step: 0,
        gap: directive.gap,
        hold: directive.hold,
        timer: None,
    })));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-request-id", HeaderValue::from_static("req_bench"));
    Ok(response)
}

fn whole(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<MockBody> {
    let mut response = Response::new(MockBody::Whole(Some(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-request-id", HeaderValue::from_static("req_bench"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    let body = format!(
        r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":null}}}}"#
    );
    whole(status, "application/json", body.into())
}

fn models(anthropic: bool) -> String {
    let ids = ["bench-gpt", "bench-claude", "bench-gpt-hold"];
    let items: Vec<String> = ids
        .iter()
        .map(|id| {
            if anthropic {
                format!(
                    r#"{{"type":"model","id":"{id}","display_name":"{id}","created_at":"2025-09-29T00:00:00Z"}}"#
                )
            } else {
                format!(r#"{{"id":"{id}","object":"model","created":{CREATED},"owned_by":"bench"}}"#)
            }
        })
        .collect();
    if anthropic {
        format!(
            r#"{{"data":[{}],"has_more":false,"first_id":null,"last_id":null}}"#,
            items.join(",")
        )
    } else {
        format!(r#"{{"object":"list","data":[{}]}}"#, items.join(","))
    }
}

/// What one answer says, in either API's shape.
struct Plan {
    api: Api,
    /// The model as a JSON string, quotes included.
    model: String,
    chunks: u32,
    input_tokens: u64,
    include_usage: bool,
}

fn piece(index: u32) -> &'static str {
    if index == 0 {
        "Hello"
    } else {
        WORDS[(index as usize - 1) % WORDS.len()]
    }
}

impl Plan {
    fn text(&self) -> String {
        (0..self.chunks).map(piece).collect()
    }

    fn whole(&self) -> String {
        let (model, text, input, output) =
            (&self.model, self.text(), self.input_tokens, self.chunks);
        match self.api {
            Api::OpenAi => format!(
                r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":{CREATED},"model":{model},"system_fingerprint":"fp_bench","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}","refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{input},"completion_tokens":{output},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#,
                input + u64::from(output)
            ),
            Api::Anthropic => format!(
                r#"{{"id":"msg_bench","type":"message","role":"assistant","model":{model},"content":[{{"type":"text","text":"{text}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":{input},"output_tokens":{output},"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}}"#
            ),
        }
    }

    /// Events before the first content chunk.
    fn head(&self) -> u32 {
        match self.api {
            Api::OpenAi => 1,
            Api::Anthropic => 3,
        }
    }

    /// Events after the last content chunk.
    fn tail(&self) -> u32 {
        match self.api {
            Api::OpenAi => 2 + u32::from(self.include_usage),
            Api::Anthropic => 3,
        }
    }

    /// The `step`-th event of the stream, `None` past its end.
    fn event(&self, step: u32) -> Option<String> {
        let (head, chunks) = (self.head(), self.chunks);
        if step < head {
            Some(self.head_event(step))
        } else if step < head + chunks {
            Some(self.content_event(step - head))
        } else if step < head + chunks + self.tail() {
            Some(self.tail_event(step - head - chunks))
        } else {
            None
        }
    }

    fn openai_chunk(&self, delta: &str, finish: &str) -> String {
        let usage = if self.include_usage {
            r#","usage":null"#
        } else {
            ""
        };
        format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":{},\"system_fingerprint\":\"fp_bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage}}}\n\n",
            self.model
        )
    }

    fn head_event(&self, step: u32) -> String {
        match (self.api, step) {
            (Api::OpenAi, _) => self.openai_chunk(r#"{"role":"assistant","content":""}"#, "null"),
            (Api::Anthropic, 0) => format!(
                "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"output_tokens\":1,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}}}}\n\n",
                self.model, self.input_tokens
            ),
            (Api::Anthropic, 1) => "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
            (Api::Anthropic, _) => "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
        }
    }

    fn content_event(&self, index: u32) -> String {
        let text = piece(index);
        match self.api {
            Api::OpenAi => self.openai_chunk(&format!(r#"{{"content":"{text}"}}"#), "null"),
            Api::Anthropic => format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
            ),
        }
    }

    fn tail_event(&self, step: u32) -> String {
        let (input, output) = (self.input_tokens, self.chunks);
        match (self.api, step) {
            (Api::OpenAi, 0) => self.openai_chunk("{}", "\"stop\""),
            (Api::OpenAi, 1) if self.include_usage => format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":{},\"system_fingerprint\":\"fp_bench\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{input},\"completion_tokens\":{output},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n",
                self.model,
                input + u64::from(output)
            ),
            (Api::OpenAi, _) => "data: [DONE]\n\n".to_owned(),
            (Api::Anthropic, 0) => {
                "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                    .to_owned()
            }
            (Api::Anthropic, 1) => format!(
                "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{output}}}}}\n\n"
            ),
            (Api::Anthropic, _) => {
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned()
            }
        }
    }

    /// The pause before event `step`: the hold before the second content
    /// chunk, the gap before every later one.
    fn pause_before(&self, step: u32, gap: Duration, hold: Duration) -> Duration {
        let head = self.head();
        if step <= head || step >= head + self.chunks {
            Duration::ZERO
        } else if step == head + 1 && !hold.is_zero() {
            hold
        } else {
            gap
        }
    }
}

/// A streamed answer, made one event at a time as the client reads it.
struct Stream {
    plan: Plan,
    step: u32,
    gap: Duration,
    hold: Duration,
    /// Set while waiting before the next event.
    timer: Option<Pin<Box<Sleep>>>,
}

enum MockBody {
    Whole(Option<Bytes>),
    Stream(Box<Stream>),
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let stream = match self.get_mut() {
            MockBody::Whole(body) => return Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(stream) => stream,
        };
        let pause = stream
            .plan
            .pause_before(stream.step, stream.gap, stream.hold);
        if !pause.is_zero() {
            let timer = stream
                .timer
                .get_or_insert_with(|| Box::pin(sleep_until(Instant::now() + pause)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            stream.timer = None;
        }
        let event = stream.plan.event(stream.step);
        stream.step += 1;
        Poll::Ready(event.map(|event| Ok(Frame::data(Bytes::from(event)))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Whole(None))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            MockBody::Whole(Some(body)) => http_body::SizeHint::with_exact(body.len() as u64),
            MockBody::Whole(None) => http_body::SizeHint::with_exact(0),
            MockBody::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(api: Api, include_usage: bool) -> Plan {
        Plan {
            api,
            model: "\"m\"".into(),
            chunks: 3,
            input_tokens: 5,
            include_usage,
        }
    }

    fn events(plan: &Plan) -> Vec<String> {
        (0..).map_while(|step| plan.event(step)).collect()
    }

    #[test]
    fn openai_stream_ends_with_usage_then_done() {
        let events = events(&plan(Api::OpenAi, true));
        assert_eq!(events.len(), 1 + 3 + 3);
        assert!(events[1].contains(r#""delta":{"content":"Hello"}"#));
        assert!(events[4].contains(r#""finish_reason":"stop""#));
        assert!(events[5].contains(r#""choices":[],"usage":{"prompt_tokens":5"#));
        assert_eq!(events[6], "data: [DONE]\n\n");
        for event in &events[..6] {
            let json = event.strip_prefix("data: ").unwrap().trim_end();
            serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    }

    #[test]
    fn anthropic_stream_follows_the_event_order() {
        let names: Vec<String> = events(&plan(Api::Anthropic, false))
            .iter()
            .map(|event| {
                let data = event
                    .lines()
                    .nth(1)
                    .unwrap()
                    .strip_prefix("data: ")
                    .unwrap();
                serde_json::from_str::<serde_json::Value>(data).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn whole_answers_are_json() {
        for api in [Api::OpenAi, Api::Anthropic] {
            let body: serde_json::Value = serde_json::from_str(&plan(api, false).whole()).unwrap();
            assert_eq!(body["model"], "m");
        }
    }

    #[test]
    fn the_hold_comes_after_the_first_content_chunk() {
        let plan = plan(Api::OpenAi, false);
        let (gap, hold) = (Duration::from_millis(1), Duration::from_secs(9));
        let pauses: Vec<Duration> = (0..6)
            .map(|step| plan.pause_before(step, gap, hold))
            .collect();
        assert_eq!(
            pauses,
            [
                Duration::ZERO,
                Duration::ZERO,
                hold,
                gap,
                Duration::ZERO,
                Duration::ZERO
            ]
        );
    }
}
