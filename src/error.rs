//! The top-level error: every cause kept (its source chain is printed), and the exit code it
//! means.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compose::MessageError;
use crate::config::Diagnostic;
use crate::config::smtp::SmtpSetupError;
use crate::decide::Skip;
use crate::deliver::LockError;
use crate::evaluate::EvaluateError;
use crate::log::LogError;
use crate::outbox::OutboxError;

/// EX_CONFIG from sysexits.h: systemd's `RestartPreventExitStatus=78` stops restart loops.
const EX_CONFIG: u8 = 78;
/// EX_USAGE from sysexits.h.
const EX_USAGE: u8 = 64;
/// EX_TEMPFAIL from sysexits.h: try again later.
const EX_TEMPFAIL: u8 = 75;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The configuration, a template or the log's schema is wrong: fix it and try again.
    #[error("{} problem(s) in the configuration", .0.iter().filter(|d| d.is_error()).count())]
    Config(Vec<Diagnostic>),
    /// The command line asked for something that does not exist.
    #[error("{0}")]
    Usage(String),
    /// The interaction log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Another program holds the log's lock (a backup, an import, a VACUUM): try again later.
    #[error("{0}: {reason}; try again later", reason = .0.passing().unwrap_or("it cannot be read for now"))]
    Unavailable(LogError),
    /// The state database could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// Another process delivers from the same state database.
    #[error(transparent)]
    Busy(#[from] LockError),
    /// The SMTP transport could not be built (its password).
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
    /// A note could not be made into an email.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// `preview`: the customer's row cannot be written to.
    #[error("customer {customer} would be skipped: {skip}")]
    Skipped {
        /// The customer's id.
        customer: String,
        /// Why.
        skip: Skip,
    },
    /// `preview`: the template failed for this customer.
    #[error("template {template}: {why}")]
    Template {
        /// The template's file name.
        template: String,
        /// What went wrong, and where.
        why: String,
    },
    /// A file or a system resource (a runtime, a signal handler) failed.
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// To what (empty when not a file).
        path: PathBuf,
        /// The system's answer.
        source: std::io::Error,
    },
    /// The cron scheduler could not start.
    #[error("cannot start the scheduler: {0}")]
    Scheduler(#[from] tokio_cron_scheduler::JobSchedulerError),
    /// A worker thread panicked or was cancelled (a bug).
    #[error("a worker thread failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// The daemon stopped before the notes in flight were recorded (the grace period ended, or
    /// a second stop signal came): they are parked as `unknown` at the next start.
    #[error(
        "stopped before the notes in flight were recorded; they are parked as `unknown` at the next start"
    )]
    Interrupted,
    /// The demo log could not be written.
    #[error("cannot write the demo log {}: {source}", .path.display())]
    DemoLog {
        /// Where.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The demo's own configuration could not be written (a bug).
    #[error("cannot write the demo configuration: {0}")]
    Demo(String),
}

impl From<EvaluateError> for Error {
    fn from(err: EvaluateError) -> Self {
        match err {
            EvaluateError::Log(err) => Error::Log(err),
            EvaluateError::Outbox(err) => Error::Outbox(err),
        }
    }
}

impl Error {
    /// A failed system call on `path` while doing `what`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::from(EX_CONFIG),
            Error::Usage(_) => ExitCode::from(EX_USAGE),
            Error::Busy(_) | Error::Unavailable(_) => ExitCode::from(EX_TEMPFAIL),
            _ => ExitCode::FAILURE,
        }
    }

    /// Prints the error to stderr (each cause is part of its message).
    pub(crate) fn report(&self) {
        match self {
            Error::Config(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d}");
                }
                eprintln!("rekindle: {self}; nothing was started");
            }
            other => eprintln!("rekindle: {other}"),
        }
    }
}
