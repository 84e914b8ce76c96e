//! Log: the business's interaction log, opened strictly read-only.
//!
//! The canonical schema is in `schema.sql` (and the README); a business with other tables
//! creates views with these names. Timestamps are read through SQLite's own `unixepoch()`, so
//! every ISO-8601 form SQLite understands is accepted and anything else is NULL: such rows are
//! skipped and reported, never guessed at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::OptionalExtension;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Row};

mod horizon;
mod sql;
pub(crate) use horizon::Horizon;
pub(crate) use sql::{day_before, json_list, touch_class};

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
     unixepoch(c.created_at), c.status, c.opted_out, c.attributes";

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
            })
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
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
                    "SELECT count(*) FROM interactions WHERE unixepoch(at) IS NULL",
                    [],
                    |row| row.get(0),
                )?;
                (count.max(0) as u64, "1".to_string())
            }
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, customer_id, at FROM interactions
             WHERE {which} AND unixepoch(at) IS NULL ORDER BY id LIMIT ?1"
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
            "SELECT coalesce(max(rowid), 0) FROM interactions WHERE unixepoch(at) < ?1",
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

    /// Number of interactions (with a readable timestamp) of one customer.
    pub(crate) fn interaction_count(&self, customer: &Value) -> Result<i64, LogError> {
        let n = self.conn.query_row(
            "SELECT count(*) FROM interactions WHERE customer_id = ?1 AND unixepoch(at) IS NOT NULL",
            [customer],
            |row| row.get(0),
        )?;
        Ok(n)
    }

    /// Where a customer stands right now, for the policy: opted out, unsubscribed by an
    /// interaction, or with a complaint still open. `id` is the id as stored, or as text.
    pub(crate) fn standing(
        &self,
        id: &Value,
        policy: &crate::config::Policy,
        now: jiff::Timestamp,
    ) -> Result<Standing, LogError> {
        let since = policy.complaints_open_since(now);
        let sql = |filter: &str| {
            format!(
                "SELECT coalesce(max(c.opted_out), 0),
                        EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                                AND i.kind IN (SELECT value FROM json_each(?2))),
                        EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND {})
                 FROM customers c WHERE {filter} GROUP BY c.id LIMIT 1",
                open_complaint("?3", "?4", "?5")
            )
        };
        // By the id's own type first (an index lookup); only if that finds nobody, by its text
        // (a scan), for logs whose id column has no type.
        let lookup = |filter: &str| -> rusqlite::Result<Option<Standing>> {
            self.conn
                .prepare_cached(&sql(filter))?
                .query_row(
                    rusqlite::params![
                        id,
                        json_list(&policy.unsubscribe_kinds),
                        json_list(&policy.complaint_kinds),
                        json_list(&policy.resolution_kinds),
                        since
                    ],
                    |r| {
                        Ok(Standing {
                            opted_out: r.get::<_, Option<i64>>(0)?.unwrap_or(0) != 0,
                            unsubscribed: r.get(1)?,
                            open_complaint: r.get(2)?,
                            gone: false,
                        })
                    },
                )
                .optional()
        };
        let row = match lookup("c.id = ?1")? {
            Some(row) => Some(row),
            None => lookup("CAST(c.id AS TEXT) = CAST(?1 AS TEXT)")?,
        };
        Ok(row.unwrap_or(Standing {
            gone: true,
            ..Standing::default()
        }))
    }

    /// [`Log::standing`] of several customers (by id as text), for whether their notes may still
    /// go, as delivery asks right before sending: one read, without the open complaint (`false`),
    /// for all whose id the log's id column takes as it is; the others one by one, with
    /// [`Log::standing`] (which also tells a customer gone from the log).
    pub(crate) fn opt_outs(
        &self,
        ids: &[String],
        policy: &crate::config::Policy,
        now: jiff::Timestamp,
    ) -> Result<std::collections::HashMap<String, Standing>, LogError> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT CAST(c.id AS TEXT), coalesce(c.opted_out, 0),
                        EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                                AND i.kind IN (SELECT value FROM json_each(?2)))
                 FROM customers c WHERE c.id IN (SELECT value FROM json_each(?1))",
            )?;
            let mut rows = stmt.query(rusqlite::params![
                json_list(ids),
                json_list(&policy.unsubscribe_kinds)
            ])?;
            while let Some(row) = rows.next()? {
                let standing: &mut Standing = found.entry(row.get(0)?).or_default();
                standing.opted_out |= row.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0;
                standing.unsubscribed |= row.get::<_, bool>(2)?;
            }
        }
        for id in ids {
            if !found.contains_key(id) {
                let one = self.standing(&Value::Text(id.clone()), policy, now)?;
                found.insert(id.clone(), one);
            }
        }
        Ok(found)
    }

    /// Everyone's standing at `now` (see [`Standings`]); the same rules as [`Log::standing`].
    pub(crate) fn standings(
        &self,
        policy: &crate::config::Policy,
        now: jiff::Timestamp,
    ) -> Result<Standings, LogError> {
        let since = policy.complaints_open_since(now);
        let ids = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<_, LogError> {
            let mut stmt = self.conn.prepare(sql)?;
            let mut rows = stmt.query(params)?;
            let mut ids = std::collections::HashSet::new();
            while let Some(row) = rows.next()? {
                ids.insert(id_text(row.get_ref(0)?));
            }
            Ok(ids)
        };
        Ok(Standings {
            unsubscribed: ids(
                "SELECT DISTINCT customer_id FROM interactions
                 WHERE kind IN (SELECT value FROM json_each(?1))",
                &[&json_list(&policy.unsubscribe_kinds)],
            )?,
            // A complaint is open without a resolution at or after it, so only the window's
            // resolutions matter: each customer's latest one, read with the complaints by the
            // kind index (`at >= ?3`, a date), all among the log's newest pages. Looking through
            // each complainer's whole history instead read pages all over a large log (at 1M
            // customers, 1 s when in memory, 6 to 18 s when not).
            open_complaint: ids(
                "SELECT DISTINCT i.customer_id FROM interactions i
                 LEFT JOIN (SELECT customer_id, max(unixepoch(at)) AS resolved FROM interactions
                            WHERE kind IN (SELECT value FROM json_each(?2)) AND at >= ?3
                              AND unixepoch(at) >= ?4
                            GROUP BY customer_id) r ON r.customer_id = i.customer_id
                 WHERE i.kind IN (SELECT value FROM json_each(?1)) AND i.at >= ?3
                   AND unixepoch(i.at) >= ?4
                   AND (r.resolved IS NULL OR r.resolved < unixepoch(i.at))",
                &[
                    &json_list(&policy.complaint_kinds),
                    &json_list(&policy.resolution_kinds),
                    &day_before(since),
                    &since,
                ],
            )?,
        })
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
             FROM interactions WHERE customer_id = ?1 AND unixepoch(at) >= ?2
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
                         AND i.kind IN (SELECT value FROM json_each(?2)) AND unixepoch(i.at) >= ?1)
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
            "SELECT {CUSTOMER_COLUMNS}, i.id, unixepoch(i.at), i.kind, i.sentiment, i.channel, i.note
             FROM customers c LEFT JOIN interactions i ON i.id = (
                 SELECT id FROM interactions WHERE customer_id = c.id AND unixepoch(at) IS NOT NULL
                 ORDER BY unixepoch(at) DESC LIMIT 1)
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

