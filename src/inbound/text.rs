//! The words of a message as rekindle keeps them: one clean line, HTML turned into text, and a
//! reply's excerpt with the quoted note, the attribution and the signature taken away.

use super::scan::{capped, enhanced_code_at};

/// The longest excerpt of a reply, in characters, "…" included.
pub(crate) const EXCERPT_CHARS: usize = 280;

/// Unicode's bidirectional controls (embeddings, overrides, isolates and marks): in a customer's
/// words they could turn a log line or the operator's terminal around.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that carry no words and could do harm in a log: controls (line breaks included,
/// they are whitespace to [`one_line`]), bidi controls, zero-width spaces and the BOM.
fn is_invisible(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || is_bidi_control(c)
        || matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}')
}

/// `text` as one line: invisible and control characters removed, every run of whitespace (line
/// breaks included) one space, trimmed.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// `text` cut to at most `max` characters at a word boundary, "…" marking the cut (and counted).
/// Where the last word boundary would keep less than half, the cut falls inside a word.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(1);
    let end = text
        .char_indices()
        .nth(keep)
        .map_or(text.len(), |(at, _)| at);
    let head = text.get(..end).unwrap_or_default();
    let at_word = match head.rfind(' ') {
        Some(space) if space > end / 2 => head.get(..space).unwrap_or(head),
        _ => head,
    };
    format!("{}…", at_word.trim_end_matches([' ', ',', ';', ':']))
}

/// A server's diagnostic as rekindle keeps it: one clean line of at most 300 characters, the
/// reply code of a multi-line SMTP reply kept once.
pub(crate) fn diagnostic(text: &str) -> Option<String> {
    let line = without_continuation_codes(&one_line(capped(text, 4096)));
    (!line.is_empty()).then(|| shorten(&line, 300))
}

/// A multi-line SMTP reply made one line keeps the code of every line ("550-5.1.1 The email
/// 550-5.1.1 account … 550 5.1.1 …"): only the first is kept.
fn without_continuation_codes(line: &str) -> String {
    let mut words = line.split(' ');
    let Some(first) = words.next() else {
        return String::new();
    };
    let code = first.get(..3).filter(|code| {
        code.bytes().all(|b| b.is_ascii_digit())
            && matches!(first.as_bytes().get(3), None | Some(b'-'))
    });
    let Some(code) = code else {
        return line.to_owned();
    };
    let mut kept = vec![first];
    let mut after_bare_code = false;
    for word in words {
        let bare = word == code;
        if bare
            || word
                .strip_prefix(code)
                .is_some_and(|rest| rest.starts_with('-'))
        {
            after_bare_code = bare;
            continue;
        }
        let enhanced = enhanced_code_at(word.as_bytes(), 0).is_some_and(|c| c.len() == word.len());
        if !(after_bare_code && enhanced) {
            kept.push(word);
        }
        after_bare_code = false;
    }
    kept.join(" ")
}

/// Elements whose content is never text: dropped with everything inside.
const HIDDEN_ELEMENTS: [&str; 5] = ["head", "style", "script", "title", "template"];

/// Elements that start or end a line of text.
const BLOCK_ELEMENTS: [&str; 24] = [
    "address",
    "article",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
];

/// HTML turned into text, crudely: comments, `<head>`, `<style>` and `<script>` dropped, quoted
/// mail (`<blockquote>`) dropped, other tags dropped, block elements made line breaks, and the
/// common entities decoded. Only the first [`super::scan::SCAN_LIMIT`] bytes are read.
pub(crate) fn html_to_text(html: &str) -> String {
    let html = capped(html, super::scan::SCAN_LIMIT);
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut quoted = 0usize;
    let mut at = 0;
    while let Some(offset) = html.get(at..).and_then(|rest| rest.find('<')) {
        let tag_start = at + offset;
        if quoted == 0 {
            out.push_str(&decode_entities(
                html.get(at..tag_start).unwrap_or_default(),
            ));
        }
        let Some((name, closing, tag_end)) = read_tag(&lower, tag_start) else {
            // A lone "<" in prose ("a < b") is text, not a tag.
            if quoted == 0 {
                out.push('<');
            }
            at = tag_start + 1;
            continue;
        };
        at = tag_end;
        if HIDDEN_ELEMENTS.contains(&name) && !closing {
            at = skip_element(&lower, name, at);
            continue;
        }
        if name == "blockquote" {
            quoted = if closing {
                quoted.saturating_sub(1)
            } else {
                quoted + 1
            };
        }
        if BLOCK_ELEMENTS.contains(&name) && quoted == 0 {
            out.push('\n');
        }
    }
    if quoted == 0 {
        out.push_str(&decode_entities(html.get(at..).unwrap_or_default()));
    }
    out
}

