//! The pages a customer sees, in English, French or German (the customer's notes' language when
//! the page has it, else English): the preferences page and a few short ones (a link that does
//! not work, done, too many requests, our fault). Plain HTML and CSS from one template, no
//! script, nothing loaded from elsewhere; every value from outside is escaped by minijinja.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::decide::{Category, EVERY_DAYS};

/// What the preferences page shows.
pub(crate) struct Page<'a> {
    /// The business's name.
    pub business: &'a str,
    /// The customer's language tag ("fr-CA"); the page speaks its primary language if it can.
    pub lang: &'a str,
    /// The customer's first name, when known (nothing else of them is shown).
    pub first_name: Option<&'a str>,
    /// The forms' action: the customer's own link, relative ("?c=…&t=…").
    pub action: &'a str,
    /// The kinds of notes the business sends, with whether the customer keeps each.
    pub categories: &'a [(Category, bool)],
    /// The customer's personal cap, in days.
    pub every_days: Option<u32>,
    /// The customer stopped every note.
    pub stopped: bool,
    /// What just happened, if anything.
    pub notice: Option<Notice>,
}

/// A line confirming what the customer just did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notice {
    /// Their choices are saved.
    Saved,
    /// Every note stops.
    Stopped,
    /// Notes start again.
    Resumed,
}

/// The short pages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Generic {
    /// A link that does not verify, or an unknown customer: the same words for both.
    Invalid,
    /// After the one-click unsubscribe.
    Unsubscribed,
    /// 429.
    TooMany,
    /// Our side failed; nothing changed.
    Error,
}

