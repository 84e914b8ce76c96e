//! What comes back: the mailboxes of `[inbound]` read for bounces, spam complaints, replies and
//! unsubscribe requests, each message classified ([`classify`]) and recorded with what it
//! changes ([`handle`]) in the state database, never in the business's log.
//!
//! Each source is followed on its own ([`follow`]): an IMAP mailbox stays logged in and waits
//! with IDLE where the server offers it, else it is read every `inbound.poll`, like a maildir.
//! A source that is down or refuses the login is tried again with backoff and reported once;
//! delivery goes on meanwhile.

pub(crate) mod classify;
mod handle;
mod imap;
mod legacy;
mod maildir;
mod mime;
mod reports;
mod scan;
mod text;

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::config::Config;
use crate::config::inbound::{ImapConfig, Source};
use crate::outbox::Outbox;
use crate::outbox::inbound::Position;
use handle::{Handled, Origin};

/// One message as read from a mailbox.
pub(crate) struct Message {
    /// Its UID (IMAP).
    pub uid: u32,
    /// Its bytes (the headers alone when `headers_only`).
    pub raw: Vec<u8>,
    /// Too large to read whole: only its headers were fetched.
    pub headers_only: bool,
}

/// Messages of one IMAP folder, in UID order.
pub(crate) struct Batch {
    /// The folder.
    pub folder: String,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// The messages.
    pub messages: Vec<Message>,
}

/// Records a batch on a blocking thread, in UID order, each with its position; returns the
/// UIDs of the messages rekindle recorded (those it may move).
async fn record(config: Arc<Config>, source: String, batch: Batch) -> Result<Vec<u32>, String> {
    let work = move || -> Result<Vec<u32>, String> {
        let outbox = Outbox::open(&config.state_path).map_err(|e| e.to_string())?;
        let mut recorded = Vec::new();
        for m in batch.messages {
            let origin = Origin {
                source: &source,
                position: Position::Imap {
                    folder: batch.folder.clone(),
                    uidvalidity: batch.uidvalidity,
                    uid: m.uid,
                },
            };
            let now = crate::clock::now();
            let handled = handle::handle(&m.raw, m.headers_only, &origin, &outbox, &config, now)
                .map_err(|e| e.to_string())?;
            if matches!(handled, Handled::Recorded(_) | Handled::Again) {
                recorded.push(m.uid);
            }
        }
        Ok(recorded)
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the recording thread failed: {e}"))?
}

/// Reads every source once (for `run --once`): what is there now is recorded; a source that
/// cannot be read is reported and skipped.
pub(crate) async fn read_all_once(config: Arc<Config>) {
    for source in &config.inbound.sources {
        let name = source.name();
        let outcome = match source {
            Source::Imap(cfg) => match imap::connect(cfg, &config).await {
                Ok(mut mailbox) => {
                    let read = read_imap(&mut mailbox, cfg, &config).await.map(|(n, _)| n);
                    mailbox.logout().await;
                    read
                }
                Err(e) => Err(e),
            },
            Source::Maildir { dir, .. } => maildir::read(dir, &name, &config).await,
        };
        report(&config, &name, outcome.as_ref().err().map(String::as_str)).await;
        match outcome {
            Ok(n) => info!(source = %name, messages = n, "mailbox read"),
            Err(why) => {
                warn!(source = %name, error = %why, "cannot read the mailbox; it is read again next time")
            }
        }
    }
}

/// Follows one source for as long as the future is polled (the daemon drops it at a reload or
/// the stop): read what is new, wait (IDLE or `inbound.poll`), again; on failure, try again
/// with backoff, saying so once per new reason.
pub(crate) async fn follow(source: Source, config: Arc<Config>) {
    let name = source.name();
    let poll = config.inbound.poll.unsigned_abs();
    let mut failing: Option<String> = None;
    let mut backoff = BACKOFF_FIRST;
    loop {
        let outcome = match &source {
            Source::Imap(cfg) => follow_imap(cfg, &config, &name, &mut failing).await,
            Source::Maildir { dir, .. } => maildir::read(dir, &name, &config).await.map(|_| ()),
        };
        match outcome {
            Ok(()) => {
                recovered(&config, &name, &mut failing).await;
                backoff = BACKOFF_FIRST;
                tokio::time::sleep(poll).await;
            }
            Err(why) => {
                if failing.as_deref() != Some(why.as_str()) {
                    // Recorded first: whoever reads the log line finds it in `status` too.
                    report(&config, &name, Some(&why)).await;
                    warn!(source = %name, error = %why, retry_in = %humantime::format_duration(backoff), "cannot read the mailbox; delivery goes on, the mailbox is tried again");
                } else {
                    debug!(source = %name, error = %why, "the mailbox still cannot be read");
                }
                failing = Some(why);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MOST.min(poll.max(BACKOFF_FIRST)));
            }
        }
    }
}

