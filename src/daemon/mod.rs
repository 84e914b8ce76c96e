//! Daemon: cron ticks, event triggers, the delivery loop, signals and systemd notifications.
//!
//! tokio-cron-scheduler ticks once a minute; each tick evaluates the rules whose 5-field cron
//! schedule matches that minute on the wall clock of `defaults.timezone` (so "0 9 * * *" stays
//! 09:00 local time across DST changes). Rules with `trigger = "interaction"` also run within
//! about a second of a new row in the log ([`events`]). Evaluations run one at a time, beside
//! the delivery loop, which sends due notes every `delivery.poll` and as soon as notes are
//! queued. SQLite work runs on blocking threads, never on the reactor.
//!
//! Under systemd's watchdog, `WATCHDOG=1` is sent only while the scheduler, the event watcher
//! and the delivery loop all show recent progress: a stuck loop gets the service restarted.

mod events;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};

use crate::config::{Config, Rule};
use crate::deliver::{self, Transport};
use crate::error::Error;
use crate::evaluate;
use crate::load::{self, Loaded};
use crate::log::Log;
use crate::outbox::Outbox;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM or SIGINT: finish the notes in flight (within the grace period), then exit.
    Shutdown,
    /// SIGHUP: re-read the configuration and templates.
    Reload,
}

/// `rekindle run`: runs until SIGTERM or SIGINT.
pub(crate) fn run(path: &Path) -> Result<(), Error> {
    let loaded = load::load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(serve(path.to_path_buf(), loaded));
    // A blocking evaluation still running is abandoned: its notes are re-queued next time.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// When each loop last showed progress (Unix milliseconds), for the watchdog.
#[derive(Default)]
struct Beats {
    scheduler: AtomicI64,
    events: AtomicI64,
    delivery: AtomicI64,
}

impl Beats {
    fn now() -> i64 {
        Timestamp::now().as_millisecond()
    }

    fn stamp(beat: &AtomicI64) {
        beat.store(Self::now(), Ordering::Relaxed);
    }

    /// The loops that have shown no progress for longer than `limit`.
    fn stale(&self, limit: Duration, events_expected: bool) -> Vec<&'static str> {
        let age = |b: &AtomicI64| Self::now() - b.load(Ordering::Relaxed);
        let limit = limit.as_millis() as i64;
        // The scheduler ticks once a minute: allow it a minute more than the others.
        let mut stale = Vec::new();
        if age(&self.scheduler) > limit.max(60_000) + 60_000 {
            stale.push("scheduler");
        }
        if events_expected && age(&self.events) > limit {
            stale.push("event watcher");
        }
        if age(&self.delivery) > limit {
            stale.push("delivery loop");
        }
        stale
    }
}

/// What the daemon's tasks share.
struct Shared {
    /// The configuration in force; replaced atomically on reload.
    current: watch::Sender<Arc<Running>>,
    /// Set by the first stop signal.
    stopping: AtomicBool,
    /// The grace period after a stop signal, in milliseconds (follows reloads).
    grace_ms: AtomicU64,
    /// One evaluation at a time, so the per-customer cap sees every note.
    evaluating: Mutex<()>,
    /// Wakes the delivery loop when notes were queued.
    queued: Notify,
    beats: Beats,
}

impl Shared {
    fn running(&self) -> Arc<Running> {
        self.current.borrow().clone()
    }
}

/// Maps Unix signals to [`Signal`]s in one place. A second SIGTERM/SIGINT, or the end of the
/// grace period, exits at once: a note caught mid-send stays `sending` and is parked as
/// `unknown` at the next start.
fn signals(shared: Arc<Shared>) -> Result<mpsc::UnboundedReceiver<Signal>, Error> {
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
            if signal == Signal::Shutdown {
                if shared.stopping.swap(true, Ordering::SeqCst) {
                    warn!("second stop signal: exiting now; notes in flight become `unknown`");
                    std::process::exit(1);
                }
                let grace = Duration::from_millis(shared.grace_ms.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    error!(
                        grace = %humantime::format_duration(grace),
                        "notes in flight did not finish within the grace period: exiting; they become `unknown`"
                    );
                    std::process::exit(1);
                });
                notify(&[NotifyState::Stopping]);
            }
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

