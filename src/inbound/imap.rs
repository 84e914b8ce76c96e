//! An IMAP mailbox (async-imap on tokio, TLS through rustls): log in, read each folder's new
//! messages by UID (bodies with `BODY.PEEK[]`, so the owner's unread mail stays unread), hand
//! them to the state database in UID order, optionally move what was handled, then wait with
//! IDLE where the server offers it.
//!
//! Nothing is ever deleted or flagged. What was read is remembered per folder as UIDVALIDITY
//! and the last UID handled, written with each message's outcome; a folder read for the first
//! time (or recreated: a new UIDVALIDITY) is read back [`FIRST_LOOK`], not to its beginning.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::debug;

use super::Batch;
use crate::config::Config;
use crate::config::inbound::ImapConfig;
use crate::config::smtp::Tls;
use crate::deliver::Trust;

/// How far back a folder read for the first time is read.
pub(crate) const FIRST_LOOK: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// Messages fetched (and handed over) at a time: bounded memory, whatever the backlog.
const CHUNK: usize = 20;

/// A connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// A logged-in session.
pub(crate) struct Mailbox {
    session: Session<Box<dyn Stream>>,
    idle: bool,
}

/// Connects and logs in; the error says what failed, in words (never the password).
pub(crate) async fn connect(cfg: &ImapConfig, config: &Config) -> Result<Mailbox, String> {
    let timeout = cfg.timeout();
    let password = cfg.password(config.base_dir())?;
    let work = async {
        let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port()))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", cfg.host, cfg.port()))?;
        let stream: Box<dyn Stream> = match cfg.tls {
            Tls::None => Box::new(tcp),
            Tls::Implicit => Box::new(tls(cfg, tcp).await?),
            Tls::Starttls => {
                let mut client = Client::new(tcp);
                greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| format!("the server refused STARTTLS ({e}); set tls = \"implicit\" (port 993) if it speaks TLS from the start"))?;
                Box::new(tls(cfg, client.into_inner()).await?)
            }
        };
        let mut client = Client::new(stream);
        if cfg.tls != Tls::Starttls {
            greeting(&mut client).await?;
        }
        let mut session = client
            .login(&cfg.username, &password)
            .await
            .map_err(|(e, _)| {
                format!(
                    "the server refused the login of {}: {e}; check username and the password",
                    cfg.username
                )
            })?;
        let capabilities = session.capabilities().await.map_err(|e| e.to_string())?;
        let idle = cfg.idle && capabilities.has_str("IDLE");
        let moves = capabilities.has_str("MOVE");
        debug!(source = %cfg.name(), idle, moves, "logged in to the mailbox");
        Ok::<_, String>(Mailbox { session, idle })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        format!(
            "no answer from {}:{} within {}",
            cfg.host,
            cfg.port(),
            humantime::format_duration(timeout)
        )
    })?
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
    client: &mut Client<T>,
) -> Result<(), String> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the server closed the connection before its greeting".into()),
        Err(e) => Err(format!("no IMAP greeting: {e}")),
    }
}

async fn tls(
    cfg: &ImapConfig,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let trust = Trust::with_ca_file(cfg.ca_file.clone())
        .map_err(|(path, why)| format!("cannot use the ca_file {}: {why}", path.display()))?;
    let connector = tokio_rustls::TlsConnector::from(trust.client_config()?);
    let name = rustls::pki_types::ServerName::try_from(cfg.certificate_name().to_string())
        .map_err(|e| format!("{:?} is not a server name: {e}", cfg.certificate_name()))?;
    connector.connect(name, tcp).await.map_err(|e| {
        let words = crate::deliver::tls_failure(&e).unwrap_or_else(|| e.to_string());
        format!("TLS with {}:{} failed: {words}", cfg.host, cfg.port())
    })
}

impl Mailbox {
    /// Whether the server offers IDLE (and the config allows it).
    pub(crate) fn can_idle(&self) -> bool {
        self.idle
    }

    /// EXAMINE (read-only: nothing the server could mark changes), or SELECT when handled mail
    /// is moved.
    async fn open(
        &mut self,
        folder: &str,
        write: bool,
    ) -> Result<async_imap::types::Mailbox, String> {
        let opened = if write {
            self.session.select(folder).await
        } else {
            self.session.examine(folder).await
        };
        opened.map_err(|e| format!("cannot open folder {folder:?}: {e}"))
    }

