//! Decide: whether a matched customer gets this rule's note now, or why not, and the last look
//! before a queued note goes.
//!
//! Both are pure functions of facts gathered beforehand (from the customer's row, the log, the
//! outbox) and the clock: [`decide`] before a note is queued, [`before_sending`] right before it
//! is sent. Every reason a note is skipped or held is decided here; the cooldown, the frequency
//! cap and the daily limit are each interpreted in one function of `limits`. Rules are evaluated
//! highest priority first, so when rules compete for a customer the first note queued takes the
//! customer's cap.

mod limits;
mod preference;
mod send;
mod skip;

use jiff::Timestamp;

use crate::config::{Policy, Rule, RuleKind};
use crate::log::Standing;
use crate::note::NoteState;
use crate::select::Ledger;

pub(crate) use limits::{Lookback, daily_limit_reached};
pub(crate) use preference::{Category, EVERY_DAYS, Preference};
pub(crate) use send::{Due, Gate, SendFacts, before_sending};
pub(crate) use skip::Skip;

/// What rekindle already did for one customer, as the decide stage needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// The state of this rule's note for this occasion, if there is one.
    pub occasion_state: Option<NoteState>,
    /// When this rule last queued a note for this customer (any occasion), if that is within
    /// the rule's cooldown (older ones do not matter; see [`Lookback`]).
    pub last_from_rule: Option<Timestamp>,
    /// Notes (from any rule) queued for this customer within the cap window.
    pub in_cap_window: u32,
}

/// Everything known about one candidate of one rule before its note is composed.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Why the customer's row cannot be written to (see `compose::recipient`), if it cannot.
    pub unusable: Option<Skip>,
    /// The customer's `opted_out` column.
    pub opted_out: bool,
    /// The customer's id or address is on the suppression list.
    pub suppressed: bool,
    /// Where the customer stands in the log.
    pub standing: Standing,
    /// What the customer chose on the preferences page, with when the last note that reached
    /// them was queued (for a personal cap), if they chose anything.
    pub preference: Option<(Preference, Option<Timestamp>)>,
    /// The interaction behind the note is a complaint.
    pub complaint: bool,
    /// For a ratio rule: the customer's touch points, rekindle's own notes included.
    pub ledger: Option<Ledger>,
    /// What rekindle already did for the customer.
    pub history: History,
    /// Notes this rule queued today.
    pub queued_today: u32,
}

/// Decides whether `rule` may queue its note for a candidate with these `facts` at `now`.
/// The reasons are tried in a fixed order, so a customer with several gets the same one every
/// time: what makes the row unusable, then the customer's own wishes and standing, then what
/// rekindle already sent.
pub(crate) fn decide(
    facts: &Facts,
    rule: &Rule,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), Skip> {
    if let Some(skip) = &facts.unusable {
        return Err(skip.clone());
    }
    if facts.suppressed {
        return Err(Skip::Suppressed);
    }
    if facts.standing.unsubscribed {
        return Err(Skip::Unsubscribed);
    }
    if let Some(why) = facts
        .preference
        .as_ref()
        .and_then(|(p, last)| p.keeps_out(&rule.kind, *last, now))
    {
        return Err(Skip::Preference(why));
    }
    if facts.standing.open_complaint && rule.hold_while_unhappy {
        return Err(Skip::OpenComplaint);
    }
    if matches!(rule.kind, RuleKind::Unhappy { .. })
        && facts.complaint
        && !facts.standing.open_complaint
    {
        return Err(Skip::Resolved);
    }
    if let (RuleKind::Ratio { target, .. }, Some(ledger)) = (&rule.kind, facts.ledger)
        && ledger.meets(*target)
    {
        return Err(Skip::RatioMet {
            positive: ledger.positive,
            negative: ledger.negative,
        });
    }
    if let (Some((at_least, _)), Some(ledger)) = (rule.ledger_at_least, facts.ledger)
        && !ledger.meets(at_least)
    {
        return Err(Skip::LedgerBelow {
            positive: ledger.positive,
            negative: ledger.negative,
            at_least,
        });
    }
    if facts.opted_out {
        return Err(Skip::OptedOut);
    }
    let history = &facts.history;
    if let Some(state) = history.occasion_state {
        return Err(Skip::AlreadyQueued(state));
    }
    if let Some(until) = history
        .last_from_rule
        .and_then(|last| limits::cooldown_until(rule, last, now))
    {
        return Err(Skip::Cooldown { until });
    }
    if rule.capped && limits::capped(policy, history.in_cap_window) {
        return Err(Skip::Capped { cap: policy.cap });
    }
    if let Some(limit) = daily_limit_reached(rule, facts.queued_today) {
        return Err(Skip::DailyLimit(limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
