//! What an upstream's answer means for routing: which account (or model)
//! must rest, why, and until when; and the quota an upstream reports.
//!
//! The defaults here follow HTTP and the common API conventions; each
//! provider module refines them from its own headers and error bodies.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use subgate_core::FailureClass;

/// Why an account (or one model on it) must rest after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rest {
    /// Too many requests for now.
    RateLimited,
    /// A quota window is used up until it resets.
    QuotaExhausted,
    /// The credential was refused; it needs fixing (or refreshing).
    CredentialInvalid,
    /// The upstream failed or did not answer (5xx, overloaded, timeouts,
    /// refused connections).
    Faulty,
    /// The upstream does not serve this model.
    ModelUnavailable,
}

impl Rest {
    /// The stable name used in storage, logs and `subgate accounts`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "cooling_down",
            Self::QuotaExhausted => "quota_exhausted",
            Self::CredentialInvalid => "credential_invalid",
            Self::Faulty => "upstream_faulty",
            Self::ModelUnavailable => "model_unavailable",
        }
    }

    /// The state for a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::RateLimited,
            Self::QuotaExhausted,
            Self::CredentialInvalid,
            Self::Faulty,
            Self::ModelUnavailable,
        ]
        .into_iter()
        .find(|rest| rest.as_str() == name)
    }
}

/// What the rest applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every model on the account.
    Account,
    /// Only the model the request named.
    Model,
}

/// What an upstream's refusal means.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The class, for records and metrics.
    pub class: FailureClass,
    /// How long the upstream asked us (and the client) to wait, if it said.
    pub retry_after: Option<Duration>,
    /// `None` when the request itself is at fault (another account would
    /// refuse it too): no rest, no failover.
    pub rest: Option<Rest>,
    /// What the rest applies to.
    pub scope: Scope,
}

impl Failure {
    /// The reading of a status that every API shares: 401/403 credential,
    /// 402 quota, 404 model, 408/5xx fault, 429 rate limit (with
    /// `retry-after-ms` / `retry-after`); other 4xx are the request's fault.
    pub fn from_status(status: StatusCode, headers: &HeaderMap) -> Self {
        let code = status.as_u16();
        let (rest, scope) = match code {
            401 | 403 => (Some(Rest::CredentialInvalid), Scope::Account),
            402 => (Some(Rest::QuotaExhausted), Scope::Account),
            404 => (Some(Rest::ModelUnavailable), Scope::Model),
            429 => (Some(Rest::RateLimited), Scope::Model),
            408 | 500..=599 => (Some(Rest::Faulty), Scope::Account),
            _ => (None, Scope::Account),
        };
        Self {
            class: FailureClass::from_upstream_status(code),
            retry_after: retry_after(headers),
            rest,
            scope,
        }
    }

    /// A failure to reach the upstream or to hear back in time.
    pub const fn unreachable(class: FailureClass) -> Self {
        Self {
            class,
            retry_after: None,
            rest: Some(Rest::Faulty),
            scope: Scope::Account,
        }
    }

    /// Whether another account or target might answer.
    pub const fn fails_over(&self) -> bool {
        self.rest.is_some()
    }
}

/// `retry-after-ms` (OpenAI's), or `retry-after` in seconds or as an HTTP
/// date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(millis) = header_number(headers, "retry-after-ms") {
        return Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    let text = header_text(headers, "retry-after")?;
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let wait = date.timestamp_millis() - i64::try_from(now.as_millis()).ok()?;
    u64::try_from(wait).ok().map(Duration::from_millis)
}

/// A header's value as trimmed text.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A header's value as a finite, non-negative number.
pub(crate) fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    header_text(headers, name)?
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
}

/// A point in time written as RFC 3339, or as Unix seconds or
/// milliseconds; as Unix milliseconds.
pub(crate) fn parse_instant(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        // Ten digits of seconds reach the year 2286; more is milliseconds.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "checked finite and in range of a timestamp"
        )]
        let millis = if number < 1e11 {
            (number * 1000.0) as i64
        } else {
            number as i64
        };
        return Some(millis);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|date| date.timestamp_millis())
}

/// A span written the way OpenAI's reset headers write it: `"1s"`,
/// `"6m0s"`, `"20ms"`, `"1h2m3.5s"`.
pub(crate) fn parse_span(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" | "" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Quota an upstream reported for one account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quota {
    /// Each limit window, the tightest deciding.
    pub windows: Vec<QuotaWindow>,
}

/// One quota or rate-limit window.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaWindow {
    /// What it counts: `requests`, `tokens`, `weekly`, `5h`, ….
    pub name: String,
    /// The allowance per window.
    pub limit: f64,
    /// What is left of it.
    pub remaining: f64,
    /// When it refills, in Unix milliseconds, if known.
    pub resets_at: Option<i64>,
    /// The one model it counts, when the upstream counts per model (Code
    /// Assist); `None` for the whole account.
    pub model: Option<String>,
}

