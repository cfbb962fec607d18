//! Bad input on every public endpoint: each refusal in the endpoint's own
//! dialect with the right status, nothing bad sent upstream, and the
//! gateway still serving afterwards.
//!
//! What this suite settles:
//! - The content type is not checked. A body is read as JSON whatever the
//!   header says (missing, `text/plain`, curl's default
//!   `application/x-www-form-urlencoded`), as most gateways do; a body that
//!   is not JSON (a multipart form) is a 400 like any other.
//! - Unknown fields are accepted: ignored when a request is translated,
//!   passed on untouched on a pass-through.
//! - A pass-through reads only what routing needs (`model`, `stream`); the
//!   rest of the body is the upstream's to judge, and its refusal comes back
//!   in the client's dialect. Wrong types and nesting deeper than serde's
//!   limit are refused by the gateway where it translates.
//! - Header sections over hyper's limits are refused by hyper itself (431,
//!   no body) and the connection is closed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use subgate_core::Dialect;
use subgate_testkit::mock::MockUpstream;
use subgate_testkit::{TestGateway, http_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{Server, default_data_dir};
use crate::support::{post_raw, post_with};

/// How deep the nesting attacks go: far past serde's limit of 128 and any
/// stack a recursive reader would survive.
const DEEP: usize = 100_000;

/// Four upstreams, one per dialect, behind one gateway with a 1 MiB body
/// limit: `chat-model`, `responses-model`, `claude-model`, `gemini-model`.
struct Setup {
    mocks: [MockUpstream; 4],
    gateway: TestGateway,
}

impl Setup {
    async fn start() -> Self {
        let mocks = [
            MockUpstream::openai().await,
            MockUpstream::openai().await,
            MockUpstream::anthropic().await,
            MockUpstream::gemini().await,
        ];
        let gateway = TestGateway::start(&format!(
            r#"
            [server]
            max_body_size = "1MiB"

            [[providers]]
            kind = "openai-compatible"
            name = "chat"
            base_url = "{}"
            models = ["chat-model"]

            [[providers]]
            kind = "openai"
            name = "responses"
            base_url = "{}"
            apis = ["responses"]
            api_keys = ["sk-responses"]
            models = ["responses-model"]

            [[providers]]
            kind = "anthropic"
            name = "anthropic"
            base_url = "{}"
            api_keys = ["sk-anthropic"]
            models = ["claude-model"]

            [[providers]]
            kind = "gemini"
            name = "gemini"
            base_url = "{}"
            api_keys = ["gemini-key"]
            models = ["gemini-model"]
            "#,
            mocks[0].url(),
            mocks[1].url(),
            mocks[2].url(),
            mocks[3].url(),
        ))
        .await;
        Self { mocks, gateway }
    }

    /// Every request the mocks received.
    fn upstream_requests(&self) -> usize {
        self.mocks.iter().map(|mock| mock.requests().len()).sum()
    }
}

/// A client endpoint that takes a body.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    dialect: Dialect,
    /// Gemini's paths hold the model: `{model}` stands for it.
    path: &'static str,
    /// A model this endpoint's requests are translated for.
    translated: &'static str,
    /// A model whose upstream speaks the endpoint's dialect.
    passed_through: &'static str,
}

const ENDPOINTS: [Endpoint; 7] = [
    Endpoint {
        dialect: Dialect::OpenAiChat,
        path: "/v1/chat/completions",
        translated: "claude-model",
        passed_through: "chat-model",
    },
    Endpoint {
        dialect: Dialect::OpenAiResponses,
        path: "/v1/responses",
        translated: "claude-model",
        passed_through: "responses-model",
    },
    Endpoint {
        dialect: Dialect::Anthropic,
        path: "/v1/messages",
        translated: "gemini-model",
        passed_through: "claude-model",
    },
    Endpoint {
        dialect: Dialect::Anthropic,
        path: "/v1/messages/count_tokens",
        translated: "chat-model",
        passed_through: "claude-model",
    },
    Endpoint {
        dialect: Dialect::Gemini,
        path: "/v1beta/models/{model}:generateContent",
        translated: "chat-model",
        passed_through: "gemini-model",
    },
    Endpoint {
        dialect: Dialect::Gemini,
        path: "/v1beta/models/{model}:streamGenerateContent?alt=sse",
        translated: "chat-model",
        passed_through: "gemini-model",
    },
    Endpoint {
        dialect: Dialect::Gemini,
        path: "/v1beta/models/{model}:countTokens",
        translated: "chat-model",
        passed_through: "gemini-model",
    },
];

impl Endpoint {
    fn url(&self, gateway: &TestGateway, model: &str) -> String {
        gateway.url(&self.path.replace("{model}", model))
    }

    /// A valid request for `model`.
    fn body(&self, model: &str) -> Value {
        let hello = "say hello to the tests";
        match self.dialect {
            Dialect::OpenAiChat => {
                json!({"model": model, "messages": [{"role": "user", "content": hello}]})
            }
            Dialect::OpenAiResponses => json!({"model": model, "input": hello}),
            // Counting takes no `max_tokens`.
            Dialect::Anthropic if self.path.ends_with("count_tokens") => {
                json!({"model": model, "messages": [{"role": "user", "content": hello}]})
            }
            Dialect::Anthropic => json!({
                "model": model,
                "max_tokens": 64,
                "messages": [{"role": "user", "content": hello}],
            }),
            Dialect::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": hello}]}]}),
        }
    }

