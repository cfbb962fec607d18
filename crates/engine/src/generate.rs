//! The request pipeline for generation: resolve the model to its targets,
//! then try accounts (the pool's order, the conversation's own account
//! first) until one answers, failing over before anything reached the
//! client: to the next account, then to the alias's next target, within a
//! bounded number of attempts and an overall deadline. Each attempt passes
//! the request through (same dialect) or translates it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use subgate_core::{Dialect, RequestId, Wire, mask};
use subgate_http::InboundResponse;
use subgate_protocol::canonical::{Dropped, ReplyMeta};
use subgate_protocol::error::client_status;
use subgate_protocol::passthrough::{BodyHead, upstream_error};
use subgate_providers::{Account, Call, Provider, ReplyEdit, Rest};
use tokio::time::Instant;

use crate::catalog::Target;
use crate::clock::now_millis;
use crate::credentials::{self, Need};
use crate::pool::{Order, Pool};
use crate::usage::Meter;
use crate::{ClientKey, ClientRequest, Engine, GatewayError, Inner, Reply, ReplyBody};

/// The largest upstream error body read and passed on.
const MAX_ERROR_BODY: usize = 1 << 20;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PROVIDER: HeaderName = HeaderName::from_static("x-subgate-provider");
const ACCOUNT: HeaderName = HeaderName::from_static("x-subgate-account");
const ATTEMPTS: HeaderName = HeaderName::from_static("x-subgate-attempts");

/// Everything decided about one attempt before it goes upstream.
pub(crate) struct Plan<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) request: &'a ClientRequest,
    pub(crate) head: &'a BodyHead<'a>,
    pub(crate) provider: &'a Provider,
    pub(crate) pool: &'a Pool,
    /// The account's index in the provider's (and the pool's) list.
    pub(crate) slot: usize,
    pub(crate) upstream: Wire,
    pub(crate) upstream_model: &'a str,
    pub(crate) meta: ReplyMeta,
}

impl Plan<'_> {
    /// The account the attempt goes out on.
    pub(crate) fn account(&self) -> &Account {
        &self.provider.accounts()[self.slot]
    }
}

/// How a request's attempts went so far.
struct Attempts {
    made: u32,
    max: u32,
    deadline: Instant,
    last_error: Option<GatewayError>,
    /// The soonest end among the rests that kept accounts out.
    soonest: Option<i64>,
    resting: usize,
}

impl Attempts {
    fn left(&self) -> bool {
        self.made < self.max && Instant::now() < self.deadline
    }

    fn rested_until(&mut self, until: i64) {
        self.soonest = Some(self.soonest.map_or(until, |soonest| soonest.min(until)));
    }

    /// How long until the first resting account is back.
    fn wait(&self) -> Option<Duration> {
        let millis = self.soonest? - now_millis();
        Some(Duration::from_millis(
            u64::try_from(millis).unwrap_or(0).max(1),
        ))
    }
}

impl Engine {
    /// Serves a generation request in any client dialect.
    pub async fn generate(&self, request: ClientRequest) -> Result<Reply, GatewayError> {
        let id = RequestId::from(uuid::Uuid::now_v7());
        let mut meter = Meter::new(&self.inner.usage, id, request.dialect);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::try_from(id.to_string()) {
            headers.insert(REQUEST_ID, value);
        }
        let stop = self.inner.stop_requests.clone();
        let outcome = tokio::select! {
            outcome = self.serve(&request, id, &mut meter, &mut headers) => outcome,
            () = stop.cancelled() => Err(GatewayError::shutting_down()),
        };
        match outcome {
            Ok(mut reply) => {
                for (name, value) in &headers {
                    reply.headers.insert(name, value.clone());
                }
                Ok(reply)
            }
            Err(mut error) => {
                meter.finish(error.status.as_u16(), None, Some(error.class));
                error.headers.extend(headers);
                Err(error)
            }
        }
    }

