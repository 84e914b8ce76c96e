//! `quiet`: customers with real history and no contact for a while (seed 000: neglect is worse
//! than strife). Longest quiet first.

use std::ops::ControlFlow;

use jiff::Timestamp;

use rusqlite::types::Value;

use super::{Among, Candidate, Found, Rest, Statement, query};
use crate::log::{CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS, CustomerRow, Log, LogError};

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
             FROM (SELECT customer_id, count(*) AS n, max(unixepoch(at)) AS last_at
                   FROM interactions WHERE unixepoch(at) IS NOT NULL GROUP BY customer_id) s
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

/// [`statement`]'s candidates, handed to `each`.
pub(super) fn select(
    log: &Log,
    among: &Among<'_>,
    min_interactions: u32,
    quiet_for: jiff::SignedDuration,
    each: &mut impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let (now, now_s, tz) = (among.now, among.now.as_second(), among.tz);
    query(
        log,
        &statement(among, min_interactions, quiet_for),
        |row| {
            let last_at: i64 = row.get(CUSTOMER_COLUMN_COUNT)?;
            let since = Timestamp::from_second(last_at)
                .unwrap_or(now)
                .to_zoned_datetime(tz.clone());
            Ok(Candidate {
                customer: CustomerRow::read(row)?,
                occasion: format!("quiet-since-{}", since.date()),
                happened_at: None,
                found: Found::Quiet {
                    days: (now_s - last_at) / DAY,
                },
            })
        },
        each,
    )
}
