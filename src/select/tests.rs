//! Every rule kind on a fixture log with a fixed clock.

use std::path::Path;

use rusqlite::{Connection, params};

use super::stream::READ_AHEAD;
use super::*;
use crate::config::Config;
use crate::test_config;

/// The fixture's clock: Tuesday 24 November 2026, 10:00 in Paris.
fn now() -> Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("time")
}

fn days_ago(days: i64) -> String {
    (now() - jiff::SignedDuration::from_hours(days * 24)).to_string()
}

/// A log with one customer per situation (ids chosen to read well in assertions).
fn fixture() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("log.sqlite");
    let conn = Connection::open(&path).expect("log");
    conn.execute_batch(crate::log::SCHEMA).expect("schema");
    let customers: [(i64, &str, &str); 10] = [
        (1, "quiet", "active"),
        (2, "recent", "active"),
        (3, "newbie", "active"),
        (4, "angry", "active"),
        (5, "old-complaint", "active"),
        (6, "sour-review", "active"),
        (7, "cancelled", "active"),
        (8, "departed-status", "departed"),
        (9, "long-gone", "departed"),
        (10, "quiet-but-segment-out", "vip"),
    ];
    for (id, name, status) in customers {
        conn.execute(
            "INSERT INTO customers (id, email, name, created_at, status) VALUES (?1, ?2, ?3, '2022-01-01', ?4)",
            params![id, format!("{name}@example.com"), name, status],
        )
        .expect("customer");
    }
    let add = |c: i64, days: i64, kind: &str, sentiment: Option<f64>, note: Option<&str>| {
        conn.execute(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c, days_ago(days), kind, sentiment, note],
        )
        .expect("interaction");
    };
    for d in [200, 150, 120, 90] {
        add(1, d, "purchase", None, None);
        add(10, d, "purchase", None, None);
    }
    for d in [40, 20, 5] {
        add(2, d, "purchase", None, None);
    }
    add(3, 100, "purchase", None, None);
    add(4, 300, "purchase", None, None);
    add(
        4,
        2,
        "complaint",
        Some(-0.8),
        Some("The sourdough was burnt."),
    );
    add(5, 30, "complaint", Some(-0.7), Some("Late delivery."));
    add(6, 3, "review", Some(-0.8), Some("Stale croissants."));
    add(6, 1, "review", Some(0.1), None);
    add(7, 40, "purchase", None, None);
    add(7, 10, "cancellation", None, Some("Moving to Lyon."));
    add(8, 5, "purchase", None, None);
    add(9, 200, "purchase", None, None);
    // An unreadable timestamp is skipped by every rule, never guessed at.
    conn.execute(
        "INSERT INTO interactions (customer_id, at, kind) VALUES (2, 'last tuesday', 'complaint')",
        [],
    )
    .expect("bad row");
    drop(conn);
    let log = Log::open(&path).expect("open");
    (dir, log)
}

/// A config (in Europe/Paris) whose one rule is `body`.
fn rule(body: &str) -> Config {
    let rule =
        format!("[[rule]]\nname = \"r\"\nschedule = \"0 10 * * *\"\ntemplate = \"t.j2\"\n{body}");
    let maildir = test_config::maildir("m");
    let text = test_config::config(&test_config::SCRATCH, &maildir, Some("Europe/Paris"), &rule);
    let (config, d) = Config::parse(Path::new("c.toml"), text);
    assert!(d.is_empty(), "{d:?}");
    config.expect("config")
}

/// Every candidate of the config's one rule at `at`.
fn all_candidates(log: &Log, config: &Config, at: Timestamp) -> Vec<Candidate> {
    let mut out = Vec::new();
    super::candidates(log, config, &config.rules[0], at, None, |c| {
        out.push(c);
        ControlFlow::Continue(())
    })
    .expect("select");
    out
}

fn matched(log: &Log, config: &Config, at: Timestamp) -> Vec<(String, String, Option<i64>)> {
    all_candidates(log, config, at)
        .into_iter()
        .map(|c| {
            let days = match c.found {
                Found::Quiet { days } => Some(days),
                _ => None,
            };
            (c.customer.id_text, c.occasion, days)
        })
        .collect()
}

#[test]
fn quiet_needs_history_and_silence_and_respects_the_segment() {
    let (_dir, log) = fixture();
    let quiet = rule("kind = \"quiet\"\nmin_interactions = 3\nquiet_for = \"60d\"");
    let ids: Vec<_> = matched(&log, &quiet, now())
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(ids, ["1", "10"]);
    let segmented = rule("kind = \"quiet\"\nsegment = \"status = 'active'\"");
    let found = matched(&log, &segmented, now());
    assert_eq!(
        found,
        [(
            "1".to_string(),
            "quiet-since-2026-08-26".to_string(),
            Some(90)
        )]
    );
}

#[test]
fn unhappy_finds_recent_complaints_and_sour_sentiment_once_each() {
    let (_dir, log) = fixture();
    let unhappy = rule("kind = \"unhappy\"\nwithin = \"14d\"\nsentiment_below = -0.5");
    let found: Vec<_> = all_candidates(&log, &unhappy, now())
        .into_iter()
        .map(|c| {
            let t = c.trigger().cloned().expect("trigger");
            (c.customer.id_text, t.kind, t.note)
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "6".to_string(),
                "review".to_string(),
                Some("Stale croissants.".to_string())
            ),
            (
                "4".to_string(),
                "complaint".to_string(),
                Some("The sourdough was burnt.".to_string())
            ),
        ]
    );
}

