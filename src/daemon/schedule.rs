//! Scheduled rules: tokio-cron-scheduler ticks once a minute; each tick evaluates the rules
//! whose 5-field cron schedule matches that minute on the wall clock of `defaults.timezone` (so
//! "0 9 * * *" stays 09:00 local time across DST changes), and puts the staff digest together
//! when its schedule matches. Each runs at most once per scheduled wall-clock time (a 02:30 rule
//! runs once on the night 02:30 comes twice, and at 03:00 on the night it does not come), and a
//! scheduled time missed while the daemon was down or busy runs once when it catches up, within
//! `daemon.catch_up` (like systemd timers' `Persistent=true`).

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp, civil};
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info};

use super::watchdog::Beats;
use super::{Shared, blocking, notify};
use crate::config::{Config, DIGEST_RULE, Schedule};
use crate::error::Error;
use crate::evaluate::{self, digest};
use crate::log::Log;
use crate::outbox::{Outbox, Setting};

/// A tokio-cron-scheduler job that sends the minute to `ticks` at second 0 of every minute.
pub(super) async fn start(
    ticks: mpsc::UnboundedSender<Timestamp>,
    shared: Arc<Shared>,
) -> Result<JobScheduler, Error> {
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async("0 * * * * *", move |_, _| {
        let ticks = ticks.clone();
        let shared = shared.clone();
        Box::pin(async move {
            Beats::stamp(&shared.beats.scheduler);
            let _ = ticks.send(crate::clock::now());
        })
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    Ok(scheduler)
}

/// When each scheduled job (a rule, or the staff digest under its name) last ran: the scheduled
/// wall-clock time (in `defaults.timezone`) it ran for. In memory, and in the state database
/// so a restart catches up on what it missed.
#[derive(Default)]
pub(super) struct Runs(std::sync::Mutex<HashMap<String, civil::DateTime>>);

impl Runs {
    /// At start: what the state database remembers. A job it has no record of counts as having
    /// run just now: it catches up on the times it misses from now on, not on its whole past.
    pub(super) fn load(outbox: &Outbox, config: &Config, now: Timestamp) -> Result<Runs, Error> {
        let local = minute(config, now);
        let mut runs = HashMap::new();
        for (name, _) in jobs(config) {
            let kept: Option<String> = outbox.setting(Setting::ScheduledRun(name))?;
            let last = match kept.and_then(|k| k.parse().ok()) {
                Some(last) => last,
                None => {
                    outbox.set_setting(Setting::ScheduledRun(name), &local.to_string())?;
                    local
                }
            };
            runs.insert(name.to_string(), last);
        }
        Ok(Runs(std::sync::Mutex::new(runs)))
    }

    /// The jobs due at `now`, each with the scheduled time it runs for, now counted as run.
    fn take_due(&self, config: &Config, now: Timestamp) -> Vec<(String, civil::DateTime)> {
        let local = minute(config, now);
        let mut runs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        for (name, schedule) in jobs(config) {
            // A job added by a reload: from now on.
            let last = *runs.entry(name.to_string()).or_insert(local);
            if let Some(at) = due_for(schedule, last, local, config.daemon.catch_up) {
                runs.insert(name.to_string(), at);
                due.push((name.to_string(), at));
            }
        }
        due
    }
}

/// Evaluates the rules (and puts the staff digest together) due at the minute `at`: those whose
/// schedule matches it on the wall clock of `defaults.timezone`, and those whose scheduled time
/// passed since they last ran, within `daemon.catch_up`. Each runs at most once per scheduled
/// time.
pub(super) async fn tick(shared: Arc<Shared>, at: Timestamp) {
    let running = shared.running();
    let config = &running.loaded.config;
    let due = shared.runs.take_due(config, at);
    if due.is_empty() {
        return;
    }
    let local = minute(config, at);
    for (name, scheduled) in due.iter().filter(|(_, s)| *s < local) {
        info!(rule = %name, scheduled = %scheduled, "catching up: the rule's scheduled time passed while the daemon was down or busy; it runs once now");
    }
    let _one_at_a_time = shared.evaluating.lock().await;
    if shared.shutdown.is_shutdown() {
        return;
    }
    let names: Vec<String> = due.iter().map(|(name, _)| name.clone()).collect();
    notify(&[NotifyState::Status(&format!(
        "evaluating {}",
        names.join(", ")
    ))]);
    let result = blocking(move || {
        let config = &running.loaded.config;
        let log = Log::open(&config.log_path)?;
        let outbox = Outbox::open(&config.state_path)?;
        for (name, scheduled) in &due {
            outbox.set_setting(Setting::ScheduledRun(name), &scheduled.to_string())?;
        }
        let rules: Vec<_> = config
            .rules
            .iter()
            .filter(|r| names.contains(&r.name))
            .collect();
        let pass = evaluate::Pass::new(&rules, crate::clock::now());
        let reports = evaluate::run(config, &running.loaded.templates, &log, &outbox, &pass)?;
        for r in &reports {
            crate::metrics::METRICS.evaluated(&r.rule, r.elapsed);
            info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, matched = r.matched, queued = r.queued, "{}", r.summary());
        }
        let digest = match names.iter().any(|n| n == DIGEST_RULE) {
            true => {
                let templates = &running.loaded.templates;
                digest::queue(config, templates, &log, &outbox, crate::clock::now())?
            }
            false => 0,
        };
        Ok(reports.iter().map(|r| r.queued).sum::<u64>() + digest as u64)
    })
    .await;
    match result {
        Ok(queued) if queued > 0 => shared.queued.notify_one(),
        Ok(_) => {}
        Err(err) => {
            error!(error = %err, "rule evaluation failed; it runs again at its next scheduled time")
        }
    }
    notify(&[NotifyState::Status("waiting for the next rule or note")]);
}

/// The scheduled jobs: each enabled rule with a schedule, and the staff digest.
fn jobs(config: &Config) -> impl Iterator<Item = (&str, &Schedule)> {
    let rules = config
        .rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| Some((r.name.as_str(), r.schedule.as_ref()?)));
    let digest = config.digest.as_ref().map(|d| (DIGEST_RULE, &d.schedule));
    rules.chain(digest)
}

