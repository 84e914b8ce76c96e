//! `GET /metrics`: the Prometheus text format (OpenMetrics, as `prometheus-client` writes it).
//! The daemon's own measurements ([`crate::metrics`]) beside what the state database knows,
//! read at each scrape: notes by state, bounces by rule, what came back by kind, the oldest
//! waiting note's age, each loop's last progress, and the build.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tracing::warn;

use super::Web;
use crate::metrics::{METRICS, RuleLabel};
use crate::outbox::Outbox;

/// A note state label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct One {
    state: String,
}

/// What came back, by kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

/// One of the daemon's loops.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Loop {
    name: String,
}

/// The build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: String,
}

/// What the state database says at one scrape.
struct Snapshot {
    by_state: Vec<(String, i64)>,
    bounced: Vec<(String, i64)>,
    inbound: Vec<(String, i64)>,
    oldest_waiting: Option<i64>,
}

fn snapshot(state: &std::path::Path) -> Result<Snapshot, crate::error::Error> {
    let outbox = Outbox::open_dry_run(state)?;
    Ok(Snapshot {
        by_state: outbox
            .counts()?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        bounced: outbox.bounced_by_rule()?,
        inbound: outbox.inbound_counts(0)?.into_iter().collect(),
        oldest_waiting: outbox.oldest_waiting()?,
    })
}

/// A counter per label of counts read from the state database.
fn counted<L>(rows: Vec<(String, i64)>, label: impl Fn(String) -> L) -> Family<L, Counter>
where
    L: Clone + std::hash::Hash + Eq,
{
    let family = Family::<L, Counter>::default();
    for (key, n) in rows {
        family.get_or_create(&label(key)).inc_by(n.max(0) as u64);
    }
    family
}

/// `GET /metrics`.
pub(super) async fn scrape(State(web): State<Arc<Web>>) -> Response {
    let loaded = (web.context.loaded)();
    let state = loaded.config.state_path.clone();
    let read = tokio::task::spawn_blocking(move || snapshot(&state)).await;
    let snapshot = match read {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(err)) => {
            warn!(error = %err, "/metrics: cannot read the state database");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the state database: {err}\n"),
            )
                .into_response();
        }
        Err(err) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response();
        }
    };
    let mut registry = Registry::default();
    METRICS.register(&mut registry);
    let notes = Family::<One, Gauge>::default();
    for (state, n) in snapshot.by_state {
        notes.get_or_create(&One { state }).set(n);
    }
    registry.register(
        "rekindle_notes",
        "Notes in the state database, by state",
        notes,
    );
    let bounced = counted(snapshot.bounced, |rule| RuleLabel { rule });
    registry.register(
        "rekindle_notes_bounced",
        "Notes a hard bounce came back for, by rule",
        bounced,
    );
    let inbound = counted(snapshot.inbound, |kind| Kind { kind });
    registry.register("rekindle_inbound_messages", "Messages that came back (bounces, replies, automatic replies, complaints, unsubscribes), by kind", inbound);
    let now = crate::clock::now().as_second();
    let oldest = Gauge::<i64>::default();
    oldest.set(snapshot.oldest_waiting.map_or(0, |at| (now - at).max(0)));
    registry.register_with_unit(
        "rekindle_oldest_waiting_note_age",
        "Age of the oldest note still waiting to go (queued or retrying); 0 when none waits",
        Unit::Seconds,
        oldest,
    );
    let beats = Family::<Loop, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (name, age) in (web.context.beats)() {
        beats
            .get_or_create(&Loop {
                name: name.to_string(),
            })
            .set(age);
    }
    registry.register_with_unit(
        "rekindle_loop_last_progress_age",
        "How long ago each loop (scheduler, event watcher, delivery loop) last showed progress",
        Unit::Seconds,
        beats,
    );
    let build = Family::<Build, Gauge>::default();
    build
        .get_or_create(&Build {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
    registry.register("rekindle_build_info", "The running build", build);
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
