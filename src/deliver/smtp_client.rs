//! An SMTP client on lettre's connection type, with our own small pool.
//!
//! lettre's pooled transport cannot do two things a trustworthy sender needs:
//! - it cannot set `TCP_NODELAY`, and it writes a message's body and its final `.` separately,
//!   so Nagle's algorithm and the server's delayed ACK stall every message for ~40 ms;
//! - its errors do not say *when* a connection broke. Here a transaction runs in stages, so a
//!   connection lost once the message itself is being sent (after the server's 354 to DATA),
//!   before the server's final reply, is told apart (the server may have accepted the note) from
//!   one lost earlier (it cannot have).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::SendError;
use super::smtp::Tls;

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

/// Connections to one server: at most `size` open, idle ones kept for the next message.
pub(crate) struct Client {
    server: Server,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: tokio::sync::Semaphore,
}

impl Client {
    /// A client opening at most `size` connections (at least one).
    pub(crate) fn new(server: Server, size: usize) -> Client {
        Client {
            server,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(size.max(1)),
        }
    }

    /// Sends `email` (already formatted) to the envelope's recipients: Ok is the server's reply.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<String, SendError> {
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(SendError::Unreachable(
                "the connection pool is closed".into(),
            ));
        };
        let (mut conn, mut reused) = match self.reuse().await {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        let outcome = loop {
            let outcome = self.attempt(&mut conn, envelope, email).await;
            match outcome {
                // A kept connection the server dropped while it was idle: nothing was handed
                // over, so try once more on a fresh one rather than wait for a retry.
                Err(Broken::BeforeEnd(_)) if reused => {
                    conn = self.connect().await?;
                    reused = false;
                }
                outcome => break outcome,
            }
        };
        match outcome {
            Ok(response) => {
                self.keep(conn);
                Ok(reply_text(&response))
            }
            Err(Broken::Reply(err)) => {
                // The server said no; the connection is still good once reset.
                if conn.command(Rset).await.is_ok() {
                    self.keep(conn);
                }
                Err(classify(err))
            }
            Err(Broken::Refused(why)) => Err(SendError::Permanent(why)),
            Err(Broken::BeforeEnd(why)) => Err(SendError::Unreachable(why)),
            Err(Broken::AfterEnd(why)) => Err(SendError::Ambiguous(why)),
        }
    }

    /// One transaction on `conn`, within the timeout.
    async fn attempt(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<Response, Broken> {
        let timeout = self.server.timeout;
        let mut end_sent = false;
        tokio::time::timeout(timeout, transaction(conn, envelope, email, &mut end_sent))
            .await
            .unwrap_or_else(|_| {
                let why = format!("no reply within {}", humantime::format_duration(timeout));
                Err(if end_sent {
                    Broken::AfterEnd(why)
                } else {
                    Broken::BeforeEnd(why)
                })
            })
    }

    /// An idle connection, checked with NOOP if it rested long.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            if since.elapsed() < STALE_AFTER || conn.test_connected().await {
                return Some(conn);
            }
        }
    }

    fn keep(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
    }

    /// A new connection: TCP with `TCP_NODELAY`, TLS as configured, EHLO and login.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
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
            if let Some(credentials) = &s.credentials {
                conn.auth(DEFAULT_MECHANISMS, credentials)
                    .await
                    .map_err(classify)?;
            }
            Ok(conn)
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
}

/// MAIL, RCPT, DATA and the message, as lettre's own `send` does, but telling the stages apart.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
    end_sent: &mut bool,
) -> Result<Response, Broken> {
    let early = |err: lettre::transport::smtp::Error| {
        if err.is_transient() || err.is_permanent() {
            Broken::Reply(err)
        } else {
            Broken::BeforeEnd(err.to_string())
        }
    };
    let mut options = Vec::new();
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Broken::Refused(
                "the address is not ASCII and the server does not support SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !email.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Broken::Refused(
                "the message is not ASCII and the server does not support 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(early)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(early)?;
    }
    conn.command(Data).await.map_err(early)?;
    // lettre writes the body, then the final dot, then reads the reply. A network error from
    // here on may come after the server took the message: assume it might have.
    *end_sent = true;
    conn.message(email).await.map_err(|err| {
        if err.is_transient() || err.is_permanent() {
            Broken::Reply(err)
        } else {
            Broken::AfterEnd(format!(
                "the connection broke during DATA, before the server confirmed: {err}"
            ))
        }
    })
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
