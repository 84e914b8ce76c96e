//! The real daemon under real signals: SIGHUP reloads (a broken config is refused and the old
//! one keeps running; a good one takes over), SIGTERM stops it cleanly with exit 0 even in the
//! middle of a batch, and systemd's watchdog is fed only while every loop makes progress.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use support::config::{SORRY_ON_EVENT, SORRY_RULE, maildir, smtp};
use support::cut_proxy::{Cut, CutProxy};
use support::daemon::Daemon;
use support::fixture::{Fixture, ago, text};
use support::scripted_smtp::{Script, ScriptedSmtp};
use support::smtp_server::TestSmtpServer;

#[test]
fn reload_keeps_the_old_config_when_the_new_one_is_broken_and_sigterm_exits_cleanly() {
    let f = Fixture::new();
    f.config(&maildir("maildir"), SORRY_RULE);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");

    // A broken config: the daemon logs every error and keeps running on the old one.
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy\"", "unhapy\""),
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
    let two_rules = format!(
        "{SORRY_RULE}\n{}",
        SORRY_RULE.replace("\"sorry\"", "\"sorry-again\"")
    );
    f.config(&maildir("maildir"), &two_rules);
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
        &maildir("maildir"),
        &SORRY_RULE.replace("*/5 * * * *", "61 * * * *"),
    );
    let out = f.rekindle(&["run"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid cron schedule \"61 * * * *\""));
}

#[test]
fn sighup_with_a_changed_config_makes_the_new_rule_active() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None);
    let transport = format!(
        "{}\n[delivery]\npoll = \"1s\"\n[daemon]\nevent_poll = \"200ms\"",
        smtp(server.port(), &[])
    );
    f.config(&transport, SORRY_RULE);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Burnt toast."));
    // The new config reacts to complaints as they arrive.
    f.config(&transport, SORRY_ON_EVENT);
    daemon.signal("HUP");
    daemon.wait_for("configuration reloaded");
    let got = server.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "the reloaded event rule did not run");
    assert!(got[0].text_body().contains("Burnt toast."));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn sigterm_during_a_batch_exits_0_and_loses_nothing() {
    const NOTES: i64 = 1500;
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.complaints(1, NOTES);
    let config = format!(
        "{}\n[delivery]\npoll = \"1s\"\n[daemon]\nevent_poll = \"200ms\"\nevent_lookback = \"2d\"\n[policy]\ncap = 5",
        smtp(server.port(), &[])
    );
    f.config(&config, SORRY_ON_EVENT);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    // Stop it while it is delivering.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0), "{:?}", daemon.seen());
    let states = f.notes();
    assert!(
        states
            .iter()
            .all(|n| n.ends_with("|sent") || n.ends_with("|queued")),
        "a note was left in flight: {:?}",
        states
            .iter()
            .filter(|n| !n.ends_with("|sent") && !n.ends_with("|queued"))
            .collect::<Vec<_>>()
    );
    let sent = states.iter().filter(|n| n.ends_with("|sent")).count();
    assert_eq!(sent, server.received().len(), "sent means received");
    // The rest goes out on the next run; nothing twice.
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0));
    let ids: HashSet<String> = server
        .received()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(server.received().len(), ids.len(), "a note arrived twice");
    assert_eq!(f.notes().len() as i64, NOTES);
    eprintln!("stopped after {sent} of {NOTES}; the rest sent by the next run");
}

