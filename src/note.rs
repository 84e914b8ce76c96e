//! A note's state: the one place where each state is spelled as it is stored in the state
//! database's `state` columns, and the sets of states the pipeline asks about.
//!
//! A note moves `queued → sending → sent | retry | failed`, and a sent note whose hard bounce
//! comes back is `bounced`; `retry` goes back to `sending`; one
//! caught mid-send becomes `unknown` for an operator; `queued`, `retry` and `unknown` may be
//! `cancelled`. A dry run records its would-be notes as `planned`; `held` only names the event
//! of a note set aside for quiet hours (the note itself stays waiting).

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NoteState {
    /// Waiting for its due time.
    Queued,
    /// Claimed by a delivery; the transport has it or is about to.
    Sending,
    /// The server accepted it.
    Sent,
    /// A temporary failure: tried again at its due time.
    Retry,
    /// Never sent: a permanent failure, or retries ran out.
    Failed,
    /// Sent, and a hard bounce came back for it: it never arrived.
    Bounced,
    /// The handover broke off (or the process died mid-send): it may have arrived.
    Unknown,
    /// Cancelled before sending (an operator, an opt-out, the suppression list).
    Cancelled,
    /// Only in a dry run: would be queued.
    Planned,
    /// Only in the event history: set aside until its hold ends.
    Held,
}

impl NoteState {
    /// Every state, in the order `status` lists them.
    pub(crate) const ALL: [NoteState; 10] = [
        NoteState::Queued,
        NoteState::Sending,
        NoteState::Sent,
        NoteState::Retry,
        NoteState::Failed,
        NoteState::Bounced,
        NoteState::Unknown,
        NoteState::Cancelled,
        NoteState::Planned,
        NoteState::Held,
    ];

    /// Waiting to be delivered.
    pub(crate) const WAITING: [NoteState; 2] = [NoteState::Queued, NoteState::Retry];

    /// Reached no one: they do not count against cooldowns and the cap.
    pub(crate) const NOT_COUNTING: [NoteState; 3] =
        [NoteState::Failed, NoteState::Cancelled, NoteState::Bounced];

    /// An operator may queue these again.
    pub(crate) const RESENDABLE: [NoteState; 4] = [
        NoteState::Unknown,
        NoteState::Failed,
        NoteState::Retry,
        NoteState::Cancelled,
    ];

    /// An operator may cancel these.
    pub(crate) const CANCELLABLE: [NoteState; 3] =
        [NoteState::Queued, NoteState::Retry, NoteState::Unknown];

    /// The state as stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NoteState::Queued => "queued",
            NoteState::Sending => "sending",
            NoteState::Sent => "sent",
            NoteState::Retry => "retry",
            NoteState::Failed => "failed",
            NoteState::Bounced => "bounced",
            NoteState::Unknown => "unknown",
            NoteState::Cancelled => "cancelled",
            NoteState::Planned => "planned",
            NoteState::Held => "held",
        }
    }

    /// The state stored as `text`, if it is one.
    pub(crate) fn parse(text: &str) -> Option<NoteState> {
        NoteState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// `states` as an SQL list, `('queued', 'retry')`, for queries and partial indexes.
    pub(crate) fn sql_list(states: &[NoteState]) -> String {
        let quoted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        format!("({})", quoted.join(", "))
    }
}

impl fmt::Display for NoteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl ToSql for NoteState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for NoteState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        NoteState::parse(text).ok_or_else(|| {
            FromSqlError::Other(format!("unknown note state {text:?} in the state database").into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::NoteState;

    #[test]
    fn every_state_reads_back_as_itself() {
        for state in NoteState::ALL {
            assert_eq!(NoteState::parse(state.as_str()), Some(state));
        }
        assert_eq!(NoteState::parse("sent "), None);
        assert_eq!(
            NoteState::sql_list(&NoteState::WAITING),
            "('queued', 'retry')"
        );
    }
}
