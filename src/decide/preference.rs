//! A customer's own choices, made on the preferences page: which kinds of notes they keep, and
//! at most how often they want one. Stopping everything is a suppression (see `outbox`), not a
//! preference: it holds for every rule and every address as the suppression list does.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use crate::config::RuleKind;

/// The kinds of notes a customer can keep or refuse, each from one or more rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Category {
    /// `unhappy` rules: sorry, when something went wrong.
    Apologies,
    /// `followup` rules: a word once the problem was put right.
    Followups,
    /// `ratio` rules: thank-you notes.
    Thanks,
    /// `quiet` and `departed` rules: we have missed you.
    Missed,
    /// `seasonal` rules: cards and news of the season.
    Seasonal,
}

impl Category {
    /// Every category, in the order the page lists them.
    pub(crate) const ALL: [Category; 5] = [
        Category::Apologies,
        Category::Followups,
        Category::Thanks,
        Category::Missed,
        Category::Seasonal,
    ];

    /// Stable key, used as form field names and in the state database.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Category::Apologies => "apologies",
            Category::Followups => "followups",
            Category::Thanks => "thanks",
            Category::Missed => "missed",
            Category::Seasonal => "seasonal",
        }
    }

    /// The category of `key`, if it is one.
    pub(crate) fn from_key(key: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.key() == key)
    }

    /// The category a rule of `kind` writes in.
    pub(crate) fn of(kind: &RuleKind) -> Category {
        match kind {
            RuleKind::Unhappy { .. } => Category::Apologies,
            RuleKind::Followup { .. } => Category::Followups,
            RuleKind::Ratio { .. } => Category::Thanks,
            RuleKind::Quiet { .. } | RuleKind::Departed { .. } => Category::Missed,
            RuleKind::Seasonal(_) => Category::Seasonal,
        }
    }

    /// What the operator reads in a skip reason: "no seasonal cards".
    pub(crate) fn refused(self) -> &'static str {
        match self {
            Category::Apologies => "no apologies",
            Category::Followups => "no follow-ups",
            Category::Thanks => "no thank-you notes",
            Category::Missed => "no we-miss-you notes",
            Category::Seasonal => "no seasonal cards",
        }
    }
}

/// What a customer chose on the preferences page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Preference {
    /// The kinds of notes they do not want.
    pub refused: BTreeSet<Category>,
    /// At most one note every this many days (from any rule), if they asked for fewer.
    pub every_days: Option<u32>,
}

/// The personal caps the page offers, in days: one a month, one every three months.
pub(crate) const EVERY_DAYS: [u32; 2] = [30, 90];

impl Preference {
    /// Whether this is what a customer who never chose anything has.
    pub(crate) fn is_default(&self) -> bool {
        self.refused.is_empty() && self.every_days.is_none()
    }

    /// Why the customer's choice keeps a note of `kind` from them at `now`, given when the last
    /// note to them was queued or sent (`last_note`: the decide stage counts notes queued, the
    /// last look notes sent), or None when it may go.
    pub(crate) fn keeps_out(
        &self,
        kind: &RuleKind,
        last_note: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<String> {
        let category = Category::of(kind);
        if self.refused.contains(&category) {
            return Some(format!(
                "preference: {} (the customer's choice on the preferences page)",
                category.refused()
            ));
        }
        let (days, last) = (self.every_days?, last_note?);
        let until = last + SignedDuration::from_hours(i64::from(days) * 24);
        (until > now).then(|| {
            format!(
                "preference: at most one note every {days} days, and the last one was at {last}; not before {until}"
            )
        })
    }

    /// The choice in a sentence, for `explain`.
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self.refused.iter().map(|c| c.refused().into()).collect();
        if let Some(days) = self.every_days {
            parts.push(format!("at most one note every {days} days"));
        }
        match parts.is_empty() {
            true => "every kind of note".to_string(),
            false => parts.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> RuleKind {
        RuleKind::Quiet {
            min_interactions: 1,
            quiet_for: SignedDuration::from_hours(24 * 60),
        }
    }

    fn apology() -> RuleKind {
        RuleKind::Unhappy {
            within: SignedDuration::from_hours(24),
            sentiment_below: -0.5,
            kinds: vec![],
        }
    }

    #[test]
    fn a_refused_kind_is_kept_out_and_the_others_go() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let not_missed = Preference {
            refused: [Category::Missed].into(),
            every_days: None,
        };
        let why = not_missed.keeps_out(&quiet(), None, now).unwrap();
        assert!(why.starts_with("preference: no we-miss-you notes"), "{why}");
        assert_eq!(not_missed.keeps_out(&apology(), None, now), None);
    }

    #[test]
    fn a_personal_cap_waits_for_its_window_from_the_last_note() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let monthly = Preference {
            refused: BTreeSet::new(),
            every_days: Some(30),
        };
        let day = SignedDuration::from_hours(24);
        let recent = Some(now - day * 10);
        let why = monthly.keeps_out(&apology(), recent, now).unwrap();
        assert!(why.contains("at most one note every 30 days"), "{why}");
        assert_eq!(
            monthly.keeps_out(&apology(), Some(now - day * 31), now),
            None
        );
        assert_eq!(monthly.keeps_out(&apology(), None, now), None);
        assert_eq!(
            monthly.describe(),
            "at most one note every 30 days".to_string()
        );
        assert!(Preference::default().is_default());
    }
}
