//! Rules: select the customers a rule applies to, in SQL inside SQLite, streaming row by row.
//!
//! Selection is a function of the log and a clock (`now` is passed in), so `plan --at` and the
//! tests can move time. Nothing here decides whether a note is *sent*: that is `policy`.

use std::ops::ControlFlow;

use jiff::Timestamp;
use rusqlite::ToSql;

use crate::config::{Config, Rule, RuleKind};
use crate::log::{
    CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS, CustomerRow, InteractionRow, Log, LogError,
    day_before, json_list, touch_class,
};

/// A customer a rule matched, with the occasion that makes this note unique.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The customer, unvalidated.
    pub customer: CustomerRow,
    /// With the rule and the customer, the note's idempotency key: one note per occasion.
    pub occasion: String,
    /// The interaction that triggered the note (a complaint, a cancellation), if any.
    pub trigger: Option<InteractionRow>,
    /// For quiet rules: whole days since the last interaction.
    pub days_quiet: Option<i64>,
    /// For seasonal rules: the season's year.
    pub season_year: Option<i16>,
    /// When the event behind the note happened (Unix seconds): a rule's `delay` counts from it.
    pub happened_at: Option<i64>,
    /// For ratio rules: the touch points counted in the log.
    pub ledger: Option<Ledger>,
}

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

const DAY: i64 = 86_400;

/// What a selection's reader wants once it breaks off (see [`select`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// Nothing more.
    Stop,
    /// Only how many candidates are left: they are counted, not read.
    Count,
}

