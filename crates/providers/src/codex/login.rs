//! ChatGPT's OAuth as Codex CLI does it (`reference/protocols.md` §2.1):
//! authorization code with PKCE S256 on auth.openai.com returning to the
//! loopback port 1455, form-encoded exchange, JSON refresh; and the
//! device-code login, whose approval yields a code exchanged like a
//! browser's. The account id, email and plan are the ID token's claims.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use subgate_auth::{DeviceError, DevicePoll};
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{
    AuthBody, CallbackSpec, DeviceGrant, DeviceStart, TokenError, at, auth_post, with_query,
};
use crate::session::Login;

pub(crate) const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const ISSUER: &str = "https://auth.openai.com";
const SCOPES: &str = "openid profile email offline_access";
/// The scopes a refresh asks for again.
const REFRESH_SCOPES: &str = "openid profile email";
/// The port and path Codex's client registration allows.
pub(crate) const CALLBACK: CallbackSpec = CallbackSpec {
    port: 1455,
    path: "/auth/callback",
};
/// How long a device code lives (§2.1: 15 minutes).
const DEVICE_LIFETIME: Duration = Duration::from_mins(15);
/// The claims namespace holding the ChatGPT account.
const AUTH_CLAIMS: &str = "https://api.openai.com/auth";

/// Where Codex's logins go: the issuer's fixed paths.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    issuer: Url,
}

impl Endpoints {
    /// auth.openai.com, or `auth_url` when one is configured.
    pub(crate) fn new(auth_url: Option<&Url>) -> Self {
        Self {
            issuer: auth_url
                .cloned()
                .unwrap_or_else(|| crate::oauth::fixed_url(ISSUER)),
        }
    }

