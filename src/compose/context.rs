//! The recipient (a customer row made safe to write to) and the context templates see.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::Language;
use crate::config::{Config, Rule, RuleKind};
use crate::decide::Skip;
use crate::log::{CustomerRow, InteractionRow};
use crate::select::{Candidate, Found, Ledger};

/// A customer we can safely write to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    /// The email address, validated.
    pub address: lettre::Address,
    /// The name for the To header, when the log has a usable one.
    pub display_name: Option<String>,
    /// The customer's time zone (or the config default).
    pub timezone: TimeZone,
    /// The customer's date when the note is written.
    pub today: jiff::civil::Date,
    /// The customer's language, a BCP 47 tag: `attributes.language`, else `defaults.language`.
    pub language: String,
    /// What a template sees.
    pub context: CustomerContext,
    /// Things worth a warning in the log that did not stop the note (bad time zone, bad JSON).
    pub warnings: Vec<String>,
}

/// `customer` in templates.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CustomerContext {
    id: String,
    /// Whether the log gave a usable name (else `name` and `first_name` are the fallback).
    named: bool,
    name: String,
    first_name: String,
    email: String,
    timezone: String,
    since: String,
    since_year: i16,
    years: i64,
    interactions: i64,
    attributes: serde_json::Map<String, serde_json::Value>,
}

impl CustomerContext {
    /// The customer's first name, when the log gave a usable name.
    pub(crate) fn first_name(&self) -> Option<&str> {
        self.named.then_some(self.first_name.as_str())
    }
}

/// The name to write to, trimmed. One with line breaks or other control characters (a header
/// injection attempt), or with bidi controls (which would turn the Subject and the To line
/// around), is unsafe: it is not used, and the note goes with the fallback greeting.
fn usable_name<'a>(name: &'a str, warnings: &mut Vec<String>) -> &'a str {
    let name = name.trim();
    let why = if name.chars().any(char::is_control) {
        "the name contains line breaks or control characters (possible header injection)"
    } else if name.chars().any(crate::inert::is_bidi_control) {
        "the name contains bidirectional text controls (it could show reversed)"
    } else {
        return name;
    };
    warnings.push(format!("{why}; using the fallback greeting"));
    ""
}

/// Validates a customer row: a bad address skips the customer; a missing or unsafe name or a
/// bad time zone gets a safe fallback and a warning.
pub(crate) fn recipient(
    row: &CustomerRow,
    config: &Config,
    now: Timestamp,
) -> Result<Recipient, Skip> {
    let email = row.email.as_deref().unwrap_or("").trim();
    let address: lettre::Address = email
        .parse()
        .map_err(|_| Skip::InvalidAddress(email.chars().take(80).collect()))?;
    let mut warnings = Vec::new();
    let name = usable_name(row.name.as_deref().unwrap_or(""), &mut warnings);
    let Some(created_at) = row.created_at.and_then(|s| Timestamp::from_second(s).ok()) else {
        return Err(Skip::BadRow(format!(
            "created_at {:?} is not an ISO-8601 timestamp",
            row.created_at_raw.as_deref().unwrap_or("NULL")
        )));
    };
    let (timezone, timezone_name) = match row.timezone.as_deref().map(str::trim) {
        None | Some("") => (config.timezone.clone(), config.timezone_name.clone()),
        Some(tz) => match TimeZone::get(tz) {
            Ok(zone) => (zone, tz.to_string()),
            Err(_) => {
                warnings.push(format!(
                    "unknown time zone {tz:?}, using {}",
                    config.timezone_name
                ));
                (config.timezone.clone(), config.timezone_name.clone())
            }
        },
    };
    let attributes = match row.attributes.as_deref().map(str::trim) {
        None | Some("") => serde_json::Map::new(),
        Some(json) => match serde_json::from_str::<serde_json::Value>(json) {
            // A blank value is as good as none: templates ask `is defined` and get it right.
            Ok(serde_json::Value::Object(mut map)) => {
                map.retain(|_, v| match v {
                    serde_json::Value::Null => false,
                    serde_json::Value::String(s) => !s.trim().is_empty(),
                    _ => true,
                });
                map
            }
            _ => {
                warnings.push("attributes are not a JSON object, ignoring them".to_string());
                serde_json::Map::new()
            }
        },
    };
    let language = match attributes.get("language") {
        Some(serde_json::Value::String(tag))
            if icu_locale_core::Locale::try_from_str(tag.trim()).is_ok() =>
        {
            tag.trim().to_string()
        }
        Some(other) => {
            warnings.push(format!(
                "attributes.language {other} is not a language tag, writing in {}",
                config.language
            ));
            config.language.clone()
        }
        None => config.language.clone(),
    };
    let (display_name, full, first) = if name.is_empty() {
        let fallback = config.fallback_name.clone();
        (None, fallback.clone(), fallback)
    } else {
        let first = name.split_whitespace().next().unwrap_or(name).to_string();
        (Some(name.to_string()), name.to_string(), first)
    };
    let since = created_at.to_zoned_datetime(timezone.clone()).date();
    let today = now.to_zoned_datetime(timezone.clone()).date();
    let years = since
        .until((jiff::Unit::Year, today))
        .map(|span| i64::from(span.get_years()))
        .unwrap_or(0)
        .max(0);
    Ok(Recipient {
        context: CustomerContext {
            id: row.id_text.clone(),
            named: display_name.is_some(),
            name: full,
            first_name: first,
            email: address.to_string(),
            timezone: timezone_name,
            since: since.to_string(),
            since_year: since.year(),
            years,
            interactions: 0,
            attributes,
        },
        address,
        display_name,
        timezone,
        today,
        language,
        warnings,
    })
}

