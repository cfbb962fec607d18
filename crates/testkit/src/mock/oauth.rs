//! The sign-in side the subscription mocks share (`reference/protocols.md`
//! §1.1, §2.1, §3.1–3.2): a registry of the credentials a mock has issued,
//! the authorize endpoint that plays both the user and the browser, PKCE
//! S256 checks at the code exchange (base64url without padding of the
//! SHA-256 of the verifier; codes are single-use and bound to their
//! `redirect_uri`), refresh with optional rotation, scripted device logins,
//! and credentials shaped like the real ones: Claude's `sk-ant-oat01-…` /
//! `sk-ant-ort01-…`, Codex's JWTs (claims under
//! `https://api.openai.com/auth`) with `rt_…` refresh tokens, GitHub's
//! `ghu_…` and Copilot's `tid=…;exp=…;sku=…;proxy-ep=…` tokens, Google's
//! `ya29.…` access and `1//0…` refresh tokens with a Google-style id token
//! (§4.1; never rotated), Kiro's `aoa…` access and `aor…` refresh tokens
//! (§5.1; rotated), each bound to the OIDC client of an `IdC` login.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::common::{json_response, record};
use super::{OutcomeGuard, State, lock};

/// Claude Code's OAuth client id (§1.1).
pub(crate) const CLAUDE_CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
/// Codex CLI's OAuth client id (§2.1).
pub(crate) const CODEX_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// The VS Code Copilot app's client id (§3.1).
pub(crate) const COPILOT_CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
/// Gemini CLI's installed-app OAuth client id (§4.1).
pub(crate) const GEMINI_CLIENT_ID: &str =
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
/// Gemini CLI's installed-app client secret (§4.1; not a secret).
pub(crate) const GEMINI_CLIENT_SECRET: &str = "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";
/// The scopes Gemini CLI asks for (§4.1).
pub(crate) const GEMINI_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
];

/// What the next poll of a device login is answered (each poll uses one
/// step; once the script is used up, polls approve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStep {
    /// The user has not answered yet.
    Pending,
    /// The client polls too fast (GitHub: `slow_down` with an interval
    /// 5 s longer; Codex has no such answer and says pending).
    SlowDown,
    /// The user approves: the poll gets the credential (GitHub) or the
    /// authorization code and verifier (Codex).
    Approve,
    /// The user refuses; the login is over.
    Deny,
    /// The code expired before the user answered; the login is over.
    Expire,
}

/// A credential pair minted by a mock, as a login would have given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// The access token: `sk-ant-oat01-…` (Claude), a JWT (Codex), the
    /// GitHub token `ghu_…` (Copilot), `ya29.…` (Gemini), `aoa…` (Kiro).
    pub access_token: String,
    /// The refresh token: `sk-ant-ort01-…` (Claude), `rt_…` (Codex),
    /// `1//0…` (Gemini), `aor…` (Kiro); empty
    /// for Copilot, whose GitHub token is long-lived and never refreshed.
    pub refresh_token: String,
    /// When the access token expires, in milliseconds since the epoch; 0
    /// for Copilot's GitHub token, which does not expire.
    pub expires_at_ms: u64,
    /// Codex's id token (a JWT with the same claims), Google's id token
    /// (Gemini); `None` elsewhere.
    pub id_token: Option<String>,
}

/// Which service's credentials a registry mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Flavor {
    #[default]
    Claude,
    Codex,
    Copilot,
    Gemini,
    Kiro,
}

/// Who a login signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) email: String,
    /// Claude's account uuid, ChatGPT's `chatgpt_account_id`, GitHub's
    /// login, Google's user id (`sub`).
    pub(crate) account_id: String,
    /// Claude's subscription type, ChatGPT's `chatgpt_plan_type`, Copilot's
    /// `copilot_plan`.
    pub(crate) plan: String,
    /// ChatGPT's `chatgpt_user_id`; Claude's organization uuid.
    pub(crate) user_id: String,
    /// The OIDC client a Kiro `IdC` login signed in through (its refresh
    /// tokens are good with that client only); `None` elsewhere, and for
    /// Kiro's social logins.
    pub(crate) client: Option<String>,
}

