//! The outbox on real SQLite files: idempotency, the note lifecycle, dry runs.

use jiff::{SignedDuration, Timestamp};

use std::time::Duration;

use rusqlite::params;

use super::enqueue::{GROUP_TIME, same_address_sql};
use super::history::{history_sql, notes_to_sql};
use super::*;
use crate::compose::Letter;
use crate::decide::{History, Lookback};
use crate::note::NoteState;

/// The one number `sql` (a `SELECT count(*)`) reads.
fn count(outbox: &Outbox, sql: &str) -> i64 {
    outbox.conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn note(rule: &str, customer: &str, occasion: &str) -> NewNote {
    NewNote {
        rule: rule.into(),
        customer_id: customer.into(),
        occasion: occasion.into(),
        priority: 10,
        due_at: now(),
        timezone: "Europe/Paris".into(),
        letter: Letter {
            recipient: "a@b.example".into(),
            display_name: Some("Ada".into()),
            subject: "Hello".into(),
            body_text: "Hi".into(),
            body_html: None,
            message_id: "<x@b.example>".into(),
        },
    }
}

fn lookback(cooldown_since: Timestamp, cap_since: Timestamp) -> Lookback {
    Lookback {
        cooldown_since,
        cap_since,
    }
}

fn now() -> Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("time")
}

#[test]
fn the_same_occasion_is_queued_once_even_across_reopens() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    assert!(
        outbox
            .enqueue(&note("sorry", "1", "interaction-5"), now())
            .expect("enqueue")
            .is_some()
    );
    assert_eq!(
        outbox
            .enqueue(&note("sorry", "1", "interaction-5"), now())
            .expect("enqueue"),
        None
    );
    drop(outbox);
    let outbox = Outbox::open(&path).expect("reopen");
    assert_eq!(
        outbox
            .enqueue(&note("sorry", "1", "interaction-5"), now())
            .expect("enqueue"),
        None
    );
    assert!(
        outbox
            .enqueue(&note("sorry", "1", "interaction-6"), now())
            .expect("enqueue")
            .is_some()
    );
    assert_eq!(outbox.counts().expect("counts"), [(NoteState::Queued, 2)]);
}

/// A note whose bodies or event cannot be written leaves no row behind, the notes queued
/// before it in the same group are kept, and the note is queued when asked again; when the
/// failure ends the group itself, nothing of the group stays.
#[test]
fn a_note_that_fails_halfway_leaves_nothing_and_its_group_is_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    // A customer's rows: (notes, note_bodies, note_events).
    let rows = |customer: &str| {
        let of = |table: &str| {
            let note = "SELECT id FROM notes WHERE customer_id";
            let sql =
                format!("SELECT count(*) FROM {table} WHERE note_id IN ({note} = '{customer}')");
            count(&outbox, &sql)
        };
        let sql = format!("SELECT count(*) FROM notes WHERE customer_id = '{customer}'");
        (count(&outbox, &sql), of("note_bodies"), of("note_events"))
    };
    let queue = |customer: &str| {
        let id = outbox.enqueue(&note("sorry", customer, "i-1"), now());
        assert!(id.expect("enqueue").is_some(), "{customer} queued");
        outbox.flush().expect("flush");
    };
    // Queues `first`, then `failing` while `triggers` make it fail, and commits what is left.
    let attempt = |first: &str, failing: &str, triggers: &str| {
        outbox
            .enqueue(&note("sorry", first, "i-1"), now())
            .expect("enqueue")
            .expect("new");
        outbox.conn.execute_batch(triggers).expect("triggers");
        let err = outbox.enqueue(&note("sorry", failing, "i-1"), now());
        assert!(err.is_err(), "{failing}: {err:?}");
        outbox.flush().expect("flush");
        // Created inside the group, a trigger goes with it when the group is rolled back.
        let drop = "DROP TRIGGER IF EXISTS refuse; DROP TRIGGER IF EXISTS keep";
        outbox.conn.execute_batch(drop).expect("drop");
    };
    let refuse = |table: &str, customer: &str, raise: &str| {
        format!(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON {table}
             WHEN (SELECT customer_id FROM notes WHERE id = NEW.note_id) = '{customer}'
             BEGIN SELECT RAISE({raise}, 'the disk says no'); END;"
        )
    };
    for table in ["note_bodies", "note_events"] {
        let (kept, failing) = (format!("kept-{table}"), format!("failing-{table}"));
        attempt(&kept, &failing, &refuse(table, &failing, "ABORT"));
        assert_eq!(rows(&kept), (1, 1, 1), "{table}");
        assert_eq!(rows(&failing), (0, 0, 0), "{table}");
        queue(&failing);
        assert_eq!(rows(&failing), (1, 1, 1), "{table}");
    }
    // A failure that rolls the whole transaction back, as a full disk does.
    attempt(
        "lost",
        "ending",
        &refuse("note_events", "ending", "ROLLBACK"),
    );
    assert_eq!(rows("lost"), (0, 0, 0), "the group went whole");
    assert_eq!(rows("ending"), (0, 0, 0));
    // What is written next (a claim for delivery) is synced again, as outside any group.
    let sync: i64 = outbox
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");
    assert_eq!(sync, 2, "FULL again once the group is gone");
    queue("lost");
    queue("ending");
    assert_eq!(rows("lost"), (1, 1, 1));
    // A half-written note that cannot be deleted again takes its group with it, never stays.
    let keep = "CREATE TEMP TRIGGER keep BEFORE DELETE ON notes WHEN OLD.customer_id = 'stuck'
                BEGIN SELECT RAISE(ABORT, 'nor may it go'); END";
    attempt(
        "beside",
        "stuck",
        &(refuse("note_events", "stuck", "ABORT") + keep),
    );
    assert_eq!(rows("beside"), (0, 0, 0), "the group went whole");
    assert_eq!(rows("stuck"), (0, 0, 0), "no half note");
}

