//! One inbound message, classified, turned into what it changes: a bounced note and a
//! suppressed address, a complaint's suppression, a reply recorded, a mailed unsubscribe.
//! Whatever a message claims is checked against the outbox first (a bounce must name a note
//! rekindle sent; a reply must come from the address the note went to); what does not hold
//! is logged and left alone.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::classify::{Bounce, Inbound, Mailbox, Refs, Reply, Severity, classify};
use crate::compose::note_token;
use crate::config::Config;
use crate::outbox::inbound::{Effects, NoteRef, Position, Record};
use crate::outbox::{Outbox, OutboxError};

/// What became of one message, for the caller's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Recorded, with its kind.
    Recorded(&'static str),
    /// Recorded before (read again): nothing changed.
    Again,
    /// Not rekindle's business, or not believable: left alone.
    LeftAlone,
}

/// Where a message was read, for the log and the mark.
pub(crate) struct Origin<'a> {
    /// The mailbox's name.
    pub source: &'a str,
    /// Where in it.
    pub position: Position,
}

/// Classifies `raw` and records what it changes, with `origin`'s position, in one
/// transaction. `headers_only` says `raw` is only the headers of a message too large to read.
pub(crate) fn handle(
    raw: &[u8],
    headers_only: bool,
    origin: &Origin<'_>,
    outbox: &Outbox,
    config: &Config,
    now: Timestamp,
) -> Result<Handled, OutboxError> {
    let key = message_key(raw);
    if outbox.inbound_seen(&key)? {
        outbox.record_inbound(
            origin.source,
            &origin.position,
            None,
            &Effects::default(),
            now,
        )?;
        return Ok(Handled::Again);
    }
    let sender = &config.sender;
    let unsubscribe = sender
        .unsubscribe_mailto
        .as_ref()
        .map(|a| a.to_string().to_lowercase());
    let return_path = sender
        .return_path
        .as_ref()
        .map(|a| (a.user().to_lowercase(), a.domain().to_lowercase()));
    let domain = sender.email.domain().to_lowercase();
    let mailbox = Mailbox {
        unsubscribe_address: unsubscribe.as_deref(),
        return_path: return_path.as_ref().map(|(l, d)| (l.as_str(), d.as_str())),
        message_id_domain: &domain,
    };
    let verdict = classify(raw, &mailbox);
    let kind = verdict.kind();
    let decided = match verdict {
        Inbound::Bounce(b) => bounce(b, outbox, config, now)?,
        Inbound::Complaint(c) => match find_note(&c.refs, outbox)? {
            Some(note) if was_sent(&note) => Ok(complaint(note, c.feedback_type, now)),
            Some(note) => Err(format!(
                "a complaint names note {}, which was never sent",
                note.id
            )),
            None => Err("a complaint names no note rekindle sent".to_string()),
        },
        Inbound::Reply(r) => reply(r, kind, headers_only, outbox, now)?,
        Inbound::Unsubscribe(u) => Ok(unsubscribed(u.from, u.date, outbox, now)?),
        Inbound::Unrelated(why) => Err(why),
    };
    let (record, effects) = match decided {
        Ok(decided) => decided,
        Err(why) => {
            info!(source = origin.source, kind, reason = %why, "inbound message left alone");
            outbox.record_inbound(
                origin.source,
                &origin.position,
                None,
                &Effects::default(),
                now,
            )?;
            return Ok(Handled::LeftAlone);
        }
    };
    let record = Record { key, ..record };
    if !outbox.record_inbound(
        origin.source,
        &origin.position,
        Some(&record),
        &effects,
        now,
    )? {
        return Ok(Handled::Again);
    }
    log_handled(origin.source, &record, &effects);
    Ok(Handled::Recorded(record.kind))
}

/// One line per handled message: what it was, which note, what was done (never its body).
fn log_handled(source: &str, record: &Record, effects: &Effects) {
    let note_id = record.note.as_ref().map(|n| n.id);
    let customer_id = record
        .note
        .as_ref()
        .map(|n| n.customer_id.as_str())
        .or(record.customer_id.as_deref());
    let done = if effects.suppress.is_empty() {
        "recorded".to_string()
    } else {
        format!("suppressed: {}", effects.reason)
    };
    info!(source, kind = record.kind, note_id, customer_id, status = record.status.as_deref(), action = %done, "inbound message handled");
}

