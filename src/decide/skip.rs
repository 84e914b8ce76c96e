//! Why a matched customer gets no note from a rule now: every reason, its key and its words.

use std::fmt;

use jiff::Timestamp;

use crate::note::NoteState;

/// Why a matched customer gets no note from this rule now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Skip {
    /// The customer opted out (the `opted_out` column).
    OptedOut,
    /// The customer sent an unsubscribe interaction.
    Unsubscribed,
    /// The customer is on the suppression list.
    Suppressed,
    /// The customer's choice on the preferences page keeps this note from them (the words say
    /// which choice).
    Preference(String),
    /// A complaint is still open, and this rule waits until it is resolved.
    OpenComplaint,
    /// The complaint was resolved before an apology went: a follow-up fits better.
    Resolved,
    /// With rekindle's own notes, the customer's touch points already meet the target.
    RatioMet {
        /// Positive touch points, rekindle's notes included.
        positive: i64,
        /// Negative ones.
        negative: i64,
    },
    /// The rule writes only to customers whose ledger is healthy, and this one's is not.
    LedgerBelow {
        /// Positive touch points, rekindle's notes included.
        positive: i64,
        /// Negative ones.
        negative: i64,
        /// The rule's `ledger_at_least`.
        at_least: f64,
    },
    /// The email address is unusable.
    InvalidAddress(String),
    /// Another problem with the row.
    BadRow(String),
    /// This rule already has a note for this occasion (in the given state).
    AlreadyQueued(NoteState),
    /// Another customer at the same address gets this rule's note for this occasion.
    SameAddress(String),
    /// This rule wrote to this customer too recently.
    Cooldown {
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// The customer already got `cap` notes within the cap window, from any rule.
    Capped {
        /// The cap.
        cap: u32,
    },
    /// The rule reached its daily limit.
    DailyLimit(u32),
    /// The template failed for this customer.
    Render(String),
}

impl Skip {
    /// Whether the reason can pass with time alone, without a new interaction or an edit: a
    /// cooldown or the cap window ends, a day starts, a complaint window closes, a suppression
    /// is lifted, a template is mended.
    pub(crate) fn may_pass(&self) -> bool {
        matches!(
            self,
            Skip::Cooldown { .. }
                | Skip::Capped { .. }
                | Skip::DailyLimit(_)
                | Skip::OpenComplaint
                | Skip::Suppressed
                | Skip::Preference(_)
                | Skip::Render(_)
                | Skip::RatioMet { .. }
        )
    }

    /// A short stable key for summaries and logs.
    pub(crate) fn key(&self) -> &'static str {
        match self {
            Skip::OptedOut => "opted-out",
            Skip::Unsubscribed => "unsubscribed",
            Skip::Suppressed => "suppressed",
            Skip::Preference(_) => "preference",
            Skip::OpenComplaint => "open-complaint",
            Skip::Resolved => "resolved",
            Skip::RatioMet { .. } => "ratio-met",
            Skip::LedgerBelow { .. } => "ledger-below",
            Skip::InvalidAddress(_) => "invalid-address",
            Skip::BadRow(_) => "bad-row",
            Skip::AlreadyQueued(_) => "already-queued",
            Skip::SameAddress(_) => "same-address",
            Skip::Cooldown { .. } => "cooldown",
            Skip::Capped { .. } => "cap",
            Skip::DailyLimit(_) => "daily-limit",
            Skip::Render(_) => "template-error",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::OptedOut => write!(f, "opted out"),
            Skip::Unsubscribed => write!(f, "unsubscribed (an unsubscribe interaction)"),
            Skip::Suppressed => write!(f, "on the suppression list"),
            Skip::Preference(why) => write!(f, "{why}"),
            Skip::OpenComplaint => write!(
                f,
                "a complaint is still open; this rule waits until it is resolved"
            ),
            Skip::RatioMet { positive, negative } => write!(
                f,
                "{positive} positive to {negative} negative touch points (rekindle's notes included) already meet the target"
            ),
            Skip::LedgerBelow {
                positive,
                negative,
                at_least,
            } => write!(
                f,
                "{positive} positive to {negative} negative touch points: below the {at_least} : 1 this rule waits for"
            ),
            Skip::Resolved => write!(
                f,
                "the complaint was already resolved; a follow-up rule thanks them instead"
            ),
            Skip::InvalidAddress(a) => write!(f, "invalid email address {a:?}"),
            Skip::BadRow(why) => write!(f, "bad row: {why}"),
            Skip::AlreadyQueued(state) => write!(f, "already {state} for this occasion"),
            Skip::SameAddress(other) => write!(
                f,
                "customer {other} has the same email address and gets this rule's note for this occasion: one person, one note"
            ),
            Skip::Cooldown { until } => write!(f, "cooldown of this rule until {until}"),
            Skip::Capped { cap } => {
                write!(f, "frequency cap: already {cap} note(s) in the cap window")
            }
            Skip::DailyLimit(limit) => write!(f, "daily limit of {limit} reached"),
            Skip::Render(why) => write!(f, "template failed: {why}"),
        }
    }
}
