//! Gemini CLI's subscription path (`reference/protocols.md` §4.1, §4.2, §8
//! "Gemini mock"): Google's installed-app OAuth and the Code Assist API
//! (`v1internal`), on one port.
//!
//! - `GET /o/oauth2/v2/auth` (Google's `accounts.google.com`) with Gemini
//!   CLI's client, its three scopes, `access_type=offline`,
//!   `response_type=code`, `state` and a loopback redirect (or the manual
//!   `https://codeassist.google.com/authcode`); PKCE S256 is optional, as
//!   Gemini CLI sends it only in its manual flow, and a code asked for
//!   without a challenge must be redeemed without a verifier.
//! - `POST /token` (`oauth2.googleapis.com`), form-encoded (JSON is taken
//!   too, as Google does): `authorization_code` with `client_id`,
//!   `client_secret`, `code`, `redirect_uri` (and `code_verifier` when PKCE
//!   was used) → `ya29.…` access token, `expires_in` 3599 (the access
//!   lifetime less a second, as Google writes an hour), `1//0…` refresh
//!   token, `scope`, `token_type`, a Google-style `id_token`;
//!   `refresh_token` → the same without a `refresh_token` (Google does not
//!   rotate, and the old one stays good). An unknown client id gets 401
//!   `invalid_client` "The OAuth client was not found.", a wrong secret 401
//!   `invalid_client` "Unauthorized", an unknown refresh token 400
//!   `invalid_grant` "Token has been expired or revoked.". Mock choice: a
//!   bad code or verifier gets 400 `invalid_grant` with the registry's
//!   description of the mismatch (Google says only "Bad Request").
//! - `GET /oauth2/v2/userinfo` and `/oauth2/v1/userinfo`
//!   (`www.googleapis.com`) with the bearer: `id`, `email`,
//!   `verified_email`, `name`, `given_name`, `family_name`, `picture` (mock
//!   choice: the name is the email's local part).
//! - `POST /v1internal:<method>` and `GET /v1internal/operations/<id>`
//!   (`cloudcode-pa.googleapis.com`), dispatched on the raw path by a
//!   fallback handler. Every call needs a bearer the mock issued and that
//!   has not expired, else 401 in Google's RPC envelope with status
//!   `UNAUTHENTICATED` (Google's own two messages: missing, invalid). A body
//!   that is not JSON gets 400 `INVALID_ARGUMENT`; an unknown method 404
//!   `NOT_FOUND`.
//! - `loadCodeAssist`: onboarded, `currentTier` and `cloudaicompanionProject`
//!   (default: `free-tier`, project `mock-project-p41fc`); not onboarded,
//!   neither. Both list `allowedTiers`: `free-tier` (the default) and
//!   `standard-tier` (`userDefinedCloudaicompanionProject`). Mock choices:
//!   the request's `metadata` is not checked, and the answer always has
//!   `gcpManaged: false` and no `ineligibleTiers` or `paidTier`.
//! - `onboardUser` `{"tierId"}` (an allowed tier, else 400
//!   `INVALID_ARGUMENT`; `standard-tier` also needs `cloudaicompanionProject`,
//!   which becomes the project, while `free-tier` gets the mock's managed
//!   project) → `{"name":"operations/…","done":false}`; polling the
//!   operation answers `done:false` a settable number of times (default
//!   once, §8), then `{"done":true,"response":{"@type":…,
//!   "cloudaicompanionProject":{"id","name"}}}`. Mock choice: the user counts
//!   as onboarded only once the operation reports done (with no not-done
//!   polls, `onboardUser` itself answers done); an unknown operation gets
//!   404 `NOT_FOUND`.
//! - `generateContent` and `streamGenerateContent?alt=sse` (without
//!   `alt=sse`: one JSON array): `{"model","project","user_prompt_id"?,
//!   "request":{"contents",…}}`, checked in this order: the bearer, the
//!   project equal to the onboarded one (403 `PERMISSION_DENIED`, with
//!   Google's IAM message and an `IAM_PERMISSION_DENIED` `ErrorInfo`), the
//!   model among the mock's models (404 `NOT_FOUND` "Requested entity was
//!   not found."), `request.contents` an array (400 `INVALID_ARGUMENT`).
//!   Refusals leave queued scenarios alone. The answer is the Gemini mock's,
//!   each chunk (and the whole body) wrapped as `{"response":…,"traceId"}`
//!   with no inner `responseId`; mock choice: an in-stream failure
//!   (`StreamEnd::Error`) is a bare `{"error":…}` object, as on the public
//!   API.
//! - `countTokens` `{"request":{"model":"models/<m>","contents"}}` →
//!   `{"totalTokens":N}` (the mocks' word count; unknown model 404; mock
//!   choice: no project is needed).
//! - `retrieveUserQuota` `{"project"}` (the onboarded project, else 403) →
//!   `{"buckets":[{"modelId","tokenType":"REQUESTS","remainingFraction",
//!   "resetTime"}]}`, one per model; by default full, resetting in a day.
//!   Mock choice: no `remainingAmount`.
//! - Quota errors as scenarios, in §4.2's envelope: [`gemini_rate_limited`]
//!   (429 `RATE_LIMIT_EXCEEDED` with a per-minute `quota_limit` and
//!   `RetryInfo`), [`gemini_daily_quota_exhausted`] (429 `QUOTA_EXHAUSTED`,
//!   `QuotaFailure` with a `…PerDay…` `quotaId`, `RetryInfo`),
//!   [`gemini_validation_required`] (403 `PERMISSION_DENIED` with
//!   `VALIDATION_REQUIRED`, `metadata.validation_link` and a
//!   `google.rpc.Help` link). The messages are mock text in Google's style.
//!
//! Models: `gemini-2.5-pro`, `gemini-2.5-flash`, `gemini-2.5-flash-lite`,
//! `gemini-3-pro-preview` ([`MockUpstream::set_models`] changes them).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{Ask, Check, Gate, admit, json_response, record};
use super::gemini::{Delivery, alt_sse, generation, google_error, prompt_tokens};
use super::oauth::{
    Access, Flavor, GEMINI_CLIENT_ID, GEMINI_CLIENT_SECRET, GEMINI_SCOPES, Identity, IssuedTokens,
    Refresh, bearer, fields, iso8601, note, now_s, oauth_error, raw_response, uuid_like,
};
use super::{MockUpstream, Scenario, State, lock};

