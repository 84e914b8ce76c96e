//! Bounces that are no standard report: Exim's and qmail's plain-text forms, and any mail
//! system's notice whose subject says delivery failed. Only a mail system's message counts (From
//! MAILER-DAEMON or postmaster, an empty Return-Path, or Auto-Submitted): a customer who writes
//! "the parcel was undeliverable" is no bounce.

use mail_parser::{Message, PartType};

use super::classify::{Bounce, Facts, Inbound, Mailbox, Refs};
use super::mime::{addresses, body_text, first_text, leaf_parts, part_text, top_headers};
use super::reports::severity;
use super::scan::{
    address_in, addresses_in, basic_code, contains_ignore_case, enhanced_code, field, field_groups,
    find_ignore_case, rekindle_ids_in, verp_token,
};
use super::text::diagnostic;

/// What subjects of failure notices contain, in lowercase.
const FAILURE_SUBJECTS: [&str; 11] = [
    "undeliver",
    "delivery status notification (failure)",
    "mail delivery failed",
    "returned mail",
    "failure notice",
    "delivery failure",
    "delivery has failed",
    "could not be delivered",
    "non-delivery",
    "nondeliver",
    "not delivered",
];

/// The line before the copy of the message in Exim's bounce.
const COPY_MARK: &str = "------ This is a copy of the message";

/// What a plain-text bounce says, before it becomes a [`Bounce`].
#[derive(Debug, Default)]
struct Found<'a> {
    /// The address that failed.
    recipient: Option<String>,
    /// The mail system's account of the failure (codes and prose).
    explanation: String,
    /// The returned copy of the note, when the bounce includes one inline.
    copy: Option<&'a str>,
    /// rekindle ids found, for the forms with no inline copy to read them from.
    message_ids: Vec<String>,
    /// The Return-Path of a returned message attached whole, for its VERP token.
    return_path: Option<String>,
}

/// A mail system's own bounce: `Some` when the message is one (or a delay notice in one of the
/// known forms).
pub(crate) fn bounce(
    message: &Message<'_>,
    mailbox: &Mailbox<'_>,
    facts: &Facts,
) -> Option<Inbound> {
    if !(facts.mail_system || facts.auto_submitted) || facts.vacation_subject {
        return None;
    }
    let body = body_text(message).unwrap_or_default();
    // Exim and Gmail name the failed addresses in a header of their own.
    let failed_header = addresses(top_headers(message), "x-failed-recipients")
        .into_iter()
        .next();
    let mut found = match exim(&body).or_else(|| qmail(&body)) {
        Some(Ok(found)) => found,
        Some(Err(why)) => return Some(Inbound::Unrelated(why.to_owned())),
        None => {
            let subject = facts.subject.to_lowercase();
            if !FAILURE_SUBJECTS.iter().any(|s| subject.contains(s)) {
                return None;
            }
            let mut found = generic(message, &body, mailbox, facts);
            // The header is the mail system's own word; the address found in prose a guess.
            found.recipient = failed_header.clone().or(found.recipient);
            found
        }
    };
    found.recipient = found.recipient.or(failed_header);
    Some(Inbound::Bounce(into_bounce(found, mailbox, facts)))
}

/// The [`Bounce`] a plain-text bounce describes.
fn into_bounce(found: Found<'_>, mailbox: &Mailbox<'_>, facts: &Facts) -> Bounce {
    let status = enhanced_code(&found.explanation);
    // The server's words start at its reply code; what comes before is the mail system's.
    let server_text = basic_code(&found.explanation)
        .and_then(|(at, _)| found.explanation.get(at..))
        .unwrap_or(&found.explanation);
    let copy_fields = found
        .copy
        .map(field_groups)
        .and_then(|groups| groups.into_iter().next());
    let mut message_ids = Vec::new();
    if let Some(id) = copy_fields.as_deref().and_then(|f| field(f, "message-id")) {
        rekindle_ids_in(id, mailbox.message_id_domain, &mut message_ids);
        message_ids.truncate(1);
    }
    for id in found.message_ids {
        if !message_ids.contains(&id) {
            message_ids.push(id);
        }
    }
    let copy_return_path = copy_fields
        .as_deref()
        .and_then(|f| field(f, "return-path"))
        .or(found.return_path.as_deref());
    let token = facts.token.clone().or_else(|| {
        let return_path = mailbox.return_path?;
        verp_token(&address_in(copy_return_path?)?, return_path)
    });
    Bounce {
        severity: severity(status.as_deref(), Some(&found.explanation)),
        status,
        recipient: found.recipient,
        diagnostic: diagnostic(server_text),
        refs: Refs { message_ids, token },
        reporter: facts.from.clone(),
    }
}

/// The text after the line containing `marker` (case ignored), if it is there.
fn after_line<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let at = find_ignore_case(text.as_bytes(), marker.as_bytes(), 0)?;
    let rest = text.get(at..)?;
    Some(rest.split_once('\n').map_or("", |(_, after)| after))
}

