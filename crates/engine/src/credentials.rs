//! Logged-in credentials kept fresh: renewed ahead of expiry in the
//! background and on demand before a request, one refresh in flight per
//! account, the new tokens stored (and written back to a linked CLI's file)
//! before anything uses them. A refresh that fails rests the account, so
//! traffic goes elsewhere: for good (until a new login or `auth_cooldown`)
//! when the refresh token is dead, briefly when the server was busy.

use std::time::Duration;

use http::StatusCode;
use subgate_core::{FailureClass, SecretString};
use subgate_providers::{Account, Failure, Login, Provider, Rest, Scope, TokenError};

use crate::clock::now_millis;
use crate::{GatewayError, Inner, fetch, import};

/// How often the background pass looks for credentials near expiry.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_mins(1);
/// The longest a token endpoint may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// What to renew.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// Only if it is near expiry.
    IfStale,
    /// Even if it looks valid: the upstream refused tokens of this
    /// generation (a 401), unless a refresh has replaced them since.
    Replacing(u64),
}

/// Makes sure the account's credential is usable, refreshing it if `need`
/// says so. An error carries the failure to rest the account with.
pub(crate) async fn ensure_fresh(
    inner: &Inner,
    provider: &Provider,
    account: &Account,
    need: Need,
) -> Result<(), GatewayError> {
    let Some(session) = account.credential.session() else {
        return Ok(());
    };
    let stale = || match need {
        Need::IfStale => provider.needs_refresh(account, now_millis()),
        Need::Replacing(generation) => session.tokens().generation == generation,
    };
    if !stale() {
        return Ok(());
    }
    let _one_flight = session.refresh_lock().await;
    if !stale() {
        // Another request refreshed while this one waited.
        return Ok(());
    }
    // A fresher login stored meanwhile (by a linked CLI, another replica,
    // `subgate login`) holds the live refresh token: take it instead of
    // spending ours. After a 401 it is worth a try even if it looks stale.
    if adopt_stored(inner, account).await
        && (matches!(need, Need::Replacing(_)) || !provider.needs_refresh(account, now_millis()))
    {
        return Ok(());
    }
    match refresh(inner, provider, account).await {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::warn!(
                provider = provider.name(),
                account = %account.name,
                dead = error.dead,
                reason = %error.message,
                "Renewing the credential failed."
            );
            Err(refresh_failed(provider, account, &error))
        }
    }
}

/// Installs a fresher login another replica (or `subgate login`, or a
/// linked CLI) stored meanwhile, instead of spending a refresh token;
/// `true` when it did. Call it holding the session's refresh lock.
pub(crate) async fn adopt_stored(inner: &Inner, account: &Account) -> bool {
    let Some(session) = account.credential.session() else {
        return false;
    };
    let current = session.tokens();
    // A linked CLI may have refreshed (and so spent the refresh token we
    // hold): its file has the live one.
    let from_file = match &current.login.linked {
        Some(linked) => import::read_linked(linked, &current.login).await,
        None => None,
    };
    let from_store = match inner.store.account(&account.id).await {
        Ok(Some(row)) => serde_json::from_str::<Login>(subgate_core::expose(&row.credentials)).ok(),
        _ => None,
    };
    let Some(stored) = [from_file, from_store]
        .into_iter()
        .flatten()
        .max_by_key(|login| login.expires_at.unwrap_or(0))
    else {
        return false;
    };
    let fresher = stored.expires_at.unwrap_or(0) > current.login.expires_at.unwrap_or(0);
    if stored == current.login || !fresher {
        return false;
    }
    if stored.linked == current.login.linked {
        store_login(inner, account, &stored).await;
    }
    session.install(Some(stored), None);
    true
}

/// One refresh: ask, store, then install.
async fn refresh(inner: &Inner, provider: &Provider, account: &Account) -> Result<(), TokenError> {
    let Some(session) = account.credential.session() else {
        return Ok(());
    };
    let request = provider
        .refresh_request(account)
        .ok_or_else(|| TokenError {
            dead: true,
            retry_after: None,
            message: "the login holds no refresh token; log in again".to_owned(),
        })?;
    let (status, headers, body) =
        fetch::answer(provider, request, (fetch::MAX_SIDE_BYTES, REFRESH_TIMEOUT))
            .await
            .map_err(|error| TokenError::transient(format!("the token endpoint: {error}")))?;
    let refreshed = provider.read_refresh(account, status, &headers, &body, now_millis())?;
    if let Some(login) = &refreshed.login {
        store_login(inner, account, login).await;
    }
    session.install(refreshed.login, refreshed.api);
    tracing::info!(provider = provider.name(), account = %account.name, "Renewed the credential.");
    Ok(())
}

/// Stores a renewed login before it is used, and writes it back to the
/// file it was imported from when linked. A store that cannot be written
/// is logged loudly: the tokens still go into use (the old ones may be
/// spent), and the next refresh stores again.
async fn store_login(inner: &Inner, account: &Account, login: &Login) {
    match serde_json::to_string(login) {
        Ok(json) => {
            let stored = inner
                .store
                .update_credentials(&account.id, &SecretString::from(json), now_millis())
                .await;
            if let Err(error) = stored {
                tracing::error!(account = %account.name, %error, "Storing a renewed credential failed; it lives in memory until the next refresh.");
            }
        }
        Err(error) => {
            tracing::error!(account = %account.name, %error, "A renewed credential could not be serialized.");
        }
    }
    if let Some(linked) = &login.linked
        && let Err(error) = import::write_back(linked, login).await
    {
        tracing::warn!(account = %account.name, path = %linked.path.display(), %error, "Writing the renewed credential back to the linked file failed.");
    }
}

/// The error a request gets when its account's credential could not be
/// renewed; its failure rests the account.
fn refresh_failed(provider: &Provider, account: &Account, error: &TokenError) -> GatewayError {
    let (rest, class) = if error.dead {
        (Rest::CredentialInvalid, FailureClass::UpstreamAuth)
    } else {
        (Rest::Faulty, FailureClass::UpstreamFault)
    };
    let mut gateway = GatewayError::upstream(
        if error.dead {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_GATEWAY
        },
        class,
        format!(
            "the login of account `{}` on provider `{}` could not be renewed: {}",
            account.name,
            provider.name(),
            error.message
        ),
        None,
        error.retry_after,
    );
    gateway.failure = Some(Failure {
        class,
        retry_after: error.retry_after,
        rest: Some(rest),
        scope: Scope::Account,
    });
    gateway
}

/// The background pass: renews every login near expiry, and rests the
/// accounts whose renewal failed.
pub(crate) async fn refresh_due(inner: &Inner) {
    let due = inner.providers.iter().flat_map(|provider| {
        provider
            .accounts()
            .iter()
            .filter(|account| provider.needs_refresh(account, now_millis()))
            .map(move |account| (provider, account))
    });
    let renewals = due.map(|(provider, account)| async move {
        if let Err(error) = ensure_fresh(inner, provider, account, Need::IfStale).await
            && let Some(failure) = &error.failure
        {
            inner
                .health
                .record_failure(&account.id, "", failure, &error.message, now_millis());
        }
    });
    futures_util::future::join_all(renewals).await;
}
