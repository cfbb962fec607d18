//! Kiro's sign-in side (`reference/protocols.md` §5.1, §5.2): the Kiro
//! desktop auth service's social refresh, AWS SSO OIDC (client
//! registration, device authorization, the token endpoint), and the
//! credential files the real clients keep.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::header::USER_AGENT;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::common::json_response;
use super::super::oauth::{
    Identity, IssuedTokens, Poll, Refresh, hex, iso8601, note, now_s, oauth_error, random_token,
    raw_response,
};
use super::super::{MockUpstream, State, lock};
use super::{
    BUILDER_ID_SCOPES, Client, DeviceLogin, KIRO_PROFILE_ARN, KiroLogin, REGION, START_URL,
};

/// The device-code grant type of AWS SSO OIDC.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a dead refresh token gets (mock text).
const DEAD: &str = "Invalid refresh token provided";

/// How long a registered client's secret lives (AWS: 90 days).
const CLIENT_SECRET_LIFE_S: u64 = 90 * 86_400;

/// `ms` since the epoch as ISO-8601 UTC with milliseconds
/// (`2026-01-12T23:00:00.000Z`), as the Kiro IDE writes it.
fn iso_millis(ms: u64) -> String {
    let seconds = iso8601(ms / 1000);
    format!("{}.{:03}Z", &seconds[..19], ms % 1000)
}

/// `ms` since the epoch as RFC 3339 UTC with nanoseconds
/// (`2026-01-12T23:00:00.123000000Z`), as kiro-cli writes it.
fn rfc3339_nanos(ms: u64) -> String {
    let seconds = iso8601(ms / 1000);
    format!("{}.{:09}Z", &seconds[..19], (ms % 1000) * 1_000_000)
}

/// An AWS SSO OIDC error: `{"error","error_description"}` with the
/// exception's name in `x-amzn-errortype`, as restJson1 services answer.
fn oidc_error(
    status: StatusCode,
    exception: &'static str,
    error: &str,
    description: &str,
) -> Response {
    let mut response = oauth_error(status, error, description);
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(exception));
    response
}

fn invalid_request(description: &str) -> Response {
    oidc_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestException",
        "invalid_request",
        description,
    )
}

fn invalid_client() -> Response {
    oidc_error(
        StatusCode::UNAUTHORIZED,
        "InvalidClientException",
        "invalid_client",
        "Invalid client credentials provided",
    )
}

fn invalid_grant(description: &str) -> Response {
    oidc_error(
        StatusCode::BAD_REQUEST,
        "InvalidGrantException",
        "invalid_grant",
        description,
    )
}

/// A device-poll answer with no description (AWS sends the code alone).
fn poll_error(exception: &'static str, error: &str) -> Response {
    let mut response = json_response(StatusCode::BAD_REQUEST, &json!({"error": error}));
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(exception));
    response
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    object.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// `POST /refreshToken`: the Kiro desktop auth service's social refresh.
pub(super) async fn refresh_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !agent.contains("KiroIDE") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The User-Agent must name the Kiro IDE (KiroIDE-<version>-<machineId>)",
        );
    }
    let request = object(&body).unwrap_or_default();
    let token = text(&request, "refreshToken");
    if token.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refreshToken is required",
        );
    }
    // An `IdC` login's refresh token is good at its OIDC client only.
    if state
        .oauth
        .refresh_owner(token)
        .is_some_and(|owner| owner.client.is_some())
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", DEAD);
    }
    let base = lock(&state.base).clone();
    match state.oauth.refresh(token, &base, true) {
        Refresh::Injected(status, body) => raw_response(status, &body),
        Refresh::Unknown | Refresh::NoSeat => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", DEAD)
        }
        Refresh::Issued(tokens) => json_response(
            StatusCode::OK,
            &json!({
                "accessToken": tokens.access_token,
                "refreshToken": tokens.refresh_token,
                "profileArn": KIRO_PROFILE_ARN,
                "expiresIn": state.oauth.access_ttl().as_secs(),
            }),
        ),
    }
}

/// Whether `id` is a registered client whose secret is `secret`.
fn client_ok(state: &State, id: &str, secret: &str) -> bool {
    lock(&state.kiro)
        .clients
        .get(id)
        .is_some_and(|client| client.secret == secret)
}

/// An OIDC token answer (no profile ARN: OIDC knows none).
fn oidc_tokens(state: &State, tokens: &IssuedTokens) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "accessToken": tokens.access_token,
            "refreshToken": tokens.refresh_token,
            "expiresIn": state.oauth.access_ttl().as_secs(),
            "tokenType": "Bearer",
        }),
    )
}

/// `POST /token`: AWS SSO OIDC `CreateToken`, camelCase JSON.
pub(super) async fn token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some(request) = object(&body) else {
        return invalid_request("The request body must be a JSON object");
    };
    let field = |name: &str| text(&request, name);
    if ["clientId", "clientSecret", "grantType"]
        .iter()
        .any(|name| field(name).is_empty())
    {
        return invalid_request("clientId, clientSecret and grantType are required");
    }
    if !client_ok(&state, field("clientId"), field("clientSecret")) {
        return invalid_client();
    }
    match field("grantType") {
        "refresh_token" => refresh_grant(&state, field("clientId"), field("refreshToken")),
        DEVICE_GRANT => device_grant(&state, field("clientId"), field("deviceCode")),
        other => oidc_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedGrantTypeException",
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}

