//! Metering: one usage record per request, written off the request path.
//!
//! Each request carries a [`Meter`]. When the request ends (answered,
//! failed, or dropped because the client went away) the meter turns into a
//! record and hands it to a channel; a background writer stores records in
//! batches. Nothing on the request path waits for the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use subgate_core::{Dialect, FailureClass, RequestId, Usage, Wire};
use subgate_store::{Store, UsageRow};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::now_millis;
use crate::keys::{ClientKey, KeyMeter};
use crate::pricing::{PriceTable, Prices};

/// Most records stored in one batch.
const BATCH: usize = 512;

/// How long the writer waits for more records after the first of a batch.
/// A record is stored at most this late (and at once at shutdown).
const GATHER: Duration = Duration::from_millis(100);

/// The sending side of the usage channel, and the count of meters alive.
#[derive(Debug, Clone)]
pub(crate) struct UsageSink {
    records: mpsc::UnboundedSender<UsageRow>,
    in_flight: Arc<InFlight>,
}

#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl UsageSink {
    /// A sink and the receiver its writer drains.
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<UsageRow>) {
        let (records, receiver) = mpsc::unbounded_channel();
        (
            Self {
                records,
                in_flight: Arc::default(),
            },
            receiver,
        )
    }

    /// Waits until no request is in flight, or `limit` passes. Returns how
    /// many are still in flight.
    pub(crate) async fn wait_idle(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let idle = self.in_flight.idle.notified();
            let count = self.in_flight.count.load(Ordering::Acquire);
            if count == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight.count.load(Ordering::Acquire);
            }
        }
    }
}

/// The record of one request in progress.
#[derive(Debug)]
pub(crate) struct Meter {
    sink: UsageSink,
    row: Option<UsageRow>,
    started: Instant,
    /// The client key the request came with: what it is charged.
    key: Option<KeyCharge>,
}

/// Where a request's tokens and cost are counted for its key.
#[derive(Debug)]
struct KeyCharge {
    meter: Arc<KeyMeter>,
    /// The budget period the request started in (keys with a budget).
    period: Option<i64>,
    /// The prices, for keys with a budget.
    prices: Option<Arc<PriceTable>>,
}

impl Meter {
    pub(crate) fn new(sink: &UsageSink, id: RequestId, dialect: Dialect) -> Self {
        sink.in_flight.count.fetch_add(1, Ordering::AcqRel);
        Self {
            sink: sink.clone(),
            row: Some(UsageRow {
                id: id.to_string(),
                at: now_millis(),
                client_dialect: dialect.as_str().to_owned(),
                ..UsageRow::default()
            }),
            started: Instant::now(),
            key: None,
        }
    }

    /// Moves the record into a new meter, for a stream that outlives the
    /// call that made it; this one is left empty.
    pub(crate) fn take(&mut self) -> Self {
        Self {
            sink: self.sink.clone(),
            row: self.row.take(),
            started: self.started,
            key: self.key.take(),
        }
    }

    /// Notes what the client asked for, and with which key (whose meter
    /// then counts the request's tokens and, for a budget, its cost).
    pub(crate) fn request(
        &mut self,
        model: &str,
        stream: bool,
        key: Option<&ClientKey>,
        prices: &Prices,
    ) {
        if let Some(row) = &mut self.row {
            model.clone_into(&mut row.model);
            row.stream = stream;
            row.client_key_id = key.map(|key| key.id.clone());
        }
        self.key = key.map(|key| {
            let period = key.budget_period(now_millis());
            KeyCharge {
                meter: key.meter().clone(),
                prices: period.map(|_| prices.table()),
                period,
            }
        });
    }

    /// Notes where the request went.
    pub(crate) fn route(
        &mut self,
        provider: &str,
        account_id: &str,
        account_name: &str,
        upstream_model: &str,
        upstream: Wire,
    ) {
        if let Some(row) = &mut self.row {
            row.provider = Some(provider.to_owned());
            row.account_id = Some(account_id.to_owned());
            row.account_name = Some(account_name.to_owned());
            row.upstream_model = Some(upstream_model.to_owned());
            row.upstream_dialect = Some(upstream.as_str().to_owned());
        }
    }

    /// Notes that the first byte of the answer went out.
    pub(crate) fn first_byte(&mut self) {
        if let Some(row) = &mut self.row
            && row.first_token_ms.is_none()
        {
            row.first_token_ms = Some(millis(self.started.elapsed()));
        }
    }

