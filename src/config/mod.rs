//! Config: the TOML file an operator edits, parsed, validated (every error at once) and
//! turned into the typed [`Config`] the rest of the pipeline uses.
//!
//! Parsing happens in two steps. serde reads the file into the `Raw*` structs, which keep the
//! byte span of every value a later check may need to point at; serde stops at the first
//! structural problem (bad TOML, an unknown key, a wrong type). Then [`validate`] checks the
//! meaning of every value and collects *all* problems, each with `file:line:col`.

pub(crate) mod calendar;
pub(crate) mod diag;
mod rule;
mod secret;
pub(crate) mod smtp;

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use serde::Deserialize;
use toml::Spanned;

pub use diag::{Diagnostic, Severity};
pub(crate) use rule::{Rule, RuleKind, Season};
pub(crate) use secret::Secret;

use crate::config::smtp::SmtpConfig;

/// The whole configuration file, as written (see `config/rekindle.toml` for documentation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Where the interaction log, the state database and the templates live.
    paths: RawPaths,
    /// Who the notes come from.
    sender: RawSender,
    /// How notes leave: a maildir for demos and dry runs, or SMTP.
    transport: RawTransport,
    /// Defaults for customers and rules.
    #[serde(default)]
    defaults: RawDefaults,
    /// How often one customer may hear from rekindle, across all rules.
    #[serde(default)]
    policy: RawPolicy,
    /// Retry behaviour of the delivery loop.
    #[serde(default)]
    delivery: RawDelivery,
    /// The daemon: event polling and shutdown.
    #[serde(default)]
    daemon: RawDaemon,
    /// Which interaction kinds are positive, negative or neutral touch points.
    #[serde(default)]
    touchpoints: RawTouchpoints,
    /// The daily staff digest (optional).
    digest: Option<RawDigest>,
    /// The outreach rules.
    #[serde(default)]
    rule: Vec<rule::RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    /// Who gets it.
    to: Spanned<String>,
    /// When (5-field cron, defaults.timezone).
    schedule: Spanned<String>,
    /// Its template.
    #[serde(default = "digest_template")]
    template: Spanned<String>,
    /// Anniversaries of at least this many years are listed.
    #[serde(default = "one")]
    anniversary_years: u32,
}

