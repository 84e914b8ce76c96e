//! Deliver: hand queued notes to a transport (a maildir for demos and dry runs, or SMTP) and
//! record the outcome in the outbox.
//!
//! The outbox is SQLite, so the delivery loop runs on a blocking thread and only the send itself
//! is awaited on the runtime. A note is marked `sending` (committed) before the transport sees
//! it, and `sent`, `retry` or `failed` right after.

pub(crate) mod maildir;
pub(crate) mod smtp;
mod smtp_client;

use jiff::{SignedDuration, Timestamp};
use lettre::Message;
use tracing::{debug, error, info, warn};

use crate::compose::build_message;
use crate::config::smtp::SmtpSetupError;
use crate::config::{Config, Delivery, Transport as TransportConfig};
use crate::decide::{self, Due, Gate, SendFacts};
use crate::log::Log;
use crate::note::NoteState;
use crate::outbox::{Outbox, OutboxError, Setting, StoredNote, Update};

/// Why a transport could not deliver a note. The outbox decides what happens next from this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    /// The server answered 4xx: worth trying again later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The server could not be reached, or the connection broke or timed out before it
    /// confirmed: try the next server now, and later again.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The connection broke while the message was being handed over, before the server's
    /// final reply: it may have arrived. Never resent automatically (the note becomes
    /// `unknown`, like one caught mid-send by a crash).
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
    /// Never retry: a 5xx reply (the server's text is kept), or a message the server can never take.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A configured transport.
pub(crate) enum Transport {
    /// Files in a maildir.
    Maildir(maildir::Maildir),
    /// SMTP servers, in failover order.
    Smtp(Vec<smtp::SmtpTransport>),
}

impl Transport {
    /// Builds the transport the config asks for (reads the SMTP passwords, if any). Must run
    /// inside a tokio runtime: the SMTP connection pools live there.
    pub(crate) fn from_config(config: &Config) -> Result<Transport, SmtpSetupError> {
        match &config.transport {
            TransportConfig::Maildir { dir } => {
                Ok(Transport::Maildir(maildir::Maildir::new(dir.clone())))
            }
            TransportConfig::Smtp(servers) => servers
                .iter()
                .map(|s| smtp::SmtpTransport::new(s, config.base_dir()))
                .collect::<Result<_, _>>()
                .map(Transport::Smtp),
        }
    }

    /// Sends one message. Returns which server (or maildir) had the last word, and the outcome.
    /// SMTP servers are tried in order while they cannot be reached.
    async fn send(
        &self,
        message: &Message,
        message_id: &str,
    ) -> (String, Result<String, SendError>) {
        match self {
            Transport::Maildir(m) => (
                format!("maildir {}", m.dir().display()),
                m.deliver(message, message_id),
            ),
            Transport::Smtp(servers) => {
                let mut unreachable = Vec::new();
                for server in servers {
                    match server.send(message).await {
                        Err(SendError::Unreachable(why)) => {
                            warn!(server = %server.label(), message_id, reason = %why, "server unreachable, trying the next one");
                            unreachable.push(format!("{}: {why}", server.label()));
                        }
                        outcome => return (server.label().to_string(), outcome),
                    }
                }
                let label = servers
                    .last()
                    .map(|s| s.label().to_string())
                    .unwrap_or_default();
                (label, Err(SendError::Unreachable(unreachable.join("; "))))
            }
        }
    }
}

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
}

impl DeliveryReport {
    /// "sent 3, failed 1" for `rule`, if the pass touched it.
    pub(crate) fn for_rule(&self, rule: &str) -> Option<String> {
        self.per_rule
            .get(rule)
            .map(|(sent, failed)| format!("sent {sent}, failed {failed}"))
    }
}

