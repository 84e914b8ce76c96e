//! One evaluation cycle: for each due rule, select → decide → compose → enqueue.
//!
//! Used by the daemon on every cron tick, by `run --once`, `demo` and (as a dry run against a
//! read-only outbox) by `plan`. Rules run highest priority first, so when two rules want the
//! same customer the more important note takes the customer's cap. Over everyone, the next
//! rules' selections are read on other threads meanwhile (see [`select::read_ahead`]).

pub(crate) mod digest;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use jiff::Timestamp;
use tracing::{debug, info, warn};

use crate::compose::{self, Templates, recipient};
use crate::config::{Config, Rule, RuleKind};
use crate::decide::{self, Skip};
use crate::log::{BadTimestamp, Horizon, Log, LogError, Standings};
use crate::outbox::{NewNote, Outbox, OutboxError};
use crate::select::{self, Candidate, Ledger, Rest};

/// A problem that stops a cycle (a bad row never does).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvaluateError {
    /// The interaction log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The state database could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What happened to one matched customer (kept for `plan`).
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    /// The customer's id.
    pub customer_id: String,
    /// The occasion.
    pub occasion: String,
    /// The subject and recipient of the note that was (or would be) queued, or why not.
    pub outcome: Result<(String, String), Skip>,
}

/// What one rule did in one cycle.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleReport {
    /// The rule.
    pub rule: String,
    /// Customers the rule's selection matched.
    pub matched: u64,
    /// Notes queued (or, in a plan, that would be).
    pub queued: u64,
    /// Skipped customers, by reason key.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Every decision, when asked for (plan).
    pub decisions: Vec<Decision>,
    /// How long its turn took: composing and queueing, and waiting for what its selection had
    /// not yet read (which began up to three rules earlier, see [`AT_ONCE`]).
    pub elapsed: std::time::Duration,
    /// The rule's daily limit, when it was already reached today before the rule ran: then
    /// its selection was not read at all (nothing could be queued before tomorrow).
    pub resting: Option<u32>,
    /// A window rule between two whole readings of the log: how many customers it looked at
    /// (those with new interactions, and those it skipped for a reason that passes with time).
    pub looked_at: Option<usize>,
}

impl RuleReport {
    /// "matched 12, queued 3, skipped 9 (cooldown 4, opted-out 5)".
    pub(crate) fn summary(&self) -> String {
        if let Some(limit) = self.resting {
            return format!(
                "daily limit of {limit} already reached today: its customers are read again tomorrow"
            );
        }
        let skipped: u64 = self.skipped.values().sum();
        let mut text = format!(
            "matched {}, queued {}, skipped {skipped}",
            self.matched, self.queued
        );
        if skipped > 0 {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            text.push_str(&format!(" ({})", parts.join(", ")));
        }
        if let Some(n) = self.looked_at {
            text.push_str(&format!(
                "; read for the {n} customer(s) with new interactions or waiting on time only"
            ));
        }
        text
    }
}

/// One evaluation: which rules, at what time, among which customers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass<'a> {
    /// The rules to run (disabled ones are skipped).
    pub rules: &'a [&'a Rule],
    /// The clock.
    pub now: Timestamp,
    /// Keep every decision in the reports (for `plan`).
    pub keep_decisions: bool,
    /// Only these customers (the ones with new interactions), or everyone.
    pub only: Option<&'a [rusqlite::types::Value]>,
    /// Log the log's unreadable timestamps first (once per run is enough).
    pub report_bad_rows: bool,
}

impl<'a> Pass<'a> {
    /// Every customer, at `now`.
    pub(crate) fn new(rules: &'a [&'a Rule], now: Timestamp) -> Pass<'a> {
        Pass {
            rules,
            now,
            keep_decisions: false,
            only: None,
            report_bad_rows: true,
        }
    }
}

