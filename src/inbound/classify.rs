//! What one message in the business's mailbox is: a bounce of a note, a spam complaint about
//! one, the customer's reply, an automatic reply, a request to unsubscribe, or nothing rekindle
//! sent. [`classify`] reads the raw bytes and never fails: what it cannot read is
//! [`Inbound::Unrelated`], with the reason.
//!
//! The order of the checks is the order of trust: a complaint report, a standard delivery-status
//! report (RFC 3464), a mail system's own bounce (Exim, qmail, others), an automatic reply, an
//! unsubscribe request, and only then a person's reply.

use mail_parser::{HeaderValue, Message, MessageParser, PartType};

use super::mime::{addresses, body_text, first_text, top_headers, value_text, values};
use super::scan::{rekindle_ids_in, verp_token};
use super::text::{excerpt, one_line};
use super::{legacy, reports};

/// What the mailbox's owner set up, as classification needs it (all lowercase).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mailbox<'a> {
    /// The unsubscribe_mailto address, if configured ("unsubscribe@bakery.example").
    pub unsubscribe_address: Option<&'a str>,
    /// The return path when set: bounces go to `local+TOKEN@domain`; (local, domain), e.g.
    /// ("bounces", "bakery.example").
    pub return_path: Option<(&'a str, &'a str)>,
    /// The domain of rekindle's own Message-IDs: rekindle's ids look like
    /// `<0123…(32 hex).rekindle@bakery.example>`.
    pub message_id_domain: &'a str,
}

/// The verdict on one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// A note could not be delivered.
    Bounce(Bounce),
    /// A recipient marked a note as spam (a feedback-loop report).
    Complaint(Complaint),
    /// A reply to a note, by the customer or by their automatic responder.
    Reply(Reply),
    /// Someone asked to receive no more notes.
    Unsubscribe(Unsubscribe),
    /// Nothing rekindle acts on; why, in one short line.
    Unrelated(String),
}

impl Inbound {
    /// The verdict's name for log lines and counts.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Inbound::Bounce(Bounce {
                severity: Severity::Hard,
                ..
            }) => "hard-bounce",
            Inbound::Bounce(Bounce {
                severity: Severity::Soft,
                ..
            }) => "soft-bounce",
            Inbound::Complaint(_) => "complaint",
            Inbound::Reply(Reply {
                automatic: true, ..
            }) => "auto-reply",
            Inbound::Reply(_) => "reply",
            Inbound::Unsubscribe(_) => "unsubscribe",
            Inbound::Unrelated(_) => "unrelated",
        }
    }
}

/// What names the note a message is about: rekindle Message-IDs found (normalised "<…>",
/// deduplicated, only ids of the form `<32 lowercase hex>.rekindle@<message_id_domain>`
/// compared case-insensitively on the domain), and the VERP token (32 hex) from the return
/// path, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Refs {
    /// rekindle's Message-IDs, `<hex.rekindle@domain>`, the most telling first.
    pub message_ids: Vec<String>,
    /// The VERP token, 32 lowercase hex digits.
    pub token: Option<String>,
}

impl Refs {
    /// Whether nothing names a note.
    pub(crate) fn is_empty(&self) -> bool {
        self.message_ids.is_empty() && self.token.is_none()
    }
}

/// How final a bounce is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// The address will not work (no such user, no such domain, refused).
    Hard,
    /// It may work later (mailbox full, a temporary failure given up on).
    Soft,
}

/// A note that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounce {
    /// Hard or soft.
    pub severity: Severity,
    /// The enhanced status code, "5.1.1".
    pub status: Option<String>,
    /// The address that failed, lowercase.
    pub recipient: Option<String>,
    /// The server's text, one line, control characters removed, at most 300 characters.
    pub diagnostic: Option<String>,
    /// Which note bounced.
    pub refs: Refs,
    /// Who reported it: the Reporting-MTA, else the From address.
    pub reporter: Option<String>,
}

/// A spam complaint about a note, from a mailbox provider's feedback loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Complaint {
    /// The address that complained, lowercase.
    pub recipient: Option<String>,
    /// The report's Feedback-Type, lowercase ("abuse").
    pub feedback_type: String,
    /// Which note it was.
    pub refs: Refs,
}

/// A reply to a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Who replied, lowercase.
    pub from: String,
    /// When (the Date header), in Unix seconds.
    pub date: Option<i64>,
    /// The notes it answers, from In-Reply-To and References.
    pub refs: Refs,
    /// The replier's new words, one line, at most 280 characters.
    pub excerpt: String,
    /// Whether a program sent it (an out-of-office reply, a ticket system), not a person.
    pub automatic: bool,
    /// The reply's own Message-ID, "<…>".
    pub message_id: Option<String>,
}

