//! Claiming due notes for delivery and recording each outcome: a note is `sending` (committed)
//! before a transport sees it, so a crash can never send it twice.

use jiff::Timestamp;
use rusqlite::params;

use super::handed::Mark;
use super::schema::{NOTE_COLUMNS, WITH_BODIES, read_note};
use super::{Outbox, OutboxError, Sync};
use crate::compose::Letter;
use crate::decide::Gate;
use crate::note::NoteState;

/// The notes a previous run left `sending`, settled at start-up (see
/// [`Outbox::park_interrupted`]).
#[derive(Debug, Default)]
pub(crate) struct Parked {
    /// On their way without an answer: now `unknown`.
    pub unknown: Vec<StoredNote>,
    /// Never reached the server: queued again.
    pub back: Vec<StoredNote>,
    /// Taken by the server before the run stopped: now `sent`.
    pub sent: Vec<StoredNote>,
}

/// A note read back for delivery or display.
#[derive(Debug, Clone)]
pub(crate) struct StoredNote {
    /// Its id.
    pub id: i64,
    /// The rule.
    pub rule: String,
    /// The customer.
    pub customer_id: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was queued, Unix seconds.
    pub created_at: i64,
    /// The customer's time zone (IANA name), if recorded.
    pub timezone: Option<String>,
    /// What it says, and to whom.
    pub letter: Letter,
}

impl Outbox {
    /// At start-up: the notes a previous run left `sending`. Those whose message had started
    /// on its way (see [`super::HandedOver`]) without an answer from the server become
    /// `unknown` (they may have arrived; an operator decides), and so does every one when the
    /// machine restarted since (`same_boot` false: writes not yet synced may be lost, so "not on
    /// its way" cannot be trusted) or the marks cannot be read. Those the server took are
    /// `sent`; the others never arrived: they are queued again, the attempt uncounted.
    pub(crate) fn park_interrupted(
        &self,
        now: Timestamp,
        same_boot: bool,
    ) -> Result<Parked, OutboxError> {
        let notes = self.notes_in_state(NoteState::Sending)?;
        if notes.is_empty() {
            return self.clear_handed().map(|()| Parked::default());
        }
        // After a reboot every note counts as on its way: the marks are read only on the same boot.
        let mut marks = same_boot
            .then(|| {
                let sending = notes.iter().map(|n| (n.id, n.attempts)).collect();
                self.read_handed(&sending).inspect_err(|why| {
                    tracing::warn!("{why}: which notes were on their way is not known, so every note left `sending` is parked as unknown");
                })
            })
            .and_then(Result::ok);
        // Also the marks an earlier rekindle kept in a table.
        let in_table = |id: i64| -> rusqlite::Result<bool> {
            self.conn
                .prepare_cached("SELECT 1 FROM handed_over WHERE note_id = ?1")?
                .exists([id])
        };
        let mut parked = Parked::default();
        let mut updates = Vec::with_capacity(notes.len());
        for note in notes {
            let mark = match marks.as_mut() {
                None => Some(Mark::OnItsWay),
                Some(marks) => marks.remove(&(note.id, note.attempts)),
            };
            let mark = match mark {
                None if in_table(note.id).map_err(|e| self.err(e))? => Some(Mark::OnItsWay),
                mark => mark,
            };
            let (state, detail, due_at, into) = match mark {
                Some(Mark::Sent(reply)) => (
                    NoteState::Sent,
                    format!("{reply} (recorded at the next start: the previous run stopped before it could)"),
                    None,
                    &mut parked.sent,
                ),
                Some(Mark::OnItsWay) => (
                    NoteState::Unknown,
                    "the previous run stopped while this note was on its way to the server; it may or may not have arrived".into(),
                    None,
                    &mut parked.unknown,
                ),
                Some(Mark::Back) | None => (
                    NoteState::Queued,
                    "the previous run stopped before this note reached the server; it goes again".into(),
                    Some(now),
                    &mut parked.back,
                ),
            };
            updates.push(Update::new(note.id, state, detail, due_at));
            into.push(note);
        }
        self.finish_batch(&updates, now)?;
        self.conn
            .execute("DELETE FROM handed_over", [])
            .map_err(|e| self.err(e))?;
        self.clear_handed()?;
        Ok(parked)
    }

