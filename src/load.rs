//! Loading: the configuration, its templates and the checks against the outside world that
//! `run` needs, shared by the daemon (at start and on SIGHUP) and the one-shot commands.

use std::path::Path;

use crate::compose::Templates;
use crate::config::smtp::Tls;
use crate::config::{Config, Diagnostic};
use crate::deliver::trust::Trust;
use crate::error::Error;
use crate::log::{Log, LogError};

/// A configuration that passed every check, with its compiled templates.
pub(crate) struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Its templates.
    pub templates: Templates,
}

/// Loads and checks everything `run` needs: the config, the templates and the log's schema.
/// Returns every problem found (warnings are printed to stderr either way).
pub(crate) fn load(path: &Path) -> Result<Loaded, Error> {
    let (config, mut diagnostics) = Config::load(path);
    let loaded = config.and_then(|mut config| {
        if let Err(d) = config.read_secrets() {
            diagnostics.push(d);
        }
        let (templates, template_diagnostics) = Templates::load(&config);
        diagnostics.extend(template_diagnostics);
        match environment_problems(&config) {
            Ok(problems) => diagnostics.extend(problems),
            Err(busy) => return Some(Err(busy)),
        }
        templates.map(|templates| Ok(Loaded { config, templates }))
    });
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    for w in &warnings {
        eprintln!("{w}");
    }
    match loaded {
        Some(Err(busy)) => Err(Error::Unavailable(busy)),
        Some(Ok(loaded)) if errors.is_empty() => Ok(loaded),
        _ => Err(Error::Config(errors)),
    }
}

/// Checks against the outside world, doing only what `run` would do: open the log read-only,
/// check its schema and every segment, read the SMTP password. A log that another program has
/// locked, or that is missing for a moment, is no problem of the configuration: it is returned
/// apart, to wait for.
fn environment_problems(config: &Config) -> Result<Vec<Diagnostic>, LogError> {
    let mut problems = Vec::new();
    match Log::open(&config.log_path) {
        Err(err) if err.passing().is_some() => return Err(err),
        Err(err) => problems.push(config.error_at(
            config.path_spans.0.clone(),
            format!("{err}; check [paths] log"),
        )),
        Ok(log) => {
            match log.schema_problems() {
                Ok(list) => problems.extend(
                    list.into_iter()
                        .map(|p| Diagnostic::error_in(&config.log_path, p)),
                ),
                Err(err) => problems.push(Diagnostic::error_in(&config.log_path, err.to_string())),
            }
            for rule in &config.rules {
                if let Some(segment) = &rule.segment
                    && let Some(problem) = log.segment_problem(segment)
                {
                    let message = format!("rule \"{}\": {problem}", rule.name);
                    problems.push(config.error_at(rule.spans.segment.clone(), message));
                }
            }
            if let Some(rule) = config.rules.iter().find(|r| r.on_interaction)
                && let Some(problem) = log.rowid_problem()
            {
                let message = format!("rule \"{}\": {problem}", rule.name);
                problems.push(config.error_at(rule.spans.name.clone(), message));
            }
            if let Some(problem) = log.rowid_order_problem() {
                problems.push(Diagnostic::error_in(&config.log_path, problem));
            }
            if let Some(problem) = timestamp_problem(&log, &config.log_path) {
                problems.push(problem);
            }
            if let Some(mode) = log.rollback_journal() {
                let message = format!(
                    "the log uses a rollback journal (journal_mode = {mode}): while rekindle reads it, the programs that write it wait for the read to end (on a large log, seconds; see README, \"Large logs\"). With WAL they never wait: run `sqlite3 {} 'PRAGMA journal_mode=WAL'` once, while nothing else has it open",
                    config.log_path.display()
                );
                problems.push(Diagnostic::error_in(&config.log_path, message).warning());
            }
        }
    }
    if let Some(problem) = state_problem(&config.state_path) {
        problems.push(config.error_at(config.path_spans.1.clone(), problem));
    }
    let servers = match &config.transport {
        crate::config::Transport::Smtp(servers) => servers.as_slice(),
        crate::config::Transport::Maildir { .. } => &[],
    };
    for smtp in servers {
        if let Err(why) = smtp.check_password(config.base_dir()) {
            let message = format!("[transport.smtp]: {why}");
            problems.push(Diagnostic::error_in(&config.file, message));
        }
        if let Some(warning) = smtp.password_file_warning(config.base_dir()) {
            let message = format!("[transport.smtp]: {warning}");
            problems.push(Diagnostic::error_in(&config.file, message).warning());
        }
        if smtp.tls == Tls::None {
            continue;
        }
        match Trust::for_server(smtp, config.base_dir()) {
            Err(why) => {
                let message = format!("[transport] server {}: {why}", smtp.label());
                problems.push(match &smtp.ca_file {
                    Some(file) => config.error_at(file.span(), message),
                    None => Diagnostic::error_in(&config.file, message),
                });
            }
            Ok(trust) if trust.is_bundled() => {
                let message = format!(
                    "[transport] server {}: TLS certificates will be checked against {}",
                    smtp.label(),
                    trust.describe()
                );
                problems.push(Diagnostic::error_in(&config.file, message).warning());
            }
            Ok(_) => {}
        }
    }
    problems.extend(inbound_problems(config));
    Ok(problems)
}

