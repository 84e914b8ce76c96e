//! Log: the business's interaction log, opened strictly read-only.
//!
//! The canonical schema is in `schema.sql` (and the README); a business with other tables
//! creates views with these names. Timestamps are read through SQLite's own `unixepoch()`, so
//! every ISO-8601 form SQLite understands is accepted and anything else is NULL: such rows are
//! skipped and reported, never guessed at. (Reading the whole log for its horizon, the common
//! forms are read in Rust instead, exactly as SQLite reads them: see `stamp`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

mod horizon;
mod rows;
mod shape;
mod sql;
mod stamp;
mod standing;
pub(crate) use horizon::Horizon;
pub(crate) use rows::{BadTimestamp, CustomerRow, InteractionRow, id_text};
use shape::TimeForm;
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

    /// Another connection to the same log, knowing the same horizon (for reading on another
    /// thread). Its page cache is 1 MiB rather than SQLite's 2: it reads a selection in one
    /// pass, and four of them read at once (a `plan` at 1M customers peaked 4 to 8 MiB lower,
    /// its CPU time the same).
    pub(crate) fn reopen(&self) -> Result<Log, LogError> {
        let log = Log::open(&self.path)?;
        let small = log.conn.pragma_update(None, "cache_size", -1024);
        small.map_err(|source| LogError::Open {
            path: self.path.clone(),
            source,
        })?;
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

    /// A policy with the usual kinds: unsubscribe, complaint, resolution.
    fn policy() -> crate::config::Policy {
        crate::config::Policy {
            cap: 1,
            cap_window: jiff::SignedDuration::from_hours(7 * 24),
            calendar: crate::config::calendar::Calendar::default(),
            unsubscribe_kinds: vec!["unsubscribe".into()],
            complaint_kinds: vec!["complaint".into()],
            resolution_kinds: vec!["resolution".into()],
            open_complaint_window: jiff::SignedDuration::from_hours(30 * 24),
        }
    }

    /// A demo log of `customers` generated at its `now`, and a connection to write to it.
    fn demo_log(
        customers: usize,
        seed: u64,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        jiff::Timestamp,
        Connection,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.sqlite");
        let now: jiff::Timestamp = "2026-11-24T09:00:00Z".parse().expect("now");
        let spec = crate::demo::DemoSpec::new(customers, seed);
        crate::demo::generate_log(&path, &spec, now).expect("log");
        let writer = Connection::open(&path).expect("writer");
        (dir, path, now, writer)
    }

    /// The snapshot a full evaluation reads says what the per-customer lookup says, for every
    /// customer of a demo log with unsubscribes, open and resolved complaints, a resolution in
    /// the same second as its complaint, timestamps with offsets, and complaints resolved
    /// before, between and after others.
    #[test]
    fn everyones_standing_at_once_matches_each_customers_own() {
        let (_dir, path, now, writer) = demo_log(1500, 11);
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
        let policy = policy();
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

    /// Delivery's last look (`opt_outs`, a batch at a time) says what each customer's own
    /// lookup says, whether the log holds few unsubscribing interactions (read all at once by
    /// kind), many (each customer's history instead), or has no index by kind.
    #[test]
    fn the_last_look_matches_each_customers_own_standing() {
        let (_dir, path, now, writer) = demo_log(300, 5);
        let unsubscribe = |id: i64| {
            writer
                .execute(
                    "INSERT INTO interactions (customer_id, at, kind) VALUES (?1, '2026-10-01T10:00:00Z', 'unsubscribe')",
                    [id],
                )
                .expect("insert");
        };
        unsubscribe(3);
        unsubscribe(250);
        let policy = policy();
        let kinds = json_list(&policy.unsubscribe_kinds);
        let mut ids: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
        ids.push("99999".into());
        let agree = |log: &Log| {
            let mut unsubscribed = 0;
            for batch in ids.chunks(16) {
                let seen = log.opt_outs(batch, &policy, now).expect("last look");
                for id in batch {
                    let own = log
                        .standing(&Value::Text(id.clone()), &policy, now)
                        .expect("standing");
                    let last = seen.get(id).copied().unwrap_or_default();
                    assert_eq!(
                        (last.opted_out, last.unsubscribed),
                        (own.opted_out, own.unsubscribed),
                        "customer {id}"
                    );
                    unsubscribed += usize::from(last.unsubscribed);
                }
            }
            unsubscribed
        };
        let log = Log::open(&path).expect("open");
        assert!(log.unsubscribers_if_few(&kinds, 16).expect("few").is_some());
        assert_eq!(agree(&log), 2);
        for id in 100..170 {
            unsubscribe(id);
        }
        assert!(
            log.unsubscribers_if_few(&kinds, 16)
                .expect("many")
                .is_none()
        );
        assert_eq!(agree(&log), 72);
        writer
            .execute_batch("DELETE FROM interactions WHERE customer_id BETWEEN 100 AND 169 AND kind = 'unsubscribe'; DROP INDEX interactions_kind_at;")
            .expect("drop the kind index");
        let log = Log::open(&path).expect("open again");
        assert!(
            log.unsubscribers_if_few(&kinds, 16)
                .expect("no index")
                .is_none()
        );
        assert_eq!(agree(&log), 2);
    }
}
