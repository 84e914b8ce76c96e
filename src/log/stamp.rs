//! The common ISO-8601 timestamps read without asking SQLite, exactly as its `unixepoch(at,
//! 'auto')` reads them: `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM`,
//! `HH:MM:SS` or `HH:MM:SS.fff`, and by `Z` or an offset `±HH:MM`. Anything else (numbers,
//! `now`, hours of 24, a second rounded up by its fraction, spaces elsewhere, the year 9999)
//! is not read here: [`unix_seconds`] says `None` and the caller asks SQLite, so nothing is
//! read differently. A test compares both readers on many forms.

/// Unix seconds of `text` when it has one of the forms above, `None` to ask SQLite.
pub(super) fn unix_seconds(text: &[u8]) -> Option<i64> {
    let mut p = Parser { text, at: 0 };
    // The year 9999 is left to SQLite: an offset can take it past the last date SQLite reads.
    let year = p.digits(4, 0, 9998)?;
    p.expect(b'-')?;
    let month = p.digits(2, 1, 12)?;
    p.expect(b'-')?;
    // Like SQLite, a day past the month's end runs on into the next (2026-02-30 is March 2).
    let day = p.digits(2, 1, 31)?;
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if p.done() {
        return Some(seconds);
    }
    p.expect_either(b'T', b' ')?;
    seconds += p.digits(2, 0, 23)? * 3600;
    p.expect(b':')?;
    seconds += p.digits(2, 0, 59)? * 60;
    if p.peek() == Some(b':') {
        p.at += 1;
        seconds += p.digits(2, 0, 59)?;
        if p.peek() == Some(b'.') {
            p.at += 1;
            let fraction = p.run_of_digits();
            // SQLite rounds to the millisecond: .9995 and up would carry into the next second.
            if fraction.is_empty() || fraction.starts_with(b"999") {
                return None;
            }
        }
    }
    match p.peek() {
        None => Some(seconds),
        Some(b'Z' | b'z') => {
            p.at += 1;
            p.done().then_some(seconds)
        }
        Some(sign @ (b'+' | b'-')) => {
            p.at += 1;
            let hours = p.digits(2, 0, 14)?;
            p.expect(b':')?;
            let offset = (hours * 60 + p.digits(2, 0, 59)?) * 60;
            p.done().then_some(if sign == b'+' {
                seconds - offset
            } else {
                seconds + offset
            })
        }
        Some(_) => None,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`); a day past the month's end counts on into the next month.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at == self.text.len()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.expect_either(byte, byte)
    }

    fn expect_either(&mut self, one: u8, other: u8) -> Option<()> {
        let next = self.peek()?;
        (next == one || next == other).then(|| self.at += 1)
    }

    /// Exactly `count` digits, their value within `min..=max`.
    fn digits(&mut self, count: usize, min: i64, max: i64) -> Option<i64> {
        let field = self.text.get(self.at..self.at + count)?;
        let mut value = 0;
        for &b in field {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.at += count;
        (min..=max).contains(&value).then_some(value)
    }

    fn run_of_digits(&mut self) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form, near-miss and edge below is read here as SQLite reads it, or left to SQLite.
    #[test]
    fn reads_what_sqlite_reads_and_leaves_the_rest_to_it() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        let sqlite = |text: &str| -> Option<i64> {
            conn.query_row("SELECT unixepoch(?1, 'auto')", [text], |r| r.get(0))
                .expect("unixepoch")
        };
        let dates = [
            "2026-11-24",
            "1970-01-01",
            "1969-12-31",
            "0000-01-01",
            "9999-12-31",
            "2024-02-29",
            "2023-02-29",
            "2026-02-31",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-01-32",
            "26-01-01",
            "2026-1-01",
            "2026/01/01",
            "+2026-01-01",
            "-2026-01-01",
        ];
        let times = [
            "",
            "T09:00",
            " 09:00",
            "T09:00:00",
            "T23:59:59",
            "T00:00:00",
            "T24:00:00",
            "T09:60",
            "T09:00:60",
            "T9:00",
            "T09:00:00.5",
            "T09:00:00.123456",
            "T23:59:59.998",
            "T23:59:59.9994",
            "T23:59:59.9996",
            "T09:00:00.",
            "T09:00:5",
            "TT09:00",
            "  09:00",
            "t09:00",
            "T09:00:00 ",
        ];
        let zones = [
            "", "Z", "z", "+05:00", "-05:30", "+14:59", "+15:00", "-00:00", "+0500", "+05", " Z",
            "Z ", "UTC", "+05:00Z",
        ];
        let mut read_here = 0;
        for date in dates {
            for time in times {
                for zone in zones {
                    let text = format!("{date}{time}{zone}");
                    if let Some(here) = unix_seconds(text.as_bytes()) {
                        assert_eq!(Some(here), sqlite(&text), "{text:?}");
                        read_here += 1;
                    }
                }
            }
        }
        for text in [
            "now",
            "2461000.5",
            "1764000000",
            "",
            "2026-11-24T09:00:00+05:00:00",
        ] {
            if let Some(here) = unix_seconds(text.as_bytes()) {
                assert_eq!(Some(here), sqlite(text), "{text:?}");
            }
        }
        // The forms a log holds are read here, not left to SQLite.
        for text in [
            "2026-11-24",
            "2026-11-24 09:00:00",
            "2026-11-24T09:00:00Z",
            "2026-11-24T09:00:00.250+01:00",
        ] {
            assert!(unix_seconds(text.as_bytes()).is_some(), "{text:?}");
        }
        assert!(read_here > 400, "only {read_here} read here");
    }

    /// Every day of 400 years (a whole Gregorian cycle, around 1970) at noon.
    #[test]
    fn every_day_of_a_cycle_is_the_day_sqlite_says() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        let mut stmt = conn
            .prepare(
                "WITH RECURSIVE d(n) AS (SELECT -73000 UNION ALL SELECT n + 1 FROM d WHERE n < 73097)
                 SELECT date(n * 86400 + 43200, 'unixepoch') || 'T12:00:00Z', n * 86400 + 43200 FROM d",
            )
            .expect("days");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .expect("query");
        for row in rows {
            let (text, seconds) = row.expect("row");
            assert_eq!(unix_seconds(text.as_bytes()), Some(seconds), "{text}");
        }
    }
}