/// Every sentence of the pages in one language.
struct Words {
    title: &'static str,
    hello: &'static str,
    hello_name: &'static str,
    intro: &'static str,
    which: &'static str,
    categories: [&'static str; 5],
    how_often: &'static str,
    every: [&'static str; 3],
    save: &'static str,
    stop_intro: &'static str,
    stop: &'static str,
    paused: &'static str,
    resume_intro: &'static str,
    resume: &'static str,
    saved: &'static str,
    stopped: &'static str,
    resumed: &'static str,
    invalid_title: &'static str,
    invalid: &'static str,
    unsubscribed_title: &'static str,
    unsubscribed: &'static str,
    too_many_title: &'static str,
    too_many: &'static str,
    error_title: &'static str,
    error: &'static str,
    footer: &'static str,
}

const EN: Words = Words {
    title: "Your notes from {business}",
    hello: "Hello,",
    hello_name: "Hello {name},",
    intro: "Now and then {business} writes to you: to say thank you, to say sorry when something went wrong, or simply to say hello. Choose what you would like to receive.",
    which: "Which notes would you like?",
    categories: [
        "Apologies, when something went wrong",
        "A word once a problem is put right",
        "Thank-you notes",
        "A note when we haven't seen you for a while",
        "Seasonal cards and news",
    ],
    how_often: "How often?",
    every: [
        "As often as {business} writes",
        "At most one note a month",
        "At most one note every three months",
    ],
    save: "Save my choices",
    stop_intro: "Would you rather hear nothing from {business} at all?",
    stop: "Stop every note",
    paused: "You have stopped every note: nothing is sent to you until you start again.",
    resume_intro: "Changed your mind? Your choices above apply again once you start again.",
    resume: "Start again",
    saved: "Thank you, your choices are saved.",
    stopped: "Done: you will get no more notes from {business}.",
    resumed: "Welcome back: your notes will start again.",
    invalid_title: "This link does not work",
    invalid: "This link is not valid any more. If you want to change which notes you get, reply to any note from {business}.",
    unsubscribed_title: "You are unsubscribed",
    unsubscribed: "{business} will send you no more notes.",
    too_many_title: "Too many requests",
    too_many: "Too many requests. Please try again in a minute.",
    error_title: "Something went wrong",
    error: "Something went wrong on our side; nothing was changed. Please try again later.",
    footer: "This page keeps no cookies and shows nothing about you but your first name.",
};

const FR: Words = Words {
    // French elides "de" and "que" before a vowel ("d'Amélie"): no sentence puts either right
    // before the business's name.
    title: "Les messages que vous envoie {business}",
    hello: "Bonjour,",
    hello_name: "Bonjour {name},",
    intro: "De temps en temps, {business} vous écrit : pour vous remercier, pour s’excuser quand quelque chose s’est mal passé, ou simplement pour prendre de vos nouvelles. Choisissez ce que vous souhaitez recevoir.",
    which: "Quels messages souhaitez-vous recevoir ?",
    categories: [
        "Des excuses, quand quelque chose s’est mal passé",
        "Un mot une fois le problème réglé",
        "Des remerciements",
        "Un mot quand nous ne vous avons pas vu depuis longtemps",
        "Les cartes de saison et les nouveautés",
    ],
    how_often: "À quelle fréquence ?",
    every: [
        "Aussi souvent que nous vous écrivons",
        "Un message par mois au plus",
        "Un message tous les trois mois au plus",
    ],
    save: "Enregistrer mes choix",
    stop_intro: "Vous préférez ne plus recevoir aucun message de notre part ?",
    stop: "Ne plus rien recevoir",
    paused: "Vous avez tout arrêté : rien ne vous est envoyé tant que vous ne reprenez pas.",
    resume_intro: "Vous avez changé d’avis ? Vos choix ci-dessus s’appliquent de nouveau dès que vous reprenez.",
    resume: "Reprendre",
    saved: "Merci, vos choix sont enregistrés.",
    stopped: "C’est fait : {business} ne vous enverra plus aucun message.",
    resumed: "Content de vous retrouver : vos messages reprennent.",
    invalid_title: "Ce lien ne fonctionne pas",
    invalid: "Ce lien n’est plus valable. Pour changer les messages que vous recevez, répondez simplement à l’un de nos messages.",
    unsubscribed_title: "Vous êtes désinscrit",
    unsubscribed: "{business} ne vous enverra plus de messages.",
    too_many_title: "Trop de demandes",
    too_many: "Trop de demandes. Merci de réessayer dans une minute.",
    error_title: "Un problème est survenu",
    error: "Un problème est survenu de notre côté ; rien n’a été modifié. Merci de réessayer plus tard.",
    footer: "Cette page n’utilise aucun cookie et n’affiche rien de vous que votre prénom.",
};

const DE: Words = Words {
    title: "Ihre Nachrichten von {business}",
    hello: "Guten Tag,",
    hello_name: "Hallo {name},",
    intro: "Ab und zu schreibt Ihnen {business}: um Danke zu sagen, um sich zu entschuldigen, wenn etwas schiefging, oder einfach, um Hallo zu sagen. Wählen Sie, was Sie bekommen möchten.",
    which: "Welche Nachrichten möchten Sie bekommen?",
    categories: [
        "Entschuldigungen, wenn etwas schiefging",
        "Ein Wort, sobald ein Problem behoben ist",
        "Dankeschöns",
        "Eine Nachricht, wenn wir Sie länger nicht gesehen haben",
        "Karten zur Jahreszeit und Neuigkeiten",
    ],
    how_often: "Wie oft?",
    every: [
        "So oft, wie {business} schreibt",
        "Höchstens eine Nachricht im Monat",
        "Höchstens eine Nachricht alle drei Monate",
    ],
    save: "Auswahl speichern",
    stop_intro: "Möchten Sie lieber gar nichts mehr von {business} hören?",
    stop: "Keine Nachrichten mehr",
    paused: "Sie haben alle Nachrichten abbestellt: Sie bekommen nichts, bis Sie wieder beginnen.",
    resume_intro: "Haben Sie es sich anders überlegt? Ihre Auswahl oben gilt wieder, sobald Sie wieder beginnen.",
    resume: "Wieder beginnen",
    saved: "Danke, Ihre Auswahl ist gespeichert.",
    stopped: "Erledigt: Sie bekommen keine Nachrichten mehr von {business}.",
    resumed: "Schön, dass Sie wieder da sind: Ihre Nachrichten beginnen wieder.",
    invalid_title: "Dieser Link funktioniert nicht",
    invalid: "Dieser Link ist nicht mehr gültig. Wenn Sie ändern möchten, welche Nachrichten Sie bekommen, antworten Sie einfach auf eine Nachricht von {business}.",
    unsubscribed_title: "Sie sind abgemeldet",
    unsubscribed: "{business} schickt Ihnen keine Nachrichten mehr.",
    too_many_title: "Zu viele Anfragen",
    too_many: "Zu viele Anfragen. Bitte versuchen Sie es in einer Minute noch einmal.",
    error_title: "Etwas ist schiefgegangen",
    error: "Bei uns ist etwas schiefgegangen; nichts wurde geändert. Bitte versuchen Sie es später noch einmal.",
    footer: "Diese Seite speichert keine Cookies und zeigt von Ihnen nur Ihren Vornamen.",
};

/// The page's language for `tag` and its words: English unless the tag's primary language is
/// French or German.
fn words(tag: &str) -> (&'static str, &'static Words) {
    let primary = tag.split(['-', '_']).next().unwrap_or_default();
    match primary.to_ascii_lowercase().as_str() {
        "fr" => ("fr", &FR),
        "de" => ("de", &DE),
        _ => ("en", &EN),
    }
}

/// The template every page is made from.
const TEMPLATE: &str = include_str!("page.html.j2");

/// Fills the business's name (and the customer's) into a sentence. minijinja escapes the result.
fn fill(text: &str, business: &str, name: &str) -> String {
    text.replace("{business}", business).replace("{name}", name)
}

/// The environment with the template compiled, once for the process; pages are rendered with
/// HTML auto-escaping.
static PAGES: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    if let Err(err) = env.add_template("page", TEMPLATE) {
        tracing::error!(error = %err, "web face: the page template does not compile");
    }
    env
});

