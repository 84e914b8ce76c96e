//! The transports a note can leave by: a maildir (demos, dry runs) or SMTP servers in failover
//! order, and why a send failed.

use std::sync::Arc;

use lettre::Message;
use tracing::{debug, warn};

use super::{Handover, maildir, smtp};
use crate::config::smtp::SmtpSetupError;
use crate::config::{Config, Transport as TransportConfig};

/// Why a transport could not deliver a note. The outbox decides what happens next from this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    /// The server answered 4xx: worth trying again later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The server could not be reached: try the next server now, and later again.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The connection broke or timed out after it was made, before the message was handed
    /// over: nothing arrived. Try the next server now, and later again.
    #[error("connection lost before the message was handed over: {0}")]
    Lost(String),
    /// The connection broke while the message was being handed over, before the server's
    /// final reply: it may have arrived. Never resent automatically (the note becomes
    /// `unknown`, like one caught mid-send by a crash).
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
    /// The server refuses rekindle itself, whatever the note: its login (AUTH), TLS, the
    /// sender address at MAIL (a 5.7.x or 5.1.7/5.1.8 reply), or the whole connection at its
    /// greeting. Every note would fail alike, so delivery pauses and the note waits, its
    /// attempt not counted: try the next server now, and this one after a pause.
    #[error("the server will not take mail from rekindle as configured: {0}")]
    Account(String),
    /// Never retry: a 5xx reply (the server's text is kept), or a message the server can never take.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A configured transport.
pub(crate) enum Transport {
    /// Files in a maildir.
    Maildir(maildir::Maildir),
    /// SMTP servers, in failover order.
    Smtp(Vec<smtp::SmtpTransport>),
}

impl Transport {
    /// Builds the transport the config asks for (reads the SMTP passwords, if any). Must run
    /// inside a tokio runtime: the SMTP connection pools live there.
    pub(crate) fn from_config(config: &Config) -> Result<Transport, SmtpSetupError> {
        match &config.transport {
            TransportConfig::Maildir { dir } => {
                Ok(Transport::Maildir(maildir::Maildir::new(dir.clone())))
            }
            TransportConfig::Smtp(servers) => servers
                .iter()
                .enumerate()
                .map(|(i, s)| smtp::SmtpTransport::new(s, config.base_dir(), i + 1 < servers.len()))
                .collect::<Result<_, _>>()
                .map(Transport::Smtp),
        }
    }

    /// Sends one message. Returns which server (or maildir) had the last word, and the outcome.
    /// SMTP servers are tried in order while they cannot be reached. `handover` is told right
    /// before the message itself goes (and may forbid it: see [`Handover`]).
    pub(super) async fn send(
        &self,
        message: &Message,
        message_id: &str,
        handover: &Arc<Handover>,
    ) -> (String, Result<String, SendError>) {
        match self {
            Transport::Maildir(m) => (
                format!("maildir {}", m.dir().display()),
                match handover.go() {
                    Ok(()) => m.deliver(message, message_id),
                    Err(why) => Err(SendError::Lost(why)),
                },
            ),
            Transport::Smtp(servers) => {
                let (mut unreachable, mut refused) = (Vec::new(), Vec::new());
                for server in servers {
                    match server.send(message, handover).await {
                        Err(SendError::Unreachable(why)) => {
                            warn!(server = %server.label(), message_id, reason = %why, "server unreachable, trying the next one");
                            unreachable.push(format!("{}: {why}", server.label()));
                        }
                        Err(SendError::Lost(why)) if handover.withdrawn() => {
                            return (server.label().to_string(), Err(SendError::Lost(why)));
                        }
                        Err(SendError::Lost(why)) => {
                            warn!(server = %server.label(), message_id, reason = %why, "connection lost before the note was handed over, trying the next server");
                            unreachable.push(format!("{}: connection lost: {why}", server.label()));
                        }
                        Err(SendError::Account(why)) => {
                            debug!(server = %server.label(), message_id, reason = %why, "the server refuses rekindle, trying the next one");
                            refused.push(format!("{}: {why}", server.label()));
                        }
                        outcome => return (server.label().to_string(), outcome),
                    }
                }
                let label = servers
                    .last()
                    .map(|s| s.label().to_string())
                    .unwrap_or_default();
                let why = refused
                    .iter()
                    .chain(&unreachable)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ");
                // Refused by one server and unreachable at the others: pause, as a retry would
                // meet the same refusal.
                if refused.is_empty() {
                    (label, Err(SendError::Unreachable(why)))
                } else {
                    (label, Err(SendError::Account(why)))
                }
            }
        }
    }
}