    /// Claims the next note due for delivery (see [`Outbox::claim_batch`]).
    #[cfg(test)]
    pub(crate) fn claim_next(&self, now: Timestamp) -> Result<Option<StoredNote>, OutboxError> {
        Ok(self
            .claim_batch(now, 1, &mut |due| vec![Gate::Go; due.len()])?
            .0
            .into_iter()
            .next())
    }

    /// Claims up to `limit` notes due for delivery (highest priority, then oldest), marking them
    /// `sending` in one committed transaction before anything is handed to a transport. `gate`
    /// sees each note first and may hold it for later (quiet hours) or cancel it (an opt-out
    /// that arrived after it was queued). Returns the claimed notes and how many were held or
    /// cancelled.
    pub(crate) fn claim_batch(
        &self,
        now: Timestamp,
        limit: usize,
        gate: &mut dyn FnMut(&[StoredNote]) -> Vec<Gate>,
    ) -> Result<(Vec<StoredNote>, usize), OutboxError> {
        let mut claim = || -> rusqlite::Result<(Vec<StoredNote>, usize)> {
            let tx = self.begin()?;
            let due: Vec<StoredNote> = tx
                .prepare_cached(&format!(
                    "SELECT {NOTE_COLUMNS} FROM notes INDEXED BY notes_ready {WITH_BODIES}
                     WHERE state IN {waiting} AND due_at <= ?1
                     ORDER BY priority DESC, due_at, id LIMIT ?2",
                    waiting = NoteState::sql_list(&NoteState::WAITING)
                ))?
                .query_map(
                    params![now.as_second(), limit.min(i64::MAX as usize) as i64],
                    read_note,
                )?
                .collect::<Result<_, _>>()?;
            let mut claimed = Vec::with_capacity(due.len());
            let mut set_aside = 0;
            let gates = gate(&due);
            for (note, gate) in due.into_iter().zip(gates) {
                match gate {
                    Gate::Go => {
                        tx.prepare_cached(
                            "UPDATE notes SET state = ?3, attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
                        )?
                        .execute(params![note.id, now.as_second(), NoteState::Sending])?;
                        tx.prepare_cached(
                            "INSERT INTO note_events (note_id, at, state) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![
                            note.id,
                            now.as_second(),
                            NoteState::Sending
                        ])?;
                        claimed.push(StoredNote {
                            attempts: note.attempts + 1,
                            ..note
                        });
                    }
                    Gate::Hold(until, why) => {
                        set_aside += 1;
                        tx.execute(
                            "UPDATE notes SET due_at = ?2, updated_at = ?3 WHERE id = ?1",
                            params![note.id, until.as_second(), now.as_second()],
                        )?;
                        tx.execute(
                            "INSERT INTO note_events (note_id, at, state, detail) VALUES (?1, ?2, ?3, ?4)",
                            params![note.id, now.as_second(), NoteState::Held, why],
                        )?;
                    }
                    Gate::Cancel(why) => {
                        set_aside += 1;
                        transition_in(&tx, note.id, NoteState::Cancelled, now, Some(&why), None)?;
                    }
                }
            }
            tx.commit()?;
            Ok((claimed, set_aside))
        };
        claim().map_err(|e| self.err(e))
    }

    /// Records the outcomes of a delivery batch in one transaction.
    pub(crate) fn finish_batch(
        &self,
        updates: &[Update],
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let finish = || -> rusqlite::Result<()> {
            // Not synced to disk on its own: if the machine loses power before the next claim
            // (which syncs the log, this included), these notes read `sending` at restart and
            // are parked as `unknown`, never resent. The claim that marks notes `sending` before
            // they go is always synced: that one guards against duplicates.
            let tx = self.begin_with(Sync::Deferred)?;
            for u in updates {
                transition_in(&tx, u.id, u.state, now, Some(&u.detail), u.due_at)?;
                // Back in the queue from `sending`: the note never left, the attempt is not
                // counted.
                if u.state == NoteState::Queued {
                    tx.prepare_cached(
                        "UPDATE notes SET attempts = max(attempts - 1, 0) WHERE id = ?1",
                    )?
                    .execute([u.id])?;
                }
                if u.suppress_address {
                    tx.prepare_cached(
                        "INSERT INTO suppressions (key, reason, at)
                         SELECT recipient, 'refused at delivery (note ' || id || '): ' || ?2, ?3
                         FROM notes WHERE id = ?1
                         ON CONFLICT (key) DO NOTHING",
                    )?
                    .execute(params![u.id, u.detail, now.as_second()])?;
                }
            }
            tx.commit()?;
            self.set_sync(Sync::Full)
        };
        finish().map_err(|e| self.err(e))
    }

    /// Moves a note to `state`, recording why, and for `retry` when to try again.
    pub(crate) fn transition(
        &self,
        id: i64,
        state: NoteState,
        now: Timestamp,
        detail: Option<&str>,
        due_at: Option<Timestamp>,
    ) -> Result<(), OutboxError> {
        let update = || -> rusqlite::Result<()> {
            let tx = self.begin()?;
            transition_in(&tx, id, state, now, detail, due_at)?;
            tx.commit()
        };
        update().map_err(|e| self.err(e))
    }

    /// Notes in `state`, oldest first.
    pub(crate) fn notes_in_state(&self, state: NoteState) -> Result<Vec<StoredNote>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<StoredNote>> {
            self.conn
                .prepare(&format!(
                    "SELECT {NOTE_COLUMNS} FROM notes {WITH_BODIES} WHERE state = ?1 ORDER BY id"
                ))?
                .query_map([state], read_note)?
                .collect()
        };
        q().map_err(|e| self.err(e))
    }
}

