//! Google's installed-app OAuth as Gemini CLI uses it
//! (`reference/protocols.md` §4.1): authorization code with PKCE on
//! accounts.google.com returning to a loopback port of our choosing (or,
//! without a browser here, to Code Assist's page that shows the code to
//! paste), form-encoded exchange and refresh on oauth2.googleapis.com with
//! the app's published client secret. Google does not rotate refresh
//! tokens, so a refresh keeps the old one.

use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{AuthBody, CallbackSpec, TokenError, at, auth_post, fixed_url, with_query};
use crate::session::Login;

pub(crate) const CLIENT_ID: &str =
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
/// An installed app's secret is public by design (Gemini CLI ships it).
const CLIENT_SECRET: &str = "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";
const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile";
const AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const TOKEN: &str = "https://oauth2.googleapis.com/token";
const USERINFO: &str = "https://www.googleapis.com/oauth2/v2/userinfo";
/// Where a login without a browser here returns: a page showing the code.
const PASTE_REDIRECT: &str = "https://codeassist.google.com/authcode";
/// Any free loopback port works for an installed app.
pub(crate) const CALLBACK: CallbackSpec = CallbackSpec {
    port: 0,
    path: "/oauth2callback",
};

#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    authorize: Url,
    token: Url,
    userinfo: Url,
    paste_redirect: String,
}

impl Endpoints {
    /// Google's own, or all on `auth_url` when one is configured.
    pub(crate) fn new(auth_url: Option<&Url>) -> Self {
        match auth_url {
            Some(base) => Self {
                authorize: at(base, "/o/oauth2/v2/auth"),
                token: at(base, "/token"),
                userinfo: at(base, "/oauth2/v2/userinfo"),
                paste_redirect: at(base, "/authcode").to_string(),
            },
            None => Self {
                authorize: fixed_url(AUTHORIZE),
                token: fixed_url(TOKEN),
                userinfo: fixed_url(USERINFO),
                paste_redirect: PASTE_REDIRECT.to_owned(),
            },
        }
    }

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
                ("client_id", CLIENT_ID),
                ("redirect_uri", &redirect),
                ("response_type", "code"),
                ("scope", SCOPES),
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        (url, redirect)
    }

    pub(crate) fn exchange_request(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> OutboundRequest {
        self.post(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
    }

    pub(crate) fn refresh_request(&self, refresh_token: &str) -> OutboundRequest {
        self.post(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ])
    }

    /// `GET …/oauth2/v2/userinfo`: the account's email.
    pub(crate) fn userinfo_request(&self, access_token: &str) -> OutboundRequest {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::try_from(format!("Bearer {access_token}")) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        OutboundRequest {
            method: Method::GET,
            url: self.userinfo.clone(),
            headers,
            body: Bytes::new(),
        }
    }

    fn post(&self, pairs: &[(&str, &str)]) -> OutboundRequest {
        auth_post(self.token.clone(), AuthBody::Form(pairs))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    id_token: Option<String>,
}

/// Reads a token answer (exchange or refresh), keeping what it leaves out
/// (Google's refresh answers carry no refresh token) from `previous`.
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
    login.access_token = answer.access_token;
    if let Some(refresh) = answer.refresh_token {
        login.refresh_token = Some(refresh);
    }
    login.expires_at = answer.expires_in.map(|seconds| now + seconds * 1000);
    if let Some(id_token) = answer.id_token {
        if let Some(email) = email_claim(&id_token) {
            login.email = Some(email);
        }
        login.id_token = Some(id_token);
    }
    Ok(login)
}

/// The `email` claim of a Google ID token.
pub(crate) fn email_claim(id_token: &str) -> Option<String> {
    subgate_auth::claims(id_token)?
        .get("email")?
        .as_str()
        .map(str::to_owned)
}

/// Reads the userinfo answer's email into the login.
pub(crate) fn read_userinfo(
    status: StatusCode,
    body: &[u8],
    mut login: Login,
) -> Result<Login, TokenError> {
    #[derive(Deserialize)]
    struct User {
        email: Option<String>,
    }
    if !status.is_success() {
        return Err(TokenError::from_response(status, None, body));
    }
    let user: User =
        serde_json::from_slice(body).map_err(|error| TokenError::unreadable("userinfo", &error))?;
    login.email = user.email.or(login.email);
    Ok(login)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn logins_and_refreshes_have_the_documented_shape() {
        let endpoints = Endpoints::new(None);
        let (url, redirect) = endpoints.authorize_url("ch", "st", None);
        assert_eq!(redirect, PASTE_REDIRECT);
        assert!(url.as_str().starts_with("https://accounts.google.com/o/oauth2/v2/auth?client_id=681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com&redirect_uri=https%3A%2F%2Fcodeassist.google.com%2Fauthcode&response_type=code&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"));
        assert!(url.as_str().contains("&access_type=offline&"));
        let refresh = endpoints.refresh_request("1//0r");
        assert_eq!(refresh.url.as_str(), TOKEN);
        assert_eq!(
            refresh.body,
            "grant_type=refresh_token&client_id=681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com&client_secret=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&refresh_token=1%2F%2F0r"
        );
        let previous = Login {
            access_token: "ya29.old".into(),
            refresh_token: Some("1//0r".into()),
            ..Login::default()
        };
        let login = read_tokens(
            StatusCode::OK,
            None,
            br#"{"access_token":"ya29.new","expires_in":3599,"token_type":"Bearer"}"#,
            Some(&previous),
            1_000,
        )
        .unwrap();
        assert_eq!(login.refresh_token.as_deref(), Some("1//0r"));
        assert_eq!(login.expires_at, Some(3_600_000));
        let dead = read_tokens(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
            Some(&previous),
            0,
        )
        .unwrap_err();
        assert!(dead.dead);
    }
}