#[test]
fn history_sees_occasions_cooldowns_and_the_cap() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("s.sqlite")).expect("open");
    let earlier = now() - SignedDuration::from_hours(48);
    outbox
        .enqueue(&note("sorry", "1", "interaction-5"), earlier)
        .expect("enqueue");
    let week_ago = now() - SignedDuration::from_hours(24 * 7);
    let h = outbox
        .history("sorry", "1", "interaction-5", &lookback(week_ago, week_ago))
        .expect("history");
    assert_eq!(h.occasion_state, Some(NoteState::Queued));
    assert_eq!(h.last_from_rule, Some(earlier));
    assert_eq!(h.in_cap_window, 1);
    // A note older than the cooldown no longer matters to it.
    let h = outbox
        .history("sorry", "1", "interaction-6", &lookback(earlier, week_ago))
        .expect("history");
    assert_eq!((h.occasion_state, h.last_from_rule), (None, None));
    let day_ago = now() - SignedDuration::from_hours(24);
    let other = outbox
        .history(
            "valentines",
            "1",
            "valentines-2027",
            &lookback(day_ago, day_ago),
        )
        .expect("history");
    assert_eq!(other, History::default());
}

#[test]
fn claimed_notes_left_sending_are_parked_as_unknown_not_resent() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    let id = outbox
        .enqueue(&note("sorry", "1", "o"), now())
        .expect("enqueue")
        .expect("id");
    let claimed = outbox.claim_next(now()).expect("claim").expect("a note");
    assert_eq!((claimed.id, claimed.attempts), (id, 1));
    // The daemon dies here. At the next start:
    drop(outbox);
    let outbox = Outbox::open(&path).expect("reopen");
    // Another boot of the machine: what was not synced may be lost, so it is unknown.
    let Parked { unknown, back, .. } = outbox.park_interrupted(now(), false).expect("park");
    assert_eq!((unknown.len(), back.len()), (1, 0));
    assert!(
        outbox.claim_next(now()).expect("claim").is_none(),
        "an unknown note must not be resent"
    );
    assert_eq!(outbox.counts().expect("counts"), [(NoteState::Unknown, 1)]);
}

