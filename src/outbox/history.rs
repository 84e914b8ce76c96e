//! What rekindle already did for a customer, as the decide stage needs it.

use std::sync::LazyLock;

use jiff::Timestamp;
use rusqlite::params;

use super::{Outbox, OutboxError};
use crate::decide::{History, Lookback};
use crate::note::NoteState;

/// Notes that count against cooldowns and the cap: every state but those that reached no one,
/// as an SQL condition on `state` to follow the column's name. Written as the states it leaves
/// out: SQLite checks two exclusions faster than it matches a list of the rest.
pub(super) fn counting() -> String {
    format!("NOT IN {}", NoteState::sql_list(&NoteState::NOT_COUNTING))
}

impl Outbox {
    /// What this rule and every rule already did for `customer`, as the decide stage needs it:
    /// this rule's last note only if it is later than the lookback's cooldown start, the notes
    /// since its cap window's start.
    pub(crate) fn history(
        &self,
        rule: &str,
        customer: &str,
        occasion: &str,
        lookback: &Lookback,
    ) -> Result<History, OutboxError> {
        // Asked for every candidate of every rule. rusqlite's statement cache clears a
        // statement's bindings when it takes it back, and SQLite then plans again any
        // statement whose plan looked at a parameter, as max() and ORDER BY do: so no max()
        // here, one statement of cheap questions, and the rule's notes to the customer (a few)
        // only for a customer still in its cooldown, their latest picked here.
        let q = || -> rusqlite::Result<History> {
            let (occasion_state, in_cooldown, in_cap_window) =
                self.conn.prepare_cached(history_sql())?.query_row(
                    params![
                        rule,
                        customer,
                        occasion,
                        lookback.cooldown_since.as_second(),
                        lookback.cap_since.as_second()
                    ],
                    |r| Ok((r.get(0)?, r.get::<_, bool>(1)?, r.get(2)?)),
                )?;
            let last_from_rule = match in_cooldown {
                false => None,
                true => self
                    .conn
                    .prepare_cached(last_from_rule_sql())?
                    .query_map(params![rule, customer], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?
                    .into_iter()
                    .max()
                    .and_then(|s| Timestamp::from_second(s).ok()),
            };
            Ok(History {
                occasion_state,
                last_from_rule,
                in_cap_window,
            })
        };
        q().map_err(|e| self.err(e))
    }

    /// rekindle's own notes to `customer` since `since` that reached (or will reach) them, and
    /// the customer's replies to them (not the automatic ones): each is a positive touch point.
    pub(crate) fn notes_to(&self, customer: &str, since: Timestamp) -> Result<i64, OutboxError> {
        self.conn
            .prepare_cached(notes_to_sql())
            .and_then(|mut s| s.query_row(params![customer, since.as_second()], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// How many notes `rule` queued since `since` (for daily limits).
    pub(crate) fn queued_since(&self, rule: &str, since: Timestamp) -> Result<u32, OutboxError> {
        self.conn
            .prepare_cached("SELECT count(*) FROM all_notes WHERE rule = ?1 AND created_at >= ?2")
            .and_then(|mut s| s.query_row(params![rule, since.as_second()], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }
}

/// A candidate's history in one statement (see [`Outbox::history`]): ?1 rule, ?2 customer,
/// ?3 occasion, ?4 cooldown start, ?5 cap window start. Asked for every candidate: written once
/// (as the others here), not formatted again each time to find it in the statement cache. The
/// cooldown's `+created_at` keeps SQLite from reading the rule's notes since then by
/// notes_rule_created rather than the customer's by notes_customer_key.
pub(super) fn history_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT (SELECT state FROM all_notes
                 WHERE rule = ?1 AND customer_id = ?2 AND occasion = ?3),
                EXISTS (SELECT 1 FROM all_notes WHERE rule = ?1 AND customer_id = ?2
                        AND +created_at > ?4 AND state {counting}),
                (SELECT count(*) FROM all_notes
                 WHERE customer_id = ?2 AND created_at >= ?5 AND state {counting})",
            counting = counting()
        )
    });
    &SQL
}

/// The created_at of `rule`'s counting notes to a customer: ?1 rule, ?2 customer.
fn last_from_rule_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT created_at FROM all_notes WHERE rule = ?1 AND customer_id = ?2 AND state {}",
            counting()
        )
    });
    &SQL
}

/// A customer's notes that count (see [`Outbox::notes_to`]): ?1 customer, ?2 since.
pub(super) fn notes_to_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
        "SELECT (SELECT count(*) FROM all_notes
                 WHERE customer_id = ?1 AND created_at >= ?2 AND state {counting})
              + (SELECT count(*) FROM inbound WHERE customer_id = ?1 AND kind = 'reply' AND dated >= ?2)",
        counting = counting()
    )
    });
    &SQL
}
