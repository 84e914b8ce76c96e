//! Evaluate: one evaluation of the due rules, each candidate through select → decide → compose
//! → enqueue.
//!
//! Used by the daemon on every cron tick and event, by `run --once`, `demo` and (as a dry run
//! against a read-only outbox) by `plan` and `explain`. Rules take their turns highest priority
//! first, so when two rules want the same customer the more important note takes the
//! customer's cap. Over everyone, the next rules' selections are read on other threads
//! meanwhile (see [`select::read_ahead`]); every decision is still made on one thread, in order.

mod candidate;
pub(crate) mod digest;
mod horizon;
mod report;
mod turn;
mod window;

use std::cell::OnceCell;

use jiff::Timestamp;

use crate::compose::Templates;
use crate::config::{Config, Rule};
use crate::log::{Log, LogError, Standings};
use crate::outbox::{Outbox, OutboxError};
use crate::select;

pub(crate) use report::{Decision, Outcome, RuleReport};

/// A problem that stops an evaluation (a bad row never does).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvaluateError {
    /// The interaction log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The state database could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// One evaluation: which rules, at what time, among which customers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass<'a> {
    /// The rules to run (disabled ones are skipped).
    pub rules: &'a [&'a Rule],
    /// The clock.
    pub now: Timestamp,
    /// What becomes of each decision beyond its count.
    pub decisions: Decisions<'a>,
    /// Only these customers (the ones with new interactions), or everyone.
    pub only: Option<&'a [rusqlite::types::Value]>,
    /// Log the log's unreadable timestamps first (once per run is enough).
    pub report_bad_rows: bool,
}

/// What an evaluation does with each decision, beyond counting it.
#[derive(Clone, Copy)]
pub(crate) enum Decisions<'a> {
    /// Only counts it in its rule's report.
    Count,
    /// Keeps it in the report too (`explain`, about one customer).
    Keep,
    /// Hands it over as it is made, with its rule's name (`plan`: memory stays the same however
    /// many customers match).
    Each(&'a dyn Fn(&str, Decision)),
}

impl Decisions<'_> {
    /// Whether every decision is wanted (a dry run that shows them): a rule resting on its daily
    /// limit still reads its selection, to show who waits.
    pub(crate) fn shown(&self) -> bool {
        !matches!(self, Decisions::Count)
    }
}

impl std::fmt::Debug for Decisions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decisions::Count => "Count",
            Decisions::Keep => "Keep",
            Decisions::Each(_) => "Each",
        })
    }
}

impl<'a> Pass<'a> {
    /// Every customer, at `now`.
    pub(crate) fn new(rules: &'a [&'a Rule], now: Timestamp) -> Pass<'a> {
        Pass {
            rules,
            now,
            decisions: Decisions::Count,
            only: None,
            report_bad_rows: true,
        }
    }
}

/// What every turn of one evaluation shares.
struct Shared<'a> {
    config: &'a Config,
    templates: &'a Templates,
    log: &'a Log,
    outbox: &'a Outbox,
    pass: &'a Pass<'a>,
    /// Over everyone, where each customer stands is read once for all (a few selective queries),
    /// when the first rule reading its whole selection meets its first candidate; among a few
    /// customers, each candidate's own standing is read instead.
    standings: OnceCell<Standings>,
    /// What customers chose on the preferences page (a few customers, read once).
    preferences: std::collections::HashMap<String, crate::decide::Preference>,
}

impl Shared<'_> {
    /// Everyone's standing, read the first time it is asked for.
    fn standings(&self) -> Result<&Standings, EvaluateError> {
        if self.standings.get().is_none() {
            let read = self.log.standings(&self.config.policy, self.pass.now)?;
            let _ = self.standings.set(read);
        }
        Ok(self
            .standings
            .get()
            .unwrap_or_else(|| unreachable!("set above")))
    }
}

/// What SQLite runs for a whole evaluation of `config`'s enabled rules at `now`, once the log's
/// layout is read as `run` reads it: each rule's selection (by rule name, highest priority first),
/// then the two queries for everyone's standing.
pub(crate) fn statements(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<Vec<(String, select::Statement)>, EvaluateError> {
    horizon::refresh_horizon(config, log, outbox)?;
    let mut rules: Vec<&Rule> = config.rules.iter().filter(|r| r.enabled).collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let mut statements: Vec<(String, select::Statement)> = rules
        .into_iter()
        .filter_map(|rule| {
            Some((
                rule.name.clone(),
                select::statement(log, config, rule, now)?,
            ))
        })
        .collect();
    let standings = log.standings_sql(&config.policy, now);
    for (name, (sql, params)) in ["unsubscribed", "open-complaint"]
        .into_iter()
        .zip(standings)
    {
        let sql = sql.to_string();
        statements.push((name.to_string(), select::Statement { sql, params }));
    }
    Ok(statements)
}

/// Rules whose selections are read at once: the one taking its turn and the next ones (see
/// [`select::read_ahead`]). Each has a thread, a connection to the log and what it read ahead.
const AT_ONCE: usize = 4;

/// Runs `pass`, queueing notes into `outbox` (which, for a plan, is a dry run).
pub(crate) fn run(
    config: &Config,
    templates: &Templates,
    log: &Log,
    outbox: &Outbox,
    pass: &Pass<'_>,
) -> Result<Vec<RuleReport>, EvaluateError> {
    if pass.only.is_none() {
        horizon::refresh_horizon(config, log, outbox)?;
        if pass.report_bad_rows {
            horizon::report_bad_timestamps(log.bad_timestamps(horizon::BAD_ROWS_SHOWN)?);
        }
    }
    let mut ordered: Vec<&Rule> = pass.rules.iter().copied().filter(|r| r.enabled).collect();
    ordered.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let shared = Shared {
        config,
        templates,
        log,
        outbox,
        pass,
        standings: OnceCell::new(),
        preferences: outbox.preferences()?,
    };
    let bulk = pass.only.is_none();
    if bulk {
        outbox.begin_bulk()?;
    }
    let reports: Result<Vec<RuleReport>, EvaluateError> = std::thread::scope(|threads| {
        let mut rules = ordered.into_iter();
        let mut turns = std::collections::VecDeque::new();
        let mut reports = Vec::new();
        loop {
            let started = std::time::Instant::now();
            // The next rules' selections are read while this one takes its turn.
            while turns.len() < AT_ONCE
                && let Some(rule) = rules.next()
            {
                turns.push_back(turn::prepare(&shared, rule, threads));
            }
            let Some(next) = turns.pop_front() else {
                break;
            };
            let report = next
                .and_then(|next| turn::take(&shared, next))
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
    });
    // Also after a failure: what was queued is kept, the WAL copied.
    let ended = match bulk {
        true => outbox.end_bulk(),
        false => Ok(()),
    };
    let reports = reports?;
    ended?;
    Ok(reports)
}
