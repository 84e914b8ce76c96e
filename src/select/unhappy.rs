//! `unhappy`: a complaint, or an interaction with a low sentiment, within a window (seeds 000 and
//! 003: reach out to angry customers and apologise). Each customer's latest, oldest first.

use rusqlite::Row;
use rusqlite::types::Value;

use super::sql::{latest_interaction_sql, window, window_params};
use super::{Among, Candidate, Found, Statement};
use crate::log::{CUSTOMER_COLUMN_COUNT, CustomerRow, InteractionRow, Log, json_list};

/// Each customer's latest complaint (or low-sentiment interaction) within `within`.
pub(super) fn statement(
    log: &Log,
    among: &Among<'_>,
    within: jiff::SignedDuration,
    sentiment_below: f64,
    kinds: &[String],
) -> Statement {
    let (segment, now_s) = (&among.segment, among.now.as_second());
    let since = now_s - within.as_secs();
    let sql = latest_interaction_sql(
        segment,
        &window(log, "i", since),
        "(i.kind IN (SELECT value FROM json_each(?4)) OR i.sentiment < ?5)",
        "0",
    );
    let params = window_params(
        log,
        since,
        now_s,
        [Value::from(json_list(kinds)), Value::from(sentiment_below)],
    );
    Statement { sql, params }
}

/// A candidate of [`statement`]'s row.
pub(super) fn candidate(row: &Row<'_>) -> rusqlite::Result<Candidate> {
    let trigger = InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?;
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: format!("interaction-{}", trigger.as_ref().map_or(0, |t| t.id)),
        happened_at: trigger.as_ref().map(|t| t.at),
        found: Found::Interaction(trigger),
    })
}
