//! The customer-love policy through the real binary: quiet hours in each customer's own time
//! zone, opt-outs that arrive after a note was queued, the suppression list, and notes held back
//! while a complaint is open.

mod support;

use support::fixture::{Fixture, ago, text};

const SORRY: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

fn local_hour(tz: &str) -> i8 {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get(tz).expect("tz"))
        .hour()
}

#[test]
fn quiet_hours_hold_a_tokyo_note_to_the_end_of_its_night_while_los_angeles_gets_its_own() {
    // Quiet hours that cover "now" in Tokyo but not in Los Angeles (17 hours apart).
    let start = local_hour("Asia/Tokyo");
    let end = (start + 2) % 24;
    let f = Fixture::new();
    f.customer(
        1,
        "kenji@example.com",
        Some("Kenji"),
        Some("Asia/Tokyo"),
        None,
    )
    .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Late."))
    .customer(
        2,
        "lou@example.com",
        Some("Lou"),
        Some("America/Los_Angeles"),
        None,
    )
    .interaction(2, &ago(1.0), "complaint", Some(-0.8), Some("Late."));
    f.config(
        Fixture::maildir_transport(),
        &format!("[policy]\nquiet_hours = \"{start:02}:00-{end:02}:00\"\n\n{SORRY}"),
    );
    let (stdout, stderr) = text(&f.rekindle(&["run", "--once"]));
    assert!(stdout.contains("delivery: sent 1,"), "{stdout}\n{stderr}");
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("lou@example.com"));
    assert_eq!(
        f.notes(),
        ["sorry|1|interaction-1|queued", "sorry|2|interaction-2|sent"]
    );
    // Held, not dropped: due at the end of the quiet hours, Tokyo time.
    let state = rusqlite::Connection::open(f.path("state.sqlite")).expect("state");
    let due: i64 = state
        .query_row(
            "SELECT due_at FROM notes WHERE customer_id = '1'",
            [],
            |r| r.get(0),
        )
        .expect("due");
    let due_local = jiff::Timestamp::from_second(due)
        .expect("time")
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Tokyo").expect("tz"));
    assert_eq!((due_local.hour(), due_local.minute()), (end, 0));
}

#[test]
fn an_opt_out_after_queueing_cancels_the_note_before_it_is_sent() {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None)
        .interaction(1, &ago(0.0), "complaint", Some(-0.8), Some("Late."))
        .customer(2, "bo@example.com", Some("Bo"), None, None)
        .interaction(2, &ago(0.0), "complaint", Some(-0.8), Some("Late."))
        .customer(3, "cy@example.com", Some("Cy"), None, None)
        .interaction(3, &ago(0.0), "complaint", Some(-0.8), Some("Late."));
    // Queued now, due a moment later.
    f.config(
        Fixture::maildir_transport(),
        &format!("[policy]\ncap = 3\n\n{SORRY}delay = \"3s\"\n"),
    );
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(stdout.contains("queued 3"), "{stdout}");
    assert!(stdout.contains("delivery: sent 0,"), "{stdout}");
    // Ada opts out in the shop's system; Bo sends an unsubscribe; Cy is suppressed by hand.
    f.sql("UPDATE customers SET opted_out = 1 WHERE id = 1");
    f.interaction(2, &ago(0.0), "unsubscribe", None, None);
    let (out, _) = text(&f.rekindle(&[
        "suppress",
        "add",
        "CY@example.com",
        "--reason",
        "asked by phone",
    ]));
    assert!(out.contains("1 added"), "{out}");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (stdout, stderr) = text(&f.rekindle(&["run", "--once"]));
    assert!(stdout.contains("delivery: sent 0,"), "{stdout}\n{stderr}");
    assert!(f.maildir_messages().is_empty());
    assert_eq!(
        f.notes(),
        [
            "sorry|1|interaction-1|cancelled",
            "sorry|2|interaction-2|cancelled",
            "sorry|3|interaction-3|cancelled"
        ]
    );
    assert!(
        stderr.contains("the customer opted out after the note was queued"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the customer unsubscribed after the note was queued"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the customer is on the suppression list"),
        "{stderr}"
    );
    let (list, _) = text(&f.rekindle(&["suppress", "list"]));
    assert!(
        list.contains("CY@example.com") && list.contains("asked by phone"),
        "{list}"
    );
}

#[test]
fn a_suppressed_or_unsubscribed_customer_is_skipped_by_every_rule() {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Late."))
        .customer(2, "bo@example.com", Some("Bo"), None, None)
        .interaction(2, &ago(3.0), "unsubscribe", None, None)
        .interaction(2, &ago(1.0), "complaint", Some(-0.8), Some("Late."));
    f.config(Fixture::maildir_transport(), SORRY);
    f.rekindle(&["suppress", "add", "1"]);
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("matched 2, queued 0, skipped 2 (suppressed 1, unsubscribed 1)"),
        "{stdout}"
    );
    let (out, _) = text(&f.rekindle(&["suppress", "remove", "1"]));
    assert!(out.contains("1 removed"), "{out}");
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(stdout.contains("queued 1"), "{stdout}");
}

#[test]
fn no_seasonal_card_while_a_complaint_is_open_but_the_apology_goes() {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None)
        .interaction(1, &ago(2.0), "complaint", Some(-0.8), Some("Late."))
        .customer(2, "bo@example.com", Some("Bo"), None, None)
        .interaction(2, &ago(40.0), "purchase", Some(0.8), None);
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris").expect("tz"))
        .date();
    let season = format!(
        "[[rule]]\nname = \"thanks\"\nkind = \"seasonal\"\nschedule = \"0 10 * * *\"\ntemplate = \"gratitude.j2\"\nstart = \"{:02}-{:02}\"\nend = \"{:02}-{:02}\"\n",
        today.month(),
        today.day(),
        today.month(),
        today.day()
    );
    f.config(
        Fixture::maildir_transport(),
        &format!("[policy]\ncap = 3\n\n{SORRY}\n{season}"),
    );
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("sorry                    matched 1, queued 1"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("thanks                   matched 2, queued 1, skipped 1 (open-complaint 1)"),
        "{stdout}"
    );
    // Resolved: the card follows at the next run.
    f.interaction(1, &ago(0.0), "resolution", None, None);
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout
            .contains("thanks                   matched 2, queued 1, skipped 1 (already-queued 1)"),
        "{stdout}"
    );
}

#[test]
fn a_complaint_resolved_before_the_apology_went_gets_a_thank_you_instead() {
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None)
        .interaction(1, &ago(3.0), "complaint", Some(-0.8), Some("Cold coffee."))
        .interaction(1, &ago(2.0), "resolution", None, None);
    let followup = "[[rule]]\nname = \"thanks\"\nkind = \"followup\"\nschedule = \"0 10 * * *\"\ntemplate = \"followup.j2\"\n";
    f.config(
        Fixture::maildir_transport(),
        &format!("[policy]\ncap = 3\n\n{SORRY}\n{followup}"),
    );
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("sorry                    matched 1, queued 0, skipped 1 (resolved 1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("thanks                   matched 1, queued 1"),
        "{stdout}"
    );
    let messages = f.maildir_messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Cold coffee."), "{}", messages[0]);
}
