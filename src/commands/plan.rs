//! `rekindle plan`: a dry run at a moment (who would get what, and why others are skipped), or
//! a forecast of the next days.

use std::cell::RefCell;
use std::io::{Read, Seek, Write};
use std::path::Path;

use jiff::Timestamp;

use super::parse_at;
use crate::error::Error;
use crate::evaluate::{self, Decision, Outcome};
use crate::load::{Loaded, load};
use crate::log::Log;
use crate::outbox::Outbox;
use crate::say_to;

/// `rekindle plan`.
pub(crate) fn plan(path: &Path, at: Option<&str>, days: Option<u32>) -> Result<(), Error> {
    let loaded = load(path)?;
    let now = parse_at(at, &loaded.config)?;
    if let Some(days) = days {
        return print_forecast(&loaded, now, days);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&loaded, now, &mut out)?;
    if let Err(err) = out.flush() {
        crate::output_failed(err);
    }
    Ok(())
}

/// Writes the plan at `now` to `out`: each rule's summary, then its decisions. The decisions
/// are written to an unnamed temporary file as they are made, and copied after their rule's
/// summary once it is known: memory stays the same however many customers match.
fn write(loaded: &Loaded, now: Timestamp, out: &mut impl Write) -> Result<(), Error> {
    let config = &loaded.config;
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let temp = std::env::temp_dir();
    let spool =
        tempfile::tempfile_in(&temp).map_err(|e| Error::io("create a file in", &temp, e))?;
    let spool = RefCell::new(Spool {
        file: std::io::BufWriter::new(spool),
        rules: Vec::new(),
        failed: None,
    });
    let each = |rule: &str, decision: Decision| spool.borrow_mut().add(rule, &decision);
    let rules: Vec<_> = config.rules.iter().collect();
    let pass = evaluate::Pass {
        decisions: evaluate::Decisions::Each(&each),
        ..evaluate::Pass::new(&rules, now)
    };
    let reports = evaluate::run(config, &loaded.templates, &log, &outbox, &pass)?;
    let Spool {
        file,
        rules,
        failed,
    } = spool.into_inner();
    let mut file = match failed {
        Some(err) => Err(err),
        None => file.into_inner().map_err(|e| e.into_error()),
    }
    .and_then(|mut file| file.rewind().map(|()| file))
    .map_err(|e| Error::io("write the plan to a temporary file in", &temp, e))?;
    let at = now.to_zoned_datetime(config.timezone.clone());
    let at = at.strftime("%Y-%m-%d %H:%M %Z");
    let tz = &config.timezone_name;
    say_to(
        out,
        &format!("plan at {at} ({tz}): nothing is sent or written"),
    );
    let mut rules = rules.into_iter().peekable();
    for r in &reports {
        say_to(out, &format!("\nrule {}: {}", r.rule, r.summary()));
        let (decided, bytes) = rules
            .next_if(|(rule, ..)| *rule == r.rule)
            .map_or((0, 0), |(_, decided, bytes)| (decided, bytes));
        if let Err(err) = std::io::copy(&mut (&mut file).take(bytes), out) {
            crate::output_failed(err);
        }
        // Only a reached daily limit leaves customers without a decision.
        let waiting = r.matched - decided;
        if let Some(limit) = config.rule(&r.rule).and_then(|rule| rule.daily_limit)
            && waiting > 0
        {
            say_to(
                out,
                &format!(
                    "  and {waiting} more wait for another day: the daily limit of {limit} is reached"
                ),
            );
        }
    }
    Ok(())
}

/// The plan's decisions as they are made (see [`write`]).
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    /// Each rule that decided something, in turn: its name, its decisions and their bytes.
    rules: Vec<(String, u64, u64)>,
    /// The first write that failed (the rest are not tried).
    failed: Option<std::io::Error>,
}

