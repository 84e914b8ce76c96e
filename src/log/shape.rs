//! What `check` and the readers learn of a log's shape: its schema and segments, its
//! timestamps (their form, a sample of unreadable ones), its journal mode, and whether its rowid
//! grows with new rows.

use rusqlite::types::Value;

use super::{BadTimestamp, Horizon, Log, LogError, REQUIRED, day_before};

/// How a log stores `at`: ISO-8601 text, Unix seconds (an integer, a real, or their digits as
/// text), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeForm {
    Text,
    Numbers,
    Mixed,
}

impl Log {
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
            .query_map([], BadTimestamp::read)?
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
            .query_map([limit as i64], BadTimestamp::read)?
            .collect::<Result<_, _>>()?;
        Ok((count, rows))
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
}
