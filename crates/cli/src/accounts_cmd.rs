//! `subgate accounts list | reset`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use subgate_engine::{AccountStatus, QuotaStatus};

use crate::args::AccountsCommand;
use crate::models_cmd::{with_engine, write_json, write_table};

/// The longest reason shown in the table, in characters.
const REASON_WIDTH: usize = 60;

pub(crate) fn run(config_file: Option<PathBuf>, command: &AccountsCommand) -> Result<()> {
    match command {
        AccountsCommand::List { json } => list(config_file, *json),
        AccountsCommand::Reset { name } => reset(config_file, name),
    }
}

fn list(config_file: Option<PathBuf>, json: bool) -> Result<()> {
    let accounts = with_engine(config_file, async |engine| {
        engine.refresh_quotas().await;
        Ok(engine.accounts())
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        return write_json(&mut out, &accounts);
    }
    if accounts.is_empty() {
        return writeln!(
            out,
            "no accounts yet: `subgate login claude`, `subgate import`, or add a `[[providers]]` entry with API keys to the config (`subgate config init` writes an example)"
        )
        .context("writing to stdout");
    }
    let rows = table_rows(&accounts, now_millis());
    let rows: Vec<[&str; 6]> = rows
        .iter()
        .map(|row| row.each_ref().map(String::as_str))
        .collect();
    write_table(
        &mut out,
        ["PROVIDER", "ACCOUNT", "STATE", "UNTIL", "QUOTA", "REASON"],
        &rows,
    )
}

/// One line per account, or one per rest of an account that rests; the
/// lines after an account's first leave its provider, name and quota
/// empty.
fn table_rows(accounts: &[AccountStatus], now: i64) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for account in accounts {
        let quota = account
            .tightest_quota()
            .map_or_else(|| "-".to_owned(), describe_quota);
        if account.rests.is_empty() {
            rows.push([
                account.provider.clone(),
                account.name.clone(),
                account.state.to_owned(),
                "-".to_owned(),
                quota,
                "-".to_owned(),
            ]);
            continue;
        }
        let mut first = Some((account.provider.clone(), account.name.clone(), quota));
        for rest in &account.rests {
            let (provider, name, quota) = first.take().unwrap_or_default();
            let state = if rest.model.is_empty() {
                rest.state.to_owned()
            } else {
                format!("{} (model {})", rest.state, rest.model)
            };
            rows.push([
                provider,
                name,
                state,
                relative(rest.until, now),
                quota,
                shorten(&rest.reason),
            ]);
        }
    }
    rows
}

/// `weekly 1834/2048`.
fn describe_quota(window: &QuotaStatus) -> String {
    // At most two decimals, and none for whole numbers.
    let number = |value: f64| (value * 100.0).round() / 100.0;
    format!(
        "{} {}/{}",
        window.window,
        number(window.remaining),
        number(window.limit)
    )
}

/// How long until `until` (Unix ms), e.g. `in 4m12s`.
fn relative(until: i64, now: i64) -> String {
    if until == i64::MAX {
        // Stored without an end: it lasts until someone resets it.
        return "until reset".to_owned();
    }
    let left = until.saturating_sub(now);
    if left <= 0 {
        return "now".to_owned();
    }
    let seconds = left.saturating_add(999) / 1000;
    let (days, hours, minutes, seconds) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if days > 0 {
        format!("in {days}d{hours}h")
    } else if hours > 0 {
        format!("in {hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("in {minutes}m{seconds:02}s")
    } else {
        format!("in {seconds}s")
    }
}

/// The reason on one line, cut to [`REASON_WIDTH`] characters.
fn shorten(reason: &str) -> String {
    let line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "-".to_owned();
    }
    if line.chars().count() <= REASON_WIDTH {
        return line;
    }
    let mut cut: String = line.chars().take(REASON_WIDTH - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn reset(config_file: Option<PathBuf>, name: &str) -> Result<()> {
    let (label, cleared) = with_engine(config_file, async |engine| {
        Ok(engine.reset_account(name).await?)
    })?;
    let mut out = std::io::stdout().lock();
    match cleared {
        0 => writeln!(out, "{label} had no rests"),
        1 => writeln!(
            out,
            "cleared 1 rest of {label}; a running gateway picks this up within 5 s"
        ),
        n => writeln!(
            out,
            "cleared {n} rests of {label}; a running gateway picks this up within 5 s"
        ),
    }
    .context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use subgate_engine::RestInfo;

    use super::*;

    #[test]
    fn times_read_as_from_now() {
        let now = 1_000_000;
        assert_eq!(relative(now + 252_000, now), "in 4m12s");
        assert_eq!(relative(now + 1, now), "in 1s");
        assert_eq!(relative(now + 3_900_000, now), "in 1h05m");
        assert_eq!(relative(now + 2 * 86_400_000 + 7_200_000, now), "in 2d2h");
        assert_eq!(relative(now - 5, now), "now");
        assert_eq!(relative(i64::MAX, now), "until reset");
    }

    #[test]
    fn reasons_fit_one_line() {
        assert_eq!(shorten(""), "-");
        assert_eq!(shorten("slow\n  down"), "slow down");
        let long = "x".repeat(100);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), REASON_WIDTH);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn rests_get_a_line_each_and_the_tightest_quota_shows() {
        let account = AccountStatus {
            provider: "kimi".to_owned(),
            name: "kimi#1".to_owned(),
            id: "kimi-abc".to_owned(),
            auth: "api_key",
            enabled: true,
            state: "cooling_down",
            expires_at: None,
            email: None,
            plan: None,
            linked: None,
            priority: 0,
            in_flight: 0,
            started: 0,
            rests: ["", "kimi-k2"]
                .map(|model| RestInfo {
                    account_id: "kimi-abc".to_owned(),
                    model: model.to_owned(),
                    state: "cooling_down",
                    until: 60_000,
                    reason: "rate limited".to_owned(),
                    failures: 1,
                })
                .into(),
            quota: vec![
                QuotaStatus {
                    window: "daily".to_owned(),
                    limit: 100.0,
                    remaining: 90.0,
                    resets_at: None,
                },
                QuotaStatus {
                    window: "weekly".to_owned(),
                    limit: 2048.0,
                    remaining: 1834.0,
                    resets_at: None,
                },
            ],
        };
        assert_eq!(
            table_rows(&[account], 0),
            [
                [
                    "kimi",
                    "kimi#1",
                    "cooling_down",
                    "in 1m00s",
                    "weekly 1834/2048",
                    "rate limited"
                ],
                [
                    "",
                    "",
                    "cooling_down (model kimi-k2)",
                    "in 1m00s",
                    "",
                    "rate limited"
                ],
            ]
            .map(|row| row.map(str::to_owned))
        );
    }
}