    pub(crate) fn authorize_url(&self, challenge: &str, state: &str, redirect: &str) -> Url {
        with_query(
            at(&self.issuer, "/oauth/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", redirect),
                ("scope", SCOPES),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("id_token_add_organizations", "true"),
                ("codex_cli_simplified_flow", "true"),
                ("state", state),
                ("originator", super::ORIGINATOR),
            ],
        )
    }

    /// The form-encoded code exchange.
    pub(crate) fn exchange_request(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> OutboundRequest {
        auth_post(
            at(&self.issuer, "/oauth/token"),
            AuthBody::Form(&[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ]),
        )
    }

    /// The refresh, in JSON as Codex CLI sends it.
    pub(crate) fn refresh_request(&self, refresh_token: &str) -> OutboundRequest {
        auth_post(
            at(&self.issuer, "/oauth/token"),
            AuthBody::Json(json!({
                "client_id": CLIENT_ID,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "scope": REFRESH_SCOPES,
            })),
        )
    }

    pub(crate) fn device_start_request(&self) -> OutboundRequest {
        auth_post(
            at(&self.issuer, "/api/accounts/deviceauth/usercode"),
            AuthBody::Json(json!({ "client_id": CLIENT_ID })),
        )
    }

    pub(crate) fn read_device_start(
        &self,
        status: StatusCode,
        body: &[u8],
    ) -> Result<DeviceStart, TokenError> {
        #[derive(Deserialize)]
        struct Start {
            device_auth_id: String,
            #[serde(alias = "usercode")]
            user_code: String,
            interval: Option<Value>,
        }
        if status == StatusCode::NOT_FOUND {
            return Err(TokenError {
                dead: true,
                retry_after: None,
                message: "device login is not enabled for this server; log in with a browser"
                    .to_owned(),
            });
        }
        if !status.is_success() {
            return Err(TokenError::from_response(status, None, body));
        }
        let start: Start = serde_json::from_slice(body)
            .map_err(|error| TokenError::unreadable("device login", &error))?;
        // `interval` comes as a string ("5"), sometimes as a number.
        let interval = match &start.interval {
            Some(Value::String(text)) => text.trim().parse().ok(),
            Some(Value::Number(number)) => number.as_u64(),
            _ => None,
        };
        Ok(DeviceStart {
            handle: start.device_auth_id,
            user_code: start.user_code,
            verification_uri: at(&self.issuer, "/codex/device").to_string(),
            interval: Duration::from_secs(interval.unwrap_or(5)),
            expires_in: DEVICE_LIFETIME,
            client: None,
        })
    }

    pub(crate) fn device_poll_request(&self, start: &DeviceStart) -> OutboundRequest {
        auth_post(
            at(&self.issuer, "/api/accounts/deviceauth/token"),
            AuthBody::Json(json!({ "device_auth_id": start.handle, "user_code": start.user_code })),
        )
    }

    /// One poll's answer: 403 or 404 while the user has not approved; the
    /// approval carries a code and the verifier to exchange it with.
    pub(crate) fn read_device_poll(
        &self,
        status: StatusCode,
        body: &[u8],
    ) -> Result<DevicePoll<DeviceGrant>, DeviceError<TokenError>> {
        #[derive(Deserialize)]
        struct Approved {
            authorization_code: String,
            code_verifier: String,
        }
        if matches!(status.as_u16(), 403 | 404) {
            return Ok(DevicePoll::Pending);
        }
        if status == StatusCode::GONE {
            return Err(DeviceError::Expired);
        }
        if !status.is_success() {
            let error = TokenError::from_response(status, None, body);
            return Err(if error.message.contains("denied") {
                DeviceError::Denied(error.message)
            } else if error.message.contains("expired") {
                DeviceError::Expired
            } else {
                DeviceError::Failed(error)
            });
        }
        let approved: Approved = serde_json::from_slice(body)
            .map_err(|error| DeviceError::Failed(TokenError::unreadable("device login", &error)))?;
        Ok(DevicePoll::Done(DeviceGrant::Code {
            code: approved.authorization_code,
            verifier: approved.code_verifier,
            redirect_uri: at(&self.issuer, "/deviceauth/callback").to_string(),
        }))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<i64>,
}

/// Reads a token answer (exchange or refresh). What the answer leaves out
/// (a refresh that does not rotate, an ID token not sent again) is kept
/// from `previous`.
pub(crate) fn read_tokens(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    previous: Option<&Login>,
    now: i64,
) -> Result<Login, TokenError> {
    if !status.is_success() {
        return Err(TokenError::from_response(status, retry_after, body));
    }
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|error| TokenError::unreadable("token", &error))?;
    let mut login = previous.cloned().unwrap_or_default();
    login.expires_at = answer
        .expires_in
        .map(|seconds| now + seconds * 1000)
        .or_else(|| token_expiry(&answer.access_token));
    login.access_token = answer.access_token;
    if let Some(refresh) = answer.refresh_token {
        login.refresh_token = Some(refresh);
    }
    if let Some(id_token) = answer.id_token {
        login.id_token = Some(id_token);
    }
    identify(&mut login);
    Ok(login)
}

/// A JWT's `exp` claim, in Unix milliseconds.
pub(crate) fn token_expiry(token: &str) -> Option<i64> {
    subgate_auth::claims(token)?
        .get("exp")?
        .as_i64()
        .map(|seconds| seconds * 1000)
}