/// The project a default mock is onboarded to, and free-tier onboarding
/// assigns.
const DEFAULT_PROJECT: &str = "mock-project-p41fc";

/// Google's answer to a request without credentials.
const MISSING: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// Google's answer to an unknown or expired access token.
const INVALID: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// The Code Assist domain in `ErrorInfo`.
const DOMAIN: &str = "cloudcode-pa.googleapis.com";

/// An onboarding in progress.
#[derive(Debug)]
struct Operation {
    /// `done:false` answers left before done.
    remaining: usize,
    tier: String,
    project: String,
}

/// The Code Assist account state the mock serves.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The current tier and project, once onboarded.
    onboarded: Option<(String, String)>,
    /// The project free-tier onboarding assigns.
    managed_project: String,
    /// How many `done:false` answers an onboarding's polls get.
    polls: usize,
    operations: HashMap<String, Operation>,
    /// Quota buckets set per model: remaining fraction and reset time.
    quota: Vec<(String, f64, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            onboarded: Some(("free-tier".to_owned(), DEFAULT_PROJECT.to_owned())),
            managed_project: DEFAULT_PROJECT.to_owned(),
            polls: 1,
            operations: HashMap::new(),
            quota: Vec::new(),
        }
    }
}

impl MockUpstream {
    /// Starts a mock of Gemini CLI's Google sign-in and the Code Assist API
    /// on one port: `GET /o/oauth2/v2/auth`, `POST /token`,
    /// `GET /oauth2/v{1,2}/userinfo`, `POST /v1internal:<method>`
    /// (`loadCodeAssist`, `onboardUser`, `generateContent`,
    /// `streamGenerateContent`, `countTokens`, `retrieveUserQuota`) and
    /// `GET /v1internal/operations/<id>`. Generation uses the Gemini mock's
    /// scenarios. [`MockUpstream::url`] stands for
    /// `https://cloudcode-pa.googleapis.com` and [`MockUpstream::auth_url`]
    /// for `https://accounts.google.com`, `https://oauth2.googleapis.com`
    /// and `https://www.googleapis.com`; both are `http://127.0.0.1:PORT`.
    /// The account starts onboarded to `free-tier` with project
    /// `mock-project-p41fc`.
    pub async fn gemini_cli() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        state.oauth.set_flavor(Flavor::Gemini);
        *lock(&state.models) = [
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-3-pro-preview",
        ]
        .map(str::to_owned)
        .to_vec();
        let router = axum::Router::new()
            .route("/o/oauth2/v2/auth", get(super::oauth::authorize))
            .route("/token", post(token))
            .route("/oauth2/v2/userinfo", get(userinfo))
            .route("/oauth2/v1/userinfo", get(userinfo))
            .fallback(code_assist)
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// The account is onboarded: `loadCodeAssist` reports `tier` (`free-tier`,
    /// `standard-tier`, `legacy-tier`) and `project`, which generation and
    /// quota requests must name.
    pub fn set_gemini_onboarded(&self, tier: &str, project: &str) {
        lock(&self.state.gemini_cli).onboarded = Some((tier.to_owned(), project.to_owned()));
    }

