//! Every client dialect against every upstream dialect through the real
//! server: the same conversation, tools, thinking, errors and stops, with
//! what reached the upstream checked too. Same-dialect pairs are the
//! pass-through; the others translate.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use subgate_core::Dialect;
use subgate_protocol::canonical::{
    Block, Effort, Image, Message, Reasoning, Request, Response, Role, Source, StopReason,
    SystemPart, Thinking, Tool, ToolChoice, ToolResult, ToolUse,
};
use subgate_protocol::dispatch;
use subgate_testkit::TestGateway;
use subgate_testkit::mock::{MockUpstream, Output, Scenario, Stop, StreamEnd};

use crate::clients::{line, read, send};

/// The four upstreams, one per dialect, behind one gateway, serving
/// `chat-model`, `responses-model`, `claude-model` and `gemini-model`.
pub(crate) struct Upstreams {
    pub(crate) chat: MockUpstream,
    pub(crate) responses: MockUpstream,
    pub(crate) anthropic: MockUpstream,
    pub(crate) gemini: MockUpstream,
    pub(crate) gateway: TestGateway,
}

impl Upstreams {
    pub(crate) async fn start() -> Self {
        let (chat, responses, anthropic, gemini) = (
            MockUpstream::openai().await,
            MockUpstream::openai().await,
            MockUpstream::anthropic().await,
            MockUpstream::gemini().await,
        );
        chat.require_key("sk-chat");
        responses.require_key("sk-responses");
        anthropic.require_key("sk-anthropic");
        gemini.require_key("gemini-key");
        let gateway = TestGateway::start(&format!(
            r#"
            [[providers]]
            kind = "openai-compatible"
            name = "chat"
            base_url = "{}"
            api_keys = ["sk-chat"]
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
            chat.url(),
            responses.url(),
            anthropic.url(),
            gemini.url()
        ))
        .await;
        Self {
            chat,
            responses,
            anthropic,
            gemini,
            gateway,
        }
    }

    /// The mock and model for an upstream dialect.
    fn upstream(&self, dialect: Dialect) -> (&MockUpstream, &'static str) {
        match dialect {
            Dialect::OpenAiChat => (&self.chat, "chat-model"),
            Dialect::OpenAiResponses => (&self.responses, "responses-model"),
            Dialect::Anthropic => (&self.anthropic, "claude-model"),
            Dialect::Gemini => (&self.gemini, "gemini-model"),
        }
    }
}

/// The signature each upstream's mock puts on its thinking.
fn signature_of(upstream: Dialect) -> String {
    format!("sig-from-{upstream}")
}

/// What the model answers: thinking, text, two tool calls.
fn answer(upstream: Dialect) -> Vec<Output> {
    vec![
        Output::Thinking {
            text: "The user wants the weather.".to_owned(),
            signature: Some(signature_of(upstream)),
        },
        Output::Text("Let me check, \"Paris\" ☀️.".to_owned()),
        Output::ToolCall {
            id: "call_weather".to_owned(),
            name: "get_weather".to_owned(),
            arguments: r#"{"city":"Paris","unit":"c"}"#.to_owned(),
        },
        Output::ToolCall {
            id: "call_time".to_owned(),
            name: "get_time".to_owned(),
            arguments: "{}".to_owned(),
        },
    ]
}

fn tools() -> Vec<Tool> {
    vec![
        Tool {
            name: "get_weather".to_owned(),
            description: Some("Weather for a city".to_owned()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}),
            strict: None,
        },
        Tool {
            name: "get_time".to_owned(),
            description: None,
            parameters: json!({"type": "object", "properties": {}}),
            strict: None,
        },
    ]
}

