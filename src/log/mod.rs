//! Log: the business's interaction log, opened strictly read-only.
//!
//! The canonical schema is in `schema.sql` (and the README); a business with other tables
//! creates views with these names. Timestamps are read through SQLite's own `unixepoch()`, so
//! every ISO-8601 form SQLite understands is accepted and anything else is NULL: such rows are
//! skipped and reported, never guessed at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

mod horizon;
mod rows;
mod sql;
mod standing;
pub(crate) use horizon::Horizon;
use rows::text_lossy;
pub(crate) use rows::{BadTimestamp, CustomerRow, InteractionRow, id_text};
pub(crate) use sql::{day_before, json_list, touch_class};
pub(crate) use standing::{Standing, Standings};

/// The canonical schema, also used by `demo` and the tests to create logs.
pub(crate) const SCHEMA: &str = include_str!("schema.sql");

/// The columns rekindle reads, per table.
const REQUIRED: [(&str, &[&str]); 2] = [
    (
        "customers",
        &[
            "id",
            "email",
            "name",
            "timezone",
            "created_at",
            "status",
            "opted_out",
            "attributes",
        ],
    ),
    (
        "interactions",
        &[
            "id",
            "customer_id",
            "at",
            "kind",
            "sentiment",
            "channel",
            "note",
        ],
    ),
];

/// The customer columns every selection returns first, in this order (see [`CustomerRow::read`]).
pub(crate) const CUSTOMER_COLUMNS: &str = "c.id, c.email, c.name, c.timezone, c.created_at, \
     unixepoch(c.created_at, 'auto'), c.status, c.opted_out, c.attributes";

/// How many columns [`CUSTOMER_COLUMNS`] has.
pub(crate) const CUSTOMER_COLUMN_COUNT: usize = 9;

/// A problem opening or reading the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    /// The file is missing or not a SQLite database.
    #[error("cannot open the interaction log {path}: {source}")]
    Open {
        /// The log's path.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("reading the interaction log failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The thread reading a rule's selection ahead of its turn ended without a word (a bug).
    #[error("reading the interaction log failed: the reading thread stopped unexpectedly")]
    Reader,
}

impl LogError {
    /// Why the log cannot be read for now, if that is a passing condition rather than one the
    /// configuration must fix: another program holds its lock (a backup, an import, a VACUUM),
    /// or the file is missing from a directory that exists (it is being replaced, or restored).
    pub(crate) fn passing(&self) -> Option<&'static str> {
        let source = match self {
            LogError::Open { source, .. } | LogError::Query(source) => source,
            LogError::Reader => return None,
        };
        if matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            return Some("another program holds the log's lock (a backup, an import, a VACUUM?)");
        }
        match self {
            LogError::Open { path, .. }
                if !path.exists()
                    && path
                        .parent()
                        .is_some_and(|dir| dir.as_os_str().is_empty() || dir.is_dir()) =>
            {
                Some(
                    "the file is missing (being replaced or restored?); if [paths] log is wrong, fix it",
                )
            }
            _ => None,
        }
    }
}

/// Interactions added since a watermark.
#[derive(Debug)]
pub(crate) struct NewRows {
    /// The newest rowid read: the next watermark.
    pub last_rowid: i64,
    /// How many rows.
    pub count: usize,
    /// Their customers, each once.
    pub customers: Vec<Value>,
}

/// A read-only connection to the interaction log.
pub(crate) struct Log {
    conn: Connection,
    /// The path it was opened with.
    path: PathBuf,
    /// Where recent rows begin, once a full evaluation has learnt it.
    horizon: std::cell::RefCell<Option<Horizon>>,
    /// How the log stores its timestamps, once looked at.
    time_form: std::cell::OnceCell<TimeForm>,
}

/// How a log stores `at`: ISO-8601 text, Unix seconds (an integer, a real, or their digits as
/// text), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeForm {
    Text,
    Numbers,
    Mixed,
}

