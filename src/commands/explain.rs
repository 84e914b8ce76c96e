//! `rekindle explain --customer ID`: one customer's ledger, standing and every rule's verdict.

use std::path::Path;

use jiff::Timestamp;

use super::parse_at;
use crate::error::Error;
use crate::evaluate::{self, Outcome};
use crate::load::{Loaded, load};
use crate::log::{CustomerRow, Log};
use crate::outbox::Outbox;
use crate::select;

/// `rekindle explain --customer ID`: the ledger, the customer's standing, and every rule's verdict.
pub(crate) fn explain(path: &Path, customer_id: &str, at: Option<&str>) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    let log = Log::open(&config.log_path)?;
    let Some((row, _)) = log.customer(customer_id)? else {
        return Err(Error::Usage(format!(
            "no customer with id {customer_id:?} in {}",
            config.log_path.display()
        )));
    };
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    say!(
        "customer {} <{}> {}, at {}",
        row.id_text,
        row.email.as_deref().unwrap_or("no email"),
        row.name
            .as_deref()
            .map(|n| format!("({n})"))
            .unwrap_or_default(),
        now.to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
    );

    let about = About {
        loaded: &loaded,
        log: &log,
        outbox: &outbox,
        row: &row,
        now,
    };
    print_ledger(&about)?;
    print_standing(&about)?;
    print_replies(&about)?;
    print_verdicts(&about)?;
    Ok(())
}

/// The customer explained, and where their facts are read.
struct About<'a> {
    loaded: &'a Loaded,
    log: &'a Log,
    outbox: &'a Outbox,
    row: &'a CustomerRow,
    now: Timestamp,
}

/// The customer's touch points over each ratio rule's window (or 90 days).
fn print_ledger(about: &About<'_>) -> Result<(), Error> {
    let (config, log, outbox, row, now) = (
        &about.loaded.config,
        about.log,
        about.outbox,
        about.row,
        about.now,
    );
    let mut windows: Vec<(jiff::SignedDuration, f64)> = config
        .rules
        .iter()
        .filter_map(|r| match r.kind {
            crate::config::RuleKind::Ratio { window, target } => Some((window, target)),
            _ => None,
        })
        .collect();
    if windows.is_empty() {
        windows.push((jiff::SignedDuration::from_hours(90 * 24), 10.0));
    }
    windows.dedup();
    for (window, target) in windows {
        let since = now.checked_sub(window).unwrap_or(now);
        let points = log.touch_points(&row.id, &config.touchpoints, since)?;
        let notes = outbox.notes_to(&row.id_text, since)?;
        let ledger = select::Ledger::total(&points, notes);
        let (positive, negative) = (ledger.positive, ledger.negative);
        let ratio = if negative == 0 {
            "no negative touch points".to_string()
        } else {
            format!(
                "{:.1} : 1 (target {target} : 1){}",
                positive as f64 / negative as f64,
                if ledger.meets(target) {
                    ""
                } else {
                    ", below target"
                }
            )
        };
        say!(
            "\nledger, last {}: {positive} positive, {negative} negative: {ratio}",
            crate::config::format_duration(window)
        );
        for (kind, class, n) in &points {
            say!("  {class:<8} {kind:<16} {n}");
        }
        if notes > 0 {
            say!("  positive rekindle notes and replies  {notes}");
        }
    }

    Ok(())
}

/// What holds the customer's notes back, if anything.
fn print_standing(about: &About<'_>) -> Result<(), Error> {
    let (config, log, outbox, row, now) = (
        &about.loaded.config,
        about.log,
        about.outbox,
        about.row,
        about.now,
    );
    let standing = log.standing(&row.id, &config.policy, now)?;
    let suppressed = outbox.suppressed(&row.id_text, row.email.as_deref().unwrap_or_default())?;
    let mut flags = Vec::new();
    if standing.opted_out {
        flags.push("opted out");
    }
    if standing.unsubscribed {
        flags.push("unsubscribed");
    }
    if outbox.stopped(&row.id_text)? {
        flags.push("stopped every note themselves (one-click or the preferences page)");
    } else if suppressed {
        flags.push("on the suppression list");
    }
    if standing.open_complaint {
        flags.push("a complaint is open");
    }
    say!(
        "\nstanding: {}",
        if flags.is_empty() {
            "nothing holds notes back".to_string()
        } else {
            flags.join(", ")
        }
    );
    let preference = outbox.preference(&row.id_text)?;
    if !preference.is_default() {
        say!(
            "preferences (chosen on the preferences page): {}",
            preference.describe()
        );
    }

    Ok(())
}

/// What the customer wrote back (the last 90 days), and a hold it puts on their notes.
fn print_replies(about: &About<'_>) -> Result<(), Error> {
    let config = &about.loaded.config;
    let since = about.now - jiff::SignedDuration::from_hours(90 * 24);
    let replies = about
        .outbox
        .replies(Some(&about.row.id_text), since.as_second())?;
    if replies.is_empty() {
        return Ok(());
    }
    say!(
        "
replies, last 90 days:"
    );
    for r in &replies {
        let when = super::local_time(config, r.at, "%Y-%m-%d %H:%M");
        let to = match (&r.rule, r.note_id) {
            (Some(rule), Some(id)) => format!("to note {id} ({rule})"),
            _ => String::new(),
        };
        let what = if r.automatic {
            "automatic reply"
        } else {
            "reply"
        };
        say!(
            "  {when} {what} {to}: \"{}\"",
            crate::inert::for_terminal(&r.excerpt)
        );
    }
    if let Some(last) = replies.iter().filter(|r| !r.automatic).map(|r| r.at).max() {
        let until = jiff::Timestamp::from_second(last).unwrap_or(about.now)
            + config.inbound.hold_after_reply;
        if until > about.now {
            say!(
                "  their notes other than apologies and follow-ups wait until {} (inbound.hold_after_reply)",
                super::local_time(config, until.as_second(), "%Y-%m-%d %H:%M %Z")
            );
        }
    }
    Ok(())
}

/// Every rule's verdict, as a dry run restricted to this customer (highest priority first, so a
/// note an earlier rule would queue counts against the cap of the later ones).
fn print_verdicts(about: &About<'_>) -> Result<(), Error> {
    let (loaded, log, outbox, row, now) =
        (about.loaded, about.log, about.outbox, about.row, about.now);
    let config = &loaded.config;
    let rules: Vec<_> = config.rules.iter().collect();
    let only = [row.id.clone()];
    let pass = evaluate::Pass {
        decisions: evaluate::Decisions::Keep,
        only: Some(&only),
        ..evaluate::Pass::new(&rules, now)
    };
    let reports = evaluate::run(config, &loaded.templates, log, outbox, &pass)?;
    say!("\nrules (highest priority first):");
    for report in &reports {
        let Some(rule) = config.rule(&report.rule) else {
            continue;
        };
        let verdict = match report.decisions.first() {
            Some(d) => match &d.outcome {
                Outcome::Queued { subject, .. } => {
                    format!("would queue \"{subject}\" ({})", d.occasion)
                }
                Outcome::Skipped(skip) => format!("skipped: {skip}"),
            },
            None => format!("not selected now: needs {}", rule.kind.describe()),
        };
        say!("  {:<24} {verdict}", report.rule);
    }
    let disabled: Vec<&str> = config
        .rules
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.as_str())
        .collect();
    if !disabled.is_empty() {
        say!("  disabled: {}", disabled.join(", "));
    }
    Ok(())
}
