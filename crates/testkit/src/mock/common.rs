//! What every mock shares: recording, error answers, and streaming a list
//! of events with the scenario's delays, cuts and breakage.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::StreamExt;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::Value;

use super::connection::Connection;
use super::{OutcomeGuard, RecordedRequest, Scenario, State, StreamEnd};

/// What an endless event repeats (see `Scenario::endless_event_at`).
static FLOOD: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Records a request; returns its index.
pub(crate) fn record(
    state: &State,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> usize {
    state.record(RecordedRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
    })
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn add_headers(response: &mut Response, scenario: &Scenario) {
    for (name, value) in &scenario.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// The scenario's scripted answer, if it has one: its connection reset
/// before the head, its raw body, or its error. `{authorization}` in an
/// error body becomes the credential the request carried (in
/// `credential`'s header), as a careless upstream would echo it.
fn scripted_answer(scenario: &Scenario, headers: &HeaderMap, credential: &str) -> Option<Response> {
    if scenario.reset_before_head {
        Connection::current()
            .expect("a request is handled with its connection at hand")
            .reset();
        // Never sent: the connection fails its first write.
        return Some(Response::new(Body::empty()));
    }
    if let Some(raw) = &scenario.raw_answer {
        let mut response = Response::new(Body::from(raw.clone()));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        add_headers(&mut response, scenario);
        return Some(response);
    }
    let (status, template) = scenario.error.as_ref()?;
    let sent = headers
        .get(credential)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let mut response = Response::new(Body::from(template.replace("{authorization}", sent)));
    *response.status_mut() = *status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    add_headers(&mut response, scenario);
    Some(response)
}

/// Words in every string of `value`: the mocks' prompt token count.
pub(crate) fn words(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.split_whitespace().count() as u64,
        Value::Array(items) => items.iter().map(words).sum(),
        Value::Object(object) => object
            .iter()
            .filter(|(key, _)| {
                !matches!(
                    key.as_str(),
                    "model"
                        | "type"
                        | "role"
                        | "data"
                        | "url"
                        | "image_url"
                        | "tools"
                        | "parameters"
                )
            })
            .map(|(_, value)| words(value))
            .sum(),
        _ => 0,
    }
}

/// Arguments in two fragments, cut in the middle (mid-token, as upstreams
/// stream them).
pub(crate) fn fragments(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    if chars.len() < 2 {
        return vec![arguments.to_owned()];
    }
    let middle = chars.len() / 2;
    vec![
        chars[..middle].iter().collect(),
        chars[middle..].iter().collect(),
    ]
}

/// One streamed event, and whether it carries answer text (the unit that
/// [`StreamEnd`] and `malformed_chunk_at` count).
pub(crate) struct Wire {
    pub(crate) bytes: Bytes,
    pub(crate) content: bool,
}

impl Wire {
    pub(crate) fn meta(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            content: false,
        }
    }

    pub(crate) fn content(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            content: true,
        }
    }
}

enum Step {
    Data(Bytes),
    /// The final step of a body that ends normally.
    Last(Bytes),
    Abort,
    /// An event that never ends.
    Endless,
}

/// How a mock writes a failure in its stream: the message and how many
/// events came before it (Responses numbers its events).
pub(crate) type StreamFailure<'a> = &'a dyn Fn(&str, usize) -> Bytes;

/// Streams `events` as the scenario says: delays between events, a clean
/// cut, a reset or an in-stream error after some content events, a
/// malformed event in place of one. The guard marks the request complete at
/// the end, cancelled if the caller leaves first.
pub(crate) fn stream(
    events: Vec<Wire>,
    scenario: &Scenario,
    guard: OutcomeGuard,
    content_type: &'static str,
    failure: StreamFailure<'_>,
) -> Response {
    stream_chunked(events, scenario, guard, content_type, failure, None)
}