    /// Ends the record with the client's status, the usage the upstream
    /// reported, and why it failed if it did.
    pub(crate) fn finish(
        &mut self,
        status: u16,
        usage: Option<Usage>,
        failure: Option<FailureClass>,
    ) {
        let Some(mut row) = self.row.take() else {
            return;
        };
        row.latency_ms = millis(self.started.elapsed());
        row.status = i64::from(status);
        row.error_class = failure.map(|class| class.as_str().to_owned());
        row.usage_reported = usage.is_some();
        let usage = usage.unwrap_or_default();
        row.input_tokens = tokens(usage.input_tokens);
        row.output_tokens = tokens(usage.output_tokens);
        row.cache_read_tokens = tokens(usage.cache_read_tokens);
        row.cache_write_tokens = tokens(usage.cache_write_tokens);
        row.reasoning_tokens = tokens(usage.reasoning_tokens);
        if let Some(key) = &self.key {
            key.meter.add_tokens(
                now_millis(),
                usage.input_tokens.saturating_add(usage.output_tokens),
            );
            let model = row.upstream_model.as_deref().unwrap_or(&row.model);
            if let Some(price) = key.prices.as_ref().and_then(|prices| prices.price(model)) {
                key.meter.add_spend(key.period, price.cost(&usage));
            }
        }
        log_finished(&row);
        if self.sink.records.send(row).is_err() {
            tracing::error!("Usage record lost: the usage writer has stopped.");
        }
        if self.sink.in_flight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.sink.in_flight.idle.notify_waiters();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // A meter dropped before `finish` belongs to a request whose client
        // went away (its future or stream was dropped). 499 is nginx's
        // "client closed request".
        self.finish(499, None, Some(FailureClass::ClientCancelled));
    }
}

fn log_finished(row: &UsageRow) {
    tracing::info!(
        request_id = %row.id,
        model = %row.model,
        provider = row.provider.as_deref().unwrap_or("-"),
        account = row.account_name.as_deref().unwrap_or("-"),
        status = row.status,
        stream = row.stream,
        latency_ms = row.latency_ms,
        first_token_ms = row.first_token_ms,
        input_tokens = row.input_tokens,
        output_tokens = row.output_tokens,
        error = row.error_class.as_deref(),
        "Request finished."
    );
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn tokens(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Stores records until `stop` is cancelled, then stores what is left and
/// returns. A batch that fails is retried with backoff, so a database that
/// is down for a while delays records without losing them.
pub(crate) async fn run_writer(
    store: Store,
    mut receiver: mpsc::UnboundedReceiver<UsageRow>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut stopping = tokio::select! {
            count = receiver.recv_many(&mut batch, BATCH) => count == 0,
            () = stop.cancelled() => true,
        };
        if !stopping {
            stopping = gather(&mut receiver, &mut batch, &stop).await;
        }
        if stopping {
            while let Ok(row) = receiver.try_recv() {
                batch.push(row);
            }
        }
        store_batch(&store, &mut batch, &stop).await;
        if stopping {
            return;
        }
    }
}

/// Adds the records that arrive within [`GATHER`] of the first (up to
/// [`BATCH`]) to `batch`: under load one transaction stores many requests.
/// Returns whether the writer is stopping.
async fn gather(
    receiver: &mut mpsc::UnboundedReceiver<UsageRow>,
    batch: &mut Vec<UsageRow>,
    stop: &CancellationToken,
) -> bool {
    let deadline = Instant::now() + GATHER;
    while batch.len() < BATCH {
        tokio::select! {
            count = receiver.recv_many(batch, BATCH - batch.len()) => {
                if count == 0 {
                    return true;
                }
            }
            () = tokio::time::sleep_until(deadline) => return false,
            () = stop.cancelled() => return true,
        }
    }
    false
}

async fn store_batch(store: &Store, batch: &mut Vec<UsageRow>, stop: &CancellationToken) {
    const ATTEMPTS_WHEN_STOPPING: u32 = 3;
    let mut backoff = Duration::from_millis(100);
    let mut attempts_since_stop = 0;
    while !batch.is_empty() {
        match store.insert_usage(batch).await {
            Ok(()) => batch.clear(),
            Err(error) => {
                if stop.is_cancelled() {
                    attempts_since_stop += 1;
                    if attempts_since_stop >= ATTEMPTS_WHEN_STOPPING {
                        tracing::error!(%error, records = batch.len(), "Usage records lost: the database refused them at shutdown.");
                        batch.clear();
                        return;
                    }
                }
                tracing::warn!(%error, records = batch.len(), retry_in_ms = millis(backoff), "Storing usage records failed; retrying.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
