//! `rekindle check` on broken setups: every problem printed as file:line:col with a fix, and
//! exit code 78 (EX_CONFIG) so systemd stops restarting a broken config.

mod support;

use support::config::{SORRY_RULE, maildir};
use support::fixture::{Fixture, text};

/// Runs `check` and returns (exit code, stderr lines mentioning a file).
fn check(f: &Fixture) -> (i32, Vec<String>) {
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    let dir = format!("{}/", f.dir.path().display());
    let lines = stderr
        .lines()
        .filter(|l| !l.starts_with("rekindle:"))
        .map(|l| l.replace(&dir, ""))
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// Asserts one of `lines` starts with `start` and contains `part`.
fn has_line(lines: &[String], start: &str, part: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(start) && l.contains(part)),
        "no line {start}…{part}… in {lines:#?}"
    );
}

#[test]
fn a_good_setup_passes() {
    let f = Fixture::new();
    f.config(&maildir("maildir"), SORRY_RULE);
    let out = f.rekindle(&["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(": ok: 1 rule(s)"), "{stdout}");
    assert!(stdout.contains("rule sorry"), "{stdout}");
}

#[test]
fn unknown_key() {
    let f = Fixture::new();
    f.config(&maildir("maildir"), &format!("{SORRY_RULE}prority = 5\n"));
    assert_eq!(
        check(&f),
        (78, vec!["rekindle.toml:25:1: unknown key `prority`; did you mean \"priority\"?; valid keys here: name, kind, schedule, trigger, delay, template, priority, cooldown, segment, daily_limit, enabled, hold_while_unhappy, capped, ledger_at_least, ledger_window, min_interactions, quiet_for, within, sentiment_below, kinds, after, window, target, season, title, start, end".to_string()])
    );
}

#[test]
fn several_problems_are_reported_at_once() {
    let f = Fixture::new();
    let rules = SORRY_RULE
        .replace("\"unhappy\"\n", "\"unhapy\"\n")
        .replace("*/5 * * * *", "every minute")
        + "cooldown = \"3 dayz\"\n";
    f.config(&maildir("maildir"), &rules);
    assert_eq!(
        check(&f),
        (
            78,
            vec![
                "rekindle.toml:23:12: invalid cron schedule \"every minute\" in rule \"sorry\": expected 5 fields (minute hour day-of-month month day-of-week), found 2; e.g. \"0 10 * * *\" is every day at 10:00".to_string(),
                "rekindle.toml:25:12: invalid duration \"3 dayz\" for `cooldown`: unknown time unit \"dayz\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); write e.g. \"30d\", \"12h\" or \"1h 30m\"".to_string(),
                "rekindle.toml:22:8: unknown rule kind \"unhapy\"; did you mean \"unhappy\"?; known kinds: quiet, unhappy, departed, followup, ratio, seasonal".to_string(),
            ]
        )
    );
}

#[test]
fn missing_template_suggests_the_file_that_exists() {
    let f = Fixture::new();
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy.j2", "unhapy.j2"),
    );
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("rekindle.toml:24:12: template \"unhapy.j2\" of rule \"sorry\" cannot be read from templates: "),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with("; did you mean \"unhappy.j2\"?"),
        "{lines:?}"
    );
}

#[test]
fn template_syntax_error_points_into_the_template() {
    let f = Fixture::new();
    std::fs::write(
        f.path("templates/broken.j2"),
        "{% block subject %}Hi{% endblock %}\n{% block text %}\nHello {{ customer.first_name }\n{% endblock %}\n",
    )
    .expect("write");
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy.j2", "broken.j2"),
    );
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("templates/broken.j2:3:"), "{lines:?}");
    assert!(lines[0].contains("syntax error: "), "{lines:?}");
}

