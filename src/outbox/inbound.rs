//! What came back: each handled inbound message once (bounces, complaints, replies, mailed
//! unsubscribe requests), where each mailbox was read up to, and how each mailbox last went.
//!
//! A message is recorded with what it changes (a note `bounced`, an address suppressed) and
//! with where its mailbox now stands, in one transaction: a crash or a restart handles nothing
//! twice and skips nothing. Its key (its Message-ID, else a hash of it) is unique, so the same
//! message read from two folders, or again after a folder was recreated, counts once.

use std::collections::HashMap;
use std::sync::LazyLock;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Outbox, OutboxError, schema};
use crate::note::NoteState;

/// The note an inbound message is about.
#[derive(Debug, Clone)]
pub(crate) struct NoteRef {
    /// Its id.
    pub id: i64,
    /// Its rule.
    pub rule: String,
    /// Its customer.
    pub customer_id: String,
    /// The address it went to.
    pub recipient: String,
    /// Its state now.
    pub state: NoteState,
}

/// Where in its mailbox a message was: recorded with it, so the mailbox is read on from there.
#[derive(Debug, Clone)]
pub(crate) enum Position {
    /// An IMAP folder's message.
    Imap {
        /// The folder.
        folder: String,
        /// The folder's UIDVALIDITY.
        uidvalidity: u32,
        /// The message's UID.
        uid: u32,
    },
    /// A maildir file, by the unique part of its name (before `:2,…`).
    Maildir(String),
}

/// One handled message, as kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    /// Its Message-ID, else a hash of its bytes: each message once.
    pub key: String,
    /// "hard-bounce", "soft-bounce", "complaint", "reply", "auto-reply" or "unsubscribe".
    pub kind: &'static str,
    /// When it was written (its Date, within reason), else when it was read.
    pub dated: i64,
    /// The note it is about.
    pub note: Option<NoteRef>,
    /// The address it is about (the bounced one, the complainer, the unsubscriber).
    pub address: Option<String>,
    /// The customer, when known without a note (a mailed unsubscribe).
    pub customer_id: Option<String>,
    /// The status code (bounces).
    pub status: Option<String>,
    /// The server's text (bounces) or the customer's words (replies, an excerpt).
    pub detail: Option<String>,
}

/// What recording a message changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Effects {
    /// Mark the note `bounced`.
    pub bounce_note: bool,
    /// Put these keys (addresses, customer ids) on the suppression list, with this reason.
    pub suppress: Vec<String>,
    /// The suppression's reason.
    pub reason: String,
}

/// A reply as `explain` and the digest show it.
#[derive(Debug, Clone)]
pub(crate) struct StoredReply {
    /// When it was written.
    pub at: i64,
    /// The note it answers.
    pub note_id: Option<i64>,
    /// That note's rule.
    pub rule: Option<String>,
    /// The customer.
    pub customer_id: String,
    /// The customer's words, shortened.
    pub excerpt: String,
    /// An automatic reply (out of office).
    pub automatic: bool,
}

/// How a mailbox last went, for `status`.
#[derive(Debug, Clone)]
pub(crate) struct SourceStatus {
    /// Its name.
    pub source: String,
    /// Its last complete read.
    pub ok_at: Option<i64>,
    /// Its last error, and when.
    pub error: Option<(i64, String)>,
}

/// The customers written to at ?1, case aside (see [`Outbox::customers_at`]).
pub(super) const CUSTOMERS_AT_SQL: &str =
    "SELECT DISTINCT customer_id FROM notes WHERE recipient = ?1 COLLATE NOCASE";

