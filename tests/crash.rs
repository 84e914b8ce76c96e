//! `kill -9` the real binary again and again while it delivers a couple of thousand notes: at
//! the end the server has no Message-ID twice, and every note is `sent`, or `unknown` and listed
//! for an operator. Nothing is lost, nothing is sent twice.

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::config::{SORRY_RULE, smtp};
use support::fixture::{Fixture, text};
use support::smtp_server::TestSmtpServer;

const NOTES: i64 = 3000;
/// The SMTP connections (the default `pool_size`).
const POOL: usize = 4;

/// Notes parked as `unknown` so far.
fn unknown(f: &Fixture) -> usize {
    f.notes().iter().filter(|n| n.ends_with("|unknown")).count()
}

/// Notes that reached `sending` or beyond, read from the state database as an operator would.
fn delivered(f: &Fixture) -> i64 {
    let path = f.path("state.sqlite");
    if !path.exists() {
        return 0;
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(path, flags)
        .and_then(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            c.query_row(
                "SELECT count(*) FROM notes WHERE state NOT IN ('queued', 'retry')",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

#[test]
fn kill_9_during_delivery_never_duplicates_or_loses_a_note() {
    // Pipelining, as most servers offer: notes go out behind each other on each connection.
    let server = TestSmtpServer::start().pipelining();
    let f = Fixture::new();
    f.complaints(1, NOTES);
    let transport = smtp(server.port(), &[]);
    f.config(&transport, &format!("[policy]\ncap = 5\n\n{SORRY_RULE}"));
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut kills = 0;
    let (mut parked, mut unknown_before) = (Vec::new(), 0);
    for _ in 0..12 {
        let delivered_before = delivered(&f);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rekindle"))
            .arg("--config")
            .arg(f.path("rekindle.toml"))
            .args(["run", "--once"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        // Wait until this run's notes are arriving, then kill it at a random moment of the
        // delivery.
        let received_before = server.received().len();
        while child.try_wait().expect("try_wait").is_none()
            && (delivered(&f) == delivered_before || server.received().len() == received_before)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        child.wait().expect("reap");
        // The notes this run parked as `unknown` at its start, left by the crash before it:
        // only those on their way without the server's answer (at most one per connection),
        // never a whole claim nor the answers waiting to be recorded.
        let now_unknown = unknown(&f);
        parked.push(now_unknown - unknown_before);
        unknown_before = now_unknown;
    }
    // A last run to the end.
    let t = std::time::Instant::now();
    let out = f.rekindle(&["run", "--once"]);
    eprintln!("final run {:?}: {}", t.elapsed(), text(&out).0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    parked.push(unknown(&f) - unknown_before);
    assert!(
        parked.iter().all(|&n| n <= POOL),
        "notes parked as unknown per crash: {parked:?} (pool of {POOL})"
    );
    assert!(
        kills >= 3,
        "the test must actually interrupt deliveries ({kills} kills)"
    );

    let received = server.received();
    let ids: Vec<String> = received.iter().filter_map(|m| m.message_id()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a Message-ID arrived twice");

    let notes = f.notes();
    let sent = notes.iter().filter(|n| n.ends_with("|sent")).count();
    let unknown = notes.iter().filter(|n| n.ends_with("|unknown")).count();
    assert_eq!(
        notes.len() as i64,
        NOTES,
        "every customer got exactly one note queued"
    );
    assert_eq!(
        sent + unknown,
        notes.len(),
        "every note is sent or unknown: {:?}",
        notes
            .iter()
            .filter(|n| !n.ends_with("|sent") && !n.ends_with("|unknown"))
            .collect::<Vec<_>>()
    );
    let received_ids: HashSet<&String> = ids.iter().collect();
    let unknown_received = f
        .states_by_message_id()
        .iter()
        .filter(|(id, state)| state == "unknown" && received_ids.contains(id))
        .count();
    // Every sent note arrived; an unknown one may or may not have.
    assert!(
        ids.len() >= sent && ids.len() <= sent + unknown,
        "{} received, {sent} sent, {unknown} unknown",
        ids.len()
    );
    eprintln!(
        "{kills} kills: {sent} sent, {unknown} unknown (per crash: {parked:?}, {} of them received), {} received, none twice",
        unknown_received,
        ids.len()
    );
    let (listed, _) =
        text(&f.rekindle(&["outbox", "list", "--state", "unknown", "--limit", "100000"]));
    assert_eq!(
        listed.lines().filter(|l| l.contains(" unknown ")).count(),
        unknown,
        "{listed}"
    );
}
