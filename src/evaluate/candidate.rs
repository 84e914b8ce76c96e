//! One candidate through the pipeline: its facts gathered, decided, its letter composed and
//! queued.

use jiff::Timestamp;
use tracing::warn;

use super::{EvaluateError, Outcome, Shared};
use crate::compose::{self, Recipient, recipient};
use crate::config::{Rule, RuleKind};
use crate::decide::{self, Facts, Lookback, Skip};
use crate::log::Standings;
use crate::outbox::NewNote;
use crate::select::{Candidate, Ledger};

/// The fate of `candidate` of `rule`, which queued `queued_today` notes so far today; its note
/// is queued when the decision allows. Errors only for I/O.
pub(super) fn consider(
    shared: &Shared<'_>,
    rule: &Rule,
    candidate: &Candidate,
    queued_today: u32,
    standings: Option<&Standings>,
) -> Result<Outcome, EvaluateError> {
    let (config, now) = (shared.config, shared.pass.now);
    let recipient = recipient(&candidate.customer, config, now);
    let facts = facts(shared, rule, candidate, &recipient, queued_today, standings)?;
    // `decide` returns an unusable recipient's reason itself.
    match (decide::decide(&facts, rule, &config.policy, now), recipient) {
        (Err(skip), _) | (Ok(()), Err(skip)) => Ok(Outcome::Skipped(skip)),
        (Ok(()), Ok(recipient)) => queue(shared, rule, candidate, &recipient),
    }
}

/// Everything the decide stage needs to know of `candidate`, read from its row, the log and
/// the outbox.
fn facts(
    shared: &Shared<'_>,
    rule: &Rule,
    candidate: &Candidate,
    recipient: &Result<Recipient, Skip>,
    queued_today: u32,
    standings: Option<&Standings>,
) -> Result<Facts, EvaluateError> {
    let (config, log, outbox, now) = (shared.config, shared.log, shared.outbox, shared.pass.now);
    let customer = &candidate.customer;
    let address = match recipient {
        Ok(r) => r.address.to_string(),
        Err(_) => customer.email.clone().unwrap_or_default(),
    };
    let standing = match standings {
        Some(all) => all.of(customer),
        None => log.standing(&customer.id, &config.policy, now)?,
    };
    let ledger = match (&rule.kind, candidate.ledger()) {
        (RuleKind::Ratio { window, .. }, Some(ledger)) => {
            let since = now.checked_sub(*window).unwrap_or(now);
            Some(Ledger {
                positive: ledger.positive + outbox.notes_to(&customer.id_text, since)?,
                ..ledger
            })
        }
        _ => match rule.ledger_at_least {
            Some((_, window)) => {
                let since = now.checked_sub(window).unwrap_or(now);
                let points = log.touch_points(&customer.id, &config.touchpoints, since)?;
                Some(Ledger::total(
                    &points,
                    outbox.notes_to(&customer.id_text, since)?,
                ))
            }
            None => None,
        },
    };
    let lookback = Lookback::at(rule, &config.policy, now);
    let preference = match shared.preferences.get(&customer.id_text) {
        Some(p) if p.every_days.is_some() => {
            Some((p.clone(), outbox.last_note_to(&customer.id_text)?))
        }
        Some(p) => Some((p.clone(), None)),
        None => None,
    };
    Ok(Facts {
        unusable: recipient.as_ref().err().cloned(),
        opted_out: customer.opted_out,
        suppressed: outbox.suppressed(&customer.id_text, &address)?,
        standing,
        preference,
        complaint: candidate
            .trigger()
            .is_some_and(|t| config.policy.complaint_kinds.contains(&t.kind)),
        ledger,
        history: outbox.history(
            &rule.name,
            &customer.id_text,
            &candidate.occasion,
            &lookback,
        )?,
        queued_today,
    })
}

/// Composes `candidate`'s letter and queues it.
fn queue(
    shared: &Shared<'_>,
    rule: &Rule,
    candidate: &Candidate,
    recipient: &Recipient,
) -> Result<Outcome, EvaluateError> {
    let (config, log, outbox, now) = (shared.config, shared.log, shared.outbox, shared.pass.now);
    let customer = &candidate.customer;
    for warning in &recipient.warnings {
        warn!(rule = %rule.name, customer_id = %customer.id_text, "{warning}");
    }
    let interactions = match shared.templates.shows_interaction_count(&rule.template) {
        true => log.interaction_count(&customer.id)?,
        false => 0,
    };
    let letter = match compose::letter(
        config,
        shared.templates,
        rule,
        candidate,
        recipient,
        interactions,
    ) {
        Ok(letter) => letter,
        Err(err) => return Ok(Outcome::Skipped(Skip::Render(compose::describe(&err)))),
    };
    let note = NewNote {
        rule: rule.name.clone(),
        customer_id: customer.id_text.clone(),
        occasion: candidate.occasion.clone(),
        priority: rule.priority,
        due_at: due_at(rule, candidate, now),
        timezone: recipient
            .timezone
            .iana_name()
            .unwrap_or(&config.timezone_name)
            .to_string(),
        letter,
    };
    if let Some(other) = outbox.same_address(
        &note.rule,
        &note.occasion,
        &note.letter.recipient,
        &note.customer_id,
    )? {
        return Ok(Outcome::Skipped(Skip::SameAddress(other)));
    }
    // The outbox logs each note once its group is committed.
    match outbox.enqueue(&note, now)? {
        Some(_) => Ok(Outcome::Queued {
            subject: note.letter.subject,
            recipient: note.letter.recipient,
        }),
        None => Ok(Outcome::Skipped(Skip::AlreadyQueued(
            crate::note::NoteState::Queued,
        ))),
    }
}

/// When a note may go: `delay` after the event behind it (or after now).
fn due_at(rule: &Rule, candidate: &Candidate, now: Timestamp) -> Timestamp {
    let from = candidate
        .happened_at
        .and_then(|at| Timestamp::from_second(at).ok())
        .unwrap_or(now);
    from.checked_add(rule.delay).unwrap_or(now).max(now)
}
