//! The standard reports: delivery status notifications (RFC 3464, `multipart/report;
//! report-type=delivery-status`) and spam complaints from feedback loops (ARF, RFC 5965,
//! `report-type=feedback-report`), read from their machine-readable parts.

use mail_parser::{Message, MessagePart, PartType};

use super::classify::{Bounce, Complaint, Facts, Inbound, Mailbox, Refs, Severity};
use super::mime::{
    addresses, first_text, is_type, leaf_parts, part_text, top_headers, top_type_parameter,
};
use super::scan::{
    Field, address_in, basic_code, contains_ignore_case, enhanced_code, enhanced_code_at, field,
    field_groups, is_hex32, rekindle_ids_in, verp_token, without_type,
};
use super::text::{diagnostic, one_line, shorten};

/// What a report says of the message it is about, from the copy it returns.
#[derive(Debug, Default)]
pub(crate) struct Original {
    /// The original's Message-ID, as written.
    pub message_id: Option<String>,
    /// Its first To address, lowercase.
    pub to: Option<String>,
    /// Its Return-Path, when the reporter kept it.
    pub return_path: Option<String>,
}

/// The original message a report returns, whole (`message/rfc822`) or as headers
/// (`text/rfc822-headers`, `message/rfc822-headers`): `None` when it returns neither.
pub(crate) fn original(message: &Message<'_>) -> Option<Original> {
    leaf_parts(message).find_map(|part| {
        if let PartType::Message(inner) = &part.body {
            let headers = top_headers(inner);
            return Some(Original {
                message_id: first_text(headers, "message-id"),
                to: addresses(headers, "to").into_iter().next(),
                return_path: first_text(headers, "return-path"),
            });
        }
        let headers_only = is_type(part, "text", &["rfc822-headers"])
            || is_type(
                part,
                "message",
                &["rfc822", "global", "rfc822-headers", "global-headers"],
            );
        headers_only.then(|| header_block(part)).flatten()
    })
}

/// The original's fields read from a part that holds its header block as text.
fn header_block(part: &MessagePart<'_>) -> Option<Original> {
    let text = part_text(part)?;
    let groups = field_groups(&text);
    let fields = groups.first()?;
    Some(Original {
        message_id: field(fields, "message-id").map(str::to_owned),
        to: field(fields, "to").and_then(address_in),
        return_path: field(fields, "return-path").map(str::to_owned),
    })
}

/// rekindle's id in the original's Message-ID (only there: an id elsewhere in the copy names
/// some other message).
fn original_ids(original: Option<&Original>, domain: &str) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(id) = original.and_then(|o| o.message_id.as_deref()) {
        rekindle_ids_in(id, domain, &mut ids);
        ids.truncate(1);
    }
    ids
}

/// The first VERP token among `candidates` (addresses or report values).
fn first_token<'a>(
    mailbox: &Mailbox<'_>,
    candidates: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<String> {
    let return_path = mailbox.return_path?;
    candidates
        .into_iter()
        .flatten()
        .filter_map(address_in)
        .find_map(|address| verp_token(&address, return_path))
}

/// A feedback-loop report: `Some` when the message is one (a complaint, or, for the kinds that
/// are no complaint, unrelated).
pub(crate) fn complaint(
    message: &Message<'_>,
    mailbox: &Mailbox<'_>,
    facts: &Facts,
) -> Option<Inbound> {
    let report_part = leaf_parts(message).find(|p| is_type(p, "message", &["feedback-report"]));
    let declared = top_type_parameter(message, "report-type").as_deref() == Some("feedback-report");
    if report_part.is_none() && !declared {
        return None;
    }
    let fields: Vec<Field> = report_part
        .and_then(part_text)
        .map(|text| field_groups(&text).into_iter().flatten().collect())
        .unwrap_or_default();
    let feedback_type = field(&fields, "feedback-type")
        .and_then(|value| value.split_whitespace().next())
        .map_or_else(
            || "unknown".to_owned(),
            |kind| shorten(&one_line(kind), 64).to_lowercase(),
        );
    // DMARC's failure reports and "not spam" reports use the same format but say nothing
    // against the recipient's wish for mail.
    match feedback_type.as_str() {
        "auth-failure" => {
            return Some(Inbound::Unrelated(
                "an authentication failure report, not a complaint".into(),
            ));
        }
        "not-spam" => {
            return Some(Inbound::Unrelated(
                "a not-spam report, not a complaint".into(),
            ));
        }
        _ => {}
    }
    let original = original(message);
    let original_to = original.as_ref().and_then(|o| o.to.clone());
    let token = facts.token.clone().or_else(|| {
        first_token(
            mailbox,
            [
                field(&fields, "original-mail-from"),
                original.as_ref().and_then(|o| o.return_path.as_deref()),
            ],
        )
    });
    Some(Inbound::Complaint(Complaint {
        recipient: field(&fields, "original-rcpt-to")
            .and_then(address_in)
            .or(original_to),
        feedback_type,
        refs: Refs {
            message_ids: original_ids(original.as_ref(), mailbox.message_id_domain),
            token,
        },
    }))
}

/// Whether a field group is about one recipient (rather than the whole message).
fn is_recipient_group(fields: &[Field]) -> bool {
    ["final-recipient", "original-recipient", "action", "status"]
        .iter()
        .any(|name| field(fields, name).is_some())
}

