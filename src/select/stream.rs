//! Handing a selection's rows to the rule taking its turn: a short read transaction for a small
//! selection, a bounded read-ahead and streaming for a large one, and counting what is left.

use std::ops::ControlFlow;

use super::{Candidate, Rest, Statement};
use crate::log::{Log, LogError};

/// Candidates read before any is processed. A selection this size or smaller is read in one
/// short read transaction and only then composed and queued. A larger one keeps the memory
/// bounded and processes the rest as it streams. Several selections are read at once (see
/// `select::read_ahead`), each holding up to this many.
pub(super) const READ_AHEAD: usize = 1_000;

/// The same for a log with a rollback journal, where a reader holds up the business's own
/// writers: a selection this size or smaller makes them wait for the SQL alone (milliseconds),
/// never for rendering or fsyncs.
pub(super) const READ_AHEAD_ROLLBACK: usize = 5_000;

/// Runs `statement`, handing each row (made a candidate by `map`) to `each`.
pub(super) fn query(
    log: &Log,
    statement: &Statement,
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Candidate>,
    each: &mut impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let mut stmt = log.conn().prepare(&statement.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&statement.params))?;
    let read_ahead = match log.rollback_journal() {
        Some(_) => READ_AHEAD_ROLLBACK,
        None => READ_AHEAD,
    };
    let mut ahead = Vec::new();
    let mut done = false;
    while ahead.len() < read_ahead {
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