async fn serve(path: PathBuf, loaded: Loaded) -> Result<(), Error> {
    let running = Arc::new(Running::new(loaded)?);
    let shared = Arc::new(Shared {
        grace_ms: AtomicU64::new(grace_ms(&running.loaded.config)),
        current: watch::Sender::new(running.clone()),
        stopping: AtomicBool::new(false),
        evaluating: Mutex::new(()),
        queued: Notify::new(),
        beats: Beats::default(),
    });
    let mut signals = signals(shared.clone())?;
    {
        let running = running.clone();
        blocking(move || {
            let outbox = Outbox::open(&running.loaded.config.state_path)?;
            Ok(deliver::park_interrupted(&outbox, Timestamp::now())?)
        })
        .await?;
    }
    Beats::stamp(&shared.beats.scheduler);
    Beats::stamp(&shared.beats.events);
    Beats::stamp(&shared.beats.delivery);
    let (tick_tx, mut ticks) = mpsc::unbounded_channel::<Timestamp>();
    let scheduler = start_scheduler(tick_tx, shared.clone()).await?;
    tokio::spawn(watch_events(shared.clone()));
    tokio::spawn(watchdog(shared.clone()));
    let mut poll = delivery_interval(&running.loaded.config);
    notify(&[
        NotifyState::Ready,
        NotifyState::Status("waiting for the next rule or note"),
    ]);
    info!(config = %path.display(), rules = running.loaded.config.rules.len(), "rekindle started");
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Reload) => {
                    notify(&[NotifyState::Reloading]);
                    let next = reload(&path, shared.running()).await;
                    poll = delivery_interval(&next.loaded.config);
                    shared.grace_ms.store(grace_ms(&next.loaded.config), Ordering::SeqCst);
                    shared.current.send_replace(next);
                    notify(&[NotifyState::Ready]);
                }
                Some(Signal::Shutdown) | None => break,
            },
            Some(minute) = ticks.recv() => {
                tokio::spawn(tick(shared.clone(), minute));
            }
            _ = shared.queued.notified() => deliver(shared.clone()).await,
            _ = poll.tick() => deliver(shared.clone()).await,
        }
    }
    info!("stopping: no new work; waiting for an evaluation in progress");
    let grace = Duration::from_millis(shared.grace_ms.load(Ordering::SeqCst));
    if tokio::time::timeout(grace, shared.evaluating.lock())
        .await
        .is_err()
    {
        warn!(
            "an evaluation was still running at the end of the grace period; its notes will be queued again next time"
        );
    }
    let mut scheduler = scheduler;
    if let Err(err) = scheduler.shutdown().await {
        warn!(error = %err, "scheduler did not shut down cleanly");
    }
    info!("stopped");
    Ok(())
}

fn grace_ms(config: &Config) -> u64 {
    config.daemon.grace.unsigned_abs().as_millis() as u64
}

fn delivery_interval(config: &Config) -> tokio::time::Interval {
    let mut poll = tokio::time::interval(config.delivery.poll.unsigned_abs());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll
}

/// Watches the log for new interactions and runs the event rules on them.
async fn watch_events(shared: Arc<Shared>) {
    let mut watcher: Option<events::Watcher> = None;
    let mut failing = false;
    while !shared.stopping.load(Ordering::SeqCst) {
        let running = shared.running();
        Beats::stamp(&shared.beats.events);
        let wants_events = running.loaded.config.rules.iter().any(|r| r.on_interaction);
        if wants_events {
            let guard = shared.evaluating.lock().await;
            let current = watcher.take();
            let loaded = running.clone();
            let result = blocking(move || {
                let mut w = match current {
                    Some(w) => w,
                    None => events::Watcher::open(&loaded.loaded)?,
                };
                let queued = w.poll(&loaded.loaded);
                Ok((w, queued))
            })
            .await;
            drop(guard);
            match result {
                Ok((w, Ok(queued))) => {
                    watcher = Some(w);
                    failing = false;
                    if queued > 0 {
                        shared.queued.notify_one();
                    }
                }
                Ok((_, Err(err))) | Err(err) => {
                    // Reopen next time; say so once, not every poll.
                    if !failing {
                        error!(error = %err, "watching the log for new interactions failed; retrying");
                    }
                    failing = true;
                }
            }
        }
        tokio::time::sleep(running.loaded.config.daemon.event_poll.unsigned_abs()).await;
    }
}

/// Pings systemd's watchdog (when it is on) while every loop shows progress.
async fn watchdog(shared: Arc<Shared>) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut every = tokio::time::interval(timeout / 3);
    let mut warned = false;
    loop {
        every.tick().await;
        let config = shared.running();
        let config = &config.loaded.config;
        // A loop may legitimately rest for its own interval; beyond half the watchdog's
        // timeout on top of that, it is stuck.
        let limit = timeout / 2 + config.delivery.poll.unsigned_abs();
        let stale = shared
            .beats
            .stale(limit, config.rules.iter().any(|r| r.on_interaction));
        if stale.is_empty() {
            warned = false;
            notify(&[NotifyState::Watchdog]);
        } else if !warned {
            error!(stuck = %stale.join(", "), "no progress: withholding the watchdog ping so systemd restarts the service");
            warned = true;
        }
    }
}

