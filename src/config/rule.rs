//! `[[rule]]` entries: what each rule kind needs, and the checks that make it safe to run.

use std::ops::Range;

use jiff::SignedDuration;
use serde::Deserialize;
use toml::Spanned;

use super::{Validator, diag};

/// The rule kinds rekindle knows.
pub(crate) const KINDS: [&str; 6] = [
    "quiet", "unhappy", "departed", "followup", "ratio", "seasonal",
];

/// One `[[rule]]` as written. Kind-specific keys are optional here and checked per kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    /// Unique name, used in logs, the outbox and `preview --rule`.
    name: Spanned<String>,
    /// One of [`KINDS`].
    kind: Spanned<String>,
    /// 5-field cron expression, in `defaults.timezone` (optional for event-driven rules).
    schedule: Option<Spanned<String>>,
    /// "schedule" (default) or "interaction": also react to new rows in the log within seconds.
    trigger: Option<Spanned<String>>,
    /// Hold each note this long after the interaction that triggered it (e.g. "30m").
    delay: Option<Spanned<String>>,
    /// Template file name inside the template directory.
    template: Spanned<String>,
    /// Higher wins when rules compete for the same customer.
    #[serde(default)]
    priority: i64,
    /// Least time between two notes of this rule to one customer (default: policy.cooldown).
    cooldown: Option<Spanned<String>>,
    /// Optional SQL boolean expression over `customers` (columns of the canonical schema).
    segment: Option<Spanned<String>>,
    /// At most this many notes queued by this rule per day.
    daily_limit: Option<Spanned<u32>>,
    /// Set to false to keep a rule in the file without running it.
    #[serde(default = "yes")]
    enabled: bool,
    /// Wait while the customer has an open complaint (default: true for quiet and seasonal).
    hold_while_unhappy: Option<bool>,
    /// quiet: least number of past interactions.
    min_interactions: Option<Spanned<u32>>,
    /// quiet: how long without any interaction.
    quiet_for: Option<Spanned<String>>,
    /// unhappy, departed: how far back to look for the triggering interaction.
    within: Option<Spanned<String>>,
    /// unhappy: a sentiment below this counts as unhappy.
    sentiment_below: Option<Spanned<f64>>,
    /// unhappy: complaint kinds; departed: cancellation kinds; followup: the follow-up kinds.
    kinds: Option<Spanned<Vec<String>>>,
    /// followup: the kinds of the interaction followed up (e.g. "complaint").
    after: Option<Spanned<Vec<String>>>,
    /// ratio: the window the touch points are counted over.
    window: Option<Spanned<String>>,
    /// ratio: positive touch points wanted for every negative one.
    target: Option<Spanned<f64>>,
    /// seasonal: short name of the season, used in the occasion key (e.g. "valentines").
    season: Option<Spanned<String>>,
    /// seasonal: a title for templates (e.g. "Valentine's week").
    title: Option<Spanned<String>>,
    /// seasonal: first day, "MM-DD".
    start: Option<Spanned<String>>,
    /// seasonal: last day, "MM-DD".
    end: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

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
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            ));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&format!("0 {text}"))
            .map_err(|e| e.to_string().trim_end_matches('.').to_string())?;
        Ok(Schedule {
            text: text.to_string(),
            cron,
        })
    }

    /// Whether the schedule fires at the wall-clock minute `local`.
    pub(crate) fn matches(&self, local: jiff::civil::DateTime) -> bool {
        let naive = chrono::NaiveDate::from_ymd_opt(
            i32::from(local.year()),
            local.month() as u32,
            local.day() as u32,
        )
        .and_then(|d| d.and_hms_opt(local.hour() as u32, local.minute() as u32, 0));
        // The wall-clock time is matched field by field, so it is handed over as if it were UTC:
        // that keeps "09:00" meaning 09:00 local time on both sides of a DST change.
        naive.is_some_and(|n| {
            let at = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(n, chrono::Utc);
            self.cron.is_time_matching(&at).unwrap_or(false)
        })
    }
}