impl Log {
    /// Opens the log read-only. The file must exist: rekindle never creates or writes it.
    pub(crate) fn open(path: &Path) -> Result<Log, LogError> {
        let open = || -> rusqlite::Result<Connection> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags)?;
            // A writer may hold the lock for a moment; wait rather than fail.
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "query_only", true)?;
            // Touch the schema so a non-database file fails here, not mid-scan.
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(conn)
        };
        open()
            .map(|conn| Log {
                conn,
                path: path.to_path_buf(),
                horizon: Default::default(),
                time_form: Default::default(),
            })
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
            })
    }

    /// A lower bound on `at` for the rows stamped at or after `since` (Unix seconds), in the
    /// form the log stores its times: SQLite compares `at` with it directly, so an index on
    /// `at` can be used. ISO-8601 text: the day before, as a date; Unix seconds: a day before
    /// (seconds stored as text sort after every number, so they all pass); both kinds in one
    /// log: a bound every value passes (numbers sort before text).
    pub(crate) fn time_floor(&self, since: i64) -> Value {
        match self.time_form() {
            TimeForm::Text => Value::from(day_before(since)),
            TimeForm::Numbers => Value::from(since - 86_400),
            TimeForm::Mixed => Value::from(i64::MIN),
        }
    }

    /// How the log stores `at`, judged by its first and its newest thousand rows.
    fn time_form(&self) -> TimeForm {
        *self.time_form.get_or_init(|| {
            let count = |order: &str| -> rusqlite::Result<(i64, i64)> {
                self.conn.query_row(
                    &format!(
                        "SELECT coalesce(sum(typeof(at) = 'text' AND at GLOB '*[^0-9.]*'), 0),
                                coalesce(sum(typeof(at) IN ('integer', 'real')
                                             OR at NOT GLOB '*[^0-9.]*'), 0)
                         FROM (SELECT at FROM interactions {order} LIMIT 1000)"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            };
            match (count(""), count("ORDER BY rowid DESC")) {
                (Ok((t1, n1)), Ok((t2, n2))) => match (t1 + t2, n1 + n2) {
                    (_, 0) => TimeForm::Text,
                    (0, _) => TimeForm::Numbers,
                    _ => TimeForm::Mixed,
                },
                // Not readable now: nothing is ruled out.
                _ => TimeForm::Mixed,
            }
        })
    }

    /// Another connection to the same log, knowing the same horizon (for reading on another
    /// thread).
    pub(crate) fn reopen(&self) -> Result<Log, LogError> {
        let log = Log::open(&self.path)?;
        *log.horizon.borrow_mut() = self.horizon();
        Ok(log)
    }

    /// The underlying connection, for the rule queries.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The log's path, as given.
    pub(crate) fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// What the last full evaluation learnt of where each day's rows begin.
    pub(crate) fn horizon(&self) -> Option<Horizon> {
        self.horizon.borrow().clone()
    }

    /// Where the horizon has read up to, and which whole reading of the log it comes from.
    pub(crate) fn horizon_position(&self) -> Option<(i64, u64)> {
        let horizon = self.horizon.borrow();
        horizon.as_ref().map(|h| (h.watermark(), h.reading()))
    }

    /// The customers of the interactions with a rowid in `after + 1 ..= upto`, each once, as
    /// stored; `None` when there are more than `limit` of them.
    pub(crate) fn customers_between(
        &self,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Option<Vec<Value>>, LogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT customer_id FROM interactions WHERE rowid > ?1 AND rowid <= ?2 LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![after, upto, limit.saturating_add(1) as i64],
            |r| r.get::<_, Value>(0),
        )?;
        let ids = rows.collect::<Result<Vec<_>, _>>()?;
        Ok((ids.len() <= limit).then_some(ids))
    }

    /// Remembers `horizon` for the window rules (see [`Log::first_rowid_since`]).
    pub(crate) fn set_horizon(&self, horizon: Horizon) {
        *self.horizon.borrow_mut() = Some(horizon);
    }

    /// The smallest rowid an interaction stamped at or after `since` (Unix seconds) can have:
    /// the window rules read from there. 0 (the whole table) until a horizon is known.
    pub(crate) fn first_rowid_since(&self, since: i64) -> i64 {
        self.horizon
            .borrow()
            .as_ref()
            .map_or(0, |h| h.first_rowid_since(since))
    }

    /// Every missing table or column, as a sentence that says what to do.
    pub(crate) fn schema_problems(&self) -> Result<Vec<String>, LogError> {
        let mut problems = Vec::new();
        for (table, columns) in REQUIRED {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1)")?;
            let present: Vec<String> = stmt
                .query_map([table], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            if present.is_empty() {
                problems.push(format!(
                    "the log has no table or view named \"{table}\"; create it, or a view with that name over your own tables (see README, \"Interaction log\")"
                ));
                continue;
            }
            for column in columns.iter().filter(|c| !present.iter().any(|p| p == *c)) {
                problems.push(format!(
                    "\"{table}\" has no column \"{column}\"; add it, or expose it through a view (see README, \"Interaction log\")"
                ));
            }
        }
        Ok(problems)
    }

    /// Checks that `segment` is a valid boolean expression over `customers`.
    pub(crate) fn segment_problem(&self, segment: &str) -> Option<String> {
        let sql = format!("SELECT 1 FROM customers WHERE ({segment}) LIMIT 0");
        match self.conn.prepare(&sql) {
            Ok(stmt) if stmt.readonly() => None,
            Ok(_) => Some("the segment would write to the log; it must only read".to_string()),
            Err(err) => {
                let why = match err {
                    rusqlite::Error::SqlInputError { msg, .. } => msg,
                    other => other.to_string(),
                };
                Some(format!(
                    "the segment is not valid SQL over `customers`: {why}"
                ))
            }
        }
    }

    /// Of a sample of the log (its first and its newest thousand interactions): how many were
    /// looked at, how many have a timestamp rekindle cannot read, and a few of those. `check`
    /// refuses a log that is mostly unreadable, which otherwise matches nobody in silence.
    pub(crate) fn timestamp_sample(&self) -> Result<(u64, u64, Vec<BadTimestamp>), LogError> {
        let sample = "SELECT id, customer_id, at FROM (SELECT * FROM (SELECT id, customer_id, at \
                      FROM interactions LIMIT 1000) UNION SELECT * FROM (SELECT id, customer_id, \
                      at FROM interactions ORDER BY rowid DESC LIMIT 1000))";
        let (looked, unreadable): (i64, i64) = self.conn.query_row(
            &format!(
                "SELECT count(*), coalesce(sum(unixepoch(at, 'auto') IS NULL), 0) FROM ({sample})"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, customer_id, at FROM ({sample}) WHERE unixepoch(at, 'auto') IS NULL LIMIT 3"
        ))?;
        let examples = stmt
            .query_map([], |row| {
                Ok(BadTimestamp {
                    interaction_id: id_text(row.get_ref(0)?),
                    customer_id: id_text(row.get_ref(1)?),
                    at: text_lossy(row.get_ref(2)?).unwrap_or_default(),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok((looked.max(0) as u64, unreadable.max(0) as u64, examples))
    }

    /// Interactions whose timestamp SQLite cannot read (skipped by every rule): how many, and
    /// the first `limit` of them. Once a horizon is known it has counted them and kept their
    /// rowids, so only those rows are read (as they read now); otherwise the whole table.
    pub(crate) fn bad_timestamps(
        &self,
        limit: usize,
    ) -> Result<(u64, Vec<BadTimestamp>), LogError> {
        let known = self.horizon.borrow().as_ref().map(Horizon::bad_rows);
        let (count, which) = match known {
            Some((count, rowids)) => (
                count,
                format!(
                    "rowid IN (SELECT value FROM json_each('{}'))",
                    serde_json::Value::from(rowids)
                ),
            ),
            None => {
                let count: i64 = self.conn.query_row(
                    "SELECT count(*) FROM interactions WHERE unixepoch(at, 'auto') IS NULL",
                    [],
                    |row| row.get(0),
                )?;
                (count.max(0) as u64, "1".to_string())
            }
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, customer_id, at FROM interactions
             WHERE {which} AND unixepoch(at, 'auto') IS NULL ORDER BY id LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit as i64], |row| {
                Ok(BadTimestamp {
                    interaction_id: id_text(row.get_ref(0)?),
                    customer_id: id_text(row.get_ref(1)?),
                    at: text_lossy(row.get_ref(2)?).unwrap_or_default(),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok((count, rows))
    }

    /// SQLite's `data_version`: changes whenever another connection commits to the log. Cheap
    /// enough to ask every few hundred milliseconds.
    pub(crate) fn data_version(&self) -> Result<i64, LogError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Up to `limit` interactions added after rowid `after`, in rowid order: the newest rowid
    /// read and the customers they belong to. Reads by rowid, so the cost is the new rows only.
    pub(crate) fn new_interactions(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Option<NewRows>, LogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, customer_id FROM interactions WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let mut rows = stmt.query(rusqlite::params![after, limit as i64])?;
        let mut new = NewRows {
            last_rowid: after,
            count: 0,
            customers: Vec::new(),
        };
        while let Some(row) = rows.next()? {
            new.last_rowid = row.get(0)?;
            new.count += 1;
            let customer: Value = row.get(1)?;
            if !new.customers.contains(&customer) {
                new.customers.push(customer);
            }
        }
        Ok((new.count > 0).then_some(new))
    }

    /// Where event triggers start on a first run: the last rowid of an interaction older than
    /// `since`, so only the window after it counts as new. One scan, once.
    pub(crate) fn rowid_before(&self, since: jiff::Timestamp) -> Result<i64, LogError> {
        Ok(self.conn.query_row(
            "SELECT coalesce(max(rowid), 0) FROM interactions WHERE unixepoch(at, 'auto') < ?1",
            [since.as_second()],
            |r| r.get(0),
        )?)
    }

    /// The log's journal mode, if it is a rollback journal (a reader then holds up writers).
    pub(crate) fn rollback_journal(&self) -> Option<String> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        (!mode.eq_ignore_ascii_case("wal")).then_some(mode)
    }

    /// A problem with reading `interactions` by rowid (a view without one), for `check`.
    pub(crate) fn rowid_problem(&self) -> Option<String> {
        self.conn
            .prepare("SELECT rowid FROM interactions LIMIT 0")
            .err()
            .map(|e| format!("rules with trigger = \"interaction\" read new rows of `interactions` by rowid, which failed ({e}); make `interactions` a table, or a view that selects a `rowid` column that grows with every new row"))
    }

    /// When `interactions` is a view whose rowid does not grow with new rows (a view over
    /// several tables, each with ids of its own): why rekindle cannot follow it. It finds new
    /// interactions by rowid, so such a log's new rows would go unseen. Judged by the 100 newest
    /// interactions by time: one with a rowid below that of a row a day older than all of them
    /// shows that new rows can arrive below the rowids already read.
    pub(crate) fn rowid_order_problem(&self) -> Option<String> {
        let is_view: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'interactions' AND type = 'view'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        if is_view == 0 {
            return None;
        }
        let (behind, example, older): (i64, Option<String>, Option<i64>) = self
            .conn
            .query_row(
                "WITH newest AS (SELECT rowid AS r, id, at, unixepoch(at, 'auto') AS t
                                 FROM interactions WHERE unixepoch(at, 'auto') IS NOT NULL
                                 ORDER BY unixepoch(at, 'auto') DESC LIMIT 100),
                      older AS (SELECT max(rowid) AS m FROM interactions
                                WHERE unixepoch(at, 'auto') < (SELECT min(t) FROM newest) - 86400)
                 SELECT coalesce(sum(r < (SELECT m FROM older)), 0),
                        (SELECT 'interaction ' || id || ' at ' || at || ' has rowid ' || r
                         FROM newest WHERE r < (SELECT m FROM older) ORDER BY t DESC LIMIT 1),
                        (SELECT m FROM older)
                 FROM newest",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok()?;
        (behind > 0).then(|| {
            format!(
                "`interactions` is a view whose rowid does not grow with new rows: {behind} of its 100 newest interactions by time have a rowid below rows more than a day older ({}, below rowid {}). rekindle finds new interactions by rowid, so it would not see rows like these as they come (an apology a day late, or never). Feed one table from your tables' triggers instead, so every new row gets a larger rowid: see the README, \"A log from several tables\"",
                example.unwrap_or_default(),
                older.unwrap_or_default()
            )
        })
    }

    /// Number of interactions (with a readable timestamp) of one customer.
    pub(crate) fn interaction_count(&self, customer: &Value) -> Result<i64, LogError> {
        let n = self.conn.query_row(
            "SELECT count(*) FROM interactions WHERE customer_id = ?1 AND unixepoch(at, 'auto') IS NOT NULL",
            [customer],
            |row| row.get(0),
        )?;
        Ok(n)
    }

    /// One customer's touch points since `since`, per kind: (kind, "positive" | "negative" |
    /// "neutral", count), as the ratio rule counts them.
    pub(crate) fn touch_points(
        &self,
        id: &Value,
        touchpoints: &crate::config::Touchpoints,
        since: jiff::Timestamp,
    ) -> Result<Vec<(String, &'static str, i64)>, LogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT kind, {} AS class, count(*)
             FROM interactions WHERE customer_id = ?1 AND unixepoch(at, 'auto') >= ?2
             GROUP BY kind, class ORDER BY class, count(*) DESC, kind",
            touch_class("?3", "?4", "?5")
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![
                id,
                since.as_second(),
                json_list(&touchpoints.positive),
                json_list(&touchpoints.negative),
                touchpoints.negative_sentiment
            ],
            |r| {
                let class = match r.get::<_, i64>(1)? {
                    0 => "positive",
                    1 => "negative",
                    _ => "neutral",
                };
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    class,
                    r.get(2)?,
                ))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Coverage since `since`: (active customers, those with a positive touch point). Active:
    /// not departed, not opted out. A positive touch point is an interaction of a `positive`
    /// kind, or one of rekindle's notes (to the customers in `notes_to`).
    pub(crate) fn coverage(
        &self,
        since: jiff::Timestamp,
        positive: &[String],
        notes_to: &[String],
    ) -> Result<(i64, i64), LogError> {
        Ok(self.conn.query_row(
            "SELECT count(*), coalesce(sum(
                 EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                         AND i.kind IN (SELECT value FROM json_each(?2)) AND unixepoch(i.at, 'auto') >= ?1)
                 OR CAST(c.id AS TEXT) IN (SELECT value FROM json_each(?3))), 0)
             FROM customers c
             WHERE coalesce(c.status, '') != 'departed' AND coalesce(c.opted_out, 0) = 0",
            rusqlite::params![since.as_second(), json_list(positive), json_list(notes_to)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Customers whose `min_years`-or-more anniversary (of `created_at`) is on `today`, not
    /// departed, for the staff digest.
    pub(crate) fn anniversaries(
        &self,
        today: jiff::civil::Date,
        min_years: u32,
    ) -> Result<Vec<CustomerRow>, LogError> {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c
             WHERE strftime('%m-%d', c.created_at) = ?1
               AND CAST(strftime('%Y', c.created_at) AS INTEGER) <= ?2
               AND coalesce(c.status, '') != 'departed'
             ORDER BY c.id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(
            rusqlite::params![
                format!("{:02}-{:02}", today.month(), today.day()),
                i64::from(today.year()) - i64::from(min_years)
            ],
            CustomerRow::read,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One customer by id (as typed on the command line), with their latest interaction.
    pub(crate) fn customer(
        &self,
        id: &str,
    ) -> Result<Option<(CustomerRow, Option<InteractionRow>)>, LogError> {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS}, i.id, unixepoch(i.at, 'auto'), i.kind, i.sentiment, i.channel, i.note
             FROM customers c LEFT JOIN interactions i ON i.id = (
                 SELECT id FROM interactions WHERE customer_id = c.id AND unixepoch(at, 'auto') IS NOT NULL
                 ORDER BY unixepoch(at, 'auto') DESC LIMIT 1)
             WHERE c.id = ?1 OR CAST(c.id AS TEXT) = ?1 LIMIT 1"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some((
                CustomerRow::read(row)?,
                InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?,
            ))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot a full evaluation reads says what the per-customer lookup says, for every
    /// customer of a demo log with unsubscribes, open and resolved complaints, a resolution in
    /// the same second as its complaint, timestamps with offsets, and complaints resolved
    /// before, between and after others.
    #[test]
    fn everyones_standing_at_once_matches_each_customers_own() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.sqlite");
        let now: jiff::Timestamp = "2026-11-24T09:00:00Z".parse().expect("now");
        crate::demo::generate_log(&path, &crate::demo::DemoSpec::new(1500, 11), now).expect("log");
        let writer = Connection::open(&path).expect("writer");
        writer
            .execute_batch(
                "INSERT INTO interactions (customer_id, at, kind) VALUES
                   (3, '2026-10-01T10:00:00Z', 'unsubscribe'),
                   (4, '2026-11-20T10:00:00Z', 'complaint'),
                   (4, '2026-11-20T10:00:00Z', 'resolution'),
                   (5, '2026-11-23T23:30:00-05:00', 'complaint'),
                   (6, '2026-11-23T12:00:00+09:00', 'complaint'),
                   (6, '2026-11-23T02:00:00Z', 'resolution'),
                   (7, '2026-09-01T10:00:00Z', 'complaint'),
                   (8, '2026-11-10T10:00:00Z', 'complaint'),
                   (8, '2026-11-12T10:00:00Z', 'resolution'),
                   (8, '2026-11-15T10:00:00Z', 'complaint'),
                   (9, '2026-11-10T10:00:00Z', 'complaint'),
                   (9, '2026-11-15T10:00:00Z', 'complaint'),
                   (9, '2026-11-16T10:00:00Z', 'resolution'),
                   (10, '2026-10-20T10:00:00Z', 'resolution'),
                   (10, '2026-11-01T10:00:00Z', 'complaint');",
            )
            .expect("rows");
        let policy = crate::config::Policy {
            cap: 1,
            cap_window: jiff::SignedDuration::from_hours(7 * 24),
            calendar: crate::config::calendar::Calendar::default(),
            unsubscribe_kinds: vec!["unsubscribe".into()],
            complaint_kinds: vec!["complaint".into()],
            resolution_kinds: vec!["resolution".into()],
            open_complaint_window: jiff::SignedDuration::from_hours(30 * 24),
        };
        let log = Log::open(&path).expect("open");
        let all = log.standings(&policy, now).expect("standings");
        let mut stmt = log
            .conn()
            .prepare(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers c"))
            .expect("customers");
        let customers: Vec<CustomerRow> = stmt
            .query_map([], CustomerRow::read)
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let (mut open, mut unsubscribed) = (0, 0);
        for customer in &customers {
            let one = log.standing(&customer.id, &policy, now).expect("standing");
            assert_eq!(all.of(customer), one, "customer {}", customer.id_text);
            open += usize::from(one.open_complaint);
            unsubscribed += usize::from(one.unsubscribed);
        }
        assert!(open > 50, "open complaints: {open}");
        assert_eq!(unsubscribed, 1);
        let by_id = |id: i64| {
            let c = customers
                .iter()
                .find(|c| c.id_text == id.to_string())
                .expect("customer");
            all.of(c)
        };
        assert!(by_id(5).open_complaint, "{:?}", by_id(5));
        assert!(by_id(6).open_complaint, "{:?}", by_id(6));
        assert!(!by_id(4).open_complaint && !by_id(7).open_complaint);
        // Resolved, then complained again; complained twice, resolved once after both; resolved
        // before the window, complained in it.
        assert!(by_id(8).open_complaint, "{:?}", by_id(8));
        assert!(!by_id(9).open_complaint, "{:?}", by_id(9));
        assert!(by_id(10).open_complaint, "{:?}", by_id(10));
    }
}
