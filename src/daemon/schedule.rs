//! Scheduled rules: tokio-cron-scheduler ticks once a minute; each tick evaluates the rules
//! whose 5-field cron schedule matches that minute on the wall clock of `defaults.timezone` (so
//! "0 9 * * *" stays 09:00 local time across DST changes), and puts the staff digest together
//! when its schedule matches.

use std::sync::Arc;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info};

use super::watchdog::Beats;
use super::{Shared, blocking, notify};
use crate::config::{Config, Rule};
use crate::error::Error;
use crate::evaluate::{self, digest};
use crate::log::Log;
use crate::outbox::Outbox;

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

/// Evaluates the rules whose schedule matches the minute `at` (local wall clock).
pub(super) async fn tick(shared: Arc<Shared>, at: Timestamp) {
    let running = shared.running();
    let config = &running.loaded.config;
    let due: Vec<String> = due_rules(config, at).map(|r| r.name.clone()).collect();
    let local = at.to_zoned_datetime(config.timezone.clone()).datetime();
    let digest_due = config
        .digest
        .as_ref()
        .is_some_and(|d| d.schedule.matches(local));
    if due.is_empty() && !digest_due {
        return;
    }
    let _one_at_a_time = shared.evaluating.lock().await;
    if shared.shutdown.is_shutdown() {
        return;
    }
    notify(&[NotifyState::Status(&format!(
        "evaluating {}",
        due.join(", ")
    ))]);
    let result = blocking(move || {
        let config = &running.loaded.config;
        let log = Log::open(&config.log_path)?;
        let outbox = Outbox::open(&config.state_path)?;
        let rules: Vec<_> = config
            .rules
            .iter()
            .filter(|r| due.contains(&r.name))
            .collect();
        let pass = evaluate::Pass::new(&rules, crate::clock::now());
        let reports = evaluate::run(config, &running.loaded.templates, &log, &outbox, &pass)?;
        for r in &reports {
            info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, matched = r.matched, queued = r.queued, "{}", r.summary());
        }
        let digest = match digest_due {
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
        Err(err) => error!(error = %err, "rule evaluation failed; will try again at the next tick"),
    }
    notify(&[NotifyState::Status("waiting for the next rule or note")]);
}

/// The enabled rules whose schedule matches the minute of `at` on the wall clock of
/// `defaults.timezone` (so a 09:00 rule stays at 09:00 local time across DST changes).
fn due_rules(config: &Config, at: Timestamp) -> impl Iterator<Item = &Rule> {
    let local = at.to_zoned_datetime(config.timezone.clone()).datetime();
    config
        .rules
        .iter()
        .filter(move |r| r.enabled && r.schedule.as_ref().is_some_and(|s| s.matches(local)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::test_config;

    fn config(timezone: &str) -> Config {
        let morning = test_config::rule("morning", "quiet", "0 9 * * *", "q.j2", "");
        let maildir = test_config::maildir("m");
        let text = test_config::config(&test_config::SCRATCH, &maildir, Some(timezone), &morning);
        let (config, d) = Config::parse(Path::new("c.toml"), text);
        assert!(d.is_empty(), "{d:?}");
        config.expect("config")
    }

    /// The UTC minutes of the three days from `from` at which the 09:00 rule fires.
    fn firings(config: &Config, from: &str) -> Vec<String> {
        let start: Timestamp = from.parse().expect("time");
        (0..3 * 24 * 60)
            .map(|m| start + jiff::SignedDuration::from_mins(m))
            .filter(|t| due_rules(config, *t).next().is_some())
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn a_nine_oclock_rule_stays_at_nine_across_dst_in_paris() {
        // Europe/Paris moves from UTC+1 to UTC+2 on 29 March 2026, and back on 25 October.
        let paris = config("Europe/Paris");
        assert_eq!(
            firings(&paris, "2026-03-28T00:00:00Z"),
            [
                "2026-03-28T08:00:00Z",
                "2026-03-29T07:00:00Z",
                "2026-03-30T07:00:00Z"
            ]
        );
        assert_eq!(
            firings(&paris, "2026-10-24T00:00:00Z"),
            [
                "2026-10-24T07:00:00Z",
                "2026-10-25T08:00:00Z",
                "2026-10-26T08:00:00Z"
            ]
        );
    }

    #[test]
    fn a_nine_oclock_rule_stays_at_nine_across_dst_in_new_york() {
        // America/New_York moves from UTC-5 to UTC-4 on 8 March 2026, and back on 1 November.
        let new_york = config("America/New_York");
        assert_eq!(
            firings(&new_york, "2026-03-07T00:00:00Z"),
            [
                "2026-03-07T14:00:00Z",
                "2026-03-08T13:00:00Z",
                "2026-03-09T13:00:00Z"
            ]
        );
        assert_eq!(
            firings(&new_york, "2026-10-31T00:00:00Z"),
            [
                "2026-10-31T13:00:00Z",
                "2026-11-01T14:00:00Z",
                "2026-11-02T14:00:00Z"
            ]
        );
    }
}