impl Validator<'_> {
    pub(super) fn rule(&mut self, raw: RawRule, default_cooldown: SignedDuration) -> Option<Rule> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '\n', '\r']) {
            let message = "a rule name must be non-empty, on one line, without '/'".to_string();
            self.error(raw.name.span(), message);
        }
        let on_interaction = match raw.trigger.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("schedule") => false,
            Some("interaction") => true,
            Some(other) => {
                let message = format!(
                    "unknown trigger \"{other}\" in rule \"{name}\"; use \"schedule\" (the default) or \"interaction\""
                );
                self.error(
                    raw.trigger.as_ref().map(Spanned::span).unwrap_or_default(),
                    message,
                );
                false
            }
        };
        let kind_name = raw.kind.get_ref().as_str();
        if on_interaction && matches!(kind_name, "quiet" | "seasonal" | "ratio") {
            let message = format!(
                "rule \"{name}\": a {kind_name} rule is about time passing, not about a new interaction; remove trigger = \"interaction\" and give it a schedule"
            );
            self.error(
                raw.trigger.as_ref().map(Spanned::span).unwrap_or_default(),
                message,
            );
        }
        let schedule = match &raw.schedule {
            Some(text) => match Schedule::parse(text.get_ref()) {
                Ok(s) => Some(Some(s)),
                Err(why) => {
                    let message = format!(
                        "invalid cron schedule \"{}\" in rule \"{name}\": {why}; e.g. \"0 10 * * *\" is every day at 10:00",
                        text.get_ref()
                    );
                    self.error(text.span(), message);
                    None
                }
            },
            None if on_interaction => Some(None),
            None => {
                let message = format!(
                    "rule \"{name}\" needs a `schedule` (5-field cron, e.g. \"0 10 * * *\") or trigger = \"interaction\""
                );
                self.error(raw.name.span(), message);
                None
            }
        };
        let delay = match &raw.delay {
            Some(d) => self.duration("delay", d),
            None => Some(SignedDuration::ZERO),
        };
        let cooldown = match &raw.cooldown {
            Some(c) => self.duration("cooldown", c),
            None => Some(default_cooldown),
        };
        if let Some(segment) = &raw.segment
            && segment.get_ref().contains(';')
        {
            let message = format!(
                "the segment of rule \"{name}\" contains ';': a segment is one SQL boolean expression over `customers`, e.g. \"status = 'active'\""
            );
            self.error(segment.span(), message);
        }
        if let Some(limit) = &raw.daily_limit
            && *limit.get_ref() == 0
        {
            let message = format!(
                "rule \"{name}\" has daily_limit = 0 and will never queue a note; remove the rule or set enabled = false"
            );
            self.warn(limit.span(), message);
        }
        let kind = self.kind(&raw, &name);
        let spans = RuleSpans {
            name: raw.name.span(),
            template: raw.template.span(),
            segment: raw.segment.as_ref().map(Spanned::span).unwrap_or_default(),
        };
        Some(Rule {
            name,
            kind: kind?,
            schedule: schedule?,
            on_interaction,
            delay: delay?,
            template: raw.template.into_inner(),
            priority: raw.priority,
            cooldown: cooldown?,
            segment: raw.segment.map(Spanned::into_inner),
            daily_limit: raw.daily_limit.map(Spanned::into_inner),
            enabled: raw.enabled,
            hold_while_unhappy: raw
                .hold_while_unhappy
                .unwrap_or(matches!(kind_name, "quiet" | "seasonal" | "ratio")),
            spans,
        })
    }

    fn kind(&mut self, raw: &RawRule, name: &str) -> Option<RuleKind> {
        let kind = raw.kind.get_ref().as_str();
        // Keys that belong to other kinds are errors: a silent no-op key is a trap.
        let allowed: &[&str] = match kind {
            "quiet" => &["min_interactions", "quiet_for"],
            "unhappy" => &["within", "sentiment_below", "kinds"],
            "departed" => &["within", "kinds"],
            "followup" => &["within", "kinds", "after"],
            "ratio" => &["window", "target"],
            "seasonal" => &["season", "title", "start", "end"],
            other => {
                let message = format!(
                    "unknown rule kind \"{other}\"{}; known kinds: {}",
                    diag::suggestion(other, KINDS),
                    KINDS.join(", ")
                );
                self.error(raw.kind.span(), message);
                return None;
            }
        };
        let present = [
            (
                "min_interactions",
                raw.min_interactions.as_ref().map(Spanned::span),
            ),
            ("quiet_for", raw.quiet_for.as_ref().map(Spanned::span)),
            ("within", raw.within.as_ref().map(Spanned::span)),
            (
                "sentiment_below",
                raw.sentiment_below.as_ref().map(Spanned::span),
            ),
            ("kinds", raw.kinds.as_ref().map(Spanned::span)),
            ("after", raw.after.as_ref().map(Spanned::span)),
            ("window", raw.window.as_ref().map(Spanned::span)),
            ("target", raw.target.as_ref().map(Spanned::span)),
            ("season", raw.season.as_ref().map(Spanned::span)),
            ("title", raw.title.as_ref().map(Spanned::span)),
            ("start", raw.start.as_ref().map(Spanned::span)),
            ("end", raw.end.as_ref().map(Spanned::span)),
        ];
        for (key, span) in present {
            if let Some(span) = span
                && !allowed.contains(&key)
            {
                let message = format!(
                    "`{key}` does not apply to a {kind} rule (rule \"{name}\"); keys for {kind}: {}",
                    allowed.join(", ")
                );
                self.error(span, message);
            }
        }
        let duration =
            |v: &mut Self, key: &str, value: &Option<Spanned<String>>, default: &str| match value {
                Some(value) => v.duration(key, value),
                None => super::parse_duration(default).ok(),
            };
        let kinds = |value: &Option<Spanned<Vec<String>>>, default: &str| match value {
            Some(k) => k.get_ref().clone(),
            None => vec![default.to_string()],
        };
        match kind {
            "quiet" => Some(RuleKind::Quiet {
                min_interactions: raw.min_interactions.as_ref().map_or(3, |m| *m.get_ref()),
                quiet_for: duration(self, "quiet_for", &raw.quiet_for, "60d")?,
            }),
            "unhappy" => Some(RuleKind::Unhappy {
                within: duration(self, "within", &raw.within, "14d")?,
                sentiment_below: raw.sentiment_below.as_ref().map_or(-0.3, |s| *s.get_ref()),
                kinds: kinds(&raw.kinds, "complaint"),
            }),
            "departed" => Some(RuleKind::Departed {
                within: duration(self, "within", &raw.within, "30d")?,
                kinds: kinds(&raw.kinds, "cancellation"),
            }),
            "followup" => Some(RuleKind::Followup {
                within: duration(self, "within", &raw.within, "14d")?,
                kinds: kinds(&raw.kinds, "resolution"),
                after: kinds(&raw.after, "complaint"),
            }),
            "ratio" => {
                let target = raw.target.as_ref().map_or(10.0, |t| *t.get_ref());
                if let Some(t) = &raw.target
                    && !(target > 0.0 && target.is_finite())
                {
                    let message = format!(
                        "target = {target} in rule \"{name}\" must be a positive number of positive touch points per negative one, e.g. 10"
                    );
                    self.error(t.span(), message);
                }
                Some(RuleKind::Ratio {
                    window: duration(self, "window", &raw.window, "90d")?,
                    target,
                })
            }
            _ => self.season(raw, name).map(RuleKind::Seasonal),
        }
    }

    fn season(&mut self, raw: &RawRule, name: &str) -> Option<Season> {
        let mut day = |key: &str, value: &Option<Spanned<String>>| -> Option<(i8, i8)> {
            let Some(value) = value else {
                let message = format!("seasonal rule \"{name}\" needs `{key}` (\"MM-DD\")");
                self.error(raw.kind.span(), message);
                return None;
            };
            let parsed = value.get_ref().split_once('-').and_then(|(m, d)| {
                let (m, d) = (m.parse::<i8>().ok()?, d.parse::<i8>().ok()?);
                // 2024 is a leap year, so "02-29" is accepted.
                jiff::civil::Date::new(2024, m, d).ok().map(|_| (m, d))
            });
            if parsed.is_none() {
                let message = format!(
                    "invalid date \"{}\" for `{key}` in rule \"{name}\"; write month-day, e.g. \"02-10\"",
                    value.get_ref()
                );
                self.error(value.span(), message);
            }
            parsed
        };
        let start = day("start", &raw.start);
        let end = day("end", &raw.end);
        let season = raw
            .season
            .as_ref()
            .map_or_else(|| name.to_string(), |s| s.get_ref().clone());
        let title = raw
            .title
            .as_ref()
            .map_or_else(|| season.clone(), |t| t.get_ref().clone());
        Some(Season {
            name: season,
            title,
            start: start?,
            end: end?,
        })
    }
}
