//! What the daemon measures as it goes, for `/metrics` (the Prometheus text format, through the
//! Prometheus project's own `prometheus-client`): notes sent and failed by rule, each rule's
//! evaluation time, and how long a new interaction takes to become a queued note. What the state
//! database already knows (notes by state, bounces, what came back, the oldest waiting note) is
//! read when `/metrics` is asked for (see `web::metrics`). Labels carry rule names, states and
//! kinds, never an address or a name.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// A metric's rule label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabel {
    /// The rule's name.
    pub rule: String,
}

/// The daemon's own measurements, kept for the process's life.
pub(crate) struct Metrics {
    /// Notes the mail server accepted, by rule.
    pub sent: Family<RuleLabel, Counter>,
    /// Notes that failed for good, by rule.
    pub failed: Family<RuleLabel, Counter>,
    /// How long each rule's evaluation took.
    pub evaluation: Family<RuleLabel, Histogram>,
    /// From noticing a new interaction in the log to its notes committed to the outbox.
    pub event_to_queued: Histogram,
}

fn evaluation_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// The process's measurements.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    sent: Family::default(),
    failed: Family::default(),
    evaluation: Family::new_with_constructor(evaluation_histogram),
    event_to_queued: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 12,
    )),
});

impl Metrics {
    /// Adds these measurements to `registry` (the families are shared, not copied).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "rekindle_notes_sent",
            "Notes the mail server accepted, by rule, since the daemon started",
            self.sent.clone(),
        );
        registry.register(
            "rekindle_notes_failed",
            "Notes that failed for good, by rule, since the daemon started",
            self.failed.clone(),
        );
        registry.register_with_unit(
            "rekindle_rule_evaluation",
            "How long each rule's evaluation took",
            Unit::Seconds,
            self.evaluation.clone(),
        );
        registry.register_with_unit(
            "rekindle_event_to_queued",
            "From noticing a new interaction in the log (a file notification, within milliseconds of its commit) to its notes committed to the outbox",
            Unit::Seconds,
            self.event_to_queued.clone(),
        );
    }

    /// Records what one rule's evaluation took.
    pub(crate) fn evaluated(&self, rule: &str, took: std::time::Duration) {
        self.evaluation
            .get_or_create(&RuleLabel { rule: rule.into() })
            .observe(took.as_secs_f64());
    }
}
