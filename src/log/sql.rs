//! SQL pieces every reader of the log shares: lists as JSON arrays, date bounds that let SQLite
//! use an index on `at`, and how an interaction counts as a touch point.

use jiff::Timestamp;
use jiff::tz::TimeZone;

const DAY: i64 = 86_400;

/// A list of kinds (or ids) as the JSON array the queries read with `json_each`.
pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// How the ratio rule counts an interaction (columns `kind` and `sentiment`): 0 positive,
/// 1 negative, 2 neutral. `positive` and `negative` are the SQL parameters holding the kinds
/// (JSON arrays), `below` the one holding the sentiment below which anything is negative.
pub(crate) fn touch_class(positive: &str, negative: &str, below: &str) -> String {
    format!(
        "CASE WHEN sentiment < {below} OR kind IN (SELECT value FROM json_each({negative})) THEN 1
              WHEN kind IN (SELECT value FROM json_each({positive})) THEN 0 ELSE 2 END"
    )
}

/// The date (UTC) of the day before `second`, as text: every ISO-8601 timestamp of that moment or
/// later, whatever its offset, sorts after it (a lower bound on `at` that lets SQLite use an
/// index on it).
pub(crate) fn day_before(second: i64) -> String {
    Timestamp::from_second(second - DAY)
        .map(|t| t.to_zoned_datetime(TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}
