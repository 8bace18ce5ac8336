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

use crate::config::pem::{load_certs, load_key, load_roots, PemError};
use crate::config::settings::ClientAuth;

/// Reading or using TLS material failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// rustls refused the material (e.g. a key that does not fit its certificate).
    #[error("{path}: {source}")]
    Rustls {
        /// The file the material came from.
        path: PathBuf,
        /// What rustls refused.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from `ca.pem`.
    #[error("{path}: cannot build a client verifier: {message}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// What rustls said.
        message: String,
    },
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

/// The files the listener's TLS config is made of (see `cli::certs::CertPaths`).
pub struct ServerFiles {
    /// The CA client certificates must chain to.
    pub ca: PathBuf,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// The listener's TLS config.
pub fn server_config(
    files: &ServerFiles,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3");
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required | ClientAuth::Optional => {
            let ca = files.ca.clone();
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
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|source| TlsError::Rustls {
            path: files.key.clone(),
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
