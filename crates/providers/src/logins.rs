//! Logins and refreshes, dispatched to each subscription kind: how a login
//! starts and finishes, and how its credential stays fresh. The engine
//! sends the requests and stores what comes back before using it.

use http::{HeaderMap, StatusCode};
use subgate_auth::{DeviceError, DevicePoll};
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{CallbackSpec, DeviceGrant, DeviceStart, LoginMethod, TokenError};
use crate::session::{Login, OAuthClient};
use crate::setup::{Setup, SetupStep};
use crate::verdict::retry_after;
use crate::{Account, Kind, Provider, Refreshed, claude, codex, copilot, gemini_cli, kiro};

/// How long before expiry a credential is refreshed.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// A subscription provider's own part, borrowed: the login dispatch below
/// matches on this, so the API-key kinds are ruled out in one place.
enum Subscription<'a> {
    Claude(&'a claude::Claude),
    Codex(&'a codex::Codex),
    Copilot(&'a copilot::Copilot),
    GeminiCli(&'a gemini_cli::GeminiCli),
    Kiro(&'a kiro::Kiro),
}

impl Provider {
    /// The subscription this provider is, if it is one.
    fn subscription(&self) -> Option<Subscription<'_>> {
        match &self.kind {
            Kind::Claude(upstream) => Some(Subscription::Claude(upstream)),
            Kind::Codex(upstream) => Some(Subscription::Codex(upstream)),
            Kind::Copilot(upstream) => Some(Subscription::Copilot(upstream)),
            Kind::GeminiCli(upstream) => Some(Subscription::GeminiCli(upstream)),
            Kind::Kiro(upstream) => Some(Subscription::Kiro(upstream)),
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => None,
        }
    }

    /// The ways this provider's accounts can log in, the preferred first;
    /// empty for API keys.
    pub fn login_methods(&self) -> &'static [LoginMethod] {
        match self.subscription() {
            Some(Subscription::Claude(_) | Subscription::GeminiCli(_)) => {
                &[LoginMethod::Browser, LoginMethod::Paste]
            }
            Some(Subscription::Codex(_)) => &[LoginMethod::Browser, LoginMethod::Device],
            Some(Subscription::Copilot(_) | Subscription::Kiro(_)) => &[LoginMethod::Device],
            None => &[],
        }
    }

    /// Where a browser login's loopback callback listens.
    pub fn callback(&self) -> Option<CallbackSpec> {
        match self.subscription()? {
            Subscription::Claude(_) => Some(claude::CALLBACK),
            Subscription::Codex(_) => Some(codex::CALLBACK),
            Subscription::GeminiCli(_) => Some(gemini_cli::CALLBACK),
            Subscription::Copilot(_) | Subscription::Kiro(_) => None,
        }
    }

    /// The page a browser login starts on, and the redirect URI it names
    /// (`redirect_uri` `None`: the paste flow's page).
    pub fn authorize_url(
        &self,
        challenge: &str,
        state: &str,
        redirect_uri: Option<&str>,
    ) -> Option<(Url, String)> {
        match self.subscription()? {
            Subscription::Claude(claude) => Some(claude.endpoints.authorize_url(
                challenge,
                state,
                redirect_uri,
            )),
            Subscription::GeminiCli(gemini) => Some(gemini.endpoints.authorize_url(
                challenge,
                state,
                redirect_uri,
            )),
            Subscription::Codex(codex) => {
                let redirect = redirect_uri?;
                Some((
                    codex.endpoints.authorize_url(challenge, state, redirect),
                    redirect.to_owned(),
                ))
            }
            Subscription::Copilot(_) | Subscription::Kiro(_) => None,
        }
    }

    /// The exchange of an authorization code for tokens.
    pub fn exchange_request(
        &self,
        code: &str,
        state: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Option<OutboundRequest> {
        match self.subscription()? {
            Subscription::Claude(claude) => Some(claude.endpoints.exchange_request(
                code,
                state,
                verifier,
                redirect_uri,
            )),
            Subscription::Codex(codex) => Some(codex.endpoints.exchange_request(
                code,
                verifier,
                redirect_uri,
            )),
            Subscription::GeminiCli(gemini) => Some(gemini.endpoints.exchange_request(
                code,
                verifier,
                redirect_uri,
            )),
            Subscription::Copilot(_) | Subscription::Kiro(_) => None,
        }
    }

    /// Reads a token endpoint's answer to an exchange into a login.
    pub fn read_login(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Login, TokenError> {
        self.read_tokens(status, headers, body, None, now)
    }

    fn read_tokens(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        previous: Option<&Login>,
        now: i64,
    ) -> Result<Login, TokenError> {
        let wait = retry_after(headers);
        match self.subscription() {
            Some(Subscription::Claude(_)) => claude::read_tokens(status, wait, body, previous, now),
            Some(Subscription::Codex(_)) => codex::read_tokens(status, wait, body, previous, now),
            Some(Subscription::GeminiCli(_)) => {
                gemini_cli::read_tokens(status, wait, body, previous, now)
            }
            Some(Subscription::Kiro(_)) => {
                kiro::auth::read_tokens(status, wait, body, previous, now)
            }
            Some(Subscription::Copilot(_)) | None => Err(self.no_login()),
        }
    }

    fn no_login(&self) -> TokenError {
        TokenError {
            dead: true,
            retry_after: None,
            message: format!("`{}` has no such login", self.name),
        }
    }

    /// The registration of a client for one device login, for providers
    /// whose users register their own (Kiro's Builder ID, at AWS SSO
    /// OIDC); it comes before [`Self::device_start_request`].
    pub fn client_registration_request(&self) -> Option<OutboundRequest> {
        match self.subscription()? {
            Subscription::Kiro(kiro) => kiro.endpoints.register_request(),
            Subscription::Claude(_)
            | Subscription::Codex(_)
            | Subscription::Copilot(_)
            | Subscription::GeminiCli(_) => None,
        }
    }

    /// Reads the answer to [`Self::client_registration_request`].
    pub fn read_client_registration(
        &self,
        status: StatusCode,
        body: &[u8],
        now: i64,
    ) -> Result<OAuthClient, TokenError> {
        kiro::auth::read_registration(status, body, now)
    }

    /// The request that starts a device login (with the client registered
    /// for it, where the provider registers one).
    pub fn device_start_request(&self, client: Option<&OAuthClient>) -> Option<OutboundRequest> {
        match self.subscription()? {
            Subscription::Codex(codex) => Some(codex.endpoints.device_start_request()),
            Subscription::Copilot(copilot) => Some(copilot.endpoints.device_start_request()),
            Subscription::Kiro(kiro) => kiro.endpoints.device_start_request(client?),
            Subscription::Claude(_) | Subscription::GeminiCli(_) => None,
        }
    }

    /// Reads the answer to [`Self::device_start_request`].
    pub fn read_device_start(
        &self,
        status: StatusCode,
        body: &[u8],
        client: Option<OAuthClient>,
    ) -> Result<DeviceStart, TokenError> {
        match self.subscription() {
            Some(Subscription::Codex(codex)) => codex.endpoints.read_device_start(status, body),
            Some(Subscription::Copilot(_)) => copilot::Endpoints::read_device_start(status, body),
            Some(Subscription::Kiro(_)) => kiro::auth::read_device_start(status, body, client),
            Some(Subscription::Claude(_) | Subscription::GeminiCli(_)) | None => {
                Err(self.no_login())
            }
        }
    }

    /// One poll of a started device login.
    pub fn device_poll_request(&self, start: &DeviceStart) -> Option<OutboundRequest> {
        match self.subscription()? {
            Subscription::Codex(codex) => Some(codex.endpoints.device_poll_request(start)),
            Subscription::Copilot(copilot) => Some(copilot.endpoints.device_poll_request(start)),
            Subscription::Kiro(kiro) => kiro.endpoints.device_poll_request(start),
            Subscription::Claude(_) | Subscription::GeminiCli(_) => None,
        }
    }

    /// Reads the answer to [`Self::device_poll_request`].
    pub fn read_device_poll(
        &self,
        start: &DeviceStart,
        status: StatusCode,
        body: &[u8],
        now: i64,
    ) -> Result<DevicePoll<DeviceGrant>, DeviceError<TokenError>> {
        match self.subscription() {
            Some(Subscription::Codex(codex)) => codex.endpoints.read_device_poll(status, body),
            Some(Subscription::Copilot(_)) => copilot::Endpoints::read_device_poll(status, body),
            Some(Subscription::Kiro(_)) => kiro::auth::read_device_poll(start, status, body, now),
            Some(Subscription::Claude(_) | Subscription::GeminiCli(_)) | None => {
                Err(DeviceError::Failed(self.no_login()))
            }
        }
    }

    /// The first request of what a fresh login still needs before it
    /// serves (naming its account, finding its project), if anything.
    pub fn first_setup(&self, login: &Login) -> Option<Setup> {
        match self.subscription()? {
            Subscription::Copilot(copilot) => Some(Setup::new(
                copilot
                    .endpoints
                    .user_request(&login.access_token, copilot.editor_headers(false)),
                SetupStep::CopilotUser,
                std::time::Duration::ZERO,
            )),
            Subscription::GeminiCli(gemini) => gemini.first_setup(login),
            Subscription::Kiro(kiro) => Some(kiro::auth::first_setup(kiro, login)),
            Subscription::Claude(_) | Subscription::Codex(_) => None,
        }
    }

    /// Reads the answer to one setup request into the login; the next
    /// request, if another follows.
    pub fn read_setup(
        &self,
        login: Login,
        step: &SetupStep,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(Login, Option<Setup>), TokenError> {
        match self.subscription() {
            Some(Subscription::Copilot(_)) => Ok((copilot::read_user(status, body, login)?, None)),
            Some(Subscription::GeminiCli(gemini)) => gemini.read_setup(login, step, status, body),
            Some(Subscription::Kiro(_)) => Ok((kiro::auth::read_setup(status, body, login), None)),
            Some(Subscription::Claude(_) | Subscription::Codex(_)) | None => Ok((login, None)),
        }
    }

    /// Whether the account's credential should be renewed before use: the
    /// login expires within [`REFRESH_MARGIN_MS`] of `now`, or (Copilot) the
    /// API token is missing or due for renewal.
    pub fn needs_refresh(&self, account: &Account, now: i64) -> bool {
        let Some(session) = account.credential.session() else {
            return false;
        };
        let tokens = session.tokens();
        if let Kind::Copilot(_) = &self.kind {
            return tokens.api.as_ref().is_none_or(|api| api.refresh_at <= now);
        }
        tokens
            .login
            .expires_at
            .is_some_and(|expires| expires - REFRESH_MARGIN_MS <= now)
    }

    /// A request that renews the account's credential, if it can be renewed:
    /// a refresh-token grant, or (Copilot) a new API token.
    pub fn refresh_request(&self, account: &Account) -> Option<OutboundRequest> {
        let tokens = account.credential.session()?.tokens();
        let refresh = tokens.login.refresh_token.as_deref();
        match self.subscription()? {
            Subscription::Claude(claude) => Some(claude.endpoints.refresh_request(refresh?)),
            Subscription::Codex(codex) => Some(codex.endpoints.refresh_request(refresh?)),
            Subscription::GeminiCli(gemini) => Some(gemini.endpoints.refresh_request(refresh?)),
            Subscription::Kiro(kiro) => kiro.endpoints.refresh_request(&tokens.login, &account.id),
            Subscription::Copilot(copilot) => Some(
                copilot
                    .endpoints
                    .token_request(&tokens.login.access_token, copilot.editor_headers(false)),
            ),
        }
    }

    /// Reads the answer to [`Self::refresh_request`].
    pub fn read_refresh(
        &self,
        account: &Account,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Refreshed, TokenError> {
        if let Kind::Copilot(_) = &self.kind {
            let api = copilot::read_api_token(status, retry_after(headers), body, now)?;
            return Ok(Refreshed {
                login: None,
                api: Some(api),
            });
        }
        let previous = account.credential.session().map(|session| session.tokens());
        let login = self.read_tokens(
            status,
            headers,
            body,
            previous.as_ref().map(|tokens| &tokens.login),
            now,
        )?;
        Ok(Refreshed {
            login: Some(login),
            api: None,
        })
    }
}
