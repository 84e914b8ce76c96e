//! `seasonal`: everyone, once per season, while its date window is open (seeds 000 and 002:
//! Customer Love month, Valentine's week). Include everyone: under a daily limit, those who went
//! longest without a positive touch point come first.

use std::ops::ControlFlow;

use super::{Among, Candidate, Found, Rest, query};
use crate::config::Season;
use crate::log::{CUSTOMER_COLUMNS, CustomerRow, Log, LogError, json_list};

/// Everyone not departed, while `season` is open at `among.now`.
pub(super) fn select(
    log: &Log,
    among: &Among<'_>,
    season: &Season,
    positive_kinds: &[String],
    each: &mut impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let (segment, now, tz) = (&among.segment, among.now, among.tz);
    let Some(year) = season.open_on(now.to_zoned_datetime(tz.clone()).date()) else {
        return Ok(0);
    };
    // Include everyone: with a daily limit, those who went longest without a positive
    // touch point come first, so over the season the limit works through everyone.
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers c
             LEFT JOIN (SELECT customer_id, max(unixepoch(at)) AS last_positive FROM interactions
                        WHERE kind IN (SELECT value FROM json_each(?1)) GROUP BY customer_id) p
               ON p.customer_id = c.id
             WHERE coalesce(c.status, '') != 'departed' AND {segment}
             ORDER BY coalesce(p.last_positive, 0), c.id"
    );
    let positive = json_list(positive_kinds);
    query(
        log,
        &sql,
        &[&positive],
        |row| {
            Ok(Candidate {
                customer: CustomerRow::read(row)?,
                occasion: format!("{}-{year}", season.name),
                happened_at: None,
                found: Found::Season { year },
            })
        },
        each,
    )
}