#[derive(Debug)]
struct Grant {
    identity: Identity,
    expires_at_ms: u64,
}

#[derive(Debug)]
struct Code {
    challenge: String,
    redirect_uri: String,
    state: String,
    identity: Identity,
}

#[derive(Debug)]
struct Device {
    user_code: String,
    interval: u64,
}

#[derive(Debug)]
struct Registry {
    flavor: Flavor,
    identity: Identity,
    access_ttl: Duration,
    rotate: bool,
    failures: VecDeque<(u16, String)>,
    refreshes: usize,
    hold: Duration,
    deny: bool,
    script: VecDeque<DeviceStep>,
    interval: u64,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Identity>,
    github: HashMap<String, Identity>,
    codes: HashMap<String, Code>,
    devices: HashMap<String, Device>,
}

/// The credentials a subscription mock has issued, and how its sign-in
/// endpoints behave. Reach it through [`super::MockUpstream::oauth`].
///
/// For Copilot the "access tokens" are the short-lived Copilot tokens that
/// `GET /copilot_internal/v2/token` hands out, and a "refresh" is that
/// exchange; the GitHub token that the device login gives is long-lived.
#[derive(Debug)]
pub struct MockOAuth {
    registry: Mutex<Registry>,
}

impl Default for MockOAuth {
    fn default() -> Self {
        Self {
            registry: Mutex::new(Registry {
                flavor: Flavor::Claude,
                identity: Identity {
                    email: "mock-user@example.com".to_owned(),
                    account_id: uuid_like(),
                    plan: "max".to_owned(),
                    user_id: uuid_like(),
                    client: None,
                },
                access_ttl: Duration::from_hours(1),
                rotate: true,
                failures: VecDeque::new(),
                refreshes: 0,
                hold: Duration::ZERO,
                deny: false,
                script: VecDeque::new(),
                interval: 1,
                access: HashMap::new(),
                refresh: HashMap::new(),
                github: HashMap::new(),
                codes: HashMap::new(),
                devices: HashMap::new(),
            }),
        }
    }
}

/// What an access token is worth on the API.
pub(crate) enum Access {
    /// Never issued here (or missing).
    Unknown,
    /// Issued, and expired.
    Expired,
    /// Valid, for this identity.
    Valid(Identity),
}

/// The outcome of a refresh (or of Copilot's token exchange).
pub(crate) enum Refresh {
    /// A failure the test injected: status and body.
    Injected(u16, String),
    /// The refresh token (GitHub token) is not one the mock knows, or was
    /// rotated away.
    Unknown,
    /// Copilot: the GitHub token is good but its user has no seat.
    NoSeat,
    /// New credentials.
    Issued(IssuedTokens),
}

/// What a device-login poll gets.
pub(crate) enum Poll {
    /// No such login (never started, or already over).
    Unknown,
    Pending,
    /// Slow down: poll at this interval (seconds).
    SlowDown(u64),
    Denied,
    Expired,
    Approved(Identity),
}

impl MockOAuth {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// Sets what the registry mints, with that service's defaults: the
    /// identity's plan, and for Copilot tokens that live 30 minutes.
    pub(crate) fn set_flavor(&self, flavor: Flavor) {
        let mut registry = self.registry();
        registry.flavor = flavor;
        match flavor {
            Flavor::Claude => {}
            Flavor::Codex => {
                "plus".clone_into(&mut registry.identity.plan);
                registry.identity.user_id = format!("user-{}", random_token(24));
            }
            Flavor::Copilot => {
                "octocat@example.com".clone_into(&mut registry.identity.email);
                "octocat".clone_into(&mut registry.identity.account_id);
                "individual".clone_into(&mut registry.identity.plan);
                registry.access_ttl = Duration::from_mins(30);
            }
            Flavor::Gemini => {
                // Google does not rotate refresh tokens (§4.1); its user ids
                // are 21 digits.
                registry.rotate = false;
                registry.identity.account_id = digits(21);
                "free-tier".clone_into(&mut registry.identity.plan);
            }
            Flavor::Kiro => {
                // The plan is what `getUsageLimits` calls the subscription.
                "KIRO PRO".clone_into(&mut registry.identity.plan);
            }
        }
    }

