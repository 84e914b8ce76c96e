//! A realistic, deterministic interaction log for the demo (and, at scale, for benchmarks).
//!
//! The business is Rosemary's Bakery: a neighbourhood bakery and coffee shop that also ships
//! bread boxes. Each customer gets an archetype (regular, occasional, gone quiet, unhappy,
//! resolved, departed, new) and their events are generated in time order through a heap keyed by
//! each customer's next event, so interaction ids increase with time and memory stays at one
//! small record per customer, whatever the number of interactions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, Statement, params};

use super::names::*;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemoSpec {
    /// Number of ordinary customers (a few deliberately broken ones are added).
    pub customers: usize,
    /// The generator's seed: the same seed and `now` give the same log.
    pub seed: u64,
    /// How busy customers are: visits come `activity` times as often as in the bakery's
    /// natural rhythm (about 33 interactions per customer a year at 1.0).
    pub activity: f64,
}

impl DemoSpec {
    /// `customers` at the natural rhythm.
    pub(crate) fn new(customers: usize, seed: u64) -> DemoSpec {
        DemoSpec {
            customers,
            seed,
            activity: 1.0,
        }
    }

    /// `customers` busy enough that the log holds about `interactions` rows in all: the
    /// activity is found by generating two small samples in memory (visits grow in proportion
    /// to activity; invoices, complaints and departures do not).
    pub(crate) fn with_interactions(
        customers: usize,
        seed: u64,
        interactions: usize,
        now: Timestamp,
    ) -> Result<DemoSpec, rusqlite::Error> {
        let sample = customers.clamp(1, 2000);
        let rows = |activity: f64| -> Result<f64, rusqlite::Error> {
            let spec = DemoSpec {
                customers: sample,
                seed,
                activity,
            };
            let conn = Connection::open_in_memory()?;
            Ok(fill(conn, &spec, now)?.interactions as f64)
        };
        let (at_one, at_two) = (rows(1.0)?, rows(2.0)?);
        let per_activity = (at_two - at_one).max(1.0);
        let fixed = at_one - per_activity;
        let wanted = interactions as f64 * sample as f64 / customers.max(1) as f64;
        Ok(DemoSpec {
            customers,
            seed,
            activity: ((wanted - fixed) / per_activity).clamp(0.05, 100.0),
        })
    }
}

/// What was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DemoStats {
    /// Customers written, broken ones included.
    pub customers: usize,
    /// Interactions written.
    pub interactions: usize,
}

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archetype {
    Regular,
    Occasional,
    Quiet,
    Unhappy,
    Resolved,
    Departed,
    New,
}

/// One customer's generation state: when they joined and stop, how often they come.
#[derive(Debug, Clone, Copy)]
struct Profile {
    archetype: Archetype,
    created: i64,
    /// No regular activity after this (quiet and departed customers stop).
    stop: i64,
    /// Mean days between visits.
    gap_days: f64,
    /// Bread-box subscribers get a monthly invoice.
    subscriber: bool,
    /// Writes (and reads) French.
    french: bool,
}

/// A scheduled event: (time, customer index, what).
type Event = Reverse<(i64, u32, Kind)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Visit,
    Invoice,
    Complaint,
    Resolution,
    Cancellation,
}

/// Creates (overwrites) a SQLite file at `path` with the canonical schema and a year of
/// interactions before `now`, deterministically from `spec`.
pub(crate) fn generate_log(
    path: &Path,
    spec: &DemoSpec,
    now: Timestamp,
) -> Result<DemoStats, rusqlite::Error> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    fill(Connection::open(path)?, spec, now)
}

/// Writes the schema and the log into `conn`.
fn fill(
    mut conn: Connection,
    spec: &DemoSpec,
    now: Timestamp,
) -> Result<DemoStats, rusqlite::Error> {
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.execute_batch(crate::log::SCHEMA)?;
    // Indexes are cheaper to build once at the end than to maintain row by row.
    conn.execute_batch(
        "DROP INDEX IF EXISTS interactions_customer_at; DROP INDEX IF EXISTS interactions_kind_at;",
    )?;
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let now = now.as_second();
    let tx = conn.transaction()?;
    let mut heap: BinaryHeap<Event> = BinaryHeap::with_capacity(spec.customers + 16);
    let profiles = insert_customers(&tx, &mut rng, spec, now, &mut heap)?;
    let stats = DemoStats {
        customers: profiles.len(),
        interactions: insert_interactions(&tx, &mut rng, &profiles, now, heap)?,
    };
    tx.commit()?;
    conn.execute_batch(crate::log::SCHEMA)?;
    // WAL, as a log read beside its writers should be: a reader never holds a writer up.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(stats)
}

