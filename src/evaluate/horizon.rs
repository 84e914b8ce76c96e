//! What an evaluation knows of the log's layout (where each day's rows begin, see
//! `log::Horizon`), kept up to date and in the state database, and the rows it cannot read.

use tracing::warn;

use super::EvaluateError;
use crate::config::Config;
use crate::log::{BadTimestamp, Horizon, Log};
use crate::outbox::{Outbox, Setting};

/// Unreadable timestamps shown in the log, at most (the horizon keeps as many).
pub(super) const BAD_ROWS_SHOWN: usize = 10;

/// Brings what rekindle knows of the log's layout (see [`Horizon`]) up to date, reading only
/// the rows added since the last evaluation (or the whole log, `daemon.reconcile` after the
/// last time, by the wall clock: a plan for another day reads nothing more), and keeps it in the
/// state database (a dry run only in memory). A log whose `interactions` has no rowid (a view)
/// has none: every rule then reads the whole table.
pub(super) fn refresh_horizon(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
) -> Result<(), EvaluateError> {
    if log.rowid_problem().is_some() {
        return Ok(());
    }
    let known = match log.horizon() {
        Some(known) => Some(known),
        None => outbox.setting(Setting::Horizon)?,
    };
    let reconcile = config.daemon.reconcile.as_secs();
    let horizon = Horizon::refresh(known, log, crate::clock::now().as_second(), reconcile)?;
    if !outbox.is_dry_run() {
        outbox.set_setting(Setting::Horizon, &horizon)?;
    }
    log.set_horizon(horizon);
    Ok(())
}

/// Logs interactions whose timestamp cannot be read (how many, and the first few): every rule
/// skips them. Said once while they stay the same, not at every evaluation (a daemon evaluating
/// every five minutes would say it 288 times a day).
pub(super) fn report_bad_timestamps((count, rows): (u64, Vec<BadTimestamp>)) {
    static LAST_SAID: std::sync::Mutex<Option<(u64, Vec<String>)>> = std::sync::Mutex::new(None);
    let now = (
        count,
        rows.iter().map(|r| r.interaction_id.clone()).collect(),
    );
    let mut last = LAST_SAID.lock().unwrap_or_else(|e| e.into_inner());
    if last.as_ref() == Some(&now) {
        return;
    }
    *last = Some(now);
    for row in &rows {
        warn!(interaction_id = %row.interaction_id, customer_id = %row.customer_id, at = %row.at, "interaction skipped: unreadable timestamp (use ISO-8601, e.g. 2026-03-14T09:12:00Z, or Unix seconds)");
    }
    if count > rows.len() as u64 {
        warn!(
            count,
            "more interactions with unreadable timestamps skipped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::report_bad_timestamps;
    use crate::log::BadTimestamp;

    fn bad(id: &str) -> BadTimestamp {
        BadTimestamp {
            interaction_id: id.into(),
            customer_id: "7".into(),
            at: "last tuesday".into(),
        }
    }

    #[test]
    fn a_bad_row_is_warned_about_once_not_at_every_evaluation() {
        let said = crate::test_log::logged(|| {
            for _ in 0..3 {
                report_bad_timestamps((1, vec![bad("41")]));
            }
        });
        assert_eq!(said.matches("interaction_id=41").count(), 1, "{said}");
        // A new bad row is news.
        let said = crate::test_log::logged(|| {
            report_bad_timestamps((2, vec![bad("41"), bad("42")]));
        });
        assert_eq!(said.matches("interaction skipped").count(), 2, "{said}");
    }
}
