//! Quota at a glance: per provider, how many accounts can answer now,
//! when the next resting one is back, which models rest on which accounts,
//! and each quota window summed over the accounts that report it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::AccountStatus;
use crate::{Engine, StoreError};

/// One provider's quota.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProviderQuota {
    /// The provider entry.
    pub provider: String,
    /// Accounts that may take traffic (enabled and served).
    pub accounts: usize,
    /// Of those, the ones with no rest on the whole account.
    pub ready: usize,
    /// When the first resting account is back, Unix milliseconds.
    pub next_ready_at: Option<i64>,
    /// Models resting on some accounts (rate limits and quotas of one
    /// model).
    pub model_rests: Vec<ModelRest>,
    /// Each quota window the accounts report, summed.
    pub windows: Vec<WindowTotal>,
}

/// A model resting on some of a provider's accounts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelRest {
    /// The model.
    pub model: String,
    /// On how many accounts.
    pub accounts: usize,
    /// When it is back on the first of them, Unix milliseconds.
    pub until: i64,
}

/// One quota window summed over a provider's accounts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WindowTotal {
    /// What it counts (`five_hour`, `monthly`, a model…).
    pub window: String,
    /// How many accounts report it.
    pub accounts: usize,
    /// The allowance, summed.
    pub limit: f64,
    /// What is left, summed.
    pub remaining: f64,
    /// The soonest refill, Unix milliseconds.
    pub next_reset_at: Option<i64>,
}

impl Engine {
    /// The quota of every configured provider with accounts, in config
    /// order.
    pub async fn quota_overview(&self) -> Result<Vec<ProviderQuota>, StoreError> {
        let accounts = self.all_accounts().await?;
        let providers = self.inner.entries.iter().map(|entry| entry.name.as_str());
        Ok(overview(providers, &accounts))
    }
}

/// Sums `accounts` per provider, for each of `providers` in order that
/// has any.
fn overview<'a>(
    providers: impl Iterator<Item = &'a str>,
    accounts: &[AccountStatus],
) -> Vec<ProviderQuota> {
    providers
        .filter(|provider| accounts.iter().any(|account| account.provider == *provider))
        .map(|provider| {
            let serving: Vec<&AccountStatus> = accounts
                .iter()
                .filter(|account| {
                    account.provider == provider
                        && !matches!(account.state, "disabled" | "inactive")
                })
                .collect();
            let next_ready_at = serving
                .iter()
                .flat_map(|account| &account.rests)
                .filter(|rest| rest.model.is_empty())
                .map(|rest| rest.until)
                .min();
            ProviderQuota {
                provider: provider.to_owned(),
                accounts: serving.len(),
                ready: serving
                    .iter()
                    .filter(|account| account.state == "ready")
                    .count(),
                next_ready_at,
                model_rests: model_rests(&serving),
                windows: windows(&serving),
            }
        })
        .collect()
}

/// The per-model rests of `accounts`, by model name.
fn model_rests(accounts: &[&AccountStatus]) -> Vec<ModelRest> {
    let mut rests: Vec<ModelRest> = Vec::new();
    for rest in accounts
        .iter()
        .flat_map(|account| &account.rests)
        .filter(|rest| !rest.model.is_empty())
    {
        match rests.iter_mut().find(|known| known.model == rest.model) {
            Some(known) => {
                known.accounts += 1;
                known.until = known.until.min(rest.until);
            }
            None => rests.push(ModelRest {
                model: rest.model.clone(),
                accounts: 1,
                until: rest.until,
            }),
        }
    }
    rests.sort_by(|a, b| a.model.cmp(&b.model));
    rests
}

/// The windows of `accounts`, in the order first seen.
fn windows(accounts: &[&AccountStatus]) -> Vec<WindowTotal> {
    let mut totals: Vec<WindowTotal> = Vec::new();
    for quota in accounts.iter().flat_map(|account| &account.quota) {
        let index = match totals.iter().position(|total| total.window == quota.window) {
            Some(index) => index,
            None => {
                totals.push(WindowTotal {
                    window: quota.window.clone(),
                    accounts: 0,
                    limit: 0.0,
                    remaining: 0.0,
                    next_reset_at: None,
                });
                totals.len() - 1
            }
        };
        let total = &mut totals[index];
        total.accounts += 1;
        total.limit += quota.limit;
        total.remaining += quota.remaining;
        total.next_reset_at = match (total.next_reset_at, quota.resets_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    totals
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::accounts::QuotaStatus;
    use crate::health::RestInfo;

    fn account(
        provider: &str,
        state: &'static str,
        quota: &[(&str, f64, Option<i64>)],
    ) -> AccountStatus {
        AccountStatus {
            provider: provider.to_owned(),
            name: format!("{provider}-{state}"),
            id: format!("{provider}-{state}"),
            auth: "login",
            enabled: state != "disabled",
            state,
            expires_at: None,
            email: None,
            plan: None,
            linked: None,
            priority: 0,
            in_flight: 0,
            started: 0,
            rests: match state {
                "quota_exhausted" => vec![rest("", 9_000)],
                "ready" => vec![rest("small", 7_000), rest("large", 8_000)],
                _ => vec![rest("small", 6_000)],
            },
            quota: quota
                .iter()
                .map(|(window, remaining, resets_at)| QuotaStatus {
                    window: (*window).to_owned(),
                    limit: 100.0,
                    remaining: *remaining,
                    resets_at: *resets_at,
                })
                .collect(),
        }
    }

    fn rest(model: &str, until: i64) -> RestInfo {
        RestInfo {
            account_id: String::new(),
            model: model.to_owned(),
            state: "cooling_down",
            until,
            reason: String::new(),
            failures: 1,
        }
    }

    #[test]
    fn windows_are_summed_per_provider_over_the_accounts_that_serve() {
        let accounts = [
            account("claude", "ready", &[("five_hour", 60.0, Some(5_000))]),
            account(
                "claude",
                "quota_exhausted",
                &[("five_hour", 0.0, Some(3_000)), ("seven_day", 10.0, None)],
            ),
            account("claude", "disabled", &[("five_hour", 100.0, Some(1_000))]),
            account("codex", "cooling_down", &[]),
        ];
        // `kiro` has no account and is left out.
        let overview = overview(["claude", "codex", "kiro"].into_iter(), &accounts);
        assert_eq!(
            overview,
            vec![
                ProviderQuota {
                    provider: "claude".to_owned(),
                    accounts: 2,
                    ready: 1,
                    next_ready_at: Some(9_000),
                    model_rests: vec![
                        ModelRest {
                            model: "large".to_owned(),
                            accounts: 1,
                            until: 8_000,
                        },
                        ModelRest {
                            model: "small".to_owned(),
                            accounts: 1,
                            until: 7_000,
                        },
                    ],
                    windows: vec![
                        WindowTotal {
                            window: "five_hour".to_owned(),
                            accounts: 2,
                            limit: 200.0,
                            remaining: 60.0,
                            next_reset_at: Some(3_000),
                        },
                        WindowTotal {
                            window: "seven_day".to_owned(),
                            accounts: 1,
                            limit: 100.0,
                            remaining: 10.0,
                            next_reset_at: None,
                        },
                    ],
                },
                ProviderQuota {
                    provider: "codex".to_owned(),
                    accounts: 1,
                    ready: 0,
                    next_ready_at: None,
                    model_rests: vec![ModelRest {
                        model: "small".to_owned(),
                        accounts: 1,
                        until: 6_000,
                    }],
                    windows: vec![],
                },
            ]
        );
    }
}
