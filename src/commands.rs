//! The one-shot commands: `check`, `run --once`, `plan`, `preview`, `status`.

use std::ops::ControlFlow;
use std::path::Path;

use jiff::Timestamp;

use crate::compose::{NoteContext, Templates, recipient};
use crate::config::{Config, Diagnostic};
use crate::cycle::{self, RuleReport};
use crate::deliver::{self, DeliveryReport, Transport};
use crate::error::Error;
use crate::log::Log;
use crate::outbox::{Outbox, StoredNote};
use crate::rules::{self, Candidate};

/// A configuration that passed every check, with its compiled templates.
pub(crate) struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Its templates.
    pub templates: Templates,
}

/// Loads and checks everything `run` needs: the config, the templates and the log's schema.
/// Returns every problem found (warnings are printed to stderr either way).
pub(crate) fn load(path: &Path) -> Result<Loaded, Error> {
    let (config, mut diagnostics) = Config::load(path);
    let loaded = config.and_then(|mut config| {
        if let Err(d) = config.read_secrets() {
            diagnostics.push(d);
        }
        let (templates, template_diagnostics) = Templates::load(&config);
        diagnostics.extend(template_diagnostics);
        diagnostics.extend(environment_problems(&config));
        templates.map(|templates| Loaded { config, templates })
    });
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    for w in &warnings {
        eprintln!("{w}");
    }
    match loaded {
        Some(loaded) if errors.is_empty() => Ok(loaded),
        _ => Err(Error::Config(errors)),
    }
}

/// Checks against the outside world, doing only what `run` would do: open the log read-only,
/// check its schema and every segment, read the SMTP password.
fn environment_problems(config: &Config) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    match Log::open(&config.log_path) {
        Err(err) => problems.push(Diagnostic::error_in(
            &config.file,
            format!("{err}; check [paths] log"),
        )),
        Ok(log) => {
            match log.schema_problems() {
                Ok(list) => problems.extend(
                    list.into_iter()
                        .map(|p| Diagnostic::error_in(&config.log_path, p)),
                ),
                Err(err) => problems.push(Diagnostic::error_in(&config.log_path, err.to_string())),
            }
            for rule in &config.rules {
                if let Some(segment) = &rule.segment
                    && let Some(problem) = log.segment_problem(segment)
                {
                    let message = format!("rule \"{}\": {problem}", rule.name);
                    problems.push(config.error_at(rule.spans.segment.clone(), message));
                }
            }
            if let Some(rule) = config.rules.iter().find(|r| r.on_interaction)
                && let Some(problem) = log.rowid_problem()
            {
                let message = format!("rule \"{}\": {problem}", rule.name);
                problems.push(config.error_at(rule.spans.name.clone(), message));
            }
            if let Some(mode) = log.rollback_journal() {
                let message = format!(
                    "the log uses a rollback journal (journal_mode = {mode}): while rekindle reads it, the programs that write it wait for the read to end (on a large log, seconds; see README, \"Large logs\"). With WAL they never wait: run `sqlite3 {} 'PRAGMA journal_mode=WAL'` once, while nothing else has it open",
                    config.log_path.display()
                );
                problems.push(Diagnostic::error_in(&config.log_path, message).warning());
            }
        }
    }
    let servers = match &config.transport {
        crate::config::Transport::Smtp(servers) => servers.as_slice(),
        crate::config::Transport::Maildir { .. } => &[],
    };
    for smtp in servers {
        if let Err(why) = smtp.check_password(config.base_dir()) {
            let message = format!("[transport.smtp]: {why}");
            problems.push(Diagnostic::error_in(&config.file, message));
        }
        if let Some(warning) = smtp.password_file_warning(config.base_dir()) {
            let message = format!("[transport.smtp]: {warning}");
            problems.push(Diagnostic::error_in(&config.file, message).warning());
        }
    }
    problems
}

/// `rekindle check`.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    say!(
        "{}: ok: {} rule(s), log {}, state {}, transport {}",
        config.file.display(),
        config.rules.len(),
        config.log_path.display(),
        config.state_path.display(),
        match &config.transport {
            crate::config::Transport::Maildir { dir } => format!("maildir {}", dir.display()),
            crate::config::Transport::Smtp(servers) => format!(
                "smtp {}",
                servers
                    .iter()
                    .map(|s| s.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", then ")
            ),
        }
    );
    for rule in &config.rules {
        let mut when: Vec<String> = rule
            .schedule
            .iter()
            .map(|s| format!("schedule \"{}\"", s.text))
            .collect();
        if rule.on_interaction {
            when.push("on new interactions".into());
        }
        say!(
            "  rule {:<20} {:<9} {}, priority {}, template {}{}",
            rule.name,
            rule.kind.name(),
            when.join(" and "),
            rule.priority,
            rule.template,
            if rule.enabled { "" } else { " (disabled)" }
        );
    }
    Ok(())
}

