//! Config: the TOML file an operator edits, parsed, validated (every error at once) and
//! turned into the typed [`Config`] the rest of the pipeline uses.
//!
//! Parsing happens in two steps. serde reads the file into the `Raw*` structs, which keep the
//! byte span of every value a later check may need to point at; serde stops at the first
//! structural problem (bad TOML, an unknown key, a wrong type). Then `validate` checks the
//! meaning of every value and collects *all* problems, each with `file:line:col`.

pub(crate) mod calendar;
pub(crate) mod diag;
pub(crate) mod http;
pub(crate) mod inbound;
mod raw;
mod read;
mod rule;
mod rule_check;
mod secret;
pub(crate) mod smtp;
mod validate;

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::tz::TimeZone;

use diag::Invalid;
pub use diag::{Diagnostic, Severity};
pub(crate) use rule::{Rule, RuleKind, Schedule, Season};
pub(crate) use secret::Secret;
pub(crate) use validate::Validator;

use crate::config::smtp::SmtpConfig;

/// A validated configuration: everything the pipeline needs, with paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub(crate) file: PathBuf,
    /// The text of that file (diagnostics found later, e.g. a missing template, point into it).
    pub(crate) source: String,
    /// The business's interaction log.
    pub(crate) log_path: PathBuf,
    /// rekindle's state database.
    pub(crate) state_path: PathBuf,
    /// Where `[paths] log` and `[paths] state` are written in the file, for errors about them.
    pub(crate) path_spans: (std::ops::Range<usize>, std::ops::Range<usize>),
    /// The template directory.
    pub(crate) templates_dir: PathBuf,
    /// Who the notes come from.
    pub(crate) sender: Sender,
    /// How notes leave.
    pub(crate) transport: Transport,
    /// Time zone for schedules and for customers without a valid one.
    pub(crate) timezone: TimeZone,
    /// Its IANA name, for display.
    pub(crate) timezone_name: String,
    /// The word used instead of a missing name.
    pub(crate) fallback_name: String,
    /// The language of customers without their own, a BCP 47 tag ("en-GB").
    pub(crate) language: String,
    /// The longest quote of a customer's words in a note, in characters.
    pub(crate) max_quote_chars: usize,
    /// Interaction kinds whose note holds the customer's own words.
    pub(crate) quote_kinds: Vec<String>,
    /// Channels whose notes staff typed: never quoted as the customer's words.
    pub(crate) staff_channels: Vec<String>,
    /// The cross-rule frequency cap.
    pub(crate) policy: Policy,
    /// Delivery retries.
    pub(crate) delivery: Delivery,
    /// Event polling and shutdown.
    pub(crate) daemon: Daemon,
    /// Touch-point classification (validated now; the ratio rule will read it).
    #[allow(dead_code)]
    pub(crate) touchpoints: Touchpoints,
    /// The rules, in file order.
    pub(crate) rules: Vec<Rule>,
    /// The daily staff digest, if configured.
    pub(crate) digest: Option<Digest>,
    /// What rekindle reads for what comes back (no sources without `[inbound]`).
    pub(crate) inbound: inbound::Inbound,
    /// The web face, if `[http]` is set.
    pub(crate) http: Option<http::Http>,
}

/// Who the notes come from.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    /// The person who signs, e.g. "Rosemary".
    pub name: String,
    /// The From address.
    pub email: lettre::Address,
    /// The business's name.
    pub business: String,
    /// Reply-To, if different from From.
    pub reply_to: Option<lettre::Address>,
    /// Plain-text signature.
    pub signature: Option<String>,
    /// The envelope sender (MAIL FROM), when bounces go to a mailbox rekindle reads.
    pub return_path: Option<lettre::Address>,
    /// Each note's return path carries its token (`local+token@domain`).
    pub verp: bool,
    /// mailto: target for List-Unsubscribe.
    pub unsubscribe_mailto: Option<lettre::Address>,
    /// The https page for unsubscribing (links to it are signed per customer).
    pub unsubscribe_url: Option<String>,
    /// That page takes RFC 8058's one-click POST: List-Unsubscribe-Post is sent.
    pub one_click: bool,
    /// Where the link-signing secret comes from.
    pub unsubscribe_secret_source: Option<SecretSource>,
    /// The link-signing secret, once read (see [`Config::read_secrets`]).
    pub unsubscribe_secret: Option<Secret>,
}