    async fn serve(
        &self,
        request: &ClientRequest,
        id: RequestId,
        meter: &mut Meter,
        headers: &mut HeaderMap,
    ) -> Result<Reply, GatewayError> {
        let inner = &self.inner;
        let head = BodyHead::parse(request.dialect, &request.body, request.line())
            .map_err(GatewayError::invalid)?;
        let key = request.key.as_deref();
        meter.request(&head.model, head.stream, key, &self.inner.prices);
        let targets = self.scoped_targets(key, &head.model).await?;
        // Admitted under the key's limits once it is known to be allowed;
        // the slot is held until the answer is over.
        let slot = match key {
            Some(key) => {
                self.count_budget(key, now_millis()).await?;
                Some(key.admit(now_millis())?)
            }
            None => None,
        };
        // Affinity only matters where there is a choice of account.
        let choice = targets
            .iter()
            .any(|target| inner.providers[target.provider].accounts().len() > 1);
        let conversation = (inner.routing.session_affinity && choice)
            .then(|| {
                head.conversation_key(request.dialect, |name| {
                    request.headers.get(name).map(HeaderValue::as_bytes)
                })
            })
            .flatten();
        let mut attempts = Attempts {
            made: 0,
            max: inner.routing.max_attempts,
            deadline: Instant::now() + inner.routing.failover_deadline,
            last_error: None,
            soonest: None,
            resting: 0,
        };
        for target in &targets {
            if !attempts.left() {
                break;
            }
            let sticky = conversation.and_then(|key| inner.affinity.get(key, target.provider));
            let pool = &inner.pools[target.provider];
            let provider = &inner.providers[target.provider];
            let mut order = pool.order(
                provider,
                &target.upstream_model,
                &inner.health,
                sticky,
                now_millis(),
            );
            if let Some(key) = key {
                let accounts = provider.accounts();
                order
                    .accounts
                    .retain(|&index| key.scopes.allows_account(&accounts[index].name));
            }
            explain(provider, target, &order, sticky);
            attempts.resting += order.resting.len();
            for &(_, _, until) in &order.resting {
                attempts.rested_until(until);
            }
            while attempts.left() {
                let Some(lease) = pool.lease(&mut order.accounts, attempts.deadline).await else {
                    break;
                };
                attempts.made += 1;
                let account = &provider.accounts()[lease.account];
                set_header(headers, PROVIDER, provider.name());
                set_header(headers, ACCOUNT, &account.name);
                headers.insert(ATTEMPTS, HeaderValue::from(attempts.made));
                let outcome = self
                    .attempt(request, &head, id, target, lease.account, meter)
                    .await;
                match outcome {
                    Ok(reply) => {
                        inner.health.record_success(
                            &account.id,
                            &target.upstream_model,
                            now_millis(),
                        );
                        if let Some(key) = conversation {
                            inner.affinity.bind(key, target.provider, lease.account);
                        }
                        return Ok(reply.holding((lease, slot)));
                    }
                    Err(error) => {
                        if self.fail_over(target, lease.account, error, &mut attempts)? {
                            break;
                        }
                    }
                }
            }
        }
        Err(self.nobody_answered(&head.model, attempts))
    }

    /// The targets of `model` a request may use: all of them without a
    /// key; with one, those its scopes allow (403 when none is left).
    pub(crate) async fn scoped_targets(
        &self,
        key: Option<&ClientKey>,
        model: &str,
    ) -> Result<Vec<Target>, GatewayError> {
        let Some(key) = key else {
            return self.resolve_model(model).await;
        };
        if !key.scopes.allows_model(model) {
            return Err(GatewayError::forbidden(format!(
                "the client key `{}` may not use the model `{model}`",
                key.name
            )));
        }
        let mut targets = self.resolve_model(model).await?;
        targets.retain(|target| {
            let provider = &self.inner.providers[target.provider];
            key.scopes.allows_provider(provider.name())
                && provider
                    .accounts()
                    .iter()
                    .any(|account| key.scopes.allows_account(&account.name))
        });
        if targets.is_empty() {
            return Err(GatewayError::forbidden(format!(
                "the client key `{}` may not use any provider or account that serves `{model}`",
                key.name
            )));
        }
        Ok(targets)
    }

