//! `[[rule]]` entries: what each rule kind needs, and the checks that make it safe to run.

use std::ops::Range;

use super::diag::Invalid;
use jiff::SignedDuration;

/// The rule kinds rekindle knows.
pub(crate) const KINDS: [&str; 6] = [
    "quiet", "unhappy", "departed", "followup", "ratio", "seasonal",
];

/// A validated rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Unique name.
    pub name: String,
    /// What it selects.
    pub kind: RuleKind,
    /// When it runs on the clock (None: only on new interactions).
    pub schedule: Option<Schedule>,
    /// Whether new interactions in the log trigger it within seconds.
    pub on_interaction: bool,
    /// How long after its triggering interaction a note is held.
    pub delay: SignedDuration,
    /// Template file name.
    pub template: String,
    /// Higher wins.
    pub priority: i64,
    /// Least time between two of its notes to one customer.
    pub cooldown: SignedDuration,
    /// SQL boolean expression over `customers`.
    pub segment: Option<String>,
    /// Notes per day.
    pub daily_limit: Option<u32>,
    /// Whether it runs at all.
    pub enabled: bool,
    /// Whether an open complaint holds its notes back.
    pub hold_while_unhappy: bool,
    /// Whether the frequency cap holds its notes back (they count toward it either way).
    pub capped: bool,
    /// Only customers whose ledger has at least this many positive touch points for every
    /// negative one, counted over this window.
    pub ledger_at_least: Option<(f64, SignedDuration)>,
    /// Where its values are in the file, for diagnostics found later.
    pub spans: RuleSpans,
}

impl Rule {
    /// A rule rekindle runs for itself (the staff digest's selections): `kind` over everyone,
    /// never scheduled, never sending on its own.
    pub(crate) fn internal(name: &str, kind: RuleKind) -> Rule {
        Rule {
            name: name.to_string(),
            kind,
            schedule: None,
            on_interaction: false,
            delay: SignedDuration::ZERO,
            template: String::new(),
            priority: 0,
            cooldown: SignedDuration::ZERO,
            segment: None,
            daily_limit: None,
            enabled: true,
            hold_while_unhappy: false,
            capped: true,
            ledger_at_least: None,
            spans: RuleSpans::default(),
        }
    }
}

/// Byte spans of a rule's values in the config file.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSpans {
    /// The `name` value.
    pub name: Range<usize>,
    /// The `template` value.
    pub template: Range<usize>,
    /// The `segment` value.
    pub segment: Range<usize>,
}

/// What a rule selects, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RuleKind {
    /// Customers with at least `min_interactions` interactions and none for `quiet_for`.
    Quiet {
        /// Least number of past interactions.
        min_interactions: u32,
        /// Time without any interaction.
        quiet_for: SignedDuration,
    },
    /// A complaint (or a low sentiment) within `within`.
    Unhappy {
        /// How far back to look.
        within: SignedDuration,
        /// Sentiment threshold.
        sentiment_below: f64,
        /// Complaint kinds.
        kinds: Vec<String>,
    },
    /// A cancellation (or status "departed") within `within`.
    Departed {
        /// How far back to look.
        within: SignedDuration,
        /// Cancellation kinds.
        kinds: Vec<String>,
    },
    /// An interaction of one of `kinds` (a resolution) that follows one of `after` (a complaint)
    /// within `within`: a thank-you for the feedback, quoting the original.
    Followup {
        /// How far back to look for the follow-up interaction.
        within: SignedDuration,
        /// The follow-up kinds.
        kinds: Vec<String>,
        /// The kinds followed up.
        after: Vec<String>,
    },
    /// Fewer than `target` positive touch points for every negative one within `window`
    /// (rekindle's own sent notes count as positive): an appreciation note, largest deficit first.
    Ratio {
        /// The counting window.
        window: SignedDuration,
        /// Positive touch points wanted per negative one.
        target: f64,
    },
    /// Everyone, once per season, while the season's date window is open.
    Seasonal(Season),
}

impl RuleKind {
    /// The kind's name as written in the config.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            RuleKind::Quiet { .. } => "quiet",
            RuleKind::Unhappy { .. } => "unhappy",
            RuleKind::Departed { .. } => "departed",
            RuleKind::Followup { .. } => "followup",
            RuleKind::Ratio { .. } => "ratio",
            RuleKind::Seasonal(_) => "seasonal",
        }
    }
}

