//! Daemon: the triggers (cron ticks, new interactions), the delivery loop, signals, systemd
//! notifications, and a calm stop.
//!
//! Scheduled rules run from a once-a-minute tick ([`schedule`]); rules with
//! `trigger = "interaction"` also run within about a second of a new row in the log
//! ([`events`]). Evaluations run one at a time, beside the delivery loop ([`delivery`]). SQLite
//! work runs on blocking threads, never on the reactor. Each task holds a [`Shutdown`] and ends
//! when the stop is asked for; the stop waits for the notes in flight for `daemon.grace`, and a
//! second SIGTERM ends it at once (a note caught mid-send is parked as `unknown` at the next
//! start, never resent blindly).

mod delivery;
mod events;
mod inbound;
mod log_changes;
mod schedule;
mod shutdown;
mod signals;
mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tracing::{error, info, warn};

use crate::deliver::{self, DeliveryLock, Pause, Transport};
use crate::error::Error;
use crate::load::{self, Loaded};
use crate::outbox::Outbox;
use shutdown::Shutdown;
use signals::Signal;
use watchdog::Beats;

/// `rekindle run`: runs until SIGTERM or SIGINT.
pub(crate) fn run(path: &Path) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", "", e))?;
    let result = runtime.block_on(async {
        let mut signals = signals::listen()?;
        match load_when_readable(path, &mut signals).await? {
            Some(loaded) => serve(path.to_path_buf(), loaded, signals).await,
            None => Ok(()),
        }
    });
    // Blocking work still running is abandoned: an evaluation's notes are queued again next
    // time, a note caught mid-send is parked as `unknown` at the next start.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Loads the configuration, waiting (one logged reason) while another program holds the log's
/// lock: a nightly import or a backup must not keep the service down. None when a stop signal
/// came meanwhile.
async fn load_when_readable(
    path: &Path,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
) -> Result<Option<Loaded>, Error> {
    let mut waiting = false;
    loop {
        let file = path.to_path_buf();
        match blocking(move || load::load(&file)).await {
            Ok(loaded) => {
                if waiting {
                    info!("the interaction log can be read again");
                }
                return Ok(Some(loaded));
            }
            Err(Error::Unavailable(err)) => {
                if !waiting {
                    let reason = err.passing().unwrap_or("it cannot be read for now");
                    warn!(error = %err, "waiting for the interaction log: {reason}");
                    notify(&[NotifyState::Status("waiting for the interaction log")]);
                    waiting = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    signal = signals.recv() => match signal {
                        Some(Signal::Reload) => {}
                        Some(Signal::Shutdown | Signal::Quit) | None => return Ok(None),
                    },
                }
            }
            Err(err) => return Err(err),
        }
    }
}

/// What the daemon's tasks share.
struct Shared {
    /// The configuration in force; replaced atomically on reload.
    current: watch::Sender<Arc<Running>>,
    /// The stop, for work on blocking threads to ask about.
    shutdown: Shutdown,
    /// One evaluation at a time, so the per-customer cap sees every note.
    evaluating: Mutex<()>,
    /// Wakes the delivery loop when notes were queued.
    queued: Notify,
    /// Raised when the stop cannot wait any longer for the notes in flight.
    abandon: AtomicBool,
    /// When each scheduled rule last ran.
    runs: schedule::Runs,
    /// Progress of each loop, for the watchdog.
    beats: Beats,
}

impl Shared {
    fn running(&self) -> Arc<Running> {
        self.current.borrow().clone()
    }
}

