//! The notes with the transport. Each claimed note goes to a dispatcher on the delivery runtime,
//! which starts its send as soon as a connection slot is free (in claim order, across claims),
//! and each outcome comes back on its own the moment it is known, to be recorded with whatever
//! else is known by then.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Semaphore;

use super::{SendError, Transport};
use crate::compose::build_message;
use crate::config::{Config, Sender};
use crate::outbox::StoredNote;

/// Whether a note's message is still only with rekindle, already on its way to the server, or
/// withdrawn (rekindle is exiting and will put it back): what tells a note that never left from
/// one that may have arrived.
#[derive(Debug, Default)]
pub(crate) struct Handover(AtomicU8);

const WAITING: u8 = 0;
const ON_ITS_WAY: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Handover {
    /// Called right before the message itself goes out: false if the note was withdrawn, and
    /// then it must not be sent.
    pub(crate) fn begin(&self) -> bool {
        self.0
            .compare_exchange(WAITING, ON_ITS_WAY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Takes the note back if its message has not started on its way; true if it has not (and
    /// now never will).
    fn withdraw(&self) -> bool {
        self.0
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
    /// Where the outcomes come back, and the end the sends report to.
    done: mpsc::Receiver<Done>,
    report: mpsc::Sender<Done>,
    /// By note id: the notes whose outcome is not yet back.
    out: HashMap<i64, (StoredNote, Arc<Handover>)>,
}

impl Sends {
    /// Starts the dispatcher on `runtime`: at most `delivery.concurrency` sends at once.
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        transport: &Arc<Transport>,
        config: &Config,
    ) -> Sends {
        let (dispatch, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (report, done) = mpsc::channel();
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
                    let _ = report.send(Done {
                        note: job.note,
                        server,
                        outcome,
                    });
                });
            }
        });
        Sends {
            dispatch,
            done,
            report,
            out: HashMap::new(),
        }
    }

    /// Notes handed over and not yet back.
    pub(super) fn outstanding(&self) -> usize {
        self.out.len()
    }

    /// Hands claimed notes to the transport, in order.
    pub(super) fn push(&mut self, notes: Vec<StoredNote>, date: Timestamp) {
        for note in notes {
            let handover = Arc::new(Handover::default());
            self.out.insert(note.id, (note.clone(), handover.clone()));
            let job = Job {
                note,
                handover,
                date,
            };
            if let Err(lost) = self.dispatch.send(job) {
                // The runtime is gone: the note never left, and is retried.
                let _ = self.report.send(Done {
                    note: lost.0.note,
                    server: String::new(),
                    outcome: Err(SendError::Lost("the delivery runtime stopped".into())),
                });
            }
        }
    }

    /// The outcomes known now, waiting up to `wait` for the first one when none is.
    pub(super) fn finished(&mut self, wait: Duration) -> Vec<Done> {
        let mut done = Vec::new();
        if let Ok(first) = self.done.recv_timeout(wait) {
            done.push(first);
            done.extend(self.done.try_iter());
        }
        for d in &done {
            self.out.remove(&d.note.id);
        }
        done
    }

    /// At an exit that cannot wait: takes back every note whose message has not started on its
    /// way (it never left, and can go again), leaving those that may have arrived.
    pub(super) fn withdraw(&mut self) -> Vec<StoredNote> {
        let withdrawn: Vec<i64> = self
            .out
            .iter()
            .filter(|(_, (_, handover))| handover.withdraw())
            .map(|(id, _)| *id)
            .collect();
        let mut notes: Vec<StoredNote> = withdrawn
            .iter()
            .filter_map(|id| self.out.remove(id).map(|(note, _)| note))
            .collect();
        notes.sort_by_key(|n| n.id);
        notes
    }
}

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
