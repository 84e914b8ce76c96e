//! One delivering process per state database: an OS file lock beside it, held for the life of
//! the process that claims notes (`run`, `run --once`, `demo`). Only the holder parks notes left
//! `sending` as `unknown`, so a note is parked only when the process that claimed it is gone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// Another process holds it.
    #[error(
        "another rekindle ({}) is delivering from {}; stop it first, or let it do this work (a running daemon evaluates and delivers on its own)",
        .holder.map(|pid| format!("pid {pid}")).unwrap_or_else(|| "pid unknown".into()),
        .state.display()
    )]
    Held {
        /// The holder's process id, as it wrote it.
        holder: Option<u32>,
        /// The state database.
        state: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The delivery lock of one state database, released when dropped (or when the process ends,
/// however it ends).
#[derive(Debug)]
pub(crate) struct DeliveryLock {
    _file: File,
}

impl DeliveryLock {
    /// Takes the lock of the state database at `state`, at once or not at all.
    pub(crate) fn take(state: &Path) -> Result<DeliveryLock, LockError> {
        let path = lock_path(state);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::outbox::state_dir(&path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    holder: text.trim().parse().ok(),
                    state: state.to_path_buf(),
                });
            }
            Err(TryLockError::Error(err)) => return Err(io(err)),
        }
        // The holder's pid, for the message a second process prints.
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        written.map_err(io)?;
        Ok(DeliveryLock { _file: file })
    }
}

/// The lock file beside the state database: `state.sqlite.lock`.
fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path().join("state.sqlite");
        let first = DeliveryLock::take(&state).expect("first");
        match DeliveryLock::take(&state) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        DeliveryLock::take(&state).expect("free again");
    }
}