/// The first word of the recipient's Action, lowercase ("failed").
fn action(fields: &[Field]) -> Option<String> {
    field(fields, "action")
        .and_then(|value| value.split(|c: char| c.is_whitespace() || c == '(').next())
        .map(str::to_ascii_lowercase)
}

/// The recipient's Status as an enhanced code, else one read from its Diagnostic-Code.
fn status(fields: &[Field]) -> Option<String> {
    field(fields, "status")
        .and_then(|value| enhanced_code_at(value.trim().as_bytes(), 0))
        .or_else(|| field(fields, "diagnostic-code").and_then(enhanced_code))
}

/// Whether delivery to the recipient failed: Action `failed`, or no Action but an error code.
fn failed(fields: &[Field]) -> bool {
    match action(fields) {
        Some(action) => action == "failed",
        None => {
            let status = status(fields);
            let diag = field(fields, "diagnostic-code").unwrap_or_default();
            status.is_some_and(|s| s.starts_with(['4', '5'])) || basic_code(diag).is_some()
        }
    }
}

/// Why a report whose recipients did not fail is no bounce.
fn not_failure(fields: &[Field]) -> String {
    match action(fields).as_deref() {
        Some("delayed") => "a delay notice, not a bounce",
        Some("delivered") => "a delivery notice, not a bounce",
        Some("relayed") => "a relay notice, not a bounce",
        Some("expanded") => "an expansion notice, not a bounce",
        _ => "a delivery report that names no failure",
    }
    .to_owned()
}

/// Hard or soft, from the status code or, without one, the SMTP reply code in the server's
/// text. A full mailbox is soft whatever its code: it empties.
pub(crate) fn severity(status: Option<&str>, text: Option<&str>) -> Severity {
    let text = text.unwrap_or_default();
    let full = matches!(status, Some("5.2.2" | "4.2.2"))
        || [
            "mailbox full",
            "mailbox is full",
            "quota",
            "exceeded storage",
            "insufficient storage",
        ]
        .iter()
        .any(|phrase| contains_ignore_case(text, phrase));
    if full {
        return Severity::Soft;
    }
    let class = status
        .and_then(|s| s.chars().next())
        .or_else(|| basic_code(text).map(|(_, code)| if code < 500 { '4' } else { '5' }));
    match class {
        Some('4') => Severity::Soft,
        _ => Severity::Hard,
    }
}

/// A delivery status notification: `Some` when the message has a readable
/// `message/delivery-status` part with recipients (a bounce, or unrelated when nothing failed).
pub(crate) fn delivery_status(
    message: &Message<'_>,
    mailbox: &Mailbox<'_>,
    facts: &Facts,
) -> Option<Inbound> {
    let part = leaf_parts(message)
        .find(|p| is_type(p, "message", &["delivery-status", "global-delivery-status"]))?;
    let groups = field_groups(&part_text(part)?);
    let recipients: Vec<&[Field]> = groups
        .iter()
        .map(Vec::as_slice)
        .filter(|group| is_recipient_group(group))
        .collect();
    let first = recipients.first()?;
    let Some(failed) = recipients.iter().find(|group| failed(group)) else {
        return Some(Inbound::Unrelated(not_failure(first)));
    };
    let all: Vec<Field> = groups.iter().flatten().cloned().collect();
    Some(Inbound::Bounce(dsn_bounce(
        message, mailbox, facts, failed, &all,
    )))
}

/// The bounce a DSN reports for its failed recipient `fields`; `all` holds every field, the
/// per-message ones among them.
fn dsn_bounce(
    message: &Message<'_>,
    mailbox: &Mailbox<'_>,
    facts: &Facts,
    fields: &[Field],
    all: &[Field],
) -> Bounce {
    let status = status(fields);
    let diagnostic_code = field(fields, "diagnostic-code").map(without_type);
    let original = original(message);
    let envelope_id = field(all, "original-envelope-id").map(str::trim);
    let mut message_ids = original_ids(original.as_ref(), mailbox.message_id_domain);
    // Gmail states the original's Message-ID among the per-message fields too.
    if let Some(id) = field(all, "x-original-message-id").filter(|_| message_ids.is_empty()) {
        rekindle_ids_in(id, mailbox.message_id_domain, &mut message_ids);
        message_ids.truncate(1);
    }
    if let Some(envid) = envelope_id {
        rekindle_ids_in(envid, mailbox.message_id_domain, &mut message_ids);
    }
    let token = facts
        .token
        .clone()
        .or_else(|| {
            envelope_id
                .filter(|id| is_hex32(id))
                .map(str::to_ascii_lowercase)
        })
        .or_else(|| {
            first_token(
                mailbox,
                [original.as_ref().and_then(|o| o.return_path.as_deref())],
            )
        });
    // Original-Recipient is the address rekindle sent to, before any forwarding rewrote it.
    let recipient = ["original-recipient", "final-recipient"]
        .iter()
        .find_map(|name| field(fields, name).and_then(address_in))
        .or_else(|| original.as_ref().and_then(|o| o.to.clone()));
    let reporter = field(all, "reporting-mta")
        .map(|value| shorten(&one_line(without_type(value)), 255))
        .filter(|value| !value.is_empty())
        .or_else(|| facts.from.clone());
    Bounce {
        severity: severity(status.as_deref(), diagnostic_code),
        status,
        recipient,
        diagnostic: diagnostic_code.and_then(diagnostic),
        refs: Refs { message_ids, token },
        reporter,
    }
}
