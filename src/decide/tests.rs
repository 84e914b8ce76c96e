//! Policy decisions with a fixed clock.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::config::{Config, Policy, Rule};
use crate::test_config;

fn rule(extra: &str) -> (Rule, Policy) {
    let quiet = test_config::rule(
        "r",
        "quiet",
        "0 10 * * *",
        "q.j2",
        &format!("cooldown = \"10d\"\n{extra}"),
    );
    let text = test_config::config(
        &test_config::SCRATCH,
        &test_config::maildir("m"),
        None,
        &quiet,
    );
    let (config, d) = Config::parse(Path::new("c.toml"), text);
    assert!(d.is_empty(), "{d:?}");
    let config = config.expect("config");
    (config.rules[0].clone(), config.policy)
}

/// The facts of a customer who can be written to, with nothing holding notes back but
/// `opted_out`, `history` and `queued_today`.
fn facts(opted_out: bool, history: &History, queued_today: u32) -> Facts {
    Facts {
        unusable: None,
        opted_out,
        suppressed: false,
        standing: Standing::default(),
        preference: None,
        complaint: false,
        ledger: None,
        history: history.clone(),
        queued_today,
    }
}

/// [`decide`] as the policy tests ask it.
fn decide_for(
    opted_out: bool,
    rule: &Rule,
    history: &History,
    queued_today: u32,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), Skip> {
    decide(&facts(opted_out, history, queued_today), rule, policy, now)
}

fn now() -> Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("time")
}

#[test]
fn a_fresh_customer_gets_the_note() {
    let (rule, policy) = rule("");
    assert_eq!(
        decide_for(false, &rule, &History::default(), 0, &policy, now()),
        Ok(())
    );
}

#[test]
fn opt_out_wins_over_everything() {
    let (rule, policy) = rule("");
    assert_eq!(
        decide_for(true, &rule, &History::default(), 0, &policy, now()),
        Err(Skip::OptedOut)
    );
}

#[test]
fn one_note_per_occasion() {
    let (rule, policy) = rule("");
    let history = History {
        occasion_state: Some(NoteState::Sent),
        ..History::default()
    };
    assert_eq!(
        decide_for(false, &rule, &history, 0, &policy, now()),
        Err(Skip::AlreadyQueued(NoteState::Sent))
    );
}

#[test]
fn cooldown_holds_until_it_ends() {
    let (rule, policy) = rule("");
    let nine_days_ago = now() - SignedDuration::from_hours(9 * 24);
    let history = History {
        last_from_rule: Some(nine_days_ago),
        ..History::default()
    };
    assert_eq!(
        decide_for(false, &rule, &history, 0, &policy, now()),
        Err(Skip::Cooldown {
            until: nine_days_ago + SignedDuration::from_hours(10 * 24)
        })
    );
    let eleven_days_ago = now() - SignedDuration::from_hours(11 * 24);
    let history = History {
        last_from_rule: Some(eleven_days_ago),
        ..History::default()
    };
    assert_eq!(
        decide_for(false, &rule, &history, 0, &policy, now()),
        Ok(())
    );
}

#[test]
fn the_cap_counts_notes_of_every_rule() {
    let (rule, policy) = rule("");
    let history = History {
        in_cap_window: 1,
        ..History::default()
    };
    assert_eq!(
        decide_for(false, &rule, &history, 0, &policy, now()),
        Err(Skip::Capped { cap: 1 })
    );
}

#[test]
fn daily_limit_stops_the_rule_for_the_day() {
    let (rule, policy) = rule("daily_limit = 2");
    assert_eq!(
        decide_for(false, &rule, &History::default(), 1, &policy, now()),
        Ok(())
    );
    assert_eq!(
        decide_for(false, &rule, &History::default(), 2, &policy, now()),
        Err(Skip::DailyLimit(2))
    );
}