impl Spool {
    /// Writes `decision` of `rule` as its line of the plan.
    fn add(&mut self, rule: &str, decision: &Decision) {
        if self.failed.is_some() {
            return;
        }
        let (id, occasion) = (&decision.customer_id, &decision.occasion);
        let line = match &decision.outcome {
            Outcome::Queued {
                subject,
                recipient: to,
            } => format!("  send  customer {id} ({occasion}) <{to}>: {subject:?}\n"),
            Outcome::Skipped(skip) => format!("  skip  customer {id} ({occasion}): {skip}\n"),
        };
        let line = crate::inert::for_terminal(&line);
        if let Err(err) = self.file.write_all(line.as_bytes()) {
            self.failed = Some(err);
            return;
        }
        match self.rules.last_mut() {
            Some((last, decided, bytes)) if last == rule => {
                *decided += 1;
                *bytes += line.len() as u64;
            }
            _ => self.rules.push((rule.to_string(), 1, line.len() as u64)),
        }
    }
}

/// `rekindle plan --days N`.
fn print_forecast(loaded: &Loaded, start: Timestamp, days: u32) -> Result<(), Error> {
    let config = &loaded.config;
    say!(
        "forecast of {days} day(s) from {} ({}), each rule at its first scheduled minute of the day, on the log as it is now: nothing is sent or written",
        start
            .to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M"),
        config.timezone_name
    );
    let mut total = 0;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    for day in super::forecast::forecast(loaded, &outbox, start, days)? {
        let queued: u64 = day.reports.iter().map(|r| r.queued).sum();
        total += queued;
        say!(
            "
{} {}: {queued} note(s)",
            day.date,
            day.date.strftime("%a")
        );
        for r in day
            .reports
            .iter()
            .filter(|r| r.matched > 0 || r.resting.is_some())
        {
            say!("  {:<24} {}", r.rule, r.summary());
        }
    }
    say!(
        "
{total} note(s) in {days} day(s)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of `config` at `now`, as `rekindle plan` prints it.
    fn planned(config: &Path, now: Timestamp) -> String {
        let loaded = load(config).expect("the demo's config loads");
        let mut out = Vec::new();
        write(&loaded, now, &mut out).expect("plan");
        String::from_utf8(out).expect("utf-8")
    }

    /// `actual` against the fixture `name`; `REKINDLE_BLESS=1` writes the fixture instead.
    fn same_as_fixture(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/plan")
            .join(name);
        if std::env::var_os("REKINDLE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("fixture dir");
            std::fs::write(&path, actual).expect("fixture");
            return;
        }
        let expected =
            std::fs::read_to_string(&path).expect("fixture (REKINDLE_BLESS=1 writes it)");
        let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
        if let Some(i) = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i)) {
            panic!(
                "the plan differs from {} at line {}:\n  expected {:?}\n  got      {:?}\n({} lines expected, {} got)",
                path.display(),
                i + 1,
                e.get(i),
                a.get(i),
                e.len(),
                a.len()
            );
        }
    }

    /// Every optimisation of the evaluation chooses the same notes: the plan of a seeded demo
    /// log, with the demo's rules (daily limits, seasons) and with a rule set without limits,
    /// line for line as it was recorded.
    #[test]
    fn a_seeded_log_plans_the_same_notes_as_recorded() {
        let dir = tempfile::tempdir().expect("dir");
        let now: Timestamp = "2026-11-25T08:30:00Z".parse().expect("now");
        let demo = crate::demo::write(dir.path(), 1500, 7, None, now).expect("demo");
        let demo_plan = planned(&demo.config, now);
        same_as_fixture("demo-1500-seed7.txt", &demo_plan);
        let text = std::fs::read_to_string(&demo.config).expect("config");
        let no_limits = dir.path().join("no-limits.toml");
        let rules = include_str!("../../benches/no-daily-limits.toml");
        std::fs::write(&no_limits, crate::with_rules(&text, rules)).expect("config");
        same_as_fixture("no-limits-1500-seed7.txt", &planned(&no_limits, now));
    }
}
