//! SMTP over real TLS: a CA made by the test (rcgen) signs the certificate of an SMTP server on
//! 127.0.0.1 speaking STARTTLS or TLS from the first byte (rustls), and `rekindle run --once`
//! trusts it through `ca_file` or the system's store. What arrived is asserted by Message-ID;
//! every command the server read is recorded with whether it came encrypted, so the tests see
//! that the password never crosses the wire in the clear. Each TLS failure pauses delivery with
//! one ERROR naming the server and the reason, and leaves every note queued.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use support::certs::{Ca, Validity};
use support::config::SORRY_RULE;
use support::fixture::{Fixture, text};
use support::scripted_smtp::{Script, ScriptedSmtp, ServerTls};

const USER: &str = "rosemary";
const PASSWORD: &str = "correct horse battery";

/// A server with a certificate from `ca` for `names`, with a login and PIPELINING.
fn server(ca: &Ca, names: &[&str], validity: Validity, implicit: bool) -> ScriptedSmtp {
    ScriptedSmtp::start(Script {
        login: Some((USER.into(), PASSWORD.into())),
        pipelining: true,
        tls: Some(ServerTls {
            config: ca.server(names, validity),
            implicit,
        }),
        ..Script::default()
    })
}

/// `[transport.smtp]` to `host`:`port` with `tls`, the login, and `extra` lines.
fn transport(host: &str, port: u16, tls: &str, extra: &[&str]) -> String {
    let mut text = format!(
        "[transport]\nkind = \"smtp\"\n[transport.smtp]\nhost = \"{host}\"\nport = {port}\ntls = \"{tls}\"\ntimeout = \"5s\"\nusername = \"{USER}\"\npassword_file = \"smtp-password\""
    );
    for line in extra {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The apology rule, and `[transport.smtp]` to `server` at `host` (see [`transport`]).
fn configure(f: &Fixture, host: &str, server: &ScriptedSmtp, tls: &str, extra: &[&str]) {
    f.config(&transport(host, server.port(), tls, extra), SORRY_RULE);
}

/// `n` customers with a complaint each, the password file, and `ca`'s certificate in ca.pem.
fn fixture(n: i64, ca: &Ca) -> Fixture {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.complaints(1, n);
    std::fs::write(f.path("smtp-password"), format!("{PASSWORD}\n")).expect("password");
    std::fs::set_permissions(
        f.path("smtp-password"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::write(f.path("ca.pem"), ca.pem()).expect("ca.pem");
    f
}

/// The base64 AUTH PLAIN carries: what must never be read unencrypted.
fn password_on_the_wire() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"))
}

/// Every note arrived once, by Message-ID, and is `sent`.
fn assert_all_arrived(f: &Fixture, server: &ScriptedSmtp, n: usize) {
    let got = server.wait_for(n, Duration::from_secs(10));
    let arrived: HashSet<String> = got.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(got.len(), n, "none twice");
    let notes = f.states_by_message_id();
    assert_eq!(notes.len(), n);
    for (id, state) in &notes {
        assert!(arrived.contains(id), "{id} did not arrive");
        assert_eq!(state, "sent", "{id}");
    }
}

#[test]
fn starttls_with_a_private_ca_logs_in_and_pipelines_only_after_the_upgrade_on_a_pool() {
    const NOTES: i64 = 20;
    let ca = Ca::new("Rosemary's Bakery private CA");
    let server = server(&ca, &["localhost"], Validity::Current, false);
    let f = fixture(NOTES, &ca);
    configure(
        &f,
        "localhost",
        &server,
        "starttls",
        &["ca_file = \"ca.pem\"", "pool_size = 2"],
    );
    let (check, _) = text(&f.rekindle(&["check"]));
    assert!(
        check.contains(&format!(
            "smtp localhost:{}: STARTTLS, the certificate for localhost checked against ca_file",
            server.port()
        )) && check.contains("(1 CA)"),
        "{check}"
    );

    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("delivery: sent 20, retrying 0, failed 0"),
        "{stdout}\n{stderr}"
    );
    assert_all_arrived(&f, &server, NOTES as usize);

    let commands = server.commands();
    let before_tls: HashSet<String> = commands
        .iter()
        .filter(|c| !c.encrypted)
        .map(|c| c.line.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        before_tls,
        HashSet::from(["EHLO".to_string(), "STARTTLS".to_string()]),
        "only EHLO and STARTTLS in the clear: {commands:?}"
    );
    let secret = password_on_the_wire();
    assert!(
        commands
            .iter()
            .all(|c| c.encrypted || !c.line.contains(&secret)),
        "the password never in the clear"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.encrypted && c.line.starts_with("AUTH PLAIN")),
        "logged in over TLS: {commands:?}"
    );
    assert!(
        server.connections() <= 2,
        "{} connections for {NOTES} notes with pool_size = 2",
        server.connections()
    );
    assert_eq!(
        server.auth_attempts(),
        server.connections(),
        "one login per connection"
    );
    assert!(
        server.pipelined() > 0,
        "MAIL, RCPT and DATA went together after the upgrade"
    );
}

#[test]
fn implicit_tls_to_an_ip_address_checks_the_certificate_for_tls_server_name() {
    const NOTES: i64 = 6;
    let ca = Ca::new("Relay CA");
    let server = server(&ca, &["smtp.bakery.test"], Validity::Current, true);
    let f = fixture(NOTES, &ca);
    configure(
        &f,
        "127.0.0.1",
        &server,
        "implicit",
        &[
            "ca_file = \"ca.pem\"",
            "tls_server_name = \"smtp.bakery.test\"",
        ],
    );
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_all_arrived(&f, &server, NOTES as usize);
    let commands = server.commands();
    assert!(
        commands.iter().all(|c| c.encrypted),
        "every byte encrypted: {commands:?}"
    );
}

/// An administrator who added the CA to the machine's trust store needs no ca_file.
#[test]
fn the_system_trust_store_is_used_when_there_is_no_ca_file() {
    let ca = Ca::new("Corporate CA");
    let server = server(&ca, &["localhost"], Validity::Current, false);
    let f = fixture(3, &ca);
    configure(&f, "localhost", &server, "starttls", &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(f.path("rekindle.toml"))
        .args(["run", "--once"])
        .env("SSL_CERT_FILE", f.path("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run rekindle");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_all_arrived(&f, &server, 3);

    // A machine without a trust store falls back to rekindle's own CAs, and says so; the
    // private CA is not among them, so nothing goes.
    std::fs::write(f.path("empty.pem"), "").expect("empty");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(f.path("rekindle.toml"))
        .arg("check")
        .env("SSL_CERT_FILE", f.path("empty.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run rekindle");
    let (stdout, stderr) = text(&check);
    assert_eq!(check.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("warning")
            && stderr.contains("webpki-roots")
            && stderr.contains("install ca-certificates"),
        "{stderr}"
    );
}

/// `run --once` against a server whose TLS cannot be trusted: one ERROR naming the server and
/// `reason`, every note not sent before still queued with no attempt counted, nothing arrived, and `status`
/// shows the pause; the password was never read in the clear.
fn refused(f: &Fixture, server: &ScriptedSmtp, reason: &str) {
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one ERROR: {stderr}");
    let label = format!("localhost:{}", server.port());
    assert!(
        errors[0].contains(&label) && errors[0].contains(reason),
        "the ERROR names {label} and {reason:?}: {}",
        errors[0]
    );
    assert!(stdout.contains("delivery paused until"), "{stdout}");
    // Notes sent before stay sent; every other one is queued.
    let notes = f.notes();
    assert!(
        notes.iter().any(|n| n.ends_with("|queued"))
            && notes
                .iter()
                .all(|n| n.ends_with("|queued") || n.ends_with("|sent")),
        "{notes:?}"
    );
    let state = rusqlite::Connection::open(f.path("state.sqlite")).expect("state");
    let attempts: i64 = state
        .query_row(
            "SELECT COALESCE(SUM(attempts), 0) FROM notes WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )
        .expect("attempts");
    assert_eq!(attempts, 0, "no attempt counted");
    let (status, _) = text(&f.rekindle(&["status"]));
    assert!(
        status.contains("delivery PAUSED since") && status.contains(reason),
        "{status}"
    );
    let secret = password_on_the_wire();
    assert!(
        server
            .commands()
            .iter()
            .all(|c| c.encrypted || !c.line.contains(&secret)),
        "the password never in the clear"
    );
}

/// A server with a certificate from `server_ca` for `names`, and rekindle told to trust
/// `trusted`: refused with `reason`, and never a login.
fn untrusted(server_ca: &Ca, trusted: &Ca, names: &[&str], validity: Validity, reason: &str) {
    let server = server(server_ca, names, validity, false);
    let f = fixture(5, trusted);
    configure(
        &f,
        "localhost",
        &server,
        "starttls",
        &["ca_file = \"ca.pem\""],
    );
    refused(&f, &server, reason);
    assert!(server.accepted().is_empty());
    assert_eq!(server.auth_attempts(), 0, "no login without trusted TLS");
}

#[test]
fn a_certificate_from_an_unknown_ca_pauses_delivery_with_one_error() {
    let (theirs, ours) = (Ca::new("Someone else's CA"), Ca::new("The bakery's CA"));
    untrusted(
        &theirs,
        &ours,
        &["localhost"],
        Validity::Current,
        "set ca_file",
    );
}

#[test]
fn a_certificate_for_another_name_pauses_delivery_with_one_error() {
    let ca = Ca::new("The bakery's CA");
    untrusted(
        &ca,
        &ca,
        &["mail.elsewhere.test"],
        Validity::Current,
        "tls_server_name",
    );
}

#[test]
fn an_expired_certificate_pauses_delivery_with_one_error() {
    let ca = Ca::new("The bakery's CA");
    untrusted(&ca, &ca, &["localhost"], Validity::Expired, "renew");
}

/// A server that offered STARTTLS and stops (a misconfiguration, or someone on the path
/// stripping it): rekindle never falls back to plaintext, and never sends the password.
#[test]
fn a_server_that_stops_offering_starttls_gets_no_plaintext_and_no_password() {
    let ca = Ca::new("Relay CA");
    let server = server(&ca, &["localhost"], Validity::Current, false);
    let f = fixture(3, &ca);
    configure(
        &f,
        "localhost",
        &server,
        "starttls",
        &["ca_file = \"ca.pem\""],
    );
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_all_arrived(&f, &server, 3);

    server.script(|s| s.tls = None);
    f.complaints(10, 4);
    let logins = server.auth_attempts();
    refused(&f, &server, "does not offer STARTTLS");
    assert_eq!(server.accepted().len(), 3, "nothing more arrived");
    assert_eq!(server.auth_attempts(), logins, "no login in the clear");
    let last: Vec<_> = server
        .commands()
        .into_iter()
        .rev()
        .take_while(|c| !c.encrypted)
        .collect();
    assert!(
        last.iter()
            .all(|c| c.line.starts_with("EHLO") || c.line.starts_with("QUIT")),
        "only EHLO (and QUIT) in the clear: {last:?}"
    );
}

#[test]
fn a_tls_alert_in_mid_session_pauses_delivery_and_loses_no_note() {
    let ca = Ca::new("Relay CA");
    let server = server(&ca, &["localhost"], Validity::Current, false);
    server.script(|s| s.alert_at_mail = true);
    let f = fixture(5, &ca);
    configure(
        &f,
        "localhost",
        &server,
        "starttls",
        &["ca_file = \"ca.pem\""],
    );
    refused(&f, &server, "the TLS session broke");
    assert!(server.accepted().is_empty());

    // Once the server is fixed, a reload (here: the next run after the pause) sends them all.
    server.script(|s| s.alert_at_mail = false);
    f.state_sql("DELETE FROM meta WHERE key = 'delivery_pause'");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_all_arrived(&f, &server, 5);
}

#[test]
fn check_points_at_an_unreadable_or_invalid_ca_file() {
    let ca = Ca::new("Relay CA");
    let f = fixture(1, &ca);
    let config = |ca_file: &str| {
        f.config(
            &transport(
                "localhost",
                2525,
                "starttls",
                &[&format!("ca_file = \"{ca_file}\"")],
            ),
            SORRY_RULE,
        )
    };
    let line = |stderr: &str| -> Option<String> {
        stderr
            .lines()
            .find(|l| l.contains("ca_file"))
            .map(str::to_string)
    };
    let key_only = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
    std::fs::write(f.path("key.pem"), key_only).expect("key.pem");
    let broken = ca.pem().replace("MI", "@@");
    std::fs::write(f.path("broken.pem"), broken).expect("broken.pem");
    for (file, says) in [
        ("missing.pem", "No such file"),
        ("key.pem", "holds no certificate"),
        ("broken.pem", "not valid PEM"),
    ] {
        let path = config(file);
        let out = f.rekindle(&["check"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{file}: {stderr}");
        let found = line(&stderr).unwrap_or_default();
        let text = std::fs::read_to_string(&path).expect("config");
        let at = text
            .lines()
            .position(|l| l.starts_with("ca_file"))
            .map(|i| i + 1)
            .expect("ca_file line");
        assert!(
            found.contains(&format!("rekindle.toml:{at}:")) && found.contains(says),
            "{file}: the line of ca_file and {says:?}: {stderr}"
        );
    }
}

/// A server whose certificate cannot be trusted is passed over, as an unreachable one is: the
/// next `[[transport.fallback]]` takes the notes, and one WARN says what is wrong with the first.
#[test]
fn a_server_whose_certificate_is_not_trusted_is_passed_over_for_the_fallback() {
    let (theirs, ours) = (Ca::new("Someone else's CA"), Ca::new("The bakery's CA"));
    let primary = server(&theirs, &["localhost"], Validity::Current, false);
    let fallback = ScriptedSmtp::start(Script::default());
    let f = fixture(6, &ours);
    let config = format!(
        "{}\n[[transport.fallback]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"",
        transport(
            "localhost",
            primary.port(),
            "starttls",
            &["ca_file = \"ca.pem\""]
        ),
        fallback.port()
    );
    f.config(&config, SORRY_RULE);
    let out = f.rekindle(&["run", "--once"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_all_arrived(&f, &fallback, 6);
    assert!(primary.accepted().is_empty());
    assert_eq!(primary.auth_attempts(), 0);
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("will not take mail"))
        .collect();
    assert_eq!(warnings.len(), 1, "said once: {stderr}");
    assert!(
        warnings[0].contains(&format!("localhost:{}", primary.port()))
            && warnings[0].contains("set ca_file"),
        "{}",
        warnings[0]
    );
}
