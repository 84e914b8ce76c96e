//! Deliver: hand queued notes to a transport (a maildir for demos and dry runs, or SMTP) and
//! record the outcome in the outbox.
//!
//! The outbox is SQLite, so the delivery loop runs on a blocking thread and only the send itself
//! is awaited on the runtime. A note is marked `sending` (committed) before the transport sees
//! it, and `sent`, `retry` or `failed` right after.

pub(crate) mod maildir;
pub(crate) mod smtp;

use jiff::{SignedDuration, Timestamp};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::config::{Config, Delivery, Sender, Transport as TransportConfig};
use crate::outbox::{Outbox, OutboxError, StoredNote};

/// Why a transport could not deliver a note. The outbox decides what happens next from this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    /// Worth trying again later: a 4xx reply, a refused or broken connection, a timeout.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Never retry: a 5xx reply (the server's text is kept), or a message the server can never take.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A configured transport.
pub(crate) enum Transport {
    /// Files in a maildir.
    Maildir(maildir::Maildir),
    /// An SMTP server.
    Smtp(smtp::SmtpTransport),
}

impl Transport {
    /// Builds the transport the config asks for (reads the SMTP password, if any). Must run
    /// inside a tokio runtime: the SMTP connection pool lives there.
    pub(crate) fn from_config(config: &Config) -> Result<Transport, String> {
        match &config.transport {
            TransportConfig::Maildir { dir } => {
                Ok(Transport::Maildir(maildir::Maildir::new(dir.clone())))
            }
            TransportConfig::Smtp(smtp) => smtp::SmtpTransport::new(smtp, config.base_dir())
                .map(Transport::Smtp)
                .map_err(|e| e.to_string()),
        }
    }

    /// Where notes go, for logs.
    pub(crate) fn label(&self) -> String {
        match self {
            Transport::Maildir(m) => format!("maildir {}", m.dir().display()),
            Transport::Smtp(s) => s.label().to_string(),
        }
    }

    async fn send(&self, message: &Message, message_id: &str) -> Result<String, SendError> {
        match self {
            Transport::Maildir(m) => m.deliver(message, message_id),
            Transport::Smtp(s) => s.send(message).await,
        }
    }
}

/// The Message-ID of a note: derived from its idempotency key, so the same note always has the
/// same id and a receiving system can drop a duplicate too.
pub(crate) fn message_id(rule: &str, customer: &str, occasion: &str, sender: &Sender) -> String {
    let mut hash = Sha256::new();
    for part in [rule, customer, occasion] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.rekindle@{}>", sender.email.domain())
}

/// Builds the email for a stored note.
pub(crate) fn build_message(
    note: &StoredNote,
    sender: &Sender,
    now: Timestamp,
) -> Result<Message, String> {
    let to_address = note
        .recipient
        .parse()
        .map_err(|e| format!("invalid recipient {:?}: {e}", note.recipient))?;
    let to = Mailbox::new(note.display_name.clone(), to_address);
    let from = Mailbox::new(Some(sender.name.clone()), sender.email.clone());
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(note.subject.clone())
        .message_id(Some(note.message_id.clone()))
        .date(
            std::time::SystemTime::try_from(now).unwrap_or_else(|_| std::time::SystemTime::now()),
        );
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(Mailbox::new(Some(sender.name.clone()), reply_to.clone()));
    }
    let mut unsubscribe = Vec::new();
    if let Some(mailto) = &sender.unsubscribe_mailto {
        unsubscribe.push(format!("<mailto:{mailto}?subject=unsubscribe>"));
    }
    let link = sender.unsubscribe_link(&note.customer_id);
    if let Some(link) = &link {
        unsubscribe.insert(0, format!("<{link}>"));
    }
    if !unsubscribe.is_empty() {
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe");
        builder = builder.raw_header(HeaderValue::new(name, unsubscribe.join(", ")));
    }
    if link.is_some() {
        // RFC 8058: mail clients may unsubscribe with one POST to the https link.
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
        builder = builder.raw_header(HeaderValue::new(name, "List-Unsubscribe=One-Click".into()));
    }
    let result = match &note.body_html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            note.body_text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(note.body_text.clone())),
    };
    result.map_err(|e| e.to_string())
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliveryReport {
    /// Notes accepted by the transport.
    pub sent: u64,
    /// Notes that will be tried again.
    pub retried: u64,
    /// Notes that failed for good.
    pub failed: u64,
}

/// Delivers every note due at the time `clock` gives, one at a time, until none is due or
/// `keep_going` says stop. Runs on a blocking thread: `handle` runs the sends.
pub(crate) fn deliver_due(
    outbox: &Outbox,
    transport: &Transport,
    config: &Config,
    handle: &tokio::runtime::Handle,
    clock: &dyn Fn() -> Timestamp,
    keep_going: &dyn Fn() -> bool,
) -> Result<DeliveryReport, OutboxError> {
    let mut report = DeliveryReport::default();
    let server = transport.label();
    while keep_going() {
        let Some(note) = outbox.claim_next(clock())? else {
            break;
        };
        let outcome = match build_message(&note, &config.sender, clock()) {
            Ok(message) => handle.block_on(transport.send(&message, &note.message_id)),
            Err(why) => Err(SendError::Permanent(why)),
        };
        let now = clock();
        match outcome {
            Ok(reply) => {
                outbox.transition(
                    note.id,
                    "sent",
                    now,
                    Some(&format!("{server}: {reply}")),
                    None,
                )?;
                info!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, server = %server, reply = %reply, "note sent");
                report.sent += 1;
            }
            Err(SendError::Transient(why))
                if note.attempts < config.delivery.max_attempts
                    && now.as_second() - note.created_at < config.delivery.max_age.as_secs() =>
            {
                let due = now + retry_delay(&config.delivery, note.attempts);
                outbox.transition(note.id, "retry", now, Some(&why), Some(due))?;
                warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, server = %server, attempt = note.attempts, retry_at = %due, reply = %why, "note will be retried");
                report.retried += 1;
            }
            Err(err) => {
                let why = match err {
                    SendError::Transient(why) => format!(
                        "gave up after {} attempt(s) over {}: {why}",
                        note.attempts,
                        humantime::format_duration(std::time::Duration::from_secs(
                            (now.as_second() - note.created_at).max(0) as u64
                        ))
                    ),
                    permanent => permanent.to_string(),
                };
                outbox.transition(note.id, "failed", now, Some(&why), None)?;
                error!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, server = %server, attempts = note.attempts, reply = %why, "note failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Exponential backoff with jitter: base × 2^(attempt-1), at most `retry_max`, ±25 %.
fn retry_delay(delivery: &Delivery, attempt: u32) -> SignedDuration {
    let base = delivery.retry_base.as_secs_f64();
    let exp = base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(delivery.retry_max.as_secs_f64());
    let jitter = 0.75 + fastrand::f64() * 0.5;
    SignedDuration::from_secs_f64((capped * jitter).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let d = Delivery {
            retry_base: SignedDuration::from_secs(60),
            retry_max: SignedDuration::from_secs(3600),
            max_attempts: 10,
            max_age: SignedDuration::from_hours(72),
            poll: SignedDuration::from_secs(5),
        };
        let first = retry_delay(&d, 1).as_secs();
        assert!((45..=75).contains(&first), "{first}");
        let third = retry_delay(&d, 3).as_secs();
        assert!((180..=300).contains(&third), "{third}");
        let late = retry_delay(&d, 20).as_secs();
        assert!((2700..=4500).contains(&late), "{late}");
    }
}