/// A request to receive no more notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsubscribe {
    /// Who asked, lowercase.
    pub from: String,
    /// When (the Date header), in Unix seconds.
    pub date: Option<i64>,
}

/// What the checks read once from the top headers.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// The From address, lowercase.
    pub from: Option<String>,
    /// The decoded Subject, trimmed.
    pub subject: String,
    /// The Date, in Unix seconds.
    pub date: Option<i64>,
    /// A VERP token from To, Delivered-To, X-Original-To or Envelope-To.
    pub token: Option<String>,
    /// Sent by a mail system: From MAILER-DAEMON or postmaster, or an empty Return-Path.
    pub mail_system: bool,
    /// `Auto-Submitted` says a program sent it (any value but `no`).
    pub auto_submitted: bool,
    /// A header that marks an automatic reply (RFC 3834 and the common private ones).
    pub auto_headers: bool,
    /// `Precedence: bulk`, `junk` or `list`: not a person writing to the business.
    pub bulk: bool,
    /// The subject of an out-of-office or vacation reply.
    pub vacation_subject: bool,
}

/// The local parts that mail systems send their notices from.
const MAIL_SYSTEM_SENDERS: [&str; 5] = [
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mailerdaemon",
    "mailer_daemon",
];

/// How vacation and out-of-office replies' subjects begin, in lowercase.
const VACATION_SUBJECTS: [&str; 13] = [
    "out of office",
    "automatic reply:",
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "i am out of the office",
    "on vacation",
    "away from the office",
];

impl Facts {
    /// Reads the top headers of `message`.
    fn read(message: &Message<'_>, mailbox: &Mailbox<'_>) -> Facts {
        let headers = top_headers(message);
        let from = addresses(headers, "from").into_iter().next();
        let subject = first_text(headers, "subject").map_or_else(String::new, |s| one_line(&s));
        let auto_submitted = first_text(headers, "auto-submitted").is_some_and(|value| {
            let kind = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            !kind.is_empty() && kind != "no"
        });
        let precedence = first_text(headers, "precedence")
            .map(|p| p.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let flagged = |name: &str| {
            first_text(headers, name)
                .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false" | "0"))
        };
        let auto_headers = auto_submitted
            || precedence == "auto_reply"
            || flagged("x-autoreply")
            || flagged("x-autorespond")
            || flagged("x-ms-exchange-inbox-rules-loop");
        let sender_local = from
            .as_deref()
            .and_then(|a| a.split('@').next())
            .unwrap_or_default();
        let lower_subject = subject.to_lowercase();
        Facts {
            token: envelope_token(message, mailbox),
            mail_system: MAIL_SYSTEM_SENDERS.contains(&sender_local) || empty_return_path(message),
            date: date(message),
            from,
            vacation_subject: VACATION_SUBJECTS
                .iter()
                .any(|s| lower_subject.starts_with(s)),
            subject,
            auto_submitted,
            auto_headers,
            bulk: matches!(precedence.as_str(), "bulk" | "junk" | "list"),
        }
    }

    /// Whether a program, not a person, sent the message.
    fn automatic(&self) -> bool {
        self.auto_headers || self.vacation_subject || self.bulk || self.mail_system
    }
}

/// The message's Date in Unix seconds, when it is a real date.
fn date(message: &Message<'_>) -> Option<i64> {
    let date = values(top_headers(message), "date").find_map(HeaderValue::as_datetime)?;
    let plausible = (1970..=9999).contains(&date.year)
        && (1..=12).contains(&date.month)
        && (1..=31).contains(&date.day)
        && date.hour < 24
        && date.minute < 60
        && date.second <= 60;
    plausible.then(|| date.to_timestamp())
}

/// Whether the Return-Path is empty (`<>`) or names the mailer daemon: a mail system's notice.
fn empty_return_path(message: &Message<'_>) -> bool {
    values(top_headers(message), "return-path")
        .next()
        .is_some_and(|value| {
            let path = value_text(value);
            let path = path
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            path.is_empty() || path.eq_ignore_ascii_case("mailer-daemon")
        })
}

/// The VERP token of the return path the message was delivered to (To, Delivered-To,
/// X-Original-To or Envelope-To), when a return path is configured.
fn envelope_token(message: &Message<'_>, mailbox: &Mailbox<'_>) -> Option<String> {
    let return_path = mailbox.return_path?;
    let headers = top_headers(message);
    ["to", "delivered-to", "x-original-to", "envelope-to"]
        .iter()
        .flat_map(|name| addresses(headers, name))
        .find_map(|address| verp_token(&address, return_path))
}

/// A one-line reason for an [`Inbound::Unrelated`] verdict.
fn unrelated(why: &str) -> Inbound {
    Inbound::Unrelated(why.to_owned())
}

/// The message parsed, or `None`. mail-parser promises not to panic, but it has debug
/// assertions on malformed structure: a panic there must not take the daemon's task with it.
fn parse(raw: &[u8]) -> Option<Message<'_>> {
    let parser = MessageParser::default();
    std::panic::catch_unwind(|| parser.parse(raw))
        .ok()
        .flatten()
}