/// Runs the daemon on `loaded` until a stop signal arrives on `signals`.
async fn serve(
    path: PathBuf,
    loaded: Loaded,
    mut signals: mpsc::UnboundedReceiver<Signal>,
) -> Result<(), Error> {
    // Held for the daemon's life: a second daemon or a `run --once` refuses at once.
    let _one_deliverer = DeliveryLock::take(&loaded.config.state_path)?;
    let running = Arc::new(Running::new(loaded)?);
    let (stop, shutdown) = Shutdown::new();
    let runs = starting_state(running.loaded.config.clone()).await?;
    let shared = Arc::new(Shared {
        current: watch::Sender::new(running.clone()),
        shutdown: shutdown.clone(),
        evaluating: Mutex::new(()),
        queued: Notify::new(),
        abandon: AtomicBool::new(false),
        runs,
        beats: Beats::default(),
    });
    shared.beats.stamp_all();
    let (tick_tx, mut ticks) = mpsc::unbounded_channel::<Timestamp>();
    let mut scheduler = schedule::start(tick_tx, shared.clone()).await?;
    // What came due while the daemon was down runs now, not at the next minute.
    tokio::spawn(schedule::tick(shared.clone(), crate::clock::now()));
    tokio::spawn(events::watch(shared.clone(), shutdown.clone()));
    tokio::spawn(watchdog::watchdog(shared.clone(), shutdown.clone()));
    tokio::spawn(inbound::follow(shared.clone(), shutdown.clone()));
    if let Some(http) = running.loaded.config.http.clone() {
        let listener = crate::web::bind(&http).await?;
        tokio::spawn(web_face(listener, http, shared.clone(), shutdown.clone()));
    }
    let delivering = tokio::spawn(delivery::run(shared.clone(), shutdown.clone()));
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
                    let before = shared.running();
                    let next = reload(&path, before.clone()).await;
                    shared.current.send_replace(next.clone());
                    if !Arc::ptr_eq(&before, &next) {
                        end_pause(&shared, &next).await;
                    }
                    notify(&[NotifyState::Ready]);
                }
                Some(Signal::Shutdown | Signal::Quit) | None => break,
            },
            Some(minute) = ticks.recv() => {
                tokio::spawn(schedule::tick(shared.clone(), minute));
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    info!("stopping: no new work; waiting for the notes in flight and an evaluation in progress");
    stop.send_replace(true);
    if let Err(err) = scheduler.shutdown().await {
        warn!(error = %err, "scheduler did not shut down cleanly");
    }
    let grace = shared.running().loaded.config.daemon.grace.unsigned_abs();
    drain(
        &shared.evaluating,
        delivering,
        &shared.abandon,
        grace,
        &mut signals,
    )
    .await?;
    info!("stopped");
    Ok(())
}

/// Serves the web face (`[http]`) until the stop. It follows reloads for everything but the
/// address it listens on, which a restart changes.
async fn web_face(
    listener: tokio::net::TcpListener,
    http: crate::config::http::Http,
    shared: Arc<Shared>,
    mut shutdown: Shutdown,
) {
    let (loaded, stuck, beats) = (shared.clone(), shared.clone(), shared.clone());
    let context = crate::web::Context {
        loaded: Box::new(move || loaded.running().loaded.clone()),
        stuck: Box::new(move || watchdog::stuck(&stuck)),
        beats: Box::new(move || beats.beats.ages()),
    };
    crate::web::serve(
        listener,
        &http,
        context,
        async move { shutdown.recv().await },
    )
    .await;
}

/// At start, in the state database: the notes a previous run left `sending` are parked, a
/// delivery pause ends (the start may follow a fix), and the rules' last runs are read.
async fn starting_state(config: crate::config::Config) -> Result<schedule::Runs, Error> {
    blocking(move || {
        let outbox = Outbox::open(&config.state_path)?;
        let now = crate::clock::now();
        deliver::park_interrupted(&outbox, now)?;
        Pause::end_for_new_config(&outbox)?;
        schedule::Runs::load(&outbox, &config, now)
    })
    .await
}

/// A new configuration in force may fix what the mail server refused: a delivery pause ends,
/// and the delivery loop tries at once.
async fn end_pause(shared: &Shared, running: &Running) {
    let state = running.loaded.config.state_path.clone();
    let ended = blocking(move || Ok(Pause::end_for_new_config(&Outbox::open(&state)?)?)).await;
    if let Err(err) = ended {
        warn!(error = %err, "cannot end the delivery pause; it ends at its next try");
    }
    shared.queued.notify_one();
}