/// The lines of `text` up to the first blank line, skipping blank lines before them.
fn paragraph(text: &str) -> Vec<&str> {
    text.lines()
        .map(|line| line.trim_end_matches('\r'))
        .skip_while(|line| line.trim().is_empty())
        .take_while(|line| !line.trim().is_empty())
        .take(50)
        .collect()
}

/// Exim's bounce ("This message was created automatically by mail delivery software."): the
/// first failed address and its error from the list after "The following address(es) failed:",
/// and the copy after "------ This is a copy of the message". A delay warning in the same form
/// is `Err`.
fn exim(body: &str) -> Option<Result<Found<'_>, &'static str>> {
    if !contains_ignore_case(body, "created automatically by mail delivery software") {
        return None;
    }
    // Only Exim's own words count, not those of the copy it returns.
    let own_words = find_ignore_case(body.as_bytes(), COPY_MARK.as_bytes(), 0)
        .and_then(|at| body.get(..at))
        .unwrap_or(body);
    if contains_ignore_case(own_words, "has not yet been delivered") {
        return Some(Err("a delay notice, not a bounce"));
    }
    let list = after_line(body, "address(es) failed:")
        .or_else(|| after_line(body, "could not be delivered to one or more"))?;
    let lines = paragraph(list);
    let (first, rest) = lines.split_first()?;
    Some(Ok(Found {
        recipient: address_in(first),
        explanation: rest.join("\n"),
        copy: after_line(body, COPY_MARK),
        message_ids: Vec::new(),
        return_path: None,
    }))
}

/// qmail's bounce ("Hi. This is the qmail-send program"): the first `<address>:` and the reason
/// below it, and the copy after "--- Below this line is a copy of the message."
fn qmail(body: &str) -> Option<Result<Found<'_>, &'static str>> {
    if !contains_ignore_case(body, "this is the qmail-send program") {
        return None;
    }
    let list = after_line(body, "able to deliver your message").unwrap_or(body);
    let mut lines = list.lines().map(|line| line.trim_end_matches('\r'));
    let recipient_line = lines.find(|line| {
        let line = line.trim();
        line.starts_with('<') && line.ends_with(">:")
    })?;
    let reason: Vec<&str> = lines
        .take_while(|line| !line.trim().is_empty() && !line.starts_with("---"))
        .take(50)
        .collect();
    Some(Ok(Found {
        recipient: address_in(recipient_line),
        explanation: reason.join("\n"),
        copy: after_line(body, "--- Below this line is a copy of the message"),
        message_ids: Vec::new(),
        return_path: None,
    }))
}

/// Any other mail system's failure notice: rekindle's ids wherever they appear, the status code
/// and the line that carries it, and the first address that is not the business's or the
/// mail system's.
fn generic<'a>(
    message: &Message<'_>,
    body: &'a str,
    mailbox: &Mailbox<'_>,
    facts: &Facts,
) -> Found<'a> {
    let domain = mailbox.message_id_domain;
    let mut message_ids = Vec::new();
    let mut return_path = None;
    // A returned message's own Message-ID is the best witness; then any id anywhere.
    for part in leaf_parts(message) {
        if let PartType::Message(inner) = &part.body {
            let headers = top_headers(inner);
            if let Some(id) = first_text(headers, "message-id") {
                rekindle_ids_in(&id, domain, &mut message_ids);
            }
            return_path = return_path.or_else(|| first_text(headers, "return-path"));
        }
    }
    rekindle_ids_in(body, domain, &mut message_ids);
    for part in leaf_parts(message) {
        if let Some(text) = part_text(part) {
            rekindle_ids_in(&text, domain, &mut message_ids);
        }
    }
    Found {
        recipient: failed_address(body, mailbox, facts),
        explanation: failure_line(body).unwrap_or_default().to_owned(),
        copy: None,
        message_ids,
        return_path,
    }
}

/// The line of `body` that carries the first status or reply code, else `None`.
fn failure_line(body: &str) -> Option<&str> {
    let lines = || body.lines().take(500);
    lines()
        .find(|line| enhanced_code(line).is_some())
        .or_else(|| lines().find(|line| basic_code(line).is_some()))
}

/// The first address in `body` that is neither the business's own (rekindle's domain or the
/// return path's) nor the mail system's.
fn failed_address(body: &str, mailbox: &Mailbox<'_>, facts: &Facts) -> Option<String> {
    let own_domains = [
        Some(mailbox.message_id_domain),
        mailbox.return_path.map(|(_, d)| d),
    ];
    addresses_in(body, 200).into_iter().find(|address| {
        let (local, domain) = address.rsplit_once('@').unwrap_or_default();
        let own = own_domains
            .iter()
            .flatten()
            .any(|d| d.eq_ignore_ascii_case(domain));
        let system = ["mailer-daemon", "postmaster"].contains(&local);
        !own && !system && facts.from.as_deref() != Some(address.as_str())
    })
}