/// Delivers every note due at the time `clock` gives, `delivery.concurrency` at a time and
/// within the rate limit, until none is due or `keep_going` says stop. Right before sending,
/// each note is checked again against opt-outs (in `log`, when given, and the suppression list)
/// and the customer's calendar. Runs on a blocking thread; `runtime` runs the sends.
///
/// Notes go in batches: while one batch is on its way, the next is claimed and built, so the
/// connections never wait for the state database. At most two batches are `sending` at once.
pub(crate) fn deliver_due(
    outbox: &Outbox,
    log: Option<&Log>,
    transport: &std::sync::Arc<Transport>,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    clock: &dyn Fn() -> Timestamp,
    keep_going: &dyn Fn() -> bool,
) -> Result<DeliveryReport, OutboxError> {
    let delivery = &config.delivery;
    let started = std::time::Instant::now();
    let mut report = DeliveryReport::default();
    // Shared by every batch, so a batch's first sends start while the last ones of the batch
    // before are still out.
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(
        delivery.concurrency.max(1) as usize
    ));
    let mut in_flight: Option<InFlight> = None;
    let mut claim_and_send = || -> Result<(), OutboxError> {
        let mut bucket = RateLimit::load(outbox, delivery, clock())?;
        while keep_going() {
            let now = clock();
            let allowed = bucket.available(now);
            if allowed == 0 {
                // Wait for the next token, in short steps so a shutdown is never held up.
                let wait = bucket
                    .until_next(now)
                    .min(std::time::Duration::from_millis(200));
                // Built inside the runtime: a timer needs its context.
                runtime.block_on(async { tokio::time::sleep(wait).await });
                continue;
            }
            let mut gate = |due: &[StoredNote]| gate(due, config, outbox, log, now);
            let (batch, set_aside) =
                outbox.claim_batch(now, allowed.min(batch_size(delivery)), &mut gate)?;
            if batch.is_empty() {
                if set_aside > 0 {
                    continue;
                }
                break;
            }
            // The tokens are spent (and saved) before anything is sent, so a crash here can
            // never let a restart exceed the rate.
            bucket.take(batch.len(), now);
            bucket.save(outbox)?;
            let previous = in_flight.as_mut().and_then(|f| f.dispatched.take());
            let sending = InFlight::start(runtime, transport, config, &limit, batch, now, previous);
            if let Some(done) = in_flight.replace(sending) {
                done.finish(outbox, runtime, delivery, clock(), &mut report)?;
            }
        }
        Ok(())
    };
    let outcome = claim_and_send();
    // Whatever stopped the loop, the batch still out is waited for and recorded.
    let last = in_flight.map_or(Ok(()), |done| {
        done.finish(outbox, runtime, delivery, clock(), &mut report)
    });
    outcome.and(last)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// At start-up: notes a previous run left in `sending` are parked as `unknown`, each logged for
/// an operator to resolve; they are never resent automatically.
pub(crate) fn park_interrupted(outbox: &Outbox, now: Timestamp) -> Result<(), OutboxError> {
    for note in outbox.park_interrupted(now)? {
        warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note parked as unknown: the previous run stopped while sending it; it is not resent automatically");
    }
    Ok(())
}