fn digest_template() -> Spanned<String> {
    Spanned::new(0..0, "digest.j2".to_string())
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    /// The business's SQLite interaction log (opened read-only).
    log: Spanned<PathBuf>,
    /// rekindle's own SQLite state database (outbox, history).
    state: Spanned<PathBuf>,
    /// The directory holding the note templates.
    templates: Spanned<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    /// The person who signs the notes, e.g. "Rosemary".
    name: String,
    /// The From address.
    email: Spanned<String>,
    /// The business's name, for templates.
    business: String,
    /// Optional Reply-To address (default: the From address).
    reply_to: Option<Spanned<String>>,
    /// Optional plain-text signature for templates.
    signature: Option<String>,
    /// Optional address customers can write to in order to unsubscribe (List-Unsubscribe).
    unsubscribe_mailto: Option<Spanned<String>>,
    /// Optional https page where customers unsubscribe; each note links to it with a signed token.
    unsubscribe_url: Option<Spanned<String>>,
    /// A file holding the secret that signs unsubscribe links (shared with that page).
    unsubscribe_secret_file: Option<PathBuf>,
    /// An environment variable holding that secret.
    unsubscribe_secret_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransport {
    /// "maildir" or "smtp".
    kind: Spanned<String>,
    /// Settings of the maildir transport.
    maildir: Option<RawMaildir>,
    /// Settings of the SMTP transport.
    smtp: Option<SmtpConfig>,
    /// Further SMTP servers, tried in order when the ones before cannot be reached.
    #[serde(default)]
    fallback: Vec<SmtpConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaildir {
    /// The maildir directory; `new/`, `cur/` and `tmp/` are created inside it.
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDefaults {
    /// Time zone for schedules and for customers without a valid one.
    timezone: Spanned<String>,
    /// The word used instead of a customer's name when the log has none.
    fallback_name: String,
    /// The longest quote of a customer's own words that a note includes, in characters.
    max_quote_chars: usize,
}

impl Default for RawDefaults {
    fn default() -> Self {
        RawDefaults {
            timezone: Spanned::new(0..0, "UTC".to_string()),
            fallback_name: "there".to_string(),
            max_quote_chars: 500,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicy {
    /// At most this many notes per customer in `cap_window`, across all rules.
    cap: Spanned<u32>,
    /// The window of the cap, e.g. "7d".
    cap_window: Spanned<String>,
    /// The default cooldown of a rule: the least time between two of its notes to one customer.
    cooldown: Spanned<String>,
    /// No notes between these local times, e.g. "20:00-09:00" (customer's time zone).
    quiet_hours: Option<Spanned<String>>,
    /// Local days notes may go out on.
    days: Option<Spanned<Vec<String>>>,
    /// Dates without notes: "12-25" (yearly) or "2026-12-24".
    holidays: Vec<Spanned<String>>,
    /// Interaction kinds that mean "stop writing to me".
    unsubscribe_kinds: Vec<String>,
    /// Interaction kinds that open a complaint.
    complaint_kinds: Vec<String>,
    /// Interaction kinds that close one.
    resolution_kinds: Vec<String>,
    /// A complaint older than this no longer holds notes back.
    open_complaint_window: Spanned<String>,
}

impl Default for RawPolicy {
    fn default() -> Self {
        RawPolicy {
            cap: Spanned::new(0..0, 1),
            cap_window: Spanned::new(0..0, "7d".to_string()),
            cooldown: Spanned::new(0..0, "30d".to_string()),
            quiet_hours: None,
            days: None,
            holidays: Vec::new(),
            unsubscribe_kinds: vec!["unsubscribe".to_string()],
            complaint_kinds: vec!["complaint".to_string()],
            resolution_kinds: vec!["resolution".to_string()],
            open_complaint_window: Spanned::new(0..0, "30d".to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    /// How often the log is checked for new interactions (rules with trigger = "interaction").
    event_poll: Spanned<String>,
    /// On the very first start, interactions this recent count as new.
    event_lookback: Spanned<String>,
    /// After SIGTERM, how long notes in flight may take to finish.
    grace: Spanned<String>,
    /// How often the whole log is read again (catching edited and deleted rows).
    reconcile: Spanned<String>,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            event_poll: Spanned::new(0..0, "500ms".to_string()),
            event_lookback: Spanned::new(0..0, "1h".to_string()),
            grace: Spanned::new(0..0, "30s".to_string()),
            reconcile: Spanned::new(0..0, "1d".to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDelivery {
    /// First retry delay after a temporary failure; doubles with every attempt.
    retry_base: Spanned<String>,
    /// The longest delay between two attempts.
    retry_max: Spanned<String>,
    /// After this many attempts a note is marked failed.
    max_attempts: u32,
    /// A note still undelivered this long after it was queued is marked failed.
    max_age: Spanned<String>,
    /// How often the daemon looks for notes due for delivery.
    poll: Spanned<String>,
    /// Notes handed to the transport at the same time.
    concurrency: u32,
    /// Average notes per second (0 = no limit).
    rate: f64,
    /// Notes that may go at once after a quiet spell.
    burst: u32,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            retry_base: Spanned::new(0..0, "1m".to_string()),
            retry_max: Spanned::new(0..0, "1h".to_string()),
            max_attempts: 10,
            max_age: Spanned::new(0..0, "3d".to_string()),
            poll: Spanned::new(0..0, "5s".to_string()),
            concurrency: 8,
            rate: 0.0,
            burst: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTouchpoints {
    /// Interaction kinds that are good news for the relationship.
    positive: Vec<String>,
    /// Interaction kinds that cost goodwill (an invoice is one).
    negative: Vec<String>,
    /// An interaction with a sentiment below this is negative whatever its kind.
    negative_sentiment: f64,
}

impl Default for RawTouchpoints {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RawTouchpoints {
            positive: strings(&["purchase", "review", "resolution", "thank_you"]),
            negative: strings(&["invoice", "complaint", "cancellation"]),
            negative_sentiment: -0.3,
        }
    }
}

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
    /// The longest quote of a customer's words in a note, in characters.
    pub(crate) max_quote_chars: usize,
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
    /// mailto: target for List-Unsubscribe.
    pub unsubscribe_mailto: Option<lettre::Address>,
    /// The https page for unsubscribing (links to it are signed per customer).
    pub unsubscribe_url: Option<String>,
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
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
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
        let raw: RawConfig = match toml::from_str(&source) {
            Ok(raw) => raw,
            Err(err) => return (None, vec![toml_error(path, &source, &err)]),
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

    /// Reads the secrets the config points at (the unsubscribe link secret). The SMTP password is
    /// read by the transport itself.
    pub(crate) fn read_secrets(&mut self) -> Result<(), Diagnostic> {
        let Some(source) = &self.sender.unsubscribe_secret_source else {
            return Ok(());
        };
        let text = match source {
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "[sender]: cannot read unsubscribe_secret_file {}: {e}",
                    path.display()
                )
            }),
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                format!(
                    "[sender]: the environment variable {var} (unsubscribe_secret_env) is not set"
                )
            }),
        };
        match text {
            Ok(text) if !text.trim().is_empty() => {
                self.sender.unsubscribe_secret = Some(Secret::new(&text));
                Ok(())
            }
            Ok(_) => Err(Diagnostic::error_in(
                &self.file,
                "[sender]: the unsubscribe secret is empty".to_string(),
            )),
            Err(message) => Err(Diagnostic::error_in(&self.file, message)),
        }
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

/// Turns a serde/TOML error into a diagnostic, with a suggestion for misspelt keys.
fn toml_error(path: &Path, source: &str, err: &toml::de::Error) -> Diagnostic {
    let message = err.message().trim_end_matches('.').trim().to_string();
    let message = match unknown_field(&message) {
        Some((field, expected)) => format!(
            "unknown key `{field}`{}; valid keys here: {}",
            diag::suggestion(&field, expected.iter().map(String::as_str)),
            expected.join(", ")
        ),
        None => message,
    };
    match err.span() {
        Some(span) => Diagnostic::error_at(path, source, span, message),
        None => Diagnostic::error_in(path, message),
    }
}

/// Picks apart serde's "unknown field `x`, expected one of `a`, `b`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

/// Collects diagnostics while turning raw values into typed ones.
pub(crate) struct Validator<'a> {
    file: &'a Path,
    source: &'a str,
    base: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    /// Records an error at `span`.
    pub(crate) fn error(&mut self, span: std::ops::Range<usize>, message: String) {
        let d = Diagnostic::error_at(self.file, self.source, span, message);
        self.diagnostics.push(d);
    }

    /// Records a warning at `span`.
    pub(crate) fn warn(&mut self, span: std::ops::Range<usize>, message: String) {
        let d = Diagnostic::error_at(self.file, self.source, span, message).warning();
        self.diagnostics.push(d);
    }

    /// Parses a duration such as "30d", "12h" or "1h 30m".
    pub(crate) fn duration(
        &mut self,
        key: &str,
        value: &Spanned<String>,
    ) -> Option<SignedDuration> {
        match parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(why) => {
                let message = format!(
                    "invalid duration \"{}\" for `{key}`: {why}; write e.g. \"30d\", \"12h\" or \"1h 30m\"",
                    value.get_ref()
                );
                self.error(value.span(), message);
                None
            }
        }
    }

    /// Parses an email address.
    fn address(&mut self, key: &str, value: &Spanned<String>) -> Option<lettre::Address> {
        match value.get_ref().parse::<lettre::Address>() {
            Ok(a) => Some(a),
            Err(err) => {
                let message = format!(
                    "invalid email address \"{}\" for `{key}`: {err}",
                    value.get_ref()
                );
                self.error(value.span(), message);
                None
            }
        }
    }

    /// Makes a path from the config absolute, relative to the config file's directory.
    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let timezone = match TimeZone::get(raw.defaults.timezone.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let message = format!(
                    "unknown time zone \"{}\"; use an IANA name such as \"Europe/Paris\" or \"UTC\"",
                    raw.defaults.timezone.get_ref()
                );
                self.error(raw.defaults.timezone.span(), message);
                None
            }
        };
        let sender = self.sender(raw.sender);
        let transport = self.transport(raw.transport);
        let policy = self.policy(&raw.policy);
        let delivery = self.delivery(&raw.delivery);
        let daemon = self.daemon(&raw.daemon);
        let touchpoints = self.touchpoints(raw.touchpoints);
        let default_cooldown = self.duration("policy.cooldown", &raw.policy.cooldown);
        let digest = raw.digest.and_then(|d| self.digest(d));
        let mut rules = Vec::new();
        for raw_rule in raw.rule {
            if let Some(rule) = self.rule(raw_rule, default_cooldown.unwrap_or_default()) {
                if rules.iter().any(|r: &Rule| r.name == rule.name) {
                    let message = format!(
                        "a rule named \"{}\" is already defined; rule names must be unique",
                        rule.name
                    );
                    self.error(rule.spans.name.clone(), message);
                }
                rules.push(rule);
            }
        }
        Some(Config {
            file: self.file.to_path_buf(),
            source: String::new(),
            log_path: self.path(raw.paths.log.get_ref()),
            state_path: self.path(raw.paths.state.get_ref()),
            templates_dir: self.path(raw.paths.templates.get_ref()),
            sender: sender?,
            transport: transport?,
            timezone: timezone?,
            timezone_name: raw.defaults.timezone.into_inner(),
            fallback_name: raw.defaults.fallback_name,
            max_quote_chars: raw.defaults.max_quote_chars,
            policy: policy?,
            delivery: delivery?,
            daemon: daemon?,
            touchpoints,
            rules,
            digest,
        })
    }

    fn sender(&mut self, raw: RawSender) -> Option<Sender> {
        let email = self.address("sender.email", &raw.email);
        let reply_to = raw
            .reply_to
            .as_ref()
            .map(|r| self.address("sender.reply_to", r));
        let secret = match (raw.unsubscribe_secret_file, raw.unsubscribe_secret_env) {
            (Some(file), None) => Some(SecretSource::File(self.path(&file))),
            (None, Some(env)) => Some(SecretSource::Env(env)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                let message = "[sender]: both unsubscribe_secret_file and unsubscribe_secret_env are set; keep one".to_string();
                self.diagnostics
                    .push(Diagnostic::error_in(self.file, message));
                None
            }
        };
        let url = raw.unsubscribe_url;
        if let Some(url) = &url {
            if !url.get_ref().starts_with("https://") {
                let message = format!(
                    "unsubscribe_url \"{}\" must be an https:// address (RFC 8058 one-click unsubscribe)",
                    url.get_ref()
                );
                self.error(url.span(), message);
            } else if secret.is_none() {
                let message = "unsubscribe_url needs unsubscribe_secret_file or unsubscribe_secret_env: links are signed so nobody can unsubscribe someone else".to_string();
                self.error(url.span(), message);
            }
        }
        let mailto = raw
            .unsubscribe_mailto
            .as_ref()
            .map(|r| self.address("sender.unsubscribe_mailto", r));
        Some(Sender {
            name: raw.name,
            email: email?,
            business: raw.business,
            reply_to: reply_to.unwrap_or(None),
            signature: raw.signature,
            unsubscribe_mailto: mailto.unwrap_or(None),
            unsubscribe_url: url.map(Spanned::into_inner),
            unsubscribe_secret_source: secret,
            unsubscribe_secret: None,
        })
    }

    fn transport(&mut self, raw: RawTransport) -> Option<Transport> {
        let span = raw.kind.span();
        match raw.kind.get_ref().as_str() {
            "maildir" => {
                match raw.maildir {
                    Some(m) => Some(Transport::Maildir {
                        dir: self.path(&m.dir),
                    }),
                    None => {
                        let message = "transport kind \"maildir\" needs a [transport.maildir] section with `dir`".to_string();
                        self.error(span, message);
                        None
                    }
                }
            }
            "smtp" => match raw.smtp {
                Some(primary) => {
                    let mut servers = Vec::new();
                    for (i, mut smtp) in std::iter::once(primary).chain(raw.fallback).enumerate() {
                        let section = if i == 0 {
                            "[transport.smtp]".to_string()
                        } else {
                            format!("[[transport.fallback]] #{i} ({})", smtp.host)
                        };
                        for problem in smtp.problems() {
                            self.error(span.clone(), format!("{section}: {problem}"));
                        }
                        smtp.password_file = smtp.password_file.map(|p| self.path(&p));
                        servers.push(smtp);
                    }
                    Some(Transport::Smtp(servers))
                }
                None => {
                    let message = "transport kind \"smtp\" needs a [transport.smtp] section with at least `host`".to_string();
                    self.error(span, message);
                    None
                }
            },
            other => {
                let message = format!(
                    "unknown transport kind \"{other}\"{}; use \"maildir\" or \"smtp\"",
                    diag::suggestion(other, ["maildir", "smtp"])
                );
                self.error(span, message);
                None
            }
        }
    }

    fn policy(&mut self, raw: &RawPolicy) -> Option<Policy> {
        if *raw.cap.get_ref() == 0 {
            let message =
                "policy.cap = 0 lets no note through: every customer is always capped".to_string();
            self.warn(raw.cap.span(), message);
        }
        let cap_window = self.duration("policy.cap_window", &raw.cap_window);
        let open_complaint_window =
            self.duration("policy.open_complaint_window", &raw.open_complaint_window);
        let mut calendar = crate::config::calendar::Calendar::default();
        if let Some(hours) = &raw.quiet_hours
            && !hours.get_ref().trim().is_empty()
        {
            match crate::config::calendar::parse_quiet_hours(hours.get_ref()) {
                Ok(q) => calendar.quiet = Some(q),
                Err(why) => self.error(hours.span(), format!("policy.quiet_hours: {why}")),
            }
        }
        if let Some(days) = &raw.days {
            calendar.days = [false; 7];
            for day in days.get_ref() {
                match crate::config::calendar::parse_weekday(day) {
                    Ok(d) => calendar.days[d.to_monday_zero_offset() as usize] = true,
                    Err(why) => self.error(days.span(), format!("policy.days: {why}")),
                }
            }
            if calendar.days.iter().all(|d| !d) {
                let message = "policy.days is empty: no note could ever go out; list the days notes may be sent, e.g. [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]".to_string();
                self.error(days.span(), message);
            }
        }
        for holiday in &raw.holidays {
            match crate::config::calendar::Holiday::parse(holiday.get_ref()) {
                Ok(h) => calendar.holidays.push(h),
                Err(why) => self.error(holiday.span(), format!("policy.holidays: {why}")),
            }
        }
        Some(Policy {
            cap: *raw.cap.get_ref(),
            cap_window: cap_window?,
            calendar,
            unsubscribe_kinds: raw.unsubscribe_kinds.clone(),
            complaint_kinds: raw.complaint_kinds.clone(),
            resolution_kinds: raw.resolution_kinds.clone(),
            open_complaint_window: open_complaint_window?,
        })
    }

    fn delivery(&mut self, raw: &RawDelivery) -> Option<Delivery> {
        let retry_base = self.duration("delivery.retry_base", &raw.retry_base);
        let retry_max = self.duration("delivery.retry_max", &raw.retry_max);
        let poll = self.duration("delivery.poll", &raw.poll);
        let max_age = self.duration("delivery.max_age", &raw.max_age);
        Some(Delivery {
            retry_base: retry_base?,
            retry_max: retry_max?,
            max_attempts: raw.max_attempts.max(1),
            max_age: max_age?,
            poll: poll?,
            concurrency: raw.concurrency.max(1),
            rate: raw.rate.max(0.0),
            burst: raw.burst.max(1),
        })
    }

    fn digest(&mut self, raw: RawDigest) -> Option<Digest> {
        let to = self.address("digest.to", &raw.to);
        let schedule = match rule::Schedule::parse(raw.schedule.get_ref()) {
            Ok(s) => Some(s),
            Err(why) => {
                let message = format!(
                    "invalid cron schedule \"{}\" for [digest]: {why}; e.g. \"0 8 * * *\" is every day at 08:00",
                    raw.schedule.get_ref()
                );
                self.error(raw.schedule.span(), message);
                None
            }
        };
        Some(Digest {
            to: to?,
            schedule: schedule?,
            template_span: raw.template.span(),
            template: raw.template.into_inner(),
            anniversary_years: raw.anniversary_years.max(1),
        })
    }

    fn daemon(&mut self, raw: &RawDaemon) -> Option<Daemon> {
        let event_poll = self.duration("daemon.event_poll", &raw.event_poll);
        let event_lookback = self.duration("daemon.event_lookback", &raw.event_lookback);
        let grace = self.duration("daemon.grace", &raw.grace);
        let reconcile = self.duration("daemon.reconcile", &raw.reconcile);
        Some(Daemon {
            event_poll: event_poll?.max(SignedDuration::from_millis(50)),
            event_lookback: event_lookback?,
            grace: grace?,
            reconcile: reconcile?,
        })
    }

    fn touchpoints(&mut self, raw: RawTouchpoints) -> Touchpoints {
        for kind in raw.positive.iter().filter(|k| raw.negative.contains(k)) {
            let d = Diagnostic::error_in(
                self.file,
                format!(
                    "[touchpoints]: interaction kind \"{kind}\" is listed as both positive and negative; keep it in one list"
                ),
            );
            self.diagnostics.push(d);
        }
        Touchpoints {
            positive: raw.positive,
            negative: raw.negative,
            negative_sentiment: raw.negative_sentiment,
        }
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
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let std = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    SignedDuration::try_from(std).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
