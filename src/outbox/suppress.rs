//! The suppression list: customer ids and addresses that never get a note.

use jiff::Timestamp;
use rusqlite::params;

use super::{Outbox, OutboxError};

impl Outbox {
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
}
