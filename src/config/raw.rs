//! The configuration file as written: serde reads it into these structs, which keep the byte
//! span of every value a later check may need to point at. Defaults live here.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::inbound::ImapConfig;
use super::smtp::SmtpConfig;

/// The whole configuration file, as written (see `config/rekindle.toml` for documentation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Where the interaction log, the state database and the templates live.
    pub(super) paths: RawPaths,
    /// Who the notes come from.
    pub(super) sender: RawSender,
    /// How notes leave: a maildir for demos and dry runs, or SMTP.
    pub(super) transport: RawTransport,
    /// Defaults for customers and rules.
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    /// How often one customer may hear from rekindle, across all rules.
    #[serde(default)]
    pub(super) policy: RawPolicy,
    /// Retry behaviour of the delivery loop.
    #[serde(default)]
    pub(super) delivery: RawDelivery,
    /// The daemon: event polling and shutdown.
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    /// Which interaction kinds are positive, negative or neutral touch points.
    #[serde(default)]
    pub(super) touchpoints: RawTouchpoints,
    /// The daily staff digest (optional).
    pub(super) digest: Option<RawDigest>,
    /// The mailboxes read for bounces, replies and unsubscribe requests (optional).
    pub(super) inbound: Option<RawInbound>,
    /// The web face: one-click unsubscribe, preferences, health and metrics (optional).
    pub(super) http: Option<RawHttp>,
    /// The outreach rules.
    #[serde(default)]
    pub(super) rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDigest {
    /// Who gets it.
    pub(super) to: Spanned<String>,
    /// When (5-field cron, defaults.timezone).
    pub(super) schedule: Spanned<String>,
    /// Its template.
    #[serde(default = "digest_template")]
    pub(super) template: Spanned<String>,
    /// Anniversaries of at least this many years are listed.
    #[serde(default = "one")]
    pub(super) anniversary_years: u32,
}

pub(super) fn digest_template() -> Spanned<String> {
    Spanned::new(0..0, "digest.j2".to_string())
}

