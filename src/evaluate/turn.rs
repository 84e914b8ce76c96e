//! A rule's turn: what it needs before its first candidate (prepared while earlier rules take
//! theirs), then its candidates considered one by one, in its selection's order.

use std::ops::ControlFlow;

use rusqlite::types::Value;
use tracing::{debug, warn};

use super::candidate::consider;
use super::window::{self, Mark};
use super::{Decision, Decisions, EvaluateError, Outcome, RuleReport, Shared};
use crate::config::Rule;
use crate::decide::{Skip, daily_limit_reached};
use crate::select::{self, Candidate, Rest};

/// A rule ready for its turn (unless it rests today: `report.resting`).
pub(super) struct Turn<'a> {
    rule: &'a Rule,
    report: RuleReport,
    queued_today: u32,
    /// The customers a window rule looks at (see [`window::scope`]), and where it leaves off.
    scope: Option<Vec<Value>>,
    mark: Option<Mark>,
    /// Its whole selection, being read on another thread. A selection among a few customers
    /// (`scope`, or the pass's) is read at the rule's turn on its own thread instead: a few rows
    /// are not worth a thread and a connection.
    ahead: Option<select::Ahead>,
}

/// Everything a rule's turn needs before its first candidate, its selection's reading started
/// on a thread of `threads`.
pub(super) fn prepare<'a>(
    shared: &'a Shared<'a>,
    rule: &'a Rule,
    threads: &'a std::thread::Scope<'a, '_>,
) -> Result<Turn<'a>, EvaluateError> {
    let (config, pass) = (shared.config, shared.pass);
    let now = pass.now;
    let report = RuleReport {
        rule: rule.name.clone(),
        ..RuleReport::default()
    };
    let start_of_day = now
        .to_zoned_datetime(config.timezone.clone())
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let queued_today = shared.outbox.queued_since(&rule.name, start_of_day)?;
    let mut turn = Turn {
        rule,
        report,
        queued_today,
        scope: None,
        mark: None,
        ahead: None,
    };
    // A rule that already queued its daily limit today can queue nothing more before tomorrow:
    // its selection is not even read (a season over many customers costs nothing until then).
    // A plan still reads it, to show who waits.
    if let Some(limit) = daily_limit_reached(rule, queued_today)
        && !pass.decisions.shown()
    {
        turn.report.resting = Some(limit);
        return Ok(turn);
    }
    let (scope, mark) = window::scope(config, shared.log, shared.outbox, rule, pass)?;
    turn.report.looked_at = scope.as_ref().map(Vec::len);
    if scope.is_none() && pass.only.is_none() {
        turn.ahead = Some(select::read_ahead(threads, shared.log, config, rule, now)?);
    }
    turn.scope = scope;
    turn.mark = mark;
    Ok(turn)
}

/// Takes `turn`: its candidates considered one by one, in its selection's order.
pub(super) fn take(shared: &Shared<'_>, turn: Turn<'_>) -> Result<RuleReport, EvaluateError> {
    if turn.report.resting.is_some() {
        return Ok(turn.report);
    }
    let Turn {
        rule,
        report,
        queued_today,
        scope,
        mark,
        ahead,
    } = turn;
    let mut stepper = Stepper {
        shared,
        rule,
        report,
        queued_today,
        // Only a window rule remembers whom it skipped for a reason that passes with time.
        remember: mark.is_some(),
        waiting: Vec::new(),
        whole: scope.is_none() && shared.pass.only.is_none(),
    };
    // A failure stops the selection; it is returned once the selection is closed.
    let mut failure: Option<EvaluateError> = None;
    let each = |candidate| {
        stepper.step(candidate).unwrap_or_else(|err| {
            failure = Some(err);
            ControlFlow::Break(Rest::Stop)
        })
    };
    let (log, config, now) = (shared.log, shared.config, shared.pass.now);
    let only = scope.as_deref().or(shared.pass.only);
    let beyond_limit = match ahead {
        Some(ahead) => ahead.take(each),
        None => select::candidates(log, config, rule, now, only, each),
    }?;
    if let Some(err) = failure {
        return Err(err);
    }
    let mut report = stepper.report;
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
        window::keep(
            shared.outbox,
            rule,
            scope.as_deref(),
            &stepper.waiting,
            &mark,
        )?;
    }
    Ok(report)
}

/// A turn in progress: what it counted so far.
struct Stepper<'a> {
    shared: &'a Shared<'a>,
    rule: &'a Rule,
    report: RuleReport,
    queued_today: u32,
    /// Keep the customers skipped for a reason that passes with time.
    remember: bool,
    waiting: Vec<Value>,
    /// The rule reads its whole selection (not among a few customers).
    whole: bool,
}

impl Stepper<'_> {
    /// One candidate: counted, decided, and queued a note when the decision allows.
    fn step(&mut self, candidate: Candidate) -> Result<ControlFlow<Rest>, EvaluateError> {
        let (shared, rule) = (self.shared, self.rule);
        let (outbox, pass) = (shared.outbox, shared.pass);
        self.report.matched += 1;
        // Queued notes wait for a group to fill, but never long: the daemon's delivery and
        // event trigger wait for them to write.
        outbox.flush_if_old()?;
        // Once the daily limit is reached the rest of the selection waits for tomorrow: count
        // it without composing anything, or even reading it unless the rule keeps whom it
        // skipped (a season over many customers stays cheap). Only `explain`, about one
        // customer, looks further, for that customer's other reasons.
        if let Some(limit) = daily_limit_reached(rule, self.queued_today)
            && !(pass.decisions.shown() && pass.only.is_some())
        {
            *self
                .report
                .skipped
                .entry(Skip::DailyLimit(limit).key())
                .or_default() += 1;
            if !self.remember {
                // Nothing more to write: the notes queued go now, not after the counting.
                outbox.flush()?;
                return Ok(ControlFlow::Break(Rest::Count));
            }
            self.waiting.push(candidate.customer.id.clone());
            return Ok(ControlFlow::Continue(()));
        }
        // Read for everyone by the first candidate of a rule reading its whole selection;
        // among a few customers, each candidate's own standing is read instead.
        let standings = match self.whole {
            true => Some(shared.standings()?),
            false => None,
        };
        let outcome = consider(shared, rule, &candidate, self.queued_today, standings)?;
        self.count(&candidate, &outcome);
        let decision = || Decision {
            customer_id: candidate.customer.id_text,
            occasion: candidate.occasion,
            outcome,
        };
        match pass.decisions {
            Decisions::Count => {}
            Decisions::Keep => self.report.decisions.push(decision()),
            Decisions::Each(each) => each(&rule.name, decision()),
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Counts `outcome` in the report, and logs a skip (a bad row as a warning).
    fn count(&mut self, candidate: &Candidate, outcome: &Outcome) {
        let skip = match outcome {
            Outcome::Queued { .. } => {
                self.report.queued += 1;
                self.queued_today += 1;
                return;
            }
            Outcome::Skipped(skip) => skip,
        };
        *self.report.skipped.entry(skip.key()).or_default() += 1;
        if self.remember && skip.may_pass() {
            self.waiting.push(candidate.customer.id.clone());
        }
        let (rule, customer_id) = (&self.rule.name, &candidate.customer.id_text);
        match skip {
            Skip::InvalidAddress(_) | Skip::BadRow(_) | Skip::Render(_) => {
                warn!(rule = %rule, customer_id = %customer_id, reason = %skip, "customer skipped");
            }
            _ => {
                debug!(rule = %rule, customer_id = %customer_id, reason = %skip, "customer skipped")
            }
        }
    }
}