    /// A valid request for `model` whose first message holds `content`
    /// (JSON text, so that it can be anything) where the dialect takes
    /// free JSON or a list.
    fn body_with_content(&self, model: &str, content: &[u8]) -> Vec<u8> {
        let marker = "@CONTENT@";
        let (pointer, value) = match self.dialect {
            Dialect::OpenAiChat | Dialect::Anthropic => ("/messages/0/content", json!(marker)),
            Dialect::OpenAiResponses => ("/input", json!([{"role": "user", "content": marker}])),
            Dialect::Gemini => (
                "/contents/0/parts/0",
                json!({"functionCall": {"name": "lookup", "args": marker}}),
            ),
        };
        let template = edited(self.body(model), pointer, Some(value)).to_string();
        let (before, after) = template.split_once(&format!("\"{marker}\"")).unwrap();
        [before.as_bytes(), content, after.as_bytes()].concat()
    }
}

/// Sends `body` with `content_type` (none when `None`); returns status,
/// headers and body.
async fn post(url: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, HeaderMap, Vec<u8>) {
    let mut request = http_client()
        .post(url)
        .header("anthropic-version", "2023-06-01")
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

async fn post_json(url: &str, body: Vec<u8>) -> (u16, HeaderMap, Vec<u8>) {
    post(url, Some("application/json"), body).await
}

/// Checks that `body` is an error in `dialect`'s own shape, and nothing
/// more; returns it.
fn dialect_error(dialect: Dialect, status: u16, body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let error = &value["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    match dialect {
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            assert_eq!(keys(&value), ["error"], "{value}");
            assert_eq!(keys(error), ["code", "message", "param", "type"], "{value}");
            assert!(error["type"].is_string(), "{value}");
        }
        Dialect::Anthropic => {
            // Anthropic's own errors, passed on, carry their request id.
            let mut top = keys(&value);
            top.retain(|key| key != "request_id");
            assert_eq!(top, ["error", "type"], "{value}");
            assert_eq!(value["type"], "error");
            assert_eq!(keys(error), ["message", "type"], "{value}");
            assert!(error["type"].is_string(), "{value}");
        }
        Dialect::Gemini => {
            assert_eq!(keys(&value), ["error"], "{value}");
            assert_eq!(keys(error), ["code", "message", "status"], "{value}");
            assert_eq!(error["code"], status, "{value}");
            assert!(error["status"].is_string(), "{value}");
        }
    }
    value
}

/// The message of an error in any dialect.
fn message(error: &Value) -> &str {
    error["error"]["message"].as_str().unwrap()
}

/// Posts `body` and checks the refusal (`what` names the case): `status`,
/// in the endpoint's dialect, with `needle` in its message.
async fn refused(
    endpoint: &Endpoint,
    url: &str,
    what: &str,
    (content_type, body): (Option<&str>, Vec<u8>),
    (status, needle): (u16, &str),
) -> Value {
    let (got, headers, answer) = post(url, content_type, body).await;
    assert_eq!(
        got,
        status,
        "{what} to {url}: {}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        headers["content-type"], "application/json",
        "{what} to {url}"
    );
    let error = dialect_error(endpoint.dialect, status, &answer);
    assert!(
        message(&error).contains(needle),
        "{what} to {url}: `{needle}` is not in {error}"
    );
    error
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    ["[".repeat(depth), "]".repeat(depth)].concat().into_bytes()
}

fn nested_objects(depth: usize) -> Vec<u8> {
    ["{\"a\":".repeat(depth), "1".to_owned(), "}".repeat(depth)]
        .concat()
        .into_bytes()
}

/// `body` with one more member, written as raw JSON text.
fn with_raw_member(body: &Value, name: &str, raw: &[u8]) -> Vec<u8> {
    let text = body.to_string();
    let open = text.strip_suffix('}').unwrap();
    [
        open.as_bytes(),
        format!(",\"{name}\":").as_bytes(),
        raw,
        b"}",
    ]
    .concat()
}

/// `body` with the value at `pointer` replaced (or added), or removed when
/// `value` is `None`.
fn edited(mut body: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = body.pointer_mut(parent).unwrap();
    match (parent, value) {
        (Value::Array(items), Some(value)) => items[key.parse::<usize>().unwrap()] = value,
        (Value::Object(members), Some(value)) => {
            members.insert(key.to_owned(), value);
        }
        (Value::Object(members), None) => {
            members.remove(key);
        }
        (parent, _) => panic!("cannot edit {pointer} in {parent}"),
    }
    body
}

const JSON: Option<&str> = Some("application/json");

/// Bodies that are not a JSON object at all: refused before routing, on
/// either kind of model.
async fn not_json_objects(setup: &Setup, endpoint: &Endpoint) {
    let not_object = "not a JSON object";
    let multipart =
        b"--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--xyz--\r\n".to_vec();
    let bodies: [(&str, Option<&str>, Vec<u8>, &str); 10] = [
        (
            "malformed",
            JSON,
            b"{\"model\": \"m\", ".to_vec(),
            not_object,
        ),
        ("trailing garbage", JSON, b"{} {}".to_vec(), not_object),
        ("empty", JSON, Vec::new(), not_object),
        ("an array", JSON, b"[1, 2]".to_vec(), not_object),
        ("a string", JSON, b"\"hello\"".to_vec(), not_object),
        ("null", JSON, b"null".to_vec(), not_object),
        ("invalid UTF-8", JSON, b"\xff\xfe{}".to_vec(), "UTF-8"),
        ("UTF-16", JSON, b"\xff\xfe{\0}\0".to_vec(), "UTF-8"),
        (
            "a multipart form",
            Some("multipart/form-data; boundary=xyz"),
            multipart,
            not_object,
        ),
        ("100k nested arrays", JSON, nested_arrays(DEEP), not_object),
    ];
    for model in [endpoint.translated, endpoint.passed_through] {
        let url = endpoint.url(&setup.gateway, model);
        for (what, content_type, body, needle) in &bodies {
            let sent = (*content_type, body.clone());
            refused(endpoint, &url, what, sent, (400, needle)).await;
        }
    }
}

