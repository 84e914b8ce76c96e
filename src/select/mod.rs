//! Select: the customers a rule applies to, in SQL inside SQLite, streaming row by row. One
//! file per rule kind, its query beside it.
//!
//! Selection is a function of the log and a clock (`now` is passed in), so `plan --at` and the
//! tests can move time. Nothing here decides whether a note is *sent*: that is `decide`.

mod ahead;
mod departed;
mod followup;
mod quiet;
mod ratio;
mod seasonal;
mod sql;
mod stream;
mod unhappy;

use std::ops::ControlFlow;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{Config, Rule, RuleKind};
use crate::log::{CustomerRow, InteractionRow, Log, LogError};

pub(crate) use ahead::{Ahead, read_ahead};
pub(crate) use ratio::Ledger;
use stream::query;

/// A customer a rule matched, with the occasion that makes this note unique.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The customer, unvalidated.
    pub customer: CustomerRow,
    /// With the rule and the customer, the note's idempotency key: one note per occasion.
    pub occasion: String,
    /// When the event behind the note happened (Unix seconds): a rule's `delay` counts from it.
    pub happened_at: Option<i64>,
    /// What the rule found, by kind.
    pub found: Found,
}

/// What a rule found for a customer, by kind of rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// A quiet rule: whole days since the customer's last interaction.
    Quiet {
        /// The days.
        days: i64,
    },
    /// An unhappy, departed or follow-up rule: the interaction behind the note (a complaint, a
    /// cancellation, the complaint a resolution follows up), when there is one worth quoting.
    Interaction(Option<InteractionRow>),
    /// A ratio rule: the touch points counted in the log.
    Ratio(Ledger),
    /// A seasonal rule: the season's year.
    Season {
        /// The year.
        year: i16,
    },
}

impl Candidate {
    /// The interaction behind the note, if there is one.
    pub(crate) fn trigger(&self) -> Option<&InteractionRow> {
        match &self.found {
            Found::Interaction(trigger) => trigger.as_ref(),
            _ => None,
        }
    }

    /// The touch points a ratio rule counted.
    pub(crate) fn ledger(&self) -> Option<Ledger> {
        match self.found {
            Found::Ratio(ledger) => Some(ledger),
            _ => None,
        }
    }
}

/// What a selection's reader wants once it breaks off (see [`candidates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// Nothing more.
    Stop,
    /// Only how many candidates are left: they are counted, not read.
    Count,
}

/// A selection as SQLite runs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    /// The query.
    pub sql: String,
    /// Its parameters, `?1` first.
    pub params: Vec<rusqlite::types::Value>,
}

/// Where and when one selection reads.
pub(crate) struct Among<'a> {
    /// An SQL condition on the customers `c`: the rule's segment, and the customers a selection
    /// is limited to (`1` when neither).
    pub segment: String,
    /// The clock.
    pub now: Timestamp,
    /// The business's time zone (for dates in occasions).
    pub tz: &'a TimeZone,
}

/// Streams the candidates of `rule` at `now` to `each`, which may stop the scan early, or have
/// the rest counted without reading them (a rule past its daily limit): returns that count.
/// With `only`, just among those customers (the ones with new interactions, for event
/// triggers).
pub(crate) fn candidates(
    log: &Log,
    config: &Config,
    rule: &Rule,
    now: Timestamp,
    only: Option<&[rusqlite::types::Value]>,
    mut each: impl FnMut(Candidate) -> ControlFlow<Rest>,
) -> Result<u64, LogError> {
    let among = Among::new(config, rule, now, only);
    let Some(statement) = statement_among(log, config, rule, &among) else {
        return Ok(0);
    };
    let each = &mut each;
    match &rule.kind {
        RuleKind::Quiet { .. } => query(log, &statement, |row| quiet::candidate(row, &among), each),
        RuleKind::Unhappy { .. } => query(log, &statement, unhappy::candidate, each),
        RuleKind::Departed { kinds, .. } => {
            query(log, &statement, |row| departed::candidate(row, kinds), each)
        }
        RuleKind::Followup { .. } => query(log, &statement, followup::candidate, each),
        RuleKind::Ratio { .. } => {
            let today = now.to_zoned_datetime(config.timezone.clone()).date();
            query(log, &statement, |row| ratio::candidate(row, today), each)
        }
        RuleKind::Seasonal(season) => {
            let Some(year) = seasonal::open(&among, season) else {
                return Ok(0);
            };
            let read = |row: &rusqlite::Row<'_>| seasonal::candidate(row, season, year);
            query(log, &statement, read, each)
        }
    }
}

/// `rule`'s whole selection at `now` as SQLite runs it; none for a season that is closed.
pub(crate) fn statement(
    log: &Log,
    config: &Config,
    rule: &Rule,
    now: Timestamp,
) -> Option<Statement> {
    statement_among(log, config, rule, &Among::new(config, rule, now, None))
}

/// `rule`'s selection `among` some customers; none for a season that is closed.
fn statement_among(
    log: &Log,
    config: &Config,
    rule: &Rule,
    among: &Among<'_>,
) -> Option<Statement> {
    Some(match &rule.kind {
        RuleKind::Quiet {
            min_interactions,
            quiet_for,
        } => quiet::statement(among, *min_interactions, *quiet_for),
        RuleKind::Unhappy {
            within,
            sentiment_below,
            kinds,
        } => unhappy::statement(log, among, *within, *sentiment_below, kinds),
        RuleKind::Departed { within, kinds } => departed::statement(log, among, *within, kinds),
        RuleKind::Followup {
            within,
            kinds,
            after,
        } => followup::statement(log, among, *within, kinds, after),
        RuleKind::Ratio { window, target } => {
            ratio::statement(log, among, &config.touchpoints, *window, *target)
        }
        RuleKind::Seasonal(season) => {
            seasonal::statement(among, season, &config.touchpoints.positive)?
        }
    })
}

impl<'a> Among<'a> {
    /// Where `rule` reads at `now`: its segment, and only the customers `only` when given.
    fn new(
        config: &'a Config,
        rule: &Rule,
        now: Timestamp,
        only: Option<&[rusqlite::types::Value]>,
    ) -> Among<'a> {
        let mut filters = Vec::new();
        if let Some(s) = &rule.segment {
            filters.push(format!("c.id IN (SELECT id FROM customers WHERE ({s}))"));
        }
        if let Some(ids) = only {
            filters.push(format!(
                "c.id IN (SELECT value FROM json_each({}))",
                sql::sql_text(&sql::ids_json(ids))
            ));
        }
        Among {
            segment: match filters.is_empty() {
                true => "1".to_string(),
                false => filters.join(" AND "),
            },
            now,
            tz: &config.timezone,
        }
    }
}

#[cfg(test)]
mod tests;
