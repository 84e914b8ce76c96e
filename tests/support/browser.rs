#![allow(dead_code)]
//! A real browser for the tests that look at the web page: Debian's headless Chromium, driven
//! through Debian's ChromeDriver over WebDriver (the `fantoccini` client, plain HTTP to
//! 127.0.0.1, no TLS). Each [`Browser`] has a ChromeDriver of its own on a free port and a
//! fresh Chromium profile in a temp dir; dropping it (a test that panics, too) kills
//! ChromeDriver, the Chromium it started and all their children, then removes the temp dir.
//!
//! Every step has a deadline, so a Chromium that hangs fails the test with ChromeDriver's log
//! (which carries Chromium's own stderr) instead of hanging CI.

use std::fmt::Display;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use std::{fs, thread};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const MISSING: &str = "chromium and chromium-driver are missing: \
    apt-get install chromium chromium-driver (.ci/run installs them)";
/// The flags every session's Chromium gets, besides `--user-data-dir` and `--window-size`.
/// The background-networking ones keep Chromium from hanging on connections to Google that
/// the sandbox's closed network never answers; `--no-sandbox` because the tests run as root.
/// A scale factor of 1 makes a screenshot's pixels CSS px; hidden (overlay) scrollbars leave
/// the page the whole viewport's width, as on a phone.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
];
/// How long ChromeDriver may take to answer /status (on 2 cores busy with a build).
const DRIVER_READY: Duration = Duration::from_secs(20);
/// How long Chromium may take to start and open the session.
const SESSION_READY: Duration = Duration::from_secs(60);
/// How long one harness step (a resize, a screenshot, closing) may take.
const STEP: Duration = Duration::from_secs(30);
/// WebDriver's own limits on a page load and a script, for what tests do through `client()`.
const PAGE_LOAD_MS: u64 = 30_000;
const SCRIPT_MS: u64 = 30_000;

/// A headless Chromium driven through ChromeDriver, for one test.
pub struct Browser {
    client: Client,
    /// How much larger than the viewport the window is (headless=new still counts some
    /// browser chrome in the height: 139 px with Chromium 148), learnt from what it did.
    chrome: Mutex<(i64, i64)>,
    /// Declared after `client`: dropped (and killed) once the client is gone.
    driver: Driver,
}