/// A message's key: its Message-ID, else a hash of its bytes (the same message read twice,
/// from two folders or after a folder was recreated, is one message).
fn message_key(raw: &[u8]) -> String {
    // As in `classify`: the parser's assertions on malformed input never reach the caller.
    let id = std::panic::catch_unwind(|| {
        let parsed = mail_parser::MessageParser::new().parse_headers(raw);
        parsed.and_then(|m| m.message_id().map(str::to_string))
    });
    match id.ok().flatten() {
        Some(id) if !id.is_empty() && id.len() <= 250 => format!("id:{id}"),
        _ => {
            format!("sha256:{}", hex::encode(Sha256::digest(raw)))
        }
    }
}

/// The note a message's references name: by the return path's token first (rekindle made it),
/// then by each Message-ID it quotes.
fn find_note(refs: &Refs, outbox: &Outbox) -> Result<Option<NoteRef>, OutboxError> {
    if refs.is_empty() {
        return Ok(None);
    }
    let tokens = refs
        .token
        .as_deref()
        .into_iter()
        .chain(refs.message_ids.iter().filter_map(|id| note_token(id)));
    for token in tokens {
        if let Some(note) = outbox.note_by_token(&token.to_ascii_lowercase())? {
            return Ok(Some(note));
        }
    }
    Ok(None)
}

/// Whether the note left rekindle (a bounce or a reply to a note never sent is forged or
/// mistaken).
fn was_sent(note: &NoteRef) -> bool {
    use crate::note::NoteState::{Bounced, Sent, Unknown};
    matches!(note.state, Sent | Bounced | Unknown)
}

/// A message's own date within reason (not in the future, not before a month ago), else `now`.
fn dated(date: Option<i64>, now: Timestamp) -> i64 {
    let now = now.as_second();
    date.filter(|d| (now - 30 * 86_400..=now).contains(d))
        .unwrap_or(now)
}

type Decided = Result<(Record, Effects), String>;

/// A bounce: hard ones bounce the note and suppress its address; soft ones suppress it only
/// past `inbound.soft_bounce_limit` within `inbound.soft_bounce_window`.
fn bounce(
    b: Bounce,
    outbox: &Outbox,
    config: &Config,
    now: Timestamp,
) -> Result<Decided, OutboxError> {
    let Some(note) = find_note(&b.refs, outbox)? else {
        return Ok(Err(format!(
            "a bounce{} names no note rekindle sent",
            b.recipient
                .as_deref()
                .map(|r| format!(" for {r}"))
                .unwrap_or_default()
        )));
    };
    if !was_sent(&note) {
        return Ok(Err(format!(
            "a bounce names note {}, which was never sent",
            note.id
        )));
    }
    let status = b.status.clone().unwrap_or_else(|| "no status".into());
    let text = b.diagnostic.clone().unwrap_or_default();
    let address = note.recipient.clone();
    let mut effects = Effects::default();
    let kind = match b.severity {
        Severity::Hard => {
            effects.bounce_note = true;
            effects.suppress = vec![address.clone()];
            effects.reason = format!("hard bounce {status} (note {}): {text}", note.id);
            "hard-bounce"
        }
        Severity::Soft => {
            let inbound = &config.inbound;
            let since = (now - inbound.soft_bounce_window).as_second();
            let count = outbox.soft_bounces(&address, since)? + 1;
            if count >= inbound.soft_bounce_limit {
                effects.suppress = vec![address.clone()];
                effects.reason = format!(
                    "{count} soft bounces within {}, the last {status} (note {}): {text}",
                    crate::config::format_duration(inbound.soft_bounce_window),
                    note.id
                );
            }
            "soft-bounce"
        }
    };
    let record = Record {
        kind,
        dated: now.as_second(),
        address: Some(address),
        status: b.status,
        detail: b.diagnostic,
        note: Some(note),
        ..Record::default()
    };
    Ok(Ok((record, effects)))
}

