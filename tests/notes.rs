//! Notes as a customer reads them: every shipped template, in English and in French, rendered by
//! `rekindle preview` (and delivered by the demo) for a wide variety of customers, checked against the defects a
//! careful reader would circle (`support::defects`): a verb agreeing with an attribute of
//! unknown number, "her" or "their" in a letter to "you", "1 year", lower-case months, doubled
//! punctuation at a quote, the fallback greeting used as a name, template code left in.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use support::config::maildir;
use support::defects::defects;
use support::fixture::{Fixture, ago, text};
use support::smtp_server::Received;

/// A note as `preview` prints it.
struct Note {
    subject: String,
    text: String,
    html: Option<String>,
}

fn parse_preview(stdout: &str) -> Option<Note> {
    let (head, rest) = stdout.split_once("\n--- text ---\n")?;
    let (text, html) = match rest.split_once("\n--- html ---\n") {
        Some((text, html)) => (text, Some(html.to_string())),
        None => (rest, None),
    };
    let mail = Received {
        from: String::new(),
        to: Vec::new(),
        data: format!("{head}\r\n\r\n"),
        at: Instant::now(),
    };
    Some(Note {
        subject: mail.subject()?,
        text: text.to_string(),
        html,
    })
}

/// Every shipped template, each in a rule of its kind.
fn every_template() -> String {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris").expect("tz"))
        .date();
    let day = format!("{:02}-{:02}", today.month(), today.day());
    let mut rules = String::new();
    for (name, kind, template, extra) in [
        ("sorry", "unhappy", "unhappy.j2", String::new()),
        (
            "thanks-for-telling-us",
            "followup",
            "followup.j2",
            String::new(),
        ),
        ("goodbye", "departed", "departed.j2", String::new()),
        ("we-miss-you", "quiet", "quiet.j2", String::new()),
        ("ten-to-one", "ratio", "appreciation.j2", String::new()),
        (
            "gratitude-week",
            "seasonal",
            "gratitude.j2",
            format!(
                "season = \"gratitude\"\ntitle = \"gratitude week\"\nstart = \"{day}\"\nend = \"{day}\"\n"
            ),
        ),
        (
            "valentines",
            "seasonal",
            "valentines.j2",
            format!(
                "season = \"valentines\"\ntitle = \"Valentine's week\"\nstart = \"{day}\"\nend = \"{day}\"\n"
            ),
        ),
        (
            "love-month-launch",
            "seasonal",
            "launch.j2",
            format!(
                "season = \"launch\"\ntitle = \"the spring menu\"\nstart = \"{day}\"\nend = \"{day}\"\n"
            ),
        ),
    ] {
        rules.push_str(&format!(
            "[[rule]]\nname = \"{name}\"\nkind = \"{kind}\"\nschedule = \"0 10 * * *\"\ntemplate = \"{template}\"\n{extra}\n"
        ));
    }
    rules
}

const RULES: [&str; 8] = [
    "sorry",
    "thanks-for-telling-us",
    "goodbye",
    "we-miss-you",
    "ten-to-one",
    "gratitude-week",
    "valentines",
    "love-month-launch",
];

