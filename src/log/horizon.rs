//! Where each day's interactions begin in the log, so the window rules read only recent rows.
//!
//! A business appends to its log, so the rows of the last 14 or 90 days are its last few
//! percent of rowids. For every day (UTC) the horizon keeps the smallest rowid of an interaction
//! stamped that day; the rows stamped at or after a moment then all lie at or after one rowid,
//! and a rule reads them as a rowid range instead of scanning the whole table. It is learnt by
//! reading the log once, then kept up to date from the rows added since (by rowid), and kept in
//! the state database between runs. A row added later but stamped in the past (an import) is
//! still found: new rows always lie past the watermark. Rows edited or deleted in place are
//! caught when the whole log is read again (`daemon.reconcile`, daily by default).

use std::collections::BTreeMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::{Log, LogError, stamp};

const DAY: i64 = 86_400;

/// Rows read per short read transaction: the business's writers never wait long.
const CHUNK: i64 = 50_000;

/// Rows to read before a second thread is worth it: a whole reading of a large log is read in
/// two halves at once, each on its own connection (a million customers' log in about half the
/// time, on the machine's other core).
const SPLIT: i64 = 4 * CHUNK;

/// Unreadable timestamps kept as examples for the log (see [`Log::bad_timestamps`]).
const SAMPLE: usize = 10;

/// What one reading of the log learnt (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Horizon {
    /// The log it describes (a different log is read from the start).
    log: String,
    /// Every row up to this rowid has been read.
    watermark: i64,
    /// When the whole log was last read (Unix seconds).
    reconciled_at: i64,
    /// Counts the whole readings of the log: what a rule knew is stale once this moves on.
    #[serde(default)]
    reading: u64,
    /// Days since 1970-01-01 (UTC) with interactions → the smallest rowid among them.
    days: BTreeMap<i64, i64>,
    /// Interactions whose timestamp cannot be read.
    bad: u64,
    /// The first few of them (rowids).
    bad_sample: Vec<i64>,
}

impl Horizon {
    /// `known` (from the state database) brought up to date at `now`: its new rows read, or
    /// the whole log read again when `known` is missing, describes another log, is older than
    /// `reconcile`, or the log has fewer rows than it saw (restored from a backup).
    pub(crate) fn refresh(
        known: Option<Horizon>,
        log: &Log,
        now: i64,
        reconcile: i64,
    ) -> Result<Horizon, LogError> {
        let last: i64 = log.conn().query_row(
            "SELECT coalesce(max(rowid), 0) FROM interactions",
            [],
            |r| r.get(0),
        )?;
        let name = log.name();
        let reading = known.as_ref().map_or(0, |h| h.reading) + 1;
        let current = known
            .filter(|h| h.log == name && now - h.reconciled_at < reconcile && h.watermark <= last);
        let started = std::time::Instant::now();
        let whole = current.is_none();
        let mut horizon = current.unwrap_or_else(|| Horizon {
            log: name,
            reconciled_at: now,
            reading,
            ..Horizon::default()
        });
        let rows = horizon.read_until(log, last, SPLIT)?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if whole {
            tracing::info!(
                rows,
                elapsed_ms,
                "whole interaction log read (first run, or `daemon.reconcile` since the last time)"
            );
        } else {
            tracing::debug!(rows, elapsed_ms, "new interactions read");
        }
        Ok(horizon)
    }

    /// The smallest rowid an interaction stamped at or after `since` (Unix seconds) can have.
    pub(crate) fn first_rowid_since(&self, since: i64) -> i64 {
        let seen = self.days.range(since.div_euclid(DAY)..).map(|(_, r)| *r);
        seen.min()
            .unwrap_or(i64::MAX)
            .min(self.watermark.saturating_add(1))
    }

    /// Every row up to this rowid has been read.
    pub(crate) fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Which whole reading of the log this is (they are counted): rows edited in place before
    /// it are known.
    pub(crate) fn reading(&self) -> u64 {
        self.reading
    }

    /// How many interactions had an unreadable timestamp when read, and the first few rowids.
    pub(crate) fn bad_rows(&self) -> (u64, Vec<i64>) {
        (self.bad, self.bad_sample.clone())
    }

    /// Reads the rows after the watermark up to rowid `last`; how many. From `split` rows on,
    /// the upper half is read on another thread at the same time.
    fn read_until(&mut self, log: &Log, last: i64, split: i64) -> Result<u64, LogError> {
        if last.saturating_sub(self.watermark) < split {
            return self.read_range(log, last);
        }
        let middle = self.watermark + (last - self.watermark) / 2;
        let mut upper = Horizon {
            watermark: middle,
            ..Horizon::default()
        };
        let other = log.reopen()?;
        let (lower, upper_rows) = std::thread::scope(|threads| {
            let upper = &mut upper;
            let reader = threads.spawn(move || upper.read_range(&other, last));
            let lower = self.read_range(log, middle);
            (lower, reader.join().unwrap_or(Err(LogError::Reader)))
        });
        let rows = lower? + upper_rows?;
        // Each half kept the first rowid of each day it saw; the lower one's are smaller.
        for (day, rowid) in upper.days {
            self.days.entry(day).or_insert(rowid);
        }
        self.bad += upper.bad;
        let room = SAMPLE.saturating_sub(self.bad_sample.len());
        self.bad_sample
            .extend(upper.bad_sample.into_iter().take(room));
        self.watermark = upper.watermark;
        Ok(rows)
    }