/// A claimed batch whose sends run on the delivery runtime.
struct InFlight {
    /// Shared with the sends, which build each note's message off the delivery thread.
    batch: std::sync::Arc<[StoredNote]>,
    outcomes: tokio::task::JoinHandle<Vec<(String, Result<String, SendError>)>>,
    /// Fires once every send of the batch has started: the next batch's sends wait for it, so
    /// notes start in priority order across batches too.
    dispatched: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl InFlight {
    fn start(
        runtime: &tokio::runtime::Runtime,
        transport: &std::sync::Arc<Transport>,
        config: &Config,
        limit: &std::sync::Arc<tokio::sync::Semaphore>,
        batch: Vec<StoredNote>,
        date: Timestamp,
        after: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> InFlight {
        let (started, dispatched) = tokio::sync::oneshot::channel();
        let batch: std::sync::Arc<[StoredNote]> = batch.into();
        let sender = std::sync::Arc::new(config.sender.clone());
        let (notes, transport, limit) = (batch.clone(), transport.clone(), limit.clone());
        let outcomes = runtime.spawn(async move {
            if let Some(before) = after {
                // An error only means the batch before has no sends left to start.
                let _ = before.await;
            }
            let mut sends = Vec::with_capacity(notes.len());
            for index in 0..notes.len() {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (notes, transport, sender) = (notes.clone(), transport.clone(), sender.clone());
                sends.push(tokio::spawn(async move {
                    let _permit = permit;
                    let note = &notes[index];
                    match build_message(&note.letter, &note.customer_id, &sender, date) {
                        Ok(message) => transport.send(&message, &note.letter.message_id).await,
                        Err(why) => (String::new(), Err(SendError::Permanent(why.to_string()))),
                    }
                }));
            }
            let _ = started.send(());
            let mut outcomes = Vec::with_capacity(sends.len());
            for send in sends {
                outcomes.push(send.await.unwrap_or_else(|e| {
                    (
                        String::new(),
                        Err(SendError::Ambiguous(format!("the send task failed: {e}"))),
                    )
                }));
            }
            outcomes
        });
        InFlight {
            batch,
            outcomes,
            dispatched: Some(dispatched),
        }
    }

    /// Waits for the batch's sends and records each outcome.
    fn finish(
        self,
        outbox: &Outbox,
        runtime: &tokio::runtime::Runtime,
        delivery: &Delivery,
        now: Timestamp,
        report: &mut DeliveryReport,
    ) -> Result<(), OutboxError> {
        let mut outcomes = runtime
            .block_on(self.outcomes)
            .unwrap_or_default()
            .into_iter();
        let updates: Vec<Update> = self
            .batch
            .iter()
            .map(|note| {
                // A send that never ran (its task failed): the note may or may not have gone.
                let (server, outcome) = outcomes.next().unwrap_or_else(|| {
                    (
                        String::new(),
                        Err(SendError::Ambiguous("the send task failed".into())),
                    )
                });
                settle(note, server, outcome, delivery, now, report)
            })
            .collect();
        outbox.finish_batch(&updates, now)
    }
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

/// Notes claimed (marked `sending`) at once: several rounds of `concurrency`, so the synced state
/// transaction around a batch is paid once per many notes, while a crash leaves at most twice
/// this many notes `unknown` (one batch on its way, the next just claimed).
fn batch_size(delivery: &Delivery) -> usize {
    (delivery.concurrency.max(1) as usize * 16).clamp(32, 128)
}

/// The last look before the notes of a batch go (see [`decide::before_sending`]): the
/// suppression list and the log are read once for the whole batch.
fn gate(
    notes: &[StoredNote],
    config: &Config,
    outbox: &Outbox,
    log: Option<&Log>,
    now: Timestamp,
) -> Vec<Gate> {
    let facts = send_facts(notes, config, outbox, log, now);
    notes
        .iter()
        .map(|note| {
            let due = Due {
                rule: &note.rule,
                customer_id: &note.customer_id,
                recipient: &note.letter.recipient,
                timezone: note.timezone.as_deref(),
            };
            let gate = decide::before_sending(&due, &facts, config, now);
            let (id, rule, customer) = (note.id, &note.rule, &note.customer_id);
            match &gate {
                Gate::Cancel(why) => {
                    info!(note_id = id, rule = %rule, customer_id = %customer, reason = %why, "note cancelled before sending")
                }
                Gate::Hold(until, why) => {
                    debug!(note_id = id, customer_id = %customer, until = %until, reason = %why, "note held")
                }
                Gate::Go => {}
            }
            gate
        })
        .collect()
}

/// What the last look needs of the customers of `notes` (the staff digest aside).
fn send_facts(
    notes: &[StoredNote],
    config: &Config,
    outbox: &Outbox,
    log: Option<&Log>,
    now: Timestamp,
) -> SendFacts {
    let to_customers: Vec<&StoredNote> = notes
        .iter()
        .filter(|n| n.rule != crate::config::DIGEST_RULE)
        .collect();
    let keys: Vec<String> = to_customers
        .iter()
        .flat_map(|n| [n.customer_id.clone(), n.letter.recipient.clone()])
        .collect();
    let mut facts = SendFacts::default();
    match outbox.suppressed_keys(&keys) {
        Ok(keys) => facts.suppressed = Some(keys),
        Err(err) => {
            warn!(error = %err, "cannot read the suppression list; holding the notes");
            facts.unreadable = err.to_string();
        }
    }
    let ids: Vec<String> = to_customers.iter().map(|n| n.customer_id.clone()).collect();
    match log.map(|log| log.opt_outs(&ids, &config.policy, now)) {
        None => facts.standings = Some(Default::default()),
        Some(Ok(standings)) => facts.standings = Some(standings),
        Some(Err(err)) => {
            warn!(error = %err, "cannot read the log to check opt-outs; holding the notes");
            facts.unreadable = err.to_string();
        }
    }
    facts
}

/// Decides a note's next state from the transport's answer, and logs it.
fn settle(
    note: &StoredNote,
    server: String,
    outcome: Result<String, SendError>,
    delivery: &Delivery,
    now: Timestamp,
    report: &mut DeliveryReport,
) -> Update {
    let (id, rule, customer) = (note.id, &note.rule, &note.customer_id);
    let retryable = note.attempts < delivery.max_attempts
        && now.as_second() - note.created_at < delivery.max_age.as_secs();
    match outcome {
        Ok(reply) => {
            info!(note_id = id, rule = %rule, customer_id = %customer, server = %server, reply = %reply, "note sent");
            report.sent += 1;
            report.per_rule.entry(rule.clone()).or_default().0 += 1;
            Update::new(id, NoteState::Sent, format!("{server}: {reply}"), None)
        }
        Err(SendError::Transient(why) | SendError::Unreachable(why)) if retryable => {
            let due = now + retry_delay(delivery, note.attempts);
            warn!(note_id = id, rule = %rule, customer_id = %customer, server = %server, attempt = note.attempts, retry_at = %due, reply = %why, "note will be retried");
            report.retried += 1;
            Update::new(id, NoteState::Retry, why, Some(due))
        }
        Err(SendError::Ambiguous(why)) => {
            error!(note_id = id, rule = %rule, customer_id = %customer, server = %server, reply = %why, "note outcome unknown: it may or may not have arrived; resolve with `rekindle outbox resend` or `cancel`");
            report.unknown += 1;
            Update::new(id, NoteState::Unknown, why, None)
        }
        Err(err) => {
            let why = match err {
                SendError::Permanent(why) | SendError::Ambiguous(why) => why,
                SendError::Transient(why) | SendError::Unreachable(why) => format!(
                    "gave up after {} attempt(s) over {}: {why}",
                    note.attempts,
                    humantime::format_duration(std::time::Duration::from_secs(
                        (now.as_second() - note.created_at).max(0) as u64
                    ))
                ),
            };
            error!(note_id = id, rule = %rule, customer_id = %customer, server = %server, attempts = note.attempts, reply = %why, "note failed");
            report.failed += 1;
            report.per_rule.entry(rule.clone()).or_default().1 += 1;
            Update::new(id, NoteState::Failed, why, None)
        }
    }
}

/// A token bucket: `rate` notes per second on average, `burst` at once. Its state lives in the
/// state database, so the limit also holds across restarts.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Timestamp,
}

impl RateLimit {
    fn load(
        outbox: &Outbox,
        delivery: &Delivery,
        now: Timestamp,
    ) -> Result<RateLimit, OutboxError> {
        let saved: Option<(f64, Timestamp)> = outbox.setting(Setting::RateLimit)?;
        let burst = f64::from(delivery.burst.max(1));
        let (tokens, at) = saved.unwrap_or((burst, now));
        let mut bucket = RateLimit {
            rate: delivery.rate,
            burst,
            tokens,
            at,
        };
        bucket.refill(now);
        Ok(bucket)
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = (now.as_millisecond() - self.at.as_millisecond()).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Notes that may be sent now (unlimited when `rate` is 0).
    fn available(&mut self, now: Timestamp) -> usize {
        if self.rate <= 0.0 {
            return usize::MAX;
        }
        self.refill(now);
        self.tokens.floor() as usize
    }

    fn take(&mut self, n: usize, now: Timestamp) {
        if self.rate > 0.0 {
            self.refill(now);
            self.tokens -= n as f64;
        }
    }

    fn until_next(&self, now: Timestamp) -> std::time::Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        let elapsed = (now.as_millisecond() - self.at.as_millisecond()).max(0) as f64 / 1000.0;
        std::time::Duration::from_secs_f64((missing / self.rate - elapsed).max(0.001))
    }

    fn save(&self, outbox: &Outbox) -> Result<(), OutboxError> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        outbox.set_setting(Setting::RateLimit, &(self.tokens, self.at))
    }
}

/// Exponential backoff with jitter: base × 2^(attempt-1), at most `retry_max`, ±25 %.
fn retry_delay(delivery: &Delivery, attempt: u32) -> SignedDuration {
    let base = delivery.retry_base.as_secs_f64();
    let exp = base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(delivery.retry_max.as_secs_f64());
    let jitter = 0.75 + fastrand::f64() * 0.5;
    SignedDuration::from_secs_f64((capped * jitter).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let d = Delivery {
            retry_base: SignedDuration::from_secs(60),
            retry_max: SignedDuration::from_secs(3600),
            max_attempts: 10,
            max_age: SignedDuration::from_hours(72),
            poll: SignedDuration::from_secs(5),
            concurrency: 4,
            rate: 0.0,
            burst: 1,
        };
        let first = retry_delay(&d, 1).as_secs();
        assert!((45..=75).contains(&first), "{first}");
        let third = retry_delay(&d, 3).as_secs();
        assert!((180..=300).contains(&third), "{third}");
        let late = retry_delay(&d, 20).as_secs();
        assert!((2700..=4500).contains(&late), "{late}");
    }
}
