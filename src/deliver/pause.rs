//! Delivery paused because the mail server will not take mail from rekindle as configured (a
//! wrong password, TLS that cannot be trusted, a refused sender address): the notes stay
//! queued, their attempts uncounted, and one note tries again after a pause that doubles each
//! time, from `delivery.retry_base` up to `delivery.retry_max`. A reload (SIGHUP) or a restart
//! of the daemon, after the fix, ends the pause at once. Kept in the state database, so
//! `status` shows it and a `run --once` from cron honours it too.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::config::Delivery;
use crate::outbox::{Outbox, OutboxError, Setting};

/// A pause in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pause {
    /// Since when (Unix seconds).
    pub since: i64,
    /// The next try (Unix seconds).
    pub until: i64,
    /// The server's refusal.
    pub reason: String,
    /// Refusals in a row.
    pub refusals: u32,
}

impl Pause {
    /// The pause kept in the state database, if any.
    pub(crate) fn load(outbox: &Outbox) -> Result<Option<Pause>, OutboxError> {
        outbox.setting(Setting::DeliveryPause)
    }

    /// Whether delivery waits at `now`.
    pub(crate) fn holds(&self, now: Timestamp) -> bool {
        now.as_second() < self.until
    }

    /// The next try, as a time.
    pub(crate) fn next_try(&self) -> Timestamp {
        Timestamp::from_second(self.until).unwrap_or(Timestamp::MAX)
    }

    /// The server refused rekindle (again): pauses, or pauses longer. The first refusal is
    /// logged as an error with what to do; the next ones as warnings.
    pub(super) fn refused(
        outbox: &Outbox,
        before: Option<Pause>,
        reason: &str,
        delivery: &Delivery,
        now: Timestamp,
    ) -> Result<Pause, OutboxError> {
        let refusals = before.as_ref().map_or(1, |p| p.refusals + 1);
        let wait = delivery
            .retry_base
            .checked_mul(1 << (refusals - 1).min(20))
            .unwrap_or(delivery.retry_max)
            .min(delivery.retry_max)
            .max(SignedDuration::from_secs(1));
        let pause = Pause {
            since: before.as_ref().map_or(now.as_second(), |p| p.since),
            until: (now + wait).as_second(),
            reason: reason.to_string(),
            refusals,
        };
        if before.is_none() {
            error!(reason = %reason, next_try = %pause.next_try(), "delivery paused: the mail server will not take mail from rekindle as configured; the notes stay queued. Fix the [transport] settings (the password, TLS, the sender address) and reload (systemctl reload rekindle) to resume at once");
        } else {
            warn!(reason = %reason, refusals, next_try = %pause.next_try(), "delivery still paused: the mail server refused again");
        }
        outbox.set_setting(Setting::DeliveryPause, &pause)?;
        Ok(pause)
    }

    /// A note went through: the pause is over.
    pub(super) fn lifted(outbox: &Outbox, pause: &Pause) -> Result<(), OutboxError> {
        info!(paused_since = %Timestamp::from_second(pause.since).unwrap_or_default(), "delivery resumed: the mail server takes mail again");
        outbox.clear_setting(Setting::DeliveryPause)
    }

    /// The configuration was loaded again (a reload or a start): whatever was wrong may be
    /// fixed, so the next delivery pass tries at once.
    pub(crate) fn end_for_new_config(outbox: &Outbox) -> Result<(), OutboxError> {
        if Pause::load(outbox)?.is_some() {
            info!("the configuration was loaded again: delivery tries again now");
            outbox.clear_setting(Setting::DeliveryPause)?;
        }
        Ok(())
    }
}
