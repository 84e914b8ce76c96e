//! The daemon's delivery loop: due notes go every `delivery.poll`, and as soon as notes are
//! queued. One pass at a time; a stop lets the batch in flight finish and claims nothing more.

use std::sync::Arc;

use tracing::{error, info};

use super::shutdown::Shutdown;
use super::watchdog::Beats;
use super::{Shared, blocking};
use crate::deliver::{self, Pace, Steering};
use crate::error::Error;
use crate::log::Log;
use crate::metrics::{METRICS, RuleLabel};
use crate::outbox::Outbox;

/// Delivers due notes whenever notes are queued or the poll interval passes, until the stop.
pub(super) async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let mut every = shared.running().loaded.config.delivery.poll.unsigned_abs();
    let mut poll = interval(every);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = shared.queued.notified() => {}
            _ = poll.tick() => {}
        }
        pass(shared.clone()).await;
        // A reload may have changed the interval.
        let now_every = shared.running().loaded.config.delivery.poll.unsigned_abs();
        if now_every != every {
            every = now_every;
            poll = interval(every);
        }
    }
}

fn interval(every: std::time::Duration) -> tokio::time::Interval {
    let mut poll = tokio::time::interval(every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll
}

/// One delivery pass: every due note, stopping early when the stop is asked for.
async fn pass(shared: Arc<Shared>) {
    Beats::stamp(&shared.beats.delivery);
    if shared.shutdown.is_shutdown() {
        return;
    }
    let running = shared.running();
    let result = blocking(move || {
        let config = &running.loaded.config;
        let outbox = Outbox::open(&config.state_path)?;
        // Opt-outs are checked again right before sending.
        let log = Log::open(&config.log_path)?;
        let pace = || {
            if shared.abandon.load(std::sync::atomic::Ordering::SeqCst) {
                Pace::Abandon
            } else if shared.shutdown.is_shutdown() {
                Pace::Finish
            } else {
                Pace::Go
            }
        };
        let Some(runtime) = running.delivery.as_ref() else {
            return Ok(());
        };
        let report = deliver::deliver_due(
            &outbox,
            Some(&log),
            &running.transport,
            config,
            runtime,
            &Steering {
                clock: &crate::clock::now,
                pace: &pace,
                progress: &|| Beats::stamp(&shared.beats.delivery),
            },
        )?;
        log_report(&report);
        Ok::<(), Error>(())
    })
    .await;
    if let Err(err) = result {
        error!(error = %err, "delivery failed; will try again");
    }
}

/// Logs what a pass did, per rule and in all.
fn log_report(report: &deliver::DeliveryReport) {
    for (rule, (sent, failed)) in &report.per_rule {
        let label = RuleLabel { rule: rule.clone() };
        METRICS.sent.get_or_create(&label).inc_by(*sent);
        METRICS.failed.get_or_create(&label).inc_by(*failed);
        info!(rule = %rule, sent, failed, "delivered for rule {rule}: sent {sent}, failed {failed}");
    }
    if report.sent + report.retried + report.failed + report.unknown > 0 {
        info!(
            sent = report.sent,
            retrying = report.retried,
            failed = report.failed,
            unknown = report.unknown,
            "delivery pass done"
        );
    }
}