    /// The account is not onboarded: `loadCodeAssist` reports no current
    /// tier, and onboarding to `free-tier` assigns `managed_project`.
    pub fn set_gemini_not_onboarded(&self, managed_project: &str) {
        let mut settings = lock(&self.state.gemini_cli);
        settings.onboarded = None;
        managed_project.clone_into(&mut settings.managed_project);
    }

    /// How many polls of an onboarding operation answer `done:false` before
    /// it is done (default 1; with 0, `onboardUser` answers done at once).
    pub fn set_gemini_onboard_polls(&self, polls: usize) {
        lock(&self.state.gemini_cli).polls = polls;
    }

    /// The project the account is onboarded to, if it is.
    pub fn gemini_project(&self) -> Option<String> {
        lock(&self.state.gemini_cli)
            .onboarded
            .as_ref()
            .map(|(_, project)| project.clone())
    }

    /// `retrieveUserQuota` reports `model`'s requests bucket with this
    /// `remainingFraction` and `resetTime` (RFC 3339); other models stay
    /// full, resetting in a day.
    pub fn set_gemini_quota(&self, model: &str, remaining_fraction: f64, reset_time: &str) {
        let mut settings = lock(&self.state.gemini_cli);
        settings.quota.retain(|(name, _, _)| name != model);
        settings
            .quota
            .push((model.to_owned(), remaining_fraction, reset_time.to_owned()));
    }
}

