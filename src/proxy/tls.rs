//! TLS for both legs: the listener's rustls server config (mutual authentication against
//! `ca.pem`) and the client config used towards HTTPS backends.
//!
//! The crypto provider is *ring*: it builds with only a C compiler, and quickly on small
//! machines. Suites are limited to what GP Connect allows: ECDHE with AES-GCM (TLS 1.2)
//! and the AES-GCM suites of TLS 1.3.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::cli::certs::CertPaths;

/// Whether the listener asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A certificate chaining to `ca.pem` is required (as on Spine).
    Required,
    /// A certificate is verified when sent, but not required.
    Optional,
    /// No certificate is asked for.
    None,
}

/// Reading or using TLS material failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read PEM: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path}: holds no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Rustls {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{path}: cannot build a client verifier: {message}")]
    Verifier { path: PathBuf, message: String },
}

/// The suites GP Connect allows: AESGCM+EECDH (and TLS 1.3's AES-GCM).
fn allowed_suites() -> Vec<SupportedCipherSuite> {
    use rustls::CipherSuite::*;
    ring::DEFAULT_CIPHER_SUITES
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s.suite(),
                TLS13_AES_256_GCM_SHA384
                    | TLS13_AES_128_GCM_SHA256
                    | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                    | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                    | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            )
        })
        .collect()
}

/// The ring provider restricted to the allowed suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: allowed_suites(),
        ..ring::default_provider()
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A root store holding every certificate of a PEM file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// The listener's TLS config, from a certificate directory.
pub fn server_config(
    paths: &CertPaths,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3");
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required | ClientAuth::Optional => {
            let ca = paths.ca();
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(&ca)?), provider());
            let verifier = if client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::Verifier {
                path: ca.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(load_certs(&paths.server())?, load_key(&paths.server_key())?)
        .map_err(|source| TlsError::Rustls {
            path: paths.server_key(),
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config for backends: trusts the public web PKI plus `extra_roots`, and presents
/// `identity` (certificate chain, key) when given. ALPN is left to the connector.
pub fn client_config(
    extra_roots: &RootCertStore,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.roots.extend(extra_roots.roots.iter().cloned());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|source| TlsError::Rustls {
                path: key.to_owned(),
                source,
            }),
    }
}