    /// Reads `folder`'s messages after `mark` (its UIDVALIDITY and the last UID handled),
    /// [`CHUNK`] at a time, and gives each chunk to the state database (see [`super::record`]).
    /// Returns the count read and the UID the next message will have.
    pub(crate) async fn read_folder(
        &mut self,
        folder: &str,
        mark: Option<(u32, u32)>,
        cfg: &ImapConfig,
        config: &Arc<Config>,
    ) -> Result<(usize, u32), String> {
        let timeout = cfg.timeout();
        let selected = within(timeout, self.open(folder, cfg.move_to.is_some())).await?;
        let validity = selected.uid_validity.unwrap_or(0);
        let query = match mark {
            Some((v, uid)) if v == validity => format!("UID {}:*", uid.saturating_add(1)),
            _ => {
                let since = crate::clock::now() - FIRST_LOOK;
                let day = since.strftime("%d-%b-%Y").to_string();
                format!("SINCE {day}")
            }
        };
        let after = match mark {
            Some((v, uid)) if v == validity => uid,
            _ => 0,
        };
        let found: HashSet<u32> = within(timeout, async {
            self.session
                .uid_search(&query)
                .await
                .map_err(|e| format!("cannot search {folder}: {e}"))
        })
        .await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > after).collect();
        uids.sort_unstable();
        let next = uids
            .last()
            .map_or(after + 1, |u| u + 1)
            .max(selected.uid_next.unwrap_or(0));
        let mut read = 0;
        for chunk in uids.chunks(CHUNK) {
            let messages =
                within(timeout, self.fetch(chunk, config.inbound.max_message_bytes)).await?;
            read += messages.len();
            let batch = Batch {
                folder: folder.to_string(),
                uidvalidity: validity,
                messages,
            };
            let to_move = super::record(config.clone(), cfg.name(), batch).await?;
            if let (Some(to), false) = (&cfg.move_to, to_move.is_empty()) {
                within(timeout, self.move_to(&to_move, to)).await?;
            }
        }
        Ok((read, next))
    }

    /// The messages of `uids`: whole when at most `max_bytes`, else their headers only.
    async fn fetch(&mut self, uids: &[u32], max_bytes: u64) -> Result<Vec<super::Message>, String> {
        let set = uid_set(uids);
        let sizes: Vec<(u32, u32)> = self
            .session
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await
            .map_err(|e| e.to_string())?
            .try_filter_map(|f| async move { Ok(f.uid.map(|u| (u, f.size.unwrap_or(0)))) })
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        let (large, small): (Vec<_>, Vec<_>) = sizes
            .into_iter()
            .partition(|(_, size)| u64::from(*size) > max_bytes);
        let mut messages = Vec::new();
        for (uids, query, headers_only) in [
            (small, "(UID BODY.PEEK[])", false),
            (large, "(UID BODY.PEEK[HEADER])", true),
        ] {
            if uids.is_empty() {
                continue;
            }
            let set = uid_set(&uids.iter().map(|(u, _)| *u).collect::<Vec<_>>());
            let fetched: Vec<super::Message> = self
                .session
                .uid_fetch(&set, query)
                .await
                .map_err(|e| e.to_string())?
                .try_filter_map(|f| async move {
                    let raw = if headers_only { f.header() } else { f.body() };
                    Ok(f.uid.zip(raw).map(|(uid, raw)| super::Message {
                        uid,
                        raw: raw.to_vec(),
                        headers_only,
                    }))
                })
                .try_collect()
                .await
                .map_err(|e| e.to_string())?;
            messages.extend(fetched);
        }
        messages.sort_by_key(|m| m.uid);
        Ok(messages)
    }

    /// Moves handled messages to `to` (created if missing): MOVE where offered, else COPY
    /// (the original stays: rekindle never deletes).
    async fn move_to(&mut self, uids: &[u32], to: &str) -> Result<(), String> {
        let set = uid_set(uids);
        if self.session.uid_mv(&set, to).await.is_ok() {
            return Ok(());
        }
        // The folder may not exist yet: create it and try once more.
        let _ = self.session.create(to).await;
        if self.session.uid_mv(&set, to).await.is_ok() {
            return Ok(());
        }
        self.session
            .uid_copy(&set, to)
            .await
            .map_err(|e| format!("cannot move handled mail to {to}: {e}"))
    }

    /// Waits on `folder` with IDLE until something changes there or `most` passes; at once
    /// when a message came in since it was read (its next UID is past `next`).
    pub(crate) async fn idle(
        mut self,
        folder: &str,
        next: u32,
        most: Duration,
        timeout: Duration,
    ) -> Result<Mailbox, String> {
        let opened = within(timeout, self.open(folder, false)).await?;
        if opened.uid_next.is_some_and(|n| n > next) {
            return Ok(self);
        }
        let Mailbox { session, idle } = self;
        let mut handle = session.idle();
        within(timeout, async {
            handle
                .init()
                .await
                .map_err(|e| format!("IDLE refused: {e}"))
        })
        .await?;
        // The stop handle lives until the wait ends: dropping it would interrupt the wait.
        let (wait, _stop) = handle.wait_with_timeout(most);
        let waited = wait.await.map_err(|e| format!("IDLE broke off: {e}"));
        let session = within(timeout, async {
            handle
                .done()
                .await
                .map_err(|e| format!("IDLE did not end cleanly: {e}"))
        })
        .await?;
        waited?;
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(Mailbox { session, idle })
    }

    /// Logs out (best effort).
    pub(crate) async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

async fn within<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        format!(
            "the server did not answer within {}",
            humantime::format_duration(timeout)
        )
    })?
}

/// "1,2,5" for a UID set.
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