fn refresh_grant(state: &State, client: &str, token: &str) -> Response {
    if token.is_empty() {
        return invalid_request("refreshToken is required for the refresh_token grant");
    }
    // A refresh token is good with the client it was issued to only (a
    // social login's has none).
    if state
        .oauth
        .refresh_owner(token)
        .is_some_and(|owner| owner.client.as_deref() != Some(client))
    {
        return invalid_grant(DEAD);
    }
    let base = lock(&state.base).clone();
    match state.oauth.refresh(token, &base, true) {
        Refresh::Injected(status, body) => raw_response(status, &body),
        Refresh::Unknown | Refresh::NoSeat => invalid_grant(DEAD),
        Refresh::Issued(tokens) => oidc_tokens(state, &tokens),
    }
}

fn device_grant(state: &State, client: &str, device_code: &str) -> Response {
    let mut settings = lock(&state.kiro);
    let Some(device) = settings.devices.get_mut(device_code) else {
        return invalid_grant("Invalid device code provided");
    };
    if device.client != client {
        return invalid_grant("Invalid device code provided");
    }
    if device.pending > 0 {
        device.pending -= 1;
        return poll_error("AuthorizationPendingException", "authorization_pending");
    }
    drop(settings);
    let poll = state.oauth.poll_device(device_code, None);
    if !matches!(poll, Poll::Pending | Poll::SlowDown(_)) {
        lock(&state.kiro).devices.remove(device_code);
    }
    match poll {
        Poll::Pending => poll_error("AuthorizationPendingException", "authorization_pending"),
        Poll::SlowDown(_) => poll_error("SlowDownException", "slow_down"),
        Poll::Denied => poll_error("AccessDeniedException", "access_denied"),
        Poll::Expired => poll_error("ExpiredTokenException", "expired_token"),
        Poll::Unknown => invalid_grant("Invalid device code provided"),
        Poll::Approved(identity) => {
            let identity = Identity {
                client: Some(client.to_owned()),
                ..identity
            };
            oidc_tokens(state, &state.oauth.mint_for(identity))
        }
    }
}

/// Registers a public client; returns its id and the client.
fn register_client(state: &State) -> (String, Client) {
    let id = random_token(22);
    let client = Client {
        secret: format!(
            "eyJraWQiOiJrZXktbW9jayIsImFsZyI6IkhTMzg0In0.{}",
            random_token(480)
        ),
        issued_at_s: now_s(),
        expires_at_s: now_s() + CLIENT_SECRET_LIFE_S,
    };
    lock(&state.kiro).clients.insert(id.clone(), client.clone());
    (id, client)
}

/// `POST /client/register`: AWS SSO OIDC `RegisterClient`.
pub(super) async fn register(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some(request) = object(&body) else {
        return invalid_request("The request body must be a JSON object");
    };
    if text(&request, "clientName").is_empty() || text(&request, "clientType") != "public" {
        return oidc_error(
            StatusCode::BAD_REQUEST,
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientName is required and clientType must be public",
        );
    }
    let scopes_ok = match request.get("scopes") {
        None | Some(Value::Null) => true,
        Some(Value::Array(scopes)) => scopes.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !scopes_ok {
        return oidc_error(
            StatusCode::BAD_REQUEST,
            "InvalidScopeException",
            "invalid_scope",
            "scopes must be a list of strings",
        );
    }
    let (id, client) = register_client(&state);
    json_response(
        StatusCode::OK,
        &json!({
            "clientId": id,
            "clientSecret": client.secret,
            "clientIdIssuedAt": client.issued_at_s,
            "clientSecretExpiresAt": client.expires_at_s,
        }),
    )
}

/// `POST /device_authorization`: AWS SSO OIDC `StartDeviceAuthorization`.
pub(super) async fn device_authorization(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some(request) = object(&body) else {
        return invalid_request("The request body must be a JSON object");
    };
    let client = text(&request, "clientId");
    if !client_ok(&state, client, text(&request, "clientSecret")) {
        return invalid_client();
    }
    if text(&request, "startUrl").is_empty() {
        return invalid_request("startUrl is required");
    }
    let (device_code, user_code, interval) = state.oauth.start_device();
    let mut settings = lock(&state.kiro);
    let pending = settings.device_pending;
    settings.devices.insert(
        device_code.clone(),
        DeviceLogin {
            client: client.to_owned(),
            pending,
        },
    );
    drop(settings);
    let base = lock(&state.base).clone();
    json_response(
        StatusCode::OK,
        &json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": format!("{base}/device"),
            "verificationUriComplete": format!("{base}/device?user_code={user_code}"),
            "expiresIn": 600,
            "interval": interval,
        }),
    )
}

