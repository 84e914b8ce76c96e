//! Filters a template author needs so that any value reads right: numbers in words with their
//! noun ("a year", "two years", "12 years"), plural agreement, a capital first letter only,
//! ordinals, and a span of days as a person would say it ("about four months").

use minijinja::{Environment, Error, ErrorKind, Value};

/// Adds the filters to `env`.
pub(super) fn add(env: &mut Environment<'static>) {
    env.add_filter("count", count);
    env.add_filter("plural", plural);
    env.add_filter("capfirst", capfirst);
    env.add_filter("ordinal", ordinal);
    env.add_filter("days_in_words", days_in_words);
}

const SMALL: [&str; 11] = [
    "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

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

/// `{{ n | count("year") }}`: "a year", "two years", "12 years" (words up to ten; the plural
/// is `noun` + "s" unless given: `count("child", "children")`).
fn count(value: Value, noun: &str, plural: Option<&str>) -> Result<String, Error> {
    let n = how_many(&value)?;
    let plural = plural.map_or_else(|| format!("{noun}s"), str::to_string);
    Ok(match n {
        1 => format!(
            "{} {noun}",
            if starts_with_vowel_sound(noun) {
                "an"
            } else {
                "a"
            }
        ),
        0..=10 => format!("{} {plural}", SMALL[n as usize]),
        _ => format!("{n} {plural}"),
    })
}

fn starts_with_vowel_sound(word: &str) -> bool {
    let w = word.to_lowercase();
    (w.starts_with(['a', 'e', 'i', 'o']) || w.starts_with("hour") || w.starts_with("honest"))
        && !w.starts_with("one")
        || (w.starts_with('u') && !w.starts_with("uni") && !w.starts_with("use"))
}

/// `{{ n | plural("comes", "come") }}`: the form that agrees with `value` (a number, a list, or
/// an attribute object with `plural`).
fn plural(value: Value, singular: &str, plural: &str) -> Result<String, Error> {
    Ok(if how_many(&value)? == 1 {
        singular.to_string()
    } else {
        plural.to_string()
    })
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

/// `{{ days_quiet | days_in_words }}`: a span of days as a person says it: "five days", "three
/// weeks", "about four months", "over a year", "about two years".
fn days_in_words(days: i64) -> Result<String, Error> {
    let words = |n: i64, noun: &str| count(Value::from(n), noun, None);
    Ok(match days {
        ..=13 => words(days.max(0), "day")?,
        14..=59 => words((days + 3) / 7, "week")?,
        60..=364 => format!("about {}", words((days + 15) / 30, "month")?),
        365..=547 => "over a year".to_string(),
        _ => format!("about {}", words((days + 182) / 365, "year")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> String {
        let mut env = Environment::new();
        add(&mut env);
        env.render_str(template, ctx).expect("render")
    }

    #[test]
    fn counts_read_as_words() {
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
            .map(|d| days_in_words(d).expect("words"))
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
