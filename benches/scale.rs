//! rekindle on a large interaction log, beside bare SQLite making the rules' selections on the
//! same file in the same run.
//!
//! `cargo bench --bench scale`
//!
//! `REKINDLE_SCALE` names the sizes, comma-separated: `100k` (the default: 100,000 customers,
//! about 2,000,000 interactions), `1m` (1,000,000 and 20,000,000) or `tiny` (2,000 and 40,000,
//! to try the bench itself). `REKINDLE_SCALE_DIR=DIR` keeps each generated log in `DIR/SIZE`
//! between runs: it is generated again only when it is missing or was made for another size
//! (the marker `scale-size.txt` says which); without it everything lives in a temporary
//! directory.
//!
//! For each size, with the real binary, each step on a fresh state database and maildir:
//! - generation: `rekindle demo --generate-only` writes the log, the templates and the config
//!   (the shipped rules, a maildir transport);
//! - full evaluation: `rekindle run --once` (every rule, and delivery to the maildir);
//! - steady state: right after it, 10,000 new interactions, then `run --once` again;
//! - `rekindle plan`, while another connection inserts an interaction every 20 ms (the business
//!   at work), alone for 10 s first: each commit's time, and the part of it blocked by a lock;
//! - the daemon, `rekindle run` with the apology rule on `trigger = "interaction"`: its CPU use
//!   over 10 idle seconds, and for 50 complaints the time from the commit to the log to the
//!   apology's row in the state database.
//!
//! - the same, `plan` and `run --once`, for a rule set without daily limits (every matched
//!   customer gets a note; [`UNLIMITED_RULES`]), beside bare SQLite running its selections, with
//!   the CPU both used;
//!
//! Each child's wall time and peak RSS (VmHWM, sampled every 10 ms). Beside them, bare SQLite
//! running rekindle's own SQL for a whole evaluation (`rekindle::statements`: each enabled rule's
//! selection, the seasonal one while a season is open, and the two queries for everyone's
//! standing), each counted, first and warm, on a read-only connection: what the evaluation costs
//! SQLite alone.
//! Rows the bench adds to the log are deleted again afterwards.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params};

type Result<T> = std::result::Result<T, String>;

const BIN: &str = env!("CARGO_BIN_EXE_rekindle");
const SEED: u64 = 7;
const LOG: &str = "interactions.sqlite";
const CONFIG: &str = "rekindle.toml";
/// Which size the log beside it was generated for, and how that went.
const MARKER: &str = "scale-size.txt";
/// (name, customers, interactions).
const SIZES: [(&str, u64, u64); 3] = [
    ("tiny", 2_000, 40_000),
    ("100k", 100_000, 2_000_000),
    ("1m", 1_000_000, 20_000_000),
];
/// Interactions added for the steady-state run.
const STEADY_ROWS: usize = 10_000;
/// Complaints whose latency is measured.
const EVENTS: usize = 50;
const DAY: i64 = 86_400;

fn main() {
    if let Err(why) = run() {
        eprintln!("scale: {why}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let wanted = std::env::var("REKINDLE_SCALE").unwrap_or_else(|_| "100k".into());
    let sizes = wanted
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            SIZES
                .iter()
                .find(|z| z.0 == s)
                .ok_or_else(|| format!("REKINDLE_SCALE: unknown size {s:?}; use 100k, 1m or tiny"))
        })
        .collect::<Result<Vec<_>>>()?;
    let (dir, _temp) = match std::env::var_os("REKINDLE_SCALE_DIR") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let temp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    std::fs::create_dir_all(&dir).map_err(on(&dir))?;
    println!("machine: {}", support::machine());
    for size in sizes {
        // One directory per size, so a kept log of each survives a run over both.
        let dir = dir.join(size.0);
        std::fs::create_dir_all(&dir).map_err(on(&dir))?;
        bench(&dir, size)?;
    }
    Ok(())
}

/// An error about `path`, for `map_err`.
fn on<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(on(path))
}