/// A note's new state after a delivery attempt.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The note.
    pub id: i64,
    /// Sent, retry, failed, unknown, or queued again (the attempt did not count).
    pub state: NoteState,
    /// The server's reply or the error.
    pub detail: String,
    /// For a retry: when to try again.
    pub due_at: Option<Timestamp>,
    /// The server refused the address itself (5.1.x): it goes on the suppression list.
    pub suppress_address: bool,
}

impl Update {
    /// An update.
    pub(crate) fn new(
        id: i64,
        state: NoteState,
        detail: String,
        due_at: Option<Timestamp>,
    ) -> Update {
        Update {
            id,
            state,
            detail,
            due_at,
            suppress_address: false,
        }
    }
}

/// Moves a note to `state` inside a transaction, with an event row.
fn transition_in(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    state: NoteState,
    now: Timestamp,
    detail: Option<&str>,
    due_at: Option<Timestamp>,
) -> rusqlite::Result<()> {
    let now = now.as_second();
    tx.prepare_cached(
        "UPDATE notes SET state = ?2, updated_at = ?3,
                sent_at = CASE WHEN ?6 THEN ?3 ELSE sent_at END,
                last_error = CASE WHEN ?6 THEN NULL ELSE coalesce(?4, last_error) END,
                server = CASE WHEN ?6 THEN ?4 ELSE server END,
                due_at = coalesce(?5, due_at)
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        state,
        now,
        detail,
        due_at.map(|t| t.as_second()),
        state == NoteState::Sent
    ])?;
    tx.prepare_cached(
        "INSERT INTO note_events (note_id, at, state, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, now, state, detail])?;
    Ok(())
}
