//! Outbox: rekindle's own SQLite state database: every note, its state and its history.
//!
//! Every note has an idempotency key (rule, customer, occasion) under a unique index, so no
//! scan, restart or reload can queue the same note twice. A note moves
//! `queued → sending → sent | retry | failed`, and one found in `sending` at start-up (the
//! daemon died mid-send) becomes `unknown`: it is never resent blindly.
//!
//! A dry run (`plan`) opens the database read-only and records its would-be notes in a TEMP
//! table; every query reads `all_notes`, the union of both, so a plan sees its own decisions.

use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::compose::Letter;
use crate::decide::History;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notes (
    id           INTEGER PRIMARY KEY,
    rule         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    occasion     TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    state        TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    display_name TEXT,
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    body_html    TEXT,
    message_id   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    server       TEXT,
    timezone     TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS notes_key ON notes(rule, customer_id, occasion);
-- A customer's notes: a rule's last one (cooldowns), without reading the rule's every note,
-- and those of every rule (the cap), by the first column. Every index is written for every note
-- queued, in random order, so there is no second one by customer.
CREATE INDEX IF NOT EXISTS notes_customer_rule ON notes(customer_id, rule, created_at);
CREATE INDEX IF NOT EXISTS notes_due ON notes(state, due_at);
-- The delivery order, over waiting notes only: claiming a batch reads the batch, not the backlog.
CREATE INDEX IF NOT EXISTS notes_ready ON notes(priority DESC, due_at, id)
    WHERE state IN ('queued', 'retry');
CREATE INDEX IF NOT EXISTS notes_rule_created ON notes(rule, created_at);
CREATE TABLE IF NOT EXISTS note_events (
    id      INTEGER PRIMARY KEY,
    note_id INTEGER NOT NULL REFERENCES notes(id),
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX IF NOT EXISTS note_events_note ON note_events(note_id);
CREATE TABLE IF NOT EXISTS suppressions (
    key    TEXT PRIMARY KEY COLLATE NOCASE,
    reason TEXT NOT NULL,
    at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Customers a window rule skipped for a reason that passes with time (a cooldown, the cap): its
-- next run between two whole readings of the log looks at them again, and at the customers
-- with new interactions, not at its whole window.
-- The id is kept as the log stores it (no type here), so the log finds it by its own type.
CREATE TABLE IF NOT EXISTS rule_waiting (
    rule        TEXT NOT NULL,
    customer_id NOT NULL,
    PRIMARY KEY (rule, customer_id)
) WITHOUT ROWID;
";

/// The plan's scratch table and the view every query reads.
const OVERLAY: &str = "
CREATE TEMP TABLE planned (
    rule TEXT NOT NULL, customer_id TEXT NOT NULL, occasion TEXT NOT NULL,
    state TEXT NOT NULL, created_at INTEGER NOT NULL,
    UNIQUE (rule, customer_id, occasion)
);
CREATE INDEX temp.planned_customer ON planned(customer_id, rule, created_at);
CREATE INDEX temp.planned_rule ON planned(rule, created_at);
CREATE TEMP VIEW all_notes AS
    SELECT rule, customer_id, occasion, state, created_at FROM main.notes
    UNION ALL SELECT rule, customer_id, occasion, state, created_at FROM temp.planned;
";

/// Notes that count against cooldowns and the cap: every state but failed and cancelled (those
/// reached no one), as an SQL condition on `state` to follow the column's name. Written as the
/// two states it leaves out: a list of the six it keeps made each lookup three times slower.
const COUNTING: &str = "NOT IN ('failed', 'cancelled')";

/// A problem with the state database.
#[derive(Debug, thiserror::Error)]
#[error("state database {path}: {source}")]
pub(crate) struct OutboxError {
    path: String,
    source: rusqlite::Error,
}

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

/// What the delivery gate says about a due note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Send it now.
    Go,
    /// Not now: due again at this time, for this reason.
    Hold(Timestamp, String),
    /// Never: cancelled, for this reason.
    Cancel(String),
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

/// The state database.
pub(crate) struct Outbox {
    conn: Connection,
    path: String,
    dry_run: bool,
    /// The group of queued notes not yet committed (see [`Outbox::enqueue`]).
    group: std::cell::Cell<Option<Group>>,
}

/// A write transaction opened by [`Outbox::enqueue`]: when it began, how many notes it holds.
#[derive(Clone, Copy)]
struct Group {
    began: Instant,
    notes: u32,
}

/// When a commit is on disk: before it returns, or at the next synced commit (in order).
#[derive(Clone, Copy)]
enum Sync {
    Full,
    Deferred,
}

/// Enqueued notes are committed in groups of this many (and by [`Outbox::flush`]), each without
/// waiting for the disk (see [`Outbox::enqueue`]): a crash loses at most the newest groups,
/// which the next evaluation queues again. A note lands in random places of the indexes by
/// customer, so each commit writes out most of their pages whatever its size: the larger the
/// group, the fewer times (at 1M customers, 256 wrote about 3 pages per note). The pages a group
/// changes must fit in [`CACHE_KIB`].
const ENQUEUE_GROUP: u32 = 2048;

/// A group is committed once this old, however few notes it holds: the daemon's other
/// connections (delivery, the event trigger) wait for it to write, and a rule may go on for
/// seconds between two notes (skipping customers, or counting those beyond its daily limit).
const GROUP_TIME: Duration = Duration::from_millis(200);

/// The state database's page cache (SQLite's default is 2 MiB), in KiB.
const CACHE_KIB: i64 = 16 * 1024;

impl Outbox {
    /// Opens (creating if needed) the state database for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let err = |source| OutboxError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            // The directory is rekindle's own (StateDirectory=); a failure shows up on open.
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(err)?;
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
            conn.execute_batch(SCHEMA)?;
            migrate(&conn)?;
            conn.execute_batch(
                "CREATE TEMP VIEW all_notes AS SELECT rule, customer_id, occasion, state, created_at FROM main.notes;",
            )
        };
        setup().map_err(err)?;
        Ok(Outbox {
            conn,
            path: path.display().to_string(),
            dry_run: false,
            group: Default::default(),
        })
    }

    /// Opens the state database read-only for a dry run; a missing database reads as empty.
    /// Nothing this outbox does is ever written to disk.
    pub(crate) fn open_dry_run(path: &Path) -> Result<Outbox, OutboxError> {
        let err = |source| OutboxError {
            path: path.display().to_string(),
            source,
        };
        let conn = if path.exists() {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags).map_err(err)?;
            conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
            conn
        } else {
            let conn = Connection::open_in_memory().map_err(err)?;
            conn.execute_batch(SCHEMA).map_err(err)?;
            conn
        };
        conn.execute_batch(OVERLAY).map_err(err)?;
        Ok(Outbox {
            conn,
            path: path.display().to_string(),
            dry_run: true,
            group: Default::default(),
        })
    }

    /// Whether this is a dry run (nothing is written).
    pub(crate) fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            source,
        }
    }

    /// What this rule and every rule already did for `customer`, as the policy needs it: this
    /// rule's last note only if it is later than `cooldown_since`, the notes since `cap_since`.
    pub(crate) fn history(
        &self,
        rule: &str,
        customer: &str,
        occasion: &str,
        cooldown_since: Timestamp,
        cap_since: Timestamp,
    ) -> Result<History, OutboxError> {
        // Asked for every candidate of every rule. rusqlite's statement cache clears a
        // statement's bindings when it takes it back, and SQLite then plans again (~10 µs) any
        // statement whose plan looked at a parameter, as max() and ORDER BY do: so no max()
        // here, one statement of cheap questions, and the rule's notes to the customer (a few)
        // only for a customer still in its cooldown, their latest picked here.
        let q = || -> rusqlite::Result<History> {
            let (occasion_state, in_cooldown, in_cap_window) =
                self.conn.prepare_cached(&history_sql())?.query_row(
                    params![
                        rule,
                        customer,
                        occasion,
                        cooldown_since.as_second(),
                        cap_since.as_second()
                    ],
                    |r| Ok((r.get(0)?, r.get::<_, bool>(1)?, r.get(2)?)),
                )?;
            let last_from_rule = match in_cooldown {
                false => None,
                true => self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT created_at FROM all_notes
                         WHERE rule = ?1 AND customer_id = ?2 AND state {COUNTING}"
                    ))?
                    .query_map(params![rule, customer], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?
                    .into_iter()
                    .max()
                    .and_then(|s| Timestamp::from_second(s).ok()),
            };
            Ok(History {
                occasion_state,
                last_from_rule,
                in_cap_window,
            })
        };
        q().map_err(|e| self.err(e))
    }

    /// rekindle's own notes to `customer` since `since` that reached (or will reach) them: each
    /// is a positive touch point.
    pub(crate) fn notes_to(&self, customer: &str, since: Timestamp) -> Result<i64, OutboxError> {
        self.conn
            .prepare_cached(&notes_to_sql())
            .and_then(|mut s| s.query_row(params![customer, since.as_second()], |r| r.get(0)))
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

    /// How many notes `rule` queued since `since` (for daily limits).
    pub(crate) fn queued_since(&self, rule: &str, since: Timestamp) -> Result<u32, OutboxError> {
        self.conn
            .prepare_cached("SELECT count(*) FROM all_notes WHERE rule = ?1 AND created_at >= ?2")
            .and_then(|mut s| s.query_row(params![rule, since.as_second()], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Queues a note, once: returns its id, or None when a note with the same key exists.
    /// Notes are committed in groups: call [`Outbox::flush`] when done queueing.
    pub(crate) fn enqueue(
        &self,
        note: &NewNote,
        now: Timestamp,
    ) -> Result<Option<i64>, OutboxError> {
        let now = now.as_second();
        if self.dry_run {
            // Cached statements (here as below): a statement prepared again for every note
            // costs more than running it.
            let exists: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM all_notes WHERE rule = ?1 AND customer_id = ?2 AND occasion = ?3)",
                )
                .and_then(|mut s| {
                    s.query_row(params![note.rule, note.customer_id, note.occasion], |r| {
                        r.get(0)
                    })
                })
                .map_err(|e| self.err(e))?;
            if exists {
                return Ok(None);
            }
            let n = self
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO temp.planned (rule, customer_id, occasion, state, created_at)
                     VALUES (?1, ?2, ?3, 'planned', ?4)",
                )
                .and_then(|mut s| s.execute(params![note.rule, note.customer_id, note.occasion, now]))
                .map_err(|e| self.err(e))?;
            return Ok((n == 1).then_some(0));
        }
        let insert = || -> rusqlite::Result<Option<i64>> {
            let n = self.conn.prepare_cached(
                "INSERT INTO notes (rule, customer_id, occasion, priority, state, recipient, display_name,
                                    subject, body_text, body_html, message_id, created_at, due_at, updated_at,
                                    timezone)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9, ?10, ?11, max(?11, ?12), ?11, ?13)
                 ON CONFLICT (rule, customer_id, occasion) DO NOTHING",
            )?
            .execute(params![
                note.rule,
                note.customer_id,
                note.occasion,
                note.priority,
                note.letter.recipient,
                note.letter.display_name,
                note.letter.subject,
                note.letter.body_text,
                note.letter.body_html,
                note.letter.message_id,
                now,
                note.due_at.as_second(),
                note.timezone
            ])?;
            if n == 0 {
                return Ok(None);
            }
            let id = self.conn.last_insert_rowid();
            self.conn
                .prepare_cached(
                    "INSERT INTO note_events (note_id, at, state) VALUES (?1, ?2, 'queued')",
                )?
                .execute(params![id, now])?;
            Ok(Some(id))
        };
        let grouped = || -> rusqlite::Result<Option<i64>> {
            if self.conn.is_autocommit() {
                // A group is not synced to disk on its own: the WAL keeps commits in order, so
                // a machine losing power loses the newest groups whole, with the rule marks
                // written after them, and the next evaluation queues those notes again.
                // Claiming notes for delivery is synced, which takes every group before it to
                // disk first.
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
            // The note and its event land together or not at all.
            self.conn.prepare_cached("SAVEPOINT enqueue")?.execute([])?;
            let id = match insert() {
                Ok(id) => id,
                Err(err) => {
                    self.conn
                        .execute_batch("ROLLBACK TO enqueue; RELEASE enqueue")?;
                    return Err(err);
                }
            };
            self.conn.prepare_cached("RELEASE enqueue")?.execute([])?;
            if let (Some(mut group), Some(_)) = (self.group.get(), id) {
                group.notes += 1;
                self.group.set(Some(group));
                if group.notes >= ENQUEUE_GROUP || self.group_is_old() {
                    self.flush_inner()?;
                }
            }
            Ok(id)
        };
        grouped().map_err(|e| self.err(e))
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

    /// A write transaction, after committing any queued group. IMMEDIATE: it takes the write
    /// lock up front (waiting out the busy timeout), so it can never fail half-way because
    /// another connection wrote first.
    fn begin(&self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.begin_with(Sync::Full)
    }

    fn begin_with(&self, sync: Sync) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.flush_inner()?;
        self.set_sync(sync)?;
        rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)
    }

    /// Whether the next transaction's commit waits for the disk (SQLite may change this only
    /// between transactions).
    fn set_sync(&self, sync: Sync) -> rusqlite::Result<()> {
        let level = match sync {
            Sync::Full => "FULL",
            Sync::Deferred => "NORMAL",
        };
        self.conn.pragma_update(None, "synchronous", level)
    }

    fn flush_inner(&self) -> rusqlite::Result<()> {
        self.group.set(None);
        if self.dry_run || self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("COMMIT")?;
        self.set_sync(Sync::Full)
    }

    /// At start-up: notes left in `sending` by a daemon that died mid-send become `unknown`.
    /// Returns them, so each can be logged for an operator to resolve.
    pub(crate) fn park_interrupted(&self, now: Timestamp) -> Result<Vec<StoredNote>, OutboxError> {
        let notes = self.notes_in_state("sending")?;
        for note in &notes {
            self.transition(note.id, "unknown", now, Some("the daemon stopped while this note was being sent; it may or may not have arrived"), None)?;
        }
        Ok(notes)
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
                    "SELECT {NOTE_COLUMNS} FROM notes INDEXED BY notes_ready
                     WHERE state IN ('queued', 'retry') AND due_at <= ?1
                     ORDER BY priority DESC, due_at, id LIMIT ?2"
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
                            "UPDATE notes SET state = 'sending', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
                        )?
                        .execute(params![note.id, now.as_second()])?;
                        tx.prepare_cached(
                            "INSERT INTO note_events (note_id, at, state) VALUES (?1, ?2, 'sending')",
                        )?
                        .execute(params![note.id, now.as_second()])?;
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
                            "INSERT INTO note_events (note_id, at, state, detail) VALUES (?1, ?2, 'held', ?3)",
                            params![note.id, now.as_second(), why],
                        )?;
                    }
                    Gate::Cancel(why) => {
                        set_aside += 1;
                        transition_in(&tx, note.id, "cancelled", now, Some(&why), None)?;
                    }
                }
            }
            tx.commit()?;
            Ok((claimed, set_aside))
        };
        claim().map_err(|e| self.err(e))
    }

    /// Whether a customer (by id or email, case-insensitive) is on the suppression list.
    pub(crate) fn suppressed(&self, customer_id: &str, email: &str) -> Result<bool, OutboxError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM suppressions WHERE key = ?1)
                     OR EXISTS (SELECT 1 FROM suppressions WHERE key = ?2)",
            )
            .and_then(|mut s| s.query_row(params![customer_id, email], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Which of `keys` (customer ids or emails, case-insensitive) are on the suppression list:
    /// [`Outbox::suppressed`] for many at once.
    pub(crate) fn suppressed_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, OutboxError> {
        let read = || -> rusqlite::Result<std::collections::HashSet<String>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT j.value FROM json_each(?1) j
                 WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.key = j.value)",
            )?;
            let rows = stmt.query_map([crate::log::json_list(keys)], |r| r.get(0))?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    /// Adds keys (customer ids or emails) to the suppression list; returns how many were new.
    pub(crate) fn suppress(
        &self,
        keys: &[String],
        reason: &str,
        now: Timestamp,
    ) -> Result<usize, OutboxError> {
        let add = || -> rusqlite::Result<usize> {
            let tx = self.begin()?;
            let mut added = 0;
            for key in keys {
                added += tx.execute(
                    "INSERT INTO suppressions (key, reason, at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
                    params![key.trim(), reason, now.as_second()],
                )?;
            }
            tx.commit()?;
            Ok(added)
        };
        add().map_err(|e| self.err(e))
    }

    /// Removes keys from the suppression list; returns how many were there.
    pub(crate) fn unsuppress(&self, keys: &[String]) -> Result<usize, OutboxError> {
        let remove = || -> rusqlite::Result<usize> {
            let tx = self.begin()?;
            let mut removed = 0;
            for key in keys {
                removed += tx.execute("DELETE FROM suppressions WHERE key = ?1", [key.trim()])?;
            }
            tx.commit()?;
            Ok(removed)
        };
        remove().map_err(|e| self.err(e))
    }

    /// The suppression list: (key, reason, when added), oldest first.
    pub(crate) fn suppressions(&self) -> Result<Vec<(String, String, i64)>, OutboxError> {
        self.conn
            .prepare("SELECT key, reason, at FROM suppressions ORDER BY at, key")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
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
            }
            tx.commit()?;
            self.set_sync(Sync::Full)
        };
        finish().map_err(|e| self.err(e))
    }

    /// A value from the `meta` table.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a value in the `meta` table.
    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<(), OutboxError> {
        self.flush()?;
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The customers `rule` skipped for a reason that passes with time (see `rule_waiting`).
    pub(crate) fn waiting(&self, rule: &str) -> Result<Vec<Value>, OutboxError> {
        let read = || -> rusqlite::Result<Vec<Value>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT customer_id FROM rule_waiting WHERE rule = ?1")?;
            let rows = stmt.query_map([rule], |r| r.get(0))?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    /// After a run of `rule`: of the customers it looked at (all of them when `looked_at` is
    /// `None`), `waiting` are those it skipped for a reason that passes with time.
    pub(crate) fn set_waiting(
        &self,
        rule: &str,
        looked_at: Option<&[Value]>,
        waiting: &[Value],
    ) -> Result<(), OutboxError> {
        if self.dry_run {
            return Ok(());
        }
        let write = || -> rusqlite::Result<()> {
            let tx = self.begin()?;
            match looked_at {
                None => {
                    tx.execute("DELETE FROM rule_waiting WHERE rule = ?1", [rule])?;
                }
                Some(ids) => {
                    let mut delete = tx.prepare_cached(
                        "DELETE FROM rule_waiting WHERE rule = ?1 AND customer_id = ?2",
                    )?;
                    for id in ids {
                        delete.execute(params![rule, id])?;
                    }
                }
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO rule_waiting (rule, customer_id) VALUES (?1, ?2)",
            )?;
            for id in waiting {
                insert.execute(params![rule, id])?;
            }
            drop(insert);
            tx.commit()
        };
        write().map_err(|e| self.err(e))
    }

    /// Moves a note to `state`, recording why, and for `retry` when to try again.
    pub(crate) fn transition(
        &self,
        id: i64,
        state: &str,
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
    pub(crate) fn notes_in_state(&self, state: &str) -> Result<Vec<StoredNote>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<StoredNote>> {
            self.conn
                .prepare(&format!(
                    "SELECT {NOTE_COLUMNS} FROM notes WHERE state = ?1 ORDER BY id"
                ))?
                .query_map([state], read_note)?
                .collect()
        };
        q().map_err(|e| self.err(e))
    }

    /// The number of notes in each state.
    pub(crate) fn counts(&self) -> Result<Vec<(String, i64)>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<(String, i64)>> {
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
                "SELECT count(*) FROM notes WHERE state = 'sent' AND sent_at >= ?1",
                [since.as_second()],
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
            .prepare(
                "SELECT DISTINCT customer_id FROM notes WHERE state = 'sent' AND sent_at >= ?1",
            )
            .and_then(|mut s| s.query_map([since.as_second()], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))
    }

    /// The oldest note still waiting (queued or retry): its creation time.
    pub(crate) fn oldest_waiting(&self) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row(
                "SELECT min(created_at) FROM notes WHERE state IN ('queued', 'retry')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The most recent error recorded on any note: (note id, when, text).
    pub(crate) fn last_error(&self) -> Result<Option<(i64, i64, String)>, OutboxError> {
        self.conn
            .query_row(
                "SELECT note_id, at, detail FROM note_events
                 WHERE state IN ('retry', 'failed', 'unknown') AND detail IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

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
    pub state: String,
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
}

impl Drop for Outbox {
    /// Notes already queued are good: commit the last group rather than lose it.
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::error!("{err}");
        }
    }
}

/// States an operator may resend from, and states that may be cancelled.
const RESENDABLE: [&str; 4] = ["unknown", "failed", "retry", "cancelled"];
const CANCELLABLE: [&str; 3] = ["queued", "retry", "unknown"];

impl Outbox {
    /// Notes (in `state`, if given), newest first.
    pub(crate) fn list(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NoteSummary>, OutboxError> {
        let q = || -> rusqlite::Result<Vec<NoteSummary>> {
            self.conn
                .prepare(
                    "SELECT id, rule, customer_id, state, recipient, subject, attempts, updated_at,
                            CASE WHEN state = 'sent' THEN server ELSE last_error END
                     FROM notes WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(params![state, limit], |r| {
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
                    })
                })?
                .collect()
        };
        q().map_err(|e| self.err(e))
    }

    /// Ids of the notes in `state`.
    pub(crate) fn ids_in_state(&self, state: &str) -> Result<Vec<i64>, OutboxError> {
        Ok(self.notes_in_state(state)?.iter().map(|n| n.id).collect())
    }

    /// An operator's decision on one note: `resend` (queue it again now) or `cancel`.
    /// Returns the note's previous state, or why the decision was refused.
    pub(crate) fn operator(
        &self,
        id: i64,
        resend: bool,
        now: Timestamp,
    ) -> Result<Result<String, String>, OutboxError> {
        let state: Option<String> = self
            .conn
            .query_row("SELECT state FROM notes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(state) = state else {
            return Ok(Err(format!("no note {id}")));
        };
        let (allowed, next, done): (&[&str], &str, &str) = if resend {
            (&RESENDABLE, "queued", "resent")
        } else {
            (&CANCELLABLE, "cancelled", "cancelled")
        };
        if !allowed.contains(&state.as_str()) {
            return Ok(Err(format!(
                "note {id} is {state}; only {} notes can be {done}",
                allowed.join(", ")
            )));
        }
        let why = format!("{done} by an operator");
        self.transition(id, next, now, Some(&why), Some(now))?;
        Ok(Ok(state))
    }
}

/// A note's new state after a delivery attempt.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The note.
    pub id: i64,
    /// "sent", "retry" or "failed".
    pub state: &'static str,
    /// The server's reply or the error.
    pub detail: String,
    /// For "retry": when to try again.
    pub due_at: Option<Timestamp>,
}

impl Update {
    /// An update.
    pub(crate) fn new(
        id: i64,
        state: &'static str,
        detail: String,
        due_at: Option<Timestamp>,
    ) -> Update {
        Update {
            id,
            state,
            detail,
            due_at,
        }
    }
}

/// Moves a note to `state` inside a transaction, with an event row.
fn transition_in(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    state: &str,
    now: Timestamp,
    detail: Option<&str>,
    due_at: Option<Timestamp>,
) -> rusqlite::Result<()> {
    let now = now.as_second();
    tx.prepare_cached(
        "UPDATE notes SET state = ?2, updated_at = ?3,
                sent_at = CASE WHEN ?2 = 'sent' THEN ?3 ELSE sent_at END,
                last_error = CASE WHEN ?2 = 'sent' THEN last_error ELSE coalesce(?4, last_error) END,
                server = CASE WHEN ?2 = 'sent' THEN ?4 ELSE server END,
                due_at = coalesce(?5, due_at)
         WHERE id = ?1",
    )?
    .execute(params![id, state, now, detail, due_at.map(|t| t.as_second())])?;
    tx.prepare_cached(
        "INSERT INTO note_events (note_id, at, state, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, now, state, detail])?;
    Ok(())
}

const NOTE_COLUMNS: &str = "id, rule, customer_id, recipient, display_name, subject, \
     body_text, body_html, message_id, attempts, created_at, timezone";

/// A candidate's history in one statement (see [`Outbox::history`]): ?1 rule, ?2 customer,
/// ?3 occasion, ?4 cooldown start, ?5 cap window start.
fn history_sql() -> String {
    format!(
        "SELECT (SELECT state FROM all_notes
                 WHERE rule = ?1 AND customer_id = ?2 AND occasion = ?3),
                EXISTS (SELECT 1 FROM all_notes WHERE rule = ?1 AND customer_id = ?2
                        AND created_at > ?4 AND state {COUNTING}),
                (SELECT count(*) FROM all_notes
                 WHERE customer_id = ?2 AND created_at >= ?5 AND state {COUNTING})"
    )
}

/// A customer's notes that count (see [`Outbox::notes_to`]): ?1 customer, ?2 since.
fn notes_to_sql() -> String {
    format!(
        "SELECT count(*) FROM all_notes WHERE customer_id = ?1 AND created_at >= ?2 AND state {COUNTING}"
    )
}

/// Brings a state database written by an older rekindle up to date.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_timezone: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('notes') WHERE name = 'timezone')",
        [],
        |r| r.get(0),
    )?;
    if !has_timezone {
        conn.execute_batch("ALTER TABLE notes ADD COLUMN timezone TEXT")?;
    }
    // Replaced by notes_customer_rule's first column (see the schema).
    conn.execute_batch("DROP INDEX IF EXISTS notes_customer")
}

fn read_note(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredNote> {
    Ok(StoredNote {
        id: r.get(0)?,
        rule: r.get(1)?,
        customer_id: r.get(2)?,
        letter: Letter {
            recipient: r.get(3)?,
            display_name: r.get(4)?,
            subject: r.get(5)?,
            body_text: r.get(6)?,
            body_html: r.get(7)?,
            message_id: r.get(8)?,
        },
        attempts: r.get(9)?,
        created_at: r.get(10)?,
        timezone: r.get(11)?,
    })
}

#[cfg(test)]
mod tests;
