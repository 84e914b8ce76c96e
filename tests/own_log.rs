//! A business's own log, not the demo's: timestamps as point-of-sale systems store them (Unix
//! seconds, integer or real) are read natively; a log whose timestamps rekindle cannot read is
//! refused by `check` with the count, examples and the fix, never matched against in silence.

mod support;

use support::config::{SORRY_RULE, maildir};
use support::fixture::{Fixture, text};

/// Seconds since the epoch, `days` ago.
fn unix_ago(days: f64) -> f64 {
    jiff::Timestamp::now().as_second() as f64 - days * 86_400.0
}

#[test]
fn unix_seconds_integer_or_real_are_read_as_times() {
    // A point-of-sale table keeps numbers (`at INTEGER`); an import into the canonical schema's
    // `at TEXT` keeps their digits as text. Both read as times.
    unix_seconds_in("INTEGER");
    unix_seconds_in("TEXT");
}

fn unix_seconds_in(column_type: &str) {
    let f = Fixture::new();
    f.sql(&format!(
        "DROP TABLE interactions;
         CREATE TABLE interactions (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
             at {column_type} NOT NULL, kind TEXT NOT NULL, sentiment REAL, channel TEXT, note TEXT);
         CREATE INDEX interactions_kind_at ON interactions(kind, at);"
    ));
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .customer(2, "bo@example.com", Some("Bo"), None, None)
        .customer(3, "cy@example.com", Some("Cy"), None, None);
    // Before, 'at' as Unix seconds read as a Julian day (or not at all): `check` said ok and
    // every rule matched nobody.
    f.log
        .execute_batch(&format!(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note) VALUES
               (1, {}, 'complaint', -0.9, 'email', 'Cold bread'),
               (2, {}, 'complaint', -0.8, 'email', 'Late order'),
               (3, {}, 'purchase', 0.9, 'shop', NULL)",
            unix_ago(1.0) as i64,
            unix_ago(2.0) + 0.25,
            unix_ago(1.0) as i64,
        ))
        .expect("rows");
    f.config(&maildir("maildir"), SORRY_RULE);
    let check = f.rekindle(&["check"]);
    let (_, stderr) = text(&check);
    assert_eq!(check.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cannot read"), "{stderr}");
    let (plan, _) = text(&f.rekindle(&["plan"]));
    assert!(plan.contains("matched 2"), "{column_type}: {plan}");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 2, "an apology each for Ann and Bo");
    assert!(messages.iter().any(|m| m.contains("Cold bread")));
}

#[test]
fn a_log_mostly_in_milliseconds_is_refused_by_check_with_the_count_examples_and_the_fix() {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None);
    f.sql("BEGIN");
    for i in 0..40 {
        f.sql(&format!(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
             VALUES (1, {}, 'purchase', 0.5, 'shop', NULL)",
            (unix_ago(f64::from(i)) * 1000.0) as i64
        ));
    }
    f.sql("COMMIT");
    f.config(&maildir("maildir"), SORRY_RULE);
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("log.sqlite: 40 of 40 interactions sampled"),
        "{stderr}"
    );
    assert!(stderr.contains("e.g. interaction 1 at \""), "{stderr}");
    assert!(stderr.contains("look like Unix milliseconds"), "{stderr}");
    assert!(stderr.contains("at_ms / 1000.0 AS at"), "{stderr}");
}

#[test]
fn a_few_unreadable_timestamps_are_a_warning_and_their_rows_are_skipped() {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(
            1,
            &support::fixture::ago(1.0),
            "complaint",
            Some(-0.9),
            Some("Cold"),
        )
        .interaction(1, &support::fixture::ago(3.0), "purchase", Some(0.9), None)
        .interaction(1, "last tuesday", "purchase", None, None);
    f.config(&maildir("maildir"), SORRY_RULE);
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: 1 of 3 interactions sampled")
            && stderr.contains("interaction 3 at \"last tuesday\""),
        "{stderr}"
    );
}