/// The generated customers and, after them, the deliberately broken ones; each one's first
/// events go into `heap`.
fn insert_customers(
    tx: &rusqlite::Transaction<'_>,
    rng: &mut fastrand::Rng,
    spec: &DemoSpec,
    now: i64,
    heap: &mut BinaryHeap<Event>,
) -> Result<Vec<Profile>, rusqlite::Error> {
    let start = now - 365 * DAY;
    let mut profiles: Vec<Profile> = Vec::with_capacity(spec.customers + 16);
    let mut insert_customer = tx.prepare(
        "INSERT INTO customers (id, email, name, timezone, created_at, status, opted_out, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for i in 0..spec.customers {
        let id = i as i64 + 1;
        let mut profile = profile(rng, now, spec.activity);
        let first = FIRST[rng.usize(..FIRST.len())];
        let last = LAST[rng.usize(..LAST.len())];
        let email = format!("{}.{}.{id}@example.com", ascii(first), ascii(last));
        let status = if profile.archetype == Archetype::Departed {
            "departed"
        } else {
            "active"
        };
        let zone = zone(rng);
        let created = stamp(rng, profile.created);
        // Two in three Parisians read their notes in French (no draw of its own, so the rest
        // of the log stays as it was).
        let french = zone == Some("Europe/Paris") && id % 3 != 0;
        insert_customer.execute(params![
            id,
            email,
            format!("{first} {last}"),
            zone,
            created,
            status,
            0,
            attributes(rng, french),
        ])?;
        profile.french = french;
        schedule(rng, heap, &profile, i as u32, start, now);
        profiles.push(profile);
    }
    // Deliberately broken rows a robust reader must survive. Each customer otherwise qualifies
    // for a note (a recent complaint), so the skip or fallback is exercised.
    for (email, name, zone, opted_out) in BROKEN {
        let i = profiles.len();
        let profile = Profile {
            archetype: Archetype::Unhappy,
            created: now - 400 * DAY,
            stop: now,
            gap_days: 20.0,
            subscriber: false,
            french: false,
        };
        insert_customer.execute(params![
            i as i64 + 1,
            email,
            name,
            zone,
            stamp(rng, profile.created),
            "active",
            opted_out,
            Option::<String>::None,
        ])?;
        schedule(rng, heap, &profile, i as u32, start, now);
        profiles.push(profile);
    }
    Ok(profiles)
}

