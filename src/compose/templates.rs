//! Loading, checking and rendering templates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use super::lang::{Language, Languages};

use crate::config::{Config, Diagnostic, diag};

use super::context::{DigestContext, NoteContext};

/// Suffix of the unescaped copy of a template (subject and text blocks).
const TEXT: &str = "#text";
/// Suffix of the HTML-escaped copy of a template (html block).
const HTML: &str = "#html";

/// The empty template each copy extends (see [`copy_of`]), one per suffix so that its
/// escaping is the copy's.
const NOTHING: &str = "rekindle:nothing";

/// The source of a template's copy with `suffix`. The copies are only ever rendered block by
/// block (see [`Templates::render`]), so each extends an empty template, on the source's first
/// line (line numbers stay the user's): its top level then runs as a child template's does, its
/// `set`s and macros, output discarded and no block called, rather than every block once more
/// for nothing (a third of the rendering). A template that extends another is kept as written.
fn copy_of(source: &str, suffix: &str) -> String {
    match source.contains("extends") {
        true => source.to_string(),
        false => format!("{{% extends \"{NOTHING}{suffix}\" %}}{source}"),
    }
}

/// `range` in a copy's source (see [`copy_of`]) as a range in `source`, the user's.
fn in_source(source: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let shift = copy_of(source, TEXT).len() - source.len();
    range.start.saturating_sub(shift)..range.end.saturating_sub(shift)
}

/// A rendered note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// One line, no control characters.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, if the template has one.
    pub html: Option<String>,
}

/// The templates the rules use, compiled, with their language variants.
pub(crate) struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
    languages: Arc<Languages>,
    /// `defaults.language`: the tag and the language of the templates without one in their name.
    default: (String, Arc<Language>),
    /// (template, language tag in lower case, the variant's file): `unhappy.fr.j2` for
    /// (`unhappy.j2`, `fr`).
    variants: Vec<(String, String, String)>,
    /// Templates that may show `customer.interactions` (a count read from the log per note).
    counting: Vec<String>,
}

impl Templates {
    /// Loads every template a rule names, and checks each by rendering it against
    /// [`NoteContext::sample`] (the fullest and the emptiest customer). All problems are returned.
    pub(crate) fn load(config: &Config) -> (Option<Templates>, Vec<Diagnostic>) {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let languages = Arc::new(Languages::default());
        super::filters::add(&mut env, languages.clone(), config.language.clone());
        let Some(default_language) = languages.get(&config.language) else {
            let message = format!(
                "defaults.language {:?} is not a language rekindle can write in",
                config.language
            );
            return (None, vec![Diagnostic::error_in(&config.file, message)]);
        };
        env.set_debug(true);
        for suffix in [TEXT, HTML] {
            let _ = env.add_template_owned(format!("{NOTHING}{suffix}"), String::new());
        }
        env.set_auto_escape_callback(|name| {
            if name.ends_with(HTML) {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut diagnostics = Vec::new();
        let mut loaded: Vec<String> = Vec::new();
        let mut counting = Vec::new();
        let mut variants = Vec::new();
        for (template, owner, span) in wanted(config) {
            if loaded.iter().any(|l| l == template) {
                continue;
            }
            let path = config.templates_dir.join(template);
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(err) => {
                    let message = format!(
                        "template \"{template}\" of {owner} cannot be read from {}: {err}{}",
                        config.templates_dir.display(),
                        diag::suggestion(
                            template,
                            existing(&config.templates_dir).iter().map(String::as_str)
                        )
                    );
                    diagnostics.push(config.error_at(span, message));
                    continue;
                }
            };
            let mut files = vec![(template.to_string(), path, source)];
            for (tag, file) in language_variants(&config.templates_dir, template) {
                let path = config.templates_dir.join(&file);
                match std::fs::read_to_string(&path) {
                    Ok(source) => {
                        variants.push((template.to_string(), tag, file.clone()));
                        files.push((file, path, source));
                    }
                    Err(err) => diagnostics.push(Diagnostic::error_in(
                        &path,
                        format!("cannot read this language variant of \"{template}\": {err}"),
                    )),
                }
            }
            for (name, path, source) in files {
                if source.contains("interactions") {
                    counting.push(name.clone());
                }
                for suffix in [TEXT, HTML] {
                    if let Err(err) =
                        env.add_template_owned(format!("{name}{suffix}"), copy_of(&source, suffix))
                    {
                        diagnostics.push(template_error(&path, &source, &err));
                        break;
                    }
                }
                loaded.push(name);
            }
        }
        let templates = Templates {
            env,
            dir: config.templates_dir.clone(),
            languages,
            default: (config.language.clone(), default_language),
            variants,
            counting,
        };
        if diagnostics.is_empty() {
            templates.check(config, &loaded, &mut diagnostics);
        }
        if !diagnostics.iter().any(Diagnostic::is_error) {
            (Some(templates), diagnostics)
        } else {
            (None, diagnostics)
        }
    }

    /// Renders every template in `loaded` (language variants included, each in its language)
    /// against the sample contexts (the fullest and the emptiest customer), collecting what
    /// fails and the wording lint's warnings.
    fn check(&self, config: &Config, loaded: &[String], diagnostics: &mut Vec<Diagnostic>) {
        let digest = config.digest.as_ref().map(|d| d.template.as_str());
        for name in loaded {
            let path = self.dir.join(name);
            let (tag, language) = match self.variants.iter().find(|(_, _, file)| file == name) {
                Some((_, tag, _)) => match self.languages.get(tag) {
                    Some(language) => (tag.clone(), language),
                    None => {
                        let message = format!(
                            "{tag:?} in the file name is not a language tag; name a variant like unhappy.fr.j2 or unhappy.pt-BR.j2"
                        );
                        diagnostics.push(Diagnostic::error_in(&path, message));
                        continue;
                    }
                },
                None => self.default.clone(),
            };
            let checked = if Some(name.as_str()) == digest {
                // Written to the staff, not to a customer: no wording lint.
                self.render(name, &DigestContext::sample(config, &language))
                    .map(drop)
            } else {
                NoteContext::samples(config, &tag, &language)
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, ctx)| {
                        let note = self.render(name, ctx)?;
                        if i == 0 {
                            diagnostics.extend(self_centred(&path, &note, &language));
                        }
                        Ok(())
                    })
            };
            if let Err(err) = checked {
                let source = std::fs::read_to_string(&path).unwrap_or_default();
                diagnostics.push(template_error(&path, &source, &err));
            }
        }
    }

