//! `rekindle run --once` end to end on a real log, with a maildir transport: the right notes,
//! personalised, never twice, and bad rows skipped with a reason while the run goes on.

mod support;

use support::config::{SORRY_RULE, maildir};
use support::fixture::{Fixture, ago, text};
use support::smtp_server::Received;

const RULES: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
priority = 100

[[rule]]
name = "thank-you-goodbye"
kind = "departed"
schedule = "0 11 * * *"
template = "departed.j2"
priority = 80

[[rule]]
name = "we-miss-you"
kind = "quiet"
schedule = "0 10 * * 2"
template = "quiet.j2"
priority = 50
"#;

/// One customer per situation the issue names.
fn story() -> Fixture {
    let f = Fixture::new();
    f.customer(
        1,
        "ann.angry@example.com",
        Some("Ann Angry"),
        Some("Europe/London"),
        Some(r#"{"favourite_product":"the rye loaf"}"#),
    )
    .interaction(1, &ago(200.0), "purchase", None, None)
    .interaction(
        1,
        &ago(1.0),
        "complaint",
        Some(-0.8),
        Some("The sourdough was <b>burnt</b> & my kids wouldn't eat it."),
    );
    f.customer(
        2,
        "quinn.quiet@example.com",
        Some("Quinn Quiet"),
        None,
        None,
    );
    for d in [160.0, 130.0, 100.0, 75.0] {
        f.interaction(2, &ago(d), "purchase", None, None);
    }
    f.customer(
        3,
        "dora.departing@example.com",
        Some("Dora Departing"),
        None,
        None,
    )
    .interaction(3, &ago(90.0), "purchase", None, None)
    .interaction(
        3,
        &ago(3.0),
        "cancellation",
        None,
        Some("We're moving to Lyon, thank you for everything"),
    );
    f.customer(4, "not-an-email", Some("Bad Address"), None, None)
        .interaction(4, &ago(1.0), "complaint", Some(-0.9), Some("Wrong order."));
    f.customer(
        5,
        "eve@example.com",
        Some("Eve\r\nBcc: victim@example.com"),
        None,
        None,
    )
    .interaction(5, &ago(1.0), "complaint", Some(-0.9), Some("Rude."));
    f.customer(6, "nameless@example.com", None, None, None)
        .interaction(6, &ago(2.0), "complaint", Some(-0.7), Some("Cold coffee."));
    f.customer(
        7,
        "martian@example.com",
        Some("Marvin Martian"),
        Some("Mars/Olympus_Mons"),
        Some("not json"),
    )
    .interaction(7, &ago(2.0), "complaint", Some(-0.7), Some("Too far."));
    f.customer(8, "optout@example.com", Some("Otto Optout"), None, None)
        .interaction(8, &ago(1.0), "complaint", Some(-0.9), Some("Stop writing."))
        .sql("UPDATE customers SET opted_out = 1 WHERE id = 8");
    let hostile = format!(
        "<script>alert(1)</script> {{{{ 7*7 }}}} {{% raw %}} {}",
        "blah ".repeat(4000)
    );
    f.customer(9, "hostile@example.com", Some("Hal Hostile"), None, None)
        .interaction(9, &ago(1.0), "complaint", Some(-0.9), Some(&hostile));
    f.sql(
        "INSERT INTO interactions (customer_id, at, kind) VALUES (2, 'last tuesday', 'purchase')",
    );
    f.config(&maildir("maildir"), RULES);
    f
}

fn message_to(f: &Fixture, address: &str) -> Received {
    let all: Vec<Received> = f
        .maildir_messages()
        .into_iter()
        .map(|data| Received {
            from: String::new(),
            to: Vec::new(),
            data,
            at: std::time::Instant::now(),
        })
        .collect();
    let found: Vec<Received> = all
        .into_iter()
        .filter(|m| m.header("To").is_some_and(|to| to.contains(address)))
        .collect();
    assert_eq!(found.len(), 1, "exactly one note to {address}");
    found.into_iter().next().expect("one")
}

#[test]
fn the_right_customers_get_the_right_notes_once() {
    let f = story();
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("sorry                    matched 7, queued 5, skipped 2 (invalid-address 1, opted-out 1)"), "{stdout}");
    assert!(
        stdout.contains("thank-you-goodbye        matched 1, queued 1, skipped 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("we-miss-you              matched 1, queued 1, skipped 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delivery: sent 7, retrying 0, failed 0"),
        "{stdout}"
    );
    assert_eq!(f.maildir_messages().len(), 7);
    // Eve's name carried a header injection: it is not used; she gets her apology, greeted
    // with the fallback (before, she got nothing).
    let to_eve = f
        .maildir_messages()
        .into_iter()
        .find(|m| m.contains("eve@example.com"))
        .expect("Eve's apology");
    assert!(to_eve.contains("there"), "{to_eve}");
    assert!(
        !to_eve.contains("Bcc") && !to_eve.contains("Eve"),
        "{to_eve}"
    );

    // A second run (a restart, a re-scan) queues and sends nothing new; with no new
    // interactions, the window rules have nobody to look at again.
    let again = f.rekindle(&["run", "--once"]);
    let (stdout, _) = text(&again);
    assert!(
        stdout.contains("sorry                    matched 0, queued 0, skipped 0; read for the 0 customer(s) with new interactions or waiting on time only"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delivery: sent 0, retrying 0, failed 0"),
        "{stdout}"
    );
    assert_eq!(f.maildir_messages().len(), 7);
    assert!(
        f.notes().iter().all(|n| n.ends_with("|sent")),
        "{:?}",
        f.notes()
    );
}

#[test]
fn the_apology_quotes_the_customer_and_escapes_their_words_in_html() {
    let f = story();
    f.rekindle(&["run", "--once"]);
    let note = message_to(&f, "ann.angry@example.com");
    assert!(note.header("To").is_some_and(|to| to.contains("Ann Angry")));
    assert!(
        note.header("From")
            .is_some_and(|from| from.contains("rosemary@bakery.example"))
    );
    let text = note.text_body();
    assert!(text.contains("Ann"), "{text}");
    // Quoted as a person would: the words, not the markup.
    assert!(
        text.contains("\"The sourdough was burnt & my kids wouldn't eat it.\""),
        "{text}"
    );
    let html = note.html_body().expect("html part");
    assert!(
        html.contains(
            "<blockquote>The sourdough was burnt &amp; my kids wouldn&#x27;t eat it.</blockquote>"
        ),
        "{html}"
    );
    assert!(!html.contains("<b>burnt"), "{html}");
    let id = note.message_id().expect("Message-ID");
    assert!(id.ends_with(".rekindle@bakery.example>"), "{id}");
    assert!(
        note.header("List-Unsubscribe")
            .is_some_and(|h| h.contains("mailto:unsubscribe@bakery.example"))
    );
}

#[test]
fn bad_rows_are_skipped_with_their_reason_and_the_run_goes_on() {
    let f = story();
    let out = f.rekindle(&["run", "--once"]);
    let (_, stderr) = text(&out);
    let line = |needle: &str| {
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("customer_id=4").contains("invalid email address \"not-an-email\""),
        "{stderr}"
    );
    assert!(
        line("customer_id=5").contains("possible header injection"),
        "{stderr}"
    );
    assert!(
        line("customer_id=7")
            .contains("unknown time zone \"Mars/Olympus_Mons\", using Europe/Paris"),
        "{stderr}"
    );
    assert!(
        stderr.contains("at=last tuesday") && stderr.contains("unreadable timestamp"),
        "{stderr}"
    );
    // No name: a friendly greeting instead.
    assert!(
        message_to(&f, "nameless@example.com")
            .text_body()
            .contains("there")
    );
    // Hostile text is data: never evaluated, never quoted as words (markup, template code and
    // a wall of one word are no one's words): the apology's other branch speaks.
    let hostile = message_to(&f, "hostile@example.com");
    let text = hostile.text_body();
    assert!(
        !text.contains("49") && !text.contains("{{") && !text.contains("blah"),
        "{text}"
    );
    assert!(
        text.contains("I heard that things did not go the way they should have"),
        "{text}"
    );
    assert!(
        text.len() < 4000,
        "the quote is trimmed: {} bytes",
        text.len()
    );
    assert!(!hostile.html_body().unwrap_or_default().contains("<script>"));
    // Nothing went to the opted-out customer or to the injected Bcc.
    assert!(
        f.maildir_messages()
            .iter()
            .all(|m| !m.contains("optout@example.com") && !m.contains("victim@example.com"))
    );
}

#[test]
fn plan_shows_who_and_why_and_writes_nothing() {
    let f = story();
    let out = f.rekindle(&["plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("nothing is sent or written"), "{stdout}");
    assert!(
        stdout.contains("  send  customer 1 (interaction-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  skip  customer 8 (interaction-"),
        "{stdout}"
    );
    assert!(stdout.contains("): opted out"), "{stdout}");
    assert!(
        !f.path("state.sqlite").exists(),
        "plan must not create the state database"
    );
    assert!(!f.path("maildir").exists(), "plan must not send");

    // After a real run, the plan says the occasions are already served.
    f.rekindle(&["run", "--once"]);
    let (stdout, _) = text(&f.rekindle(&["plan"]));
    assert!(
        stdout.contains("  skip  customer 1 (interaction-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("already sent for this occasion"),
        "{stdout}"
    );
}

#[test]
fn plan_at_another_time_moves_the_clock() {
    let f = story();
    // In a month the complaints are out of the 14-day window.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();
    let (stdout, _) = text(&f.rekindle(&["plan", "--at", &later]));
    assert!(stdout.contains("rule sorry: matched 0"), "{stdout}");
    let (_, stderr) = text(&f.rekindle(&["plan", "--at", "next friday"]));
    assert!(
        stderr.contains("cannot read --at \"next friday\""),
        "{stderr}"
    );
}

#[test]
fn preview_renders_one_note_with_headers() {
    let f = story();
    let out = f.rekindle(&["preview", "--rule", "sorry", "--customer", "1"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("To: \"Ann Angry\" <ann.angry@example.com>"),
        "{stdout}"
    );
    assert!(stdout.contains("Message-ID: <"), "{stdout}");
    assert!(stdout.contains("--- text ---"), "{stdout}");
    assert!(stdout.contains("--- html ---"), "{stdout}");
    assert!(stdout.contains("The sourdough was burnt"), "{stdout}");
    assert!(!f.path("state.sqlite").exists(), "preview writes nothing");
    let (_, stderr) = text(&f.rekindle(&["preview", "--rule", "sory", "--customer", "1"]));
    assert!(
        stderr.contains("no rule named \"sory\"; did you mean \"sorry\"?"),
        "{stderr}"
    );
}

#[test]
fn status_counts_notes_by_state() {
    let f = story();
    f.rekindle(&["run", "--once"]);
    let (stdout, _) = text(&f.rekindle(&["status"]));
    assert!(stdout.contains("sent       7"), "{stdout}");
    assert!(stdout.contains("sent in the last hour: 7"), "{stdout}");
}

#[test]
fn demo_writes_notes_to_a_maildir() {
    let dir = tempfile::tempdir().expect("dir");
    let demo = dir.path().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .args(["demo", "--dir"])
        .arg(&demo)
        .output()
        .expect("run demo");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("demo log: "), "{stdout}");
    let notes = std::fs::read_dir(demo.join("maildir/new"))
        .expect("maildir")
        .count();
    assert!(notes > 20, "{notes} notes\n{stdout}");
    assert!(
        stdout.contains(&format!("delivered {notes} note(s)")),
        "{stdout}"
    );
    // The demo's config is a real one: check passes on it.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(demo.join("rekindle.toml"))
        .arg("check")
        .output()
        .expect("check");
    assert_eq!(check.status.code(), Some(0), "{}", text(&check).1);
    // And it is the shipped file, as the README says: every comment and every key in its
    // place, only the paths, the transport and the calendar changed (before, comments were
    // stripped and keys re-sorted).
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rekindle.toml"),
    )
    .expect("shipped");
    let written = std::fs::read_to_string(demo.join("rekindle.toml")).expect("demo config");
    let comments = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with('#') && !l.contains("(off in the demo"))
            .map(str::to_string)
            .collect()
    };
    let shipped_comments = comments(&shipped);
    let written_comments = comments(&written);
    assert!(
        written_comments.ends_with(&shipped_comments),
        "the shipped comments, in order"
    );
    let changed = shipped
        .lines()
        .zip(
            written
                .lines()
                .skip(written.lines().count() - shipped.lines().count()),
        )
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        changed, 8,
        "paths (3), transport (2), quiet hours, days, holidays"
    );
}

#[test]
fn a_writer_is_not_held_up_while_notes_are_composed_and_queued() {
    // A rollback-journal log (SQLite's default): a reader blocks a writer's commit, so the
    // selection must be read before the slow part, not streamed through it.
    let f = Fixture::new();
    f.sql("PRAGMA journal_mode = DELETE");
    f.complaints(1, 3000);
    f.config(
        &maildir("maildir"),
        &format!("[policy]\ncap = 5\n\n{SORRY_RULE}"),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(f.path("rekindle.toml"))
        .args(["run", "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    // Wait until the first notes are queued: rekindle is composing, the selection was read.
    let state = f.path("state.sqlite");
    let queued = || {
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    while queued() == 0 && child.try_wait().expect("try_wait").is_none() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let writer = rusqlite::Connection::open(f.path("log.sqlite")).expect("writer");
    writer
        .busy_timeout(std::time::Duration::from_millis(200))
        .expect("busy timeout");
    let insert = writer.execute(
        "INSERT INTO interactions (customer_id, at, kind, channel) VALUES (1, '2026-11-24T10:00:00Z', 'purchase', 'shop')",
        [],
    );
    let still_running = child.try_wait().expect("try_wait").is_none();
    assert!(child.wait().expect("wait").success());
    assert!(
        still_running,
        "rekindle finished before the writer could try"
    );
    assert!(insert.is_ok(), "the writer was held up: {insert:?}");
    assert!(queued() == 3000);
}

#[test]
fn a_reader_that_stops_early_ends_plan_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let f = Fixture::new();
    // Far more output than a pipe holds, so plan is still writing when the reader leaves.
    f.complaints(1, 3000);
    f.config(&maildir("maildir"), SORRY_RULE);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(f.path("rekindle.toml"))
        .arg("plan")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    // `rekindle plan | head -1`: the pipe is closed here.
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
}

#[test]
fn a_template_that_shows_the_number_of_interactions_gets_it() {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(40.0), "purchase", Some(0.8), None)
        .interaction(1, &ago(20.0), "purchase", Some(0.8), None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.9), Some("Cold bread"))
        .interaction(1, "some day", "purchase", None, None);
    std::fs::write(
        f.path("templates/counted.j2"),
        "{% block subject %}Sorry, {{ customer.first_name }}{% endblock %}\n\
         {% block text %}After {{ customer.interactions }} visits, you deserved better.{% endblock %}\n",
    )
    .expect("template");
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy.j2", "counted.j2"),
    );
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 1);
    // Three readable interactions; the one whose date cannot be read does not count.
    assert!(messages[0].contains("After 3 visits"), "{}", messages[0]);
}

