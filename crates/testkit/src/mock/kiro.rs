//! Kiro, the AWS CodeWhisperer / Amazon Q Developer backend as the Kiro IDE
//! reaches it (`reference/protocols.md` §5, §8 "Kiro mock"): the Kiro
//! desktop auth service, AWS SSO OIDC and the API, on one port.
//!
//! Sign-in ([`MockUpstream::auth_url`] stands for
//! `https://prod.us-east-1.auth.desktop.kiro.dev` and
//! `https://oidc.us-east-1.amazonaws.com`):
//!
//! - `POST /refreshToken` (social logins, §5.1): JSON `{"refreshToken"}` and
//!   a `User-Agent` containing `KiroIDE` → `{"accessToken","refreshToken",
//!   "profileArn","expiresIn"}` (3600 by default). The refresh token rotates
//!   and the spent one dies (mock choice: the source does not say; a client
//!   that reuses a spent token gets caught), so does an unknown one, or an
//!   `IdC` login's: 400 `{"error":"invalid_grant","error_description"}`.
//!   Mock choices: another `User-Agent` gets 400 `invalid_request`, and the
//!   description texts are the mock's.
//! - `POST /token` (AWS SSO OIDC `CreateToken`, camelCase JSON): `clientId`,
//!   `clientSecret` and `grantType` are needed (400 `invalid_request`,
//!   which is also what a snake-case body gets); an unknown client or a
//!   wrong secret gets 401 `invalid_client` (401 as in AWS's service model,
//!   where `InvalidClientException` is the one 401 of the API). With
//!   `grantType` `refresh_token` and `refreshToken` → `{"accessToken",
//!   "refreshToken","expiresIn","tokenType":"Bearer"}` (no `profileArn`);
//!   the refresh token rotates, and one that is spent, unknown, or issued
//!   to another client (or to a social login) gets 400 `invalid_grant`.
//!   With the device-code grant and `deviceCode`: 400
//!   `{"error":"authorization_pending"}` a settable number of times
//!   (default once, [`MockUpstream::set_kiro_device_pending`]), then the
//!   polls follow [`MockOAuth::script_device`](super::MockOAuth::script_device)
//!   (`slow_down`, `expired_token`, `access_denied`), approving once it is
//!   used up (mock choice: the user approves by themselves, nobody opens the
//!   verification page). Other grant types get 400
//!   `unsupported_grant_type`. Every OIDC error also names its exception in
//!   `x-amzn-errortype`, as restJson1 services do.
//! - `POST /client/register` `{"clientName","clientType":"public","scopes"}`
//!   → `{"clientId","clientSecret","clientIdIssuedAt",
//!   "clientSecretExpiresAt"}` (90 days); other metadata gets 400
//!   `invalid_client_metadata`.
//! - `POST /device_authorization` `{"clientId","clientSecret","startUrl"}` →
//!   `{"deviceCode","userCode","verificationUri",
//!   "verificationUriComplete","expiresIn":600,"interval"}` (interval 1 s
//!   by default, [`MockOAuth::set_device_interval`](super::MockOAuth::set_device_interval)).
//!   Mock choice: the verification URIs point at the mock, which serves no
//!   page there.
//! - Credential files as the clients keep them (§5.2), their tokens issued
//!   by the mock: [`MockUpstream::kiro_token_file`],
//!   [`MockUpstream::kiro_client_registration`],
//!   [`MockUpstream::kiro_cli_token`], [`MockUpstream::kiro_cli_registration`].
//!   Mock choices: `clientIdHash` is the SHA-256 (hex) of the client id, and
//!   the IDE and kiro-cli each have one client, registered on first use.
//!   [`MockUpstream::oauth`] expires tokens and counts refreshes (both
//!   refresh routes count).
//!
//! The API ([`MockUpstream::url`] stands for `https://q.us-east-1.amazonaws.com`):
//! every route needs `Authorization: Bearer` with a live access token the
//! mock issued, else 403 `{"message":"The bearer token included in the
//! request is invalid.","reason":null}` (what Kiro answers for an expired
//! token; mock choice: the same for a missing or unknown one).
//!
//! - `POST /generateAssistantResponse` (IDE style, §5.3), checked in this
//!   order, every refusal recorded and leaving queued scenarios alone:
//!   the bearer (403); `content-type` `application/json` or
//!   `application/x-amz-json-1.0`, `x-amzn-codewhisperer-optout`,
//!   `amz-sdk-invocation-id` and a `user-agent` containing `KiroIDE-` (mock
//!   choice: 400 "Improperly formed request.", the real answer is unknown);
//!   the body's size, at most 600 000 bytes by default
//!   ([`MockUpstream::set_kiro_max_body`]), else 400 "Input is too long."
//!   `CONTENT_LENGTH_EXCEEDS_THRESHOLD`; then the body, each fault answered
//!   400 `{"message":"Improperly formed request.","reason":null}`: a social
//!   login's token needs a root `profileArn` (mock choice: any
//!   `arn:aws:codewhisperer:` ARN will do; `IdC` logins may leave it out);
//!   `conversationState.currentMessage.userInputMessage` with non-empty
//!   `content` and a `modelId` (one the mock does not list gets 400
//!   "Invalid model. Please select a different model to continue."
//!   `INVALID_MODEL_ID`); `history`, when there, starting with a
//!   `userInputMessage`, alternating strictly and ending with an
//!   `assistantResponseMessage`; no empty `content` anywhere (nor an empty
//!   tool result); every `toolResults` entry (current or history) naming
//!   the `toolUseId` of a `toolUses` entry of an earlier assistant message,
//!   with `status` `success` or `error`; any `toolResults` needing `tools` in
//!   the current `userInputMessageContext`; tools named in 1–64 characters,
//!   with a description, and an `inputSchema.json` without
//!   `additionalProperties` or an empty `required` anywhere; `images`
//!   entries `{"format":png|jpeg|gif|webp,"source":{"bytes":<base64>}}`.
//!   Mock choices: `toolUses` need `toolUseId`, `name` and an `input`
//!   object; `origin`, `chatTriggerType` and `conversationId` are not
//!   checked; the mock says which rule failed in an `x-mock-refusal`
//!   header. The scenario's error answers come after these checks:
//!   [`kiro_monthly_limit`], [`kiro_overage_limit`], [`kiro_throttled`],
//!   [`kiro_server_error`], [`kiro_input_too_long`].
//! - Its answer: 200, `content-type: application/vnd.amazon.eventstream`,
//!   AWS event-stream frames (§5.4; `:message-type`, `:event-type`,
//!   `:content-type`, all string headers) with `x-amzn-requestid`. Text
//!   comes in the scenario's pieces as `assistantResponseEvent`
//!   `{"content"}`; reasoning outputs as `reasoningContentEvent`
//!   `{"text","signature"}` (the signature on the last piece); each tool
//!   call as `toolUseEvent` `{"toolUseId","name","input":""}`, then its
//!   input in three fragments cut mid-token, the last with `"stop":true`;
//!   then `meteringEvent` `{"unit":"credit","unitPlural":"credits",
//!   "usage"}` and `contextUsageEvent` `{"contextUsagePercentage"}`. Mock
//!   choices: 0.25 credits unless scripted; the context usage, unless
//!   scripted, is the mock's word count of the conversation and answer as a
//!   percentage of 200 000 tokens; `Stop::MaxTokens` ends the answer as a
//!   truncated one (Kiro has no stop reason: a missing metering and context
//!   usage is how clients tell). A [`KiroScript`] on the scenario adds
//!   Kiro's quirks (re-emitted tool uses, a repeated chunk, truncation,
//!   token usage, in-stream exceptions, errors and `invalidStateEvent`s,
//!   payloads nested under their event type, thinking tags, a stalled first
//!   frame, frames cut across HTTP chunks). The scenario's `StreamEnd::Error`
//!   is an `InternalServerException` exception frame (mock choice);
//!   `malformed_chunk_at` sends bytes that are no frame. Each answer that
//!   meters adds its credits to the usage `getUsageLimits` reports (mock
//!   choice).
//! - `GET /ListAvailableModels?origin=…&maxResults=N[&profileArn][&nextToken]`
//!   (§5.6) → `{"defaultModel":{"modelId"},"models":[…],"nextToken"}`, `N`
//!   (1–100, default 50) models a page, `nextToken` null on the last.
//!   Models: `auto` (the default when listed, else the first), `claude-sonnet-4.5`,
//!   `claude-haiku-4.5`, `claude-opus-4.5` ([`MockUpstream::set_models`]
//!   changes them), each with `modelName`, `description`,
//!   `supportedInputTypes`, `tokenLimits` (200 000 in, 64 000 out),
//!   `promptCaching`, `rateMultiplier`, `rateUnit` `Credit`. Mock choices:
//!   the names, descriptions and multipliers (1, 1.3, 0.4, 2.2; 1 for other
//!   models) are the mock's; a missing `origin`, a bad `maxResults` or a
//!   `nextToken` the mock did not issue get 400 "Improperly formed
//!   request."; `profileArn` is not checked.
//! - `GET /getUsageLimits?origin=…&resourceType=AGENTIC_REQUEST[&profileArn]`
//!   (§5.6) → `userInfo`, `nextDateReset`, `subscriptionInfo` (the title is
//!   the identity's plan, `KIRO PRO` by default), `overageConfiguration`
//!   and one `usageBreakdownList` entry: usage (default 0 of 1000, resetting
//!   on the first of next month, [`MockUpstream::set_kiro_usage`]),
//!   `bonuses` ([`MockUpstream::add_kiro_bonus`]), `freeTrialInfo` when set
//!   ([`MockUpstream::set_kiro_free_trial`]), `overageCap` 10,
//!   `overageRate` 0.04 and `currentOverages` (mock choice: the credits used
//!   beyond the base limit, active bonuses and active trial). Missing
//!   parameters get 400 (mock choice).
//!
//! Not served: the CLI style (`POST /` with `x-amz-target`), API keys,
//! external identity providers and MCP.

