//! An SMTP client on lettre's connection type, with our own small pool.
//!
//! lettre's pooled transport cannot do three things a trustworthy, fast sender needs:
//! - it cannot set `TCP_NODELAY`, and it writes a message's body and its final `.` separately,
//!   so Nagle's algorithm and the server's delayed ACK stall every message;
//! - its errors do not say *when* a connection broke. Here a transaction runs in stages, so a
//!   connection lost once the message itself is being sent (after the server's 354 to DATA),
//!   before the server's final reply, is told apart (the server may have accepted the note) from
//!   one lost earlier (it cannot have);
//! - it does not pipeline (RFC 2920): with a server that offers PIPELINING, MAIL, RCPT and DATA
//!   go out together, and the message with its final dot in one write followed, when another
//!   note waits, by that note's MAIL, RCPT and DATA: a busy connection spends about one round
//!   trip per note instead of four.

mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::{
    AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream, TlsParameters,
};
use lettre::transport::smtp::commands::{Ehlo, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::trust::tls_failure;
use super::{Handover, SendError};
use crate::config::smtp::Tls;
use wire::{Broken, Compat, Raw, after_end, classify, data_block, group, open, settle, within};

/// An idle connection is checked with NOOP before reuse once it has rested this long.
const STALE_AFTER: Duration = Duration::from_secs(30);

/// After the server refused rekindle itself, connections are not tried again for this long.
const REFUSAL_HOLD: Duration = Duration::from_secs(10);

/// Where to connect and how to log in.
pub(crate) struct Server {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Encryption.
    pub tls: Tls,
    /// The certificates trusted and the name checked, unless `tls` is none.
    pub tls_parameters: Option<TlsParameters>,
    /// For connecting and for each reply.
    pub timeout: Duration,
    /// The EHLO name.
    pub hello: ClientId,
    /// Login, if any.
    pub credentials: Option<Credentials>,
    /// Whether another server is tried when this one refuses rekindle.
    pub has_fallback: bool,
    /// "host:port", as a sent note's outcome names it.
    pub label: Arc<str>,
}

/// An open connection, whether its server lets us pipeline, and since when it rests.
struct Conn {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
    rested_since: Instant,
}

/// A note waiting for a connection, and where its outcome goes.
struct Job {
    envelope: Envelope,
    email: Vec<u8>,
    handover: Arc<Handover>,
    done: oneshot::Sender<Result<String, SendError>>,
}

impl Job {
    fn finish(self, outcome: Result<String, SendError>) {
        // The sender stopped waiting (its runtime is shutting down): nothing left to tell.
        let _ = self.done.send(outcome);
    }
}

/// Connections to one server: `size` workers, each with at most one connection open, take the
/// notes in the order they come. When the server pipelines and notes are waiting, a worker
/// writes the next note's MAIL, RCPT and DATA right behind the message it hands over, so a busy
/// connection spends about one round trip per note.
pub(crate) struct Client {
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Job>,
    size: usize,
}

/// What the workers share.
struct Shared {
    server: Server,
    jobs: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    /// Workers running; they are started on the runtime that sends, when it first sends.
    workers: AtomicUsize,
    /// When and why the server last refused rekindle itself (see [`SendError::Account`]).
    refused: std::sync::Mutex<Option<(Instant, String)>>,
}

impl Client {
    /// The server's "host:port".
    pub(crate) fn label(&self) -> &str {
        &self.shared.server.label
    }

    /// A client opening at most `size` connections (at least one).
    pub(crate) fn new(server: Server, size: usize) -> Client {
        let (queue, jobs) = mpsc::unbounded_channel();
        Client {
            shared: Arc::new(Shared {
                server,
                jobs: tokio::sync::Mutex::new(jobs),
                workers: AtomicUsize::new(0),
                refused: std::sync::Mutex::new(None),
            }),
            queue,
            size: size.max(1),
        }
    }

    /// Sends `email` (already formatted) to the envelope's recipients: Ok is the server's reply.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        email: Vec<u8>,
        handover: Arc<Handover>,
    ) -> Result<String, SendError> {
        let mut running = self.shared.workers.load(Ordering::SeqCst);
        while running < self.size {
            match self.shared.workers.compare_exchange(
                running,
                running + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    tokio::spawn(work(self.shared.clone()));
                    running += 1;
                }
                Err(now) => running = now,
            }
        }
        let (done, outcome) = oneshot::channel();
        let job = Job {
            envelope: envelope.clone(),
            email,
            handover,
            done,
        };
        if self.queue.send(job).is_err() {
            return Err(SendError::Unreachable(
                "the connection pool is closed".into(),
            ));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(SendError::Ambiguous(
                "the connection's worker stopped while the note was with it".into(),
            ))
        })
    }
}

