//! A local maildir (one the business's own MTA delivers into): the files in `new/` and `cur/`
//! not handled yet, oldest first. Files are only read: never moved, renamed (which would mark
//! them read) or deleted. A file is known by the unique part of its name (before `:2,`), which
//! stays when a mail client changes its flags.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::handle::{Handled, Origin, handle};
use super::imap::FIRST_LOOK;
use crate::config::Config;
use crate::outbox::Outbox;
use crate::outbox::inbound::Position;

/// Reads the maildir's new files on a blocking thread; returns how many were handled.
pub(super) async fn read(dir: &Path, source: &str, config: &Arc<Config>) -> Result<usize, String> {
    let (dir, source, config) = (dir.to_path_buf(), source.to_string(), config.clone());
    tokio::task::spawn_blocking(move || read_now(&dir, &source, &config))
        .await
        .map_err(|e| format!("the reading thread failed: {e}"))?
}

fn read_now(dir: &Path, source: &str, config: &Config) -> Result<usize, String> {
    let outbox = Outbox::open(&config.state_path).map_err(|e| e.to_string())?;
    let seen = outbox.maildir_seen(source).map_err(|e| e.to_string())?;
    let now = crate::clock::now();
    let oldest = std::time::SystemTime::try_from(now - FIRST_LOOK).unwrap_or(std::time::UNIX_EPOCH);
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        let path = dir.join(sub);
        let entries = std::fs::read_dir(&path)
            .map_err(|e| format!("cannot read the maildir {}: {e}; check [[inbound.maildir]] dir and that rekindle's user may read it", path.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unique = name.split(':').next().unwrap_or(&name).to_string();
            if name.starts_with('.') || seen.contains(&unique) {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            files.push((modified, unique, entry.path()));
        }
    }
    files.sort();
    let mut handled = 0;
    for (modified, unique, path) in files {
        let origin = Origin {
            source,
            position: Position::Maildir(unique),
        };
        let outcome = if modified < oldest {
            // Before rekindle read this maildir: remembered, not handled.
            outbox
                .record_inbound(source, &origin.position, None, &Default::default(), now)
                .map(|_| Handled::LeftAlone)
        } else {
            let Some((raw, headers_only)) = read_file(&path, config.inbound.max_message_bytes)
            else {
                continue; // gone meanwhile (a client moved it): seen again under cur/ next time
            };
            handle(&raw, headers_only, &origin, &outbox, config, now)
        };
        outcome.map_err(|e| e.to_string())?;
        handled += 1;
    }
    Ok(handled)
}

/// A message file: whole when at most `max` bytes, else its headers alone (up to the first
/// empty line, within 256 KiB).
fn read_file(path: &PathBuf, max: u64) -> Option<(Vec<u8>, bool)> {
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    if size <= max {
        let mut raw = Vec::with_capacity(size as usize);
        file.take(max).read_to_end(&mut raw).ok()?;
        return Some((raw, false));
    }
    let mut head = Vec::new();
    file.take(256 * 1024).read_to_end(&mut head).ok()?;
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(head.len());
    head.truncate(end);
    Some((head, true))
}
