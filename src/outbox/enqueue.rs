//! Queueing notes, once each (the idempotency key), committed in groups.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Outbox, OutboxError, Sync, schema};
use crate::compose::Letter;
use crate::note::NoteState;

/// A note to be queued.
#[derive(Debug, Clone)]
pub(crate) struct NewNote {
    /// The rule's name.
    pub rule: String,
    /// The customer's id.
    pub customer_id: String,
    /// The occasion.
    pub occasion: String,
    /// The rule's priority (delivery order).
    pub priority: i64,
    /// When it may be sent (now, or later for a rule with a `delay`).
    pub due_at: Timestamp,
    /// The customer's time zone (IANA name), for quiet hours.
    pub timezone: String,
    /// What it says, and to whom.
    pub letter: Letter,
}

/// A write transaction opened by [`Outbox::enqueue`]: when it began, how many notes it holds.
#[derive(Clone, Copy)]
pub(super) struct Group {
    began: Instant,
    notes: u32,
}

/// A note of the open group: logged as queued once the group is committed, so the log never
/// claims a note a crash or a full disk took back.
pub(super) struct Queued {
    id: i64,
    rule: String,
    customer_id: String,
    occasion: String,
}

/// Enqueued notes are committed in groups of this many (and by [`Outbox::flush`]), each without
/// waiting for the disk (see [`Outbox::enqueue`]): a crash loses at most the newest groups,
/// which the next evaluation queues again. A note lands in random places of the indexes by
/// customer, so each commit writes out most of their pages whatever its size: the larger the
/// group, the fewer times. The pages a group changes must fit in the page cache (`CACHE_KIB`).
const ENQUEUE_GROUP: u32 = 2048;

/// A group is committed once this old, however few notes it holds: the daemon's other
/// connections (delivery, the event trigger) wait for it to write, and a rule may go on for
/// seconds between two notes (skipping customers, or counting those beyond its daily limit).
pub(super) const GROUP_TIME: Duration = Duration::from_millis(200);

