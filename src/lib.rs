//! rekindle keeps a small business in love with its customers.
//!
//! It reads outreach rules from TOML, scans a SQLite log of customer interactions for customers
//! who are quiet, unhappy, departing or due some appreciation, and sends them personal notes.
//!
//! # Layout
//!
//! The modules follow the pipeline in DESIGN.md, in layers (a module imports only those below
//! it); ARCHITECTURE.md at the root has the code map, each module's invariants and a glossary.
//!
//! ```text
//! trigger ──> select ──> decide ──> compose ──> enqueue ──> deliver ──> record
//! daemon      select     decide     compose     outbox      deliver     outbox
//! ```
//!
//! - [`config`], `note`, `clock`, `error`, [`cli`]: the ground floor.
//! - `log`: the business's interaction log, read-only. `select`: one selection per rule kind.
//! - `decide`: every reason a note is skipped or held. `compose`: recipient, context, MIME.
//! - `outbox`: rekindle's state database. `deliver`: transports, retries, the last look.
//! - `evaluate`: one evaluation, select → decide → compose → enqueue.
//! - `load`, `commands`, `daemon`, `demo`: the edges.

/// `println!` for a command's output: when the reader went away (`rekindle plan | head`) the
/// command ends quietly, as command-line tools do, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // What the commands print includes the log's own text (names, words): kept inert.
        let text = format!($($arg)*);
        if let Err(err) = writeln!(std::io::stdout(), "{}", $crate::inert::for_terminal(&text)) {
            $crate::output_failed(err);
        }
    }};
}

/// Writes one line of a command's output to `out` as [`say!`] does (kept inert; a failure
/// ends the process as it does).
pub(crate) fn say_to(out: &mut impl std::io::Write, text: &str) {
    if let Err(err) = writeln!(out, "{}", inert::for_terminal(text)) {
        output_failed(err);
    }
}

/// Standard output could not be written: a closed pipe ends the process with success (all a
/// reader asked for was written), anything else with an error.
pub(crate) fn output_failed(err: std::io::Error) -> ! {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("rekindle: cannot write to standard output: {err}");
    std::process::exit(1);
}

pub mod cli;
mod clock;
mod commands;
mod compose;
pub mod config;
mod daemon;
mod decide;
mod deliver;
mod demo;
mod error;
mod evaluate;
mod inbound;
mod inert;
mod load;
mod log;
mod metrics;
mod note;
mod outbox;
mod select;
mod web;

/// Test configurations, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/config.rs"]
mod test_config;
#[cfg(test)]
mod test_log;

use std::process::ExitCode;

/// One statement an evaluation runs: (name, SQL, parameters).
#[doc(hidden)]
pub type Statement = (String, String, Vec<rusqlite::types::Value>);

/// The configuration `config` (the text of a rekindle.toml) with `rules` instead of its own
/// touch points and rules. For the benchmarks and the golden plan; not a stable interface.
#[doc(hidden)]
pub fn with_rules(config: &str, rules: &str) -> String {
    let mut head = config[..config.find("\n[[rule]]").unwrap_or(config.len())].to_string();
    if let Some(start) = head.find("\n[touchpoints]") {
        let end = head[start + 1..]
            .find("\n[")
            .map_or(head.len(), |e| start + 1 + e);
        head.replace_range(start..end, "");
    }
    head + "\n" + rules
}

/// What SQLite runs for an evaluation over everyone at `now` under the configuration at `path`:
/// each enabled rule's selection, then the two queries for everyone's standing, as (name, SQL,
/// parameters). For the benchmarks, which time the same SQL bare beside rekindle; not a stable
/// interface.
#[doc(hidden)]
pub fn statements(
    path: &std::path::Path,
    now: jiff::Timestamp,
) -> Result<Vec<Statement>, Box<dyn std::error::Error>> {
    let (config, diagnostics) = config::Config::load(path);
    let Some(config) = config else {
        let lines: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        return Err(lines.join("\n").into());
    };
    let log = log::Log::open(&config.log_path)?;
    let outbox = outbox::Outbox::open_dry_run(&config.state_path)?;
    let statements = evaluate::statements(&config, &log, &outbox, now)?;
    Ok(statements
        .into_iter()
        .map(|(name, s)| (name, s.sql, s.params))
        .collect())
}

/// Runs the command line `cli` and returns the process's exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    // The demo prints its own story; its per-note log lines would drown it.
    let default_level = match cli.command {
        cli::Command::Demo { .. } => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_level);
    if let Some(offset) = &cli.clock_offset {
        match config::parse_duration(offset) {
            Ok(offset) => clock::set_offset(offset),
            Err(why) => {
                eprintln!("rekindle: --clock-offset {offset:?}: {why}");
                return ExitCode::from(64);
            }
        }
    }
    let result = match cli.command {
        cli::Command::Check => commands::check(&cli.config),
        cli::Command::Run { once: true } => commands::run_once(&cli.config),
        cli::Command::Run { once: false } => daemon::run(&cli.config),
        cli::Command::Plan { at, days } => commands::plan(&cli.config, at.as_deref(), days),
        cli::Command::Preview { rule, customer, at } => {
            commands::preview(&cli.config, &rule, customer.as_deref(), at.as_deref())
        }
        cli::Command::Status { coverage_days } => commands::status(&cli.config, coverage_days),
        cli::Command::Explain { customer, at } => {
            commands::explain(&cli.config, &customer, at.as_deref())
        }
        cli::Command::Outbox { action } => commands::outbox(&cli.config, action),
        cli::Command::Suppress { action } => commands::suppress(&cli.config, action),
        cli::Command::Demo {
            dir,
            customers,
            seed,
            interactions,
            generate_only,
        } => demo::run(&dir, customers, seed, interactions, generate_only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            err.report();
            err.exit_code()
        }
    }
}

fn init_logging(format: cli::LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // tokio-cron-scheduler logs every tick at INFO: keep its chatter out of operators' logs.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},tokio_cron_scheduler=warn,lettre=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        cli::LogFormat::Human => builder.try_init(),
        cli::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
