//! `rekindle run --once`: every rule once at the current time, then delivery of what is due.

use std::path::Path;

use jiff::Timestamp;

use crate::deliver::{self, DeliveryLock, DeliveryReport, Transport};
use crate::error::Error;
use crate::evaluate::{self, RuleReport};
use crate::load::{Loaded, load};
use crate::log::Log;
use crate::outbox::Outbox;

/// `rekindle run --once`: every rule once at the current time, then delivery of what is due.
pub(crate) fn run_once(path: &Path) -> Result<(), Error> {
    let loaded = load(path)?;
    let (reports, delivery) = evaluate_and_deliver(&loaded, crate::clock::now())?;
    // What is left waiting for its time, said once at the end (the daemon's passes do not ask).
    let later = Outbox::open_dry_run(&loaded.config.state_path)?.not_yet_due(crate::clock::now())?;
    print_summary(&loaded.config, &reports, &delivery, later.as_ref());
    Ok(())
}

/// Evaluates every rule at `now` and delivers every due note: the path shared by `run --once`
/// and `demo`.
pub(crate) fn evaluate_and_deliver(
    loaded: &Loaded,
    now: Timestamp,
) -> Result<(Vec<RuleReport>, DeliveryReport), Error> {
    let config = &loaded.config;
    // Held until the notes are delivered: a daemon or another run cannot claim them meanwhile.
    let _one_deliverer = DeliveryLock::take(&config.state_path)?;
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open(&config.state_path)?;
    deliver::park_interrupted(&outbox, crate::clock::now())?;
    let runtime = deliver::runtime().map_err(|e| Error::io("start the delivery runtime", "", e))?;
    // What came back first: a bounce or a reply read now counts in this run's decisions.
    if !config.inbound.sources.is_empty() {
        runtime.block_on(crate::inbound::read_all_once(std::sync::Arc::new(
            config.clone(),
        )));
    }
    let rules: Vec<_> = config.rules.iter().collect();
    let reports = evaluate::run(
        config,
        &loaded.templates,
        &log,
        &outbox,
        &evaluate::Pass::new(&rules, now),
    )?;
    for r in &reports {
        tracing::info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, "{}", r.summary());
    }
    crate::evaluate::digest::queue(config, &loaded.templates, &log, &outbox, now)?;
    let transport = std::sync::Arc::new(Transport::from_config(config)?);
    let delivery = deliver::deliver_due(
        &outbox,
        Some(&log),
        &transport,
        config,
        &runtime,
        &deliver::Steering {
            clock: &crate::clock::now,
            pace: &|| deliver::Pace::Go,
            progress: &|| {},
        },
    )?;
    Ok((reports, delivery))
}

fn print_summary(
    config: &crate::config::Config,
    reports: &[RuleReport],
    delivery: &DeliveryReport,
    later: Option<&crate::outbox::NotYetDue>,
) {
    for r in reports {
        match delivery.for_rule(&r.rule) {
            Some(sent) => say!("{:<24} {}; {sent}", r.rule, r.summary()),
            None => say!("{:<24} {}", r.rule, r.summary()),
        }
    }
    if let Some(pause) = &delivery.paused {
        say!(
            "delivery paused until {}: {}",
            pause.next_try(),
            pause.reason
        );
    }
    if let Some(later) = later {
        let show = |s: i64| super::local_time(config, s, "%Y-%m-%d %H:%M %Z");
        say!("{}", super::not_yet_due(later, &show));
    }
    say!(
        "delivery: sent {}, retrying {}, failed {}, unknown {} in {:.3} s",
        delivery.sent,
        delivery.retried,
        delivery.failed,
        delivery.unknown,
        delivery.elapsed.as_secs_f64()
    );
}
