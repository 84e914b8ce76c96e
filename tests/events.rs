//! Event triggers on the real daemon: a complaint committed to the log becomes an apology at a
//! real SMTP server within seconds; a restart misses nothing and repeats nothing. Follow-ups
//! thank a customer for the complaint a resolution answered. A second process writing to the
//! log all along never sees SQLITE_BUSY.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::config::{maildir, smtp};
use support::daemon::Daemon;
use support::fixture::{Fixture, ago, text};
use support::smtp_server::TestSmtpServer;

const EVENT_RULES: &str = r#"[daemon]
event_poll = "200ms"

# An apology and, later, a thank-you for the same complaint may both go.
[policy]
cap = 2

[[rule]]
name = "sorry"
kind = "unhappy"
trigger = "interaction"
template = "unhappy.j2"
priority = 100

[[rule]]
name = "thanks-for-telling-us"
kind = "followup"
trigger = "interaction"
template = "followup.j2"
priority = 90
"#;

fn smtp_transport(port: u16) -> String {
    format!("{}\n[delivery]\npoll = \"1s\"", smtp(port, &[]))
}

#[test]
fn a_new_complaint_gets_its_apology_within_seconds_and_a_restart_neither_misses_nor_repeats() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada Lovelace"), None, None)
        .customer(2, "bo@example.com", Some("Bo Diddley"), None, None)
        .interaction(1, &ago(40.0), "purchase", Some(0.6), None);
    f.config(&smtp_transport(server.port()), EVENT_RULES);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");

    let committed = Instant::now();
    f.interaction(
        1,
        &ago(0.0),
        "complaint",
        Some(-0.9),
        Some("The sourdough was raw in the middle."),
    );
    let got = server.wait_for(1, Duration::from_secs(15));
    let latency = committed.elapsed();
    assert_eq!(got.len(), 1, "no apology arrived");
    assert_eq!(got[0].to, ["ada@example.com"]);
    assert!(
        got[0]
            .text_body()
            .contains("The sourdough was raw in the middle."),
        "{}",
        got[0].text_body()
    );
    eprintln!("commit → apology at the SMTP server: {latency:?}");

    // Stop; a complaint arrives while rekindle is down; start again.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    f.interaction(
        2,
        &ago(0.0),
        "complaint",
        Some(-0.7),
        Some("Rude at the till."),
    );
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    let got = server.wait_for(2, Duration::from_secs(15));
    assert_eq!(got.len(), 2, "the complaint made while stopped was missed");
    assert_eq!(got[1].to, ["bo@example.com"]);

    // The resolution of Ada's complaint: a thank-you that remembers what she said.
    f.interaction(
        1,
        &ago(0.0),
        "resolution",
        None,
        Some("Refunded and apologised."),
    );
    let got = server.wait_for(3, Duration::from_secs(15));
    assert_eq!(got.len(), 3, "no follow-up arrived");
    assert_eq!(got[2].to, ["ada@example.com"]);
    assert!(
        got[2]
            .text_body()
            .contains("The sourdough was raw in the middle."),
        "{}",
        got[2].text_body()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    // Nothing twice, after all that.
    let ids: Vec<_> = server
        .received()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
}

#[test]
fn a_followup_quotes_the_complaint_it_answers_and_is_sent_once_per_complaint() {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada Lovelace"), None, None)
        .interaction(
            1,
            &ago(5.0),
            "complaint",
            Some(-0.8),
            Some("Cold coffee, twice."),
        )
        .interaction(1, &ago(3.0), "resolution", None, Some("New machine."))
        .interaction(1, &ago(2.0), "resolution", None, Some("Called to check."))
        // A resolution without an earlier complaint is not followed up.
        .customer(2, "bo@example.com", Some("Bo"), None, None)
        .interaction(2, &ago(1.0), "resolution", None, None);
    f.config(
        &maildir("maildir"),
        r#"[[rule]]
name = "thanks-for-telling-us"
kind = "followup"
schedule = "0 10 * * *"
template = "followup.j2"
"#,
    );
    let (stdout, stderr) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("thanks-for-telling-us    matched 1, queued 1"),
        "{stdout}\n{stderr}"
    );
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("Cold coffee, twice."),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("ada@example.com>"), "{}", messages[0]);
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(stdout.contains("queued 0"), "{stdout}");
}

