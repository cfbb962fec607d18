//! subgate's upstreams.
//!
//! A [`Provider`] is one `[[providers]]` entry: which service, how to reach
//! it, its accounts, and every quirk of its wire: URLs, headers, how a
//! failure reads. Each kind lives in its own module; nothing outside that
//! module knows its quirks. Providers describe requests and read responses;
//! they never touch the store or the server.

mod account;
mod anthropic;
mod claude;
mod cli_files;
mod codex;
mod common;
mod copilot;
mod gemini;
mod gemini_cli;
mod kimi;
mod kiro;
mod logins;
mod oauth;
mod openai_compatible;
mod session;
mod setup;
mod verdict;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use subgate_config::{OpenAiApi, PoolConfig, ProviderConfig};
use subgate_core::{Dialect, ProviderKind, Wire};

use subgate_http::{ChunkTransform, OutboundRequest, Transport, TransportError, TransportOptions};
use subgate_protocol::canonical::{Dropped, Invalid, Request, Response};
use subgate_protocol::codec::{StreamDecoder, Target};
use subgate_protocol::dispatch;
use subgate_protocol::openai_chat::ChatUpstream;

pub use account::{Account, Credential};
pub use claude::ToolNames;
pub use cli_files::{read_cli_logins, write_cli_login};
pub use logins::REFRESH_MARGIN_MS;
pub use oauth::{CallbackSpec, DeviceGrant, DeviceStart, LoginMethod, TokenError};
pub use session::{ApiToken, Linked, Login, OAuthClient, Session, Tokens};
pub use setup::{Setup, SetupStep};
pub use verdict::{Failure, Quota, QuotaWindow, Rest, Scope};

/// One configured upstream and its accounts.
#[derive(Debug)]
pub struct Provider {
    name: String,
    kind: Kind,
    /// The formats the upstream speaks, the primary first.
    dialects: Vec<Wire>,
    accounts: Vec<Account>,
    pool: PoolConfig,
    models: Option<Vec<String>>,
    builtin_models: &'static [&'static str],
    stream_usage: bool,
    always_stream: bool,
    max_event_bytes: usize,
    first_token_timeout: Option<Duration>,
    transport: Transport,
}

/// The per-kind part of a provider. One arm per [`ProviderKind`].
#[derive(Debug)]
enum Kind {
    OpenAiCompatible(openai_compatible::OpenAiCompatible),
    OpenAi(openai_compatible::OpenAiCompatible),
    Anthropic(anthropic::Anthropic),
    Gemini(gemini::Gemini),
    Kimi(kimi::Kimi),
    Claude(claude::Claude),
    Codex(codex::Codex),
    Copilot(copilot::Copilot),
    GeminiCli(gemini_cli::GeminiCli),
    Kiro(kiro::Kiro),
}

/// A request ready to send, and what the answer needs undone.
#[derive(Debug)]
pub struct Outbound {
    /// The request.
    pub request: OutboundRequest,
    /// How a successful answer must be edited as it arrives, with
    /// [`Provider::reply_transform`].
    pub reply: Option<ReplyEdit>,
}

/// An edit a successful answer needs before the gateway reads it.
#[derive(Debug, Clone)]
pub enum ReplyEdit {
    /// Tools renamed on the way up (Claude subscriptions) get their
    /// client's names back.
    ToolNames(Arc<ToolNames>),
    /// Code Assist's `{"response":…}` wrapper comes off (Gemini CLI).
    Unwrap,
}

impl From<OutboundRequest> for Outbound {
    fn from(request: OutboundRequest) -> Self {
        Self {
            request,
            reply: None,
        }
    }
}

/// What a successful refresh produced.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// A new login to store before use (`None`: the login is unchanged,
    /// only a derived token is new).
    pub login: Option<Login>,
    /// A new derived API token (Copilot's).
    pub api: Option<ApiToken>,
}