/// Where a secret is read from.
#[derive(Debug, Clone)]
pub(crate) enum SecretSource {
    /// A file (trailing whitespace trimmed).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl SecretSource {
    /// Reads the secret `key` of `[section]` (for the error's words), refusing an empty one.
    fn read(&self, section: &str, key: &str) -> Result<Secret, String> {
        let text = match self {
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "[{section}]: cannot read {key}_file {}: {e}",
                    path.display()
                )
            })?,
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                format!("[{section}]: the environment variable {var} ({key}_env) is not set")
            })?,
        };
        match text.trim().is_empty() {
            true => Err(format!("[{section}]: the {key} is empty")),
            false => Ok(Secret::new(&text)),
        }
    }
}

/// How notes leave.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    /// Write each note as a file into a maildir.
    Maildir {
        /// The maildir directory.
        dir: PathBuf,
    },
    /// Send through SMTP servers: the first, then each fallback while they cannot be reached.
    Smtp(Vec<SmtpConfig>),
}

/// `[policy]`: what holds across all rules.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Notes allowed per customer within `cap_window`.
    pub cap: u32,
    /// The cap's window.
    pub cap_window: SignedDuration,
    /// Quiet hours, sending days and holidays, in each customer's time zone.
    pub calendar: crate::config::calendar::Calendar,
    /// Interaction kinds that mean "stop writing to me".
    pub unsubscribe_kinds: Vec<String>,
    /// Interaction kinds that open a complaint.
    pub complaint_kinds: Vec<String>,
    /// Interaction kinds that close one.
    pub resolution_kinds: Vec<String>,
    /// How long an unresolved complaint holds back rules with `hold_while_unhappy`.
    pub open_complaint_window: SignedDuration,
}

impl Policy {
    /// Unix second from which an unresolved complaint still counts as open at `now`.
    pub(crate) fn complaints_open_since(&self, now: jiff::Timestamp) -> i64 {
        now.checked_sub(self.open_complaint_window)
            .unwrap_or(now)
            .as_second()
    }
}

/// The staff digest's rule name in the outbox: it goes to the staff, not to a customer.
pub(crate) const DIGEST_RULE: &str = "digest";

/// `[digest]`: one email a day to the staff, listing the customers who deserve a handwritten
/// card today.
#[derive(Debug, Clone)]
pub(crate) struct Digest {
    /// The staff address.
    pub to: lettre::Address,
    /// When it is put together.
    pub schedule: rule::Schedule,
    /// Its template.
    pub template: String,
    /// Where `template` is in the file.
    pub template_span: std::ops::Range<usize>,
    /// Least years for an anniversary to be listed.
    pub anniversary_years: u32,
}

/// `[daemon]`: event polling and shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Daemon {
    /// How often the log is checked for new interactions.
    pub event_poll: SignedDuration,
    /// On a first start, interactions this recent count as new.
    pub event_lookback: SignedDuration,
    /// Time for notes in flight to finish after a stop signal.
    pub grace: SignedDuration,
    /// How often a full evaluation reads the whole log again instead of only its new rows.
    pub reconcile: SignedDuration,
    /// A scheduled time missed at most this long ago (the daemon was down or busy) still runs,
    /// once.
    pub catch_up: SignedDuration,
}

/// Delivery retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// First retry delay.
    pub retry_base: SignedDuration,
    /// Longest retry delay.
    pub retry_max: SignedDuration,
    /// Attempts before a note is failed.
    pub max_attempts: u32,
    /// Age after which an undelivered note is failed.
    pub max_age: SignedDuration,
    /// How often the daemon looks for due notes.
    pub poll: SignedDuration,
    /// Notes sent at the same time.
    pub concurrency: u32,
    /// Notes per second, on average (0 = no limit).
    pub rate: f64,
    /// Notes at once after a quiet spell.
    pub burst: u32,
}