/// Every customer's interactions, in time order as `heap` yields them, and one row whose
/// timestamp no reader can parse. Returns how many.
fn insert_interactions(
    tx: &rusqlite::Transaction<'_>,
    rng: &mut fastrand::Rng,
    profiles: &[Profile],
    now: i64,
    mut heap: BinaryHeap<Event>,
) -> Result<usize, rusqlite::Error> {
    let mut insert = tx.prepare(
        "INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let hostile_id = profiles.len() as u32 - 1;
    let mut count = 0;
    while let Some(Reverse((at, c, kind))) = heap.pop() {
        let p = profiles[c as usize];
        if kind == Kind::Visit {
            let next = at + gap(rng, p.gap_days);
            if next < p.stop.min(now) {
                heap.push(Reverse((next, c, Kind::Visit)));
            }
        }
        let note_override = (kind == Kind::Complaint && c == hostile_id).then(hostile_note);
        write_event(&mut insert, rng, (c, p.french), at, kind, note_override)?;
        count += 1;
    }
    // A timestamp no reader can parse: every rule must skip it and say so.
    insert.execute(params![
        1,
        "last tuesday",
        "purchase",
        None::<f64>,
        "shop",
        None::<String>
    ])?;
    Ok(count + 1)
}

fn profile(rng: &mut fastrand::Rng, now: i64, activity: f64) -> Profile {
    let roll = rng.u32(..100);
    let archetype = match roll {
        0..50 => Archetype::Regular,
        50..65 => Archetype::Occasional,
        65..80 => Archetype::Quiet,
        80..85 => Archetype::Unhappy,
        85..90 => Archetype::Resolved,
        90..95 => Archetype::Departed,
        _ => Archetype::New,
    };
    let created = match archetype {
        Archetype::New => now - rng.i64(10..90) * DAY,
        _ => now - rng.i64(400..6 * 365) * DAY,
    };
    let stop = match archetype {
        Archetype::Quiet => now - rng.i64(65..200) * DAY,
        Archetype::Departed => now - rng.i64(1..30) * DAY,
        _ => now,
    };
    let gap_days = match archetype {
        Archetype::Occasional => 30.0 + rng.f64() * 20.0,
        Archetype::New => 10.0 + rng.f64() * 10.0,
        _ => 5.0 + rng.f64() * 12.0,
    } / activity;
    Profile {
        archetype,
        created,
        stop,
        gap_days,
        subscriber: rng.u32(..100) < 30,
        french: false,
    }
}

/// Pushes a customer's first visit, invoices and special events onto the heap.
fn schedule(
    rng: &mut fastrand::Rng,
    heap: &mut BinaryHeap<Event>,
    p: &Profile,
    c: u32,
    start: i64,
    now: i64,
) {
    let begin = p.created.max(start);
    // Quiet customers need real history before they went quiet: start them early enough.
    let first = match p.archetype {
        Archetype::Quiet => begin.min(p.stop - 4 * (p.gap_days as i64 + 1) * DAY),
        _ => begin + gap(rng, p.gap_days),
    };
    if first < p.stop.min(now) {
        heap.push(Reverse((first.max(start), c, Kind::Visit)));
    }
    if p.subscriber {
        let mut t = begin + rng.i64(0..30) * DAY + 6 * 3600;
        while t < p.stop.min(now) {
            heap.push(Reverse((t, c, Kind::Invoice)));
            t += 30 * DAY;
        }
    }
    let minute = |rng: &mut fastrand::Rng| rng.i64(8 * 60..19 * 60) * 60;
    match p.archetype {
        Archetype::Unhappy => {
            let day = now / DAY * DAY - rng.i64(1..13) * DAY;
            heap.push(Reverse((
                (day + minute(rng)).min(now - 3600),
                c,
                Kind::Complaint,
            )));
        }
        Archetype::Resolved => {
            // Resolved within the last few weeks: some are due a thank-you for the feedback.
            let at = now / DAY * DAY - rng.i64(5..30) * DAY + minute(rng);
            heap.push(Reverse((at, c, Kind::Complaint)));
            heap.push(Reverse((at + rng.i64(1..4) * DAY, c, Kind::Resolution)));
        }
        Archetype::Departed => heap.push(Reverse((p.stop, c, Kind::Cancellation))),
        _ => {}
    }
}

fn write_event(
    insert: &mut Statement<'_>,
    rng: &mut fastrand::Rng,
    (c, french): (u32, bool),
    at: i64,
    kind: Kind,
    note_override: Option<String>,
) -> rusqlite::Result<()> {
    // The customer's own words in their language (the same draw either way).
    let pick = |rng: &mut fastrand::Rng, (en, fr): (&[&str], &[&str])| {
        let i = rng.usize(..en.len());
        if french { fr[i] } else { en[i] }.to_string()
    };
    let (kind, sentiment, channel, note): (&str, Option<f64>, &str, Option<String>) = match kind {
        Kind::Invoice => ("invoice", None, "email", None),
        Kind::Complaint => (
            "complaint",
            Some(-0.6 - rng.f64() * 0.35),
            ["email", "phone", "shop", "web"][rng.usize(..4)],
            Some(note_override.unwrap_or_else(|| pick(rng, (&COMPLAINTS, &COMPLAINTS_FR)))),
        ),
        Kind::Resolution => (
            "resolution",
            Some(0.3),
            "phone",
            Some(pick(rng, (&RESOLUTIONS, &RESOLUTIONS_FR))),
        ),
        Kind::Cancellation => (
            "cancellation",
            None,
            "email",
            rng.bool()
                .then(|| pick(rng, (&CANCELLATIONS, &CANCELLATIONS_FR))),
        ),
        Kind::Visit => match rng.u32(..100) {
            0..84 => (
                "purchase",
                None,
                ["shop", "shop", "web"][rng.usize(..3)],
                None,
            ),
            84..92 if rng.u32(..100) < 6 => (
                "review",
                Some(-0.4 - rng.f64() * 0.4),
                "web",
                Some(pick(rng, (&BAD_REVIEWS, &BAD_REVIEWS_FR))),
            ),
            84..92 => (
                "review",
                Some(0.4 + rng.f64() * 0.6),
                "web",
                rng.bool()
                    .then(|| pick(rng, (&GOOD_REVIEWS, &GOOD_REVIEWS_FR))),
            ),
            92..96 => ("support_ticket", Some(0.0), "email", None),
            _ => ("newsletter_signup", None, "web", None),
        },
    };
    insert.execute(params![
        i64::from(c) + 1,
        stamp(rng, at),
        kind,
        sentiment,
        channel,
        note
    ])?;
    Ok(())
}

/// Days until the next visit: exponential around the mean, at least a few hours.
fn gap(rng: &mut fastrand::Rng, mean_days: f64) -> i64 {
    let u = rng.f64().max(1e-9);
    ((-u.ln() * mean_days * DAY as f64) as i64).max(4 * 3600)
}

/// A timestamp in one of the forms real logs contain: mostly `Z`, some SQLite-style, a few with
/// an offset.
fn stamp(rng: &mut fastrand::Rng, second: i64) -> String {
    let Ok(t) = Timestamp::from_second(second) else {
        return String::new();
    };
    match rng.u32(..100) {
        0..85 => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        85..95 => t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        _ => (t + jiff::SignedDuration::from_hours(1))
            .strftime("%Y-%m-%dT%H:%M:%S+01:00")
            .to_string(),
    }
}

fn zone(rng: &mut fastrand::Rng) -> Option<&'static str> {
    let total: u32 = ZONES.iter().map(|z| z.1).sum();
    let mut roll = rng.u32(..total);
    for (name, weight) in ZONES {
        if roll < weight {
            return (!name.is_empty()).then_some(name);
        }
        roll -= weight;
    }
    None
}

