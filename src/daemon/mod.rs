//! Daemon: cron ticks, the delivery loop, signals and systemd notifications.
//!
//! tokio-cron-scheduler ticks once a minute; each tick evaluates the rules whose 5-field cron
//! schedule matches that minute on the wall clock of `defaults.timezone` (so "0 9 * * *" stays
//! 09:00 local time across DST changes). Between ticks, the delivery loop sends due notes every
//! `delivery.poll`. SQLite work runs on blocking threads, never on the reactor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};

use crate::commands::{self, Loaded};
use crate::config::{Config, Rule};
use crate::cycle;
use crate::deliver::{self, Transport};
use crate::error::Error;
use crate::log::Log;
use crate::outbox::Outbox;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM or SIGINT: finish the note in flight, then exit.
    Shutdown,
    /// SIGHUP: re-read the configuration and templates.
    Reload,
}

/// `rekindle run`: runs until SIGTERM or SIGINT.
pub(crate) fn run(path: &Path) -> Result<(), Error> {
    let loaded = commands::load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(path.to_path_buf(), loaded))
}

/// Maps Unix signals to [`Signal`]s in one place. A second SIGTERM/SIGINT exits at once: a note
/// caught mid-send stays `sending` and is parked as `unknown` at the next start.
fn signals(stopping: Arc<AtomicBool>) -> Result<mpsc::UnboundedReceiver<Signal>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen =
        |kind| signal(kind).map_err(|e| Error::Runtime(format!("cannot listen for signals: {e}")));
    let (mut term, mut int, mut hup) = (
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
        listen(SignalKind::hangup())?,
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = term.recv() => Signal::Shutdown,
                _ = int.recv() => Signal::Shutdown,
                _ = hup.recv() => Signal::Reload,
            };
            if signal == Signal::Shutdown && stopping.swap(true, Ordering::SeqCst) {
                warn!("second stop signal: exiting now");
                std::process::exit(1);
            }
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

async fn serve(path: PathBuf, loaded: Loaded) -> Result<(), Error> {
    let stopping = Arc::new(AtomicBool::new(false));
    let mut signals = signals(stopping.clone())?;
    let mut current = Arc::new(Running::new(loaded)?);
    {
        let running = current.clone();
        blocking(move || {
            let outbox = Outbox::open(&running.loaded.config.state_path)?;
            commands::park_interrupted(&outbox)
        })
        .await?;
    }
    let (tick_tx, mut ticks) = mpsc::unbounded_channel::<Timestamp>();
    let scheduler = start_scheduler(tick_tx).await?;
    let mut poll = tokio::time::interval(current.loaded.config.delivery.poll.unsigned_abs());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    notify(&[
        NotifyState::Ready,
        NotifyState::Status("waiting for the next rule or note"),
    ]);
    info!(config = %path.display(), rules = current.loaded.config.rules.len(), "rekindle started");
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Reload) => {
                    notify(&[NotifyState::Reloading]);
                    current = reload(&path, current).await;
                    poll = tokio::time::interval(current.loaded.config.delivery.poll.unsigned_abs());
                    notify(&[NotifyState::Ready]);
                }
                Some(Signal::Shutdown) | None => break,
            },
            Some(minute) = ticks.recv() => {
                tick(current.clone(), minute).await;
                deliver(current.clone(), stopping.clone()).await;
            }
            _ = poll.tick() => deliver(current.clone(), stopping.clone()).await,
        }
    }
    notify(&[NotifyState::Stopping]);
    info!("stopping");
    let mut scheduler = scheduler;
    if let Err(err) = scheduler.shutdown().await {
        warn!(error = %err, "scheduler did not shut down cleanly");
    }
    Ok(())
}

/// A tokio-cron-scheduler job that ticks at second 0 of every minute.
async fn start_scheduler(ticks: mpsc::UnboundedSender<Timestamp>) -> Result<JobScheduler, Error> {
    let fail = |e: tokio_cron_scheduler::JobSchedulerError| {
        Error::Runtime(format!("cannot start the scheduler: {e}"))
    };
    let scheduler = JobScheduler::new().await.map_err(fail)?;
    let job = Job::new_async("0 * * * * *", move |_, _| {
        let ticks = ticks.clone();
        Box::pin(async move {
            let _ = ticks.send(Timestamp::now());
        })
    })
    .map_err(fail)?;
    scheduler.add(job).await.map_err(fail)?;
    scheduler.start().await.map_err(fail)?;
    Ok(scheduler)
}

