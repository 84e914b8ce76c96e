//! Replies, automatic replies and unsubscribe requests, from the fixtures and variations.

use super::*;

#[test]
fn vacation_reply_is_an_automatic_reply() {
    let raw = fixture!("vacation-reply");
    let r = reply(raw);
    assert!(r.automatic);
    assert_eq!(r.from, "ivy.chen@customer.example");
    assert_eq!(r.date, Some(1_740_992_430));
    assert_eq!(r.refs, note_refs(false));
    assert_eq!(
        r.excerpt,
        "Hello, I’m away until 17 March with little access to email. For anything urgent, please call the studio on 01632 960123. Ivy"
    );
    assert_eq!(
        r.message_id.as_deref(),
        Some("<vacation.1740992430.5521@customer.example>")
    );
    assert_eq!(classify(raw, &bakery()).kind(), "auto-reply");
}

#[test]
fn vacation_reply_naming_no_note_is_unrelated() {
    let raw = replaced(
        fixture!("vacation-reply"),
        NOTE,
        "<elsewhere@customer.example>",
    );
    assert_eq!(unrelated(&raw), "an automatic reply that names no note");
}

#[test]
fn outlook_automatic_reply_without_auto_submitted() {
    let r = reply(fixture!("outlook-auto-reply"));
    assert!(r.automatic);
    assert_eq!(r.from, "jack.moore@contoso-mail.example");
    assert_eq!(r.refs, note_refs(false));
    assert_eq!(
        r.excerpt,
        "Thank you for your email. I am out of the office until Monday 10 March and will reply on my return. Kind regards, Jack Moore"
    );
}

#[test]
fn vacation_reply_from_a_mailer_daemon_is_no_bounce() {
    let r = reply(fixture!("vacation-from-mailer-daemon"));
    assert!(r.automatic);
    assert_eq!(r.from, "mailer-daemon@gw.customer-four.example");
    assert_eq!(r.refs, note_refs(false));
    assert!(
        r.excerpt
            .starts_with("I am out of the office until 14 March.")
    );
}

#[test]
fn plain_reply_keeps_the_new_words_only() {
    let raw = fixture!("reply-plain");
    let r = reply(raw);
    assert!(!r.automatic);
    assert_eq!(r.from, "ann.baker@customer.example");
    assert_eq!(r.date, Some(1_741_001_696));
    assert_eq!(r.refs, note_refs(false));
    assert_eq!(
        r.excerpt,
        "What a lovely surprise, thank you! The sourdough was the best we've had all year. We'll be in on Saturday for the cinnamon buns."
    );
    assert_eq!(
        r.message_id.as_deref(),
        Some("<CAF3kWm9Qx7yZp=Lr0uN2b4v6Xc8-dT1e5sQ@mail.customer.example>")
    );
    assert_eq!(classify(raw, &bakery()).kind(), "reply");
}

#[test]
fn html_only_outlook_reply() {
    let r = reply(fixture!("reply-html-outlook"));
    assert!(!r.automatic);
    assert_eq!(r.from, "liam.oconnor@contoso-mail.example");
    assert_eq!(r.date, Some(1_741_076_130));
    assert_eq!(
        r.excerpt,
        "Hi Rosemary, Thanks for the kind note & the voucher – we'll use it for Tom’s birthday cake next week. Liam"
    );
}

#[test]
fn french_quoted_printable_reply() {
    let r = reply(fixture!("reply-french"));
    assert!(!r.automatic);
    assert_eq!(r.from, "mathilde.lefevre@client.example");
    assert_eq!(r.date, Some(1_741_195_330));
    assert_eq!(
        r.excerpt,
        "Merci beaucoup pour ce petit mot, c'est très gentil ! Les croissants étaient délicieux, comme toujours. À samedi ! Mathilde"
    );
}

#[test]
fn reply_in_another_thread_is_unrelated() {
    assert_eq!(
        unrelated(fixture!("reply-unrelated-thread")),
        "names no note rekindle sent"
    );
}

