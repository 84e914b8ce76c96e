//! The notes with the transport. Each claimed note goes to a dispatcher on the delivery runtime,
//! which starts its send as soon as a connection slot is free (in claim order, across claims).
//! Right before a note's message goes, its send asks the delivery thread to write that it is on
//! its way, and waits for that; its outcome comes back the moment it is known, to be recorded
//! with whatever else is known by then. Both travel on one channel, so the delivery thread
//! writes them in groups, on its own connection, with no lock to wait for.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{Semaphore, oneshot};

use super::{SendError, Transport};
use crate::compose::build_message;
use crate::config::{Config, Sender};
use crate::outbox::{Outbox, StoredNote};

/// What a send tells the delivery thread.
enum Event {
    /// This note's message is about to go: write so, then answer (an error: do not send).
    OnItsWay(i64, oneshot::Sender<Result<(), String>>),
    /// This note's send is over.
    Done(Box<Done>),
}

/// Whether a note's message is still only with rekindle, already on its way to the server, or
/// withdrawn (rekindle is stopping and puts it back): what tells a note that never left from
/// one that may have arrived. On its way is written to the state database before the message
/// goes, so a crash tells them apart too (see [`Outbox::park_interrupted`]).
#[derive(Default)]
pub(crate) struct Handover {
    state: AtomicU8,
    note_id: i64,
    /// Where to say the note is on its way; None: nobody keeps track (tests).
    events: Option<mpsc::Sender<Event>>,
}

const WAITING: u8 = 0;
const ON_ITS_WAY: u8 = 1;
const WITHDRAWN: u8 = 2;

/// Why a note taken back does not go.
const STOPPING: &str = "rekindle is stopping: the note was taken back before it was handed over";

/// A mark asked for (see [`Handover::begin`]): its answer to come, or the answer already.
pub(crate) struct Begun(Result<oneshot::Receiver<Result<(), String>>, Result<(), String>>);

impl Handover {
    /// Asks for the note to be marked on its way, without waiting: called when a connection
    /// takes the note, so the mark is written while the server answers MAIL, RCPT and DATA.
    /// [`Handover::confirm`] then waits for it right before the message goes. Called again for
    /// the next server after a failover, it asks nothing more.
    pub(crate) fn begin(&self) -> Begun {
        match self
            .state
            .compare_exchange(WAITING, ON_ITS_WAY, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(ON_ITS_WAY) => return Begun(Err(Ok(()))),
            Err(_) => return Begun(Err(Err(STOPPING.into()))),
        }
        let Some(events) = &self.events else {
            return Begun(Err(Ok(())));
        };
        let (answer, answered) = oneshot::channel();
        match events.send(Event::OnItsWay(self.note_id, answer)) {
            Ok(()) => Begun(Ok(answered)),
            Err(_) => Begun(Err(Err(STOPPING.into()))),
        }
    }

    /// Waits, right before the message goes, for the mark `begun` asked for. An error (the note
    /// was taken back, or the mark could not be written) means it must not be sent, and says
    /// why.
    pub(crate) async fn confirm(&self, begun: Begun) -> Result<(), String> {
        let marked = match begun.0 {
            Ok(answered) => answered.await.unwrap_or_else(|_| Err(STOPPING.into())),
            Err(ready) => ready,
        };
        if marked.is_err() {
            self.state.store(WITHDRAWN, Ordering::SeqCst);
        }
        marked
    }

    /// Whether the note must not go (anywhere): taken back, or its mark could not be written.
    pub(crate) fn withdrawn(&self) -> bool {
        self.state.load(Ordering::SeqCst) == WITHDRAWN
    }