/// Each language variant is checked, in its language, like the template it stands beside.
#[test]
fn a_language_variant_is_checked_too_and_points_at_its_own_file() {
    let f = Fixture::new();
    std::fs::write(
        f.path("templates/unhappy.fr.j2"),
        "{% block subject %}Toutes mes excuses{% endblock %}\n{% block text %}\nBonjour {{ customer.prenom }},\n{% endblock %}\n",
    )
    .expect("write");
    f.config(&maildir("maildir"), SORRY_RULE);
    let (code, lines) = check(&f);
    assert_eq!(code, 78, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("templates/unhappy.fr.j2:3:") && lines[0].contains("customer.prenom"),
        "{lines:?}"
    );
    // Mended, it renders in French: its dates and counts come out in French.
    std::fs::write(
        f.path("templates/unhappy.fr.j2"),
        "{% block subject %}Toutes mes excuses{% endblock %}\n{% block text %}\nBonjour, depuis {{ customer.years | count('an') }}{% if interaction %}, {{ interaction.when }}{% endif %}.\n{% endblock %}\n",
    )
    .expect("write");
    let (code, lines) = check(&f);
    assert_eq!((code, lines.len()), (0, 0), "{lines:?}");
    f.customer(
        1,
        "ann@example.com",
        Some("Ann"),
        None,
        Some(r#"{"language":"fr"}"#),
    )
    .interaction(
        1,
        &support::fixture::ago(1.0),
        "complaint",
        Some(-0.8),
        None,
    );
    let (stdout, stderr) = text(&f.rekindle(&["preview", "--rule", "sorry", "--customer", "1"]));
    assert!(
        stdout.contains("Bonjour, depuis") && stdout.contains(", hier."),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn undefined_variable_names_the_expression() {
    let f = Fixture::new();
    std::fs::write(
        f.path("templates/typo.j2"),
        "{% block subject %}Hi{% endblock %}\n{% block text %}\nHello {{ customer.frist_name }}\n{% endblock %}\n",
    )
    .expect("write");
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy.j2", "typo.j2"),
    );
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(
        lines,
        [
            "templates/typo.j2:3:10: undefined variable `customer.frist_name`; the variables are customer, interaction, days_quiet, season, sender, rule and unsubscribe (see README, \"Templates\"); guard optional ones with `is defined` or `|default(...)`"
        ]
    );
}

#[test]
fn a_log_without_the_canonical_columns_is_named() {
    let f = Fixture::new();
    f.sql("DROP TABLE interactions; CREATE TABLE interactions (id INTEGER PRIMARY KEY, customer_id INTEGER, at TEXT, kind TEXT);");
    f.config(&maildir("maildir"), SORRY_RULE);
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(
        lines,
        [
            "log.sqlite: \"interactions\" has no column \"sentiment\"; add it, or expose it through a view (see README, \"Interaction log\")",
            "log.sqlite: \"interactions\" has no column \"channel\"; add it, or expose it through a view (see README, \"Interaction log\")",
            "log.sqlite: \"interactions\" has no column \"note\"; add it, or expose it through a view (see README, \"Interaction log\")",
        ]
    );
}

#[test]
fn a_bad_segment_points_at_the_rule() {
    let f = Fixture::new();
    f.config(
        &maildir("maildir"),
        &format!("{SORRY_RULE}segment = \"vip_level > 2\"\n"),
    );
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(
        lines,
        [
            "rekindle.toml:25:11: rule \"sorry\": the segment is not valid SQL over `customers`: no such column: vip_level"
        ]
    );
}

#[test]
fn a_missing_config_says_how_to_point_at_one() {
    let f = Fixture::new();
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr.contains("cannot read the configuration"), "{stderr}");
    assert!(
        stderr.contains("pass --config PATH or set REKINDLE_CONFIG"),
        "{stderr}"
    );
}

#[test]
fn a_self_centred_note_is_a_warning_not_an_error() {
    let f = Fixture::new();
    std::fs::write(
        f.path("templates/brag.j2"),
        "{% block subject %}Our news{% endblock %}\n{% block text %}\nWe are proud of our ovens. Our team and our new shop are the best, and we grew.\n{% endblock %}\n",
    )
    .expect("write");
    f.config(
        &maildir("maildir"),
        &SORRY_RULE.replace("unhappy.j2", "brag.j2"),
    );
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("templates/brag.j2: warning: this note says we/our/us 6 times and you/your 0 times; make it about the customer, not about the business"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_templates_are_about_the_customer() {
    let f = Fixture::new();
    let rules: String = [
        "unhappy",
        "departed",
        "quiet",
        "gratitude",
        "valentines",
        "followup",
    ]
    .iter()
    .map(|t| {
        SORRY_RULE
            .replace("\"sorry\"", &format!("\"{t}\""))
            .replace("unhappy.j2", &format!("{t}.j2"))
    })
    .collect::<Vec<_>>()
    .join("\n");
    f.config(&maildir("maildir"), &rules);
    let out = f.rekindle(&["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn a_world_readable_password_file_is_a_warning_and_the_secret_never_shows() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let secret = f.path("smtp-password");
    std::fs::write(&secret, "hunter2-s3cret\n").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let transport = "[transport]\nkind = \"smtp\"\n[transport.smtp]\nhost = \"smtp.example.com\"\nusername = \"rosemary\"\npassword_file = \"smtp-password\"";
    f.config(transport, SORRY_RULE);
    let out = f.rekindle(&["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: [transport.smtp]: the SMTP password file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is readable by every user on this machine; run `chmod 600` on it"),
        "{stderr}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_, stderr) = text(&f.rekindle(&["check"]));
    assert!(!stderr.contains("warning"), "{stderr}");

    std::fs::remove_file(&secret).expect("remove");
    let out = f.rekindle(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).1.contains("cannot read the SMTP password file"));
}

#[test]
fn a_rollback_journal_log_is_a_warning_with_the_command_that_switches_it() {
    let f = Fixture::new();
    f.sql("PRAGMA journal_mode = DELETE");
    f.config(&maildir("maildir"), SORRY_RULE);
    let (code, lines) = check(&f);
    assert_eq!(code, 0, "a warning, not an error: {lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("the log uses a rollback journal (journal_mode = delete)"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("log.sqlite 'PRAGMA journal_mode=WAL'`"),
        "{lines:?}"
    );
    f.sql("PRAGMA journal_mode = WAL");
    let (_, lines) = check(&f);
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn a_line_break_in_a_setting_that_reaches_a_header_is_refused_where_it_is_written() {
    // Before, `check` passed this and every note then failed to build (preview panicked).
    let f = Fixture::new();
    let config = f.config(&maildir("maildir"), SORRY_RULE);
    let text = std::fs::read_to_string(&config).expect("config");
    let broken = text.replace(
        "name = \"Rosemary\"",
        "name = \"Rosemary\\r\\nBcc: everyone@example.com\"",
    );
    std::fs::write(&config, broken).expect("write config");
    assert_eq!(
        check(&f),
        (78, vec!["rekindle.toml:7:8: sender.name \"Rosemary\\r\\nBcc: everyone@example.com\" contains a line break or another control character, which cannot go into a mail header; write it on one line".to_string()])
    );
    // Nothing that builds a message starts with it either.
    let out = f.rekindle(&["preview", "--rule", "sorry", "--customer", "1"]);
    assert_eq!(out.status.code(), Some(78));
}

/// A relative `password_file` is found next to the config file, whatever the directory rekindle
/// is started from (before, `--config etc/smtp.toml` looked for `etc/etc/smtp-password`), and
/// in systemd's `$CREDENTIALS_DIRECTORY` first (before, not when the config's path was absolute,
/// as it is in the shipped unit).
#[test]
fn a_relative_password_file_resolves_once_against_the_config_files_directory() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let transport = support::config::smtp(
        2525,
        &[
            "username = \"rosemary\"",
            "password_file = \"smtp-password\"",
        ],
    );
    let config = f.config(&transport, SORRY_RULE);
    let etc = f.path("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    // The config in etc/, its paths pointing back up.
    let text_in_etc = std::fs::read_to_string(&config)
        .expect("config")
        .replace("= \"log.sqlite\"", "= \"../log.sqlite\"")
        .replace("= \"state.sqlite\"", "= \"../state.sqlite\"")
        .replace("= \"templates\"", "= \"../templates\"");
    std::fs::write(etc.join("smtp.toml"), text_in_etc).expect("write");
    let password = etc.join("smtp-password");
    std::fs::write(&password, "s3cret\n").expect("password");
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .current_dir(f.dir.path())
        .args(["--config", "etc/smtp.toml", "check"])
        .output()
        .expect("run");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Under systemd: the credential, with the config named by its absolute path.
    let credentials = f.path("credentials");
    std::fs::create_dir_all(&credentials).expect("dir");
    std::fs::rename(&password, credentials.join("smtp-password")).expect("move");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .arg("--config")
        .arg(etc.join("smtp.toml"))
        .arg("check")
        .output()
        .expect("run");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Values that parse but make no sense are refused where they are written. Before, each passed:
/// `sentiment_below = 7` apologised for happy purchases, `concurrency = 0` never sent, a cron
/// for 31 February never ran.
#[test]
fn values_that_make_no_sense_are_refused_where_they_are_written() {
    let f = Fixture::new();
    let rules = SORRY_RULE.replace("*/5 * * * *", "0 9 31 2 *")
        + "sentiment_below = 7\n\n[delivery]\nconcurrency = 0\nrate = nan\n\n[touchpoints]\nnegative_sentiment = -3.0\n";
    f.config(&maildir("maildir"), &rules);
    let (code, lines) = check(&f);
    assert_eq!(code, 78, "{lines:?}");
    let has = |start: &str, part: &str| has_line(&lines, start, part);
    has(
        "rekindle.toml:23:12: invalid cron schedule \"0 9 31 2 *\"",
        "never fires",
    );
    has(
        "rekindle.toml:25:19: sentiment_below in rule \"sorry\" = 7 is not a sentiment",
        "-1.0 (angry) to 1.0",
    );
    has(
        "rekindle.toml:28:15: delivery.concurrency = 0 would never send a note",
        "e.g. 8",
    );
    has(
        "rekindle.toml:29:8: delivery.rate = NaN is not a number of notes per second",
        "0 (no limit)",
    );
    has(
        "rekindle.toml:32:22: touchpoints.negative_sentiment = -3 is not a sentiment",
        "",
    );
}

/// A configuration saved in another encoding is refused with the line and column of its first
/// byte that is not UTF-8 (before: no place at all).
#[test]
fn a_configuration_that_is_not_utf8_says_where() {
    let f = Fixture::new();
    let config = f.config(&maildir("maildir"), SORRY_RULE);
    let mut bytes = std::fs::read(&config).expect("config");
    let text_ = String::from_utf8(bytes.clone()).expect("utf8");
    let at = text_.find("Rosemary's Bakery").expect("business") + "Rosemary's Bakery".len();
    bytes.splice(at..at, [b' ', 0xE9]); // "é" in Latin-1
    std::fs::write(&config, bytes).expect("write");
    let (code, lines) = check(&f);
    assert_eq!(code, 78);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("rekindle.toml:")
            && lines[0].contains("the configuration is not UTF-8 text"),
        "{lines:?}"
    );
    let line_no = text_[..at].lines().count();
    assert!(
        lines[0].starts_with(&format!("rekindle.toml:{line_no}:")),
        "{lines:?}"
    );
}

/// A state directory rekindle cannot write in is refused by `check`, as `run` would fail on it.
#[test]
fn a_state_database_that_cannot_be_written_is_refused() {
    let f = Fixture::new();
    let config = f.config(&maildir("maildir"), SORRY_RULE);
    // /proc takes no new files, not even from root (these tests may run as root).
    let text_ = std::fs::read_to_string(&config).expect("config").replace(
        "state = \"state.sqlite\"",
        "state = \"/proc/rekindle/state.sqlite\"",
    );
    std::fs::write(&config, text_).expect("write");
    let (code, lines) = check(&f);
    assert_eq!(code, 78, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with(
            "rekindle.toml:3:9: [paths] state: the state database /proc/rekindle/state.sqlite cannot be written"
        )),
        "{lines:?}"
    );
}

/// A log that does not exist (in a directory that does not either) is pointed at where
/// `[paths] log` is written.
#[test]
fn a_log_that_does_not_exist_is_pointed_at_where_it_is_written() {
    let f = Fixture::new();
    let config = f.config(&maildir("maildir"), SORRY_RULE);
    let text_ = std::fs::read_to_string(&config)
        .expect("config")
        .replace("log = \"log.sqlite\"", "log = \"nowhere/log.sqlite\"");
    std::fs::write(&config, text_).expect("write");
    let (code, lines) = check(&f);
    assert_eq!(code, 78, "{lines:?}");
    assert!(
        lines.iter().any(
            |l| l.starts_with("rekindle.toml:2:7: cannot open the interaction log")
                && l.ends_with("; check [paths] log")
        ),
        "{lines:?}"
    );
}

/// Every structural problem of a file that parses, in one run and in the user's words. Before,
/// `check` stopped at the first (an unknown key, a wrong type) and said "expected u32".
#[test]
fn every_unknown_key_and_wrong_type_is_reported_in_one_run_in_plain_words() {
    let f = Fixture::new();
    let rules = SORRY_RULE.to_string()
        + "cooldwn = \"30d\"\n\n[delivery]\nconcurrency = \"eight\"\n\n[daemon]\ngrace = 30\n";
    let config = f.config(&maildir("maildir"), &rules);
    let text_ = std::fs::read_to_string(&config)
        .expect("config")
        .replace("business = ", "busines = ");
    std::fs::write(&config, text_).expect("write");
    let (code, lines) = check(&f);
    assert_eq!(code, 78, "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let has = |start: &str, part: &str| has_line(&lines, start, part);
    has(
        "rekindle.toml:",
        "unknown key `busines`; did you mean \"business\"?",
    );
    has(
        "rekindle.toml:",
        "unknown key `cooldwn`; did you mean \"cooldown\"?",
    );
    has(
        "rekindle.toml:",
        "expected a whole number, like 25, found string \"eight\"",
    );
    has(
        "rekindle.toml:",
        "expected text in quotes, like \"30d\", found integer `30`",
    );
    // In the file's order.
    assert!(lines[0].starts_with("rekindle.toml:9:1:"), "{lines:#?}");
    assert!(lines[3].starts_with("rekindle.toml:31:9:"), "{lines:#?}");
}