mod auth;
mod frames;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{
    Ask, Check, Gate, admit, json_response, output_words, record, stream_chunked, words,
};
use super::oauth::{Access, Flavor, Identity, bearer, civil, note, now_s, query, uuid_like};
use super::{MockUpstream, OutcomeGuard, Output, Scenario, State, Stop, StreamEnd, lock};
use validate::Fault;

/// The profile ARN social (Google/GitHub) logins share (§5.3).
pub const KIRO_PROFILE_ARN: &str =
    "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";

/// The region of every login the mock issues.
const REGION: &str = "us-east-1";

/// The Builder ID start URL (§5.1).
const START_URL: &str = "https://view.awsapps.com/start";

/// The scopes a Builder ID login asks for (§5.1).
const BUILDER_ID_SCOPES: [&str; 3] = [
    "codewhisperer:completions",
    "codewhisperer:analysis",
    "codewhisperer:conversations",
];

/// The models a new mock lists.
const DEFAULT_MODELS: [&str; 4] = [
    "auto",
    "claude-sonnet-4.5",
    "claude-haiku-4.5",
    "claude-opus-4.5",
];

/// Every model's input limit, in tokens.
const MAX_INPUT_TOKENS: u32 = 200_000;

/// The credits an answer meters unless scripted.
const DEFAULT_CREDITS: f64 = 0.25;