/// Two notes queued and claimed, the first marked on its way; the process then dies.
fn two_claimed_the_first_on_its_way(path: &std::path::Path) -> (StoredNote, StoredNote) {
    let outbox = Outbox::open(path).expect("open");
    for customer in ["1", "2"] {
        outbox
            .enqueue(&note("sorry", customer, "o"), now())
            .expect("enqueue");
    }
    let on_its_way = outbox.claim_next(now()).expect("claim").expect("a note");
    let waiting = outbox.claim_next(now()).expect("claim").expect("a note");
    outbox
        .handed_over()
        .expect("open")
        .mark(on_its_way.id, on_its_way.attempts)
        .expect("mark");
    (on_its_way, waiting)
}

#[test]
fn after_a_crash_only_the_notes_on_their_way_are_unknown_the_others_go_again() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (on_its_way, waiting) = two_claimed_the_first_on_its_way(&path);
    // The process died; the machine stayed up. At the next start:
    let outbox = Outbox::open(&path).expect("reopen");
    let Parked { unknown, back, .. } = outbox.park_interrupted(now(), true).expect("park");
    assert_eq!(
        unknown.iter().map(|n| n.id).collect::<Vec<_>>(),
        [on_its_way.id]
    );
    assert_eq!(back.iter().map(|n| n.id).collect::<Vec<_>>(), [waiting.id]);
    let again = outbox
        .claim_next(now())
        .expect("claim")
        .expect("queued again");
    assert_eq!(
        (again.id, again.attempts),
        (waiting.id, 1),
        "the attempt that never was is not counted"
    );
}

#[test]
fn after_a_crash_the_notes_the_server_answered_are_sent_or_go_again_never_unknown() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    for customer in ["1", "2", "3"] {
        outbox
            .enqueue(&note("sorry", customer, "o"), now())
            .expect("enqueue");
    }
    let claimed: Vec<StoredNote> = (0..3)
        .map(|_| outbox.claim_next(now()).expect("claim").expect("a note"))
        .collect();
    let marks = outbox.handed_over().expect("open");
    for n in &claimed {
        marks.mark(n.id, n.attempts).expect("mark");
    }
    // The server took the first (its reply spans lines), refused the second; the third has
    // no answer yet. The process dies before the delivery thread records any of it.
    marks
        .answer(
            claimed[0].id,
            1,
            Some("smtp 127.0.0.1:25: 250 2.0.0 Ok:\r\nqueued as 4F2"),
        )
        .expect("answer");
    marks.answer(claimed[1].id, 1, None).expect("answer");
    drop((marks, outbox));
    let outbox = Outbox::open(&path).expect("reopen");
    let Parked {
        unknown,
        back,
        sent,
    } = outbox.park_interrupted(now(), true).expect("park");
    let ids = |notes: &[StoredNote]| notes.iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(ids(&sent), [claimed[0].id]);
    assert_eq!(ids(&back), [claimed[1].id]);
    assert_eq!(ids(&unknown), [claimed[2].id]);
    let detail: String = outbox
        .conn
        .query_row(
            "SELECT detail FROM note_events WHERE note_id = ?1 ORDER BY id DESC LIMIT 1",
            [claimed[0].id],
            |r| r.get(0),
        )
        .expect("detail");
    assert!(
        detail.starts_with(
            "smtp 127.0.0.1:25: 250 2.0.0 Ok:  queued as 4F2 (recorded at the next start"
        ),
        "{detail}"
    );
    let again = outbox
        .claim_next(now())
        .expect("claim")
        .expect("queued again");
    assert_eq!((again.id, again.attempts), (claimed[1].id, 1));
}

