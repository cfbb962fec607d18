//! `subgate keys create | list | show | revoke | rotate`, and `subgate
//! usage`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use subgate_engine::{
    BudgetPeriod, IssuedKey, KeyInfo, KeyLimits, KeyScopes, NewKey, UsageGroup, UsageLine,
    now_millis,
};

use crate::accounts_cmd::timestamp;
use crate::args::{KeysCommand, UsageArgs};
use crate::models_cmd::{with_engine, write_json, write_table};

pub(crate) fn run(config_file: Option<PathBuf>, command: &KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create {
            name,
            models,
            providers,
            accounts,
            expires,
            rpm,
            tpm,
            concurrency,
            budget_usd,
            budget_period,
            json,
        } => {
            let expires_at = expires.map(|span| {
                now_millis().saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
            });
            let new = NewKey {
                name: name.clone(),
                scopes: KeyScopes {
                    models: models.clone(),
                    providers: providers.clone(),
                    accounts: accounts.clone(),
                },
                limits: KeyLimits {
                    rpm: *rpm,
                    tpm: *tpm,
                    concurrency: *concurrency,
                    budget_usd: *budget_usd,
                    budget_period: budget_usd.map(|_| match budget_period.as_str() {
                        "day" => BudgetPeriod::Day,
                        "week" => BudgetPeriod::Week,
                        _ => BudgetPeriod::Month,
                    }),
                },
                expires_at,
            };
            let issued = with_engine(config_file, async |engine| {
                Ok(engine.create_key(new).await?)
            })?;
            print_issued(&issued, *json, "made")
        }
        KeysCommand::List { json } => list(config_file, *json),
        KeysCommand::Show { name, json } => {
            let key = with_engine(config_file, async |engine| Ok(engine.key(name).await?))?;
            let mut out = std::io::stdout().lock();
            if *json {
                return write_json(&mut out, &key);
            }
            write_lines(&mut out, &key)
        }
        KeysCommand::Revoke { name } => {
            let key = with_engine(config_file, async |engine| {
                Ok(engine.revoke_key(name).await?)
            })?;
            writeln!(
                std::io::stdout().lock(),
                "Revoked key `{}` ({}…).",
                key.name,
                key.prefix
            )
            .context("writing to stdout")
        }
        KeysCommand::Rotate { name, json } => {
            let issued = with_engine(config_file, async |engine| {
                Ok(engine.rotate_key(name).await?)
            })?;
            print_issued(&issued, *json, "rotated; the old secret no longer works")
        }
    }
}

fn print_issued(issued: &IssuedKey, json: bool, what: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(&issued.key).context("writing the key")?;
        value["secret"] = serde_json::Value::from(issued.secret.clone());
        return write_json(&mut out, &value);
    }
    writeln!(
        out,
        "Key `{}` {what}. Its secret, shown only now:\n\n  {}\n",
        issued.key.name, issued.secret
    )
    .context("writing to stdout")
}

fn list(config_file: Option<PathBuf>, json: bool) -> Result<()> {
    let keys = with_engine(config_file, async |engine| Ok(engine.keys().await?))?;
    let mut out = std::io::stdout().lock();
    if json {
        return write_json(&mut out, &keys);
    }
    if keys.is_empty() {
        return writeln!(
            out,
            "no keys yet: `subgate keys create --name NAME` makes one (client requests need a key from then on)"
        )
        .context("writing to stdout");
    }
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|key| {
            [
                key.name.clone(),
                format!("{}…", key.prefix),
                key.state.to_owned(),
                scope_text(&key.scopes),
                key.expires_at.map_or_else(|| "-".to_owned(), timestamp),
                key.last_used_at.map_or_else(|| "-".to_owned(), timestamp),
            ]
        })
        .collect();
    let rows: Vec<[&str; 6]> = rows
        .iter()
        .map(|row| row.each_ref().map(String::as_str))
        .collect();
    write_table(
        &mut out,
        ["NAME", "KEY", "STATE", "SCOPES", "EXPIRES", "LAST USED"],
        &rows,
    )
}

/// `subgate admin token`.
pub(crate) fn admin_token(config_file: Option<PathBuf>) -> Result<()> {
    let config = crate::config_cmd::load_config(config_file, Vec::new())?;
    let token = subgate_engine::admin_token(&config.storage.data_dir).with_context(|| {
        format!(
            "reading or making the admin token in {}",
            config.storage.data_dir.display()
        )
    })?;
    writeln!(std::io::stdout().lock(), "{token}").context("writing to stdout")
}