/// Kiro's answer to a bearer it does not take.
const BEARER_INVALID: &str = "The bearer token included in the request is invalid.";

/// Kiro's answer to a body it does not take.
const MALFORMED: &str = "Improperly formed request.";

/// Which login a Kiro credential file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KiroLogin {
    /// A Google/GitHub login through the Kiro desktop auth service: refreshed
    /// at `/refreshToken`, with the shared profile ARN.
    Social,
    /// An AWS Builder ID / IAM Identity Center login: refreshed through AWS
    /// SSO OIDC with its registered client, without a profile ARN.
    Idc,
}

/// A registered OIDC client.
#[derive(Debug, Clone)]
struct Client {
    secret: String,
    issued_at_s: u64,
    expires_at_s: u64,
}

/// A device login in progress.
#[derive(Debug)]
struct DeviceLogin {
    client: String,
    /// `authorization_pending` answers left.
    pending: usize,
}

/// A usage allowance beyond the base limit.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    current: f64,
    limit: f64,
    active: bool,
}

/// Kiro's account and sign-in state.
#[derive(Debug)]
pub(crate) struct Settings {
    clients: HashMap<String, Client>,
    ide_client: Option<String>,
    cli_client: Option<String>,
    devices: HashMap<String, DeviceLogin>,
    device_pending: usize,
    max_body: usize,
    usage: f64,
    limit: f64,
    next_reset: i64,
    bonuses: Vec<Allowance>,
    free_trial: Option<Allowance>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            clients: HashMap::new(),
            ide_client: None,
            cli_client: None,
            devices: HashMap::new(),
            device_pending: 1,
            max_body: 600_000,
            usage: 0.0,
            limit: 1000.0,
            next_reset: first_of_next_month(now_s()),
            bonuses: Vec::new(),
            free_trial: None,
        }
    }
}

