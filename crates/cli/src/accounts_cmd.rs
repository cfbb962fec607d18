//! `subgate accounts list | show | enable | disable | remove | refresh |
//! reset`, and `subgate logout`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use subgate_engine::{AccountStatus, QuotaStatus, RestInfo, now_millis};

use crate::args::AccountsCommand;
use crate::models_cmd::{with_engine, write_json, write_table};

/// The longest reason shown in the table, in characters.
const REASON_WIDTH: usize = 60;

pub(crate) fn run(config_file: Option<PathBuf>, command: &AccountsCommand) -> Result<()> {
    match command {
        AccountsCommand::List { json } => list(config_file, *json),
        AccountsCommand::Show { account, json } => show(config_file, &account.name, *json),
        AccountsCommand::Enable(account) => set_enabled(config_file, &account.name, true),
        AccountsCommand::Disable(account) => set_enabled(config_file, &account.name, false),
        AccountsCommand::Remove(account) => remove(config_file, &account.name),
        AccountsCommand::Refresh(account) => refresh(config_file, &account.name),
        AccountsCommand::Reset(account) => reset(config_file, &account.name),
        AccountsCommand::Priority { account, priority } => {
            let status = with_engine(config_file, async |engine| {
                Ok(engine
                    .set_account_priority(&account.name, *priority)
                    .await?)
            })?;
            writeln!(
                std::io::stdout().lock(),
                "{} now has priority {}; a running gateway uses it after a restart",
                label(&status),
                status.priority
            )
            .context("writing to stdout")
        }
    }
}

fn list(config_file: Option<PathBuf>, json: bool) -> Result<()> {
    let accounts = with_engine(config_file, async |engine| {
        engine.refresh_quotas().await;
        Ok(engine.all_accounts().await?)
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        return write_json(&mut out, &accounts);
    }
    if accounts.is_empty() {
        return writeln!(
            out,
            "no accounts yet: `subgate login claude|codex|copilot`, `subgate import`, or add a `[[providers]]` entry with API keys to the config (`subgate config init` writes an example)"
        )
        .context("writing to stdout");
    }
    let rows = table_rows(&accounts, now_millis());
    let rows: Vec<[&str; 7]> = rows
        .iter()
        .map(|row| row.each_ref().map(String::as_str))
        .collect();
    write_table(
        &mut out,
        [
            "PROVIDER", "ACCOUNT", "STATE", "EXPIRES", "UNTIL", "QUOTA", "REASON",
        ],
        &rows,
    )
}

/// One line per account, or one per rest of an account that rests; the
/// lines after an account's first leave its provider, name, expiry and
/// quota empty.
fn table_rows(accounts: &[AccountStatus], now: i64) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    for account in accounts {
        let quota = account
            .tightest_quota()
            .map_or_else(|| "-".to_owned(), describe_quota);
        let expires = expiry(account.expires_at, now);
        if account.rests.is_empty() {
            rows.push([
                account.provider.clone(),
                account.name.clone(),
                account.state.to_owned(),
                expires,
                "-".to_owned(),
                quota,
                "-".to_owned(),
            ]);
            continue;
        }
        let mut first = Some((
            account.provider.clone(),
            account.name.clone(),
            expires,
            quota,
        ));
        for rest in &account.rests {
            let (provider, name, expires, quota) = first.take().unwrap_or_default();
            let state = if rest.model.is_empty() {
                // A disabled or inactive account keeps that state.
                if account.state == "disabled" || account.state == "inactive" {
                    format!("{} ({})", account.state, rest.state)
                } else {
                    rest.state.to_owned()
                }
            } else {
                format!("{} (model {})", rest.state, rest.model)
            };
            rows.push([
                provider,
                name,
                state,
                expires,
                relative(rest.until, now),
                quota,
                shorten(&rest.reason),
            ]);
        }
    }
    rows
}

/// When a login's access token expires, from now: `in 59m12s`,
/// `expired`, or `-` (an API key, or a login that does not say).
fn expiry(expires_at: Option<i64>, now: i64) -> String {
    match expires_at {
        None => "-".to_owned(),
        Some(at) if at <= now => "expired".to_owned(),
        Some(at) => relative(at, now),
    }
}

