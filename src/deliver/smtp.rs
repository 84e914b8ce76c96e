//! The SMTP transport: lettre's SMTP connections over rustls (no OpenSSL), pooled by
//! [`super::smtp_client`].
//!
//! `[transport.smtp]` in the config. The password is read from a file (also from systemd's
//! `$CREDENTIALS_DIRECTORY`) or an environment variable when the transport is built, and never
//! appears in a log line, an error or a Debug print.

use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;

use super::smtp_client::{Client, Server};
use super::trust::Trust;
use super::{Handover, SendError};
use crate::config::smtp::{SmtpConfig, SmtpSetupError, Tls, password};

/// The SMTP transport to one server.
pub(crate) struct SmtpTransport {
    client: Client,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("server", &self.label())
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport, reading the password and the certificates TLS trusts. `base_dir`
    /// resolves a relative password or CA file. Connects lazily, on the first note.
    /// `has_fallback`: another server follows this one.
    pub(crate) fn new(
        cfg: &SmtpConfig,
        base_dir: &Path,
        has_fallback: bool,
    ) -> Result<Self, SmtpSetupError> {
        let timeout = cfg
            .timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(30));
        let credentials = password(cfg, base_dir)?
            .map(|password| Credentials::new(cfg.username.clone().unwrap_or_default(), password));
        let label = cfg.label();
        let tls = match cfg.tls {
            Tls::None => None,
            Tls::Starttls | Tls::Implicit => {
                // A machine without a trust store is warned about by the loading checks (`check`,
                // each start and reload), not here a second time.
                let trust = Trust::for_server(cfg, base_dir)?;
                tracing::debug!(server = %label, trust = %trust.describe(), "TLS certificates are checked against these CAs");
                Some(trust.parameters(cfg.certificate_name())?)
            }
        };
        let server = Server {
            host: cfg.host.clone(),
            port: cfg.port(),
            tls: cfg.tls,
            tls_parameters: tls,
            timeout,
            hello: cfg
                .helo_name
                .clone()
                .map_or_else(ClientId::default, ClientId::Domain),
            credentials,
            has_fallback,
            label: label.into(),
        };
        Ok(SmtpTransport {
            client: Client::new(server, cfg.pool_size.unwrap_or(4) as usize),
        })
    }

    /// "host:port", for logs.
    pub(crate) fn label(&self) -> &str {
        self.client.label()
    }

    /// Sends one message to its one recipient. Ok is the server's reply.
    pub(crate) async fn send(
        &self,
        message: &lettre::Message,
        handover: &std::sync::Arc<Handover>,
    ) -> Result<String, SendError> {
        self.client
            .send(message.envelope(), message.formatted(), handover.clone())
            .await
    }
}

/// The integration tests' SMTP server, shared with the unit tests below.
#[cfg(test)]
#[path = "../../tests/support/smtp_server.rs"]
mod smtp_server;

#[cfg(test)]
mod tests {
    use super::smtp_server::{Reply, TestSmtpServer};
    use lettre::Message;
    use lettre::message::MultiPart;

    use super::*;
    use crate::config::smtp::Tls;

