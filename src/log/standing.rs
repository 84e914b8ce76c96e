//! Where a customer stands, for the decide stage: opted out, unsubscribed by an interaction, a
//! complaint still open, gone from the log. One customer's, several customers' (delivery's last
//! look) and everyone's at once (a whole evaluation).

use rusqlite::OptionalExtension;
use rusqlite::types::Value;

use super::{CustomerRow, Log, LogError, id_text, json_list};

impl Log {
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
        let kinds = json_list(&policy.unsubscribe_kinds);
        let by_kind = self.unsubscribers_if_few(&kinds, ids.len())?;
        {
            // Each customer's own interactions (by the customer index, every row fetched for its
            // kind) only when the log holds too many unsubscribing interactions to read them all.
            let mut stmt = self.conn.prepare_cached(
                "SELECT CAST(c.id AS TEXT), coalesce(c.opted_out, 0),
                        CASE WHEN ?3 THEN 0 ELSE EXISTS (SELECT 1 FROM interactions i
                            WHERE i.customer_id = c.id AND i.kind IN (SELECT value FROM json_each(?2)))
                        END
                 FROM customers c WHERE c.id IN (SELECT value FROM json_each(?1))",
            )?;
            let mut rows =
                stmt.query(rusqlite::params![json_list(ids), kinds, by_kind.is_some()])?;
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let listed = by_kind.as_ref().is_some_and(|set| set.contains(&id));
                let standing: &mut Standing = found.entry(id).or_default();
                standing.opted_out |= row.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0;
                standing.unsubscribed |= listed || row.get::<_, bool>(2)?;
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

    /// Every customer (id as text) with an interaction of a kind in the JSON array `kinds`,
    /// when the log holds fewer such interactions than a few per customer of a batch of
    /// `batch`: then reading them all by the kind index costs less than each customer's whole
    /// history. None when there are more, or when no index of the log starts with `kind`.
    pub(super) fn unsubscribers_if_few(
        &self,
        kinds: &str,
        batch: usize,
    ) -> Result<Option<std::collections::HashSet<String>>, LogError> {
        let indexed: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pragma_index_list('interactions') l
                 JOIN pragma_index_info(l.name) c WHERE c.seqno = 0 AND c.name = 'kind')",
            )?
            .query_row([], |r| r.get(0))?;
        if !indexed {
            return Ok(None);
        }
        let most = 4 * batch.max(16) as i64;
        let count: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM interactions
                 WHERE kind IN (SELECT value FROM json_each(?1)) LIMIT ?2)",
            )?
            .query_row(rusqlite::params![kinds, most], |r| r.get(0))?;
        if count >= most {
            return Ok(None);
        }
        self.id_set(UNSUBSCRIBERS, &[Value::from(kinds.to_string())])
            .map(Some)
    }

    /// The customer ids (as text) a query's first column reads.
    fn id_set(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<std::collections::HashSet<String>, LogError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut ids = std::collections::HashSet::new();
        while let Some(row) = rows.next()? {
            ids.insert(id_text(row.get_ref(0)?));
        }
        Ok(ids)
    }

    /// Everyone's standing at `now` (see [`Standings`]); the same rules as [`Log::standing`].
    pub(crate) fn standings(
        &self,
        policy: &crate::config::Policy,
        now: jiff::Timestamp,
    ) -> Result<Standings, LogError> {
        let [unsubscribed, open_complaint] = self.standings_sql(policy, now);
        Ok(Standings {
            unsubscribed: self.id_set(unsubscribed.0, &unsubscribed.1)?,
            open_complaint: self.id_set(open_complaint.0, &open_complaint.1)?,
        })
    }

    /// The two queries [`Log::standings`] reads everyone's standing with: who unsubscribed by an
    /// interaction, and who has a complaint open at `now` (each customer id once).
    pub(crate) fn standings_sql(
        &self,
        policy: &crate::config::Policy,
        now: jiff::Timestamp,
    ) -> [(&'static str, Vec<Value>); 2] {
        let since = policy.complaints_open_since(now);
        [
            (
                UNSUBSCRIBERS,
                vec![Value::from(json_list(&policy.unsubscribe_kinds))],
            ),
            // A complaint is open without a resolution at or after it, so only the window's
            // resolutions matter: each customer's latest one, read with the complaints by the kind
            // index (`at >= ?3`, see [`Log::time_floor`]), all among the log's newest pages, rather than each
            // complainer's whole history from pages all over a large log.
            (
                "SELECT DISTINCT i.customer_id FROM interactions i
             LEFT JOIN (SELECT customer_id, max(unixepoch(at, 'auto')) AS resolved FROM interactions
                        WHERE kind IN (SELECT value FROM json_each(?2)) AND at >= ?3
                          AND unixepoch(at, 'auto') >= ?4
                        GROUP BY customer_id) r ON r.customer_id = i.customer_id
             WHERE i.kind IN (SELECT value FROM json_each(?1)) AND i.at >= ?3
               AND unixepoch(i.at, 'auto') >= ?4
               AND (r.resolved IS NULL OR r.resolved < unixepoch(i.at, 'auto'))",
                vec![
                    Value::from(json_list(&policy.complaint_kinds)),
                    Value::from(json_list(&policy.resolution_kinds)),
                    self.time_floor(since),
                    Value::from(since),
                ],
            ),
        ]
    }
}

/// Every customer with an interaction of a kind in the JSON array `?1` (each id once).
const UNSUBSCRIBERS: &str =
    "SELECT DISTINCT customer_id FROM interactions WHERE kind IN (SELECT value FROM json_each(?1))";

/// The interaction `i` is a complaint still open: of a kind in the JSON array `complaints`, at or
/// after `since`, with no interaction of a kind in `resolutions` at or after it. The three are
/// SQL parameters; one definition for [`Log::standing`] and [`Log::standings`]. `+r.kind` keeps
/// SQLite on the customer's own rows (by the customer index) rather than reading every
/// resolution in the log for each complaint.
fn open_complaint(complaints: &str, resolutions: &str, since: &str) -> String {
    format!(
        "i.kind IN (SELECT value FROM json_each({complaints})) AND unixepoch(i.at, 'auto') >= {since}
         AND NOT EXISTS (SELECT 1 FROM interactions r WHERE r.customer_id = i.customer_id
             AND +r.kind IN (SELECT value FROM json_each({resolutions}))
             AND unixepoch(r.at, 'auto') >= unixepoch(i.at, 'auto'))"
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
