//! Loading, checking and rendering templates.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use crate::config::{Config, Diagnostic, diag};

use super::context::{DigestContext, NoteContext};

/// Suffix of the unescaped copy of a template (subject and text blocks).
const TEXT: &str = "#text";
/// Suffix of the HTML-escaped copy of a template (html block).
const HTML: &str = "#html";

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

/// The templates the rules use, compiled.
pub(crate) struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
    /// Templates that may show `customer.interactions` (a count read from the log per note).
    counting: Vec<String>,
}

impl Templates {
    /// Loads every template a rule names, and checks each by rendering it against
    /// [`NoteContext::sample`] (the fullest and the emptiest customer). All problems are returned.
    pub(crate) fn load(config: &Config) -> (Option<Templates>, Vec<Diagnostic>) {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        super::filters::add(&mut env);
        env.set_debug(true);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(HTML) {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut diagnostics = Vec::new();
        let wanted = wanted(config);
        let mut loaded: Vec<&str> = Vec::new();
        let mut counting = Vec::new();
        for (template, owner, span) in wanted {
            if loaded.contains(&template) {
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
            loaded.push(template);
            if source.contains("interactions") {
                counting.push(template.to_string());
            }
            for suffix in [TEXT, HTML] {
                let name = format!("{template}{suffix}");
                if let Err(err) = env.add_template_owned(name, source.clone()) {
                    diagnostics.push(template_error(&path, &source, &err));
                    break;
                }
            }
        }
        let templates = Templates {
            env,
            dir: config.templates_dir.clone(),
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

    /// Renders every template in `loaded` against the sample contexts (the fullest and the
    /// emptiest customer), collecting what fails and the wording lint's warnings.
    fn check(&self, config: &Config, loaded: &[&str], diagnostics: &mut Vec<Diagnostic>) {
        let templates = self;
        let samples = NoteContext::samples(config);
        let digest = config.digest.as_ref().map(|d| d.template.as_str());
        for name in loaded {
            let path = templates.dir.join(name);
            let checked = if Some(*name) == digest {
                // Written to the staff, not to a customer: no wording lint.
                templates
                    .render(name, &DigestContext::sample(config))
                    .map(drop)
            } else {
                samples.iter().enumerate().try_for_each(|(i, ctx)| {
                    let note = templates.render(name, ctx)?;
                    if i == 0 {
                        diagnostics.extend(self_centred(&path, &note));
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
fn self_centred(path: &Path, note: &Rendered) -> Option<Diagnostic> {
    let (mut us, mut you) = (0, 0);
    let text = format!("{} {}", note.subject, note.text).to_lowercase();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        match word {
            "we" | "our" | "ours" | "us" | "ourselves" => us += 1,
            "you" | "your" | "yours" | "yourself" => you += 1,
            _ => {}
        }
    }
    (us > you).then(|| {
        Diagnostic::error_in(
            path,
            format!(
                "this note says we/our/us {us} times and you/your {you} times; make it about the customer, not about the business"
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
                .and_then(|r| source.get(r))
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
        (Some(range), _) => Diagnostic::error_at(path, source, range, what),
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
