//! The state database's tables and indexes, the dry run's overlay, and migrations from older
//! versions.

use rusqlite::Connection;

use super::StoredNote;
use crate::compose::Letter;
use crate::note::NoteState;

/// The tables and indexes, as `CREATE … IF NOT EXISTS` (see [`schema`]).
const TABLES: &str = "
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
    message_id   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    server       TEXT,
    timezone     TEXT,
    token        BLOB
);
-- What a note says, apart: a change of state rewrites a row of a few dozen bytes, not one of
-- kilobytes (a claim of 128 notes wrote about 128 pages to the WAL and synced them).
-- With html_lang, body_html is the letter's block and the page around it (the same for every
-- note: about 1 kB) is put back when read, in that language; without, the whole page.
CREATE TABLE IF NOT EXISTS note_bodies (
    note_id   INTEGER PRIMARY KEY REFERENCES notes(id),
    body_text TEXT NOT NULL,
    body_html TEXT,
    html_lang TEXT
);
-- Every index below is written for every note queued, most of them in random order (a rule
-- meets its customers by urgency, not by id): each one more or longer costs a page written for
-- each note once the database outgrows the page cache. So one index serves both the
-- idempotency key and a customer's notes (a rule's last one for cooldowns, those of every rule
-- for the cap), by its first columns.
CREATE UNIQUE INDEX IF NOT EXISTS notes_customer_key ON notes(customer_id, rule, occasion);
CREATE INDEX IF NOT EXISTS notes_due ON notes(state, due_at);
-- The delivery order, over waiting notes only: claiming a batch reads the batch, not the backlog.
CREATE INDEX IF NOT EXISTS notes_ready ON notes(priority DESC, due_at, id)
    WHERE state IN {waiting};
