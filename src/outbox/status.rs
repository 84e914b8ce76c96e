//! Figures for `rekindle status`.

use jiff::Timestamp;
use rusqlite::OptionalExtension;

use super::{Outbox, OutboxError};
use crate::note::NoteState;

impl Outbox {
    /// The number of notes in each state.
    pub(crate) fn counts(&self) -> Result<Vec<(NoteState, i64)>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<(NoteState, i64)>> {
            self.conn
                .prepare("SELECT state, count(*) FROM notes GROUP BY state ORDER BY state")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        };
        q().map_err(|e| self.err(e))
    }

    /// Notes sent since `since`.
    pub(crate) fn sent_since(&self, since: Timestamp) -> Result<i64, OutboxError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM notes WHERE state = ?2 AND sent_at >= ?1",
                rusqlite::params![since.as_second(), NoteState::Sent],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The customers rekindle sent a note to since `since`, each once.
    pub(crate) fn customers_sent_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<String>, OutboxError> {
        self.conn
            .prepare("SELECT DISTINCT customer_id FROM notes WHERE state = ?2 AND sent_at >= ?1")
            .and_then(|mut s| {
                s.query_map(rusqlite::params![since.as_second(), NoteState::Sent], |r| {
                    r.get(0)
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// The oldest note still waiting (queued or retry): its creation time.
    pub(crate) fn oldest_waiting(&self) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT min(created_at) FROM notes WHERE state IN {}",
                    NoteState::sql_list(&NoteState::WAITING)
                ),
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The most recent error recorded on any note: (note id, when, text).
    pub(crate) fn last_error(&self) -> Result<Option<(i64, i64, String)>, OutboxError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT note_id, at, detail FROM note_events
                     WHERE state IN {} AND detail IS NOT NULL
                     ORDER BY id DESC LIMIT 1",
                    NoteState::sql_list(&[NoteState::Retry, NoteState::Failed, NoteState::Unknown])
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
