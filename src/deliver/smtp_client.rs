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
//!   go out together and the message with its final dot in one write, so a note costs two round
//!   trips instead of four.

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
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
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

/// An open connection, and whether its server lets us pipeline.
struct Conn {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

/// Connections to one server: at most `size` open, idle ones kept for the next message.
pub(crate) struct Client {
    server: Server,
    idle: Mutex<Vec<(Conn, Instant)>>,
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
                if conn.smtp.command(Rset).await.is_ok() {
                    self.keep(conn);
                }
                Err(classify(err))
            }
            // The server took DATA although it refused the sender or the recipient: the
            // connection is closed mid-message, so nothing can arrive.
            Err(Broken::Desync(err)) => Err(classify(err)),
            Err(Broken::Refused(why)) => Err(SendError::Permanent(why)),
            Err(Broken::BeforeEnd(why)) => Err(SendError::Unreachable(why)),
            Err(Broken::AfterEnd(why)) => Err(SendError::Ambiguous(why)),
        }
    }

    /// One transaction on `conn`, within the timeout.
    async fn attempt(
        &self,
        conn: &mut Conn,
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
    async fn reuse(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            if since.elapsed() < STALE_AFTER || conn.smtp.test_connected().await {
                return Some(conn);
            }
        }
    }

    fn keep(&self, conn: Conn) {
        if !conn.smtp.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
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

/// MAIL, RCPT, DATA and the message, as lettre's own `send` does, but telling the stages apart
/// and pipelining them when the server allows.
async fn transaction(
    conn: &mut Conn,
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
    let smtp = &mut conn.smtp;
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
    let mail = Mail::new(envelope.from().cloned(), options);
    if conn.pipelining {
        // One write; then every reply is read, in order, so the connection stays in step
        // whatever the server said.
        let mut group = mail.to_string();
        for to in envelope.to() {
            group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        group.push_str(&Data.to_string());
        let mut refused = None;
        let mut reply = smtp.command(Raw(&group)).await;
        for _ in 0..envelope.to().len() + 1 {
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
            (Ok(_), None) => {}
            (Ok(_), Some(err)) => return Err(Broken::Desync(err)),
            (Err(err), None) => return Err(early(err)),
            (Err(_), Some(err)) => return Err(Broken::Reply(err)),
        }
    } else {
        smtp.command(mail).await.map_err(early)?;
        for to in envelope.to() {
            smtp.command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(early)?;
        }
        smtp.command(Data).await.map_err(early)?;
    }
    // A network error from here on may come after the server took the message: assume it might
    // have.
    *end_sent = true;
    let sent = match std::str::from_utf8(email) {
        // The message, dot-stuffed, and its final dot in one write.
        Ok(text) => smtp.command(Raw(&data_block(text))).await,
        Err(_) => smtp.message(email).await,
    };
    sent.map_err(|err| {
        if err.is_transient() || err.is_permanent() {
            Broken::Reply(err)
        } else {
            Broken::AfterEnd(format!(
                "the connection broke during DATA, before the server confirmed: {err}"
            ))
        }
    })
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
