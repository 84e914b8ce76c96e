//! Finding things in message text: rekindle's Message-IDs, addresses, VERP tokens, SMTP status
//! codes, and the `Name: value` field blocks of delivery and feedback reports.
//!
//! Everything here works on text that may be hostile: no indexing that can panic, no regular
//! expressions, and the callers cap how much text they hand in.

/// How much of any one part is searched for ids, codes and addresses: a real bounce or reply
/// puts what matters near its start, and a 30 MB attachment must not be scanned whole.
pub(crate) const SCAN_LIMIT: usize = 256 * 1024;

/// The suffix of the local part of every rekindle Message-ID, before the `@`.
const REKINDLE_MARK: &[u8] = b".rekindle@";

/// At most this many ids are collected from one message: a note has one, and a hostile message
/// that repeats ids ten thousand times gets no further.
const MAX_IDS: usize = 16;

/// The longest prefix of `text` that is at most `limit` bytes and ends on a character boundary.
pub(crate) fn capped(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Whether `text` is exactly 32 hexadecimal digits (either case): a VERP token.
pub(crate) fn is_hex32(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `byte` may appear in a domain name (letters, digits, `-`, `.`).
fn is_domain_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.'
}

/// Adds `id` to `ids` unless it is already there or the list is full.
fn push_unique(ids: &mut Vec<String>, id: String) {
    if ids.len() < MAX_IDS && !ids.contains(&id) {
        ids.push(id);
    }
}

/// Every rekindle Message-ID in `text`, normalised to `<hex.rekindle@domain>` with the domain in
/// lowercase, added to `ids`. Angle brackets are not required: ids turn up bare in References
/// values as parsed, in prose and in quoted headers. Only exactly 32 lowercase hex digits count,
/// the form rekindle writes; the domain is compared without regard to case.
pub(crate) fn rekindle_ids_in(text: &str, domain: &str, ids: &mut Vec<String>) {
    let bytes = text.as_bytes();
    let domain = domain.as_bytes();
    let mut from = 0;
    while let Some(found) = find_ignore_case(bytes, REKINDLE_MARK, from) {
        from = found + REKINDLE_MARK.len();
        if let Some(hex) = hex_before(bytes, found)
            && domain_after(bytes, from, domain)
        {
            let domain = String::from_utf8_lossy(domain).to_ascii_lowercase();
            push_unique(ids, format!("<{hex}.rekindle@{domain}>"));
        }
    }
}

/// The 32 lowercase hex digits that end at `end`, when no other hex digit or local-part
/// character comes right before them.
fn hex_before(bytes: &[u8], end: usize) -> Option<&str> {
    let start = end.checked_sub(32)?;
    let hex = bytes.get(start..end)?;
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let before = start.checked_sub(1).and_then(|i| bytes.get(i));
    if before.is_some_and(|&b| b.is_ascii_alphanumeric() || b"._-+=".contains(&b)) {
        return None;
    }
    std::str::from_utf8(hex).ok()
}

/// Whether `domain` follows at `at`, and then no further domain character (a `.` ending a
/// sentence is allowed).
fn domain_after(bytes: &[u8], at: usize, domain: &[u8]) -> bool {
    let Some(candidate) = bytes.get(at..at + domain.len()) else {
        return false;
    };
    if !candidate.eq_ignore_ascii_case(domain) {
        return false;
    }
    let rest = bytes.get(at + domain.len()..).unwrap_or_default();
    match rest {
        [] => true,
        [b'.', next, ..] => !is_domain_byte(*next),
        [b'.'] => true,
        [next, ..] => !is_domain_byte(*next),
    }
}

/// The first position at or after `from` where `needle` occurs in `hay`, ignoring ASCII case.
pub(crate) fn find_ignore_case(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = needle.first()?.to_ascii_lowercase();
    let mut at = from;
    while at + needle.len() <= hay.len() {
        let rest = hay.get(at..)?;
        let offset = rest.iter().position(|b| b.to_ascii_lowercase() == first)?;
        at += offset;
        if hay
            .get(at..at + needle.len())
            .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Whether `text` contains `needle` (given in lowercase), ignoring ASCII case.
pub(crate) fn contains_ignore_case(text: &str, needle: &str) -> bool {
    find_ignore_case(text.as_bytes(), needle.as_bytes(), 0).is_some()
}

/// The mail address in a header or report value, in lowercase: the inside of the first `<…>`
/// holding an `@`, else the first word with an `@` ("rfc822; ann@example.com" and
/// "Ann <ann@example.com>" both give `ann@example.com`).
pub(crate) fn address_in(value: &str) -> Option<String> {
    let value = value.rsplit_once(';').map_or(value, |(kind, rest)| {
        // "rfc822; addr" and "utf-8; addr" name the address type first; a ';' later in an
        // address's display text is not such a prefix.
        if kind.len() <= 12 && !kind.contains(['@', '<']) {
            rest
        } else {
            value
        }
    });
    let bracketed = value.split('<').skip(1).find_map(|piece| {
        let inner = piece.split('>').next()?;
        inner.contains('@').then_some(inner)
    });
    let candidate = bracketed.or_else(|| {
        value
            .split(|c: char| c.is_whitespace() || c == ',')
            .find(|word| word.contains('@'))
    })?;
    normalise_address(candidate)
}

/// `candidate` as a plain lowercase address, when it looks like one: one `@`, something on both
/// sides, no spaces, no more than 254 bytes.
fn normalise_address(candidate: &str) -> Option<String> {
    let trimmed = candidate.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '"' | '\'' | '(' | ')' | ',' | ';' | ':' | '[' | ']'
            )
    });
    let (local, domain) = trimmed.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.');
    let plausible = !local.is_empty()
        && !domain.is_empty()
        && !local.contains('@')
        && trimmed.len() <= 254
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
    plausible.then(|| format!("{local}@{domain}").to_lowercase())
}

