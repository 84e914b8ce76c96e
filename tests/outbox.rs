//! A note caught mid-send by a crash is parked as `unknown`, never resent blindly; an operator
//! lists and resolves it with `rekindle outbox`.

mod support;

use support::config::{SORRY_RULE, smtp};
use support::fixture::{Fixture, ago, text};
use support::smtp_server::TestSmtpServer;

#[test]
fn an_interrupted_note_waits_for_an_operator() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Burnt bread."));
    f.customer(2, "bob@example.com", Some("Bob"), None, None)
        .interaction(2, &ago(1.0), "complaint", Some(-0.8), Some("Cold coffee."));
    let transport = smtp(server.port(), &[]);
    f.config(&transport, SORRY_RULE);
    assert_eq!(f.rekindle(&["run", "--once"]).status.code(), Some(0));
    assert_eq!(
        server.wait_for(2, std::time::Duration::from_secs(5)).len(),
        2
    );

    // Pretend the daemon died while handing note 1 to the server: an earlier build, which
    // kept that in a table (today's marks, beside the state database, say it arrived).
    f.state_sql(
        "UPDATE notes SET state = 'sending' WHERE id = 1;
         INSERT INTO handed_over (note_id, at) VALUES (1, 0)",
    );
    std::fs::write(f.path("state.sqlite-handed"), "").expect("the marks");
    let (_, stderr) = text(&f.rekindle(&["run", "--once"]));
    assert!(stderr.contains("note parked as unknown"), "{stderr}");
    assert_eq!(
        server.received().len(),
        2,
        "an unknown note is not resent automatically"
    );

    let (listed, _) = text(&f.rekindle(&["outbox", "list", "--state", "unknown"]));
    assert!(listed.contains("unknown"), "{listed}");
    assert!(
        listed.contains("<ann@example.com>") || listed.contains("<bob@example.com>"),
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.contains("unknown")).count(),
        1,
        "{listed}"
    );

    // A sent note is never resent.
    let refused = f.rekindle(&["outbox", "resend", "2"]);
    assert_eq!(refused.status.code(), Some(64));
    assert!(
        text(&refused)
            .1
            .contains("note 2 is sent; only unknown, failed, retry, cancelled notes can be resent")
    );

    // The operator checked: it never arrived. Resend it.
    let (resent, _) = text(&f.rekindle(&["outbox", "resend", "--all", "--state", "unknown"]));
    assert!(
        resent.contains("note 1: unknown -> queued again"),
        "{resent}"
    );
    f.rekindle(&["run", "--once"]);
    assert_eq!(
        server.wait_for(3, std::time::Duration::from_secs(5)).len(),
        3
    );
    let (status, _) = text(&f.rekindle(&["status"]));
    assert!(status.contains("sent       2"), "{status}");
}

#[test]
fn cancelled_notes_are_never_sent() {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Burnt bread."));
    // A server that is not there: the note stays in retry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let transport = format!("{}\ntimeout = \"2s\"", smtp(port, &[]));
    f.config(&transport, SORRY_RULE);
    let (stdout, _) = text(&f.rekindle(&["run", "--once"]));
    assert!(
        stdout.contains("delivery: sent 0, retrying 1, failed 0"),
        "{stdout}"
    );
    let (cancelled, _) = text(&f.rekindle(&["outbox", "cancel", "1"]));
    assert!(
        cancelled.contains("note 1: retry -> cancelled"),
        "{cancelled}"
    );
    assert_eq!(f.notes(), ["sorry|1|interaction-1|cancelled"]);
    let again = f.rekindle(&["outbox", "cancel", "1"]);
    assert_eq!(again.status.code(), Some(64));
}