/// The 429 Code Assist sends when the per-minute rate is exceeded (§4.2):
/// `RESOURCE_EXHAUSTED` with `ErrorInfo` reason `RATE_LIMIT_EXCEEDED` and
/// `RetryInfo` `retryDelay` (`"2.5s"`, say). Retryable.
pub fn gemini_rate_limited(retry_delay: &str) -> Scenario {
    let body = json!({"error": {
        "code": 429,
        "message": format!("Resource has been exhausted (e.g. check quota). Please retry in {retry_delay}."),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": DOMAIN,
             "metadata": {"quota_limit": "GenerateContentRequestsPerMinutePerProjectPerRegion", "quota_metric": "cloudcode-pa.googleapis.com/generate_content_requests"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    }});
    Scenario::error(429, &body.to_string())
}

/// The 429 Code Assist sends when the daily quota is used up (§4.2):
/// `RESOURCE_EXHAUSTED` with `ErrorInfo` reason `QUOTA_EXHAUSTED`,
/// `QuotaFailure` whose `quotaId` contains `PerDay`, and `RetryInfo`
/// `retryDelay` (until the reset). Terminal for the day.
pub fn gemini_daily_quota_exhausted(retry_delay: &str) -> Scenario {
    let body = json!({"error": {
        "code": 429,
        "message": format!("You have exhausted your daily quota on this model. Your quota will reset after {retry_delay}."),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXHAUSTED", "domain": DOMAIN,
             "metadata": {"quota_limit": "GenerateRequestsPerDayPerProjectPerModel", "quota_metric": "cloudcode-pa.googleapis.com/generate_requests_per_model_per_day"}},
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "cloudcode-pa.googleapis.com/generate_requests_per_model_per_day", "quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    }});
    Scenario::error(429, &body.to_string())
}

/// The 403 Code Assist sends when the user must verify their account
/// (§4.2): `PERMISSION_DENIED` with `ErrorInfo` reason `VALIDATION_REQUIRED`
/// and `metadata.validation_link`, and the same link in `google.rpc.Help`.
pub fn gemini_validation_required(link: &str) -> Scenario {
    let body = json!({"error": {
        "code": 403,
        "message": "Verify your account to continue using Gemini Code Assist.",
        "status": "PERMISSION_DENIED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "VALIDATION_REQUIRED", "domain": DOMAIN,
             "metadata": {"validation_link": link}},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Verify your account", "url": link}]},
        ],
    }});
    Scenario::error(403, &body.to_string())
}

/// The scopes a token answer grants.
fn granted_scopes() -> String {
    let mut scopes = GEMINI_SCOPES.join(" ");
    scopes.push_str(" openid");
    scopes
}

/// A token answer; the refresh token only when `refresh_token` is set.
fn token_answer(state: &State, tokens: &IssuedTokens, refresh_token: bool) -> Response {
    let mut answer = json!({
        "access_token": tokens.access_token,
        "expires_in": state.oauth.access_ttl().as_secs().saturating_sub(1),
        "scope": granted_scopes(),
        "token_type": "Bearer",
        "id_token": tokens.id_token,
    });
    if refresh_token {
        answer["refresh_token"] = tokens.refresh_token.as_str().into();
    }
    json_response(StatusCode::OK, &answer)
}

/// `POST /token`: Google's token endpoint.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some((_, fields)) = fields(&headers, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid request: the body must be form-encoded",
        );
    };
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    if field("client_id") != GEMINI_CLIENT_ID {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    if field("client_secret") != GEMINI_CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    match field("grant_type") {
        "authorization_code" => {
            if let Some(missing) = ["code", "redirect_uri"]
                .iter()
                .find(|name| field(name).is_empty())
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Missing required parameter: {missing}"),
                );
            }
            match state.oauth.redeem_code(
                field("code"),
                field("code_verifier"),
                field("redirect_uri"),
                None,
            ) {
                Ok(tokens) => token_answer(&state, &tokens, true),
                Err(message) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", message),
            }
        }
        "refresh_token" => {
            let base = lock(&state.base).clone();
            match state
                .oauth
                .refresh_held(field("refresh_token"), &base, true)
                .await
            {
                Refresh::Injected(status, body) => raw_response(status, &body),
                Refresh::Issued(tokens) => token_answer(&state, &tokens, false),
                Refresh::Unknown | Refresh::NoSeat => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                ),
            }
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

/// The bearer's identity, or Google's 401.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<Identity, Box<Response>> {
    let Some(token) = bearer(headers, false) else {
        return Err(Box::new(google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            MISSING,
        )));
    };
    match state.oauth.access(token) {
        Access::Valid(identity) => Ok(identity),
        Access::Unknown | Access::Expired => Err(Box::new(google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            INVALID,
        ))),
    }
}

/// `GET /oauth2/v2/userinfo` and `/oauth2/v1/userinfo`.
async fn userinfo(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    let identity = match authenticate(&state, &headers) {
        Ok(identity) => identity,
        Err(refusal) => return *refusal,
    };
    let name = identity
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    json_response(
        StatusCode::OK,
        &json!({
            "id": identity.account_id,
            "email": identity.email,
            "verified_email": true,
            "name": name,
            "given_name": name,
            "family_name": "",
            "picture": "https://lh3.googleusercontent.com/a/mock",
        }),
    )
}