/// Fields of the wrong type, where the gateway reads them (it translates):
/// JSON pointer, value, and what the message names.
fn wrong_types(endpoint: &Endpoint) -> Vec<(&'static str, Value, &'static str)> {
    let mut cases = match endpoint.dialect {
        Dialect::OpenAiChat => vec![
            ("/messages", json!("hi"), "messages"),
            ("/messages/0/role", json!(5), "role"),
            ("/max_tokens", json!("many"), "max_tokens"),
            ("/temperature", json!("hot"), "temperature"),
            ("/tools", json!({"a": 1}), "tools"),
        ],
        Dialect::OpenAiResponses => vec![
            ("/input", json!(5), "input"),
            ("/max_output_tokens", json!("many"), "max_output_tokens"),
            ("/tools", json!("all"), "tools"),
        ],
        Dialect::Anthropic => vec![
            ("/messages", json!("hi"), "messages"),
            ("/messages/0/content", json!(5), "content"),
            ("/system", json!(5), "system"),
            ("/tools", json!({"a": 1}), "tools"),
        ],
        Dialect::Gemini => vec![
            ("/contents", json!("hi"), "contents"),
            ("/contents/0/parts", json!("hi"), "parts"),
            (
                "/generationConfig",
                json!({"maxOutputTokens": "many"}),
                "maxOutputTokens",
            ),
            ("/tools", json!(5), "tools"),
        ],
    };
    if endpoint.dialect != Dialect::Gemini {
        cases.push(("/model", json!(5), "model"));
        cases.push(("/model", json!(["m"]), "model"));
        cases.push(("/stream", json!("yes"), "stream"));
    }
    if endpoint.path == "/v1/messages" {
        cases.push(("/max_tokens", json!("many"), "max_tokens"));
    }
    cases
}

/// Fields a request cannot do without: JSON pointer, and what the message
/// names.
fn required_fields(endpoint: &Endpoint) -> Vec<(&'static str, &'static str)> {
    match endpoint.dialect {
        Dialect::OpenAiChat | Dialect::Anthropic => {
            vec![("/model", "model"), ("/messages", "messages")]
        }
        Dialect::OpenAiResponses => vec![("/model", "model")],
        // The model is in the path (see `bad_paths`).
        Dialect::Gemini => Vec::new(),
    }
}

/// Wrong types, missing fields, invalid UTF-8 inside a string and nesting
/// past serde's limit, where the gateway reads the body (it translates).
async fn bad_fields(setup: &Setup, endpoint: &Endpoint) {
    let model = endpoint.translated;
    let url = endpoint.url(&setup.gateway, model);
    for (pointer, value, needle) in wrong_types(endpoint) {
        let body = edited(endpoint.body(model), pointer, Some(value.clone()));
        let what = format!("{pointer} = {value}");
        let error = refused(
            endpoint,
            &url,
            &what,
            (JSON, body.to_string().into()),
            (400, needle),
        )
        .await;
        if endpoint.dialect == Dialect::OpenAiChat && pointer == "/model" {
            assert_eq!(error["error"]["param"], "model");
        }
    }
    for (pointer, needle) in required_fields(endpoint) {
        let body = edited(endpoint.body(model), pointer, None);
        let what = format!("without {pointer}");
        refused(
            endpoint,
            &url,
            &what,
            (JSON, body.to_string().into()),
            (400, needle),
        )
        .await;
    }
    let body = endpoint.body_with_content(model, b"\"caf\xe9\"");
    refused(
        endpoint,
        &url,
        "Latin-1 in a string",
        (JSON, body),
        (400, "UTF-8"),
    )
    .await;
    for (what, deep) in [
        ("100k nested arrays", nested_arrays(DEEP)),
        ("100k nested objects", nested_objects(DEEP)),
        ("129 nested arrays", nested_arrays(129)),
    ] {
        let body = endpoint.body_with_content(model, &deep);
        refused(endpoint, &url, what, (JSON, body), (400, "")).await;
    }
}

/// The mock whose dialect is `dialect`.
fn mock_of(setup: &Setup, dialect: Dialect) -> &MockUpstream {
    match dialect {
        Dialect::OpenAiChat => &setup.mocks[0],
        Dialect::OpenAiResponses => &setup.mocks[1],
        Dialect::Anthropic => &setup.mocks[2],
        Dialect::Gemini => &setup.mocks[3],
    }
}