/// Days from 1970-01-01 to a date (Howard Hinnant's `days_from_civil`, for
/// dates after the epoch).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Midnight UTC on the first of the month after `unix`, in seconds.
fn first_of_next_month(unix: u64) -> i64 {
    let (year, month, _) = civil(unix / 86_400);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    i64::try_from(days_from_civil(year, month, 1) * 86_400).unwrap_or(i64::MAX)
}

/// A failure inside a 200 stream.
#[derive(Debug, Clone)]
enum Interrupt {
    Exception { kind: String, message: String },
    Error { code: String, message: String },
    InvalidState { reason: String, message: String },
}

/// Kiro's quirks in one answer, attached to a scenario with
/// [`Scenario::kiro`]. By default an answer is well-formed: each tool use
/// once, no repeated chunk, metering and context usage at the end.
#[derive(Debug, Clone, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches of a test script"
)]
pub struct KiroScript {
    duplicate_tool_uses: bool,
    repeat_text_chunk: bool,
    truncated: bool,
    truncated_tool_input: bool,
    wrapped: bool,
    credits: Option<f64>,
    context_usage: Option<f64>,
    token_usage: Option<[u64; 4]>,
    interrupt: Option<(usize, Interrupt)>,
    thinking: Option<String>,
    first_frame_delay: Duration,
    chunk_bytes: Option<usize>,
}

impl KiroScript {
    /// A script with no quirks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Each finished tool use is sent again, once, with the same
    /// `toolUseId`, as one `toolUseEvent` with the whole input and
    /// `"stop":true`.
    #[must_use]
    pub fn duplicate_tool_uses(mut self) -> Self {
        self.duplicate_tool_uses = true;
        self
    }

    /// The first text chunk is sent twice in a row.
    #[must_use]
    pub fn repeat_text_chunk(mut self) -> Self {
        self.repeat_text_chunk = true;
        self
    }

    /// The answer ends without `meteringEvent` and `contextUsageEvent` (and
    /// `metadataEvent`): truncated upstream.
    #[must_use]
    pub fn truncated(mut self) -> Self {
        self.truncated = true;
        self
    }

    /// The last tool call's input stops half-way, mid-JSON, with no `stop`,
    /// and the answer ends there, truncated.
    #[must_use]
    pub fn truncated_tool_input(mut self) -> Self {
        self.truncated_tool_input = true;
        self
    }

    /// `meteringEvent.usage` (default 0.25).
    #[must_use]
    pub fn credits(mut self, credits: f64) -> Self {
        self.credits = Some(credits);
        self
    }

    /// `contextUsageEvent.contextUsagePercentage` (default: the mock's word
    /// count of conversation and answer over 200 000 tokens).
    #[must_use]
    pub fn context_usage(mut self, percentage: f64) -> Self {
        self.context_usage = Some(percentage);
        self
    }

    /// Adds a `metadataEvent` with `tokenUsage` after the context usage;
    /// `totalTokens` is the sum of the four.
    #[must_use]
    pub fn metadata_token_usage(
        mut self,
        uncached_input: u64,
        cache_read: u64,
        cache_write: u64,
        output: u64,
    ) -> Self {
        self.token_usage = Some([uncached_input, cache_read, cache_write, output]);
        self
    }

