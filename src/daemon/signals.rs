//! Unix signals, mapped to what they ask of the daemon in one place.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::error::Error;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// The first SIGTERM or SIGINT: finish the notes in flight (within the grace period), then
    /// exit.
    Shutdown,
    /// A second SIGTERM or SIGINT: exit now; a note caught mid-send stays `sending` and is
    /// parked as `unknown` at the next start.
    Quit,
    /// SIGHUP: re-read the configuration and templates.
    Reload,
}

/// Listens for SIGTERM, SIGINT and SIGHUP for the life of the runtime.
pub(super) fn listen() -> Result<mpsc::UnboundedReceiver<Signal>, Error> {
    let listen = |kind| signal(kind).map_err(|e| Error::io("listen for signals", "", e));
    let (mut term, mut int, mut hup) = (
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
        listen(SignalKind::hangup())?,
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stopping = false;
        loop {
            let stop = tokio::select! {
                _ = term.recv() => true,
                _ = int.recv() => true,
                _ = hup.recv() => false,
            };
            let signal = match (stop, stopping) {
                (false, _) => Signal::Reload,
                (true, false) => Signal::Shutdown,
                (true, true) => Signal::Quit,
            };
            stopping |= stop;
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