/// After the stop: waits for the delivery loop to record the notes with the transport, then for
/// an evaluation in progress, at most `grace` in all, or until a second stop signal. When it
/// cannot wait any longer it raises `abandon` and gives the delivery loop [`LAST_WORD`] to
/// record every outcome known and take back the notes not yet on their way.
async fn drain(
    evaluating: &Mutex<()>,
    mut delivering: tokio::task::JoinHandle<()>,
    abandon: &AtomicBool,
    grace: Duration,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + grace;
    let quit = async {
        while let Some(signal) = signals.recv().await {
            if signal == Signal::Quit {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(quit);
    let cut_short = tokio::select! {
        _ = &mut delivering => None,
        _ = tokio::time::sleep_until(deadline) => Some(format!(
            "notes in flight did not finish within the grace period ({})",
            humantime::format_duration(grace)
        )),
        _ = &mut quit => Some("second stop signal".to_string()),
    };
    if let Some(why) = cut_short {
        abandon.store(true, Ordering::SeqCst);
        let recorded = tokio::time::timeout(LAST_WORD, delivering).await.is_ok();
        error!(
            recorded_in_time = recorded,
            "{why}: exiting; every outcome known is recorded, notes that had not left are retried, those on their way become `unknown`"
        );
        return Err(Error::Interrupted);
    }
    tokio::select! {
        _ = evaluating.lock() => {}
        _ = tokio::time::sleep_until(deadline) => warn!(
            "an evaluation was still running at the end of the grace period; its notes will be queued again next time"
        ),
        _ = &mut quit => warn!("second stop signal: exiting now; the evaluation's notes will be queued again next time"),
    }
    Ok(())
}

/// How long an exit that cannot wait gives the delivery loop to record what it knows.
const LAST_WORD: Duration = Duration::from_secs(2);

/// A configuration in force, with the transport built from it.
struct Running {
    loaded: Arc<Loaded>,
    transport: Arc<Transport>,
    /// Runs the sends (and owns the SMTP connections the transport keeps open).
    delivery: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Builds the transport and the runtime its connections live on.
    fn new(loaded: Loaded) -> Result<Running, Error> {
        let transport = Arc::new(Transport::from_config(&loaded.config)?);
        let delivery =
            deliver::runtime().map_err(|e| Error::io("start the delivery runtime", "", e))?;
        Ok(Running {
            loaded: Arc::new(loaded),
            transport,
            delivery: Some(delivery),
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
    let (was, is) = (
        current.loaded.config.http.as_ref().map(|h| h.listen),
        loaded.config.http.as_ref().map(|h| h.listen),
    );
    if was != is {
        warn!(
            "[http] listen changed: the web face keeps its address until the next restart (systemctl restart rekindle)"
        );
    }
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
    tokio::task::spawn_blocking(f).await?
}

/// Tells systemd (if it is listening) what the daemon is doing.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        warn!(error = %err, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{Mutex, mpsc};
    use tokio::time::Instant;

    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{Signal, drain};
    use crate::error::Error;

    const GRACE: Duration = Duration::from_secs(30);
    const HOUR: Duration = Duration::from_secs(3600);
    /// How often the stand-in delivery loop below looks whether it must abandon.
    const STEP: Duration = Duration::from_millis(100);

    /// The stop, with a batch in flight that needs `batch` to be recorded, an evaluation that
    /// holds the lock for `evaluation`, and a second stop signal after `quit`: how it ended and
    /// how long it took, on paused time.
    async fn stop(
        batch: Duration,
        evaluation: Duration,
        quit: Option<Duration>,
    ) -> (Result<(), Error>, Duration) {
        let (tx, mut signals) = mpsc::unbounded_channel();
        if let Some(after) = quit {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(Signal::Quit);
            });
        }
        let evaluating = Arc::new(Mutex::new(()));
        let held = evaluating.clone().lock_owned().await;
        tokio::spawn(async move {
            tokio::time::sleep(evaluation).await;
            drop(held);
        });
        let abandon = Arc::new(AtomicBool::new(false));
        // The delivery loop: done after `batch`, or soon after it is told to abandon.
        let told = abandon.clone();
        let delivering = tokio::spawn(async move {
            let until = Instant::now() + batch;
            while Instant::now() < until && !told.load(Ordering::SeqCst) {
                tokio::time::sleep(STEP).await;
            }
        });
        let started = Instant::now();
        let out = drain(&evaluating, delivering, &abandon, GRACE, &mut signals).await;
        (out, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_waits_for_the_batch_in_flight_within_the_grace_period() {
        let (out, took) = stop(Duration::from_secs(10), Duration::ZERO, None).await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(took, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_still_out_at_the_end_of_the_grace_period_ends_the_daemon_with_an_error() {
        let (out, took) = stop(HOUR, Duration::ZERO, None).await;
        assert!(matches!(out, Err(Error::Interrupted)), "{out:?}");
        // The delivery loop, told to abandon, records what it knows in its next step.
        assert!(took >= GRACE && took <= GRACE + STEP, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_stop_signal_does_not_wait_for_the_grace_period() {
        let (out, took) = stop(HOUR, Duration::ZERO, Some(Duration::from_secs(2))).await;
        assert!(matches!(out, Err(Error::Interrupted)), "{out:?}");
        let quit = Duration::from_secs(2);
        assert!(took >= quit && took <= quit + STEP, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_evaluation_still_running_after_the_batch_is_left_at_the_end_of_the_grace_period() {
        let (out, took) = stop(Duration::from_secs(5), HOUR, None).await;
        assert!(out.is_ok(), "its notes are queued again next time: {out:?}");
        assert_eq!(took, GRACE);
    }
}