    /// What `template` says to a customer whose language is `tag`: the variant in their
    /// language if there is one (`unhappy.fr-ca.j2`, then `unhappy.fr.j2`), else the template
    /// itself, in `defaults.language`. Returns (the file, the tag, its language).
    pub(crate) fn speak(&self, template: &str, tag: &str) -> (String, String, Arc<Language>) {
        let tag = tag.trim().to_ascii_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or("").to_string();
        let found = [&tag, &primary].into_iter().find_map(|want| {
            self.variants
                .iter()
                .find(|(base, t, _)| base == template && t == want)
        });
        if let Some((_, t, file)) = found
            && let Some(language) = self.languages.get(t)
        {
            return (file.clone(), t.clone(), language);
        }
        let (default_tag, default) = &self.default;
        // A customer whose language is the default's, in another region ("en-US" for "en-GB"),
        // gets their own dates.
        let same = default.primary == primary;
        match self.languages.get(&tag).filter(|_| same) {
            Some(language) => (template.to_string(), tag, language),
            None => (template.to_string(), default_tag.clone(), default.clone()),
        }
    }

    /// The default language, for the staff digest.
    pub(crate) fn default_language(&self) -> &Language {
        &self.default.1
    }

    /// Whether `template` may show `customer.interactions`: if not, nobody needs the count.
    pub(crate) fn shows_interaction_count(&self, template: &str) -> bool {
        self.counting.iter().any(|t| t == template)
    }

    /// Renders the note `template` for `ctx`.
    pub(crate) fn render(
        &self,
        template: &str,
        ctx: &impl serde::Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let value = minijinja::Value::from(minijinja::value::Serde(ctx));
        let text_tmpl = self.env.get_template(&format!("{template}{TEXT}"))?;
        let mut captured = text_tmpl.render_captured(value.clone())?;
        let (subject, text) = captured.with_state_mut(|state| {
            let subject = state.render_block("subject")?;
            let text = state.render_block("text")?;
            Ok::<_, minijinja::Error>((subject, text))
        })?;
        let html_tmpl = self.env.get_template(&format!("{template}{HTML}"))?;
        let mut captured = html_tmpl.render_captured(value)?;
        let html = captured.with_state_mut(|state| match state.render_block("html") {
            Ok(html) => Ok(Some(html)),
            Err(err) if err.kind() == ErrorKind::UnknownBlock => Ok(None),
            Err(err) => Err(err),
        })?;
        Ok(Rendered {
            subject: one_line(&subject),
            text: text.trim().to_string() + "\n",
            html: html.map(|h| h.trim().to_string()).filter(|h| !h.is_empty()),
        })
    }
}

