//! The preferences page in a real browser (Debian's headless Chromium through ChromeDriver): a
//! customer opens the link in a note rekindle delivered, refuses seasonal cards (a click on the
//! words) and saves by keyboard alone (Tab to the button, Enter); the
//! next seasonal run skips her with the reason "preference" while her apology still goes.
//! Screenshots at 375 and 1024 px wide land in `target/screenshots/`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use support::browser::Browser;
use support::config::smtp;
use support::daemon::Daemon;
use support::fixture::{Fixture, ago, text};
use support::http::{configure, link_in};
use support::smtp_server::TestSmtpServer;

/// An apology on each new complaint, and a winter card (off until the test turns it on).
fn rules() -> String {
    let today = jiff::ZonedDateTime::now().strftime("%m-%d").to_string();
    format!(
        "[policy]\ncap = 10\n\n[[rule]]\nname = \"sorry\"\nkind = \"unhappy\"\ntrigger = \"interaction\"\nschedule = \"*/5 * * * *\"\ntemplate = \"unhappy.j2\"\ncooldown = \"1s\"\n\n[[rule]]\nname = \"winter\"\nkind = \"seasonal\"\nschedule = \"*/5 * * * *\"\ntemplate = \"gratitude.j2\"\nseason = \"winter\"\ntitle = \"winter\"\nstart = \"{today}\"\nend = \"{today}\"\nhold_while_unhappy = false\nenabled = false\n"
    )
}

/// WebDriver's codes for the Tab and Enter keys.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Presses `key` on the element that has the focus.
async fn press(client: &fantoccini::Client, key: &str) {
    let focused = client.active_element().await.expect("the focused element");
    focused.send_keys(key).await.expect("a key press");
}

/// Whether the checkbox `id` is ticked (it must be on the page).
async fn checked(client: &fantoccini::Client, id: &str) -> bool {
    let checkbox = client.find(Locator::Id(id)).await;
    let checkbox = checkbox.unwrap_or_else(|e| panic!("no checkbox {id} on the page: {e}"));
    let checked = checkbox
        .prop("checked")
        .await
        .expect("its checked property");
    match checked.as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => panic!("checkbox {id}: checked is {other:?}"),
    }
}

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_refuses_seasonal_cards_in_a_browser_and_the_next_card_skips_them() {
    let server = TestSmtpServer::start();
    let f = Fixture::new();
    f.customer(1, "ann@example.com", Some("Ann Archer"), None, None)
        .interaction(1, &ago(1.0), "complaint", Some(-0.8), Some("Stale bread."))
        .customer(2, "ben@example.com", Some("Ben Brook"), None, None)
        .interaction(2, &ago(3.0), "purchase", Some(0.6), None);
    let transport = smtp(server.port(), &["timeout = \"5s\""]);
    configure(&f, &transport, &rules(), "", "a shared secret");
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let link = link_in(&server, "ann@example.com");
    let mut daemon = Daemon::start(&f);
    daemon.wait_for("web face listening");

    let browser = Browser::start(375, 812).await;
    let client = browser.client();
    client.goto(&link).await.expect("open the note's link");
    assert!(
        checked(client, "want_seasonal").await,
        "every kind is kept until she chooses"
    );
    browser.screenshot(&screenshot("preferences-375.png")).await;
    // She clicks the words, as a person does, not the small box.
    client
        .find(Locator::Css("label[for=want_seasonal]"))
        .await
        .expect("the label")
        .click()
        .await
        .expect("click the label");
    // The rest by keyboard alone: Tab moves from the seasonal box past the three frequencies
    // (one stop for the radio group) to "Save my choices", and Enter presses it.
    let focused =
        |script: &'static str| async move { client.execute(script, vec![]).await.expect("script") };
    focused("document.getElementById('want_seasonal').focus(); return null;").await;
    for _ in 0..2 {
        press(client, TAB).await;
    }
    let on = focused("return document.activeElement.id;").await;
    assert_eq!(on.as_str(), Some("save"), "Tab reaches the save button");
    press(client, ENTER).await;
    let notice = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("notice"))
        .await
        .expect("a notice after saving");
    assert_eq!(
        notice.text().await.expect("text"),
        "Thank you, your choices are saved."
    );
    assert!(!checked(client, "want_seasonal").await);
    assert!(checked(client, "want_apologies").await);
    browser
        .screenshot(&screenshot("preferences-375-saved.png"))
        .await;
    browser.resize(1024, 768).await;
    browser
        .screenshot(&screenshot("preferences-1024.png"))
        .await;
    browser.close().await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    // The winter card goes out now, and Ann complains again.
    let config = std::fs::read_to_string(f.path("rekindle.toml")).expect("read");
    std::fs::write(
        f.path("rekindle.toml"),
        config.replace("enabled = false", "enabled = true"),
    )
    .expect("write");
    f.interaction(1, &ago(0.0), "complaint", Some(-0.9), Some("Cold coffee."));
    let plan = f.rekindle(&["plan"]);
    let (stdout, stderr) = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("preference: no seasonal cards"), "{stdout}");
    let explain = f.rekindle(&["explain", "--customer", "1"]);
    let (explained, _) = text(&explain);
    assert!(
        explained.contains("preferences (chosen on the preferences page): no seasonal cards"),
        "{explained}"
    );
    let out = f.rekindle(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let got = server.wait_for(3, Duration::from_secs(10));
    let to = |who: &str| got.iter().filter(|m| m.to == [who]).count();
    assert_eq!(
        to("ann@example.com"),
        2,
        "both apologies, and no winter card"
    );
    assert_eq!(to("ben@example.com"), 1, "Ben's winter card");
}
