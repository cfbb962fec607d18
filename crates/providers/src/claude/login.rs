//! Claude's OAuth (`reference/protocols.md` §1.1): authorization code with
//! PKCE S256 on claude.ai, JSON token exchange and refresh on
//! platform.claude.com, a loopback callback or a page showing `CODE#STATE`
//! to paste.

use http::header::ACCEPT;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{AuthBody, CallbackSpec, TokenError, at, auth_post, fixed_url, with_query};
use crate::session::Login;

pub(crate) const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const SCOPES: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";
const AUTHORIZE: &str = "https://claude.ai/oauth/authorize";
const TOKEN: &str = "https://platform.claude.com/v1/oauth/token";
const PASTE_REDIRECT: &str = "https://platform.claude.com/oauth/code/callback";
/// The loopback port other Claude logins use; any free port works.
pub(crate) const CALLBACK: CallbackSpec = CallbackSpec {
    port: 54545,
    path: "/callback",
};

/// Where Claude's logins go.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    authorize: Url,
    token: Url,
    paste_redirect: String,
}

impl Endpoints {
    /// Claude's own, or all on `auth_url` when one is configured.
    pub(crate) fn new(auth_url: Option<&Url>) -> Self {
        match auth_url {
            Some(base) => Self {
                authorize: at(base, "/oauth/authorize"),
                token: at(base, "/v1/oauth/token"),
                paste_redirect: at(base, "/oauth/code/callback").to_string(),
            },
            None => Self {
                authorize: fixed_url(AUTHORIZE),
                token: fixed_url(TOKEN),
                paste_redirect: PASTE_REDIRECT.to_owned(),
            },
        }
    }

    /// The page to send the user to; `redirect_uri` `None` is the paste
    /// flow.
    pub(crate) fn authorize_url(
        &self,
        challenge: &str,
        state: &str,
        redirect_uri: Option<&str>,
    ) -> (Url, String) {
        let redirect = redirect_uri.unwrap_or(&self.paste_redirect).to_owned();
        let url = with_query(
            self.authorize.clone(),
            &[
                ("code", "true"),
                ("client_id", CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", &redirect),
                ("scope", SCOPES),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", state),
            ],
        );
        (url, redirect)
    }

    pub(crate) fn exchange_request(
        &self,
        code: &str,
        state: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> OutboundRequest {
        self.post(json!({
            "grant_type": "authorization_code",
            "code": code,
            "state": state,
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }))
    }

    pub(crate) fn refresh_request(&self, refresh_token: &str) -> OutboundRequest {
        self.post(json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
        }))
    }

    fn post(&self, body: serde_json::Value) -> OutboundRequest {
        let mut request = auth_post(self.token.clone(), AuthBody::Json(body));
        // What Claude Code's HTTP client sends.
        request.headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/plain, */*"),
        );
        request
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    account: Option<AccountInfo>,
}

#[derive(Deserialize)]
struct AccountInfo {
    uuid: Option<String>,
    email_address: Option<String>,
}

/// Reads a token answer (exchange or refresh). A refresh that does not
/// rotate the refresh token keeps `previous`'s.
pub(crate) fn read_tokens(
    status: StatusCode,
    retry_after: Option<std::time::Duration>,
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
    login.access_token = answer.access_token;
    if let Some(refresh) = answer.refresh_token {
        login.refresh_token = Some(refresh);
    }
    login.expires_at = answer.expires_in.map(|seconds| now + seconds * 1000);
    if let Some(account) = answer.account {
        login.account_id = account.uuid.or(login.account_id);
        login.email = account.email_address.or(login.email);
    }
    Ok(login)
}

#[cfg(test)]
mod tests {
    use http::header::CONTENT_TYPE;
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn authorize_and_token_requests_have_the_documented_shape() {
        let endpoints = Endpoints::new(None);
        let (url, redirect) = endpoints.authorize_url("ch", "st", None);
        assert_eq!(redirect, PASTE_REDIRECT);
        assert!(url.as_str().starts_with("https://claude.ai/oauth/authorize?code=true&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e&response_type=code&redirect_uri=https%3A%2F%2Fplatform.claude.com%2Foauth%2Fcode%2Fcallback&scope=user%3Aprofile+user%3Ainference"));
        assert!(
            url.as_str()
                .ends_with("&code_challenge=ch&code_challenge_method=S256&state=st")
        );
        let exchange = endpoints.exchange_request("c", "st", "v", &redirect);
        assert_eq!(exchange.url.as_str(), TOKEN);
        assert_eq!(exchange.headers[CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&exchange.body).unwrap();
        assert_eq!(body["grant_type"], "authorization_code");
        assert_eq!(body["code_verifier"], "v");
        let mocked = Endpoints::new(Some(&Url::parse("http://127.0.0.1:9/x").unwrap()));
        assert_eq!(
            mocked.refresh_request("r").url.as_str(),
            "http://127.0.0.1:9/v1/oauth/token"
        );
    }

    #[test]
    fn a_refresh_without_rotation_keeps_the_refresh_token() {
        let previous = Login {
            access_token: "old".into(),
            refresh_token: Some("sk-ant-ort01-keep".into()),
            email: Some("a@b.c".into()),
            ..Login::default()
        };
        let login = read_tokens(
            StatusCode::OK,
            None,
            br#"{"access_token":"sk-ant-oat01-new","expires_in":28800,"token_type":"Bearer"}"#,
            Some(&previous),
            1_000,
        )
        .unwrap();
        assert_eq!(login.access_token, "sk-ant-oat01-new");
        assert_eq!(login.refresh_token.as_deref(), Some("sk-ant-ort01-keep"));
        assert_eq!(login.expires_at, Some(28_801_000));
        assert_eq!(login.email.as_deref(), Some("a@b.c"));
        let dead = read_tokens(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":"invalid_grant"}"#,
            Some(&previous),
            0,
        )
        .unwrap_err();
        assert!(dead.dead);
    }
}