    /// Takes the note back if its message has not started on its way; true if it has not (and
    /// now never will).
    fn withdraw(&self) -> bool {
        self.state
            .compare_exchange(WAITING, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// A note's send, finished.
pub(super) struct Done {
    pub(super) note: StoredNote,
    /// Which server (or maildir) had the last word.
    pub(super) server: String,
    pub(super) outcome: Result<String, SendError>,
}

/// A claimed note on its way to the dispatcher.
struct Job {
    note: StoredNote,
    handover: Arc<Handover>,
    /// The message's Date.
    date: Timestamp,
}

/// The notes handed to the transport and not yet recorded.
pub(super) struct Sends {
    dispatch: tokio::sync::mpsc::UnboundedSender<Job>,
    /// What the sends say, and the end they say it to.
    events: mpsc::Receiver<Event>,
    report: mpsc::Sender<Event>,
    /// By note id: the notes whose outcome is not yet recorded.
    out: HashMap<i64, (StoredNote, Arc<Handover>)>,
    /// Outcomes back, to be recorded together, and when the first came.
    pending: Vec<Done>,
    first_at: Instant,
}

impl Sends {
    /// Starts the dispatcher on `runtime`: at most `delivery.concurrency` sends at once.
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        transport: &Arc<Transport>,
        config: &Config,
    ) -> Sends {
        let (dispatch, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (report, events) = mpsc::channel();
        let limit = Arc::new(Semaphore::new(config.delivery.concurrency.max(1) as usize));
        let sender = Arc::new(config.sender.clone());
        let transport = transport.clone();
        let reports = report.clone();
        runtime.spawn(async move {
            while let Some(job) = jobs.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (transport, sender, report) =
                    (transport.clone(), sender.clone(), reports.clone());
                tokio::spawn(async move {
                    let (server, outcome) = send(&transport, &sender, &job).await;
                    drop(permit);
                    // The delivery thread stopped listening: it is exiting, and the note stays
                    // `sending` (parked as `unknown` at the next start if it was on its way).
                    let _ = report.send(Event::Done(Box::new(Done {
                        note: job.note,
                        server,
                        outcome,
                    })));
                });
            }
        });
        Sends {
            dispatch,
            events,
            report,
            out: HashMap::new(),
            pending: Vec::new(),
            first_at: Instant::now(),
        }
    }

    /// Notes handed over and not yet back.
    pub(super) fn outstanding(&self) -> usize {
        self.out.len()
    }

    /// Hands claimed notes to the transport, in order.
    pub(super) fn push(&mut self, notes: Vec<StoredNote>, date: Timestamp) {
        for note in notes {
            let handover = Arc::new(Handover {
                state: AtomicU8::new(WAITING),
                note_id: note.id,
                events: Some(self.report.clone()),
            });
            self.out.insert(note.id, (note.clone(), handover.clone()));
            let job = Job {
                note,
                handover,
                date,
            };
            if let Err(lost) = self.dispatch.send(job) {
                // The runtime is gone: the note never left, and is retried.
                let _ = self.report.send(Event::Done(Box::new(Done {
                    note: lost.0.note,
                    server: String::new(),
                    outcome: Err(SendError::Lost("the delivery runtime stopped".into())),
                })));
            }
        }
    }

    /// The outcomes known, in a group: once [`GROUP`] are in, [`GATHER`] after the first, or
    /// when every note out is back, waiting up to `wait` for the first one. Meanwhile each note
    /// about to go is marked on its way in `outbox` (in groups, not synced) and told it may go.
    pub(super) fn finished(&mut self, outbox: &Outbox, wait: Duration) -> Vec<Done> {
        let deadline = Instant::now() + wait;
        loop {
            let first_at = self.pending.first().map(|_| self.first_at);
            if first_at.is_some()
                && (self.pending.len() >= GROUP
                    || self.pending.len() >= self.out.len()
                    || first_at.is_some_and(|at| at.elapsed() >= GATHER))
            {
                break;
            }
            let until = first_at.map_or(deadline, |at| deadline.min(at + GATHER));
            let Ok(first) = self
                .events
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            else {
                if Instant::now() >= deadline || first_at.is_some() {
                    break;
                }
                continue;
            };
            let mut marks = Vec::new();
            for event in std::iter::once(first).chain(self.events.try_iter()) {
                match event {
                    Event::OnItsWay(id, answer) => marks.push((id, answer)),
                    // A note taken back was recorded then; its send's answer (that it did not
                    // go) is not.
                    Event::Done(d) if self.out.contains_key(&d.note.id) => {
                        if self.pending.is_empty() {
                            self.first_at = Instant::now();
                        }
                        self.pending.push(*d);
                    }
                    Event::Done(_) => {}
                }
            }
            mark(outbox, marks);
            if wait.is_zero() {
                break;
            }
        }
        let mut done = std::mem::take(&mut self.pending);
        // A note taken back meanwhile was recorded then.
        done.retain(|d| self.out.remove(&d.note.id).is_some());
        done
    }

    /// At a stop: takes back every note whose message has not started on its way (it never
    /// left, and goes at the next run). At an exit that cannot wait (`refuse_waiting`), also
    /// those whose sends are asking to go right now: they are told no. What is left may have
    /// arrived.
    pub(super) fn withdraw(&mut self, refuse_waiting: bool) -> Vec<StoredNote> {
        let mut back: Vec<i64> = self
            .out
            .iter()
            .filter(|(_, (_, handover))| handover.withdraw())
            .map(|(id, _)| *id)
            .collect();
        if refuse_waiting {
            let mut done = Vec::new();
            for event in self.events.try_iter() {
                match event {
                    Event::OnItsWay(id, answer) => {
                        let _ = answer.send(Err("rekindle is stopping".into()));
                        back.push(id);
                    }
                    Event::Done(d) => done.push(*d),
                }
            }
            // Outcomes that came meanwhile are recorded with the others.
            for d in done {
                if self.out.contains_key(&d.note.id) {
                    self.pending.push(d);
                }
            }
        }
        let mut notes: Vec<StoredNote> = back
            .iter()
            .filter_map(|id| self.out.remove(id).map(|(note, _)| note))
            .collect();
        notes.sort_by_key(|n| n.id);
        notes
    }
}

/// Marks the notes of `marks` on their way, and tells each send the answer.
fn mark(outbox: &Outbox, marks: Vec<(i64, oneshot::Sender<Result<(), String>>)>) {
    if marks.is_empty() {
        return;
    }
    let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
    let marked = outbox
        .mark_handed_over(&ids, crate::clock::now())
        .map_err(|e| format!("cannot record that the note is on its way, so it was not sent: {e}"));
    for (_, answer) in marks {
        // A send that stopped waiting: its runtime is shutting down.
        let _ = answer.send(marked.clone());
    }
}

/// Outcomes recorded together: at most this many ...
const GROUP: usize = 64;
/// ... and at most this long after the first came back.
const GATHER: Duration = Duration::from_millis(10);

/// Builds the note's message and sends it.
async fn send(
    transport: &Transport,
    sender: &Sender,
    job: &Job,
) -> (String, Result<String, SendError>) {
    let note = &job.note;
    match build_message(&note.letter, &note.customer_id, sender, job.date) {
        Ok(message) => {
            transport
                .send(&message, &note.letter.message_id, &job.handover)
                .await
        }
        Err(why) => (String::new(), Err(SendError::Permanent(why.to_string()))),
    }
}
