//! Delivery throughput to a local SMTP sink, beside the sink's own reference in the same run.
//!
//! `cargo bench --bench smtp_delivery` (set `REKINDLE_BENCH_NOTES` for another note count, 20,000
//! by default, and `REKINDLE_BENCH_ROUNDS` for another number of rounds, 3 by default). For pool
//! sizes 1, 4 and 8 it queues the notes with the real `rekindle` binary, delivers them with
//! `rekindle run --once` (rate limit off, `concurrency` twice the pool size) to Postfix's
//! `smtp-sink` on 127.0.0.1, and times Postfix's own load generator `smtp-source` pushing as many
//! messages of the same size over the same number of connections into the same sink; the two
//! take turns, and the best round of each is reported. Installs Postfix (for the two tools) when
//! they are missing.
//!
//! The same notes also go over TLS, in the same rounds: smtp-sink speaks no TLS, so a TLS front
//! (in this process, rustls) takes STARTTLS or implicit TLS with a certificate from a CA made for
//! the run (rekindle trusts it through `ca_file`) and relays the session to the sink; the same
//! front without TLS shows what the extra hop alone costs. rekindle's CPU time (user + system,
//! from the kernel's accounting of the finished child) is reported beside its wall time.

mod support;
#[path = "support/tls_front.rs"]
mod tls_front;

use tls_front::{Front, Mode};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

const SINK: &str = "/usr/sbin/smtp-sink";
const SOURCE: &str = "/usr/sbin/smtp-source";

