//! The daily staff digest (seed 003: follow up with a handwritten note): one email to the staff
//! listing the customers who deserve a card today (a complaint resolved, a long-time customer's
//! anniversary, a departure), with suggested wording. It goes through the outbox like any note,
//! keyed by its date, so it is sent once a day at most.

use std::ops::ControlFlow;

use jiff::{SignedDuration, Timestamp};
use tracing::info;

use crate::compose::{DigestContext, Letter, Templates, message_id};
use crate::config::{Config, Digest, Rule, RuleKind};
use crate::decide::Lookback;
use crate::evaluate::EvaluateError;
use crate::log::{CustomerRow, InteractionRow, Log};
use crate::outbox::{NewNote, Outbox};
use crate::select;

/// The digest's "rule" in the outbox.
use crate::config::DIGEST_RULE as RULE;

/// One customer on the digest: why (a resolution, a departure, an anniversary), who, and the
/// interaction behind it.
type Row = (&'static str, CustomerRow, Option<InteractionRow>);

/// The digest's customer id in the state database: the staff, not a customer.
const STAFF: &str = "staff";

/// Puts today's digest together and queues it; returns how many customers it lists (0: nothing
/// worth a card today, no email).
pub(crate) fn queue(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<usize, EvaluateError> {
    let Some(digest) = &config.digest else {
        return Ok(0);
    };
    let (today, _) = day_read(config, now);
    // Once a day: a later run that day does not read the log for it again (the anniversaries
    // alone are a scan of every customer).
    if outbox
        .history(
            RULE,
            STAFF,
            &occasion(today),
            &Lookback {
                cooldown_since: now,
                cap_since: now,
            },
        )?
        .occasion_state
        .is_some()
    {
        info!(date = %today, "staff digest: today's is queued already");
        return Ok(0);
    }
    let Some((note, customers)) = build(config, templates, log, outbox, digest, now)? else {
        return Ok(0);
    };
    if let Some(id) = outbox.enqueue(&note, now)? {
        outbox.flush()?;
        info!(note_id = id, customers, to = %digest.to, "staff digest queued");
    }
    Ok(customers)
}

/// The day the digest put together at `now` is read, and the first minute it may go: dated for
/// when it is read, so one put together at 20:00, inside quiet hours, speaks of the next morning.
fn day_read(config: &Config, now: Timestamp) -> (jiff::civil::Date, Timestamp) {
    let read_at = config
        .policy
        .calendar
        .next_allowed(now, &config.timezone)
        .unwrap_or(now);
    (
        read_at.to_zoned_datetime(config.timezone.clone()).date(),
        read_at,
    )
}

fn occasion(day: jiff::civil::Date) -> String {
    format!("digest-{day}")
}

/// Today's digest as a note, and how many customers it lists; None when nobody needs a card
/// today (or its template fails, logged). Reads the log; writes nothing.
pub(crate) fn build(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    digest: &Digest,
    now: Timestamp,
) -> Result<Option<(NewNote, usize)>, EvaluateError> {
    let (today, read_at) = day_read(config, now);
    let keep = worth_a_card(config, log, outbox, digest, today, now)?;
    let ctx = DigestContext::new(config, today, &keep, now, templates.default_language());
    if ctx.customers() == 0 {
        info!(date = %today, "staff digest: no customer needs a card today");
        return Ok(None);
    }
    let rendered = match templates.render(&digest.template, &ctx) {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(template = %digest.template, "staff digest not sent: {}", crate::compose::describe(&err));
            return Ok(None);
        }
    };
    let occasion = occasion(today);
    let note = NewNote {
        rule: RULE.into(),
        customer_id: STAFF.into(),
        priority: 1000,
        due_at: read_at,
        timezone: config.timezone_name.clone(),
        letter: Letter {
            recipient: digest.to.to_string(),
            display_name: None,
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: rendered
                .html
                .map(|html| crate::compose::letter_html(&html, &config.language)),
            message_id: message_id(RULE, STAFF, &occasion, &config.sender),
        },
        occasion,
    };
    Ok(Some((note, ctx.customers())))
}

/// The last day's replies to an apology (a note of an unhappy rule), each with the customer's
/// words: a person answers them. Automatic replies are left out.
fn answers_to_apologies(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<Vec<Row>, EvaluateError> {
    let since = now - SignedDuration::from_hours(24);
    let apology = |rule: &str| {
        config
            .rule(rule)
            .is_some_and(|r| matches!(r.kind, RuleKind::Unhappy { .. }))
    };
    let mut rows = Vec::new();
    for reply in outbox.replies(None, since.as_second())? {
        if reply.automatic || !reply.rule.as_deref().is_some_and(apology) {
            continue;
        }
        let Some((customer, _)) = log.customer(&reply.customer_id)? else {
            continue;
        };
        let words = InteractionRow {
            id: 0,
            at: reply.at,
            kind: "reply".into(),
            sentiment: None,
            channel: Some("email".into()),
            note: Some(reply.excerpt),
        };
        rows.push(("replied", customer, Some(words)));
    }
    Ok(rows)
}

/// The customers who deserve a card today: the last day's follow-ups and departures, selected as
/// the rules of those kinds select, and today's anniversaries; never one who opted out or is
/// suppressed.
fn worth_a_card(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
    digest: &Digest,
    today: jiff::civil::Date,
    now: Timestamp,
) -> Result<Vec<Row>, EvaluateError> {
    let day = SignedDuration::from_hours(24);
    let policy = &config.policy;
    let departure_kinds = config
        .rules
        .iter()
        .find_map(|r| match &r.kind {
            RuleKind::Departed { kinds, .. } => Some(kinds.clone()),
            _ => None,
        })
        .unwrap_or_else(|| vec!["cancellation".into()]);
    let selections = [
        (
            "resolved",
            RuleKind::Followup {
                within: day,
                kinds: policy.resolution_kinds.clone(),
                after: policy.complaint_kinds.clone(),
            },
        ),
        (
            "departure",
            RuleKind::Departed {
                within: day,
                kinds: departure_kinds,
            },
        ),
    ];
    let mut rows = Vec::new();
    for (why, kind) in selections {
        let rule = Rule::internal(RULE, kind);
        select::candidates(log, config, &rule, now, None, |c| {
            let trigger = c.trigger().cloned();
            rows.push((why, c.customer, trigger));
            ControlFlow::Continue(())
        })?;
    }
    for customer in log.anniversaries(today, digest.anniversary_years)? {
        rows.push(("anniversary", customer, None));
    }
    rows.extend(answers_to_apologies(config, log, outbox, now)?);
    let mut keep = Vec::with_capacity(rows.len());
    for row in rows {
        let email = row.1.email.clone().unwrap_or_default();
        if !row.1.opted_out && !outbox.suppressed(&row.1.id_text, &email)? {
            keep.push(row);
        }
    }
    Ok(keep)
}