/// Why a provider entry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// One generation request, as the engine hands it to a provider.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The format of `body`; what [`Provider::dialect_for`] chose.
    pub wire: Wire,
    /// The model the upstream knows.
    pub model: &'a str,
    /// Whether to ask for a stream.
    pub stream: bool,
    /// The body, in `dialect`.
    pub body: Bytes,
    /// The client's headers, on a pass-through (a provider may pass some
    /// on, such as Anthropic's betas).
    pub client_headers: Option<&'a HeaderMap>,
}

impl Provider {
    /// Builds a provider from its config entry.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, BuildError> {
        Self::with_accounts(config, Account::from_config(&config.name, &config.accounts))
    }

    /// Builds a provider from its config entry with the given accounts
    /// (a subscription's, read from the store).
    pub fn with_accounts(
        config: &ProviderConfig,
        accounts: Vec<Account>,
    ) -> Result<Self, BuildError> {
        let transport = Transport::new(TransportOptions {
            connect_timeout: config.limits.connect_timeout,
            first_byte_timeout: config.limits.first_byte_timeout,
            idle_timeout: config.limits.idle_timeout,
        })?;
        let kind = match config.kind {
            ProviderKind::OpenAiCompatible => {
                Kind::OpenAiCompatible(openai_compatible::OpenAiCompatible::new(config))
            }
            ProviderKind::OpenAi => Kind::OpenAi(openai_compatible::OpenAiCompatible::new(config)),
            ProviderKind::Anthropic => Kind::Anthropic(anthropic::Anthropic::new(config)),
            ProviderKind::Gemini => Kind::Gemini(gemini::Gemini::new(config)),
            ProviderKind::Kimi => Kind::Kimi(kimi::Kimi::new(config)),
            ProviderKind::Claude => Kind::Claude(claude::Claude::new(config)),
            ProviderKind::Codex => Kind::Codex(codex::Codex::new(config)),
            ProviderKind::Copilot => Kind::Copilot(copilot::Copilot::new(config)),
            ProviderKind::GeminiCli => Kind::GeminiCli(gemini_cli::GeminiCli::new(config)),
            ProviderKind::Kiro => Kind::Kiro(kiro::Kiro::new(config)),
        };
        let dialects = match config.kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => config
                .apis
                .iter()
                .map(|api| match api {
                    OpenAiApi::Chat => Wire::Dialect(Dialect::OpenAiChat),
                    OpenAiApi::Responses => Wire::Dialect(Dialect::OpenAiResponses),
                })
                .collect(),
            ProviderKind::Anthropic | ProviderKind::Claude => vec![Dialect::Anthropic.into()],
            ProviderKind::Gemini | ProviderKind::GeminiCli => vec![Dialect::Gemini.into()],
            ProviderKind::Kimi => vec![Dialect::OpenAiChat.into()],
            ProviderKind::Codex => vec![Dialect::OpenAiResponses.into()],
            // Per model (see `dialect_for`); these are the fallbacks.
            ProviderKind::Copilot => vec![
                Dialect::OpenAiChat.into(),
                Dialect::OpenAiResponses.into(),
                Dialect::Anthropic.into(),
            ],
            ProviderKind::Kiro => vec![Wire::Kiro],
        };
        let builtin_models = match config.kind {
            ProviderKind::OpenAiCompatible => config
                .preset
                .map_or(&[][..], openai_compatible::preset_models),
            ProviderKind::OpenAi => openai_compatible::OPENAI_MODELS,
            ProviderKind::Anthropic | ProviderKind::Claude => anthropic::MODELS,
            ProviderKind::Gemini => gemini::MODELS,
            ProviderKind::Kimi => kimi::MODELS,
            ProviderKind::Codex => codex::MODELS,
            ProviderKind::Copilot => copilot::MODELS,
            ProviderKind::GeminiCli => gemini_cli::MODELS,
            ProviderKind::Kiro => kiro::MODELS,
        };
        Ok(Self {
            name: config.name.clone(),
            kind,
            dialects,
            accounts,
            pool: config.pool,
            models: config.models.clone(),
            builtin_models,
            stream_usage: config.stream_usage,
            // The Codex backend and Kiro only stream.
            always_stream: config.always_stream
                || matches!(config.kind, ProviderKind::Codex | ProviderKind::Kiro),
            max_event_bytes: config.limits.max_event_bytes,
            first_token_timeout: config.limits.first_token_timeout,
            transport,
        })
    }

    /// The entry's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of service.
    pub fn kind(&self) -> ProviderKind {
        match self.kind {
            Kind::OpenAiCompatible(_) => ProviderKind::OpenAiCompatible,
            Kind::OpenAi(_) => ProviderKind::OpenAi,
            Kind::Anthropic(_) => ProviderKind::Anthropic,
            Kind::Gemini(_) => ProviderKind::Gemini,
            Kind::Kimi(_) => ProviderKind::Kimi,
            Kind::Claude(_) => ProviderKind::Claude,
            Kind::Codex(_) => ProviderKind::Codex,
            Kind::Copilot(_) => ProviderKind::Copilot,
            Kind::GeminiCli(_) => ProviderKind::GeminiCli,
            Kind::Kiro(_) => ProviderKind::Kiro,
        }
    }

    /// The formats the upstream speaks natively; the first is used to
    /// translate for clients that speak none of them.
    pub fn dialects(&self) -> &[Wire] {
        &self.dialects
    }

    /// The format to talk to the upstream in for a client speaking
    /// `client` about `model`: the client's dialect when the upstream
    /// speaks it for that model (a pass-through), else the model's first.
    pub fn dialect_for(&self, client: Dialect, model: &str) -> Wire {
        if let Kind::Copilot(upstream) = &self.kind {
            let dialects = upstream.dialects(model);
            return if dialects.contains(&client) {
                client.into()
            } else {
                dialects
                    .first()
                    .map_or(self.dialects[0], |&first| first.into())
            };
        }
        if self.dialects.contains(&Wire::Dialect(client)) {
            client.into()
        } else {
            self.dialects[0]
        }
    }

    /// The accounts requests rotate over; never empty.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// How requests spread over the accounts.
    pub fn pool(&self) -> &PoolConfig {
        &self.pool
    }

    /// The models the config lists, if it lists them.
    pub fn configured_models(&self) -> Option<&[String]> {
        self.models.as_deref()
    }

    /// Whether a model name belongs to the family of models this kind of
    /// upstream serves (`claude-*` for Anthropic, …), for names newer than
    /// any catalog. OpenAI-compatible services claim no family.
    pub fn claims_family(&self, model: &str) -> bool {
        match self.kind {
            Kind::OpenAi(_) => openai_compatible::is_openai_family(model),
            // Kiro serves other families too; Claude is the one it is for.
            Kind::Anthropic(_) | Kind::Claude(_) | Kind::Kiro(_) => {
                model.starts_with(anthropic::FAMILY)
            }
            Kind::Gemini(_) | Kind::GeminiCli(_) => model.starts_with(gemini::FAMILY),
            Kind::Kimi(_) => model.starts_with(kimi::FAMILY),
            Kind::Codex(_) => model.starts_with(codex::FAMILY),
            // Copilot serves several families; its catalog decides.
            Kind::OpenAiCompatible(_) | Kind::Copilot(_) => false,
        }
    }

    /// The models this kind of upstream is known to serve, for when its
    /// catalog cannot be fetched (offline, or before the first fetch).
    pub fn builtin_models(&self) -> &'static [&'static str] {
        self.builtin_models
    }

    /// Whether to ask for usage on streams whose client did not.
    pub fn stream_usage(&self) -> bool {
        self.stream_usage
    }

    /// Whether to ask for a stream even when the client did not.
    pub fn always_stream(&self) -> bool {
        self.always_stream
    }

    /// The largest stream event or whole response body accepted.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// How long a successful answer may take to start before the request
    /// is sent again (`None`: no limit besides the idle timeout).
    pub fn first_token_timeout(&self) -> Option<Duration> {
        self.first_token_timeout
    }

    /// The client to send this provider's requests with.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// What differs when writing Chat Completions for this upstream.
    pub fn chat_upstream(&self) -> ChatUpstream {
        ChatUpstream {
            max_completion_tokens: matches!(self.kind, Kind::OpenAi(..)),
        }
    }

    /// A generation request.
    pub fn generate_request(&self, account: &Account, call: Call<'_>) -> Outbound {
        let request = match (&self.kind, call.wire) {
            (Kind::Claude(upstream), _) => {
                let (request, tool_names) =
                    upstream.messages_request(account, call.body, call.client_headers);
                return Outbound {
                    request,
                    reply: tool_names.map(ReplyEdit::ToolNames),
                };
            }
            (Kind::GeminiCli(upstream), _) => {
                return Outbound {
                    request: upstream.generate_request(
                        account,
                        call.model,
                        call.stream,
                        &call.body,
                    ),
                    reply: Some(ReplyEdit::Unwrap),
                };
            }
            (Kind::Anthropic(upstream), _) => {
                upstream.messages_request(account, call.body, call.client_headers)
            }
            (Kind::Gemini(upstream), _) => {
                upstream.generate_request(account, call.model, call.stream, call.body)
            }
            (
                Kind::OpenAiCompatible(upstream) | Kind::OpenAi(upstream),
                Wire::Dialect(Dialect::OpenAiResponses),
            ) => upstream.post(account, "responses", call.body),
            (Kind::OpenAiCompatible(upstream) | Kind::OpenAi(upstream), _) => {
                upstream.post(account, "chat/completions", call.body)
            }
            (Kind::Kimi(upstream), _) => upstream.chat_request(account, call.body),
            (Kind::Codex(upstream), _) => {
                upstream.responses_request(account, call.body, call.client_headers)
            }
            (Kind::Copilot(upstream), wire) => upstream.generate_request(account, wire, call.body),
            (Kind::Kiro(upstream), _) => upstream.generate_request(account, call.body),
        };
        request.into()
    }

    /// The edit of an answer (streamed or whole) as it arrives.
    pub fn reply_transform(&self, edit: ReplyEdit, stream: bool) -> Box<dyn ChunkTransform> {
        match edit {
            ReplyEdit::ToolNames(names) => Box::new(claude::Restore::new(names, stream)),
            ReplyEdit::Unwrap => Box::new(gemini_cli::Unwrap::new(stream)),
        }
    }

    /// Writes a translated request in the upstream's format `wire` (what
    /// [`Self::dialect_for`] chose) for `account`.
    pub fn encode_request(
        &self,
        account: &Account,
        wire: Wire,
        request: &Request,
        model: &str,
        dropped: &mut Vec<Dropped>,
    ) -> Result<Bytes, Invalid> {
        match (&self.kind, wire) {
            (Kind::Kiro(upstream), _) => upstream.encode(account, request, model, dropped),
            (_, Wire::Dialect(dialect)) => Ok(Bytes::from(dispatch::encode_request(
                dialect,
                request,
                Target {
                    provider: &self.name,
                    model,
                },
                self.chat_upstream(),
                dropped,
            ))),
            (_, Wire::Kiro) => Err(not_spoken(&self.name)),
        }
    }

    /// A decoder for the upstream's stream in `wire`.
    pub fn stream_decoder(&self, wire: Wire, model: &str) -> Box<dyn StreamDecoder> {
        match (&self.kind, wire) {
            (Kind::Kiro(upstream), _) => upstream.decoder(&self.name, model, self.max_event_bytes),
            (_, Wire::Dialect(dialect)) => {
                dispatch::stream_decoder(dialect, &self.name, self.max_event_bytes)
            }
            (_, Wire::Kiro) => Box::new(NotSpoken(self.name.clone())),
        }
    }

    /// Reads the upstream's whole (non-streamed) answer in `wire`.
    pub fn decode_response(
        &self,
        wire: Wire,
        model: &str,
        body: &[u8],
        dropped: &mut Vec<Dropped>,
    ) -> Result<Response, Invalid> {
        match (&self.kind, wire) {
            (Kind::Kiro(upstream), _) => {
                upstream.decode_whole(&self.name, model, self.max_event_bytes, body)
            }
            (_, Wire::Dialect(dialect)) => {
                dispatch::decode_response(dialect, body, &self.name, dropped)
            }
            (_, Wire::Kiro) => Err(not_spoken(&self.name)),
        }
    }

    /// Whether an answer with `status` means the credential must be renewed
    /// and the request sent again (401 everywhere; Kiro's 403 too).
    pub fn wants_new_token(&self, status: StatusCode) -> bool {
        match self.kind {
            Kind::Kiro(_) => kiro::wants_new_token(status),
            _ => status == StatusCode::UNAUTHORIZED,
        }
    }

    /// A token-counting request in the upstream's own dialect, for upstreams
    /// that can count (`None`: count locally).
    pub fn count_request(
        &self,
        account: &Account,
        model: &str,
        body: Bytes,
        client_headers: Option<&HeaderMap>,
    ) -> Option<OutboundRequest> {
        match &self.kind {
            Kind::Anthropic(upstream) => {
                Some(upstream.count_request(account, body, client_headers))
            }
            Kind::Claude(upstream) => Some(upstream.count_request(account, body, client_headers)),
            Kind::Gemini(upstream) => Some(upstream.count_request(account, model, body)),
            Kind::Copilot(upstream) => upstream.count_request(account, model, body),
            Kind::GeminiCli(upstream) => Some(upstream.count_request(account, model, &body)),
            Kind::OpenAiCompatible(_)
            | Kind::OpenAi(_)
            | Kind::Kimi(_)
            | Kind::Codex(_)
            | Kind::Kiro(_) => None,
        }
    }

    /// A request for the upstream's model catalog (`None`: it has none;
    /// the built-in list serves).
    pub fn models_request(&self, account: &Account) -> Option<OutboundRequest> {
        let request = match &self.kind {
            Kind::OpenAiCompatible(upstream) | Kind::OpenAi(upstream) => {
                upstream.models_request(account)
            }
            Kind::Anthropic(upstream) => upstream.models_request(account),
            Kind::Claude(upstream) => upstream.models_request(account),
            Kind::Gemini(upstream) => upstream.models_request(account),
            Kind::Kimi(upstream) => upstream.models_request(account),
            Kind::Codex(upstream) => upstream.models_request(account),
            Kind::Copilot(upstream) => upstream.models_request(account),
            Kind::Kiro(upstream) => upstream.models_request(account),
            Kind::GeminiCli(_) => return None,
        };
        Some(request)
    }

    /// Reads the upstream's model catalog.
    pub fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
        match &self.kind {
            Kind::OpenAiCompatible(_) | Kind::OpenAi(_) | Kind::Kimi(_) => {
                openai_compatible::parse_models(body)
            }
            Kind::Anthropic(_) | Kind::Claude(_) => anthropic::parse_models(body),
            Kind::Gemini(_) | Kind::GeminiCli(_) => gemini::parse_models(body),
            Kind::Codex(_) => codex::parse_models(body),
            Kind::Copilot(upstream) => upstream.parse_models(body),
            Kind::Kiro(upstream) => upstream.parse_models(body),
        }
    }

    /// What an error answer from the upstream means: its status, headers
    /// and error body. `now` (Unix milliseconds) turns reset times into
    /// waits.
    pub fn classify_failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
        now: i64,
    ) -> Failure {
        match &self.kind {
            Kind::OpenAiCompatible(_) | Kind::OpenAi(..) => {
                openai_compatible::classify_failure(status, headers, body, now)
            }
            Kind::Anthropic(_) => anthropic::classify_failure(status, headers, now),
            Kind::Claude(_) => claude::classify_failure(status, headers, now),
            Kind::Gemini(_) | Kind::GeminiCli(_) => gemini::classify_failure(status, headers, body),
            Kind::Kimi(_) => kimi::classify_failure(status, headers, body),
            Kind::Codex(_) => codex::classify_failure(status, headers, body, now),
            Kind::Copilot(_) => copilot::classify_failure(status, headers, body, now),
            Kind::Kiro(_) => kiro::classify_failure(status, headers, body),
        }
    }

    /// The quota a successful answer's headers report, if they do. `now`
    /// (Unix milliseconds) turns relative resets into times.
    pub fn quota_from_headers(&self, headers: &HeaderMap, now: i64) -> Option<Quota> {
        let quota = match &self.kind {
            Kind::OpenAiCompatible(_) | Kind::OpenAi(_) => {
                openai_compatible::quota_from_headers(headers, now)
            }
            Kind::Anthropic(_) => anthropic::quota_from_headers(headers),
            Kind::Codex(_) => codex::quota_from_headers(headers),
            // The unified headers carry no numbers while allowed; the usage
            // endpoints do.
            Kind::Gemini(_)
            | Kind::GeminiCli(_)
            | Kind::Kimi(_)
            | Kind::Claude(_)
            | Kind::Copilot(_)
            | Kind::Kiro(_) => return None,
        };
        (!quota.windows.is_empty()).then_some(quota)
    }

    /// A request for the account's quota, for upstreams that have a usage
    /// endpoint.
    pub fn quota_request(&self, account: &Account) -> Option<OutboundRequest> {
        match &self.kind {
            Kind::Kimi(upstream) => Some(upstream.usage_request(account)),
            Kind::Claude(upstream) => Some(upstream.usage_request(account)),
            Kind::Codex(upstream) => Some(upstream.usage_request(account)),
            Kind::Copilot(upstream) => upstream.usage_request(account),
            Kind::Kiro(upstream) => Some(upstream.usage_request(account)),
            Kind::GeminiCli(upstream) => upstream.usage_request(account),
            Kind::OpenAiCompatible(_) | Kind::OpenAi(_) | Kind::Anthropic(_) | Kind::Gemini(_) => {
                None
            }
        }
    }

    /// Reads a usage endpoint's answer (see [`Self::quota_request`]).
    pub fn parse_quota(&self, body: &[u8]) -> Result<Quota, serde_json::Error> {
        match &self.kind {
            Kind::Kimi(_) => kimi::parse_usage(body),
            Kind::Claude(_) => claude::parse_usage(body),
            Kind::Codex(_) => codex::parse_usage(body),
            Kind::Copilot(_) => copilot::parse_usage(body),
            Kind::Kiro(_) => kiro::parse_usage(body),
            Kind::GeminiCli(_) => gemini_cli::parse_usage(body),
            Kind::OpenAiCompatible(_) | Kind::OpenAi(_) | Kind::Anthropic(_) | Kind::Gemini(_) => {
                Ok(Quota::default())
            }
        }
    }

    /// Every secret this provider sends for `account`, so text coming back
    /// from the upstream can be scrubbed of them before anyone sees it.
    pub fn secrets(&self, account: &Account) -> Vec<String> {
        let mut secrets = account.credential.secrets();
        let owned = |secret: &str| secret.to_owned();
        match &self.kind {
            Kind::OpenAiCompatible(upstream) | Kind::OpenAi(upstream) => {
                secrets.extend(common::header_secrets(&upstream.headers).map(owned));
            }
            Kind::Anthropic(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Claude(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Gemini(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Kimi(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Codex(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Copilot(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::GeminiCli(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
            Kind::Kiro(upstream) => secrets.extend(upstream.header_secrets().map(owned)),
        }
        secrets
    }
}

/// The refusal for a format this provider does not speak.
fn not_spoken(provider: &str) -> Invalid {
    Invalid::body(format!(
        "provider `{provider}` does not speak Kiro's format"
    ))
}

/// A decoder for a format the provider does not speak: it refuses every
/// byte. (Only a Kiro provider chooses Kiro's format, so none is made.)
struct NotSpoken(String);

impl StreamDecoder for NotSpoken {
    fn feed(
        &mut self,
        _chunk: &[u8],
        _emit: &mut dyn FnMut(subgate_protocol::canonical::Event<'_>),
    ) -> Result<(), subgate_protocol::codec::DecodeError> {
        Err(subgate_protocol::codec::DecodeError(
            not_spoken(&self.0).message,
        ))
    }

    fn finish(
        &mut self,
        emit: &mut dyn FnMut(subgate_protocol::canonical::Event<'_>),
    ) -> Result<(), subgate_protocol::codec::DecodeError> {
        self.feed(&[], emit)
    }
}
