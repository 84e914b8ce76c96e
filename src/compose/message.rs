//! The MIME message: a composed [`Letter`] as the email a customer receives, with its
//! deterministic Message-ID and List-Unsubscribe headers.

use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::body::body;
use super::unsubscribe;
use crate::config::Sender;

/// What a note says and to whom: composed once, stored in the outbox, sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Letter {
    /// The address.
    pub recipient: String,
    /// The name for the To header.
    pub display_name: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub body_text: String,
    /// HTML, when the template has an html block.
    pub body_html: Option<String>,
    /// The deterministic Message-ID (see [`message_id`]).
    pub message_id: String,
}

/// Why a stored letter cannot become an email (the note fails for good).
#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    /// The recipient is not an address (the outbox was edited, or an old version stored it).
    #[error("invalid recipient {recipient:?}: {source}")]
    Recipient {
        /// The address as stored.
        recipient: String,
        /// Why it does not parse.
        source: lettre::address::AddressError,
    },
    /// A name or a header value would carry a line break or another control character.
    #[error("{what} {value:?} contains a line break or another control character")]
    Header {
        /// Which one.
        what: &'static str,
        /// Its text.
        value: String,
    },
    /// lettre refused the envelope or the message.
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// The Message-ID of a note: derived from its idempotency key, so the same note always has the
/// same id and a receiving system can drop a duplicate too.
pub(crate) fn message_id(rule: &str, customer: &str, occasion: &str, sender: &Sender) -> String {
    let mut hash = Sha256::new();
    for part in [rule, customer, occasion] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    format!(
        "<{}.rekindle@{}>",
        hex::encode(&digest[..16]),
        sender.email.domain()
    )
}

/// A note's token: the 32 hex digits of its Message-ID, which name it in a return path
/// (`bounces+<token>@…`) and in the outbox whatever domain the id was made with.
pub(crate) fn note_token(message_id: &str) -> Option<&str> {
    let hex = message_id.trim_start_matches('<').split('.').next()?;
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// A note's envelope sender (MAIL FROM, where bounces go): `[sender] return_path`, with the
/// note's token when `verp` is on, else the From address.
pub(crate) fn return_path(sender: &Sender, message_id: &str) -> lettre::Address {
    let Some(base) = &sender.return_path else {
        return sender.email.clone();
    };
    let tagged = note_token(message_id)
        .filter(|_| sender.verp)
        .and_then(|token| {
            lettre::Address::new(format!("{}+{token}", base.user()), base.domain()).ok()
        });
    tagged.unwrap_or_else(|| base.clone())
}

/// The customer's signed unsubscribe link, when an unsubscribe page is configured.
pub(crate) fn unsubscribe_link(sender: &Sender, customer_id: &str) -> Option<String> {
    let base = sender.unsubscribe_url.as_deref()?;
    let secret = sender.unsubscribe_secret.as_ref()?;
    Some(unsubscribe::link(base, secret, customer_id))
}

/// The style of every HTML note: a letter, not a web page. A readable measure (36em), the
/// reader's own system font, the customer's words set apart as theirs, colours that follow the
/// reader's light or dark mode, nothing loaded from anywhere. Inline on the wrapper too, for
/// mail clients that drop `<style>`.
const LETTER_STYLE: &str = "body{margin:0;padding:24px 16px}\
.letter{max-width:36em;margin:0 auto;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;font-size:17px;line-height:1.55}\
.letter p{margin:0 0 1em}\
.letter blockquote{margin:0 0 1em;padding:.5em 1em;border-left:4px solid #b08d57;font-style:italic}\
.letter .small{font-size:.85em;opacity:.8}\
.letter a{color:inherit}";

const LETTER_INLINE: &str = "max-width:36em;margin:0 auto;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;font-size:17px;line-height:1.55";

/// The page around every HTML letter, before its language tag (see [`letter_html`]).
const PAGE_START: &str = "<!DOCTYPE html>\n<html lang=\"";

/// The page between the language tag and the letter.
static PAGE_TOP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<meta name=\"supported-color-schemes\" content=\"light dark\">\n<style>{LETTER_STYLE}</style>\n</head>\n<body>\n<div class=\"letter\" style=\"{LETTER_INLINE}\">\n"
    )
});

/// The page after the letter.
const PAGE_END: &str = "\n</div>\n</body>\n</html>\n";

/// Whether `c` may stand in the page's language tag.
fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// A note's HTML block as a whole document in the letter's style (see [`LETTER_STYLE`]), in
/// language `lang` (a BCP 47 tag).
pub(crate) fn letter_html(body: &str, lang: &str) -> String {
    let mut page = String::with_capacity(PAGE_START.len() + PAGE_TOP.len() + body.len() + 64);
    page.push_str(PAGE_START);
    page.extend(lang.chars().filter(|c| tag_char(*c)));
    page.push_str(&PAGE_TOP);
    page.push_str(body);
    page.push_str(PAGE_END);
    page
}

/// The language tag and the HTML block of `page` when it is [`letter_html`]'s page around
/// them (`letter_html(block, tag)` gives `page` back, byte for byte); `None` for any other.
/// The state database keeps a note's block and tag rather than the page (about 1 kB less for
/// each note).
pub(crate) fn letter_in_page(page: &str) -> Option<(&str, &str)> {
    let rest = page.strip_prefix(PAGE_START)?;
    let (tag, rest) = rest.split_at(rest.find('"')?);
    if !tag.chars().all(tag_char) {
        return None;
    }
    let block = rest
        .strip_prefix(PAGE_TOP.as_str())?
        .strip_suffix(PAGE_END)?;
    Some((tag, block))
}