/// Unknown fields are ignored when translating and passed on untouched on
/// a pass-through; content types are not checked.
async fn accepted(setup: &Setup, endpoint: &Endpoint) {
    let extra = json!({"nested": [1, {"deeper": [true, null]}], "text": "kept"});
    for model in [endpoint.translated, endpoint.passed_through] {
        let url = endpoint.url(&setup.gateway, model);
        let mut body = endpoint.body(model);
        body["x_unknown_field"] = extra.clone();
        let (status, _, answer) = post_json(&url, body.to_string().into()).await;
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&answer));
        // An unknown field holding 100k nested arrays: skipped without
        // recursing where the gateway reads the body.
        let deep = with_raw_member(&endpoint.body(model), "x_deep", &nested_arrays(DEEP));
        let (status, _, answer) = post_json(&url, deep.clone()).await;
        if model == endpoint.translated {
            assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&answer));
        } else {
            // Passed on as it came; what it means is the upstream's call.
            let mock = mock_of(setup, endpoint.dialect);
            let last = mock.requests().pop().unwrap();
            assert!(last.body == deep, "{url}: the body went up changed");
        }
    }
    let mock = mock_of(setup, endpoint.dialect);
    let passed = mock
        .requests()
        .into_iter()
        .rev()
        .find(|request| String::from_utf8_lossy(&request.body).contains("x_unknown_field"))
        .expect("the unknown field went upstream on the pass-through");
    let received: Value = serde_json::from_slice(&passed.body).unwrap();
    assert_eq!(received["x_unknown_field"], extra);

    let url = endpoint.url(&setup.gateway, endpoint.translated);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=utf-8"),
    ] {
        let body = endpoint.body(endpoint.translated).to_string().into();
        let (status, _, answer) = post(&url, content_type, body).await;
        assert_eq!(
            status,
            200,
            "{content_type:?} to {url}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// A body over the limit: 413 in the dialect, with its own word for it.
async fn too_large(setup: &Setup, endpoint: &Endpoint) {
    let text = format!("\"{}\"", "x".repeat(1_100_000));
    for model in [endpoint.translated, endpoint.passed_through] {
        let url = endpoint.url(&setup.gateway, model);
        let body = endpoint.body_with_content(model, text.as_bytes());
        let error = refused(endpoint, &url, "1.1 MB", (JSON, body), (413, "larger than")).await;
        let error = &error["error"];
        match endpoint.dialect {
            Dialect::OpenAiChat | Dialect::OpenAiResponses => {
                assert_eq!(error["code"], "request_too_large");
            }
            Dialect::Anthropic => assert_eq!(error["type"], "request_too_large"),
            Dialect::Gemini => assert_eq!(error["status"], "INVALID_ARGUMENT"),
        }
    }
}

/// `schema` as the one tool of a request for `model`.
fn with_tool(endpoint: &Endpoint, model: &str, schema: &Value) -> Value {
    let mut body = endpoint.body(model);
    body["tools"] = match endpoint.dialect {
        Dialect::OpenAiChat => {
            json!([{"type": "function", "function": {"name": "lookup", "parameters": schema}}])
        }
        Dialect::OpenAiResponses => {
            json!([{"type": "function", "name": "lookup", "parameters": schema}])
        }
        Dialect::Anthropic => json!([{"name": "lookup", "input_schema": schema}]),
        Dialect::Gemini => {
            json!([{"functionDeclarations": [{"name": "lookup", "parameters": schema}]}])
        }
    };
    body
}

/// An object schema `levels` objects deep (two JSON levels each).
fn deep_schema(levels: usize) -> Value {
    (0..levels).fold(
        json!({"type": "string"}),
        |inner, _| json!({"type": "object", "properties": {"p": inner}}),
    )
}

/// Legal but heavy: a tool schema nested close to serde's limit, and one
/// whose `$ref`s fan out (10⁸ copies if inlined blindly), to every
/// upstream. Each is answered, and quickly.
async fn heavy(setup: &Setup, endpoint: &Endpoint) {
    let mut fan_out = serde_json::Map::new();
    for i in 0..10 {
        fan_out.insert(format!("p{i}"), json!({"$ref": "#/$defs/node"}));
    }
    let fan_out = json!({
        "$ref": "#/$defs/node",
        "$defs": {"node": {"type": "object", "properties": fan_out}},
    });
    for model in [
        "chat-model",
        "responses-model",
        "claude-model",
        "gemini-model",
    ] {
        let url = endpoint.url(&setup.gateway, model);
        for (what, schema) in [("deep", deep_schema(56)), ("fan-out", fan_out.clone())] {
            let body = with_tool(endpoint, model, &schema).to_string().into();
            let started = Instant::now();
            let (status, _, answer) = post_json(&url, body).await;
            assert_eq!(
                status,
                200,
                "{what} schema to {url}: {}",
                String::from_utf8_lossy(&answer)
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what} schema to {url} took {:?}",
                started.elapsed()
            );
        }
    }
}

/// Sends `method` to `path`, as an Anthropic client (with
/// `anthropic-version`) when `anthropic`.
async fn call(
    gateway: &TestGateway,
    method: &str,
    path: &str,
    anthropic: bool,
) -> (u16, HeaderMap, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http_client().request(method, gateway.url(path));
    if anthropic {
        request = request.header("anthropic-version", "2023-06-01");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// Every route with methods it does not take: 405 in its dialect, with
/// `Allow`.
async fn wrong_methods(setup: &Setup) {
    let mut cases: Vec<(&str, String, Dialect, &str)> = Vec::new();
    for endpoint in &ENDPOINTS {
        let path = endpoint.path.replace("{model}", endpoint.passed_through);
        for method in ["GET", "PUT", "DELETE"] {
            cases.push((method, path.clone(), endpoint.dialect, "POST"));
        }
    }
    for (method, path, dialect) in [
        ("POST", "/v1/models", Dialect::OpenAiChat),
        ("POST", "/v1/models", Dialect::Anthropic),
        ("DELETE", "/v1/models/chat-model", Dialect::OpenAiChat),
        ("PATCH", "/v1/models/chat-model", Dialect::Anthropic),
        ("POST", "/v1beta/models", Dialect::Gemini),
        ("POST", "/v1beta/models/gemini-model", Dialect::Gemini),
        ("DELETE", "/v1beta/models/gemini-model", Dialect::Gemini),
        ("POST", "/healthz", Dialect::OpenAiChat),
        ("PUT", "/readyz", Dialect::OpenAiChat),
    ] {
        cases.push((method, path.to_owned(), dialect, "GET,HEAD"));
    }
    for (method, path, dialect, allow) in cases {
        let anthropic = dialect == Dialect::Anthropic;
        let (status, headers, body) = call(&setup.gateway, method, &path, anthropic).await;
        assert_eq!(
            status,
            405,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers["allow"], allow, "{method} {path}");
        let error = dialect_error(dialect, 405, &body);
        assert_eq!(
            message(&error),
            format!(
                "{} does not accept {method}",
                path.split('?').next().unwrap()
            )
        );
    }
}

/// Paths that do not decode or name nothing: 400 or 404 in the dialect.
async fn bad_paths(setup: &Setup) {
    let cases = [
        ("GET", "/v1/models/%FF", Dialect::OpenAiChat, 400, "UTF-8"),
        ("GET", "/v1/models/%FF", Dialect::Anthropic, 400, "UTF-8"),
        ("GET", "/v1beta/models/%FF", Dialect::Gemini, 400, "UTF-8"),
        (
            "POST",
            "/v1beta/models/%FF%FE:generateContent",
            Dialect::Gemini,
            400,
            "UTF-8",
        ),
        (
            "GET",
            "/v1/models/no-such-model",
            Dialect::OpenAiChat,
            404,
            "not served here",
        ),
        (
            "GET",
            "/v1/models/no-such-model",
            Dialect::Anthropic,
            404,
            "not served here",
        ),
        (
            "GET",
            "/v1beta/models/no-such-model",
            Dialect::Gemini,
            404,
            "not served here",
        ),
        (
            "POST",
            "/v1beta/models/gemini-model:embedContent",
            Dialect::Gemini,
            404,
            "no route",
        ),
        ("POST", "/v1beta/nothing", Dialect::Gemini, 404, "no route"),
        (
            "POST",
            "/v1/messages/batches",
            Dialect::Anthropic,
            404,
            "no route",
        ),
        ("GET", "/v1/nothing", Dialect::OpenAiChat, 404, "no route"),
    ];
    for (method, path, dialect, status, needle) in cases {
        let anthropic = dialect == Dialect::Anthropic;
        let (got, _, body) = call(&setup.gateway, method, path, anthropic).await;
        assert_eq!(
            got,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        let error = dialect_error(dialect, status, &body);
        assert!(message(&error).contains(needle), "{method} {path}: {error}");
    }
    let gemini = &ENDPOINTS[4];
    let body = gemini.body("").to_string().into();
    let url = setup.gateway.url("/v1beta/models/:generateContent");
    refused(gemini, &url, "no model", (JSON, body), (400, "model")).await;
}

/// Sends raw bytes on a new connection and reads until the server closes
/// it. The server may answer and close before reading all of a request it
/// refuses, so a failed write or a reset is a possible end too; hanging is
/// not.
async fn raw_exchange(address: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map(|_| answer)
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("the server neither answers nor closes the connection")
}

/// Header sections: a 100 KB header is served; 1000 headers, or a 1 MB
/// one, are refused by hyper with 431 and the connection is closed.
async fn big_headers(setup: &Setup) {
    let response = http_client()
        .get(setup.gateway.url("/v1/models"))
        .header("x-big", "b".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let mut many = b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\n".to_vec();
    for i in 0..1000 {
        many.extend_from_slice(format!("x-repeated: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let answer = raw_exchange(setup.gateway.address(), &many).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "1000 headers: {answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");

    let mut huge = b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\nx-huge: ".to_vec();
    huge.extend(std::iter::repeat_n(b'h', 1 << 20));
    huge.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\n{}");
    // Refused before hyper read it all: the answer may be lost to a reset.
    if let Ok(answer) = raw_exchange(setup.gateway.address(), &huge).await
        && !answer.is_empty()
    {
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431 "), "1 MB header: {answer}");
    }
}

/// After all of it: every endpoint answers a proper request on both kinds
/// of model, and the health routes are fine.
async fn still_serving(setup: &Setup) {
    for endpoint in &ENDPOINTS {
        for model in [endpoint.translated, endpoint.passed_through] {
            let url = endpoint.url(&setup.gateway, model);
            let (status, _, answer) =
                post_json(&url, endpoint.body(model).to_string().into()).await;
            assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&answer));
        }
    }
    for path in ["/healthz", "/readyz", "/v1/models", "/v1beta/models"] {
        let (status, _, _) = call(&setup.gateway, "GET", path, false).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_400_in_every_dialect() {
    let setup = Setup::start().await;
    for endpoint in &ENDPOINTS {
        not_json_objects(&setup, endpoint).await;
    }
    assert_eq!(setup.upstream_requests(), 0, "nothing bad went upstream");
    still_serving(&setup).await;
}

#[tokio::test]
async fn wrong_fields_are_400_in_every_dialect_where_the_gateway_reads_them() {
    let setup = Setup::start().await;
    for endpoint in &ENDPOINTS {
        bad_fields(&setup, endpoint).await;
    }
    assert_eq!(setup.upstream_requests(), 0, "nothing bad went upstream");
    still_serving(&setup).await;
}

#[tokio::test]
async fn unknown_fields_and_any_content_type_are_accepted() {
    let setup = Setup::start().await;
    for endpoint in &ENDPOINTS {
        accepted(&setup, endpoint).await;
    }
    still_serving(&setup).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_every_dialect() {
    let setup = Setup::start().await;
    for endpoint in &ENDPOINTS {
        too_large(&setup, endpoint).await;
    }
    assert_eq!(setup.upstream_requests(), 0);
    still_serving(&setup).await;
}

#[tokio::test]
async fn deep_and_fanning_out_tool_schemas_are_served_quickly() {
    let setup = Setup::start().await;
    for endpoint in &ENDPOINTS {
        heavy(&setup, endpoint).await;
    }
    still_serving(&setup).await;
}

#[tokio::test]
async fn wrong_methods_paths_and_header_sections_are_refused_cleanly() {
    let setup = Setup::start().await;
    wrong_methods(&setup).await;
    bad_paths(&setup).await;
    big_headers(&setup).await;
    assert_eq!(setup.upstream_requests(), 0);
    still_serving(&setup).await;
}

/// A management API call with raw `body`, `token` as `Authorization`
/// (whole).
async fn admin(
    gateway: &TestGateway,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, HeaderMap, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http_client().request(method, gateway.url(path));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// Checks a management API refusal: `status`, `{"error":{"type","message"}}`
/// and nothing more, `needle` in the message.
fn admin_refusal(
    what: &str,
    (status, headers, body): (u16, HeaderMap, Vec<u8>),
    expected: u16,
    needle: &str,
) {
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, expected, "{what}: {text}");
    assert_eq!(headers["content-type"], "application/json", "{what}");
    let value: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{what}: {text}"));
    let error = value["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {text}"));
    let mut keys: Vec<&String> = error.keys().collect();
    keys.sort();
    assert_eq!(keys, ["message", "type"], "{what}: {text}");
    assert_eq!(value.as_object().unwrap().len(), 1, "{what}: {text}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{what}: `{needle}` is not in {text}"
    );
}

/// Without the admin token (or with it in the wrong place), everything but
/// the `OpenAPI` document is 401, wrong methods included.
async fn admin_auth(gateway: &TestGateway, token: &str) {
    let bearer_query = format!("/admin/api/keys?token={token}");
    let basic = format!("Basic {token}");
    let near_miss = format!("Bearer {token}x");
    let routes = [
        ("GET", "/admin/api/keys"),
        ("POST", "/admin/api/keys"),
        ("GET", "/admin/api/usage"),
        ("DELETE", "/admin/api/accounts/mock"),
        ("PUT", "/admin/api/keys"),
        ("GET", bearer_query.as_str()),
    ];
    for (method, path) in routes {
        for authorization in [
            None,
            Some("Bearer sga-wrong"),
            Some(basic.as_str()),
            Some(near_miss.as_str()),
            Some(token),
        ] {
            let what = format!("{method} {path} with {authorization:?}");
            let answer = admin(gateway, method, path, authorization, Some(b"{}".to_vec())).await;
            admin_refusal(&what, answer, 401, "admin token");
        }
    }
    let (status, _, _) = admin(gateway, "GET", "/admin/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
}

/// Bodies the management API cannot use: 400 (413 over its limit), in its
/// shape. It is strict: an unknown field is refused, not ignored, so that
/// a misspelt limit is not silently dropped.
async fn admin_bodies(gateway: &TestGateway, bearer: &str) {
    let keys = "/admin/api/keys";
    let priority = "/admin/api/accounts/mock/priority";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (keys, b"{\"name\":".to_vec(), 400, "EOF"),
        (keys, Vec::new(), 400, "EOF"),
        (keys, b"[]".to_vec(), 400, "not a key"),
        (keys, b"{}".to_vec(), 400, "missing field `name`"),
        (keys, b"{\"name\": 5}".to_vec(), 400, "expected a string"),
        (
            keys,
            b"{\"name\": \"k\", \"rpm\": \"many\"}".to_vec(),
            400,
            "rpm",
        ),
        (
            keys,
            b"{\"name\": \"k\", \"expires_in\": -5}".to_vec(),
            400,
            "invalid value",
        ),
        (
            keys,
            b"{\"name\": \"k\", \"budget_period\": \"fortnight\"}".to_vec(),
            400,
            "fortnight",
        ),
        (
            keys,
            b"{\"name\": \"k\", \"colour\": \"red\"}".to_vec(),
            400,
            "unknown field `colour`",
        ),
        (
            keys,
            b"{\"name\": \"has space\"}".to_vec(),
            400,
            "has space",
        ),
        (
            keys,
            b"{\"name\": \"caf\xe9\"}".to_vec(),
            400,
            "`name`: invalid unicode",
        ),
        (keys, nested_arrays(DEEP), 400, "not a key"),
        (
            keys,
            with_raw_member(&json!({"name": "k"}), "models", &nested_arrays(DEEP)),
            400,
            "`models[0]`",
        ),
        (keys, vec![b' '; 3 << 20], 413, "length limit"),
        (
            priority,
            b"{\"priority\": \"high\"}".to_vec(),
            400,
            "priority",
        ),
        (priority, b"{\"priority\": -1}".to_vec(), 400, "priority"),
        (priority, b"{}".to_vec(), 400, "missing field `priority`"),
        (
            "/admin/api/logins",
            b"{\"provider\": 5}".to_vec(),
            400,
            "provider",
        ),
        (
            "/admin/api/logins",
            b"{\"provider\": \"nope\"}".to_vec(),
            404,
            "nope",
        ),
        (
            "/admin/api/logins/nope/complete",
            b"{\"code\": 5}".to_vec(),
            400,
            "code",
        ),
        (
            "/admin/api/logins/nope/complete",
            b"{\"code\": \"\"}".to_vec(),
            400,
            "",
        ),
    ];
    for (path, body, status, needle) in cases {
        let what = format!(
            "POST {path} {}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        let answer = admin(gateway, "POST", path, Some(bearer), Some(body)).await;
        admin_refusal(&what, answer, status, needle);
    }
    let new = Some(b"{\"name\": \"twice\"}".to_vec());
    let (status, _, _) = admin(gateway, "POST", keys, Some(bearer), new.clone()).await;
    assert_eq!(status, 201);
    let answer = admin(gateway, "POST", keys, Some(bearer), new).await;
    admin_refusal("the same name twice", answer, 409, "twice");
}

/// Names that are not there (404), paths that do not decode or name
/// nothing, queries that do not parse, and wrong methods, with the token.
async fn admin_paths(gateway: &TestGateway, bearer: &str) {
    let cases = [
        ("GET", "/admin/api/accounts/nope", 404, "nope"),
        ("DELETE", "/admin/api/accounts/nope", 404, "nope"),
        ("POST", "/admin/api/accounts/nope/enable", 404, "nope"),
        ("POST", "/admin/api/accounts/nope/disable", 404, "nope"),
        ("POST", "/admin/api/accounts/nope/refresh", 404, "nope"),
        ("POST", "/admin/api/accounts/nope/reset", 404, "nope"),
        ("GET", "/admin/api/keys/nope", 404, "nope"),
        ("POST", "/admin/api/keys/nope/revoke", 404, "nope"),
        ("POST", "/admin/api/keys/nope/rotate", 404, "nope"),
        ("GET", "/admin/api/keys/%FF", 400, "UTF-8"),
        ("POST", "/admin/api/accounts/%C3%28/reset", 400, "UTF-8"),
        ("GET", "/admin/api/nothing", 404, "no route"),
        (
            "GET",
            "/admin/api/usage?since=yesterday-ish",
            400,
            "yesterday-ish",
        ),
        ("GET", "/admin/api/usage?by=colour", 400, "colour"),
        (
            "GET",
            "/admin/api/usage?since=1h&since=2h",
            400,
            "duplicate field",
        ),
    ];
    for (method, path, status, needle) in cases {
        let answer = admin(gateway, method, path, Some(bearer), None).await;
        admin_refusal(&format!("{method} {path}"), answer, status, needle);
    }
    let body = Some(b"{\"priority\": 3}".to_vec());
    let answer = admin(
        gateway,
        "POST",
        "/admin/api/accounts/nope/priority",
        Some(bearer),
        body,
    )
    .await;
    admin_refusal("priority of nope", answer, 404, "nope");
    for (method, path, allow) in [
        ("PUT", "/admin/api/keys", "GET,HEAD,POST"),
        ("GET", "/admin/api/keys/x/revoke", "POST"),
        ("PATCH", "/admin/api/accounts/x", "GET,HEAD,DELETE"),
        ("POST", "/admin/api/openapi.json", "GET,HEAD"),
    ] {
        let answer = admin(gateway, method, path, Some(bearer), None).await;
        assert_eq!(answer.1["allow"], allow, "{method} {path}");
        admin_refusal(&format!("{method} {path}"), answer, 405, "does not accept");
    }
}

#[tokio::test]
async fn the_management_api_refuses_bad_input_in_its_own_shape() {
    let mock = MockUpstream::openai().await;
    let gateway = TestGateway::with_openai_compatible(&mock.url(), "models = [\"m\"]").await;
    let token = subgate_engine::admin_token(&gateway.data_dir()).unwrap();
    let bearer = format!("Bearer {token}");
    admin_auth(&gateway, &token).await;
    admin_bodies(&gateway, &bearer).await;
    admin_paths(&gateway, &bearer).await;

    let (status, _, _) = admin(&gateway, "GET", "/admin/api/health", Some(&bearer), None).await;
    assert_eq!(status, 200);
    let new = Some(b"{\"name\": \"fine\", \"rpm\": 5}".to_vec());
    let (status, _, _) = admin(&gateway, "POST", "/admin/api/keys", Some(&bearer), new).await;
    assert_eq!(status, 201);
    assert!(mock.requests().is_empty());
}

/// Secrets a careless client puts where a log could pick them up.
const WRONG_KEY: &str = "sk-secret-wrongclientkey0123456789";
const UPSTREAM_KEY: &str = "sk-proj-upstreamlooking0123456789";
const QUERY_KEY: &str = "AIzaSyQueryKey0123456789abcdefghi";
const WRONG_ADMIN: &str = "sga-wrongadmintoken0123456789abcdef";

/// Bad requests carrying secrets, to the real binary at trace level.
async fn send_secrets(server: &Server, client_key: &str, admin_token: &str) {
    let bearer = format!("Bearer {client_key}");
    let body_secret = json!({"model": "m", "api_key": UPSTREAM_KEY, "messages": [{"role": "user", "content": "hi"}]});
    let bad_json = format!("{{\"model\": \"m\", \"api_key\": \"{UPSTREAM_KEY}\", ");
    let wrong_type = format!("{{\"model\": \"m\", \"messages\": \"{UPSTREAM_KEY}\"}}");
    let gemini = "/v1beta/models/m:generateContent";
    let with_client_key = [
        (
            "/v1/chat/completions",
            "authorization",
            bearer.as_str(),
            bad_json.clone(),
            400,
        ),
        (
            "/v1/chat/completions",
            "authorization",
            bearer.as_str(),
            body_secret.to_string(),
            200,
        ),
        ("/v1/messages", "x-api-key", client_key, wrong_type, 400),
        (
            gemini,
            "x-goog-api-key",
            client_key,
            "{\"contents\": 5}".to_owned(),
            400,
        ),
        (
            "/v1/chat/completions",
            "authorization",
            &format!("Bearer {WRONG_KEY}"),
            body_secret.to_string(),
            401,
        ),
        (
            "/v1/messages",
            "x-api-key",
            WRONG_KEY,
            bad_json.clone(),
            401,
        ),
        (gemini, "x-goog-api-key", QUERY_KEY, "{}".to_owned(), 401),
    ];
    for (path, header, value, body, status) in with_client_key {
        let (got, _, answer) = post_with(&server.url(path), &[(header, value)], body).await;
        assert_eq!(
            got,
            status,
            "{path} {header}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    for (query, status) in [(QUERY_KEY, 401), (client_key, 400)] {
        let url = server.url(&format!("{gemini}?key={query}"));
        let (got, _, _) = post_raw(&url, bad_json.clone()).await;
        assert_eq!(got, status, "?key=");
    }
    let keys = server.url("/admin/api/keys");
    let admin_bearer = format!("Bearer {admin_token}");
    let (status, _, _) =
        post_with(&keys, &[("authorization", &admin_bearer)], bad_json.clone()).await;
    assert_eq!(status, 400);
    let wrong_admin = format!("Bearer {WRONG_ADMIN}");
    let (status, _, _) =
        post_with(&keys, &[("authorization", &wrong_admin)], "{}".to_owned()).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn secrets_in_bad_requests_stay_out_of_the_log() {
    let home = tempfile::tempdir().unwrap();
    let mock = MockUpstream::openai().await;
    let config = home.path().join("subgate.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"trace\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\nmodels = [\"m\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    let server = Server::start(home.path(), &["--config", config.to_str().unwrap()], &[]).await;
    let admin_token = subgate_engine::admin_token(&default_data_dir(home.path())).unwrap();
    let (status, _, created) = post_with(
        &server.url("/admin/api/keys"),
        &[("authorization", &format!("Bearer {admin_token}"))],
        "{\"name\": \"careless\"}".to_owned(),
    )
    .await;
    assert_eq!(status, 201);
    let created: Value = serde_json::from_slice(&created).unwrap();
    let client_key = created["secret"].as_str().unwrap().to_owned();

    send_secrets(&server, &client_key, &admin_token).await;
    // The secret in the body did go upstream: it is the client's to send.
    assert!(String::from_utf8_lossy(&mock.requests()[0].body).contains(UPSTREAM_KEY));

    server.signal("TERM").await;
    let (status, out, err) = server.wait().await;
    assert!(status.success());
    let logs = format!("{out}{err}");
    for secret in [
        client_key.as_str(),
        &admin_token,
        WRONG_KEY,
        UPSTREAM_KEY,
        QUERY_KEY,
        WRONG_ADMIN,
    ] {
        // Half of it is enough to give it away.
        let part = &secret[secret.len() / 2..];
        let leaks: Vec<&str> = logs.lines().filter(|line| line.contains(part)).collect();
        assert!(
            leaks.is_empty(),
            "a log line holds a secret:\n{}",
            leaks.join("\n")
        );
    }
    // The failures themselves are in the log.
    for needle in [
        "status=400",
        "status=401",
        "error=\"bad_request\"",
        "error=\"unauthorized\"",
        "Management API call refused",
    ] {
        assert!(
            logs.contains(needle),
            "`{needle}` is not in the log:\n{logs}"
        );
    }
}

/// A client that sends its head or its body too slowly is cut off at
/// `server.read_timeout`: the head by closing the connection, the body
/// with a 408 in the route's dialect.
#[tokio::test]
async fn slow_clients_are_cut_off_at_the_read_timeout() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::with_openai_compatible(
        &mock.url(),
        "models = [\"m\"]\n[server]\nread_timeout = \"300ms\"",
    )
    .await;
    let started = Instant::now();
    let half_head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n";
    let answer = raw_exchange(gateway.address(), half_head).await;
    assert!(
        answer
            .as_ref()
            .is_ok_and(|answer| !String::from_utf8_lossy(answer).contains(" 200 ")),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let half_body =
        b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":";
    let answer = raw_exchange(gateway.address(), half_body).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains(r#""type":"error""#) && answer.contains("read_timeout"),
        "in Anthropic's shape: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A prompt client is served as ever.
    let response = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