/// The tag that starts at `start` (a `<`) in the lowercased HTML: its name, whether it is a
/// closing tag, and the position after its `>`. Comments and declarations have an empty name;
/// a `<` that opens no tag gives `None`.
fn read_tag(lower: &str, start: usize) -> Option<(&str, bool, usize)> {
    let rest = lower.get(start..)?;
    if rest.starts_with("<!--") {
        let end = rest.find("-->").map_or(lower.len(), |e| start + e + 3);
        return Some(("", false, end));
    }
    let inner = rest.get(1..).unwrap_or_default();
    if !inner.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?')) {
        return None;
    }
    let end = rest.find('>').map_or(lower.len(), |e| start + e + 1);
    let closing = inner.starts_with('/');
    let name_start = inner.trim_start_matches('/');
    let name_len = name_start
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name_start.len());
    Some((name_start.get(..name_len).unwrap_or_default(), closing, end))
}

/// The position after the closing tag of the hidden element `name` whose content starts at `at`
/// (the end of the text when it never closes).
fn skip_element(lower: &str, name: &str, at: usize) -> usize {
    let closing = format!("</{name}");
    lower
        .get(at..)
        .and_then(|rest| rest.find(&closing))
        .and_then(|found| {
            let tag = at + found;
            lower.get(tag..)?.find('>').map(|e| tag + e + 1)
        })
        .unwrap_or(lower.len())
}

