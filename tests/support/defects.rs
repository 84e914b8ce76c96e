#![allow(dead_code)]
//! What a careful reader would circle in red in a note: a list of defect patterns, checked on
//! the subject, the text and the HTML as the customer gets them. The customer's own words (the
//! indented quote in the text, the blockquote in the HTML) are theirs, and not checked.

/// Words that must not follow an attribute directly: an attribute is never the subject of a
/// verb in a template (its number is unknown; the `plural` filter is for that).
const VERBS: [&str; 16] = [
    "is", "are", "was", "were", "has", "have", "comes", "come", "keeps", "keep", "goes", "go",
    "does", "do", "makes", "make",
];
const ADVERBS: [&str; 4] = ["still", "always", "really", "already"];
const DAYS_AND_MONTHS: [&str; 19] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "valentine's",
];
const UNITS: [&str; 8] = [
    "year", "years", "month", "months", "week", "weeks", "day", "days",
];
const UNITES: [&str; 7] = ["an", "ans", "mois", "semaine", "semaines", "jour", "jours"];

/// Words that betray English in a French note.
const ENGLISH_IN_FRENCH: [&str; 12] = [
    "the",
    "you",
    "your",
    "hi",
    "year",
    "years",
    "yesterday",
    "today",
    "there",
    "thank",
    "with",
    "and",
];

/// The defects in one note in language `lang` ("en" or "fr"). `fallback` is
/// `defaults.fallback_name`; `attributes` are the values the customer's attributes hold.
pub fn defects(
    lang: &str,
    subject: &str,
    text: &str,
    html: Option<&str>,
    fallback: &str,
    attributes: &[String],
) -> Vec<String> {
    let french = lang == "fr";
    let mut found = Vec::new();
    let prose: String = text
        .lines()
        .filter(|l| !l.starts_with("    "))
        .collect::<Vec<_>>()
        .join("\n");
    let html_prose = html.map(without_blockquotes).unwrap_or_default();
    for (part, body) in [
        ("subject", subject),
        ("text", &prose),
        ("html", &html_prose),
    ] {
        // French sets a no-break space before « » : ? ! ; the checks read past it.
        let body = &body.replace('\u{a0}', "");
        for code in ["{{", "}}", "{%", "%}", "{#", "#}"] {
            if body.contains(code) {
                found.push(format!("{part}: template code {code:?} left in"));
            }
        }
        let words = words(body);
        for w in &words {
            if french && ENGLISH_IN_FRENCH.contains(&w.as_str()) {
                found.push(format!("{part}: the English {w:?} in a French note"));
            }
            if !french && matches!(w.as_str(), "her" | "his" | "their" | "theirs" | "hers") {
                found.push(format!("{part}: third-person {w:?} in a letter to \"you\""));
            }
        }
        let units: &[&str] = if french { &UNITES } else { &UNITS };
        for (i, w) in words.iter().enumerate() {
            if w == "1"
                && words
                    .get(i + 1)
                    .is_some_and(|u| units.contains(&u.as_str()))
            {
                found.push(format!("{part}: a numeral: \"1 {}\"", words[i + 1]));
            }
        }
        if body.contains("(s)") {
            found.push(format!("{part}: \"(s)\" instead of a plural"));
        }
        for month in DAYS_AND_MONTHS.iter().filter(|_| !french) {
            if raw_words(body).contains(month) {
                found.push(format!("{part}: lower-case {month:?}"));
            }
        }
        for quote in ['"', '\u{201d}', '\u{bb}'] {
            for end in ['.', '!', '?', '\u{2026}'] {
                for after in ['.', ',', ';', ':', '!', '?'] {
                    let pattern = format!("{end}{quote}{after}");
                    if body.contains(&pattern) {
                        found.push(format!("{part}: doubled punctuation {pattern:?}"));
                    }
                }
            }
        }
        for gap in [" ,", " .", "( ", " )", "  "] {
            if body.lines().any(|l| l.trim_start().contains(gap)) {
                found.push(format!("{part}: a gap {gap:?} where a value may be empty"));
            }
        }
        for value in attributes.iter().filter(|v| !v.trim().is_empty()) {
            let lower = body.to_lowercase();
            let value = value.to_lowercase();
            let mut from = 0;
            while let Some(at) = lower[from..].find(&value) {
                let after = &lower[from + at + value.len()..];
                let mut next = after.split_whitespace();
                let mut word = next.next().unwrap_or("");
                if ADVERBS.contains(&word) {
                    word = next.next().unwrap_or("");
                }
                if VERBS.contains(&word.trim_matches(|c: char| !c.is_alphabetic())) {
                    found.push(format!(
                        "{part}: the attribute {value:?} is the subject of {word:?} (number unknown)"
                    ));
                }
                from += at + value.len();
            }
        }
    }
    let first_words = subject.split(',').next().unwrap_or("").trim();
    if first_words.eq_ignore_ascii_case(fallback)
        || subject.trim_end().ends_with(&format!(", {fallback}"))
    {
        found.push(format!(
            "subject: the fallback greeting {fallback:?} used as a name"
        ));
    }
    if french && words(text).iter().any(|w| w == fallback) {
        found.push(format!(
            "text: the English fallback greeting {fallback:?} in a French note"
        ));
    }
    found
}

fn without_blockquotes(html: &str) -> String {
    let mut out = String::new();
    // The document's head (its style sheet) is not read by the customer.
    let mut rest = html.find("<body").map_or(html, |at| &html[at..]);
    while let Some(start) = rest.find("<blockquote") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("</blockquote>")
            .map_or("", |end| &rest[start + end + "</blockquote>".len()..]);
    }
    out.push_str(rest);
    // Tags out, entities as the reader sees them.
    let mut text = String::new();
    let mut in_tag = false;
    for c in out.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn words(text: &str) -> Vec<String> {
    raw_words(text).into_iter().map(str::to_lowercase).collect()
}

fn raw_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect()
}
