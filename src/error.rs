//! The top-level error: what went wrong, printed for a human, and the exit code it means.

use std::process::ExitCode;

use crate::config::Diagnostic;

/// EX_CONFIG from sysexits.h: systemd's `RestartPreventExitStatus=78` stops restart loops.
const EX_CONFIG: u8 = 78;
/// EX_USAGE from sysexits.h.
const EX_USAGE: u8 = 64;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration, a template or the log's schema is wrong: fix it and try again.
    #[error("{} problem(s) in the configuration", .0.iter().filter(|d| d.is_error()).count())]
    Config(Vec<Diagnostic>),
    /// The command line asked for something that does not exist.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running (a database, a file, the network).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::from(EX_CONFIG),
            Error::Usage(_) => ExitCode::from(EX_USAGE),
            Error::Runtime(_) => ExitCode::FAILURE,
        }
    }

    /// Prints the error to stderr.
    pub fn report(&self) {
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

impl From<crate::evaluate::EvaluateError> for Error {
    fn from(err: crate::evaluate::EvaluateError) -> Self {
        Error::Runtime(err.to_string())
    }
}

impl From<crate::outbox::OutboxError> for Error {
    fn from(err: crate::outbox::OutboxError) -> Self {
        Error::Runtime(err.to_string())
    }
}

impl From<crate::log::LogError> for Error {
    fn from(err: crate::log::LogError) -> Self {
        Error::Runtime(err.to_string())
    }
}