    /// Mints a valid credential pair for the configured identity, as a
    /// login would (tests seed credential files with it). For Copilot:
    /// the GitHub token.
    pub fn issue_tokens(&self) -> IssuedTokens {
        let mut registry = self.registry();
        let identity = registry.identity.clone();
        if registry.flavor == Flavor::Copilot {
            return registry.mint_github(identity);
        }
        registry.mint(identity)
    }

    /// How long access tokens minted from now on live (default one hour;
    /// for Copilot, its API tokens: default 30 minutes).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.registry().access_ttl = ttl;
    }

    /// Every access token issued so far is now expired (Copilot: every
    /// Copilot token; GitHub tokens stay valid).
    pub fn expire_access_tokens(&self) {
        let now = now_ms();
        for grant in self.registry().access.values_mut() {
            grant.expires_at_ms = grant.expires_at_ms.min(now.saturating_sub(1));
        }
    }

    /// Whether a refresh replaces the refresh token (default `true`: the old
    /// one then fails with `invalid_grant`, or Codex's
    /// `refresh_token_reused`). Without rotation a refresh answers with the
    /// same refresh token.
    pub fn set_rotate_refresh(&self, rotate: bool) {
        self.registry().rotate = rotate;
    }

    /// The next refresh (Copilot: token exchange) is answered with `status`
    /// and `body` (sent as JSON when it is JSON) and changes nothing;
    /// several calls queue up, used in order.
    pub fn fail_next_refresh(&self, status: u16, body: &str) {
        self.registry()
            .failures
            .push_back((status, body.to_owned()));
    }

    /// Holds every refresh (Copilot: token exchange) this long before
    /// answering it; `Duration::ZERO` (the default) answers at once. Nothing
    /// changes until the answer goes out, as with a server that commits a
    /// rotation with its answer: a caller that goes away meanwhile (a
    /// gateway killed mid-refresh) leaves its refresh token good.
    pub fn hold_refresh(&self, hold: Duration) {
        self.registry().hold = hold;
    }

    /// Successful refreshes so far (Copilot: successful token exchanges).
    pub fn refresh_count(&self) -> usize {
        self.registry().refreshes
    }

    /// Logins from now on approve as this identity: `account_id` is
    /// Claude's account uuid, ChatGPT's `chatgpt_account_id`, GitHub's
    /// login, or Google's user id (the id token's `sub`, userinfo's `id`);
    /// `plan` is Claude's subscription type, ChatGPT's `chatgpt_plan_type`
    /// or Copilot's `copilot_plan` (Gemini does not use it: its tier is
    /// the Code Assist state's).
    pub fn set_identity(&self, email: &str, account_id: &str, plan: &str) {
        let mut registry = self.registry();
        email.clone_into(&mut registry.identity.email);
        account_id.clone_into(&mut registry.identity.account_id);
        plan.clone_into(&mut registry.identity.plan);
    }

    /// The user refuses at the authorize page from now on.
    pub fn deny_authorize(&self) {
        self.registry().deny = true;
    }

    /// Answers the next device-login polls with these steps, in order; once
    /// they are used up, polls approve.
    pub fn script_device(&self, steps: Vec<DeviceStep>) {
        self.registry().script = steps.into();
    }

    /// The poll interval device logins announce, in seconds (default 1,
    /// where the real services say 5; Codex writes it as a string).
    pub fn set_device_interval(&self, seconds: u64) {
        self.registry().interval = seconds;
    }

    /// Access tokens that are valid now.
    pub fn valid_access_tokens(&self) -> usize {
        let now = now_ms();
        self.registry()
            .access
            .values()
            .filter(|grant| grant.expires_at_ms > now)
            .count()
    }

    pub(crate) fn flavor(&self) -> Flavor {
        self.registry().flavor
    }

    pub(crate) fn identity(&self) -> Identity {
        self.registry().identity.clone()
    }

    pub(crate) fn access_ttl(&self) -> Duration {
        self.registry().access_ttl
    }

    pub(crate) fn denies(&self) -> bool {
        self.registry().deny
    }

    /// Mints a credential pair for `identity`, as a login through another
    /// route would (Kiro: a social or `IdC` login, a device login's approval).
    pub(crate) fn mint_for(&self, identity: Identity) -> IssuedTokens {
        self.registry().mint(identity)
    }

    /// Who refresh token `token` belongs to, while it is good.
    pub(crate) fn refresh_owner(&self, token: &str) -> Option<Identity> {
        self.registry().refresh.get(token).cloned()
    }

    pub(crate) fn access(&self, token: &str) -> Access {
        match self.registry().access.get(token) {
            None => Access::Unknown,
            Some(grant) if grant.expires_at_ms <= now_ms() => Access::Expired,
            Some(grant) => Access::Valid(grant.identity.clone()),
        }
    }

    /// Remembers an authorization code for the configured identity.
    pub(crate) fn grant_code(&self, challenge: &str, redirect_uri: &str, state: &str) -> String {
        let mut registry = self.registry();
        let code = random_token(32);
        let identity = registry.identity.clone();
        registry.codes.insert(
            code.clone(),
            Code {
                challenge: challenge.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                state: state.to_owned(),
                identity,
            },
        );
        code
    }

    /// Redeems a code (once, whatever the outcome): the verifier must hash
    /// to its challenge, the redirect must be the one it was issued for,
    /// and `state`, when given, the authorize request's. `Err` describes
    /// the mismatch.
    pub(crate) fn redeem_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        state: Option<&str>,
    ) -> Result<IssuedTokens, &'static str> {
        let mut registry = self.registry();
        let Some(issued) = registry.codes.remove(code) else {
            return Err("Invalid or already used authorization code");
        };
        // A code asked for without PKCE (Gemini CLI's loopback flow) must
        // be redeemed without a verifier.
        let pkce_ok = if issued.challenge.is_empty() {
            verifier.is_empty()
        } else {
            s256(verifier) == issued.challenge
        };
        if !pkce_ok {
            return Err("Invalid code_verifier");
        }
        if issued.redirect_uri != redirect_uri {
            return Err("redirect_uri does not match the authorization request");
        }
        if state.is_some_and(|state| state != issued.state) {
            return Err("state does not match the authorization request");
        }
        Ok(registry.mint(issued.identity))
    }

    /// [`MockOAuth::refresh`] once the hold set by
    /// [`MockOAuth::hold_refresh`] is over; dropped before that (the caller
    /// went away), it changes nothing.
    pub(crate) async fn refresh_held(&self, token: &str, base: &str, seat: bool) -> Refresh {
        let hold = self.registry().hold;
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        self.refresh(token, base, seat)
    }

    /// A refresh with `token` (Copilot: an exchange of GitHub token `token`
    /// for a Copilot token pointing at `base`, which needs a `seat`).
    pub(crate) fn refresh(&self, token: &str, base: &str, seat: bool) -> Refresh {
        let mut registry = self.registry();
        if let Some((status, body)) = registry.failures.pop_front() {
            return Refresh::Injected(status, body);
        }
        if registry.flavor == Flavor::Copilot {
            let Some(identity) = registry.github.get(token).cloned() else {
                return Refresh::Unknown;
            };
            if !seat {
                return Refresh::NoSeat;
            }
            registry.refreshes += 1;
            return Refresh::Issued(registry.mint_copilot(identity, base));
        }
        let Some(identity) = registry.refresh.get(token).cloned() else {
            return Refresh::Unknown;
        };
        registry.refreshes += 1;
        let mut tokens = registry.mint(identity);
        if registry.rotate {
            registry.refresh.remove(token);
        } else {
            registry.refresh.remove(&tokens.refresh_token);
            token.clone_into(&mut tokens.refresh_token);
        }
        Refresh::Issued(tokens)
    }

    /// Starts a device login: its id (Codex's `device_auth_id`, GitHub's
    /// `device_code`), user code and poll interval.
    pub(crate) fn start_device(&self) -> (String, String, u64) {
        let mut registry = self.registry();
        let id = random_token(40);
        let letters: String = random_bytes(8)
            .iter()
            .map(|byte| char::from(b'A' + byte % 26))
            .collect();
        let user_code = format!("{}-{}", &letters[..4], &letters[4..]);
        let interval = registry.interval;
        registry.devices.insert(
            id.clone(),
            Device {
                user_code: user_code.clone(),
                interval,
            },
        );
        (id, user_code, interval)
    }

    /// One poll of device login `id`; `user_code`, when given, must be the
    /// login's.
    pub(crate) fn poll_device(&self, id: &str, user_code: Option<&str>) -> Poll {
        let mut guard = self.registry();
        let registry = &mut *guard;
        let Some(device) = registry.devices.get_mut(id) else {
            return Poll::Unknown;
        };
        if user_code.is_some_and(|code| code != device.user_code) {
            return Poll::Unknown;
        }
        let poll = match registry.script.pop_front().unwrap_or(DeviceStep::Approve) {
            DeviceStep::Pending => return Poll::Pending,
            DeviceStep::SlowDown => {
                device.interval += 5;
                return Poll::SlowDown(device.interval);
            }
            DeviceStep::Approve => Poll::Approved(registry.identity.clone()),
            DeviceStep::Deny => Poll::Denied,
            DeviceStep::Expire => Poll::Expired,
        };
        registry.devices.remove(id);
        poll
    }

    /// Who GitHub token `token` belongs to.
    pub(crate) fn github_identity(&self, token: &str) -> Option<Identity> {
        self.registry().github.get(token).cloned()
    }

    /// Mints the GitHub token a device login gives.
    pub(crate) fn mint_github(&self, identity: Identity) -> IssuedTokens {
        self.registry().mint_github(identity)
    }

    /// Remembers a code for a Codex device login: the server makes the
    /// verifier itself and hands it out with the code.
    pub(crate) fn device_code(&self, redirect_uri: &str) -> (String, String, String) {
        let verifier = random_token(43);
        let challenge = s256(&verifier);
        let code = self.grant_code(&challenge, redirect_uri, "");
        (code, challenge, verifier)
    }
}

