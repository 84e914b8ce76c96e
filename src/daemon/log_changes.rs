//! Wakes the event watcher the moment the log (or its WAL) is written: a file-change
//! notification (inotify on Linux, through `notify`) on the log's directory, so a committed
//! complaint is read at once instead of at the next `daemon.event_poll`. The poll stays, as the
//! fallback for file systems that do not notify (some network mounts) and for anything missed.
//! An idle log sends nothing, so an idle daemon stays idle: what only reads it or changes its
//! files' attributes (SQLite running as root gives each connection's WAL its owner) is not a
//! write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::{debug, warn};

/// After a write is noticed, this long for the writer to finish its commit (SQLite writes the
/// commit frame, then the WAL index through shared memory, which sends nothing).
const SETTLE: Duration = Duration::from_millis(3);

/// The notification on one log's directory.
pub(super) struct LogChanges {
    path: PathBuf,
    changed: Arc<Notify>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl LogChanges {
    /// Watches the directory of the log at `path` for writes to the log, its WAL or its
    /// rollback journal, and for the file being replaced. Without a notification (the file
    /// system or the system refuses one), says so once and leaves the poll to do the work.
    pub(super) fn watch(path: &Path) -> LogChanges {
        let changed = Arc::new(Notify::new());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let wake = changed.clone();
        let ours = move |p: &Path| {
            let Some(file) = p.file_name().map(|f| f.to_string_lossy()) else {
                return false;
            };
            name.as_deref().is_some_and(|log| {
                file == log || file == format!("{log}-wal") || file == format!("{log}-journal")
            })
        };
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !matches!(
                    event.kind,
                    EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
                )
                && event.paths.iter().any(|p| ours(p))
            {
                wake.notify_one();
            }
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            w.watch(dir, RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        let watcher = match watcher {
            Ok(w) => {
                debug!(dir = %dir.display(), "new interactions are noticed as they are written");
                Some(w)
            }
            Err(err) => {
                warn!(dir = %dir.display(), error = %err, "cannot be notified of writes to the log; new interactions are looked for every daemon.event_poll");
                None
            }
        };
        LogChanges {
            path: path.to_path_buf(),
            changed,
            _watcher: watcher,
        }
    }

    /// The log this watches.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Returns once the log was written since the last call, a moment after the write.
    pub(super) async fn written(&self) {
        self.changed.notified().await;
        tokio::time::sleep(SETTLE).await;
    }
}
