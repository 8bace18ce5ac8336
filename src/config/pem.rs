//! Reading PEM files: certificate chains, private keys and CA bundles, for the listener, the
//! backend clients and routes.toml's `client_cert`/`client_key`.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// Missing, unreadable or not PEM.
    #[error("{path}: cannot read PEM: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        message: String,
    },
    /// PEM, but without the kind of object asked for.
    #[error("{path}: holds no {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// The PEM label looked for.
        what: &'static str,
    },
    /// A certificate the root store refuses.
    #[error("{path}: {source}")]
    Root {
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },
}

/// Every certificate of a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PemError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            path: path.to_owned(),
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| PemError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A root store holding every certificate of a PEM file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| PemError::Root {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}
