//! `seasonal`: everyone, once per season, while its date window is open (seeds 000 and 002:
//! Customer Love month, Valentine's week). Include everyone: under a daily limit, those who went
//! longest without a positive touch point come first.

use rusqlite::Row;
use rusqlite::types::Value;

use super::{Among, Candidate, Found, Statement};
use crate::config::Season;
use crate::log::{CUSTOMER_COLUMNS, CustomerRow, json_list};

/// The season's year, when it is open at `among.now`.
pub(super) fn open(among: &Among<'_>, season: &Season) -> Option<i16> {
    season.open_on(among.now.to_zoned_datetime(among.tz.clone()).date())
}

/// Everyone not departed, while `season` is open at `among.now`.
pub(super) fn statement(
    among: &Among<'_>,
    season: &Season,
    positive_kinds: &[String],
) -> Option<Statement> {
    open(among, season)?;
    let segment = &among.segment;
    // Include everyone: with a daily limit, those who went longest without a positive
    // touch point come first, so over the season the limit works through everyone.
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers c
             LEFT JOIN (SELECT customer_id, max(unixepoch(at, 'auto')) AS last_positive FROM interactions
                        WHERE kind IN (SELECT value FROM json_each(?1)) GROUP BY customer_id) p
               ON p.customer_id = c.id
             WHERE coalesce(c.status, '') != 'departed' AND {segment}
             ORDER BY coalesce(p.last_positive, 0), c.id"
    );
    Some(Statement {
        sql,
        params: vec![Value::from(json_list(positive_kinds))],
    })
}

/// A candidate of [`statement`]'s row, in the season's `year`.
pub(super) fn candidate(row: &Row<'_>, season: &Season, year: i16) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        customer: CustomerRow::read(row)?,
        occasion: format!("{}-{year}", season.name),
        happened_at: None,
        found: Found::Season { year },
    })
}
