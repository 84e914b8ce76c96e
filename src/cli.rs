//! The command line: `rekindle [--config PATH] <command>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// rekindle keeps a small business in love with its customers: it reads outreach rules from a
/// TOML file, scans a SQLite log of customer interactions for customers who are quiet, unhappy
/// or due some appreciation, and sends them personal notes.
#[derive(Debug, Parser)]
#[command(name = "rekindle", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "REKINDLE_CONFIG",
        default_value = "/etc/rekindle/rekindle.toml"
    )]
    pub config: PathBuf,

    /// Log format: human-readable lines, or one JSON object per line (for journald and
    /// log shippers). The level comes from RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// For tests: run as if the clock were this far ahead of the system's ("4s", "2h").
    #[arg(long, global = true, hide = true, env = "REKINDLE_CLOCK_OFFSET")]
    pub clock_offset: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    Human,
    /// One JSON object per line on stderr.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: evaluate each rule on its schedule (and, with trigger = "interaction",
    /// within a second of a new row in the log) and deliver queued notes. SIGTERM/SIGINT stop it
    /// (notes in flight get [daemon] grace); SIGHUP reloads the configuration (kept if the new one
    /// is invalid). With [inbound], reads what comes back; with [http], serves each note's
    /// unsubscribe and preferences link, /healthz and /metrics.
    Run {
        /// Evaluate every rule once now, deliver what is due, print a summary and exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration, the templates and the interaction log's schema. Prints every
    /// problem as file:line:col; exits 0 when all is well, 78 otherwise.
    Check,
    /// Dry run: which customer would get which note and why, and who was skipped and why.
    /// Sends nothing and writes nothing.
    Plan {
        /// Evaluate as if it were this time: "2027-02-11T09:00:00Z", "2027-02-11 09:00" or
        /// "2027-02-11" (the last two in defaults.timezone). Default: now.
        #[arg(long)]
        at: Option<String>,
        /// Forecast this many days instead: per day and rule, the notes that would go out and
        /// the skips by reason, each rule at its first scheduled minute of the day.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: Option<u32>,
    },
    /// Render one rule's note for one customer to stdout (headers, text and HTML).
    Preview {
        /// The rule's name, or "digest" for the staff digest (which needs no customer).
        #[arg(long)]
        rule: String,
        /// The customer's id.
        #[arg(long)]
        customer: Option<String>,
        /// Render as if it were this time (same forms as `plan --at`).
        #[arg(long)]
        at: Option<String>,
    },
    /// Explain one customer: their touch-point ledger, where they stand (opt-outs, their own
    /// preferences, an open complaint), and for every rule whether they would get a note now,
    /// and why not.
    Explain {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// As if it were this time (same forms as `plan --at`).
        #[arg(long)]
        at: Option<String>,
    },
    /// Show the outbox: notes per state, the oldest waiting note, notes waiting for their time
    /// and when the first goes, a delivery pause, notes sent lately, the last error, what came
    /// back and what customers chose on the web face, and coverage: the share of active
    /// customers with a positive touch point lately.
    Status {
        /// The coverage window, in days.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
        coverage_days: u32,
    },
    /// Inspect and resolve notes in the outbox (e.g. those parked as `unknown` after a crash).
    Outbox {
        /// What to do.
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// The suppression list: customers (by id or email) who get nothing from any rule, and
    /// whose queued notes are cancelled before sending.
    Suppress {
        /// What to do.
        #[command(subcommand)]
        action: SuppressAction,
    },
    /// Create a demo interaction log, templates and a config using a maildir, then run every
    /// rule once on it and show where the notes are. Ignores --config.
    Demo {
        /// Where to put the demo.
        #[arg(long, default_value = "rekindle-demo")]
        dir: PathBuf,
        /// How many customers the demo log has.
        #[arg(long, default_value_t = 300)]
        customers: usize,
        /// Seed of the generator (the same seed gives the same log).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// About how many interactions the log holds in all (customers visit more or less
        /// often to match); by default about 33 per customer. 1,000,000 customers with
        /// 20,000,000 interactions is the benchmarks' large log.
        #[arg(long)]
        interactions: Option<usize>,
        /// Only write the log, templates and config; do not run the rules.
        #[arg(long)]
        generate_only: bool,
    },
}

/// `rekindle suppress …`.
#[derive(Debug, Subcommand)]
pub enum SuppressAction {
    /// Add customer ids or email addresses (case-insensitive).
    Add {
        /// Customer ids or email addresses.
        #[arg(required = true)]
        keys: Vec<String>,
        /// Why, for the record (shown by `suppress list`).
        #[arg(long, default_value = "added by an operator")]
        reason: String,
    },
    /// Remove customer ids or email addresses.
    Remove {
        /// Customer ids or email addresses.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show the list.
    List,
}

/// `rekindle outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// List notes, newest first.
    List {
        /// Only notes in this state: queued, sending, sent, retry, failed, bounced, unknown or
        /// cancelled.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Queue notes again for delivery now: for `unknown` notes an operator has checked did not
    /// arrive, or `failed` ones whose cause is fixed. A `sent` note is never resent.
    Resend {
        /// Note ids (see `outbox list`).
        ids: Vec<i64>,
        /// Every note in the state given by --state.
        #[arg(long, requires = "state")]
        all: bool,
        /// With --all: the state whose notes to resend (unknown or failed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Cancel notes that have not been sent (queued, retry or unknown): they will never be sent.
    Cancel {
        /// Note ids (see `outbox list`).
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}