/// [`stream`], with the body re-cut into HTTP chunks of `chunk_bytes`
/// bytes (the last may be shorter) when given, whatever the events'
/// boundaries: a binary framing must survive frames split across reads.
pub(crate) fn stream_chunked(
    events: Vec<Wire>,
    scenario: &Scenario,
    guard: OutcomeGuard,
    content_type: &'static str,
    failure: StreamFailure<'_>,
    chunk_bytes: Option<usize>,
) -> Response {
    let mut steps = Vec::with_capacity(events.len() + 1);
    let mut content_seen = 0;
    for event in events {
        if event.content {
            match scenario.end {
                StreamEnd::Cut { after } if content_seen == after => break,
                StreamEnd::Reset { after } if content_seen == after => {
                    steps.push(Step::Abort);
                    break;
                }
                StreamEnd::Error { after, message } if content_seen == after => {
                    steps.push(Step::Data(failure(message, steps.len())));
                    break;
                }
                StreamEnd::Complete
                | StreamEnd::Cut { .. }
                | StreamEnd::Reset { .. }
                | StreamEnd::Error { .. } => {}
            }
            if scenario.endless_at == Some(content_seen) {
                steps.push(Step::Endless);
                break;
            }
            if scenario.malformed_at == Some(content_seen) {
                content_seen += 1;
                steps.push(Step::Data(Bytes::from_static(
                    b"data: {\"malformed\": [\n\n",
                )));
                continue;
            }
            if let Some((_, raw)) = scenario
                .raw_events
                .iter()
                .find(|(index, _)| *index == content_seen)
            {
                content_seen += 1;
                steps.push(Step::Data(raw.clone()));
                continue;
            }
            content_seen += 1;
        }
        steps.push(Step::Data(event.bytes));
    }
    if let Some(size) = chunk_bytes {
        steps = rechunk(steps, size);
    }
    if !matches!(steps.last(), Some(Step::Abort | Step::Endless))
        && let Some(Step::Data(last)) = steps.pop()
    {
        steps.push(Step::Last(last));
    }
    let delay = scenario.chunk_delay;
    let body_delay = scenario.body_delay;
    let connection = Connection::current();
    let mut guard = Some(guard);
    let body = futures_util::stream::iter(steps.into_iter().enumerate())
        .then(move |(at, step)| async move {
            if at == 0 && !body_delay.is_zero() {
                tokio::time::sleep(body_delay).await;
            }
            if at > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            step
        })
        .flat_map(move |step| {
            if matches!(step, Step::Last(_) | Step::Abort)
                && let Some(guard) = guard.as_mut()
            {
                guard.complete();
            }
            let one = |item| futures_util::stream::once(std::future::ready(item)).boxed();
            match step {
                Step::Data(bytes) | Step::Last(bytes) => one(Ok(bytes)),
                Step::Abort => {
                    if let Some(connection) = &connection {
                        connection.reset();
                    }
                    one(Err(std::io::Error::other("the mock resets the stream")))
                }
                // Never complete: the guard marks the request cancelled
                // when the caller goes away.
                Step::Endless => futures_util::stream::once(std::future::ready(Ok(
                    Bytes::from_static(b"data: "),
                )))
                .chain(futures_util::stream::repeat_with(|| {
                    Ok(Bytes::from_static(&FLOOD))
                }))
                .boxed(),
            }
        });
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    add_headers(&mut response, scenario);
    response
}

/// `steps`' bytes in pieces of `size` (at least 1), keeping a final abort
/// or endless event.
fn rechunk(steps: Vec<Step>, size: usize) -> Vec<Step> {
    let mut bytes = Vec::new();
    let mut end = None;
    for step in steps {
        match step {
            Step::Data(data) | Step::Last(data) => bytes.extend_from_slice(&data),
            end_step @ (Step::Abort | Step::Endless) => end = Some(end_step),
        }
    }
    let mut pieces: Vec<Step> = bytes
        .chunks(size.max(1))
        .map(|piece| Step::Data(Bytes::copy_from_slice(piece)))
        .collect();
    pieces.extend(end);
    pieces
}

/// What a request-wide check sees: the request's URI and headers, and its
/// body when that is JSON (`None` for a body that is not, and for requests
/// without one).
pub(crate) struct Ask<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Option<&'a Value>,
}