/// What the message `raw` is, for the mailbox `mailbox`.
pub(crate) fn classify(raw: &[u8], mailbox: &Mailbox<'_>) -> Inbound {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return unrelated("an empty message");
    }
    let Some(message) = parse(raw) else {
        return unrelated("not a mail message: no header could be read");
    };
    let verdict = if top_headers(&message).is_empty() {
        unrelated("not a mail message: no header could be read")
    } else {
        let facts = Facts::read(&message, mailbox);
        reports::complaint(&message, mailbox, &facts)
            .or_else(|| reports::delivery_status(&message, mailbox, &facts))
            .or_else(|| legacy::bounce(&message, mailbox, &facts))
            .unwrap_or_else(|| written(&message, mailbox, &facts))
    };
    drop_flat(message);
    verdict
}

/// Drops a parsed message one nested message at a time. Dropping it whole recurses once per
/// level of `message/rfc822` nesting, and a hostile megabyte can nest twenty thousand levels:
/// enough to overflow a worker thread's stack.
fn drop_flat(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if matches!(part.body, PartType::Message(_))
                && let PartType::Message(inner) = std::mem::take(&mut part.body)
            {
                pending.push(inner);
            }
        }
    }
}

/// The verdict on a message that is no report and no bounce: an automatic reply, an unsubscribe
/// request, a reply, or unrelated.
fn written(message: &Message<'_>, mailbox: &Mailbox<'_>, facts: &Facts) -> Inbound {
    let refs = Refs {
        message_ids: thread_ids(message, mailbox.message_id_domain),
        token: facts.token.clone(),
    };
    if facts.automatic() {
        if refs.message_ids.is_empty() {
            return unrelated(if facts.auto_headers || facts.vacation_subject {
                "an automatic reply that names no note"
            } else if facts.mail_system {
                "a mail system's notice that is no bounce and names no note"
            } else {
                "bulk or list mail that names no note"
            });
        }
        return reply(message, facts, refs, true);
    }
    if asks_to_unsubscribe(message, mailbox, facts) {
        return match &facts.from {
            Some(from) => Inbound::Unsubscribe(Unsubscribe {
                from: from.clone(),
                date: facts.date,
            }),
            None => unrelated("an unsubscribe request with no From address"),
        };
    }
    if refs.message_ids.is_empty() {
        return unrelated("names no note rekindle sent");
    }
    reply(message, facts, refs, false)
}

/// rekindle's Message-IDs in In-Reply-To, then References.
fn thread_ids(message: &Message<'_>, domain: &str) -> Vec<String> {
    let headers = top_headers(message);
    let mut ids = Vec::new();
    for name in ["in-reply-to", "references"] {
        for value in values(headers, name).take(16) {
            rekindle_ids_in(&value_text(value), domain, &mut ids);
        }
    }
    ids
}

/// Whether the message was sent to the unsubscribe address, or its subject is "unsubscribe".
fn asks_to_unsubscribe(message: &Message<'_>, mailbox: &Mailbox<'_>, facts: &Facts) -> bool {
    if facts.subject.trim().eq_ignore_ascii_case("unsubscribe") {
        return true;
    }
    let Some(address) = mailbox.unsubscribe_address else {
        return false;
    };
    let headers = top_headers(message);
    ["to", "cc", "delivered-to", "x-original-to", "envelope-to"]
        .iter()
        .flat_map(|name| addresses(headers, name))
        .any(|to| to.eq_ignore_ascii_case(address))
}

/// A reply naming `refs`, written by a person or (`automatic`) a program.
fn reply(message: &Message<'_>, facts: &Facts, refs: Refs, automatic: bool) -> Inbound {
    let Some(from) = facts.from.clone() else {
        return unrelated("a reply with no From address");
    };
    Inbound::Reply(Reply {
        from,
        date: facts.date,
        refs,
        excerpt: body_text(message)
            .map(|text| excerpt(&text))
            .unwrap_or_default(),
        automatic,
        message_id: own_message_id(message),
    })
}

/// The message's own Message-ID as `<…>`, when it has a sensible one.
fn own_message_id(message: &Message<'_>) -> Option<String> {
    let id = first_text(top_headers(message), "message-id")?;
    let id = one_line(&id);
    let id = id.trim_start_matches('<').trim_end_matches('>');
    let plausible = !id.is_empty() && id.len() <= 995 && !id.contains([' ', '<', '>']);
    plausible.then(|| format!("<{id}>"))
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