/// Every address in `text`, in order (at most `limit`): words with an `@` that look like
/// addresses.
pub(crate) fn addresses_in(text: &str, limit: usize) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '<' | '>' | '(' | ')' | '"'))
        .filter(|word| word.contains('@'))
        .filter_map(normalise_address)
        .take(limit)
        .collect()
}

/// The VERP token of `address` when it is `local+TOKEN@domain` of the return path: TOKEN is 32
/// hex digits, given back in lowercase.
pub(crate) fn verp_token(address: &str, return_path: (&str, &str)) -> Option<String> {
    let (local, domain) = return_path;
    let (address_local, address_domain) = address.rsplit_once('@')?;
    if !address_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let token = address_local
        .get(..local.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(local))
        .and_then(|_| address_local.get(local.len()..))
        .and_then(|rest| rest.strip_prefix('+'))?;
    is_hex32(token).then(|| token.to_ascii_lowercase())
}

/// The first enhanced status code (RFC 3463: `5.1.1`) of class 4 or 5 in `text`, standing alone
/// (not part of an IP address or a version number).
pub(crate) fn enhanced_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|at| {
        let class = *bytes.get(at)?;
        if class != b'4' && class != b'5' {
            return None;
        }
        enhanced_code_at(bytes, at)
    })
}

/// The enhanced status code (any class) that begins at `at`, when one does.
pub(crate) fn enhanced_code_at(bytes: &[u8], at: usize) -> Option<String> {
    let before = at.checked_sub(1).and_then(|i| bytes.get(i));
    if before.is_some_and(|&b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if !matches!(bytes.get(at), Some(b'2' | b'4' | b'5')) || bytes.get(at + 1) != Some(&b'.') {
        return None;
    }
    let after_subject = digits(bytes, at + 2, 3)?;
    if bytes.get(after_subject) != Some(&b'.') {
        return None;
    }
    let end = digits(bytes, after_subject + 1, 3)?;
    let next = bytes.get(end);
    if next.is_some_and(|&b| {
        b.is_ascii_digit() || (b == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
    }) {
        return None;
    }
    std::str::from_utf8(bytes.get(at..end)?)
        .ok()
        .map(str::to_owned)
}

/// A run of 1 to `max` ASCII digits at `at`: the position after it.
fn digits(bytes: &[u8], at: usize, max: usize) -> Option<usize> {
    let len = bytes
        .get(at..)?
        .iter()
        .take(max + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    (1..=max).contains(&len).then_some(at + len)
}

/// The first basic SMTP reply code of class 4 or 5 (`550`, `452`) in `text`, as a word: at the
/// start or after a space, `;`, `(` or `#`, and followed by a space, `-` or the end. Its byte
/// position comes with it.
pub(crate) fn basic_code(text: &str) -> Option<(usize, u16)> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|at| {
        let head = bytes.get(at..at + 3)?;
        if !matches!(head.first(), Some(b'4' | b'5')) || !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        let after = bytes.get(at + 3);
        let starts = before.is_none_or(|&b| b.is_ascii_whitespace() || b";(#:".contains(&b));
        let ends = after.is_none_or(|&b| b == b' ' || b == b'-' || b == b'\r' || b == b'\n');
        let code = head.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        (starts && ends).then_some((at, code))
    })
}

/// One `Name: value` field of a report or a header block: the name in lowercase, the value
/// unfolded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// The field's name, lowercase.
    pub name: String,
    /// Its value, continuation lines joined with a space, trimmed.
    pub value: String,
}

