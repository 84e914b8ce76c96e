//! `rekindle outbox list|resend|cancel`: an operator looks at notes and decides on them.

use std::path::Path;

use jiff::Timestamp;

use super::local_time;
use crate::config::Config;
use crate::error::Error;
use crate::note::NoteState;
use crate::outbox::{OperatorAction, Outbox};

/// `rekindle outbox list|resend|cancel`.
pub(crate) fn outbox(path: &Path, action: crate::cli::OutboxAction) -> Result<(), Error> {
    use crate::cli::OutboxAction;
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    let now = crate::clock::now();
    match action {
        OutboxAction::List { state, limit } => {
            let state = state.as_deref().map(parse_state).transpose()?;
            let outbox = Outbox::open_dry_run(&config.state_path)?;
            let notes = outbox.list(state, limit)?;
            if notes.is_empty() {
                say!(
                    "no notes{}",
                    state.map(|s| format!(" in state {s}")).unwrap_or_default()
                );
            }
            for n in notes {
                let when = local_time(&config, n.updated_at, "%Y-%m-%d %H:%M");
                let due = if NoteState::WAITING.contains(&n.state) && n.due_at > now.as_second() {
                    format!(" due {}", local_time(&config, n.due_at, "%Y-%m-%d %H:%M"))
                } else {
                    String::new()
                };
                say!(
                    "{:>6}  {:<9} {when}  {:<20} customer {:<8} <{}> {:?} attempts {}{due}{}",
                    n.id,
                    n.state,
                    n.rule,
                    n.customer_id,
                    n.recipient,
                    n.subject,
                    n.attempts,
                    n.detail
                        .map(|d| format!("\n        {d}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OutboxAction::Resend { ids, all, state } => {
            let outbox = Outbox::open(&config.state_path)?;
            let ids = match (all, state) {
                (true, Some(state)) => outbox.ids_in_state(parse_state(&state)?)?,
                _ => ids,
            };
            decide_notes(&outbox, &ids, OperatorAction::Resend, now)
        }
        OutboxAction::Cancel { ids } => {
            let outbox = Outbox::open(&config.state_path)?;
            decide_notes(&outbox, &ids, OperatorAction::Cancel, now)
        }
    }
}

/// Applies an operator's resend or cancel to each note; fails if any was refused.
fn decide_notes(
    outbox: &Outbox,
    ids: &[i64],
    action: OperatorAction,
    now: Timestamp,
) -> Result<(), Error> {
    if ids.is_empty() {
        say!("no notes to change");
        return Ok(());
    }
    let mut refused = 0;
    for &id in ids {
        match outbox.operator(id, action, now)? {
            Ok(was) => {
                let done = match action {
                    OperatorAction::Resend => "queued again",
                    OperatorAction::Cancel => "cancelled",
                };
                tracing::info!(note_id = id, previous = %was, "note {done} by an operator");
                say!("note {id}: {was} -> {done}");
            }
            Err(why) => {
                eprintln!("note {id}: {why}");
                refused += 1;
            }
        }
    }
    if refused > 0 {
        return Err(Error::Usage(format!("{refused} note(s) left unchanged")));
    }
    Ok(())
}

/// A state named on the command line.
fn parse_state(text: &str) -> Result<NoteState, Error> {
    NoteState::parse(text.trim()).ok_or_else(|| {
        let states: Vec<&str> = NoteState::ALL.iter().map(|s| s.as_str()).collect();
        Error::Usage(format!(
            "unknown note state {text:?}{}; states: {}",
            crate::config::diag::suggestion(text, states.iter().copied()),
            states.join(", ")
        ))
    })
}