fn show(config_file: Option<PathBuf>, name: &str, json: bool) -> Result<()> {
    let account = with_engine(config_file, async |engine| {
        engine.refresh_quotas().await;
        Ok(engine.account(name).await?)
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        return write_json(&mut out, &account);
    }
    write_details(&mut out, &details(&account, now_millis()))
}

/// Everything about one account as `key: value` lines; a key with several
/// values (quota windows, rests) has one line each, the key on the first.
fn details(account: &AccountStatus, now: i64) -> Vec<(&'static str, String)> {
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let auth = match account.auth {
        "api_key" => "API key, from the config file",
        "none" => "none (a keyless upstream), from the config file",
        "login" => "login, kept in the database",
        other => other,
    };
    let expires = match account.expires_at {
        None => "-".to_owned(),
        Some(at) => format!("{} ({})", expiry(Some(at), now), timestamp(at)),
    };
    let mut lines = vec![
        ("provider", account.provider.clone()),
        ("name", account.name.clone()),
        ("id", account.id.clone()),
        ("auth", auth.to_owned()),
        ("email", or_dash(account.email.as_deref())),
        ("plan", or_dash(account.plan.as_deref())),
        (
            "linked file",
            account
                .linked
                .as_ref()
                .map_or_else(|| "-".to_owned(), |path| path.display().to_string()),
        ),
        (
            "enabled",
            if account.enabled { "yes" } else { "no" }.to_owned(),
        ),
        ("state", account.state.to_owned()),
        ("expires", expires),
    ];
    let quota = account.quota.iter().map(|window| {
        let reset = window.resets_at.map_or_else(String::new, |at| {
            format!(", resets {} ({})", relative(at, now), timestamp(at))
        });
        format!("{}{reset}", describe_quota(window))
    });
    push_all(&mut lines, "quota", quota);
    let rests = account.rests.iter().map(|rest| describe_rest(rest, now));
    push_all(&mut lines, "rests", rests);
    lines.extend([
        ("in flight", account.in_flight.to_string()),
        ("started", account.started.to_string()),
        ("priority", account.priority.to_string()),
    ]);
    lines
}

/// Adds one line per value, the key on the first; `-` when there is none.
fn push_all(
    lines: &mut Vec<(&'static str, String)>,
    key: &'static str,
    values: impl Iterator<Item = String>,
) {
    let before = lines.len();
    for (index, value) in values.enumerate() {
        lines.push((if index == 0 { key } else { "" }, value));
    }
    if lines.len() == before {
        lines.push((key, "-".to_owned()));
    }
}

/// `cooling_down on model kimi-k2 until in 1m00s (…): rate limited (2
/// failures in a row)`.
fn describe_rest(rest: &RestInfo, now: i64) -> String {
    let scope = if rest.model.is_empty() {
        "the whole account".to_owned()
    } else {
        format!("model {}", rest.model)
    };
    let until = if rest.until == i64::MAX {
        "until reset".to_owned()
    } else {
        format!(
            "ends {} ({})",
            relative(rest.until, now),
            timestamp(rest.until)
        )
    };
    let failures = match rest.failures {
        0 | 1 => String::new(),
        n => format!(" ({n} failures in a row)"),
    };
    let reason = rest.reason.split_whitespace().collect::<Vec<_>>().join(" ");
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    format!("{} on {scope}, {until}{reason}{failures}", rest.state)
}

/// Writes `key: value` lines with the values aligned.
fn write_details(out: &mut impl Write, lines: &[(&str, String)]) -> Result<()> {
    let width = lines
        .iter()
        .map(|(key, _)| key.chars().count() + 1)
        .max()
        .unwrap_or(0);
    for (key, value) in lines {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}:")
        };
        writeln!(out, "{key:<width$}  {value}").context("writing to stdout")?;
    }
    Ok(())
}

