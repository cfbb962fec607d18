//! Logged-in credentials: what a login keeps ([`Login`], stored as JSON),
//! the short-lived API token some upstreams derive from it ([`ApiToken`],
//! Copilot's), and the live [`Session`] an account holds, swapped whole
//! when a refresh lands.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use subgate_config::Url;

/// A login's credential as stored (the account row's `credentials`).
///
/// One shape for every subscription; each kind uses the fields it has.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// What requests (or, for Copilot, the token exchange) authenticate
    /// with: Claude's `sk-ant-oat01-…`, Codex's JWT, GitHub's `ghu_…`.
    pub access_token: String,
    /// What gets a new access token; `None` for GitHub, whose token lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix ms); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Codex's ID token: the ChatGPT account id and plan are its claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The upstream's own id for the account (Claude's account uuid, the
    /// ChatGPT account id, the GitHub login): a second login of the same
    /// account updates it instead of adding another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The account's email, when the upstream says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The subscription plan (`max`, `plus`, …), when the upstream says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The Code Assist project requests name (Gemini CLI), found after
    /// login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Kiro: the CodeWhisperer profile requests name; its region is the
    /// API's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<String>,
    /// Kiro: the region the login's auth server is in (refreshes go there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The OAuth client the login was made with, when it is the user's own
    /// registration (AWS SSO OIDC's, for Kiro's `IdC` logins): refreshes
    /// must present it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OAuthClient>,
    /// For an import in linked mode: the file refreshed tokens are written
    /// back to, so the CLI that owns the login keeps working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<Linked>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("expires_at", &self.expires_at)
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("plan", &self.plan)
            .field("project", &self.project)
            .field("profile_arn", &self.profile_arn)
            .field("region", &self.region)
            .field("linked", &self.linked)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The secret values it holds.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        [
            Some(self.access_token.as_str()),
            self.refresh_token.as_deref(),
            self.id_token.as_deref(),
            self.client.as_ref().map(|client| client.secret.as_str()),
        ]
        .into_iter()
        .flatten()
    }
}

/// A registered OAuth client: its id and secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// The client id.
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// When the registration expires (Unix ms), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The file a linked import came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    /// The file.
    pub path: PathBuf,
    /// Whose format it is: `claude-code`, `codex`.
    pub format: String,
}

/// A short-lived token derived from the login (Copilot's API token), kept
/// in memory only: it is cheap to derive again.
#[derive(Clone)]
pub struct ApiToken {
    /// The token requests carry.
    pub token: String,
    /// When it stops working (Unix ms).
    pub expires_at: i64,
    /// When to derive a new one (Unix ms).
    pub refresh_at: i64,
    /// The API base URL it names, when it names one.
    pub base_url: Option<Url>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

/// One moment of a session: replaced whole, never edited in place.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The stored login.
    pub login: Login,
    /// The derived API token, for upstreams that derive one.
    pub api: Option<ApiToken>,
    /// Counts replacements, so a request that failed with an old token
    /// can tell whether a refresh already happened since.
    pub generation: u64,
}

impl Tokens {
    /// What requests authenticate with: the derived API token where the
    /// upstream derives one, else the login's access token.
    pub fn bearer(&self) -> &str {
        self.api
            .as_ref()
            .map_or(self.login.access_token.as_str(), |api| api.token.as_str())
    }
}

/// A login in use: the current tokens, and the lock that lets one refresh
/// run at a time per account.
#[derive(Debug)]
pub struct Session {
    current: RwLock<Arc<Tokens>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Session {
    /// A session starting from a stored login.
    pub fn new(login: Login) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(Tokens {
                login,
                api: None,
                generation: 0,
            })),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// The tokens now.
    pub fn tokens(&self) -> Arc<Tokens> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs refreshed tokens (after they were stored); `login` `None`
    /// keeps the login and replaces only the API token.
    pub fn install(&self, login: Option<Login>, api: Option<ApiToken>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let next = Tokens {
            login: login.unwrap_or_else(|| current.login.clone()),
            api: api.or_else(|| current.api.clone()),
            generation: current.generation + 1,
        };
        *current = Arc::new(next);
    }

    /// Holds the account's refresh lock: one refresh in flight per account.
    pub async fn refresh_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refresh.lock().await
    }
}