impl RuleKind {
    /// Who the rule selects, in words (for `explain`).
    pub(crate) fn describe(&self) -> String {
        let span = |d: &SignedDuration| super::format_duration(*d);
        match self {
            RuleKind::Quiet {
                min_interactions,
                quiet_for,
            } => format!(
                "at least {min_interactions} interactions and none for {}",
                span(quiet_for)
            ),
            RuleKind::Unhappy {
                within,
                sentiment_below,
                kinds,
            } => format!(
                "a {} or a sentiment below {sentiment_below} in the last {}",
                kinds.join("/"),
                span(within)
            ),
            RuleKind::Departed { within, kinds } => format!(
                "a {} or status 'departed' in the last {}",
                kinds.join("/"),
                span(within)
            ),
            RuleKind::Followup {
                within,
                kinds,
                after,
            } => format!(
                "a {} after a {} in the last {}",
                kinds.join("/"),
                after.join("/"),
                span(within)
            ),
            RuleKind::Ratio { window, target } => format!(
                "fewer than {target} positive touch points for every negative one over {}",
                span(window)
            ),
            RuleKind::Seasonal(s) => format!(
                "everyone not departed while {} ({:02}-{:02} to {:02}-{:02}) is on",
                s.title, s.start.0, s.start.1, s.end.0, s.end.1
            ),
        }
    }
}

/// A yearly date window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Season {
    /// Short name, e.g. "valentines".
    pub name: String,
    /// Title for templates, e.g. "Valentine's week".
    pub title: String,
    /// First day (month, day).
    pub start: (i8, i8),
    /// Last day (month, day); before `start` when the window spans New Year.
    pub end: (i8, i8),
}

impl Season {
    /// The year of the season open on `date`, if one is. A window that spans New Year
    /// belongs to the year it starts in.
    pub(crate) fn open_on(&self, date: jiff::civil::Date) -> Option<i16> {
        let md = (date.month(), date.day());
        if self.start <= self.end {
            (self.start <= md && md <= self.end).then_some(date.year())
        } else if md >= self.start {
            Some(date.year())
        } else if md <= self.end {
            Some(date.year() - 1)
        } else {
            None
        }
    }
}

/// A 5-field cron schedule, evaluated on the wall clock of `defaults.timezone`.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// As written.
    pub text: String,
    /// Parsed (with a seconds field of 0 added).
    pub cron: croner::Cron,
}

impl Schedule {
    /// Parses a classic 5-field cron expression (minute hour day-of-month month day-of-week).
    /// Like tokio-cron-scheduler, a day-of-month and a day-of-week must *both* match.
    pub(crate) fn parse(text: &str) -> Result<Schedule, Invalid> {
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            )
            .into());
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&format!("0 {text}"))
            .map_err(|e| e.to_string().trim_end_matches('.').to_string())?;
        // A date that never comes ("0 9 31 2 *", 31 February) would leave the rule silent.
        if cron
            .find_next_occurrence(&chrono::Utc::now(), false)
            .is_err()
        {
            return Err(
                "this schedule never fires (no such date, e.g. 31 February); check the day of month and the month"
                    .to_string()
                    .into(),
            );
        }
        Ok(Schedule {
            text: text.to_string(),
            cron,
        })
    }

    /// Whether the schedule fires at the wall-clock minute `local`.
    pub(crate) fn matches(&self, local: jiff::civil::DateTime) -> bool {
        as_utc(local).is_some_and(|at| self.cron.is_time_matching(&at).unwrap_or(false))
    }

    /// The latest wall-clock minute in (`after`, `upto`] the schedule fires at, if any. Wall
    /// clock: a 02:30 that a DST change skips or repeats is one scheduled time all the same.
    pub(crate) fn latest_between(
        &self,
        after: jiff::civil::DateTime,
        upto: jiff::civil::DateTime,
    ) -> Option<jiff::civil::DateTime> {
        let (mut at, upto) = (as_utc(after)?, as_utc(upto)?);
        let mut latest = None;
        while let Ok(next) = self.cron.find_next_occurrence(&at, false) {
            if next > upto {
                break;
            }
            latest = Some(next);
            at = next;
        }
        let naive = latest?.naive_utc();
        jiff::civil::DateTime::new(
            i16::try_from(chrono::Datelike::year(&naive)).ok()?,
            chrono::Datelike::month(&naive) as i8,
            chrono::Datelike::day(&naive) as i8,
            chrono::Timelike::hour(&naive) as i8,
            chrono::Timelike::minute(&naive) as i8,
            0,
            0,
        )
        .ok()
    }
}

/// A wall-clock minute handed to croner as if it were UTC: the schedule is matched field by
/// field, so "09:00" means 09:00 local time on both sides of a DST change.
fn as_utc(local: jiff::civil::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDate::from_ymd_opt(
        i32::from(local.year()),
        local.month() as u32,
        local.day() as u32,
    )
    .and_then(|d| d.and_hms_opt(local.hour() as u32, local.minute() as u32, 0))
    .map(|n| chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(n, chrono::Utc))
}