#[test]
fn a_mark_of_an_earlier_attempt_does_not_make_the_next_one_unknown() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    outbox
        .enqueue(&note("sorry", "1", "o"), now())
        .expect("enqueue");
    let first = outbox.claim_next(now()).expect("claim").expect("a note");
    let marks = outbox.handed_over().expect("open");
    marks.mark(first.id, first.attempts).expect("mark");
    outbox
        .finish_batch(
            &[Update::new(
                first.id,
                NoteState::Retry,
                "451 later".into(),
                Some(now()),
            )],
            now(),
        )
        .expect("retry");
    // The second attempt is claimed, and the process dies before its message goes.
    let second = outbox.claim_next(now()).expect("claim").expect("again");
    assert_eq!(second.attempts, 2);
    drop(outbox);
    let outbox = Outbox::open(&path).expect("reopen");
    let Parked { unknown, back, .. } = outbox.park_interrupted(now(), true).expect("park");
    assert_eq!((unknown.len(), back.len()), (0, 1));
    assert_eq!(
        std::fs::metadata(dir.path().join("s.sqlite-handed"))
            .map(|m| m.len())
            .ok(),
        Some(0),
        "the marks are emptied once settled"
    );
}

#[test]
fn marks_that_cannot_be_read_park_every_note_left_sending_as_unknown() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    two_claimed_the_first_on_its_way(&path);
    // Something else wrote into the file (or a disk error tore a line).
    let file = dir.path().join("s.sqlite-handed");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("12 x\n");
    std::fs::write(&file, text).expect("write");
    let outbox = Outbox::open(&path).expect("reopen");
    let Parked { unknown, back, .. } = outbox.park_interrupted(now(), true).expect("park");
    assert_eq!(
        (unknown.len(), back.len()),
        (2, 0),
        "never a note sent twice"
    );
}

#[test]
fn the_marks_start_empty_when_no_note_is_sending() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    let file = dir.path().join("s.sqlite-handed");
    std::fs::write(&file, "1 1\n2 1\n").expect("write");
    outbox.handed_over().expect("open");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "");
    outbox
        .enqueue(&note("sorry", "1", "o"), now())
        .expect("enqueue");
    let sending = outbox.claim_next(now()).expect("claim").expect("a note");
    let marks = outbox.handed_over().expect("open");
    marks.mark(sending.id, sending.attempts).expect("mark");
    outbox.handed_over().expect("open again");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        format!("{} 1\n", sending.id),
        "kept while a note is sending"
    );
}

#[test]
fn retries_wait_for_their_time_and_higher_priority_goes_first() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("s.sqlite")).expect("open");
    let low = outbox
        .enqueue(&note("seasonal", "1", "o"), now())
        .expect("enqueue")
        .expect("id");
    let high = outbox
        .enqueue(
            &NewNote {
                priority: 100,
                ..note("sorry", "2", "o")
            },
            now(),
        )
        .expect("enqueue")
        .expect("id");
    let first = outbox.claim_next(now()).expect("claim").expect("note");
    assert_eq!(first.id, high);
    let later = now() + SignedDuration::from_mins(5);
    outbox
        .transition(
            first.id,
            NoteState::Retry,
            now(),
            Some("451 try later"),
            Some(later),
        )
        .expect("retry");
    assert_eq!(
        outbox.claim_next(now()).expect("claim").map(|n| n.id),
        Some(low)
    );
    assert!(outbox.claim_next(now()).expect("claim").is_none());
    assert_eq!(
        outbox.claim_next(later).expect("claim").map(|n| n.id),
        Some(high)
    );
    assert_eq!(
        outbox.last_error().expect("last error").map(|e| e.2),
        Some("451 try later".to_string())
    );
}

#[test]
fn a_dry_run_sees_its_own_plans_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    Outbox::open(&path)
        .expect("create")
        .enqueue(&note("sorry", "1", "a"), now())
        .expect("enqueue");
    let dry = Outbox::open_dry_run(&path).expect("dry");
    assert_eq!(
        dry.enqueue(&note("sorry", "1", "a"), now()).expect("plan"),
        None
    );
    assert!(
        dry.enqueue(&note("sorry", "2", "a"), now())
            .expect("plan")
            .is_some()
    );
    assert_eq!(
        dry.enqueue(&note("sorry", "2", "a"), now()).expect("plan"),
        None,
        "a note planned already is not planned twice"
    );
    let hour_ago = now() - SignedDuration::from_hours(1);
    let h = dry
        .history("other", "2", "x", &lookback(hour_ago, hour_ago))
        .expect("history");
    assert_eq!(
        h.in_cap_window, 1,
        "the plan counts its own notes against the cap"
    );
    drop(dry);
    let real = Outbox::open(&path).expect("reopen");
    assert_eq!(real.counts().expect("counts"), [(NoteState::Queued, 1)]);
    let missing = dir.path().join("missing.sqlite");
    Outbox::open_dry_run(&missing).expect("dry run of a missing state db");
    assert!(
        !missing.exists(),
        "a dry run never creates the state database"
    );
}

