//! Quoting a customer like a person would: a sentence or two of their own words, repetitions
//! collapsed, markup and code-like text left out. When nothing reads as words, there is no
//! quote, and the template's other branch speaks.

/// The customer's words worth quoting from `text`: at most two sentences and `max` characters
/// (a first sentence longer than that is cut at a word, with an ellipsis), or None.
pub(crate) fn quotable(text: &str, max: usize) -> Option<String> {
    let prose = without_markup(text);
    let mut taken: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for sentence in sentences(&prose) {
        let key: String = sentence
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if key.is_empty() || seen.contains(&key) || !reads_as_words(&sentence) {
            continue;
        }
        seen.push(key);
        let len: usize = taken.iter().map(|s| s.chars().count() + 1).sum();
        if taken.is_empty() {
            taken.push(cut(&sentence, max));
        } else if len + sentence.chars().count() <= max {
            taken.push(sentence);
        } else {
            break;
        }
        if taken.len() == 2 {
            break;
        }
    }
    (!taken.is_empty()).then(|| taken.join(" "))
}

/// `text` with HTML tags (and what script and style elements hold), template code and URLs
/// taken out, and whitespace and control characters flattened to single spaces.
fn without_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let lower = rest
            .get(..8)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let skip_to = |end: &str, from: &str| from.find(end).map(|i| i + end.len());
        let skipped = if lower.starts_with("<script") {
            skip_to("</script>", &rest.to_ascii_lowercase()).or(Some(rest.len()))
        } else if lower.starts_with("<style") {
            skip_to("</style>", &rest.to_ascii_lowercase()).or(Some(rest.len()))
        } else if c == '<'
            && rest[1..].starts_with(|n: char| n.is_ascii_alphabetic() || n == '/' || n == '!')
        {
            skip_to(">", rest)
        } else if rest.starts_with("{{") {
            skip_to("}}", rest)
        } else if rest.starts_with("{%") {
            skip_to("%}", rest)
        } else if rest.starts_with("{#") {
            skip_to("#}", rest)
        } else if lower.starts_with("http://") || lower.starts_with("https:/") {
            Some(rest.find(char::is_whitespace).unwrap_or(rest.len()))
        } else {
            None
        };
        match skipped {
            Some(n) => {
                out.push(' ');
                rest = &rest[n..];
            }
            None => {
                out.push(if c.is_whitespace() || c.is_control() {
                    ' '
                } else {
                    c
                });
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sentences, each ending with its own punctuation (or none, at the end of the text).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let ends = matches!(c, '.' | '!' | '?' | '…');
        if ends && chars.peek().is_none_or(|n| n.is_whitespace()) {
            // "!!!" or "?!" stay with their sentence.
            out.push(std::mem::take(&mut current).trim().to_string());
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Whether a sentence reads as words a person wrote: two words or more, mostly letters, and no
/// code-like punctuation.
fn reads_as_words(sentence: &str) -> bool {
    let words = sentence
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    let letters = sentence.chars().filter(|c| c.is_alphabetic()).count();
    let visible = sentence.chars().filter(|c| !c.is_whitespace()).count();
    let code = sentence
        .chars()
        .filter(|c| matches!(c, '{' | '}' | ';' | '=' | '<' | '>' | '$' | '\\' | '|'))
        .count();
    // A wall of one word ("blah blah blah…") is no one's sentence.
    let mut distinct: Vec<String> = sentence
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    distinct.sort();
    distinct.dedup();
    let varied = words < 8 || distinct.len() * 4 >= words;
    words >= 2 && letters * 10 >= visible * 6 && code == 0 && varied
}

/// `sentence` cut at a word to `max` characters, with an ellipsis.
fn cut(sentence: &str, max: usize) -> String {
    if sentence.chars().count() <= max {
        return sentence.to_string();
    }
    let mut out = String::new();
    for word in sentence.split_whitespace() {
        if out.chars().count() + 1 + word.chars().count() > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = sentence.chars().take(max).collect();
    }
    out.trim_end_matches([',', ';', ':', '-', ' ']).to_string() + "…"
}

#[cfg(test)]
mod tests {
    use super::quotable;

    #[test]
    fn a_rant_is_quoted_as_one_sentence_without_its_markup_or_its_repetitions() {
        let rant = format!(
            "<script>alert(1)</script> {{{{ 7*7 }}}} {{% raw %}} <img src=x onerror=alert(2)> {}",
            "This is unacceptable. ".repeat(950)
        );
        assert_eq!(
            quotable(&rant, 500).as_deref(),
            Some("This is unacceptable.")
        );
    }

    #[test]
    fn a_sentence_or_two_within_the_limit() {
        let said =
            "The sourdough was burnt on the bottom. My kids wouldn't eat it. I won't be back.";
        assert_eq!(
            quotable(said, 500).as_deref(),
            Some("The sourdough was burnt on the bottom. My kids wouldn't eat it.")
        );
        assert_eq!(
            quotable(said, 45).as_deref(),
            Some("The sourdough was burnt on the bottom.")
        );
        assert_eq!(quotable(said, 20).as_deref(), Some("The sourdough was…"));
    }

    #[test]
    fn nothing_that_reads_as_words_is_no_quote() {
        for text in [
            "",
            "   ",
            "<b></b>",
            "{{ x }}",
            "ok",
            "SELECT * FROM users; DROP TABLE x;",
            "https://example.com/a?b=c",
            "#4471 / 22-31-9",
        ] {
            assert_eq!(quotable(text, 500), None, "{text:?}");
        }
    }

    #[test]
    fn line_breaks_and_tags_inside_words_are_flattened() {
        assert_eq!(
            quotable(
                "The bread box came two days late & the <i>croissants</i>\r\nwere stale.",
                500
            )
            .as_deref(),
            Some("The bread box came two days late & the croissants were stale.")
        );
    }
}
