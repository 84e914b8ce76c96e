//! Deliver: hand queued notes to a transport (a maildir for demos and dry runs, or SMTP) and
//! record the outcome in the outbox.
//!
//! The outbox is SQLite, so the delivery loop runs on a blocking thread and only the send itself
//! is awaited on the runtime. A note is marked `sending` (committed) before the transport sees
//! it, and `sent`, `retry` or `failed` right after.

mod gate;
mod lock;
pub(crate) mod maildir;
mod pause;
mod rate;
mod sends;
mod settle;
pub(crate) mod smtp;
mod smtp_client;
mod transport;
pub(crate) mod trust;
pub(crate) use trust::{Trust, tls_failure};

use jiff::Timestamp;
use tracing::{info, warn};

use crate::config::{Config, Delivery};
use crate::log::Log;
use crate::note::NoteState;
use crate::outbox::{Outbox, OutboxError, Parked, Setting, StoredNote, Update};
use gate::gate;
pub(crate) use lock::{DeliveryLock, LockError};
pub(crate) use pause::Pause;
use rate::RateLimit;
use sends::Done;
pub(crate) use sends::Handover;
use sends::Sends;
use settle::settle;
pub(crate) use transport::{SendError, Transport};

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryReport {
    /// Notes accepted by the transport.
    pub sent: u64,
    /// Notes that will be tried again.
    pub retried: u64,
    /// Notes that failed for good.
    pub failed: u64,
    /// Notes whose connection broke mid-handover: `unknown`, for an operator to resolve.
    pub unknown: u64,
    /// Wall-clock time the pass took.
    pub elapsed: std::time::Duration,
    /// Per rule: (sent, failed).
    pub per_rule: std::collections::BTreeMap<String, (u64, u64)>,
    /// Delivery is paused: the mail server will not take mail from rekindle as configured.
    pub paused: Option<Pause>,
}

impl DeliveryReport {
    /// "sent 3, failed 1" for `rule`, if the pass touched it.
    pub(crate) fn for_rule(&self, rule: &str) -> Option<String> {
        self.per_rule
            .get(rule)
            .map(|(sent, failed)| format!("sent {sent}, failed {failed}"))
    }
}

/// What the delivery loop is asked to do, looked at between its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Claim and send every due note.
    Go,
    /// Claim nothing more; wait for the notes with the transport and record their outcomes.
    Finish,
    /// Exit now: record every outcome known, take back the notes whose message has not started
    /// on its way (they are retried), and leave the rest `sending` (parked as `unknown` at the
    /// next start: they may have arrived).
    Abandon,
}

/// How the caller steers a delivery pass.
pub(crate) struct Steering<'a> {
    /// The time.
    pub clock: &'a dyn Fn() -> Timestamp,
    /// What to do, asked between steps.
    pub pace: &'a dyn Fn() -> Pace,
    /// Told at each step forward (notes claimed or recorded, or a wait for the rate limit), and
    /// not while a send hangs: the daemon's watchdog listens.
    pub progress: &'a dyn Fn(),
}