    /// After `chunks` text chunks, an `exception` message
    /// (`:exception-type` `kind`, payload `{"message"}`) ends the answer.
    #[must_use]
    pub fn exception_after(mut self, chunks: usize, kind: &str, message: &str) -> Self {
        let interrupt = Interrupt::Exception {
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        self.interrupt = Some((chunks, interrupt));
        self
    }

    /// After `chunks` text chunks, an `error` message (`:error-code` `code`,
    /// `:error-message` and payload `message`) ends the answer.
    #[must_use]
    pub fn error_after(mut self, chunks: usize, code: &str, message: &str) -> Self {
        let interrupt = Interrupt::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        self.interrupt = Some((chunks, interrupt));
        self
    }

    /// After `chunks` text chunks, an `invalidStateEvent`
    /// `{"reason","message"}` ends the answer.
    #[must_use]
    pub fn invalid_state_after(mut self, chunks: usize, reason: &str, message: &str) -> Self {
        let interrupt = Interrupt::InvalidState {
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        self.interrupt = Some((chunks, interrupt));
        self
    }

    /// Every event's payload is nested under its event type
    /// (`{"assistantResponseEvent":{"content":…}}`).
    #[must_use]
    pub fn wrapped(mut self) -> Self {
        self.wrapped = true;
        self
    }

    /// The answer starts with `<thinking>text</thinking>` and a blank line
    /// in four text chunks, each tag cut in the middle, as a model prompted
    /// with tag injection writes it.
    #[must_use]
    pub fn thinking(mut self, text: &str) -> Self {
        self.thinking = Some(text.to_owned());
        self
    }

    /// Sends the response head, then stalls this long before the first
    /// frame (for first-token timeouts).
    #[must_use]
    pub fn first_frame_delay(mut self, delay: Duration) -> Self {
        self.first_frame_delay = delay;
        self
    }

    /// Sends the body in HTTP chunks of `bytes` bytes, cutting frames
    /// anywhere.
    #[must_use]
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = Some(bytes.max(1));
        self
    }
}

/// Kiro's error body.
fn kiro_error(status: StatusCode, message: &str, reason: Option<&str>) -> Response {
    json_response(status, &json!({"message": message, "reason": reason}))
}

/// 400 "Improperly formed request.", saying why in `x-mock-refusal`.
fn malformed(why: &str) -> Response {
    let mut response = kiro_error(StatusCode::BAD_REQUEST, MALFORMED, None);
    if let Ok(value) = HeaderValue::try_from(why) {
        response.headers_mut().insert("x-mock-refusal", value);
    }
    response
}

fn error_scenario(status: u16, message: &str, reason: Option<&str>) -> Scenario {
    Scenario::error(
        status,
        &json!({"message": message, "reason": reason}).to_string(),
    )
}

/// The 402 Kiro sends when the month's credits are used up (§5.5):
/// `{"message":"You have reached the limit.","reason":"MONTHLY_REQUEST_COUNT"}`.
pub fn kiro_monthly_limit() -> Scenario {
    error_scenario(
        402,
        "You have reached the limit.",
        Some("MONTHLY_REQUEST_COUNT"),
    )
}

/// The 402 Kiro sends when the overage cap is hit (§5.5): reason
/// `OVERAGE_REQUEST_LIMIT_EXCEEDED`.
pub fn kiro_overage_limit() -> Scenario {
    error_scenario(
        402,
        "You have reached the limit for overages.",
        Some("OVERAGE_REQUEST_LIMIT_EXCEEDED"),
    )
}

/// A 429 (§5.5). Mock choice: the body `{"message":"Too many
/// requests","reason":null}`, as the real one is not known.
pub fn kiro_throttled() -> Scenario {
    error_scenario(429, "Too many requests", None)
}

/// A server error with `status` (500, 503…). Mock choice: the body
/// `{"message":"Encountered an unexpected error when processing the
/// request, please try again.","reason":null}`.
pub fn kiro_server_error(status: u16) -> Scenario {
    error_scenario(
        status,
        "Encountered an unexpected error when processing the request, please try again.",
        None,
    )
}

/// The 400 for a context that is too long (§5.5): "Input is too long."
/// `CONTENT_LENGTH_EXCEEDS_THRESHOLD`, whatever the body's size.
pub fn kiro_input_too_long() -> Scenario {
    error_scenario(
        400,
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    )
}

impl MockUpstream {
    /// Starts a mock of Kiro: the desktop auth service's `POST
    /// /refreshToken`; AWS SSO OIDC's `POST /token`, `POST /client/register`,
    /// `POST /device_authorization`; the API's `POST
    /// /generateAssistantResponse` (answered in AWS event-stream frames),
    /// `GET /ListAvailableModels`, `GET /getUsageLimits`. Both
    /// [`MockUpstream::url`] and [`MockUpstream::auth_url`] are
    /// `http://127.0.0.1:PORT`. Credentials come from
    /// [`MockUpstream::kiro_token_file`] and its siblings, or a device login.
    pub async fn kiro() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        state.oauth.set_flavor(Flavor::Kiro);
        *lock(&state.models) = DEFAULT_MODELS.map(str::to_owned).to_vec();
        let router = axum::Router::new()
            .route("/refreshToken", post(auth::refresh_token))
            .route("/token", post(auth::token))
            .route("/client/register", post(auth::register))
            .route("/device_authorization", post(auth::device_authorization))
            .route("/generateAssistantResponse", post(generate))
            .route("/ListAvailableModels", get(list_models))
            .route("/getUsageLimits", get(usage_limits))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// The largest `generateAssistantResponse` body taken, in bytes
    /// (default 600 000); a larger one gets 400 "Input is too long.".
    pub fn set_kiro_max_body(&self, bytes: usize) {
        lock(&self.state.kiro).max_body = bytes;
    }

