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
    inbound(&config, &outbox, now, &show)?;
    web_choices(&config, &outbox, now)?;
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

/// What customers chose through the web face over the last 7 and 30 days. Nothing without
/// `[http]` unless something was chosen.
fn web_choices(config: &Config, outbox: &Outbox, now: jiff::Timestamp) -> Result<(), Error> {
    let days = |n: i64| now - jiff::SignedDuration::from_hours(24 * n);
    let (week, month) = (outbox.web_choices(days(7))?, outbox.web_choices(days(30))?);
    if config.http.is_none() && month == (0, 0, 0) {
        return Ok(());
    }
    say!("chosen on the web face (last 7 days / 30 days):");
    for (label, w, m) in [
        ("one-click unsubscribes", week.0, month.0),
        ("stopped on the page", week.1, month.1),
        ("preferences saved", week.2, month.2),
    ] {
        say!("  {label:<22} {w:>5} / {m}");
    }
    Ok(())
}

/// What came back over the last 7 and 30 days, the bounce and complaint rates, and how each
/// mailbox last went. Nothing when no mailbox is read and nothing came back.
fn inbound(
    config: &Config,
    outbox: &Outbox,
    now: jiff::Timestamp,
    show: &dyn Fn(i64) -> String,
) -> Result<(), Error> {
    let days = |n: i64| now - jiff::SignedDuration::from_hours(24 * n);
    let (week, month) = (
        outbox.inbound_counts(days(7).as_second())?,
        outbox.inbound_counts(days(30).as_second())?,
    );
    if config.inbound.sources.is_empty() && month.is_empty() {
        return Ok(());
    }
    say!("came back (last 7 days / 30 days):");
    let count = |counts: &std::collections::HashMap<String, i64>, kind: &str| {
        counts.get(kind).copied().unwrap_or(0)
    };
    for (kind, label) in [
        ("hard-bounce", "hard bounces"),
        ("soft-bounce", "soft bounces"),
        ("complaint", "spam complaints"),
        ("reply", "replies"),
        ("auto-reply", "automatic replies"),
        ("unsubscribe", "unsubscribes by mail"),
    ] {
        say!(
            "  {label:<21} {:>5} / {}",
            count(&week, kind),
            count(&month, kind)
        );
    }
    let (sent_week, sent_month) = (outbox.sent_since(days(7))?, outbox.sent_since(days(30))?);
    let rate = |n: i64, of: i64| {
        if of > 0 {
            format!("{:.1}%", 100.0 * n as f64 / of as f64)
        } else {
            "-".to_string()
        }
    };
    say!(
        "  bounce rate {} / {}, complaint rate {} / {} of the notes sent ({sent_week} / {sent_month})",
        rate(count(&week, "hard-bounce"), sent_week),
        rate(count(&month, "hard-bounce"), sent_month),
        rate(count(&week, "complaint"), sent_week),
        rate(count(&month, "complaint"), sent_month),
    );
    let statuses = outbox.source_statuses()?;
    for source in &config.inbound.sources {
        let name = source.name();
        let status = statuses.iter().find(|s| s.source == name);
        let line = match status {
            None => "not read yet".to_string(),
            Some(s) => match (&s.error, s.ok_at) {
                (Some((at, why)), ok) if ok.is_none_or(|ok| ok < *at) => format!(
                    "CANNOT BE READ since {}: {why}{}",
                    show(*at),
                    ok.map(|ok| format!(" (last read {})", show(ok)))
                        .unwrap_or_default()
                ),
                (_, Some(ok)) => format!("last read {}", show(ok)),
                _ => "not read yet".to_string(),
            },
        };
        say!("  mailbox {name}: {line}");
    }
    Ok(())
}
