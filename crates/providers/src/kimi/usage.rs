//! `GET {base}/usages`: the weekly quota and the rolling windows.
//!
//! ```json
//! {"usage":{"limit":"2048","used":"214","remaining":"1834","resetTime":"2026-01-09T15:23:13Z"},
//!  "limits":[{"window":{"duration":300,"timeUnit":"TIME_UNIT_MINUTE"},
//!             "detail":{"limit":"200","used":"50","remaining":"150","resetTime":"2026-01-06T13:33:02Z"}}]}
//! ```
//! Numbers come as strings or numbers; `used` or `remaining` may be
//! missing (one is derived from the other); the reset is spelled
//! `resetTime`, `reset_time`, `resetAt` or `reset_at`, as an RFC 3339 time
//! or Unix seconds or milliseconds.

use serde::Deserialize;

use crate::verdict::{Quota, QuotaWindow, parse_instant};

#[derive(Deserialize)]
struct Usages {
    usage: Option<Counts>,
    #[serde(default)]
    limits: Vec<Limit>,
}

#[derive(Deserialize)]
struct Limit {
    window: Option<Window>,
    detail: Option<Counts>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    duration: Option<Number>,
    time_unit: Option<String>,
}

#[derive(Deserialize)]
struct Counts {
    limit: Option<Number>,
    used: Option<Number>,
    remaining: Option<Number>,
    #[serde(
        alias = "resetTime",
        alias = "reset_time",
        alias = "resetAt",
        alias = "reset_at"
    )]
    reset: Option<Number>,
}

/// A number, or a string holding one (or a time, for resets).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Number(f64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<f64> {
        match self {
            Self::Number(value) => Some(*value),
            Self::Text(text) => text.trim().parse().ok(),
        }
        .filter(|value: &f64| value.is_finite())
    }

    fn instant(&self) -> Option<i64> {
        match self {
            Self::Number(value) => parse_instant(&value.to_string()),
            Self::Text(text) => parse_instant(text),
        }
    }
}

impl Counts {
    fn window(&self, name: String) -> Option<QuotaWindow> {
        let limit = self.limit.as_ref()?.value()?;
        let used = self.used.as_ref().and_then(Number::value);
        let remaining = self
            .remaining
            .as_ref()
            .and_then(Number::value)
            .or_else(|| used.map(|used| limit - used))?;
        Some(QuotaWindow {
            model: None,
            name,
            limit,
            remaining: remaining.max(0.0),
            resets_at: self.reset.as_ref().and_then(Number::instant),
        })
    }
}

/// A window's length as people say it: `5h`, `7d`, `30m`.
fn window_name(window: Option<&Window>) -> String {
    let Some(window) = window else {
        return "window".to_owned();
    };
    let duration = window
        .duration
        .as_ref()
        .and_then(Number::value)
        .unwrap_or(0.0);
    let unit = window.time_unit.as_deref().unwrap_or("");
    let minutes = match unit.trim_start_matches("TIME_UNIT_") {
        "SECOND" => duration / 60.0,
        "MINUTE" => duration,
        "HOUR" => duration * 60.0,
        "DAY" => duration * 1440.0,
        "WEEK" => duration * 10_080.0,
        _ => return format!("{duration}{unit}"),
    };
    if minutes >= 1440.0 && minutes % 1440.0 == 0.0 {
        format!("{}d", minutes / 1440.0)
    } else if minutes >= 60.0 && minutes % 60.0 == 0.0 {
        format!("{}h", minutes / 60.0)
    } else {
        format!("{minutes}m")
    }
}

pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    let usages: Usages = serde_json::from_slice(body)?;
    let mut windows = Vec::new();
    if let Some(window) = usages
        .usage
        .as_ref()
        .and_then(|counts| counts.window("weekly".to_owned()))
    {
        windows.push(window);
    }
    for limit in &usages.limits {
        if let Some(window) = limit
            .detail
            .as_ref()
            .and_then(|counts| counts.window(window_name(limit.window.as_ref())))
        {
            windows.push(window);
        }
    }
    Ok(Quota { windows })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn reads_string_numbers_and_every_reset_spelling() {
        let body = br#"{"user":{"membership":{"level":"LEVEL_ADVANCED"}},
            "usage":{"limit":"2048","used":"214","remaining":"1834","resetTime":"2026-01-09T15:23:13.716839300Z"},
            "limits":[
              {"window":{"duration":300,"timeUnit":"TIME_UNIT_MINUTE"},
               "detail":{"limit":"200","used":"50","reset_at":1767706382}},
              {"window":{"duration":"1","timeUnit":"DAY"},
               "detail":{"limit":100,"remaining":"0","resetAt":"1767706382000"}}
            ]}"#;
        let quota = parse_usage(body).unwrap();
        assert_eq!(
            quota.windows,
            [
                QuotaWindow {
                    model: None,
                    name: "weekly".to_owned(),
                    limit: 2048.0,
                    remaining: 1834.0,
                    resets_at: Some(1_767_972_193_716),
                },
                QuotaWindow {
                    model: None,
                    name: "5h".to_owned(),
                    limit: 200.0,
                    remaining: 150.0,
                    resets_at: Some(1_767_706_382_000),
                },
                QuotaWindow {
                    model: None,
                    name: "1d".to_owned(),
                    limit: 100.0,
                    remaining: 0.0,
                    resets_at: Some(1_767_706_382_000),
                },
            ]
        );
        assert_eq!(quota.exhausted_until(), Some(1_767_706_382_000));
    }

    #[test]
    fn tolerates_missing_parts() {
        assert_eq!(parse_usage(b"{}").unwrap(), Quota::default());
        let quota = parse_usage(br#"{"usage":{"limit":"10"}}"#).unwrap();
        assert!(quota.windows.is_empty());
        assert!(parse_usage(b"[]").is_err());
    }
}
