//! The notes with the transport. Each claimed note goes to a dispatcher on the delivery runtime,
//! which starts its send as soon as a connection slot is free (in claim order, across claims).
//! Right before a note's message goes, its connection writes that it is on its way (see
//! [`HandedOver`]), and once the server answered, the answer; the outcome comes back to the
//! delivery thread the moment it is known, to be recorded with whatever else is known by then.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Semaphore;

use super::{SendError, Transport};
use crate::compose::build_message;
use crate::config::{Config, Sender};
use crate::outbox::{HandedOver, StoredNote};

/// Whether a note's message is still only with rekindle, already on its way to the server, or
/// withdrawn (rekindle is stopping and puts it back): what tells a note that never left from
/// one that may have arrived. On its way is written beside the state database before the
/// message goes, so a crash tells them apart too (see [`crate::outbox::Outbox::park_interrupted`]).
#[derive(Default)]
pub(crate) struct Handover {
    state: AtomicU8,
    note_id: i64,
    attempt: u32,
    /// Where to write that the note is on its way; None: nobody keeps track (tests).
    marks: Option<Arc<HandedOver>>,
}

const WAITING: u8 = 0;
const ON_ITS_WAY: u8 = 1;
const WITHDRAWN: u8 = 2;
/// On its way, and the server took it.
const ANSWERED: u8 = 3;

/// Why a note taken back does not go.
const STOPPING: &str = "rekindle is stopping: the note was taken back before it was handed over";

impl Handover {
    /// Attempt `attempt` of note `note_id`, not yet on its way; `marks`: where to write what
    /// becomes of it.
    pub(crate) fn new(note_id: i64, attempt: u32, marks: Option<Arc<HandedOver>>) -> Handover {
        Handover {
            state: AtomicU8::new(WAITING),
            note_id,
            attempt,
            marks,
        }
    }

    /// Called right before the message goes: writes that the note is on its way, unless it
    /// was taken back. An error means it must not be sent, and says why. Called again for the
    /// next server after a failover, it writes nothing more.
    pub(crate) fn go(&self) -> Result<(), String> {
        match self
            .state
            .compare_exchange(WAITING, ON_ITS_WAY, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(ON_ITS_WAY) => return Ok(()),
            Err(_) => return Err(STOPPING.into()),
        }
        let Some(marks) = &self.marks else {
            return Ok(());
        };
        marks.mark(self.note_id, self.attempt).map_err(|why| {
            self.state.store(WITHDRAWN, Ordering::SeqCst);
            format!("cannot record that the note is on its way, so it was not sent: {why}")
        })
    }

    /// The server took the message: writes so beside the note's mark, once, so a crash before
    /// the outcome is recorded does not leave the note `unknown`. An SMTP connection calls it
    /// before it takes its next note.
    pub(crate) fn accepted(&self, server: &str, reply: &str) {
        if self
            .state
            .compare_exchange(ON_ITS_WAY, ANSWERED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.write_answer(Some(&super::settle::sent_detail(server, reply)));
        }
    }

    /// Called with the transport's last word: writes the answer beside the note's mark when
    /// no connection did (see [`Handover::accepted`]), and that the note did not arrive when the
    /// server refused it after it went on its way. An outcome that is itself unknown writes
    /// nothing.
    fn answered(&self, server: &str, outcome: &Result<String, SendError>) {
        match outcome {
            Ok(reply) => self.accepted(server, reply),
            Err(SendError::Ambiguous(_)) => {}
            Err(_) if self.state.load(Ordering::SeqCst) == ON_ITS_WAY => self.write_answer(None),
            Err(_) => {}
        }
    }

    fn write_answer(&self, sent: Option<&str>) {
        let Some(marks) = &self.marks else {
            return;
        };
        if let Err(why) = marks.answer(self.note_id, self.attempt, sent) {
            tracing::warn!(
                note_id = self.note_id,
                "{why}: should rekindle stop before this note's outcome is recorded, it is parked as unknown"
            );
        }
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
    /// The sends' outcomes.
    outcomes: Arc<Outcomes>,
    /// Where the connections write which notes are on their way.
    marks: Arc<HandedOver>,
    /// By note id: the notes whose outcome is not yet recorded.
    out: HashMap<i64, (StoredNote, Arc<Handover>)>,
    /// When the first outcome of the group being gathered was seen.
    first_at: Option<Instant>,
}

/// The outcomes the sends report, waiting for the delivery thread. A send wakes it only for
/// the first outcome of a group, a full group, or the last note out: not for each note, which
/// on a fast server cost a wake-up of the thread per note.
struct Outcomes {
    queue: Mutex<Vec<Done>>,
    arrived: Condvar,
    /// Notes out and not yet recorded, as the delivery thread last counted them.
    out: AtomicUsize,
}

impl Outcomes {
    fn tell(&self, done: Done) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.push(done);
        let n = queue.len();
        drop(queue);
        if n == 1 || n >= GROUP || n >= self.out.load(Ordering::SeqCst) {
            self.arrived.notify_one();
        }
    }
}

