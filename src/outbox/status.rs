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

    /// The notes that bounced, by rule.
    pub(crate) fn bounced_by_rule(&self) -> Result<Vec<(String, i64)>, OutboxError> {
        self.conn
            .prepare("SELECT rule, count(*) FROM notes WHERE state = ?1 GROUP BY rule")
            .and_then(|mut s| {
                s.query_map([NoteState::Bounced], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Notes sent since `since` (those that bounced since included).
    pub(crate) fn sent_since(&self, since: Timestamp) -> Result<i64, OutboxError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM notes WHERE state IN (?2, ?3) AND sent_at >= ?1",
                rusqlite::params![since.as_second(), NoteState::Sent, NoteState::Bounced],
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

    /// Notes waiting (queued or retry) that are not due yet at `now`: how many, when the first
    /// goes, and why it was last held, if it was (quiet hours, quiet days).
    pub(crate) fn not_yet_due(&self, now: Timestamp) -> Result<Option<NotYetDue>, OutboxError> {
        let q = || -> rusqlite::Result<Option<NotYetDue>> {
            let (count, next, id): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
                &format!(
                    "SELECT count(*), min(due_at),
                            (SELECT id FROM notes WHERE state IN {w} AND due_at > ?1
                             ORDER BY due_at, id LIMIT 1)
                     FROM notes WHERE state IN {w} AND due_at > ?1",
                    w = NoteState::sql_list(&NoteState::WAITING)
                ),
                [now.as_second()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let (Some(next), Some(id)) = (next, id) else {
                return Ok(None);
            };
            let why: Option<String> = self
                .conn
                .query_row(
                    "SELECT detail FROM note_events WHERE note_id = ?1 AND state = ?2
                     ORDER BY id DESC LIMIT 1",
                    rusqlite::params![id, NoteState::Held],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            Ok(Some(NotYetDue { count, next, why }))
        };
        q().map_err(|e| self.err(e))
    }
}

/// Notes waiting for their time (see [`Outbox::not_yet_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotYetDue {
    /// How many.
    pub count: i64,
    /// When the first goes, Unix seconds.
    pub next: i64,
    /// Why the first was last held, if it was.
    pub why: Option<String>,
}
