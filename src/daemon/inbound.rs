//! The daemon's inbound task: every `[inbound]` source followed at once, beside evaluation and
//! delivery (a mailbox that is down holds up neither), started again with the new sources
//! after a reload, ended by the stop.

use std::sync::Arc;

use futures_util::future::join_all;

use super::Shared;
use super::shutdown::Shutdown;
use crate::inbound;

/// Follows the sources of the configuration in force until the stop.
pub(super) async fn follow(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let mut current = shared.current.subscribe();
    loop {
        let config = Arc::new(current.borrow_and_update().loaded.config.clone());
        let sources = config.inbound.sources.clone();
        let following = async {
            if sources.is_empty() {
                return std::future::pending().await;
            }
            join_all(
                sources
                    .into_iter()
                    .map(|s| inbound::follow(s, config.clone())),
            )
            .await;
        };
        tokio::select! {
            _ = following => {}
            changed = current.changed() => if changed.is_err() { return },
            _ = shutdown.recv() => return,
        }
    }
}
