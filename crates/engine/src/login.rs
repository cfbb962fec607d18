//! Logins: starting and finishing a provider's flow, and saving the
//! credential as an account (a second login of the same upstream account
//! updates it instead of adding another). Flows in progress live in the
//! store, so a login started by one request (or replica) can finish in
//! another. The CLI and, later, the management API drive these.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subgate_auth::{DeviceError, DevicePoll};
use subgate_config::ProviderConfig;
use subgate_core::{ProviderKind, SecretString, expose};
use subgate_providers::{DeviceGrant, DeviceStart, Login, LoginMethod, Provider, TokenError};
use subgate_store::{NewAccount, OAuthFlowRow, StoreError};

use crate::clock::now_millis;
use crate::{Engine, fetch};

/// How long a started login may take.
const FLOW_LIFETIME: Duration = Duration::from_mins(15);
/// The longest a token endpoint may take to answer an exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A login waiting for the user.
#[derive(Debug, Clone)]
pub struct LoginStart {
    /// Names the flow when finishing it (the OAuth `state`).
    pub flow: String,
    /// Where the user goes.
    pub url: String,
    /// How long the flow can be finished.
    pub expires_in: Duration,
}

/// An account saved by a login or an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Saved {
    /// The provider entry.
    pub provider: String,
    /// The account's name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// The account's email, when known.
    pub email: Option<String>,
    /// Whether an existing account was updated rather than added.
    pub updated: bool,
}

/// Why a login did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No provider entry by that name or kind.
    #[error(
        "no provider `{0}` to log in to; subscriptions are `claude`, `codex`, `copilot`, `gemini-cli` and `kiro`"
    )]
    UnknownProvider(String),
    /// Several entries of that kind.
    #[error("several providers are of kind `{0}`; name one: {1}")]
    Ambiguous(String, String),
    /// The provider has no such login.
    #[error("provider `{provider}` has no {method} login")]
    Unsupported {
        /// The provider.
        provider: String,
        /// The method asked for.
        method: &'static str,
    },
    /// The flow is unknown or too old.
    #[error("this login expired or was already used; start again")]
    Expired,
    /// A device code expired before the user approved it.
    #[error("the code expired before the login was approved; start again")]
    CodeExpired,
    /// The user refused the login.
    #[error("the login was refused: {0}")]
    Denied(String),
    /// The pasted text is not `CODE#STATE`.
    #[error("that is not the code the login page shows (it looks like `CODE#STATE`)")]
    BadCode,
    /// The provider refused.
    #[error("the provider refused the login: {0}")]
    Refused(#[from] TokenError),
    /// The provider could not be reached.
    #[error("the login server could not be reached: {0}")]
    Unreachable(String),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something local failed (randomness, a client).
    #[error("{0}")]
    Local(String),
}

/// What a stored flow remembers.
#[derive(Serialize, Deserialize)]
struct FlowData {
    provider: String,
    verifier: String,
    redirect_uri: String,
}

/// A device flow taken from the store by a `complete` call: put back
/// unless [`FlowLease::settle`] says it is over, so that a call cut short
/// (a dropped future) does not lose the login.
struct FlowLease {
    engine: Engine,
    row: Option<OAuthFlowRow>,
}

impl FlowLease {
    fn settle(mut self) {
        self.row = None;
    }
}

impl Drop for FlowLease {
    fn drop(&mut self) {
        let Some(row) = self.row.take() else {
            return;
        };
        let store = self.engine.inner.store.clone();
        self.engine.inner.tasks.spawn(async move {
            if let Err(error) = store.put_oauth_flow(&row).await {
                tracing::warn!(%error, "A device login could not be kept for another try; start it again.");
            }
        });
    }
}

/// A device login kept for a later call to finish (the management API).
#[derive(Serialize, Deserialize)]
struct DeviceFlowData {
    provider: String,
    start: DeviceStart,
}