/// Customers of every shape: names with and without diacritics, none, empty; attributes
/// singular, plural, a gerund, long, empty; new and long-standing; each with words to quote or
/// none.
fn variety() -> (Fixture, BTreeMap<i64, (&'static str, Vec<String>)>) {
    let f = Fixture::new();
    let long = "the hand-built steel touring frame with the dynamo lights and the leather saddle you picked out together with your daughter in the spring of the year you retired";
    let shapes: [(Option<&str>, &str, &str, f64); 14] = [
        (
            Some("Ada Lovelace"),
            "the rye loaf",
            "your granddaughter Léa",
            2000.0,
        ),
        (Some("Zoë Ñúñez"), "cardamom buns", "the twins", 40.0),
        (None, "commuting", "your marathon training", 800.0),
        (Some(""), "your quarterly VAT returns", "your choir", 3.0),
        (
            Some("Björn"),
            "the balayage",
            "your sourdough starter, Gerald",
            400.0,
        ),
        (Some("Li"), long, long, 5000.0),
        (Some("Sam O'Brien"), "", "", 370.0),
        (
            Some("Ngozi Okafor-Adeyemi"),
            "oat flat whites",
            "your grandson's football team",
            1.0,
        ),
        (
            Some("Émile"),
            "the Saturday croissants",
            "your allotment garden",
            730.0,
        ),
        (Some("Kai"), "your commuter bike", "the chess club", 100.0),
        // In French (attributes.language).
        (
            Some("Élodie Ménard"),
            "les brioches à la cardamome",
            "les jumeaux",
            2000.0,
        ),
        (None, "le pain de seigle", "votre chorale", 400.0),
        (Some("Théo"), "", "", 3.0),
        (
            Some("Anaïs"),
            "votre vélo de tous les jours",
            "votre petite-fille Léa",
            800.0,
        ),
    ];
    let mut attributes = BTreeMap::new();
    f.sql("BEGIN");
    for (i, (name, favourite, affinity, days)) in shapes.iter().enumerate() {
        let id = i as i64 + 1;
        let french = i >= 10;
        let pet = if french {
            "Biscuit, votre épagneul"
        } else {
            "Biscuit the spaniel"
        };
        let mut attrs =
            serde_json::json!({"favourite_product": favourite, "affinity": affinity, "pet": pet});
        if french {
            attrs["language"] = "fr".into();
        }
        f.customer(
            id,
            &format!("c{id}@example.com"),
            *name,
            None,
            Some(&attrs.to_string()),
        );
        f.sql(&format!(
            "UPDATE customers SET created_at = '{}' WHERE id = {id}",
            ago(*days)
        ));
        let lang = if french { "fr" } else { "en" };
        let values = vec![favourite.to_string(), affinity.to_string(), pet.to_string()];
        attributes.insert(id, (lang, values));
        let said: [Option<&str>; 4] = [
            Some("The sourdough was burnt on the bottom. My kids wouldn't eat it. Never again!"),
            Some(
                "<b>This is unacceptable.</b> This is unacceptable. This is unacceptable. {{ 7*7 }}",
            ),
            None,
            Some("ok"),
        ];
        for d in [200.0, 120.0, 90.0, 70.0] {
            f.interaction(id, &ago(d), "purchase", Some(0.5), None);
        }
        f.interaction(id, &ago(30.0), "invoice", None, None);
        f.interaction(
            id,
            &ago(2.0 + i as f64 % 5.0),
            "complaint",
            Some(-0.8),
            said[i % 4],
        );
        f.interaction(
            id,
            &ago(1.0),
            "resolution",
            Some(0.3),
            Some("Refunded; called back."),
        );
        f.interaction(id, &ago(0.5), "cancellation", None, said[(i + 1) % 4]);
    }
    f.sql("COMMIT");
    (f, attributes)
}

#[test]
fn every_shipped_template_reads_right_for_every_kind_of_customer() {
    let (f, attributes) = variety();
    f.config(&maildir("maildir"), &every_template());
    let (_, stderr) = text(&f.rekindle(&["check"]));
    assert!(!stderr.contains("error"), "{stderr}");
    let mut all = Vec::new();
    let mut checked = 0;
    for (id, (lang, values)) in &attributes {
        for rule in RULES {
            let out = f.rekindle(&["preview", "--rule", rule, "--customer", &id.to_string()]);
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(0), "{rule} {id}: {stderr}");
            let note = parse_preview(&stdout).expect("a note");
            checked += 1;
            for defect in defects(
                lang,
                &note.subject,
                &note.text,
                note.html.as_deref(),
                "there",
                values,
            ) {
                all.push(format!(
                    "{rule}, customer {id}: {defect}\n  {}\n{}",
                    note.subject, note.text
                ));
            }
        }
    }
    assert_eq!(checked, attributes.len() * RULES.len());
    assert!(all.is_empty(), "{} defects:\n{}", all.len(), all.join("\n"));
}

