//! The daemon's stop, as every task sees it (in the manner of tokio's mini-redis): each task
//! holds a [`Shutdown`] and `select!`s between its work and [`Shutdown::recv`]; blocking work
//! asks [`Shutdown::is_shutdown`] between steps.

use tokio::sync::watch;

/// One task's view of the stop.
#[derive(Debug, Clone)]
pub(super) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A new stop, not yet asked for, and the handle that asks for it.
    pub(super) fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Whether the stop was asked for.
    pub(super) fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the stop is asked for (at once if it was).
    pub(super) async fn recv(&mut self) {
        // An error means the daemon itself is gone: stop all the same.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
