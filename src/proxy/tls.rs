//! TLS for both legs: the listener's rustls server config (mutual authentication against
//! `ca.pem`) and the client config used towards HTTPS backends.
//!
//! A client certificate must chain to `ca.pem`, and, as for any TLS client, allow
//! digitalSignature in its keyUsage and clientAuth in its extendedKeyUsage when it has them.
//!
//! The crypto provider is aws-lc-rs (rustls' default): its P-256 and X25519 take a handshake
//! in about 10% fewer instructions than *ring*'s, and it builds with only a C compiler.
//! Suites are limited to what GP Connect allows: ECDHE with AES-GCM (TLS 1.2) and the AES-GCM
//! suites of TLS 1.3; the listener offers TLS 1.3 only when `tls_versions` asks for it, as
//! Spine offers TLS 1.2 alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

// foldhash, not std's SipHash: a chain's bytes are hashed on every handshake.
use foldhash::HashMap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme, SupportedCipherSuite,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::der::{oid::AssociatedOid, Decode};
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::Certificate;

use crate::config::pem::{load_certs, load_key, load_roots, PemError};
use crate::config::settings::{ClientAuth, TlsVersions};

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
    aws_lc_rs::DEFAULT_CIPHER_SUITES
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

/// The aws-lc-rs provider restricted to the allowed suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: allowed_suites(),
        ..aws_lc_rs::default_provider()
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

/// The listener's TLS config, offering `versions`.
pub fn server_config(
    files: &ServerFiles,
    client_auth: ClientAuth,
    versions: TlsVersions,
) -> Result<Arc<ServerConfig>, TlsError> {
    let offered: Vec<&'static rustls::SupportedProtocolVersion> = [
        (versions.tls13, &rustls::version::TLS13),
        (versions.tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter_map(|(on, version)| on.then_some(version))
    .collect();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&offered)
        .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3, and settings offer at least one");
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
            builder.with_client_cert_verifier(Arc::new(ForClientAuth::new(verifier)))
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

/// The client-certificate check of check 1: webpki's chain verification against `ca.pem`
/// (which also refuses an extendedKeyUsage without clientAuth), plus the keyUsage rule webpki
/// leaves out: a certificate whose keyUsage is given must allow digitalSignature, which TLS
/// client authentication is (RFC 5280 4.2.1.3, and OpenSSL's rule for an SSL client).
/// Without a keyUsage extension a certificate is not restricted, as RFC 5280 has it.
///
/// A consumer presents the same chain on every connection, and verifying its signatures is
/// about a third of the server's work in a handshake; so a chain that passed is remembered,
/// by its certificates' bytes, with the time window all of them are valid in. Within that
/// window the same bytes pass again without their signatures checked; the signature that
/// proves the client holds the key (CertificateVerify) is checked on every handshake. Only
/// passes are remembered, so every refusal is judged, and explained, afresh.
#[derive(Debug)]
struct ForClientAuth {
    inner: Arc<dyn ClientCertVerifier>,
    passed: Mutex<HashMap<Vec<u8>, Validity>>,
}

/// How many chains are remembered; past that the memory starts again (a test suite presents
/// a handful).
const REMEMBERED_CHAINS: usize = 256;

/// The seconds since 1970 a chain is valid in: its certificates' validity periods overlap.
#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: u64,
    not_after: u64,
}

impl Validity {
    /// The overlap of the certificates' validity periods; `None` when one cannot be read.
    fn of(end_entity: &Certificate, intermediates: &[CertificateDer<'_>]) -> Option<Self> {
        let period = |c: &Certificate| {
            let v = &c.tbs_certificate.validity;
            Validity {
                not_before: v.not_before.to_unix_duration().as_secs(),
                not_after: v.not_after.to_unix_duration().as_secs(),
            }
        };
        let mut overlap = period(end_entity);
        for der in intermediates {
            let other = period(&Certificate::from_der(der.as_ref()).ok()?);
            overlap.not_before = overlap.not_before.max(other.not_before);
            overlap.not_after = overlap.not_after.min(other.not_after);
        }
        Some(overlap)
    }

    /// Whether `now` is inside, as webpki judges it: from notBefore to notAfter, both included.
    fn holds(self, now: UnixTime) -> bool {
        (self.not_before..=self.not_after).contains(&now.as_secs())
    }
}

impl ForClientAuth {
    fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self {
            inner,
            passed: Mutex::new(HashMap::default()),
        }
    }

    fn passed(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Validity>> {
        // The map is only read and written whole, so a panic elsewhere cannot leave it torn.
        self.passed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The chain's certificates, each after its length: the key a passed chain is remembered by.
fn chain_key(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Vec<u8> {
    let certs = || std::iter::once(end_entity).chain(intermediates);
    let mut key = Vec::with_capacity(certs().map(|c| c.len() + 4).sum());
    for cert in certs() {
        key.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        key.extend_from_slice(cert.as_ref());
    }
    key
}

impl ClientCertVerifier for ForClientAuth {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let key = chain_key(end_entity, intermediates);
        if self.passed().get(&key).is_some_and(|v| v.holds(now)) {
            return Ok(ClientCertVerified::assertion());
        }
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let refused = |reason| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                KeyUsageError(reason),
            ))))
        };
        let cert = Certificate::from_der(end_entity.as_ref())
            .map_err(|_| refused("the client certificate cannot be read as X.509 DER"))?;
        allows_digital_signature(&cert).map_err(refused)?;
        if let Some(validity) = Validity::of(&cert, intermediates) {
            let mut passed = self.passed();
            if passed.len() >= REMEMBERED_CHAINS {
                passed.clear();
            }
            passed.insert(key, validity);
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why a client certificate's keyUsage refuses it, for the handshake log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct KeyUsageError(&'static str);

/// Whether a certificate's keyUsage, if it has one, allows digitalSignature.
fn allows_digital_signature(cert: &Certificate) -> Result<(), &'static str> {
    let Some(extension) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == KeyUsage::OID)
    else {
        return Ok(());
    };
    let usage = KeyUsage::from_der(extension.extn_value.as_bytes())
        .map_err(|_| "the client certificate's keyUsage extension is malformed")?;
    if usage.digital_signature() {
        Ok(())
    } else {
        Err("the client certificate's keyUsage does not allow digitalSignature, which TLS client authentication needs")
    }
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
        .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3")
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
