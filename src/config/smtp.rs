//! `[transport.smtp]`: where and how to reach an SMTP server, checked without I/O, and where
//! its password is read from (a file, also from systemd's `$CREDENTIALS_DIRECTORY`, or an
//! environment variable). The password never appears in a log line, an error or a Debug print.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// A PEM file with the CA certificate(s) to trust for this server instead of the system's
    /// trust store (a private CA). Relative names are next to the config file.
    pub ca_file: Option<toml::Spanned<PathBuf>>,
    /// The name the server's certificate must carry, when it is not `host` (connecting by IP).
    pub tls_server_name: Option<String>,
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
        for (key, value) in [("helo_name", &self.helo_name), ("username", &self.username)] {
            if let Some(value) = value
                && value.chars().any(char::is_control)
            {
                problems.push(format!(
                    "{key} {value:?} contains a line break or another control character, which cannot go into an SMTP command; write it on one line"
                ));
            }
        }
        problems.extend(server_name_problem(self.tls_server_name.as_deref()));
        if self.tls == Tls::None && (self.ca_file.is_some() || self.tls_server_name.is_some()) {
            problems.push(
                "ca_file and tls_server_name are for TLS, but tls = \"none\"; set tls = \"starttls\" or \"implicit\", or remove them".to_string(),
            );
        }
        if self.pool_size == Some(0) {
            problems.push("pool_size = 0 would never connect; use 1 or more".to_string());
        }
        problems
    }

    pub(crate) fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::Starttls => 587,
            Tls::Implicit => 465,
            Tls::None => 25,
        })
    }
}

/// The name a server's certificate must carry: `tls_server_name`, or else `host` (an IPv6
/// address without its brackets). SMTP servers and IMAP mailboxes alike.
pub(crate) fn certificate_name<'a>(tls_server_name: Option<&'a str>, host: &'a str) -> &'a str {
    tls_server_name.unwrap_or(host.trim_matches(['[', ']']))
}

/// What is wrong with a `tls_server_name`, if it is not a name a certificate can carry.
pub(crate) fn server_name_problem(tls_server_name: Option<&str>) -> Option<String> {
    let name = tls_server_name?;
    rustls::pki_types::ServerName::try_from(name).is_err().then(|| {
        format!(
            "tls_server_name {name:?} is not a host name; write the name on the server's certificate, e.g. \"mail.example.com\""
        )
    })
}

/// Whether `host` is this machine (plaintext to it stays on the machine).
pub(crate) fn is_loopback(host: &str) -> bool {
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
    /// The CA file cannot be read or holds no usable certificate.
    #[error(
        "cannot use the ca_file {path}: {why}; give a PEM file with the CA's certificate (-----BEGIN CERTIFICATE-----)"
    )]
    CaFile {
        /// Where we looked.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The password variable is not set.
    #[error("the environment variable {0} (password_env) is not set")]
    PasswordEnv(String),
}

impl SmtpConfig {
    /// Checks that the password can be read, as `run` would, without keeping it.
    pub(crate) fn check_password(&self, base_dir: &Path) -> Result<(), SmtpSetupError> {
        password(self, base_dir).map(drop)
    }

    /// Where `ca_file` is: a relative name is next to the config (`base_dir`).
    pub(crate) fn ca_path(&self, base_dir: &Path) -> Option<PathBuf> {
        self.ca_file.as_ref().map(|f| base_dir.join(f.get_ref()))
    }

    /// The name the server's certificate must carry: `tls_server_name`, or else `host`.
    pub(crate) fn certificate_name(&self) -> &str {
        certificate_name(self.tls_server_name.as_deref(), &self.host)
    }

    /// "host:port", for logs and messages.
    pub(crate) fn label(&self) -> String {
        format!("{}:{}", self.host, self.port())
    }

    /// A warning when the password file can be read by every user on the machine.
    pub(crate) fn password_file_warning(&self, base_dir: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = password_path(self.password_file.as_ref(), base_dir)?;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        (mode & 0o004 != 0).then(|| {
            format!(
                "the SMTP password file {} is readable by every user on this machine; run `chmod 600` on it (or use LoadCredential=)",
                path.display()
            )
        })
    }
}

/// Where a password file is: a relative name is looked up in systemd's `$CREDENTIALS_DIRECTORY`
/// first (LoadCredential=), then next to the config (`base_dir`, the config file's directory).
/// The name is kept as written until here, so it is resolved once.
pub(crate) fn password_path(file: Option<&PathBuf>, base_dir: &Path) -> Option<PathBuf> {
    let file = file?;
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|_| file.is_relative())
        .map(|dir| PathBuf::from(dir).join(file))
        .filter(|p| p.exists());
    Some(credential.unwrap_or_else(|| base_dir.join(file)))
}

/// Why a password could not be read (never the password itself).
#[derive(Debug)]
pub(crate) enum PasswordError {
    /// The file could not be read.
    File(PathBuf, std::io::Error),
    /// The variable is not set.
    Env(String),
}

/// A password from a file (see [`password_path`]) or an environment variable, trailing newline
/// trimmed; the SMTP servers and the inbound IMAP mailboxes read theirs alike.
pub(crate) fn read_password(
    file: Option<&PathBuf>,
    env: Option<&String>,
    base_dir: &Path,
) -> Result<Option<String>, PasswordError> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|_| PasswordError::Env(var.clone()));
    }
    let Some(path) = password_path(file, base_dir) else {
        return Ok(None);
    };
    std::fs::read_to_string(&path)
        .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
        .map_err(|source| PasswordError::File(path, source))
}

/// The SMTP password from `password_file` or `password_env`.
pub(crate) fn password(
    cfg: &SmtpConfig,
    base_dir: &Path,
) -> Result<Option<String>, SmtpSetupError> {
    read_password(
        cfg.password_file.as_ref(),
        cfg.password_env.as_ref(),
        base_dir,
    )
    .map_err(|e| match e {
        PasswordError::File(path, source) => SmtpSetupError::PasswordFile { path, source },
        PasswordError::Env(var) => SmtpSetupError::PasswordEnv(var),
    })
}