/// `text` with HTML's character references decoded: the named ones mail uses and numeric ones;
/// anything else is left as written.
pub(crate) fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let after = rest.get(amp + 1..).unwrap_or_default();
        // An entity's name is short: looking further for its ';' would make a run of bare
        // '&'s quadratic.
        let entity = after
            .bytes()
            .take(12)
            .position(|b| b == b';')
            .and_then(|semi| Some((decode_entity(after.get(..semi)?)?, semi)));
        match entity {
            Some((c, semi)) => {
                out.push(c);
                rest = after.get(semi + 1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character an entity's name (between `&` and `;`) stands for.
fn decode_entity(name: &str) -> Option<char> {
    let named = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => None,
    };
    named.or_else(|| {
        let number = name.strip_prefix('#')?;
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        char::from_u32(code)
    })
}

/// The customer's own new words in a reply's text: quoted lines, the attribution before them,
/// the forwarded or Outlook-quoted original, phone footers and the signature dropped; one line
/// of at most [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    let text = capped(text, super::scan::SCAN_LIMIT);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut index = 0;
    while let Some(&line) = lines.get(index) {
        let trimmed = line.trim();
        if is_signature_mark(line) || starts_original(&lines, index) {
            break;
        }
        let attribution_lines = attribution(&lines, index);
        if attribution_lines > 0 {
            index += attribution_lines;
            continue;
        }
        if !trimmed.starts_with('>') && !is_footer(trimmed) {
            kept.push(line);
        }
        index += 1;
    }
    shorten(&one_line(&kept.join("\n")), EXCERPT_CHARS)
}

/// Whether `line` is the signature separator (`-- `, or `--` where a client trimmed the space).
fn is_signature_mark(line: &str) -> bool {
    line == "-- " || line == "--"
}

/// Whether the original message begins at `lines[index]` unquoted: Outlook's "-----Original
/// Message-----" in its languages, a forwarded message, or Outlook's header block ("From: …"
/// with "Sent: …" just below), everything after it being the quoted note.
fn starts_original(lines: &[&str], index: usize) -> bool {
    let Some(line) = lines.get(index).map(|l| l.trim()) else {
        return false;
    };
    let lower = line.to_lowercase();
    let marker = lower.starts_with("-----original message")
        || lower.starts_with("-----ursprüngliche nachricht")
        || lower.starts_with("-----message d'origine")
        || lower.starts_with("---------- forwarded message")
        || lower.starts_with("begin forwarded message:");
    marker || is_outlook_header_block(lines, index)
}

/// Whether `lines[index]` opens Outlook's quoted-header block: a "From:" line (or its French,
/// German or Spanish name) followed within four lines by a "Sent:" or "Date:" line.
fn is_outlook_header_block(lines: &[&str], index: usize) -> bool {
    let opens = |line: &str, names: &[&str]| {
        let line = line.trim().trim_start_matches('*').to_lowercase();
        names.iter().any(|name| line.starts_with(name))
    };
    let Some(first) = lines.get(index) else {
        return false;
    };
    if !opens(first, &["from:", "de :", "de:", "von:"]) {
        return false;
    }
    lines.iter().skip(index + 1).take(4).any(|line| {
        opens(
            line,
            &[
                "sent:",
                "envoyé :",
                "envoyé:",
                "gesendet:",
                "enviado:",
                "date:",
                "datum:",
            ],
        )
    })
}

/// How many lines (1 or 2) of an attribution start at `lines[index]` ("On … wrote:",
/// "Le … a écrit :", "Am … schrieb …:"), or 0. Gmail wraps a long attribution onto a second line.
fn attribution(lines: &[&str], index: usize) -> usize {
    let Some(line) = lines.get(index).map(|l| l.trim()) else {
        return 0;
    };
    if !(line.starts_with("On ") || line.starts_with("Le ") || line.starts_with("Am ")) {
        return 0;
    }
    if ends_attribution(line) {
        return 1;
    }
    match lines.get(index + 1).map(|l| l.trim()) {
        Some(next) if !next.starts_with('>') && ends_attribution(next) => 2,
        _ => 0,
    }
}

/// Whether `line` ends the way attributions end in English, French and German.
fn ends_attribution(line: &str) -> bool {
    // French typography puts a no-break space before the colon.
    let line = line.trim_end().replace('\u{a0}', " ");
    line.ends_with("wrote:")
        || line.ends_with("écrit :")
        || line.ends_with("écrit:")
        || (line.contains("schrieb") && line.ends_with(':'))
}

/// Whether `line` is a mail app's footer rather than the customer's words.
fn is_footer(line: &str) -> bool {
    line.starts_with("Sent from my ")
        || line.starts_with("Get Outlook for ")
        || line.starts_with("Envoyé de mon ")
        || line.starts_with("Von meinem ")
        || (!line.is_empty() && line.chars().all(|c| c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_controls_and_bidi() {
        assert_eq!(
            one_line(" a\r\n\tb\u{1b}[0m \u{202E}c\u{2066} "),
            "a b[0m c"
        );
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("one two three", 9), "one two…");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
        assert_eq!(shorten("a bcdefghij", 6), "a bcd…");
        assert_eq!(shorten("short", 9), "short");
        assert_eq!(shorten(&"é".repeat(400), 280).chars().count(), 280);
    }

    #[test]
    fn diagnostic_keeps_one_reply_code() {
        let gmail = "550-5.1.1 The email account\n 550-5.1.1 does not exist.\n 550 5.1.1  https://x - gsmtp";
        assert_eq!(
            diagnostic(gmail).as_deref(),
            Some("550-5.1.1 The email account does not exist. https://x - gsmtp")
        );
        assert_eq!(
            diagnostic("550 5.1.1 <a@b>: no").as_deref(),
            Some("550 5.1.1 <a@b>: no")
        );
        assert_eq!(diagnostic(" \u{7} "), None);
    }

    #[test]
    fn html_becomes_text() {
        let html = "<html><head><style>p{}</style></head><body><p>Tom &amp; Jerry&nbsp;say &lt;hi&gt; &#39;x&#39; &quot;y&quot; &#x263A;</p><!-- c --><blockquote>old</blockquote><div>new<br>line</div></body></html>";
        assert_eq!(
            one_line(&html_to_text(html)),
            "Tom & Jerry say <hi> 'x' \"y\" ☺ new line"
        );
        assert_eq!(html_to_text("a <b unclosed"), "a ");
        assert_eq!(html_to_text("1 < 2 &lt; 3"), "1 < 2 < 3");
        assert_eq!(
            decode_entities("&bogus; & &#99999999;"),
            "&bogus; & &#99999999;"
        );
        assert_eq!(html_to_text(&"&".repeat(20_000)).len(), 20_000);
    }

    #[test]
    fn excerpt_keeps_new_words_only() {
        let text = "Thanks so much!\n\nSee you Saturday.\n-- \nAnn\n\nOn Mon, 3 Mar 2025, Bakery wrote:\n> hello";
        assert_eq!(excerpt(text), "Thanks so much! See you Saturday.");
        let inline = "On Mon, 3 Mar 2025 at 10:02, Rosemary's Bakery\n<hello@bakery.example> wrote:\n> Did you like it?\nYes, a lot.\n> More?\nPlease.";
        assert_eq!(excerpt(inline), "Yes, a lot. Please.");
        let outlook = "Lovely.\n\n________________________________\nFrom: Rosemary's Bakery\nSent: Monday\nSubject: hi\n\nDear Ann";
        assert_eq!(excerpt(outlook), "Lovely.");
        let original = "Fine by me.\r\n\r\n-----Original Message-----\r\nFrom: Bakery\r\nDear Ann";
        assert_eq!(excerpt(original), "Fine by me.");
        let german = "Danke!\n\nAm 03.03.2025 um 10:00 schrieb Rosemary's Bakery <hello@bakery.example>:\n> Liebe Ann";
        assert_eq!(excerpt(german), "Danke!");
        assert_eq!(excerpt("Sent from my iPhone"), "");
        let long = excerpt(&"word ".repeat(100));
        assert!(
            long.chars().count() <= 280 && long.ends_with("word…"),
            "{long}"
        );
    }
}
