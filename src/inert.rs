//! Untrusted text kept inert: the customers' names and words come from the business's log, and
//! reach mail headers and the operator's terminal.

use std::borrow::Cow;

/// Unicode's bidirectional controls (embeddings, overrides, isolates and marks): in a name they
/// can turn a Subject or a terminal line around ("Ann" shown as "nnA", or a file name's
/// extension hidden).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Text for the operator's terminal: control characters other than line breaks and tabs, and
/// bidi controls, shown as escapes (`\u{1b}`), so nothing a customer wrote can clear the screen,
/// set the terminal's title or turn a line around. CRLF line ends become LF.
pub(crate) fn for_terminal(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_overrides_are_shown_not_obeyed() {
        assert_eq!(for_terminal("Ann Smith"), "Ann Smith");
        assert_eq!(
            for_terminal("Ann\u{1b}]0;pwned\u{7}"),
            "Ann\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(for_terminal("\u{202E}nnA"), "\\u{202e}nnA");
        assert_eq!(for_terminal("a\r\nb\tc\n"), "a\nb\tc\n");
    }
}
