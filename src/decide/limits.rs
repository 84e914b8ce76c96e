//! The cooldown, the frequency cap and the daily limit: each interpreted here and nowhere else.

use jiff::Timestamp;

use crate::config::{Policy, Rule};

/// How far back the outbox is read for a candidate: a note of the rule before `cooldown_since`
/// cannot hold it back, nor a note of any rule before `cap_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookback {
    /// The start of the rule's cooldown, counted back from now.
    pub cooldown_since: Timestamp,
    /// The start of the cap window, counted back from now.
    pub cap_since: Timestamp,
}

impl Lookback {
    /// The lookback of `rule` under `policy` at `now`.
    pub(crate) fn at(rule: &Rule, policy: &Policy, now: Timestamp) -> Lookback {
        Lookback {
            cooldown_since: now.checked_sub(rule.cooldown).unwrap_or(now),
            cap_since: now.checked_sub(policy.cap_window).unwrap_or(now),
        }
    }
}

/// When the cooldown that `rule`'s note at `last` started ends, if it has not ended by `now`.
pub(crate) fn cooldown_until(rule: &Rule, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
    last.checked_add(rule.cooldown)
        .ok()
        .filter(|until| *until > now)
}

/// Whether `in_window` notes within the cap window use up the customer's cap.
pub(crate) fn capped(policy: &Policy, in_window: u32) -> bool {
    in_window >= policy.cap
}

/// The rule's daily limit, when `queued_today` notes reach it: nothing more before tomorrow.
pub(crate) fn daily_limit_reached(rule: &Rule, queued_today: u32) -> Option<u32> {
    rule.daily_limit.filter(|limit| queued_today >= *limit)
}
