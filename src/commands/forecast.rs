//! `rekindle plan --days N`: the next N days under the policy, on a simulated clock.
//!
//! Each day, every rule runs at its first scheduled minute of that day (rules that only react to
//! new interactions at midnight), against the log as it is now and a dry-run outbox in which
//! the notes planned on earlier days count: cooldowns, the cap and daily limits play out as
//! they would. Nothing is sent or written. New interactions are not invented: a forecast shows
//! what the rules and the policy do with the customers you have.

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use crate::config::Rule;
use crate::error::Error;
use crate::evaluate::{self, Pass, RuleReport};
use crate::load::Loaded;
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

/// Simulates `days` days from the day of `start`, planning into `outbox` (a dry run).
pub(crate) fn forecast(
    loaded: &Loaded,
    outbox: &Outbox,
    start: Timestamp,
    days: u32,
) -> Result<Vec<Day>, Error> {
    let config = &loaded.config;
    let log = Log::open(&config.log_path)?;
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
            let pass = Pass {
                // Unreadable rows are the same every day: say so once.
                report_bad_rows: offset == 0 && reports.is_empty(),
                ..Pass::new(&rules, at)
            };
            reports.extend(evaluate::run(
                config,
                &loaded.templates,
                &log,
                outbox,
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::demo::{DemoSpec, TEMPLATES, generate_log};
    use crate::test_config;

    const CUSTOMERS: usize = 2000;
    const WEEK: i64 = 7 * 86_400;
    const QUARTER: i64 = 91 * 86_400;

    /// The policy over a synthetic year: an apology rule, the 10:1 ratio rule, and a quarterly
    /// appreciation season whose daily limit lets it reach everyone in each quarter.
    fn config(dir: &std::path::Path) -> String {
        let season = |name: &str, start: &str, end: &str| {
            let extra = format!(
                "priority = 10\ndaily_limit = 100\nstart = \"{start}\"\nend = \"{end}\"\n\n"
            );
            test_config::rule(name, "seasonal", "0 10 * * *", "gratitude.j2", &extra)
        };
        let rules = format!(
            r#"[policy]
cap = 1
cap_window = "7d"

[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "0 9 * * *"
template = "unhappy.j2"
priority = 100

[[rule]]
name = "ten-to-one"
kind = "ratio"
schedule = "0 10 * * 3"
template = "appreciation.j2"
priority = 30
daily_limit = 300

{q1}{q2}{q3}{q4}"#,
            q1 = season("winter", "01-05", "02-04"),
            q2 = season("spring", "04-06", "05-06"),
            q3 = season("summer", "07-06", "08-05"),
            q4 = season("autumn", "10-05", "11-04"),
        );
        let (log, state, templates) = (
            dir.join("log.sqlite").display().to_string(),
            dir.join("state.sqlite").display().to_string(),
            dir.join("templates").display().to_string(),
        );
        let paths = test_config::Paths {
            log: &log,
            state: &state,
            templates: &templates,
        };
        let maildir = test_config::maildir(&dir.join("maildir").display().to_string());
        test_config::config(&paths, &maildir, Some("Europe/Paris"), &rules)
    }

    #[test]
    fn a_synthetic_year_keeps_the_cap_reaches_everyone_each_quarter_and_lifts_the_ratio() {
        let dir = tempfile::tempdir().expect("dir");
        let start: Timestamp = "2027-01-04T07:00:00Z".parse().expect("start");
        let spec = DemoSpec::new(CUSTOMERS, 2027);
        generate_log(&dir.path().join("log.sqlite"), &spec, start).expect("log");
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).expect("templates");
        for (name, text) in TEMPLATES {
            std::fs::write(templates.join(name), text).expect("template");
        }
        let path = dir.path().join("rekindle.toml");
        std::fs::write(&path, config(dir.path())).expect("config");
        let loaded = crate::load::load(&path).expect("config loads");
        let config = &loaded.config;
        let outbox = Outbox::open_dry_run(&config.state_path).expect("outbox");
        let days = forecast(&loaded, &outbox, start, 365).expect("forecast");
        assert_eq!(days.len(), 365);
        let planned = outbox.planned().expect("planned");

        // Never pushy: no customer ever gets two notes within seven days.
        let mut by_customer: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (_, customer, at) in &planned {
            by_customer.entry(customer).or_default().push(*at);
        }
        let over_cap: Vec<_> = by_customer
            .iter()
            .filter(|(_, times)| times.windows(2).any(|w| w[1] - w[0] < WEEK))
            .collect();
        assert!(
            over_cap.is_empty(),
            "over the cap: {:?}",
            &over_cap[..over_cap.len().min(3)]
        );

        // Include everyone: every customer a rule may write to hears from us every quarter.
        let log = Log::open(&config.log_path).expect("log");
        let mut eligible = HashSet::new();
        let mut stmt = log
            .conn()
            .prepare("SELECT id FROM customers WHERE coalesce(status, '') != 'departed'")
            .expect("query");
        let ids: Vec<rusqlite::types::Value> = stmt
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ids");
        for id in ids {
            let Some((row, _)) = log
                .customer(&crate::log::id_text(rusqlite::types::ValueRef::from(&id)))
                .expect("customer")
            else {
                continue;
            };
            let standing = log
                .standing(&row.id, &config.policy, start)
                .expect("standing");
            let reachable = crate::compose::recipient(&row, config, start).is_ok();
            if reachable && !row.opted_out && !standing.unsubscribed {
                eligible.insert(row.id_text.clone());
            }
        }
        let mut coverage = Vec::new();
        for q in 0..4 {
            let (from, to) = (
                start.as_second() + q * QUARTER,
                start.as_second() + (q + 1) * QUARTER,
            );
            let touched: HashSet<&str> = planned
                .iter()
                .filter(|(_, _, at)| (from..to).contains(at))
                .map(|(_, c, _)| c.as_str())
                .collect();
            let reached = eligible
                .iter()
                .filter(|c| touched.contains(c.as_str()))
                .count();
            coverage.push(reached as f64 / eligible.len() as f64);
        }
        eprintln!(
            "{} eligible customers, {} notes in the year; quarterly coverage {:?}",
            eligible.len(),
            planned.len(),
            coverage
                .iter()
                .map(|c| format!("{:.1}%", 100.0 * c))
                .collect::<Vec<_>>()
        );
        assert!(coverage.iter().all(|c| *c >= 0.99), "{coverage:?}");

        // Ten to one: the share of customers at or above the target rises as the notes go out.
        let at_target = |notes_for: i64| {
            let since = start - jiff::SignedDuration::from_hours(90 * 24);
            let (mut with_negatives, mut meeting) = (0, 0);
            for customer in &eligible {
                let id = rusqlite::types::Value::Text(customer.clone());
                let points = log
                    .touch_points(&id, &config.touchpoints, since)
                    .expect("ledger");
                let notes = planned
                    .iter()
                    .filter(|(_, c, t)| c == customer && *t < start.as_second() + notes_for)
                    .count() as i64;
                let ledger = crate::select::Ledger::total(&points, notes);
                if ledger.negative > 0 {
                    with_negatives += 1;
                    if ledger.meets(10.0) {
                        meeting += 1;
                    }
                }
            }
            meeting as f64 / f64::from(with_negatives.max(1))
        };
        // The same 90 days of the log, without and with the first quarter's notes.
        let before = at_target(0);
        let after = at_target(QUARTER);
        eprintln!(
            "customers at or above 10:1 over the last 90 days: {:.1}% from the log alone, {:.1}% with the first quarter's notes",
            100.0 * before,
            100.0 * after
        );
        assert!(after > before, "{before} → {after}");
    }
}
