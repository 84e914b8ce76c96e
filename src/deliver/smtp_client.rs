//! An SMTP client on lettre's connection type, with our own small pool.
//!
//! lettre's pooled transport cannot do three things a trustworthy, fast sender needs:
//! - it cannot set `TCP_NODELAY`, and it writes a message's body and its final `.` separately,
//!   so Nagle's algorithm and the server's delayed ACK stall every message for ~40 ms;
//! - its errors do not say *when* a connection broke. Here a transaction runs in stages, so a
//!   connection lost once the message itself is being sent (after the server's 354 to DATA),
//!   before the server's final reply, is told apart (the server may have accepted the note) from
//!   one lost earlier (it cannot have);
//! - it does not pipeline (RFC 2920): with a server that offers PIPELINING, MAIL, RCPT and DATA
//!   go out together, and the message with its final dot in one write followed, when another
//!   note waits, by that note's MAIL, RCPT and DATA: a busy connection spends about one round
//!   trip per note instead of four.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::SendError;
use crate::config::smtp::Tls;

/// An idle connection is checked with NOOP before reuse once it has rested this long.
const STALE_AFTER: Duration = Duration::from_secs(30);

/// Where to connect and how to log in.
pub(crate) struct Server {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Encryption.
    pub tls: Tls,
    /// For connecting and for each reply.
    pub timeout: Duration,
    /// The EHLO name.
    pub hello: ClientId,
    /// Login, if any.
    pub credentials: Option<Credentials>,
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
}

impl Client {
    /// A client opening at most `size` connections (at least one).
    pub(crate) fn new(server: Server, size: usize) -> Client {
        let (queue, jobs) = mpsc::unbounded_channel();
        Client {
            shared: Arc::new(Shared {
                server,
                jobs: tokio::sync::Mutex::new(jobs),
                workers: AtomicUsize::new(0),
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
        mut announced: bool,
    ) -> Option<(Job, bool)> {
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
            if matches!(opened, Err(Broken::Reply(_)))
                && !tokio::time::timeout(timeout, conn.smtp.command(Rset))
                    .await
                    .is_ok_and(|reset| reset.is_ok())
            {
                *slot = None;
            }
            match opened {
                Ok(()) => break,
                // A kept connection the server dropped while it rested, or commands written
                // behind a message whose connection then broke: nothing was handed over, so
                // try once more on a fresh one rather than wait for a retry.
                Err(Broken::BeforeEnd(_)) if !fresh => {
                    *slot = None;
                    announced = false;
                }
                Err(broken) => {
                    settle(slot, job, Err(broken));
                    return None;
                }
            }
        }
        let Some(conn) = slot.as_mut() else {
            job.finish(Err(SendError::Unreachable(
                "the connection was lost".into(),
            )));
            return None;
        };
        let Ok(text) = std::str::from_utf8(&job.email) else {
            let handed = within(timeout, true, async {
                conn.smtp.message(&job.email).await.map_err(after_end)
            })
            .await;
            settle(slot, job, handed);
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
        settle(slot, job, handed);
        let announced = behind.is_some() && slot.is_some();
        next.map(|next| (next, announced))
    }

    /// A note waiting in the queue, if one is there now and no idle worker is about to take it.
    fn waiting(&self) -> Option<Job> {
        self.jobs.try_lock().ok()?.try_recv().ok()
    }

    /// A new connection: TCP with `TCP_NODELAY`, TLS as configured, EHLO and login.
    async fn connect(&self) -> Result<Conn, SendError> {
        let s = &self.server;
        let unreachable = |why: String| SendError::Unreachable(why);
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
                        .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))?;
                    Box::new(Compat(stream))
                }
                Tls::Starttls | Tls::None => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &s.hello)
                .await
                .map_err(classify)?;
            if s.tls == Tls::Starttls {
                if !conn.server_info().supports_feature(Extension::StartTls) {
                    return Err(SendError::Unreachable(
                        "the server does not offer STARTTLS; set tls = \"implicit\" or check the port".into(),
                    ));
                }
                conn.starttls(self.tls_parameters()?, &s.hello)
                    .await
                    .map_err(|e| unreachable(format!("STARTTLS failed: {e}")))?;
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
                    .map_err(classify)?;
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
        TlsParameters::new(self.server.host.clone())
            .map_err(|e| SendError::Permanent(format!("cannot set up TLS: {e}")))
    }
}

/// How a transaction went wrong.
enum Broken {
    /// The server replied with an error code.
    Reply(lettre::transport::smtp::Error),
    /// The server can never take this message (it lacks an extension the message needs).
    Refused(String),
    /// The connection failed before the message was sent: nothing was delivered.
    BeforeEnd(String),
    /// The connection failed while or after the message was sent, before the final reply.
    AfterEnd(String),
    /// Pipelined: the server refused the sender or the recipient, yet accepted DATA. The
    /// connection is dropped mid-message (so nothing arrives), not reused.
    Desync(lettre::transport::smtp::Error),
}

/// Tells the note's sender how it went, and keeps the connection only if it is still good.
fn settle(slot: &mut Option<Conn>, job: Job, outcome: Result<Response, Broken>) {
    let outcome = match outcome {
        Ok(response) => Ok(reply_text(&response)),
        Err(Broken::Reply(err)) => Err(classify(err)),
        Err(Broken::Refused(why)) => Err(SendError::Permanent(why)),
        Err(Broken::Desync(err)) => {
            *slot = None;
            Err(classify(err))
        }
        Err(Broken::BeforeEnd(why)) => {
            *slot = None;
            Err(SendError::Unreachable(why))
        }
        Err(Broken::AfterEnd(why)) => {
            *slot = None;
            Err(SendError::Ambiguous(why))
        }
    };
    match slot {
        Some(conn) if conn.smtp.has_broken() => *slot = None,
        Some(conn) => conn.rested_since = Instant::now(),
        None => {}
    }
    job.finish(outcome);
}

