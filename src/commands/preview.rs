//! `rekindle preview`: one rule's note for one customer, as the MIME message it would be.

use std::ops::ControlFlow;
use std::path::Path;

use super::parse_at;
use crate::compose::{self, recipient};
use crate::error::Error;
use crate::load::load;
use crate::log::Log;
use crate::select::{self, Candidate, Found};

/// `rekindle preview`.
pub(crate) fn preview(
    path: &Path,
    rule_name: &str,
    customer_id: &str,
    at: Option<&str>,
) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
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
    let message = compose::build_message(&letter, &row.id_text, &config.sender, now)?;
    say!("{}", message.headers().to_string().trim_end());
    say!("\n--- text ---\n{}", letter.body_text.trim_end());
    if let Some(html) = &letter.body_html {
        say!("\n--- html ---\n{html}");
    }
    Ok(())
}