pub(crate) fn usage(config_file: Option<PathBuf>, args: &UsageArgs) -> Result<()> {
    let since = subgate_engine::since(&args.since, now_millis()).map_err(anyhow::Error::msg)?;
    let by = match args.by.as_str() {
        "model" => UsageGroup::Model,
        "account" => UsageGroup::Account,
        "provider" => UsageGroup::Provider,
        "day" => UsageGroup::Day,
        _ => UsageGroup::Key,
    };
    let lines = with_engine(config_file, async |engine| {
        Ok(engine.usage_report(since, by).await?)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        return write_json(&mut out, &lines);
    }
    if lines.is_empty() {
        return writeln!(out, "no requests recorded since {}", timestamp(since))
            .context("writing to stdout");
    }
    let mut total = UsageLine {
        group: "total".to_owned(),
        ..UsageLine::default()
    };
    let mut rows: Vec<[String; 8]> = Vec::with_capacity(lines.len() + 1);
    for line in &lines {
        total.cost_usd += line.cost_usd;
        for model in &line.unpriced_models {
            if !total.unpriced_models.contains(model) {
                total.unpriced_models.push(model.clone());
            }
        }
        total.requests += line.requests;
        total.failures += line.failures;
        total.input_tokens += line.input_tokens;
        total.output_tokens += line.output_tokens;
        total.cache_read_tokens += line.cache_read_tokens;
        total.cache_write_tokens += line.cache_write_tokens;
        rows.push(usage_row(line));
    }
    rows.push(usage_row(&total));
    let rows: Vec<[&str; 8]> = rows
        .iter()
        .map(|row| row.each_ref().map(String::as_str))
        .collect();
    write_table(
        &mut out,
        [
            args.by.to_uppercase().as_str(),
            "REQUESTS",
            "FAILED",
            "INPUT",
            "OUTPUT",
            "CACHE READ",
            "CACHE WRITE",
            "COST",
        ],
        &rows,
    )?;
    if !total.unpriced_models.is_empty() {
        writeln!(
            out,
            "\n* no price known for {}: their tokens cost nothing above (`[pricing] file` can add prices)",
            total.unpriced_models.join(", ")
        )
        .context("writing to stdout")?;
    }
    Ok(())
}

fn usage_row(line: &UsageLine) -> [String; 8] {
    [
        line.group.clone(),
        line.requests.to_string(),
        line.failures.to_string(),
        line.input_tokens.to_string(),
        line.output_tokens.to_string(),
        line.cache_read_tokens.to_string(),
        line.cache_write_tokens.to_string(),
        format!(
            "${:.2}{}",
            line.cost_usd,
            if line.unpriced_models.is_empty() {
                ""
            } else {
                "*"
            }
        ),
    ]
}

/// `models=claude-* providers=kiro`, or `all`.
fn scope_text(scopes: &KeyScopes) -> String {
    let parts: Vec<String> = [
        ("models", &scopes.models),
        ("providers", &scopes.providers),
        ("accounts", &scopes.accounts),
    ]
    .into_iter()
    .filter(|(_, list)| !list.is_empty())
    .map(|(what, list)| format!("{what}={}", list.join(",")))
    .collect();
    if parts.is_empty() {
        "all".to_owned()
    } else {
        parts.join(" ")
    }
}

/// `rpm=60 concurrency=2`, or `none`.
fn limit_text(limits: &KeyLimits) -> String {
    let parts: Vec<String> = [
        ("rpm", limits.rpm.map(u64::from)),
        ("tpm", limits.tpm),
        ("concurrency", limits.concurrency.map(u64::from)),
    ]
    .into_iter()
    .filter_map(|(what, value)| Some(format!("{what}={}", value?)))
    .chain(limits.budget_usd.map(|budget| {
        let period = match limits.budget_period {
            Some(BudgetPeriod::Day) => "day",
            Some(BudgetPeriod::Week) => "week",
            Some(BudgetPeriod::Month) | None => "month",
        };
        format!("budget=${budget:.2}/{period}")
    }))
    .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" ")
    }
}

fn write_lines(out: &mut impl Write, key: &KeyInfo) -> Result<()> {
    let when = |at: Option<i64>| at.map_or_else(|| "-".to_owned(), timestamp);
    let lines = [
        ("name", key.name.clone()),
        ("id", key.id.clone()),
        ("key", format!("{}…", key.prefix)),
        ("state", key.state.to_owned()),
        ("scopes", scope_text(&key.scopes)),
        ("limits", limit_text(&key.limits)),
        ("created", timestamp(key.created_at)),
        ("expires", when(key.expires_at)),
        ("revoked", when(key.revoked_at)),
        ("last used", when(key.last_used_at)),
    ];
    for (label, value) in lines {
        writeln!(out, "{label}: {value}").context("writing to stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_one_line() {
        assert_eq!(scope_text(&KeyScopes::default()), "all");
        let scopes = KeyScopes {
            models: vec!["claude-*".to_owned(), "gpt-5".to_owned()],
            providers: Vec::new(),
            accounts: vec!["work".to_owned()],
        };
        assert_eq!(scope_text(&scopes), "models=claude-*,gpt-5 accounts=work");
        let limits = KeyLimits {
            rpm: Some(60),
            concurrency: Some(2),
            ..KeyLimits::default()
        };
        assert_eq!(limit_text(&limits), "rpm=60 concurrency=2");
        assert_eq!(limit_text(&KeyLimits::default()), "none");
    }
}