CREATE INDEX IF NOT EXISTS notes_rule_created ON notes(rule, created_at);
-- One note per address per occasion: who else of a rule's occasion has this address, looked
-- up by the address (a ratio or seasonal rule's occasion is shared by every note it queues
-- that day or season: a look by occasion read them all, for each candidate). By its first
-- column, the customers written to at an address (a mailed unsubscribe).
CREATE INDEX IF NOT EXISTS notes_address ON notes(recipient COLLATE NOCASE, rule, occasion);
-- A bounce or a reply names its note by the Message-ID's token (see `outbox::inbound`): found
-- by the token's first 8 bytes, `token` (see `token_of`), a key far shorter than the
-- Message-ID's 50 bytes or more.
CREATE INDEX IF NOT EXISTS notes_token ON notes(token);
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
-- Notes `sending` whose message had started on its way to the server, as earlier builds kept
-- them: read at start-up, no longer written (see `outbox/handed.rs`).
CREATE TABLE IF NOT EXISTS handed_over (
    note_id INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL
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

/// What came back: by mail (see `outbox::inbound`) and from the preferences page (see
/// `outbox::preferences`).
const INBOUND: &str = "
-- What came back, each message once (by its Message-ID, else a hash): bounces, complaints,
-- replies, mailed unsubscribes. `dated` is when it was written, `at` when rekindle read it.
CREATE TABLE IF NOT EXISTS inbound (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    dated       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    note_id     INTEGER,
    rule        TEXT,
    customer_id TEXT,
    address     TEXT COLLATE NOCASE,
    status      TEXT,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS inbound_customer ON inbound(customer_id, kind, dated);
CREATE INDEX IF NOT EXISTS inbound_address ON inbound(address, kind, dated);
CREATE INDEX IF NOT EXISTS inbound_at ON inbound(at);
-- Where each IMAP folder was read up to (UIDVALIDITY, the last UID handled), and which maildir
-- files were handled (by the unique part of the name).
CREATE TABLE IF NOT EXISTS inbound_marks (
    source      TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    PRIMARY KEY (source, folder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbound_seen (
    source TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (source, name)
) WITHOUT ROWID;
-- How each mailbox last went, for `status`.
CREATE TABLE IF NOT EXISTS inbound_sources (
    source   TEXT PRIMARY KEY,
    ok_at    INTEGER,
    error_at INTEGER,
    error    TEXT
);
-- What each customer chose on the preferences page: the kinds of notes they refused (a JSON
-- list of category keys) and a personal cap (one note every `every_days`). A customer who
-- stops everything is on the suppression list instead.
CREATE TABLE IF NOT EXISTS preferences (
    customer_id TEXT PRIMARY KEY,
    refused     TEXT NOT NULL,
    every_days  INTEGER,
    at          INTEGER NOT NULL
);
";

/// The tables and indexes of a state database.
pub(super) fn schema() -> String {
    TABLES.replace("{waiting}", &NoteState::sql_list(&NoteState::WAITING)) + INBOUND
}

/// For a dry run on a state database an older rekindle wrote: each of the inbound tables it
/// lacks, empty and temporary, so every query reads as it would on a new one.
pub(super) fn inbound_stand_in(conn: &Connection) -> rusqlite::Result<()> {
    for table in INBOUND.split(';').filter(|s| s.contains("CREATE TABLE")) {
        let name = table
            .split("IF NOT EXISTS")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default();
        let has: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(
                &(table.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE") + ";"),
            )?;
        }
    }
    Ok(())
}

/// The plan's scratch table and the view every query reads.
pub(super) const OVERLAY: &str = "
PRAGMA temp.journal_mode = MEMORY;
PRAGMA temp.cache_size = -8192;
CREATE TEMP TABLE planned (
    rule TEXT NOT NULL, customer_id TEXT NOT NULL, occasion TEXT NOT NULL,
    state TEXT NOT NULL, created_at INTEGER NOT NULL, recipient TEXT NOT NULL DEFAULT '',
    UNIQUE (customer_id, rule, occasion)
);
CREATE INDEX temp.planned_rule ON planned(rule, created_at);
CREATE INDEX temp.planned_occasion ON planned(rule, occasion, recipient COLLATE NOCASE);
CREATE TEMP VIEW all_notes AS
    SELECT rule, customer_id, occasion, state, created_at, recipient FROM main.notes
    UNION ALL SELECT rule, customer_id, occasion, state, created_at, recipient FROM temp.planned;
";

/// The columns [`read_note`] reads, in its order, from `notes` [`WITH_BODIES`].
pub(super) const NOTE_COLUMNS: &str = "id, rule, customer_id, recipient, display_name, subject, \
     body_text, body_html, message_id, attempts, created_at, timezone, html_lang";

/// What joins each note to its bodies, behind `FROM notes` (and its `INDEXED BY`): notes first.
pub(super) const WITH_BODIES: &str = "CROSS JOIN note_bodies ON note_bodies.note_id = notes.id";

/// The index key `token` of `message_id` (SQL standing for a Message-ID, or its start up to
/// the dot): the first 8 bytes of its token, `<` and 16 hex digits. Not ours, it is NULL.
pub(super) fn token_of(message_id: &str) -> String {
    format!("unhex(substr({message_id}, 2, 16))")
}

/// Adds the columns a state database written by an older rekindle lacks, before [`schema`]
/// makes the indexes on them (then [`migrate`] does the rest).
pub(super) fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = |column| has_column(conn, "notes", column);
    if !has("id")? {
        // A new database: the schema makes the table whole.
        return Ok(());
    }
    // A database older still has no note_bodies: the schema makes it, with the column.
    if has_column(conn, "note_bodies", "note_id")? && !has_column(conn, "note_bodies", "html_lang")?
    {
        conn.execute_batch("ALTER TABLE note_bodies ADD COLUMN html_lang TEXT")?;
    }
    if !has("timezone")? {
        conn.execute_batch("ALTER TABLE notes ADD COLUMN timezone TEXT")?;
    }
    if !has("token")? {
        conn.execute_batch("ALTER TABLE notes ADD COLUMN token BLOB")?;
    }
    Ok(())
}

/// Whether `table` has `column` (a missing table has none).
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )
}

/// Brings a state database written by an older rekindle up to date, after [`add_columns`]
/// and [`schema`].
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    // Replaced (see the schema): by notes_customer_key, notes_customer (by its first column),
    // notes_key and notes_customer_rule; by notes_address, the indexes by rule and occasion; by
    // notes_token, notes_message_id.
    conn.execute_batch(
        "DROP INDEX IF EXISTS notes_customer;
         DROP INDEX IF EXISTS notes_rule_occasion;
         DROP INDEX IF EXISTS notes_rule_occasion_address;
         DROP INDEX IF EXISTS notes_key;
         DROP INDEX IF EXISTS notes_customer_rule;
         DROP INDEX IF EXISTS notes_message_id;",
    )?;
    // The tokens of notes an older rekindle queued (also after a downgrade and back): looked
    // for by the index (NULL comes first), and written, with the write lock, only if any.
    let untokened = format!("token IS NULL AND {} IS NOT NULL", token_of("message_id"));
    let any: bool = conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM notes WHERE {untokened})"),
        [],
        |r| r.get(0),
    )?;
    if any {
        conn.execute(
            &format!(
                "UPDATE notes SET token = {} WHERE {untokened}",
                token_of("message_id")
            ),
            [],
        )?;
    }
    if has_column(conn, "notes", "body_text")? {
        // Once, in one transaction: the bodies move to note_bodies (see the schema).
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT OR IGNORE INTO note_bodies (note_id, body_text, body_html)
                 SELECT id, body_text, body_html FROM notes;
             ALTER TABLE notes DROP COLUMN body_text;
             ALTER TABLE notes DROP COLUMN body_html;
             COMMIT;",
        )?;
    }
    Ok(())
}

/// A note as [`NOTE_COLUMNS`] reads it.
pub(super) fn read_note(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredNote> {
    Ok(StoredNote {
        id: r.get(0)?,
        rule: r.get(1)?,
        customer_id: r.get(2)?,
        letter: Letter {
            recipient: r.get(3)?,
            display_name: r.get(4)?,
            subject: r.get(5)?,
            body_text: r.get(6)?,
            body_html: match (
                r.get_ref(7)?.as_str_or_null()?,
                r.get_ref(12)?.as_str_or_null()?,
            ) {
                (Some(block), Some(tag)) => Some(crate::compose::letter_html(block, tag)),
                (html, _) => html.map(str::to_string),
            },
            message_id: r.get(8)?,
        },
        attempts: r.get(9)?,
        created_at: r.get(10)?,
        timezone: r.get(11)?,
    })
}
