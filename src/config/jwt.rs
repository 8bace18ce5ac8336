//! How check 10 is configured: the process-wide mode and clock skew, an endpoint's own mode,
//! and the public key an endpoint verifies signed JWTs with (`jwt_key` in routes.toml), for
//! APIs whose tokens are signed rather than GP Connect 1.x's unsigned ones.

use std::path::Path;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// What check 10 does with broken rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JwtMode {
    /// Refuse the request, as a provider would.
    #[default]
    Enforce,
    /// Forward it, listing what failed in the `Ssp-Sim-Warnings` header and the logs.
    Report,
    /// Skip check 10.
    Off,
}

/// The process-wide settings of check 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Used for endpoints that do not set their own `jwt_mode`.
    pub mode: JwtMode,
    /// Leeway on `exp`, in seconds: a token is refused as expired this long after its `exp`.
    pub clock_skew_s: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: JwtMode::Enforce,
            clock_skew_s: 30,
        }
    }
}

/// A provider endpoint's own check-10 settings, from its `[[provider.endpoint]]` table.
#[derive(Debug, Default)]
pub struct EndpointJwt {
    /// Overrides the process-wide mode for this endpoint.
    pub mode: Option<JwtMode>,
    /// Set for signed-JWT APIs: tokens must then be signed and verify with it.
    pub key: Option<DecodingKey>,
}

/// Why a `jwt_key` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file as named in routes.toml.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file holds no public key `jsonwebtoken` can verify with.
    #[error("{path} is not a PEM public key for RSA, EC (P-256, P-384) or Ed25519 signatures; write the key as `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC KEY-----`")]
    NotAKey {
        /// The file as named in routes.toml.
        path: String,
    },
}

/// Reads a PEM public key; the key's type decides which `alg` values it verifies.
pub fn load(path: &Path) -> Result<DecodingKey, KeyError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: shown.clone(),
        source,
    })?;
    DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| KeyError::NotAKey { path: shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::AlgorithmFamily;

    #[test]
    fn ec_and_ed25519_public_keys_load_with_their_family() {
        let dir = tempfile::tempdir().unwrap();
        for (alg, family) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, AlgorithmFamily::Ec),
            (&rcgen::PKCS_ED25519, AlgorithmFamily::Ed),
        ] {
            let pair = rcgen::KeyPair::generate_for(alg).unwrap();
            let path = dir.path().join("key.pem");
            std::fs::write(&path, pair.public_key_pem()).unwrap();
            assert_eq!(load(&path).unwrap().family(), family);
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("key.pem is not a PEM public key"), "{err}");
        assert!(load(&dir.path().join("absent.pem"))
            .unwrap_err()
            .to_string()
            .starts_with("cannot read"));
    }
}
