//! `rekindle plan`: a dry run at a moment (who would get what, and why others are skipped), or
//! a forecast of the next days.

use std::path::Path;

use jiff::Timestamp;

use super::parse_at;
use crate::error::Error;
use crate::evaluate::{self, Outcome};
use crate::load::{Loaded, load};
use crate::log::Log;
use crate::outbox::Outbox;

/// `rekindle plan`.
pub(crate) fn plan(path: &Path, at: Option<&str>, days: Option<u32>) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    if let Some(days) = days {
        return print_forecast(&loaded, now, days);
    }
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let rules: Vec<_> = config.rules.iter().collect();
    let pass = evaluate::Pass {
        keep_decisions: true,
        ..evaluate::Pass::new(&rules, now)
    };
    let reports = evaluate::run(config, &loaded.templates, &log, &outbox, &pass)?;
    say!(
        "plan at {} ({}): nothing is sent or written",
        now.to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M %Z"),
        config.timezone_name
    );
    for r in &reports {
        say!("\nrule {}: {}", r.rule, r.summary());
        for d in &r.decisions {
            match &d.outcome {
                Outcome::Queued {
                    subject,
                    recipient: to,
                } => say!(
                    "  send  customer {} ({}) <{to}>: {subject:?}",
                    d.customer_id,
                    d.occasion
                ),
                Outcome::Skipped(skip) => say!(
                    "  skip  customer {} ({}): {skip}",
                    d.customer_id,
                    d.occasion
                ),
            }
        }
        // Only a reached daily limit leaves customers without a decision.
        let waiting = r.matched - r.decisions.len() as u64;
        if let Some(limit) = config.rule(&r.rule).and_then(|rule| rule.daily_limit)
            && waiting > 0
        {
            say!(
                "  and {waiting} more wait for another day: the daily limit of {limit} is reached"
            );
        }
    }
    Ok(())
}

/// `rekindle plan --days N`.
fn print_forecast(loaded: &Loaded, start: Timestamp, days: u32) -> Result<(), Error> {
    let config = &loaded.config;
    say!(
        "forecast of {days} day(s) from {} ({}), each rule at its first scheduled minute of the day, on the log as it is now: nothing is sent or written",
        start
            .to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M"),
        config.timezone_name
    );
    let mut total = 0;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    for day in super::forecast::forecast(loaded, &outbox, start, days)? {
        let queued: u64 = day.reports.iter().map(|r| r.queued).sum();
        total += queued;
        say!(
            "
{} {}: {queued} note(s)",
            day.date,
            day.date.strftime("%a")
        );
        for r in day
            .reports
            .iter()
            .filter(|r| r.matched > 0 || r.resting.is_some())
        {
            say!("  {:<24} {}", r.rule, r.summary());
        }
    }
    say!(
        "
{total} note(s) in {days} day(s)"
    );
    Ok(())
}