impl Browser {
    /// Starts ChromeDriver on a free port of 127.0.0.1 and opens a headless session
    /// `width`×`height` CSS px.
    /// When /usr/bin/chromedriver or /usr/bin/chromium is missing: panics with
    /// "chromium and chromium-driver are missing: apt-get install chromium chromium-driver
    /// (.ci/run installs them)".
    pub async fn start(width: u32, height: u32) -> Browser {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            panic!("{MISSING}");
        }
        let driver = tokio::task::spawn_blocking(Driver::start).await;
        let driver = match driver {
            Ok(driver) => driver,
            // Its own explanatory panic, as it was.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("starting chromedriver: {e}"),
        };
        let client = driver.session(width, height).await;
        let chrome = Mutex::new((0, 0));
        let browser = Browser {
            client,
            chrome,
            driver,
        };
        let rect = browser.within("reading the window size", browser.client.get_window_size());
        let (outer_width, outer_height) = browser.ok("reading the window size", rect.await);
        let (inner_width, inner_height) = browser.viewport().await;
        let chrome = (
            outer_width as i64 - inner_width,
            outer_height as i64 - inner_height,
        );
        *browser.chrome.lock().expect("the chrome size") = chrome;
        browser.resize(width, height).await;
        browser
    }

    /// The WebDriver client (fantoccini), to navigate, find elements, click, submit.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sets the window's inner viewport to `width`×`height` CSS px (`window.innerWidth` and
    /// `innerHeight`), so a screenshot shows the page as a phone (375) or a laptop (1024)
    /// would. WebDriver sizes the outer window, which in headless=new is taller than the
    /// viewport: the difference is added, and learnt again if the viewport comes out
    /// otherwise. Panics if the viewport still differs after a few tries.
    pub async fn resize(&self, width: u32, height: u32) {
        let want = (i64::from(width), i64::from(height));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let chrome = *self.chrome.lock().expect("the chrome size");
            let outer = (want.0 + chrome.0, want.1 + chrome.1);
            let (w, h) = (outer.0.max(1) as u32, outer.1.max(1) as u32);
            let set = self.within("setting the window size", self.client.set_window_size(w, h));
            self.ok(format!("setting the window size to {w}x{h}"), set.await);
            let inner = self.settled_viewport(want).await;
            seen.push(format!(
                "window {w}x{h} gave viewport {}x{}",
                inner.0, inner.1
            ));
            if inner == want {
                return;
            }
            let chrome = (i64::from(w) - inner.0, i64::from(h) - inner.1);
            *self.chrome.lock().expect("the chrome size") = chrome;
        }
        let seen = seen.join("; ");
        self.driver.fail(format!(
            "could not make the viewport {width}x{height}: {seen}"
        ))
    }

    /// `window.innerWidth` and `innerHeight`, in CSS px.
    pub async fn viewport(&self) -> (i64, i64) {
        let script = "return [window.innerWidth, window.innerHeight];";
        let size = self.within("reading the viewport", self.client.execute(script, vec![]));
        let size = self.ok("reading window.innerWidth", size.await);
        let number = |i: usize| size.get(i).and_then(Value::as_i64);
        match (number(0), number(1)) {
            (Some(w), Some(h)) => (w, h),
            _ => self
                .driver
                .fail(format!("window.innerWidth/innerHeight gave {size}")),
        }
    }

    /// Saves a PNG screenshot of the full page (beyond the viewport, through the DevTools
    /// protocol's `Page.captureScreenshot` with `captureBeyondViewport`, which ChromeDriver
    /// relays; if that fails, of the viewport only, saying so on stderr) to `path`, creating
    /// parent dirs.
    pub async fn screenshot(&self, path: &Path) {
        let png = match self.full_page_png().await {
            Ok(png) => png,
            Err(e) => {
                eprintln!("browser: full-page screenshot failed ({e}); taking the viewport");
                let png = self.within("taking a screenshot", self.client.screenshot());
                self.ok("taking a screenshot", png.await)
            }
        };
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            self.driver.fail(format!(
                "the screenshot for {} is not a PNG",
                path.display()
            ));
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {} for a screenshot: {e}", dir.display()));
        }
        fs::write(path, png)
            .unwrap_or_else(|e| panic!("writing the screenshot {}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits) and ChromeDriver.
    pub async fn close(self) {
        let Browser { client, driver, .. } = self;
        match tokio::time::timeout(STEP, client.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("browser: closing the session: {e} (killing it instead)"),
            Err(_) => eprintln!("browser: the session did not close in {STEP:?}; killing it"),
        }
        // Chromium is gone or going; the kill takes care of what is left.
        drop(driver);
    }

    /// The page's full size from `Page.getLayoutMetrics`, then one capture of all of it.
    async fn full_page_png(&self) -> Result<Vec<u8>, String> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let (Some(width), Some(height)) = (size["width"].as_f64(), size["height"].as_f64()) else {
            return Err(format!("no cssContentSize in {metrics}"));
        };
        let clip =
            json!({"x": 0, "y": 0, "width": width.ceil(), "height": height.ceil(), "scale": 1});
        let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
        let shot = self.cdp("Page.captureScreenshot", params).await?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| format!("no data in {shot}"))?;
        base64_decode(data)
    }

    /// A DevTools protocol command through ChromeDriver's `goog/cdp/execute`.
    async fn cdp(&self, cmd: &'static str, params: Value) -> Result<Value, String> {
        let call = self.client.issue_cmd(Cdp { cmd, params });
        match tokio::time::timeout(STEP, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("{cmd}: {e}")),
            Err(_) => Err(format!("{cmd}: no answer in {STEP:?}")),
        }
    }

    /// The viewport once it is `want`, or once two readings 50 ms apart agree (a resize may
    /// land a moment after WebDriver answers), or as it is after 2 s.
    async fn settled_viewport(&self, want: (i64, i64)) -> (i64, i64) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = self.viewport().await;
        while last != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.viewport().await;
            if now == last {
                break;
            }
            last = now;
        }
        last
    }

    /// Awaits one WebDriver step, failing with ChromeDriver's log if it takes over [`STEP`].
    async fn within<T>(&self, what: &str, step: impl Future<Output = T>) -> T {
        match tokio::time::timeout(STEP, step).await {
            Ok(done) => done,
            Err(_) => self.driver.fail(format!("{what}: no answer in {STEP:?}")),
        }
    }

    fn ok<T, E: Display>(&self, what: impl Display, result: Result<T, E>) -> T {
        result.unwrap_or_else(|e| self.driver.fail(format!("{what}: {e}")))
    }
}

