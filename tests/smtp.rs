//! `run --once` against a real SMTP server on 127.0.0.1: what arrives, to whom, with which
//! Message-ID, and what a 4xx or 5xx reply does to a note.

mod support;

use support::config::{SORRY_RULE, smtp};
use support::fixture::{Fixture, ago, text};
use support::smtp_server::{Reply, TestSmtpServer};

fn two_unhappy_customers() -> Fixture {
    let f = Fixture::new();
    f.customer(
        1,
        "ann@example.com",
        Some("Ann Angry"),
        None,
        Some(r#"{"pet":"a greyhound called Pepper"}"#),
    )
    .interaction(
        1,
        &ago(1.0),
        "complaint",
        Some(-0.8),
        Some("The bread box came two days late & the <i>croissants</i> were stale."),
    );
    f.customer(2, "bob@example.com", Some("Bob Brun"), None, None)
        .interaction(2, &ago(2.0), "complaint", Some(-0.6), Some("Wrong cake."));
    f
}

#[test]
fn notes_arrive_personalised_with_deterministic_message_ids() {
    let server = TestSmtpServer::start();
    let f = two_unhappy_customers();
    f.config(&smtp(server.port(), &["timeout = \"5s\""]), SORRY_RULE);
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("delivery: sent 2, retrying 0, failed 0"),
        "{stdout}\n{stderr}"
    );
    let received = server.wait_for(2, std::time::Duration::from_secs(10));
    assert_eq!(received.len(), 2);
    let ann = received
        .iter()
        .find(|m| m.to == ["ann@example.com"])
        .expect("a note to Ann");
    assert_eq!(ann.from, "rosemary@bakery.example");
    let subject = ann.subject().unwrap_or_default();
    assert!(subject.contains("Ann"), "{subject}");
    let body = ann.text_body();
    // Her words, without their markup; escaped in the HTML.
    assert!(
        body.contains("\"The bread box came two days late & the croissants were stale.\""),
        "{body}"
    );
    let html = ann.html_body().expect("html");
    assert!(
        !html.contains("<i>croissants"),
        "customer text never adds markup: {html}"
    );
    assert!(
        html.contains("two days late &amp; the croissants"),
        "{html}"
    );
    let first_id = ann.message_id().expect("Message-ID");

    // The same note, from a fresh state database, keeps its Message-ID: a receiving system can
    // drop the duplicate too.
    std::fs::remove_file(f.path("state.sqlite")).expect("remove state");
    let _ = std::fs::remove_file(f.path("state.sqlite-wal"));
    let _ = std::fs::remove_file(f.path("state.sqlite-shm"));
    f.rekindle(&["run", "--once"]);
    let again = server.wait_for(4, std::time::Duration::from_secs(10));
    let ids: Vec<_> = again
        .iter()
        .filter(|m| m.to == ["ann@example.com"])
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(ids, [first_id.clone(), first_id]);
}

#[test]
fn a_recipient_refused_at_rcpt_fails_or_waits_alone_also_when_pipelined() {
    for pipelining in [false, true] {
        let mut server = TestSmtpServer::start();
        if pipelining {
            server = server.pipelining();
        }
        let f = Fixture::new();
        let emails = [
            "ann@example.com",
            "refused@example.com",
            "greylisted@example.com",
            "bob@example.com",
        ];
        for (id, email) in (1..).zip(emails) {
            f.customer(id, email, None, None, None).interaction(
                id,
                &ago(1.0),
                "complaint",
                Some(-0.8),
                Some("Burnt."),
            );
        }
        // One connection: after each refusal it must still be in step for the next note, also
        // when that note's commands went out behind the refused one.
        let transport = format!(
            "{}\npool_size = 1\n[delivery]\nconcurrency = 4",
            smtp(server.port(), &["timeout = \"5s\""])
        );
        f.config(&transport, SORRY_RULE);
        let out = f.rekindle(&["run", "--once"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stdout.contains("delivery: sent 2, retrying 1, failed 1"),
            "pipelining {pipelining}: {stdout}\n{stderr}"
        );
        let mut to: Vec<_> = server.received().into_iter().flat_map(|m| m.to).collect();
        to.sort();
        assert_eq!(to, ["ann@example.com", "bob@example.com"]);
        let (failed, _) = text(&f.rekindle(&["outbox", "list", "--state", "failed"]));
        assert!(
            failed.contains("550") && failed.contains("no such mailbox"),
            "pipelining {pipelining}: the server's reply is kept: {failed}"
        );
        let (retry, _) = text(&f.rekindle(&["outbox", "list", "--state", "retry"]));
        assert!(retry.contains("greylisted"), "{retry}");
        if pipelining {
            assert!(server.pipelined() >= 1, "{} pipelined", server.pipelined());
            assert!(server.behind() >= 1, "{} behind", server.behind());
        }
    }
}

#[test]
fn notes_pipelined_behind_each_other_arrive_once_when_the_server_hangs_up_after_a_refusal() {
    // mailin closes the connection after a 451 or 550 at the end of DATA: the note announced
    // behind the refused one must go again on a fresh connection, exactly once.
    let server = TestSmtpServer::with_replies(|n| match n % 6 {
        1 => Reply::Transient,
        4 => Reply::Permanent,
        _ => Reply::Accept,
    })
    .pipelining();
    let f = Fixture::new();
    f.complaints(1, 30);
    let transport = format!(
        "{}\npool_size = 2\n[delivery]\nconcurrency = 8",
        smtp(server.port(), &["timeout = \"5s\""])
    );
    f.config(&transport, SORRY_RULE);
    let (stdout, stderr) = text(&f.rekindle(&["run", "--once"]));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("delivery: "))
        .unwrap_or_default();
    let count = |what: &str| -> usize {
        line.split(", ")
            .find_map(|part| part.trim_start_matches("delivery: ").strip_prefix(what))
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX)
    };
    let (sent, retrying, failed) = (count("sent "), count("retrying "), count("failed "));
    assert_eq!(sent + retrying + failed, 30, "{stdout}\n{stderr}");
    assert!(retrying > 0 && failed > 0, "{stdout}");
    let ids: std::collections::HashSet<_> = server
        .received()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(server.received().len(), sent, "{stdout}");
    assert_eq!(ids.len(), sent, "no note arrived twice");
    assert!(server.behind() >= 1, "{} behind", server.behind());
}