fn bench(dir: &Path, size: &(&str, u64, u64)) -> Result<()> {
    println!("\n== {} ==", size.0);
    println!("{}", ensure_log(dir, size)?);
    let (log, config) = (dir.join(LOG), dir.join(CONFIG));
    let (bare, bare_cpu) = baselines(&log, &bare_queries(&config)?)?;
    let floor: f64 = bare.iter().map(|b| b.3).sum();
    let first_pass: f64 = bare.iter().map(|b| b.2).sum();
    fresh_state(dir)?;
    let once = |out: &str| timed(rekindle(&config, &["run", "--once"]), &dir.join(out));
    let full = once("scale-run.out")?;
    let delivery = delivery_secs(&read(&dir.join("scale-run.out"))?)?;
    let steady = with_added_rows(dir, |log| {
        add_steady_rows(log)?;
        once("scale-steady.out")
    })?;
    fresh_state(dir)?;
    let (plan, writer) = with_added_rows(dir, |_| {
        with_writer(&log, || {
            timed(rekindle(&config, &["plan"]), &dir.join("scale-plan.out"))
        })
    })?;
    let daemon = with_added_rows(dir, |log| daemon(dir, &config, log))?;
    let unlimited = unlimited(dir, &log, &config)?;

    // rekindle reads the next rules' selections on other threads while one rule takes its
    // turn: its CPU time (all threads) is shown beside the wall-clock time.
    println!(
        "\n{:<40} {:>11} {:>14} {:>7} {:>13} {:>10}",
        "measurement", "rekindle s", "bare SQLite s", "ratio", "peak RSS MiB", "CPU s"
    );
    let row = |what: &str, ours: Option<f64>, floor: Option<f64>, mib: f64, cpu: Option<f64>| {
        let secs = |s: Option<f64>| s.map_or("-".into(), |s| format!("{s:.3}"));
        let ratio = match (ours, floor) {
            (Some(o), Some(f)) if f > 0.0 => format!("{:.1}x", o / f),
            _ => "-".into(),
        };
        let (ours, floor, cpu) = (secs(ours), secs(floor), secs(cpu));
        println!("{what:<40} {ours:>11} {floor:>14} {ratio:>7} {mib:>13.0} {cpu:>10}");
    };
    let steady_label = format!("steady state (+{STEADY_ROWS} rows, run --once)");
    row(
        "run --once (evaluation and delivery)",
        Some(full.0),
        None,
        full.1,
        Some(full.2),
    );
    let evaluation = full.0 - delivery;
    row(
        "  its evaluation (less delivery)",
        Some(evaluation),
        Some(floor),
        full.1,
        None,
    );
    row("plan", Some(plan.0), Some(floor), plan.1, Some(plan.2));
    row(
        &steady_label,
        Some(steady.0),
        None,
        steady.1,
        Some(steady.2),
    );
    row(
        "daemon (run), its whole life",
        None,
        None,
        daemon.peak_mib,
        None,
    );
    println!(
        "  the demo's rules: bare selections {floor:.3} s wall (warm), {bare_cpu:.3} s CPU: plan CPU / bare CPU {:.1}x",
        plan.2 / bare_cpu.max(1e-6)
    );
    unlimited.print(&row);

    println!(
        "\na writer inserting an interaction every {} ms (log journal mode: {}):\n  alone, {} s before `plan`: {}\n  during `plan`: {}",
        WRITER_EVERY.as_millis(),
        writer.journal_mode,
        WRITER_ALONE.as_secs(),
        writer.alone.summary(),
        writer.beside.summary()
    );

    println!(
        "\nbare SQLite, read-only connection (rows counted; seconds: each query's first run, then warm, run again at once):"
    );
    for (name, rows, first, warm) in &bare {
        println!("  {name:<24} {rows:>10} {first:>9.3} {warm:>9.3}");
    }
    println!(
        "  {:<24} {:>10} {first_pass:>9.3} {floor:>9.3}   evaluation / first runs {:.2}x, plan / first runs {:.2}x",
        "sum",
        "",
        evaluation / first_pass,
        plan.0 / first_pass
    );
    for (what, out) in [
        ("full evaluation", "scale-run.out"),
        ("steady state", "scale-steady.out"),
    ] {
        println!("\nrun --once, {what}, said:");
        for line in read(&dir.join(out))?.lines() {
            println!("  {line}");
        }
        // Its log: how long reading the log and each rule took.
        let log = read(&dir.join(out).with_extension("err"))?;
        for line in log.lines().filter(|l| l.contains("elapsed_ms")) {
            let said = line.split_once("  INFO ").map_or(line, |(_, said)| said);
            println!("  | {said}");
        }
    }
    daemon.print();
    Ok(())
}

