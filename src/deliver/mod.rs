//! Deliver: hand queued notes to a transport (a maildir for demos and dry runs, or SMTP) and
//! record the outcome in the outbox.
//!
//! The outbox is SQLite, so the delivery loop runs on a blocking thread and only the send itself
//! is awaited on the runtime. A note is marked `sending` (committed) before the transport sees
//! it, and `sent`, `retry` or `failed` right after.

mod gate;
mod in_flight;
mod lock;
pub(crate) mod maildir;
mod rate;
mod settle;
pub(crate) mod smtp;
mod smtp_client;
mod transport;

use jiff::Timestamp;
use tracing::warn;

use crate::config::{Config, Delivery};
use crate::log::Log;
use crate::outbox::{Outbox, OutboxError, StoredNote};
use gate::gate;
use in_flight::InFlight;
pub(crate) use lock::{DeliveryLock, LockError};
use rate::RateLimit;
pub(crate) use transport::{SendError, Transport};

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryReport {
    /// Notes accepted by the transport.
    pub sent: u64,
    /// Notes that will be tried again.
    pub retried: u64,
    /// Notes that failed for good.
    pub failed: u64,
    /// Notes whose connection broke mid-handover: `unknown`, for an operator to resolve.
    pub unknown: u64,
    /// Wall-clock time the pass took.
    pub elapsed: std::time::Duration,
    /// Per rule: (sent, failed).
    pub per_rule: std::collections::BTreeMap<String, (u64, u64)>,
}

impl DeliveryReport {
    /// "sent 3, failed 1" for `rule`, if the pass touched it.
    pub(crate) fn for_rule(&self, rule: &str) -> Option<String> {
        self.per_rule
            .get(rule)
            .map(|(sent, failed)| format!("sent {sent}, failed {failed}"))
    }
}

/// Delivers every note due at the time `clock` gives, `delivery.concurrency` at a time and
/// within the rate limit, until none is due or `keep_going` says stop. Right before sending,
/// each note is checked again against opt-outs (in `log`, when given, and the suppression list)
/// and the customer's calendar. Runs on a blocking thread; `runtime` runs the sends.
///
/// Notes go in batches: while one batch is on its way, the next is claimed and built, so the
/// connections never wait for the state database. At most two batches are `sending` at once.
pub(crate) fn deliver_due(
    outbox: &Outbox,
    log: Option<&Log>,
    transport: &std::sync::Arc<Transport>,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    clock: &dyn Fn() -> Timestamp,
    keep_going: &dyn Fn() -> bool,
) -> Result<DeliveryReport, OutboxError> {
    let delivery = &config.delivery;
    let started = std::time::Instant::now();
    let mut report = DeliveryReport::default();
    // Shared by every batch, so a batch's first sends start while the last ones of the batch
    // before are still out.
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(
        delivery.concurrency.max(1) as usize
    ));
    let mut in_flight: Option<InFlight> = None;
    let mut claim_and_send = || -> Result<(), OutboxError> {
        let mut bucket = RateLimit::load(outbox, delivery, clock())?;
        while keep_going() {
            let now = clock();
            let allowed = bucket.available(now);
            if allowed == 0 {
                // Wait for the next token, in short steps so a shutdown is never held up.
                let wait = bucket
                    .until_next(now)
                    .min(std::time::Duration::from_millis(200));
                // Built inside the runtime: a timer needs its context.
                runtime.block_on(async { tokio::time::sleep(wait).await });
                continue;
            }
            let mut gate = |due: &[StoredNote]| gate(due, config, outbox, log, now);
            let (batch, set_aside) =
                outbox.claim_batch(now, allowed.min(batch_size(delivery)), &mut gate)?;
            if batch.is_empty() {
                if set_aside > 0 {
                    continue;
                }
                break;
            }
            // The tokens are spent (and saved) before anything is sent, so a crash here can
            // never let a restart exceed the rate.
            bucket.take(batch.len(), now);
            bucket.save(outbox)?;
            let previous = in_flight.as_mut().and_then(|f| f.dispatched.take());
            let sending = InFlight::start(runtime, transport, config, &limit, batch, now, previous);
            if let Some(done) = in_flight.replace(sending) {
                done.finish(outbox, runtime, delivery, clock(), &mut report)?;
            }
        }
        Ok(())
    };
    let outcome = claim_and_send();
    // Whatever stopped the loop, the batch still out is waited for and recorded.
    let last = in_flight.map_or(Ok(()), |done| {
        done.finish(outbox, runtime, delivery, clock(), &mut report)
    });
    outcome.and(last)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// At start-up: notes a previous run left in `sending` are parked as `unknown`, each logged for
/// an operator to resolve; they are never resent automatically.
pub(crate) fn park_interrupted(outbox: &Outbox, now: Timestamp) -> Result<(), OutboxError> {
    for note in outbox.park_interrupted(now)? {
        warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note parked as unknown: the previous run stopped while sending it; it is not resent automatically");
    }
    Ok(())
}

/// The runtime that runs the sends (building each message) and the SMTP connections' workers:
/// two threads, beside the delivery thread that looks after the state database.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rekindle-send")
        .enable_all()
        .build()
}

/// Notes claimed (marked `sending`) at once: several rounds of `concurrency`, so the synced state
/// transaction around a batch is paid once per many notes, while a crash leaves at most twice
/// this many notes `unknown` (one batch on its way, the next just claimed).
fn batch_size(delivery: &Delivery) -> usize {
    (delivery.concurrency.max(1) as usize * 16).clamp(32, 128)
}
