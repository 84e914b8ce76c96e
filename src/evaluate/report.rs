//! What an evaluation reports: per rule, how many customers matched, were queued a note or were
//! skipped (by reason), and for `plan` and `explain` every decision.

use std::collections::BTreeMap;

use crate::decide::Skip;

/// What happened to one matched customer (shown by `plan` and `explain`).
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    /// The customer's id.
    pub customer_id: String,
    /// The occasion.
    pub occasion: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// The fate of one candidate.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A note was (or, in a plan, would be) queued.
    Queued {
        /// Its subject.
        subject: String,
        /// Its address.
        recipient: String,
    },
    /// No note, for this reason.
    Skipped(Skip),
}

/// What one rule did in one evaluation.
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
    /// Every decision, when asked to keep them (`explain`).
    pub decisions: Vec<Decision>,
    /// How long its turn took: composing and queueing, and waiting for what its selection had
    /// not yet read (which began up to three rules earlier, see `AT_ONCE`).
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