/// Queued notes are committed without waiting for the disk (a power loss costs only notes the
/// next evaluation queues again), but the claim that marks notes `sending` waits for it, and with
/// it everything committed before: that is what keeps a note from going twice.
#[test]
fn claiming_notes_for_delivery_is_synced_to_disk_even_right_after_queueing() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    let synchronous = || -> i64 {
        outbox
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma")
    };
    let (normal, full) = (1, 2);
    assert_eq!(synchronous(), full);
    outbox
        .enqueue(&note("sorry", "1", "interaction-5"), now())
        .expect("enqueue");
    assert_eq!(synchronous(), normal, "a group of queued notes");
    let claimed = outbox.claim_next(now()).expect("claim");
    assert_eq!(claimed.map(|n| n.customer_id), Some("1".to_string()));
    assert_eq!(synchronous(), full, "the claim");
    outbox
        .enqueue(&note("sorry", "2", "interaction-6"), now())
        .expect("enqueue");
    outbox.flush().expect("flush");
    assert_eq!(synchronous(), full, "after the group");
}

/// Asked for every candidate: each part of a customer's history must be found through an index
/// leading with that customer (or the rule and the customer), never by reading a rule's notes
/// since the cooldown (at 1M customers that made one rule's evaluation take over 12 minutes).
#[test]
fn a_candidates_history_is_looked_up_by_customer_not_read_from_the_rules_notes() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    for i in 0..500 {
        let customer = i.to_string();
        outbox
            .enqueue(&note("sorry", &customer, "interaction-1"), now())
            .expect("enqueue");
    }
    outbox.flush().expect("flush");
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Vec<String> {
        let lines: Vec<String> = outbox
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain")
            .query_map(params, |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("rows");
        lines.into_iter().filter(|l| l.contains("notes")).collect()
    };
    let history = plan(history_sql(), params!["sorry", "7", "interaction-1", 0, 0]);
    let notes_to = plan(notes_to_sql(), params!["7", 0]);
    assert_eq!(
        (history.len(), notes_to.len()),
        (3, 1),
        "{history:#?} {notes_to:#?}"
    );
    for line in history.iter().chain(&notes_to) {
        assert!(
            line.starts_with("SEARCH")
                && (line.contains("(rule=? AND customer_id=?") || line.contains("(customer_id=?")),
            "{line} in {history:#?} {notes_to:#?}"
        );
    }
}

/// The one-note-per-address look of a rule whose occasion every note shares (a ratio rule's day,
/// a season): by the address. Before, it read every note of the occasion for each candidate: at
/// 100,000 customers, a ratio rule without a daily limit queued about 47 notes a second.
#[test]
fn the_same_address_look_is_by_address_not_a_read_of_the_occasions_notes() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    for i in 0..500 {
        outbox
            .enqueue(
                &note("ten-to-one", &i.to_string(), "ratio-2026-12-02"),
                now(),
            )
            .expect("enqueue");
    }
    outbox.flush().expect("flush");
    let sql = format!("EXPLAIN QUERY PLAN {}", same_address_sql());
    let plan: Vec<String> = outbox
        .conn
        .prepare(&sql)
        .expect("explain")
        .query_map(
            params!["ten-to-one", "ratio-2026-12-02", "a@example.com", "7"],
            |r| r.get::<_, String>(3),
        )
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        plan.iter()
            .any(|l| l.starts_with("SEARCH") && l.contains("recipient=?")),
        "{plan:#?}"
    );
}