/// Runs `pass`, queueing notes into `outbox` (which, for a plan, is a dry run).
pub(crate) fn run(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    pass: &Pass<'_>,
) -> Result<Vec<RuleReport>, EvaluateError> {
    if pass.only.is_none() {
        refresh_horizon(config, log, outbox)?;
        if pass.report_bad_rows {
            report_bad_timestamps(log.bad_timestamps(BAD_ROWS_SHOWN)?);
        }
    }
    let mut ordered: Vec<&Rule> = pass.rules.iter().copied().filter(|r| r.enabled).collect();
    // Over everyone, where each customer stands is read once for all (a few selective
    // queries), when the first rule reading its whole selection meets its first candidate; for
    // a few customers (new interactions, a window rule between whole readings), per candidate.
    let standings = std::cell::OnceCell::new();
    ordered.sort_by_key(|r| std::cmp::Reverse(r.priority));
    std::thread::scope(|threads| {
        let mut rules = ordered.into_iter();
        let mut turns = std::collections::VecDeque::new();
        let mut reports = Vec::new();
        loop {
            let started = std::time::Instant::now();
            // The next rules' selections are read while this one takes its turn.
            while turns.len() < AT_ONCE
                && let Some(rule) = rules.next()
            {
                turns.push_back(prepare(config, log, outbox, rule, pass, threads));
            }
            let Some(turn) = turns.pop_front() else {
                break;
            };
            let report = turn
                .and_then(|turn| take_turn(config, templates, log, outbox, turn, pass, &standings))
                .map(|r| RuleReport {
                    elapsed: started.elapsed(),
                    ..r
                });
            // What was queued before a failure is good: keep it. The selections read ahead are
            // stopped as `turns` goes.
            outbox.flush()?;
            reports.push(report?);
        }
        Ok(reports)
    })
}

/// Rules whose selections are read at once: the one taking its turn and the next ones (see
/// [`select::read_ahead`]). Each has a thread, a connection to the log and what it read ahead.
const AT_ONCE: usize = 4;

/// A rule ready for its turn (unless it rests today: `report.resting`).
struct Turn<'a> {
    rule: &'a Rule,
    report: RuleReport,
    queued_today: u32,
    /// The customers a window rule looks at (see [`scope`]), and where it leaves off.
    scope: Option<Vec<rusqlite::types::Value>>,
    mark: Option<Mark>,
    /// Its whole selection, being read on another thread. A selection among a few customers
    /// (`scope`, or the pass's) is read at the rule's turn on its own thread instead: a few rows
    /// are not worth a thread and a connection.
    ahead: Option<select::Ahead>,
}

/// Everything a rule's turn needs before its first candidate, its selection's reading started
/// on a thread of `threads`.
fn prepare<'a>(
    config: &'a Config,
    log: &Log,
    outbox: &Outbox,
    rule: &'a Rule,
    pass: &Pass<'_>,
    threads: &'a std::thread::Scope<'a, '_>,
) -> Result<Turn<'a>, EvaluateError> {
    let now = pass.now;
    let mut report = RuleReport {
        rule: rule.name.clone(),
        ..RuleReport::default()
    };
    let start_of_day = now
        .to_zoned_datetime(config.timezone.clone())
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let queued_today = outbox.queued_since(&rule.name, start_of_day)?;
    // A rule that already queued its daily limit today can queue nothing more before tomorrow:
    // its selection is not even read (a season over many customers costs nothing until then).
    // A plan still reads it, to show who waits.
    if let Some(limit) = rule.daily_limit
        && queued_today >= limit
        && !pass.keep_decisions
    {
        report.resting = Some(limit);
        return Ok(Turn {
            rule,
            report,
            queued_today,
            scope: None,
            mark: None,
            ahead: None,
        });
    }
    let (scope, mark) = scope(config, log, outbox, rule, pass)?;
    report.looked_at = scope.as_ref().map(Vec::len);
    let ahead = match scope.is_none() && pass.only.is_none() {
        true => Some(select::read_ahead(threads, log, config, rule, now)?),
        false => None,
    };
    Ok(Turn {
        rule,
        report,
        queued_today,
        scope,
        mark,
        ahead,
    })
}

