//! Finding the account's Code Assist project after login
//! (`reference/protocols.md` §4.2), as Gemini CLI does each session (we do
//! it once and keep it with the login): the email (userinfo) if the ID
//! token did not say, then `loadCodeAssist`; an account with no tier yet
//! is onboarded on its default tier (`onboardUser`, a long-running
//! operation polled until done), which provisions the project.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use subgate_http::OutboundRequest;

use super::GeminiCli;
use crate::oauth::TokenError;
use crate::session::Login;
use crate::setup::{Setup, SetupStep};

/// How long between two polls of the onboarding operation.
const POLL_EVERY: Duration = Duration::from_secs(1);

const METADATA: &str =
    r#"{"ideType":"IDE_UNSPECIFIED","platform":"PLATFORM_UNSPECIFIED","pluginType":"GEMINI"}"#;

impl GeminiCli {
    fn post(&self, login: &Login, method: &str, body: &serde_json::Value) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: self.method_url(method),
            headers: self.code_assist_headers(Some(&login.access_token), true),
            body: Bytes::from(body.to_string()),
        }
    }

    fn load(&self, login: &Login) -> Setup {
        let metadata: serde_json::Value = serde_json::from_str(METADATA).unwrap_or_default();
        Setup::new(
            self.post(login, "loadCodeAssist", &json!({"metadata": metadata})),
            SetupStep::LoadCodeAssist,
            Duration::ZERO,
        )
    }

    /// The first step for a fresh login, if it lacks anything.
    pub(crate) fn first_setup(&self, login: &Login) -> Option<Setup> {
        if login.email.is_none() {
            return Some(Setup::new(
                self.endpoints.userinfo_request(&login.access_token),
                SetupStep::Userinfo,
                Duration::ZERO,
            ));
        }
        login.project.is_none().then(|| self.load(login))
    }

    /// Reads one step's answer; the next step, if there is one.
    pub(crate) fn read_setup(
        &self,
        mut login: Login,
        step: &SetupStep,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(Login, Option<Setup>), TokenError> {
        if !status.is_success() {
            let mut error = TokenError::from_response(status, None, body);
            error.message = format!("Code Assist setup: {}", error.message);
            return Err(error);
        }
        let unreadable = |error: serde_json::Error| TokenError::unreadable("Code Assist", &error);
        match step {
            SetupStep::Userinfo => {
                login = super::read_userinfo(status, body, login)?;
                let next = login.project.is_none().then(|| self.load(&login));
                Ok((login, next))
            }
            SetupStep::LoadCodeAssist => {
                let loaded: Loaded = serde_json::from_slice(body).map_err(unreadable)?;
                if loaded.current_tier.is_some()
                    && let Some(project) = loaded.project
                {
                    login.project = Some(project);
                    return Ok((login, None));
                }
                let tier = loaded
                    .allowed_tiers
                    .iter()
                    .find(|tier| tier.is_default)
                    .map_or("free-tier", |tier| tier.id.as_str());
                if tier != "free-tier" {
                    return Err(TokenError {
                        dead: true,
                        retry_after: None,
                        message: format!(
                            "this Google account's Code Assist tier `{tier}` needs a Google Cloud project, which subgate does not set up; use a free-tier account or Gemini CLI once to set it up"
                        ),
                    });
                }
                let metadata: serde_json::Value =
                    serde_json::from_str(METADATA).unwrap_or_default();
                let onboard = self.post(
                    &login,
                    "onboardUser",
                    &json!({"tierId": tier, "metadata": metadata}),
                );
                Ok((
                    login,
                    Some(Setup::new(onboard, SetupStep::Onboard, Duration::ZERO)),
                ))
            }
            SetupStep::Onboard | SetupStep::Operation => {
                let operation: Operation = serde_json::from_slice(body).map_err(unreadable)?;
                if operation.done {
                    let project = operation
                        .response
                        .and_then(|response| response.project)
                        .map(|project| project.id);
                    login.project = project;
                    return match login.project {
                        Some(_) => Ok((login, None)),
                        None => Err(TokenError::transient(
                            "Code Assist finished onboarding without naming a project",
                        )),
                    };
                }
                let poll = self
                    .operation_request(&login, &operation.name)
                    .ok_or_else(|| {
                        TokenError::transient(
                            "the Code Assist base URL has no room for an operation path",
                        )
                    })?;
                Ok((
                    login,
                    Some(Setup::new(poll, SetupStep::Operation, POLL_EVERY)),
                ))
            }
            SetupStep::CopilotUser | SetupStep::KiroUsage => Ok((login, None)),
        }
    }

    /// `GET {base}/v1internal/<operation name>`.
    fn operation_request(&self, login: &Login, name: &str) -> Option<OutboundRequest> {
        let mut url = self.method_url("loadCodeAssist");
        let base = url
            .path()
            .strip_suffix("v1internal:loadCodeAssist")?
            .to_owned();
        url.set_path(&format!("{base}v1internal/{name}"));
        Some(OutboundRequest {
            method: Method::GET,
            url,
            headers: self.code_assist_headers(Some(&login.access_token), false),
            body: Bytes::new(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Loaded {
    current_tier: Option<serde_json::Value>,
    #[serde(default)]
    allowed_tiers: Vec<Tier>,
    #[serde(rename = "cloudaicompanionProject")]
    project: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tier {
    id: String,
    #[serde(default)]
    is_default: bool,
}

#[derive(Deserialize)]
struct Operation {
    #[serde(default)]
    name: String,
    #[serde(default)]
    done: bool,
    response: Option<Onboarded>,
}

#[derive(Deserialize)]
struct Onboarded {
    #[serde(rename = "cloudaicompanionProject")]
    project: Option<ProjectRef>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: String,
}
