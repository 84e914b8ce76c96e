//! Filters a template author needs so that any value reads right, in the note's language:
//! numbers in words with their noun ("a year", "two years", "12 years"; "un an"), plural
//! agreement by the language's rules, a capital first letter only, ordinals, and a span of days
//! as a person would say it ("about four months", "environ quatre mois").

use std::sync::Arc;

use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::lang::{Language, Languages};

/// Adds the filters to `env`. They write in the note's language (the context's `lang`, else
/// `default`).
pub(super) fn add(env: &mut Environment<'static>, languages: Arc<Languages>, default: String) {
    let language = move |state: &State| -> Result<Arc<Language>, Error> {
        let tag = state
            .lookup("lang")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| default.clone());
        languages.get(&tag).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown language {tag:?}"),
            )
        })
    };
    let (l1, l2, l3) = (language.clone(), language.clone(), language);
    env.add_filter(
        "count",
        move |state: &State,
              value: Value,
              singular: &str,
              plural: Option<&str>,
              gender: Option<&str>| {
            let n = how_many(&value)?;
            let plural = plural.map_or_else(|| format!("{singular}s"), str::to_string);
            Ok::<_, Error>(l1(state)?.count(n, singular, &plural, gender == Some("f")))
        },
    );
    env.add_filter(
        "plural",
        move |state: &State, value: Value, singular: &str, plural: &str| {
            let one = l2(state)?.is_one(how_many(&value)?);
            Ok::<_, Error>(if one { singular } else { plural }.to_string())
        },
    );
    env.add_filter("days_in_words", move |state: &State, days: i64| {
        Ok::<_, Error>(l3(state)?.days_in_words(days))
    });
    env.add_filter("capfirst", capfirst);
    env.add_filter("ordinal", ordinal);
}

/// How many things a value stands for: a number, the length of a list, or a noun phrase as an
/// attribute object `{"text": …, "plural": true}` (2 when plural, else 1).
fn how_many(value: &Value) -> Result<i64, Error> {
    if let Ok(n) = i64::try_from(value.clone()) {
        return Ok(n);
    }
    if let Ok(plural) = value.get_attr("plural")
        && !plural.is_undefined()
    {
        return Ok(if plural.is_true() { 2 } else { 1 });
    }
    match value.len() {
        Some(n) if value.as_str().is_none() => Ok(n as i64),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "cannot tell how many {value} stands for: give a number, a list, or an attribute like {{\"text\": \"cardamom buns\", \"plural\": true}}"
            ),
        )),
    }
}

/// `{{ s | capfirst }}`: the first letter in capitals, the rest as written ("the Saturday
/// croissants" → "The Saturday croissants"; `capitalize` would lower-case "Saturday").
fn capfirst(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `{{ n | ordinal }}`: "1st", "2nd", "3rd", "11th", "22nd".
fn ordinal(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> String {
        let mut env = Environment::new();
        add(&mut env, Arc::new(Languages::default()), "en-GB".into());
        env.render_str(template, ctx).expect("render")
    }

    #[test]
    fn counts_read_as_words_in_the_notes_language() {
        let said = |n: i64| render("{{ n | count('year') }}", minijinja::context! { n });
        assert_eq!(said(1), "a year");
        assert_eq!(said(2), "two years");
        assert_eq!(said(12), "12 years");
        assert_eq!(
            render(
                "{{ 1 | count('hour') }}, {{ 1 | count('update') }}, {{ 3 | count('child', 'children') }}",
                Value::UNDEFINED
            ),
            "an hour, an update, three children"
        );
        assert_eq!(
            render(
                "{{ 1 | count('an') }}, {{ 1 | count('semaine', 'semaines', 'f') }}, {{ 4 | days_in_words }}, {{ 0 | plural('an', 'ans') }}",
                minijinja::context! { lang => "fr" }
            ),
            "un an, une semaine, quatre jours, an"
        );
    }

    #[test]
    fn agreement_follows_the_number_or_the_attribute() {
        let ctx = minijinja::context! {
            buns => Value::from(minijinja::value::Serde(serde_json::json!({"text": "cardamom buns", "plural": true}))),
            loaf => Value::from(minijinja::value::Serde(serde_json::json!({"text": "the rye loaf", "plural": false}))),
        };
        assert_eq!(
            render(
                "{{ buns.text | capfirst }} {{ buns | plural('is', 'are') }}; {{ loaf.text }} {{ loaf | plural('is', 'are') }}; {{ 1 | plural('note', 'notes') }}",
                ctx
            ),
            "Cardamom buns are; the rye loaf is; note"
        );
    }

    #[test]
    fn capfirst_ordinals_and_spans() {
        assert_eq!(
            capfirst("the Saturday croissants"),
            "The Saturday croissants"
        );
        assert_eq!(capfirst("élan"), "Élan");
        let ords: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal).to_vec();
        assert_eq!(
            ords,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"
            ]
        );
        let spans: Vec<String> = [1, 5, 20, 61, 121, 400, 800]
            .map(|d| render("{{ d | days_in_words }}", minijinja::context! { d }))
            .to_vec();
        assert_eq!(
            spans,
            [
                "a day",
                "five days",
                "three weeks",
                "about two months",
                "about four months",
                "over a year",
                "about two years"
            ]
        );
    }
}
