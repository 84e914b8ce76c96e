//! The customer's language: which template variant speaks to them, and dates, plurals and small
//! numbers in their language. Dates and plural rules come from ICU4X (CLDR data compiled in, for
//! any language); the words around them ("yesterday", "about four months", "two years") are
//! written here for English and French, the shipped languages, and are plain numbers in others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::{E, MD};
use icu_datetime::input::Date;
use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};

/// One language, ready to format.
pub(crate) struct Language {
    /// The primary subtag, lower case ("en", "fr"): it picks `unhappy.fr.j2`.
    pub primary: String,
    day_month: DateTimeFormatter<MD>,
    weekday: DateTimeFormatter<E>,
    plurals: PluralRules,
}

/// The words rekindle writes itself, per shipped language.
struct Words {
    numbers: [&'static str; 11],
    /// The feminine "one", where it differs ("une").
    one_feminine: &'static str,
    today: &'static str,
    yesterday: &'static str,
    /// Before a weekday or a date: "on" / "" (French says "mardi", "le 14 mars").
    on_weekday: &'static str,
    on_date: &'static str,
    about: &'static str,
    over_a_year: &'static str,
    day: (&'static str, &'static str),
    week: (&'static str, &'static str, bool),
    month: (&'static str, &'static str),
    year: (&'static str, &'static str),
    /// First-person plural and second-person words, for the wording lint.
    us: &'static [&'static str],
    you: &'static [&'static str],
}

const ENGLISH: Words = Words {
    numbers: [
        "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ],
    one_feminine: "one",
    today: "today",
    yesterday: "yesterday",
    on_weekday: "on ",
    on_date: "on ",
    about: "about ",
    over_a_year: "over a year",
    day: ("day", "days"),
    week: ("week", "weeks", false),
    month: ("month", "months"),
    year: ("year", "years"),
    us: &["we", "our", "us", "ours", "ourselves"],
    you: &["you", "your", "yours", "yourself"],
};

const FRENCH: Words = Words {
    numbers: [
        "aucun", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
    ],
    one_feminine: "une",
    today: "aujourd’hui",
    yesterday: "hier",
    on_weekday: "",
    on_date: "le ",
    about: "environ ",
    over_a_year: "plus d’un an",
    day: ("jour", "jours"),
    week: ("semaine", "semaines", true),
    month: ("mois", "mois"),
    year: ("an", "ans"),
    us: &["nous", "notre", "nos", "nôtre", "nôtres"],
    you: &["vous", "votre", "vos", "vôtre", "vôtres"],
};

impl Language {
    /// The language of BCP 47 tag `tag` ("en-GB", "fr"), or why it cannot be used.
    pub(crate) fn new(tag: &str) -> Result<Language, String> {
        let locale = Locale::try_from_str(tag.trim()).map_err(|e| {
            format!("{tag:?} is not a language tag ({e}); write e.g. \"en-GB\" or \"fr\"")
        })?;
        let primary = locale.id.language.as_str().to_string();
        let day_month = DateTimeFormatter::try_new((&locale).into(), MD::long())
            .map_err(|e| format!("no date formats for {tag:?}: {e}"))?;
        let weekday = DateTimeFormatter::try_new((&locale).into(), E::long())
            .map_err(|e| format!("no weekday names for {tag:?}: {e}"))?;
        let plurals = PluralRules::try_new_cardinal((&locale).into())
            .map_err(|e| format!("no plural rules for {tag:?}: {e}"))?;
        Ok(Language {
            primary,
            day_month,
            weekday,
            plurals,
        })
    }

    fn words(&self) -> Option<&'static Words> {
        match self.primary.as_str() {
            "en" => Some(&ENGLISH),
            "fr" => Some(&FRENCH),
            _ => None,
        }
    }

    /// "14 March", "14 mars".
    pub(crate) fn day_month(&self, d: jiff::civil::Date) -> String {
        match Date::try_new_iso(i32::from(d.year()), d.month() as u8, d.day() as u8) {
            Ok(date) => self.day_month.format(&date).to_string(),
            Err(_) => d.to_string(),
        }
    }

    /// "Tuesday", "mardi".
    fn weekday(&self, d: jiff::civil::Date) -> String {
        match Date::try_new_iso(i32::from(d.year()), d.month() as u8, d.day() as u8) {
            Ok(date) => self.weekday.format(&date).to_string(),
            Err(_) => d.to_string(),
        }
    }

    /// When `day` was, seen from `today`: "today", "yesterday", "on Tuesday" within the week,
    /// else "on 14 March" (in French: "aujourd’hui", "hier", "mardi", "le 14 mars").
    pub(crate) fn when(&self, day: jiff::civil::Date, today: jiff::civil::Date) -> String {
        let days = (today - day).get_days();
        match self.words() {
            Some(w) => match days {
                0 => w.today.to_string(),
                1 => w.yesterday.to_string(),
                2..=6 => format!("{}{}", w.on_weekday, self.weekday(day)),
                _ => format!("{}{}", w.on_date, self.day_month(day)),
            },
            None => self.day_month(day),
        }
    }

    /// Whether `n` takes the singular ("one") form.
    pub(crate) fn is_one(&self, n: i64) -> bool {
        self.plurals.category_for(n) == PluralCategory::One
    }

    /// `n` with its noun: "a year", "two years", "12 years"; "un an", "une semaine", "deux ans".
    /// `feminine` picks "une" in French.
    pub(crate) fn count(&self, n: i64, singular: &str, plural: &str, feminine: bool) -> String {
        let noun = if self.is_one(n) { singular } else { plural };
        let Some(w) = self.words() else {
            return format!("{n} {noun}");
        };
        match n {
            1 if w.numbers[1] == "one" => {
                let article = if starts_with_vowel_sound(singular) {
                    "an"
                } else {
                    "a"
                };
                format!("{article} {singular}")
            }
            1 if feminine => format!("{} {singular}", w.one_feminine),
            1..=10 => format!("{} {noun}", w.numbers[n as usize]),
            _ => format!("{n} {noun}"),
        }
    }

    /// A span of days as a person says it: "five days", "three weeks", "about four months",
    /// "over a year", "about two years".
    pub(crate) fn days_in_words(&self, days: i64) -> String {
        let w = self.words().unwrap_or(&ENGLISH);
        let say =
            |n: i64, (one, many): (&str, &str), feminine: bool| self.count(n, one, many, feminine);
        match days {
            ..=13 => say(days.max(1), w.day, false),
            14..=59 => say((days + 3) / 7, (w.week.0, w.week.1), w.week.2),
            60..=364 => format!("{}{}", w.about, say((days + 15) / 30, w.month, false)),
            365..=547 => w.over_a_year.to_string(),
            _ => format!("{}{}", w.about, say((days + 182) / 365, w.year, false)),
        }
    }

    /// The wording lint's words: (first-person plural, second person).
    pub(crate) fn us_and_you(&self) -> (&'static [&'static str], &'static [&'static str]) {
        let w = self.words().unwrap_or(&ENGLISH);
        (w.us, w.you)
    }
}