/// The first turn: system text, a question with an image, tools, thinking.
fn first_turn(model: &str, stream: bool) -> Request {
    Request {
        model: model.to_owned(),
        system: vec![SystemPart {
            text: "You are a weather assistant.".to_owned(),
            cache: None,
        }],
        messages: vec![Message {
            role: Role::User,
            content: vec![
                Block::text("What is the weather in Paris? Here is a map."),
                Block::Image(Image {
                    source: Source::Base64 {
                        media_type: "image/png".to_owned(),
                        data: "iVBORw0KGgo=".to_owned(),
                    },
                    detail: None,
                }),
            ],
        }],
        tools: tools(),
        tool_choice: Some(ToolChoice::Auto),
        max_tokens: Some(4_000),
        reasoning: Some(Reasoning::Effort(Effort::Low)),
        stream,
        include_usage: true,
        ..Request::default()
    }
}

/// The second turn: the first answer as the client got it, then the tool
/// results (one failed) and a follow-up.
fn second_turn(first: &Request, answer: &Response) -> Request {
    let mut request = first.clone();
    request.messages.push(Message {
        role: Role::Assistant,
        content: answer.content.clone(),
    });
    let mut results: Vec<Block> = answer
        .content
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse(tool) => Some(Block::ToolResult(ToolResult {
                tool_use_id: tool.id.clone(),
                name: Some(tool.name.clone()),
                content: vec![Block::text(if tool.name == "get_weather" {
                    "18 degrees and sunny"
                } else {
                    "clock unavailable"
                })],
                is_error: tool.name == "get_time",
            })),
            _ => None,
        })
        .collect();
    results.push(Block::text("And tomorrow?"));
    request.messages.push(Message {
        role: Role::User,
        content: results,
    });
    request
}

fn texts(response: &Response) -> (String, String) {
    let (mut thinking, mut text) = (String::new(), String::new());
    for block in &response.content {
        match block {
            Block::Thinking(part) => thinking.push_str(&part.text),
            Block::Text(part) => text.push_str(&part.text),
            _ => {}
        }
    }
    (thinking, text)
}

fn calls(response: &Response) -> Vec<(String, Value)> {
    response
        .content
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse(ToolUse { name, input, .. }) => {
                Some((name.clone(), serde_json::from_str(input).unwrap()))
            }
            _ => None,
        })
        .collect()
}

/// The body the upstream mock got last, read back in its dialect.
fn received(mock: &MockUpstream, upstream: Dialect, model: &str) -> Request {
    let requests = mock.requests();
    let last = requests
        .iter()
        .rev()
        .find(|request| request.method == "POST")
        .expect("the upstream got a request");
    dispatch::decode_request(upstream, &last.body, line(model), &mut Vec::new()).unwrap()
}

/// One client dialect against one upstream dialect, every scenario.
async fn pair(client: Dialect, upstream: Dialect) {
    let upstreams = Upstreams::start().await;
    let (mock, model) = upstreams.upstream(upstream);
    let pair = Pair {
        upstreams: &upstreams,
        client,
        upstream,
        mock,
        model,
        label: format!("{client} client => {upstream} upstream"),
    };
    for stream in [false, true] {
        let first = first_turn(model, stream);
        let answer = pair.first_turn(&first).await;
        pair.second_turn(&first, &answer).await;
    }
    pair.errors_and_stops().await;
    pair.metered().await;
    pair.statuses().await;
}

struct Pair<'a> {
    upstreams: &'a Upstreams,
    client: Dialect,
    upstream: Dialect,
    mock: &'a MockUpstream,
    model: &'static str,
    label: String,
}