#[test]
fn a_4xx_reply_is_retried_later_and_a_5xx_fails_the_note() {
    // The first DATA gets 451, the second 550.
    let server = TestSmtpServer::with_replies(|n| match n {
        0 => Reply::Transient,
        1 => Reply::Permanent,
        _ => Reply::Accept,
    });
    let f = two_unhappy_customers();
    f.config(&smtp(server.port(), &["timeout = \"5s\""]), SORRY_RULE);
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("delivery: sent 0, retrying 1, failed 1"),
        "{stdout}\n{stderr}"
    );
    let mut states = f.notes();
    states.sort();
    assert_eq!(
        states.iter().filter(|s| s.ends_with("|retry")).count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| s.ends_with("|failed")).count(),
        1,
        "{states:?}"
    );
    assert!(server.received().is_empty());
    let (status, _) = text(&f.rekindle(&["status"]));
    assert!(status.contains("last error: "), "{status}");
    let (failed, _) = text(&f.rekindle(&["outbox", "list", "--state", "failed"]));
    assert!(
        failed.contains("550"),
        "the server's reply is kept: {failed}"
    );
}

#[test]
fn a_note_refused_with_4xx_is_delivered_exactly_once_later() {
    // 451 for the first two attempts, then accepted.
    let server = TestSmtpServer::with_replies(|n| {
        if n < 2 {
            Reply::Transient
        } else {
            Reply::Accept
        }
    });
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Burnt."));
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    f.config(
        &format!("{transport}\n[delivery]\nretry_base = \"1s\"\nretry_max = \"2s\""),
        SORRY_RULE,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.received().is_empty() && std::time::Instant::now() < deadline {
        f.rekindle(&["run", "--once"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // More runs change nothing: the note is sent, once.
    f.rekindle(&["run", "--once"]);
    let got = server.received();
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert_eq!(f.notes(), ["sorry|1|interaction-1|sent"]);
    let (listed, _) = text(&f.rekindle(&["outbox", "list"]));
    assert!(listed.contains("attempts 3"), "{listed}");
}

#[test]
fn after_max_attempts_a_temporarily_refused_note_fails_with_the_reason() {
    let server = TestSmtpServer::with_replies(|_| Reply::Transient);
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Burnt."));
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    f.config(
        &format!("{transport}\n[delivery]\nmax_attempts = 1"),
        SORRY_RULE,
    );
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("delivery: sent 0, retrying 0, failed 1"),
        "{stdout}"
    );
    let (listed, _) = text(&f.rekindle(&["outbox", "list", "--state", "failed"]));
    assert!(listed.contains("gave up after 1 attempt(s)"), "{listed}");
    assert!(listed.contains("451"), "{listed}");
}

#[test]
fn each_note_carries_its_own_signed_one_click_unsubscribe_link() {
    let server = TestSmtpServer::start();
    let f = two_unhappy_customers();
    std::fs::write(f.path("unsubscribe-secret"), "a shared secret\n").expect("write");
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    let sender = "unsubscribe_url = \"https://bakery.example/unsubscribe\"\nunsubscribe_one_click = true\nunsubscribe_secret_file = \"unsubscribe-secret\"";
    f.config(&transport, SORRY_RULE);
    let config = std::fs::read_to_string(f.path("rekindle.toml")).expect("read");
    let config = config.replace(
        "unsubscribe_mailto = ",
        &format!("{sender}\nunsubscribe_mailto = "),
    );
    std::fs::write(f.path("rekindle.toml"), config).expect("write");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let got = server.wait_for(2, std::time::Duration::from_secs(10));
    let link_of = |to: &str| {
        let m = got.iter().find(|m| m.to == [to]).expect("note");
        assert_eq!(
            m.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let header = m.header("List-Unsubscribe").expect("List-Unsubscribe");
        assert!(
            header.ends_with(", <mailto:unsubscribe@bakery.example?subject=unsubscribe>"),
            "{header}"
        );
        let link = header
            .trim_start_matches('<')
            .split('>')
            .next()
            .expect("link")
            .to_string();
        assert!(
            m.text_body().contains(&link),
            "the note's footer links to the same page"
        );
        link
    };
    let ann = link_of("ann@example.com");
    let bob = link_of("bob@example.com");
    assert!(
        ann.starts_with("https://bakery.example/unsubscribe?c=1&t="),
        "{ann}"
    );
    assert!(
        bob.starts_with("https://bakery.example/unsubscribe?c=2&t="),
        "{bob}"
    );
    assert_ne!(
        ann["https://bakery.example/unsubscribe?c=1&t=".len()..],
        bob["https://bakery.example/unsubscribe?c=2&t=".len()..]
    );
}