impl Registry {
    fn expiry(&self) -> u64 {
        now_ms().saturating_add(u64::try_from(self.access_ttl.as_millis()).unwrap_or(u64::MAX))
    }

    /// Mints an access and refresh token (and Codex's id token).
    fn mint(&mut self, identity: Identity) -> IssuedTokens {
        let expires_at_ms = self.expiry();
        let (access_token, refresh_token, id_token) = match self.flavor {
            Flavor::Claude => (
                format!("sk-ant-oat01-{}", random_token(86)),
                format!("sk-ant-ort01-{}", random_token(86)),
                None,
            ),
            Flavor::Gemini => (
                format!("ya29.a0{}", random_token(150)),
                format!("1//0{}", random_token(98)),
                Some(google_id_token(&identity, expires_at_ms / 1000)),
            ),
            Flavor::Kiro => (
                format!("aoaAAAAAG{}", random_token(400)),
                format!("aorAAAAAG{}", random_token(360)),
                None,
            ),
            // Copilot mints GitHub and Copilot tokens instead (below).
            Flavor::Codex | Flavor::Copilot => (
                jwt(&identity, expires_at_ms / 1000, "https://api.openai.com/v1"),
                format!("rt_{}", random_token(64)),
                Some(jwt(&identity, expires_at_ms / 1000, CODEX_CLIENT_ID)),
            ),
        };
        self.access.insert(
            access_token.clone(),
            Grant {
                identity: identity.clone(),
                expires_at_ms,
            },
        );
        self.refresh.insert(refresh_token.clone(), identity);
        IssuedTokens {
            access_token,
            refresh_token,
            expires_at_ms,
            id_token,
        }
    }