/// A mailed unsubscribe request: its sender's address and every customer rekindle wrote to
/// there are suppressed; no reply is sent.
fn unsubscribed(
    from: String,
    date: Option<i64>,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<(Record, Effects), OutboxError> {
    let customers = outbox.customers_at(&from)?;
    let dated = dated(date, now);
    let effects = Effects {
        reason: format!(
            "asked by mail to unsubscribe ({})",
            Timestamp::from_second(dated).unwrap_or(now)
        ),
        suppress: customers.iter().cloned().chain([from.clone()]).collect(),
        ..Effects::default()
    };
    let record = Record {
        kind: "unsubscribe",
        dated,
        address: Some(from),
        customer_id: customers.into_iter().next(),
        ..Record::default()
    };
    Ok((record, effects))
}

/// A spam complaint (ARF): the address is suppressed at once.
fn complaint(note: NoteRef, feedback_type: String, now: Timestamp) -> (Record, Effects) {
    let effects = Effects {
        suppress: vec![note.recipient.clone()],
        reason: format!("a spam complaint ({feedback_type}) about note {}", note.id),
        ..Effects::default()
    };
    let record = Record {
        kind: "complaint",
        dated: now.as_second(),
        address: Some(note.recipient.clone()),
        detail: Some(feedback_type),
        note: Some(note),
        ..Record::default()
    };
    (record, effects)
}

/// A reply: recorded (a touch point, shown by `explain` and the digest) when it comes from the
/// address the note went to.
fn reply(
    r: Reply,
    kind: &'static str,
    headers_only: bool,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<Decided, OutboxError> {
    let Some(note) = find_note(&r.refs, outbox)? else {
        return Ok(Err("a reply in a thread rekindle did not start".to_string()));
    };
    if !was_sent(&note) {
        return Ok(Err(format!(
            "a reply names note {}, which was never sent",
            note.id
        )));
    }
    if !note.recipient.eq_ignore_ascii_case(&r.from) {
        warn!(note_id = note.id, customer_id = %note.customer_id, "a reply names a note sent to another address: left alone, the customer's record unchanged");
        return Ok(Err(format!(
            "a reply names note {} of customer {} but comes from another address",
            note.id, note.customer_id
        )));
    }
    let excerpt = if headers_only && r.excerpt.is_empty() {
        "(too large to read: see the mailbox)".to_string()
    } else {
        r.excerpt
    };
    let record = Record {
        kind,
        dated: dated(r.date, now),
        address: Some(r.from),
        detail: Some(excerpt),
        note: Some(note),
        ..Record::default()
    };
    Ok(Ok((record, Effects::default())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::Letter;
    use crate::note::NoteState;
    use crate::outbox::NewNote;
    use crate::test_config;

    const TOKEN: &str = "5f2c8e1a9b3d4c7e8f0a1b2c3d4e5f60";

    fn config(inbound: &str) -> Config {
        let text = test_config::config(
            &test_config::SCRATCH,
            &test_config::maildir("m"),
            None,
            inbound,
        );
        let (config, d) = Config::parse(std::path::Path::new("c.toml"), text);
        assert!(!d.iter().any(|d| d.is_error()), "{d:?}");
        config.expect("config")
    }

    /// A state database with one note to ann@example.com, in `state`.
    fn outbox(dir: &tempfile::TempDir, state: NoteState) -> Outbox {
        let outbox = Outbox::open(&dir.path().join("state.sqlite")).expect("open");
        let note = NewNote {
            rule: "sorry".into(),
            customer_id: "7".into(),
            occasion: "interaction-1".into(),
            priority: 0,
            due_at: now(),
            timezone: "UTC".into(),
            letter: Letter {
                recipient: "ann@example.com".into(),
                display_name: None,
                subject: "Sorry".into(),
                body_text: "Hi".into(),
                body_html: None,
                message_id: format!("<{TOKEN}.rekindle@bakery.example>"),
            },
        };
        let id = outbox.enqueue(&note, now()).expect("enqueue").expect("new");
        outbox.flush().expect("flush");
        outbox
            .transition(id, state, now(), None, None)
            .expect("state");
        outbox
    }

    fn now() -> Timestamp {
        "2026-12-02T09:00:00Z".parse().expect("time")
    }

    /// The fixture `name`, about the note above, as message number `n` (its own Message-Id).
    fn fixture(name: &str, n: u32) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound")
            .join(name);
        let text = std::fs::read_to_string(path).expect("fixture");
        text.replace("9d4b7a2e6c1f4e8a0b3d5c7e9f1a2b4c", TOKEN)
            .replacen("Message-Id: <", &format!("Message-Id: <{n}."), 1)
            .into_bytes()
    }

    fn read(raw: &[u8], outbox: &Outbox, config: &Config, uid: u32) -> Handled {
        let origin = Origin {
            source: "test",
            position: Position::Imap {
                folder: "INBOX".into(),
                uidvalidity: 1,
                uid,
            },
        };
        handle(raw, false, &origin, outbox, config, now()).expect("handle")
    }

    fn suppressed(outbox: &Outbox) -> Vec<String> {
        let list = outbox.suppressions().expect("list");
        list.into_iter()
            .map(|(key, reason, _)| format!("{key}: {reason}"))
            .collect()
    }

    #[test]
    fn soft_bounces_suppress_only_past_the_limit_and_a_message_counts_once() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = outbox(&dir, NoteState::Sent);
        let config = config("[inbound]\nsoft_bounce_limit = 2\n");
        let first = fixture("postfix-mailbox-full-4xx.eml", 1);
        assert_eq!(
            read(&first, &outbox, &config, 1),
            Handled::Recorded("soft-bounce")
        );
        assert!(suppressed(&outbox).is_empty());
        // The same message again (another folder, a recreated one) changes nothing.
        assert_eq!(read(&first, &outbox, &config, 2), Handled::Again);
        assert!(suppressed(&outbox).is_empty());
        let second = fixture("postfix-mailbox-full-4xx.eml", 2);
        assert_eq!(
            read(&second, &outbox, &config, 3),
            Handled::Recorded("soft-bounce")
        );
        let list = suppressed(&outbox);
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(
            list[0].starts_with(
                "ann@example.com: 2 soft bounces within 30 days, the last 4.2.2 (note 1)"
            ),
            "{list:?}"
        );
        assert_eq!(
            outbox.imap_mark("test", "INBOX").expect("mark"),
            Some((1, 3))
        );
    }

    #[test]
    fn a_hard_bounce_for_a_note_never_sent_or_never_made_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let config = config("");
        let queued = outbox(&dir, NoteState::Queued);
        let bounce = fixture("postfix-user-unknown.eml", 1);
        assert_eq!(read(&bounce, &queued, &config, 1), Handled::LeftAlone);
        let unknown = fixture("dsn-unknown-id.eml", 2);
        assert_eq!(read(&unknown, &queued, &config, 2), Handled::LeftAlone);
        assert!(suppressed(&queued).is_empty());
        assert_eq!(queued.counts().expect("counts"), [(NoteState::Queued, 1)]);
        // Read past all the same: the next read starts after them.
        assert_eq!(
            queued.imap_mark("test", "INBOX").expect("mark"),
            Some((1, 2))
        );
    }

    #[test]
    fn a_reply_counts_only_from_the_address_the_note_went_to() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = outbox(&dir, NoteState::Sent);
        let config = config("");
        let reply = |from: &str, id: &str| {
            format!(
                "From: {from}\r\nTo: rosemary@bakery.example\r\nSubject: Re: Sorry\r\nMessage-ID: <{id}@mail.example>\r\nIn-Reply-To: <{TOKEN}.rekindle@bakery.example>\r\n\r\nThat is kind, thank you.\r\n"
            )
            .into_bytes()
        };
        let forged = reply("Mallory <mallory@evil.example>", "f");
        assert_eq!(read(&forged, &outbox, &config, 1), Handled::LeftAlone);
        assert!(outbox.replies(None, 0).expect("replies").is_empty());
        let real = reply("Ann <ANN@example.com>", "r");
        assert_eq!(read(&real, &outbox, &config, 2), Handled::Recorded("reply"));
        let replies = outbox.replies(Some("7"), 0).expect("replies");
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].excerpt, "That is kind, thank you.");
        assert_eq!(replies[0].rule.as_deref(), Some("sorry"));
        assert!(!replies[0].automatic);
        assert!(suppressed(&outbox).is_empty(), "a reply suppresses nothing");
    }
}
