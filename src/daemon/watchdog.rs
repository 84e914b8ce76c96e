//! systemd's watchdog: `WATCHDOG=1` is sent only while the scheduler, the event watcher and the
//! delivery loop all show recent progress, so a stuck loop gets the service restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tracing::error;

use super::shutdown::Shutdown;
use super::{Shared, notify};

/// When each loop last showed progress (Unix milliseconds).
#[derive(Default)]
pub(super) struct Beats {
    pub scheduler: AtomicI64,
    pub events: AtomicI64,
    pub delivery: AtomicI64,
}

impl Beats {
    fn now() -> i64 {
        Timestamp::now().as_millisecond()
    }

    /// Records progress of the loop whose beat this is.
    pub(super) fn stamp(beat: &AtomicI64) {
        beat.store(Self::now(), Ordering::Relaxed);
    }

    /// Every loop counts as having just shown progress (at start).
    pub(super) fn stamp_all(&self) {
        for beat in [&self.scheduler, &self.events, &self.delivery] {
            Self::stamp(beat);
        }
    }

    /// How long ago each loop last showed progress, in seconds.
    pub(super) fn ages(&self) -> Vec<(&'static str, f64)> {
        let now = Self::now();
        [
            ("scheduler", &self.scheduler),
            ("event watcher", &self.events),
            ("delivery loop", &self.delivery),
        ]
        .into_iter()
        .map(|(name, beat)| {
            (
                name,
                (now - beat.load(Ordering::Relaxed)).max(0) as f64 / 1000.0,
            )
        })
        .collect()
    }

    /// The loops that have shown no progress for longer than `limit`.
    fn stale(&self, limit: Duration, events_expected: bool) -> Vec<&'static str> {
        let age = |b: &AtomicI64| Self::now() - b.load(Ordering::Relaxed);
        let limit = limit.as_millis() as i64;
        // The scheduler ticks once a minute: allow it a minute more than the others.
        let mut stale = Vec::new();
        if age(&self.scheduler) > limit.max(60_000) + 60_000 {
            stale.push("scheduler");
        }
        if events_expected && age(&self.events) > limit {
            stale.push("event watcher");
        }
        if age(&self.delivery) > limit {
            stale.push("delivery loop");
        }
        stale
    }
}

/// How long a loop may show no progress without systemd's watchdog: `/healthz` still judges.
const WITHOUT_WATCHDOG: Duration = Duration::from_secs(120);

/// The loops that show no progress, by name (none: all is well): what the watchdog and
/// `/healthz` go by. A loop may legitimately rest for its own interval; beyond half the
/// watchdog's timeout on top of that (or [`WITHOUT_WATCHDOG`]), it is stuck.
pub(super) fn stuck(shared: &Shared) -> Vec<&'static str> {
    let running = shared.running();
    let config = &running.loaded.config;
    let margin = sd_notify::watchdog_enabled().map_or(WITHOUT_WATCHDOG, |t| t / 2);
    let limit = margin + config.delivery.poll.unsigned_abs();
    shared
        .beats
        .stale(limit, config.rules.iter().any(|r| r.on_interaction))
}

/// Pings systemd's watchdog (when it is on) while every loop shows progress, until the stop.
pub(super) async fn watchdog(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut every = tokio::time::interval(timeout / 3);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.recv() => return,
        }
        let stale = stuck(&shared);
        if stale.is_empty() {
            warned = false;
            notify(&[NotifyState::Watchdog]);
        } else if !warned {
            error!(stuck = %stale.join(", "), "no progress: withholding the watchdog ping so systemd restarts the service");
            warned = true;
        }
    }
}
