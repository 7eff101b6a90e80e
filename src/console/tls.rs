//! `--http-tls-cert` / `--http-tls-key`: the rustls server config `--http` serves with.

use crate::config::ConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Reads the certificate chain and key; a file that cannot be read or holds no usable PEM
/// is a start error naming the flag.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ConfigError> {
    let refuse = |flag: &str, path: &Path, why: String| ConfigError::Value {
        key: flag.into(),
        message: format!("{}: {why}", path.display()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            refuse(
                "--http-tls-cert",
                cert,
                format!("no PEM certificates ({e})"),
            )
        })?;
    if certs.is_empty() {
        return Err(refuse(
            "--http-tls-cert",
            cert,
            "holds no CERTIFICATE block".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| refuse("--http-tls-key", key, format!("no PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refuse("--http-tls-cert", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            refuse(
                "--http-tls-key",
                key,
                format!("does not go with --http-tls-cert: {e}"),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
