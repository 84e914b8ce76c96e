//! Rows as read from the log, before any validation: customers and interactions, and the
//! forgiving readers of their values (ids of any type, text that is not UTF-8, truthy flags).

use rusqlite::Row;
use rusqlite::types::{Value, ValueRef};

#[cfg(doc)]
use super::{CUSTOMER_COLUMN_COUNT, CUSTOMER_COLUMNS};

/// An interaction skipped because its timestamp is unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTimestamp {
    /// The interaction's id.
    pub interaction_id: String,
    /// Its customer.
    pub customer_id: String,
    /// The text that could not be read.
    pub at: String,
}

impl BadTimestamp {
    /// Reads the row `id, customer_id, at`.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<BadTimestamp> {
        Ok(BadTimestamp {
            interaction_id: id_text(row.get_ref(0)?),
            customer_id: id_text(row.get_ref(1)?),
            at: text_lossy(row.get_ref(2)?).unwrap_or_default(),
        })
    }
}

/// A customer as read from the log, before any validation (see `compose::Recipient`).
#[derive(Debug, Clone)]
pub(crate) struct CustomerRow {
    /// The id exactly as stored (integer or text), for further queries.
    pub id: Value,
    /// The id as text, for logs and the outbox.
    pub id_text: String,
    /// Email address, unchecked.
    pub email: Option<String>,
    /// Name, unchecked.
    pub name: Option<String>,
    /// Time zone name, unchecked.
    pub timezone: Option<String>,
    /// `created_at` as written.
    pub created_at_raw: Option<String>,
    /// `created_at` in Unix seconds, if SQLite could read it.
    pub created_at: Option<i64>,
    /// Whether the customer opted out.
    pub opted_out: bool,
    /// The attributes JSON, unchecked.
    pub attributes: Option<String>,
}

impl CustomerRow {
    /// Reads the first [`CUSTOMER_COLUMN_COUNT`] columns of `row` (see [`CUSTOMER_COLUMNS`]).
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<CustomerRow> {
        let id: Value = row.get(0)?;
        Ok(CustomerRow {
            id_text: id_text(ValueRef::from(&id)),
            id,
            email: text_lossy(row.get_ref(1)?),
            name: text_lossy(row.get_ref(2)?),
            timezone: text_lossy(row.get_ref(3)?),
            created_at_raw: text_lossy(row.get_ref(4)?),
            created_at: row.get(5)?,
            opted_out: truthy(row.get_ref(7)?),
            attributes: text_lossy(row.get_ref(8)?),
        })
    }
}

/// An interaction as read from the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InteractionRow {
    /// Its id.
    pub id: i64,
    /// When, in Unix seconds.
    pub at: i64,
    /// Its kind, e.g. "complaint".
    pub kind: String,
    /// -1.0 .. 1.0.
    pub sentiment: Option<f64>,
    /// e.g. "email".
    pub channel: Option<String>,
    /// The customer's own words.
    pub note: Option<String>,
}

impl InteractionRow {
    /// Reads six columns starting at `first`: id, unixepoch(at, 'auto'), kind, sentiment, channel, note.
    /// None when the id is NULL (no interaction, e.g. from a LEFT JOIN).
    pub(crate) fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<InteractionRow>> {
        let (Some(id), Some(at)) = (
            row.get::<_, Option<i64>>(first)?,
            row.get::<_, Option<i64>>(first + 1)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(InteractionRow {
            id,
            at,
            kind: text_lossy(row.get_ref(first + 2)?).unwrap_or_default(),
            sentiment: match row.get_ref(first + 3)? {
                ValueRef::Integer(i) => Some(i as f64),
                ValueRef::Real(r) => Some(r),
                _ => None,
            },
            channel: text_lossy(row.get_ref(first + 4)?),
            note: text_lossy(row.get_ref(first + 5)?),
        }))
    }
}

/// A value as text, whatever its SQLite type (ids may be integers or text).
pub(crate) fn id_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        other => text_lossy(other).unwrap_or_default(),
    }
}

/// Text (or a blob holding text) as a String; invalid UTF-8 is replaced, never an error.
pub(super) fn text_lossy(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Null => None,
    }
}

/// SQLite's idea of true: a non-zero number, or text such as "1", "true", "yes".
fn truthy(value: ValueRef<'_>) -> bool {
    match value {
        ValueRef::Integer(i) => i != 0,
        ValueRef::Real(r) => r != 0.0,
        ValueRef::Text(t) => matches!(
            String::from_utf8_lossy(t)
                .trim()
                .to_ascii_lowercase()
                .as_str(),
            "1" | "true" | "yes" | "y" | "t"
        ),
        _ => false,
    }
}