/// `f`, given `timeout`: past it, the connection is taken as broken, before or after the
/// message was handed over (`end_sent`).
async fn within<T>(
    timeout: Duration,
    end_sent: bool,
    f: impl std::future::Future<Output = Result<T, Broken>>,
) -> Result<T, Broken> {
    tokio::time::timeout(timeout, f).await.unwrap_or_else(|_| {
        let why = format!("no reply within {}", humantime::format_duration(timeout));
        Err(if end_sent {
            Broken::AfterEnd(why)
        } else {
            Broken::BeforeEnd(why)
        })
    })
}

/// A failure once the message itself is on its way: a reply is the server's word, anything
/// else may have come after the server took the message.
fn after_end(err: lettre::transport::smtp::Error) -> Broken {
    if err.is_transient() || err.is_permanent() {
        Broken::Reply(err)
    } else {
        Broken::AfterEnd(format!(
            "the connection broke during DATA, before the server confirmed: {err}"
        ))
    }
}

/// MAIL for the note, with the extensions its addresses and message need.
fn mail(smtp: &AsyncSmtpConnection, envelope: &Envelope, email: &[u8]) -> Result<Mail, Broken> {
    let mut options = Vec::new();
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !smtp.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Broken::Refused(
                "the address is not ASCII and the server does not support SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !email.is_ascii() {
        if !smtp.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Broken::Refused(
                "the message is not ASCII and the server does not support 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(Mail::new(envelope.from().cloned(), options))
}

/// MAIL, RCPT and DATA of a note as one pipelined group.
fn group(smtp: &AsyncSmtpConnection, job: &Job) -> Result<String, Broken> {
    let mut group = mail(smtp, &job.envelope, &job.email)?.to_string();
    for to in job.envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
    }
    group.push_str(&Data.to_string());
    Ok(group)
}

/// Opens the note's transaction: MAIL, RCPT and DATA, until the server's 354. Pipelined, the
/// replies are all read, in order, so the connection stays in step whatever the server said;
/// `announced`: the commands already went out.
async fn open(conn: &mut Conn, job: &Job, announced: bool) -> Result<(), Broken> {
    let early = |err: lettre::transport::smtp::Error| {
        if err.is_transient() || err.is_permanent() {
            Broken::Reply(err)
        } else {
            Broken::BeforeEnd(err.to_string())
        }
    };
    let smtp = &mut conn.smtp;
    if !conn.pipelining {
        smtp.command(mail(smtp, &job.envelope, &job.email)?)
            .await
            .map_err(early)?;
        for to in job.envelope.to() {
            smtp.command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(early)?;
        }
        return smtp.command(Data).await.map(drop).map_err(early);
    }
    let mut reply = if announced {
        smtp.read_response().await
    } else {
        let commands = group(smtp, job)?;
        smtp.command(Raw(&commands)).await
    };
    let mut refused = None;
    for _ in 0..job.envelope.to().len() + 1 {
        match reply {
            Ok(_) => {}
            Err(err) if err.is_transient() || err.is_permanent() => {
                refused.get_or_insert(err);
            }
            Err(err) => return Err(Broken::BeforeEnd(err.to_string())),
        }
        reply = smtp.read_response().await;
    }
    // `reply` is now DATA's.
    match (reply, refused) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(err)) => Err(Broken::Desync(err)),
        (Err(err), None) => Err(early(err)),
        (Err(_), Some(err)) => Err(Broken::Reply(err)),
    }
}

/// A message as DATA carries it (RFC 5321 4.5.2): a line starting with a dot gets a second one,
/// and a line with a lone dot ends it. The same bytes as lettre's own `message`.
fn data_block(text: &str) -> String {
    let mut block = String::with_capacity(text.len() + text.len() / 64 + 8);
    if text.starts_with('.') {
        block.push('.');
    }
    block.push_str(&text.replace("\r\n.", "\r\n.."));
    block.push_str("\r\n.\r\n");
    block
}

/// Text written to the server as it is: lettre's `command` writes any `Display` in one go.
struct Raw<'a>(&'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn reply_text(response: &Response) -> String {
    let text: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), text.join(" "))
}

/// Sorts a lettre error: 4xx → transient, 5xx → permanent, anything else → unreachable.
fn classify(err: lettre::transport::smtp::Error) -> SendError {
    if err.is_permanent() {
        SendError::Permanent(err.to_string())
    } else if err.is_transient() {
        SendError::Transient(err.to_string())
    } else {
        SendError::Unreachable(err.to_string())
    }
}

/// lettre's TLS stream speaks the `futures` I/O traits; its connection wants tokio's.
#[allow(deprecated)]
#[derive(Debug)]
struct Compat(AsyncNetworkStream);

impl AsyncTokioStream for Compat {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

impl AsyncRead for Compat {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match Pin::new(&mut self.0).poll_read(cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Compat {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::data_block;

    #[test]
    fn data_doubles_leading_dots_and_ends_with_a_lone_dot() {
        assert_eq!(
            data_block(".hidden\r\nline\r\n.\r\n..two\r\nend"),
            "..hidden\r\nline\r\n..\r\n...two\r\nend\r\n.\r\n"
        );
    }
}