pub(super) fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaths {
    /// The business's SQLite interaction log (opened read-only).
    pub(super) log: Spanned<PathBuf>,
    /// rekindle's own SQLite state database (outbox, history).
    pub(super) state: Spanned<PathBuf>,
    /// The directory holding the note templates.
    pub(super) templates: Spanned<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSender {
    /// The person who signs the notes, e.g. "Rosemary".
    pub(super) name: Spanned<String>,
    /// The From address.
    pub(super) email: Spanned<String>,
    /// The business's name, for templates.
    pub(super) business: String,
    /// Optional Reply-To address (default: the From address).
    pub(super) reply_to: Option<Spanned<String>>,
    /// Optional plain-text signature for templates.
    pub(super) signature: Option<String>,
    /// Optional address customers can write to in order to unsubscribe (List-Unsubscribe).
    pub(super) unsubscribe_mailto: Option<Spanned<String>>,
    /// Optional envelope sender (MAIL FROM) for bounces: a mailbox rekindle reads.
    pub(super) return_path: Option<Spanned<String>>,
    /// Give each note its own return path, `local+token@domain` (VERP), so a bounce names it.
    #[serde(default = "yes")]
    pub(super) verp: bool,
    /// Optional https page where customers unsubscribe; each note links to it with a signed token.
    pub(super) unsubscribe_url: Option<Spanned<String>>,
    /// That page also takes RFC 8058's one-click POST (List-Unsubscribe-Post is sent).
    #[serde(default)]
    pub(super) unsubscribe_one_click: bool,
    /// A file holding the secret that signs unsubscribe links (shared with that page).
    pub(super) unsubscribe_secret_file: Option<PathBuf>,
    /// An environment variable holding that secret.
    pub(super) unsubscribe_secret_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransport {
    /// "maildir" or "smtp".
    pub(super) kind: Spanned<String>,
    /// Settings of the maildir transport.
    pub(super) maildir: Option<RawMaildir>,
    /// Settings of the SMTP transport.
    pub(super) smtp: Option<SmtpConfig>,
    /// Further SMTP servers, tried in order when the ones before cannot be reached.
    #[serde(default)]
    pub(super) fallback: Vec<SmtpConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaildir {
    /// The maildir directory; `new/`, `cur/` and `tmp/` are created inside it.
    pub(super) dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDefaults {
    /// Time zone for schedules and for customers without a valid one.
    pub(super) timezone: Spanned<String>,
    /// The word used instead of a customer's name when the log has none.
    pub(super) fallback_name: String,
    /// The language of customers without their own (`attributes.language`), BCP 47.
    pub(super) language: Spanned<String>,
    /// The longest quote of a customer's own words that a note includes, in characters.
    pub(super) max_quote_chars: usize,
    /// Interaction kinds whose note holds the customer's own words.
    pub(super) quote_kinds: Vec<String>,
    /// Channels whose notes staff typed (a phone call, the counter): never quoted as the
    /// customer's words.
    pub(super) staff_channels: Vec<String>,
}

impl Default for RawDefaults {
    fn default() -> Self {
        RawDefaults {
            timezone: Spanned::new(0..0, "UTC".to_string()),
            fallback_name: "there".to_string(),
            language: Spanned::new(0..0, "en-GB".to_string()),
            max_quote_chars: 300,
            quote_kinds: ["complaint", "review", "feedback", "cancellation"]
                .map(String::from)
                .to_vec(),
            staff_channels: ["phone", "shop", "in_person", "staff"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPolicy {
    /// At most this many notes per customer in `cap_window`, across all rules.
    pub(super) cap: Spanned<u32>,
    /// The window of the cap, e.g. "7d".
    pub(super) cap_window: Spanned<String>,
    /// The default cooldown of a rule: the least time between two of its notes to one customer.
    pub(super) cooldown: Spanned<String>,
    /// No notes between these local times, e.g. "20:00-09:00" (customer's time zone).
    pub(super) quiet_hours: Option<Spanned<String>>,
    /// Local days notes may go out on.
    pub(super) days: Option<Spanned<Vec<String>>>,
    /// Dates without notes: "12-25" (yearly) or "2026-12-24".
    pub(super) holidays: Vec<Spanned<String>>,
    /// Interaction kinds that mean "stop writing to me".
    pub(super) unsubscribe_kinds: Vec<String>,
    /// Interaction kinds that open a complaint.
    pub(super) complaint_kinds: Vec<String>,
    /// Interaction kinds that close one.
    pub(super) resolution_kinds: Vec<String>,
    /// A complaint older than this no longer holds notes back.
    pub(super) open_complaint_window: Spanned<String>,
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
pub(super) struct RawDaemon {
    /// How often the log is checked for new interactions (rules with trigger = "interaction").
    pub(super) event_poll: Spanned<String>,
    /// On the very first start, interactions this recent count as new.
    pub(super) event_lookback: Spanned<String>,
    /// After SIGTERM, how long notes in flight may take to finish.
    pub(super) grace: Spanned<String>,
    /// How often the whole log is read again (catching edited and deleted rows).
    pub(super) reconcile: Spanned<String>,
    /// How late a missed scheduled time still runs.
    pub(super) catch_up: Spanned<String>,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            event_poll: Spanned::new(0..0, "500ms".to_string()),
            event_lookback: Spanned::new(0..0, "1h".to_string()),
            grace: Spanned::new(0..0, "30s".to_string()),
            reconcile: Spanned::new(0..0, "1d".to_string()),
            catch_up: Spanned::new(0..0, "1d".to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDelivery {
    /// First retry delay after a temporary failure; doubles with every attempt.
    pub(super) retry_base: Spanned<String>,
    /// The longest delay between two attempts.
    pub(super) retry_max: Spanned<String>,
    /// After this many attempts a note is marked failed.
    pub(super) max_attempts: u32,
    /// A note still undelivered this long after it was queued is marked failed.
    pub(super) max_age: Spanned<String>,
    /// How often the daemon looks for notes due for delivery.
    pub(super) poll: Spanned<String>,
    /// Notes handed to the transport at the same time.
    pub(super) concurrency: Spanned<u32>,
    /// Average notes per second (0 = no limit).
    pub(super) rate: Spanned<f64>,
    /// Notes that may go at once after a quiet spell.
    pub(super) burst: u32,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            retry_base: Spanned::new(0..0, "1m".to_string()),
            retry_max: Spanned::new(0..0, "1h".to_string()),
            max_attempts: 10,
            max_age: Spanned::new(0..0, "3d".to_string()),
            poll: Spanned::new(0..0, "5s".to_string()),
            concurrency: Spanned::new(0..0, 8),
            rate: Spanned::new(0..0, 0.0),
            burst: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTouchpoints {
    /// Interaction kinds that are good news for the relationship.
    pub(super) positive: Vec<String>,
    /// Interaction kinds that cost goodwill (an invoice is one).
    pub(super) negative: Vec<String>,
    /// An interaction with a sentiment below this is negative whatever its kind.
    pub(super) negative_sentiment: Spanned<f64>,
}

impl Default for RawTouchpoints {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RawTouchpoints {
            positive: strings(&["purchase", "review", "resolution", "thank_you"]),
            negative: strings(&["invoice", "complaint", "cancellation"]),
            negative_sentiment: Spanned::new(0..0, -0.3),
        }
    }
}

/// One `[[rule]]` as written. Kind-specific keys are optional here and checked per kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    /// Unique name, used in logs, the outbox and `preview --rule`.
    pub(super) name: Spanned<String>,
    /// One of [`KINDS`].
    pub(super) kind: Spanned<String>,
    /// 5-field cron expression, in `defaults.timezone` (optional for event-driven rules).
    pub(super) schedule: Option<Spanned<String>>,
    /// "schedule" (default) or "interaction": also react to new rows in the log within seconds.
    pub(super) trigger: Option<Spanned<String>>,
    /// Hold each note this long after the interaction that triggered it (e.g. "30m").
    pub(super) delay: Option<Spanned<String>>,
    /// Template file name inside the template directory.
    pub(super) template: Spanned<String>,
    /// Higher wins when rules compete for the same customer.
    #[serde(default)]
    pub(super) priority: i64,
    /// Least time between two notes of this rule to one customer (default: policy.cooldown).
    pub(super) cooldown: Option<Spanned<String>>,
    /// Optional SQL boolean expression over `customers` (columns of the canonical schema).
    pub(super) segment: Option<Spanned<String>>,
    /// At most this many notes queued by this rule per day.
    pub(super) daily_limit: Option<Spanned<u32>>,
    /// Set to false to keep a rule in the file without running it.
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    /// Wait while the customer has an open complaint (default: true for quiet and seasonal).
    pub(super) hold_while_unhappy: Option<bool>,
    /// Whether the frequency cap holds its notes (default: false for unhappy and followup).
    pub(super) capped: Option<bool>,
    /// Only customers with at least this many positive touch points for every negative one.
    pub(super) ledger_at_least: Option<Spanned<f64>>,
    /// The window `ledger_at_least` counts over (default "90d").
    pub(super) ledger_window: Option<Spanned<String>>,
    /// quiet: least number of past interactions.
    pub(super) min_interactions: Option<Spanned<u32>>,
    /// quiet: how long without any interaction.
    pub(super) quiet_for: Option<Spanned<String>>,
    /// unhappy, departed: how far back to look for the triggering interaction.
    pub(super) within: Option<Spanned<String>>,
    /// unhappy: a sentiment below this counts as unhappy.
    pub(super) sentiment_below: Option<Spanned<f64>>,
    /// unhappy: complaint kinds; departed: cancellation kinds; followup: the follow-up kinds.
    pub(super) kinds: Option<Spanned<Vec<String>>>,
    /// followup: the kinds of the interaction followed up (e.g. "complaint").
    pub(super) after: Option<Spanned<Vec<String>>>,
    /// ratio: the window the touch points are counted over.
    pub(super) window: Option<Spanned<String>>,
    /// ratio: positive touch points wanted for every negative one.
    pub(super) target: Option<Spanned<f64>>,
    /// seasonal: short name of the season, used in the occasion key (e.g. "valentines").
    pub(super) season: Option<Spanned<String>>,
    /// seasonal: a title for templates (e.g. "Valentine's week").
    pub(super) title: Option<Spanned<String>>,
    /// seasonal: first day, "MM-DD".
    pub(super) start: Option<Spanned<String>>,
    /// seasonal: last day, "MM-DD".
    pub(super) end: Option<Spanned<String>>,
}

pub(super) fn yes() -> bool {
    true
}

/// `[inbound]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawInbound {
    /// How long other notes to a customer wait after their reply.
    pub(super) hold_after_reply: Spanned<String>,
    /// Soft bounces (a full mailbox, a server down) of one address within `soft_bounce_window`
    /// that suppress it.
    pub(super) soft_bounce_limit: Spanned<u32>,
    /// The window soft bounces are counted in.
    pub(super) soft_bounce_window: Spanned<String>,
    /// How often a mailbox without IMAP IDLE, and a maildir, is read.
    pub(super) poll: Spanned<String>,
    /// A larger message is classified by its headers alone.
    pub(super) max_message_bytes: u64,
    /// IMAP mailboxes.
    pub(super) imap: Vec<ImapConfig>,
    /// Local maildirs.
    pub(super) maildir: Vec<RawInboundMaildir>,
}

impl Default for RawInbound {
    fn default() -> Self {
        RawInbound {
            hold_after_reply: Spanned::new(0..0, "3d".into()),
            soft_bounce_limit: Spanned::new(0..0, 3),
            soft_bounce_window: Spanned::new(0..0, "30d".into()),
            poll: Spanned::new(0..0, "5m".into()),
            max_message_bytes: 10 * 1024 * 1024,
            imap: Vec::new(),
            maildir: Vec::new(),
        }
    }
}

/// `[[inbound.maildir]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInboundMaildir {
    /// The maildir (with `new/` and `cur/`); relative to the config file.
    pub(super) dir: PathBuf,
    /// Its name in `status` and the log (default: "maildir <dir>").
    pub(super) name: Option<String>,
}

/// `[http]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// The address and port the listener binds, e.g. "127.0.0.1:8026".
    pub(super) listen: Spanned<String>,
    /// The https address customers see (the reverse proxy's), e.g. "https://bakery.example/rekindle".
    pub(super) public_url: Spanned<String>,
    /// A file holding the previous link-signing secret, still accepted after a rotation.
    pub(super) previous_secret_file: Option<PathBuf>,
    /// An environment variable holding it.
    pub(super) previous_secret_env: Option<String>,
    /// How long after the rotation links signed with the previous secret still work.
    #[serde(default = "ninety_days")]
    pub(super) previous_secret_for: Spanned<String>,
    /// Requests a minute from one client address.
    #[serde(default = "thirty")]
    pub(super) rate_limit: u32,
    /// The longest a request may take to arrive (headers and body).
    #[serde(default = "ten_seconds")]
    pub(super) request_timeout: Spanned<String>,
}

fn ninety_days() -> Spanned<String> {
    Spanned::new(0..0, "90d".to_string())
}

fn thirty() -> u32 {
    30
}

fn ten_seconds() -> Spanned<String> {
    Spanned::new(0..0, "10s".to_string())
}
