#![allow(dead_code)]
//! A story-style builder for integration tests: a temp dir with an interaction log, templates
//! and a config, and helpers to run the real `rekindle` binary against them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::{Connection, params};

use super::config::{self as text_config, FIXTURE};

/// The canonical schema, as shipped.
pub const SCHEMA: &str = include_str!("../../src/log/schema.sql");

/// A temp dir holding a log, templates and a config.
pub struct Fixture {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The log's connection (read-write: the tests play the business).
    pub log: Connection,
}

impl Fixture {
    /// An empty log (WAL) with the canonical schema and the shipped templates.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Connection::open(dir.path().join("log.sqlite")).expect("log");
        // WAL, as README and `check` advise; tests of a rollback journal switch back.
        log.execute_batch(SCHEMA).expect("schema");
        log.pragma_update(None, "journal_mode", "WAL").expect("wal");
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).expect("templates dir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for entry in std::fs::read_dir(shipped).expect("shipped templates") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), templates.join(entry.file_name())).expect("copy template");
        }
        Fixture { dir, log }
    }

    /// A path inside the fixture.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds a customer.
    pub fn customer(
        &self,
        id: i64,
        email: &str,
        name: Option<&str>,
        tz: Option<&str>,
        attributes: Option<&str>,
    ) -> &Self {
        self.log
            .execute(
                "INSERT INTO customers (id, email, name, timezone, created_at, status, opted_out, attributes)
                 VALUES (?1, ?2, ?3, ?4, '2023-05-14T10:00:00Z', 'active', 0, ?5)",
                params![id, email, name, tz, attributes],
            )
            .expect("insert customer");
        self
    }

    /// Runs SQL against the log (to set statuses, opt-outs, bad rows).
    pub fn sql(&self, sql: &str) -> &Self {
        self.log.execute_batch(sql).expect("sql");
        self
    }

    /// Adds an interaction.
    pub fn interaction(
        &self,
        customer: i64,
        at: &str,
        kind: &str,
        sentiment: Option<f64>,
        note: Option<&str>,
    ) -> &Self {
        self.log
            .execute(
                "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note) VALUES (?1, ?2, ?3, ?4, 'email', ?5)",
                params![customer, at, kind, sentiment, note],
            )
            .expect("insert interaction");
        self
    }

    /// Writes `rekindle.toml`: the standard header (paths, sender, `transport`) followed by `rules`.
    pub fn config(&self, transport: &str, rules: &str) -> PathBuf {
        let text = text_config::config(&FIXTURE, transport, Some("Europe/Paris"), rules);
        let path = self.path("rekindle.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Customers `first..first + n`, each with a complaint a day old, in one transaction.
    pub fn complaints(&self, first: i64, n: i64) -> &Self {
        self.sql("BEGIN");
        for id in first..first + n {
            self.customer(
                id,
                &format!("c{id}@example.com"),
                Some(&format!("Customer {id}")),
                None,
                None,
            )
            .interaction(id, &ago(1.0), "complaint", Some(-0.8), Some("Stale bread."));
        }
        self.sql("COMMIT")
    }

    /// Runs `rekindle --config <config> args…`.
    pub fn rekindle(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rekindle"))
            .arg("--config")
            .arg(self.path("rekindle.toml"))
            .args(args)
            .env("RUST_LOG", "info")
            .output()
            .expect("run rekindle")
    }

    /// The files delivered to the maildir.
    pub fn maildir_messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.path("maildir/new"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read message"))
            .collect()
    }

    /// Runs SQL against the state database (to simulate a crash, say).
    pub fn state_sql(&self, sql: &str) {
        let state = Connection::open(self.path("state.sqlite")).expect("state");
        state.execute_batch(sql).expect("state sql");
    }

    /// Rows of the state database, as `rule|customer|occasion|state`.
    pub fn notes(&self) -> Vec<String> {
        let state = Connection::open(self.path("state.sqlite")).expect("state");
        let mut stmt = state
            .prepare("SELECT rule || '|' || customer_id || '|' || occasion || '|' || state FROM notes ORDER BY id")
            .expect("query");
        stmt.query_map([], |r| r.get(0))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    }
}

impl Fixture {
    /// Each note's Message-ID and state, in id order.
    pub fn states_by_message_id(&self) -> Vec<(String, String)> {
        self.state_pairs("SELECT message_id, state FROM notes ORDER BY id")
    }

    /// The rows of `sql`, two text columns, run on the state database.
    pub fn state_pairs(&self, sql: &str) -> Vec<(String, String)> {
        let state = Connection::open(self.path("state.sqlite")).expect("state");
        let mut stmt = state.prepare(sql).expect("query");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    }
}

/// stdout and stderr of a run, as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An ISO-8601 timestamp `days` days before the real current time.
pub fn ago(days: f64) -> String {
    let secs = (days * 86_400.0) as i64;
    (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