/// A mailed unsubscribe finds the customers written to at its address by the index, not by
/// reading every note (at 1M customers, half a million of them).
#[test]
fn the_customers_at_an_address_are_found_by_the_index() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    let mut ann = note("sorry", "1", "interaction-5");
    ann.letter.recipient = "Ann@Example.com".into();
    for n in [ann, note("sorry", "2", "interaction-6")] {
        outbox.enqueue(&n, now()).expect("enqueue");
    }
    outbox.flush().expect("flush");
    assert_eq!(
        outbox.customers_at("ann@example.COM").expect("look"),
        vec!["1".to_string()]
    );
    let plan: String = outbox
        .conn
        .query_row(
            &format!("EXPLAIN QUERY PLAN {}", super::inbound::CUSTOMERS_AT_SQL),
            ["a@b.example"],
            |r| r.get(3),
        )
        .expect("plan");
    assert!(
        plan.starts_with("SEARCH") && plan.contains("recipient=?"),
        "{plan}"
    );
}

/// A rule that queues a note and then goes on for a while (skipping customers, counting those
/// beyond its limit) does not keep the daemon's delivery from writing: its group is committed
/// once [`GROUP_TIME`] old, between two candidates.
#[test]
fn a_group_of_queued_notes_is_committed_when_old_not_only_when_full() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    outbox
        .enqueue(&note("sorry", "1", "interaction-5"), now())
        .expect("enqueue");
    std::thread::sleep(GROUP_TIME + Duration::from_millis(50));
    outbox.flush_if_old().expect("flush if old");
    let other = Connection::open(&path).expect("other connection");
    other
        .busy_timeout(Duration::from_millis(0))
        .expect("no waiting");
    other
        .execute_batch("BEGIN IMMEDIATE; COMMIT")
        .expect("another connection writes at once");
    let queued: i64 = other
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(queued, 1);
}

/// A state database from before loses the indexes notes_customer_key, notes_address and
/// notes_token replace (one index fewer written for every note queued, the Message-ID's a
/// shorter one), finds its
/// notes by their token as before (also those an older rekindle queued after a downgrade), and
/// still queues each of them once.
#[test]
fn an_older_state_database_drops_the_indexes_it_no_longer_needs_and_keeps_its_notes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let token = "0123456789abcdef0123456789abcdef";
    let mut old_note = note("sorry", "1", "interaction-5");
    old_note.letter.message_id = format!("<{token}.rekindle@bakery.example>");
    let outbox = Outbox::open(&path).expect("open");
    outbox.enqueue(&old_note, now()).expect("enqueue");
    drop(outbox);
    // As an older rekindle left it: no token, an index for each use.
    let old = Connection::open(&path).expect("old");
    old.execute_batch(
        "DROP INDEX notes_token;
         ALTER TABLE notes DROP COLUMN token;
         DROP INDEX notes_customer_key;
         CREATE UNIQUE INDEX notes_key ON notes(rule, customer_id, occasion);
         CREATE INDEX notes_customer_rule ON notes(customer_id, rule, created_at);
         CREATE INDEX notes_customer ON notes(customer_id, created_at);
         CREATE INDEX notes_message_id ON notes(message_id);
         CREATE INDEX notes_rule_occasion_address
             ON notes(rule, occasion, recipient COLLATE NOCASE);",
    )
    .expect("an old database");
    drop(old);
    let outbox = Outbox::open(&path).expect("reopen");
    let left = count(
        &outbox,
        "SELECT count(*) FROM sqlite_master WHERE name IN ('notes_key', 'notes_customer_rule',
             'notes_customer', 'notes_message_id', 'notes_rule_occasion_address')",
    );
    assert_eq!(left, 0);
    let found = outbox
        .note_by_token(token)
        .expect("look")
        .expect("the old note");
    assert_eq!(
        (found.rule.as_str(), found.customer_id.as_str()),
        ("sorry", "1")
    );
    // Written by an older rekindle after a downgrade: found once this one opens it again.
    let mut later = note("sorry", "2", "interaction-6");
    later.letter.message_id = format!("<{}.rekindle@bakery.example>", "fedcba98".repeat(4));
    outbox.enqueue(&later, now()).expect("enqueue");
    outbox.flush().expect("flush");
    outbox
        .conn
        .execute("UPDATE notes SET token = NULL WHERE customer_id = '2'", [])
        .expect("as an older rekindle");
    drop(outbox);
    let outbox = Outbox::open(&path).expect("reopen");
    let found = outbox.note_by_token(&"fedcba98".repeat(4)).expect("look");
    assert_eq!(found.map(|n| n.customer_id), Some("2".to_string()));
    let again = outbox.enqueue(&old_note, now()).expect("enqueue again");
    assert_eq!(again, None, "the same note queued twice");
    assert_eq!(count(&outbox, "SELECT count(*) FROM notes"), 2);
    // Another token's note is not found by the first 8 bytes alone.
    let other = format!("{}{}", &token[..16], "ffffffffffffffff");
    assert!(outbox.note_by_token(&other).expect("look").is_none());
}