/// Generates the log with the real binary unless `dir` holds one for this size already; says
/// how it went, and how large the log is.
fn ensure_log(dir: &Path, (name, customers, interactions): &(&str, u64, u64)) -> Result<String> {
    let key = format!("size={name} customers={customers} interactions={interactions} seed={SEED}");
    let marker = dir.join(MARKER);
    let kept = std::fs::read_to_string(&marker).ok().and_then(|text| {
        let (first, said) = text.split_once('\n')?;
        let there = dir.join(LOG).exists() && dir.join(CONFIG).exists();
        (first == key && there).then(|| format!("{said} (kept from an earlier run)"))
    });
    let said = match kept {
        Some(said) => said,
        None => {
            remove_if_there(&marker)?;
            let mut demo = Command::new(BIN);
            demo.args(["demo", "--dir"])
                .arg(dir)
                .args(["--customers", &customers.to_string()])
                .args(["--interactions", &interactions.to_string()])
                .args(["--seed", &SEED.to_string(), "--generate-only"])
                .env("RUST_LOG", "error");
            let (secs, mib, _) = timed(demo, &dir.join("scale-generate.out"))?;
            let out = read(&dir.join("scale-generate.out"))?;
            let line = out
                .lines()
                .find(|l| l.starts_with("demo log:"))
                .ok_or_else(|| format!("no `demo log:` line in the demo's output: {out}"))?;
            let at = Timestamp::now().strftime("%Y-%m-%d %H:%M UTC");
            let said = format!("{line}\ngenerated in {secs:.1} s, peak RSS {mib:.0} MiB, at {at}");
            std::fs::write(&marker, format!("{key}\n{said}")).map_err(on(&marker))?;
            said
        }
    };
    // Rows added and deleted again by earlier runs leave free pages: count what is in use.
    let log = read_only(&dir.join(LOG))?;
    let (pages, free, page): (i64, i64, i64) = log
        .query_row(
            "SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(on(&dir.join(LOG)))?;
    let mb = |pages: i64| (pages * page) as f64 / 1e6;
    Ok(format!(
        "{said}\nlog: {:.0} MB ({:.0} MB file)",
        mb(pages - free),
        mb(pages)
    ))
}

fn rekindle(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args);
    // Each rule's summary and the whole-log reading, not a line per note.
    cmd.env(
        "RUST_LOG",
        "error,rekindle::commands=info,rekindle::log=info",
    );
    cmd
}

fn read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(on(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(on(path))?;
    Ok(conn)
}

/// Deletes the state database and the maildir: the next command starts as on a new install.
fn fresh_state(dir: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        remove_if_there(&dir.join(format!("state.sqlite{suffix}")))?;
    }
    match std::fs::remove_dir_all(dir.join("maildir")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(on(&dir.join("maildir"))(e)),
        _ => Ok(()),
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(on(path)(e)),
        _ => Ok(()),
    }
}

/// Runs `cmd` to the end with its stdout in `out` (stderr in `out` with `.err`): wall seconds,
/// peak RSS in MiB and CPU seconds (user and system, all its threads).
fn timed(mut cmd: Command, out: &Path) -> Result<(f64, f64, f64)> {
    let err = out.with_extension("err");
    let start = Instant::now();
    let mut child = cmd
        .stdout(File::create(out).map_err(on(out))?)
        .stderr(File::create(&err).map_err(on(&err))?)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let rss = RssWatch::start(child.id());
    let status = child.wait().map_err(|e| format!("{cmd:?}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let (mib, cpu) = rss.stop()?;
    if !status.success() {
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        return Err(format!("{cmd:?} failed ({status}): {stderr}"));
    }
    Ok((secs, mib, cpu))
}

/// Samples a child's peak resident set (VmHWM) and its CPU time every 10 ms: the last values
/// read before it exits.
struct RssWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, u64)>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut kib, mut ticks) = (0, 0);
            while !stopped.load(Ordering::Relaxed) {
                // Gone, or a zombie without memory, once it has exited: keep the last value.
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                let hwm = status.ok().and_then(|s| {
                    let line = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
                    line.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
                kib = kib.max(hwm.unwrap_or(0));
                ticks = ticks.max(cpu_ticks(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            (kib, ticks)
        });
        RssWatch { stop, thread }
    }

    /// Peak RSS in MiB, and CPU seconds.
    fn stop(self) -> Result<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        let (kib, ticks) = self.thread.join().map_err(|_| "the RSS sampler panicked")?;
        Ok((kib as f64 / 1024.0, ticks as f64 / support::clock_ticks()))
    }
}