    /// Reads the rows after the watermark up to rowid `last`, in short chunks; how many.
    fn read_range(&mut self, log: &Log, last: i64) -> Result<u64, LogError> {
        let mut stmt = log.conn().prepare_cached(
            "SELECT rowid, at FROM interactions
             WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let mut by_sqlite = log.conn().prepare_cached("SELECT unixepoch(?1, 'auto')")?;
        let mut count = 0;
        let mut previous_day = None;
        while self.watermark < last {
            let mut rows = stmt.query([self.watermark, last, CHUNK])?;
            let mut read = false;
            while let Some(row) = rows.next()? {
                count += 1;
                let rowid: i64 = row.get(0)?;
                let at = row.get_ref(1)?;
                // The common forms read here; the rest, and numbers, as SQLite reads them.
                let read_here = match at {
                    ValueRef::Text(text) => stamp::unix_seconds(text),
                    _ => None,
                };
                let seconds = match read_here {
                    Some(s) => Some(s),
                    None => by_sqlite
                        .query_row([ToSqlOutput::Borrowed(at)], |r| r.get::<_, Option<i64>>(0))?,
                };
                match seconds {
                    // Rows come in rowid order: the first one of a day is its smallest.
                    Some(at) => {
                        // Most rows are stamped the day of the row before them.
                        let day = at.div_euclid(DAY);
                        if previous_day != Some(day) {
                            self.days.entry(day).or_insert(rowid);
                            previous_day = Some(day);
                        }
                    }
                    None => {
                        self.bad += 1;
                        if self.bad_sample.len() < SAMPLE {
                            self.bad_sample.push(rowid);
                        }
                    }
                }
                self.watermark = rowid;
                read = true;
            }
            if !read {
                break;
            }
        }
        self.watermark = self.watermark.max(last);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(rows: &[(i64, &str)]) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(crate::log::SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO customers (id, created_at) VALUES (1, '2025-01-01')",
            [],
        )
        .unwrap();
        for (id, at) in rows {
            conn.execute(
                "INSERT INTO interactions (id, customer_id, at, kind) VALUES (?1, 1, ?2, 'purchase')",
                rusqlite::params![id, at],
            )
            .unwrap();
        }
        drop(conn);
        let log = Log::open(&path).unwrap();
        (dir, log)
    }

    fn append(dir: &tempfile::TempDir, id: i64, at: &str) {
        let conn = rusqlite::Connection::open(dir.path().join("log.sqlite")).unwrap();
        conn.execute(
            "INSERT INTO interactions (id, customer_id, at, kind) VALUES (?1, 1, ?2, 'purchase')",
            rusqlite::params![id, at],
        )
        .unwrap();
    }

    /// Every row stamped at or after `since` lies at or after the horizon's rowid.
    fn covers(log: &Log, horizon: &Horizon, since: i64) -> bool {
        let first: Option<i64> = log
            .conn()
            .query_row(
                "SELECT min(rowid) FROM interactions WHERE unixepoch(at, 'auto') >= ?1",
                [since],
                |r| r.get(0),
            )
            .unwrap();
        first.is_none_or(|f| f >= horizon.first_rowid_since(since))
    }

    #[test]
    fn days_before_1970_round_down_and_unreadable_rows_are_sampled_in_order() {
        let (_dir, log) = log_with(&[
            (1, "1969-12-31T23:00:00Z"),
            (2, "never"),
            (3, "1970-01-01T01:00:00Z"),
            (4, "soon"),
            (5, "5400000"), // Unix seconds, as SQLite reads them: day 62
            (6, "1970-01-02 23:30:00-01:00"), // the third day in UTC
        ]);
        let horizon = Horizon::refresh(None, &log, 3 * DAY, 7 * DAY).unwrap();
        assert_eq!(
            horizon.days,
            BTreeMap::from([(-1, 1), (0, 3), (2, 6), (62, 5)])
        );
        assert!(covers(&log, &horizon, -3600));
        assert_eq!(horizon.bad_rows(), (2, vec![2, 4]));
        assert_eq!(horizon.watermark(), 6);
    }

    #[test]
    fn every_row_in_a_window_lies_past_the_horizon_also_rows_added_later_but_backdated() {
        let (dir, log) = log_with(&[
            (1, "2026-01-01T10:00:00Z"),
            (2, "2026-01-02T10:00:00+05:00"),
            (3, "not a date"),
            (5, "2026-01-05T23:59:59Z"),
            (6, "2026-01-03T00:00:00Z"), // an import: later row, earlier day
            (7, "2026-01-06T08:00:00Z"),
        ]);
        let day = |d: u32| {
            let first: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
            first.as_second() + (d as i64 - 1) * DAY
        };
        let horizon = Horizon::refresh(None, &log, day(7), 7 * DAY).unwrap();
        assert_eq!(horizon.first_rowid_since(day(4)), 5);
        assert_eq!(horizon.first_rowid_since(day(3)), 5);
        assert_eq!(horizon.first_rowid_since(day(2)), 2);
        assert_eq!(
            horizon.first_rowid_since(day(8)),
            8,
            "nothing yet: only new rows"
        );
        assert_eq!(horizon.bad, 1);
        // Later: new rows, one of them stamped long ago; read by rowid only.
        append(&dir, 9, "2026-01-01T12:00:00Z");
        append(&dir, 10, "2026-01-08T12:00:00Z");
        append(&dir, 11, "yesterday");
        let later = Horizon::refresh(Some(horizon.clone()), &log, day(8), 7 * DAY).unwrap();
        assert_eq!(
            later.reconciled_at, horizon.reconciled_at,
            "caught up, not reread"
        );
        assert_eq!(later.watermark, 11);
        assert_eq!(later.bad, 2);
        for d in 1..=9 {
            for hour in [0, 13] {
                assert!(
                    covers(&log, &later, day(d) + hour * 3600),
                    "day {d} {hour}h"
                );
            }
        }
        log.set_horizon(later.clone());
        let (count, rows) = log.bad_timestamps(SAMPLE).unwrap();
        assert_eq!(count, 2);
        assert_eq!(
            rows.iter().map(|r| r.at.as_str()).collect::<Vec<_>>(),
            ["not a date", "yesterday"]
        );
    }

    /// Read in two halves at once or in one go, the horizon is the same: the days' first rows
    /// (also a day whose rows lie in both halves, and rows out of order), the unreadable ones.
    #[test]
    fn a_log_read_in_two_halves_at_once_gives_the_horizon_read_in_one() {
        let mut rows = Vec::new();
        for id in 1..=40 {
            let at = match id {
                7 | 31 => "garbage".to_string(),
                // Imports: late rows, early days.
                33 => "2026-01-01T05:00:00Z".to_string(),
                38 => "2026-01-02T05:00:00Z".to_string(),
                _ => format!("2026-01-{:02}T{:02}:00:00Z", 1 + id / 12, id % 12),
            };
            rows.push((id, at));
        }
        let borrowed: Vec<(i64, &str)> = rows.iter().map(|(i, a)| (*i, a.as_str())).collect();
        let (_dir, log) = log_with(&borrowed);
        let mut by_halves = Horizon::default();
        assert_eq!(by_halves.read_until(&log, 40, 1).unwrap(), 40);
        let mut at_once = Horizon::default();
        assert_eq!(at_once.read_until(&log, 40, i64::MAX).unwrap(), 40);
        assert_eq!(by_halves, at_once);
        assert_eq!(at_once.bad_rows(), (2, vec![7, 31]));
        // 2026-01-02 has rows in both halves (12 to 23, and 38).
        let days = BTreeMap::from([(20_454, 1), (20_455, 12), (20_456, 24), (20_457, 36)]);
        assert_eq!(at_once.days, days);
    }

    #[test]
    fn the_whole_log_is_read_again_when_old_for_another_log_or_after_a_restore() {
        let (_dir, log) = log_with(&[(1, "2026-01-01T10:00:00Z"), (2, "2026-01-02T10:00:00Z")]);
        let first = Horizon::refresh(None, &log, 1_000, 100).unwrap();
        let same = Horizon::refresh(Some(first.clone()), &log, 1_050, 100).unwrap();
        assert_eq!(same.reconciled_at, 1_000);
        let old = Horizon::refresh(Some(first.clone()), &log, 1_100, 100).unwrap();
        assert_eq!(old.reconciled_at, 1_100, "reconciled after `reconcile`");
        let restored = Horizon {
            watermark: 5,
            ..first.clone()
        };
        let reread = Horizon::refresh(Some(restored), &log, 1_050, 100).unwrap();
        assert_eq!((reread.reconciled_at, reread.watermark), (1_050, 2));
        let other = Horizon {
            log: "elsewhere.sqlite".into(),
            ..first
        };
        let reread = Horizon::refresh(Some(other), &log, 1_050, 100).unwrap();
        assert_eq!(reread.reconciled_at, 1_050);
    }
}
