//! The web face, against the real daemon with real HTTP requests: the one-click unsubscribe
//! from a delivered note's link, a GET that changes nothing, forged, foreign and rotated-out
//! tokens, the limits a stranger meets (body size, slow and idle connections, the rate limit),
//! `/healthz` going 503 while the delivery loop is stuck on a silent mail server and back, and
//! `/metrics` as Prometheus text.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::config::{SORRY_ON_EVENT, smtp};
use support::daemon::Daemon;
use support::fixture::{Fixture, ago, text};
use support::http::{self, Answer, configure, get, link_in, path_of, post};
use support::smtp_server::TestSmtpServer;

fn suppressions(f: &Fixture) -> Vec<(String, String)> {
    f.state_pairs("SELECT key, reason FROM suppressions ORDER BY key")
}

/// The same link with another token.
fn with_token(path: &str, token: &str) -> String {
    let (base, _) = path.rsplit_once("t=").expect("a token");
    format!("{base}t={token}")
}

#[test]
fn one_click_unsubscribes_a_get_changes_nothing_and_strange_tokens_get_one_answer() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann Archer"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Stale bread."));
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    let port = configure(
        &f,
        &transport,
        SORRY_ON_EVENT,
        "previous_secret_file = \"old-secret\"\nprevious_secret_for = \"4s\"",
        "the new secret",
    );
    std::fs::write(f.path("old-secret"), "the old secret").expect("write");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let link = link_in(&server, "ann@example.com");
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/unsubscribe?c=1&t=")),
        "{link}"
    );
    let path = path_of(&link);

    // A link signed with the old secret, as a note sent before the rotation carries it.
    let old_token = token("the old secret", "1");
    assert_eq!(
        path.rsplit_once("t=").map(|(_, t)| t.to_string()),
        Some(token("the new secret", "1"))
    );

    let mut daemon = Daemon::start(&f);
    daemon.wait_for("web face listening");

    // GET shows the page and changes nothing.
    let page = get(port, &path);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Hello Ann,"), "{}", page.body);
    assert!(
        !page.body.contains("Archer") && !page.body.contains("ann@example.com"),
        "the first name only"
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(suppressions(&f).is_empty(), "a GET changed something");

    // Forged, foreign and unknown: one answer.
    let forged = get(port, &with_token(&path, "00000000000000000000000000000000"));
    let foreign = get(port, &path.replace("c=1&", "c=2&"));
    let unknown = get(port, "/unsubscribe?c=999&t=abc");
    let missing = get(port, "/unsubscribe");
    for other in [&foreign, &unknown, &missing] {
        assert_eq!((other.status, &other.body), (forged.status, &forged.body));
    }
    assert_eq!(forged.status, 404);
    assert!(forged.body.contains("This link is not valid any more"));
    assert!(
        post(
            port,
            &with_token(&path, "0".repeat(32).as_str()),
            "List-Unsubscribe=One-Click"
        )
        .status
            == 404
    );
    assert!(suppressions(&f).is_empty());

    // The old secret's link still works within previous_secret_for, then no more.
    let old_path = with_token(&path, &old_token);
    assert_eq!(
        get(port, &old_path).status,
        200,
        "the previous secret within its period"
    );
    let until = Instant::now() + Duration::from_secs(30);
    while get(port, &old_path).status == 200 {
        assert!(
            Instant::now() < until,
            "the previous secret was never rotated out"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(get(port, &old_path).body, forged.body);

    // One-click: suppressed, reason "one-click"; again: harmless.
    let done = post(port, &path, "List-Unsubscribe=One-Click");
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("You are unsubscribed"));
    assert_eq!(post(port, &path, "List-Unsubscribe=One-Click").status, 200);
    assert_eq!(
        suppressions(&f),
        vec![("1".to_string(), "one-click".to_string())]
    );
    daemon.wait_for("one-click unsubscribe");
    let status = f.rekindle(&["status"]);
    let (said, _) = text(&status);
    assert!(said.contains("one-click unsubscribes     1 / 1"), "{said}");
    assert!(
        !daemon
            .seen()
            .iter()
            .any(|l| l.contains(&path[path.len() - 32..])),
        "a token was logged"
    );

    // The page now offers to start again, and that undoes her own stop (only hers).
    let stopped = get(port, &path);
    assert!(
        stopped.body.contains("id=\"resume\"") && !stopped.body.contains("id=\"stop\""),
        "{}",
        stopped.body
    );
    let resumed = post(port, &path, "do=resume");
    assert!(resumed.body.contains("Welcome back"), "{}", resumed.body);
    assert!(suppressions(&f).is_empty(), "{:?}", suppressions(&f));
    assert_eq!(post(port, &path, "do=stop").status, 200);
    assert_eq!(
        suppressions(&f),
        vec![("1".to_string(), "preferences page".to_string())]
    );

    // A new complaint: the apology rule skips her now.
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Cold coffee."));
    let plan = f.rekindle(&["plan"]);
    let (stdout, _) = text(&plan);
    assert!(
        stdout.contains("suppressed") || stdout.contains("suppression"),
        "{stdout}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// A link's token as rekindle signs it: 32 hex digits of HMAC-SHA256("unsubscribe:" + id).
fn token(secret: &str, customer: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("unsubscribe:{customer}").as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_stranger_meets_limits_and_a_monitor_reads_health_and_metrics() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann"), None, None);
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    let port = configure(
        &f,
        &transport,
        SORRY_ON_EVENT,
        "rate_limit = 5\nrequest_timeout = \"1s\"",
        "s3cret",
    );
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("web face listening");

    // Health and metrics.
    let health = get(port, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let metrics = get(port, "/metrics");
    assert_eq!(metrics.status, 200);
    let lines: Vec<String> = metrics.body.lines().map(str::to_string).collect();
    let scrape =
        prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).expect("Prometheus text");
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for name in [
        "rekindle_build_info",
        "rekindle_oldest_waiting_note_age_seconds",
        "rekindle_loop_last_progress_age_seconds",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(!metrics.body.contains('@'), "an address in the metrics");

    // A body larger than 16 KiB.
    let big = "x".repeat(20 * 1024);
    let answer = post(port, "/unsubscribe?c=1&t=0", &big);
    assert_eq!(answer.status, 413, "{answer:?}");

    // Half a request, then silence: cut off within the request timeout.
    for start in [&b"GET /healthz HTTP/1.1\r\nHost: 127"[..], &b""[..]] {
        let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        slow.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        slow.write_all(start).expect("send");
        let began = Instant::now();
        let mut rest = Vec::new();
        let read = slow.read_to_end(&mut rest);
        assert!(read.is_ok(), "the connection was not closed: {read:?}");
        assert!(began.elapsed() < Duration::from_secs(14));
        if !rest.is_empty() {
            assert_eq!(http::parse(&rest).status, 408);
        }
    }
    // A body that never finishes: 408.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    slow.write_all(
        b"POST /unsubscribe?c=1&t=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nList-",
    )
    .expect("send");
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert_eq!(http::parse(&rest).status, 408);

    // Five requests a minute from one address, then 429; another address is not held back.
    let statuses: Vec<u16> = (0..6)
        .map(|_| http::get_from(port, "/unsubscribe?c=1&t=0", Some("203.0.113.9")).status)
        .collect();
    assert_eq!(statuses[..5], [404; 5]);
    let held: Answer = http::get_from(port, "/unsubscribe?c=1&t=0", Some("203.0.113.9"));
    assert_eq!(held.status, 429);
    assert_eq!(held.header("retry-after"), Some("60"));
    assert_eq!(
        http::get_from(port, "/unsubscribe?c=1&t=0", Some("198.51.100.7")).status,
        404
    );
    let still = get(port, "/healthz");
    assert_eq!(still.status, 200, "the daemon answers on");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn healthz_names_the_stuck_loop_and_recovers() {
    // A mail server that accepts connections and says nothing until released.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let smtp_port = silent.local_addr().expect("addr").port();
    let release = Arc::new(AtomicBool::new(false));
    let released = release.clone();
    std::thread::spawn(move || {
        silent.set_nonblocking(true).expect("nonblocking");
        let mut held = Vec::new();
        loop {
            if let Ok((conn, _)) = silent.accept() {
                held.push(conn);
            }
            if released.load(Ordering::SeqCst) {
                held.clear();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let f = Fixture::new();
    f.customer(1, "ada@example.com", Some("Ada"), None, None);
    let transport = format!(
        "{}\ntimeout = \"10min\"\n[delivery]\npoll = \"1s\"\n[daemon]\nevent_poll = \"200ms\"",
        smtp(smtp_port, &[])
    );
    let port = configure(&f, &transport, SORRY_ON_EVENT, "", "s3cret");
    // The watchdog's timeout sets how long a loop may rest: 2 s here.
    let mut daemon = Daemon::start_with_env(&f, &[("WATCHDOG_USEC", "2000000")]);
    daemon.wait_for("web face listening");
    assert_eq!(get(port, "/healthz").status, 200);
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Cold."));
    let until = Instant::now() + Duration::from_secs(30);
    let stuck = loop {
        let answer = get(port, "/healthz");
        if answer.status == 503 {
            break answer;
        }
        assert!(Instant::now() < until, "never went 503");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stuck.body, "stuck: delivery loop\n");
    release.store(true, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz").status != 200 {
        assert!(Instant::now() < until, "never back to 200");
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon.signal("TERM");
    let _ = daemon.wait_exit();
}

#[test]
fn a_note_queued_before_the_customer_chose_is_cancelled_at_the_last_look() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann Archer"), None, None)
        .interaction(1, &ago(0.0), "complaint", Some(-0.8), Some("Stale bread."));
    // The apology waits two hours before it goes.
    let delayed = SORRY_ON_EVENT.replace("trigger = \"interaction\"\n", "delay = \"2h\"\n");
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    let port = configure(&f, &transport, &delayed, "", "s3cret");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(
        server.received().is_empty(),
        "the apology waits for its delay"
    );
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("web face listening");
    // She unticks apologies, the only kind this business sends, and saves.
    let link = format!("/unsubscribe?c=1&t={}", token("s3cret", "1"));
    let saved = post(port, &link, "every=0&do=save");
    assert_eq!(saved.status, 200, "{saved:?}");
    assert!(
        saved.body.contains("your choices are saved"),
        "{}",
        saved.body
    );
    assert!(
        !saved
            .body
            .contains("id=\"want_apologies\" name=\"want_apologies\" value=\"on\" checked")
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let out = f.rekindle(&["--clock-offset", "3h", "run", "--once"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("note cancelled before sending"), "{stderr}");
    assert!(stderr.contains("preference: no apologies"), "{stderr}");
    assert!(server.received().is_empty(), "the apology went after all");
}