/// Renders the template; a failure (which the tests rule out) gives a bare page, never a panic.
fn render(values: minijinja::Value, title: &str) -> String {
    let rendered = PAGES.get_template("page").and_then(|t| t.render(values));
    rendered.unwrap_or_else(|err| {
        tracing::error!(error = %err, "web face: the page template failed");
        let title = minijinja::HtmlEscape(title);
        format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1></body></html>")
    })
}

/// A category as the template lists it.
#[derive(Serialize)]
struct Choice {
    key: &'static str,
    label: &'static str,
    kept: bool,
}

/// A personal cap as the template lists it.
#[derive(Serialize)]
struct Every {
    days: u32,
    label: String,
    checked: bool,
}

/// The preferences page.
pub(crate) fn preferences(page: &Page<'_>) -> String {
    let (lang, t) = words(page.lang);
    let business = page.business;
    let title = fill(t.title, business, "");
    let greeting = match page.first_name {
        Some(name) => fill(t.hello_name, business, name),
        None => t.hello.to_string(),
    };
    let categories: Vec<Choice> = page
        .categories
        .iter()
        .map(|(c, kept)| Choice {
            key: c.key(),
            label: t.categories[Category::ALL.iter().position(|a| a == c).unwrap_or(0)],
            kept: *kept,
        })
        .collect();
    let every: Vec<Every> = std::iter::once(0)
        .chain(EVERY_DAYS)
        .zip(t.every)
        .map(|(days, label)| Every {
            days,
            label: fill(label, business, ""),
            checked: page.every_days.unwrap_or(0) == days,
        })
        .collect();
    let notice = page.notice.map(|n| match n {
        Notice::Saved => t.saved,
        Notice::Stopped => t.stopped,
        Notice::Resumed => t.resumed,
    });
    let filled = |s: &str| fill(s, business, "");
    let values = context! {
        kind => "preferences", lang, business, title => &title, greeting,
        categories => minijinja::Value::from(minijinja::value::Serde(&categories)),
        every => minijinja::Value::from(minijinja::value::Serde(&every)),
        action => page.action, stopped => page.stopped,
        notice => notice.map(filled),
        t => context! {
            intro => filled(t.intro), which => t.which, how_often => t.how_often, save => t.save,
            stop_intro => filled(t.stop_intro), stop => t.stop, paused => t.paused,
            resume_intro => t.resume_intro, resume => t.resume, footer => t.footer,
        },
    };
    render(values, &title)
}