impl Outbox {
    /// The note whose Message-ID holds `token` (its 32 hex digits), whatever the domain.
    pub(crate) fn note_by_token(&self, token: &str) -> Result<Option<NoteRef>, OutboxError> {
        // By the index on the token's first 8 bytes, then the whole token: the Message-IDs
        // from `<token.` up to `<token/` ('/' follows '.').
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id, rule, customer_id, recipient, state FROM notes
                 WHERE token = {} AND message_id >= ?1 AND message_id < ?2 LIMIT 1",
                schema::token_of("?1")
            )
        });
        let (from, to) = (format!("<{token}."), format!("<{token}/"));
        self.conn
            .prepare_cached(&SQL)
            .and_then(|mut s| {
                s.query_row(params![from, to], |r| {
                    Ok(NoteRef {
                        id: r.get(0)?,
                        rule: r.get(1)?,
                        customer_id: r.get(2)?,
                        recipient: r.get(3)?,
                        state: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// The customers rekindle has written to at `address` (for a mailed unsubscribe).
    pub(crate) fn customers_at(&self, address: &str) -> Result<Vec<String>, OutboxError> {
        self.conn
            .prepare_cached(CUSTOMERS_AT_SQL)
            .and_then(|mut s| s.query_map([address], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))
    }

    /// Whether a message with this key was handled already.
    pub(crate) fn inbound_seen(&self, key: &str) -> Result<bool, OutboxError> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM inbound WHERE key = ?1)")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Records one handled message (`record` is `None` for one that changes nothing: a message
    /// unrelated to rekindle), what it changes, and that its mailbox was read past `position`,
    /// in one transaction. Returns false when the message was recorded before (nothing changes
    /// again).
    pub(crate) fn record_inbound(
        &self,
        source: &str,
        position: &Position,
        record: Option<&Record>,
        effects: &Effects,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        let write = || -> rusqlite::Result<bool> {
            let tx = self.begin()?;
            let mut new = true;
            if let Some(r) = record {
                new = insert(&tx, source, r, now)? > 0;
                if new {
                    apply(&tx, r, effects, now)?;
                }
            }
            advance(&tx, source, position)?;
            tx.commit()?;
            Ok(new)
        };
        write().map_err(|e| self.err(e))
    }

    /// Where an IMAP folder was read up to: its UIDVALIDITY and the last UID handled.
    pub(crate) fn imap_mark(
        &self,
        source: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, OutboxError> {
        self.conn
            .prepare_cached(
                "SELECT uidvalidity, uid FROM inbound_marks WHERE source = ?1 AND folder = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![source, folder], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Which maildir names of `source` were handled already.
    pub(crate) fn maildir_seen(
        &self,
        source: &str,
    ) -> Result<std::collections::HashSet<String>, OutboxError> {
        self.conn
            .prepare_cached("SELECT name FROM inbound_seen WHERE source = ?1")
            .and_then(|mut s| s.query_map([source], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))
    }

    /// Soft bounces of `address` since `since`.
    pub(crate) fn soft_bounces(&self, address: &str, since: i64) -> Result<u32, OutboxError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM inbound WHERE address = ?1 AND kind = 'soft-bounce' AND dated >= ?2",
            )
            .and_then(|mut s| s.query_row(params![address, since], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// The time of each customer's latest reply written by a person (not an automatic one),
    /// for those of `customers` who replied since `since`.
    pub(crate) fn last_replies(
        &self,
        customers: &[String],
        since: i64,
    ) -> Result<HashMap<String, i64>, OutboxError> {
        let read = || -> rusqlite::Result<HashMap<String, i64>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT customer_id, max(dated) FROM inbound
                 WHERE customer_id IN (SELECT value FROM json_each(?1))
                   AND kind = 'reply' AND dated >= ?2
                 GROUP BY customer_id",
            )?;
            let rows = stmt.query_map(params![crate::log::json_list(customers), since], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    /// Replies (and automatic replies) since `since`: of one customer, or of everyone.
    pub(crate) fn replies(
        &self,
        customer_id: Option<&str>,
        since: i64,
    ) -> Result<Vec<StoredReply>, OutboxError> {
        let read = || -> rusqlite::Result<Vec<StoredReply>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT dated, note_id, rule, customer_id, coalesce(detail, ''), kind FROM inbound
                 WHERE kind IN ('reply', 'auto-reply') AND dated >= ?2
                   AND (?1 IS NULL OR customer_id = ?1)
                 ORDER BY dated, id",
            )?;
            let rows = stmt.query_map(params![customer_id, since], |r| {
                Ok(StoredReply {
                    at: r.get(0)?,
                    note_id: r.get(1)?,
                    rule: r.get(2)?,
                    customer_id: r.get(3)?,
                    excerpt: r.get(4)?,
                    automatic: r.get::<_, String>(5)? == "auto-reply",
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    /// How many messages of each kind were handled since `since`.
    pub(crate) fn inbound_counts(&self, since: i64) -> Result<HashMap<String, i64>, OutboxError> {
        self.conn
            .prepare_cached("SELECT kind, count(*) FROM inbound WHERE at >= ?1 GROUP BY kind")
            .and_then(|mut s| {
                s.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Records a complete read of a mailbox (`error` None) or why it failed.
    pub(crate) fn source_outcome(
        &self,
        source: &str,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let write = || -> rusqlite::Result<()> {
            let tx = self.begin()?;
            let sql = match error {
                None => {
                    "INSERT INTO inbound_sources (source, ok_at, error) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source) DO UPDATE SET ok_at = ?2, error = ?3, error_at = NULL"
                }
                Some(_) => {
                    "INSERT INTO inbound_sources (source, error_at, error) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source) DO UPDATE SET error_at = ?2, error = ?3"
                }
            };
            tx.execute(sql, params![source, now.as_second(), error])?;
            tx.commit()
        };
        write().map_err(|e| self.err(e))
    }

    /// How each mailbox last went, by name.
    pub(crate) fn source_statuses(&self) -> Result<Vec<SourceStatus>, OutboxError> {
        self.conn
            .prepare("SELECT source, ok_at, error_at, error FROM inbound_sources ORDER BY source")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    let error_at: Option<i64> = r.get(2)?;
                    let error: Option<String> = r.get(3)?;
                    Ok(SourceStatus {
                        source: r.get(0)?,
                        ok_at: r.get(1)?,
                        error: error_at.zip(error),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }
}

/// Inserts the message's row; 0 when its key is there already.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    r: &Record,
    now: Timestamp,
) -> rusqlite::Result<usize> {
    let note = r.note.as_ref();
    tx.prepare_cached(
        "INSERT INTO inbound (key, source, at, dated, kind, note_id, rule, customer_id, address, status, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (key) DO NOTHING",
    )?
    .execute(params![
        r.key,
        source,
        now.as_second(),
        r.dated,
        r.kind,
        note.map(|n| n.id),
        note.map(|n| n.rule.as_str()),
        note.map(|n| n.customer_id.as_str()).or(r.customer_id.as_deref()),
        r.address,
        r.status,
        r.detail,
    ])
}

/// What the message changes: its note bounced, addresses suppressed.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    r: &Record,
    effects: &Effects,
    now: Timestamp,
) -> rusqlite::Result<()> {
    if let Some(note) = r.note.as_ref().filter(|_| effects.bounce_note) {
        let detail = r.detail.as_deref().unwrap_or("a hard bounce came back");
        tx.prepare_cached(
            "UPDATE notes SET state = ?2, updated_at = ?3, last_error = ?4
             WHERE id = ?1 AND state IN ('sent', 'unknown')",
        )?
        .execute(params![
            note.id,
            NoteState::Bounced,
            now.as_second(),
            detail
        ])?;
        tx.prepare_cached(
            "INSERT INTO note_events (note_id, at, state, detail) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            note.id,
            now.as_second(),
            NoteState::Bounced,
            detail
        ])?;
    }
    for key in &effects.suppress {
        tx.prepare_cached(
            "INSERT INTO suppressions (key, reason, at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![key.trim(), effects.reason, now.as_second()])?;
    }
    Ok(())
}

/// Moves the mailbox's mark past `position`.
fn advance(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    position: &Position,
) -> rusqlite::Result<()> {
    match position {
        Position::Imap {
            folder,
            uidvalidity,
            uid,
        } => tx
            .prepare_cached(
                "INSERT INTO inbound_marks (source, folder, uidvalidity, uid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, folder) DO UPDATE SET uidvalidity = ?3, uid = max(?4,
                     CASE WHEN uidvalidity = ?3 THEN uid ELSE 0 END)",
            )?
            .execute(params![source, folder, uidvalidity, uid])?,
        Position::Maildir(name) => tx
            .prepare_cached(
                "INSERT INTO inbound_seen (source, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![source, name])?,
    };
    Ok(())
}
