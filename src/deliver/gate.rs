//! The last look before a batch goes: the facts it needs read once for the batch, the decision
//! per note made by [`decide::before_sending`], each cancel and hold logged.

use std::collections::HashMap;

use jiff::Timestamp;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::decide::{self, Due, Gate, Preference, SendFacts};
use crate::log::Log;
use crate::outbox::{Outbox, OutboxError, StoredNote};

/// The last look before the notes of a batch go (see [`decide::before_sending`]): the
/// suppression list and the log are read once for the whole batch.
pub(super) fn gate(
    notes: &[StoredNote],
    config: &Config,
    outbox: &Outbox,
    log: Option<&Log>,
    now: Timestamp,
) -> Vec<Gate> {
    let facts = send_facts(notes, config, outbox, log, now);
    notes
        .iter()
        .map(|note| {
            let due = Due {
                rule: &note.rule,
                customer_id: &note.customer_id,
                recipient: &note.letter.recipient,
                timezone: note.timezone.as_deref(),
            };
            let gate = decide::before_sending(&due, &facts, config, now);
            let (id, rule, customer) = (note.id, &note.rule, &note.customer_id);
            match &gate {
                Gate::Cancel(why) => {
                    info!(note_id = id, rule = %rule, customer_id = %customer, reason = %why, "note cancelled before sending")
                }
                Gate::Hold(until, why) => {
                    debug!(note_id = id, customer_id = %customer, until = %until, reason = %why, "note held")
                }
                Gate::Go => {}
            }
            gate
        })
        .collect()
}

/// What the customers among `ids` chose on the preferences page, with the last note sent to
/// each who asked for a personal cap.
fn preferences(
    outbox: &Outbox,
    ids: &[String],
) -> Result<HashMap<String, (Preference, Option<Timestamp>)>, OutboxError> {
    let mut all = outbox.preferences()?;
    let mut chosen = HashMap::new();
    for id in ids {
        if let Some(preference) = all.remove(id) {
            let last_sent = match preference.every_days {
                Some(_) => outbox.last_sent_to(id)?,
                None => None,
            };
            chosen.insert(id.clone(), (preference, last_sent));
        }
    }
    Ok(chosen)
}

/// What the last look needs of the customers of `notes` (the staff digest aside).
fn send_facts(
    notes: &[StoredNote],
    config: &Config,
    outbox: &Outbox,
    log: Option<&Log>,
    now: Timestamp,
) -> SendFacts {
    let to_customers: Vec<&StoredNote> = notes
        .iter()
        .filter(|n| n.rule != crate::config::DIGEST_RULE)
        .collect();
    let keys: Vec<String> = to_customers
        .iter()
        .flat_map(|n| [n.customer_id.clone(), n.letter.recipient.clone()])
        .collect();
    let mut facts = SendFacts::default();
    match outbox.suppressed_keys(&keys) {
        Ok(keys) => facts.suppressed = Some(keys),
        Err(err) => {
            warn!(error = %err, "cannot read the suppression list; holding the notes");
            facts.unreadable = err.to_string();
        }
    }
    let ids: Vec<String> = to_customers.iter().map(|n| n.customer_id.clone()).collect();
    match preferences(outbox, &ids) {
        Ok(chosen) => facts.preferences = Some(chosen),
        Err(err) => {
            warn!(error = %err, "cannot read the customers' preferences; holding the notes");
            facts.unreadable = err.to_string();
        }
    }
    let since = now - config.inbound.hold_after_reply;
    match outbox.last_replies(&ids, since.as_second()) {
        Ok(replied) => facts.replied = replied,
        // The hold after a reply is courtesy, not a promise: a failed read lets the note go.
        Err(err) => {
            warn!(error = %err, "cannot read the customers' replies; the notes go without the hold after a reply")
        }
    }
    match log.map(|log| log.opt_outs(&ids, &config.policy, now)) {
        None => facts.standings = Some(Default::default()),
        Some(Ok(standings)) => facts.standings = Some(standings),
        Some(Err(err)) => {
            warn!(error = %err, "cannot read the log to check opt-outs; holding the notes");
            facts.unreadable = err.to_string();
        }
    }
    facts
}