/// Streams the candidates of `rule` at `now` to `each`, which may stop the scan early, or have
/// the rest counted without reading them (a rule past its daily limit): returns that count.
/// With `only`, just among those customers (the ones with new interactions, for event
/// triggers).
pub(crate) fn candidates(
    log: &Log,
    config: &Config,
    rule: &Rule,
    now: Timestamp,
    only: Option<&[rusqlite::types::Value]>,
    mut each: impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let mut filters = Vec::new();
    if let Some(s) = &rule.segment {
        filters.push(format!("c.id IN (SELECT id FROM customers WHERE ({s}))"));
    }
    if let Some(ids) = only {
        filters.push(format!(
            "c.id IN (SELECT value FROM json_each({}))",
            sql_text(&ids_json(ids))
        ));
    }
    let segment = if filters.is_empty() {
        "1".to_string()
    } else {
        filters.join(" AND ")
    };
    let now_s = now.as_second();
    let tz = &config.timezone;
    match &rule.kind {
        RuleKind::Quiet {
            min_interactions,
            quiet_for,
        } => {
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS}, s.last_at
                 FROM (SELECT customer_id, count(*) AS n, max(unixepoch(at)) AS last_at
                       FROM interactions WHERE unixepoch(at) IS NOT NULL GROUP BY customer_id) s
                 JOIN customers c ON c.id = s.customer_id
                 WHERE s.n >= ?1 AND s.last_at < ?2 AND coalesce(c.status, '') != 'departed'
                   AND {segment}
                 ORDER BY s.last_at, c.id"
            );
            let cutoff = now_s - quiet_for.as_secs();
            query(
                log,
                &sql,
                &[&min_interactions, &cutoff],
                |row| {
                    let last_at: i64 = row.get(CUSTOMER_COLUMN_COUNT)?;
                    let since = Timestamp::from_second(last_at)
                        .unwrap_or(now)
                        .to_zoned_datetime(tz.clone());
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: format!("quiet-since-{}", since.date()),
                        trigger: None,
                        days_quiet: Some((now_s - last_at) / DAY),
                        season_year: None,
                        happened_at: None,
                        ledger: None,
                    })
                },
                &mut each,
            )
        }
        RuleKind::Unhappy {
            within,
            sentiment_below,
            kinds,
        } => {
            let since = now_s - within.as_secs();
            let sql = latest_interaction_sql(
                &segment,
                &window(log, "i", since),
                "(i.kind IN (SELECT value FROM json_each(?4)) OR i.sentiment < ?5)",
                "0",
            );
            let kinds = json_list(kinds);
            let params: [&dyn ToSql; 5] =
                [&day_before(since), &since, &now_s, &kinds, sentiment_below];
            query(
                log,
                &sql,
                &params,
                |row| {
                    let trigger = InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?;
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: format!("interaction-{}", trigger.as_ref().map_or(0, |t| t.id)),
                        happened_at: trigger.as_ref().map(|t| t.at),
                        ledger: None,
                        trigger,
                        days_quiet: None,
                        season_year: None,
                    })
                },
                &mut each,
            )
        }
        RuleKind::Departed { within, kinds } => {
            let since = now_s - within.as_secs();
            let sql = latest_interaction_sql(
                &segment,
                &window(log, "i", since),
                // Departed customers read once, not one customer lookup per recent row.
                "(i.kind IN (SELECT value FROM json_each(?4))
                  OR i.customer_id IN (SELECT id FROM customers WHERE status = 'departed'))",
                "i.kind IN (SELECT value FROM json_each(?4))",
            );
            let kinds_json = json_list(kinds);
            let params: [&dyn ToSql; 4] = [&day_before(since), &since, &now_s, &kinds_json];
            query(
                log,
                &sql,
                &params,
                |row| {
                    // Only a cancellation is worth quoting; a departed customer's last purchase is not.
                    let trigger = InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?
                        .filter(|t| kinds.contains(&t.kind));
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: "departed".to_string(),
                        happened_at: trigger.as_ref().map(|t| t.at),
                        ledger: None,
                        trigger,
                        days_quiet: None,
                        season_year: None,
                    })
                },
                &mut each,
            )
        }
        RuleKind::Followup {
            within,
            kinds,
            after,
        } => {
            // The latest earlier interaction of an `after` kind, for each follow-up in the window;
            // one note per original (several resolutions of one complaint make one thank-you).
            let since = now_s - within.as_secs();
            let recent = window(log, "f", since);
            let sql = format!(
                "SELECT * FROM (
                   SELECT {CUSTOMER_COLUMNS}, o.id, unixepoch(o.at) AS t, o.kind, o.sentiment, o.channel, o.note,
                          unixepoch(f.at) AS ft,
                          row_number() OVER (PARTITION BY o.id ORDER BY unixepoch(f.at), f.id) AS rn
                   FROM interactions f
                   JOIN customers c ON c.id = f.customer_id
                   JOIN interactions o ON o.id = (
                       SELECT p.id FROM interactions p
                       WHERE p.customer_id = f.customer_id AND p.id != f.id
                         AND p.kind IN (SELECT value FROM json_each(?5))
                         AND unixepoch(p.at) <= unixepoch(f.at)
                       ORDER BY unixepoch(p.at) DESC, p.id DESC LIMIT 1)
                   WHERE {recent} AND f.kind IN (SELECT value FROM json_each(?4)) AND {segment}
                 ) WHERE rn = 1 ORDER BY t, id"
            );
            let kinds = json_list(kinds);
            let after = json_list(after);
            let params: [&dyn ToSql; 5] = [&day_before(since), &since, &now_s, &kinds, &after];
            query(
                log,
                &sql,
                &params,
                |row| {
                    let original = InteractionRow::read(row, CUSTOMER_COLUMN_COUNT)?;
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: format!("followup-{}", original.as_ref().map_or(0, |o| o.id)),
                        trigger: original,
                        days_quiet: None,
                        season_year: None,
                        happened_at: row.get(CUSTOMER_COLUMN_COUNT + 6)?,
                        ledger: None,
                    })
                },
                &mut each,
            )
        }
        RuleKind::Ratio { window, target } => {
            let class = touch_class("?4", "?5", "?6");
            let since = now_s - window.as_secs();
            // `+customer_id`: SQLite reads the recent rows by rowid and groups them aside,
            // rather than walking every row in customer order for a window of a few percent.
            let recent = self::window(log, "i", since);
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS}, s.pos, s.neg FROM (
                   SELECT customer_id, sum({class} = 0) AS pos, sum({class} = 1) AS neg
                   FROM interactions i WHERE {recent} GROUP BY +customer_id
                 ) s JOIN customers c ON c.id = s.customer_id
                 WHERE s.neg > 0 AND s.pos < ?7 * s.neg AND coalesce(c.status, '') != 'departed'
                   AND {segment}
                 ORDER BY ?7 * s.neg - s.pos DESC, c.id"
            );
            let t = &config.touchpoints;
            let positive = json_list(&t.positive);
            let negative = json_list(&t.negative);
            let params: [&dyn ToSql; 7] = [
                &day_before(since),
                &since,
                &now_s,
                &positive,
                &negative,
                &t.negative_sentiment,
                target,
            ];
            let today = now.to_zoned_datetime(tz.clone()).date();
            query(
                log,
                &sql,
                &params,
                |row| {
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: format!("ratio-{today}"),
                        trigger: None,
                        days_quiet: None,
                        season_year: None,
                        happened_at: None,
                        ledger: Some(Ledger {
                            positive: row.get(CUSTOMER_COLUMN_COUNT)?,
                            negative: row.get(CUSTOMER_COLUMN_COUNT + 1)?,
                        }),
                    })
                },
                &mut each,
            )
        }
        RuleKind::Seasonal(season) => {
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
            let positive = json_list(&config.touchpoints.positive);
            query(
                log,
                &sql,
                &[&positive],
                |row| {
                    Ok(Candidate {
                        customer: CustomerRow::read(row)?,
                        occasion: format!("{}-{year}", season.name),
                        trigger: None,
                        days_quiet: None,
                        season_year: Some(year),
                        happened_at: None,
                        ledger: None,
                    })
                },
                &mut each,
            )
        }
    }
}

