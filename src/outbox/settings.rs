//! What rekindle keeps between runs besides notes (the `meta` table), each under a typed key.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Outbox, OutboxError};

/// A value rekindle keeps between runs, each under its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting<'a> {
    /// What the last whole evaluation learnt of the log's layout (`log::Horizon`).
    Horizon,
    /// Where a window rule's last run left off (`evaluate::Mark`), per rule.
    RuleMark(&'a str),
    /// The last interaction the event trigger handled (a rowid).
    EventWatermark,
    /// The delivery rate limit's bucket (`deliver::RateLimit`).
    RateLimit,
    /// Delivery paused: the mail server refused rekindle itself (`deliver::Pause`).
    DeliveryPause,
    /// The machine's boot when notes were last claimed (Linux's boot id).
    DeliveryBoot,
    /// The scheduled wall-clock time a rule (or the digest) last ran for.
    ScheduledRun(&'a str),
    /// The link-signing secret in force (a hash of it) and when it was first seen: the previous
    /// one is accepted for `[http] previous_secret_for` from then.
    LinkSecret,
}

impl Setting<'_> {
    /// The key in the `meta` table.
    fn key(&self) -> String {
        match self {
            Setting::Horizon => "log_horizon".into(),
            Setting::RuleMark(rule) => format!("rule_mark:{rule}"),
            Setting::EventWatermark => "event_watermark".into(),
            Setting::RateLimit => "rate_limit".into(),
            Setting::DeliveryPause => "delivery_pause".into(),
            Setting::DeliveryBoot => "delivery_boot".into(),
            Setting::ScheduledRun(rule) => format!("scheduled_run:{rule}"),
            Setting::LinkSecret => "link_secret".into(),
        }
    }
}

impl Outbox {
    /// The value kept for `setting`, if there is one that reads as a `T` (one written by an
    /// older version in another form reads as none: it is rebuilt).
    pub(crate) fn setting<T: DeserializeOwned>(
        &self,
        setting: Setting<'_>,
    ) -> Result<Option<T>, OutboxError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [setting.key()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Keeps `value` for `setting` (committing any group of queued notes first).
    pub(crate) fn set_setting<T: Serialize>(
        &self,
        setting: Setting<'_>,
        value: &T,
    ) -> Result<(), OutboxError> {
        self.flush()?;
        // Serialising plain data to JSON cannot fail.
        let text = serde_json::to_string(value).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![setting.key(), text],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forgets the value kept for `setting`.
    pub(crate) fn clear_setting(&self, setting: Setting<'_>) -> Result<(), OutboxError> {
        self.flush()?;
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [setting.key()])
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
