//! Kiro's two refreshes (`reference/protocols.md` §5.1), and the setup that
//! names an imported login.
//!
//! - A "social" login (Google or GitHub in Kiro IDE) refreshes at
//!   `POST https://prod.{region}.auth.desktop.kiro.dev/refreshToken` with
//!   `{"refreshToken"}` and the IDE's user agent \[2+\].
//! - An `IdC` login (Builder ID, IAM Identity Center, kiro-cli) refreshes at
//!   AWS SSO OIDC, `POST https://oidc.{region}.amazonaws.com/token`, with
//!   camelCase JSON `{"clientId","clientSecret","refreshToken",
//!   "grantType":"refresh_token"}` \[2+\].
//!
//! Both answer `{"accessToken","refreshToken","expiresIn"}` (the desktop
//! one adds `profileArn`). With `auth_url` set, both paths sit on it.

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use subgate_config::Url;
use subgate_http::OutboundRequest;

use super::{IDE_VERSION, machine_id};
use crate::oauth::{AuthBody, TokenError, auth_post};
use crate::session::Login;
use crate::setup::{Setup, SetupStep};

/// Where a login's region is unknown: Kiro's home.
const DEFAULT_REGION: &str = "us-east-1";

/// The auth servers, or the one `auth_url` that replaces them.
#[derive(Debug)]
pub(crate) struct Endpoints {
    fixed: Option<Url>,
}

impl Endpoints {
    pub(crate) fn new(auth_url: Option<&Url>) -> Self {
        Self {
            fixed: auth_url.cloned(),
        }
    }

    fn url(&self, host: &str, path: &str) -> Option<Url> {
        match &self.fixed {
            Some(base) => Some(super::join(base, path)),
            None => Url::parse(&format!("https://{host}/{path}")).ok(),
        }
    }

    /// The refresh for `login`: at SSO OIDC with its client when it has one,
    /// else at Kiro's desktop auth service.
    pub(crate) fn refresh_request(
        &self,
        login: &Login,
        account_id: &str,
    ) -> Option<OutboundRequest> {
        let refresh = login.refresh_token.as_deref()?;
        let region = login.region.as_deref().unwrap_or(DEFAULT_REGION);
        if let Some(client) = &login.client {
            let url = self.url(&format!("oidc.{region}.amazonaws.com"), "token")?;
            return Some(auth_post(
                url,
                AuthBody::Json(json!({
                    "clientId": client.id,
                    "clientSecret": client.secret,
                    "refreshToken": refresh,
                    "grantType": "refresh_token",
                })),
            ));
        }
        let url = self.url(
            &format!("prod.{region}.auth.desktop.kiro.dev"),
            "refreshToken",
        )?;
        let mut request = auth_post(url, AuthBody::Json(json!({ "refreshToken": refresh })));
        let agent = format!("KiroIDE-{IDE_VERSION}-{}", machine_id(account_id));
        if let Ok(value) = HeaderValue::try_from(agent) {
            request.headers.insert(http::header::USER_AGENT, value);
        }
        Some(request)
    }
}

/// Reads a refresh answer into the login it renews.
pub(crate) fn read_tokens(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    previous: Option<&Login>,
    now: i64,
) -> Result<Login, TokenError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        access_token: String,
        refresh_token: Option<String>,
        expires_in: Option<i64>,
        profile_arn: Option<String>,
    }
    if !status.is_success() {
        return Err(TokenError::from_response(status, retry_after, body));
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|error| TokenError::unreadable("token", &error))?;
    let mut login = previous.cloned().unwrap_or_default();
    login.access_token = answer.access_token;
    if let Some(refresh) = answer.refresh_token {
        login.refresh_token = Some(refresh);
    }
    login.expires_at = Some(now + answer.expires_in.unwrap_or(3600) * 1000);
    if let Some(profile) = answer.profile_arn {
        login.profile_arn = Some(profile);
    }
    Ok(login)
}

/// The setup of a new login: `getUsageLimits`, whose `userInfo.email` names
/// the account \[1\]. (Its machine id is not the stored account's, which
/// does not exist yet.)
pub(crate) fn first_setup(kiro: &super::Kiro, login: &Login) -> Setup {
    let account = crate::Account::login(String::new(), String::new(), 0, login.clone());
    Setup::new(
        kiro.usage_request(&account),
        SetupStep::KiroUsage,
        Duration::ZERO,
    )
}

/// Reads the setup's answer: the email, which also identifies the account
/// (the profile ARN is shared by every social login \[2+\]). A refusal
/// leaves the login unnamed rather than failing it: the name is a nicety.
pub(crate) fn read_setup(status: StatusCode, body: &[u8], mut login: Login) -> Login {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Limits {
        user_info: Option<User>,
        subscription_info: Option<Plan>,
    }
    #[derive(Deserialize)]
    struct User {
        email: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Plan {
        subscription_title: Option<String>,
    }
    if !status.is_success() {
        return login;
    }
    if let Ok(limits) = serde_json::from_slice::<Limits>(body) {
        if let Some(email) = limits.user_info.and_then(|user| user.email) {
            login.account_id = Some(email.clone());
            login.email = Some(email);
        }
        if let Some(plan) = limits
            .subscription_info
            .and_then(|plan| plan.subscription_title)
        {
            login.plan = Some(plan);
        }
    }
    login
}