#[test]
fn a_writer_inserting_all_along_never_sees_busy_and_the_daemon_never_errors() {
    for wal in [true, false] {
        let server = TestSmtpServer::start();
        let f = Fixture::new();
        if !wal {
            f.sql("PRAGMA journal_mode = DELETE");
        }
        f.sql("BEGIN");
        for id in 1..=300 {
            f.customer(
                id,
                &format!("c{id}@example.com"),
                Some("Customer"),
                None,
                None,
            )
            .interaction(id, &ago(90.0), "purchase", Some(0.5), None)
            .interaction(id, &ago(80.0), "purchase", Some(0.5), None)
            .interaction(id, &ago(70.0), "purchase", Some(0.5), None);
        }
        f.sql("COMMIT");
        f.config(&smtp_transport(server.port()), EVENT_RULES);
        let mut daemon = Daemon::start(&f);
        daemon.wait_for("rekindle started");
        // The business's own program: one row per transaction, a short busy timeout.
        let writer = rusqlite::Connection::open(f.path("log.sqlite")).expect("writer");
        writer
            .busy_timeout(Duration::from_millis(2000))
            .expect("busy timeout");
        let until = Instant::now() + Duration::from_secs(4);
        let mut rows = 0;
        while Instant::now() < until {
            let customer = 1 + rows % 300;
            let result = writer.execute(
                "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
                 VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'complaint', -0.5, 'web', 'Late.')",
                [customer],
            );
            assert!(
                result.is_ok(),
                "the writer was refused after {rows} rows: {result:?}"
            );
            rows += 1;
        }
        let got = server.wait_for(300, Duration::from_secs(30));
        if got.len() != 300 {
            let logged: Vec<&String> = daemon
                .seen()
                .iter()
                .filter(|l| !l.contains("note sent") && !l.contains("note queued"))
                .collect();
            panic!(
                "wal={wal}: {} apologies, one per customer wanted ({rows} rows); besides notes the daemon logged: {logged:#?}",
                got.len()
            );
        }
        daemon.signal("TERM");
        assert_eq!(daemon.wait_exit(), Some(0));
        let errors: Vec<&String> = daemon
            .seen()
            .iter()
            .filter(|l| l.contains("ERROR"))
            .collect();
        assert!(errors.is_empty(), "wal={wal}: {errors:?}");
        eprintln!("wal={wal}: the writer committed {rows} rows in 4 s, never refused");
    }
}

#[test]
fn a_log_replaced_under_its_path_is_followed_and_its_new_complaints_answered() {
    let f = Fixture::new();
    // A rollback journal: a WAL log's -wal and -shm files, still open here, would be taken for
    // the new file's.
    f.sql("PRAGMA journal_mode = DELETE");
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(0.0), "complaint", Some(-0.8), Some("Cold tea."));
    f.config(&maildir("maildir"), EVENT_RULES);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    let wait_for_notes = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while f.maildir_messages().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        f.maildir_messages()
    };
    assert_eq!(wait_for_notes(1).len(), 1);
    // The business restores its log from elsewhere: another file lands at the same path.
    let replacement = f.path("restored.sqlite");
    let log = rusqlite::Connection::open(&replacement).expect("restored log");
    log.execute_batch(support::fixture::SCHEMA).expect("schema");
    for (id, email) in [(1, "ann@example.com"), (2, "bob@example.com")] {
        log.execute(
            "INSERT INTO customers (id, email, name, created_at, status, opted_out)
             VALUES (?1, ?2, 'Customer', '2023-05-14T10:00:00Z', 'active', 0)",
            rusqlite::params![id, email],
        )
        .expect("customer");
        log.execute(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
             VALUES (?1, ?2, 'complaint', -0.8, 'email', 'Cold tea.')",
            rusqlite::params![id, ago(0.0)],
        )
        .expect("complaint");
    }
    drop(log);
    // Taken away first, as a copy-based restore does: said once, not at every poll.
    std::fs::remove_file(f.path("log.sqlite")).expect("remove the log");
    daemon.wait_for("the interaction log is missing");
    std::thread::sleep(Duration::from_millis(600));
    std::fs::rename(&replacement, f.path("log.sqlite")).expect("replace the log");
    // Before, the watcher stayed on the deleted file: Bob's complaint went unanswered.
    daemon.wait_for("the interaction log was replaced");
    let notes = wait_for_notes(2);
    assert_eq!(notes.len(), 2, "{:?}", daemon.seen());
    assert!(
        notes.iter().any(|n| n.contains("bob@example.com")),
        "{notes:?}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let missing = daemon
        .seen()
        .iter()
        .filter(|l| l.contains("is missing"))
        .count();
    assert_eq!(missing, 1, "{:?}", daemon.seen());
}

