//! What Kimi's refusals mean.
//!
//! - 429 `rate_limit_reached_error`: the account's request rate; it rests.
//! - 429 `engine_overloaded_error`: Kimi is overloaded; the model rests.
//! - 403 `access_terminated_error`: the client was not recognised as a
//!   coding agent, or (with a message about a usage limit) the weekly quota
//!   is used up.
//! - 402, or `insufficient_balance` / `insufficient_quota` /
//!   `balance_insufficient`: no quota left.

use http::{HeaderMap, StatusCode};
use subgate_core::FailureClass;

use crate::openai_compatible::error_words;
use crate::verdict::{Failure, Rest, Scope};

const QUOTA_WORDS: [&str; 3] = [
    "insufficient_balance",
    "insufficient_quota",
    "balance_insufficient",
];

pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap, body: &str) -> Failure {
    let mut failure = Failure::from_status(status, headers);
    let (kind, code) = error_words(body);
    let words = [kind.as_deref(), code.as_deref()];
    let lower = body.to_ascii_lowercase();
    if words
        .iter()
        .flatten()
        .any(|word| QUOTA_WORDS.contains(word))
        || (status == StatusCode::FORBIDDEN
            && words.contains(&Some("access_terminated_error"))
            && (lower.contains("usage limit") || lower.contains("quota")))
    {
        failure.class = FailureClass::UpstreamRateLimited;
        failure.rest = Some(Rest::QuotaExhausted);
        failure.scope = Scope::Account;
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        if words.contains(&Some("engine_overloaded_error")) {
            failure.class = FailureClass::UpstreamFault;
            failure.rest = Some(Rest::Faulty);
            failure.scope = Scope::Model;
        } else {
            failure.scope = Scope::Account;
        }
    }
    failure
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn read(status: u16, body: &str) -> (Option<Rest>, Scope) {
        let failure = classify_failure(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body,
        );
        (failure.rest, failure.scope)
    }

    #[test]
    fn each_refusal_reads_as_kimi_means_it() {
        assert_eq!(
            read(
                403,
                r#"{"error":{"message":"Kimi For Coding is currently only available for Coding Agents such as Kimi CLI, Claude Code, Roo Code, Kilo Code, etc.","type":"access_terminated_error"}}"#
            ),
            (Some(Rest::CredentialInvalid), Scope::Account)
        );
        assert_eq!(
            read(
                403,
                r#"{"error":{"message":"You've reached your weekly (7-day) usage limit","type":"access_terminated_error"}}"#
            ),
            (Some(Rest::QuotaExhausted), Scope::Account)
        );
        assert_eq!(
            read(
                429,
                r#"{"error":{"message":"We're receiving too many requests at the moment.","type":"rate_limit_reached_error"}}"#
            ),
            (Some(Rest::RateLimited), Scope::Account)
        );
        assert_eq!(
            read(
                429,
                r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"engine_overloaded_error"}}"#
            ),
            (Some(Rest::Faulty), Scope::Model)
        );
        assert_eq!(
            read(
                400,
                r#"{"error":{"message":"balance","type":"insufficient_balance"}}"#
            ),
            (Some(Rest::QuotaExhausted), Scope::Account)
        );
        assert_eq!(
            read(
                400,
                r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#
            )
            .0,
            None
        );
    }
}