/// The blank-line-separated groups of `Name: value` fields in `text` (a delivery-status or
/// feedback-report body, or a header block), folded lines joined. Lines that are not fields are
/// skipped; at most 1 000 groups of 1 000 fields are kept.
pub(crate) fn field_groups(text: &str) -> Vec<Vec<Field>> {
    let mut groups: Vec<Vec<Field>> = Vec::new();
    let mut current: Vec<Field> = Vec::new();
    for line in capped(text, SCAN_LIMIT).lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() && groups.len() < 1000 {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = current.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && !name.contains(char::is_whitespace)
            && current.len() < 1000
        {
            current.push(Field {
                name: name.to_ascii_lowercase(),
                value: value.trim().to_owned(),
            });
        }
    }
    if !current.is_empty() && groups.len() < 1000 {
        groups.push(current);
    }
    groups
}

/// The value of the first field called `name` (lowercase) in `fields`.
pub(crate) fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

/// A report field's value without its type prefix: `dns; mx.example` gives `mx.example`,
/// `smtp; 550 …` gives `550 …`.
pub(crate) fn without_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if kind.len() <= 16 && !kind.trim().contains(' ') => rest.trim(),
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rekindle id's hex part.
    const ID: &str = "5f2c8e1a9b3d4c7e8f0a1b2c3d4e5f60";

    #[test]
    fn finds_rekindle_ids_only() {
        let text = format!(
            "Message-ID: <{ID}.rekindle@Bakery.Example>\r\nRefs {ID}.rekindle@bakery.example. \
             x{ID}.rekindle@bakery.example <{}.rekindle@bakery.example> \
             <{ID}.rekindle@bakery.example.evil>",
            ID.to_uppercase()
        );
        let mut ids = Vec::new();
        rekindle_ids_in(&text, "bakery.example", &mut ids);
        assert_eq!(ids, vec![format!("<{ID}.rekindle@bakery.example>")]);
        let mut ids = Vec::new();
        rekindle_ids_in(
            &format!("<{ID}.rekindle@other.example>"),
            "bakery.example",
            &mut ids,
        );
        assert!(ids.is_empty());
    }

    #[test]
    fn reads_addresses() {
        assert_eq!(
            address_in("rfc822; Ann@Example.COM").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(
            address_in("\"Ann; B\" <ann@example.com>").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(address_in("no address here"), None);
        assert_eq!(address_in("<@>"), None);
    }

    #[test]
    fn reads_verp_tokens() {
        let rp = ("bounces", "bakery.example");
        let token = format!("bounces+{}@Bakery.example", ID.to_uppercase());
        assert_eq!(verp_token(&token, rp).as_deref(), Some(ID));
        assert_eq!(verp_token("bounces+abc@bakery.example", rp), None);
        assert_eq!(verp_token(&format!("other+{ID}@bakery.example"), rp), None);
        assert_eq!(verp_token(&format!("b+{ID}@bakery.example"), rp), None);
    }

    #[test]
    fn reads_status_codes() {
        assert_eq!(
            enhanced_code("550-5.1.1 The email").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code("host [192.0.2.25]: 452 4.2.2 full").as_deref(),
            Some("4.2.2")
        );
        assert_eq!(enhanced_code("version 10.5.4.3 and 5.1"), None);
        assert_eq!(enhanced_code("(#5.1.1)").as_deref(), Some("5.1.1"));
        assert_eq!(basic_code("smtp; 550 no such user"), Some((6, 550)));
        assert_eq!(basic_code("port 25 5500 x 4521"), None);
    }

    #[test]
    fn groups_fields() {
        let groups = field_groups(
            "Reporting-MTA: dns; mx\r\n\r\nAction: failed\r\nDiagnostic-Code: smtp; 550\r\n  no such user\r\n",
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(
            field(&groups[1], "diagnostic-code"),
            Some("smtp; 550 no such user")
        );
        assert_eq!(without_type("dns; mx.example"), "mx.example");
    }
}