impl Pair<'_> {
    /// The answer arrives whole in the client's dialect, and the upstream
    /// got the system text, the image, the tools and the thinking request.
    async fn first_turn(&self, first: &Request) -> Response {
        let (label, stream) = (&self.label, first.stream);
        self.mock
            .enqueue(Scenario::outputs(answer(self.upstream)).pieces(3));
        let reply = send(&self.upstreams.gateway, self.client, first).await;
        assert_eq!(
            reply.status,
            200,
            "{label}: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
        assert_eq!(
            reply.headers["x-subgate-provider"],
            upstream_name(self.upstream),
            "{label}"
        );
        let got = read(self.client, stream, &reply.bytes)
            .unwrap_or_else(|error| panic!("{label}, stream {stream}: {}", error.message));
        let (thinking, text) = texts(&got);
        assert_eq!(
            text, "Let me check, \"Paris\" ☀️.",
            "{label}, stream {stream}"
        );
        assert_eq!(
            thinking, "The user wants the weather.",
            "{label}, stream {stream}"
        );
        assert_eq!(
            calls(&got),
            [
                (
                    "get_weather".to_owned(),
                    json!({"city": "Paris", "unit": "c"})
                ),
                ("get_time".to_owned(), json!({}))
            ],
            "{label}, stream {stream}"
        );
        assert_eq!(
            got.stop_reason,
            StopReason::ToolUse,
            "{label}, stream {stream}"
        );

        let sent = received(self.mock, self.upstream, self.model);
        let system: Vec<&str> = sent.system.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(system.join(""), "You are a weather assistant.", "{label}");
        assert!(
            sent.messages[0]
                .content
                .iter()
                .any(|block| matches!(block, Block::Image(_))),
            "{label}: the image was lost"
        );
        let tool_names: Vec<&str> = sent.tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(tool_names, ["get_weather", "get_time"], "{label}");
        assert!(
            sent.reasoning.is_some(),
            "{label}: thinking was not asked for"
        );
        got
    }

    /// The tool results reach the upstream paired with their calls, the
    /// failed one marked; the upstream gets its own signature back when the
    /// client could carry it, and no tagged signature ever leaks.
    async fn second_turn(&self, first: &Request, answer: &Response) {
        let label = &self.label;
        self.mock
            .enqueue(Scenario::reply("Tomorrow looks sunny too."));
        let reply = send(
            &self.upstreams.gateway,
            self.client,
            &second_turn(first, answer),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{label}: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
        let got = read(self.client, first.stream, &reply.bytes).unwrap();
        assert_eq!(texts(&got).1, "Tomorrow looks sunny too.", "{label}");
        let sent = received(self.mock, self.upstream, self.model);
        let assistant = sent
            .messages
            .iter()
            .find(|message| message.role == Role::Assistant)
            .expect("the assistant turn went up");
        let call_ids: Vec<&str> = assistant
            .content
            .iter()
            .filter_map(|block| match block {
                Block::ToolUse(tool) => Some(tool.id.as_str()),
                _ => None,
            })
            .collect();
        let results: Vec<&str> = sent
            .messages
            .iter()
            .flat_map(|message| message.content.iter())
            .filter_map(|block| match block {
                Block::ToolResult(result) => Some(result.tool_use_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(call_ids.len(), 2, "{label}: {assistant:?}");
        assert_eq!(results, call_ids, "{label}: results do not pair with calls");
        let body = String::from_utf8_lossy(&self.mock.requests().last().unwrap().body).into_owned();
        assert!(
            body.contains("clock unavailable") && body.contains("18 degrees and sunny"),
            "{label}"
        );
        let signs = !matches!(self.upstream, Dialect::OpenAiChat);
        let carries = !matches!(self.client, Dialect::OpenAiChat);
        if signs && carries {
            assert!(
                body.contains(&signature_of(self.upstream)),
                "{label}: the signature did not come back\n{body}"
            );
        }
        assert!(
            !body.contains("sg1#"),
            "{label}: a tagged signature leaked upstream\n{body}"
        );
    }

    /// Errors keep their status and take the client's shape; a cut stream
    /// ends with the client's error event; the token limit is the client's
    /// "length" stop.
    async fn errors_and_stops(&self) {
        let label = &self.label;
        self.mock.enqueue(
            Scenario::error(429, &upstream_error_body(self.upstream, 429, "slow down"))
                .header("retry-after", "7"),
        );
        let reply = send(
            &self.upstreams.gateway,
            self.client,
            &first_turn(self.model, false),
        )
        .await;
        assert_eq!(reply.status, 429, "{label}");
        assert_eq!(reply.headers["retry-after"], "7", "{label}");
        assert_error_shape(self.client, &reply.bytes, label);
        self.upstreams.gateway.clear_rests().await;

        self.mock.enqueue(
            Scenario::reply("a long answer that stops")
                .pieces(4)
                .end(StreamEnd::Cut { after: 2 }),
        );
        let reply = send(
            &self.upstreams.gateway,
            self.client,
            &first_turn(self.model, true),
        )
        .await;
        assert_eq!(reply.status, 200, "{label}");
        assert!(
            read(self.client, true, &reply.bytes).is_err(),
            "{label}: a cut stream read as complete:\n{}",
            String::from_utf8_lossy(&reply.bytes)
        );

        self.mock.enqueue(
            Scenario::reply("an answer the upstream gives up on")
                .pieces(4)
                .end(StreamEnd::Error {
                    after: 2,
                    message: "the upstream is overloaded",
                }),
        );
        let reply = send(
            &self.upstreams.gateway,
            self.client,
            &first_turn(self.model, true),
        )
        .await;
        assert_eq!(reply.status, 200, "{label}");
        let failure = read(self.client, true, &reply.bytes).expect_err(label);
        assert!(
            failure.message.contains("the upstream is overloaded"),
            "{label}: the in-stream error lost its message: {failure:?}\n{}",
            String::from_utf8_lossy(&reply.bytes)
        );

        for stream in [false, true] {
            self.mock
                .enqueue(Scenario::reply("cut short").stop(Stop::MaxTokens));
            let reply = send(
                &self.upstreams.gateway,
                self.client,
                &first_turn(self.model, stream),
            )
            .await;
            let got = read(self.client, stream, &reply.bytes).unwrap();
            assert_eq!(
                got.stop_reason,
                StopReason::MaxTokens,
                "{label}, stream {stream}"
            );
        }
    }

    /// Every request was metered with its dialects and the upstream's counts.
    async fn metered(&self) {
        let label = &self.label;
        let rows = self.upstreams.gateway.usage(9).await;
        assert_eq!(rows.len(), 9, "{label}");
        for row in &rows {
            assert_eq!(row.client_dialect, self.client.as_str(), "{label}");
            assert_eq!(
                row.upstream_dialect.as_deref(),
                Some(self.upstream.as_str()),
                "{label}"
            );
        }
        let ok: Vec<_> = rows
            .iter()
            .filter(|row| row.status == 200 && row.error_class.is_none())
            .collect();
        assert!(
            ok.iter()
                .all(|row| row.usage_reported && row.input_tokens > 0 && row.output_tokens > 0),
            "{label}: {ok:?}"
        );
    }
}

/// How each client dialect names an upstream's error status: the status
/// it gets (Anthropic clients always get the upstream's), OpenAI's `type`,
/// Anthropic's `error.type`, Gemini's `status`.
const STATUSES: [(u16, u16, &str, &str, &str); 11] = [
    (
        400,
        400,
        "invalid_request_error",
        "invalid_request_error",
        "INVALID_ARGUMENT",
    ),
    (
        401,
        401,
        "authentication_error",
        "authentication_error",
        "UNAUTHENTICATED",
    ),
    (
        403,
        403,
        "permission_error",
        "permission_error",
        "PERMISSION_DENIED",
    ),
    (
        404,
        404,
        "invalid_request_error",
        "not_found_error",
        "NOT_FOUND",
    ),
    (
        413,
        413,
        "invalid_request_error",
        "request_too_large",
        "INVALID_ARGUMENT",
    ),
    (
        429,
        429,
        "rate_limit_error",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    ),
    (500, 500, "upstream_error", "api_error", "INTERNAL"),
    (502, 502, "upstream_error", "api_error", "UNAVAILABLE"),
    (503, 503, "server_error", "overloaded_error", "UNAVAILABLE"),
    (504, 504, "timeout_error", "api_error", "DEADLINE_EXCEEDED"),
    // Anthropic's "overloaded": other clients know it as 503.
    (529, 503, "server_error", "overloaded_error", "UNAVAILABLE"),
];

impl Pair<'_> {
    /// Every error status an upstream answers with reaches the client with
    /// its status, in the client's shape and with the upstream's message;
    /// on a pass-through the upstream's own body comes back unchanged.
    async fn statuses(&self) {
        for (sent, expected, openai, anthropic, gemini) in STATUSES {
            let label = format!("{}, upstream status {sent}", self.label);
            let message = format!("the upstream says {sent}");
            let body = status_error_body(self.upstream, sent, &message);
            self.mock.enqueue(Scenario::error(sent, &body));
            let reply = send(
                &self.upstreams.gateway,
                self.client,
                &first_turn(self.model, false),
            )
            .await;
            // The refusal rested the only account; this test is about its
            // shape, not about routing.
            self.upstreams.gateway.clear_rests().await;
            if self.client == self.upstream {
                assert_eq!(reply.status, sent, "{label}");
                assert_eq!(String::from_utf8_lossy(&reply.bytes), body, "{label}");
                continue;
            }
            // Anthropic clients know 529 as it is.
            let expected = if self.client == Dialect::Anthropic {
                sent
            } else {
                expected
            };
            assert_eq!(reply.status, expected, "{label}");
            let value: Value = serde_json::from_slice(&reply.bytes).expect(&label);
            let (field, name) = match self.client {
                Dialect::OpenAiChat | Dialect::OpenAiResponses => (&value["error"]["type"], openai),
                Dialect::Anthropic => {
                    assert_eq!(value["type"], "error", "{label}");
                    (&value["error"]["type"], anthropic)
                }
                Dialect::Gemini => {
                    assert_eq!(value["error"]["code"], expected, "{label}");
                    (&value["error"]["status"], gemini)
                }
            };
            assert_eq!(field, name, "{label}: {value}");
            assert!(
                value["error"]["message"]
                    .as_str()
                    .is_some_and(|text| text.contains(&message)),
                "{label}: {value}"
            );
        }
    }
}

/// An error body as each upstream writes it for `status`.
fn status_error_body(upstream: Dialect, status: u16, message: &str) -> String {
    let (openai, anthropic, gemini) = match status {
        400 | 413 => (
            "invalid_request_error",
            "invalid_request_error",
            "INVALID_ARGUMENT",
        ),
        401 => (
            "invalid_request_error",
            "authentication_error",
            "UNAUTHENTICATED",
        ),
        403 => (
            "invalid_request_error",
            "permission_error",
            "PERMISSION_DENIED",
        ),
        404 => ("invalid_request_error", "not_found_error", "NOT_FOUND"),
        429 => ("requests", "rate_limit_error", "RESOURCE_EXHAUSTED"),
        503 | 529 => ("server_error", "overloaded_error", "UNAVAILABLE"),
        504 => ("server_error", "api_error", "DEADLINE_EXCEEDED"),
        _ => ("server_error", "api_error", "INTERNAL"),
    };
    match upstream {
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            json!({"error": {"message": message, "type": openai, "param": null, "code": null}})
        }
        Dialect::Anthropic => {
            json!({"type": "error", "error": {"type": anthropic, "message": message}})
        }
        Dialect::Gemini => {
            json!({"error": {"code": status, "message": message, "status": gemini}})
        }
    }
    .to_string()
}

fn upstream_name(upstream: Dialect) -> &'static str {
    match upstream {
        Dialect::OpenAiChat => "chat",
        Dialect::OpenAiResponses => "responses",
        Dialect::Anthropic => "anthropic",
        Dialect::Gemini => "gemini",
    }
}

/// An error body as each upstream writes it.
fn upstream_error_body(upstream: Dialect, status: u16, message: &str) -> String {
    match upstream {
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            json!({"error": {"message": message, "type": "requests", "param": null, "code": "rate_limit_exceeded"}}).to_string()
        }
        Dialect::Anthropic => json!({"type": "error", "error": {"type": "rate_limit_error", "message": message}}).to_string(),
        Dialect::Gemini => json!({"error": {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED"}}).to_string(),
    }
}

fn assert_error_shape(client: Dialect, body: &[u8], label: &str) {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("{label}: not JSON: {}", String::from_utf8_lossy(body)));
    let ok = match client {
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            value["error"]["message"].is_string() && value["error"]["type"].is_string()
        }
        Dialect::Anthropic => {
            value["type"] == "error" && value["error"]["type"] == "rate_limit_error"
        }
        Dialect::Gemini => {
            value["error"]["code"] == 429 && value["error"]["status"] == "RESOURCE_EXHAUSTED"
        }
    };
    assert!(ok, "{label}: not a {client} error: {value}");
    assert!(
        value.to_string().contains("slow down"),
        "{label}: the upstream's message was lost: {value}"
    );
}

macro_rules! pairs {
    ($($name:ident: $client:ident => $upstream:ident;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                pair(Dialect::$client, Dialect::$upstream).await;
            }
        )*
    };
}

