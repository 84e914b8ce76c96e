//! SQL the window rules share: the recent rows of the log, each customer's latest interaction,
//! and the customers a selection is limited to.

use rusqlite::types::Value;

use crate::log::{CUSTOMER_COLUMNS, Log};

/// The interactions `alias` stamped within `[?2, ?3]` (Unix seconds), `since` being `?2`. They
/// are read from the rowid where rows that recent begin (see [`Log::first_rowid_since`]); `?1`,
/// a bound on `at` in the log's own form (see [`Log::time_floor`]), lets SQLite use an index
/// on `at` too.
pub(super) fn window(log: &Log, alias: &str, since: i64) -> String {
    format!(
        "{alias}.rowid >= {} AND {alias}.at >= ?1 AND unixepoch({alias}.at, 'auto') BETWEEN ?2 AND ?3",
        log.first_rowid_since(since)
    )
}

/// The parameters `?1`, `?2` and `?3` of a [`window`] from `since` to `now` (Unix seconds); a
/// selection's own parameters follow from `?4`.
pub(super) fn window_params(
    log: &Log,
    since: i64,
    now: i64,
    own: impl IntoIterator<Item = Value>,
) -> Vec<Value> {
    let mut params = vec![log.time_floor(since), Value::from(since), Value::from(now)];
    params.extend(own);
    params
}

/// Each customer's latest interaction in `window` (see [`window`]) that passes `filter`,
/// preferring rows that pass `prefer`.
pub(super) fn latest_interaction_sql(
    segment: &str,
    window: &str,
    filter: &str,
    prefer: &str,
) -> String {
    format!(
        "SELECT * FROM (
           SELECT {CUSTOMER_COLUMNS}, i.id, unixepoch(i.at, 'auto') AS t, i.kind, i.sentiment, i.channel, i.note,
                  row_number() OVER (PARTITION BY i.customer_id
                                     ORDER BY ({prefer}) DESC, unixepoch(i.at, 'auto') DESC, i.id DESC) AS rn
           FROM interactions i JOIN customers c ON c.id = i.customer_id
           WHERE {window} AND {filter} AND {segment}
         ) WHERE rn = 1 ORDER BY t, id"
    )
}

/// Customer ids as a JSON array, each keeping its SQLite type (so 7 matches 7, and "7" "7").
pub(super) fn ids_json(ids: &[rusqlite::types::Value]) -> String {
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
pub(super) fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
