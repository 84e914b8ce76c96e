//! `[inbound]`, typed: the mailboxes rekindle reads for what comes back (bounces, complaints, replies,
//! unsubscribe requests), with the checks of one IMAP source (the section as written is in `raw`,
//! its checks in `validate`). The IMAP password is read like the SMTP
//! one (a file, also from systemd's `$CREDENTIALS_DIRECTORY`, or an environment variable) and
//! never printed.

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::Deserialize;

use super::smtp::{
    PasswordError, Tls, certificate_name, is_loopback, read_password, server_name_problem,
};

/// `[[inbound.imap]]`: one IMAP mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImapConfig {
    /// Its name in `status` and the log (default: "username@host").
    pub name: Option<String>,
    /// The server's host name.
    pub host: String,
    /// The port; default 993 with implicit TLS, 143 with STARTTLS or none.
    pub port: Option<u16>,
    /// "implicit" (default), "starttls" or "none".
    #[serde(default = "implicit")]
    pub tls: Tls,
    /// Plaintext to a host other than localhost is refused unless this is true.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// The login name.
    pub username: String,
    /// A file holding the password.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// The folders read (default: INBOX).
    #[serde(default = "inbox")]
    pub folders: Vec<String>,
    /// Where a handled message is moved (created if missing); by default it stays.
    pub move_to: Option<String>,
    /// Use IMAP IDLE where the server offers it (default true); else poll.
    #[serde(default = "yes")]
    pub idle: bool,
    /// A PEM file with the CA certificate(s) to trust instead of the system's store.
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not `host`.
    pub tls_server_name: Option<String>,
    /// How long to wait for the server, e.g. "60s".
    #[serde(default = "minute")]
    pub timeout: String,
}

fn implicit() -> Tls {
    Tls::Implicit
}

fn inbox() -> Vec<String> {
    vec!["INBOX".to_string()]
}

fn yes() -> bool {
    true
}

fn minute() -> String {
    "60s".to_string()
}

/// What rekindle reads for what comes back, and what it does then.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    /// The mailboxes, in file order (none when `[inbound]` is absent).
    pub sources: Vec<Source>,
    /// How long other notes to a customer wait after their reply.
    pub hold_after_reply: SignedDuration,
    /// Soft bounces within `soft_bounce_window` that suppress an address.
    pub soft_bounce_limit: u32,
    /// The window soft bounces are counted in.
    pub soft_bounce_window: SignedDuration,
    /// How often a source without IDLE is read.
    pub poll: SignedDuration,
    /// A larger message is classified by its headers alone.
    pub max_message_bytes: u64,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            sources: Vec::new(),
            hold_after_reply: SignedDuration::from_hours(72),
            soft_bounce_limit: 3,
            soft_bounce_window: SignedDuration::from_hours(30 * 24),
            poll: SignedDuration::from_mins(5),
            max_message_bytes: 10 * 1024 * 1024,
        }
    }
}

/// One mailbox rekindle reads.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// An IMAP mailbox.
    Imap(ImapConfig),
    /// A local maildir.
    Maildir {
        /// Its name in `status` and the log.
        name: String,
        /// The directory.
        dir: PathBuf,
    },
}

impl Source {
    /// Its name, which also keys what rekindle remembers of it.
    pub(crate) fn name(&self) -> String {
        match self {
            Source::Imap(cfg) => cfg.name(),
            Source::Maildir { name, .. } => name.clone(),
        }
    }
}

impl ImapConfig {
    /// Its name: `name`, else "username@host".
    pub(crate) fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.username, self.host))
    }

    /// The port: `port`, else IMAP's for the TLS mode.
    pub(crate) fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::Implicit => 993,
            Tls::Starttls | Tls::None => 143,
        })
    }

    /// How long to wait for the server.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        humantime::parse_duration(&self.timeout).unwrap_or(std::time::Duration::from_secs(60))
    }

    /// The name the server's certificate must carry.
    pub(crate) fn certificate_name(&self) -> &str {
        certificate_name(self.tls_server_name.as_deref(), &self.host)
    }

    /// The password, from `password_file` or `password_env`; the error says which and what to do.
    pub(crate) fn password(&self, base_dir: &Path) -> Result<String, String> {
        match read_password(
            self.password_file.as_ref(),
            self.password_env.as_ref(),
            base_dir,
        ) {
            Ok(Some(password)) => Ok(password),
            Ok(None) => Err(format!(
                "[[inbound.imap]] {}: no password_file or password_env",
                self.name()
            )),
            Err(PasswordError::File(path, e)) => Err(format!(
                "cannot read the IMAP password file {} of {}: {e}; check password_file (and LoadCredential= under systemd)",
                path.display(),
                self.name()
            )),
            Err(PasswordError::Env(var)) => Err(format!(
                "the environment variable {var} (password_env of {}) is not set",
                self.name()
            )),
        }
    }

    /// Problems a pure reading of the settings finds, each saying what to do.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tls == Tls::None && !self.allow_plaintext && !is_loopback(&self.host) {
            problems.push(format!(
                "tls = \"none\" would send the mailbox's password in plaintext to {}; use \"implicit\" or \"starttls\", or set allow_plaintext = true if the network is trusted",
                self.host
            ));
        }
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => {
                problems.push("both password_file and password_env are set; keep one".into())
            }
            (None, None) => {
                problems.push("no password source; set password_file or password_env".into())
            }
            _ => {}
        }
        if humantime::parse_duration(&self.timeout).is_err() {
            problems.push(format!(
                "invalid timeout {:?}; write e.g. \"60s\"",
                self.timeout
            ));
        }
        if self.folders.is_empty() {
            problems.push("folders is empty; name at least one, e.g. [\"INBOX\"]".into());
        }
        let named = std::iter::once(&self.username)
            .chain(&self.folders)
            .chain(&self.move_to);
        for value in named {
            if value.chars().any(char::is_control) || value.contains('"') {
                problems.push(format!(
                    "{value:?} contains a quote, a line break or another control character, which cannot go into an IMAP command"
                ));
            }
        }
        if let Some(to) = &self.move_to
            && self.folders.iter().any(|f| f.eq_ignore_ascii_case(to))
        {
            problems.push(format!(
                "move_to {to:?} is also read (folders); move handled mail to a folder rekindle does not read"
            ));
        }
        problems.extend(server_name_problem(self.tls_server_name.as_deref()));
        problems
    }
}
