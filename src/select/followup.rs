//! `followup`: after a problem is solved, a thank-you for the feedback that quotes the original
//! (seed 003: hospitality follows up).

use rusqlite::Row;
use rusqlite::types::Value;

use super::sql::{window, window_params};
use super::{Among, Candidate, Found, Statement};
use crate::log::{
    CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS, CustomerRow, InteractionRow, Log, json_list,
};

/// Each interaction of `kinds` within `within` that follows one of `after`, once per original.
pub(super) fn statement(
    log: &Log,
    among: &Among<'_>,
    within: jiff::SignedDuration,
    kinds: &[String],
    after: &[String],
) -> Statement {
    let (segment, now_s) = (&among.segment, among.now.as_second());
    // The latest earlier interaction of an `after` kind, for each follow-up in the window;
    // one note per original (several resolutions of one complaint make one thank-you).
    let since = now_s - within.as_secs();
    let recent = window(log, "f", since);
    let sql = format!(
            "SELECT * FROM (
               SELECT {CUSTOMER_COLUMNS}, o.id, unixepoch(o.at, 'auto') AS t, o.kind, o.sentiment, o.channel, o.note,
                      unixepoch(f.at, 'auto') AS ft,
                      row_number() OVER (PARTITION BY o.id ORDER BY unixepoch(f.at, 'auto'), f.id) AS rn
               FROM interactions f
               JOIN customers c ON c.id = f.customer_id
               JOIN interactions o ON o.id = (
                   SELECT p.id FROM interactions p
                   WHERE p.customer_id = f.customer_id AND p.id != f.id
                     AND p.kind IN (SELECT value FROM json_each(?5))
                     AND unixepoch(p.at, 'auto') <= unixepoch(f.at, 'auto')
                   ORDER BY unixepoch(p.at, 'auto') DESC, p.id DESC LIMIT 1)
               WHERE {recent} AND f.kind IN (SELECT value FROM json_each(?4)) AND {segment}
             ) WHERE rn = 1 ORDER BY t, id"
        );
    let params = window_params(
        log,
        since,
        now_s,
        [Value::from(json_list(kinds)), Value::from(json_list(after))],
    );
    Statement { sql, params }
}

/// A candidate of [`statement`]'s row.
pub(super) fn candidate(row: &Row<'_>) -> rusqlite::Result<Candidate> {
    let original = InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?;
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: format!("followup-{}", original.as_ref().map_or(0, |o| o.id)),
        happened_at: row.get(CUSTOMER_COLUMN_COUNT + 6)?,
        found: Found::Interaction(original),
    })
}
