//! What an OpenAI-style upstream's answers mean for routing: error statuses
//! and bodies, and the `x-ratelimit-*` headers.

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::verdict::{Failure, Quota, Rest, Scope, WindowHeaders, header_windows, parse_span};

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<serde_json::Value>,
}

/// The error object's `type` and `code`, if the body is an OpenAI error.
pub(crate) fn error_words(body: &str) -> (Option<String>, Option<String>) {
    let Ok(Envelope { error: Some(error) }) = serde_json::from_str::<Envelope>(body) else {
        return (None, None);
    };
    let code = match error.code {
        Some(serde_json::Value::String(code)) => Some(code),
        _ => None,
    };
    (error.kind, code)
}

/// OpenAI says `insufficient_quota` with a 429 when the account's credit
/// is gone: that is quota, not a rate limit. A 429 without `retry-after`
/// waits for the reset the rate-limit headers name.
pub(crate) fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Failure {
    let mut failure = Failure::from_status(status, headers);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let (kind, code) = error_words(body);
        let words = [kind.as_deref(), code.as_deref()];
        if words.contains(&Some("insufficient_quota")) {
            failure.rest = Some(Rest::QuotaExhausted);
            failure.scope = Scope::Account;
        } else if failure.retry_after.is_none() {
            failure.retry_after = quota_from_headers(headers, now)
                .exhausted_until()
                .and_then(|until| u64::try_from(until - now).ok())
                .map(std::time::Duration::from_millis);
        }
    }
    failure
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; resets are
/// spans like `"6m0s"`.
pub(crate) fn quota_from_headers(headers: &HeaderMap, now: i64) -> Quota {
    const WINDOWS: [WindowHeaders; 2] = [
        WindowHeaders {
            name: "requests",
            limit: "x-ratelimit-limit-requests",
            remaining: "x-ratelimit-remaining-requests",
            reset: "x-ratelimit-reset-requests",
        },
        WindowHeaders {
            name: "tokens",
            limit: "x-ratelimit-limit-tokens",
            remaining: "x-ratelimit-remaining-tokens",
            reset: "x-ratelimit-reset-tokens",
        },
    ];
    header_windows(headers, &WINDOWS, |text| {
        let span = parse_span(text)?;
        Some(now + i64::try_from(span.as_millis()).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn insufficient_quota_is_quota_and_resets_name_the_wait() {
        let failure = classify_failure(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
            0,
        );
        assert_eq!(failure.rest, Some(Rest::QuotaExhausted));
        assert_eq!(failure.scope, Scope::Account);

        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &headers, "{}", 1_000);
        assert_eq!(failure.rest, Some(Rest::RateLimited));
        assert_eq!(failure.retry_after, Some(Duration::from_mins(6)));
        let quota = quota_from_headers(&headers, 1_000);
        assert_eq!(quota.windows.len(), 2);
        assert_eq!(quota.tightest().unwrap().name, "requests");
        assert_eq!(quota.windows[1].resets_at, Some(1_020));
    }
}