/// Ann complained `days` ago ("Cold bread"); Bob bought something two days ago.
fn ann_complained_bob_bought(days: f64) -> Fixture {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .customer(2, "bob@example.com", Some("Bob"), None, None)
        .interaction(1, &ago(days), "complaint", Some(-0.9), Some("Cold bread"))
        .interaction(2, &ago(2.0), "purchase", Some(0.8), None);
    f
}

#[test]
fn a_row_edited_in_place_is_seen_once_the_whole_log_is_read_again() {
    let f = ann_complained_bob_bought(60.0);
    let rules = |reconcile: &str| format!("{SORRY_RULE}\n[daemon]\nreconcile = \"{reconcile}\"\n");
    f.config(&maildir("maildir"), &rules("1d"));
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(f.maildir_messages().is_empty(), "a complaint 60 days old");
    // The business corrects the complaint's date in place: its rowid is older than the rows
    // of the last days, so only reading the whole log again finds it.
    f.sql(&format!(
        "UPDATE interactions SET at = '{}' WHERE customer_id = 1",
        ago(1.0)
    ));
    f.rekindle(&["run", "--once"]);
    assert!(
        f.maildir_messages().is_empty(),
        "within a day of the last whole reading, only new rows are read"
    );
    f.config(&maildir("maildir"), &rules("0s"));
    let out = f.rekindle(&["run", "--once"]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("whole interaction log read"), "{stderr}");
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 1, "{stderr}");
    assert!(messages[0].contains("Cold bread"), "{}", messages[0]);
}