impl Sends {
    /// Starts the dispatcher on `runtime`: at most `delivery.concurrency` sends at once.
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        transport: &Arc<Transport>,
        config: &Config,
        marks: HandedOver,
    ) -> Sends {
        let (dispatch, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let outcomes = Arc::new(Outcomes {
            queue: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            out: AtomicUsize::new(0),
        });
        let limit = Arc::new(Semaphore::new(config.delivery.concurrency.max(1) as usize));
        let sender = Arc::new(config.sender.clone());
        let transport = transport.clone();
        let reports = outcomes.clone();
        runtime.spawn(async move {
            while let Some(job) = jobs.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (transport, sender, report) =
                    (transport.clone(), sender.clone(), reports.clone());
                tokio::spawn(async move {
                    let (server, outcome) = send(&transport, &sender, &job).await;
                    job.handover.answered(&server, &outcome);
                    drop(permit);
                    // The delivery thread stopped listening: it is exiting, and the note stays
                    // `sending` (parked as `unknown` at the next start if it was on its way).
                    report.tell(Done {
                        note: job.note,
                        server,
                        outcome,
                    });
                });
            }
        });
        Sends {
            dispatch,
            outcomes,
            marks: Arc::new(marks),
            out: HashMap::new(),
            first_at: None,
        }
    }

    /// Notes handed over and not yet back.
    pub(super) fn outstanding(&self) -> usize {
        self.out.len()
    }

    /// Hands claimed notes to the transport, in order.
    pub(super) fn push(&mut self, notes: Vec<StoredNote>, date: Timestamp) {
        for note in notes {
            let handover = Arc::new(Handover::new(
                note.id,
                note.attempts,
                Some(self.marks.clone()),
            ));
            self.out.insert(note.id, (note.clone(), handover.clone()));
            let job = Job {
                note,
                handover,
                date,
            };
            if let Err(lost) = self.dispatch.send(job) {
                // The runtime is gone: the note never left, and is retried.
                self.outcomes.tell(Done {
                    note: lost.0.note,
                    server: String::new(),
                    outcome: Err(SendError::Lost("the delivery runtime stopped".into())),
                });
            }
        }
        self.count_out();
    }

    /// Tells the sends how many notes are out.
    fn count_out(&self) {
        self.outcomes.out.store(self.out.len(), Ordering::SeqCst);
    }

    /// The outcomes known, in a group: once [`GROUP`] are in, [`GATHER`] after the first, or
    /// when every note out is back, waiting up to `wait` for the first one.
    pub(super) fn finished(&mut self, wait: Duration) -> Vec<Done> {
        let deadline = Instant::now() + wait;
        let mut queue = self
            .outcomes
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            if !queue.is_empty() && self.first_at.is_none() {
                self.first_at = Some(now);
            }
            let until = match self.first_at {
                Some(first)
                    if queue.len() >= GROUP
                        || queue.len() >= self.out.len()
                        || now >= first + GATHER =>
                {
                    break;
                }
                Some(first) => deadline.min(first + GATHER),
                None => deadline,
            };
            if now >= until {
                break;
            }
            queue = self
                .outcomes
                .arrived
                .wait_timeout(queue, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut done = std::mem::take(&mut *queue);
        drop(queue);
        self.first_at = None;
        // A note taken back was recorded then; its send's answer (that it did not go) is not.
        done.retain(|d| self.out.remove(&d.note.id).is_some());
        self.count_out();
        done
    }

    /// At a stop: takes back every note whose message has not started on its way (it never
    /// left, and goes at the next run). What is left may have arrived.
    pub(super) fn withdraw(&mut self) -> Vec<StoredNote> {
        let back: Vec<i64> = self
            .out
            .iter()
            .filter(|(_, (_, handover))| handover.withdraw())
            .map(|(id, _)| *id)
            .collect();
        let mut notes: Vec<StoredNote> = back
            .iter()
            .filter_map(|id| self.out.remove(id).map(|(note, _)| note))
            .collect();
        notes.sort_by_key(|n| n.id);
        self.count_out();
        notes
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
