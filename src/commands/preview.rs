//! `rekindle preview`: one rule's note for one customer, as the MIME message it would be.

use std::ops::ControlFlow;
use std::path::Path;

use super::parse_at;
use crate::compose::{self, recipient};
use crate::config::DIGEST_RULE;
use crate::error::Error;
use crate::load::load;
use crate::log::Log;
use crate::select::{self, Candidate, Found};

/// `rekindle preview`.
pub(crate) fn preview(
    path: &Path,
    rule_name: &str,
    customer_id: Option<&str>,
    at: Option<&str>,
) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    if rule_name == DIGEST_RULE {
        return preview_digest(&loaded, now);
    }
    let Some(customer_id) = customer_id else {
        return Err(Error::Usage(format!(
            "preview --rule {rule_name} needs --customer ID (only the digest has none)"
        )));
    };
    let Some(rule) = config.rule(rule_name) else {
        let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no rule named {rule_name:?}{}; rules: {}",
            crate::config::diag::suggestion(rule_name, names.iter().copied()),
            names.join(", ")
        )));
    };
    let log = Log::open(&config.log_path)?;
    let Some((row, latest)) = log.customer(customer_id)? else {
        return Err(Error::Usage(format!(
            "no customer with id {customer_id:?} in {}",
            config.log_path.display()
        )));
    };
    // Prefer the candidate the rule itself would produce; otherwise preview with the customer's
    // latest interaction, and say so.
    let mut found: Option<Candidate> = None;
    let only = [row.id.clone()];
    select::candidates(&log, config, rule, now, Some(&only), |c| {
        if c.customer.id_text == row.id_text {
            found = Some(c);
            ControlFlow::Break(select::Rest::Stop)
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let candidate = found.unwrap_or_else(|| {
        eprintln!("note: customer {customer_id} does not match rule {rule_name:?} now; previewing with their latest interaction");
        Candidate {
            customer: row.clone(),
            occasion: "preview".into(),
            happened_at: latest.as_ref().map(|t| t.at),
            found: Found::Interaction(latest),
        }
    });
    let recipient = recipient(&row, config, now).map_err(|skip| Error::Skipped {
        customer: customer_id.to_string(),
        skip,
    })?;
    let interactions = log.interaction_count(&row.id)?;
    let letter = compose::letter(
        config,
        &loaded.templates,
        rule,
        &candidate,
        &recipient,
        interactions,
    )
    .map_err(|e| Error::Template {
        template: rule.template.clone(),
        why: compose::describe(&e),
    })?;
    show(&letter, &row.id_text, config, now)
}

/// Prints `letter` as the message it would be: its headers, text and HTML.
fn show(
    letter: &compose::Letter,
    customer_id: &str,
    config: &crate::config::Config,
    now: jiff::Timestamp,
) -> Result<(), Error> {
    let message = compose::build_message(letter, customer_id, &config.sender, now)?;
    say!("{}", message.headers().to_string().trim_end());
    say!("\n--- text ---\n{}", letter.body_text.trim_end());
    if let Some(html) = &letter.body_html {
        say!("\n--- html ---\n{html}");
    }
    Ok(())
}

/// `preview --rule digest`: the staff digest as it would go at `now` (as the MIME message),
/// written nowhere.
fn preview_digest(loaded: &crate::load::Loaded, now: jiff::Timestamp) -> Result<(), Error> {
    let config = &loaded.config;
    let Some(digest) = &config.digest else {
        return Err(Error::Usage(
            "there is no [digest] section in the configuration".into(),
        ));
    };
    let log = Log::open(&config.log_path)?;
    let outbox = crate::outbox::Outbox::open_dry_run(&config.state_path)?;
    let built =
        crate::evaluate::digest::build(config, &loaded.templates, &log, &outbox, digest, now)?;
    let Some((note, _)) = built else {
        say!("no customer needs a card on the digest's day: no digest would go");
        return Ok(());
    };
    show(&note.letter, &note.customer_id, config, now)
}
