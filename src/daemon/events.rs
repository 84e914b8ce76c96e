//! Event triggers: rules with `trigger = "interaction"` run within about a second of a new row
//! in the log.
//!
//! A persistent read-only connection asks SQLite for `PRAGMA data_version` as soon as the log or
//! its WAL is written (a file-change notification, [`super::log_changes`]), and every
//! `daemon.event_poll` in any case: the number changes only when another connection committed,
//! so an idle log costs one tiny query per poll. When it changes, the rows after the watermark (the last
//! rowid handled, kept in the state database) are read by rowid, and the event rules are
//! evaluated for just their customers. The watermark moves only after the notes are committed,
//! so a crash re-reads a few rows and the outbox's unique key drops the repeats: no event is
//! missed and none fires twice.

use std::sync::Arc;

use tracing::{debug, error, info, warn};

use super::log_changes::LogChanges;
use super::shutdown::Shutdown;
use super::watchdog::Beats;
use super::{Shared, blocking};

use crate::config::Rule;
use crate::error::Error;
use crate::evaluate::{self, Pass};
use crate::load::Loaded;
use crate::log::Log;
use crate::metrics::METRICS;
use crate::outbox::{Outbox, Setting};

/// After a look the log's notification asked for found no new commit, the next look comes
/// this soon ...
const SECOND_LOOK: std::time::Duration = std::time::Duration::from_millis(25);
/// ... and so on, until a commit is seen or this long after the write: a writer syncs its WAL
/// before its commit shows (on a busy disk that can take hundreds of milliseconds), and the
/// commit itself sends no notification.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Rows read per step, so a burst of inserts is handled in bounded memory and short reads.
const CHUNK: usize = 1000;

/// The event watcher's connection and what it saw last.
struct Watcher {
    log: Log,
    data_version: Option<i64>,
    /// The file the connection reads (device, inode): a log replaced under its path (`mv`, a
    /// restore) is another file, which the connection would never see.
    file: Option<(u64, u64)>,
}

impl Watcher {
    /// Opens the log for watching.
    fn open(loaded: &Loaded) -> Result<Watcher, Error> {
        let path = &loaded.config.log_path;
        let file = file_identity(path);
        Ok(Watcher {
            log: Log::open(path)?,
            data_version: None,
            file,
        })
    }

    /// Reopens the log when another file now stands at its path; says once when none does.
    fn follow_replacement(&mut self, path: &std::path::Path) -> Result<(), Error> {
        let now = file_identity(path);
        if now.is_none() && self.file.is_some() {
            warn!(log = %path.display(), "the interaction log is missing (being replaced?): new interactions wait until a file is there again");
            self.file = None;
        }
        if now.is_some() && now != self.file {
            self.log = Log::open(path)?;
            self.file = now;
            self.data_version = None;
            info!(log = %path.display(), "the interaction log was replaced: watching the new file");
        }
        Ok(())
    }

    /// Handles what arrived since the last call: returns the number of notes queued. Does
    /// nothing (one PRAGMA) when the log has not changed.
    ///
    /// Each chunk is evaluated at the time it was read, not when the poll began: a row
    /// committed while an earlier chunk was being handled is stamped later than that, and a
    /// rule's window (complaints up to now) would pass it over while the watermark moved on.
    fn poll(&mut self, loaded: &Loaded) -> Result<u64, Error> {
        let noticed = std::time::Instant::now();
        let config = &loaded.config;
        let rules: Vec<&Rule> = config
            .rules
            .iter()
            .filter(|r| r.enabled && r.on_interaction)
            .collect();
        self.follow_replacement(&config.log_path)?;
        let version = self.log.data_version()?;
        if rules.is_empty() || self.data_version == Some(version) {
            self.data_version = Some(version);
            return Ok(0);
        }
        let outbox = Outbox::open(&config.state_path)?;
        let mut watermark = match outbox.setting::<i64>(Setting::EventWatermark)? {
            Some(w) => w,
            None => {
                let now = crate::clock::now();
                let since = now.checked_sub(config.daemon.event_lookback).unwrap_or(now);
                let w = self.log.rowid_before(since)?;
                info!(
                    watermark = w,
                    lookback = %humantime::format_duration(config.daemon.event_lookback.unsigned_abs()),
                    "first start: interactions within the lookback window count as new"
                );
                outbox.set_setting(Setting::EventWatermark, &w)?;
                w
            }
        };
        let mut queued = 0;
        while let Some(new) = self.log.new_interactions(watermark, CHUNK)? {
            let pass = Pass {
                only: Some(&new.customers),
                ..Pass::new(&rules, crate::clock::now())
            };
            let reports = evaluate::run(config, &loaded.templates, &self.log, &outbox, &pass)?;
            for r in &reports {
                METRICS.evaluated(&r.rule, r.elapsed);
            }
            for r in reports.iter().filter(|r| r.matched > 0) {
                info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, trigger = "interaction", "{}", r.summary());
            }
            let chunk_queued = reports.iter().map(|r| r.queued).sum::<u64>();
            if chunk_queued > 0 {
                METRICS
                    .event_to_queued
                    .observe(noticed.elapsed().as_secs_f64());
            }
            queued += chunk_queued;
            debug!(
                rows = new.count,
                customers = new.customers.len(),
                watermark = new.last_rowid,
                "new interactions handled"
            );
            watermark = new.last_rowid;
            // The notes are committed (evaluate flushes); now the rows count as handled.
            outbox.set_setting(Setting::EventWatermark, &watermark)?;
            if new.count < CHUNK {
                break;
            }
        }
        self.data_version = Some(version);
        Ok(queued)
    }
}

/// The device and inode of the file at `path`, if there is one.
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Watches the log for new interactions and runs the event rules on them.
pub(super) async fn watch(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let mut watcher: Option<Watcher> = None;
    let mut changes: Option<LogChanges> = None;
    // When a write was noticed that no look has yet seen committed.
    let mut written_at: Option<std::time::Instant> = None;
    let mut failing = false;
    while !shutdown.is_shutdown() {
        let running = shared.running();
        let log_path = &running.loaded.config.log_path;
        if changes.as_ref().is_none_or(|c| c.path() != log_path) {
            changes = Some(LogChanges::watch(log_path));
        }
        Beats::stamp(&shared.beats.events);
        let wants_events = running.loaded.config.rules.iter().any(|r| r.on_interaction);
        if wants_events {
            let guard = shared.evaluating.lock().await;
            let current = watcher.take();
            let seen = current.as_ref().and_then(|w| w.data_version);
            let loaded = running.clone();
            let result = blocking(move || {
                let mut w = match current {
                    Some(w) => w,
                    None => Watcher::open(&loaded.loaded)?,
                };
                let queued = w.poll(&loaded.loaded);
                Ok((w, queued))
            })
            .await;
            drop(guard);
            match result {
                Ok((w, Ok(queued))) => {
                    if w.data_version != seen {
                        written_at = None;
                    }
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
        let poll = running.loaded.config.daemon.event_poll.unsigned_abs();
        // After a wake by a write, looks soon until its commit shows: the writer may not have
        // finished it (it syncs, then updates its WAL index in shared memory, which sends nothing).
        let pause = match written_at {
            Some(at) if at.elapsed() < COMMIT_WAIT => poll.min(SECOND_LOOK),
            _ => poll,
        };
        let written = async {
            match &changes {
                Some(c) => c.written().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = written => {
                if wants_events {
                    written_at = Some(std::time::Instant::now());
                }
            }
            _ = shutdown.recv() => return,
        }
    }
}
