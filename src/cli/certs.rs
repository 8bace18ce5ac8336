//! The dev PKI: a CA, a server certificate and a consumer client certificate, as PEM files
//! that `serve --certs DIR` reads back (users may bring their own with the same names).

use crate::proxy::tls::ServerFiles;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// The host name the dev client certificate names unless `--client-fqdn` gives another.
pub const DEFAULT_CLIENT_FQDN: &str = "consumer.ssp-sim.localhost";

/// Certificate generation or loading failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file or the directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// rcgen could not make a key or certificate.
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The directory holds some of the five files but not all: mixing sets would not chain.
    #[error("{dir} holds {present} but not {missing}; run `ssp-sim certs --dir {dir} --force` for a fresh set, or add the missing files")]
    Incomplete {
        /// The certificate directory.
        dir: String,
        /// The files found, comma-separated.
        present: String,
        /// The files missing, comma-separated.
        missing: String,
    },
    /// `certs` without `--force` found files it would overwrite.
    #[error("{dir} already holds certificates; add --force to replace them")]
    Exists {
        /// The certificate directory.
        dir: String,
    },
}

/// The five files of a certificate directory.
#[derive(Debug, Clone)]
pub struct CertPaths {
    /// The directory holding the five files.
    pub dir: PathBuf,
}

impl CertPaths {
    /// The files the listener's TLS config is made of.
    pub fn server_files(&self) -> ServerFiles {
        ServerFiles {
            ca: self.ca(),
            cert: self.server(),
            key: self.server_key(),
        }
    }

    /// The set in `dir`; nothing is read or written until asked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `ca.pem`: the CA client certificates must chain to; HTTPS backends are trusted by it too.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// `server.pem`: the HTTPS listener's certificate chain.
    pub fn server(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    /// `server-key.pem`: the HTTPS listener's private key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    /// `client.pem`: a consumer certificate the CA signed, for curl and the tests.
    pub fn client(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    /// `client-key.pem`: the private key of `client.pem`.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }

    fn all(&self) -> [PathBuf; 5] {
        [
            self.ca(),
            self.server(),
            self.server_key(),
            self.client(),
            self.client_key(),
        ]
    }

    /// Generates a set when the directory has none; refuses a partial set.
    /// Returns whether it generated.
    pub fn ensure(&self) -> Result<bool, CertError> {
        let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) =
            self.all().into_iter().partition(|p| p.exists());
        if missing.is_empty() {
            return Ok(false);
        }
        if !present.is_empty() {
            let names = |v: &[PathBuf]| {
                v.iter()
                    .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(CertError::Incomplete {
                dir: self.dir.display().to_string(),
                present: names(&present),
                missing: names(&missing),
            });
        }
        self.generate(&[], None, true)?;
        Ok(true)
    }

    /// Writes a fresh CA, server and client certificate. The server certificate names
    /// localhost, 127.0.0.1 and ::1, plus `extra_sans`; the client certificate names
    /// `client_fqdn` (as its DNS name and common name), or `consumer.ssp-sim.localhost`.
    pub fn generate(
        &self,
        extra_sans: &[String],
        client_fqdn: Option<&str>,
        force: bool,
    ) -> Result<(), CertError> {
        if !force && self.all().iter().any(|p| p.exists()) {
            return Err(CertError::Exists {
                dir: self.dir.display().to_string(),
            });
        }
        fs::create_dir_all(&self.dir).map_err(|source| CertError::Io {
            path: self.dir.clone(),
            source,
        })?;

        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("ssp-sim development CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut sans = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        sans.extend(extra_sans.iter().cloned());
        let mut server_params = CertificateParams::new(sans)?;
        server_params.distinguished_name = name("localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server = server_params.signed_by(&server_key, &ca)?;

        // Spine issues consumer certificates to the endpoint FQDN registered for the ASID; a
        // consumer with an `fqdn` in routes.toml needs one naming it (check 5b).
        let client_name = client_fqdn.unwrap_or(DEFAULT_CLIENT_FQDN);
        let mut client_params = CertificateParams::new(vec![client_name.to_owned()])?;
        client_params.distinguished_name = name(client_name);
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // As NHS PKI issues them, and as the listener asks of every client certificate.
        client_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let client_key = KeyPair::generate()?;
        let client = client_params.signed_by(&client_key, &ca)?;

        write(&self.ca(), &ca.pem(), false)?;
        write(&self.server(), &server.pem(), false)?;
        write(&self.server_key(), &server_key.serialize_pem(), true)?;
        write(&self.client(), &client.pem(), false)?;
        write(&self.client_key(), &client_key.serialize_pem(), true)?;
        Ok(())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "ssp-sim");
    dn
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_generates_once_and_refuses_partial_sets() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CertPaths::new(dir.path());
        assert!(paths.ensure().unwrap());
        assert!(!paths.ensure().unwrap());
        fs::remove_file(paths.client()).unwrap();
        let err = paths.ensure().unwrap_err().to_string();
        assert!(err.contains("but not client.pem"), "{err}");
        assert!(err.contains("--force"), "{err}");
    }

    #[test]
    fn generate_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CertPaths::new(dir.path());
        paths.generate(&[], None, false).unwrap();
        assert!(matches!(
            paths.generate(&[], None, false),
            Err(CertError::Exists { .. })
        ));
        paths.generate(&["ssp.test".into()], None, true).unwrap();
    }
}
