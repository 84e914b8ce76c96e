//! `rekindle suppress add|remove|list`: the suppression list.

use std::path::Path;

use super::local_time;
use crate::config::Config;
use crate::error::Error;
use crate::outbox::Outbox;

/// `rekindle suppress add|remove|list`.
pub(crate) fn suppress(path: &Path, action: crate::cli::SuppressAction) -> Result<(), Error> {
    use crate::cli::SuppressAction;
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    match action {
        SuppressAction::Add { keys, reason } => {
            let outbox = Outbox::open(&config.state_path)?;
            let added = outbox.suppress(&keys, &reason, crate::clock::now())?;
            say!(
                "{added} added to the suppression list ({} already there); their queued notes will be cancelled before sending",
                keys.len() - added
            );
        }
        SuppressAction::Remove { keys } => {
            let outbox = Outbox::open(&config.state_path)?;
            let removed = outbox.unsuppress(&keys)?;
            say!("{removed} removed from the suppression list");
        }
        SuppressAction::List => {
            let outbox = Outbox::open_dry_run(&config.state_path)?;
            let list = outbox.suppressions()?;
            if list.is_empty() {
                say!("the suppression list is empty");
            }
            for (key, reason, at) in list {
                let when = local_time(&config, at, "%Y-%m-%d %H:%M");
                say!("{key:<32} {when}  {reason}");
            }
        }
    }
    Ok(())
}