#[test]
fn departed_thanks_cancellations_and_departed_status_but_not_long_gone() {
    let (_dir, log) = fixture();
    let departed = rule("kind = \"departed\"\nwithin = \"30d\"");
    let found: Vec<_> = all_candidates(&log, &departed, now())
        .into_iter()
        .map(|c| {
            let kind = c.trigger().map(|t| t.kind.clone());
            (c.customer.id_text, c.occasion, kind)
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "7".to_string(),
                "departed".to_string(),
                Some("cancellation".to_string())
            ),
            ("8".to_string(), "departed".to_string(), None),
        ]
    );
}

#[test]
fn seasonal_includes_everyone_still_here_only_inside_the_window() {
    let (_dir, log) = fixture();
    let gratitude =
        rule("kind = \"seasonal\"\nseason = \"gratitude\"\nstart = \"11-20\"\nend = \"11-30\"");
    let found = matched(&log, &gratitude, now());
    // Everyone still here; those longest without a positive touch point first.
    let mut ids: Vec<_> = found.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(ids.first(), Some(&"5"));
    ids.sort_by_key(|id| id.parse::<u32>().unwrap_or(0));
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7", "10"]);
    assert!(found.iter().all(|m| m.1 == "gratitude-2026"));
    let december: Timestamp = "2026-12-02T09:00:00Z".parse().expect("time");
    assert!(matched(&log, &gratitude, december).is_empty());
}

#[test]
fn the_clock_is_an_input() {
    let (_dir, log) = fixture();
    let unhappy = rule("kind = \"unhappy\"\nwithin = \"14d\"");
    // Three weeks later both complaints have left the window.
    let later = now() + jiff::SignedDuration::from_hours(21 * 24);
    assert!(matched(&log, &unhappy, later).is_empty());
    // Before customer 4 complained, only the sour review... had not happened either.
    let before = now() - jiff::SignedDuration::from_hours(4 * 24);
    assert!(matched(&log, &unhappy, before).is_empty());
}

#[test]
fn unreadable_timestamps_are_reported() {
    let (_dir, log) = fixture();
    let (count, rows) = log.bad_timestamps(10).expect("scan");
    assert_eq!(count, 1);
    assert_eq!(rows[0].at, "last tuesday");
    assert_eq!(rows[0].customer_id, "2");
}

/// A log of `total` customers, each with one purchase 100 days ago.
fn quiet_customers(total: usize) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("log.sqlite");
    let conn = Connection::open(&path).expect("log");
    conn.execute_batch(crate::log::SCHEMA).expect("schema");
    let tx = conn.unchecked_transaction().expect("tx");
    for id in 1..=total as i64 {
        tx.execute(
            "INSERT INTO customers (id, email, created_at) VALUES (?1, ?2, '2022-01-01')",
            params![id, format!("c{id}@example.com")],
        )
        .expect("customer");
        tx.execute(
            "INSERT INTO interactions (customer_id, at, kind) VALUES (?1, ?2, 'purchase')",
            params![id, days_ago(100)],
        )
        .expect("interaction");
    }
    tx.commit().expect("commit");
    let log = Log::open(&path).expect("open");
    (dir, log)
}

/// A selection read ahead whose turn never comes (the evaluation failed before it) stops its
/// reader, even one waiting to hand over its candidates: the evaluation ends, nothing hangs.
#[test]
fn a_selection_read_ahead_and_never_taken_stops_its_reader() {
    let (_dir, log) = quiet_customers(READ_AHEAD + 10);
    let quiet = rule("kind = \"quiet\"\nmin_interactions = 1\nquiet_for = \"60d\"");
    std::thread::scope(|threads| {
        let ahead = read_ahead(threads, &log, &quiet, &quiet.rules[0], now()).expect("reader");
        // Give it time to fill what it may hand over, and wait there.
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(ahead);
    });
}

/// A reader past its daily limit has the rest of the selection counted, not read: the count is
/// the same whether the candidates were all read ahead or some still stream from the log, and
/// whether the selection is read on the rule's own thread or ahead of its turn on another.
#[test]
fn the_rest_of_a_selection_is_counted_whether_read_ahead_or_streaming() {
    let total = READ_AHEAD + 10;
    let (_dir, log) = quiet_customers(total);
    let quiet = rule("kind = \"quiet\"\nmin_interactions = 1\nquiet_for = \"60d\"");
    // The whole selection the same on this thread and read ahead on another (see `ahead`),
    // where some of the rest has already been handed over when the turn breaks off.
    let count_after = |read: usize, only: Option<&[rusqlite::types::Value]>| {
        let by_turn = |ahead: bool| {
            let mut seen = 0;
            let mut first = Vec::new();
            let each = |c: Candidate| {
                seen += 1;
                if first.len() < 3 {
                    first.push(c.customer.id_text);
                }
                match seen < read {
                    true => ControlFlow::Continue(()),
                    false => ControlFlow::Break(Rest::Count),
                }
            };
            let rest = match ahead {
                false => super::candidates(&log, &quiet, &quiet.rules[0], now(), only, each),
                true => std::thread::scope(|threads| {
                    read_ahead(threads, &log, &quiet, &quiet.rules[0], now())?.take(each)
                }),
            };
            (seen, rest.expect("select"), first)
        };
        let here = by_turn(false);
        if only.is_none() {
            assert_eq!(here, by_turn(true), "read ahead on another thread");
        }
        (here.0, here.1)
    };
    let few: Vec<_> = (1..=5).map(rusqlite::types::Value::Integer).collect();
    assert_eq!(count_after(2, Some(&few)), (2, 3), "all read ahead");
}
