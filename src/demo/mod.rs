//! `rekindle demo`: a realistic demo interaction log, the shipped templates and rules, a maildir
//! transport, and one run of every rule through the same code path as `run --once`.

mod generate;
mod names;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands;
use crate::error::Error;

pub(crate) use generate::{DemoSpec, generate_log};

/// The shipped example configuration; the demo uses its sender, policy and rules as they are.
const SHIPPED_CONFIG: &str = include_str!("../../config/rekindle.toml");

/// The templates the demo writes: the shipped ones (which fit any business) in English and
/// French, with the bakery's own we-miss-you in English.
pub(crate) const TEMPLATES: [(&str, &str); 17] = [
    ("unhappy.j2", include_str!("../../templates/unhappy.j2")),
    ("departed.j2", include_str!("../../templates/departed.j2")),
    ("quiet.j2", include_str!("quiet.j2")),
    ("gratitude.j2", include_str!("../../templates/gratitude.j2")),
    (
        "valentines.j2",
        include_str!("../../templates/valentines.j2"),
    ),
    ("followup.j2", include_str!("../../templates/followup.j2")),
    (
        "appreciation.j2",
        include_str!("../../templates/appreciation.j2"),
    ),
    ("launch.j2", include_str!("../../templates/launch.j2")),
    ("digest.j2", include_str!("../../templates/digest.j2")),
    (
        "unhappy.fr.j2",
        include_str!("../../templates/unhappy.fr.j2"),
    ),
    (
        "departed.fr.j2",
        include_str!("../../templates/departed.fr.j2"),
    ),
    (
        "gratitude.fr.j2",
        include_str!("../../templates/gratitude.fr.j2"),
    ),
    (
        "valentines.fr.j2",
        include_str!("../../templates/valentines.fr.j2"),
    ),
    (
        "followup.fr.j2",
        include_str!("../../templates/followup.fr.j2"),
    ),
    (
        "appreciation.fr.j2",
        include_str!("../../templates/appreciation.fr.j2"),
    ),
    ("launch.fr.j2", include_str!("../../templates/launch.fr.j2")),
    ("quiet.fr.j2", include_str!("../../templates/quiet.fr.j2")),
];

/// Runs the demo in `dir`.
pub(crate) fn run(
    dir: &Path,
    customers: usize,
    seed: u64,
    interactions: Option<usize>,
    generate_only: bool,
) -> Result<(), Error> {
    let now = crate::clock::now();
    let started = Instant::now();
    let written = write(dir, customers, seed, interactions, now)?;
    let (log_path, config_path, stats) = (&written.log, &written.config, &written.stats);
    let maildir = written.dir.join("maildir");
    say!(
        "demo log: {} ({} customers, {} interactions, written in {:.1}s)",
        log_path.display(),
        stats.customers,
        stats.interactions,
        started.elapsed().as_secs_f64()
    );
    if generate_only {
        say!(
            "config: {}\nnext:\n  rekindle --config {} run --once",
            config_path.display(),
            config_path.display()
        );
        return Ok(());
    }
    let loaded = crate::load::load(config_path)?;
    let (reports, delivery) = commands::evaluate_and_deliver(&loaded, now)?;
    for r in &reports {
        say!("{:<20} {}", r.rule, r.summary());
    }
    say!(
        "delivered {} note(s) in {:.1}s to {}",
        delivery.sent,
        started.elapsed().as_secs_f64(),
        maildir.join("new").display()
    );
    say!(
        "\nnext:\n  ls {}\n  rekindle --config {} plan\n  rekindle --config {} preview --rule sorry --customer ID\n  rekindle --config {} status",
        maildir.join("new").display(),
        config_path.display(),
        config_path.display(),
        config_path.display()
    );
    Ok(())
}

/// What [`write`] wrote.
pub(crate) struct Written {
    /// The demo's directory, made absolute.
    pub dir: PathBuf,
    /// The interaction log.
    pub log: PathBuf,
    /// The configuration.
    pub config: PathBuf,
    /// What the log holds.
    pub stats: generate::DemoStats,
}

/// Writes the demo into `dir` as it would be at `now`: the log, the templates, the
/// configuration, and a fresh state and maildir (so the demo always shows a first run).
pub(crate) fn write(
    dir: &Path,
    customers: usize,
    seed: u64,
    interactions: Option<usize>,
    now: jiff::Timestamp,
) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let dir = dir.canonicalize().map_err(|e| Error::io("open", dir, e))?;
    let log_path = dir.join("interactions.sqlite");
    let cannot = |source| Error::DemoLog {
        path: log_path.clone(),
        source,
    };
    let spec = match interactions {
        Some(n) => DemoSpec::with_interactions(customers, seed, n, now).map_err(cannot)?,
        None => DemoSpec::new(customers, seed),
    };
    let stats = generate_log(&log_path, &spec, now).map_err(cannot)?;
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).map_err(|e| Error::io("create", &templates, e))?;
    for (name, text) in TEMPLATES {
        let path = templates.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
    }
    let state = dir.join("state.sqlite");
    for stale in [
        state.clone(),
        dir.join("state.sqlite-wal"),
        dir.join("state.sqlite-shm"),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let maildir = dir.join("maildir");
    let _ = std::fs::remove_dir_all(&maildir);
    let config_path = dir.join("rekindle.toml");
    let config = demo_config(&log_path, &state, &templates, &maildir)?;
    std::fs::write(&config_path, config).map_err(|e| Error::io("write", &config_path, e))?;
    Ok(Written {
        log: log_path,
        config: config_path,
        stats,
        dir,
    })
}

/// The shipped configuration, comments and all, with the demo's paths and a maildir transport,
/// and no quiet hours, days or holidays (the demo shows its notes whatever the hour).
fn demo_config(
    log: &Path,
    state: &Path,
    templates: &Path,
    maildir: &Path,
) -> Result<String, Error> {
    let quoted = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let off = "# (off in the demo, which shows its notes whatever the hour)";
    let edits = [
        ("paths", "log", Some(quoted(log))),
        ("paths", "state", Some(quoted(state))),
        ("paths", "templates", Some(quoted(templates))),
        ("transport", "kind", Some("\"maildir\"".to_string())),
        ("transport.maildir", "dir", Some(quoted(maildir))),
        ("policy", "quiet_hours", None),
        ("policy", "days", None),
        ("policy", "holidays", None),
    ];
    let mut text = SHIPPED_CONFIG.to_string();
    for (section, key, value) in edits {
        let line = match value {
            Some(value) => format!("{key} = {value}"),
            None => format!("# {key} {off}"),
        };
        text = set_key(&text, section, key, &line).ok_or_else(|| {
            Error::Demo(format!(
                "the shipped config has no `{key}` in [{section}] to set for the demo"
            ))
        })?;
    }
    Ok(format!(
        "# Written by `rekindle demo`: the shipped config/rekindle.toml with the demo's paths, a\n# maildir transport, and no quiet hours, days or holidays.\n\n{text}"
    ))
}

/// `text` with the line that sets `key` in `[section]` replaced by `line`; None if there is
/// no such line.
fn set_key(text: &str, section: &str, key: &str, line: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut inside = false;
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let trimmed = l.trim_start();
            if trimmed.starts_with('[') {
                inside = trimmed.trim_end() == header;
            } else if inside
                && !done
                && trimmed
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                done = true;
                return line.to_string();
            }
            l.to_string()
        })
        .collect();
    done.then(|| lines.join("\n") + "\n")
}
