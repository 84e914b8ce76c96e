//! Config parsing and validation: exact messages with file:line:col.

use std::path::Path;

use super::*;

const HEAD: &str = r#"[paths]
log = "log.sqlite"
state = "state.sqlite"
templates = "templates"

[sender]
name = "Rosemary"
email = "rosemary@bakery.example"
business = "Rosemary's Bakery"

[transport]
kind = "maildir"
[transport.maildir]
dir = "maildir"
"#;

const RULE: &str = r#"
[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

/// The messages `check` would print for `text`, one per line.
fn problems(text: &str) -> Vec<String> {
    let (_, diagnostics) = Config::parse(Path::new("rekindle.toml"), text.to_string());
    diagnostics.iter().map(ToString::to_string).collect()
}

fn parse(text: &str) -> Config {
    let (config, diagnostics) =
        Config::parse(Path::new("/etc/rekindle/rekindle.toml"), text.to_string());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    config.expect("valid config")
}

#[test]
fn the_shipped_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rekindle.toml");
    let (config, diagnostics) = Config::load(&path);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let config = config.expect("shipped config");
    assert_eq!(config.rules.len(), 7);
    assert_eq!(config.timezone_name, "Europe/Paris");
    assert!(matches!(config.transport, Transport::Smtp(_)));
}

#[test]
fn a_minimal_config_gets_documented_defaults() {
    let config = parse(&format!("{HEAD}{RULE}"));
    assert_eq!(config.log_path, Path::new("/etc/rekindle/log.sqlite"));
    assert_eq!(config.policy.cap, 1);
    assert_eq!(config.policy.cap_window, SignedDuration::from_hours(7 * 24));
    assert_eq!(config.fallback_name, "there");
    let rule = &config.rules[0];
    assert_eq!(rule.cooldown, SignedDuration::from_hours(30 * 24));
    assert_eq!(
        rule.kind,
        RuleKind::Unhappy {
            within: SignedDuration::from_hours(14 * 24),
            sentiment_below: -0.3,
            kinds: vec!["complaint".into()],
        }
    );
}

#[test]
fn unknown_key_names_the_place_and_a_suggestion() {
    let text = format!("{HEAD}{RULE}shedule = \"0 9 * * *\"\n");
    assert_eq!(
        problems(&text),
        [
            "rekindle.toml:21:1: unknown key `shedule`; did you mean \"schedule\"?; valid keys here: name, kind, schedule, trigger, delay, template, priority, cooldown, segment, daily_limit, enabled, hold_while_unhappy, capped, ledger_at_least, ledger_window, min_interactions, quiet_for, within, sentiment_below, kinds, after, window, target, season, title, start, end"
        ]
    );
}

#[test]
fn unknown_rule_kind_suggests_the_closest() {
    let text = format!("{HEAD}{}", RULE.replace("\"unhappy\"", "\"quiett\""));
    assert_eq!(
        problems(&text),
        [
            "rekindle.toml:18:8: unknown rule kind \"quiett\"; did you mean \"quiet\"?; known kinds: quiet, unhappy, departed, followup, ratio, seasonal"
        ]
    );
}

#[test]
fn bad_cron_and_bad_duration_are_both_reported() {
    let text = format!(
        "{HEAD}{}cooldown = \"3 fortnights\"\n",
        RULE.replace("*/5 * * * *", "0 25 * * *")
    );
    assert_eq!(
        problems(&text),
        [
            "rekindle.toml:19:12: invalid cron schedule \"0 25 * * *\" in rule \"sorry\": Component error: Number out of bounds; e.g. \"0 10 * * *\" is every day at 10:00",
            "rekindle.toml:21:12: invalid duration \"3 fortnights\" for `cooldown`: unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); write e.g. \"30d\", \"12h\" or \"1h 30m\"",
        ]
    );
}

#[test]
fn six_field_cron_is_refused_with_the_expected_form() {
    let text = format!("{HEAD}{}", RULE.replace("*/5 * * * *", "0 */5 * * * *"));
    assert_eq!(
        problems(&text),
        [
            "rekindle.toml:19:12: invalid cron schedule \"0 */5 * * * *\" in rule \"sorry\": expected 5 fields (minute hour day-of-month month day-of-week), found 6; e.g. \"0 10 * * *\" is every day at 10:00"
        ]
    );
}

#[test]
fn keys_of_another_kind_are_errors() {
    let text = format!("{HEAD}{RULE}quiet_for = \"60d\"\n");
    assert_eq!(
        problems(&text),
        [
            "rekindle.toml:21:13: `quiet_for` does not apply to a unhappy rule (rule \"sorry\"); keys for unhappy: within, sentiment_below, kinds"
        ]
    );
}

#[test]
fn duplicate_rule_names_and_bad_addresses_are_all_reported() {
    let text =
        format!("{HEAD}{RULE}{RULE}").replace("rosemary@bakery.example", "rosemary at bakery");
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "rekindle.toml:8:9: invalid email address \"rosemary at bakery\" for `sender.email`"
        ),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        "rekindle.toml:23:8: a rule named \"sorry\" is already defined; rule names must be unique"
    );
}