/// Builds the email of `letter` to customer `customer_id`, dated `now`.
pub(crate) fn build_message(
    letter: &Letter,
    customer_id: &str,
    sender: &Sender,
    now: Timestamp,
) -> Result<Message, MessageError> {
    let link = unsubscribe_link(sender, customer_id);
    let names = [
        ("the sender's name", Some(sender.name.as_str())),
        ("the recipient's name", letter.display_name.as_deref()),
        ("the subject", Some(letter.subject.as_str())),
        ("the unsubscribe link", link.as_deref()),
    ];
    for (what, value) in names {
        if let Some(value) = value
            && value.chars().any(char::is_control)
        {
            let value = value.to_string();
            return Err(MessageError::Header { what, value });
        }
    }
    let to_address: lettre::Address =
        letter
            .recipient
            .parse()
            .map_err(|source| MessageError::Recipient {
                recipient: letter.recipient.clone(),
                source,
            })?;
    // Given, so lettre does not parse it back out of the headers it just wrote.
    let envelope = lettre::address::Envelope::new(
        Some(return_path(sender, &letter.message_id)),
        vec![to_address.clone()],
    )
    .map_err(|e| MessageError::Build(e.to_string()))?;
    let to = Mailbox::new(letter.display_name.clone(), to_address);
    let from = Mailbox::new(Some(sender.name.clone()), sender.email.clone());
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from)
        .to(to)
        .subject(letter.subject.clone())
        .message_id(Some(letter.message_id.clone()))
        .date(
            std::time::SystemTime::try_from(now).unwrap_or_else(|_| std::time::SystemTime::now()),
        );
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(Mailbox::new(Some(sender.name.clone()), reply_to.clone()));
    }
    let mut unsubscribe = Vec::new();
    if let Some(mailto) = &sender.unsubscribe_mailto {
        unsubscribe.push(format!("<mailto:{mailto}?subject=unsubscribe>"));
    }
    if let Some(link) = &link {
        unsubscribe.insert(0, format!("<{link}>"));
    }
    if !unsubscribe.is_empty() {
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe");
        builder = builder.raw_header(HeaderValue::new(name, unsubscribe.join(", ")));
    }
    if link.is_some() && sender.one_click {
        // RFC 8058: mail clients may unsubscribe with one POST to the https link.
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
        builder = builder.raw_header(HeaderValue::new(name, "List-Unsubscribe=One-Click".into()));
    }
    let result = match &letter.body_html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            body(&letter.body_text),
            body(html),
        )),
        None => builder.singlepart(SinglePart::plain(body(&letter.body_text))),
    };
    result.map_err(|e| MessageError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::test_config;

    fn sender() -> Sender {
        let text = test_config::config(&test_config::SCRATCH, &test_config::maildir("m"), None, "");
        let (config, d) = Config::parse(std::path::Path::new("c.toml"), text);
        assert!(!d.iter().any(|d| d.is_error()), "{d:?}");
        config.expect("config").sender
    }

    /// The block and tag taken out of a letter's page give the page back byte for byte; any
    /// other HTML is not taken apart (it is kept whole).
    #[test]
    fn a_letters_page_is_taken_apart_only_into_what_gives_it_back() {
        let block = "<p>Dear Zoë,</p>\n<p>\"Thank you\" — <a href=\"x\">here</a></p>\n</div>";
        for tag in ["en", "pt-BR", "", "zh-Hant-TW"] {
            let page = letter_html(block, tag);
            assert_eq!(letter_in_page(&page), Some((tag, block)), "{tag}");
        }
        // A tag with other characters is written without them, and read back so.
        let page = letter_html(block, "fr\"><script>");
        let (tag, back) = letter_in_page(&page).expect("taken apart");
        assert_eq!((letter_html(back, tag), tag), (page.clone(), "frscript"));
        for other in [
            "<p>Hi</p>".to_string(),
            page.replace("36em", "40em"),
            page.trim_end().to_string(),
            format!("{page} "),
            page.replacen("lang=\"frscript\"", "lang=\"fr script\"", 1),
        ] {
            assert_eq!(letter_in_page(&other), None, "{other}");
        }
    }

    fn letter(display_name: &str) -> Letter {
        Letter {
            recipient: "ann@example.com".into(),
            display_name: Some(display_name.into()),
            subject: "Thank you".into(),
            body_text: "Hi".into(),
            body_html: None,
            message_id: "<x@bakery.example>".into(),
        }
    }

    #[test]
    fn a_line_break_in_a_name_is_an_error_not_a_panic_nor_a_header() {
        let now = Timestamp::UNIX_EPOCH;
        assert!(build_message(&letter("Ann"), "1", &sender(), now).is_ok());
        let err = build_message(&letter("Ann\r\nBcc: x@example.com"), "1", &sender(), now);
        assert!(
            matches!(
                err,
                Err(MessageError::Header {
                    what: "the recipient's name",
                    ..
                })
            ),
            "{err:?}"
        );
        let mut bad = sender();
        bad.name = "Rose\nBcc: x@example.com".into();
        let err = build_message(&letter("Ann"), "1", &bad, now);
        assert!(
            matches!(
                err,
                Err(MessageError::Header {
                    what: "the sender's name",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