impl Engine {
    /// The provider entry a login is for: by name, else the one entry of
    /// that kind.
    pub fn login_entry(&self, provider: &str) -> Result<&ProviderConfig, LoginError> {
        let entries = &self.inner.entries;
        if let Some(entry) = entries.iter().find(|entry| entry.name == provider) {
            return Ok(entry);
        }
        let kind = ProviderKind::from_name(provider)
            .ok_or_else(|| LoginError::UnknownProvider(provider.to_owned()))?;
        let of_kind: Vec<&ProviderConfig> =
            entries.iter().filter(|entry| entry.kind == kind).collect();
        match of_kind.as_slice() {
            [] => Err(LoginError::UnknownProvider(provider.to_owned())),
            [entry] => Ok(entry),
            many => Err(LoginError::Ambiguous(
                provider.to_owned(),
                many.iter()
                    .map(|entry| entry.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// A provider for logging in to `entry`: no accounts, just the flows.
    pub fn login_provider(&self, entry: &ProviderConfig) -> Result<Provider, LoginError> {
        Provider::with_accounts(entry, Vec::new())
            .map_err(|error| LoginError::Local(error.to_string()))
    }

    /// Starts a browser login (`redirect_uri` is the loopback callback) or,
    /// with `redirect_uri` `None`, a paste-the-code login.
    pub async fn begin_login(
        &self,
        entry: &ProviderConfig,
        redirect_uri: Option<&str>,
    ) -> Result<LoginStart, LoginError> {
        let provider = self.login_provider(entry)?;
        let method = if redirect_uri.is_some() {
            LoginMethod::Browser
        } else {
            LoginMethod::Paste
        };
        if !provider.login_methods().contains(&method) {
            return Err(LoginError::Unsupported {
                provider: entry.name.clone(),
                method: method.as_str(),
            });
        }
        let pkce =
            subgate_auth::Pkce::new().map_err(|error| LoginError::Local(error.to_string()))?;
        let state =
            subgate_auth::random_token(32).map_err(|error| LoginError::Local(error.to_string()))?;
        let (url, redirect_uri) = provider
            .authorize_url(&pkce.challenge, &state, redirect_uri)
            .ok_or_else(|| LoginError::Unsupported {
                provider: entry.name.clone(),
                method: method.as_str(),
            })?;
        let data = FlowData {
            provider: entry.name.clone(),
            verifier: pkce.verifier,
            redirect_uri,
        };
        let now = now_millis();
        self.inner
            .store
            .put_oauth_flow(&OAuthFlowRow {
                state: state.clone(),
                provider: entry.name.clone(),
                data: SecretString::from(
                    serde_json::to_string(&data)
                        .map_err(|error| LoginError::Local(error.to_string()))?,
                ),
                created_at: now,
                expires_at: now + i64::try_from(FLOW_LIFETIME.as_millis()).unwrap_or(i64::MAX),
            })
            .await?;
        Ok(LoginStart {
            flow: state,
            url: url.to_string(),
            expires_in: FLOW_LIFETIME,
        })
    }

    /// Takes the flow `flow` from the store (it is used up) with what it
    /// kept; one unknown, expired or unreadable is [`LoginError::Expired`].
    async fn take_flow<T: serde::de::DeserializeOwned>(
        &self,
        flow: &str,
    ) -> Result<(OAuthFlowRow, T), LoginError> {
        let row = self
            .inner
            .store
            .take_oauth_flow(flow, now_millis())
            .await?
            .ok_or(LoginError::Expired)?;
        let data = serde_json::from_str(expose(&row.data)).map_err(|_| LoginError::Expired)?;
        Ok((row, data))
    }

    /// Finishes a browser or paste login with the code the provider gave
    /// back, and saves the account (named `name`, else after its email).
    pub async fn finish_login(
        &self,
        flow: &str,
        code: &str,
        name: Option<&str>,
    ) -> Result<Saved, LoginError> {
        let (_, data): (_, FlowData) = self.take_flow(flow).await?;
        let entry = self.login_entry(&data.provider)?;
        let provider = self.login_provider(entry)?;
        let request = provider
            .exchange_request(code, flow, &data.verifier, &data.redirect_uri)
            .ok_or_else(|| LoginError::Unsupported {
                provider: entry.name.clone(),
                method: "browser",
            })?;
        let login = exchange(&provider, request).await?;
        let login = identified(&provider, login).await?;
        Ok(self.save_login(entry, login, name).await?)
    }

    /// Finishes a paste login with what the user pasted: `CODE#STATE`
    /// (Claude's page) or the bare code (Google's); a state that is not
    /// the flow's is refused.
    pub async fn finish_pasted_login(
        &self,
        flow: &str,
        pasted: &str,
        name: Option<&str>,
    ) -> Result<Saved, LoginError> {
        let pasted = pasted.trim();
        let (code, state) = pasted.split_once('#').unwrap_or((pasted, flow));
        if code.is_empty() || state != flow {
            return Err(LoginError::BadCode);
        }
        self.finish_login(flow, code, name).await
    }

    /// Starts a device login: the code the user enters, and where.
    pub async fn begin_device_login(
        &self,
        entry: &ProviderConfig,
    ) -> Result<DeviceStart, LoginError> {
        let provider = self.login_provider(entry)?;
        let client = match provider.client_registration_request() {
            Some(request) => {
                let (status, _, body) = side_request(&provider, request).await?;
                Some(provider.read_client_registration(status, &body, now_millis())?)
            }
            None => None,
        };
        let request = provider
            .device_start_request(client.as_ref())
            .ok_or_else(|| LoginError::Unsupported {
                provider: entry.name.clone(),
                method: LoginMethod::Device.as_str(),
            })?;
        let (status, _, body) = side_request(&provider, request).await?;
        Ok(provider.read_device_start(status, &body, client)?)
    }

    /// Starts a device login that a later call finishes
    /// ([`Self::finish_device_flow`]): the flow's name, and the code the
    /// user enters and where.
    pub async fn begin_device_flow(
        &self,
        entry: &ProviderConfig,
    ) -> Result<(String, DeviceStart), LoginError> {
        let start = self.begin_device_login(entry).await?;
        let flow =
            subgate_auth::random_token(32).map_err(|error| LoginError::Local(error.to_string()))?;
        let data = DeviceFlowData {
            provider: entry.name.clone(),
            start: start.clone(),
        };
        let now = now_millis();
        let lifetime = i64::try_from(start.expires_in.as_millis()).unwrap_or(i64::MAX);
        self.inner
            .store
            .put_oauth_flow(&OAuthFlowRow {
                state: flow.clone(),
                provider: entry.name.clone(),
                data: SecretString::from(
                    serde_json::to_string(&data)
                        .map_err(|error| LoginError::Local(error.to_string()))?,
                ),
                created_at: now,
                expires_at: now.saturating_add(lifetime),
            })
            .await?;
        Ok((flow, start))
    }

    /// Waits for the user to approve a device login begun by
    /// [`Self::begin_device_flow`] (until its code expires), then saves
    /// the account. The flow is used up once the login is saved, denied or
    /// expired; a call that ends otherwise (the client went away, the
    /// upstream failed) leaves it to be completed by another call.
    pub async fn finish_device_flow(
        &self,
        flow: &str,
        name: Option<&str>,
    ) -> Result<Saved, LoginError> {
        let (row, data): (_, DeviceFlowData) = self.take_flow(flow).await?;
        let entry = self.login_entry(&data.provider)?.clone();
        let lease = FlowLease {
            engine: self.clone(),
            row: Some(row),
        };
        let result = self.finish_device_login(&entry, &data.start, name).await;
        if matches!(
            result,
            Ok(_) | Err(LoginError::CodeExpired | LoginError::Denied(_))
        ) {
            lease.settle();
        }
        result
    }

    /// Waits for the user to approve a device login (polling as the
    /// provider asks, until the code expires), then saves the account.
    /// A poll that fails in passing (the server unreachable, or busy) is
    /// retried at the next interval.
    pub async fn finish_device_login(
        &self,
        entry: &ProviderConfig,
        start: &DeviceStart,
        name: Option<&str>,
    ) -> Result<Saved, LoginError> {
        let provider = self.login_provider(entry)?;
        let deadline = tokio::time::Instant::now() + start.expires_in;
        let grant = subgate_auth::poll_device(start.interval, deadline, || async {
            let Some(request) = provider.device_poll_request(start) else {
                return Err(DeviceError::Failed(LoginError::Unsupported {
                    provider: entry.name.clone(),
                    method: LoginMethod::Device.as_str(),
                }));
            };
            let Ok((status, _, body)) = side_request(&provider, request).await else {
                return Ok(DevicePoll::Pending);
            };
            match provider.read_device_poll(start, status, &body, now_millis()) {
                Err(DeviceError::Failed(error)) if !error.dead => Ok(DevicePoll::Pending),
                Err(DeviceError::Failed(error)) => Err(DeviceError::Failed(error.into())),
                Err(DeviceError::Expired) => Err(DeviceError::Expired),
                Err(DeviceError::Denied(why)) => Err(DeviceError::Denied(why)),
                Ok(poll) => Ok(poll),
            }
        })
        .await
        .map_err(|error| match error {
            DeviceError::Expired => LoginError::CodeExpired,
            DeviceError::Denied(why) => LoginError::Denied(why),
            DeviceError::Failed(error) => error,
        })?;
        let login = match grant {
            DeviceGrant::Login(login) => *login,
            DeviceGrant::Code {
                code,
                verifier,
                redirect_uri,
            } => {
                let request = provider
                    .exchange_request(&code, "", &verifier, &redirect_uri)
                    .ok_or_else(|| LoginError::Unsupported {
                        provider: entry.name.clone(),
                        method: LoginMethod::Device.as_str(),
                    })?;
                exchange(&provider, request).await?
            }
        };
        let login = identified(&provider, login).await?;
        Ok(self.save_login(entry, login, name).await?)
    }

    /// Finishes an imported login as a fresh one is finished (naming its
    /// account, finding its project), then saves it.
    pub async fn save_import(
        &self,
        entry: &ProviderConfig,
        login: Login,
    ) -> Result<Saved, LoginError> {
        let provider = self.login_provider(entry)?;
        let login = identified(&provider, login).await?;
        Ok(self.save_login(entry, login, None).await?)
    }

    /// Saves a login as an account of `entry`: updates the account the
    /// upstream says it is (or the one named `name`), else adds one.
    pub async fn save_login(
        &self,
        entry: &ProviderConfig,
        login: Login,
        name: Option<&str>,
    ) -> Result<Saved, StoreError> {
        let store = &self.inner.store;
        let existing = store.accounts().await?;
        // The same upstream account: the id it reports, else (imports carry
        // no id) the same linked file or the same refresh token.
        let same = existing.iter().find(|row| {
            row.provider == entry.name
                && serde_json::from_str::<Login>(expose(&row.credentials)).is_ok_and(|stored| {
                    let same_id =
                        login.account_id.is_some() && stored.account_id == login.account_id;
                    let same_file = login.linked.is_some() && stored.linked == login.linked;
                    let same_refresh = login.refresh_token.is_some()
                        && stored.refresh_token == login.refresh_token;
                    same_id || same_file || same_refresh
                })
        });
        let name = match (name, same) {
            (Some(name), _) => name.to_owned(),
            (None, Some(row)) => row.name.clone(),
            (None, None) => login
                .email
                .clone()
                .or_else(|| login.account_id.clone())
                .unwrap_or_else(|| {
                    let taken = existing
                        .iter()
                        .filter(|row| row.provider == entry.name)
                        .count();
                    format!("{}-{}", entry.name, taken + 1)
                }),
        };
        let updated = same.is_some()
            || existing
                .iter()
                .any(|row| row.provider == entry.name && row.name == name);
        let id = same.map_or_else(|| uuid::Uuid::now_v7().to_string(), |row| row.id.clone());
        let credentials = SecretString::from(serde_json::to_string(&login).unwrap_or_default());
        let row = match same {
            Some(row) if row.name != name => {
                store
                    .update_credentials(&row.id, &credentials, now_millis())
                    .await?;
                row.clone()
            }
            _ => {
                store
                    .upsert_account(&NewAccount {
                        id: &id,
                        provider: &entry.name,
                        name: &name,
                        auth_kind: "oauth",
                        credentials: &credentials,
                        now: now_millis(),
                    })
                    .await?
            }
        };
        Ok(Saved {
            provider: row.provider,
            name: row.name,
            id: row.id,
            email: login.email,
            updated,
        })
    }
}

/// Sends one request of a login to the provider's auth server.
async fn side_request(
    provider: &Provider,
    request: subgate_http::OutboundRequest,
) -> Result<(http::StatusCode, http::HeaderMap, bytes::Bytes), LoginError> {
    let host = request.url.host_str().unwrap_or_default().to_owned();
    fetch::answer(provider, request, (fetch::MAX_SIDE_BYTES, EXCHANGE_TIMEOUT))
        .await
        .map_err(|error| LoginError::Unreachable(format!("{host}: {error}")))
}

/// Sends a code exchange and reads the login out of the answer.
async fn exchange(
    provider: &Provider,
    request: subgate_http::OutboundRequest,
) -> Result<Login, LoginError> {
    let (status, headers, body) = side_request(provider, request).await?;
    Ok(provider.read_login(status, &headers, &body, now_millis())?)
}

/// The most requests a login's setup may take (onboarding polls
/// included).
const MAX_SETUP_STEPS: usize = 30;

/// Does what a fresh login still needs before it serves: naming its
/// account where the tokens do not (GitHub), finding its project (Code
/// Assist, onboarding a new account).
async fn identified(provider: &Provider, mut login: Login) -> Result<Login, LoginError> {
    let mut next = provider.first_setup(&login);
    for _ in 0..MAX_SETUP_STEPS {
        let Some(setup) = next else {
            return Ok(login);
        };
        tokio::time::sleep(setup.wait).await;
        let (status, _, body) = side_request(provider, setup.request).await?;
        (login, next) = provider.read_setup(login, &setup.step, status, &body)?;
    }
    Err(LoginError::Local(format!(
        "setting up the login took more than {MAX_SETUP_STEPS} requests; try again later"
    )))
}
