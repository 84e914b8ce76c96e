//! Turning the raw file into a typed [`Config`]: every value checked, every problem collected
//! (not only the first), each pointing at its place in the file with what to do.

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use toml::Spanned;

use super::inbound::{Inbound, Source};
use super::raw::*;
use super::{
    Config, Daemon, Delivery, Diagnostic, Digest, Policy, SecretSource, Sender, Touchpoints,
    Transport, diag, parse_duration, rule,
};
use crate::config::Rule;

/// Collects diagnostics while turning raw values into typed ones.
pub(crate) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) source: &'a str,
    pub(super) base: &'a Path,
    pub(super) diagnostics: Vec<Diagnostic>,
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

    /// A sentiment threshold: a number from -1 (angry) to 1 (delighted), as the log's
    /// `sentiment` column holds. Out of range (or NaN) is an error at its place; the value is
    /// then kept within range so the rest can still be checked.
    pub(crate) fn sentiment(&mut self, key: &str, value: &Spanned<f64>) -> f64 {
        let v = *value.get_ref();
        if !(-1.0..=1.0).contains(&v) {
            let message = format!(
                "{key} = {v} is not a sentiment: the log's sentiment goes from -1.0 (angry) to 1.0 (delighted); an unhappy customer is below a number such as -0.3"
            );
            self.error(value.span(), message);
            return if v.is_nan() { -0.3 } else { v.clamp(-1.0, 1.0) };
        }
        v
    }

    /// Makes a path from the config absolute, relative to the config file's directory.
    pub(super) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn config(&mut self, raw: RawConfig) -> Option<Config> {
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
        let mut sender = self.sender(raw.sender);
        let http = self.http(raw.http, sender.as_mut());
        let transport = self.transport(raw.transport);
        let policy = self.policy(&raw.policy);
        let delivery = self.delivery(&raw.delivery);
        let daemon = self.daemon(&raw.daemon);
        let touchpoints = self.touchpoints(raw.touchpoints);
        let default_cooldown = self.duration("policy.cooldown", &raw.policy.cooldown);
        let digest = raw.digest.and_then(|d| self.digest(d));
        let inbound = self.inbound(raw.inbound);
        if let Err(why) = crate::compose::Language::new(raw.defaults.language.get_ref()) {
            self.error(
                raw.defaults.language.span(),
                format!("defaults.language: {why}"),
            );
        }
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
            path_spans: (raw.paths.log.span(), raw.paths.state.span()),
            templates_dir: self.path(raw.paths.templates.get_ref()),
            sender: sender?,
            transport: transport?,
            timezone: timezone?,
            timezone_name: raw.defaults.timezone.into_inner(),
            fallback_name: raw.defaults.fallback_name,
            language: raw.defaults.language.into_inner(),
            max_quote_chars: raw.defaults.max_quote_chars,
            quote_kinds: raw.defaults.quote_kinds,
            staff_channels: raw.defaults.staff_channels,
            policy: policy?,
            delivery: delivery?,
            daemon: daemon?,
            touchpoints,
            rules,
            digest,
            inbound: inbound?,
            http: http?,
        })
    }

    fn sender(&mut self, raw: RawSender) -> Option<Sender> {
        self.header_text("sender.name", &raw.name);
        let email = self.address("sender.email", &raw.email);
        let reply_to = raw
            .reply_to
            .as_ref()
            .map(|r| self.address("sender.reply_to", r));
        let secret = self.secret_source(
            "sender",
            "unsubscribe_secret",
            raw.unsubscribe_secret_file,
            raw.unsubscribe_secret_env,
        );
        let url = raw.unsubscribe_url;
        if let Some(url) = &url
            && self.header_text("sender.unsubscribe_url", url)
        {
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
        let return_path = raw
            .return_path
            .as_ref()
            .map(|r| self.address("sender.return_path", r));
        if let (Some(r), Some(Some(address))) = (&raw.return_path, &return_path)
            && raw.verp
            && address.user().contains('+')
        {
            let message = format!(
                "return_path \"{address}\" already holds a '+': with verp = true rekindle adds \"+token\" to it itself; write the mailbox without it, or set verp = false"
            );
            self.error(r.span(), message);
        }
        Some(Sender {
            name: raw.name.into_inner(),
            email: email?,
            business: raw.business,
            reply_to: reply_to.unwrap_or(None),
            signature: raw.signature,
            return_path: return_path.unwrap_or(None),
            verp: raw.verp,
            unsubscribe_mailto: mailto.unwrap_or(None),
            unsubscribe_url: url.map(Spanned::into_inner),
            one_click: raw.unsubscribe_one_click,
            unsubscribe_secret_source: secret,
            unsubscribe_secret: None,
        })
    }

    /// Where the secret `key` of `[section]` (`key_file` or `key_env` in the file) is read
    /// from, if it is set.
    pub(super) fn secret_source(
        &mut self,
        section: &str,
        key: &str,
        file: Option<PathBuf>,
        env: Option<String>,
    ) -> Option<SecretSource> {
        match (file, env) {
            (Some(file), None) => Some(SecretSource::File(self.path(&file))),
            (None, Some(env)) => Some(SecretSource::Env(env)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                let message =
                    format!("[{section}]: both {key}_file and {key}_env are set; keep one");
                self.diagnostics
                    .push(Diagnostic::error_in(self.file, message));
                None
            }
        }
    }

    /// Whether `value` of `key` can go into a mail header as it is; an error at its place if not
    /// (a line break would start a header of its own: an injection, and no message builds).
    fn header_text(&mut self, key: &str, value: &Spanned<String>) -> bool {
        let text = value.get_ref();
        if !text.chars().any(char::is_control) {
            return true;
        }
        let message = format!(
            "{key} {text:?} contains a line break or another control character, which cannot go into a mail header; write it on one line"
        );
        self.error(value.span(), message);
        false
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
                    for (i, smtp) in std::iter::once(primary).chain(raw.fallback).enumerate() {
                        let section = if i == 0 {
                            "[transport.smtp]".to_string()
                        } else {
                            format!("[[transport.fallback]] #{i} ({})", smtp.host)
                        };
                        for problem in smtp.problems() {
                            self.error(span.clone(), format!("{section}: {problem}"));
                        }
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
        if *raw.concurrency.get_ref() == 0 {
            let message = "delivery.concurrency = 0 would never send a note: give the number of notes handed to the mail server at once, e.g. 8".to_string();
            self.error(raw.concurrency.span(), message);
        }
        let rate = *raw.rate.get_ref();
        if !(rate.is_finite() && rate >= 0.0) {
            let message = format!(
                "delivery.rate = {rate} is not a number of notes per second: use 0 (no limit) or more, e.g. 2.5"
            );
            self.error(raw.rate.span(), message);
        }
        Some(Delivery {
            retry_base: retry_base?,
            retry_max: retry_max?,
            max_attempts: raw.max_attempts.max(1),
            max_age: max_age?,
            poll: poll?,
            concurrency: (*raw.concurrency.get_ref()).max(1),
            rate: if rate.is_finite() { rate.max(0.0) } else { 0.0 },
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
        let catch_up = self.duration("daemon.catch_up", &raw.catch_up);
        Some(Daemon {
            event_poll: event_poll?.max(SignedDuration::from_millis(50)),
            event_lookback: event_lookback?,
            grace: grace?,
            reconcile: reconcile?,
            catch_up: catch_up?,
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
            negative_sentiment: self
                .sentiment("touchpoints.negative_sentiment", &raw.negative_sentiment),
        }
    }
}

impl Validator<'_> {
    /// `[inbound]`, checked; `None` when something is wrong (each problem is recorded).
    pub(super) fn inbound(&mut self, raw: Option<RawInbound>) -> Option<Inbound> {
        let Some(raw) = raw else {
            return Some(Inbound::default());
        };
        let hold = self.duration("inbound.hold_after_reply", &raw.hold_after_reply);
        let window = self.duration("inbound.soft_bounce_window", &raw.soft_bounce_window);
        let poll = self.duration("inbound.poll", &raw.poll);
        if *raw.soft_bounce_limit.get_ref() == 0 {
            let message = "soft_bounce_limit = 0 would suppress an address before its first soft bounce; use 1 or more (3 is the default)".to_string();
            self.error(raw.soft_bounce_limit.span(), message);
        }
        let mut sources = Vec::new();
        for (i, imap) in raw.imap.into_iter().enumerate() {
            for problem in imap.problems() {
                let message = format!("[[inbound.imap]] #{} ({}): {problem}", i + 1, imap.host);
                self.diagnostics
                    .push(Diagnostic::error_in(self.file, message));
            }
            let mut imap = imap;
            imap.ca_file = imap.ca_file.map(|f| self.base.join(f));
            sources.push(Source::Imap(imap));
        }
        for maildir in raw.maildir {
            let dir = self.base.join(&maildir.dir);
            let name = maildir
                .name
                .unwrap_or_else(|| format!("maildir {}", dir.display()));
            sources.push(Source::Maildir { name, dir });
        }
        let mut names: Vec<String> = sources.iter().map(Source::name).collect();
        names.sort();
        for pair in names.windows(2).filter(|w| w[0] == w[1]) {
            let message = format!(
                "[inbound]: two sources are named {:?}; give each a `name` of its own (rekindle remembers what it read by name)",
                pair[0]
            );
            self.diagnostics
                .push(Diagnostic::error_in(self.file, message));
        }
        Some(Inbound {
            sources,
            hold_after_reply: hold?,
            soft_bounce_limit: (*raw.soft_bounce_limit.get_ref()).max(1),
            soft_bounce_window: window?,
            poll: poll?.max(SignedDuration::from_secs(1)),
            max_message_bytes: raw.max_message_bytes.max(64 * 1024),
        })
    }
}