/// A state database from before keeps each note's bodies in its own row: they move to
/// note_bodies, and the note goes out saying what it said.
#[test]
fn an_older_state_database_moves_the_bodies_apart_and_keeps_them() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let old = Connection::open(&path).expect("old");
    old.execute_batch(
        "CREATE TABLE notes (
            id INTEGER PRIMARY KEY, rule TEXT NOT NULL, customer_id TEXT NOT NULL,
            occasion TEXT NOT NULL, priority INTEGER NOT NULL, state TEXT NOT NULL,
            recipient TEXT NOT NULL, display_name TEXT, subject TEXT NOT NULL,
            body_text TEXT NOT NULL, body_html TEXT, message_id TEXT NOT NULL,
            created_at INTEGER NOT NULL, due_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            sent_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, server TEXT,
            timezone TEXT);
         INSERT INTO notes (rule, customer_id, occasion, priority, state, recipient, subject,
                            body_text, body_html, message_id, created_at, due_at, updated_at)
         VALUES ('sorry', '1', 'o', 0, 'queued', 'ann@example.com', 'Sorry',
                 'Hi Ann, the bread was burnt.', '<p>Hi Ann</p>', '<a.rekindle@x>', 0, 0, 0);",
    )
    .expect("an old database");
    drop(old);
    let outbox = Outbox::open(&path).expect("open");
    let columns = count(
        &outbox,
        "SELECT count(*) FROM pragma_table_info('notes') WHERE name LIKE 'body%'",
    );
    assert_eq!(columns, 0);
    let note = outbox
        .claim_next(now())
        .expect("claim")
        .expect("the old note");
    assert_eq!(note.letter.body_text, "Hi Ann, the bread was burnt.");
    assert_eq!(note.letter.body_html.as_deref(), Some("<p>Hi Ann</p>"));
    drop(outbox);
    // Opened again, nothing moves twice.
    let outbox = Outbox::open(&path).expect("reopen");
    let bodies = count(&outbox, "SELECT count(*) FROM note_bodies");
    assert_eq!(bodies, 1);
}

/// A note's HTML is stored without the page around it (the same for every note) and read
/// back whole, byte for byte; HTML of another shape is stored as it is.
#[test]
fn a_notes_html_page_is_stored_as_its_block_and_read_back_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    let page = crate::compose::letter_html("<p>Hi Ada,</p>\n<p>Thank you.</p>", "en-GB");
    for (customer, html) in [("1", page.as_str()), ("2", "<p>Hi Ann</p>")] {
        let mut new = note("thanks", customer, "o");
        new.letter.body_html = Some(html.to_string());
        outbox.enqueue(&new, now()).expect("enqueue");
    }
    outbox.flush().expect("flush");
    let stored = count(&outbox, "SELECT sum(length(body_html)) FROM note_bodies");
    assert_eq!(
        stored as usize,
        "<p>Hi Ada,</p>\n<p>Thank you.</p><p>Hi Ann</p>".len()
    );
    let mut read = Vec::new();
    while let Some(n) = outbox.claim_next(now()).expect("claim") {
        read.push((n.customer_id, n.letter.body_html));
    }
    read.sort();
    assert_eq!(
        read,
        [
            ("1".to_string(), Some(page.clone())),
            ("2".to_string(), Some("<p>Hi Ann</p>".to_string()))
        ]
    );
}