/// Delivers every note due at the time `clock` gives, `delivery.concurrency` at a time and
/// within the rate limit, until none is due or `pace` says stop. Right before sending, each
/// note is checked again against opt-outs (in `log`, when given, and the suppression list)
/// and the customer's calendar. Runs on a blocking thread; `runtime` runs the sends.
///
/// Notes are claimed (marked `sending`, synced) in batches, the next one once the one before is
/// on its way; each note is marked as handed over right before its message goes, and its
/// answer as soon as the server gave it, so a crash leaves `unknown` only the notes on their
/// way without an answer (at most one per connection). Each outcome is
/// recorded as soon as it is known, together with the others known by then.
pub(crate) fn deliver_due(
    outbox: &Outbox,
    log: Option<&Log>,
    transport: &std::sync::Arc<Transport>,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    steering: &Steering<'_>,
) -> Result<DeliveryReport, OutboxError> {
    let (clock, pace, progress) = (steering.clock, steering.pace, steering.progress);
    let delivery = &config.delivery;
    let started = std::time::Instant::now();
    let mut report = DeliveryReport::default();
    let mut pause = Pause::load(outbox)?;
    if let Some(p) = pause.as_ref().filter(|p| p.holds(clock())) {
        report.paused = Some(p.clone());
        return Ok(report);
    }
    // After a pause, one note tries first.
    let full = 2 * batch_size(delivery);
    let mut window = if pause.is_some() { 1 } else { full };
    note_the_boot(outbox)?;
    let mut sends = Sends::start(runtime, transport, config, outbox.handed_over()?);
    let mut bucket = RateLimit::load(outbox, delivery, clock())?;
    let mut none_due = false;
    loop {
        let pace = pace();
        if pace != Pace::Go {
            // Stopping: the notes that have not left wait for the next run.
            let back = sends.withdraw();
            let done = sends.finished(std::time::Duration::ZERO);
            record(outbox, &done, &back, delivery, clock(), &mut report)?;
        }
        if pace == Pace::Abandon {
            break;
        }
        let mut token_in = None;
        // A claim goes when the one before is on its way: the connections never wait for the
        // state database, and no more than two claims are out.
        let claim = window.div_ceil(2).min(batch_size(delivery));
        if pace == Pace::Go && !none_due && sends.outstanding() + claim <= window {
            let now = clock();
            match claim_some(outbox, log, config, &mut bucket, &mut sends, claim, now)? {
                Claimed::Notes => progress(),
                Claimed::SetAside => {
                    progress();
                    continue;
                }
                Claimed::NoneDue => none_due = true,
                Claimed::TokenIn(wait) => token_in = Some(wait),
            }
        }
        if sends.outstanding() == 0 {
            // Nothing out: wait for the next token, in short steps so a stop is never held up,
            // or the pass is over.
            let Some(wait) = token_in.filter(|_| pace == Pace::Go) else {
                break;
            };
            progress();
            std::thread::sleep(wait.min(SHORT_STEP));
            continue;
        }
        let done = sends.finished(SHORT_STEP);
        if done.is_empty() {
            continue;
        }
        progress();
        let now = clock();
        record(outbox, &done, &[], delivery, now, &mut report)?;
        match follow_pause(outbox, &done, &mut pause, &mut report, delivery, now)? {
            // Refused: claim nothing more; the notes out come back queued.
            Some(true) => none_due = true,
            Some(false) => window = full,
            None => {}
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What a claim did.
enum Claimed {
    /// Notes were claimed and handed to the sends.
    Notes,
    /// Every note due was held or cancelled by the last look: look again.
    SetAside,
    /// No note is due.
    NoneDue,
    /// The rate limit has no token before this long.
    TokenIn(std::time::Duration),
}

/// Claims up to `room` due notes, within the rate limit, and hands them to `sends`.
fn claim_some(
    outbox: &Outbox,
    log: Option<&Log>,
    config: &Config,
    bucket: &mut RateLimit,
    sends: &mut Sends,
    room: usize,
    now: Timestamp,
) -> Result<Claimed, OutboxError> {
    let allowed = bucket.available(now);
    if allowed == 0 {
        return Ok(Claimed::TokenIn(bucket.until_next(now)));
    }
    let mut gate = |due: &[StoredNote]| gate(due, config, outbox, log, now);
    let (claimed, set_aside) = outbox.claim_batch(now, allowed.min(room), &mut gate)?;
    if claimed.is_empty() {
        return Ok(if set_aside > 0 {
            Claimed::SetAside
        } else {
            Claimed::NoneDue
        });
    }
    // The tokens are spent (and saved) before anything is sent, so a crash here can never let
    // a restart exceed the rate.
    bucket.take(claimed.len(), now);
    bucket.save(outbox)?;
    sends.push(claimed, now);
    Ok(Claimed::Notes)
}

/// After outcomes came back: a refusal of rekindle itself pauses delivery (`Some(true)`: claim
/// nothing more), a note through after a pause lifts it (`Some(false)`).
fn follow_pause(
    outbox: &Outbox,
    done: &[Done],
    pause: &mut Option<Pause>,
    report: &mut DeliveryReport,
    delivery: &Delivery,
    now: Timestamp,
) -> Result<Option<bool>, OutboxError> {
    let refusal = done.iter().find_map(|d| match &d.outcome {
        Err(SendError::Account(why)) => Some(why.clone()),
        _ => None,
    });
    match (refusal, pause.as_ref()) {
        (Some(why), _) if report.paused.is_none() => {
            report.paused = Some(Pause::refused(outbox, pause.take(), &why, delivery, now)?);
            Ok(Some(true))
        }
        (None, Some(p)) => {
            Pause::lifted(outbox, p)?;
            *pause = None;
            Ok(Some(false))
        }
        _ => Ok(None),
    }
}

/// How long the loop waits at most before looking at the pace and the rate limit again.
const SHORT_STEP: std::time::Duration = std::time::Duration::from_millis(200);

/// Records the outcomes in `done`, and `back` (notes taken back before they left) as due
/// again now, in one transaction.
fn record(
    outbox: &Outbox,
    done: &[Done],
    back: &[StoredNote],
    delivery: &Delivery,
    now: Timestamp,
    report: &mut DeliveryReport,
) -> Result<(), OutboxError> {
    if done.is_empty() && back.is_empty() {
        return Ok(());
    }
    let mut updates: Vec<Update> = done
        .iter()
        .map(|d| settle(&d.note, &d.server, &d.outcome, delivery, now, report))
        .collect();
    for note in back {
        warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note put back: rekindle is stopping and the note had not left; it goes at the next run");
        updates.push(Update::new(
            note.id,
            NoteState::Queued,
            "rekindle stopped before handing the note over; it goes at the next run".into(),
            Some(now),
        ));
    }
    outbox.finish_batch(&updates, now)
}

/// At start-up: the notes a previous run left `sending` (see [`Outbox::park_interrupted`]):
/// those on their way are parked as `unknown`, each logged for an operator to resolve, never
/// resent automatically; those the server took are recorded `sent`; those that never reached
/// it are queued again.
pub(crate) fn park_interrupted(outbox: &Outbox, now: Timestamp) -> Result<(), OutboxError> {
    let claimed_in: Option<String> = outbox.setting(Setting::DeliveryBoot)?;
    let same_boot = claimed_in.is_some() && claimed_in == boot_id();
    let Parked {
        unknown,
        back,
        sent,
    } = outbox.park_interrupted(now, same_boot)?;
    for note in sent {
        info!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note sent: the server took it before the previous run stopped, and it is recorded now");
    }
    for note in unknown {
        warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note parked as unknown: the previous run stopped while it was on its way to the server; it is not resent automatically");
    }
    for note in back {
        info!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note queued again: the previous run stopped before it reached the server");
    }
    Ok(())
}

/// Keeps the boot the notes about to be claimed are claimed in (see [`park_interrupted`]).
fn note_the_boot(outbox: &Outbox) -> Result<(), OutboxError> {
    let boot = boot_id();
    if outbox.setting::<String>(Setting::DeliveryBoot)? != boot {
        outbox.set_setting(Setting::DeliveryBoot, &boot)?;
    }
    Ok(())
}

/// This boot of the machine (Linux's boot id), if known. While it is the same, what SQLite
/// committed without syncing is still there after a process died.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

/// Notes claimed (marked `sending`) at once: several rounds of `concurrency`, so the synced
/// claim is paid once per many notes. At most two claims are out at once.
fn batch_size(delivery: &Delivery) -> usize {
    (delivery.concurrency.max(1) as usize * 16).clamp(32, 128)
}

/// The runtime that runs the sends (building each message) and the SMTP connections' workers:
/// two threads, beside the delivery thread that looks after the state database.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rekindle-send")
        .enable_all()
        .build()
}
