//! The last look before a queued note goes: an opt-out or a suppression that arrived after it
//! was queued cancels it; quiet hours, a day off or a holiday in the customer's time zone hold it.

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::config::{Config, DIGEST_RULE, RuleKind};
use crate::log::Standing;

/// What the last look decides for a due note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Send it now.
    Go,
    /// Not now: due again at this time, for this reason.
    Hold(Timestamp, String),
    /// Never: cancelled, for this reason.
    Cancel(String),
}

/// The parts of a due note the last look reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due<'a> {
    /// The note's rule.
    pub rule: &'a str,
    /// Its customer.
    pub customer_id: &'a str,
    /// Its address.
    pub recipient: &'a str,
    /// The customer's time zone as recorded when it was queued.
    pub timezone: Option<&'a str>,
}

/// What delivery read for a batch of due notes: which of their customer ids and addresses are
/// suppressed, and where their customers stand in the log. `None` when it could not be read,
/// with the reason in `unreadable`: the notes are then held a minute, never sent unchecked.
#[derive(Debug, Clone, Default)]
pub(crate) struct SendFacts {
    /// Suppressed keys among the batch's customer ids and addresses.
    pub suppressed: Option<HashSet<String>>,
    /// Standings by customer id (opt-outs, unsubscribes, customers gone from the log).
    pub standings: Option<HashMap<String, Standing>>,
    /// What the batch's customers chose on the preferences page, with when each of those with a
    /// personal cap was last sent a note (None: it could not be read, see `unreadable`).
    pub preferences: Option<HashMap<String, (crate::decide::Preference, Option<Timestamp>)>>,
    /// When each of the batch's customers who replied within `inbound.hold_after_reply` last
    /// replied (a person's reply, not an automatic one), in Unix seconds.
    pub replied: HashMap<String, i64>,
    /// Why one of them could not be read.
    pub unreadable: String,
}

/// Decides whether `note` may go at `now`.
pub(crate) fn before_sending(
    note: &Due<'_>,
    facts: &SendFacts,
    config: &Config,
    now: Timestamp,
) -> Gate {
    // The staff digest goes to the staff, not to a customer: only the calendar applies.
    if note.rule != DIGEST_RULE
        && let Some(gate) = customer_gate(note, facts, config, now)
    {
        return gate;
    }
    if let Some(gate) = reply_hold(note, facts, config, now) {
        return gate;
    }
    let tz = note
        .timezone
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or_else(|| config.timezone.clone());
    match config.policy.calendar.next_allowed(now, &tz) {
        Some(at) => Gate::Hold(
            at,
            format!(
                "held until {at}: quiet hours, a day off or a holiday in the customer's time zone"
            ),
        ),
        None => Gate::Go,
    }
}

/// After a customer's reply, their other notes wait `inbound.hold_after_reply`: a person may be
/// answering them, and a seasonal card the morning after an angry reply reads as not listening.
/// Apologies and follow-ups go: they answer what the customer said.
fn reply_hold(note: &Due<'_>, facts: &SendFacts, config: &Config, now: Timestamp) -> Option<Gate> {
    let replied = Timestamp::from_second(*facts.replied.get(note.customer_id)?).ok()?;
    let kind = &config.rule(note.rule)?.kind;
    if matches!(kind, RuleKind::Unhappy { .. } | RuleKind::Followup { .. }) {
        return None;
    }
    let until = replied + config.inbound.hold_after_reply;
    (until > now).then(|| {
        Gate::Hold(
            until,
            format!(
                "held until {until}: the customer replied at {replied}, and their other notes wait inbound.hold_after_reply ({})",
                crate::config::format_duration(config.inbound.hold_after_reply)
            ),
        )
    })
}

/// What the customer's wishes say of `note`, if anything holds or cancels it.
fn customer_gate(
    note: &Due<'_>,
    facts: &SendFacts,
    config: &Config,
    now: Timestamp,
) -> Option<Gate> {
    let retry_soon = now + SignedDuration::from_mins(1);
    let cancel = |why: &str| Some(Gate::Cancel(why.to_string()));
    let Some(suppressed) = &facts.suppressed else {
        return Some(Gate::Hold(retry_soon, facts.unreadable.clone()));
    };
    if suppressed.contains(note.customer_id) || suppressed.contains(note.recipient) {
        return cancel("the customer is on the suppression list");
    }
    let Some(preferences) = &facts.preferences else {
        return Some(Gate::Hold(retry_soon, facts.unreadable.clone()));
    };
    if let (Some((preference, last_sent)), Some(rule)) =
        (preferences.get(note.customer_id), config.rule(note.rule))
        && let Some(why) = preference.keeps_out(&rule.kind, *last_sent, now)
    {
        return cancel(&why);
    }
    let Some(standings) = &facts.standings else {
        return Some(Gate::Hold(retry_soon, facts.unreadable.clone()));
    };
    match standings.get(note.customer_id) {
        Some(s) if s.opted_out => cancel("the customer opted out after the note was queued"),
        Some(s) if s.unsubscribed => cancel("the customer unsubscribed after the note was queued"),
        Some(s) if s.gone => cancel("the customer is no longer in the interaction log"),
        _ => None,
    }
}