impl Outbox {
    /// Another customer whose note of `rule` for `occasion` goes to the same address, if one
    /// is queued, sent or planned: one person, one note (two records sharing an inbox get one
    /// card).
    pub(crate) fn same_address(
        &self,
        rule: &str,
        occasion: &str,
        recipient: &str,
        customer_id: &str,
    ) -> Result<Option<String>, OutboxError> {
        self.conn
            .prepare_cached(same_address_sql())
            .and_then(|mut stmt| {
                stmt.query_row(params![rule, occasion, recipient, customer_id], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// The notes a dry run planned: (rule, customer, when), in order.
    #[cfg(test)]
    pub(crate) fn planned(&self) -> Result<Vec<(String, String, i64)>, OutboxError> {
        self.conn
            .prepare(
                "SELECT rule, customer_id, created_at FROM temp.planned ORDER BY created_at, rowid",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Queues a note, once: returns its id, or None when a note with the same key exists (a dry
    /// run returns 0 for a note it would queue). Notes are committed in groups: call
    /// [`Outbox::flush`] when done queueing.
    pub(crate) fn enqueue(
        &self,
        note: &NewNote,
        now: Timestamp,
    ) -> Result<Option<i64>, OutboxError> {
        let now = now.as_second();
        let result = match self.dry_run {
            true => self.plan(note, now),
            false => self.enqueue_grouped(note, now),
        };
        result.map_err(|e| self.err(e))
    }

    /// A dry run's enqueue: the note is recorded in the overlay only, inside one transaction
    /// until [`Outbox::flush`] (a commit for each note costs more than its insert).
    fn plan(&self, note: &NewNote, now: i64) -> rusqlite::Result<Option<i64>> {
        if self.conn.is_autocommit() {
            self.conn.prepare_cached("BEGIN")?.execute([])?;
        }
        // Cached statements (here as below): a statement prepared again for every note costs
        // more than running it. A note planned already is left out by the insert itself.
        let exists: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM main.notes WHERE rule = ?1 AND customer_id = ?2 AND occasion = ?3)",
            )?
            .query_row(params![note.rule, note.customer_id, note.occasion], |r| {
                r.get(0)
            })?;
        if exists {
            return Ok(None);
        }
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO temp.planned (rule, customer_id, occasion, state, created_at, recipient)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                note.rule,
                note.customer_id,
                note.occasion,
                NoteState::Planned,
                now,
                note.letter.recipient
            ])?;
        Ok((n == 1).then_some(0))
    }

    /// Inserts the note inside the open group (opening one if need be), committing the group
    /// once it is full or old.
    fn enqueue_grouped(&self, note: &NewNote, now: i64) -> rusqlite::Result<Option<i64>> {
        if self.conn.is_autocommit() {
            // A group is not synced to disk on its own: the WAL keeps commits in order, so a
            // machine losing power loses the newest groups whole, with the rule marks written
            // after them, and the next evaluation queues those notes again. Claiming notes for
            // delivery is synced, which takes every group before it to disk first.
            self.set_sync(Sync::Deferred)?;
            if let Err(err) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                self.set_sync(Sync::Full)?;
                return Err(err);
            }
            self.group.set(Some(Group {
                began: Instant::now(),
                notes: 0,
            }));
        }
        let id = match self.insert(note, now) {
            Ok(id) => id,
            Err(err) => {
                // A failure that ended the transaction (a full disk does) took the group along:
                // none of its notes were committed, and the next evaluation queues them again.
                if self.conn.is_autocommit() {
                    self.drop_group()?;
                }
                return Err(err);
            }
        };
        if let (Some(mut group), Some(id)) = (self.group.get(), id) {
            self.uncommitted.borrow_mut().push(Queued {
                id,
                rule: note.rule.clone(),
                customer_id: note.customer_id.clone(),
                occasion: note.occasion.clone(),
            });
            group.notes += 1;
            self.group.set(Some(group));
            if group.notes >= ENQUEUE_GROUP || self.group_is_old() {
                self.flush_inner()?;
            }
        }
        Ok(id)
    }

    /// The note's row, its bodies and its first event, together or not at all; None when its
    /// key exists.
    fn insert(&self, note: &NewNote, now: i64) -> rusqlite::Result<Option<i64>> {
        // A statement that fails writes nothing: a failure here leaves no row of the note.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO notes (rule, customer_id, occasion, priority, state, recipient,
                                    display_name, subject, message_id, created_at, due_at,
                                    updated_at, timezone, token)
                 VALUES (?1, ?2, ?3, ?4, ?12, ?5, ?6, ?7, ?8, ?9, max(?9, ?10), ?9, ?11, {})
                 ON CONFLICT (customer_id, rule, occasion) DO NOTHING",
                schema::token_of("?8")
            )
        });
        let n = self.conn.prepare_cached(&SQL)?.execute(params![
            note.rule,
            note.customer_id,
            note.occasion,
            note.priority,
            note.letter.recipient,
            note.letter.display_name,
            note.letter.subject,
            note.letter.message_id,
            now,
            note.due_at.as_second(),
            note.timezone,
            NoteState::Queued
        ])?;
        if n == 0 {
            return Ok(None);
        }
        let id = self.conn.last_insert_rowid();
        // The letter's block without the page around it, when it has rekindle's own.
        let html = note.letter.body_html.as_deref();
        let (tag, html) = match html.and_then(crate::compose::letter_in_page) {
            Some((tag, block)) => (Some(tag), Some(block)),
            None => (None, html),
        };
        let rest = || -> rusqlite::Result<()> {
            self.conn
                .prepare_cached(
                    "INSERT INTO note_bodies (note_id, body_text, body_html, html_lang)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, note.letter.body_text, html, tag])?;
            self.conn
                .prepare_cached("INSERT INTO note_events (note_id, at, state) VALUES (?1, ?2, ?3)")?
                .execute(params![id, now, NoteState::Queued])?;
            Ok(())
        };
        if let Err(err) = rest() {
            // No savepoint around the note (it would copy every page the note first touches to
            // a journal, about 27 pages a note): what it wrote is deleted again, or, if even
            // that fails, the whole group is rolled back.
            if !self.conn.is_autocommit() && self.take_back(id).is_err() {
                self.conn.execute_batch("ROLLBACK")?;
            }
            return Err(err);
        }
        Ok(Some(id))
    }

    /// Deletes what [`Self::insert`] wrote of note `id`.
    fn take_back(&self, id: i64) -> rusqlite::Result<()> {
        for sql in [
            "DELETE FROM note_events WHERE note_id = ?1",
            "DELETE FROM note_bodies WHERE note_id = ?1",
            "DELETE FROM notes WHERE id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([id])?;
        }
        Ok(())
    }

    /// Forgets a group rolled back, and syncs what is written next again.
    fn drop_group(&self) -> rusqlite::Result<()> {
        self.group.set(None);
        self.uncommitted.borrow_mut().clear();
        self.set_sync(Sync::Full)
    }

    /// Commits the notes enqueued since the last group was committed. Call it before anything
    /// else writes to the outbox (the end of each rule's evaluation).
    pub(crate) fn flush(&self) -> Result<(), OutboxError> {
        self.flush_inner().map_err(|e| self.err(e))
    }

    /// Commits the open group if it is older than [`GROUP_TIME`]: call it between candidates.
    pub(crate) fn flush_if_old(&self) -> Result<(), OutboxError> {
        match self.group_is_old() {
            true => self.flush(),
            false => Ok(()),
        }
    }
    fn group_is_old(&self) -> bool {
        self.group
            .get()
            .is_some_and(|g| g.began.elapsed() >= GROUP_TIME)
    }
    pub(super) fn flush_inner(&self) -> rusqlite::Result<()> {
        self.group.set(None);
        let queued = std::mem::take(&mut *self.uncommitted.borrow_mut());
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("COMMIT")?;
        if self.dry_run {
            return Ok(());
        }
        for q in queued {
            tracing::info!(note_id = q.id, rule = %q.rule, customer_id = %q.customer_id, occasion = %q.occasion, "note queued");
        }
        self.set_sync(Sync::Full)
    }
}

/// Who else of `rule`'s occasion (?1, ?2) has the address ?3 (case aside), other than customer
/// ?4, in a note not cancelled or failed: looked up by the address, not read from all the
/// occasion's notes (a ratio or seasonal rule's occasion is shared by every note it queues).
pub(super) fn same_address_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT customer_id FROM all_notes
         WHERE rule = ?1 AND occasion = ?2 AND recipient = ?3 COLLATE NOCASE
           AND customer_id != ?4 AND state NOT IN {gone} LIMIT 1",
            gone = NoteState::sql_list(&[NoteState::Cancelled, NoteState::Failed])
        )
    });
    &SQL
}
