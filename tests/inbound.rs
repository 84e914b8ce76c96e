//! What comes back, end to end: notes sent through a real SMTP server, then bounces, replies, an
//! automatic reply, a mailed unsubscribe and the owner's own mail put into a real IMAP mailbox
//! (Dovecot, by IMAP APPEND) or a maildir, and the real binary reading them.

mod support;

use std::time::Duration;

use support::config::{SORRY_ON_EVENT, SORRY_RULE, smtp};
use support::dovecot::Dovecot;
use support::fixture::{Fixture, ago, text};
use support::smtp_server::{Received, TestSmtpServer};

/// Four customers with a complaint each (an apology is due to each), and one more.
fn four_unhappy_customers() -> Fixture {
    let f = Fixture::new();
    let people = [
        (1, "ann@example.com", "Ann Archer", "The bread was stale."),
        (2, "ben@example.com", "Ben Brook", "My order came late."),
        (3, "cy@example.com", "Cy Court", "The cake was dry."),
        (4, "di@example.com", "Di Dale", "Wrong change at the till."),
    ];
    for (id, email, name, words) in people {
        f.customer(id, email, Some(name), None, None).interaction(
            id,
            &ago(1.0),
            "complaint",
            Some(-0.7),
            Some(words),
        );
    }
    f
}

/// A winter card open today, for everyone (the apology does not hold it back).
fn winter_rule() -> String {
    let today = jiff::ZonedDateTime::now().strftime("%m-%d").to_string();
    format!(
        "[[rule]]\nname = \"winter\"\nkind = \"seasonal\"\nschedule = \"*/5 * * * *\"\ntemplate = \"gratitude.j2\"\nseason = \"winter\"\ntitle = \"winter\"\nstart = \"{today}\"\nend = \"{today}\"\nhold_while_unhappy = false\n"
    )
}

/// `[inbound]` reading `dovecot`'s INBOX (plaintext on 127.0.0.1), with `extra` lines for the
/// source, then a relaxed cap and the staff digest.
fn reading(f: &Fixture, dovecot: &Dovecot, extra: &str) -> String {
    std::fs::write(f.path("imap-password"), dovecot.password()).expect("password file");
    format!(
        "[policy]\ncap = 10\n\n[digest]\nto = \"rosemary@bakery.example\"\nschedule = \"0 8 * * *\"\n\n[inbound]\npoll = \"1s\"\n\n[[inbound.imap]]\nname = \"shop mailbox\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{}\"\npassword_file = \"imap-password\"\ntimeout = \"10s\"\n{extra}\n",
        dovecot.port(),
        dovecot.user()
    )
}

fn note_to<'a>(received: &'a [Received], to: &str) -> &'a Received {
    received
        .iter()
        .find(|m| m.to == [to])
        .unwrap_or_else(|| panic!("no note to {to}"))
}

fn token(message_id: &str) -> String {
    message_id
        .trim_start_matches('<')
        .split('.')
        .next()
        .expect("token")
        .to_string()
}

/// A fixture bounce, about the note with `message_id` instead of the fixture's own.
fn bounce_fixture(name: &str, message_id: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let token = token(message_id);
    text.replace("5f2c8e1a9b3d4c7e8f0a1b2c3d4e5f60", &token)
        .replace("9d4b7a2e6c1f4e8a0b3d5c7e9f1a2b4c", &token)
        .into_bytes()
}