/// Every `v1internal` call, by its raw path (`/v1internal:<method>` holds a
/// colon that the router's path syntax is not meant for).
async fn code_assist(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if method == Method::POST {
        match path.as_str() {
            "/v1internal:generateContent" => {
                return generate(&state, method, &uri, headers, body, Delivery::Whole).await;
            }
            "/v1internal:streamGenerateContent" => {
                let delivery = Delivery::Stream { sse: alt_sse(&uri) };
                return generate(&state, method, &uri, headers, body, delivery).await;
            }
            _ => {}
        }
    }
    note(&state, method.clone(), &uri, &headers, &body);
    if let Err(refusal) = authenticate(&state, &headers) {
        return *refusal;
    }
    if method == Method::GET
        && let Some(name) = path.strip_prefix("/v1internal/operations/")
    {
        return operation(&state, &format!("operations/{name}"));
    }
    let call = path
        .strip_prefix("/v1internal:")
        .filter(|_| method == Method::POST);
    let Some(call) = call else {
        return not_found("Method not found.");
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid_argument("Invalid JSON payload received.");
    };
    match call {
        "loadCodeAssist" => load_code_assist(&state),
        "onboardUser" => onboard_user(&state, &request),
        "countTokens" => count_tokens(&state, &request),
        "retrieveUserQuota" => retrieve_user_quota(&state, &request),
        _ => not_found("Method not found."),
    }
}

fn not_found(message: &str) -> Response {
    google_error(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

fn invalid_argument(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// 403 for a project the user may not use.
fn permission_denied(project: &str) -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({"error": {
            "code": 403,
            "message": format!("Permission 'cloudaicompanion.companions.generateChat' denied on resource '//cloudaicompanion.googleapis.com/projects/{project}/locations/global' (or it may not exist)."),
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                         "domain": "cloudaicompanion.googleapis.com",
                         "metadata": {"permission": "cloudaicompanion.companions.generateChat", "resource": format!("projects/{project}/locations/global")}}],
        }}),
    )
}

/// A tier as `loadCodeAssist` describes it.
fn tier(id: &str) -> Value {
    let (name, description, user_project) = match id {
        "free-tier" => (
            "Gemini Code Assist for individuals",
            "Gemini Code Assist for individuals is a free offering.",
            false,
        ),
        "standard-tier" => (
            "Gemini Code Assist",
            "Unlimited coding assistant with the most powerful Gemini models",
            true,
        ),
        "legacy-tier" => (
            "Gemini Code Assist (legacy)",
            "Gemini Code Assist for Google Cloud projects",
            true,
        ),
        _ => (id, id, true),
    };
    json!({
        "id": id, "name": name, "description": description,
        "userDefinedCloudaicompanionProject": user_project,
        "isDefault": id == "free-tier",
    })
}

/// The tiers a user may onboard to.
const ALLOWED_TIERS: [&str; 2] = ["free-tier", "standard-tier"];

fn load_code_assist(state: &State) -> Response {
    let settings = lock(&state.gemini_cli);
    let mut answer = json!({
        "allowedTiers": ALLOWED_TIERS.map(tier),
        "gcpManaged": false,
    });
    if let Some((current, project)) = &settings.onboarded {
        answer["currentTier"] = tier(current);
        answer["cloudaicompanionProject"] = project.as_str().into();
    }
    json_response(StatusCode::OK, &answer)
}

fn onboard_user(state: &State, request: &Value) -> Response {
    let tier = request["tierId"].as_str().unwrap_or_default();
    if !ALLOWED_TIERS.contains(&tier) {
        return invalid_argument(&format!("Invalid tier id: {tier:?}"));
    }
    let mut settings = lock(&state.gemini_cli);
    let project = if tier == "free-tier" {
        settings.managed_project.clone()
    } else {
        match request["cloudaicompanionProject"].as_str() {
            Some(project) if !project.is_empty() => project.to_owned(),
            _ => {
                return invalid_argument(
                    "cloudaicompanionProject is required for this tier: set GOOGLE_CLOUD_PROJECT",
                );
            }
        }
    };
    let name = format!("operations/{}", uuid_like().replace('-', ""));
    let polls = settings.polls;
    settings.operations.insert(
        name.clone(),
        Operation {
            remaining: polls,
            tier: tier.to_owned(),
            project,
        },
    );
    drop(settings);
    if polls == 0 {
        return operation(state, &name);
    }
    json_response(StatusCode::OK, &json!({"name": name, "done": false}))
}