/// `rekindle run --once`: every rule once at the current time, then delivery of what is due.
pub(crate) fn run_once(path: &Path) -> Result<(), Error> {
    let loaded = load(path)?;
    let (reports, delivery) = evaluate_and_deliver(&loaded, Timestamp::now())?;
    print_summary(&reports, &delivery);
    Ok(())
}

/// Evaluates every rule at `now` and delivers every due note: the path shared by `run --once`
/// and `demo`.
pub(crate) fn evaluate_and_deliver(
    loaded: &Loaded,
    now: Timestamp,
) -> Result<(Vec<RuleReport>, DeliveryReport), Error> {
    let config = &loaded.config;
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open(&config.state_path)?;
    park_interrupted(&outbox)?;
    let rules: Vec<_> = config.rules.iter().collect();
    let reports = cycle::evaluate(
        config,
        &loaded.templates,
        &log,
        &outbox,
        &cycle::Pass::new(&rules, now),
    )?;
    for r in &reports {
        tracing::info!(rule = %r.rule, elapsed_ms = r.elapsed.as_millis() as u64, "{}", r.summary());
    }
    crate::digest::queue(config, &loaded.templates, &log, &outbox, now)?;
    let runtime = deliver::runtime().map_err(Error::Runtime)?;
    let transport = std::sync::Arc::new(Transport::from_config(config).map_err(Error::Runtime)?);
    let delivery = deliver::deliver_due(
        &outbox,
        Some(&log),
        &transport,
        config,
        &runtime,
        &Timestamp::now,
        &|| true,
    )?;
    Ok((reports, delivery))
}

/// Parks notes a previous run left in `sending`, logging each for an operator.
pub(crate) fn park_interrupted(outbox: &Outbox) -> Result<(), Error> {
    for note in outbox.park_interrupted(Timestamp::now())? {
        tracing::warn!(note_id = note.id, rule = %note.rule, customer_id = %note.customer_id, "note parked as unknown: the previous run stopped while sending it; it is not resent automatically");
    }
    Ok(())
}