/// ASCII-folds a name for an email address ("Léa" → "lea", "O'Brien" → "obrien").
fn ascii(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let folded = match c {
                'à' | 'á' | 'â' | 'ä' | 'å' => 'a',
                'ç' => 'c',
                'è' | 'é' | 'ê' | 'ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' => 'i',
                'ñ' => 'n',
                'ò' | 'ó' | 'ô' | 'ö' => 'o',
                'ù' | 'ú' | 'û' | 'ü' => 'u',
                'Á' => 'a',
                c => c.to_ascii_lowercase(),
            };
            folded.is_ascii_alphanumeric().then_some(folded)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-24T09:00:00Z".parse().expect("time")
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    #[test]
    fn the_demo_log_is_deterministic_and_has_every_kind_of_customer() {
        let dir = tempfile::tempdir().expect("dir");
        let spec = DemoSpec::new(300, 7);
        let a = generate_log(&dir.path().join("a.sqlite"), &spec, now()).expect("generate");
        let b = generate_log(&dir.path().join("b.sqlite"), &spec, now()).expect("generate");
        assert_eq!(a, b);
        assert_eq!(a.customers, 307);
        let conn = Connection::open(dir.path().join("a.sqlite")).expect("open");
        let cutoff = now().as_second();
        let quiet = count(
            &conn,
            &format!(
                "SELECT count(*) FROM (SELECT customer_id FROM interactions GROUP BY customer_id
                 HAVING count(*) >= 3 AND max(unixepoch(at, 'auto')) < {} )",
                cutoff - 60 * DAY
            ),
        );
        assert!(quiet > 20, "quiet customers: {quiet}");
        let recent_complaints = count(
            &conn,
            &format!(
                "SELECT count(DISTINCT customer_id) FROM interactions WHERE kind = 'complaint' AND unixepoch(at, 'auto') > {}",
                cutoff - 14 * DAY
            ),
        );
        assert!(
            recent_complaints >= 10,
            "recent complaints: {recent_complaints}"
        );
        let departed = count(
            &conn,
            "SELECT count(*) FROM customers WHERE status = 'departed'",
        );
        assert!(departed > 5, "departed: {departed}");
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM customers WHERE email = 'not-an-email'"
            ),
            1
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM customers WHERE name LIKE '%' || char(13) || char(10) || '%'"
            ),
            1
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM interactions WHERE unixepoch(at, 'auto') IS NULL"
            ),
            1
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM interactions WHERE length(note) > 20000"
            ),
            1
        );
        // Interaction ids increase with time.
        let out_of_order = count(
            &conn,
            "SELECT count(*) FROM interactions a JOIN interactions b ON b.id = a.id + 1
             WHERE unixepoch(b.at, 'auto') < unixepoch(a.at, 'auto')",
        );
        assert_eq!(out_of_order, 0);
    }

    #[test]
    fn a_log_of_a_given_size_is_within_a_few_percent_of_it_and_keeps_its_mix() {
        let dir = tempfile::tempdir().expect("dir");
        for (customers, interactions) in [(3000, 60_000), (1000, 80_000)] {
            let spec =
                DemoSpec::with_interactions(customers, 7, interactions, now()).expect("spec");
            let path = dir.path().join(format!("{interactions}.sqlite"));
            let stats = generate_log(&path, &spec, now()).expect("generate");
            let off = stats.interactions as f64 / interactions as f64 - 1.0;
            assert!(off.abs() < 0.05, "{stats:?} for {interactions}: {off:+.3}");
            // The same share of unhappy customers, whatever their activity.
            let conn = Connection::open(&path).expect("open");
            let complained = count(
                &conn,
                "SELECT count(DISTINCT customer_id) FROM interactions WHERE kind = 'complaint'",
            );
            let share = complained as f64 / customers as f64;
            assert!((0.07..0.14).contains(&share), "complaints: {share}");
        }
    }
}