/// A configuration in force, with the transport built from it.
struct Running {
    loaded: Loaded,
    transport: Transport,
}

impl Running {
    /// Builds the transport; call on the runtime (the SMTP pool lives there).
    fn new(loaded: Loaded) -> Result<Running, Error> {
        let transport = Transport::from_config(&loaded.config).map_err(Error::Runtime)?;
        Ok(Running { loaded, transport })
    }
}

/// Evaluates the rules whose schedule matches the minute `at` (local wall clock).
async fn tick(running: Arc<Running>, at: Timestamp) {
    let due: Vec<String> = due_rules(&running.loaded.config, at)
        .map(|r| r.name.clone())
        .collect();
    if due.is_empty() {
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
        let reports = cycle::evaluate(
            config,
            &running.loaded.templates,
            &log,
            &outbox,
            &rules,
            Timestamp::now(),
            false,
        )?;
        for r in &reports {
            info!(rule = %r.rule, matched = r.matched, queued = r.queued, "{}", r.summary());
        }
        Ok(())
    })
    .await;
    if let Err(err) = result {
        error!(error = %err, "rule evaluation failed; will try again at the next tick");
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
        .filter(move |r| r.enabled && r.schedule.matches(local))
}

/// Delivers every due note, stopping early when a shutdown was asked for.
async fn deliver(running: Arc<Running>, stopping: Arc<AtomicBool>) {
    let handle = tokio::runtime::Handle::current();
    let result = blocking(move || {
        let config = &running.loaded.config;
        let outbox = Outbox::open(&config.state_path)?;
        let keep_going = || !stopping.load(Ordering::SeqCst);
        let report = deliver::deliver_due(
            &outbox,
            &running.transport,
            config,
            &handle,
            &Timestamp::now,
            &keep_going,
        )?;
        if report.sent + report.retried + report.failed > 0 {
            info!(
                sent = report.sent,
                retrying = report.retried,
                failed = report.failed,
                "delivery pass done"
            );
        }
        Ok(())
    })
    .await;
    if let Err(err) = result {
        error!(error = %err, "delivery failed; will try again");
    }
}

/// Re-reads the configuration and rebuilds the transport; keeps `current` if either fails.
async fn reload(path: &Path, current: Arc<Running>) -> Arc<Running> {
    let path = path.to_path_buf();
    let loaded = match blocking(move || commands::load(&path)).await {
        Ok(loaded) => loaded,
        Err(Error::Config(diagnostics)) => {
            for d in &diagnostics {
                error!("{d}");
            }
            error!(
                errors = diagnostics.len(),
                "new configuration rejected; still running on the previous one"
            );
            return current;
        }
        Err(err) => {
            error!(error = %err, "reload failed; still running on the previous configuration");
            return current;
        }
    };
    match Running::new(loaded) {
        Ok(running) => {
            info!(
                rules = running.loaded.config.rules.len(),
                "configuration reloaded"
            );
            Arc::new(running)
        }
        Err(err) => {
            error!(error = %err, "reload failed; still running on the previous configuration");
            current
        }
    }
}

/// Runs SQLite work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime(format!("a worker thread failed: {e}")))?
}

/// Tells systemd (if it is listening) what the daemon is doing.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        warn!(error = %err, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(timezone: &str) -> Config {
        let text = format!(
            "[paths]\nlog = \"l\"\nstate = \"s\"\ntemplates = \"t\"\n[sender]\nname = \"R\"\nemail = \"r@b.example\"\nbusiness = \"B\"\n[transport]\nkind = \"maildir\"\n[transport.maildir]\ndir = \"m\"\n[defaults]\ntimezone = \"{timezone}\"\n[[rule]]\nname = \"morning\"\nkind = \"quiet\"\nschedule = \"0 9 * * *\"\ntemplate = \"q.j2\"\n"
        );
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
