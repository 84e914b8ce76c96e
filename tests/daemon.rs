//! The real daemon under real signals: SIGHUP reloads (a broken config is refused and the old
//! one keeps running), SIGTERM stops it cleanly with exit 0.

mod support;

use support::daemon::Daemon;
use support::fixture::Fixture;

const RULE: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

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
