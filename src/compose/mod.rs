//! Compose: validate the customer we are writing to and render their note from a template.
//!
//! A template is one file with three blocks: `subject`, `text` and (optional) `html`. It is
//! registered twice: once without escaping (subject, text) and once with HTML auto-escaping (the
//! html block), so customer text can never inject markup. Customer data is passed as *values*:
//! it is never parsed as template code. Undefined variables are errors (strict mode).

mod body;
mod context;
mod filters;
mod lang;
mod message;
mod quote;
mod templates;
pub(crate) mod unsubscribe;

pub(crate) use context::{DigestContext, NoteContext, Recipient, recipient};
pub(crate) use lang::Language;
pub(crate) use message::{
    Letter, MessageError, build_message, letter_html, letter_in_page, message_id, note_token,
    unsubscribe_link,
};
pub(crate) use templates::{Templates, describe};

use crate::config::{Config, Rule};
use crate::select::Candidate;

/// The letter `rule` writes to `candidate` (made safe as `recipient`, with `interactions` in the
/// log), rendered from the rule's template.
pub(crate) fn letter(
    config: &Config,
    templates: &Templates,
    rule: &Rule,
    candidate: &Candidate,
    recipient: &Recipient,
    interactions: i64,
) -> Result<Letter, minijinja::Error> {
    let (file, tag, language) = templates.speak(&rule.template, &recipient.language);
    let ctx = NoteContext::new(
        config,
        rule,
        candidate,
        recipient,
        interactions,
        (&tag, &language),
    );
    let rendered = templates.render(&file, &ctx)?;
    Ok(Letter {
        recipient: recipient.address.to_string(),
        display_name: recipient.display_name.clone(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html.map(|html| letter_html(&html, &tag)),
        message_id: message_id(
            &rule.name,
            &candidate.customer.id_text,
            &candidate.occasion,
            &config.sender,
        ),
    })
}