/// `GET /v1internal/<name>`: one poll of an onboarding.
fn operation(state: &State, name: &str) -> Response {
    let mut settings = lock(&state.gemini_cli);
    let Some(operation) = settings.operations.get_mut(name) else {
        return not_found(&format!("Operation {name} not found."));
    };
    if operation.remaining > 0 {
        operation.remaining -= 1;
        return json_response(StatusCode::OK, &json!({"name": name, "done": false}));
    }
    let (tier, project) = (operation.tier.clone(), operation.project.clone());
    settings.onboarded = Some((tier, project.clone()));
    json_response(
        StatusCode::OK,
        &json!({
            "name": name,
            "done": true,
            "response": {
                "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
                "cloudaicompanionProject": {"id": project, "name": project},
            },
        }),
    )
}

fn known_model(state: &State, model: &str) -> bool {
    lock(&state.models).iter().any(|known| known == model)
}

fn count_tokens(state: &State, request: &Value) -> Response {
    let inner = &request["request"];
    let model = inner["model"].as_str().unwrap_or_default();
    let model = model.strip_prefix("models/").unwrap_or(model);
    if !known_model(state, model) {
        return not_found("Requested entity was not found.");
    }
    json_response(
        StatusCode::OK,
        &json!({"totalTokens": prompt_tokens(inner)}),
    )
}

/// Whether `project` is the one the account is onboarded to.
fn own_project(state: &State, project: &str) -> bool {
    lock(&state.gemini_cli)
        .onboarded
        .as_ref()
        .is_some_and(|(_, onboarded)| onboarded == project)
}

fn retrieve_user_quota(state: &State, request: &Value) -> Response {
    let project = request["project"].as_str().unwrap_or_default();
    if !own_project(state, project) {
        return permission_denied(project);
    }
    let models = lock(&state.models).clone();
    let settings = lock(&state.gemini_cli);
    let tomorrow = iso8601(now_s() + 86_400);
    let buckets: Vec<Value> = models
        .iter()
        .map(|model| {
            let (fraction, reset) = settings
                .quota
                .iter()
                .find(|(name, _, _)| name == model)
                .map_or((1.0, tomorrow.clone()), |(_, fraction, reset)| {
                    (*fraction, reset.clone())
                });
            json!({"modelId": model, "tokenType": "REQUESTS", "remainingFraction": fraction, "resetTime": reset})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"buckets": buckets}))
}

/// Everything Code Assist checks of a generation, in order (see the
/// module's documentation).
fn screen(state: &State, ask: &Ask<'_>) -> Option<Response> {
    if let Err(refusal) = authenticate(state, ask.headers) {
        return Some(*refusal);
    }
    let body = ask.body?;
    let project = body["project"].as_str().unwrap_or_default();
    if !own_project(state, project) {
        return Some(permission_denied(project));
    }
    let model = body["model"].as_str().unwrap_or_default();
    if !known_model(state, model) {
        return Some(not_found("Requested entity was not found."));
    }
    if !body["request"]["contents"].is_array() {
        return Some(invalid_argument(
            "Invalid value at 'request.contents': a list of contents is required.",
        ));
    }
    None
}

const CODE_ASSIST_GATE: Gate = Gate {
    check: Check::Request(screen),
    credential: "authorization",
    not_json: || invalid_argument("Invalid JSON payload received."),
};

/// `generateContent` and `streamGenerateContent`, wrapped.
async fn generate(
    state: &Arc<State>,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
    delivery: Delivery,
) -> Response {
    let index = record(state, method, uri, headers.clone(), body.clone());
    let (scenario, guard, request) =
        match admit(state, index, uri, &headers, &body, &CODE_ASSIST_GATE).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let model = request["model"].as_str().unwrap_or_default();
    let trace = uuid_like().replace('-', "")[..16].to_owned();
    generation(
        model,
        delivery,
        &scenario,
        guard,
        &request["request"],
        Some(&trace),
    )
}
