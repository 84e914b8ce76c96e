//! `departed`: a customer who cancels or leaves gets one sincere thank-you (seed 000), never a
//! sales pitch.

use rusqlite::Row;
use rusqlite::types::Value;

use super::sql::{latest_interaction_sql, window, window_params};
use super::{Among, Candidate, Found, Statement};
use crate::log::{CUSTOMER_COLUMN_COUNT, CustomerRow, InteractionRow, Log, json_list};

/// Customers who cancelled (an interaction of `kinds`) or are marked departed, within `within`.
pub(super) fn statement(
    log: &Log,
    among: &Among<'_>,
    within: jiff::SignedDuration,
    kinds: &[String],
) -> Statement {
    let (segment, now_s) = (&among.segment, among.now.as_second());
    let since = now_s - within.as_secs();
    let sql = latest_interaction_sql(
        segment,
        &window(log, "i", since),
        // Departed customers read once, not one customer lookup per recent row.
        "(i.kind IN (SELECT value FROM json_each(?4))
              OR i.customer_id IN (SELECT id FROM customers WHERE status = 'departed'))",
        "i.kind IN (SELECT value FROM json_each(?4))",
    );
    let params = window_params(log, since, now_s, [Value::from(json_list(kinds))]);
    Statement { sql, params }
}

/// A candidate of [`statement`]'s row; `kinds` are the cancellation kinds.
pub(super) fn candidate(row: &Row<'_>, kinds: &[String]) -> rusqlite::Result<Candidate> {
    // Only a cancellation is worth quoting; a departed customer's last purchase is not.
    let trigger =
        InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?.filter(|t| kinds.contains(&t.kind));
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: "departed".to_string(),
        happened_at: trigger.as_ref().map(|t| t.at),
        found: Found::Interaction(trigger),
    })
}