    /// Notes an attempt that failed before the first byte: the account (or
    /// the model on it) rests as the failure says. `Err` when no other
    /// account would do better (the request itself is at fault); `Ok(true)`
    /// when the target does not have the model, so the next target should
    /// be tried.
    fn fail_over(
        &self,
        target: &Target,
        slot: usize,
        error: GatewayError,
        attempts: &mut Attempts,
    ) -> Result<bool, GatewayError> {
        let inner = &self.inner;
        let Some(mut failure) = error
            .failure
            .clone()
            .filter(subgate_providers::Failure::fails_over)
        else {
            return Err(error);
        };
        // Out of quota without saying until when: until the reset the
        // account's last quota report named.
        if failure.rest == Some(Rest::QuotaExhausted) && failure.retry_after.is_none() {
            failure.retry_after = inner.pools[target.provider].quota_reset(slot, now_millis());
        }
        let provider = &inner.providers[target.provider];
        let account = &provider.accounts()[slot];
        let until = inner.health.record_failure(
            &account.id,
            &target.upstream_model,
            &failure,
            &error.message,
            now_millis(),
        );
        tracing::debug!(
            provider = provider.name(),
            account = %account.name,
            rest = failure.rest.map_or("", Rest::as_str),
            resting_ms = until - now_millis(),
            reason = %error.message,
            "Attempt failed before the first byte; failing over."
        );
        attempts.rested_until(until);
        attempts.last_error = Some(error);
        Ok(failure.rest == Some(Rest::ModelUnavailable))
    }

    /// The error for a request no account answered: the last upstream's
    /// own, waiting for the first account back when it was a rate limit;
    /// or, when every account was resting from the start, a 429.
    fn nobody_answered(&self, model: &str, attempts: Attempts) -> GatewayError {
        let wait = attempts.wait();
        if let Some(mut error) = attempts.last_error {
            if error.status == StatusCode::TOO_MANY_REQUESTS && wait.is_some() {
                error.retry_after = wait;
            }
            return error;
        }
        if attempts.resting > 0 {
            GatewayError::all_resting(model, attempts.resting, wait)
        } else {
            GatewayError::no_free_account(model, self.inner.routing.failover_deadline)
        }
    }

    /// One attempt on one account.
    async fn attempt(
        &self,
        request: &ClientRequest,
        head: &BodyHead<'_>,
        id: RequestId,
        target: &Target,
        slot: usize,
        meter: &mut Meter,
    ) -> Result<Reply, GatewayError> {
        let provider = &self.inner.providers[target.provider];
        let account = &provider.accounts()[slot];
        let upstream = provider.dialect_for(request.dialect, &target.upstream_model);
        meter.route(
            provider.name(),
            &account.id,
            &account.name,
            &target.upstream_model,
            upstream,
        );
        let plan = Plan {
            inner: &self.inner,
            request,
            head,
            provider,
            pool: &self.inner.pools[target.provider],
            slot,
            upstream,
            upstream_model: &target.upstream_model,
            meta: ReplyMeta {
                id: id.to_string().replace('-', ""),
                created: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs()),
                model: head.model.clone(),
            },
        };
        // Same dialect on both sides: pass the bytes through, unless the
        // body carries signatures tagged for some provider (they must be
        // sorted out), or the upstream must stream for a client that does
        // not (the answer is then assembled).
        let pass_through = upstream == request.dialect
            && !subgate_protocol::canonical::body_has_tagged_signature(&request.body)
            && (head.stream || !provider.always_stream());
        if pass_through {
            self.pass_through(plan, meter).await
        } else {
            self.translate(plan, meter).await
        }
    }
}