    /// How many polls of a device login answer `authorization_pending`
    /// before the poll script (default 1; applies to logins started from
    /// now on).
    pub fn set_kiro_device_pending(&self, polls: usize) {
        lock(&self.state.kiro).device_pending = polls;
    }

    /// The base usage `getUsageLimits` reports: `current` of `limit`
    /// credits, resetting at `next_reset_unix_s`.
    pub fn set_kiro_usage(&self, current: f64, limit: f64, next_reset_unix_s: i64) {
        let mut settings = lock(&self.state.kiro);
        settings.usage = current;
        settings.limit = limit;
        settings.next_reset = next_reset_unix_s;
    }

    /// Adds a bonus to the usage report (`status` `ACTIVE` or `EXPIRED`).
    pub fn add_kiro_bonus(&self, current: f64, limit: f64, active: bool) {
        lock(&self.state.kiro).bonuses.push(Allowance {
            current,
            limit,
            active,
        });
    }

    /// Sets the usage report's free trial (`freeTrialStatus` `ACTIVE` or
    /// `EXPIRED`).
    pub fn set_kiro_free_trial(&self, current: f64, limit: f64, active: bool) {
        lock(&self.state.kiro).free_trial = Some(Allowance {
            current,
            limit,
            active,
        });
    }

    /// The base usage so far, in credits: what was set plus what the
    /// answers metered.
    pub fn kiro_usage(&self) -> f64 {
        lock(&self.state.kiro).usage
    }
}

/// The bearer's identity, or Kiro's 403.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<Identity, Box<Response>> {
    match bearer(headers, false).map_or(Access::Unknown, |token| state.oauth.access(token)) {
        Access::Valid(identity) => Ok(identity),
        Access::Unknown | Access::Expired => Err(Box::new(kiro_error(
            StatusCode::FORBIDDEN,
            BEARER_INVALID,
            None,
        ))),
    }
}

/// What the IDE's requests carry that the mock insists on.
fn header_fault(headers: &HeaderMap) -> Option<&'static str> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .unwrap_or_default()
    };
    let kind = header(CONTENT_TYPE);
    if !kind.starts_with("application/json") && !kind.starts_with("application/x-amz-json-1.0") {
        return Some("content-type must be application/json or application/x-amz-json-1.0");
    }
    if header(http::HeaderName::from_static("x-amzn-codewhisperer-optout")).is_empty() {
        return Some("x-amzn-codewhisperer-optout is missing");
    }
    if header(http::HeaderName::from_static("amz-sdk-invocation-id")).is_empty() {
        return Some("amz-sdk-invocation-id is missing");
    }
    if !header(USER_AGENT).contains("KiroIDE-") {
        return Some("user-agent must contain KiroIDE-<version>-<machineId>");
    }
    None
}

/// The checks before the body is read: bearer, headers, size.
fn precheck(state: &State, headers: &HeaderMap, size: usize) -> Option<Response> {
    if let Err(refusal) = authenticate(state, headers) {
        return Some(*refusal);
    }
    if let Some(why) = header_fault(headers) {
        return Some(malformed(why));
    }
    if size > lock(&state.kiro).max_body {
        return Some(kiro_error(
            StatusCode::BAD_REQUEST,
            "Input is too long.",
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ));
    }
    None
}

/// The body's checks (see the module's documentation).
fn screen(state: &State, ask: &Ask<'_>) -> Option<Response> {
    let body = ask.body?;
    let social = match authenticate(state, ask.headers) {
        Ok(identity) => identity.client.is_none(),
        Err(refusal) => return Some(*refusal),
    };
    let models = lock(&state.models).clone();
    match validate::validate(body, social, &models) {
        Ok(()) => None,
        Err(Fault::InvalidModel) => Some(kiro_error(
            StatusCode::BAD_REQUEST,
            "Invalid model. Please select a different model to continue.",
            Some("INVALID_MODEL_ID"),
        )),
        Err(Fault::Malformed(why)) => Some(malformed(&why)),
    }
}

const KIRO_GATE: Gate = Gate {
    check: Check::Request(screen),
    credential: "authorization",
    not_json: || malformed("the body is not JSON"),
};