pairs! {
    chat_client_chat_upstream: OpenAiChat => OpenAiChat;
    chat_client_responses_upstream: OpenAiChat => OpenAiResponses;
    chat_client_anthropic_upstream: OpenAiChat => Anthropic;
    chat_client_gemini_upstream: OpenAiChat => Gemini;
    responses_client_chat_upstream: OpenAiResponses => OpenAiChat;
    responses_client_responses_upstream: OpenAiResponses => OpenAiResponses;
    responses_client_anthropic_upstream: OpenAiResponses => Anthropic;
    responses_client_gemini_upstream: OpenAiResponses => Gemini;
    anthropic_client_chat_upstream: Anthropic => OpenAiChat;
    anthropic_client_responses_upstream: Anthropic => OpenAiResponses;
    anthropic_client_anthropic_upstream: Anthropic => Anthropic;
    anthropic_client_gemini_upstream: Anthropic => Gemini;
    gemini_client_chat_upstream: Gemini => OpenAiChat;
    gemini_client_responses_upstream: Gemini => OpenAiResponses;
    gemini_client_anthropic_upstream: Gemini => Anthropic;
    gemini_client_gemini_upstream: Gemini => Gemini;
}

#[tokio::test]
async fn thinking_from_one_provider_never_reaches_another() {
    let upstreams = Upstreams::start().await;
    // An Anthropic client got thinking signed by the Gemini provider, and
    // now talks to the Anthropic one.
    let mut request = first_turn("claude-model", false);
    request.messages.push(Message {
        role: Role::Assistant,
        content: vec![
            Block::Thinking(Thinking {
                text: "Hmm.".to_owned(),
                signature: Some(subgate_protocol::canonical::Signature::from_upstream(
                    "sg1#gemini#sig-from-gemini",
                    "gateway",
                )),
            }),
            Block::text("Answer."),
        ],
    });
    request.messages.push(Message {
        role: Role::User,
        content: vec![Block::text("More?")],
    });
    upstreams.anthropic.enqueue(Scenario::reply("Sure."));
    let reply = send(&upstreams.gateway, Dialect::Anthropic, &request).await;
    assert_eq!(reply.status, 200);
    let body =
        String::from_utf8_lossy(&upstreams.anthropic.requests().last().unwrap().body).into_owned();
    assert!(
        !body.contains("sig-from-gemini") && !body.contains("Hmm."),
        "{body}"
    );
}
