//! One SMTP transaction on a connection, in stages (so a break is told apart by when it came),
//! the bytes DATA carries, how replies and errors are sorted, and the TLS stream adapter.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use lettre::address::Envelope;
// AsyncNetworkStream is lettre's TLS stream: deprecated as public API, and the only way to
// run lettre's TLS over our own TCP connection.
#[allow(deprecated)]
use lettre::transport::smtp::client::{AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Conn, Job};
use crate::deliver::SendError;
use crate::deliver::trust::tls_failure;

/// How a transaction went wrong.
pub(super) enum Broken {
    /// The server replied with an error code.
    Reply(lettre::transport::smtp::Error),
    /// The server can never take this message (it lacks an extension the message needs).
    Refused(String),
    /// The connection failed before the message was sent: nothing was delivered.
    BeforeEnd(String),
    /// TLS failed mid-session (an alert, a record that does not decrypt) before the message
    /// was sent: the server's TLS is broken, whatever the note.
    Tls(String),
    /// The connection failed while or after the message was sent, before the final reply.
    AfterEnd(String),
    /// The server refused the sender address at MAIL (see [`refuses_the_sender`]): every note
    /// would be refused alike.
    Sender(lettre::transport::smtp::Error),
    /// Pipelined: the server refused the sender or the recipient, yet accepted DATA. The
    /// connection is dropped mid-message (so nothing arrives), not reused.
    Desync(lettre::transport::smtp::Error),
}