/// One of the short pages.
pub(crate) fn generic(kind: Generic, business: &str, lang: &str) -> String {
    let (lang, t) = words(lang);
    let (title, text) = match kind {
        Generic::Invalid => (t.invalid_title, t.invalid),
        Generic::Unsubscribed => (t.unsubscribed_title, t.unsubscribed),
        Generic::TooMany => (t.too_many_title, t.too_many),
        Generic::Error => (t.error_title, t.error),
    };
    let values = context! {
        kind => "generic", lang, business, title, text => fill(text, business, ""),
        t => context! { footer => t.footer },
    };
    render(values, title)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(lang: &'a str, categories: &'a [(Category, bool)], stopped: bool) -> Page<'a> {
        Page {
            business: "Rosemary's <b>Bakery</b> & \"Co\"",
            lang,
            first_name: Some("Léa<script>"),
            action: "?c=42&t=0f3a",
            categories,
            every_days: Some(30),
            stopped,
            notice: Some(Notice::Saved),
        }
    }

    #[test]
    fn the_page_speaks_the_customers_language_and_escapes_what_comes_from_outside() {
        let kinds = [(Category::Apologies, true), (Category::Seasonal, false)];
        let en = preferences(&page("en-GB", &kinds, false));
        assert!(
            en.contains("<html lang=\"en\">") && en.contains("Hello Léa&lt;script&gt;,"),
            "{en}"
        );
        assert!(
            en.contains("Rosemary&#x27;s &lt;b&gt;Bakery&lt;&#x2f;b&gt; &amp; &quot;Co&quot;"),
            "{en}"
        );
        assert!(en.contains("action=\"?c=42&amp;t=0f3a\""));
        assert!(
            !en.contains("<script"),
            "no script, and no customer text run as one"
        );
        assert!(en.contains("id=\"want_apologies\" name=\"want_apologies\" value=\"on\" checked"));
        assert!(en.contains("id=\"want_seasonal\" name=\"want_seasonal\" value=\"on\">"));
        assert!(
            !en.contains("want_thanks"),
            "only the kinds the business sends"
        );
        assert!(en.contains("id=\"every_30\" name=\"every\" value=\"30\" checked"));
        assert!(en.contains("id=\"every_0\" name=\"every\" value=\"0\">"));
        assert!(en.contains("id=\"stop\"") && !en.contains("id=\"resume\""));
        assert!(en.contains("role=\"status\">Thank you, your choices are saved."));
        assert!(en.contains("<label for=\"want_apologies\">"));
        let fr = preferences(&page("fr-CA", &kinds, true));
        assert!(fr.contains("<html lang=\"fr\">") && !fr.contains("Ne plus rien"));
        assert!(
            fr.contains("id=\"resume\"") && fr.contains("Reprendre"),
            "{fr}"
        );
        let de = preferences(&page("DE", &kinds, false));
        assert!(de.contains("<html lang=\"de\">") && de.contains("Keine Nachrichten mehr"));
        let pt = preferences(&page("pt-BR", &kinds, false));
        assert!(
            pt.contains("<html lang=\"en\">"),
            "unknown languages read English"
        );
    }

    #[test]
    fn a_bad_link_reads_the_same_whatever_it_was() {
        let a = generic(Generic::Invalid, "Bakery", "en");
        assert_eq!(a, generic(Generic::Invalid, "Bakery", "en-US"));
        assert!(a.contains("This link is not valid any more"));
        for kind in [
            Generic::Invalid,
            Generic::Unsubscribed,
            Generic::TooMany,
            Generic::Error,
        ] {
            for lang in ["en", "fr", "de"] {
                let html = generic(kind, "B", lang);
                assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
                assert!(!html.contains("<script"));
            }
        }
    }

    /// WCAG's contrast ratio of two sRGB colours.
    fn contrast(a: u32, b: u32) -> f64 {
        let luminance = |c: u32| {
            let channel = |v: u32| {
                let v = f64::from(v & 0xff) / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(c >> 16) + 0.7152 * channel(c >> 8) + 0.0722 * channel(c)
        };
        let (l1, l2) = (luminance(a), luminance(b));
        (l1.max(l2) + 0.05) / (l1.min(l2) + 0.05)
    }

    #[test]
    fn every_text_colour_reads_at_least_four_and_a_half_to_one() {
        // (text, background) pairs of the template's style.
        for (text, background) in [
            (0x1f2328, 0xffffff),
            (0x1f2328, 0xf6f5f2),
            (0x4d5560, 0xf6f5f2),
            (0x4d5560, 0xffffff),
            (0xffffff, 0x1a5d3a),
            (0x8b1e1e, 0xffffff),
            (0x123f28, 0xe7f3ec),
            (0x5c3700, 0xfdf3e1),
        ] {
            let ratio = contrast(text, background);
            assert!(ratio >= 4.5, "#{text:06x} on #{background:06x}: {ratio:.2}");
        }
        for colour in [
            "#1f2328", "#4d5560", "#1a5d3a", "#8b1e1e", "#123f28", "#5c3700",
        ] {
            assert!(
                TEMPLATE.contains(colour),
                "{colour} is no longer in the style"
            );
        }
    }
}
