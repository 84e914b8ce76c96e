//! The delivery rate limit: a token bucket kept in the state database, so it also holds across
//! restarts.

use jiff::Timestamp;

use crate::config::Delivery;
use crate::outbox::{Outbox, OutboxError, Setting};

/// A token bucket: `rate` notes per second on average, `burst` at once. Its state lives in the
/// state database, so the limit also holds across restarts.
pub(super) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Timestamp,
}

impl RateLimit {
    pub(super) fn load(
        outbox: &Outbox,
        delivery: &Delivery,
        now: Timestamp,
    ) -> Result<RateLimit, OutboxError> {
        let saved: Option<(f64, Timestamp)> = outbox.setting(Setting::RateLimit)?;
        let burst = f64::from(delivery.burst.max(1));
        let (tokens, at) = saved.unwrap_or((burst, now));
        let mut bucket = RateLimit {
            rate: delivery.rate,
            burst,
            tokens,
            at,
        };
        bucket.refill(now);
        Ok(bucket)
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = (now.as_millisecond() - self.at.as_millisecond()).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Notes that may be sent now (unlimited when `rate` is 0).
    pub(super) fn available(&mut self, now: Timestamp) -> usize {
        if self.rate <= 0.0 {
            return usize::MAX;
        }
        self.refill(now);
        self.tokens.floor() as usize
    }

    pub(super) fn take(&mut self, n: usize, now: Timestamp) {
        if self.rate > 0.0 {
            self.refill(now);
            self.tokens -= n as f64;
        }
    }

    pub(super) fn until_next(&self, now: Timestamp) -> std::time::Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        let elapsed = (now.as_millisecond() - self.at.as_millisecond()).max(0) as f64 / 1000.0;
        std::time::Duration::from_secs_f64((missing / self.rate - elapsed).max(0.001))
    }

    pub(super) fn save(&self, outbox: &Outbox) -> Result<(), OutboxError> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        outbox.set_setting(Setting::RateLimit, &(self.tokens, self.at))
    }
}
