//! Reading the file's TOML into the raw config: every structural problem of a file that parses
//! (an unknown key, a wrong type) rather than the first, each at its place and in the user's
//! words.

use std::path::Path;

use super::raw::RawConfig;
use super::{Diagnostic, diag};

/// Turns a serde/TOML error into a diagnostic, with a suggestion for misspelt keys.
fn toml_error(path: &Path, source: &str, err: &toml::de::Error) -> Diagnostic {
    let message = err.message().trim_end_matches('.').trim().to_string();
    let message = match unknown_field(&message) {
        Some((field, expected)) => format!(
            "unknown key `{field}`{}; valid keys here: {}",
            diag::suggestion(&field, expected.iter().map(String::as_str)),
            expected.join(", ")
        ),
        None => in_words(&message),
    };
    match err.span() {
        Some(span) => Diagnostic::error_at(path, source, span, message),
        None => Diagnostic::error_in(path, message),
    }
}

/// Reads the file's TOML into the raw config, with every structural problem of a file that
/// parses at all (an unknown key, a wrong type) rather than the first: after each, the lines
/// at fault are blanked (every offset kept, so each place is still right) and the file read
/// again. A TOML syntax error stops at once: what follows it cannot be read.
pub(super) fn read_raw(path: &Path, source: &str) -> Result<RawConfig, Vec<Diagnostic>> {
    if let Err(err) = source.parse::<toml::Table>() {
        return Err(vec![toml_error(path, source, &err)]);
    }
    let mut text = source.to_string();
    // (where, the problem), to be told in the file's order.
    let mut problems: Vec<(usize, Diagnostic)> = Vec::new();
    let in_order = |mut problems: Vec<(usize, Diagnostic)>| {
        problems.sort_by_key(|(at, _)| *at);
        problems.into_iter().map(|(_, d)| d).collect()
    };
    loop {
        match toml::from_str::<RawConfig>(&text) {
            Ok(raw) if problems.is_empty() => return Ok(raw),
            Ok(_) => return Err(in_order(problems)),
            Err(err) => {
                // A key required, and missing only because a line at fault was blanked, is no
                // news: stop with what was found.
                if !problems.is_empty() && err.message().starts_with("missing field") {
                    return Err(in_order(problems));
                }
                let at = err.span().map_or(usize::MAX, |s| s.start);
                problems.push((at, toml_error(path, source, &err)));
                let blanked = err.span().map(|span| blank(&text, span));
                match blanked {
                    Some(next) if next != text && problems.len() < 50 => text = next,
                    _ => return Err(in_order(problems)),
                }
            }
        }
    }
}

/// `text` with the lines `span` touches blanked (spaces, newlines kept); a table header's whole
/// table with it, so its keys are not read as the table's before.
fn blank(text: &str, span: std::ops::Range<usize>) -> String {
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let mut end = text[span.end.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i);
    if text[start..end].trim_start().starts_with('[') {
        // Up to the next header.
        let mut at = end;
        while at < text.len() {
            let next = text[at + 1..].find('\n').map_or(text.len(), |i| at + 1 + i);
            if text[at + 1..next].trim_start().starts_with('[') {
                break;
            }
            at = next;
        }
        end = at;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.extend(
        text[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' }),
    );
    out.push_str(&text[end..]);
    out
}

/// serde's type words in the user's: "u32" is "a whole number, like 25".
fn in_words(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_string();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number, like 25"
        }
        "f32" | "f64" => "a number, like 0.5",
        "a boolean" => "true or false",
        "a string" => "text in quotes, like \"30d\"",
        "a sequence" => "a list, like [\"complaint\", \"refund\"]",
        other => other,
    };
    format!("expected {expected}, found {found}")
}

/// Picks apart serde's "unknown field `x`, expected one of `a`, `b`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}