/// The interactions `alias` stamped within `[?2, ?3]` (Unix seconds), `since` being `?2`. They
/// are read from the rowid where rows that recent begin (see [`Log::first_rowid_since`]); `?1`,
/// the day before `since` as text (see [`day_before`]), lets SQLite use an index on `at` too.
fn window(log: &Log, alias: &str, since: i64) -> String {
    format!(
        "{alias}.rowid >= {} AND {alias}.at >= ?1 AND unixepoch({alias}.at) BETWEEN ?2 AND ?3",
        log.first_rowid_since(since)
    )
}

/// Each customer's latest interaction in `window` (see [`window`]) that passes `filter`,
/// preferring rows that pass `prefer`.
fn latest_interaction_sql(segment: &str, window: &str, filter: &str, prefer: &str) -> String {
    format!(
        "SELECT * FROM (
           SELECT {CUSTOMER_COLUMNS}, i.id, unixepoch(i.at) AS t, i.kind, i.sentiment, i.channel, i.note,
                  row_number() OVER (PARTITION BY i.customer_id
                                     ORDER BY ({prefer}) DESC, unixepoch(i.at) DESC, i.id DESC) AS rn
           FROM interactions i JOIN customers c ON c.id = i.customer_id
           WHERE {window} AND {filter} AND {segment}
         ) WHERE rn = 1 ORDER BY t, id"
    )
}

/// Customer ids as a JSON array, each keeping its SQLite type (so 7 matches 7, and "7" "7").
fn ids_json(ids: &[rusqlite::types::Value]) -> String {
    use rusqlite::types::Value;
    let values: Vec<serde_json::Value> = ids
        .iter()
        .map(|v| match v {
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Real(r) => serde_json::Value::from(*r),
            Value::Text(t) => serde_json::Value::from(t.as_str()),
            Value::Null | Value::Blob(_) => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(values).to_string()
}

/// A string as an SQL literal.
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Candidates read before any is processed. A selection this size or smaller is read in one
/// short read transaction and only then composed and queued, so the business's own writers wait
/// for the SQL alone (milliseconds), never for rendering or fsyncs. A larger one keeps the
/// memory bounded and processes the rest as it streams. Several selections are read at once
/// (see [`ahead`]), each holding up to this many (about 1 KiB each at 1M customers).
const READ_AHEAD: usize = 5_000;

fn query(
    log: &Log,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Candidate>,
    each: &mut impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let mut stmt = log.conn().prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut ahead = Vec::new();
    let mut done = false;
    while ahead.len() < READ_AHEAD {
        match rows.next()? {
            Some(row) => ahead.push(map(row)?),
            None => {
                done = true;
                break;
            }
        }
    }
    if done {
        // Ends the read transaction before the slow part.
        drop(rows);
        drop(stmt);
        return Ok(match feed(ahead, each) {
            Some((Rest::Count, left)) => left as u64,
            _ => 0,
        });
    }
    match feed(ahead, each) {
        Some((Rest::Stop, _)) => return Ok(0),
        Some((Rest::Count, left)) => return count_rest(left, rows),
        None => {}
    }
    while let Some(row) = rows.next()? {
        if let ControlFlow::Break(rest) = each(map(row)?) {
            return match rest {
                Rest::Stop => Ok(0),
                Rest::Count => count_rest(0, rows),
            };
        }
    }
    Ok(0)
}

/// Hands `candidates` to `each` until it breaks off: how, and how many it left unread.
fn feed(
    candidates: Vec<Candidate>,
    each: &mut impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Option<(Rest, usize)> {
    let mut candidates = candidates.into_iter();
    while let Some(candidate) = candidates.next() {
        if let ControlFlow::Break(rest) = each(candidate) {
            return Some((rest, candidates.len()));
        }
    }
    None
}

/// The candidates left read ahead, plus the rows `rows` has left, stepped through without
/// reading their columns.
fn count_rest(left_ahead: usize, mut rows: rusqlite::Rows<'_>) -> Result<u64, LogError> {
    let mut count = left_ahead as u64;
    while rows.next()?.is_some() {
        count += 1;
    }
    Ok(count)
}

mod ahead;
#[cfg(test)]
mod tests;

pub(crate) use ahead::{Ahead, read_ahead};
