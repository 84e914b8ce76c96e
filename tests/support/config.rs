#![allow(dead_code)]
//! Test configurations as text, shared by the integration tests and the unit tests (which
//! include this file with `#[path]`): the smallest valid file, the transports, and the rules
//! several tests use.

/// Where a test configuration points: relative to the config file's directory.
pub struct Paths<'a> {
    /// `[paths] log`.
    pub log: &'a str,
    /// `[paths] state`.
    pub state: &'a str,
    /// `[paths] templates`.
    pub templates: &'a str,
}

/// Paths for a configuration that is only parsed, never run.
pub const SCRATCH: Paths<'static> = Paths {
    log: "l",
    state: "s",
    templates: "t",
};

/// Paths inside an integration test's fixture directory.
pub const FIXTURE: Paths<'static> = Paths {
    log: "log.sqlite",
    state: "state.sqlite",
    templates: "templates",
};

/// A whole configuration: `paths`, Rosemary's bakery as the sender, `transport`, the time zone
/// (the default when `None`), then `rest` (more sections, and the rules).
pub fn config(paths: &Paths<'_>, transport: &str, timezone: Option<&str>, rest: &str) -> String {
    let defaults = timezone
        .map(|tz| format!("[defaults]\ntimezone = \"{tz}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[paths]
log = "{log}"
state = "{state}"
templates = "{templates}"

[sender]
name = "Rosemary"
email = "rosemary@bakery.example"
business = "Rosemary's Bakery"
unsubscribe_mailto = "unsubscribe@bakery.example"

{transport}

{defaults}
{rest}"#,
        log = paths.log,
        state = paths.state,
        templates = paths.templates,
    )
}

/// `[transport]` for a maildir at `dir`.
pub fn maildir(dir: &str) -> String {
    format!("[transport]\nkind = \"maildir\"\n[transport.maildir]\ndir = \"{dir}\"")
}

/// `[transport]` for plaintext SMTP to 127.0.0.1:`port`, with `extra` lines (`key = value`) in
/// its `[transport.smtp]`; more keys may follow on the next lines.
pub fn smtp(port: u16, extra: &[&str]) -> String {
    format!(
        "[transport]\nkind = \"smtp\"\n[transport.smtp]\n{}",
        smtp_server(port, extra)
    )
}

/// The keys of one SMTP server on 127.0.0.1:`port` (plaintext), then `extra` lines: the body of
/// `[transport.smtp]` or of a `[[transport.fallback]]`.
pub fn smtp_server(port: u16, extra: &[&str]) -> String {
    let mut keys = format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"");
    for line in extra {
        keys.push('\n');
        keys.push_str(line);
    }
    keys
}

/// The rule most tests use: an apology for every recent complaint.
pub const SORRY_RULE: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

/// The apology rule on new interactions as well as on its schedule.
pub const SORRY_ON_EVENT: &str = r#"[[rule]]
name = "sorry"
kind = "unhappy"
trigger = "interaction"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#;

/// One rule named `name` of `kind` on `schedule`, with `template` and `extra` lines.
pub fn rule(name: &str, kind: &str, schedule: &str, template: &str, extra: &str) -> String {
    format!(
        "[[rule]]\nname = \"{name}\"\nkind = \"{kind}\"\nschedule = \"{schedule}\"\ntemplate = \"{template}\"\n{extra}"
    )
}