/// The checker itself: a template written the old way is caught.
#[test]
fn a_template_broken_on_purpose_is_caught() {
    let (f, attributes) = variety();
    std::fs::create_dir_all(f.path("templates")).expect("templates");
    std::fs::write(
        f.path("templates/broken.j2"),
        "{% block subject %}{{ customer.first_name }}, thank you for {{ customer.years }} year(s){% endblock %}\n{% block text %}Hi {{ customer.first_name }},\n{% if customer.attributes.favourite_product is defined %}{{ customer.attributes.favourite_product | capitalize }} still comes out of the oven.{% endif %} {% if customer.attributes.affinity is defined %}I hope {{ customer.attributes.affinity }} keeps bringing you joy.{% endif %}\nWhen you told us \"{{ interaction.note if interaction else '' }}\", you did us a favour. See you on {{ \"Monday\" | lower }}. We've had you for 1 year.\n{% endblock %}\n",
    )
    .expect("write");
    f.config(
        &maildir("maildir"),
        "[[rule]]\nname = \"broken\"\nkind = \"unhappy\"\nschedule = \"0 10 * * *\"\ntemplate = \"broken.j2\"\n",
    );
    let mut found = Vec::new();
    for id in [1, 2, 3, 9] {
        let (stdout, stderr) =
            text(&f.rekindle(&["preview", "--rule", "broken", "--customer", &id.to_string()]));
        let note = parse_preview(&stdout).unwrap_or_else(|| panic!("{stderr}"));
        found.extend(defects(
            "en",
            &note.subject,
            &note.text,
            None,
            "there",
            &attributes[&id].1,
        ));
    }
    for expected in [
        "\"(s)\" instead of a plural",
        "is the subject of \"comes\"",
        "is the subject of \"keeps\"",
        "lower-case \"monday\"",
        "lower-case \"saturday\"",
        "a numeral: \"1 year\"",
        "doubled punctuation",
        "the fallback greeting \"there\" used as a name",
    ] {
        assert!(
            found.iter().any(|d| d.contains(expected)),
            "{expected} not caught: {found:#?}"
        );
    }
}

/// Every note the demo delivers, headers and HTML as they go out.
#[test]
fn every_note_the_demo_delivers_reads_right_and_its_html_is_a_letter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = Vec::new();
    let (mut notes, mut french) = (0, 0);
    for entry in std::fs::read_dir(dir.path().join("maildir/new")).expect("maildir") {
        let path = entry.expect("entry").path();
        let data = std::fs::read_to_string(&path).expect("message");
        let mail = Received {
            from: String::new(),
            to: Vec::new(),
            data,
            at: Instant::now(),
        };
        notes += 1;
        let subject = mail.subject().unwrap_or_default();
        let html = mail.html_body().unwrap_or_default();
        let text = mail.text_body();
        let lang = if text.starts_with("Bonjour") {
            "fr"
        } else {
            "en"
        };
        if lang == "fr" {
            french += 1;
            if !html.contains("<html lang=\"fr\">") {
                all.push(format!(
                    "{}: a French note's HTML is not marked lang=fr",
                    path.display()
                ));
            }
        }
        for defect in defects(lang, &subject, &text, Some(&html), "there", &[]) {
            all.push(format!("{}: {defect}\n  {subject}", path.display()));
        }
        for must in [
            "<!DOCTYPE html>",
            "max-width:36em",
            "color-scheme",
            "system-ui",
        ] {
            if !html.contains(must) {
                all.push(format!("{}: the HTML lacks {must:?}", path.display()));
            }
        }
        if html.contains("<img") || html.contains("src=") || html.contains("Times") {
            all.push(format!(
                "{}: remote content or a serif default in the HTML",
                path.display()
            ));
        }
    }
    assert!(notes > 50, "{notes} notes");
    assert!(
        french > 10 && french < notes,
        "{french} of {notes} notes in French"
    );
    assert!(all.is_empty(), "{} defects:\n{}", all.len(), all.join("\n"));
}