fn print_summary(reports: &[RuleReport], delivery: &DeliveryReport) {
    for r in reports {
        match delivery.for_rule(&r.rule) {
            Some(sent) => say!("{:<24} {}; {sent}", r.rule, r.summary()),
            None => say!("{:<24} {}", r.rule, r.summary()),
        }
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

/// Parses `--at`: a timestamp with an offset, or a civil date-time or date in `tz`.
pub(crate) fn parse_at(text: Option<&str>, config: &Config) -> Result<Timestamp, Error> {
    let Some(text) = text else {
        return Ok(Timestamp::now());
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = text.parse::<jiff::civil::DateTime>().or_else(|_| {
        text.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    civil
        .and_then(|dt| dt.to_zoned_datetime(config.timezone.clone()))
        .map(|z| z.timestamp())
        .map_err(|_| {
            Error::Usage(format!(
                "cannot read --at {text:?}; write e.g. \"2027-02-11T09:00:00Z\", \"2027-02-11 09:00\" or \"2027-02-11\""
            ))
        })
}

/// `rekindle plan`.
pub(crate) fn plan(path: &Path, at: Option<&str>, days: Option<u32>) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    if let Some(days) = days {
        return print_forecast(&loaded, now, days);
    }
    let log = Log::open(&config.log_path)?;
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let rules: Vec<_> = config.rules.iter().collect();
    let pass = cycle::Pass {
        keep_decisions: true,
        ..cycle::Pass::new(&rules, now)
    };
    let reports = cycle::evaluate(config, &loaded.templates, &log, &outbox, &pass)?;
    say!(
        "plan at {} ({}): nothing is sent or written",
        now.to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M %Z"),
        config.timezone_name
    );
    for r in &reports {
        say!("\nrule {}: {}", r.rule, r.summary());
        for d in &r.decisions {
            match &d.outcome {
                Ok((subject, to)) => say!(
                    "  send  customer {} ({}) <{to}>: {subject:?}",
                    d.customer_id,
                    d.occasion
                ),
                Err(skip) => say!(
                    "  skip  customer {} ({}): {skip}",
                    d.customer_id,
                    d.occasion
                ),
            }
        }
        // Only a reached daily limit leaves customers without a decision.
        let waiting = r.matched - r.decisions.len() as u64;
        if let Some(limit) = config.rule(&r.rule).and_then(|rule| rule.daily_limit)
            && waiting > 0
        {
            say!(
                "  and {waiting} more wait for another day: the daily limit of {limit} is reached"
            );
        }
    }
    Ok(())
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
    for day in crate::forecast::forecast(loaded, &outbox, start, days)? {
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

/// `rekindle preview`.
pub(crate) fn preview(
    path: &Path,
    rule_name: &str,
    customer_id: &str,
    at: Option<&str>,
) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    let Some(rule) = config.rule(rule_name) else {
        let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no rule named {rule_name:?}{}; rules: {}",
            crate::config::diag::suggestion(rule_name, names.iter().copied()),
            names.join(", ")
        )));
    };
    let log = Log::open(&config.log_path)?;
    let Some((row, latest)) = log.customer(customer_id)? else {
        return Err(Error::Usage(format!(
            "no customer with id {customer_id:?} in {}",
            config.log_path.display()
        )));
    };
    // Prefer the candidate the rule itself would produce; otherwise preview with the customer's
    // latest interaction, and say so.
    let mut found: Option<Candidate> = None;
    let only = [row.id.clone()];
    rules::select(&log, config, rule, now, Some(&only), |c| {
        if c.customer.id_text == row.id_text {
            found = Some(c);
            ControlFlow::Break(rules::Rest::Stop)
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let candidate = found.unwrap_or_else(|| {
        eprintln!("note: customer {customer_id} does not match rule {rule_name:?} now; previewing with their latest interaction");
        Candidate {
            customer: row.clone(),
            occasion: "preview".into(),
            happened_at: latest.as_ref().map(|t| t.at),
            ledger: None,
            trigger: latest,
            days_quiet: None,
            season_year: None,
        }
    });
    let recipient = recipient(&row, config, now).map_err(|skip| {
        Error::Runtime(format!("customer {customer_id} would be skipped: {skip}"))
    })?;
    let interactions = log.interaction_count(&row.id)?;
    let ctx = NoteContext::new(config, rule, &candidate, &recipient, interactions);
    let rendered = loaded.templates.render(&rule.template, &ctx).map_err(|e| {
        Error::Runtime(format!(
            "template {}: {}",
            rule.template,
            crate::compose::describe(&e)
        ))
    })?;
    let note = StoredNote {
        id: 0,
        rule: rule.name.clone(),
        customer_id: row.id_text.clone(),
        recipient: recipient.address.to_string(),
        display_name: recipient.display_name.clone(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html,
        message_id: deliver::message_id(
            &rule.name,
            &row.id_text,
            &candidate.occasion,
            &config.sender,
        ),
        attempts: 0,
        created_at: now.as_second(),
        timezone: None,
    };
    let message = deliver::build_message(&note, &config.sender, now).map_err(Error::Runtime)?;
    say!("{}", message.headers().to_string().trim_end());
    say!("\n--- text ---\n{}", note.body_text.trim_end());
    if let Some(html) = &note.body_html {
        say!("\n--- html ---\n{html}");
    }
    Ok(())
}

/// `rekindle status`.
pub(crate) fn status(path: &Path, coverage_days: u32) -> Result<(), Error> {
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    let now = Timestamp::now();
    say!("state database: {}", config.state_path.display());
    let counts = outbox.counts()?;
    if counts.is_empty() {
        say!("no notes yet");
    }
    for (state, n) in &counts {
        say!("  {state:<10} {n}");
    }
    let show = |s: i64| local_time(&config, s, "%Y-%m-%d %H:%M %Z");
    if let Some(oldest) = outbox.oldest_waiting()? {
        say!("oldest waiting note queued {}", show(oldest));
    }
    let hour = outbox.sent_since(now - jiff::SignedDuration::from_hours(1))?;
    let day = outbox.sent_since(now - jiff::SignedDuration::from_hours(24))?;
    say!("sent in the last hour: {hour}, last 24 hours: {day}");
    if let Some((id, at, text)) = outbox.last_error()? {
        say!("last error: note {id} at {}: {text}", show(at));
    }
    // Include everyone: how many active customers felt some love lately.
    let since = now - jiff::SignedDuration::from_hours(24 * i64::from(coverage_days));
    let log = Log::open(&config.log_path)?;
    let notes_to = outbox.customers_sent_since(since)?;
    let (active, touched) = log.coverage(since, &config.touchpoints.positive, &notes_to)?;
    let share = if active > 0 {
        100.0 * touched as f64 / active as f64
    } else {
        0.0
    };
    say!(
        "coverage: {touched} of {active} active customers ({share:.0}%) had a positive touch point in the last {coverage_days} days"
    );
    Ok(())
}

/// `rekindle outbox list|resend|cancel`.
pub(crate) fn outbox(path: &Path, action: crate::cli::OutboxAction) -> Result<(), Error> {
    use crate::cli::OutboxAction;
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    let now = Timestamp::now();
    match action {
        OutboxAction::List { state, limit } => {
            let outbox = Outbox::open_dry_run(&config.state_path)?;
            let notes = outbox.list(state.as_deref(), limit)?;
            if notes.is_empty() {
                say!(
                    "no notes{}",
                    state.map(|s| format!(" in state {s}")).unwrap_or_default()
                );
            }
            for n in notes {
                let when = local_time(&config, n.updated_at, "%Y-%m-%d %H:%M");
                say!(
                    "{:>6}  {:<9} {when}  {:<20} customer {:<8} <{}> {:?} attempts {}{}",
                    n.id,
                    n.state,
                    n.rule,
                    n.customer_id,
                    n.recipient,
                    n.subject,
                    n.attempts,
                    n.detail
                        .map(|d| format!("\n        {d}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OutboxAction::Resend { ids, all, state } => {
            let outbox = Outbox::open(&config.state_path)?;
            let ids = match (all, state) {
                (true, Some(state)) => outbox.ids_in_state(&state)?,
                _ => ids,
            };
            decide_notes(&outbox, &ids, true, now)
        }
        OutboxAction::Cancel { ids } => {
            let outbox = Outbox::open(&config.state_path)?;
            decide_notes(&outbox, &ids, false, now)
        }
    }
}

/// Applies an operator's resend or cancel to each note; fails if any was refused.
fn decide_notes(outbox: &Outbox, ids: &[i64], resend: bool, now: Timestamp) -> Result<(), Error> {
    if ids.is_empty() {
        say!("no notes to change");
        return Ok(());
    }
    let mut refused = 0;
    for &id in ids {
        match outbox.operator(id, resend, now)? {
            Ok(was) => {
                let done = if resend { "queued again" } else { "cancelled" };
                tracing::info!(note_id = id, previous = %was, "note {done} by an operator");
                say!("note {id}: {was} -> {done}");
            }
            Err(why) => {
                eprintln!("note {id}: {why}");
                refused += 1;
            }
        }
    }
    if refused > 0 {
        return Err(Error::Usage(format!("{refused} note(s) left unchanged")));
    }
    Ok(())
}

/// `rekindle suppress add|remove|list`.
pub(crate) fn suppress(path: &Path, action: crate::cli::SuppressAction) -> Result<(), Error> {
    use crate::cli::SuppressAction;
    let (config, diagnostics) = Config::load(path);
    let Some(config) = config else {
        return Err(Error::Config(diagnostics));
    };
    match action {
        SuppressAction::Add { keys, reason } => {
            let outbox = Outbox::open(&config.state_path)?;
            let added = outbox.suppress(&keys, &reason, Timestamp::now())?;
            say!(
                "{added} added to the suppression list ({} already there); their queued notes will be cancelled before sending",
                keys.len() - added
            );
        }
        SuppressAction::Remove { keys } => {
            let outbox = Outbox::open(&config.state_path)?;
            let removed = outbox.unsuppress(&keys)?;
            say!("{removed} removed from the suppression list");
        }
        SuppressAction::List => {
            let outbox = Outbox::open_dry_run(&config.state_path)?;
            let list = outbox.suppressions()?;
            if list.is_empty() {
                say!("the suppression list is empty");
            }
            for (key, reason, at) in list {
                let when = local_time(&config, at, "%Y-%m-%d %H:%M");
                say!("{key:<32} {when}  {reason}");
            }
        }
    }
    Ok(())
}

/// `rekindle explain --customer ID`: the ledger, the customer's standing, and every rule's verdict.
pub(crate) fn explain(path: &Path, customer_id: &str, at: Option<&str>) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    let now = parse_at(at, config)?;
    let log = Log::open(&config.log_path)?;
    let Some((row, _)) = log.customer(customer_id)? else {
        return Err(Error::Usage(format!(
            "no customer with id {customer_id:?} in {}",
            config.log_path.display()
        )));
    };
    let outbox = Outbox::open_dry_run(&config.state_path)?;
    say!(
        "customer {} <{}> {}, at {}",
        row.id_text,
        row.email.as_deref().unwrap_or("no email"),
        row.name
            .as_deref()
            .map(|n| format!("({n})"))
            .unwrap_or_default(),
        now.to_zoned_datetime(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
    );

    // The ledger, over each ratio rule's window (or 90 days).
    let mut windows: Vec<(jiff::SignedDuration, f64)> = config
        .rules
        .iter()
        .filter_map(|r| match r.kind {
            crate::config::RuleKind::Ratio { window, target } => Some((window, target)),
            _ => None,
        })
        .collect();
    if windows.is_empty() {
        windows.push((jiff::SignedDuration::from_hours(90 * 24), 10.0));
    }
    windows.dedup();
    for (window, target) in windows {
        let since = now.checked_sub(window).unwrap_or(now);
        let points = log.touch_points(&row.id, &config.touchpoints, since)?;
        let notes = outbox.notes_to(&row.id_text, since)?;
        let ledger = rules::Ledger::total(&points, notes);
        let (positive, negative) = (ledger.positive, ledger.negative);
        let ratio = if negative == 0 {
            "no negative touch points".to_string()
        } else {
            format!(
                "{:.1} : 1 (target {target} : 1){}",
                positive as f64 / negative as f64,
                if ledger.meets(target) {
                    ""
                } else {
                    ", below target"
                }
            )
        };
        say!(
            "\nledger, last {}: {positive} positive, {negative} negative: {ratio}",
            crate::config::format_duration(window)
        );
        for (kind, class, n) in &points {
            say!("  {class:<8} {kind:<16} {n}");
        }
        if notes > 0 {
            say!("  positive rekindle notes  {notes}");
        }
    }

    let standing = log.standing(&row.id, &config.policy, now)?;
    let suppressed = outbox.suppressed(&row.id_text, row.email.as_deref().unwrap_or_default())?;
    let mut flags = Vec::new();
    if standing.opted_out {
        flags.push("opted out");
    }
    if standing.unsubscribed {
        flags.push("unsubscribed");
    }
    if suppressed {
        flags.push("on the suppression list");
    }
    if standing.open_complaint {
        flags.push("a complaint is open");
    }
    say!(
        "\nstanding: {}",
        if flags.is_empty() {
            "nothing holds notes back".to_string()
        } else {
            flags.join(", ")
        }
    );

    // Every rule, as a dry run restricted to this customer (highest priority first, so a note
    // an earlier rule would queue counts against the cap of the later ones).
    let rules: Vec<_> = config.rules.iter().collect();
    let only = [row.id.clone()];
    let pass = cycle::Pass {
        keep_decisions: true,
        only: Some(&only),
        ..cycle::Pass::new(&rules, now)
    };
    let reports = cycle::evaluate(config, &loaded.templates, &log, &outbox, &pass)?;
    say!("\nrules (highest priority first):");
    for report in &reports {
        let Some(rule) = config.rule(&report.rule) else {
            continue;
        };
        let verdict = match report.decisions.first() {
            Some(d) => match &d.outcome {
                Ok((subject, _)) => format!("would queue \"{subject}\" ({})", d.occasion),
                Err(skip) => format!("skipped: {skip}"),
            },
            None => format!("not selected now: needs {}", rule.kind.describe()),
        };
        say!("  {:<24} {verdict}", report.rule);
    }
    let disabled: Vec<&str> = config
        .rules
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.as_str())
        .collect();
    if !disabled.is_empty() {
        say!("  disabled: {}", disabled.join(", "));
    }
    Ok(())
}

/// Unix seconds as local time in `defaults.timezone`, for people.
fn local_time(config: &Config, secs: i64, format: &str) -> String {
    Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned_datetime(config.timezone.clone())
                .strftime(format)
                .to_string()
        })
        .unwrap_or_default()
}
