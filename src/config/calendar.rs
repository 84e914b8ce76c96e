//! In their own time: quiet hours, sending days and holidays, on each customer's wall clock.
//!
//! A note due while its customer sleeps, on a day off or a holiday is held until the next
//! allowed minute in that customer's time zone: not sent, not dropped.

use super::diag::Invalid;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// When notes may go out, in the customer's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Calendar {
    /// No notes from the first time until the second (which may be the next morning).
    pub quiet: Option<(Time, Time)>,
    /// Days notes may go out, Monday first.
    pub days: [bool; 7],
    /// Dates without notes.
    pub holidays: Vec<Holiday>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            quiet: None,
            days: [true; 7],
            holidays: Vec::new(),
        }
    }
}

/// A date without notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holiday {
    /// Every year ("12-25").
    Yearly(i8, i8),
    /// Once ("2026-12-24").
    Once(Date),
}

impl Holiday {
    /// Parses "MM-DD" or "YYYY-MM-DD".
    pub(crate) fn parse(text: &str) -> Result<Holiday, Invalid> {
        if let Ok(date) = text.parse::<Date>() {
            return Ok(Holiday::Once(date));
        }
        text.split_once('-')
            .and_then(|(m, d)| {
                let (m, d) = (m.parse::<i8>().ok()?, d.parse::<i8>().ok()?);
                Date::new(2024, m, d).ok().map(|_| Holiday::Yearly(m, d))
            })
            .ok_or_else(|| Invalid(format!("\"{text}\" is not a date; write \"12-25\" for every year or \"2026-12-24\" for once")))
    }

    fn is(&self, date: Date) -> bool {
        match *self {
            Holiday::Yearly(m, d) => date.month() == m && date.day() == d,
            Holiday::Once(once) => once == date,
        }
    }
}

/// Parses "20:00-09:00" into the start and end of the quiet hours.
pub(crate) fn parse_quiet_hours(text: &str) -> Result<(Time, Time), Invalid> {
    let (from, to) = text
        .split_once('-')
        .ok_or_else(|| format!("\"{text}\" is not a time range; write e.g. \"20:00-09:00\""))?;
    let time = |t: &str| {
        t.trim()
            .parse::<Time>()
            .map_err(|_| format!("\"{t}\" is not a time of day; write e.g. \"20:00\""))
    };
    let (from, to) = (time(from)?, time(to)?);
    if from == to {
        return Err(format!(
            "quiet hours \"{text}\" start and end at the same time; remove them or widen them"
        )
        .into());
    }
    Ok((from, to))
}

/// Parses a day name ("mon", "Monday").
pub(crate) fn parse_weekday(text: &str) -> Result<Weekday, Invalid> {
    let lower = text.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    days.iter()
        .find(|(short, _)| lower.len() >= 3 && lower.starts_with(short))
        .map(|(_, day)| *day)
        .ok_or_else(|| {
            Invalid(format!(
                "\"{text}\" is not a day; write mon, tue, wed, thu, fri, sat or sun"
            ))
        })
}

impl Calendar {
    /// Whether nothing is restricted.
    pub(crate) fn is_open(&self) -> bool {
        self.quiet.is_none() && self.days.iter().all(|d| *d) && self.holidays.is_empty()
    }

    /// `None` when a note may go at `now` in `tz`; otherwise the first minute it may.
    pub(crate) fn next_allowed(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.is_open() {
            return None;
        }
        let mut at = now.to_zoned_datetime(tz.clone());
        // A free minute is at most a few weeks away, or the calendar forbids every day (config
        // validation refuses that); stop looking after a year either way.
        for _ in 0..800 {
            let date = at.date();
            let day_ok = self.days[date.weekday().to_monday_zero_offset() as usize]
                && !self.holidays.iter().any(|h| h.is(date));
            if !day_ok {
                let next_day = date.checked_add(1.day()).ok()?;
                at = next_day.to_zoned_datetime(tz.clone()).ok()?;
                continue;
            }
            match self.quiet {
                Some((from, to)) if in_quiet(at.time(), from, to) => {
                    // To the end of the quiet hours: today, or tomorrow morning.
                    let end_date = if from > to && at.time() >= from {
                        date.checked_add(1.day()).ok()?
                    } else {
                        date
                    };
                    at = end_date
                        .to_datetime(to)
                        .to_zoned_datetime(tz.clone())
                        .ok()?;
                }
                _ => {
                    let t = at.timestamp();
                    return (t != now).then_some(t);
                }
            }
        }
        None
    }
}

fn in_quiet(t: Time, from: Time, to: Time) -> bool {
    if from < to {
        from <= t && t < to
    } else {
        t >= from || t < to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Calendar {
        Calendar {
            quiet: Some(parse_quiet_hours("20:00-09:00").expect("hours")),
            days: [true, true, true, true, true, true, false],
            holidays: vec![Holiday::parse("12-25").expect("holiday")],
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn a_note_due_at_night_waits_for_the_customers_own_morning() {
        let c = calendar();
        // 22:00 in Tokyo on a Tuesday → 09:00 Wednesday, Tokyo time.
        let tokyo = TimeZone::get("Asia/Tokyo").expect("tz");
        assert_eq!(
            c.next_allowed(at("2026-11-24T13:00:00Z"), &tokyo),
            Some(at("2026-11-25T00:00:00Z"))
        );
        // The same instant is 05:00 in Los Angeles → 09:00 the same day there.
        let la = TimeZone::get("America/Los_Angeles").expect("tz");
        assert_eq!(
            c.next_allowed(at("2026-11-24T13:00:00Z"), &la),
            Some(at("2026-11-24T17:00:00Z"))
        );
        // 10:00 in Los Angeles: go now.
        assert_eq!(c.next_allowed(at("2026-11-24T18:00:00Z"), &la), None);
    }

    #[test]
    fn sundays_and_holidays_are_skipped() {
        let c = calendar();
        let paris = TimeZone::get("Europe/Paris").expect("tz");
        // Saturday 21:00 → Sunday is off → Monday 09:00.
        assert_eq!(
            c.next_allowed(at("2026-11-28T20:00:00Z"), &paris),
            Some(at("2026-11-30T08:00:00Z"))
        );
        // Christmas Eve 23:00 → Christmas is off → 26 December 09:00.
        assert_eq!(
            c.next_allowed(at("2026-12-24T22:00:00Z"), &paris),
            Some(at("2026-12-26T08:00:00Z"))
        );
    }

    #[test]
    fn hours_and_days_parse_with_clear_errors() {
        assert!(parse_quiet_hours("9-17").is_err());
        assert_eq!(parse_weekday("Monday"), Ok(Weekday::Monday));
        assert!(parse_weekday("mo").is_err());
        assert_eq!(
            Holiday::parse("2026-12-24"),
            Ok(Holiday::Once(Date::constant(2026, 12, 24)))
        );
        assert!(Holiday::parse("13-01").is_err());
    }
}