/// A tokio-cron-scheduler job that ticks at second 0 of every minute.
async fn start_scheduler(
    ticks: mpsc::UnboundedSender<Timestamp>,
    shared: Arc<Shared>,
) -> Result<JobScheduler, Error> {
    let fail = |e: tokio_cron_scheduler::JobSchedulerError| {
        Error::Runtime(format!("cannot start the scheduler: {e}"))
    };
    let scheduler = JobScheduler::new().await.map_err(fail)?;
    let job = Job::new_async("0 * * * * *", move |_, _| {
        let ticks = ticks.clone();
        let shared = shared.clone();
        Box::pin(async move {
            Beats::stamp(&shared.beats.scheduler);
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
    transport: Arc<Transport>,
    /// Runs the sends (and owns the SMTP connections the transport keeps open).
    delivery: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Builds the transport and the runtime its connections live on.
    fn new(loaded: Loaded) -> Result<Running, Error> {
        let transport = Arc::new(Transport::from_config(&loaded.config).map_err(Error::Runtime)?);
        let delivery = Some(deliver::runtime().map_err(Error::Runtime)?);
        Ok(Running {
            loaded,
            transport,
            delivery,
        })
    }
}

impl Drop for Running {
    /// A replaced configuration may be dropped on the async runtime, where a runtime cannot
    /// block to shut down: let it go in the background.
    fn drop(&mut self) {
        if let Some(runtime) = self.delivery.take() {
            runtime.shutdown_background();
        }
    }
}

/// Evaluates the rules whose schedule matches the minute `at` (local wall clock).
async fn tick(shared: Arc<Shared>, at: Timestamp) {
    let running = shared.running();
    let due: Vec<String> = due_rules(&running.loaded.config, at)
        .map(|r| r.name.clone())
        .collect();
    let local = at
        .to_zoned_datetime(running.loaded.config.timezone.clone())
        .datetime();
    let digest_due = running
        .loaded
        .config
        .digest
        .as_ref()
        .is_some_and(|d| d.schedule.matches(local));
    if due.is_empty() && !digest_due {
        return;
    }
    let _one_at_a_time = shared.evaluating.lock().await;
    if shared.stopping.load(Ordering::SeqCst) {
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
        let reports = evaluate::run(
            config,
            &running.loaded.templates,
            &log,
            &outbox,
            &evaluate::Pass::new(&rules, Timestamp::now()),
        )?;
        for r in &reports {
            info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, matched = r.matched, queued = r.queued, "{}", r.summary());
        }
        let digest = if digest_due {
            crate::evaluate::digest::queue(
                config,
                &running.loaded.templates,
                &log,
                &outbox,
                Timestamp::now(),
            )?
        } else {
            0
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

/// Delivers every due note, stopping early when a shutdown was asked for.
async fn deliver(shared: Arc<Shared>) {
    Beats::stamp(&shared.beats.delivery);
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    let running = shared.running();
    let result = blocking(move || {
        let config = &running.loaded.config;
        let outbox = Outbox::open(&config.state_path)?;
        // Opt-outs are checked again right before sending.
        let log = Log::open(&config.log_path)?;
        let keep_going = || {
            Beats::stamp(&shared.beats.delivery);
            !shared.stopping.load(Ordering::SeqCst)
        };
        let report = deliver::deliver_due(
            &outbox,
            Some(&log),
            &running.transport,
            config,
            delivery_runtime(&running)?,
            &Timestamp::now,
            &keep_going,
        )?;
        for (rule, (sent, failed)) in &report.per_rule {
            info!(rule = %rule, sent, failed, "delivered for rule {rule}: sent {sent}, failed {failed}");
        }
        if report.sent + report.retried + report.failed + report.unknown > 0 {
            info!(
                sent = report.sent,
                retrying = report.retried,
                failed = report.failed,
                unknown = report.unknown,
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

fn delivery_runtime(running: &Running) -> Result<&tokio::runtime::Runtime, Error> {
    running
        .delivery
        .as_ref()
        .ok_or_else(|| Error::Runtime("the delivery runtime is gone".into()))
}

/// Re-reads the configuration and rebuilds the transport; keeps `current` if either fails.
async fn reload(path: &Path, current: Arc<Running>) -> Arc<Running> {
    let path = path.to_path_buf();
    let loaded = match blocking(move || load::load(&path)).await {
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
