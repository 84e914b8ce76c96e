//! A claimed batch on its way: its sends run on the delivery runtime while the next batch is
//! claimed, and their outcomes are recorded together.

use jiff::Timestamp;

use super::settle::settle;
use super::{DeliveryReport, SendError, Transport};
use crate::compose::build_message;
use crate::config::{Config, Delivery};
use crate::outbox::{Outbox, OutboxError, StoredNote, Update};

/// A claimed batch whose sends run on the delivery runtime.
pub(super) struct InFlight {
    /// Shared with the sends, which build each note's message off the delivery thread.
    batch: std::sync::Arc<[StoredNote]>,
    outcomes: tokio::task::JoinHandle<Vec<(String, Result<String, SendError>)>>,
    /// Fires once every send of the batch has started: the next batch's sends wait for it, so
    /// notes start in priority order across batches too.
    pub(super) dispatched: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl InFlight {
    pub(super) fn start(
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
    pub(super) fn finish(
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