#[test]
fn toml_syntax_errors_point_at_the_place() {
    let found = problems("[paths\nlog = 1\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("rekindle.toml:1:7: "), "{found:?}");
}

#[test]
fn seasonal_windows_are_checked_and_may_span_new_year() {
    let seasonal = "\n[[rule]]\nname = \"winter\"\nkind = \"seasonal\"\nschedule = \"0 10 * * *\"\ntemplate = \"w.j2\"\nstart = \"12-20\"\nend = \"01-05\"\n";
    let config = parse(&format!("{HEAD}{seasonal}"));
    let RuleKind::Seasonal(season) = &config.rules[0].kind else {
        panic!("not seasonal");
    };
    let date = |y, m, d| jiff::civil::date(y, m, d);
    assert_eq!(season.open_on(date(2026, 12, 24)), Some(2026));
    assert_eq!(season.open_on(date(2027, 1, 2)), Some(2026));
    assert_eq!(season.open_on(date(2027, 1, 6)), None);
    let bad = seasonal.replace("01-05", "02-30");
    assert_eq!(
        problems(&format!("{HEAD}{bad}")),
        [
            "rekindle.toml:22:7: invalid date \"02-30\" for `end` in rule \"winter\"; write month-day, e.g. \"02-10\""
        ]
    );
}

#[test]
fn schedules_match_the_local_wall_clock() {
    let schedule = rule::Schedule::parse("0 9 * * 1-5").expect("valid");
    let monday_nine = jiff::civil::date(2026, 11, 23).at(9, 0, 0, 0);
    assert!(schedule.matches(monday_nine));
    assert!(!schedule.matches(monday_nine + jiff::SignedDuration::from_mins(1)));
    let saturday_nine = jiff::civil::date(2026, 11, 28).at(9, 0, 0, 0);
    assert!(!schedule.matches(saturday_nine));
}

#[test]
fn plaintext_smtp_to_a_remote_host_is_refused() {
    let text = HEAD.replace(
        "kind = \"maildir\"\n[transport.maildir]\ndir = \"maildir\"",
        "kind = \"smtp\"\n[transport.smtp]\nhost = \"mail.example.com\"\ntls = \"none\"",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("rekindle.toml:12:8: [transport.smtp]: "),
        "{found:?}"
    );
}

#[test]
fn event_triggers_are_checked() {
    let (_, d) = Config::parse(
        Path::new("rekindle.toml"),
        format!(
            "{HEAD}\n[[rule]]\nname = \"q\"\nkind = \"quiet\"\ntrigger = \"interaction\"\ntemplate = \"q.j2\"\n"
        ),
    );
    let messages: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("a quiet rule is about time passing, not about a new interaction")),
        "{messages:?}"
    );
    let (_, d) = Config::parse(
        Path::new("rekindle.toml"),
        format!("{HEAD}\n[[rule]]\nname = \"s\"\nkind = \"unhappy\"\ntemplate = \"s.j2\"\n"),
    );
    let messages: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("rule \"s\" needs a `schedule`")),
        "{messages:?}"
    );
    let config = parse(&format!(
        "{HEAD}\n[[rule]]\nname = \"f\"\nkind = \"followup\"\ntrigger = \"interaction\"\ndelay = \"2h\"\ntemplate = \"f.j2\"\n"
    ));
    let rule = &config.rules[0];
    assert!(rule.on_interaction && rule.schedule.is_none());
    assert_eq!(rule.delay, SignedDuration::from_hours(2));
    assert_eq!(
        rule.kind,
        RuleKind::Followup {
            within: SignedDuration::from_hours(14 * 24),
            kinds: vec!["resolution".into()],
            after: vec!["complaint".into()],
        }
    );
}

#[test]
fn inbound_mailboxes_get_documented_defaults_and_a_return_path() {
    let config = parse(&format!(
        "{HEAD}[inbound]\n[[inbound.imap]]\nhost = \"imap.bakery.example\"\nusername = \"bounces@bakery.example\"\npassword_env = \"P\"\n[[inbound.maildir]]\ndir = \"/var/mail/b\"\n{RULE}"
    ));
    let inbound = &config.inbound;
    assert_eq!(inbound.hold_after_reply, SignedDuration::from_hours(72));
    assert_eq!(
        (inbound.soft_bounce_limit, inbound.soft_bounce_window),
        (3, SignedDuration::from_hours(720))
    );
    assert_eq!(inbound.poll, SignedDuration::from_mins(5));
    assert_eq!(inbound.max_message_bytes, 10 * 1024 * 1024);
    let [
        inbound::Source::Imap(imap),
        inbound::Source::Maildir { name, dir },
    ] = inbound.sources.as_slice()
    else {
        panic!("{:?}", inbound.sources);
    };
    assert_eq!(
        (imap.port(), imap.tls, imap.idle),
        (993, smtp::Tls::Implicit, true)
    );
    assert_eq!(imap.folders, ["INBOX"]);
    assert_eq!(imap.name(), "bounces@bakery.example@imap.bakery.example");
    assert_eq!(
        (name.as_str(), dir.as_path()),
        ("maildir /var/mail/b", Path::new("/var/mail/b"))
    );
    let config = parse(&format!("{HEAD}{RULE}"));
    assert!(config.inbound.sources.is_empty());
}