#[test]
fn mail_to_the_unsubscribe_address() {
    let raw = fixture!("unsubscribe-mailto");
    let expected = Unsubscribe {
        from: "olivia.park@customer.example".into(),
        date: Some(1_741_291_262),
    };
    assert_eq!(classify(raw, &bakery()), Inbound::Unsubscribe(expected));
    assert_eq!(classify(raw, &bakery()).kind(), "unsubscribe");
    let no_address = Mailbox {
        unsubscribe_address: None,
        ..bakery()
    };
    assert_eq!(classify(raw, &no_address).kind(), "unrelated");
}

#[test]
fn subject_unsubscribe() {
    let expected = Unsubscribe {
        from: "peter.quinn@customer.example".into(),
        date: Some(1_741_333_500),
    };
    assert_eq!(
        classify(fixture!("unsubscribe-subject"), &bakery()),
        Inbound::Unsubscribe(expected)
    );
    let no_from = replaced(
        fixture!("unsubscribe-subject"),
        "From: \"Peter Quinn\" <PETER.QUINN@Customer.Example>\n",
        "",
    );
    assert_eq!(
        unrelated(&no_from),
        "an unsubscribe request with no From address"
    );
}

#[test]
fn reports_and_automatic_replies_to_the_unsubscribe_address_are_no_unsubscribe() {
    let dsn = replaced(
        fixture!("postfix-user-unknown"),
        "To: bounces+",
        "To: unsubscribe@bakery.example, bounces+",
    );
    assert_eq!(classify(&dsn, &bakery()).kind(), "hard-bounce");
    let delay = replaced(
        fixture!("postfix-delayed"),
        "To: bounces+",
        "To: unsubscribe@bakery.example, bounces+",
    );
    assert_eq!(classify(&delay, &bakery()).kind(), "unrelated");
    let vacation = replaced(
        fixture!("vacation-reply"),
        "To: Rosemary's Bakery <hello@bakery.example>",
        "To: unsubscribe@bakery.example",
    );
    assert_eq!(classify(&vacation, &bakery()).kind(), "auto-reply");
    let vacation = replaced(&vacation, NOTE, "<x@y.example>");
    assert_eq!(
        unrelated(&vacation),
        "an automatic reply that names no note"
    );
}

#[test]
fn a_person_writing_undeliverable_is_no_bounce() {
    let r = reply(fixture!("human-says-undeliverable"));
    assert!(!r.automatic);
    assert_eq!(r.from, "rachel.green@customer.example");
    assert_eq!(
        r.excerpt,
        "Thank you for the note! By the way, the courier said your parcel was undeliverable on Tuesday: delivery failed because nobody was home (error 550, apparently). Could you send it again? Rachel"
    );
}

#[test]
fn bulk_mail_naming_a_note_is_not_a_person() {
    let raw = format!(
        "From: tickets@helpdesk.example\nPrecedence: bulk\nIn-Reply-To: {NOTE}\n\nWe received your request #4411.\n"
    );
    assert!(reply(raw.as_bytes()).automatic);
    assert_eq!(
        unrelated(b"From: news@shop.example\nPrecedence: list\n\nSale!\n"),
        "bulk or list mail that names no note"
    );
}

#[test]
fn excerpts_are_clean_and_short() {
    let words = "lovely ".repeat(100);
    let raw = format!(
        "From: a@customer.example\nIn-Reply-To: {NOTE}\n\nHi\u{202E}there\u{1b}[2J \u{2066}x\u{2069}\t{words}\n"
    );
    let r = reply(raw.as_bytes());
    assert!(
        r.excerpt.starts_with("Hithere[2J x lovely"),
        "{}",
        r.excerpt
    );
    assert!(r.excerpt.ends_with("lovely…"));
    assert!(r.excerpt.chars().count() <= 280);
}