/// Fills the account id, email and plan from the ID token's claims (the
/// access token's when there is no ID token), keeping what is known.
pub(crate) fn identify(login: &mut Login) {
    let claims = login
        .id_token
        .as_deref()
        .and_then(subgate_auth::claims)
        .or_else(|| subgate_auth::claims(&login.access_token));
    let Some(claims) = claims else {
        return;
    };
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let auth = claims.get(AUTH_CLAIMS);
    if let Some(account) = text(auth.and_then(|auth| auth.get("chatgpt_account_id"))) {
        login.account_id = Some(account);
    }
    if let Some(plan) = text(auth.and_then(|auth| auth.get("chatgpt_plan_type"))) {
        login.plan = Some(plan);
    }
    let email = text(claims.get("email")).or_else(|| {
        text(
            claims
                .get("https://api.openai.com/profile")
                .and_then(|profile| profile.get("email")),
        )
    });
    if let Some(email) = email {
        login.email = Some(email);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::Engine as _;
    use http::header::CONTENT_TYPE;
    use pretty_assertions::assert_eq;

    use super::*;

    /// An unsigned JWT carrying `claims`, as the mocks issue them.
    pub(crate) fn jwt(claims: &Value) -> String {
        let encode = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        format!(
            "{}.{}.sig",
            encode(&json!({"alg": "RS256"})),
            encode(claims)
        )
    }

    #[test]
    fn authorize_exchange_and_refresh_have_the_documented_shape() {
        let endpoints = Endpoints::new(None);
        let url = endpoints.authorize_url("ch", "st", "http://localhost:1455/auth/callback");
        assert_eq!(
            url.as_str(),
            "https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback&scope=openid+profile+email+offline_access&code_challenge=ch&code_challenge_method=S256&id_token_add_organizations=true&codex_cli_simplified_flow=true&state=st&originator=codex_cli_rs"
        );
        let exchange = endpoints.exchange_request("c", "v", "http://localhost:1455/auth/callback");
        assert_eq!(exchange.url.as_str(), "https://auth.openai.com/oauth/token");
        assert_eq!(
            exchange.headers[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            exchange.body,
            "grant_type=authorization_code&client_id=app_EMoamEEZ73f0CkXaXp7hrann&code=c&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback&code_verifier=v"
        );
        let refresh = endpoints.refresh_request("rt_1");
        let body: Value = serde_json::from_slice(&refresh.body).unwrap();
        assert_eq!(body["grant_type"], "refresh_token");
        assert_eq!(body["refresh_token"], "rt_1");
    }

    #[test]
    fn tokens_name_the_chatgpt_account() {
        let id_token = jwt(&json!({
            "email": "dev@example.com",
            AUTH_CLAIMS: {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "plus"},
        }));
        let body = json!({"access_token": "at", "refresh_token": "rt_2", "id_token": id_token, "expires_in": 3600});
        let login = read_tokens(
            StatusCode::OK,
            None,
            body.to_string().as_bytes(),
            None,
            1_000,
        )
        .unwrap();
        assert_eq!(login.account_id.as_deref(), Some("acc-1"));
        assert_eq!(login.plan.as_deref(), Some("plus"));
        assert_eq!(login.email.as_deref(), Some("dev@example.com"));
        assert_eq!(login.expires_at, Some(3_601_000));
        let reused = read_tokens(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":{"code":"refresh_token_reused","message":"used"}}"#,
            Some(&login),
            0,
        )
        .unwrap_err();
        assert!(reused.dead);
    }

    #[test]
    fn device_login_reads_pending_approval_and_refusals() {
        let endpoints = Endpoints::new(Some(&Url::parse("http://127.0.0.1:9").unwrap()));
        let start = endpoints
            .read_device_start(
                StatusCode::OK,
                br#"{"device_auth_id":"d1","usercode":"ABCD-EFGH","interval":"3"}"#,
            )
            .unwrap();
        assert_eq!(start.user_code, "ABCD-EFGH");
        assert_eq!(start.interval, Duration::from_secs(3));
        assert_eq!(start.verification_uri, "http://127.0.0.1:9/codex/device");
        let poll = endpoints.device_poll_request(&start);
        let body: Value = serde_json::from_slice(&poll.body).unwrap();
        assert_eq!(
            body,
            json!({"device_auth_id": "d1", "user_code": "ABCD-EFGH"})
        );
        assert!(matches!(
            endpoints.read_device_poll(StatusCode::FORBIDDEN, b"{}"),
            Ok(DevicePoll::Pending)
        ));
        let Ok(DevicePoll::Done(DeviceGrant::Code { redirect_uri, .. })) = endpoints
            .read_device_poll(
                StatusCode::OK,
                br#"{"authorization_code":"c","code_challenge":"x","code_verifier":"v"}"#,
            )
        else {
            panic!("an approval is a code");
        };
        assert_eq!(redirect_uri, "http://127.0.0.1:9/deviceauth/callback");
        assert!(matches!(
            endpoints.read_device_poll(
                StatusCode::BAD_REQUEST,
                br#"{"error":{"code":"access_denied","message":"no"}}"#
            ),
            Err(DeviceError::Denied(_))
        ));
        assert!(matches!(
            endpoints.read_device_poll(StatusCode::GONE, b"{}"),
            Err(DeviceError::Expired)
        ));
        assert!(
            endpoints
                .read_device_start(StatusCode::NOT_FOUND, b"")
                .unwrap_err()
                .dead
        );
    }
}