/// The rule set of a business that sets no daily limits (every matched customer gets a note),
/// unlike the demo's: an apology for a complaint or a sentiment below -0.5 within 14 days, ten
/// to one over 90 days, and a we-miss-you after 60 quiet days.
const UNLIMITED_RULES: &str = include_str!("no-daily-limits.toml");

/// Prints one row of the table: what, rekindle's seconds, bare SQLite's, peak MiB, CPU seconds.
type Row<'a> = dyn Fn(&str, Option<f64>, Option<f64>, f64, Option<f64>) + 'a;

/// What the no-daily-limit rule set measured, with its own bare baseline (wall and CPU of this
/// process running the same selections).
struct Unlimited {
    plan: (f64, f64, f64),
    run: (f64, f64, f64),
    delivery: f64,
    bare_wall: f64,
    bare_cpu: f64,
    planned: String,
}

impl Unlimited {
    fn print(&self, row: &Row<'_>) {
        let evaluation = self.run.0 - self.delivery;
        row(
            "no daily limits: run --once evaluation",
            Some(evaluation),
            Some(self.bare_wall),
            self.run.1,
            None,
        );
        row(
            "no daily limits: plan",
            Some(self.plan.0),
            Some(self.bare_wall),
            self.plan.1,
            Some(self.plan.2),
        );
        println!(
            "  no daily limits: {}; bare selections {:.3} s wall, {:.3} s CPU: plan CPU / bare CPU {:.1}x",
            self.planned,
            self.bare_wall,
            self.bare_cpu,
            self.plan.2 / self.bare_cpu.max(1e-6)
        );
    }
}

/// The demo's config with [`UNLIMITED_RULES`] instead of its own touch points and rules.
fn unlimited_config(dir: &Path, config: &Path) -> Result<PathBuf> {
    let path = dir.join("rekindle-no-limits.toml");
    let text = rekindle::with_rules(&read(config)?, UNLIMITED_RULES);
    std::fs::write(&path, text).map_err(on(&path))?;
    Ok(path)
}

