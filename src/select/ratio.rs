//! `ratio`: ten positive touch points for every negative one (seed 001; an invoice is a
//! negative). Customers below the target get an appreciation note, largest deficit first.

use rusqlite::Row;
use rusqlite::types::Value;

use super::sql::{window, window_params};
use super::{Among, Candidate, Found, Statement};
use crate::config::Touchpoints;
use crate::log::{
    CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS, CustomerRow, Log, json_list, touch_class,
};

/// Positive and negative touch points of one customer over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ledger {
    /// Positive touch points in the log (rekindle's own notes are added by the policy).
    pub positive: i64,
    /// Negative ones (an invoice is one).
    pub negative: i64,
}

impl Ledger {
    /// The totals of the per-kind counts [`Log::touch_points`] reads, plus `notes` of
    /// rekindle's own (each a positive touch point).
    pub(crate) fn total(points: &[(String, &'static str, i64)], notes: i64) -> Ledger {
        let sum = |class: &str| points.iter().filter(|p| p.1 == class).map(|p| p.2).sum();
        Ledger {
            positive: sum("positive") + notes,
            negative: sum("negative"),
        }
    }

    /// Whether there are at least `target` positive touch points for every negative one.
    pub(crate) fn meets(&self, target: f64) -> bool {
        self.positive as f64 >= target * self.negative as f64
    }
}

/// Customers with fewer than `target` positive touch points for every negative one within
/// `window_len` (`touchpoints` classifies the interactions), largest deficit first.
pub(super) fn statement(
    log: &Log,
    among: &Among<'_>,
    touchpoints: &Touchpoints,
    window_len: jiff::SignedDuration,
    target: f64,
) -> Statement {
    let (segment, now_s) = (&among.segment, among.now.as_second());
    let class = touch_class("?4", "?5", "?6");
    let since = now_s - window_len.as_secs();
    // `+customer_id`: SQLite reads the recent rows by rowid and groups them aside,
    // rather than walking every row in customer order for a window of a few percent.
    let recent = window(log, "i", since);
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS}, s.pos, s.neg FROM (
               SELECT customer_id, sum({class} = 0) AS pos, sum({class} = 1) AS neg
               FROM interactions i WHERE {recent} GROUP BY +customer_id
             ) s JOIN customers c ON c.id = s.customer_id
             WHERE s.neg > 0 AND s.pos < ?7 * s.neg AND coalesce(c.status, '') != 'departed'
               AND {segment}
             ORDER BY ?7 * s.neg - s.pos DESC, c.id"
    );
    let t = touchpoints;
    let params = window_params(
        log,
        since,
        now_s,
        [
            Value::from(json_list(&t.positive)),
            Value::from(json_list(&t.negative)),
            Value::from(t.negative_sentiment),
            Value::from(target),
        ],
    );
    Statement { sql, params }
}

/// A candidate of [`statement`]'s row, on the local date `today`.
pub(super) fn candidate(row: &Row<'_>, today: jiff::civil::Date) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: format!("ratio-{today}"),
        happened_at: None,
        found: Found::Ratio(Ledger {
            positive: row.get(CUSTOMER_COLUMN_COUNT)?,
            negative: row.get(CUSTOMER_COLUMN_COUNT + 1)?,
        }),
    })
}
