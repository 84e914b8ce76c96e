//! An operator's view of the notes (`outbox list`) and decisions on them (resend, cancel).

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Outbox, OutboxError};
use crate::note::NoteState;

/// One note as `outbox list` shows it.
#[derive(Debug, Clone)]
pub(crate) struct NoteSummary {
    /// Its id.
    pub id: i64,
    /// Its rule.
    pub rule: String,
    /// Its customer.
    pub customer_id: String,
    /// Its state.
    pub state: NoteState,
    /// The address.
    pub recipient: String,
    /// The subject.
    pub subject: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// The last error or server reply.
    pub detail: Option<String>,
    /// When it is due, Unix seconds.
    pub due_at: i64,
}

/// What an operator decides for a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperatorAction {
    /// Queue it again, due now.
    Resend,
    /// Never send it.
    Cancel,
}

impl OperatorAction {
    /// The states a note may be in for this action, the state it moves to, and the word for it.
    fn rule(self) -> (&'static [NoteState], NoteState, &'static str) {
        match self {
            OperatorAction::Resend => (&NoteState::RESENDABLE, NoteState::Queued, "resent"),
            OperatorAction::Cancel => (&NoteState::CANCELLABLE, NoteState::Cancelled, "cancelled"),
        }
    }
}

/// Why an operator's decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// There is no such note.
    #[error("no note {0}")]
    NoNote(i64),
    /// The note is in a state the action does not apply to.
    #[error("note {id} is {state}; only {allowed} notes can be {done}")]
    WrongState {
        /// The note.
        id: i64,
        /// Its state.
        state: NoteState,
        /// The states the action applies to.
        allowed: String,
        /// The action's word.
        done: &'static str,
    },
}

impl Outbox {
    /// Notes (in `state`, if given), newest first.
    pub(crate) fn list(
        &self,
        state: Option<NoteState>,
        limit: u32,
    ) -> Result<Vec<NoteSummary>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<NoteSummary>> {
            self.conn
                .prepare(
                    "SELECT id, rule, customer_id, state, recipient, subject, attempts, updated_at,
                            CASE WHEN state = ?3 THEN server ELSE last_error END, due_at
                     FROM notes WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(params![state, limit, NoteState::Sent], |r| {
                    Ok(NoteSummary {
                        id: r.get(0)?,
                        rule: r.get(1)?,
                        customer_id: r.get(2)?,
                        state: r.get(3)?,
                        recipient: r.get(4)?,
                        subject: r.get(5)?,
                        attempts: r.get(6)?,
                        updated_at: r.get(7)?,
                        detail: r.get(8)?,
                        due_at: r.get(9)?,
                    })
                })?
                .collect()
        };
        q().map_err(|e| self.err(e))
    }

    /// Ids of the notes in `state`.
    pub(crate) fn ids_in_state(&self, state: NoteState) -> Result<Vec<i64>, OutboxError> {
        Ok(self.notes_in_state(state)?.iter().map(|n| n.id).collect())
    }

    /// An operator's decision on one note. Returns the note's previous state, or why the
    /// decision was refused.
    pub(crate) fn operator(
        &self,
        id: i64,
        action: OperatorAction,
        now: Timestamp,
    ) -> Result<Result<NoteState, Refused>, OutboxError> {
        let state: Option<NoteState> = self
            .conn
            .query_row("SELECT state FROM notes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(state) = state else {
            return Ok(Err(Refused::NoNote(id)));
        };
        let (allowed, next, done) = action.rule();
        if !allowed.contains(&state) {
            let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            return Ok(Err(Refused::WrongState {
                id,
                state,
                allowed: allowed.join(", "),
                done,
            }));
        }
        let why = format!("{done} by an operator");
        self.transition(id, next, now, Some(&why), Some(now))?;
        Ok(Ok(state))
    }
}
