//! The real daemon under real signals: SIGHUP reloads (a broken config is refused and the old
//! one keeps running), SIGTERM stops it cleanly with exit 0.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::fixture::Fixture;

const RULE: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

/// A running `rekindle run` whose stderr lines arrive on a channel.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(f: &Fixture) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rekindle"))
            .arg("--config")
            .arg(f.path("rekindle.toml"))
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start daemon");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (with a deadline, never a fixed sleep) for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!(
            "no log line with {needle:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the daemon did not exit");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn reload_keeps_the_old_config_when_the_new_one_is_broken_and_sigterm_exits_cleanly() {
    let f = Fixture::new();
    f.config(Fixture::maildir_transport(), RULE);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");

    // A broken config: the daemon logs every error and keeps running on the old one.
    f.config(
        Fixture::maildir_transport(),
        &RULE.replace("unhappy\"", "unhapy\""),
    );
    daemon.signal("HUP");
    let error = daemon.wait_for("unknown rule kind");
    assert!(
        error.contains(
            "rekindle.toml:22:8: unknown rule kind \"unhapy\"; did you mean \"unhappy\"?"
        ),
        "{error}"
    );
    daemon.wait_for("new configuration rejected; still running on the previous one");
    assert!(
        daemon.child.try_wait().expect("try_wait").is_none(),
        "still running"
    );

    // A valid, changed config is taken.
    let two_rules = format!("{RULE}\n{}", RULE.replace("\"sorry\"", "\"sorry-again\""));
    f.config(Fixture::maildir_transport(), &two_rules);
    daemon.signal("HUP");
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(reloaded.contains("rules=2"), "{reloaded}");

    daemon.signal("TERM");
    daemon.wait_for("stopping");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn a_broken_config_refuses_to_start_with_exit_78() {
    let f = Fixture::new();
    f.config(
        Fixture::maildir_transport(),
        &RULE.replace("*/5 * * * *", "61 * * * *"),
    );
    let out = f.rekindle(&["run"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid cron schedule \"61 * * * *\""));
}