/// `POST /generateAssistantResponse`.
async fn generate(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), body.clone());
    if let Some(refusal) = precheck(&state, &headers, body.len()) {
        OutcomeGuard::new(state.clone(), index).complete();
        return refusal;
    }
    let (scenario, guard, request) =
        match admit(&state, index, &uri, &headers, &body, &KIRO_GATE).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    answer(&state, scenario, guard, &request)
}

/// The conversation and answer's share of the model's input limit, in
/// percent: the mock's word counts standing in for tokens.
fn context_percentage(request: &Value, outputs: &[Output]) -> f64 {
    let used = words(&request["conversationState"]) + output_words(outputs);
    let used = f64::from(u32::try_from(used).unwrap_or(u32::MAX));
    used / f64::from(MAX_INPUT_TOKENS) * 100.0
}

/// The event stream of an admitted request.
fn answer(state: &State, mut scenario: Scenario, guard: OutcomeGuard, request: &Value) -> Response {
    let script = scenario.kiro.clone().unwrap_or_default();
    let outputs = scenario.answer();
    let tail = frames::Tail {
        credits: script.credits.unwrap_or(DEFAULT_CREDITS),
        context: script
            .context_usage
            .unwrap_or_else(|| context_percentage(request, &outputs)),
        truncated: script.truncated || matches!(scenario.stop, Some(Stop::MaxTokens)),
    };
    let (wires, metered) = frames::answer(&outputs, &scenario, &script, &tail);
    // A stream the scenario ends early never reaches its metering.
    let content = wires.iter().filter(|wire| wire.content).count();
    let reaches_end = match scenario.end {
        StreamEnd::Complete => true,
        StreamEnd::Cut { after } | StreamEnd::Reset { after } | StreamEnd::Error { after, .. } => {
            after >= content
        }
    };
    if metered && reaches_end {
        lock(&state.kiro).usage += tail.credits;
    }
    scenario.body_delay = scenario.body_delay.max(script.first_frame_delay);
    let mut response = stream_chunked(
        wires,
        &scenario,
        guard,
        "application/vnd.amazon.eventstream",
        &|message, _| frames::exception("InternalServerException", message),
        script.chunk_bytes,
    );
    if let Ok(id) = HeaderValue::try_from(uuid_like()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// A model as `ListAvailableModels` describes it: name, description and
/// credit multiplier (mock values).
fn model_entry(id: &str) -> Value {
    let (name, description, multiplier) = match id {
        "auto" => (
            "Auto",
            "Models chosen by task for optimal usage and consistent quality",
            1.0,
        ),
        "claude-sonnet-4.5" => ("Claude Sonnet 4.5", "The latest Claude Sonnet model", 1.3),
        "claude-haiku-4.5" => ("Claude Haiku 4.5", "The latest Claude Haiku model", 0.4),
        "claude-opus-4.5" => ("Claude Opus 4.5", "The latest Claude Opus model", 2.2),
        other => (other, other, 1.0),
    };
    json!({
        "modelId": id,
        "modelName": name,
        "description": description,
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "tokenLimits": {"maxInputTokens": MAX_INPUT_TOKENS, "maxOutputTokens": 64_000},
        "promptCaching": {
            "supportsPromptCaching": true,
            "maximumCacheCheckpointsPerRequest": 4,
            "minimumTokensPerCacheCheckpoint": 1024,
        },
        "rateMultiplier": multiplier,
        "rateUnit": "Credit",
    })
}

/// The opaque `nextToken` for a page starting at `offset`.
fn page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("mock-page:{offset}"))
}

/// The offset a `nextToken` stands for.
fn page_offset(token: &str) -> Option<usize> {
    let decoded = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(decoded)
        .ok()?
        .strip_prefix("mock-page:")?
        .parse()
        .ok()
}