/// A rule's turn: its candidates considered one by one, in its selection's order.
fn take_turn(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    turn: Turn<'_>,
    pass: &Pass<'_>,
    standings: &std::cell::OnceCell<Standings>,
) -> Result<RuleReport, EvaluateError> {
    let Turn {
        rule,
        mut report,
        mut queued_today,
        scope,
        mark,
        ahead,
    } = turn;
    if report.resting.is_some() {
        return Ok(report);
    }
    let now = pass.now;
    let cap_since = now.checked_sub(config.policy.cap_window).unwrap_or(now);
    let mut waiting = Vec::new();
    let only = scope.as_deref().or(pass.only);
    // Only a window rule remembers whom it skipped for a reason that passes with time.
    let remember = mark.is_some();
    let mut step = |candidate: Candidate| -> Result<ControlFlow<Rest>, EvaluateError> {
        report.matched += 1;
        // Queued notes wait for a group to fill, but never long: the daemon's delivery and
        // event trigger wait for them to write.
        outbox.flush_if_old()?;
        // Once the daily limit is reached the rest of the selection waits for tomorrow: count
        // it without composing anything, or even reading it unless the rule keeps whom it
        // skipped (a season over many customers stays cheap). Only `explain`, about one
        // customer, looks further, for that customer's other reasons.
        if let Some(limit) = rule.daily_limit
            && queued_today >= limit
            && !(pass.keep_decisions && pass.only.is_some())
        {
            *report
                .skipped
                .entry(Skip::DailyLimit(limit).key())
                .or_default() += 1;
            if !remember {
                // Nothing more to write: the notes queued go now, not after the counting.
                outbox.flush()?;
                return Ok(ControlFlow::Break(Rest::Count));
            }
            waiting.push(candidate.customer.id.clone());
            return Ok(ControlFlow::Continue(()));
        }
        // Read for everyone by the first candidate of a rule reading its whole selection;
        // among a few customers, each candidate's own standing is read instead.
        if only.is_none() && standings.get().is_none() {
            let _ = standings.set(log.standings(&config.policy, now)?);
        }
        let outcome = consider(
            config,
            templates,
            log,
            outbox,
            rule,
            &candidate,
            now,
            cap_since,
            queued_today,
            standings.get().filter(|_| only.is_none()),
        )?;
        let customer_id = candidate.customer.id_text.clone();
        match &outcome {
            Ok(_) => {
                report.queued += 1;
                queued_today += 1;
            }
            Err(skip) => {
                *report.skipped.entry(skip.key()).or_default() += 1;
                if remember && skip.may_pass() {
                    waiting.push(candidate.customer.id.clone());
                }
                match skip {
                    Skip::InvalidAddress(_)
                    | Skip::UnsafeName
                    | Skip::BadRow(_)
                    | Skip::Render(_) => {
                        warn!(rule = %rule.name, customer_id = %customer_id, reason = %skip, "customer skipped");
                    }
                    _ => {
                        debug!(rule = %rule.name, customer_id = %customer_id, reason = %skip, "customer skipped")
                    }
                }
            }
        }
        if pass.keep_decisions {
            report.decisions.push(Decision {
                customer_id,
                occasion: candidate.occasion,
                outcome,
            });
        }
        Ok(ControlFlow::Continue(()))
    };
    // A failure stops the selection; it is returned once the selection is closed.
    let mut failure: Option<EvaluateError> = None;
    let each = |candidate| {
        step(candidate).unwrap_or_else(|err| {
            failure = Some(err);
            ControlFlow::Break(Rest::Stop)
        })
    };
    let beyond_limit = match ahead {
        Some(ahead) => ahead.take(each),
        None => select::candidates(log, config, rule, now, only, each),
    }?;
    if let Some(err) = failure {
        return Err(err);
    }
    if let Some(limit) = rule.daily_limit
        && beyond_limit > 0
    {
        report.matched += beyond_limit;
        *report
            .skipped
            .entry(Skip::DailyLimit(limit).key())
            .or_default() += beyond_limit;
    }
    if let Some(mark) = mark {
        outbox.set_waiting(&rule.name, scope.as_deref(), &waiting)?;
        let text = serde_json::to_string(&mark).unwrap_or_default();
        outbox.set_meta(&format!("{MARK_KEY}{}", rule.name), &text)?;
    }
    Ok(report)
}

/// Where a window rule's last run left off (kept in the state database's `meta`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Mark {
    /// The rule's definition and the policy it ran with (a hash): a change means a whole read.
    fingerprint: String,
    /// Every interaction up to this rowid had been read when it ran.
    watermark: i64,
    /// The whole reading of the log it knew: a newer one means a whole read.
    reading: u64,
}

const MARK_KEY: &str = "rule_mark:";

/// More customers with new interactions than this: the rule reads its whole window instead.
const SCOPE_LIMIT: usize = 20_000;

