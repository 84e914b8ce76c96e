//! The SMTP transport: lettre's SMTP connections over rustls (no OpenSSL), pooled by
//! [`super::smtp_client`].
//!
//! `[transport.smtp]` in the config. The password is read from a file (also from systemd's
//! `$CREDENTIALS_DIRECTORY`) or an environment variable when the transport is built, and never
//! appears in a log line, an error or a Debug print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use serde::Deserialize;

use super::SendError;
use super::smtp_client::{Client, Server};

/// `[transport.smtp]`: where and how to reach the SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmtpConfig {
    /// The server's host name.
    pub host: String,
    /// The port; default 587 with STARTTLS, 465 with implicit TLS, 25 without TLS.
    pub port: Option<u16>,
    /// "starttls" (default), "implicit" or "none".
    #[serde(default)]
    pub tls: Tls,
    /// Plaintext to a host other than localhost is refused unless this is true.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// The login name, if the server wants one.
    pub username: Option<String>,
    /// A file holding the password (relative names are also looked up in
    /// `$CREDENTIALS_DIRECTORY`).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// How long to wait for a connection or a reply, e.g. "30s".
    pub timeout: Option<String>,
    /// The most connections kept open to the server (default 4).
    pub pool_size: Option<u32>,
    /// The name given in EHLO (default: this machine's host name).
    pub helo_name: Option<String>,
}

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Tls {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No encryption: only for localhost, or with `allow_plaintext = true`.
    None,
}

impl SmtpConfig {
    /// Problems a pure reading of the settings finds (no I/O), each saying what to do.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tls == Tls::None && !self.allow_plaintext && !is_loopback(&self.host) {
            problems.push(format!(
                "tls = \"none\" would send notes and the password in plaintext to {}; use \"starttls\" or \"implicit\", or set allow_plaintext = true if the network is trusted",
                self.host
            ));
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            problems.push("both password_file and password_env are set; keep one".to_string());
        }
        if self.username.is_some() && self.password_file.is_none() && self.password_env.is_none() {
            problems.push(
                "username is set but no password source; set password_file or password_env"
                    .to_string(),
            );
        }
        if let Some(t) = &self.timeout
            && humantime::parse_duration(t).is_err()
        {
            problems.push(format!("invalid timeout {t:?}; write e.g. \"30s\""));
        }
        if self.pool_size == Some(0) {
            problems.push("pool_size = 0 would never connect; use 1 or more".to_string());
        }
        problems
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::Starttls => 587,
            Tls::Implicit => 465,
            Tls::None => 25,
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why the transport could not be built. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SmtpSetupError {
    /// The password file could not be read.
    #[error(
        "cannot read the SMTP password file {path}: {source}; check password_file (and LoadCredential= under systemd)"
    )]
    PasswordFile {
        /// Where we looked.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The password variable is not set.
    #[error("the environment variable {0} (password_env) is not set")]
    PasswordEnv(String),
}

/// The SMTP transport to one server.
pub(crate) struct SmtpTransport {
    client: Client,
    label: String,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("server", &self.label)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport, reading the password. `base_dir` resolves a relative password file.
    /// Connects lazily, on the first note.
    pub(crate) fn new(cfg: &SmtpConfig, base_dir: &Path) -> Result<Self, SmtpSetupError> {
        let timeout = cfg
            .timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(30));
        let credentials = password(cfg, base_dir)?
            .map(|password| Credentials::new(cfg.username.clone().unwrap_or_default(), password));
        let server = Server {
            host: cfg.host.clone(),
            port: cfg.port(),
            tls: cfg.tls,
            timeout,
            hello: cfg
                .helo_name
                .clone()
                .map_or_else(ClientId::default, ClientId::Domain),
            credentials,
        };
        Ok(SmtpTransport {
            client: Client::new(server, cfg.pool_size.unwrap_or(4) as usize),
            label: format!("{}:{}", cfg.host, cfg.port()),
        })
    }

    /// "host:port", for logs.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Sends one message to its one recipient. Ok is the server's reply.
    pub(crate) async fn send(&self, message: &lettre::Message) -> Result<String, SendError> {
        self.client
            .send(message.envelope(), message.formatted())
            .await
    }
}

impl SmtpConfig {
    /// Checks that the password can be read, as `run` would, without keeping it.
    pub(crate) fn check_password(&self, base_dir: &Path) -> Result<(), SmtpSetupError> {
        password(self, base_dir).map(drop)
    }

    /// A warning when the password file can be read by every user on the machine.
    pub(crate) fn password_file_warning(&self, base_dir: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = password_path(self, base_dir)?;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        (mode & 0o004 != 0).then(|| {
            format!(
                "the SMTP password file {} is readable by every user on this machine; run `chmod 600` on it (or use LoadCredential=)",
                path.display()
            )
        })
    }
}

/// Where the password file is: a relative name is looked up in systemd's
/// `$CREDENTIALS_DIRECTORY` first (LoadCredential=), then next to the config.
fn password_path(cfg: &SmtpConfig, base_dir: &Path) -> Option<PathBuf> {
    let file = cfg.password_file.as_ref()?;
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|_| file.is_relative())
        .map(|dir| PathBuf::from(dir).join(file))
        .filter(|p| p.exists());
    Some(credential.unwrap_or_else(|| base_dir.join(file)))
}

/// The password from `password_file` or `password_env`, trailing newline trimmed.
fn password(cfg: &SmtpConfig, base_dir: &Path) -> Result<Option<String>, SmtpSetupError> {
    if let Some(var) = &cfg.password_env {
        return std::env::var(var)
            .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|_| SmtpSetupError::PasswordEnv(var.clone()));
    }
    let Some(path) = password_path(cfg, base_dir) else {
        return Ok(None);
    };
    std::fs::read_to_string(&path)
        .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
        .map_err(|source| SmtpSetupError::PasswordFile { path, source })
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
        let smtp = SmtpTransport::new(&local(server.port()), Path::new(".")).expect("transport");
        let reply = smtp.send(&message()).await.expect("sent");
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

    #[tokio::test]
    async fn replies_are_classified_transient_or_permanent() {
        let server = TestSmtpServer::with_replies(|n| {
            if n == 0 {
                Reply::Transient
            } else {
                Reply::Permanent
            }
        });
        let smtp = SmtpTransport::new(&local(server.port()), Path::new(".")).expect("transport");
        match smtp.send(&message()).await {
            Err(SendError::Transient(text)) => assert!(text.contains("451"), "{text}"),
            other => panic!("expected a transient failure, got {other:?}"),
        }
        match smtp.send(&message()).await {
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
        let smtp = SmtpTransport::new(&local(port), Path::new(".")).expect("transport");
        assert!(matches!(
            smtp.send(&message()).await,
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
        let transport = SmtpTransport::new(&cfg, dir.path()).expect("transport");
        assert!(!format!("{transport:?}").contains("hunter2"));
        let missing = SmtpConfig {
            password_file: Some("nope".into()),
            ..cfg
        };
        let err = SmtpTransport::new(&missing, dir.path()).expect_err("missing file");
        assert!(
            err.to_string()
                .contains("cannot read the SMTP password file"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }
}
