//! Reading a parsed message without trusting it: headers by name, addresses, part types and
//! part text, each capped and none able to panic (mail-parser's own accessors index `parts[0]`,
//! so only messages it returned are handed to them).

use std::borrow::Cow;

use mail_parser::{Header, HeaderValue, Message, MessagePart, PartType};

use super::scan::{SCAN_LIMIT, address_in, capped};

/// At most this many parts of one message are looked at: a real bounce or reply has a handful,
/// a hostile one ten thousand.
pub(crate) const MAX_PARTS: usize = 500;

/// The header fields of a message's top part (none when it has no parts).
pub(crate) fn top_headers<'a>(message: &'a Message<'_>) -> &'a [Header<'a>] {
    message
        .parts
        .first()
        .map_or(&[], |part| part.headers.as_slice())
}

/// The values of every header called `name` (any case) among `headers`.
pub(crate) fn values<'a>(
    headers: &'a [Header<'a>],
    name: &'a str,
) -> impl Iterator<Item = &'a HeaderValue<'a>> + 'a {
    headers
        .iter()
        .filter(move |header| header.name.as_str().eq_ignore_ascii_case(name))
        .map(|header| &header.value)
}

/// A header value as plain text: text as it is, lists joined with spaces, addresses as
/// `name <address>`; dates and the like give nothing.
pub(crate) fn value_text(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(text) => capped(text, SCAN_LIMIT).to_owned(),
        HeaderValue::TextList(list) => list
            .iter()
            .take(64)
            .map(|item| capped(item, SCAN_LIMIT))
            .collect::<Vec<_>>()
            .join(" "),
        HeaderValue::Address(address) => address
            .iter()
            .take(64)
            .filter_map(|addr| addr.address.as_deref())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The first value of the header `name` as trimmed text, if the header is there.
pub(crate) fn first_text(headers: &[Header<'_>], name: &str) -> Option<String> {
    values(headers, name)
        .next()
        .map(|value| value_text(value).trim().to_owned())
}

/// Every address in the headers called `name`, lowercase: parsed address lists (To, Cc) and raw
/// ones (Delivered-To, X-Original-To) alike.
pub(crate) fn addresses(headers: &[Header<'_>], name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for value in values(headers, name).take(64) {
        match value {
            // mail-parser gives up on an address whose display name is not UTF-8 and keeps the
            // whole field as the name: the address is still in there.
            HeaderValue::Address(list) => found.extend(list.iter().take(64).filter_map(|addr| {
                let address = addr.address.as_deref().and_then(address_in);
                address.or_else(|| addr.name.as_deref().and_then(address_in))
            })),
            other => found.extend(value_text(other).split(',').take(64).filter_map(address_in)),
        }
    }
    found
}

/// A part's MIME type as lowercase (type, subtype): `("text", "plain")` when it says none.
pub(crate) fn mime_type(part: &MessagePart<'_>) -> (String, String) {
    let content_type = values(&part.headers, "content-type")
        .next()
        .and_then(HeaderValue::as_content_type);
    match content_type {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        ),
        None => ("text".to_owned(), "plain".to_owned()),
    }
}

/// Whether `part` is of type `ctype` and one of the `subtypes`.
pub(crate) fn is_type(part: &MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    let (t, s) = mime_type(part);
    t == ctype && subtypes.contains(&s.as_str())
}

/// A Content-Type parameter of the message's top part, lowercase (`report-type`).
pub(crate) fn top_type_parameter(message: &Message<'_>, name: &str) -> Option<String> {
    values(top_headers(message), "content-type")
        .next()
        .and_then(HeaderValue::as_content_type)
        .and_then(|ct| ct.attribute(name))
        .map(|value| value.trim().to_ascii_lowercase())
}

/// The decoded content of `part` as text, at most [`SCAN_LIMIT`] bytes of it: text parts as
/// decoded, other leaf parts read as UTF-8 (lossily), a nested message as its raw bytes.
pub(crate) fn part_text<'a>(part: &'a MessagePart<'_>) -> Option<Cow<'a, str>> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => {
            Some(Cow::Borrowed(capped(text, SCAN_LIMIT)))
        }
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            let bytes = bytes.get(..SCAN_LIMIT).unwrap_or(bytes);
            Some(String::from_utf8_lossy(bytes))
        }
        PartType::Message(message) => {
            // A nested message's offsets point into the raw bytes it keeps (for an unencoded
            // one, the whole outer message's).
            let raw = message.raw_message.as_ref();
            let (start, end) = message.parts.first().map_or((0, raw.len()), |p| {
                (p.offset_header as usize, p.offset_end as usize)
            });
            let end = if end > start { end } else { raw.len() };
            let raw = raw.get(start..end).unwrap_or(raw);
            Some(String::from_utf8_lossy(
                raw.get(..SCAN_LIMIT).unwrap_or(raw),
            ))
        }
        PartType::Multipart(_) => None,
    }
}

/// The leaf parts of the message's top level, at most [`MAX_PARTS`] (nested messages are not
/// entered: they are one part here).
pub(crate) fn leaf_parts<'a>(
    message: &'a Message<'a>,
) -> impl Iterator<Item = &'a MessagePart<'a>> {
    message
        .parts
        .iter()
        .take(MAX_PARTS)
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
}

/// The message's first text body (plain text, else HTML turned into text), capped: what a person
/// or a mail system wrote, before any attachment.
pub(crate) fn body_text(message: &Message<'_>) -> Option<String> {
    let plain = message.text_body.iter().take(MAX_PARTS).find_map(|&id| {
        match &message.parts.get(id as usize)?.body {
            PartType::Text(text) => Some(capped(text, SCAN_LIMIT).to_owned()),
            _ => None,
        }
    });
    plain.or_else(|| {
        message
            .html_body
            .iter()
            .chain(message.text_body.iter())
            .take(MAX_PARTS)
            .find_map(|&id| match &message.parts.get(id as usize)?.body {
                PartType::Html(html) => Some(super::text::html_to_text(html)),
                _ => None,
            })
    })
}
