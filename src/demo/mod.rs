//! `rekindle demo`: a realistic demo interaction log, the shipped templates and rules, a maildir
//! transport, and one run of every rule through the same code path as `run --once`.

mod generate;
mod names;

use std::path::Path;
use std::time::Instant;

use crate::commands;
use crate::error::Error;

pub(crate) use generate::{DemoSpec, generate_log};

/// The shipped example configuration; the demo uses its sender, policy and rules as they are.
const SHIPPED_CONFIG: &str = include_str!("../../config/rekindle.toml");

/// The shipped templates, written into the demo's template directory.
pub(crate) const TEMPLATES: [(&str, &str); 8] = [
    ("unhappy.j2", include_str!("../../templates/unhappy.j2")),
    ("departed.j2", include_str!("../../templates/departed.j2")),
    ("quiet.j2", include_str!("../../templates/quiet.j2")),
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
    ("digest.j2", include_str!("../../templates/digest.j2")),
];

/// Runs the demo in `dir`.
pub(crate) fn run(
    dir: &Path,
    customers: usize,
    seed: u64,
    interactions: Option<usize>,
    generate_only: bool,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let dir = dir.canonicalize().map_err(|e| Error::io("open", dir, e))?;
    let now = crate::clock::now();
    let log_path = dir.join("interactions.sqlite");
    let started = Instant::now();
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
    // A fresh state and maildir each time, so the demo always shows a first run.
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
    let loaded = crate::load::load(&config_path)?;
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

/// The shipped configuration with the demo's paths and a maildir transport.
fn demo_config(
    log: &Path,
    state: &Path,
    templates: &Path,
    maildir: &Path,
) -> Result<String, Error> {
    let mut table: toml::Table = toml::from_str(SHIPPED_CONFIG)
        .map_err(|e| Error::Demo(format!("the shipped config does not parse: {e}")))?;
    let text = |p: &Path| toml::Value::String(p.display().to_string());
    let mut paths = toml::Table::new();
    paths.insert("log".into(), text(log));
    paths.insert("state".into(), text(state));
    paths.insert("templates".into(), text(templates));
    table.insert("paths".into(), toml::Value::Table(paths));
    let mut maildir_table = toml::Table::new();
    maildir_table.insert("dir".into(), text(maildir));
    let mut transport = toml::Table::new();
    transport.insert("kind".into(), toml::Value::String("maildir".into()));
    transport.insert("maildir".into(), toml::Value::Table(maildir_table));
    table.insert("transport".into(), toml::Value::Table(transport));
    // The demo shows its notes whatever the hour: no quiet hours, days or holidays.
    if let Some(toml::Value::Table(policy)) = table.get_mut("policy") {
        for key in ["quiet_hours", "days", "holidays"] {
            policy.remove(key);
        }
    }
    let body = toml::to_string(&table).map_err(|e| Error::Demo(e.to_string()))?;
    Ok(format!(
        "# Written by `rekindle demo`: the shipped config/rekindle.toml (documented there) with\n# the demo's paths, a maildir transport, and no quiet hours, days or holidays.\n\n{body}"
    ))
}
