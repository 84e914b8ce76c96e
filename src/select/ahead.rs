//! A rule's selection read ahead of its turn, on a thread and a connection of its own.
//!
//! A whole evaluation spends its time in two ways: SQLite grouping and sorting the log for a
//! selection (the quiet, ratio and seasonal rules, before their first customer), and rekindle
//! composing and queueing notes (the window rules, many notes each). The rules
//! still take their turns in priority order, one customer at a time, so every decision is the
//! one a single thread would make; only the reading of the next rules' selections goes on
//! meanwhile, on the machine's other core. What a reader has ahead of its turn is bounded: the
//! selection's own read-ahead (see `READ_AHEAD`) and [`WAITING`] more.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::Scope;

use jiff::Timestamp;
use rusqlite::InterruptHandle;

use super::{Candidate, Rest, candidates};
use crate::config::{Config, Rule};
use crate::log::{Log, LogError};

/// Candidates a reader hands over before it waits for its rule's turn to take them.
const WAITING: usize = 256;

/// Candidates handed over at once: one wake-up of the other thread for each, rather than for
/// every candidate (100,000 candidates cost as many futex calls, a tenth of a plan's time).
const BATCH: usize = 64;

/// What the rule taking its turn wants of its reader (an [`AtomicU8`]).
const GO_ON: u8 = 0;
const STOP: u8 = 1;
const COUNT: u8 = 2;

enum Message {
    /// The next candidates, in the selection's order.
    Candidates(Vec<Candidate>),
    /// The selection is over: how many candidates were counted rather than handed over (see
    /// [`select`]), or why it failed.
    Done(Result<u64, LogError>),
}

/// A rule's selection being read on its own thread (see the module documentation). Dropped
/// before its turn is over, it stops the reading, mid-query if need be.
pub(crate) struct Ahead {
    messages: Receiver<Message>,
    wanted: Arc<AtomicU8>,
    interrupt: InterruptHandle,
}

/// Starts reading `rule`'s whole selection at `now` on a thread of `scope`, with its own
/// connection to `log` (which has read the horizon).
pub(crate) fn read_ahead<'scope>(
    scope: &'scope Scope<'scope, '_>,
    log: &Log,
    config: &'scope Config,
    rule: &'scope Rule,
    now: Timestamp,
) -> Result<Ahead, LogError> {
    let own = log.reopen()?;
    let interrupt = own.conn().get_interrupt_handle();
    let (sender, messages) = sync_channel(WAITING / BATCH);
    let wanted = Arc::new(AtomicU8::new(GO_ON));
    let asked = Arc::clone(&wanted);
    scope.spawn(move || {
        // Candidates read but not yet handed over; those left when the turn breaks off are
        // counted here.
        let mut batch = Vec::with_capacity(BATCH);
        let mut kept = 0;
        let result = candidates(&own, config, rule, now, None, |candidate| {
            let rest = match asked.load(Ordering::Acquire) {
                GO_ON => {
                    batch.push(candidate);
                    if batch.len() < BATCH {
                        return ControlFlow::Continue(());
                    }
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    match sender.send(Message::Candidates(full)) {
                        Ok(()) => return ControlFlow::Continue(()),
                        // The turn is over (an error on its side): nobody is listening.
                        Err(_) => Rest::Stop,
                    }
                }
                COUNT => Rest::Count,
                _ => Rest::Stop,
            };
            kept = 1 + batch.len();
            batch.clear();
            ControlFlow::Break(rest)
        });
        if !batch.is_empty() {
            let _ = sender.send(Message::Candidates(batch));
        }
        let _ = sender.send(Message::Done(result.map(|left| left + kept as u64)));
    });
    Ok(Ahead {
        messages,
        wanted,
        interrupt,
    })
}

impl Ahead {
    /// Hands the selection to `each` as [`select`] does: `each` may stop it, or have the rest
    /// counted (then returned) without handing it over.
    pub(crate) fn take(
        self,
        mut each: impl FnMut(Candidate) -> ControlFlow<Rest>,
    ) -> Result<u64, LogError> {
        let mut broke_off = None;
        // Candidates already handed over when `each` broke off.
        let mut unread = 0;
        for message in self.messages.iter() {
            match message {
                Message::Candidates(batch) => {
                    for candidate in batch {
                        if broke_off.is_some() {
                            unread += 1;
                            continue;
                        }
                        if let ControlFlow::Break(rest) = each(candidate) {
                            let code = match rest {
                                Rest::Stop => STOP,
                                Rest::Count => COUNT,
                            };
                            self.wanted.store(code, Ordering::Release);
                            broke_off = Some(rest);
                        }
                    }
                }
                Message::Done(result) => {
                    let left = result?;
                    return Ok(match broke_off {
                        Some(Rest::Count) => unread + left,
                        _ => 0,
                    });
                }
            }
        }
        Err(LogError::Reader)
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.wanted.store(STOP, Ordering::Release);
        self.interrupt.interrupt();
    }
}
