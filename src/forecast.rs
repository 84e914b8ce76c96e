//! `rekindle plan --days N`: the next N days under the policy, on a simulated clock.
//!
//! Each day, every rule runs at its first scheduled minute of that day (rules that only react to
//! new interactions at midnight), against the log as it is now and a dry-run outbox in which
//! the notes planned on earlier days count: cooldowns, the cap and daily limits play out as
//! they would. Nothing is sent or written. New interactions are not invented: a forecast shows
//! what the rules and the policy do with the customers you have.

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use crate::commands::Loaded;
use crate::config::Rule;
use crate::cycle::{self, Pass, RuleReport};
use crate::error::Error;
use crate::log::Log;
use crate::outbox::Outbox;

/// One simulated day.
#[derive(Debug)]
pub(crate) struct Day {
    /// The local date.
    pub date: Date,
    /// What each rule that ran did.
    pub reports: Vec<RuleReport>,
}

/// Simulates `days` days from the day of `start`.
pub(crate) fn forecast(loaded: &Loaded, start: Timestamp, days: u32) -> Result<Vec<Day>, Error> {
    let config = &loaded.config;
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let first = start.to_zoned_datetime(config.timezone.clone()).date();
    let mut out = Vec::new();
    for offset in 0..days {
        let Ok(date) = first.checked_add(SignedDuration::from_hours(24 * i64::from(offset))) else {
            break;
        };
        // (when, rule) for each rule's first run of the day, in time order.
        let mut runs: Vec<(Timestamp, &Rule)> = config
            .rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| first_run(r, date, start, config).map(|t| (t, r)))
            .collect();
        runs.sort_by_key(|(t, r)| (*t, std::cmp::Reverse(r.priority)));
        let mut reports = Vec::new();
        for (at, rule) in runs {
            let rules = [rule];
            let pass = Pass::new(&rules, at);
            reports.extend(cycle::evaluate(
                config,
                &loaded.templates,
                &log,
                &outbox,
                &pass,
            )?);
        }
        out.push(Day { date, reports });
    }
    Ok(out)
}

/// The first minute of `date` (local), not before `start`, at which `rule` runs.
fn first_run(
    rule: &Rule,
    date: Date,
    start: Timestamp,
    config: &crate::config::Config,
) -> Option<Timestamp> {
    (0..24 * 60).find_map(|minute| {
        let local = date
            .to_datetime(Time::midnight())
            .checked_add(SignedDuration::from_mins(minute))
            .ok()?;
        let runs = match &rule.schedule {
            Some(schedule) => schedule.matches(local),
            None => true,
        };
        let at = local
            .to_zoned_datetime(config.timezone.clone())
            .ok()?
            .timestamp();
        (runs && at >= start).then_some(at)
    })
}
