//! Policy: decide whether a matched customer gets this note now, or why not.
//!
//! A pure function of the customer, the rule, what rekindle already sent them ([`History`],
//! read from the outbox) and the clock. Rules are evaluated highest priority first, so when rules
//! compete for a customer the first note queued takes the customer's cap.

use std::fmt;

use jiff::Timestamp;

use crate::config::{Policy, Rule};
use crate::log::CustomerRow;

/// Why a matched customer gets no note from this rule now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Skip {
    /// The customer opted out (the `opted_out` column).
    OptedOut,
    /// The customer sent an unsubscribe interaction.
    Unsubscribed,
    /// The customer is on the suppression list.
    Suppressed,
    /// A complaint is still open, and this rule waits until it is resolved.
    OpenComplaint,
    /// The complaint was resolved before an apology went: a follow-up fits better.
    Resolved,
    /// With rekindle's own notes, the customer's touch points already meet the target.
    RatioMet {
        /// Positive touch points, rekindle's notes included.
        positive: i64,
        /// Negative ones.
        negative: i64,
    },
    /// The email address is unusable.
    InvalidAddress(String),
    /// The name contains control characters: a header-injection attempt, not a name.
    UnsafeName,
    /// Another problem with the row.
    BadRow(String),
    /// This rule already has a note for this occasion (in the given state).
    AlreadyQueued(String),
    /// This rule wrote to this customer too recently.
    Cooldown {
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// The customer already got `cap` notes within the cap window, from any rule.
    Capped {
        /// The cap.
        cap: u32,
    },
    /// The rule reached its daily limit.
    DailyLimit(u32),
    /// The template failed for this customer.
    Render(String),
}

impl Skip {
    /// Whether the reason can pass with time alone, without a new interaction or an edit: a
    /// cooldown or the cap window ends, a day starts, a complaint window closes, a suppression
    /// is lifted, a template is mended.
    pub(crate) fn may_pass(&self) -> bool {
        matches!(
            self,
            Skip::Cooldown { .. }
                | Skip::Capped { .. }
                | Skip::DailyLimit(_)
                | Skip::OpenComplaint
                | Skip::Suppressed
                | Skip::Render(_)
                | Skip::RatioMet { .. }
        )
    }

    /// A short stable key for summaries and logs.
    pub(crate) fn key(&self) -> &'static str {
        match self {
            Skip::OptedOut => "opted-out",
            Skip::Unsubscribed => "unsubscribed",
            Skip::Suppressed => "suppressed",
            Skip::OpenComplaint => "open-complaint",
            Skip::Resolved => "resolved",
            Skip::RatioMet { .. } => "ratio-met",
            Skip::InvalidAddress(_) => "invalid-address",
            Skip::UnsafeName => "unsafe-name",
            Skip::BadRow(_) => "bad-row",
            Skip::AlreadyQueued(_) => "already-queued",
            Skip::Cooldown { .. } => "cooldown",
            Skip::Capped { .. } => "cap",
            Skip::DailyLimit(_) => "daily-limit",
            Skip::Render(_) => "template-error",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::OptedOut => write!(f, "opted out"),
            Skip::Unsubscribed => write!(f, "unsubscribed (an unsubscribe interaction)"),
            Skip::Suppressed => write!(f, "on the suppression list"),
            Skip::OpenComplaint => write!(
                f,
                "a complaint is still open; this rule waits until it is resolved"
            ),
            Skip::RatioMet { positive, negative } => write!(
                f,
                "{positive} positive to {negative} negative touch points (rekindle's notes included) already meet the target"
            ),
            Skip::Resolved => write!(
                f,
                "the complaint was already resolved; a follow-up rule thanks them instead"
            ),
            Skip::InvalidAddress(a) => write!(f, "invalid email address {a:?}"),
            Skip::UnsafeName => write!(
                f,
                "name contains line breaks or control characters (possible header injection)"
            ),
            Skip::BadRow(why) => write!(f, "bad row: {why}"),
            Skip::AlreadyQueued(state) => write!(f, "already {state} for this occasion"),
            Skip::Cooldown { until } => write!(f, "cooldown of this rule until {until}"),
            Skip::Capped { cap } => {
                write!(f, "frequency cap: already {cap} note(s) in the cap window")
            }
            Skip::DailyLimit(limit) => write!(f, "daily limit of {limit} reached"),
            Skip::Render(why) => write!(f, "template failed: {why}"),
        }
    }
}

/// What rekindle already did for one customer, as the policy needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// The state of this rule's note for this occasion, if there is one.
    pub occasion_state: Option<String>,
    /// When this rule last queued a note for this customer (any occasion), if that is within
    /// the rule's cooldown (older ones do not matter).
    pub last_from_rule: Option<Timestamp>,
    /// Notes (from any rule) queued for this customer within the cap window.
    pub in_cap_window: u32,
}

/// Decides whether `rule` may queue a note for `customer` now.
pub(crate) fn decide(
    customer: &CustomerRow,
    rule: &Rule,
    history: &History,
    queued_today: u32,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), Skip> {
    if customer.opted_out {
        return Err(Skip::OptedOut);
    }
    if let Some(state) = &history.occasion_state {
        return Err(Skip::AlreadyQueued(state.clone()));
    }
    if let Some(last) = history.last_from_rule
        && let Ok(until) = last.checked_add(rule.cooldown)
        && until > now
    {
        return Err(Skip::Cooldown { until });
    }
    if history.in_cap_window >= policy.cap {
        return Err(Skip::Capped { cap: policy.cap });
    }
    if let Some(limit) = rule.daily_limit
        && queued_today >= limit
    {
        return Err(Skip::DailyLimit(limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
