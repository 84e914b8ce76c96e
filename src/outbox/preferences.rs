//! What customers chose themselves, through the web face: their preferences (which kinds of
//! notes, how often), and a stop that they can undo (a suppression under their own reason; the
//! operator's and the mail's suppressions are theirs to lift, not the customer's).

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Outbox, OutboxError};
use crate::decide::{Category, Preference};

/// How a customer stopped every note, as the suppression's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The mail client's unsubscribe button (RFC 8058 one-click POST).
    OneClick,
    /// "Stop every note" on the preferences page.
    Page,
}

impl Stop {
    /// The suppression's reason.
    fn reason(self) -> &'static str {
        match self {
            Stop::OneClick => "one-click",
            Stop::Page => "preferences page",
        }
    }
}

/// The reasons of the suppressions a customer may lift themselves, as a JSON list for SQL.
fn own_stops() -> String {
    let reasons: Vec<String> = [Stop::OneClick, Stop::Page]
        .iter()
        .map(|s| s.reason().to_string())
        .collect();
    crate::log::json_list(&reasons)
}

/// A preference as stored: refused categories as a JSON list of keys (unknown keys, from a
/// newer version, are left out).
fn read(refused: &str, every_days: Option<u32>) -> Preference {
    let keys: Vec<String> = serde_json::from_str(refused).unwrap_or_default();
    Preference {
        refused: keys.iter().filter_map(|k| Category::from_key(k)).collect(),
        every_days,
    }
}

impl Outbox {
    /// Every customer's preference (only those who chose something have one).
    pub(crate) fn preferences(&self) -> Result<HashMap<String, Preference>, OutboxError> {
        let q = || -> rusqlite::Result<HashMap<String, Preference>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT customer_id, refused, every_days FROM preferences")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, read(&r.get::<_, String>(1)?, r.get(2)?)))
            })?;
            rows.collect()
        };
        q().map_err(|e| self.err(e))
    }

    /// One customer's preference (the default when they never chose).
    pub(crate) fn preference(&self, customer: &str) -> Result<Preference, OutboxError> {
        self.conn
            .prepare_cached("SELECT refused, every_days FROM preferences WHERE customer_id = ?1")
            .and_then(|mut s| {
                s.query_row([customer], |r| Ok(read(&r.get::<_, String>(0)?, r.get(1)?)))
                    .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    /// Keeps what `customer` chose (forgetting it when it is the default).
    pub(crate) fn set_preference(
        &self,
        customer: &str,
        preference: &Preference,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let keys: Vec<&str> = preference.refused.iter().map(|c| c.key()).collect();
        let write = || -> rusqlite::Result<usize> {
            match preference.is_default() {
                true => self
                    .conn
                    .execute("DELETE FROM preferences WHERE customer_id = ?1", [customer]),
                false => self.conn.execute(
                    "INSERT INTO preferences (customer_id, refused, every_days, at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (customer_id) DO UPDATE SET refused = excluded.refused,
                         every_days = excluded.every_days, at = excluded.at",
                    params![
                        customer,
                        serde_json::to_string(&keys).unwrap_or_default(),
                        preference.every_days,
                        now.as_second()
                    ],
                ),
            }
        };
        write().map(drop).map_err(|e| self.err(e))
    }

    /// When the last note that reached `customer` (or will) was queued, from any rule.
    pub(crate) fn last_note_to(&self, customer: &str) -> Result<Option<Timestamp>, OutboxError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT max(created_at) FROM all_notes WHERE customer_id = ?1 AND state {}",
                super::history::counting()
            )
        });
        self.conn
            .prepare_cached(&SQL)
            .and_then(|mut s| s.query_row([customer], |r| r.get::<_, Option<i64>>(0)))
            .map(|s| s.and_then(|s| Timestamp::from_second(s).ok()))
            .map_err(|e| self.err(e))
    }

    /// What customers chose through the web face since `since`: (one-click unsubscribes, stops
    /// on the page, preferences saved), each customer counted once, by the latest choice.
    pub(crate) fn web_choices(&self, since: Timestamp) -> Result<(i64, i64, i64), OutboxError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM suppressions WHERE reason = ?2 AND at >= ?1),
                        (SELECT count(*) FROM suppressions WHERE reason = ?3 AND at >= ?1),
                        (SELECT count(*) FROM preferences WHERE at >= ?1)",
                params![
                    since.as_second(),
                    Stop::OneClick.reason(),
                    Stop::Page.reason()
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// When a note was last sent to `customer`, from any rule.
    pub(crate) fn last_sent_to(&self, customer: &str) -> Result<Option<Timestamp>, OutboxError> {
        self.conn
            .prepare_cached("SELECT max(sent_at) FROM notes WHERE customer_id = ?1")
            .and_then(|mut s| s.query_row([customer], |r| r.get::<_, Option<i64>>(0)))
            .map(|s| s.and_then(|s| Timestamp::from_second(s).ok()))
            .map_err(|e| self.err(e))
    }

    /// Stops every note to `customer`, as they asked (`how`); true when they were not stopped.
    /// Repeating it changes nothing.
    pub(crate) fn stop(
        &self,
        customer: &str,
        how: Stop,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        Ok(self.suppress(&[customer.to_string()], how.reason(), now)? > 0)
    }

    /// Whether `customer` stopped every note themselves.
    pub(crate) fn stopped(&self, customer: &str) -> Result<bool, OutboxError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM suppressions WHERE key = ?1 AND reason IN (SELECT value FROM json_each(?2)))",
            )
            .and_then(|mut s| {
                s.query_row(params![customer, own_stops()], |r| r.get(0))
            })
            .map_err(|e| self.err(e))
    }

    /// Undoes a stop the customer made themselves; true when there was one. Any other
    /// suppression of theirs stays.
    pub(crate) fn resume(&self, customer: &str) -> Result<bool, OutboxError> {
        self.conn
            .execute(
                "DELETE FROM suppressions WHERE key = ?1 AND reason IN (SELECT value FROM json_each(?2))",
                params![customer, own_stops()],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_chooses_stops_and_resumes_but_cannot_lift_the_operators_suppression() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("state.db")).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let choice = Preference {
            refused: [Category::Seasonal, Category::Missed].into(),
            every_days: Some(30),
        };
        outbox.set_preference("42", &choice, now).unwrap();
        assert_eq!(outbox.preference("42").unwrap(), choice);
        assert_eq!(outbox.preferences().unwrap().len(), 1);
        outbox
            .set_preference("42", &Preference::default(), now)
            .unwrap();
        assert!(outbox.preferences().unwrap().is_empty());

        assert!(outbox.stop("42", Stop::OneClick, now).unwrap());
        assert!(
            !outbox.stop("42", Stop::Page, now).unwrap(),
            "repeating is harmless"
        );
        assert!(outbox.stopped("42").unwrap());
        assert!(outbox.suppressed("42", "x@example.com").unwrap());
        assert!(outbox.resume("42").unwrap());
        assert!(!outbox.suppressed("42", "x@example.com").unwrap());

        outbox
            .suppress(&["7".into()], "operator: asked by phone", now)
            .unwrap();
        assert!(!outbox.stopped("7").unwrap());
        assert!(!outbox.resume("7").unwrap());
        assert!(outbox.suppressed("7", "").unwrap());
    }
}
