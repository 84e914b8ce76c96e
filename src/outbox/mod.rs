//! Outbox: rekindle's own SQLite state database: every note, its state and its history.
//!
//! Every note has an idempotency key (rule, customer, occasion) under a unique index, so no
//! scan, restart or reload can queue the same note twice. A note moves
//! `queued → sending → sent | retry | failed`, and one found in `sending` at start-up (the
//! daemon died mid-send) becomes `unknown`: it is never resent blindly.
//!
//! A dry run (`plan`) opens the database read-only and records its would-be notes in a TEMP
//! table; every query reads `all_notes`, the union of both, so a plan sees its own decisions.

mod delivery;
mod enqueue;
mod handed;
mod history;
pub(crate) mod inbound;
mod operator;
mod preferences;
mod schema;
mod settings;
mod status;
pub(crate) use status::NotYetDue;
mod suppress;
mod waiting;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub(crate) use delivery::{Parked, StoredNote, Update};
pub(crate) use enqueue::NewNote;
use enqueue::{Group, Queued};
pub(crate) use handed::HandedOver;
pub(crate) use operator::OperatorAction;
pub(crate) use preferences::Stop;
use schema::{OVERLAY, migrate, schema};
pub(crate) use settings::Setting;

/// A problem with the state database.
#[derive(Debug, thiserror::Error)]
#[error("state database {path}: {source}")]
pub(crate) struct OutboxError {
    path: String,
    source: Cause,
}

/// What went wrong with the state database (or the file beside it).
#[derive(Debug, thiserror::Error)]
enum Cause {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    File(String),
}

/// The state database.
pub(crate) struct Outbox {
    conn: Connection,
    path: String,
    dry_run: bool,
    /// The group of queued notes not yet committed (see [`Outbox::enqueue`]).
    group: std::cell::Cell<Option<Group>>,
    /// The notes of the open group, logged once it is committed.
    uncommitted: std::cell::RefCell<Vec<Queued>>,
}

/// When a commit is on disk: before it returns, or at the next synced commit (in order).
#[derive(Clone, Copy)]
enum Sync {
    Full,
    Deferred,
}

/// The state database's page cache (SQLite's default is 2 MiB), in KiB. More is faster for a
/// large state database and costs the same in memory for each connection (1M customers without
/// daily limits, an evaluation queueing 530,000 notes: 64 MiB 56 s, 16 MiB 63 s, 8 MiB 72 s; the
/// demo's rules' `run --once` peaked at 70 MiB with 16 MiB, 62 MiB with 8).
const CACHE_KIB: i64 = 8 * 1024;

/// The pages the WAL grows to before a commit copies them into the database: SQLite's default
/// (4 MiB), and during a whole evaluation (see [`Outbox::begin_bulk`]) 64 MiB.
const CHECKPOINT_PAGES: i64 = 1_000;
const BULK_CHECKPOINT_PAGES: i64 = 16_384;

/// Creates the directory of the state database at `path` if it is missing, for rekindle's user
/// alone (0700): what it keeps, customers' addresses and their notes, is nobody else's. Under
/// systemd it is the unit's StateDirectory=. A failure shows up when the file is opened.
pub(crate) fn state_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
}

impl Outbox {
    /// Opens (creating if needed) the state database for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let err = |source: rusqlite::Error| OutboxError {
            path: path.display().to_string(),
            source: source.into(),
        };
        state_dir(path);
        let new = !path.exists();
        let conn = Connection::open(path).map_err(err)?;
        if new {
            // Before the first write: SQLite gives the -wal and -shm files the same mode.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
            // Temporary files in memory: statement journals and the dry run's overlay, which
            // SQLite otherwise writes to a temporary file past 64 KiB. Before the temporary
            // view below: changing it drops every temporary object.
            conn.pragma_update(None, "temp_store", "MEMORY")?;
            schema::add_columns(&conn)?;
            conn.execute_batch(&schema())?;
            migrate(&conn)?;
            conn.execute_batch(
                "CREATE TEMP VIEW all_notes AS SELECT rule, customer_id, occasion, state, created_at, recipient FROM main.notes;",
            )
        };
        setup().map_err(err)?;
        Ok(Outbox {
            conn,
            path: path.display().to_string(),
            dry_run: false,
            group: Default::default(),
            uncommitted: Default::default(),
        })
    }

    /// Opens the state database read-only for a dry run; a missing database reads as empty.
    /// Nothing this outbox does is ever written to disk.
    pub(crate) fn open_dry_run(path: &Path) -> Result<Outbox, OutboxError> {
        let err = |source: rusqlite::Error| OutboxError {
            path: path.display().to_string(),
            source: source.into(),
        };
        let conn = if path.exists() {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags).map_err(err)?;
            conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
            conn
        } else {
            let conn = Connection::open_in_memory().map_err(err)?;
            conn.execute_batch(&schema()).map_err(err)?;
            conn
        };
        conn.execute_batch(OVERLAY).map_err(err)?;
        schema::inbound_stand_in(&conn).map_err(err)?;
        Ok(Outbox {
            conn,
            path: path.display().to_string(),
            dry_run: true,
            group: Default::default(),
            uncommitted: Default::default(),
        })
    }

    /// A whole evaluation queues notes by the thousand: until [`Outbox::end_bulk`], the WAL
    /// grows to 64 MiB before a commit copies it into the database, not SQLite's 4 MiB, so a
    /// page that several groups change (an index's, at random) is copied once for them all
    /// (1M customers without daily limits: 13.5 GB written, 10.8 GB so).
    pub(crate) fn begin_bulk(&self) -> Result<(), OutboxError> {
        self.checkpoint_every(BULK_CHECKPOINT_PAGES)
    }

    /// Commits what the bulk queued and copies the WAL at once, so that no later commit, an
    /// event's note or a delivery's, pays for the bulk; then SQLite's interval again.
    pub(crate) fn end_bulk(&self) -> Result<(), OutboxError> {
        if !self.dry_run {
            self.flush()?;
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(|e| self.err(e))?;
        }
        self.checkpoint_every(CHECKPOINT_PAGES)
    }

    fn checkpoint_every(&self, pages: i64) -> Result<(), OutboxError> {
        match self.dry_run {
            true => Ok(()),
            false => self
                .conn
                .pragma_update(None, "wal_autocheckpoint", pages)
                .map_err(|e| self.err(e)),
        }
    }

    /// Whether this is a dry run (nothing is written).
    pub(crate) fn is_dry_run(&self) -> bool {
        self.dry_run
    }
    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            source: source.into(),
        }
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
}

impl Drop for Outbox {
    /// Notes already queued are good: commit the last group rather than lose it.
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::error!("{err}");
        }
    }
}

#[cfg(test)]
mod tests;
