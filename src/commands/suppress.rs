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
            refuse_unknown(&config, &keys)?;
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

/// Each key must be an email address, or the id of a customer in the log: a typo must not sit
/// in the list protecting nobody. All the bad ones are named at once (exit 64, nothing added).
fn refuse_unknown(config: &Config, keys: &[String]) -> Result<(), Error> {
    let log = crate::log::Log::open(&config.log_path).ok();
    let mut bad = Vec::new();
    for key in keys {
        if key.contains('@') {
            if key.parse::<lettre::Address>().is_err() {
                bad.push(format!("{key:?} is not an email address"));
            }
        } else if let Some(log) = &log
            && matches!(log.customer(key), Ok(None))
        {
            bad.push(format!(
                "no customer with id {key:?} in the log {}; check the id, or suppress by email address",
                config.log_path.display()
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!("nothing added: {}", bad.join("; "))))
    }
}
