//! Which certificates rekindle trusts when it talks TLS to a mail server, and why a TLS session
//! failed, in words.
//!
//! By default: the system's trust store (on Debian, `/etc/ssl/certs` from `ca-certificates`,
//! where an administrator adds a corporate CA with `update-ca-certificates`; `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` point elsewhere), read once per process. Where the machine has none, the CAs
//! built into rekindle (webpki-roots). A server's `ca_file` (PEM) replaces both for that server:
//! a private CA. The certificate's name is checked against `host`, or `tls_server_name`. There
//! is no switch that accepts any certificate.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[allow(deprecated)]
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, TlsParameters, TlsParametersBuilder,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, RootCertStore};

use crate::config::smtp::{SmtpConfig, SmtpSetupError};

/// The certificates one server's TLS is checked against.
pub(crate) struct Trust {
    source: Source,
    roots: Vec<CertificateDer<'static>>,
}

enum Source {
    System,
    Bundled,
    CaFile(PathBuf),
}

impl Trust {
    /// The trust for `cfg`: its `ca_file` when set (read now), else the system's store, else
    /// the bundled CAs.
    pub(crate) fn for_server(cfg: &SmtpConfig, base_dir: &Path) -> Result<Trust, SmtpSetupError> {
        Trust::with_ca_file(cfg.ca_path(base_dir))
            .map_err(|(path, why)| SmtpSetupError::CaFile { path, why })
    }

    /// The trust for a server with this `ca_file`, if any (read now); the error names the file
    /// and what is wrong with it.
    pub(crate) fn with_ca_file(ca_file: Option<PathBuf>) -> Result<Trust, (PathBuf, String)> {
        if let Some(path) = ca_file {
            let roots = read_ca_file(&path).map_err(|why| (path.clone(), why))?;
            return Ok(Trust {
                source: Source::CaFile(path),
                roots,
            });
        }
        let system = system_roots();
        Ok(if system.is_empty() {
            Trust {
                source: Source::Bundled,
                roots: Vec::new(),
            }
        } else {
            Trust {
                source: Source::System,
                roots: system.to_vec(),
            }
        })
    }

    /// What is trusted, for `check` and the log.
    pub(crate) fn describe(&self) -> String {
        let n = self.roots.len();
        match &self.source {
            Source::System => format!("the system's trust store ({n} CA{})", plural(n)),
            Source::Bundled => "the CAs built into rekindle (webpki-roots): this machine has no trust store; install ca-certificates to use the system's".to_string(),
            Source::CaFile(path) => format!("ca_file {} ({n} CA{})", path.display(), plural(n)),
        }
    }

    /// Whether only the bundled CAs are trusted (worth a warning).
    pub(crate) fn is_bundled(&self) -> bool {
        matches!(self.source, Source::Bundled)
    }

    /// rustls's client settings, for the IMAP mailboxes (lettre builds its own for SMTP).
    pub(crate) fn client_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
        let mut store = RootCertStore::empty();
        match self.source {
            Source::Bundled => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Source::System | Source::CaFile(_) => {
                store.add_parsable_certificates(self.roots.iter().cloned());
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(std::sync::Arc::new(config))
    }

    /// lettre's TLS settings for a server whose certificate must carry `name`.
    pub(crate) fn parameters(&self, name: &str) -> Result<TlsParameters, SmtpSetupError> {
        let builder = TlsParametersBuilder::new(name.to_string());
        let builder = match self.source {
            Source::Bundled => builder.certificate_store(CertificateStore::WebpkiRoots),
            Source::System | Source::CaFile(_) => self
                .roots
                .iter()
                .filter_map(|der| Certificate::from_der(der.to_vec()).ok())
                .fold(
                    builder.certificate_store(CertificateStore::None),
                    TlsParametersBuilder::add_root_certificate,
                ),
        };
        builder.build_rustls().map_err(|e| SmtpSetupError::CaFile {
            path: match &self.source {
                Source::CaFile(path) => path.clone(),
                _ => PathBuf::from("(the system's trust store)"),
            },
            why: e.to_string(),
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The CA certificates in a PEM file: at least one, each usable as a trust anchor.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("it is not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err("it holds no certificate".into());
    }
    for (i, cert) in certs.iter().enumerate() {
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| format!("certificate #{} cannot be read ({e})", i + 1))?;
    }
    Ok(certs)
}

/// The system's CA certificates, read once; those rustls cannot use are left out.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a certificate of the system's trust store was not read");
        }
        found
            .certs
            .into_iter()
            .filter(|c| RootCertStore::empty().add(c.clone()).is_ok())
            .collect()
    })
}

/// Why TLS failed, in words and with what to do, when `err` (or what caused it) is a TLS error.
pub(crate) fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        let found = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = found {
            return Some(describe(tls));
        }
        next = e.source();
    }
    None
}

fn describe(err: &rustls::Error) -> String {
    use CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => format!(
                "the server's certificate is signed by a CA rekindle does not trust ({err}); if the server uses a private CA, set ca_file to the CA's certificate (PEM), or add it to the system's trust store"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the server's certificate is for another name ({err}); connect by a name on the certificate, or set tls_server_name to it"
            ),
            C::Expired | C::ExpiredContext { .. } => format!(
                "the server's certificate has expired ({err}); the server's administrator must renew it (or this machine's clock is wrong)"
            ),
            C::NotValidYet | C::NotValidYetContext { .. } => format!(
                "the server's certificate is not valid yet ({err}); check this machine's clock"
            ),
            _ => format!("the server's certificate is not acceptable ({err})"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("the server ended TLS with an alert ({alert:?})")
        }
        rustls::Error::DecryptError => "a TLS record from the server could not be decrypted: its TLS broke, or something on the path changed the data".to_string(),
        _ => format!("TLS failed: {err}"),
    }
}