#[test]
fn inbound_settings_that_cannot_work_are_refused_with_the_way_out() {
    let text = format!(
        "{HEAD}[inbound]\nsoft_bounce_limit = 0\nhold_after_reply = \"3 dayz\"\n[[inbound.imap]]\nhost = \"imap.example.com\"\ntls = \"none\"\nusername = \"u\"\nfolders = [\"INBOX\", \"Done\"]\nmove_to = \"Done\"\n[[inbound.imap]]\nhost = \"imap.example.com\"\nusername = \"u\"\npassword_file = \"p\"\n{RULE}"
    );
    let problems = problems(&text).join("\n");
    for expected in [
        "soft_bounce_limit = 0 would suppress an address before its first soft bounce",
        "invalid duration \"3 dayz\" for `inbound.hold_after_reply`",
        "tls = \"none\" would send the mailbox's password in plaintext to imap.example.com",
        "no password source; set password_file or password_env",
        "move_to \"Done\" is also read (folders)",
        "two sources are named \"u@imap.example.com\"; give each a `name` of its own",
    ] {
        assert!(problems.contains(expected), "{expected:?} in\n{problems}");
    }
}

#[test]
fn a_return_path_with_its_own_plus_is_refused_while_verp_adds_one() {
    let head = HEAD.replace(
        "business = \"Rosemary's Bakery\"\n",
        "business = \"Rosemary's Bakery\"\nreturn_path = \"bounces+x@bakery.example\"\n",
    );
    let problems = problems(&format!("{head}{RULE}")).join("\n");
    assert!(
        problems.contains("return_path \"bounces+x@bakery.example\" already holds a '+'"),
        "{problems}"
    );
    let head = head.replace("bounces+x@", "bounces@");
    let config = parse(&format!("{head}{RULE}"));
    assert_eq!(
        config.sender.return_path.map(|a| a.to_string()).as_deref(),
        Some("bounces@bakery.example")
    );
    assert!(config.sender.verp);
}

#[test]
fn the_web_face_gets_documented_defaults_and_builds_the_links() {
    let with_secret = HEAD.replace(
        "business = \"Rosemary's Bakery\"\n",
        "business = \"Rosemary's Bakery\"\nunsubscribe_secret_env = \"LINK_SECRET\"\n",
    );
    let config = parse(&format!(
        "{with_secret}[http]\nlisten = \"127.0.0.1:8026\"\npublic_url = \"https://bakery.example/rekindle/\"\n{RULE}"
    ));
    let http = config.http.expect("[http]");
    assert_eq!(http.listen.to_string(), "127.0.0.1:8026");
    assert_eq!(http.rate_limit, 30);
    assert_eq!(http.request_timeout, SignedDuration::from_secs(10));
    assert_eq!(
        http.previous_secret_for,
        SignedDuration::from_hours(90 * 24)
    );
    assert_eq!(
        config.sender.unsubscribe_url.as_deref(),
        Some("https://bakery.example/rekindle/unsubscribe")
    );
    assert!(
        config.sender.one_click,
        "rekindle serves the link: one-click is offered"
    );
    let own_page = parse(
        &(with_secret.replace(
            "unsubscribe_secret_env",
            "unsubscribe_url = \"https://bakery.example/u\"\nunsubscribe_secret_env",
        ) + RULE),
    );
    assert!(
        !own_page.sender.one_click,
        "only when the operator says their page takes it"
    );
    assert!(parse(&format!("{HEAD}{RULE}")).http.is_none());
}

#[test]
fn web_face_settings_that_cannot_work_are_refused_with_the_way_out() {
    let problems = problems(&format!(
        "{HEAD}[http]\nlisten = \"localhost\"\npublic_url = \"http://bakery.example\"\nrate_limit = 0\nrequest_timeout = \"10ms\"\n{RULE}"
    ));
    let all = problems.join("\n");
    for expected in [
        "http.listen \"localhost\" is not an address and port",
        "http.public_url \"http://bakery.example\": it must be an https:// address (plain http:// only to localhost)",
        "[http] needs [sender] unsubscribe_secret_file or unsubscribe_secret_env",
        "http.rate_limit must be at least 1",
        "http.request_timeout must be at least 1s",
    ] {
        assert!(all.contains(expected), "{expected:?} not in:\n{all}");
    }
    let both = problems_of_both();
    assert!(
        both.contains("remove [sender] unsubscribe_url (or [http])"),
        "{both}"
    );
}

/// The problems of a file with both its own unsubscribe page and `[http]`.
fn problems_of_both() -> String {
    let text = HEAD.replace(
        "business = \"Rosemary's Bakery\"\n",
        "business = \"Rosemary's Bakery\"\nunsubscribe_url = \"https://bakery.example/u\"\nunsubscribe_secret_env = \"S\"\n",
    ) + "[http]\nlisten = \"127.0.0.1:8026\"\npublic_url = \"https://bakery.example\"\n"
        + RULE;
    problems(&text).join("\n")
}
