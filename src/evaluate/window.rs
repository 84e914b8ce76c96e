//! Window rules (unhappy, departed, follow-up) between two whole readings of the log: a
//! scheduled run looks only at the customers with new interactions and at those it skipped for a
//! reason that passes with time, and remembers where it left off.

use rusqlite::types::Value;

use super::{EvaluateError, Pass};
use crate::config::{Config, Rule, RuleKind};
use crate::log::Log;
use crate::outbox::{Outbox, Setting};

/// Where a window rule's last run left off (kept in the state database).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Mark {
    /// The rule's definition and the policy it ran with (a hash): a change means a whole read.
    fingerprint: String,
    /// Every interaction up to this rowid had been read when it ran.
    watermark: i64,
    /// The whole reading of the log it knew: a newer one means a whole read.
    reading: u64,
}

/// More customers with new interactions than this: the rule reads its whole window instead.
const SCOPE_LIMIT: usize = 20_000;

/// Which customers a window rule (unhappy, departed, follow-up) looks at, and where this run
/// leaves off. Between two whole readings of the log (`daemon.reconcile`), a scheduled run
/// looks only at the customers with interactions added since its last run, and at those it
/// then skipped for a reason that passes with time (`rule_waiting`): nobody else's window can
/// have changed, except by an edit in place, which the next whole reading catches. The whole
/// window (scope `None`) on a first run, after the rule or the policy changed, after a whole
/// reading, and always for a plan, a forecast or an event (which has its own customers).
pub(super) fn scope(
    config: &Config,
    log: &Log,
    outbox: &Outbox,
    rule: &Rule,
    pass: &Pass<'_>,
) -> Result<(Option<Vec<Value>>, Option<Mark>), EvaluateError> {
    let window_rule = matches!(
        rule.kind,
        RuleKind::Unhappy { .. } | RuleKind::Departed { .. } | RuleKind::Followup { .. }
    );
    let (Some((watermark, reading)), true) = (
        log.horizon_position(),
        window_rule && pass.only.is_none() && !pass.decisions.shown() && !outbox.is_dry_run(),
    ) else {
        return Ok((None, None));
    };
    let mark = Mark {
        fingerprint: fingerprint(config, rule),
        watermark,
        reading,
    };
    let last: Option<Mark> = outbox.setting(Setting::RuleMark(&rule.name))?;
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
fn id_key(id: &Value) -> (u8, Vec<u8>) {
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
    hex::encode(&digest[..16])
}

/// After a window rule's turn: who waits on time among those it looked at (`scope`, or all),
/// and where it left off.
pub(super) fn keep(
    outbox: &Outbox,
    rule: &Rule,
    scope: Option<&[Value]>,
    waiting: &[Value],
    mark: &Mark,
) -> Result<(), EvaluateError> {
    outbox.set_waiting(&rule.name, scope, waiting)?;
    outbox.set_setting(Setting::RuleMark(&rule.name), mark)?;
    Ok(())
}