#[test]
fn between_whole_readings_a_window_rule_looks_only_at_new_customers_and_those_waiting_on_time() {
    let f = ann_complained_bob_bought(1.0);
    f.config(
        &maildir("maildir"),
        &format!("[policy]\ncap = 5\n\n{SORRY_RULE}cooldown = \"3s\"\n"),
    );
    let (first, stderr) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        first.contains("sorry                    matched 1, queued 1, skipped 0")
            && !first.contains("read for the"),
        "the first run reads the whole window: {first}\n{stderr}"
    );
    // Ann complains again at once: her second apology waits for the rule's cooldown.
    f.interaction(1, &ago(0.0), "complaint", Some(-0.7), Some("Burnt scones"));
    let (second, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        second.contains("sorry                    matched 1, queued 0, skipped 1 (cooldown 1); read for the 1 customer(s) with new interactions or waiting on time only"),
        "{second}"
    );
    // The cooldown passes (the clock runs 4 s ahead from here on); meanwhile she also buys
    // something: she is looked at again, once.
    f.interaction(1, &ago(0.0), "purchase", None, None);
    let later = ["--clock-offset", "4s", "run", "--once"];
    let (third, _) = text(&f.rekindle(&later));
    assert!(
        third.contains("sorry                    matched 1, queued 1, skipped 0; read for the 1 customer(s) with new interactions or waiting on time only"),
        "{third}"
    );
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().any(|m| m.contains("Burnt scones")));
    // Settled: the next run has nobody to look at.
    let (fourth, _) = text(&f.rekindle(&later));
    assert!(
        fourth.contains(
            "sorry                    matched 0, queued 0, skipped 0; read for the 0 customer(s)"
        ),
        "{fourth}"
    );
}

