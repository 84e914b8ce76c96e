//! Checking one `[[rule]]` of the file: its name, trigger, schedule, kind and parameters, with
//! every problem pointing at its place.

use jiff::SignedDuration;
use toml::Spanned;

use super::raw::RawRule;
use super::rule::{KINDS, Rule, RuleKind, RuleSpans, Schedule, Season};
use super::{Validator, diag};

impl Validator<'_> {
    /// Checks one `[[rule]]`.
    pub(super) fn rule(&mut self, raw: RawRule, default_cooldown: SignedDuration) -> Option<Rule> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '\n', '\r']) {
            let message = "a rule name must be non-empty, on one line, without '/'".to_string();
            self.error(raw.name.span(), message);
        }
        let on_interaction = self.trigger(&raw, &name);
        let kind_name = raw.kind.get_ref().as_str();
        let schedule = self.schedule(&raw, &name, on_interaction);
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
        let ledger_at_least = self.ledger_at_least(&raw, &name, kind_name);
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
            // An apology or a follow-up is never held back by the thank-yous that filled the
            // cap: the cap then holds the positive notes instead.
            capped: raw
                .capped
                .unwrap_or(!matches!(kind_name, "unhappy" | "followup")),
            ledger_at_least: ledger_at_least?,
            spans,
        })
    }

    /// Whether the rule runs on new interactions (`trigger`), checked against its kind.
    fn trigger(&mut self, raw: &RawRule, name: &str) -> bool {
        let span = raw.trigger.as_ref().map(Spanned::span).unwrap_or_default();
        let on_interaction = match raw.trigger.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("schedule") => false,
            Some("interaction") => true,
            Some(other) => {
                let message = format!(
                    "unknown trigger \"{other}\" in rule \"{name}\"; use \"schedule\" (the default) or \"interaction\""
                );
                self.error(span.clone(), message);
                false
            }
        };
        let kind_name = raw.kind.get_ref().as_str();
        if on_interaction && matches!(kind_name, "quiet" | "seasonal" | "ratio") {
            let message = format!(
                "rule \"{name}\": a {kind_name} rule is about time passing, not about a new interaction; remove trigger = \"interaction\" and give it a schedule"
            );
            self.error(span, message);
        }
        on_interaction
    }

    /// The rule's schedule: `Some(None)` for an event rule without one, `None` when invalid.
    fn schedule(
        &mut self,
        raw: &RawRule,
        name: &str,
        on_interaction: bool,
    ) -> Option<Option<Schedule>> {
        match &raw.schedule {
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
        }
    }

    /// `ledger_at_least` and its window: a positive ratio, for any kind but ratio (whose
    /// `target` says the opposite). Outer None: an error was reported.
    fn ledger_at_least(
        &mut self,
        raw: &RawRule,
        name: &str,
        kind: &str,
    ) -> Option<Option<(f64, SignedDuration)>> {
        let window = match &raw.ledger_window {
            Some(w) => self.duration("ledger_window", w)?,
            None => SignedDuration::from_hours(90 * 24),
        };
        let Some(at_least) = &raw.ledger_at_least else {
            if let Some(w) = &raw.ledger_window {
                let message = format!(
                    "rule \"{name}\" sets ledger_window without ledger_at_least; add ledger_at_least = 10 (positive touch points for every negative one) or remove it"
                );
                self.error(w.span(), message);
                return None;
            }
            return Some(None);
        };
        let ratio = *at_least.get_ref();
        if kind == "ratio" {
            let message = format!(
                "ledger_at_least does not apply to a ratio rule (rule \"{name}\"), which writes to customers below its `target`"
            );
            self.error(at_least.span(), message);
            return None;
        }
        if !(ratio.is_finite() && ratio > 0.0) {
            let message = format!(
                "ledger_at_least = {ratio} in rule \"{name}\": give the positive touch points wanted for every negative one, e.g. 10"
            );
            self.error(at_least.span(), message);
            return None;
        }
        Some(Some((ratio, window)))
    }

    /// Keys that belong to other kinds are errors: a silent no-op key is a trap.
    fn foreign_keys(&mut self, raw: &RawRule, name: &str, kind: &str, allowed: &[&str]) {
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
    }

    /// The rule's kind and its parameters, with their defaults.
    fn kind(&mut self, raw: &RawRule, name: &str) -> Option<RuleKind> {
        let kind = raw.kind.get_ref().as_str();
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
        self.foreign_keys(raw, name, kind, allowed);
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
                sentiment_below: raw.sentiment_below.as_ref().map_or(-0.3, |s| {
                    self.sentiment(&format!("sentiment_below in rule \"{name}\""), s)
                }),
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

    /// A seasonal rule's season.
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