/// The wall-clock minute of `at` in `defaults.timezone`.
fn minute(config: &Config, at: Timestamp) -> civil::DateTime {
    let local = at.to_zoned_datetime(config.timezone.clone()).datetime();
    local
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap_or(local)
}

/// The scheduled wall-clock time a job that last ran for `last` runs for at the minute `now`,
/// if any: the latest one after `last`, at most `catch_up` before `now`.
fn due_for(
    schedule: &Schedule,
    last: civil::DateTime,
    now: civil::DateTime,
    catch_up: SignedDuration,
) -> Option<civil::DateTime> {
    let oldest = now
        .checked_sub(catch_up.max(SignedDuration::ZERO) + SignedDuration::from_mins(1))
        .unwrap_or(civil::DateTime::MIN);
    schedule.latest_between(last.max(oldest), now)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::test_config;

    /// A config with one quiet rule on `schedule`, in `timezone`, and `daemon` settings.
    fn config(timezone: &str, schedule: &str, daemon: &str) -> Config {
        let rule = test_config::rule("morning", "quiet", schedule, "q.j2", "");
        let maildir = test_config::maildir("m");
        let rest = format!("{daemon}\n{rule}");
        let text = test_config::config(&test_config::SCRATCH, &maildir, Some(timezone), &rest);
        let (config, d) = Config::parse(Path::new("c.toml"), text);
        assert!(d.is_empty(), "{d:?}");
        config.expect("config")
    }

    /// The daemon ticking every minute from `from` for `hours`, except while it is down (UTC
    /// times): when the rule ran (UTC) and for which scheduled local time.
    fn runs(config: &Config, from: &str, hours: i64, down: &[(&str, &str)]) -> Vec<String> {
        let start: Timestamp = from.parse().expect("time");
        let down: Vec<(Timestamp, Timestamp)> = down
            .iter()
            .map(|(a, b)| (a.parse().expect("time"), b.parse().expect("time")))
            .collect();
        let runs = Runs::default();
        runs.0
            .lock()
            .expect("lock")
            .insert("morning".into(), minute(config, start));
        (1..hours * 60)
            .map(|m| start + SignedDuration::from_mins(m))
            .filter(|t| !down.iter().any(|(a, b)| a <= t && t < b))
            .flat_map(|t| {
                runs.take_due(config, t)
                    .into_iter()
                    .map(move |(_, at)| format!("{t} for {at}"))
            })
            .collect()
    }

    #[test]
    fn a_nine_oclock_rule_stays_at_nine_across_dst_in_paris_and_new_york() {
        // Europe/Paris moves from UTC+1 to UTC+2 on 29 March 2026, and back on 25 October.
        let paris = config("Europe/Paris", "0 9 * * *", "");
        assert_eq!(
            runs(&paris, "2026-03-28T00:00:00Z", 72, &[]),
            [
                "2026-03-28T08:00:00Z for 2026-03-28T09:00:00",
                "2026-03-29T07:00:00Z for 2026-03-29T09:00:00",
                "2026-03-30T07:00:00Z for 2026-03-30T09:00:00"
            ]
        );
        assert_eq!(
            runs(&paris, "2026-10-24T00:00:00Z", 72, &[]),
            [
                "2026-10-24T07:00:00Z for 2026-10-24T09:00:00",
                "2026-10-25T08:00:00Z for 2026-10-25T09:00:00",
                "2026-10-26T08:00:00Z for 2026-10-26T09:00:00"
            ]
        );
        // America/New_York moves from UTC-5 to UTC-4 on 8 March 2026, and back on 1 November.
        let new_york = config("America/New_York", "0 9 * * *", "");
        assert_eq!(
            runs(&new_york, "2026-03-07T00:00:00Z", 72, &[]),
            [
                "2026-03-07T14:00:00Z for 2026-03-07T09:00:00",
                "2026-03-08T13:00:00Z for 2026-03-08T09:00:00",
                "2026-03-09T13:00:00Z for 2026-03-09T09:00:00"
            ]
        );
        assert_eq!(
            runs(&new_york, "2026-10-31T00:00:00Z", 72, &[]),
            [
                "2026-10-31T13:00:00Z for 2026-10-31T09:00:00",
                "2026-11-01T14:00:00Z for 2026-11-01T09:00:00",
                "2026-11-02T14:00:00Z for 2026-11-02T09:00:00"
            ]
        );
    }

    #[test]
    fn a_half_past_two_rule_runs_once_on_both_nights_the_clocks_change() {
        let paris = config("Europe/Paris", "30 2 * * *", "");
        // 25 October: 02:30 comes twice (00:30 and 01:30 UTC). Before, the rule ran twice.
        assert_eq!(
            runs(&paris, "2026-10-24T12:00:00Z", 24, &[]),
            ["2026-10-25T00:30:00Z for 2026-10-25T02:30:00"]
        );
        // 29 March: clocks jump from 02:00 to 03:00, so 02:30 never comes; it runs at 03:00.
        // Before, it did not run that day.
        assert_eq!(
            runs(&paris, "2026-03-28T12:00:00Z", 24, &[]),
            ["2026-03-29T01:00:00Z for 2026-03-29T02:30:00"]
        );
    }

    #[test]
    fn a_time_missed_while_down_runs_once_when_the_daemon_is_back_within_the_catch_up_window() {
        let paris = config("Europe/Paris", "0 9 * * *", "");
        // Down from 07:00 to 10:30 Paris time (UTC+1): 09:00 runs once, at 10:30.
        assert_eq!(
            runs(
                &paris,
                "2026-12-01T00:00:00Z",
                24,
                &[("2026-12-01T06:00:00Z", "2026-12-01T09:30:00Z")]
            ),
            ["2026-12-01T09:30:00Z for 2026-12-01T09:00:00"]
        );
        // Down for three days: once for the latest missed time, not three times.
        assert_eq!(
            runs(
                &paris,
                "2026-12-01T00:00:00Z",
                96,
                &[("2026-12-01T06:00:00Z", "2026-12-04T09:30:00Z")]
            ),
            ["2026-12-04T09:30:00Z for 2026-12-04T09:00:00"]
        );
        // Missed by longer than daemon.catch_up: it waits for the next day.
        let strict = config("Europe/Paris", "0 9 * * *", "[daemon]\ncatch_up = \"1h\"");
        assert_eq!(
            runs(
                &strict,
                "2026-12-01T00:00:00Z",
                48,
                &[("2026-12-01T06:00:00Z", "2026-12-01T09:30:00Z")]
            ),
            ["2026-12-02T08:00:00Z for 2026-12-02T09:00:00"]
        );
    }

    #[test]
    fn a_rule_every_five_minutes_runs_each_time_once_and_once_after_a_stall() {
        let paris = config("Europe/Paris", "*/5 * * * *", "");
        let all = runs(&paris, "2026-12-01T00:00:00Z", 1, &[]);
        assert_eq!(all.len(), 11, "{all:?}");
        // Ticks lost for 12 minutes (a busy machine): one catch-up run, for the latest time.
        let stalled = runs(
            &paris,
            "2026-12-01T00:00:00Z",
            1,
            &[("2026-12-01T00:09:00Z", "2026-12-01T00:21:00Z")],
        );
        assert!(
            stalled.contains(&"2026-12-01T00:21:00Z for 2026-12-01T01:20:00".to_string()),
            "{stalled:?}"
        );
        assert_eq!(stalled.len(), 9, "{stalled:?}");
    }
}