impl MockUpstream {
    /// The mock's registered `IdC` client for the Kiro IDE (`cli` false) or
    /// kiro-cli (`cli` true), registered on first use.
    fn kiro_client(&self, cli: bool) -> (String, Client) {
        let known = {
            let settings = lock(&self.state.kiro);
            let id = if cli {
                &settings.cli_client
            } else {
                &settings.ide_client
            };
            id.as_ref()
                .and_then(|id| Some((id.clone(), settings.clients.get(id)?.clone())))
        };
        if let Some(known) = known {
            return known;
        }
        let (id, client) = register_client(&self.state);
        let mut settings = lock(&self.state.kiro);
        if cli {
            settings.cli_client = Some(id.clone());
        } else {
            settings.ide_client = Some(id.clone());
        }
        (id, client)
    }

    /// Mints tokens for the configured identity through `client` (`None`:
    /// a social login).
    fn kiro_tokens(&self, client: Option<String>) -> IssuedTokens {
        let identity = Identity {
            client,
            ..self.state.oauth.identity()
        };
        self.state.oauth.mint_for(identity)
    }

    /// A fresh login's `~/.aws/sso/cache/kiro-auth-token.json` (§5.2) whose
    /// tokens the mock issued: `accessToken`, `refreshToken`, `expiresAt`
    /// (ISO-8601 with milliseconds), `region` `us-east-1` and, for
    /// [`KiroLogin::Social`], `profileArn` ([`KIRO_PROFILE_ARN`]),
    /// `authMethod` `social`, `provider` `Google`; for [`KiroLogin::Idc`],
    /// `authMethod` `IdC`, `provider` `BuilderId` and the `clientIdHash` of
    /// the IDE's registered client (see
    /// [`MockUpstream::kiro_client_registration`]).
    pub fn kiro_token_file(&self, login: KiroLogin) -> Value {
        match login {
            KiroLogin::Social => {
                let tokens = self.kiro_tokens(None);
                json!({
                    "accessToken": tokens.access_token,
                    "refreshToken": tokens.refresh_token,
                    "expiresAt": iso_millis(tokens.expires_at_ms),
                    "profileArn": KIRO_PROFILE_ARN,
                    "region": REGION,
                    "authMethod": "social",
                    "provider": "Google",
                })
            }
            KiroLogin::Idc => {
                let (id, _) = self.kiro_client(false);
                let tokens = self.kiro_tokens(Some(id.clone()));
                json!({
                    "accessToken": tokens.access_token,
                    "refreshToken": tokens.refresh_token,
                    "expiresAt": iso_millis(tokens.expires_at_ms),
                    "region": REGION,
                    "authMethod": "IdC",
                    "provider": "BuilderId",
                    "clientIdHash": hex(&Sha256::digest(id.as_bytes())),
                })
            }
        }
    }

    /// The Kiro IDE's device registration, `~/.aws/sso/cache/<clientIdHash>.json`
    /// (§5.2): `clientId`, `clientSecret`, `expiresAt` (ISO-8601 with
    /// milliseconds), for the client an `IdC` [`MockUpstream::kiro_token_file`]
    /// names.
    pub fn kiro_client_registration(&self) -> Value {
        let (id, client) = self.kiro_client(false);
        json!({
            "clientId": id,
            "clientSecret": client.secret,
            "expiresAt": iso_millis(client.expires_at_s * 1000),
        })
    }

    /// kiro-cli's token for a fresh Builder ID login, the snake-case JSON
    /// of its SQLite `auth_kv` table (key `kirocli:odic:token`, §5.2):
    /// `access_token`, `refresh_token`, `expires_at` (RFC 3339 with
    /// nanoseconds), `region`, `start_url`, `oauth_flow`, `scopes`. Its
    /// client is [`MockUpstream::kiro_cli_registration`]'s.
    pub fn kiro_cli_token(&self) -> Value {
        let (id, _) = self.kiro_client(true);
        let tokens = self.kiro_tokens(Some(id));
        json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": rfc3339_nanos(tokens.expires_at_ms),
            "region": REGION,
            "start_url": START_URL,
            "oauth_flow": "DeviceCode",
            "scopes": BUILDER_ID_SCOPES,
        })
    }

    /// kiro-cli's device registration (key
    /// `kirocli:odic:device-registration`, §5.2): `client_id`,
    /// `client_secret`, `client_secret_expires_at` (RFC 3339), `region`,
    /// `oauth_flow`, `scopes`.
    pub fn kiro_cli_registration(&self) -> Value {
        let (id, client) = self.kiro_client(true);
        json!({
            "client_id": id,
            "client_secret": client.secret,
            "client_secret_expires_at": rfc3339_nanos(client.expires_at_s * 1000),
            "region": REGION,
            "oauth_flow": "DeviceCode",
            "scopes": BUILDER_ID_SCOPES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_carry_their_fractions() {
        assert_eq!(iso_millis(1_767_225_600_042), "2026-01-01T00:00:00.042Z");
        assert_eq!(
            rfc3339_nanos(1_767_225_600_042),
            "2026-01-01T00:00:00.042000000Z"
        );
    }
}