/// `rows` interactions of customers `1..=customers` over the last `within_days`: a seeded mix
/// of complaints, resolutions, cancellations, sour reviews and purchases.
fn business(f: &Fixture, customers: i64, rng: &mut fastrand::Rng, rows: usize, within_days: f64) {
    f.sql("BEGIN");
    for _ in 0..rows {
        let customer = rng.i64(1..=customers);
        let at = ago(rng.f64() * within_days);
        let (kind, sentiment, note) = match rng.u32(..10) {
            0..=2 => ("complaint", Some(-0.7), Some("Late again.")),
            3 => ("resolution", Some(0.4), Some("Refunded.")),
            4 => ("cancellation", None, None),
            5 => ("review", Some(-0.5), Some("Stale.")),
            _ => ("purchase", Some(0.6), None),
        };
        f.interaction(customer, &at, kind, sentiment, note);
    }
    f.sql("COMMIT");
}

#[test]
fn reading_only_what_changed_queues_the_same_notes_as_reading_everything() {
    const RULES: &str = r#"[policy]
cap = 2
cap_window = "7d"

[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
cooldown = "1h"

[[rule]]
name = "thanks"
kind = "followup"
schedule = "*/5 * * * *"
template = "followup.j2"

[[rule]]
name = "goodbye"
kind = "departed"
schedule = "*/5 * * * *"
template = "departed.j2"
"#;
    // Two businesses with the same log: one lets its window rules read only what changed, the
    // other reads everything every time. After the same new rows, the same notes are queued.
    let run = |reconcile: &str| {
        let f = Fixture::new();
        for id in 1..=60 {
            f.customer(id, &format!("c{id}@example.com"), Some("Sam"), None, None);
        }
        let mut rng = fastrand::Rng::with_seed(7);
        business(&f, 60, &mut rng, 240, 20.0);
        f.config(
            &maildir("maildir"),
            &format!("{RULES}\n[daemon]\nreconcile = \"{reconcile}\"\n"),
        );
        let (first, stderr) = text(&f.rekindle(&["run", "--once"]));
        assert!(first.contains("sorry "), "{first}\n{stderr}");
        // Two more days of business (a rule's cooldown keeps some customers waiting).
        for _ in 0..2 {
            business(&f, 60, &mut rng, 30, 0.01);
            let (out, stderr) = text(&f.rekindle(&["run", "--once"]));
            assert_eq!(
                out.contains("read for the"),
                reconcile != "0s",
                "{out}\n{stderr}"
            );
        }
        let mut notes = f.notes();
        notes.sort();
        notes
    };
    let (only_changes, everything) = (run("1d"), run("0s"));
    assert!(only_changes.len() > 20, "{only_changes:?}");
    assert_eq!(only_changes, everything);
}

/// What rekindle keeps (customers' addresses, their notes) is for its user alone, also outside
/// systemd: the state directory it creates is 0700, the database and its WAL 0600 (before, both
/// followed the umask: world-readable).
#[test]
fn the_state_database_is_readable_by_rekindles_user_alone() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.complaints(1, 1);
    let config = f.config(&maildir("maildir"), SORRY_RULE);
    let text_ = std::fs::read_to_string(&config).expect("config").replace(
        "state = \"state.sqlite\"",
        "state = \"var/rekindle/state.sqlite\"",
    );
    std::fs::write(&config, text_).expect("write");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let mode = |name: &str| {
        std::fs::metadata(f.path(name))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(mode("var/rekindle"), 0o700);
    assert_eq!(mode("var/rekindle/state.sqlite"), 0o600);
    assert_eq!(mode("var/rekindle/state.sqlite.lock"), 0o600);
    if f.path("var/rekindle/state.sqlite-wal").exists() {
        assert_eq!(mode("var/rekindle/state.sqlite-wal"), 0o600);
    }
}

/// A bad command line exits 64 (EX_USAGE), as the README documents; before, clap's own 2.
#[test]
fn a_bad_command_line_exits_64_and_help_exits_0() {
    let f = Fixture::new();
    f.config(&maildir("maildir"), SORRY_RULE);
    assert_eq!(
        f.rekindle(&["plan", "--days", "many"]).status.code(),
        Some(64)
    );
    assert_eq!(f.rekindle(&["--no-such-flag"]).status.code(), Some(64));
    assert_eq!(f.rekindle(&["--help"]).status.code(), Some(0));
}
