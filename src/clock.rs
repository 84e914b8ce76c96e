//! The clock the commands and the daemon read: the system's, or one running a set offset ahead
//! (`--clock-offset`, for tests of the real binary that would otherwise wait for time to pass).
//! Below the edges, `now` is always passed in.

use std::sync::OnceLock;

use jiff::{SignedDuration, Timestamp};

static OFFSET: OnceLock<SignedDuration> = OnceLock::new();

/// Runs the clock `offset` ahead of the system's for the rest of the process (once).
pub(crate) fn set_offset(offset: SignedDuration) {
    let _ = OFFSET.set(offset);
}

/// Now.
pub(crate) fn now() -> Timestamp {
    let now = Timestamp::now();
    OFFSET
        .get()
        .and_then(|offset| now.checked_add(*offset).ok())
        .unwrap_or(now)
}