fn starts_with_vowel_sound(word: &str) -> bool {
    let w = word.to_lowercase();
    let vowel =
        w.starts_with(['a', 'e', 'i', 'o']) || w.starts_with("hour") || w.starts_with("honest");
    let u = w.starts_with('u') && !w.starts_with("uni") && !w.starts_with("use");
    (vowel && !w.starts_with("one")) || u
}

/// The languages met so far, each built once.
#[derive(Default)]
pub(crate) struct Languages {
    known: Mutex<HashMap<String, Arc<Language>>>,
}

impl Languages {
    /// The language of `tag`, built on first use; None when the tag is not usable.
    pub(crate) fn get(&self, tag: &str) -> Option<Arc<Language>> {
        let key = tag.trim().to_ascii_lowercase();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lang) = known.get(&key) {
            return Some(lang.clone());
        }
        let lang = Arc::new(Language::new(&key).ok()?);
        known.insert(key, lang.clone());
        Some(lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_plurals_and_counts_follow_the_language() {
        let (en, fr) = (
            Language::new("en-GB").expect("en"),
            Language::new("fr").expect("fr"),
        );
        let d = jiff::civil::date(2026, 3, 14);
        assert_eq!(en.day_month(d), "14 March");
        assert_eq!(fr.day_month(d), "14 mars");
        let today = jiff::civil::date(2026, 3, 17);
        assert_eq!(en.when(d, today), "on Saturday");
        assert_eq!(fr.when(d, today), "samedi");
        assert_eq!(en.when(jiff::civil::date(2026, 3, 1), today), "on 1 March");
        assert_eq!(fr.when(jiff::civil::date(2026, 3, 1), today), "le 1 mars");
        assert_eq!(fr.when(jiff::civil::date(2026, 3, 16), today), "hier");
        assert_eq!(en.count(1, "year", "years", false), "a year");
        assert_eq!(en.count(2, "year", "years", false), "two years");
        assert_eq!(fr.count(1, "an", "ans", false), "un an");
        assert_eq!(fr.count(1, "semaine", "semaines", true), "une semaine");
        assert_eq!(fr.count(12, "an", "ans", false), "12 ans");
        assert_eq!(fr.days_in_words(121), "environ quatre mois");
        assert_eq!(fr.days_in_words(20), "trois semaines");
        assert_eq!(en.days_in_words(400), "over a year");
        // French counts 0 and 1 as singular, English only 1.
        assert!(fr.is_one(0) && !en.is_one(0));
        let de = Language::new("de").expect("de");
        assert_eq!(de.day_month(d), "14. März");
        assert_eq!(de.count(3, "Jahr", "Jahre", false), "3 Jahre");
    }
}
