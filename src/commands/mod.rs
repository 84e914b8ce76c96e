//! The one-shot commands, one file each; the daemon (`rekindle run`) is in `daemon`.

mod check;
mod explain;
mod forecast;
mod outbox;
mod plan;
mod preview;
mod run_once;
mod status;
mod suppress;

use jiff::Timestamp;

use crate::config::Config;
use crate::error::Error;

pub(crate) use check::check;
pub(crate) use explain::explain;
pub(crate) use outbox::outbox;
pub(crate) use plan::plan;
pub(crate) use preview::preview;
pub(crate) use run_once::{evaluate_and_deliver, run_once};
pub(crate) use status::status;
pub(crate) use suppress::suppress;

/// Parses `--at`: a timestamp with an offset, or a civil date-time or date in `tz`.
pub(crate) fn parse_at(text: Option<&str>, config: &Config) -> Result<Timestamp, Error> {
    let Some(text) = text else {
        return Ok(crate::clock::now());
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = text.parse::<jiff::civil::DateTime>().or_else(|_| {
        text.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    civil
        .and_then(|dt| dt.to_zoned_datetime(config.timezone.clone()))
        .map(|z| z.timestamp())
        .map_err(|_| {
            Error::Usage(format!(
                "cannot read --at {text:?}; write e.g. \"2027-02-11T09:00:00Z\", \"2027-02-11 09:00\" or \"2027-02-11\""
            ))
        })
}

/// Unix seconds as local time in `defaults.timezone`, for people.
fn local_time(config: &Config, secs: i64, format: &str) -> String {
    Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned_datetime(config.timezone.clone())
                .strftime(format)
                .to_string()
        })
        .unwrap_or_default()
}

/// "12 note(s) wait for their time; the first goes at 09:00 (quiet hours until 09:00)": what
/// `status` and `run --once` say of notes held for quiet hours, quiet days, a delay or a retry.
pub(crate) fn not_yet_due(
    later: &crate::outbox::NotYetDue,
    show: &dyn Fn(i64) -> String,
) -> String {
    format!(
        "{} note(s) wait for their time; the first goes at {}{}",
        later.count,
        show(later.next),
        later
            .why
            .as_deref()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default()
    )
}