/// How a mock's API decides whether a request may pass.
#[derive(Clone, Copy)]
pub(crate) enum Check {
    /// Looks at the headers once the scenario is chosen (the API-key mocks:
    /// a refused request still uses up a queued scenario).
    Headers(fn(&State, &HeaderMap) -> Option<Response>),
    /// Looks at the whole request before any scenario is chosen, so that a
    /// refused request leaves the queue alone (the subscription mocks, whose
    /// refusals belong to the flows under test: an expired token, a refresh,
    /// a retry that gets the queued answer). It should look at the headers
    /// first and at the body only when there is one: a request that passes
    /// with no JSON body gets [`Gate::not_json`].
    Request(fn(&State, &Ask<'_>) -> Option<Response>),
}

/// How a mock's API turns a request away: its own checks (key, version
/// header), the header its credential travels in, and its answer to a body
/// that is not JSON.
pub(crate) struct Gate {
    pub(crate) check: Check,
    pub(crate) credential: &'static str,
    pub(crate) not_json: fn() -> Response,
}

impl Gate {
    /// The gate's own refusal of a request whose body was read as `body`,
    /// without scenarios: for side endpoints (`count_tokens`) that have none.
    pub(crate) fn refuse(
        &self,
        state: &State,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<&Value>,
    ) -> Option<Response> {
        match self.check {
            Check::Headers(check) => check(state, headers),
            Check::Request(check) => check(state, &Ask { uri, headers, body }),
        }
    }
}

/// What every generation handler does first: picks the request's scenario
/// (waiting out its first-byte delay), runs the API's checks and the
/// scenario's scripted error, and reads the body as JSON. `Err` is the
/// answer to send; the request is then already marked complete.
pub(crate) async fn admit(
    state: &Arc<State>,
    index: usize,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    gate: &Gate,
) -> Result<(Scenario, OutcomeGuard, Value), Response> {
    let check = match gate.check {
        Check::Headers(check) => check,
        Check::Request(check) => {
            let parsed = serde_json::from_slice::<Value>(body).ok();
            let ask = Ask {
                uri,
                headers,
                body: parsed.as_ref(),
            };
            let refusal = check(state, &ask);
            let request = match (refusal, parsed) {
                (None, Some(request)) => request,
                (Some(refusal), _) => return Err(refused(state, index, refusal)),
                (None, None) => return Err(refused(state, index, (gate.not_json)())),
            };
            let scenario = state.next_scenario(body);
            let mut guard = begin(state, index, &scenario).await;
            if let Some(answer) = scripted_answer(&scenario, headers, gate.credential) {
                guard.complete();
                return Err(answer);
            }
            return Ok((scenario, guard, request));
        }
    };
    let scenario = state.next_scenario(body);
    let mut guard = begin(state, index, &scenario).await;
    let refusal =
        check(state, headers).or_else(|| scripted_answer(&scenario, headers, gate.credential));
    let request = match refusal {
        Some(refusal) => Err(refusal),
        None => serde_json::from_slice::<Value>(body).map_err(|_| (gate.not_json)()),
    };
    match request {
        Ok(request) => Ok((scenario, guard, request)),
        Err(answer) => {
            guard.complete();
            Err(answer)
        }
    }
}

/// Marks request `index` complete and returns `answer`.
fn refused(state: &Arc<State>, index: usize, answer: Response) -> Response {
    OutcomeGuard::new(state.clone(), index).complete();
    answer
}

/// Waits the scenario's first-byte delay; returns the guard for the request.
async fn begin(state: &Arc<State>, index: usize, scenario: &Scenario) -> OutcomeGuard {
    let guard = OutcomeGuard::new(state.clone(), index);
    if !scenario.first_byte_delay.is_zero() {
        tokio::time::sleep(scenario.first_byte_delay).await;
    }
    guard
}

/// `data: <json>` and a blank line.
pub(crate) fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `event: <name>`, `data: <json>` and a blank line.
pub(crate) fn named(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

/// Output tokens of an answer: its words (at least one per text piece).
pub(crate) fn output_words(outputs: &[super::Output]) -> u64 {
    outputs
        .iter()
        .map(|output| match output {
            super::Output::Thinking { text, .. } | super::Output::Text(text) => {
                text.split_whitespace().count().max(1) as u64
            }
            super::Output::ToolCall { .. } => 5,
        })
        .sum()
}
