//! A TLS front for Postfix's `smtp-sink`, which speaks no TLS: it answers the greeting, EHLO
//! and STARTTLS itself, takes the TLS handshake (or, for implicit TLS, takes it first), then
//! relays the decrypted session to the sink (whose own greeting it swallows after a STARTTLS).
//! With `Mode::Plain` it relays without TLS, so the bench can show what the extra hop alone
//! costs. Certificates come from a CA made for the run (rcgen), whose PEM rekindle trusts
//! through `ca_file`.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The name on the front's certificate (rekindle's `tls_server_name`).
pub const NAME: &str = "sink.bench.test";

/// How the front talks to rekindle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS: a plain relay.
    Plain,
    /// STARTTLS on a plaintext connection.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// A running front; it stops when dropped.
pub struct Front {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl Front {
    /// Starts a front on a free port of 127.0.0.1 relaying to the sink on `sink`.
    pub fn start(sink: u16, mode: Mode, tls: Arc<rustls::ServerConfig>) -> Result<Front, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()
            .map_err(|e| format!("front runtime: {e}"))?;
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("front bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("front address: {e}"))?
            .port();
        let acceptor = TlsAcceptor::from(tls);
        runtime.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = conn.set_nodelay(true);
                    let _ = serve(conn, sink, mode, acceptor).await;
                });
            }
        });
        Ok(Front {
            port,
            _runtime: runtime,
        })
    }

    /// The port rekindle connects to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn serve(
    mut conn: TcpStream,
    sink: u16,
    mode: Mode,
    tls: TlsAcceptor,
) -> std::io::Result<()> {
    let mut up = TcpStream::connect(("127.0.0.1", sink)).await?;
    up.set_nodelay(true)?;
    match mode {
        Mode::Plain => relay(&mut conn, &mut up).await,
        Mode::Implicit => relay(&mut tls.accept(conn).await?, &mut up).await,
        Mode::StartTls => {
            conn.write_all(b"220 front ESMTP\r\n").await?;
            let mut lines = BufReader::new(&mut conn);
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let verb = line
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-front\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
                    "STARTTLS" => b"220 2.0.0 Ready to start TLS\r\n",
                    _ => b"530 5.7.0 Must issue a STARTTLS command first\r\n",
                };
                lines.get_mut().write_all(reply).await?;
                if verb == "STARTTLS" {
                    break;
                }
            }
            // The sink's own greeting was for a session rekindle has already begun.
            let mut greeting = BufReader::new(&mut up);
            line.clear();
            greeting.read_line(&mut line).await?;
            relay(&mut tls.accept(conn).await?, &mut up).await
        }
    }
}

async fn relay(
    a: &mut (impl AsyncRead + AsyncWrite + Unpin),
    b: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> std::io::Result<()> {
    tokio::io::copy_bidirectional(a, b).await.map(drop)
}

/// A CA for the run, and the front's TLS configuration with a certificate it signed for
/// [`NAME`]: (the CA's PEM, the configuration).
pub fn certificates() -> Result<(String, Arc<rustls::ServerConfig>), String> {
    let err = |e: rcgen::Error| format!("certificates: {e}");
    let mut ca = CertificateParams::new(Vec::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![NAME.to_string()]).map_err(err)?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(err)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key)
    .map_err(|e| format!("TLS config: {e}"))?;
    Ok((ca_cert.pem(), Arc::new(config)))
}