/// The first wait after a failure, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
const BACKOFF_MOST: Duration = Duration::from_secs(300);

/// Stays logged in to an IMAP mailbox: reads every folder, then waits with IDLE on the first
/// (at most `inbound.poll`, so the others are read too) or sleeps `inbound.poll`; returns only
/// on a failure.
async fn follow_imap(
    cfg: &ImapConfig,
    config: &Arc<Config>,
    name: &str,
    failing: &mut Option<String>,
) -> Result<(), String> {
    let poll = config.inbound.poll.unsigned_abs();
    let mut mailbox = imap::connect(cfg, config).await?;
    let mut first = true;
    loop {
        let (read, next) = read_imap(&mut mailbox, cfg, config).await?;
        recovered(config, name, failing).await;
        if std::mem::take(&mut first) {
            let waits = if mailbox.can_idle() {
                "IDLE"
            } else {
                "polling"
            };
            info!(source = %name, messages = read, waits, "mailbox read; waiting for new mail");
        }
        if mailbox.can_idle() {
            mailbox = mailbox
                .idle(&cfg.folders[0], next, poll, cfg.timeout())
                .await?;
        } else {
            tokio::time::sleep(poll).await;
        }
    }
}

/// Reads every folder of an IMAP mailbox once: how many messages, and the first folder's next
/// UID (where IDLE waits).
async fn read_imap(
    mailbox: &mut imap::Mailbox,
    cfg: &ImapConfig,
    config: &Arc<Config>,
) -> Result<(usize, u32), String> {
    let (mut read, mut first_next) = (0, None);
    for folder in &cfg.folders {
        let mark = {
            let (config, name, folder) = (config.clone(), cfg.name(), folder.clone());
            tokio::task::spawn_blocking(move || {
                Outbox::open(&config.state_path).and_then(|o| o.imap_mark(&name, &folder))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
        };
        let (n, next) = mailbox.read_folder(folder, mark, cfg, config).await?;
        read += n;
        first_next.get_or_insert(next);
    }
    Ok((read, first_next.unwrap_or(0)))
}

/// After a complete read: the status says so, and the log once after a failure.
async fn recovered(config: &Arc<Config>, name: &str, failing: &mut Option<String>) {
    report(config, name, None).await;
    if failing.take().is_some() {
        info!(source = %name, "the mailbox can be read again");
    }
}

/// Records how a read of a mailbox went, for `status` (best effort: it is only a report).
async fn report(config: &Arc<Config>, name: &str, error: Option<&str>) {
    let (config, name, error) = (config.clone(), name.to_string(), error.map(str::to_string));
    let written = tokio::task::spawn_blocking(move || {
        Outbox::open(&config.state_path)
            .and_then(|o| o.source_outcome(&name, error.as_deref(), crate::clock::now()))
    })
    .await;
    if let Ok(Err(err)) = written {
        warn!(error = %err, "cannot record how the mailbox read went; `status` shows an older read");
    }
}
