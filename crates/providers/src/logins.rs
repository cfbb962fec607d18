//! Logins and refreshes, dispatched to each subscription kind: how a login
//! starts and finishes, and how its credential stays fresh. The engine
//! sends the requests and stores what comes back before using it.

use http::{HeaderMap, StatusCode};
use subgate_config::Url;
use subgate_http::OutboundRequest;

use crate::oauth::{CallbackSpec, LoginMethod, TokenError};
use crate::session::Login;
use crate::verdict::retry_after;
use crate::{Account, Kind, Provider, Refreshed, claude};

/// How long before expiry a credential is refreshed.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

impl Provider {
    /// The ways this provider's accounts can log in; empty for API keys.
    pub fn login_methods(&self) -> &'static [LoginMethod] {
        match &self.kind {
            Kind::Claude(_) => &[LoginMethod::Browser, LoginMethod::Paste],
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => &[],
        }
    }

    /// Where a browser login's loopback callback listens.
    pub fn callback(&self) -> Option<CallbackSpec> {
        match &self.kind {
            Kind::Claude(_) => Some(claude::CALLBACK),
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => None,
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
        match &self.kind {
            Kind::Claude(claude) => Some(claude.endpoints.authorize_url(
                challenge,
                state,
                redirect_uri,
            )),
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => None,
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
        match &self.kind {
            Kind::Claude(claude) => Some(claude.endpoints.exchange_request(
                code,
                state,
                verifier,
                redirect_uri,
            )),
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => None,
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
        match &self.kind {
            Kind::Claude(_) => {
                claude::read_tokens(status, retry_after(headers), body, previous, now)
            }
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => Err(TokenError {
                dead: true,
                retry_after: None,
                message: format!("`{}` has no login", self.name),
            }),
        }
    }

    /// Whether the account's credential should be refreshed before use:
    /// it expires within [`REFRESH_MARGIN_MS`] of `now`.
    pub fn needs_refresh(&self, account: &Account, now: i64) -> bool {
        let Some(session) = account.credential.session() else {
            return false;
        };
        let tokens = session.tokens();
        tokens
            .login
            .expires_at
            .is_some_and(|expires| expires - REFRESH_MARGIN_MS <= now)
    }

    /// A request that renews the account's credential, if it can be renewed.
    pub fn refresh_request(&self, account: &Account) -> Option<OutboundRequest> {
        let tokens = account.credential.session()?.tokens();
        match &self.kind {
            Kind::Claude(claude) => {
                let refresh = tokens.login.refresh_token.as_deref()?;
                Some(claude.endpoints.refresh_request(refresh))
            }
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Anthropic(_)
            | Kind::Gemini(_)
            | Kind::Kimi(_) => None,
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
