//! Each provider's accounts as a pool: the order a strategy tries them in,
//! per-account concurrency caps and pacing, the quota each reported, and
//! session affinity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use subgate_config::Strategy;
use subgate_providers::{Provider, Quota, Rest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::health::HealthBook;

/// One account's live counters.
#[derive(Debug)]
struct Slot {
    in_flight: Arc<AtomicU32>,
    started: AtomicU64,
    permits: Option<Arc<Semaphore>>,
    /// With pacing: the earliest time the next request may start.
    next_start: Option<Mutex<Instant>>,
    quota: RwLock<Option<Quota>>,
}

/// One provider's accounts.
#[derive(Debug)]
pub(crate) struct Pool {
    slots: Vec<Slot>,
    strategy: Strategy,
    min_interval: Option<Duration>,
    cursor: AtomicU64,
}

/// The accounts to try for one target, best first, and what the resting
/// ones said.
#[derive(Debug, Default)]
pub(crate) struct Order {
    pub(crate) accounts: Vec<usize>,
    /// `(account, why, until)` for each account skipped as resting.
    pub(crate) resting: Vec<(usize, Rest, i64)>,
}

/// An account taken for one request: holds its concurrency permit and
/// in-flight count until dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) account: usize,
    in_flight: Arc<AtomicU32>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    pub(crate) fn new(provider: &Provider) -> Self {
        let pool = provider.pool();
        let slots = provider
            .accounts()
            .iter()
            .map(|_| Slot {
                in_flight: Arc::new(AtomicU32::new(0)),
                started: AtomicU64::new(0),
                permits: pool
                    .max_concurrency
                    .map(|cap| Arc::new(Semaphore::new(cap as usize))),
                next_start: pool.min_interval.map(|_| Mutex::new(Instant::now())),
                quota: RwLock::new(None),
            })
            .collect();
        Self {
            slots,
            strategy: pool.strategy,
            min_interval: pool.min_interval,
            cursor: AtomicU64::new(0),
        }
    }

    /// The accounts of `provider` that can serve `model` now, in the
    /// strategy's order; `sticky` (the conversation's account) first when
    /// it can serve.
    pub(crate) fn order(
        &self,
        provider: &Provider,
        model: &str,
        health: &HealthBook,
        sticky: Option<usize>,
        now: i64,
    ) -> Order {
        let accounts = provider.accounts();
        let mut order = Order::default();
        for (index, account) in accounts.iter().enumerate() {
            match health.resting(&account.id, model, now) {
                Some((rest, until)) => order.resting.push((index, rest, until)),
                None => order.accounts.push(index),
            }
        }
        let ready = &mut order.accounts;
        match self.strategy {
            Strategy::FillFirst => {}
            Strategy::Priority => {
                // The best tier first, in turn within a tier; the others in
                // priority order.
                ready.sort_by_key(|&index| accounts[index].priority);
                let best = ready.first().map(|&index| accounts[index].priority);
                let tier = ready
                    .iter()
                    .take_while(|&&index| Some(accounts[index].priority) == best)
                    .count();
                if tier > 1 {
                    let turn = self.turn(tier);
                    ready[..tier].rotate_left(turn);
                }
            }
            Strategy::RoundRobin => {
                if !ready.is_empty() {
                    let turn = self.turn(ready.len());
                    ready.rotate_left(turn);
                }
            }
            Strategy::LeastUsed => ready.sort_by_key(|&index| {
                let slot = &self.slots[index];
                (
                    slot.in_flight.load(Ordering::Acquire),
                    slot.started.load(Ordering::Relaxed),
                )
            }),
            Strategy::QuotaAware => {
                // Most left first, then the soonest reset; accounts that
                // report nothing after those that do.
                let mut keyed: Vec<((f64, i64), usize)> = ready
                    .iter()
                    .map(|&index| (self.quota_key(index), index))
                    .collect();
                keyed.sort_by(|((left_a, reset_a), _), ((left_b, reset_b), _)| {
                    left_b.total_cmp(left_a).then(reset_a.cmp(reset_b))
                });
                *ready = keyed.into_iter().map(|(_, index)| index).collect();
            }
        }
        if let Some(sticky) = sticky
            && let Some(position) = ready.iter().position(|&index| index == sticky)
        {
            ready[..=position].rotate_right(1);
        }
        order
    }

    /// Whose turn it is among `count` accounts.
    fn turn(&self, count: usize) -> usize {
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed);
        usize::try_from(turn % count as u64).unwrap_or(0)
    }

    /// `(share left, reset)` of an account's tightest quota window;
    /// `(-1, MAX)` when it reports none.
    fn quota_key(&self, index: usize) -> (f64, i64) {
        let quota = self.slots[index]
            .quota
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        quota
            .as_ref()
            .and_then(Quota::tightest)
            .map_or((-1.0, i64::MAX), |window| {
                (window.left(), window.resets_at.unwrap_or(i64::MAX))
            })
    }

    /// Notes the quota an account reported.
    pub(crate) fn set_quota(&self, index: usize, quota: Quota) {
        if let Some(slot) = self.slots.get(index) {
            *slot
                .quota
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(quota);
        }
    }

    /// The quota an account last reported.
    pub(crate) fn quota(&self, index: usize) -> Option<Quota> {
        self.slots.get(index).and_then(|slot| {
            slot.quota
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// How long until the tightest window of the account's last quota
    /// report refills, if it named a reset still ahead.
    pub(crate) fn quota_reset(&self, index: usize, now: i64) -> Option<Duration> {
        let until = self.quota(index)?.tightest()?.resets_at?;
        u64::try_from(until - now)
            .ok()
            .filter(|&millis| millis > 0)
            .map(Duration::from_millis)
    }

    /// Requests in flight and started on an account.
    pub(crate) fn load(&self, index: usize) -> (u32, u64) {
        self.slots.get(index).map_or((0, 0), |slot| {
            (
                slot.in_flight.load(Ordering::Acquire),
                slot.started.load(Ordering::Relaxed),
            )
        })
    }

    /// Takes the first account of `candidates` that is free now (under its
    /// concurrency cap, and its pacing interval passed); when none is,
    /// waits for the first one, until `deadline`. The account taken leaves
    /// `candidates`.
    pub(crate) async fn lease(
        &self,
        candidates: &mut Vec<usize>,
        deadline: Instant,
    ) -> Option<Lease> {
        for position in 0..candidates.len() {
            let index = candidates[position];
            if let Some(lease) = self.try_lease(index) {
                candidates.remove(position);
                return Some(lease);
            }
        }
        let index = *candidates.first()?;
        candidates.remove(0);
        let slot = &self.slots[index];
        let permit = match &slot.permits {
            Some(permits) => {
                let acquire = permits.clone().acquire_owned();
                Some(
                    tokio::time::timeout_at(deadline, acquire)
                        .await
                        .ok()?
                        .ok()?,
                )
            }
            None => None,
        };
        if let Some(start) = self.reserve_start(slot) {
            if start > deadline {
                return None;
            }
            tokio::time::sleep_until(start).await;
        }
        Some(self.leased(index, permit))
    }

    fn try_lease(&self, index: usize) -> Option<Lease> {
        let slot = &self.slots[index];
        if let Some(next_start) = &slot.next_start
            && *next_start
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                > Instant::now()
        {
            return None;
        }
        let permit = match &slot.permits {
            Some(permits) => Some(permits.clone().try_acquire_owned().ok()?),
            None => None,
        };
        // Another request may have taken the pacing slot meanwhile; then
        // this one waits its interval (the permit is already held).
        if let Some(start) = self.reserve_start(slot)
            && start > Instant::now()
        {
            drop(permit);
            return None;
        }
        Some(self.leased(index, permit))
    }

    /// Books the next start on a paced account; returns when this request
    /// may start.
    fn reserve_start(&self, slot: &Slot) -> Option<Instant> {
        let (next_start, interval) = (slot.next_start.as_ref()?, self.min_interval?);
        let mut next = next_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = (*next).max(Instant::now());
        *next = start + interval;
        Some(start)
    }

    fn leased(&self, index: usize, permit: Option<OwnedSemaphorePermit>) -> Lease {
        let slot = &self.slots[index];
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        slot.started.fetch_add(1, Ordering::Relaxed);
        Lease {
            account: index,
            in_flight: slot.in_flight.clone(),
            _permit: permit,
        }
    }
}

/// Which account each conversation is on, per provider.
#[derive(Debug)]
pub(crate) struct Affinity {
    bindings: Mutex<HashMap<(u64, usize), (usize, Instant)>>,
    ttl: Duration,
}

/// Most conversations remembered; past it, ended bindings are swept.
const MAX_BINDINGS: usize = 100_000;

impl Affinity {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            bindings: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, usize), (usize, Instant)>> {
        self.bindings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account conversation `key` is on at `provider`, if it is bound
    /// and its binding has not expired.
    pub(crate) fn get(&self, key: u64, provider: usize) -> Option<usize> {
        let bindings = self.lock();
        let (account, at) = bindings.get(&(key, provider))?;
        (at.elapsed() < self.ttl).then_some(*account)
    }

    /// Binds (or refreshes) conversation `key` at `provider` to `account`.
    pub(crate) fn bind(&self, key: u64, provider: usize, account: usize) {
        let mut bindings = self.lock();
        if bindings.len() >= MAX_BINDINGS {
            let ttl = self.ttl;
            bindings.retain(|_, (_, at)| at.elapsed() < ttl);
            if bindings.len() >= MAX_BINDINGS {
                bindings.clear();
            }
        }
        bindings.insert((key, provider), (account, Instant::now()));
    }
}