/// Logs, at debug level, the order accounts will be tried in and why the
/// others were left out.
fn explain(provider: &Provider, target: &Target, order: &Order, sticky: Option<usize>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let accounts = provider.accounts();
    let names: Vec<&str> = order
        .accounts
        .iter()
        .map(|&index| accounts[index].name.as_str())
        .collect();
    let now = now_millis();
    let skipped: Vec<String> = order
        .resting
        .iter()
        .map(|&(index, rest, until)| {
            format!(
                "{} ({} for {}s)",
                accounts[index].name,
                rest.as_str(),
                (until - now).max(0) / 1000
            )
        })
        .collect();
    let why = match sticky {
        Some(index) if order.accounts.first() == Some(&index) => {
            "the conversation's own account first".to_owned()
        }
        Some(_) => "the conversation's account is resting; moving it".to_owned(),
        None => format!("strategy {}", provider.pool().strategy.as_str()),
    };
    tracing::debug!(
        provider = provider.name(),
        model = %target.upstream_model,
        order = ?names,
        skipped = ?skipped,
        why = %why,
        "Accounts to try."
    );
}

fn set_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

impl Reply {
    /// Keeps `held` (an account's lease, a key's slot) until the reply's
    /// stream ends.
    pub(crate) fn holding<T: Send + 'static>(self, held: T) -> Self {
        match self.body {
            ReplyBody::Full(_) => self,
            ReplyBody::Stream(stream) => Self {
                body: ReplyBody::Stream(Box::pin(Holding {
                    stream,
                    _held: held,
                })),
                ..self
            },
        }
    }
}

/// A reply stream that holds something until it ends.
struct Holding<T> {
    stream: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
    _held: T,
}

impl<T> Unpin for Holding<T> {}

impl<T> Stream for Holding<T> {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.stream.as_mut().poll_next(cx)
    }
}

/// How many times a request whose answer never started is sent again
/// (with a first-token timeout; kiro-gateway re-sends up to 3 times).
const FIRST_TOKEN_RETRIES: u32 = 2;

/// Sends a generation request upstream; an error status becomes the
/// client's error. A success is returned only once its body has started:
/// until the first chunk arrives, a stall or a reset can still go to
/// another account. Where the provider sets a first-token timeout, an
/// answer that does not start in time is dropped and the request sent
/// again, a few times, before the attempt fails.
pub(crate) async fn send(plan: &Plan<'_>, call: Call<'_>) -> Result<InboundResponse, GatewayError> {
    let provider = plan.provider;
    let limit = provider.first_token_timeout();
    let mut retries = 0;
    loop {
        let mut response = send_answered(plan, call.clone()).await?;
        if started(provider, &mut response, limit).await? {
            return Ok(response);
        }
        let Some(after) = limit.filter(|_| retries < FIRST_TOKEN_RETRIES) else {
            let error = subgate_http::TransportError::Timeout {
                url: provider.name().to_owned(),
                phase: subgate_http::TimeoutPhase::FirstToken,
                after: limit.unwrap_or_default(),
            };
            return Err(GatewayError::transport(provider.name(), &error));
        };
        retries += 1;
        tracing::debug!(
            provider = provider.name(),
            account = %plan.account().name,
            waited_ms = after.as_millis(),
            retries,
            "The answer did not start in time; sending the request again."
        );
    }
}

/// Waits for a successful answer's first chunk, at most `limit`: `false`
/// when it did not come in time.
async fn started(
    provider: &Provider,
    response: &mut InboundResponse,
    limit: Option<Duration>,
) -> Result<bool, GatewayError> {
    let first = response.body.first_chunk();
    let outcome = match limit {
        None => first.await,
        Some(limit) => match tokio::time::timeout(limit, first).await {
            Ok(outcome) => outcome,
            Err(_) => return Ok(false),
        },
    };
    outcome
        .map(|()| true)
        .map_err(|error| GatewayError::transport(provider.name(), &error))
}