/// Which customers a window rule (unhappy, departed, follow-up) looks at, and where this run
/// leaves off. Between two whole readings of the log (`daemon.reconcile`), a scheduled run
/// looks only at the customers with interactions added since its last run, and at those it
/// then skipped for a reason that passes with time (`rule_waiting`): nobody else's window can
/// have changed, except by an edit in place, which the next whole reading catches. The whole
/// window (scope `None`) on a first run, after the rule or the policy changed, after a whole
/// reading, and always for a plan, a forecast or an event (which has its own customers).
fn scope(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
    rule: &Rule,
    pass: &Pass<'_>,
) -> Result<(Option<Vec<rusqlite::types::Value>>, Option<Mark>), EvaluateError> {
    let window_rule = matches!(
        rule.kind,
        RuleKind::Unhappy { .. } | RuleKind::Departed { .. } | RuleKind::Followup { .. }
    );
    let (Some((watermark, reading)), true) = (
        log.horizon_position(),
        window_rule && pass.only.is_none() && !pass.keep_decisions && !outbox.is_dry_run(),
    ) else {
        return Ok((None, None));
    };
    let mark = Mark {
        fingerprint: fingerprint(config, rule),
        watermark,
        reading,
    };
    let last: Option<Mark> = outbox
        .meta(&format!("{MARK_KEY}{}", rule.name))?
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(last) = last.filter(|last| {
        last.fingerprint == mark.fingerprint
            && last.reading == mark.reading
            && last.watermark <= mark.watermark
    }) else {
        return Ok((None, Some(mark)));
    };
    let Some(mut ids) = log.customers_between(last.watermark, mark.watermark, SCOPE_LIMIT)? else {
        return Ok((None, Some(mark)));
    };
    // A waiting customer may also have new interactions: looked at (and counted) once.
    let new: std::collections::HashSet<(u8, Vec<u8>)> = ids.iter().map(id_key).collect();
    let waiting = outbox.waiting(&rule.name)?;
    ids.extend(waiting.into_iter().filter(|id| !new.contains(&id_key(id))));
    Ok((Some(ids), Some(mark)))
}

/// A customer id as a set key: its SQLite type and its bytes (5 and '5' stay apart).
fn id_key(id: &rusqlite::types::Value) -> (u8, Vec<u8>) {
    use rusqlite::types::Value;
    match id {
        Value::Null => (0, Vec::new()),
        Value::Integer(i) => (1, i.to_le_bytes().to_vec()),
        Value::Real(r) => (2, r.to_le_bytes().to_vec()),
        Value::Text(t) => (3, t.as_bytes().to_vec()),
        Value::Blob(b) => (4, b.clone()),
    }
}