/// Unix milliseconds as `2025-06-01 12:00:00 UTC`.
pub(crate) fn timestamp(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at).map_or_else(
        || at.to_string(),
        |time| time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// ``account `x` of provider `p` ``, as messages name an account.
fn label(account: &AccountStatus) -> String {
    format!(
        "account `{}` of provider `{}`",
        account.name, account.provider
    )
}

fn set_enabled(config_file: Option<PathBuf>, name: &str, enabled: bool) -> Result<()> {
    let before = with_engine(config_file, async |engine| {
        Ok(engine.set_account_enabled(name, enabled).await?)
    })?;
    let mut out = std::io::stdout().lock();
    let label = label(&before);
    match (before.enabled, enabled) {
        (true, true) => writeln!(out, "{label} is already enabled"),
        (false, false) => writeln!(out, "{label} is already disabled"),
        (false, true) => writeln!(
            out,
            "enabled {label}; a running `subgate serve` uses it after a restart"
        ),
        (true, false) => writeln!(
            out,
            "disabled {label}: its login is kept but takes no traffic (`subgate accounts enable {}` brings it back); a running `subgate serve` stops using it after a restart",
            before.name
        ),
    }
    .context("writing to stdout")
}

/// `subgate accounts remove NAME` and `subgate logout NAME`.
pub(crate) fn remove(config_file: Option<PathBuf>, name: &str) -> Result<()> {
    let removed = with_engine(config_file, async |engine| {
        Ok(engine.remove_account(name).await?)
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "removed {} (its stored login and health)",
        label(&removed)
    )?;
    if let Some(path) = &removed.linked {
        writeln!(
            out,
            "the linked file {} is left untouched: the CLI that owns it stays logged in",
            path.display()
        )?;
    }
    writeln!(
        out,
        "a running `subgate serve` stops using it after a restart"
    )
    .context("writing to stdout")
}

fn refresh(config_file: Option<PathBuf>, name: &str) -> Result<()> {
    let renewed = with_engine(config_file, async |engine| {
        Ok(engine.refresh_account(name).await?)
    })?;
    let mut out = std::io::stdout().lock();
    let expires = match renewed.expires_at {
        Some(at) => format!(
            "it expires {} ({})",
            expiry(Some(at), now_millis()),
            timestamp(at)
        ),
        None => "the provider did not say when it expires".to_owned(),
    };
    writeln!(out, "renewed the login of {}: {expires}", label(&renewed))?;
    if let Some(path) = &renewed.linked {
        writeln!(
            out,
            "the new tokens were written back to {}",
            path.display()
        )?;
    }
    Ok(())
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

    /// A Kimi API key resting as a whole and on one model, with two
    /// quota windows.
    fn kimi() -> AccountStatus {
        AccountStatus {
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
                    resets_at: Some(3_600_000),
                },
            ],
        }
    }

    /// A disabled Claude login, linked to Claude Code's file.
    fn claude() -> AccountStatus {
        AccountStatus {
            provider: "claude".to_owned(),
            name: "dev@example.com".to_owned(),
            id: "0190-abc".to_owned(),
            auth: "login",
            enabled: false,
            state: "disabled",
            expires_at: Some(3_600_000),
            email: Some("dev@example.com".to_owned()),
            plan: Some("max".to_owned()),
            linked: Some(PathBuf::from("/home/dev/.claude/.credentials.json")),
            priority: 1,
            in_flight: 0,
            started: 0,
            rests: Vec::new(),
            quota: Vec::new(),
        }
    }

    #[test]
    fn rests_get_a_line_each_and_the_tightest_quota_shows() {
        assert_eq!(
            table_rows(&[kimi(), claude()], 0),
            [
                [
                    "kimi",
                    "kimi#1",
                    "cooling_down",
                    "-",
                    "in 1m00s",
                    "weekly 1834/2048",
                    "rate limited"
                ],
                [
                    "",
                    "",
                    "cooling_down (model kimi-k2)",
                    "",
                    "in 1m00s",
                    "",
                    "rate limited"
                ],
                [
                    "claude",
                    "dev@example.com",
                    "disabled",
                    "in 1h00m",
                    "-",
                    "-",
                    "-"
                ],
            ]
            .map(|row| row.map(str::to_owned))
        );
    }

    #[test]
    fn expiry_reads_from_now() {
        assert_eq!(expiry(None, 0), "-");
        assert_eq!(expiry(Some(5), 5), "expired");
        assert_eq!(expiry(Some(90_000), 0), "in 1m30s");
    }

    fn shown(account: &AccountStatus) -> String {
        let mut out = Vec::new();
        write_details(&mut out, &details(account, 0)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn show_lists_every_field_and_every_window_and_rest() {
        assert_eq!(
            shown(&kimi()),
            "\
provider:     kimi
name:         kimi#1
id:           kimi-abc
auth:         API key, from the config file
email:        -
plan:         -
linked file:  -
enabled:      yes
state:        cooling_down
expires:      -
quota:        daily 90/100
              weekly 1834/2048, resets in 1h00m (1970-01-01 01:00:00 UTC)
rests:        cooling_down on the whole account, ends in 1m00s (1970-01-01 00:01:00 UTC): rate limited
              cooling_down on model kimi-k2, ends in 1m00s (1970-01-01 00:01:00 UTC): rate limited
in flight:    0
started:      0
priority:     0
"
        );
        assert_eq!(
            shown(&claude()),
            "\
provider:     claude
name:         dev@example.com
id:           0190-abc
auth:         login, kept in the database
email:        dev@example.com
plan:         max
linked file:  /home/dev/.claude/.credentials.json
enabled:      no
state:        disabled
expires:      in 1h00m (1970-01-01 01:00:00 UTC)
quota:        -
rests:        -
in flight:    0
started:      0
priority:     1
"
        );
    }
}