#[test]
fn the_watchdog_is_fed_only_while_every_loop_makes_progress() {
    // A mail server that accepts connections and never says a word: delivery hangs.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
        }
    });
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None);
    let transport = format!(
        "{}\ntimeout = \"10min\"\n[delivery]\npoll = \"1s\"\n[daemon]\nevent_poll = \"200ms\"",
        smtp(port, &[])
    );
    f.config(&transport, SORRY_ON_EVENT);
    let socket_path = f.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut daemon = Daemon::start_with_env(
        &f,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().expect("path")),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut messages = Vec::new();
    let read_for = |d: Duration, messages: &mut Vec<String>| {
        let until = Instant::now() + d;
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = socket.recv(&mut buf) {
                messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    };
    read_for(Duration::from_secs(3), &mut messages);
    assert!(
        messages.iter().any(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    assert!(
        messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "{messages:?}"
    );
    // A complaint: its apology hangs on the silent server, and the delivery loop with it.
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Cold."));
    let line = daemon.wait_for("withholding the watchdog ping");
    assert!(line.contains("stuck=delivery loop"), "{line}");
    // Drop the pings sent before the stall, then listen.
    let mut buf = [0u8; 4096];
    while socket.recv(&mut buf).is_ok() {}
    messages.clear();
    read_for(Duration::from_secs(2), &mut messages);
    assert!(
        !messages.iter().any(|m| m.contains("WATCHDOG=1")),
        "the watchdog was still fed: {messages:?}"
    );
}

#[test]
fn a_kept_connection_the_server_closed_while_idle_is_replaced_not_retried_later() {
    let server = TestSmtpServer::start();
    let proxy = CutProxy::start(server.port(), Cut::AfterAccept, 1);
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None)
        .customer(2, "bo@example.com", Some("Bo"), None, None);
    // A retry would come ten minutes later: the second note must not need one.
    let transport = format!(
        "{}\npool_size = 1\n[delivery]\npoll = \"1s\"\nretry_base = \"10m\"\n[daemon]\nevent_poll = \"200ms\"\n[policy]\ncap = 5",
        smtp(proxy.port(), &[])
    );
    f.config(&transport, SORRY_ON_EVENT);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Cold."));
    assert_eq!(server.wait_for(1, Duration::from_secs(15)).len(), 1);
    // The proxy has closed that connection; rekindle still holds it in its pool.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.cuts() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    f.interaction(2, &ago(0.0), "complaint", Some(-0.9), Some("Late."));
    let got = server.wait_for(2, Duration::from_secs(15));
    assert_eq!(got.len(), 2, "the second note waited for a retry");
    assert_eq!(got[1].to, ["bo@example.com"]);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// A daemon (with `grace`) whose one note is stuck mid-send: the server has the whole message
/// and never gives its final reply.
fn stuck_in_a_send(grace: &str) -> (Fixture, Daemon) {
    let server = ScriptedSmtp::start(Script {
        before_250: Duration::from_secs(3600),
        ..Script::default()
    });
    let f = Fixture::new();
    f.complaints(1, 1);
    let config = format!(
        "{}\n[daemon]\nevent_poll = \"200ms\"\nevent_lookback = \"2d\"\ngrace = \"{grace}\"",
        smtp(server.port(), &["timeout = \"120s\""])
    );
    f.config(&config, SORRY_ON_EVENT);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.received() == 0 {
        assert!(
            Instant::now() < deadline,
            "no note went out: {:?}",
            f.notes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (f, daemon)
}

#[test]
fn a_second_sigterm_ends_a_stuck_send_at_once_and_the_note_waits_for_an_operator() {
    let (f, mut daemon) = stuck_in_a_send("120s");
    daemon.signal("TERM");
    daemon.wait_for("stopping");
    // The grace period is long; a second signal does not wait for it.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(1));
    assert!(
        daemon
            .seen()
            .iter()
            .any(|l| l.contains("second stop signal")),
        "{:?}",
        daemon.seen()
    );
    // The next start parks it for an operator: it may or may not have arrived.
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
    assert!(
        f.notes().iter().all(|n| n.ends_with("|unknown")),
        "{:?}",
        f.notes()
    );
}

#[test]
fn one_process_delivers_from_a_state_database_a_second_one_refuses_naming_the_first() {
    // The live daemon's note is stuck mid-send at a server that never answers.
    let (f, mut daemon) = stuck_in_a_send("1s");
    let holder = format!("another rekindle (pid {}) is delivering from", daemon.pid());
    // Before, a `run --once` from cron parked the daemon's note as unknown ("the previous run
    // stopped while sending it"), and the README's recovery then sent it twice.
    for args in [&["run", "--once"][..], &["run"][..]] {
        let out = f.rekindle(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {stderr}");
        assert!(stderr.contains(&holder), "{args:?}: {stderr}");
    }
    assert_eq!(f.notes(), ["sorry|1|interaction-1|sending"]);
    daemon.signal("TERM");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(1));
    // The daemon is gone: now its note is parked for an operator, and the lock is free.
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
    assert_eq!(f.notes(), ["sorry|1|interaction-1|unknown"]);
}

#[test]
fn a_log_locked_by_another_program_at_start_is_waited_for_never_a_configuration_error() {
    let f = Fixture::new();
    f.complaints(1, 1);
    f.sql("PRAGMA journal_mode = DELETE");
    f.config(&maildir("maildir"), SORRY_RULE);
    // A nightly import holds the rollback-journal log's lock longer than rekindle's busy wait.
    let import = rusqlite::Connection::open(f.path("log.sqlite")).expect("open");
    import.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    // Before, both exited 78 ("1 problem(s) in the configuration"), which the unit's
    // RestartPreventExitStatus=78 turns into a service down until a person acts.
    let once = f.rekindle(&["run", "--once"]);
    let (_, stderr) = text(&once);
    assert_eq!(once.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("another program holds the log's lock"),
        "{stderr}"
    );
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("waiting for the interaction log");
    import.execute_batch("COMMIT").expect("unlock");
    daemon.wait_for("the interaction log can be read again");
    daemon.wait_for("rekindle started");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let waits = daemon
        .seen()
        .iter()
        .filter(|l| l.contains("waiting for the interaction log"))
        .count();
    assert_eq!(waits, 1, "one logged reason, not one per try");
}

/// The log missing for a moment at start (a restore, or `mv new.sqlite log.sqlite` half done):
/// `check` and `run --once` exit 75 (try again), the daemon waits with one logged reason. Before,
/// all three exited 78, which keeps the shipped unit down until a person acts. A log in a
/// directory that does not exist stays a configuration error.
#[test]
fn a_log_missing_for_a_moment_at_start_is_waited_for_never_a_configuration_error() {
    let f = Fixture::new();
    f.complaints(1, 1);
    f.config(&maildir("maildir"), SORRY_RULE);
    std::fs::rename(f.path("log.sqlite"), f.path("log.sqlite.restoring")).expect("move away");
    for args in [&["check"][..], &["run", "--once"][..]] {
        let out = f.rekindle(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {stderr}");
        assert!(stderr.contains("the file is missing"), "{args:?}: {stderr}");
    }
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("waiting for the interaction log: the file is missing");
    std::fs::rename(f.path("log.sqlite.restoring"), f.path("log.sqlite")).expect("restore");
    daemon.wait_for("the interaction log can be read again");
    daemon.wait_for("rekindle started");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    let config = std::fs::read_to_string(f.path("rekindle.toml")).expect("config");
    let typo = config.replace("log = \"log.sqlite\"", "log = \"no/such/dir/log.sqlite\"");
    assert_ne!(typo, config);
    std::fs::write(f.path("rekindle.toml"), typo).expect("write");
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("no/such/dir/log.sqlite"), "{stderr}");
}

/// A server that takes most of a second over each message, and a grace period too short for the
/// queue: at the exit every note the server accepted by then is recorded `sent`, the notes that
/// had not left are put back (retried at the next run), and only those on their way to the
/// server stay `sending`, to be parked as `unknown`. Before, outcomes were written per claimed
/// batch: all 40 notes were left `sending` and became `unknown`, though most never left.
#[test]
fn a_stop_past_the_grace_period_records_what_arrived_and_puts_back_what_never_left() {
    const POOL: usize = 2;
    let server = ScriptedSmtp::start(Script {
        before_250: Duration::from_secs(2),
        ..Script::default()
    });
    let f = Fixture::new();
    f.complaints(1, 40);
    let config = format!(
        "{}\n[delivery]\nconcurrency = 4\n[daemon]\nevent_poll = \"200ms\"\nevent_lookback = \"2d\"\ngrace = \"1s\"\n[policy]\ncap = 5",
        smtp(server.port(), &[&format!("pool_size = {POOL}")])
    );
    f.config(&config, SORRY_ON_EVENT);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    // Two accepted, and another on its way (the server has it, its reply takes 2 s).
    server.wait_for(2, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.received() < 3 {
        assert!(Instant::now() < deadline, "no third note went out");
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(1), "the grace period ran out");
    // The messages that were on their way reach the server a moment after the exit.
    std::thread::sleep(Duration::from_secs(3));
    server.script(|s| s.before_250 = Duration::ZERO);
    let accepted: HashSet<String> = server
        .accepted()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    let states = f.states_by_message_id();
    let in_state = |state: &str| -> Vec<&String> {
        states
            .iter()
            .filter(|(_, s)| s == state)
            .map(|(id, _)| id)
            .collect()
    };
    let (sent, sending) = (in_state("sent"), in_state("sending"));
    assert!(
        sent.iter().all(|id| accepted.contains(*id)),
        "sent means received"
    );
    assert!(
        accepted
            .iter()
            .all(|id| sent.contains(&id) || sending.contains(&id)),
        "a note the server accepted is recorded sent, or left for an operator: {states:?}"
    );
    assert!(
        sending.len() <= 2 * POOL && sending.iter().all(|id| accepted.contains(*id)),
        "only notes on their way are left `sending`: {sending:?}, accepted {accepted:?}"
    );
    assert_eq!(
        in_state("queued").len(),
        40 - sent.len() - sending.len(),
        "the notes that never left wait for the next run: {states:?}"
    );
    // The next run parks the ones that were on their way, and sends the rest, each once.
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let after = f.states_by_message_id();
    let unknown = after.iter().filter(|(_, s)| s == "unknown").count();
    assert_eq!(unknown, sending.len(), "{after:?}");
    assert_eq!(
        after.iter().filter(|(_, s)| s == "sent").count() + unknown,
        40
    );
    let ids: Vec<String> = server
        .accepted()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids.len(), 40, "every note arrived");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 40, "none twice");
    eprintln!(
        "at the exit: {} sent, {} on their way",
        sent.len(),
        sending.len()
    );
}

/// A wrong SMTP password: before, every queued note failed for good in a fraction of a second,
/// with one AUTH per note (an account lockout in the making). Now delivery pauses after one
/// AUTH per connection, the notes stay queued with their attempts uncounted, one ERROR says
/// what to do, `status` shows the pause, and a reload with the right password resumes at once.
#[test]
fn a_wrong_password_pauses_delivery_and_a_reload_with_the_right_one_resumes_it() {
    const POOL: usize = 2;
    const NOTES: usize = 20;
    let server = ScriptedSmtp::start(Script {
        login: Some(("rosemary".into(), "right horse battery".into())),
        ..Script::default()
    });
    let f = Fixture::new();
    f.complaints(1, NOTES as i64);
    let password = |text: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(f.path("smtp-password"), text).expect("password");
        std::fs::set_permissions(
            f.path("smtp-password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    };
    password("wrong horse\n");
    let config = format!(
        "{}\n[daemon]\nevent_poll = \"200ms\"\nevent_lookback = \"2d\"\n[policy]\ncap = 5",
        smtp(
            server.port(),
            &[
                "username = \"rosemary\"",
                "password_file = \"smtp-password\"",
                &format!("pool_size = {POOL}"),
            ]
        )
    );
    f.config(&config, SORRY_ON_EVENT);
    let mut daemon = Daemon::start(&f);
    let paused = daemon.wait_for("delivery paused");
    assert!(paused.contains("ERROR"), "{paused}");
    assert!(
        paused.contains("(535): 5.7.8 Authentication credentials invalid"),
        "the server's reply is named: {paused}"
    );
    // Give the loop a few polls: nothing more is tried, nothing fails.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        server.auth_attempts() <= POOL,
        "{} AUTH attempts for {NOTES} notes",
        server.auth_attempts()
    );
    assert_eq!(f.notes().len(), NOTES);
    assert!(
        f.notes().iter().all(|n| n.ends_with("|queued")),
        "{:?}",
        f.notes()
    );
    let (status, _) = text(&f.rekindle(&["status"]));
    assert!(status.contains("delivery PAUSED since"), "{status}");
    assert!(status.contains("535"), "{status}");
    assert!(server.accepted().is_empty());

    password("right horse battery\n");
    daemon.signal("HUP");
    let got = server.wait_for(NOTES, Duration::from_secs(30));
    assert_eq!(
        got.len(),
        NOTES,
        "every note goes once the password is right: {:?}",
        daemon.seen()
    );
    let ids: HashSet<&String> = got.iter().map(|m| &m.message_id).collect();
    assert_eq!(ids.len(), NOTES, "none twice");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let errors = daemon.seen().iter().filter(|l| l.contains("ERROR")).count();
    assert_eq!(errors, 1, "one ERROR line: {:?}", daemon.seen());
    let (status, _) = text(&f.rekindle(&["status"]));
    assert!(!status.contains("PAUSED"), "{status}");
    assert!(
        f.notes().iter().all(|n| n.ends_with("|sent")),
        "{:?}",
        f.notes()
    );
}

/// A daily rule whose time passed while the daemon was down runs once when it starts again (like
/// systemd timers' Persistent=true). Before, it waited for the next day.
#[test]
fn a_daily_rule_missed_while_the_daemon_was_down_runs_once_at_start() {
    let f = Fixture::new();
    f.complaints(1, 3);
    // Due ten minutes from now, Paris time (the fixture's time zone).
    let due = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10))
        .in_tz("Europe/Paris")
        .expect("tz");
    let rule = format!(
        "[[rule]]\nname = \"sorry\"\nkind = \"unhappy\"\nschedule = \"{} {} * * *\"\ntemplate = \"unhappy.j2\"\n",
        due.minute(),
        due.hour()
    );
    f.config(&maildir("maildir"), &rule);
    // The daemon runs for a moment, then is down while the rule's time passes.
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert!(f.notes().is_empty(), "not due yet: {:?}", f.notes());
    // Back forty minutes later.
    let mut daemon = Daemon::start_with_env(&f, &[("REKINDLE_CLOCK_OFFSET", "40m")]);
    let line = daemon.wait_for("catching up");
    assert!(line.contains("rule=sorry"), "{line}");
    daemon.wait_for("matched 3, queued 3");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert_eq!(f.notes().len(), 3, "{:?}", f.notes());
    // And once: a third start at the same time runs nothing.
    let mut daemon = Daemon::start_with_env(&f, &[("REKINDLE_CLOCK_OFFSET", "40m")]);
    daemon.wait_for("rekindle started");
    std::thread::sleep(Duration::from_secs(1));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert!(
        !daemon.seen().iter().any(|l| l.contains("catching up")),
        "{:?}",
        daemon.seen()
    );
}
