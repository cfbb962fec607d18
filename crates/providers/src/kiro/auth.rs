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
//!
//! A new login is an AWS Builder ID, by AWS SSO OIDC's device flow in
//! `us-east-1` \[2+\]: register a public client, start a device
//! authorization with Builder ID's start URL, poll `token` with the
//! device-code grant. The login keeps the client for its refreshes.

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use subgate_config::Url;
use subgate_http::OutboundRequest;

use subgate_auth::{DeviceError, DevicePoll};

use super::{IDE_VERSION, machine_id};
use crate::oauth::{AuthBody, DeviceGrant, DeviceStart, TokenError, auth_post};
use crate::session::{Login, OAuthClient};
use crate::setup::{Setup, SetupStep};

/// Where a login's region is unknown: Kiro's home, and Builder ID's.
const DEFAULT_REGION: &str = "us-east-1";

/// Builder ID's start URL \[2+\].
const BUILDER_ID_START_URL: &str = "https://view.awsapps.com/start";

/// What a Builder ID login asks for: the scopes Kiro's clients ask
/// (amazon-q-developer-cli's list) \[2+\].
const SCOPES: [&str; 3] = [
    "codewhisperer:completions",
    "codewhisperer:analysis",
    "codewhisperer:conversations",
];

/// OAuth's device-code grant.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

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

    fn oidc(&self, path: &str) -> Option<Url> {
        self.url(&format!("oidc.{DEFAULT_REGION}.amazonaws.com"), path)
    }

    /// `POST /client/register`: a public client for one Builder ID login.
    pub(crate) fn register_request(&self) -> Option<OutboundRequest> {
        Some(auth_post(
            self.oidc("client/register")?,
            AuthBody::Json(json!({
                "clientName": "subgate",
                "clientType": "public",
                "scopes": SCOPES,
            })),
        ))
    }

    /// `POST /device_authorization` with the registered client.
    pub(crate) fn device_start_request(&self, client: &OAuthClient) -> Option<OutboundRequest> {
        Some(auth_post(
            self.oidc("device_authorization")?,
            AuthBody::Json(json!({
                "clientId": client.id,
                "clientSecret": client.secret,
                "startUrl": BUILDER_ID_START_URL,
            })),
        ))
    }

    /// One poll: `POST /token` with the device-code grant.
    pub(crate) fn device_poll_request(&self, start: &DeviceStart) -> Option<OutboundRequest> {
        let client = start.client.as_ref()?;
        Some(auth_post(
            self.oidc("token")?,
            AuthBody::Json(json!({
                "clientId": client.id,
                "clientSecret": client.secret,
                "grantType": DEVICE_GRANT,
                "deviceCode": start.handle,
            })),
        ))
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

/// Reads a client registration (`clientSecretExpiresAt` in Unix seconds).
pub(crate) fn read_registration(
    status: StatusCode,
    body: &[u8],
    now: i64,
) -> Result<OAuthClient, TokenError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Registered {
        client_id: String,
        client_secret: String,
        client_secret_expires_at: Option<i64>,
    }
    if !status.is_success() {
        return Err(TokenError::from_response(status, None, body));
    }
    let registered: Registered = serde_json::from_slice(body)
        .map_err(|error| TokenError::unreadable("client registration", &error))?;
    Ok(OAuthClient {
        id: registered.client_id,
        secret: registered.client_secret,
        expires_at: registered
            .client_secret_expires_at
            .map(|seconds| seconds * 1000)
            .filter(|&at| at > now),
    })
}

/// Reads the device authorization: the code to enter and the page (the
/// complete one, with the code in it, when given).
pub(crate) fn read_device_start(
    status: StatusCode,
    body: &[u8],
    client: Option<OAuthClient>,
) -> Result<DeviceStart, TokenError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Started {
        device_code: String,
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_in: Option<u64>,
        interval: Option<u64>,
    }
    if !status.is_success() {
        return Err(TokenError::from_response(status, None, body));
    }
    let started: Started = serde_json::from_slice(body)
        .map_err(|error| TokenError::unreadable("device authorization", &error))?;
    Ok(DeviceStart {
        user_code: started.user_code,
        verification_uri: started
            .verification_uri_complete
            .unwrap_or(started.verification_uri),
        interval: Duration::from_secs(started.interval.unwrap_or(5)),
        expires_in: Duration::from_secs(started.expires_in.unwrap_or(600)),
        handle: started.device_code,
        client,
    })
}

/// One poll's answer: SSO OIDC answers 400 with `authorization_pending`,
/// `slow_down`, `expired_token` or `access_denied` until the user approves.
pub(crate) fn read_device_poll(
    start: &DeviceStart,
    status: StatusCode,
    body: &[u8],
    now: i64,
) -> Result<DevicePoll<DeviceGrant>, DeviceError<TokenError>> {
    #[derive(Deserialize)]
    struct Refusal {
        error: Option<String>,
        error_description: Option<String>,
    }
    if status.is_success() {
        let mut login = read_tokens(status, None, body, None, now).map_err(DeviceError::Failed)?;
        login.region = Some(DEFAULT_REGION.to_owned());
        login.client.clone_from(&start.client);
        return Ok(DevicePoll::Done(DeviceGrant::Login(Box::new(login))));
    }
    let refusal = serde_json::from_slice::<Refusal>(body).ok();
    match refusal
        .as_ref()
        .and_then(|refusal| refusal.error.as_deref())
    {
        Some("authorization_pending") => Ok(DevicePoll::Pending),
        Some("slow_down") => Ok(DevicePoll::SlowDown(None)),
        Some("expired_token") => Err(DeviceError::Expired),
        Some("access_denied") => Err(DeviceError::Denied(
            refusal
                .and_then(|refusal| refusal.error_description)
                .unwrap_or_else(|| "the request was denied on the AWS page".to_owned()),
        )),
        _ => Err(DeviceError::Failed(TokenError::from_response(
            status, None, body,
        ))),
    }
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
