//! A maildir transport: each note becomes one file in `new/`, for demos and dry runs.
//!
//! The file name comes from the note's Message-ID, so delivering the same note again replaces
//! the file instead of adding a second copy. Files are written to `tmp/` and renamed into
//! `new/`, so a reader never sees half a message.

use std::io::Write;
use std::path::{Path, PathBuf};

use lettre::Message;

use super::SendError;

/// A maildir directory.
pub(crate) struct Maildir {
    dir: PathBuf,
}

impl Maildir {
    /// A maildir at `dir` (created on first delivery).
    pub(crate) fn new(dir: PathBuf) -> Maildir {
        Maildir { dir }
    }

    /// Its directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `message` into `new/`. Returns the file's path as the "server reply".
    pub(crate) fn deliver(&self, message: &Message, message_id: &str) -> Result<String, SendError> {
        let name: String = message_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect::<String>()
            + ".eml";
        let write = || -> std::io::Result<PathBuf> {
            for sub in ["tmp", "new", "cur"] {
                std::fs::create_dir_all(self.dir.join(sub))?;
            }
            let tmp = self.dir.join("tmp").join(&name);
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&message.formatted())?;
            file.sync_all()?;
            let dest = self.dir.join("new").join(&name);
            std::fs::rename(&tmp, &dest)?;
            Ok(dest)
        };
        // A full disk or a permission problem may clear up; retry like a 4xx.
        write()
            .map(|p| format!("written to {}", p.display()))
            .map_err(|e| {
                SendError::Transient(format!(
                    "cannot write to maildir {}: {e}",
                    self.dir.display()
                ))
            })
    }
}