    fn local(port: u16) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            tls: Tls::None,
            allow_plaintext: false,
            username: None,
            password_file: None,
            password_env: None,
            timeout: Some("5s".into()),
            pool_size: None,
            helo_name: None,
            ca_file: None,
            tls_server_name: None,
        }
    }

    fn message() -> Message {
        Message::builder()
            .from("Rosemary <rosemary@bakery.example>".parse().expect("from"))
            .to("Ann <ann@example.com>".parse().expect("to"))
            .subject("Ann, I'm sorry — really")
            .message_id(Some("<abc.rekindle@bakery.example>".into()))
            .multipart(MultiPart::alternative_plain_html(
                "Hi Ann, the bread was burnt.".to_string(),
                "<p>Hi Ann, the bread was &lt;burnt&gt;.</p>".to_string(),
            ))
            .expect("message")
    }

    #[tokio::test]
    async fn a_note_reaches_a_real_server() {
        let server = TestSmtpServer::start();
        let smtp =
            SmtpTransport::new(&local(server.port()), Path::new("."), false).expect("transport");
        let reply = smtp
            .send(&message(), &Default::default())
            .await
            .expect("sent");
        assert!(reply.starts_with("250"), "{reply}");
        let got = server.wait_for(1, Duration::from_secs(5));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, ["ann@example.com"]);
        assert_eq!(
            got[0].message_id().as_deref(),
            Some("<abc.rekindle@bakery.example>")
        );
        assert_eq!(got[0].subject().as_deref(), Some("Ann, I'm sorry — really"));
        assert_eq!(got[0].text_body(), "Hi Ann, the bread was burnt.");
        assert_eq!(
            got[0].html_body().as_deref(),
            Some("<p>Hi Ann, the bread was &lt;burnt&gt;.</p>")
        );
    }

    /// Each note's answer is beside its mark before the connection takes the next note, so a
    /// crash finds at most one note of a connection on its way without an answer.
    #[tokio::test]
    async fn the_answer_is_marked_before_the_connection_takes_its_next_note() {
        let server = TestSmtpServer::start().pipelining();
        let dir = tempfile::tempdir().expect("dir");
        let outbox = crate::outbox::Outbox::open(&dir.path().join("s.sqlite")).expect("open");
        let marks = std::sync::Arc::new(outbox.handed_over().expect("marks"));
        let one_connection = SmtpConfig {
            pool_size: Some(1),
            ..local(server.port())
        };
        let smtp = std::sync::Arc::new(
            SmtpTransport::new(&one_connection, Path::new("."), false).expect("transport"),
        );
        let sends: Vec<_> = (1..=3)
            .map(|id| {
                let (smtp, marks) = (smtp.clone(), marks.clone());
                tokio::spawn(async move {
                    let handover = std::sync::Arc::new(Handover::new(id, 1, Some(marks)));
                    smtp.send(&message(), &handover).await
                })
            })
            .collect();
        for send in sends {
            assert!(send.await.expect("joined").is_ok());
        }
        let text = std::fs::read_to_string(dir.path().join("s.sqlite-handed")).expect("marks");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        for pair in lines.chunks(2) {
            let id = pair[0].split(' ').next().unwrap_or_default();
            assert_eq!(pair[0], format!("{id} 1"), "{text}");
            assert!(
                pair[1].starts_with(&format!("{id} 1 sent 127.0.0.1:{}: 250", server.port())),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn replies_are_classified_transient_or_permanent() {
        let server = TestSmtpServer::with_replies(|n| {
            if n == 0 {
                Reply::Transient
            } else {
                Reply::Permanent
            }
        });
        let smtp =
            SmtpTransport::new(&local(server.port()), Path::new("."), false).expect("transport");
        match smtp.send(&message(), &Default::default()).await {
            Err(SendError::Transient(text)) => assert!(text.contains("451"), "{text}"),
            other => panic!("expected a transient failure, got {other:?}"),
        }
        match smtp.send(&message(), &Default::default()).await {
            Err(SendError::Permanent(text)) => {
                assert!(text.contains("mailbox does not exist"), "{text}")
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
        assert!(server.received().is_empty());
    }

    #[tokio::test]
    async fn nobody_listening_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let smtp = SmtpTransport::new(&local(port), Path::new("."), false).expect("transport");
        assert!(matches!(
            smtp.send(&message(), &Default::default()).await,
            Err(SendError::Unreachable(_))
        ));
    }

    #[test]
    fn plaintext_is_for_loopback_unless_allowed() {
        let remote = SmtpConfig {
            host: "mail.example.com".into(),
            ..local(25)
        };
        assert_eq!(remote.problems().len(), 1);
        assert!(remote.problems()[0].contains("plaintext"));
        assert!(
            SmtpConfig {
                allow_plaintext: true,
                ..remote.clone()
            }
            .problems()
            .is_empty()
        );
        assert!(local(25).problems().is_empty());
        assert!(
            SmtpConfig {
                host: "localhost".into(),
                ..local(25)
            }
            .problems()
            .is_empty()
        );
        let both = SmtpConfig {
            password_env: Some("X".into()),
            password_file: Some("p".into()),
            ..local(25)
        };
        assert_eq!(
            both.problems(),
            ["both password_file and password_env are set; keep one"]
        );
    }

    #[tokio::test]
    async fn the_password_is_read_from_a_file_and_never_shown() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("pw"), "s3cret-hunter2\n").expect("write");
        let cfg = SmtpConfig {
            username: Some("rosemary".into()),
            password_file: Some("pw".into()),
            ..local(25)
        };
        assert_eq!(
            password(&cfg, dir.path()).expect("read").as_deref(),
            Some("s3cret-hunter2")
        );
        let transport = SmtpTransport::new(&cfg, dir.path(), false).expect("transport");
        assert!(!format!("{transport:?}").contains("hunter2"));
        let missing = SmtpConfig {
            password_file: Some("nope".into()),
            ..cfg
        };
        let err = SmtpTransport::new(&missing, dir.path(), false).expect_err("missing file");
        assert!(
            err.to_string()
                .contains("cannot read the SMTP password file"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }
}