/// A state database whose bodies were written whole (before their page was left out) gets
/// the column for the page's language, and its notes go out saying what they said.
#[test]
fn an_older_state_databases_whole_pages_are_read_as_they_are() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    let mut new = note("thanks", "1", "o");
    let page = crate::compose::letter_html("<p>Hi Ada,</p>", "en");
    new.letter.body_html = Some(page.clone());
    outbox.enqueue(&new, now()).expect("enqueue");
    outbox.flush().expect("flush");
    drop(outbox);
    // As an earlier build wrote it: the whole page, no html_lang column.
    let old = Connection::open(&path).expect("old");
    old.execute_batch("ALTER TABLE note_bodies DROP COLUMN html_lang")
        .expect("drop the column");
    old.execute("UPDATE note_bodies SET body_html = ?1", [&page])
        .expect("the whole page");
    drop(old);
    let outbox = Outbox::open(&path).expect("reopen");
    let columns = count(
        &outbox,
        "SELECT count(*) FROM pragma_table_info('note_bodies') WHERE name = 'html_lang'",
    );
    assert_eq!(columns, 1);
    let note = outbox.claim_next(now()).expect("claim").expect("the note");
    assert_eq!(note.letter.body_html, Some(page));
}

#[test]
fn a_note_is_logged_as_queued_only_once_its_group_is_committed() {
    // Before, "note queued" was logged before the group committed: after a crash or a full
    // disk the log claimed notes the state database never had.
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    let before_commit = crate::test_log::logged(|| {
        outbox
            .enqueue(&note("sorry", "1", "interaction-5"), now())
            .expect("enqueue");
    });
    assert!(!before_commit.contains("note queued"), "{before_commit}");
    let at_commit = crate::test_log::logged(|| outbox.flush().expect("flush"));
    assert!(at_commit.contains("note queued"), "{at_commit}");
    assert!(at_commit.contains("customer_id=1"), "{at_commit}");
}

#[test]
fn a_sent_note_keeps_no_earlier_error() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let outbox = Outbox::open(&path).expect("open");
    outbox
        .enqueue(&note("sorry", "1", "interaction-5"), now())
        .expect("enqueue");
    let first = outbox.claim_next(now()).expect("claim").expect("note");
    let detail = Some("451 try later");
    outbox
        .transition(first.id, NoteState::Retry, now(), detail, Some(now()))
        .expect("retry");
    let again = outbox.claim_next(now()).expect("claim").expect("note");
    outbox
        .transition(again.id, NoteState::Sent, now(), Some("250 ok"), None)
        .expect("sent");
    let error: Option<String> = Connection::open(&path)
        .expect("state")
        .query_row("SELECT last_error FROM notes", [], |r| r.get(0))
        .expect("row");
    assert_eq!(error, None);
}

/// A whole evaluation lets the WAL grow, then copies it into the database at once: a commit
/// after it (an event's note, a delivery's) never pays for the evaluation's pages.
#[test]
fn after_a_whole_evaluation_the_wal_is_copied_and_checkpoints_are_small_again() {
    // 300 notes are about 200 pages: none copied before the end.
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
    let pages = |outbox: &Outbox| -> i64 {
        outbox
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .expect("pragma")
    };
    outbox.begin_bulk().expect("bulk");
    assert_eq!(pages(&outbox), 16_384);
    for i in 0..300 {
        outbox
            .enqueue(&note("sorry", &i.to_string(), "interaction-1"), now())
            .expect("enqueue");
    }
    outbox.flush().expect("flush");
    let size = || {
        std::fs::metadata(dir.path().join("state.sqlite"))
            .expect("size")
            .len()
    };
    let in_wal = size();
    outbox.end_bulk().expect("bulk ends");
    assert_eq!(pages(&outbox), 1_000);
    assert!(
        size() > in_wal + 100_000,
        "the WAL copied: {in_wal} then {} bytes",
        size()
    );
    assert_eq!(
        count(&outbox, "SELECT count(*) FROM notes"),
        300,
        "the notes committed"
    );
}
