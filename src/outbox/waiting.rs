//! Customers a window rule skipped for a reason that passes with time, looked at again on its
//! next run between two whole readings of the log.

use rusqlite::params;
use rusqlite::types::Value;

use super::{Outbox, OutboxError};

impl Outbox {
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
}