    fn mint_github(&mut self, identity: Identity) -> IssuedTokens {
        let token = format!("ghu_{}", alphanumeric(36));
        self.github.insert(token.clone(), identity);
        IssuedTokens {
            access_token: token,
            refresh_token: String::new(),
            expires_at_ms: 0,
            id_token: None,
        }
    }

    /// A Copilot token (§3.2) for `identity`, whose `proxy-ep` names the
    /// mock's own address.
    fn mint_copilot(&mut self, identity: Identity, base: &str) -> IssuedTokens {
        let expires_at_ms = self.expiry();
        let host = base.trim_start_matches("http://");
        let token = format!(
            "tid={};exp={};sku=monthly_subscriber;proxy-ep={host}",
            hex(&random_bytes(16)),
            expires_at_ms / 1000,
        );
        self.access.insert(
            token.clone(),
            Grant {
                identity,
                expires_at_ms,
            },
        );
        IssuedTokens {
            access_token: token,
            refresh_token: String::new(),
            expires_at_ms,
            id_token: None,
        }
    }
}

/// A ChatGPT-style JWT: header, payload with the claims the clients read
/// (§2.1), and random signature bytes.
fn jwt(identity: &Identity, exp: u64, audience: &str) -> String {
    let header = json!({"alg": "RS256", "kid": "mock", "typ": "JWT"});
    let payload = json!({
        "iss": "https://auth.openai.com",
        "aud": [audience],
        "sub": identity.user_id,
        "iat": now_ms() / 1000,
        "exp": exp,
        "jti": uuid_like(),
        "email": identity.email,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": identity.account_id,
            "chatgpt_plan_type": identity.plan,
            "chatgpt_user_id": identity.user_id,
            "user_id": identity.user_id,
        },
        "https://api.openai.com/profile": {"email": identity.email, "email_verified": true},
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes(64)),
    )
}

