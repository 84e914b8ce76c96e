//! `rekindle status`: the queue by state, recent sending, the last error and coverage.

use std::path::Path;

use super::local_time;
use crate::config::Config;
use crate::deliver::Pause;
use crate::error::Error;
use crate::log::Log;
use crate::outbox::Outbox;

/// `rekindle status`.
pub(crate) fn status(path: &Path, coverage_days: u32) -> Result<(), Error> {
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let now = crate::clock::now();
    say!("state database: {}", config.state_path.display());
    let counts = outbox.counts()?;
    if counts.is_empty() {
        say!("no notes yet");
    }
    for (state, n) in &counts {
        say!("  {state:<10} {n}");
    }
    let show = |s: i64| local_time(&config, s, "%Y-%m-%d %H:%M %Z");
    if let Some(oldest) = outbox.oldest_waiting()? {
        say!("oldest waiting note queued {}", show(oldest));
    }
    if let Some(later) = outbox.not_yet_due(now)? {
        say!("{}", super::not_yet_due(&later, &show));
    }
    let hour = outbox.sent_since(now - jiff::SignedDuration::from_hours(1))?;
    let day = outbox.sent_since(now - jiff::SignedDuration::from_hours(24))?;
    say!("sent in the last hour: {hour}, last 24 hours: {day}");
    if let Some(pause) = Pause::load(&outbox)? {
        say!(
            "delivery PAUSED since {}: {}\n  next try {}; after fixing the [transport] settings, `systemctl reload rekindle` (or SIGHUP) resumes at once",
            show(pause.since),
            pause.reason,
            show(pause.until)
        );
    }
    if let Some((id, at, text)) = outbox.last_error()? {
        say!("last error: note {id} at {}: {text}", show(at));
    }
    // Include everyone: how many active customers felt some love lately.
    let since = now - jiff::SignedDuration::from_hours(24 * i64::from(coverage_days));
    let log = Log::open(&config.log_path)?;
    let notes_to = outbox.customers_sent_since(since)?;
    let (active, touched) = log.coverage(since, &config.touchpoints.positive, &notes_to)?;
    let share = if active > 0 {
        100.0 * touched as f64 / active as f64
    } else {
        0.0
    };
    say!(
        "coverage: {touched} of {active} active customers ({share:.0}%) had a positive touch point in the last {coverage_days} days"
    );
    Ok(())
}