/// Counts a worker out when its task ends, also when its runtime drops it.
struct Working(Arc<Shared>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection's worth of work: notes one after the other until the client is dropped.
async fn work(shared: Arc<Shared>) {
    let working = Working(shared);
    let shared = &working.0;
    let mut conn: Option<Conn> = None;
    let mut ahead: Option<(Job, bool)> = None;
    loop {
        let (job, announced) = match ahead.take() {
            Some(next) => next,
            None => match shared.jobs.lock().await.recv().await {
                Some(job) => (job, false),
                None => return,
            },
        };
        ahead = shared.serve(&mut conn, job, announced).await;
    }
}

impl Shared {
    /// Sends one note on the worker's connection, opening one if needed, and settles it.
    /// `announced`: its MAIL, RCPT and DATA already went out behind the note before. Returns
    /// the note taken from the queue to go behind this one, and whether its commands did.
    async fn serve(
        &self,
        slot: &mut Option<Conn>,
        job: Job,
        announced: bool,
    ) -> Option<(Job, bool)> {
        let timeout = self.server.timeout;
        self.drop_if_stale(slot, announced).await;
        let job = self.open_transaction(slot, job, announced).await?;
        let Some(conn) = slot.as_mut() else {
            job.finish(Err(SendError::Lost("the connection was lost".into())));
            return None;
        };
        if let Err(why) = job.handover.go() {
            // Not to be sent after all, at the server's 354: dropping the connection before the
            // final dot makes the server discard the transaction.
            *slot = None;
            job.finish(Err(SendError::Lost(why)));
            return None;
        }
        let Ok(text) = std::str::from_utf8(&job.email) else {
            let handed = within(timeout, true, async {
                conn.smtp.message(&job.email).await.map_err(after_end)
            })
            .await;
            settle(slot, job, handed, &self.server.label);
            return None;
        };
        // Behind the message, the next waiting note's commands, if the server pipelines.
        let next = if conn.pipelining {
            self.waiting()
        } else {
            None
        };
        let behind = next.as_ref().and_then(|n| group(&conn.smtp, n).ok());
        let mut block = data_block(text);
        if let Some(commands) = &behind {
            block.push_str(commands);
        }
        let handed = within(timeout, true, async {
            conn.smtp.command(Raw(&block)).await.map_err(after_end)
        })
        .await;
        settle(slot, job, handed, &self.server.label);
        let announced = behind.is_some() && slot.is_some();
        next.map(|next| (next, announced))
    }

    /// Gives up a kept connection that rested long and no longer answers NOOP (unless the
    /// note's commands already went out on it).
    async fn drop_if_stale(&self, slot: &mut Option<Conn>, announced: bool) {
        let timeout = self.server.timeout;
        if !announced
            && let Some(conn) = slot.as_mut()
            && conn.rested_since.elapsed() >= STALE_AFTER
            && !tokio::time::timeout(timeout, conn.smtp.test_connected())
                .await
                .unwrap_or(false)
        {
            *slot = None;
        }
    }

    /// Opens the note's transaction (MAIL, RCPT, DATA until 354), connecting when needed:
    /// returns the note, ready for its message, or None once its outcome is settled.
    async fn open_transaction(
        &self,
        slot: &mut Option<Conn>,
        job: Job,
        mut announced: bool,
    ) -> Option<Job> {
        let timeout = self.server.timeout;
        let mut fresh = false;
        loop {
            let conn = match slot {
                Some(conn) => conn,
                None => match self.connect().await {
                    Ok(conn) => {
                        fresh = true;
                        slot.insert(conn)
                    }
                    Err(err) => {
                        job.finish(Err(err));
                        return None;
                    }
                },
            };
            let opened = within(timeout, false, open(conn, &job, announced)).await;
            // The server said no to the sender or the recipient: reset the transaction for the
            // next note, or give up the connection.
            if matches!(opened, Err(Broken::Reply(_) | Broken::Sender(_)))
                && !tokio::time::timeout(timeout, conn.smtp.command(Rset))
                    .await
                    .is_ok_and(|reset| reset.is_ok())
            {
                *slot = None;
            }
            match opened {
                Ok(()) => return Some(job),
                // A kept connection the server dropped while it rested, or commands written
                // behind a message whose connection then broke: nothing was handed over, so
                // try once more on a fresh one rather than wait for a retry.
                Err(Broken::BeforeEnd(_)) if !fresh => {
                    *slot = None;
                    announced = false;
                }
                Err(broken) => {
                    settle(slot, job, Err(broken), &self.server.label);
                    return None;
                }
            }
        }
    }

    /// A note waiting in the queue, if one is there now and no idle worker is about to take it.
    fn waiting(&self) -> Option<Job> {
        self.jobs.try_lock().ok()?.try_recv().ok()
    }

    /// A new connection, unless the server refused rekindle itself a moment ago: then the
    /// same refusal, without knocking again (a wrong password tried once per note is how an
    /// account gets locked, or an address banned).
    async fn connect(&self) -> Result<Conn, SendError> {
        let recent = |refusal: &Option<(Instant, String)>| {
            refusal
                .as_ref()
                .filter(|(at, _)| at.elapsed() < REFUSAL_HOLD)
                .map(|(_, why)| why.clone())
        };
        if let Some(why) = recent(&self.refused.lock().unwrap_or_else(|e| e.into_inner())) {
            return Err(SendError::Account(why));
        }
        let conn = self.dial().await;
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match &conn {
            Err(SendError::Account(why)) => {
                // Said once per new reason: with a fallback server taking the notes, this line
                // is how the operator learns that this one is broken (without one, delivery
                // pauses, and says so).
                if self.server.has_fallback
                    && refused.as_ref().is_none_or(|(_, before)| before != why)
                {
                    warn!(server = %format!("{}:{}", self.server.host, self.server.port), reason = %why, "the server will not take mail from rekindle as configured; the notes go to the next server");
                }
                *refused = Some((Instant::now(), why.clone()));
            }
            Ok(_) => *refused = None,
            Err(_) => {}
        }
        drop(refused);
        conn
    }

    /// A new connection: TCP with `TCP_NODELAY`, TLS as configured, EHLO and login.
    async fn dial(&self) -> Result<Conn, SendError> {
        let s = &self.server;
        let unreachable = |why: String| SendError::Unreachable(why);
        let refused = |why: String| SendError::Account(why);
        let setup = async {
            let tcp = TcpStream::connect((s.host.as_str(), s.port))
                .await
                .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| unreachable(format!("cannot set TCP_NODELAY: {e}")))?;
            let stream: Box<dyn AsyncTokioStream> = match s.tls {
                Tls::Implicit => {
                    #[allow(deprecated)]
                    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                    stream
                        .upgrade_tls(self.tls_parameters()?)
                        .await
                        .map_err(|e| refused(format!("TLS handshake failed: {}", tls_words(&e))))?;
                    Box::new(Compat(stream))
                }
                Tls::Starttls | Tls::None => Box::new(tcp),
            };
            // Refused at the greeting or EHLO (554, "your address is blocked"): the server will
            // not talk to rekindle, whatever the note.
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &s.hello)
                .await
                .map_err(|e| {
                    if e.is_permanent() {
                        refused(format!("refused at the greeting: {e}"))
                    } else {
                        classify(e)
                    }
                })?;
            if s.tls == Tls::Starttls {
                if !conn.server_info().supports_feature(Extension::StartTls) {
                    return Err(refused(
                        "the server does not offer STARTTLS; set tls = \"implicit\" or check the port".into(),
                    ));
                }
                conn.starttls(self.tls_parameters()?, &s.hello)
                    .await
                    .map_err(|e| refused(format!("STARTTLS failed: {}", tls_words(&e))))?;
            }
            // lettre keeps only the EHLO keywords it knows, and PIPELINING is not one of them:
            // ask again (after STARTTLS, whose EHLO may differ; before AUTH, which EHLO may reset).
            let ehlo = conn
                .command(Ehlo::new(s.hello.clone()))
                .await
                .map_err(classify)?;
            let pipelining = ehlo.message().skip(1).any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
            });
            if let Some(credentials) = &s.credentials {
                conn.auth(DEFAULT_MECHANISMS, credentials)
                    .await
                    .map_err(|e| refused(format!("login refused: {e}")))?;
            }
            Ok(Conn {
                smtp: conn,
                pipelining,
                rested_since: Instant::now(),
            })
        };
        tokio::time::timeout(s.timeout, setup)
            .await
            .unwrap_or_else(|_| {
                Err(unreachable(format!(
                    "no connection within {}",
                    humantime::format_duration(s.timeout)
                )))
            })
    }

    fn tls_parameters(&self) -> Result<TlsParameters, SendError> {
        self.server.tls_parameters.clone().ok_or_else(|| {
            SendError::Account("TLS is asked for, but its settings were not built".into())
        })
    }
}

/// A TLS error in words (see [`tls_failure`]), or lettre's own.
fn tls_words(err: &lettre::transport::smtp::Error) -> String {
    tls_failure(err).unwrap_or_else(|| err.to_string())
}