/// A Google-style id token (§4.1): an RS256-shaped JWT issued by
/// `https://accounts.google.com` for Gemini CLI's client, whose `sub` is the
/// identity's account id.
fn google_id_token(identity: &Identity, exp: u64) -> String {
    let header = json!({"alg": "RS256", "kid": "mock", "typ": "JWT"});
    let payload = json!({
        "iss": "https://accounts.google.com",
        "azp": GEMINI_CLIENT_ID,
        "aud": GEMINI_CLIENT_ID,
        "sub": identity.account_id,
        "email": identity.email,
        "email_verified": true,
        "at_hash": random_token(22),
        "iat": now_ms() / 1000,
        "exp": exp,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes(64)),
    )
}

/// PKCE S256: base64url without padding of the SHA-256 of `verifier`.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Unpredictable bytes (for names, not for secrets): SHA-256 blocks over
/// the process's random hasher keys, a counter and the clock.
fn random_bytes(len: usize) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = Vec::with_capacity(len + 32);
    while bytes.len() < len {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = RandomState::new().hash_one(count);
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(count.to_le_bytes());
        hasher.update(now_ms().to_le_bytes());
        bytes.extend_from_slice(&hasher.finalize());
    }
    bytes.truncate(len);
    bytes
}

/// `len` base64url characters.
pub(crate) fn random_token(len: usize) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(random_bytes(len));
    token.truncate(len);
    token
}