/// A hash of what decides a rule's selection and its skips: the rule, the policy, the time zone.
fn fingerprint(config: &Config, rule: &Rule) -> String {
    use sha2::{Digest, Sha256};
    let text = format!("{rule:?}\n{:?}\n{:?}", config.policy, config.timezone);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The fate of one candidate: queued (subject, recipient) or skipped. Errors only for I/O.
#[allow(clippy::too_many_arguments)]
fn consider(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    rule: &Rule,
    candidate: &Candidate,
    now: Timestamp,
    cap_since: Timestamp,
    queued_today: u32,
    standings: Option<&Standings>,
) -> Result<Result<(String, String), Skip>, EvaluateError> {
    let customer = &candidate.customer;
    let recipient = match recipient(customer, config, now) {
        Ok(r) => r,
        Err(skip) => return Ok(Err(skip)),
    };
    if outbox.suppressed(&customer.id_text, recipient.address.as_ref())? {
        return Ok(Err(Skip::Suppressed));
    }
    let standing = match standings {
        Some(all) => all.of(customer),
        None => log.standing(&customer.id, &config.policy, now)?,
    };
    if standing.unsubscribed {
        return Ok(Err(Skip::Unsubscribed));
    }
    if standing.open_complaint && rule.hold_while_unhappy {
        return Ok(Err(Skip::OpenComplaint));
    }
    let complaint = candidate
        .trigger
        .as_ref()
        .is_some_and(|t| config.policy.complaint_kinds.contains(&t.kind));
    if matches!(rule.kind, RuleKind::Unhappy { .. }) && complaint && !standing.open_complaint {
        return Ok(Err(Skip::Resolved));
    }
    if let (RuleKind::Ratio { window, target }, Some(ledger)) = (&rule.kind, candidate.ledger) {
        let since = now.checked_sub(*window).unwrap_or(now);
        let ledger = Ledger {
            positive: ledger.positive + outbox.notes_to(&customer.id_text, since)?,
            ..ledger
        };
        if ledger.meets(*target) {
            return Ok(Err(Skip::RatioMet {
                positive: ledger.positive,
                negative: ledger.negative,
            }));
        }
    }
    let history = outbox.history(
        &rule.name,
        &customer.id_text,
        &candidate.occasion,
        now.checked_sub(rule.cooldown).unwrap_or(now),
        cap_since,
    )?;
    if let Err(skip) = decide::decide(customer, rule, &history, queued_today, &config.policy, now) {
        return Ok(Err(skip));
    }
    for warning in &recipient.warnings {
        warn!(rule = %rule.name, customer_id = %customer.id_text, "{warning}");
    }
    let interactions = if templates.shows_interaction_count(&rule.template) {
        log.interaction_count(&customer.id)?
    } else {
        0
    };
    let letter = match compose::letter(config, templates, rule, candidate, &recipient, interactions)
    {
        Ok(letter) => letter,
        Err(err) => return Ok(Err(Skip::Render(compose::describe(&err)))),
    };
    let note = NewNote {
        rule: rule.name.clone(),
        customer_id: customer.id_text.clone(),
        occasion: candidate.occasion.clone(),
        priority: rule.priority,
        due_at: due_at(rule, candidate, now),
        timezone: recipient
            .timezone
            .iana_name()
            .unwrap_or(&config.timezone_name)
            .to_string(),
        letter,
    };
    match outbox.enqueue(&note, now)? {
        Some(id) => {
            if id > 0 {
                info!(note_id = id, rule = %rule.name, customer_id = %customer.id_text, occasion = %candidate.occasion, "note queued");
            }
            Ok(Ok((note.letter.subject, note.letter.recipient)))
        }
        None => Ok(Err(Skip::AlreadyQueued("queued".into()))),
    }
}

/// When a note may go: `delay` after the event behind it (or after now).
fn due_at(rule: &Rule, candidate: &Candidate, now: Timestamp) -> Timestamp {
    let from = candidate
        .happened_at
        .and_then(|at| Timestamp::from_second(at).ok())
        .unwrap_or(now);
    from.checked_add(rule.delay).unwrap_or(now).max(now)
}

/// The state database's key for what the last evaluation learnt of the log.
const HORIZON_KEY: &str = "log_horizon";

/// Unreadable timestamps shown in the log, at most (the horizon keeps as many).
const BAD_ROWS_SHOWN: usize = 10;

/// Brings what rekindle knows of the log's layout (see [`Horizon`]) up to date, reading only
/// the rows added since the last evaluation (or the whole log, `daemon.reconcile` after the
/// last time, by the wall clock: a plan for another day reads nothing more), and keeps it in the
/// state database (a dry run only in memory). A log whose `interactions` has no rowid (a view)
/// has none: every rule then reads the whole table.
fn refresh_horizon(config: &Config, log: &Log, outbox: &Outbox) -> Result<(), EvaluateError> {
    if log.rowid_problem().is_some() {
        return Ok(());
    }
    let known = match log.horizon() {
        Some(known) => Some(known),
        None => outbox
            .meta(HORIZON_KEY)?
            .and_then(|text| serde_json::from_str(&text).ok()),
    };
    let reconcile = config.daemon.reconcile.as_secs();
    let horizon = Horizon::refresh(known, log, Timestamp::now().as_second(), reconcile)?;
    if !outbox.is_dry_run() {
        let text = serde_json::to_string(&horizon).unwrap_or_default();
        outbox.set_meta(HORIZON_KEY, &text)?;
    }
    log.set_horizon(horizon);
    Ok(())
}

/// Logs interactions whose timestamp cannot be read (how many, and the first few): every rule
/// skips them.
fn report_bad_timestamps((count, rows): (u64, Vec<BadTimestamp>)) {
    for row in &rows {
        warn!(interaction_id = %row.interaction_id, customer_id = %row.customer_id, at = %row.at, "interaction skipped: unreadable timestamp (use ISO-8601, e.g. 2026-03-14T09:12:00Z)");
    }
    if count > rows.len() as u64 {
        warn!(
            count,
            "more interactions with unreadable timestamps skipped"
        );
    }
}
