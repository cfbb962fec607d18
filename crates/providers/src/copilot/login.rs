//! GitHub's side of Copilot (`reference/protocols.md` §3.1, §3.2, §3.6):
//! the device flow that yields a long-lived GitHub token (`ghu_…`, no
//! refresh), the exchange of that token for a short-lived Copilot API token
//! (renewed when its `refresh_in` has passed), and the user endpoint that
//! names the account and its quota.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use subgate_auth::{DeviceError, DevicePoll};
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{AuthBody, DeviceGrant, DeviceStart, TokenError, at, auth_post, fixed_url};
use crate::session::{ApiToken, Login};

/// The VS Code Copilot app's client id.
pub(crate) const CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
const WEB: &str = "https://github.com";
const API: &str = "https://api.github.com";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where GitHub's endpoints are: github.com and api.github.com, or both on
/// `auth_url` when one is configured.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    web: Url,
    api: Url,
}

impl Endpoints {
    pub(crate) fn new(auth_url: Option<&Url>) -> Self {
        match auth_url {
            Some(base) => Self {
                web: base.clone(),
                api: base.clone(),
            },
            None => Self {
                web: fixed_url(WEB),
                api: fixed_url(API),
            },
        }
    }

    pub(crate) fn device_start_request(&self) -> OutboundRequest {
        auth_post(
            at(&self.web, "/login/device/code"),
            AuthBody::Json(json!({"client_id": CLIENT_ID, "scope": "read:user"})),
        )
    }

    pub(crate) fn read_device_start(
        status: StatusCode,
        body: &[u8],
    ) -> Result<DeviceStart, TokenError> {
        #[derive(Deserialize)]
        struct Start {
            device_code: String,
            user_code: String,
            verification_uri: String,
            expires_in: Option<u64>,
            interval: Option<u64>,
        }
        if !status.is_success() {
            return Err(TokenError::from_response(status, None, body));
        }
        let start: Start = serde_json::from_slice(body)
            .map_err(|error| TokenError::unreadable("device code", &error))?;
        Ok(DeviceStart {
            handle: start.device_code,
            user_code: start.user_code,
            verification_uri: start.verification_uri,
            interval: Duration::from_secs(start.interval.unwrap_or(5)),
            expires_in: Duration::from_secs(start.expires_in.unwrap_or(900)),
            client: None,
        })
    }

    pub(crate) fn device_poll_request(&self, start: &DeviceStart) -> OutboundRequest {
        auth_post(
            at(&self.web, "/login/oauth/access_token"),
            AuthBody::Json(
                json!({"client_id": CLIENT_ID, "device_code": start.handle, "grant_type": DEVICE_GRANT}),
            ),
        )
    }

    /// One poll's answer. GitHub answers 200 either way; the `error` field
    /// says pending, slow down, expired or denied.
    pub(crate) fn read_device_poll(
        status: StatusCode,
        body: &[u8],
    ) -> Result<DevicePoll<DeviceGrant>, DeviceError<TokenError>> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
            interval: Option<u64>,
        }
        if !status.is_success() {
            return Err(DeviceError::Failed(TokenError::from_response(
                status, None, body,
            )));
        }
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|error| DeviceError::Failed(TokenError::unreadable("device login", &error)))?;
        match (answer.access_token, answer.error.as_deref()) {
            (Some(token), None) => Ok(DevicePoll::Done(DeviceGrant::Login(Box::new(Login {
                access_token: token,
                ..Login::default()
            })))),
            (_, Some("authorization_pending")) => Ok(DevicePoll::Pending),
            (_, Some("slow_down")) => Ok(DevicePoll::SlowDown(
                answer.interval.map(Duration::from_secs),
            )),
            (_, Some("expired_token")) => Err(DeviceError::Expired),
            (_, Some("access_denied")) => Err(DeviceError::Denied(
                answer
                    .error_description
                    .unwrap_or_else(|| "the request was denied on GitHub".to_owned()),
            )),
            (_, error) => Err(DeviceError::Failed(TokenError {
                dead: true,
                retry_after: None,
                message: format!(
                    "GitHub answered {}{}",
                    error.unwrap_or("no token"),
                    answer
                        .error_description
                        .map(|text| format!(": {text}"))
                        .unwrap_or_default()
                ),
            })),
        }
    }

    /// `GET {api}/copilot_internal/v2/token` with the GitHub token.
    pub(crate) fn token_request(&self, github: &str, editor: HeaderMap) -> OutboundRequest {
        self.get(at(&self.api, "/copilot_internal/v2/token"), github, editor)
    }

    /// `GET {api}/copilot_internal/user` with the GitHub token: the account's
    /// login, plan and quotas.
    pub(crate) fn user_request(&self, github: &str, editor: HeaderMap) -> OutboundRequest {
        self.get(at(&self.api, "/copilot_internal/user"), github, editor)
    }

    #[expect(
        clippy::unused_self,
        reason = "a method beside the other requests it is built like"
    )]
    fn get(&self, url: Url, github: &str, mut headers: HeaderMap) -> OutboundRequest {
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::try_from(format!("token {github}")) {
            headers.insert(AUTHORIZATION, value);
        }
        OutboundRequest {
            method: Method::GET,
            url,
            headers,
            body: Bytes::new(),
        }
    }
}