/// ChromeDriver as a child process in a process group of its own (Chromium and its helpers
/// join it), its log and Chromium's profile in a temp dir. Dropping it kills the whole group.
struct Driver {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Driver {
    /// Starts ChromeDriver on a free port and waits until /status says it is ready. A port
    /// found free may be taken before ChromeDriver binds it (tests run in parallel): then it
    /// exits saying so, and another port is tried.
    fn start() -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("rekindle-browser-")
            .tempdir();
        let dir = dir.expect("creating a temp dir for Chromium (is $TMPDIR writable?)");
        let mut driver = Driver {
            child: None,
            port: 0,
            dir,
        };
        for attempt in 1..=5 {
            driver.port = super::ports::free_port();
            match driver.spawn() {
                Ok(()) => return driver,
                Err(_) if attempt < 5 && driver.log().contains("Address already in use") => {}
                Err(e) => driver.fail(e),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Runs ChromeDriver, its stdout and stderr (and, with `--enable-chrome-logs`, Chromium's
    /// stderr) into `chromedriver.log`, and waits until it is ready.
    fn spawn(&mut self) -> Result<(), String> {
        self.halt();
        let log = fs::File::create(self.log_path()).expect("creating chromedriver.log");
        let log2 = log.try_clone().expect("opening chromedriver.log twice");
        let mut command = Command::new(CHROMEDRIVER);
        command.arg(format!("--port={}", self.port));
        command.args(["--allowed-ips=127.0.0.1", "--enable-chrome-logs"]);
        command.stdin(Stdio::null()).stdout(log).stderr(log2);
        // A home of its own: Chromium's crash handler (a process of its own session, out of
        // the group) keeps its database there, so it is found by the temp dir's name and
        // killed, and nothing is left in the real home.
        let home = self.dir.path().join("home");
        fs::create_dir_all(&home).expect("creating Chromium's home in the temp dir");
        command.env("HOME", &home);
        command.env("XDG_CONFIG_HOME", home.join(".config"));
        command.env("XDG_CACHE_HOME", home.join(".cache"));
        // Its own process group, which Chromium inherits: one kill ends them all.
        command.process_group(0);
        let child = command.spawn();
        self.child = Some(child.map_err(|e| format!("could not run {CHROMEDRIVER}: {e}"))?);
        let ready = self.wait_ready();
        if ready.is_err() {
            self.halt();
        }
        ready
    }

    /// Polls /status until it is ready (once ChromeDriver said it started on our port, so
    /// that another test's ChromeDriver on that port is not taken for ours), the child exits,
    /// or [`DRIVER_READY`] passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_READY;
        let started = format!("started successfully on port {}", self.port);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "chromedriver exited ({status}) before it was ready"
                ));
            }
            if self.log().contains(&started) && status_ready(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let port = self.port;
                return Err(format!(
                    "chromedriver's /status on port {port} not ready in 20 s"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens the WebDriver session: Chromium headless, `width`×`height`, a fresh profile.
    async fn session(&self, width: u32, height: u32) -> Client {
        let profile = self.dir.path().join("profile");
        let mut args: Vec<String> = FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={width},{height}"));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": PAGE_LOAD_MS, "script": SCRIPT_MS, "implicit": 0},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let capabilities: Capabilities = capabilities;
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{}/", self.port);
        match tokio::time::timeout(SESSION_READY, builder.connect(&url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => self.fail(format!("opening a Chromium session: {e}")),
            Err(_) => self.fail(format!(
                "Chromium did not open a session in {SESSION_READY:?}"
            )),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    /// ChromeDriver's output so far (with Chromium's stderr).
    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills ChromeDriver's process group (Chromium and its helpers), then any process whose
    /// command line still names the temp dir (Chromium's crash handlers, which start sessions
    /// of their own), and waits for those to go.
    fn halt(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
        let _ = child.kill();
        let _ = child.wait();
        let profile = self.dir.path().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_mentioning(&profile);
            if left.is_empty() || Instant::now() > deadline {
                return;
            }
            let _ = Command::new("kill").arg("-KILL").args(&left).status();
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics with `what` and the tail of ChromeDriver's log (Chromium's stderr included,
    /// less its complaints that there is no D-Bus, which a container never has).
    fn fail(&self, what: impl Display) -> ! {
        let log = self.log();
        let lines: Vec<_> = log
            .lines()
            .filter(|line| !line.contains(":dbus/"))
            .collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let path = self.log_path();
        panic!(
            "browser: {what}\n--- {} (tail; the temp dir goes when the test ends) ---\n{tail}",
            path.display()
        )
    }
}

impl Drop for Driver {
    /// Kills ChromeDriver and Chromium (also when the test panicked); the temp dir goes after.
    fn drop(&mut self) {
        self.halt();
    }
}

/// ChromeDriver's endpoint relaying a DevTools protocol command to the session's page.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Whether ChromeDriver on `port` answers GET /status with `"ready": true`. It keeps the
/// connection open whatever the request says, so the body is read to its Content-Length.
fn status_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let (mut reply, mut chunk) = (Vec::new(), [0; 4096]);
    loop {
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            });
            if length.is_some_and(|length: usize| body.len() >= length) {
                let body: Value = serde_json::from_str(body.trim()).unwrap_or_default();
                return head.starts_with("HTTP/1.1 200") && body["value"]["ready"] == json!(true);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The pids of the processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return vec![];
    };
    let pids = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    let pids = pids.filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()));
    let mentions = |pid: &String| {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(needle)
    };
    pids.filter(mentions).collect()
}

/// Standard base64, for the screenshot ChromeDriver sends.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| e.to_string())
}