/// The interaction `i` is a complaint still open: of a kind in the JSON array `complaints`, at or
/// after `since`, with no interaction of a kind in `resolutions` at or after it. The three are
/// SQL parameters; one definition for [`Log::standing`] and [`Log::standings`]. `+r.kind` keeps
/// SQLite on the customer's own rows (by the customer index) rather than reading every
/// resolution in the log for each complaint (1M customers: 3.9 s → well under one).
fn open_complaint(complaints: &str, resolutions: &str, since: &str) -> String {
    format!(
        "i.kind IN (SELECT value FROM json_each({complaints})) AND unixepoch(i.at) >= {since}
         AND NOT EXISTS (SELECT 1 FROM interactions r WHERE r.customer_id = i.customer_id
             AND +r.kind IN (SELECT value FROM json_each({resolutions}))
             AND unixepoch(r.at) >= unixepoch(i.at))"
    )
}

/// Everyone's standing at one moment, for a full evaluation: the customers who unsubscribed
/// by an interaction and those with an open complaint, read in two selective queries (by
/// kind) instead of one read of every candidate's history. Delivery looks again, per note.
#[derive(Debug, Default)]
pub(crate) struct Standings {
    unsubscribed: std::collections::HashSet<String>,
    open_complaint: std::collections::HashSet<String>,
}