fn main() {
    if let Err(why) = run() {
        eprintln!("smtp_delivery: {why}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    ensure_postfix_tools()?;
    let notes: usize = std::env::var("REKINDLE_BENCH_NOTES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    write_log(dir.path(), notes)?;
    copy_templates(dir.path())?;
    let rounds: usize = std::env::var("REKINDLE_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    let (ca, tls) = tls_front::certificates()?;
    std::fs::write(dir.path().join("ca.pem"), ca).map_err(|e| format!("ca.pem: {e}"))?;
    println!("machine: {}", support::machine());
    println!("notes per run: {notes}, best of {rounds} rounds each");
    println!("notes/s (rekindle's CPU seconds per 10,000 notes)\n");
    println!(
        "{:>4}  {:>17}  {:>17}  {:>17}  {:>17}  {:>11}  {:>6}",
        "pool", "plaintext", "via the front", "STARTTLS", "implicit TLS", "smtp-source", "ratio"
    );
    let mut size = 0;
    for pool in [1, 4, 8] {
        let queued = dir.path().join(format!("queued-{pool}.sqlite"));
        queue(dir.path(), &queued, notes)?;
        checkpoint(&queued)?;
        // Both sides take turns, each round with a fresh copy of the queued notes; the best
        // round of each is kept, so a noisy neighbour on a shared machine skews neither.
        let mut best = [Best::default(); 4];
        let mut reference = 0f64;
        for round in 0..rounds {
            let port = free_port()?;
            let mut sink = start_sink(port)?;
            for (i, way) in [
                None,
                Some(Mode::Plain),
                Some(Mode::StartTls),
                Some(Mode::Implicit),
            ]
            .into_iter()
            .enumerate()
            {
                let state = dir.path().join(format!("state-{pool}-{round}-{i}.sqlite"));
                std::fs::copy(&queued, &state).map_err(|e| format!("copying the state: {e}"))?;
                let front = way
                    .map(|mode| Front::start(port, mode, tls.clone()))
                    .transpose()?;
                let to = front.as_ref().map_or(port, Front::port);
                let run = deliver(dir.path(), &state, to, pool, way)?;
                if run.sent != notes {
                    return Err(format!(
                        "pool {pool}, {way:?}: {} of {notes} notes sent",
                        run.sent
                    ));
                }
                if size == 0 {
                    size = message_size(&state)?;
                }
                best[i].keep(notes, &run);
                let _ = std::fs::remove_file(&state);
            }
            let theirs = smtp_source(port, pool, notes, size)?;
            let _ = sink.kill();
            let _ = sink.wait();
            reference = reference.max(theirs);
        }
        println!(
            "{pool:>4}  {}  {}  {}  {}  {reference:>11.0}  {:>5.0}%",
            best[0].show(),
            best[1].show(),
            best[2].show(),
            best[3].show(),
            100.0 * best[0].rate / reference
        );
    }
    println!(
        "\nmessage size: {size} bytes (smtp-source sends the same size); ratio: plaintext / smtp-source"
    );
    Ok(())
}

/// One delivery run, as `run --once` reports it, with its CPU time.
struct Run {
    sent: usize,
    secs: f64,
    cpu: f64,
}

/// The best round of one way of delivering: notes per second, and its CPU per 10,000 notes.
#[derive(Debug, Default, Clone, Copy)]
struct Best {
    rate: f64,
    cpu_per_10k: f64,
}

impl Best {
    fn keep(&mut self, notes: usize, run: &Run) {
        let rate = notes as f64 / run.secs;
        if rate > self.rate {
            self.rate = rate;
            self.cpu_per_10k = run.cpu * 10_000.0 / notes as f64;
        }
    }

    fn show(&self) -> String {
        format!(
            "{:>17}",
            format!("{:.0} ({:.2} s)", self.rate, self.cpu_per_10k)
        )
    }
}

/// CPU seconds (user + system) of this process's finished, waited-for children so far.
fn children_cpu() -> Result<f64> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // After the command name in parentheses, cutime and cstime are the 14th and 15th fields
    // (fields 16 and 17 in proc(5)).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (tick(13), tick(14)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / support::clock_ticks()),
        _ => Err("cannot read /proc/self/stat".into()),
    }
}

/// smtp-sink and smtp-source come with Postfix.
fn ensure_postfix_tools() -> Result<()> {
    if Path::new(SINK).exists() && Path::new(SOURCE).exists() {
        return Ok(());
    }
    eprintln!("installing postfix for smtp-sink and smtp-source…");
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let status = Command::new(sudo.first().copied().unwrap_or("apt-get"))
        .args(sudo.iter().skip(1))
        .args(if sudo.is_empty() {
            vec!["install", "-y", "-q", "postfix"]
        } else {
            vec!["apt-get", "install", "-y", "-q", "postfix"]
        })
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() && Path::new(SINK).exists() {
        Ok(())
    } else {
        Err("cannot install postfix (needed for smtp-sink and smtp-source); install it and run again".into())
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A log with one recent complaint per customer: every customer is due an apology.
fn write_log(dir: &Path, notes: usize) -> Result<()> {
    let log = rusqlite::Connection::open(dir.join("log.sqlite")).map_err(|e| e.to_string())?;
    let schema = include_str!("../src/log/schema.sql");
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    log.execute_batch(schema).map_err(|e| e.to_string())?;
    log.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {notes})
         INSERT INTO customers (id, email, name, timezone, created_at, status, opted_out, attributes)
         SELECT i, 'c' || i || '@example.com', 'Customer ' || i, NULL, '2024-05-14T10:00:00Z', 'active', 0, NULL FROM n;
         INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
         SELECT id, '{yesterday}', 'complaint', -0.8, 'email', 'The bread was stale.' FROM customers;
         COMMIT;"
    ))
    .map_err(|e| format!("writing the log: {e}"))
}

fn copy_templates(dir: &Path) -> Result<()> {
    let to = dir.join("templates");
    std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for entry in std::fs::read_dir(&from).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `way`: None straight to the sink, else through a front speaking that mode.
fn config(
    dir: &Path,
    state: &Path,
    port: u16,
    pool: usize,
    max_attempts: u32,
    way: Option<Mode>,
) -> Result<PathBuf> {
    let path = dir.join("rekindle.toml");
    let tls = match way {
        None | Some(Mode::Plain) => "tls = \"none\"".to_string(),
        Some(mode) => format!(
            "tls = \"{}\"\nca_file = \"ca.pem\"\ntls_server_name = \"{}\"",
            if mode == Mode::Implicit {
                "implicit"
            } else {
                "starttls"
            },
            tls_front::NAME
        ),
    };
    let text = format!(
        r#"[paths]
log = "log.sqlite"
state = "{state}"
templates = "templates"

[sender]
name = "Rosemary"
email = "rosemary@bakery.example"
business = "Rosemary's Bakery"
unsubscribe_mailto = "unsubscribe@bakery.example"

[transport]
kind = "smtp"
[transport.smtp]
host = "127.0.0.1"
port = {port}
{tls}
pool_size = {pool}

[delivery]
concurrency = {concurrency}
rate = 0
max_attempts = {max_attempts}

[policy]
cap = 5

[[rule]]
name = "sorry"
kind = "unhappy"
schedule = "*/5 * * * *"
template = "unhappy.j2"
"#,
        state = state.display(),
        // Twice the connections, as the shipped config advises: each connection then has the
        // next note at hand to pipeline behind the one it hands over.
        concurrency = 2 * pool
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

fn rekindle(config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_rekindle"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .map_err(|e| format!("cannot run rekindle: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "rekindle {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// Queues every note without delivering it: one run against a closed port with one attempt
/// fails them all, and `outbox resend` queues them again.
fn queue(dir: &Path, state: &Path, notes: usize) -> Result<()> {
    let closed = free_port()?;
    let cfg = config(dir, state, closed, 1, 1, None)?;
    rekindle(&cfg, &["run", "--once"])?;
    let out = rekindle(&cfg, &["outbox", "resend", "--all", "--state", "failed"])?;
    let queued = out.lines().filter(|l| l.contains("queued again")).count();
    if queued != notes {
        return Err(format!("{queued} of {notes} notes queued: {out}"));
    }
    Ok(())
}

/// Delivers the queued notes to `port` over `way` (see [`config`]).
fn deliver(dir: &Path, state: &Path, port: u16, pool: usize, way: Option<Mode>) -> Result<Run> {
    let cfg = config(dir, state, port, pool, 10, way)?;
    let cpu = children_cpu()?;
    let out = rekindle(&cfg, &["run", "--once"])?;
    let cpu = children_cpu()? - cpu;
    let line = out
        .lines()
        .find(|l| l.starts_with("delivery: sent "))
        .ok_or_else(|| format!("no delivery line in {out}"))?;
    let sent = line
        .trim_start_matches("delivery: sent ")
        .split(',')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("cannot read {line:?}"))?;
    let secs = line
        .rsplit(" in ")
        .next()
        .and_then(|s| s.trim_end_matches(" s").parse().ok())
        .ok_or_else(|| format!("cannot read {line:?}"))?;
    Ok(Run { sent, secs, cpu })
}

/// Folds the state database's WAL into the file, so a copy of the file is the whole database.
fn checkpoint(state: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open(state).map_err(|e| e.to_string())?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("checkpointing {}: {e}", state.display()))
}

/// The size of one delivered message, as rekindle sends it.
fn message_size(state: &Path) -> Result<usize> {
    let conn = rusqlite::Connection::open(state).map_err(|e| e.to_string())?;
    conn.query_row(
        "SELECT length(body_text) + coalesce(length(body_html), 0) + 900 FROM note_bodies LIMIT 1",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
    .map_err(|e| e.to_string())
}

fn start_sink(port: u16) -> Result<Child> {
    let mut cmd = Command::new(SINK);
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("256")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start smtp-sink: {e}"))?;
    // Wait until it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("smtp-sink did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// Postfix's load generator over `sessions` reused connections: messages per second.
fn smtp_source(port: u16, sessions: usize, messages: usize, size: usize) -> Result<f64> {
    let start = Instant::now();
    let status = Command::new(SOURCE)
        .args([
            "-d",
            "-s",
            &sessions.to_string(),
            "-m",
            &messages.to_string(),
        ])
        .args(["-l", &size.to_string()])
        .args([
            "-f",
            "rosemary@bakery.example",
            "-t",
            "customer@example.com",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run smtp-source: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("smtp-source failed: {status}"));
    }
    Ok(messages as f64 / secs)
}