/// Everything a template sees.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NoteContext {
    /// The language the note is written in (the filters read it).
    lang: String,
    customer: CustomerContext,
    interaction: Option<InteractionContext>,
    days_quiet: Option<i64>,
    season: Option<SeasonContext>,
    sender: SenderContext,
    rule: RuleContext,
    unsubscribe: UnsubscribeContext,
}

#[derive(Debug, Clone, Serialize)]
struct InteractionContext {
    kind: String,
    at: String,
    date: String,
    /// "today", "yesterday", "on Tuesday" (within the week), else "on 14 March".
    when: String,
    /// The note, flattened: for staff (the digest), not to quote to the customer.
    note: Option<String>,
    /// The customer's own words, quotable (see [`super::quote`]), or none.
    quote: Option<String>,
    channel: Option<String>,
    sentiment: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct SeasonContext {
    name: String,
    title: String,
    year: i16,
}

#[derive(Debug, Clone, Serialize)]
struct SenderContext {
    name: String,
    business: String,
    email: String,
    signature: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct RuleContext {
    name: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct UnsubscribeContext {
    url: Option<String>,
    mailto: Option<String>,
}

impl NoteContext {
    /// The context of one note, in `language`.
    pub(crate) fn new(
        config: &Config,
        rule: &Rule,
        candidate: &Candidate,
        recipient: &Recipient,
        interactions: i64,
        (tag, language): (&str, &Language),
    ) -> NoteContext {
        let mut customer = recipient.context.clone();
        customer.interactions = interactions;
        let season = match (&rule.kind, &candidate.found) {
            (RuleKind::Seasonal(season), Found::Season { year }) => Some(SeasonContext {
                name: season.name.clone(),
                title: season.title.clone(),
                year: *year,
            }),
            _ => None,
        };
        let days_quiet = match candidate.found {
            Found::Quiet { days } => Some(days),
            _ => None,
        };
        NoteContext {
            lang: tag.to_string(),
            customer,
            interaction: candidate
                .trigger()
                .map(|i| interaction(i, recipient, config, language)),
            days_quiet,
            season,
            sender: sender_context(config),
            rule: RuleContext {
                name: rule.name.clone(),
                kind: rule.kind.name(),
            },
            unsubscribe: UnsubscribeContext {
                url: super::unsubscribe_link(&config.sender, &candidate.customer.id_text),
                mailto: config
                    .sender
                    .unsubscribe_mailto
                    .as_ref()
                    .map(|a| a.to_string()),
            },
        }
    }

    /// Contexts `check` renders every template against, in language `tag`: a customer with
    /// everything, and one with nothing optional (no name, no attributes, no note, no
    /// signature, no unsubscribe).
    pub(crate) fn samples(config: &Config, tag: &str, language: &Language) -> Vec<NoteContext> {
        let now = Timestamp::now();
        let full_row = CustomerRow {
            id: rusqlite::types::Value::Integer(1),
            id_text: "1".into(),
            email: Some("ada.lovelace@example.com".into()),
            name: Some("Ada Lovelace".into()),
            timezone: Some(config.timezone_name.clone()),
            created_at_raw: Some("2021-03-14T09:00:00Z".into()),
            created_at: Some(1_615_712_400),
            opted_out: false,
            attributes: Some(
                r#"{"affinity":"her granddaughter Léa","favourite_product":"the rye loaf","pet":"a greyhound called Pepper","birthday":"03-14"}"#
                    .into(),
            ),
        };
        let empty_row = CustomerRow {
            name: None,
            attributes: None,
            ..full_row.clone()
        };
        let trigger = InteractionRow {
            id: 1,
            at: now.as_second() - 3_600,
            kind: "complaint".into(),
            sentiment: Some(-0.8),
            channel: Some("email".into()),
            note: Some("The sourdough was burnt on the bottom <b>again</b>.".into()),
        };
        let mut full_config = config.clone();
        full_config
            .sender
            .signature
            .get_or_insert_with(|| "Rosemary".into());
        full_config
            .sender
            .unsubscribe_url
            .get_or_insert_with(|| "https://example.com/unsubscribe".into());
        full_config
            .sender
            .unsubscribe_secret
            .get_or_insert_with(|| crate::config::Secret::new("sample"));
        let mut empty_config = config.clone();
        empty_config.sender.signature = None;
        empty_config.sender.unsubscribe_url = None;
        empty_config.sender.unsubscribe_mailto = None;
        let mut samples = Vec::new();
        for rule in &config.rules {
            for (row, cfg, note) in [
                (&full_row, &full_config, true),
                (&empty_row, &empty_config, false),
            ] {
                let Ok(mut recipient) = recipient(row, cfg, now) else {
                    continue;
                };
                recipient.language = tag.to_string();
                let found = match rule.kind {
                    RuleKind::Seasonal(_) => Found::Season { year: 2026 },
                    RuleKind::Quiet { .. } => Found::Quiet { days: 75 },
                    RuleKind::Ratio { .. } => Found::Ratio(Ledger::default()),
                    RuleKind::Unhappy { .. }
                    | RuleKind::Departed { .. }
                    | RuleKind::Followup { .. } => Found::Interaction(Some(InteractionRow {
                        note: note.then(|| trigger.note.clone()).flatten(),
                        ..trigger.clone()
                    })),
                };
                let candidate = Candidate {
                    customer: row.clone(),
                    occasion: "sample".into(),
                    happened_at: None,
                    found,
                };
                samples.push(NoteContext::new(
                    cfg,
                    rule,
                    &candidate,
                    &recipient,
                    12,
                    (tag, language),
                ));
            }
        }
        samples
    }
}

fn sender_context(config: &Config) -> SenderContext {
    SenderContext {
        name: config.sender.name.clone(),
        business: config.sender.business.clone(),
        email: config.sender.email.to_string(),
        signature: config.sender.signature.clone(),
    }
}

fn interaction(
    i: &InteractionRow,
    to: &Recipient,
    config: &Config,
    language: &Language,
) -> InteractionContext {
    let at = Timestamp::from_second(i.at)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(to.timezone.clone());
    let day = at.date();
    let when = language.when(day, to.today);
    let own_words = config.quote_kinds.contains(&i.kind)
        && !i
            .channel
            .as_ref()
            .is_some_and(|c| config.staff_channels.contains(c));
    InteractionContext {
        kind: i.kind.clone(),
        at: day.to_string(),
        date: language.day_month(day),
        when,
        note: i
            .note
            .as_deref()
            .map(|n| quote(n, config.max_quote_chars))
            .filter(|n| !n.is_empty()),
        quote: i
            .note
            .as_deref()
            .filter(|_| own_words)
            .and_then(|n| super::quote::quotable(n, config.max_quote_chars)),
        channel: i.channel.clone(),
        sentiment: i.sentiment,
    }
}

/// A note made safe to show staff: one paragraph, no control characters, at most `max`
/// characters (cut at a word boundary, with an ellipsis).
pub(crate) fn quote(text: &str, max: usize) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = String::new();
    for word in words {
        let len = out.chars().count() + usize::from(!out.is_empty()) + word.chars().count();
        if len > max {
            if out.is_empty() {
                out = word.chars().take(max).collect();
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_are_trimmed_at_a_word_and_flattened() {
        assert_eq!(
            quote("burnt\r\non the   bottom", 100),
            "burnt on the bottom"
        );
        assert_eq!(quote("one two three", 8), "one two…");
        assert_eq!(quote(&"x".repeat(50), 10), format!("{}…", "x".repeat(10)));
    }
}

/// What the staff digest template sees: the customers who deserve a handwritten card today.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DigestContext {
    lang: String,
    date: String,
    sender: SenderContext,
    items: Vec<DigestItem>,
}

/// One customer in the digest.
#[derive(Debug, Clone, Serialize)]
struct DigestItem {
    /// "resolved", "anniversary", "departure" or "replied" (an answer to an apology).
    kind: &'static str,
    customer: CustomerContext,
    /// The complaint resolved, or the cancellation.
    interaction: Option<InteractionContext>,
}

impl DigestContext {
    /// The digest for `date`: each customer with why ("resolved", "anniversary" or
    /// "departure") and the interaction behind it (customers whose row is unusable are left
    /// out; the rule logs say why elsewhere).
    pub(crate) fn new(
        config: &Config,
        date: jiff::civil::Date,
        rows: &[(&'static str, CustomerRow, Option<InteractionRow>)],
        now: Timestamp,
        language: &Language,
    ) -> DigestContext {
        let items = rows
            .iter()
            .filter_map(|(kind, row, i)| {
                let r = recipient(row, config, now).ok()?;
                Some(DigestItem {
                    kind,
                    interaction: i.as_ref().map(|i| interaction(i, &r, config, language)),
                    customer: r.context,
                })
            })
            .collect();
        DigestContext {
            lang: config.language.clone(),
            date: date.strftime("%A %-d %B %Y").to_string(),
            sender: sender_context(config),
            items,
        }
    }

    /// How many customers it lists.
    pub(crate) fn customers(&self) -> usize {
        self.items.len()
    }

    /// A digest with one customer of each kind, to check the template with.
    pub(crate) fn sample(config: &Config, language: &Language) -> DigestContext {
        let now = Timestamp::now();
        let row = |id: &str, name: &str| CustomerRow {
            id: rusqlite::types::Value::Text(id.into()),
            id_text: id.into(),
            email: Some(format!("{id}@example.com")),
            name: Some(name.into()),
            timezone: None,
            created_at: Some(now.as_second() - 3 * 365 * 86_400),
            created_at_raw: None,
            opted_out: false,
            attributes: None,
        };
        let said = |kind: &str, note: &str| InteractionRow {
            id: 1,
            at: now.as_second() - 86_400,
            kind: kind.into(),
            sentiment: None,
            channel: Some("email".into()),
            note: Some(note.into()),
        };
        let rows = [
            (
                "resolved",
                row("1", "Ada Lovelace"),
                Some(said("complaint", "The bread was stale.")),
            ),
            ("anniversary", row("2", "Bo Diddley"), None),
            (
                "replied",
                row("4", "Di Fossey"),
                Some(said("reply", "Thank you. Could I have a refund instead?")),
            ),
            (
                "departure",
                row("3", "Cy Twombly"),
                Some(said("cancellation", "Moving away.")),
            ),
        ];
        let today = now.to_zoned_datetime(config.timezone.clone()).date();
        DigestContext::new(config, today, &rows, now, language)
    }
}
