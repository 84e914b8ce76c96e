//! The notes whose message has started on its way to the server, kept beside the state
//! database in `<state>-handed`: a line "note-id attempt" appended right before each message
//! goes, by the connection sending it, and a second one once the server answered, before the
//! delivery thread records that answer: "note-id attempt sent <reply>" when the server took the
//! message, "note-id attempt back" when it did not arrive (refused, or nothing handed over). A
//! crash while answers wait to be recorded leaves `unknown` only the notes without an answer.
//!
//! One `write` to the operating system, not a SQLite transaction and not synced: a process
//! that dies keeps it (it is in the kernel's page cache), a machine that loses power may not,
//! which is why the boot is compared at start-up (see [`Outbox::park_interrupted`]). A
//! connection never waits for the delivery thread (busy with a synced claim, say) to send.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Cause, Outbox, OutboxError};
use crate::note::NoteState;

/// Where the connections write that a note is on its way.
pub(crate) struct HandedOver {
    file: Mutex<File>,
    path: PathBuf,
}

/// What the file says of one attempt of a note, its last line about it.
#[derive(Debug)]
pub(super) enum Mark {
    /// Its message started on its way: it may have arrived.
    OnItsWay,
    /// The server took it, with this reply ("server: reply", as recorded for a sent note).
    Sent(String),
    /// It did not arrive: the server refused it, or nothing was handed over.
    Back,
}

impl HandedOver {
    /// Notes that attempt `attempt` of note `note_id` is on its way.
    pub(crate) fn mark(&self, note_id: i64, attempt: u32) -> Result<(), String> {
        self.write(&format!("{note_id} {attempt}\n"))
    }

    /// Notes the server's answer to attempt `attempt` of note `note_id`, once it is known:
    /// `Some(reply)` when the server took the message, None when it did not arrive.
    pub(crate) fn answer(
        &self,
        note_id: i64,
        attempt: u32,
        sent: Option<&str>,
    ) -> Result<(), String> {
        self.write(&match sent {
            Some(reply) => format!(
                "{note_id} {attempt} sent {}\n",
                reply.replace(['\r', '\n'], " ")
            ),
            None => format!("{note_id} {attempt} back\n"),
        })
    }

    fn write(&self, line: &str) -> Result<(), String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// What the file says: by (note, attempt), its last mark; or why it cannot be trusted.
pub(super) type Marks = Result<HashMap<(i64, u32), Mark>, String>;

/// One line of the file.
fn parse_mark(line: &str) -> Option<((i64, u32), Mark)> {
    let mut words = line.splitn(4, ' ');
    let id = words.next()?.parse().ok()?;
    let attempt = words.next()?.parse().ok()?;
    let mark = match (words.next(), words.next()) {
        (None, None) => Mark::OnItsWay,
        (Some("sent"), Some(reply)) => Mark::Sent(reply.to_string()),
        (Some("back"), None) => Mark::Back,
        _ => return None,
    };
    Some(((id, attempt), mark))
}

impl Outbox {
    fn handed_path(&self) -> PathBuf {
        PathBuf::from(format!("{}-handed", self.path))
    }

    fn file_err(&self, what: String) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            source: Cause::File(what),
        }
    }

    /// Opens the file for a delivery pass. When no note is `sending`, what it holds is about
    /// notes long settled, and it starts empty.
    pub(crate) fn handed_over(&self) -> Result<HandedOver, OutboxError> {
        let path = self.handed_path();
        let sending: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM notes WHERE state = ?1)")
            .and_then(|mut q| q.query_row([NoteState::Sending], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        if !sending {
            self.clear_handed()?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                self.file_err(format!(
                    "cannot open {}: {e}; rekindle writes there which notes are on their way, and sends nothing without it",
                    path.display()
                ))
            })?;
        Ok(HandedOver {
            file: Mutex::new(file),
            path,
        })
    }

    /// What the file says of the attempts in `of` (nothing when it is missing), read line by
    /// line: a long delivery pass leaves a line or two for every note it sent, and only the
    /// notes left `sending` are kept.
    pub(super) fn read_handed(&self, of: &HashSet<(i64, u32)>) -> Marks {
        let path = self.handed_path();
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(cannot(e)),
        };
        let mut marks = HashMap::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(cannot)?;
            let (key, mark) = parse_mark(&line).ok_or_else(|| {
                format!(
                    "{}:{}: not a note's mark (\"note-id attempt\", then \"sent reply\" or \"back\"): {line:?}",
                    path.display(),
                    i + 1
                )
            })?;
            if of.contains(&key) {
                marks.insert(key, mark);
            }
        }
        Ok(marks)
    }

    /// Empties the file once the notes it speaks of are settled.
    pub(super) fn clear_handed(&self) -> Result<(), OutboxError> {
        let path = self.handed_path();
        match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file.set_len(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| self.file_err(format!("cannot empty {}: {e}", path.display())))
    }
}
