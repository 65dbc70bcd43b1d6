//! The TLS listener's configuration: rustls with ring, the server
//! certificate and key from PEM files, and client certificates required
//! and checked against the CA (libvirt's `tls_no_verify_certificate = 0`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing or malformed.
    #[error(
        "cannot load '{path}': {msg} (set cert_file, key_file and ca_file in the configuration)"
    )]
    Pem {
        /// The file.
        path: String,
        /// Why.
        msg: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

fn pem(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// A TLS acceptor for the daemon.
pub fn acceptor(cert: &Path, key: &Path, ca: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| pem(ca, e))? {
        roots
            .add(c.map_err(|e| pem(ca, e))?)
            .map_err(|e| pem(ca, e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    // libvirt's client reads the one-byte confirmation as the first record
    // after the handshake; a TLS 1.3 session ticket there makes GnuTLS
    // report EAGAIN ("Unable to read TLS confirmation"). Sessions are not
    // resumed anyway.
    config.send_tls13_tickets = 0;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