/// Sends a generation request until the upstream answers: a refused token
/// is renewed and the request sent once more. A success comes back with
/// its reply edit installed and its quota noted; a refusal as the client's
/// error.
async fn send_answered(plan: &Plan<'_>, call: Call<'_>) -> Result<InboundResponse, GatewayError> {
    let provider = plan.provider;
    let account = plan.account();
    credentials::ensure_fresh(plan.inner, provider, account, Need::IfStale).await?;
    let generation = account
        .credential
        .session()
        .map(|session| session.tokens().generation);
    // Only a login can be renewed and the request sent again.
    let again = generation.map(|generation| (generation, call.clone()));
    let (mut response, mut reply) = send_once(provider, account, call).await?;
    if provider.wants_new_token(response.status)
        && let Some((generation, call)) = again
    {
        // The upstream no longer takes the login's token (revoked, or it
        // expired early): renew it, unless a refresh already did, and try
        // once more on the same account.
        drop(response);
        credentials::ensure_fresh(plan.inner, provider, account, Need::Replacing(generation))
            .await?;
        (response, reply) = send_once(provider, account, call).await?;
    }
    if !response.status.is_success() {
        return Err(refusal(
            plan.provider,
            plan.account(),
            response,
            plan.upstream,
            plan.request.dialect,
        )
        .await);
    }
    if let Some(edit) = reply {
        let stream = is_event_stream(&response.headers);
        response
            .body
            .set_transform(provider.reply_transform(edit, stream));
    }
    if let Some(quota) = provider.quota_from_headers(&response.headers, now_millis()) {
        plan.pool.set_quota(plan.slot, quota);
    }
    Ok(response)
}

async fn send_once(
    provider: &Provider,
    account: &Account,
    call: Call<'_>,
) -> Result<(InboundResponse, Option<ReplyEdit>), GatewayError> {
    let outbound = provider.generate_request(account, call);
    let response = provider
        .transport()
        .send(outbound.request)
        .await
        .map_err(|error| GatewayError::transport(provider.name(), &error))?;
    Ok((response, outbound.reply))
}

/// Turns an upstream's error answer into the client's error: same status,
/// and the upstream's own error object when it is a well-formed one of the
/// client's dialect (scrubbed of our secrets), else one written for it.
pub(crate) async fn refusal(
    provider: &Provider,
    account: &Account,
    response: InboundResponse,
    upstream: Wire,
    client: Dialect,
) -> GatewayError {
    let status = response.status;
    let headers = response.headers;
    let raw = response
        .body
        .collect(MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let text = scrub(&String::from_utf8_lossy(&raw), &provider.secrets(account));
    let failure = provider.classify_failure(status, &headers, &text, now_millis());
    tracing::debug!(
        provider = provider.name(),
        account = %account.name,
        status = status.as_u16(),
        "Upstream refused the request."
    );
    let read = upstream_error(upstream, &text);
    if upstream == client && read.well_formed {
        let mut error = GatewayError::upstream(
            status,
            failure.class,
            read.message,
            Some(Bytes::from(text)),
            failure.retry_after,
        );
        error.failure = Some(failure);
        return error;
    }
    let message = if read.message.is_empty() {
        format!("provider `{}` answered {status}", provider.name())
    } else {
        format!(
            "provider `{}` answered {status}: {}",
            provider.name(),
            read.message
        )
    };
    let status = StatusCode::from_u16(client_status(client, status.as_u16())).unwrap_or(status);
    let mut error =
        GatewayError::upstream(status, failure.class, message, None, failure.retry_after);
    if status == StatusCode::TOO_MANY_REQUESTS {
        error.code = Some("rate_limit_exceeded".to_owned());
    }
    error.failure = Some(failure);
    error
}

/// Headers of a streamed reply.
pub(crate) fn stream_headers(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
}

/// Whether an upstream answered with an event stream.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// Logs what a translation left out.
pub(crate) fn log_dropped(provider: &str, dropped: &[Dropped]) {
    for Dropped(what) in dropped {
        tracing::debug!(provider, dropped = %what, "Left out in translation.");
    }
}

/// Replaces every secret found in `text` with its masked form.
fn scrub(text: &str, secrets: &[impl AsRef<str>]) -> String {
    let mut clean = text.to_owned();
    for secret in secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|secret| secret.len() >= 4)
    {
        if clean.contains(secret) {
            clean = clean.replace(secret, &mask(secret));
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_masks_every_secret() {
        assert_eq!(
            scrub(
                "bad key sk-live-0123456789 (sk-live-0123456789)",
                &["sk-live-0123456789", "abc"]
            ),
            "bad key sk-l…[redacted] (sk-l…[redacted])"
        );
    }
}