/// A customer's mail: `from`, answering `message_id` (if any), with `headers` and `body`.
fn mail(
    from: &str,
    to: &str,
    subject: &str,
    in_reply_to: Option<&str>,
    headers: &str,
    body: &str,
) -> Vec<u8> {
    let date = jiff::ZonedDateTime::now().strftime("%a, %d %b %Y %H:%M:%S %z");
    let reply = in_reply_to
        .map(|id| format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"))
        .unwrap_or_default();
    let id = fastrand_id();
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@mail.example>\r\n{reply}{headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn fastrand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        jiff::Timestamp::now().as_nanosecond()
    )
}

/// `text` with every run of whitespace one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rekindle_ok(f: &Fixture, args: &[&str]) -> (String, String) {
    let out = f.rekindle(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn bounces_replies_and_unsubscribes_come_back_and_change_what_goes_next() {
    let server = TestSmtpServer::start();
    let dovecot = Dovecot::start();
    let f = four_unhappy_customers();
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    let inbound = reading(&f, &dovecot, "move_to = \"rekindle\"");
    f.config(&transport, &format!("{inbound}{SORRY_RULE}"));

    // 1. The apologies go.
    rekindle_ok(&f, &["run", "--once"]);
    let sent = server.wait_for(4, Duration::from_secs(10));
    let id_of = |to: &str| note_to(&sent, to).message_id().expect("message id");
    let (ann, ben, cy) = (
        id_of("ann@example.com"),
        id_of("ben@example.com"),
        id_of("cy@example.com"),
    );

    // 2. What comes back, and the owner's own unread mail beside it.
    let owner = dovecot.append(
        "INBOX",
        &mail(
            "flour@mill.example",
            "rosemary@bakery.example",
            "Your flour order",
            None,
            "",
            "Delivery on Friday.",
        ),
        &[],
    );
    dovecot.append(
        "INBOX",
        &bounce_fixture("postfix-user-unknown.eml", &ann),
        &[],
    );
    dovecot.append(
        "INBOX",
        &mail("Ben Brook <ben@example.com>", "rosemary@bakery.example", "Re: sorry", Some(&ben), "", "Thank you for writing. Could I have a refund instead?\r\n\r\nOn Monday Rosemary wrote:\r\n> I'm sorry"),
        &[],
    );
    dovecot.append(
        "INBOX",
        &mail(
            "cy@example.com",
            "rosemary@bakery.example",
            "Out of office",
            Some(&cy),
            "Auto-Submitted: auto-replied\r\n",
            "I am away until Monday.",
        ),
        &[],
    );
    dovecot.append(
        "INBOX",
        &mail(
            "di@example.com",
            "unsubscribe@bakery.example",
            "unsubscribe",
            None,
            "",
            "",
        ),
        &[],
    );
    let forged = dovecot.append(
        "INBOX",
        &mail(
            "mallory@evil.example",
            "rosemary@bakery.example",
            "Re: sorry",
            Some(&cy),
            "",
            "Please stop writing to Cy.",
        ),
        &[],
    );

    // 3. The next run reads them first, then writes a winter card to whoever may have one.
    f.config(
        &transport,
        &format!("{inbound}{SORRY_RULE}{}", winter_rule()),
    );
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert_eq!(
        stderr.matches("inbound message handled").count(),
        4,
        "{stderr}"
    );
    assert!(stderr.contains("comes from another address"), "{stderr}");
    let sent = server.wait_for(4 + 2, Duration::from_secs(10));
    let later: Vec<&Received> = sent[4..].iter().collect();
    let to: Vec<&str> = later.iter().map(|m| m.to[0].as_str()).collect();
    // Cy's automatic reply holds nothing; Ann bounced, Di unsubscribed, Ben replied: waits.
    assert!(to.contains(&"cy@example.com"), "{to:?}");
    assert!(
        !to.iter()
            .any(|t| ["ann@example.com", "di@example.com", "ben@example.com"].contains(t)),
        "{to:?}"
    );
    // The digest names Ben's answer to his apology, with his words.
    let digest = later
        .iter()
        .find(|m| m.to == ["rosemary@bakery.example"])
        .expect("the digest");
    let body = digest.text_body();
    assert!(
        body.contains("Ben Brook") && body.contains("Could I have a refund instead?"),
        "{body}"
    );
    assert!(
        !body.contains("I'm sorry"),
        "the quoted note is not his words: {body}"
    );

    let (list, _) = rekindle_ok(&f, &["suppress", "list"]);
    assert!(
        list.contains("ann@example.com") && list.contains("hard bounce 5.1.1"),
        "{list}"
    );
    assert!(
        list.contains("di@example.com") && list.contains("asked by mail to unsubscribe"),
        "{list}"
    );
    assert!(!list.contains("cy@example.com"), "{list}");
    let (bounced, _) = rekindle_ok(&f, &["outbox", "list", "--state", "bounced"]);
    assert!(bounced.contains("ann@example.com"), "{bounced}");
    let (explain, _) = rekindle_ok(&f, &["explain", "--customer", "2"]);
    assert!(
        explain.contains("reply to note") && explain.contains("Could I have a refund"),
        "{explain}"
    );
    assert!(explain.contains("wait until"), "{explain}");
    let (queued, _) = rekindle_ok(&f, &["outbox", "list", "--state", "queued"]);
    assert!(
        queued.contains("ben@example.com"),
        "Ben's winter card waits: {queued}"
    );
    let status = words(&rekindle_ok(&f, &["status"]).0);
    for line in [
        "hard bounces 1 / 1",
        "spam complaints 0 / 0",
        "replies 1 / 1",
        "automatic replies 1 / 1",
        "unsubscribes by mail 1 / 1",
        "mailbox shop mailbox: last read",
    ] {
        assert!(status.contains(line), "{line:?} in\n{status}");
    }

    // The owner's mail and the forged reply are where they were, unread; what rekindle
    // handled moved, still unread.
    assert_eq!(dovecot.uids("INBOX"), vec![owner, forged]);
    assert!(
        dovecot.flags("INBOX", owner).is_empty(),
        "{:?}",
        dovecot.flags("INBOX", owner)
    );
    let moved = dovecot.uids("rekindle");
    assert_eq!(moved.len(), 4, "{moved:?}");
    for uid in moved {
        assert!(!dovecot.flags("rekindle", uid).iter().any(|f| f == "\\Seen"));
    }

    // 4. A run after that handles nothing twice, and the bounced address gets nothing.
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(!stderr.contains("inbound message handled"), "{stderr}");
    let again = words(&rekindle_ok(&f, &["status"]).0);
    assert!(
        again.contains("hard bounces 1 / 1") && again.contains("replies 1 / 1"),
        "{again}"
    );
}

/// One customer with a complaint, an apology due.
fn ann() -> Fixture {
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann Archer"), None, None);
    complains(&f);
    f
}

/// Ann's complaint (again).
fn complains(f: &Fixture) {
    f.interaction(
        1,
        &ago(0.01),
        "complaint",
        Some(-0.7),
        Some("The bread was stale."),
    );
}

/// The daemon on `f`, with Ann's complaint coming in once it has started.
fn daemon_after_a_complaint(f: &Fixture) -> support::daemon::Daemon {
    f.sql("DELETE FROM interactions");
    let mut daemon = support::daemon::Daemon::start(f);
    daemon.wait_for("rekindle started");
    complains(f);
    daemon
}

fn suppressions(f: &Fixture) -> String {
    rekindle_ok(f, &["suppress", "list"]).0
}

#[test]
fn the_daemon_hears_a_bounce_as_it_arrives_through_idle_not_at_the_next_poll() {
    let server = TestSmtpServer::start();
    let dovecot = Dovecot::start();
    let f = ann();
    let inbound = reading(&f, &dovecot, "").replace("poll = \"1s\"", "poll = \"1h\"");
    f.config(
        &smtp(server.port(), &["timeout = \"5s\""]),
        &format!("{inbound}{SORRY_ON_EVENT}"),
    );
    let mut daemon = daemon_after_a_complaint(&f);
    // Logged in and idling (the first read found nothing); the note goes; its bounce comes in.
    daemon.wait_for("waiting for new mail");
    let sent = server.wait_for(1, Duration::from_secs(10));
    let id = sent[0].message_id().expect("message id");
    dovecot.append("INBOX", &bounce_fixture("gmail-no-such-user.eml", &id), &[]);
    let line = daemon.wait_for("inbound message handled");
    assert!(
        line.contains("hard-bounce") && line.contains("note_id=1"),
        "{line}"
    );
    assert!(
        !line.contains("Address not found") && !line.contains("Subject"),
        "the log never holds the message: {line}"
    );
    assert!(suppressions(&f).contains("ann@example.com"));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn a_mailbox_that_is_down_is_reported_once_delivery_goes_on_and_it_is_read_when_back() {
    let server = TestSmtpServer::start();
    let mut dovecot = Dovecot::start();
    dovecot.stop();
    let f = ann();
    let inbound = reading(&f, &dovecot, "");
    f.config(
        &smtp(server.port(), &["timeout = \"5s\""]),
        &format!("{inbound}{SORRY_ON_EVENT}"),
    );
    let mut daemon = daemon_after_a_complaint(&f);
    // In either order: the note goes while the mailbox is down.
    for needle in ["note sent", "cannot read the mailbox"] {
        if !daemon.seen().iter().any(|l| l.contains(needle)) {
            daemon.wait_for(needle);
        }
    }
    let status = words(&rekindle_ok(&f, &["status"]).0);
    assert!(
        status.contains("mailbox shop mailbox: CANNOT BE READ since"),
        "{status}"
    );
    assert!(status.contains("cannot connect to 127.0.0.1"), "{status}");
    dovecot.restart();
    daemon.wait_for("the mailbox can be read again");
    let reported = daemon
        .seen()
        .iter()
        .filter(|l| l.contains("cannot read the mailbox"))
        .count();
    assert_eq!(reported, 1, "said once: {:?}", daemon.seen());
    let status = words(&rekindle_ok(&f, &["status"]).0);
    assert!(
        status.contains("mailbox shop mailbox: last read"),
        "{status}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn a_maildir_is_read_without_moving_renaming_or_reading_twice() {
    let server = TestSmtpServer::start();
    let f = ann();
    f.customer(2, "ben@example.com", Some("Ben Brook"), None, None)
        .interaction(2, &ago(1.0), "complaint", Some(-0.7), Some("Late again."));
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(f.path("bounces").join(sub)).expect("maildir");
    }
    let inbound = "[inbound]\n[[inbound.maildir]]\ndir = \"bounces\"\nname = \"bounces\"\n";
    f.config(
        &smtp(server.port(), &["timeout = \"5s\""]),
        &format!("{inbound}{SORRY_RULE}"),
    );
    rekindle_ok(&f, &["run", "--once"]);
    let sent = server.wait_for(2, Duration::from_secs(10));
    let id_of = |to: &str| note_to(&sent, to).message_id().expect("message id");
    let files = [
        (
            "new/1764662400.M1P1.mx",
            bounce_fixture("exim-plain.eml", &id_of("ann@example.com")),
        ),
        (
            "cur/1764662401.M2P2.mx:2,S",
            mail(
                "ben@example.com",
                "rosemary@bakery.example",
                "Re: sorry",
                Some(&id_of("ben@example.com")),
                "",
                "No harm done.",
            ),
        ),
        (
            "new/1764662402.M3P3.mx",
            mail(
                "flour@mill.example",
                "rosemary@bakery.example",
                "Invoice",
                None,
                "",
                "Attached.",
            ),
        ),
    ];
    for (name, raw) in &files {
        std::fs::write(f.path("bounces").join(name), raw).expect("write");
    }
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert_eq!(
        stderr.matches("inbound message handled").count(),
        2,
        "{stderr}"
    );
    assert!(suppressions(&f).contains("ann@example.com"));
    for (name, raw) in &files {
        let now = std::fs::read(f.path("bounces").join(name)).expect("still there, same name");
        assert_eq!(&now, raw);
    }
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(!stderr.contains("inbound message handled"), "{stderr}");
    assert!(
        !stderr.contains("left alone"),
        "not even read again: {stderr}"
    );
}

#[test]
fn a_mailbox_over_tls_is_read_with_its_private_ca_and_refused_with_another() {
    let server = TestSmtpServer::start();
    let ca = support::certs::Ca::new("shop CA");
    let (cert, key) = ca.server_pem(&["127.0.0.1"]);
    let dovecot = Dovecot::start_tls(&cert, &key);
    let f = ann();
    let tls_port = dovecot.tls_port().expect("imaps");
    let with_ca = |pem: &str| {
        std::fs::write(f.path("imap-ca.pem"), pem).expect("ca file");
        let inbound = reading(&f, &dovecot, "ca_file = \"imap-ca.pem\"")
            .replace("tls = \"none\"", "tls = \"implicit\"")
            .replace(
                &format!("port = {}", dovecot.port()),
                &format!("port = {tls_port}"),
            );
        f.config(
            &smtp(server.port(), &["timeout = \"5s\""]),
            &format!("{inbound}{SORRY_RULE}"),
        );
    };
    with_ca(support::certs::Ca::new("someone else").pem());
    let (stdout, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(
        stdout.contains("delivery: sent 1"),
        "delivery goes on: {stdout}"
    );
    assert!(stderr.contains("TLS with 127.0.0.1"), "{stderr}");
    let status = words(&rekindle_ok(&f, &["status"]).0);
    assert!(status.contains("CANNOT BE READ"), "{status}");
    with_ca(ca.pem());
    let id = server.wait_for(1, Duration::from_secs(10))[0]
        .message_id()
        .expect("id");
    dovecot.append("INBOX", &bounce_fixture("m365-not-found.eml", &id), &[]);
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(stderr.contains("inbound message handled"), "{stderr}");
    let status = words(&rekindle_ok(&f, &["status"]).0);
    assert!(
        status.contains("mailbox shop mailbox: last read") && status.contains("hard bounces 1 / 1"),
        "{status}"
    );
}

#[test]
fn a_folder_recreated_under_a_new_uidvalidity_is_read_again_and_counts_each_message_once() {
    let server = TestSmtpServer::start();
    let dovecot = Dovecot::start();
    let f = ann();
    let inbound = reading(&f, &dovecot, "");
    f.config(
        &smtp(server.port(), &["timeout = \"5s\""]),
        &format!("{inbound}{SORRY_RULE}"),
    );
    rekindle_ok(&f, &["run", "--once"]);
    let id = server.wait_for(1, Duration::from_secs(10))[0]
        .message_id()
        .expect("id");
    let bounce = bounce_fixture("postfix-user-unknown.eml", &id);
    dovecot.append("INBOX", &bounce, &[]);
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert_eq!(
        stderr.matches("inbound message handled").count(),
        1,
        "{stderr}"
    );
    let before = dovecot.uidvalidity("INBOX");
    dovecot.recreate("INBOX");
    assert_ne!(dovecot.uidvalidity("INBOX"), before);
    dovecot.append("INBOX", &bounce, &[]);
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(!stderr.contains("inbound message handled"), "{stderr}");
    let status = words(&rekindle_ok(&f, &["status"]).0);
    assert!(status.contains("hard bounces 1 / 1"), "{status}");
}

#[test]
fn an_address_refused_with_5_1_1_during_delivery_is_suppressed_at_once() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "refused@example.com", Some("Ray"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.7), Some("Cold coffee."));
    f.config(&smtp(server.port(), &["timeout = \"5s\""]), SORRY_RULE);
    let (stdout, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(stdout.contains("failed 1"), "{stdout}");
    assert!(
        stderr.contains("the server says the address does not exist"),
        "{stderr}"
    );
    let list = suppressions(&f);
    assert!(
        list.contains("refused@example.com")
            && list.contains("refused at delivery (note 1)")
            && list.contains("5.1.1"),
        "{list}"
    );
}

#[test]
fn check_says_what_an_inbound_source_lacks_on_this_machine() {
    let f = ann();
    let inbound = "[inbound]\n[[inbound.imap]]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"owner\"\npassword_file = \"imap-password\"\n[[inbound.maildir]]\ndir = \"nowhere\"\n";
    f.config(
        &support::config::maildir("maildir"),
        &format!("{inbound}{SORRY_RULE}"),
    );
    let out = f.rekindle(&["check"]);
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(78), "{all}");
    assert!(
        all.contains("cannot read the IMAP password file")
            && all.contains("imap-password of owner@127.0.0.1"),
        "{all}"
    );
    assert!(all.contains("has no new/ directory yet"), "{all}");
    std::fs::write(f.path("imap-password"), "secret\n").expect("password");
    let out = f.rekindle(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn a_bounce_written_by_a_real_postfix_comes_back_by_the_notes_own_return_path() {
    // Postfix takes the note, the customer's server refuses the address, Postfix writes the
    // bounce to the note's return path, bounces+<token>@bakery.example, into a maildir.
    let far = TestSmtpServer::start();
    let postfix = support::postfix::Postfix::start(far.port());
    let f = Fixture::new();
    f.customer(1, "refused@customer.example", Some("Ray Reed"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.7), Some("Cold coffee."));
    let inbound = format!(
        "[inbound]\n[[inbound.maildir]]\ndir = \"{}\"\nname = \"bounces\"\n",
        postfix.bounces().display()
    );
    let path = f.config(
        &smtp(postfix.port(), &["timeout = \"10s\""]),
        &format!("{inbound}{SORRY_RULE}"),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replace(
        "unsubscribe_mailto =",
        "return_path = \"bounces@bakery.example\"\nunsubscribe_mailto =",
    );
    std::fs::write(&path, text).expect("config");
    let (stdout, _) = rekindle_ok(&f, &["run", "--once"]);
    assert!(
        stdout.contains("delivery: sent 1"),
        "Postfix took it: {stdout}"
    );
    let bounce = postfix.wait_for_bounces(1).remove(0);
    assert!(
        bounce.contains("Undelivered Mail Returned to Sender"),
        "{bounce}"
    );
    let id = f.states_by_message_id()[0].0.clone();
    assert!(
        bounce.contains(&format!("To: bounces+{}@bakery.example", token(&id))),
        "{bounce}"
    );
    let (_, stderr) = rekindle_ok(&f, &["run", "--once"]);
    assert!(
        stderr.contains("inbound message handled") && stderr.contains("hard-bounce"),
        "{stderr}"
    );
    let list = suppressions(&f);
    assert!(
        list.contains("refused@customer.example") && list.contains("hard bounce 5.1.1"),
        "{list}"
    );
    assert_eq!(f.states_by_message_id()[0].1, "bounced");
}

#[test]
fn a_reload_follows_the_mailboxes_of_the_new_configuration() {
    let dovecot = Dovecot::start();
    let f = ann();
    f.config(&support::config::maildir("maildir"), SORRY_RULE);
    let mut daemon = support::daemon::Daemon::start(&f);
    daemon.wait_for("rekindle started");
    let inbound = reading(&f, &dovecot, "");
    f.config(
        &support::config::maildir("maildir"),
        &format!("{inbound}{SORRY_RULE}"),
    );
    daemon.signal("HUP");
    daemon.wait_for("configuration reloaded");
    let line = daemon.wait_for("waiting for new mail");
    assert!(
        line.contains("shop mailbox") && line.contains("IDLE"),
        "{line}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}