/// Touch-point classification of interaction kinds, for the ratio rule and `explain`.
#[derive(Debug, Clone)]
pub(crate) struct Touchpoints {
    /// Positive kinds.
    pub positive: Vec<String>,
    /// Negative kinds.
    pub negative: Vec<String>,
    /// Sentiment below which any interaction is negative.
    pub negative_sentiment: f64,
}

impl Config {
    /// Reads and validates the file at `path`. Every problem is returned, errors and warnings;
    /// the config is returned only when there is no error.
    pub fn load(path: &Path) -> (Option<Config>, Vec<Diagnostic>) {
        let source = match std::fs::read(path).map(String::from_utf8) {
            Ok(Ok(source)) => source,
            Ok(Err(not_utf8)) => {
                // Where the first byte that is not UTF-8 is, as line:col.
                let valid = not_utf8.utf8_error().valid_up_to();
                let before = String::from_utf8_lossy(&not_utf8.as_bytes()[..valid]).into_owned();
                let at = before.len();
                let message = "the configuration is not UTF-8 text (saved in another encoding, such as Latin-1?); save it as UTF-8".to_string();
                return (
                    None,
                    vec![Diagnostic::error_at(
                        path,
                        &format!("{before} "),
                        at..at + 1,
                        message,
                    )],
                );
            }
            Err(err) => {
                let message = format!(
                    "cannot read the configuration: {err}; pass --config PATH or set REKINDLE_CONFIG"
                );
                return (None, vec![Diagnostic::error_in(path, message)]);
            }
        };
        Self::parse(path, source)
    }

    /// Validates `source` as if read from `path` (relative paths inside resolve against
    /// `path`'s directory).
    pub(crate) fn parse(path: &Path, source: String) -> (Option<Config>, Vec<Diagnostic>) {
        let raw = match read::read_raw(path, &source) {
            Ok(raw) => raw,
            Err(problems) => return (None, problems),
        };
        let mut v = Validator {
            file: path,
            source: &source,
            base: path.parent().unwrap_or(Path::new(".")),
            diagnostics: Vec::new(),
        };
        let config = v.config(raw);
        let diagnostics = v.diagnostics;
        let ok = !diagnostics.iter().any(Diagnostic::is_error);
        match config {
            Some(mut config) if ok => {
                config.source = source;
                (Some(config), diagnostics)
            }
            _ => (None, diagnostics),
        }
    }

    /// Reads the secrets the config points at (the unsubscribe link secret, and the previous
    /// one after a rotation). The SMTP password is read by the transport itself.
    pub(crate) fn read_secrets(&mut self) -> Result<(), Diagnostic> {
        let file = self.file.clone();
        let read = |source: &Option<SecretSource>, section: &str, key: &str| {
            source
                .as_ref()
                .map(|s| s.read(section, key))
                .transpose()
                .map_err(|message| Diagnostic::error_in(&file, message))
        };
        self.sender.unsubscribe_secret = read(
            &self.sender.unsubscribe_secret_source,
            "sender",
            "unsubscribe_secret",
        )?;
        if let Some(http) = &mut self.http {
            http.previous_secret = read(&http.previous_secret_source, "http", "previous_secret")?;
        }
        Ok(())
    }

    /// The directory relative paths in the config are resolved against.
    pub(crate) fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// The rule called `name`, if any.
    pub(crate) fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// An error pointing at a byte range of this config file.
    pub(crate) fn error_at(&self, span: std::ops::Range<usize>, message: String) -> Diagnostic {
        Diagnostic::error_at(&self.file, &self.source, span, message)
    }
}

/// A duration as people write it in the config: "90 days", "2 hours", "30 minutes".
pub(crate) fn format_duration(d: SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    let (n, unit) = match secs {
        0 => (0, "seconds"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    match (n, unit) {
        (0, unit) => format!("0 {unit}"),
        (1, unit) => format!("1 {unit}"),
        (n, unit) => format!("{n} {unit}s"),
    }
}

/// Parses "30d", "12h", "1h 30m", "2weeks" (humantime's forms) into a duration.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, Invalid> {
    let std = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    Ok(SignedDuration::try_from(std).map_err(|e| e.to_string())?)
}

#[cfg(test)]
mod tests;
