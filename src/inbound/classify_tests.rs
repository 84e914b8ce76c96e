//! The classifier on real-looking messages (tests/fixtures/inbound) and on hostile ones.

use super::*;

/// The note every fixture is about.
const NOTE: &str = "<5f2c8e1a9b3d4c7e8f0a1b2c3d4e5f60.rekindle@bakery.example>";
/// The VERP token of the bounce address the fixtures' notes were sent from.
const TOKEN: &str = "9d4b7a2e6c1f4e8a0b3d5c7e9f1a2b4c";

/// A fixture's bytes, by name.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/inbound/", $name, ".eml")).as_slice()
    };
}

/// The bakery's mailbox, with an unsubscribe address and a VERP return path.
fn bakery() -> Mailbox<'static> {
    Mailbox {
        unsubscribe_address: Some("unsubscribe@bakery.example"),
        return_path: Some(("bounces", "bakery.example")),
        message_id_domain: "bakery.example",
    }
}

/// The bounce `raw` is, or a failed test.
fn bounce(raw: &[u8]) -> Bounce {
    match classify(raw, &bakery()) {
        Inbound::Bounce(bounce) => bounce,
        other => panic!("not a bounce: {other:?}"),
    }
}

/// The reply `raw` is, or a failed test.
fn reply(raw: &[u8]) -> Reply {
    match classify(raw, &bakery()) {
        Inbound::Reply(reply) => reply,
        other => panic!("not a reply: {other:?}"),
    }
}

/// Why `raw` is unrelated, or a failed test.
fn unrelated(raw: &[u8]) -> String {
    match classify(raw, &bakery()) {
        Inbound::Unrelated(why) => why,
        other => panic!("not unrelated: {other:?}"),
    }
}

/// Refs naming the note, with or without the token.
fn note_refs(token: bool) -> Refs {
    Refs {
        message_ids: vec![NOTE.to_owned()],
        token: token.then(|| TOKEN.to_owned()),
    }
}

/// `raw` with every `from` replaced by `to`.
fn replaced(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(raw).replace(from, to).into_bytes()
}

#[test]
fn postfix_user_unknown_is_a_hard_bounce() {
    let raw = fixture!("postfix-user-unknown");
    let b = bounce(raw);
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipient.as_deref(), Some("ann.baker@customer.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some(
            "550 5.1.1 <ann.baker@customer.example>: Recipient address rejected: User unknown in virtual mailbox table"
        )
    );
    assert_eq!(b.refs, note_refs(true));
    assert_eq!(b.reporter.as_deref(), Some("mail.bakery.example"));
    assert_eq!(classify(raw, &bakery()).kind(), "hard-bounce");
}

#[test]
fn postfix_mailbox_full_after_retries_is_soft() {
    let b = bounce(fixture!("postfix-mailbox-full-4xx"));
    assert_eq!(b.severity, Severity::Soft);
    assert_eq!(b.status.as_deref(), Some("4.2.2"));
    assert_eq!(
        b.recipient.as_deref(),
        Some("bob.fielding@customer.example")
    );
    assert_eq!(b.refs, note_refs(true));
}

#[test]
fn status_comes_from_the_diagnostic_when_missing() {
    let raw = replaced(fixture!("postfix-user-unknown"), "Status: 5.1.1\n", "");
    let b = bounce(&raw);
    assert_eq!(
        (b.severity, b.status.as_deref()),
        (Severity::Hard, Some("5.1.1"))
    );
    let basic_only = replaced(&raw, "smtp; 550 5.1.1 <ann", "smtp; 451 <ann");
    let b = bounce(&basic_only);
    assert_eq!((b.severity, b.status), (Severity::Soft, None));
}

#[test]
fn a_full_mailbox_is_soft_even_with_a_5() {
    let raw = replaced(
        fixture!("postfix-user-unknown"),
        "Status: 5.1.1",
        "Status: 5.2.2",
    );
    assert_eq!(bounce(&raw).severity, Severity::Soft);
    let raw = replaced(
        fixture!("postfix-user-unknown"),
        "User unknown in virtual",
        "Over quota in virtual",
    );
    assert_eq!(bounce(&raw).severity, Severity::Soft);
}

#[test]
fn original_envelope_id_names_the_note() {
    let with = |envid: &str| {
        let line =
            format!("Reporting-MTA: dns; mail.bakery.example\nOriginal-Envelope-Id: {envid}");
        bounce(&replaced(
            fixture!("dsn-unknown-id"),
            "Reporting-MTA: dns; mail.bakery.example",
            &line,
        ))
        .refs
    };
    assert_eq!(
        with(&TOKEN.to_uppercase()),
        Refs {
            message_ids: vec![],
            token: Some(TOKEN.to_owned())
        }
    );
    assert_eq!(with(NOTE), note_refs(false));
    assert!(with("4ZBXq23bLmz9sZp").is_empty());
}