/// The no-daily-limit rule set: its bare selections (timed in this process, wall and CPU), then
/// `plan` and `run --once`, each on a fresh state.
fn unlimited(dir: &Path, log: &Path, config: &Path) -> Result<Unlimited> {
    let config = unlimited_config(dir, config)?;
    let queries = bare_queries(&config)?;
    let (bare, bare_cpu) = baselines(log, &queries)?;
    let bare_wall = bare.iter().map(|b| b.2 + b.3).sum::<f64>() / 2.0;
    fresh_state(dir)?;
    let plan = timed(
        rekindle(&config, &["plan"]),
        &dir.join("scale-plan-no-limits.out"),
    )?;
    let said = read(&dir.join("scale-plan-no-limits.out"))?;
    let planned = said
        .lines()
        .filter(|l| l.contains("matched"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    fresh_state(dir)?;
    let out = dir.join("scale-run-no-limits.out");
    let run = timed(rekindle(&config, &["run", "--once"]), &out)?;
    let delivery = delivery_secs(&read(&out)?)?;
    Ok(Unlimited {
        plan,
        run,
        delivery,
        // Both runs of each query count, as rekindle reads each selection once: their mean.
        bare_wall,
        bare_cpu,
        planned,
    })
}

/// The SQL rekindle's own evaluation runs on the log, as it runs it (`rekindle::statements`):
/// each enabled rule's selection and the two queries for everyone's standing, each counted.
fn bare_queries(config: &Path) -> Result<Vec<(String, String, Vec<Value>)>> {
    let statements = rekindle::statements(config, Timestamp::now()).map_err(on(config))?;
    Ok(statements
        .into_iter()
        .map(|(name, sql, params)| (name, format!("SELECT count(*) FROM ({sql})"), params))
        .collect())
}

/// The time `secs` ago, formatted like the log's `at` column (`2026-01-02T10:00:00Z`).
fn ago(secs: i64) -> String {
    let t = Timestamp::from_second(Timestamp::now().as_second() - secs);
    t.unwrap_or(Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// One bare query: its name, the rows it counted, its first run's and its warm run's seconds.
type Timing = (String, i64, f64, f64);

/// Runs each query twice, timing both: (name, rows counted, first run, second (warm) run,
/// seconds) for each, and the CPU seconds this process used for one run of them all (the mean of
/// the two: rekindle reads each selection once).
fn baselines(log: &Path, queries: &[(String, String, Vec<Value>)]) -> Result<(Vec<Timing>, f64)> {
    let conn = read_only(log)?;
    let ticks = cpu_ticks(std::process::id())?;
    let mut timings = Vec::new();
    for (name, sql, params) in queries {
        let count = || {
            let params = rusqlite::params_from_iter(params);
            let rows = conn.query_row(sql, params, |r| r.get::<_, i64>(0));
            rows.map_err(|e| format!("bare {name} query: {e}"))
        };
        let start = Instant::now();
        count()?;
        let first = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let rows = count()?;
        timings.push((name.clone(), rows, first, start.elapsed().as_secs_f64()));
    }
    let cpu = (cpu_ticks(std::process::id())? - ticks) as f64 / support::clock_ticks();
    Ok((timings, cpu / 2.0))
}

/// The delivery time `run --once` printed ("delivery: … in 1.234 s").
fn delivery_secs(said: &str) -> Result<f64> {
    said.lines()
        .filter_map(|l| l.strip_prefix("delivery: "))
        .filter_map(|l| l.rsplit_once(" in ")?.1.strip_suffix(" s")?.parse().ok())
        .next()
        .ok_or_else(|| format!("no delivery time in the output of run --once: {said}"))
}

/// Lends `f` a writable connection to the log, then deletes every interaction it added (ids
/// above the largest before). The marker is gone meanwhile, so should the bench die in between,
/// the next run generates the log again rather than reuse an altered one.
fn with_added_rows<T>(dir: &Path, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let (marker, path) = (dir.join(MARKER), dir.join(LOG));
    let said = read(&marker)?;
    remove_if_there(&marker)?;
    let log = Connection::open(&path).map_err(on(&path))?;
    log.busy_timeout(Duration::from_secs(30))
        .map_err(on(&path))?;
    let last = "SELECT coalesce(max(id), 0) FROM interactions";
    let before: i64 = log.query_row(last, [], |r| r.get(0)).map_err(on(&path))?;
    let result = f(&log);
    let delete = "DELETE FROM interactions WHERE id > ?1";
    log.execute(delete, [before]).map_err(on(&path))?;
    std::fs::write(&marker, said).map_err(on(&marker))?;
    result
}

/// How often the writer of [`with_writer`] inserts a row.
const WRITER_EVERY: Duration = Duration::from_millis(20);
/// How long the writer of [`with_writer`] works alone first: what its commits cost on this disk
/// without rekindle.
const WRITER_ALONE: Duration = Duration::from_secs(10);

/// What the business's writer saw, alone and while rekindle read the log.
struct Writer {
    /// Commits before rekindle started.
    alone: Commits,
    /// Commits while rekindle ran.
    beside: Commits,
    /// The log's journal mode (a rollback journal makes a writer wait for readers).
    journal_mode: String,
}

/// Each commit's time, milliseconds, and the part of it spent waiting for another connection's
/// lock (`SQLITE_BUSY`); the rest is the writer's own work, its disk syncs included.
#[derive(Default)]
struct Commits {
    total: Vec<f64>,
    blocked: Vec<f64>,
}

impl Commits {
    /// The longest, the p99 and the longest time blocked, as the bench prints them.
    fn summary(&self) -> String {
        format!(
            "{} commits, longest {:.1} ms, p99 {:.1} ms, longest blocked by a lock {:.1} ms",
            self.total.len(),
            percentile(&self.total, 1.0),
            percentile(&self.total, 0.99),
            percentile(&self.blocked, 1.0)
        )
    }
}

/// The `p` quantile of `values` (1.0: the largest; 0 for none).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len().max(1)) - 1;
    values.get(at).copied().unwrap_or(0.0)
}

/// Runs `f` while another connection inserts a purchase every [`WRITER_EVERY`] into the log at
/// `path`, as the business's own software would, timing each commit; the writer works alone for
/// [`WRITER_ALONE`] first. It never gives up on a lock but retries every millisecond, so the
/// time it was blocked by one is measured apart from the rest. The rows stay: run it inside
/// [`with_added_rows`].
fn with_writer<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<(T, Writer)> {
    let writer = Connection::open(path).map_err(on(path))?;
    writer.busy_timeout(Duration::ZERO).map_err(on(path))?;
    let journal_mode: String = writer
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(on(path))?;
    let (beside, done) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|scope| {
        let (beside, stop) = (&beside, &done);
        let timing = scope.spawn(move || {
            let (mut alone, mut with) = (Commits::default(), Commits::default());
            let mut rng = fastrand::Rng::with_seed(SEED);
            while !stop.load(Ordering::Relaxed) {
                let commits = if beside.load(Ordering::Relaxed) {
                    &mut with
                } else {
                    &mut alone
                };
                let (start, mut busy_since) = (Instant::now(), None);
                loop {
                    let inserted = writer.execute(
                        "INSERT INTO interactions (customer_id, at, kind, sentiment, channel)
                         VALUES (?1, ?2, 'purchase', 0.5, 'shop')",
                        params![rng.i64(1..1000), ago(0)],
                    );
                    match inserted {
                        Ok(_) => break,
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.code == rusqlite::ErrorCode::DatabaseBusy
                                && start.elapsed() < Duration::from_secs(120) =>
                        {
                            busy_since.get_or_insert_with(Instant::now);
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => return Err(format!("the writer failed: {e}")),
                    }
                }
                let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
                commits.total.push(ms(start));
                commits.blocked.push(busy_since.map_or(0.0, ms));
                std::thread::sleep(WRITER_EVERY);
            }
            Ok::<_, String>((alone, with))
        });
        std::thread::sleep(WRITER_ALONE);
        beside.store(true, Ordering::Relaxed);
        let result = f();
        done.store(true, Ordering::Relaxed);
        let (alone, beside) = timing
            .join()
            .map_err(|_| "the writer panicked".to_string())??;
        Ok((
            result?,
            Writer {
                alone,
                beside,
                journal_mode: journal_mode.clone(),
            },
        ))
    })
}

/// A day's business: random existing customers, a mix of kinds, about 5% complaints.
fn add_steady_rows(log: &Connection) -> Result<()> {
    let sql = |e: rusqlite::Error| format!("adding interactions: {e}");
    let last = "SELECT max(id) FROM customers";
    let customers: i64 = log.query_row(last, [], |r| r.get(0)).map_err(sql)?;
    let (at, mut rng) = (ago(0), fastrand::Rng::with_seed(SEED));
    let tx = log.unchecked_transaction().map_err(sql)?;
    let mut insert = tx
        .prepare(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
             VALUES (?1, ?2, ?3, ?4, 'web', ?5)",
        )
        .map_err(sql)?;
    for _ in 0..STEADY_ROWS {
        let (kind, sentiment, note) = match rng.u32(..100) {
            0..78 => ("purchase", None, None),
            78..86 => ("review", Some(0.8), Some("Lovely bread, as always.")),
            86..91 => ("invoice", None, None),
            91..96 => (
                "complaint",
                Some(-0.6),
                Some("The buns were cold and late."),
            ),
            96..98 => ("resolution", Some(0.3), Some("Refunded and apologised.")),
            98 => ("cancellation", None, None),
            _ => ("support_ticket", Some(0.0), None),
        };
        let customer = rng.i64(1..=customers);
        let row = params![customer, at, kind, sentiment, note];
        insert.execute(row).map_err(sql)?;
    }
    drop(insert);
    tx.commit().map_err(sql)
}

/// What the daemon showed.
struct Daemon {
    event_poll: String,
    ready_secs: f64,
    idle_cpu: f64,
    idle_lines: usize,
    latencies: Vec<f64>,
    missed: usize,
    scheduled: usize,
    peak_mib: f64,
}

impl Daemon {
    fn print(&self) {
        println!(
            "\ndaemon (event_poll {}): started and first event poll done in {:.2} s",
            self.event_poll, self.ready_secs
        );
        println!(
            "  idle CPU: {:.2}% of one core over 10 s ({} log lines meanwhile)",
            self.idle_cpu, self.idle_lines
        );
        let l = &self.latencies;
        let pct = |p: f64| match l.is_empty() {
            true => "-".to_string(),
            false => format!("{:.0} ms", percentile(l, p) * 1000.0),
        };
        let (p50, p90, p99, max) = (pct(0.5), pct(0.9), pct(0.99), pct(1.0));
        println!(
            "  complaint committed to the log -> apology in the state DB, {} complaints: \
             p50 {p50}, p90 {p90}, p99 {p99}, max {max}",
            l.len()
        );
        if self.missed > 0 {
            println!("  {} complaint(s) got no apology within 30 s", self.missed);
        }
        if self.scheduled > 0 {
            let n = self.scheduled;
            println!("  note: {n} scheduled evaluation(s) ran during the latency measurement");
        }
    }
}

type Lines = Receiver<(Instant, String)>;

/// Starts `rekindle run` on a fresh state and measures it; stops it with SIGTERM in any case.
fn daemon(dir: &Path, config: &Path, log: &Connection) -> Result<Daemon> {
    let (config, event_poll, every) = daemon_config(dir, config)?;
    fresh_state(dir)?;
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start rekindle run: {e}"))?;
    let pid = child.id();
    let rss = RssWatch::start(pid);
    let lines = child.stderr.take().map(|stderr| {
        let (tx, rx) = mpsc::channel();
        // Drains stderr to the end, so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        rx
    });
    let measured = match &lines {
        Some(lines) => measure_daemon(dir, log, pid, lines, every, start),
        None => Err("no stderr from rekindle run".into()),
    };
    let stopped = stop(&mut child, pid);
    let (peak_mib, _) = rss.stop()?;
    let measured = measured?;
    stopped?;
    Ok(Daemon {
        event_poll,
        peak_mib,
        ..measured
    })
}

fn measure_daemon(
    dir: &Path,
    log: &Connection,
    pid: u32,
    lines: &Lines,
    every: Option<i64>,
    start: Instant,
) -> Result<Daemon> {
    let ten_min = Duration::from_secs(600);
    // On a fresh state, the first event poll sets the watermark from the lookback window; it
    // may say so before or after the start-up line.
    let ready = wait_for(lines, ten_min, &["rekindle started", "first start"])?;
    settle(lines, ten_min)?;
    // A rule on a "*/N" minute schedule (the apology rule's, every 5 minutes) evaluates every
    // customer: begin right after one of its runs rather than let one land in the middle.
    if let Some(minutes) = every {
        while minutes * 60 - Timestamp::now().as_second().rem_euclid(minutes * 60) < 150 {
            wait_for(lines, ten_min, &["matched="])?;
            settle(lines, ten_min)?;
        }
    }

    let (cpu, since) = (cpu_ticks(pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let used = (cpu_ticks(pid)? - cpu) as f64 / support::clock_ticks();
    let idle_cpu = 100.0 * used / since.elapsed().as_secs_f64();
    let idle_lines = lines.try_iter().filter(|(at, _)| *at >= since).count();

    let path = dir.join("state.sqlite");
    let state = read_only(&path)?;
    let mut noted = state
        .prepare("SELECT EXISTS (SELECT 1 FROM notes WHERE customer_id = ?1 AND rule LIKE ?2)")
        .map_err(on(&path))?;
    let mut has_note = |customer: &str, rule: &str| {
        let exists = noted.query_row([customer, rule], |r| r.get::<_, bool>(0));
        exists.map_err(on(&path))
    };
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut candidates = without_recent_complaint(log)?;
    rng.shuffle(&mut candidates);
    let phase = Instant::now();
    let (mut latencies, mut missed) = (Vec::new(), 0);
    for customer in candidates {
        if latencies.len() + missed == EVENTS {
            break;
        }
        // Any note this week would take the customer's cap: pick someone without one.
        let key = customer.to_string();
        if has_note(&key, "%")? {
            continue;
        }
        // Commit at a random phase of the daemon's event poll.
        std::thread::sleep(Duration::from_millis(rng.u64(0..1000)));
        log.execute(
            "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
             VALUES (?1, ?2, 'complaint', -0.8, 'email', 'The rye loaf was mouldy inside.')",
            params![customer, ago(0)],
        )
        .map_err(|e| format!("adding a complaint: {e}"))?;
        let committed = Instant::now();
        loop {
            if has_note(&key, "sorry")? {
                latencies.push(committed.elapsed().as_secs_f64());
                break;
            }
            if committed.elapsed() > Duration::from_secs(30) {
                missed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if latencies.len() + missed < EVENTS {
        return Err(format!(
            "fewer than {EVENTS} customers without a complaint or a note"
        ));
    }
    let ticks = lines
        .try_iter()
        .filter(|(at, line)| *at >= phase && line.contains("matched="));
    Ok(Daemon {
        event_poll: String::new(),
        ready_secs: ready.duration_since(start).as_secs_f64(),
        idle_cpu,
        idle_lines,
        latencies,
        missed,
        scheduled: ticks.count(),
        peak_mib: 0.0,
    })
}

/// The generated config with the apology rule ("sorry", kind unhappy) on
/// `trigger = "interaction"`: its path, the event poll in force, and the shortest "*/N" minute
/// schedule among the rules.
fn daemon_config(dir: &Path, config: &Path) -> Result<(PathBuf, String, Option<i64>)> {
    let mut table: toml::Table = toml::from_str(&read(config)?).map_err(on(config))?;
    let no = |what: &str| format!("{}: {what}", config.display());
    let rules = table.get_mut("rule").and_then(|r| r.as_array_mut());
    let rules = rules.ok_or_else(|| no("no [[rule]]"))?;
    let sorry = rules
        .iter_mut()
        .filter_map(|r| r.as_table_mut())
        .find(|r| r.get("name").and_then(|n| n.as_str()) == Some("sorry"))
        .ok_or_else(|| no("no rule named \"sorry\""))?;
    if sorry.get("kind").and_then(|k| k.as_str()) != Some("unhappy") {
        return Err(no("the rule \"sorry\" is not of kind unhappy"));
    }
    sorry.insert("trigger".into(), "interaction".into());
    let every = rules
        .iter()
        .filter_map(|r| r.get("schedule")?.as_str())
        .filter_map(|s| match s.split_whitespace().collect::<Vec<_>>()[..] {
            [minute, "*", "*", "*", "*"] => minute.strip_prefix("*/")?.parse().ok(),
            _ => None,
        })
        .min();
    let event_poll = table.get("daemon").and_then(|d| d.get("event_poll"));
    let event_poll = event_poll
        .and_then(|v| v.as_str())
        .unwrap_or("500ms, the default");
    let event_poll = event_poll.to_string();
    let path = dir.join("scale-daemon.toml");
    let text = toml::to_string(&table).map_err(on(&path))?;
    std::fs::write(&path, text).map_err(on(&path))?;
    Ok((path, event_poll, every))
}

/// Active customers who may be written to, without a complaint in the last 30 days.
/// Up to 20,000 of them, by id. (`+i.kind` keeps SQLite on the per-customer index: by kind it
/// would read every recent complaint for each customer.)
fn without_recent_complaint(log: &Connection) -> Result<Vec<i64>> {
    let sql = |e: rusqlite::Error| format!("picking customers: {e}");
    let mut select = log
        .prepare(
            "SELECT id FROM customers c WHERE status = 'active' AND opted_out = 0
             AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                             AND +i.kind = 'complaint' AND i.at >= ?1)
             ORDER BY id LIMIT 20000",
        )
        .map_err(sql)?;
    let ids = select
        .query_map([ago(30 * DAY)], |r| r.get(0))
        .map_err(sql)?;
    ids.collect::<rusqlite::Result<Vec<i64>>>().map_err(sql)
}

/// Waits until the daemon has logged a line containing each of `texts`: when the last came.
fn wait_for(lines: &Lines, max: Duration, texts: &[&str]) -> Result<Instant> {
    let give_up = Instant::now() + max;
    let mut missing: Vec<&str> = texts.to_vec();
    loop {
        match lines.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok((at, line)) => {
                missing.retain(|text| !line.contains(text));
                if missing.is_empty() {
                    return Ok(at);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("rekindle run: no {missing:?} line in {max:?}"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("rekindle run exited before saying {missing:?}"));
            }
        }
    }
}

/// Waits until the daemon has logged nothing (no note queued or sent) for 3 s.
fn settle(lines: &Lines, max: Duration) -> Result<()> {
    let give_up = Instant::now() + max;
    let mut last = Instant::now();
    loop {
        let (now, quiet_until) = (Instant::now(), last + Duration::from_secs(3));
        if now >= quiet_until {
            return Ok(());
        }
        if now >= give_up {
            return Err(format!("rekindle run still busy after {max:?}"));
        }
        match lines.recv_timeout(quiet_until.min(give_up) - now) {
            Ok((at, _)) => last = at,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("rekindle run exited".into()),
        }
    }
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = read(&path)?;
    // After the command name in parentheses, utime and stime are the 12th and 13th fields
    // (fields 14 and 15 in proc(5)).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(format!("cannot read {}", path.display())),
    }
}

/// SIGTERM, then up to 60 s for a clean exit; killed otherwise.
fn stop(child: &mut Child, pid: u32) -> Result<()> {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("rekindle run exited with {status}")),
            Ok(None) if matches!(&sent, Ok(s) if s.success()) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "rekindle run did not stop on SIGTERM ({sent:?}): killed"
                ));
            }
        }
    }
}
