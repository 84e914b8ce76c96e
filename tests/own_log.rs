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

/// A bike shop's own tables: clients, orders, support tickets (a satisfaction score of 1 to 5
/// and the customer's comment), cancellations; ids of their own, times as Unix seconds. 30
/// clients, 600 orders and 30 tickets over the last 200 days, in time order within each table.
fn bike_shop(f: &Fixture) {
    let mut sql = String::from(
        "DROP TABLE interactions; DROP TABLE customers;
         CREATE TABLE clients (client_id INTEGER PRIMARY KEY, mail TEXT, full_name TEXT,
                               signup_ts INTEGER NOT NULL, churned INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE orders (order_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL,
                              placed_ts INTEGER NOT NULL, total REAL);
         CREATE TABLE support_tickets (ticket_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL,
                                       opened_ts INTEGER NOT NULL, satisfaction INTEGER,
                                       comment TEXT);
         CREATE TABLE cancellations (cancellation_id INTEGER PRIMARY KEY,
                                     client_id INTEGER NOT NULL, cancelled_ts INTEGER NOT NULL);
         CREATE VIEW customers AS
           SELECT client_id AS id, mail AS email, full_name AS name, NULL AS timezone,
                  datetime(signup_ts, 'unixepoch') AS created_at,
                  CASE WHEN churned THEN 'departed' ELSE 'active' END AS status,
                  0 AS opted_out, NULL AS attributes
           FROM clients;
         BEGIN;",
    );
    for c in 1..=30 {
        sql += &format!(
            "INSERT INTO clients VALUES ({c}, 'rider{c}@example.com', 'Rider {c}', {}, 0);",
            unix_ago(400.0) as i64
        );
    }
    for o in 1..=600 {
        sql += &format!(
            "INSERT INTO orders VALUES ({o}, {}, {}, 40.0);",
            o % 30 + 1,
            unix_ago(200.0 - f64::from(o) / 3.0) as i64
        );
    }
    for t in 1..=30 {
        sql += &format!(
            "INSERT INTO support_tickets VALUES ({t}, {}, {}, 4, 'All good');",
            t % 30 + 1,
            unix_ago(200.0 - f64::from(t) * 6.5) as i64
        );
    }
    sql += "COMMIT;";
    f.sql(&sql);
}

#[test]
fn a_view_over_several_tables_whose_rowid_does_not_grow_is_refused_by_check_with_the_way_out() {
    let f = Fixture::new();
    bike_shop(&f);
    // What the README used to invite: one view, each table's ids spread apart.
    f.sql(
        "CREATE VIEW interactions AS
           SELECT order_id * 10 AS rowid, order_id * 10 AS id, client_id AS customer_id,
                  placed_ts AS at, 'purchase' AS kind, NULL AS sentiment, 'shop' AS channel,
                  NULL AS note FROM orders
           UNION ALL
           SELECT ticket_id * 10 + 1, ticket_id * 10 + 1, client_id, opened_ts,
                  CASE WHEN satisfaction <= 2 THEN 'complaint' ELSE 'review' END,
                  (satisfaction - 3) / 2.0, 'email', comment FROM support_tickets",
    );
    f.config(&maildir("maildir"), SORRY_RULE);
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    // Before: ok, and a new ticket (rowid 301) sat below the orders' watermark (6000) unseen.
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("`interactions` is a view whose rowid does not grow with new rows"),
        "{stderr}"
    );
    assert!(stderr.contains("interaction 301 at"), "{stderr}");
    assert!(stderr.contains("\"A log from several tables\""), "{stderr}");
}

#[test]
fn the_readmes_several_tables_recipe_answers_a_new_complaint_at_once_and_after_a_restart() {
    use std::time::Duration;
    use support::daemon::Daemon;
    use support::smtp_server::TestSmtpServer;

    let f = Fixture::new();
    bike_shop(&f);
    // The recipe the README points to, as shipped: one table, fed by triggers, filled once.
    let recipe = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/several-tables.sql"),
    )
    .expect("config/several-tables.sql");
    f.sql(&recipe);
    let server = TestSmtpServer::start();
    let transport = format!(
        "{}\n[daemon]\nevent_poll = \"200ms\"",
        support::config::smtp(server.port(), &[])
    );
    f.config(&transport, support::config::SORRY_ON_EVENT);
    let out = f.rekindle(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);

    let mut daemon = Daemon::start(&f);
    daemon.wait_for("rekindle started");
    let complain = |ticket: i64, client: i64, comment: &str| {
        f.sql(&format!(
            "INSERT INTO support_tickets VALUES ({ticket}, {client}, {}, 1, '{comment}')",
            unix_ago(0.0) as i64
        ));
    };
    complain(31, 7, "The brakes squeal after the service");
    let got = server.wait_for(1, Duration::from_secs(20));
    assert_eq!(
        got.len(),
        1,
        "the new complaint is answered: {:?}",
        daemon.seen()
    );
    assert_eq!(got[0].to, ["rider7@example.com"]);
    assert!(
        got[0].text_body().contains("brakes squeal"),
        "{}",
        got[0].text_body()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    // A complaint while the daemon is down is answered when it is back.
    complain(32, 9, "Wrong tyre size");
    let mut daemon = Daemon::start(&f);
    let got = server.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{:?}", daemon.seen());
    assert_eq!(got[1].to, ["rider9@example.com"]);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// Untrusted names stay inert: bidi controls (which would turn the Subject and the To line
/// around) get the fallback greeting, and what `explain` and `plan` print shows control
/// characters as escapes, so a name cannot clear the operator's screen or set its title.
#[test]
fn names_with_bidi_controls_or_terminal_escapes_stay_inert() {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("\u{202E}nnA"), None, None)
        .interaction(
            1,
            &support::fixture::ago(1.0),
            "complaint",
            Some(-0.9),
            Some("Cold"),
        );
    f.customer(
        2,
        "bo@example.com",
        Some("Bo\u{1b}]0;owned\u{7}\u{1b}[2J"),
        None,
        None,
    )
    .interaction(
        2,
        &support::fixture::ago(1.0),
        "complaint",
        Some(-0.9),
        Some("Late"),
    );
    f.config(&maildir("maildir"), SORRY_RULE);
    for args in [&["explain", "--customer", "2"][..], &["plan"][..]] {
        let out = f.rekindle(args);
        assert!(
            !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
            "{args:?} printed a raw escape: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let (explained, _) = text(&f.rekindle(&["explain", "--customer", "2"]));
    assert!(explained.contains("(Bo\\u{1b}]0;owned"), "{explained}");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let to_ann = f
        .maildir_messages()
        .into_iter()
        .find(|m| m.contains("ann@example.com"))
        .expect("Ann still gets her apology");
    assert!(!to_ann.contains('\u{202E}'), "{to_ann}");
    assert!(
        !to_ann.contains("=E2=80=AE") && !to_ann.contains("4oCu"),
        "no encoded override either"
    );
}