/// What `[inbound]`'s sources need from this machine: an IMAP password that can be read, a CA
/// file that holds certificates, a maildir that is there.
fn inbound_problems(config: &Config) -> Vec<Diagnostic> {
    use crate::config::inbound::Source;
    let mut problems = Vec::new();
    for source in &config.inbound.sources {
        match source {
            Source::Imap(imap) => {
                if let Err(why) = imap.password(config.base_dir()) {
                    problems.push(Diagnostic::error_in(&config.file, why));
                }
                if imap.tls != Tls::None
                    && let Err((path, why)) = Trust::with_ca_file(imap.ca_file.clone())
                {
                    let message = format!(
                        "[[inbound.imap]] {}: cannot use the ca_file {}: {why}",
                        imap.name(),
                        path.display()
                    );
                    problems.push(Diagnostic::error_in(&config.file, message));
                }
            }
            Source::Maildir { name, dir } if !dir.join("new").is_dir() => {
                let message = format!(
                    "[[inbound.maildir]] {name}: {} has no new/ directory yet; it is read once your mail server delivers there (check `dir` and that rekindle's user may read it)",
                    dir.display()
                );
                problems.push(Diagnostic::error_in(&config.file, message).warning());
            }
            Source::Maildir { .. } => {}
        }
    }
    problems
}

/// Timestamps rekindle cannot read in a sample of the log: an error when they are a large share
/// (every rule would match nobody, in silence), a warning when only a few rows are skipped.
fn timestamp_problem(log: &Log, path: &Path) -> Option<Diagnostic> {
    let (looked, unreadable, examples) = match log.timestamp_sample() {
        Ok(sample) => sample,
        Err(err) => return Some(Diagnostic::error_in(path, err.to_string())),
    };
    if unreadable == 0 {
        return None;
    }
    let shown: Vec<String> = examples
        .iter()
        .map(|b| format!("interaction {} at {:?}", b.interaction_id, b.at))
        .collect();
    let milliseconds = examples
        .iter()
        .any(|b| b.at.trim().parse::<f64>().is_ok_and(|n| n.abs() >= 1e11));
    let fix = if milliseconds {
        "These look like Unix milliseconds: divide them in your view, e.g. `at_ms / 1000.0 AS at`"
    } else {
        "Write `at` as ISO-8601 text (2026-03-14T09:12:00Z, or with an offset) or as Unix seconds (an integer or a real); a view can convert your own form"
    };
    let message = format!(
        "{unreadable} of {looked} interactions sampled (the first and the newest thousand) have a timestamp rekindle cannot read, e.g. {}; every rule skips them. {fix}",
        shown.join(", ")
    );
    let diagnostic = Diagnostic::error_in(path, message);
    // A few bad rows are skipped with a warning; a log mostly unreadable is refused.
    Some(if unreadable * 2 > looked {
        diagnostic
    } else {
        diagnostic.warning()
    })
}

/// Why rekindle could not write its state database at `path`, if it could not: the file
/// itself, or the nearest directory that exists on the way to it.
fn state_problem(path: &Path) -> Option<String> {
    let tried = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        let dir = path
            .ancestors()
            .skip(1)
            .find(|d| d.as_os_str().is_empty() || d.is_dir())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })?;
        let probe = dir.join(format!(".rekindle-check-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map(|_| {
                let _ = std::fs::remove_file(&probe);
            })
    };
    tried.err().map(|e| {
        format!(
            "[paths] state: the state database {} cannot be written ({e}): rekindle keeps its notes there. Make its directory writable by the user rekindle runs as (under systemd, StateDirectory= does)",
            path.display()
        )
    })
}