/// `len` decimal digits, the first not zero.
fn digits(len: usize) -> String {
    random_bytes(len)
        .iter()
        .enumerate()
        .map(|(n, byte)| {
            let digit = if n == 0 { 1 + byte % 9 } else { byte % 10 };
            char::from(b'0' + digit)
        })
        .collect()
}

fn alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    random_bytes(len)
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// A random UUID-shaped string.
pub(crate) fn uuid_like() -> String {
    let hex = hex(&random_bytes(16));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

pub(crate) fn now_s() -> u64 {
    now_ms() / 1000
}

/// `unix` seconds as RFC 3339 UTC (`2026-01-01T00:00:00Z`).
pub(crate) fn iso8601(unix: u64) -> String {
    let days = unix / 86_400;
    let seconds = unix % 86_400;
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for dates after the epoch).
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The bearer token of `Authorization` (GitHub's `token …` too when
/// `github` is set).
pub(crate) fn bearer(headers: &HeaderMap, github: bool) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .or_else(|| github.then(|| value.strip_prefix("token ")).flatten())
        .map(str::trim)
}

/// How a token request's body was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Form,
}

/// The fields of a JSON object or form body, by its `Content-Type`
/// (`None` for any other, or a body that does not parse). JSON numbers
/// and booleans become their text.
pub(crate) fn fields(
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(Encoding, HashMap<String, String>)> {
    let kind = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    if kind.starts_with("application/json") {
        let Value::Object(object) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        let fields = object
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect();
        return Some((Encoding::Json, fields));
    }
    if kind.starts_with("application/x-www-form-urlencoded") {
        let fields = url::form_urlencoded::parse(body).into_owned().collect();
        return Some((Encoding::Form, fields));
    }
    None
}

/// The query's parameters.
pub(crate) fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Records a request that no scenario answers, and marks it complete.
pub(crate) fn note(
    state: &Arc<State>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) {
    let index = record(state, method, uri, headers.clone(), body.clone());
    OutcomeGuard::new(state.clone(), index).complete();
}

/// `status` with `body`, as JSON when it is JSON.
pub(crate) fn raw_response(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

/// The standard OAuth error body (`invalid_grant`, `invalid_request`…).
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Gemini CLI's redirect when no browser can reach a loopback port; Google
/// shows the code there for the user to paste (§4.1).
const GEMINI_MANUAL_REDIRECT: &str = "https://codeassist.google.com/authcode";

/// Whether `uri` is an `http://localhost:…` or `http://127.0.0.1:…` URL.
fn loopback(uri: &url::Url) -> bool {
    uri.scheme() == "http" && matches!(uri.host_str(), Some("localhost" | "127.0.0.1"))
}

/// What the authorize request of `flavor` must carry besides PKCE: the
/// client id, and `Err` with what is wrong.
fn flavor_checks(flavor: Flavor, params: &HashMap<String, String>) -> Result<(), String> {
    let param = |name: &str| params.get(name).map_or("", String::as_str);
    let (client, scopes): (&str, &[&str]) = match flavor {
        Flavor::Claude => (CLAUDE_CLIENT_ID, &["user:inference"]),
        Flavor::Gemini => (GEMINI_CLIENT_ID, &GEMINI_SCOPES),
        Flavor::Codex | Flavor::Copilot | Flavor::Kiro => (
            CODEX_CLIENT_ID,
            &["openid", "profile", "email", "offline_access"],
        ),
    };
    if param("client_id") != client {
        return Err(format!("unknown client_id {:?}", param("client_id")));
    }
    if flavor == Flavor::Claude && param("code") != "true" {
        return Err("code=true is required".to_owned());
    }
    if flavor == Flavor::Gemini && param("access_type") != "offline" {
        return Err("access_type=offline is required for a refresh token".to_owned());
    }
    let granted: Vec<&str> = param("scope").split_whitespace().collect();
    if let Some(missing) = scopes.iter().find(|scope| !granted.contains(scope)) {
        return Err(format!("scope must include {missing}"));
    }
    Ok(())
}

/// `GET /oauth/authorize`, answered as the user and their browser would:
/// checks the client, `response_type=code`, PKCE S256 with a challenge,
/// `state` and `redirect_uri` (for Gemini: PKCE optional, as Gemini CLI
/// sends it only in its manual flow, and `access_type=offline`); then
/// approves (or refuses, when told to). A loopback redirect (or Gemini's
/// manual `https://codeassist.google.com/authcode`) gets a 302 to it with `code` and `state` (or
/// `error=access_denied`); Claude's paste flow (a redirect ending in
/// `/oauth/code/callback`) gets a page with one `<code>CODE#STATE</code>`.
pub(crate) async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    let params = query(&uri);
    let param = |name: &str| params.get(name).map_or("", String::as_str);
    let flavor = state.oauth.flavor();
    let checked = flavor_checks(flavor, &params).and_then(|()| {
        if param("response_type") != "code" {
            return Err("response_type must be code".to_owned());
        }
        // Gemini CLI sends PKCE only in its manual flow (§4.1).
        let pkce = flavor != Flavor::Gemini || params.contains_key("code_challenge");
        if pkce && param("code_challenge_method") != "S256" {
            return Err("code_challenge_method must be S256".to_owned());
        }
        if pkce && param("code_challenge").is_empty() {
            return Err("code_challenge is required".to_owned());
        }
        for name in ["state", "redirect_uri"] {
            if param(name).is_empty() {
                return Err(format!("{name} is required"));
            }
        }
        url::Url::parse(param("redirect_uri")).map_err(|_| "redirect_uri is not a URL".to_owned())
    });
    let redirect = match checked {
        Ok(redirect) => redirect,
        Err(message) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &message);
        }
    };
    let paste = flavor == Flavor::Claude && redirect.path().ends_with("/oauth/code/callback");
    let manual = flavor == Flavor::Gemini && param("redirect_uri") == GEMINI_MANUAL_REDIRECT;
    if !loopback(&redirect) && !paste && !manual {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    let denied = state.oauth.denies();
    let code = (!denied).then(|| {
        state.oauth.grant_code(
            param("code_challenge"),
            param("redirect_uri"),
            param("state"),
        )
    });
    if paste {
        return match code {
            Some(code) => html(
                StatusCode::OK,
                format!(
                    "<html><body><p>Paste this into Claude Code:</p><code>{code}#{}</code></body></html>",
                    param("state")
                ),
            ),
            None => html(
                StatusCode::OK,
                "<html><body><p>Authorization denied.</p></body></html>".to_owned(),
            ),
        };
    }
    let mut location = redirect;
    {
        let mut pairs = location.query_pairs_mut();
        match code {
            Some(code) => pairs.append_pair("code", &code),
            None => pairs.append_pair("error", "access_denied"),
        };
        pairs.append_pair("state", param("state"));
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::try_from(location.as_str()) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn dates_are_rfc_3339() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(iso8601(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn codex_tokens_are_jwts_with_the_account_claims() {
        let oauth = MockOAuth::default();
        oauth.set_flavor(Flavor::Codex);
        oauth.set_identity("a@example.com", "acct-1", "pro");
        let tokens = oauth.issue_tokens();
        assert!(tokens.refresh_token.starts_with("rt_"));
        for token in [&tokens.access_token, tokens.id_token.as_ref().unwrap()] {
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(claims["email"], "a@example.com");
            let auth = &claims["https://api.openai.com/auth"];
            assert_eq!(auth["chatgpt_account_id"], "acct-1");
            assert_eq!(auth["chatgpt_plan_type"], "pro");
            assert!(auth["chatgpt_user_id"].is_string());
            assert_eq!(claims["exp"], tokens.expires_at_ms / 1000);
        }
    }
}