#[test]
fn postfix_delay_warning_is_no_bounce() {
    assert_eq!(
        unrelated(fixture!("postfix-delayed")),
        "a delay notice, not a bounce"
    );
}

#[test]
fn exim_plain_text_bounce() {
    let b = bounce(fixture!("exim-plain"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipient.as_deref(), Some("carol.d@customer-two.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some("550 5.1.1 <carol.d@customer-two.example>: Recipient address rejected: User unknown")
    );
    assert_eq!(b.refs, note_refs(true));
    assert_eq!(
        b.reporter.as_deref(),
        Some("mailer-daemon@mx.isp-relay.example")
    );
}

#[test]
fn exim_report_form() {
    let b = bounce(fixture!("exim-dsn"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.0.0"));
    assert_eq!(b.recipient.as_deref(), Some("dave@customer-three.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some("550 5.2.1 The email account that you tried to reach is disabled")
    );
    assert_eq!(b.refs, note_refs(true));
    assert_eq!(b.reporter.as_deref(), Some("mx.isp-relay.example"));
}

#[test]
fn qmail_bounce() {
    let b = bounce(fixture!("qmail"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipient.as_deref(), Some("erin@oldhost.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some("Sorry, no mailbox here by that name. (#5.1.1)")
    );
    assert_eq!(b.refs, note_refs(true));
}

#[test]
fn microsoft_365_recipient_not_found() {
    let b = bounce(fixture!("m365-not-found"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.10"));
    assert_eq!(b.recipient.as_deref(), Some("frank@customerco.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some(
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
        )
    );
    assert_eq!(b.refs, note_refs(true));
    assert_eq!(
        b.reporter.as_deref(),
        Some("AM9PR01MB1234.eurprd01.prod.exchangelabs.com")
    );
}

#[test]
fn gmail_no_such_user() {
    let b = bounce(fixture!("gmail-no-such-user"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipient.as_deref(), Some("grace.h@customer.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some(
            "550-5.1.1 The email account that you tried to reach does not exist. Please try \
             double-checking the recipient's email address for typos or unnecessary spaces. For \
             more information, go to https://support.google.com/mail/?p=NoSuchUser \
             a640c23a62f3a-ac1f2e3d4c5si1234567ejc.412 - gsmtp"
        )
    );
    assert_eq!(b.refs, note_refs(false));
    assert_eq!(b.reporter.as_deref(), Some("googlemail.com"));
}

#[test]
fn gmail_domain_gone() {
    let b = bounce(fixture!("gmail-domain-gone"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.2"));
    assert_eq!(b.recipient.as_deref(), Some("henry@old-shop.example"));
    let diagnostic = b.diagnostic.unwrap_or_default();
    assert!(diagnostic.starts_with("DNS Error: DNS type 'mx' lookup of old-shop.example responded with code NXDOMAIN Domain name not found"), "{diagnostic}");
    // The returned headers are base64-encoded text/rfc822-headers.
    assert_eq!(b.refs, note_refs(false));
}

#[test]
fn gmail_names_the_original_even_without_its_headers() {
    let raw = fixture!("gmail-domain-gone");
    let text = String::from_utf8_lossy(raw);
    let cut = text
        .find("Content-Type: text/rfc822-headers")
        .unwrap_or(text.len());
    let truncated = format!("{}\n--0000000000009c3d4a1--\n", &text[..cut]);
    assert_eq!(bounce(truncated.as_bytes()).refs, note_refs(false));
}

#[test]
fn verp_address_alone_names_the_note() {
    let b = bounce(fixture!("verp-only"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipient.as_deref(), Some("isla.quinn@isp-mail.example"));
    assert_eq!(
        b.refs,
        Refs {
            message_ids: vec![],
            token: Some(TOKEN.to_owned())
        }
    );
}

#[test]
fn bounce_for_a_message_rekindle_never_sent_has_empty_refs() {
    let b = bounce(fixture!("dsn-unknown-id"));
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.4.4"));
    assert_eq!(b.recipient.as_deref(), Some("orders@nowhere-cafe.example"));
    assert!(b.refs.is_empty(), "{:?}", b.refs);
    assert!(
        b.diagnostic
            .is_some_and(|d| d.starts_with("Host or domain name not found."))
    );
}

#[test]
fn feedback_loop_report_is_a_complaint() {
    let raw = fixture!("arf-abuse");
    let Inbound::Complaint(c) = classify(raw, &bakery()) else {
        panic!("not a complaint");
    };
    assert_eq!(c.recipient.as_deref(), Some("kate.b@isp-mail.example"));
    assert_eq!(c.feedback_type, "abuse");
    assert_eq!(c.refs, note_refs(true));
    assert_eq!(classify(raw, &bakery()).kind(), "complaint");
}

#[test]
fn complaint_without_original_rcpt_to_names_the_original_recipient() {
    let raw = replaced(
        fixture!("arf-abuse"),
        "Original-Rcpt-To: <kate.b@isp-mail.example>\n",
        "",
    );
    let Inbound::Complaint(c) = classify(&raw, &bakery()) else {
        panic!("not a complaint");
    };
    assert_eq!(c.recipient.as_deref(), Some("kate.b@isp-mail.example"));
}

#[test]
fn broken_mime_is_unrelated() {
    assert_eq!(
        unrelated(fixture!("broken-mime")),
        "names no note rekindle sent"
    );
}

#[test]
fn without_a_return_path_there_is_no_token() {
    let mailbox = Mailbox {
        return_path: None,
        ..bakery()
    };
    let Inbound::Bounce(b) = classify(fixture!("postfix-user-unknown"), &mailbox) else {
        panic!("not a bounce");
    };
    assert_eq!(b.refs, note_refs(false));
}

#[test]
fn ids_of_another_domain_are_not_rekindle_ids() {
    let mailbox = Mailbox {
        message_id_domain: "other.example",
        ..bakery()
    };
    let Inbound::Bounce(b) = classify(fixture!("postfix-user-unknown"), &mailbox) else {
        panic!("not a bounce");
    };
    assert!(b.refs.message_ids.is_empty());
    let upper = replaced(
        fixture!("reply-plain"),
        "rekindle@bakery.example",
        "rekindle@BAKERY.Example",
    );
    assert_eq!(reply(&upper).refs, note_refs(false));
}

#[test]
fn generic_mail_system_failure_notice() {
    let raw = format!(
        "From: postmaster@mx.far-away.example\nTo: hello@bakery.example\nSubject: Returned mail: see transcript for details\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         The original message was received from mail.bakery.example.\n\n   ----- The following addresses had permanent fatal errors -----\n\
         <zoe@far-away.example>\n    (reason: 550 5.7.1 Mailbox disabled for policy reasons)\n\n\
         --b\nContent-Type: message/rfc822\n\nMessage-ID: {NOTE}\nTo: zoe@far-away.example\n\nhello\n--b--\n"
    );
    let b = bounce(raw.as_bytes());
    assert_eq!(b.severity, Severity::Hard);
    assert_eq!(b.status.as_deref(), Some("5.7.1"));
    assert_eq!(b.recipient.as_deref(), Some("zoe@far-away.example"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some("550 5.7.1 Mailbox disabled for policy reasons)")
    );
    assert_eq!(b.refs, note_refs(false));
}

#[test]
fn mail_system_notice_without_failure_is_no_bounce() {
    let raw =
        "From: MAILER-DAEMON@mx.example\nSubject: Message delivery delayed\n\nStill trying.\n";
    assert_eq!(
        unrelated(raw.as_bytes()),
        "a mail system's notice that is no bounce and names no note"
    );
    let exim_warning = "From: Mailer-Daemon@mx.example\nSubject: Warning: message 1tpQ delayed 24 hours\n\n\
         This message was created automatically by mail delivery software.\n\
         A message that you sent has not yet been delivered to one or more of its recipients after more than 24 hours on the queue.\n";
    assert_eq!(
        unrelated(exim_warning.as_bytes()),
        "a delay notice, not a bounce"
    );
}

#[test]
fn kinds_name_every_verdict() {
    let refs = Refs::default();
    let b = |severity| {
        Inbound::Bounce(Bounce {
            severity,
            status: None,
            recipient: None,
            diagnostic: None,
            refs: refs.clone(),
            reporter: None,
        })
    };
    assert_eq!(b(Severity::Hard).kind(), "hard-bounce");
    assert_eq!(b(Severity::Soft).kind(), "soft-bounce");
    assert_eq!(Inbound::Unrelated(String::new()).kind(), "unrelated");
}

#[path = "classify_reply_tests.rs"]
mod replies;

#[path = "classify_hostile_tests.rs"]
mod hostile;