/// Ada, who bought something 40 days ago, and the event rules with the log looked at only
/// hourly: what wakes the daemon in time is the notification of a write.
fn ada_polled_hourly(transport: &str) -> Fixture {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada Lovelace"), None, None)
        .interaction(1, &ago(40.0), "purchase", Some(0.6), None);
    f.config(
        transport,
        &EVENT_RULES.replace("event_poll = \"200ms\"", "event_poll = \"1h\""),
    );
    f
}

/// A committed complaint is noticed as it is written, not at the next poll: with the poll an
/// hour apart, the apology still arrives within seconds. Before, it waited for the poll.
#[test]
fn a_complaint_is_noticed_as_it_is_written_not_at_the_next_poll() {
    let server = TestSmtpServer::start();
    let f = ada_polled_hourly(&smtp_transport(server.port()));
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    // The first poll at start is behind us; the next one is an hour away.
    std::thread::sleep(Duration::from_millis(500));
    let committed = Instant::now();
    f.interaction(
        1,
        &ago(0.0),
        "complaint",
        Some(-0.9),
        Some("Raw in the middle."),
    );
    let got = server.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "no apology within 20 s: {:?}", daemon.seen());
    eprintln!(
        "commit → apology at the SMTP server: {:?}",
        committed.elapsed()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// Another program commits a complaint on a disk whose syncs are slow (here: 400 ms, its
/// `fsync` held back by a preloaded shim), as a busy shared disk can be: the write is noticed
/// before the commit shows, and the daemon keeps looking until it does. Before, it looked twice
/// within 30 ms and then waited for the next poll (an hour here).
#[test]
fn a_complaint_whose_commit_syncs_slowly_is_still_noticed_at_once() {
    let server = TestSmtpServer::start();
    // Nothing else wakes the daemon within the test: no delivery pass either.
    let f = ada_polled_hourly(&format!(
        "{}\n[delivery]\npoll = \"1h\"",
        smtp(server.port(), &[])
    ));
    let shim = slow_sync_shim(&f);
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    std::thread::sleep(Duration::from_millis(500));
    // The writer keeps its connection open, as an application would (closing the last one
    // would checkpoint, and that write would be noticed).
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
        db.execute('PRAGMA synchronous = FULL')\n\
        db.execute(\"INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note) \
        VALUES (1, ?, 'complaint', -0.9, 'email', 'Raw in the middle.')\", (sys.argv[2],))\n\
        sys.stdin.read()\n";
    let mut writer = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(f.path("log.sqlite"))
        .arg(ago(0.0))
        .env("LD_PRELOAD", &shim)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test (apt-get install python3)");
    let got = server.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "no apology within 20 s: {:?}", daemon.seen());
    drop(writer.stdin.take());
    assert!(
        writer.wait().is_ok_and(|s| s.success()),
        "the writer failed"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// A shared object that makes `fsync` and `fdatasync` take 400 ms, built with the C compiler.
fn slow_sync_shim(f: &Fixture) -> std::path::PathBuf {
    let (source, shim) = (f.path("slow_sync.c"), f.path("slow_sync.so"));
    let code = r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
static int slow(const char *name, int fd) {
    usleep(400000);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real ? real(fd) : 0;
}
int fsync(int fd) { return slow("fsync", fd); }
int fdatasync(int fd) { return slow("fdatasync", fd); }
"#;
    std::fs::write(&source, code).expect("write the shim");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&shim)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("a C compiler is needed for this test (apt-get install gcc)");
    assert!(built.status.success(), "{}", text(&built).1);
    shim
}