/// Tells the note's sender how it went, and keeps the connection only if it is still good.
/// When the server (`label`) took the note, that is written beside its mark first, before the
/// connection takes its next note: a crash then finds at most one note of each connection on
/// its way without an answer.
pub(super) fn settle(
    slot: &mut Option<Conn>,
    job: Job,
    outcome: Result<Response, Broken>,
    label: &str,
) {
    let outcome = match outcome {
        Ok(response) => {
            let reply = reply_text(&response);
            job.handover.accepted(label, &reply);
            Ok(reply)
        }
        Err(Broken::Reply(err)) => Err(classify(err)),
        Err(Broken::Sender(err)) => Err(SendError::Account(format!(
            "the sender address is refused: {err}"
        ))),
        Err(Broken::Refused(why)) => Err(SendError::Permanent(why)),
        Err(Broken::Desync(err)) => {
            *slot = None;
            Err(classify(err))
        }
        Err(Broken::BeforeEnd(why)) => {
            *slot = None;
            Err(SendError::Lost(why))
        }
        Err(Broken::Tls(why)) => {
            *slot = None;
            Err(SendError::Account(format!("the TLS session broke: {why}")))
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
pub(super) async fn within<T>(
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
pub(super) fn after_end(err: lettre::transport::smtp::Error) -> Broken {
    if err.is_transient() || err.is_permanent() {
        Broken::Reply(err)
    } else {
        Broken::AfterEnd(format!(
            "the connection broke during DATA, before the server confirmed: {err}"
        ))
    }
}

/// MAIL for the note, with the extensions its addresses and message need.
pub(super) fn mail(
    smtp: &AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<Mail, Broken> {
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
pub(super) fn group(smtp: &AsyncSmtpConnection, job: &Job) -> Result<String, Broken> {
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
pub(super) async fn open(conn: &mut Conn, job: &Job, announced: bool) -> Result<(), Broken> {
    let early = |err: lettre::transport::smtp::Error| {
        if err.is_transient() || err.is_permanent() {
            Broken::Reply(err)
        } else {
            cut(&err)
        }
    };
    let smtp = &mut conn.smtp;
    if !conn.pipelining {
        smtp.command(mail(smtp, &job.envelope, &job.email)?)
            .await
            .map_err(|err| at_mail(err, early))?;
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
    let mut sender = false;
    for at in 0..job.envelope.to().len() + 1 {
        match reply {
            Ok(_) => {}
            Err(err) if err.is_transient() || err.is_permanent() => {
                // The first reply is MAIL's.
                sender |= at == 0 && refuses_the_sender(&err);
                refused.get_or_insert(err);
            }
            Err(err) => return Err(cut(&err)),
        }
        reply = smtp.read_response().await;
    }
    // `reply` is now DATA's.
    match (reply, refused) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(err)) if sender => Err(Broken::Sender(err)),
        (Ok(_), Some(err)) => Err(Broken::Desync(err)),
        (Err(err), None) => Err(early(err)),
        (Err(_), Some(err)) if sender => Err(Broken::Sender(err)),
        (Err(_), Some(err)) => Err(Broken::Reply(err)),
    }
}

/// A connection that failed before the message went: TLS broken, or simply cut.
fn cut(err: &lettre::transport::smtp::Error) -> Broken {
    match tls_failure(err) {
        Some(why) => Broken::Tls(why),
        None => Broken::BeforeEnd(err.to_string()),
    }
}

/// MAIL's error: the sender's own (see [`refuses_the_sender`]) or as `early` sorts it.
fn at_mail(
    err: lettre::transport::smtp::Error,
    early: impl Fn(lettre::transport::smtp::Error) -> Broken,
) -> Broken {
    if refuses_the_sender(&err) {
        Broken::Sender(err)
    } else {
        early(err)
    }
}

/// Whether a refusal of MAIL is about rekindle as a sender rather than this one message: 530
/// (authentication required), 553 (sender address not allowed), or a permanent reply whose
/// enhanced status code (RFC 3463) is 5.7.x (policy, authentication) or 5.1.7/5.1.8 (a bad
/// sender address or domain). A refusal at RCPT (5.1.x) is the recipient's.
pub(super) fn refuses_the_sender(err: &lettre::transport::smtp::Error) -> bool {
    let code = err.status().map(|c| c.to_string());
    if matches!(code.as_deref(), Some("530" | "553")) {
        return true;
    }
    err.is_permanent()
        && enhanced_status(&err.to_string()).is_some_and(|(class, subject, detail)| {
            class == 5 && (subject == 7 || (subject == 1 && matches!(detail, 7 | 8)))
        })
}

/// The first enhanced status code (RFC 3463, `class.subject.detail`) in a reply's text.
pub(super) fn enhanced_status(text: &str) -> Option<(u16, u16, u16)> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find_map(|word| {
            let mut parts = word.split('.');
            let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || !matches!(class, "2" | "4" | "5") {
                return None;
            }
            Some((
                class.parse().ok()?,
                subject.parse().ok()?,
                detail.parse().ok()?,
            ))
        })
}

/// A message as DATA carries it (RFC 5321 4.5.2): a line starting with a dot gets a second one,
/// and a line with a lone dot ends it. The same bytes as lettre's own `message`.
pub(super) fn data_block(text: &str) -> String {
    let mut block = String::with_capacity(text.len() + text.len() / 64 + 8);
    if text.starts_with('.') {
        block.push('.');
    }
    // In one pass, not a copy with the dots doubled and then a copy of that.
    let mut rest = 0;
    for (at, _) in text.match_indices("\r\n.") {
        block.push_str(&text[rest..at + 3]);
        block.push('.');
        rest = at + 3;
    }
    block.push_str(&text[rest..]);
    block.push_str("\r\n.\r\n");
    block
}

/// Text written to the server as it is: lettre's `command` writes any `Display` in one go.
pub(super) struct Raw<'a>(pub(super) &'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(super) fn reply_text(response: &Response) -> String {
    let text: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), text.join(" "))
}

/// Sorts a lettre error: 4xx → transient, 5xx → permanent, anything else → unreachable.
pub(super) fn classify(err: lettre::transport::smtp::Error) -> SendError {
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
pub(super) struct Compat(pub(super) AsyncNetworkStream);

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
    use super::{data_block, enhanced_status};

    #[test]
    fn the_enhanced_status_code_is_read_from_the_reply() {
        assert_eq!(
            enhanced_status("permanent error (535): 5.7.8 Authentication credentials invalid"),
            Some((5, 7, 8))
        );
        assert_eq!(
            enhanced_status("permanent error (550): 5.1.1 <a@b.example>: no such user"),
            Some((5, 1, 1))
        );
        assert_eq!(
            enhanced_status("permanent error (550): mailbox unavailable, v1.2.3.4"),
            None
        );
        assert_eq!(enhanced_status("550 no code here"), None);
    }

    #[test]
    fn data_doubles_leading_dots_and_ends_with_a_lone_dot() {
        assert_eq!(
            data_block(".hidden\r\nline\r\n.\r\n..two\r\nend"),
            "..hidden\r\nline\r\n..\r\n...two\r\nend\r\n.\r\n"
        );
        // Dotted lines one after the other, and one last.
        assert_eq!(
            data_block("a\r\n.\r\n.b\r\n."),
            "a\r\n..\r\n..b\r\n..\r\n.\r\n"
        );
        assert_eq!(data_block("no dots"), "no dots\r\n.\r\n");
    }
}
