//! What every subscription login has in common: the methods, what starting
//! one yields, and how a token endpoint's refusal reads.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use subgate_config::Url;

/// How a login is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A browser on this machine, returning to a loopback callback.
    Browser,
    /// A browser anywhere; the page shows a code to paste back.
    Paste,
    /// A code entered on the provider's site while subgate polls.
    Device,
}

impl LoginMethod {
    /// Its name in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Paste => "paste",
            Self::Device => "device",
        }
    }
}

/// Where a loopback callback must listen: the port the provider's client
/// registration expects, and the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackSpec {
    /// The port (0 when any port will do).
    pub port: u16,
    /// The path, such as `/callback`.
    pub path: &'static str,
}

/// A started device login (kept as JSON between the calls of the
/// management API's device logins).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct DeviceStart {
    /// What the user types.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// How often to poll.
    pub interval: Duration,
    /// How long the code lives.
    pub expires_in: Duration,
    /// What polling needs (the device code, or the device auth id).
    pub handle: String,
    /// The client registered for this login, when the provider registers
    /// one per login (AWS SSO OIDC's, for Kiro's Builder ID): polling
    /// presents it, and the login keeps it for its refreshes.
    pub client: Option<crate::OAuthClient>,
}

/// A finished device login: the login itself (GitHub's token), or an
/// authorization code still to exchange (Codex's).
#[derive(Debug, Clone)]
pub enum DeviceGrant {
    /// The credential.
    Login(Box<crate::Login>),
    /// A code to exchange with this verifier and redirect URI.
    Code {
        /// The authorization code.
        code: String,
        /// The PKCE verifier the server generated.
        verifier: String,
        /// The redirect URI the exchange must name.
        redirect_uri: String,
    },
}

/// A login or refresh the token endpoint refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// The credential is gone for good (revoked, reused, expired refresh
    /// token): only a new login helps.
    pub dead: bool,
    /// How long the server asked us to wait, if it did.
    pub retry_after: Option<Duration>,
    /// What went wrong, for people.
    pub message: String,
}

impl TokenError {
    /// A failure that says nothing about the credential (the server could
    /// not be reached, or took too long): try again later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            dead: false,
            retry_after: None,
            message: message.into(),
        }
    }

    /// An answer that could not be read.
    pub(crate) fn unreadable(what: &str, error: &serde_json::Error) -> Self {
        Self::transient(format!("the {what} answer could not be read: {error}"))
    }

    /// A refusal, read from the usual OAuth error shapes:
    /// `{"error":"invalid_grant","error_description":…}` or
    /// `{"error":{"code"|"type":…,"message":…}}`. 400 and 401 with a
    /// grant error mean the refresh token is dead; 429 and 5xx pass.
    pub(crate) fn from_response(
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Self {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum ErrorField {
            Text(String),
            Object {
                #[serde(alias = "type")]
                code: Option<String>,
                message: Option<String>,
            },
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<ErrorField>,
            error_description: Option<String>,
        }
        let (code, text) = match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope {
                error: Some(ErrorField::Text(code)),
                error_description,
            }) => (Some(code), error_description),
            Ok(Envelope {
                error: Some(ErrorField::Object { code, message }),
                ..
            }) => (code, message),
            _ => (None, None),
        };
        let transient = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error();
        let dead = !transient
            && (matches!(status.as_u16(), 400 | 401 | 403)
                && code.as_deref().is_none_or(|code| {
                    code.contains("grant")
                        || code.contains("refresh_token")
                        || code.contains("unauthorized")
                        || code.contains("invalid")
                }));
        let detail = match (code, text) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code,
            (None, Some(text)) => text,
            (None, None) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        };
        Self {
            dead,
            retry_after,
            message: format!("answered {status}: {detail}"),
        }
    }
}

/// A body for an auth server.
pub(crate) enum AuthBody<'a> {
    /// JSON.
    Json(serde_json::Value),
    /// Form-encoded pairs.
    Form(&'a [(&'a str, &'a str)]),
}

/// `POST url` to an auth server (token, device and registration
/// endpoints), asking for a JSON answer.
pub(crate) fn auth_post(url: Url, body: AuthBody<'_>) -> subgate_http::OutboundRequest {
    use http::header::{ACCEPT, CONTENT_TYPE};
    use http::{HeaderMap, HeaderValue};
    let (content_type, body) = match body {
        AuthBody::Json(value) => ("application/json", value.to_string()),
        AuthBody::Form(pairs) => (
            "application/x-www-form-urlencoded",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().copied())
                .finish(),
        ),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    subgate_http::OutboundRequest {
        method: http::Method::POST,
        url,
        headers,
        body: bytes::Bytes::from(body),
    }
}

/// Adds `name=value` query pairs to `url`.
pub(crate) fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    url.query_pairs_mut().extend_pairs(pairs.iter().copied());
    url
}

/// A URL written in the code.
#[expect(
    clippy::expect_used,
    reason = "only built-in constants come here, and the tests parse every one"
)]
pub(crate) fn fixed_url(url: &'static str) -> Url {
    Url::parse(url).expect("a built-in URL parses")
}

/// `base`'s scheme, host and port with `path` (absolute), for services whose
/// endpoints sit on one host under fixed paths.
pub(crate) fn at(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_dead_or_passing() {
        let dead = TokenError::from_response(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":"invalid_grant","error_description":"Refresh token not found or invalid"}"#,
        );
        assert!(dead.dead);
        assert_eq!(
            dead.message,
            "answered 400 Bad Request: invalid_grant: Refresh token not found or invalid"
        );
        let reused = TokenError::from_response(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":{"code":"refresh_token_reused","message":"already used"}}"#,
        );
        assert!(reused.dead);
        let busy = TokenError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(5)),
            b"slow down",
        );
        assert!(!busy.dead);
        assert_eq!(busy.retry_after, Some(Duration::from_secs(5)));
        assert!(!TokenError::from_response(StatusCode::BAD_GATEWAY, None, b"").dead);
    }
}
