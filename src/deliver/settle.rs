//! A note's next state from the transport's answer: sent, retried with backoff, failed, or
//! unknown (never resent automatically).

use jiff::{SignedDuration, Timestamp};
use tracing::{debug, error, info, warn};

use super::{DeliveryReport, SendError};
use crate::config::Delivery;
use crate::note::NoteState;
use crate::outbox::{StoredNote, Update};

/// Decides a note's next state from the transport's answer, and logs it.
pub(super) fn settle(
    note: &StoredNote,
    server: &str,
    outcome: &Result<String, SendError>,
    delivery: &Delivery,
    now: Timestamp,
    report: &mut DeliveryReport,
) -> Update {
    let (id, rule, customer) = (note.id, &note.rule, &note.customer_id);
    let retryable = note.attempts < delivery.max_attempts
        && now.as_second() - note.created_at < delivery.max_age.as_secs();
    match outcome {
        Ok(reply) => {
            info!(note_id = id, rule = %rule, customer_id = %customer, server = %server, reply = %reply, "note sent");
            report.sent += 1;
            report.per_rule.entry(rule.clone()).or_default().0 += 1;
            Update::new(id, NoteState::Sent, sent_detail(server, reply), None)
        }
        Err(SendError::Transient(why) | SendError::Unreachable(why) | SendError::Lost(why))
            if retryable =>
        {
            let due = now + retry_delay(delivery, note.attempts);
            warn!(note_id = id, rule = %rule, customer_id = %customer, server = %server, attempt = note.attempts, retry_at = %due, reply = %why, "note will be retried");
            report.retried += 1;
            Update::new(id, NoteState::Retry, why.clone(), Some(due))
        }
        // The server will not take mail from rekindle: the note waits for the pause to end,
        // and this attempt does not count. The pause itself is logged once.
        Err(SendError::Account(why)) => {
            debug!(note_id = id, rule = %rule, customer_id = %customer, server = %server, reply = %why, "note back in the queue: delivery pauses");
            Update::new(id, NoteState::Queued, why.clone(), None)
        }
        Err(SendError::Ambiguous(why)) => {
            error!(note_id = id, rule = %rule, customer_id = %customer, server = %server, reply = %why, "note outcome unknown: it may or may not have arrived; resolve with `rekindle outbox resend` or `cancel`");
            report.unknown += 1;
            Update::new(id, NoteState::Unknown, why.clone(), None)
        }
        Err(err) => {
            let why = match err {
                SendError::Permanent(why) | SendError::Ambiguous(why) | SendError::Account(why) => {
                    why.clone()
                }
                SendError::Transient(why) | SendError::Unreachable(why) | SendError::Lost(why) => {
                    format!(
                        "gave up after {} attempt(s) over {}: {why}",
                        note.attempts,
                        humantime::format_duration(std::time::Duration::from_secs(
                            (now.as_second() - note.created_at).max(0) as u64
                        ))
                    )
                }
            };
            let refused = matches!(err, SendError::Permanent(_)) && refuses_the_address(&why);
            error!(note_id = id, rule = %rule, customer_id = %customer, server = %server, attempts = note.attempts, reply = %why, "note failed");
            if refused {
                warn!(note_id = id, customer_id = %customer, reply = %why, "the server says the address does not exist: it is suppressed, no rule writes to it again");
            }
            report.failed += 1;
            report.per_rule.entry(rule.clone()).or_default().1 += 1;
            let mut update = Update::new(id, NoteState::Failed, why, None);
            update.suppress_address = refused;
            update
        }
    }
}

/// What a sent note records of the server that took it and its reply.
pub(super) fn sent_detail(server: &str, reply: &str) -> String {
    format!("{server}: {reply}")
}

/// Whether a permanent refusal says the address itself is bad: an enhanced status 5.1.x
/// (RFC 3463: no such mailbox 5.1.1, no such domain 5.1.2, bad syntax 5.1.3, moved 5.1.6;
/// Microsoft's 5.1.10), not a refusal of this one message.
pub(crate) fn refuses_the_address(reply: &str) -> bool {
    reply
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|word| {
            let mut parts = word.split('.');
            matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some("5"), Some("1"), Some(detail), None)
                    if !detail.is_empty() && detail.len() <= 3 && detail.bytes().all(|b| b.is_ascii_digit())
            )
        })
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
    fn only_a_5_1_x_refusal_says_the_address_is_bad() {
        for bad in [
            "permanent error (550): 5.1.1 <ann@example.com>: Recipient address rejected: User unknown",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
            "550-5.1.2 The domain example.invalid does not exist",
        ] {
            assert!(refuses_the_address(bad), "{bad}");
        }
        for other in [
            "554 5.7.1 Message rejected as spam",
            "552 5.2.2 Mailbox full",
            "550 Relay not permitted",
            "550 15.1.1 not a code",
            "550 5.1 incomplete",
        ] {
            assert!(!refuses_the_address(other), "{other}");
        }
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let d = Delivery {
            retry_base: SignedDuration::from_secs(60),
            retry_max: SignedDuration::from_secs(3600),
            max_attempts: 10,
            max_age: SignedDuration::from_hours(72),
            poll: SignedDuration::from_secs(5),
            concurrency: 4,
            rate: 0.0,
            burst: 1,
        };
        let first = retry_delay(&d, 1).as_secs();
        assert!((45..=75).contains(&first), "{first}");
        let third = retry_delay(&d, 3).as_secs();
        assert!((180..=300).contains(&third), "{third}");
        let late = retry_delay(&d, 20).as_secs();
        assert!((2700..=4500).contains(&late), "{late}");
    }
}