impl Standings {
    /// Where `customer` stands (as [`Log::standing`] would say at the snapshot's moment).
    pub(crate) fn of(&self, customer: &CustomerRow) -> Standing {
        Standing {
            opted_out: customer.opted_out,
            unsubscribed: self.unsubscribed.contains(&customer.id_text),
            open_complaint: self.open_complaint.contains(&customer.id_text),
            gone: false,
        }
    }
}

/// Where a customer stands, for the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Standing {
    /// The `opted_out` column is set.
    pub opted_out: bool,
    /// An interaction of an unsubscribe kind exists.
    pub unsubscribed: bool,
    /// A complaint in the window has no resolution after it.
    pub open_complaint: bool,
    /// The customer is no longer in the log.
    pub gone: bool,
}

/// An interaction skipped because its timestamp is unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTimestamp {
    /// The interaction's id.
    pub interaction_id: String,
    /// Its customer.
    pub customer_id: String,
    /// The text that could not be read.
    pub at: String,
}

/// A customer as read from the log, before any validation (see `compose::Recipient`).
#[derive(Debug, Clone)]
pub(crate) struct CustomerRow {
    /// The id exactly as stored (integer or text), for further queries.
    pub id: Value,
    /// The id as text, for logs and the outbox.
    pub id_text: String,
    /// Email address, unchecked.
    pub email: Option<String>,
    /// Name, unchecked.
    pub name: Option<String>,
    /// Time zone name, unchecked.
    pub timezone: Option<String>,
    /// `created_at` as written.
    pub created_at_raw: Option<String>,
    /// `created_at` in Unix seconds, if SQLite could read it.
    pub created_at: Option<i64>,
    /// Whether the customer opted out.
    pub opted_out: bool,
    /// The attributes JSON, unchecked.
    pub attributes: Option<String>,
}

impl CustomerRow {
    /// Reads the first [`CUSTOMER_COLUMN_COUNT`] columns of `row` (see [`CUSTOMER_COLUMNS`]).
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<CustomerRow> {
        let id: Value = row.get(0)?;
        Ok(CustomerRow {
            id_text: id_text(ValueRef::from(&id)),
            id,
            email: text_lossy(row.get_ref(1)?),
            name: text_lossy(row.get_ref(2)?),
            timezone: text_lossy(row.get_ref(3)?),
            created_at_raw: text_lossy(row.get_ref(4)?),
            created_at: row.get(5)?,
            opted_out: truthy(row.get_ref(7)?),
            attributes: text_lossy(row.get_ref(8)?),
        })
    }
}

/// An interaction as read from the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InteractionRow {
    /// Its id.
    pub id: i64,
    /// When, in Unix seconds.
    pub at: i64,
    /// Its kind, e.g. "complaint".
    pub kind: String,
    /// -1.0 .. 1.0.
    pub sentiment: Option<f64>,
    /// e.g. "email".
    pub channel: Option<String>,
    /// The customer's own words.
    pub note: Option<String>,
}

impl InteractionRow {
    /// Reads six columns starting at `first`: id, unixepoch(at), kind, sentiment, channel, note.
    /// None when the id is NULL (no interaction, e.g. from a LEFT JOIN).
    pub(crate) fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<InteractionRow>> {
        let (Some(id), Some(at)) = (
            row.get::<_, Option<i64>>(first)?,
            row.get::<_, Option<i64>>(first + 1)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(InteractionRow {
            id,
            at,
            kind: text_lossy(row.get_ref(first + 2)?).unwrap_or_default(),
            sentiment: match row.get_ref(first + 3)? {
                ValueRef::Integer(i) => Some(i as f64),
                ValueRef::Real(r) => Some(r),
                _ => None,
            },
            channel: text_lossy(row.get_ref(first + 4)?),
            note: text_lossy(row.get_ref(first + 5)?),
        }))
    }
}

/// A value as text, whatever its SQLite type (ids may be integers or text).
pub(crate) fn id_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        other => text_lossy(other).unwrap_or_default(),
    }
}

/// Text (or a blob holding text) as a String; invalid UTF-8 is replaced, never an error.
fn text_lossy(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Null => None,
    }
}

/// SQLite's idea of true: a non-zero number, or text such as "1", "true", "yes".
fn truthy(value: ValueRef<'_>) -> bool {
    match value {
        ValueRef::Integer(i) => i != 0,
        ValueRef::Real(r) => r != 0.0,
        ValueRef::Text(t) => matches!(
            String::from_utf8_lossy(t)
                .trim()
                .to_ascii_lowercase()
                .as_str(),
            "1" | "true" | "yes" | "y" | "t"
        ),
        _ => false,
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