/// `GET /ListAvailableModels`.
async fn list_models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    if let Err(refusal) = authenticate(&state, &headers) {
        return *refusal;
    }
    let params = query(&uri);
    if params.get("origin").is_none_or(String::is_empty) {
        return malformed("origin is required");
    }
    let size = match params.get("maxResults").map(|text| text.parse::<usize>()) {
        None => 50,
        Some(Ok(size)) if (1..=100).contains(&size) => size,
        Some(_) => return malformed("maxResults must be 1 to 100"),
    };
    let models = lock(&state.models).clone();
    let start = match params.get("nextToken").map(|token| page_offset(token)) {
        None => 0,
        Some(Some(start)) if start < models.len() => start,
        Some(_) => return malformed("nextToken is not one the mock issued"),
    };
    let page: Vec<Value> = models
        .iter()
        .skip(start)
        .take(size)
        .map(|id| model_entry(id))
        .collect();
    let next = start + size;
    let default = if models.iter().any(|id| id == "auto") {
        "auto"
    } else {
        models.first().map_or("auto", String::as_str)
    };
    json_response(
        StatusCode::OK,
        &json!({
            "defaultModel": {"modelId": default},
            "models": page,
            "nextToken": (next < models.len()).then(|| page_token(next)),
        }),
    )
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "credit counts are far inside i64"
)]
fn whole(credits: f64) -> i64 {
    credits.floor() as i64
}

fn status(active: bool) -> &'static str {
    if active { "ACTIVE" } else { "EXPIRED" }
}

/// The usage report (§5.6).
fn usage_report(state: &State) -> Value {
    let identity = state.oauth.identity();
    let settings = lock(&state.kiro);
    let bonus_limit: f64 = settings
        .bonuses
        .iter()
        .filter(|bonus| bonus.active)
        .map(|bonus| bonus.limit)
        .sum();
    let trial_limit = settings
        .free_trial
        .filter(|trial| trial.active)
        .map_or(0.0, |trial| trial.limit);
    let total = settings.limit + bonus_limit + trial_limit;
    let bonuses: Vec<Value> = settings
        .bonuses
        .iter()
        .enumerate()
        .map(|(n, bonus)| {
            json!({
                "bonusCode": format!("MOCK-BONUS-{}", n + 1),
                "displayName": "Bonus credits",
                "currentUsage": bonus.current,
                "usageLimit": bonus.limit,
                "status": status(bonus.active),
                "expiresAt": settings.next_reset,
            })
        })
        .collect();
    let mut breakdown = json!({
        "resourceType": "AGENTIC_REQUEST",
        "currentUsage": whole(settings.usage),
        "currentUsageWithPrecision": settings.usage,
        "usageLimit": whole(settings.limit),
        "usageLimitWithPrecision": settings.limit,
        "nextDateReset": settings.next_reset,
        "bonuses": bonuses,
        "overageCap": 10.0,
        "overageRate": 0.04,
        "currentOverages": (settings.usage - total).max(0.0),
    });
    if let Some(trial) = settings.free_trial {
        breakdown["freeTrialInfo"] = json!({
            "freeTrialStatus": status(trial.active),
            "currentUsage": whole(trial.current),
            "currentUsageWithPrecision": trial.current,
            "usageLimit": whole(trial.limit),
            "usageLimitWithPrecision": trial.limit,
            "freeTrialExpiry": settings.next_reset,
        });
    }
    json!({
        "userInfo": {"email": identity.email, "userId": identity.account_id},
        "nextDateReset": settings.next_reset,
        "subscriptionInfo": {
            "subscriptionTitle": identity.plan,
            "type": "Q_DEVELOPER_STANDALONE_PRO",
            "overageCapability": "OVERAGE_CAPABLE",
        },
        "overageConfiguration": {"overageStatus": "ENABLED"},
        "usageBreakdownList": [breakdown],
    })
}

/// `GET /getUsageLimits`.
async fn usage_limits(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    if let Err(refusal) = authenticate(&state, &headers) {
        return *refusal;
    }
    let params = query(&uri);
    if params.get("origin").is_none_or(String::is_empty) {
        return malformed("origin is required");
    }
    if params.get("resourceType").map(String::as_str) != Some("AGENTIC_REQUEST") {
        return malformed("resourceType must be AGENTIC_REQUEST");
    }
    json_response(StatusCode::OK, &usage_report(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_inverts_civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 1) * 86_400, 1_767_225_600);
        for days in [0, 59, 60, 365, 11_016, 20_454, 20_513] {
            let (year, month, day) = civil(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn usage_resets_on_the_first_of_next_month() {
        // 2026-01-15 → 2026-02-01; 2026-12-31 → 2027-01-01.
        assert_eq!(first_of_next_month(1_768_435_200), 1_769_904_000);
        assert_eq!(first_of_next_month(1_798_675_200), 1_798_761_600);
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(page_offset(&page_token(3)), Some(3));
        assert_eq!(page_offset("not-a-token"), None);
    }
}