/// Reads the token exchange's answer: the API token, when it expires and
/// when to renew it, and the API base it names. A 401 (bad GitHub token) or
/// 403 (no Copilot seat) is dead: only a new login helps.
pub(crate) fn read_api_token(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    now: i64,
) -> Result<ApiToken, TokenError> {
    #[derive(Deserialize)]
    struct Answer {
        token: String,
        expires_at: i64,
        refresh_in: Option<i64>,
        endpoints: Option<Urls>,
    }
    #[derive(Deserialize)]
    struct Urls {
        api: Option<String>,
    }
    if !status.is_success() {
        let mut error = TokenError::from_response(status, retry_after, body);
        if matches!(status.as_u16(), 401 | 403) {
            error.dead = true;
            if status == StatusCode::FORBIDDEN {
                error.message = format!(
                    "{} (does this GitHub account have a Copilot seat?)",
                    error.message
                );
            }
        }
        return Err(error);
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|error| TokenError::unreadable("Copilot token", &error))?;
    let expires_at = answer.expires_at * 1000;
    // Renew at `refresh_in`, and never later than a minute before expiry.
    let refresh_at = answer
        .refresh_in
        .map_or(expires_at - 60_000, |seconds| now + seconds * 1000)
        .min(expires_at - 60_000);
    let base_url = answer
        .endpoints
        .and_then(|endpoints| endpoints.api)
        .and_then(|api| Url::parse(&api).ok())
        .or_else(|| proxy_api(&answer.token));
    Ok(ApiToken {
        token: answer.token,
        expires_at,
        refresh_at,
        base_url,
    })
}

/// The API base a token names in its `proxy-ep=proxy.X` field: `https://api.X`.
fn proxy_api(token: &str) -> Option<Url> {
    let endpoint = token
        .split(';')
        .find_map(|field| field.strip_prefix("proxy-ep="))?;
    let host = endpoint.strip_prefix("proxy.").unwrap_or(endpoint);
    Url::parse(&format!("https://api.{host}")).ok()
}

/// Fills the GitHub login and Copilot plan from the user endpoint.
pub(crate) fn read_user(
    status: StatusCode,
    body: &[u8],
    mut login: Login,
) -> Result<Login, TokenError> {
    #[derive(Deserialize)]
    struct User {
        login: Option<String>,
        copilot_plan: Option<String>,
    }
    if !status.is_success() {
        let mut error = TokenError::from_response(status, None, body);
        error.dead = matches!(status.as_u16(), 401 | 403);
        return Err(error);
    }
    let user: User = serde_json::from_slice(body)
        .map_err(|error| TokenError::unreadable("Copilot user", &error))?;
    login.account_id = user.login.or(login.account_id);
    login.plan = user.copilot_plan.or(login.plan);
    Ok(login)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn device_polls_read_every_answer() {
        let read = |body: &str| Endpoints::read_device_poll(StatusCode::OK, body.as_bytes());
        assert!(matches!(
            read(r#"{"error":"authorization_pending"}"#),
            Ok(DevicePoll::Pending)
        ));
        assert!(matches!(
            read(r#"{"error":"slow_down","interval":10}"#),
            Ok(DevicePoll::SlowDown(Some(interval))) if interval == Duration::from_secs(10)
        ));
        assert!(matches!(
            read(r#"{"error":"expired_token"}"#),
            Err(DeviceError::Expired)
        ));
        assert!(matches!(
            read(r#"{"error":"access_denied"}"#),
            Err(DeviceError::Denied(_))
        ));
        let Ok(DevicePoll::Done(DeviceGrant::Login(login))) =
            read(r#"{"access_token":"ghu_x","token_type":"bearer","scope":"read:user"}"#)
        else {
            panic!("a token is a login");
        };
        assert_eq!(login.access_token, "ghu_x");
        let start = Endpoints::read_device_start(
            StatusCode::OK,
            br#"{"device_code":"dc","user_code":"AB-CD","verification_uri":"https://github.com/login/device","expires_in":900,"interval":5}"#,
        )
        .unwrap();
        let poll = Endpoints::new(None).device_poll_request(&start);
        assert_eq!(
            poll.url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        let body: serde_json::Value = serde_json::from_slice(&poll.body).unwrap();
        assert_eq!(body["device_code"], "dc");
        assert_eq!(body["grant_type"], DEVICE_GRANT);
    }

    #[test]
    fn the_api_token_names_its_renewal_and_base() {
        let now = 1_767_225_600_000;
        let token = read_api_token(
            StatusCode::OK,
            None,
            br#"{"token":"tid=1;exp=1767227400;proxy-ep=proxy.individual.githubcopilot.com","expires_at":1767227400,"refresh_in":1500,"endpoints":{"api":"https://api.individual.githubcopilot.com"}}"#,
            now,
        )
        .unwrap();
        assert_eq!(token.expires_at, 1_767_227_400_000);
        assert_eq!(token.refresh_at, now + 1_500_000);
        assert_eq!(
            token.base_url.unwrap().as_str(),
            "https://api.individual.githubcopilot.com/"
        );
        let derived = read_api_token(
            StatusCode::OK,
            None,
            br#"{"token":"tid=1;proxy-ep=proxy.business.githubcopilot.com","expires_at":1767227400}"#,
            now,
        )
        .unwrap();
        assert_eq!(
            derived.base_url.unwrap().as_str(),
            "https://api.business.githubcopilot.com/"
        );
        assert_eq!(derived.refresh_at, 1_767_227_340_000);
        let no_seat = read_api_token(
            StatusCode::FORBIDDEN,
            None,
            br#"{"message":"Copilot is not enabled"}"#,
            now,
        )
        .unwrap_err();
        assert!(no_seat.dead);
        assert!(no_seat.message.contains("Copilot seat"), "{no_seat}");
    }
}
