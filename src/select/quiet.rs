//! `quiet`: customers with real history and no contact for a while (seed 000: neglect is worse
//! than strife). Longest quiet first.

use jiff::Timestamp;

use rusqlite::Row;
use rusqlite::types::Value;

use super::{Among, Candidate, Found, Statement};
use crate::log::{CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS, CustomerRow};

const DAY: i64 = 86_400;

/// Customers with at least `min_interactions` interactions and none for `quiet_for`, longest
/// quiet first.
pub(super) fn statement(
    among: &Among<'_>,
    min_interactions: u32,
    quiet_for: jiff::SignedDuration,
) -> Statement {
    let segment = &among.segment;
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS}, s.last_at
             FROM (SELECT customer_id, count(*) AS n, max(unixepoch(at, 'auto')) AS last_at
                   FROM interactions WHERE unixepoch(at, 'auto') IS NOT NULL GROUP BY customer_id) s
             JOIN customers c ON c.id = s.customer_id
             WHERE s.n >= ?1 AND s.last_at < ?2 AND coalesce(c.status, '') != 'departed'
               AND {segment}
             ORDER BY s.last_at, c.id"
    );
    let cutoff = among.now.as_second() - quiet_for.as_secs();
    Statement {
        sql,
        params: vec![Value::from(min_interactions), Value::from(cutoff)],
    }
}

/// A candidate of [`statement`]'s row.
pub(super) fn candidate(row: &Row<'_>, among: &Among<'_>) -> rusqlite::Result<Candidate> {
    let last_at: i64 = row.get(CUSTOMER_COLUMN_COUNT)?;
    let since = Timestamp::from_second(last_at)
        .unwrap_or(among.now)
        .to_zoned_datetime(among.tz.clone());
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: format!("quiet-since-{}", since.date()),
        happened_at: None,
        found: Found::Quiet {
            days: (among.now.as_second() - last_at) / DAY,
        },
    })
}
