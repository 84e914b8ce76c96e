//! Compose: validate the customer we are writing to and render their note from a template.
//!
//! A template is one file with three blocks: `subject`, `text` and (optional) `html`. It is
//! registered twice: once without escaping (subject, text) and once with HTML auto-escaping (the
//! html block), so customer text can never inject markup. Customer data is passed as *values*:
//! it is never parsed as template code. Undefined variables are errors (strict mode).

mod context;
mod templates;
mod unsubscribe;

pub(crate) use context::{DigestContext, NoteContext, recipient};
pub(crate) use templates::{Templates, describe};
pub(crate) use unsubscribe::{Secret, link as unsubscribe_link};