impl QuotaWindow {
    /// The share left, from 0 to 1.
    pub fn left(&self) -> f64 {
        if self.limit > 0.0 {
            (self.remaining / self.limit).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

impl Quota {
    /// The window with the smallest share left.
    pub fn tightest(&self) -> Option<&QuotaWindow> {
        self.windows
            .iter()
            .min_by(|a, b| a.left().total_cmp(&b.left()))
    }

    /// When the account can serve again if a window of the whole account
    /// is used up: the latest reset among those empty windows.
    pub fn exhausted_until(&self) -> Option<i64> {
        self.windows
            .iter()
            .filter(|window| window.model.is_none() && window.remaining <= 0.0)
            .filter_map(|window| window.resets_at)
            .max()
    }
}

impl Quota {
    /// The models whose own window is used up, with when each refills.
    pub fn exhausted_models(&self) -> impl Iterator<Item = (&str, i64)> {
        self.windows.iter().filter_map(|window| {
            let model = window.model.as_deref()?;
            (window.remaining <= 0.0).then_some((model, window.resets_at?))
        })
    }
}

/// The headers one rate-limit window is reported in.
pub(crate) struct WindowHeaders {
    /// What the window counts.
    pub(crate) name: &'static str,
    pub(crate) limit: &'static str,
    pub(crate) remaining: &'static str,
    pub(crate) reset: &'static str,
}

/// Reads each window whose limit and remaining headers are present; `reset`
/// reads a reset value into Unix milliseconds. Header names are static, so
/// a response without them costs a lookup per window and nothing else.
pub(crate) fn header_windows(
    headers: &HeaderMap,
    windows: &[WindowHeaders],
    reset: impl Fn(&str) -> Option<i64>,
) -> Quota {
    let windows = windows
        .iter()
        .filter_map(|window| {
            let limit = header_number(headers, window.limit)?;
            let remaining = header_number(headers, window.remaining)?;
            let resets_at = header_text(headers, window.reset).and_then(&reset);
            Some(QuotaWindow {
                model: None,
                name: window.name.to_owned(),
                limit,
                remaining,
                resets_at,
            })
        })
        .collect();
    Quota { windows }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use pretty_assertions::assert_eq;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn statuses_read_as_rests() {
        let read = |code: u16| {
            let failure =
                Failure::from_status(StatusCode::from_u16(code).unwrap(), &HeaderMap::new());
            (failure.rest, failure.scope)
        };
        assert_eq!(read(401), (Some(Rest::CredentialInvalid), Scope::Account));
        assert_eq!(read(402), (Some(Rest::QuotaExhausted), Scope::Account));
        assert_eq!(read(404), (Some(Rest::ModelUnavailable), Scope::Model));
        assert_eq!(read(429), (Some(Rest::RateLimited), Scope::Model));
        assert_eq!(read(503), (Some(Rest::Faulty), Scope::Account));
        assert_eq!(read(400), (None, Scope::Account));
        assert_eq!(read(422), (None, Scope::Account));
    }

    #[test]
    fn retry_after_in_every_spelling() {
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "9")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", " 7 ")])),
            Some(Duration::from_secs(7))
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let later = chrono::DateTime::from_timestamp(i64::try_from(now).unwrap() + 120, 0)
            .unwrap()
            .to_rfc2822();
        let read = retry_after(&headers(&[("retry-after", &later)])).unwrap();
        assert!(
            (Duration::from_secs(118)..=Duration::from_mins(2)).contains(&read),
            "{read:?}"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
    }

    #[test]
    fn spans_and_instants() {
        assert_eq!(parse_span("6m0s"), Some(Duration::from_mins(6)));
        assert_eq!(parse_span("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_span("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_span("2x"), None);
        assert_eq!(parse_span(""), None);
        assert_eq!(parse_instant("1767225600"), Some(1_767_225_600_000));
        assert_eq!(parse_instant("1767225600123"), Some(1_767_225_600_123));
        assert_eq!(
            parse_instant("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_instant("2026-01-09T15:23:13.716839300Z"),
            Some(1_767_972_193_716)
        );
        assert_eq!(parse_instant("tomorrow"), None);
    }

    #[test]
    fn the_tightest_window_decides() {
        let quota = Quota {
            windows: vec![
                QuotaWindow {
                    model: None,
                    name: "requests".to_owned(),
                    limit: 100.0,
                    remaining: 50.0,
                    resets_at: Some(10),
                },
                QuotaWindow {
                    model: None,
                    name: "tokens".to_owned(),
                    limit: 1000.0,
                    remaining: 0.0,
                    resets_at: Some(20),
                },
            ],
        };
        assert_eq!(quota.tightest().unwrap().name, "tokens");
        assert_eq!(quota.exhausted_until(), Some(20));
    }
}