/// The language variants of `template` in `dir`: `unhappy.fr.j2` for `unhappy.j2`, as
/// (language tag in lower case, file name), sorted.
fn language_variants(dir: &Path, template: &str) -> Vec<(String, String)> {
    let Some(stem) = template.strip_suffix(".j2") else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = existing(dir)
        .into_iter()
        .filter_map(|file| {
            let tag = file
                .strip_prefix(stem)?
                .strip_prefix('.')?
                .strip_suffix(".j2")?;
            (!tag.is_empty() && !tag.contains('.'))
                .then(|| (tag.to_ascii_lowercase(), file.clone()))
        })
        .collect();
    found.sort();
    found
}

/// Every template a rule names, and the digest's: (file, whose, where in the config).
fn wanted(config: &Config) -> Vec<(&str, String, std::ops::Range<usize>)> {
    let mut wanted: Vec<(&str, String, std::ops::Range<usize>)> = config
        .rules
        .iter()
        .map(|r| {
            let owner = format!("rule \"{}\"", r.name);
            (r.template.as_str(), owner, r.spans.template.clone())
        })
        .collect();
    if let Some(d) = &config.digest {
        wanted.push((
            d.template.as_str(),
            "[digest]".into(),
            d.template_span.clone(),
        ));
    }
    wanted
}

/// A warning when a note talks more about the business than about the customer: "it's not
/// about you" (seed 001). Counts first-person plural words against second-person ones.
fn self_centred(path: &Path, note: &Rendered, language: &Language) -> Option<Diagnostic> {
    let (us_words, you_words) = language.us_and_you();
    let (mut us, mut you) = (0, 0);
    let text = format!("{} {}", note.subject, note.text).to_lowercase();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if us_words.contains(&word) {
            us += 1;
        } else if you_words.contains(&word) {
            you += 1;
        }
    }
    (us > you).then(|| {
        Diagnostic::error_in(
            path,
            format!(
                "this note says {} {us} times and {} {you} times; make it about the customer, not about the business",
                us_words[..3].join("/"),
                you_words[..2].join("/")
            ),
        )
        .warning()
    })
}

/// The template files present in `dir`, for suggestions.
fn existing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Collapses whitespace and drops control characters: a subject is one header line.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A template error as a diagnostic at the template's file:line:col.
fn template_error(path: &Path, source: &str, err: &minijinja::Error) -> Diagnostic {
    let what = match err.kind() {
        ErrorKind::UndefinedError => {
            let expr = err
                .range()
                .and_then(|r| source.get(in_source(source, r)))
                .map(|e| format!(" `{}`", e.trim()))
                .unwrap_or_default();
            format!(
                "undefined variable{expr}; the variables are customer, interaction, days_quiet, season, sender, rule and unsubscribe (see README, \"Templates\"); guard optional ones with `is defined` or `|default(...)`"
            )
        }
        ErrorKind::UnknownBlock => format!(
            "{}; a template needs {{% block subject %}} and {{% block text %}} (and may have {{% block html %}})",
            err.detail().unwrap_or("a block is missing")
        ),
        ErrorKind::SyntaxError => format!(
            "syntax error: {}",
            err.detail().unwrap_or("invalid template")
        ),
        kind => match err.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        },
    };
    match (err.range(), err.line()) {
        (Some(range), _) => Diagnostic::error_at(path, source, in_source(source, range), what),
        (None, Some(line)) => {
            let offset = source
                .split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum();
            Diagnostic::error_at(path, source, offset..offset, what)
        }
        (None, None) => Diagnostic::error_in(path, what),
    }
}

/// A template error in one line, for logs and skip reasons.
pub(crate) fn describe(err: &minijinja::Error) -> String {
    let mut text = err.to_string();
    if let Some(line) = err.line() {
        text = format!("line {line}: {text}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn subjects_are_one_line_without_control_characters() {
        assert_eq!(
            one_line("  Hello\r\nBcc: x@y\t there "),
            "Hello Bcc: x@y there"
        );
    }
}
