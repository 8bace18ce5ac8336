//! How `serve` is configured: built-in defaults < `ssp-sim.toml` < `SSP_SIM_*` environment
//! variables < command-line flags, layered with the `config` crate and validated once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::config::jwt::{JwtMode, Policy};
use crate::config::problems::{ConfigError, Problem};
use crate::config::store::StoreUrl;

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

/// The TLS versions the HTTPS listener offers (`tls_versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    /// TLS 1.2, which the GP Connect security page mandates (*"suppliers SHALL use TLS1.2"*).
    pub tls12: bool,
    /// TLS 1.3, which Spine's SSP did not offer.
    pub tls13: bool,
}

impl TlsVersions {
    /// What Spine offers: TLS 1.2 only.
    pub const SPINE: TlsVersions = TlsVersions {
        tls12: true,
        tls13: false,
    };

    /// Reads a comma-separated list of `1.2` and `1.3`; `None` for anything else or nothing.
    pub fn parse(text: &str) -> Option<Self> {
        let mut versions = TlsVersions {
            tls12: false,
            tls13: false,
        };
        for version in text.split(',').map(str::trim) {
            match version {
                "1.2" => versions.tls12 = true,
                "1.3" => versions.tls13 = true,
                _ => return None,
            }
        }
        Some(versions)
    }
}

/// How many faults may be installed at once unless `max_faults` says otherwise.
pub const DEFAULT_MAX_FAULTS: usize = 1000;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// The settings file read when `--config` is not given (optional).
pub const DEFAULT_FILE: &str = "ssp-sim.toml";

/// Values as the layers give them, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    routes: Option<PathBuf>,
    certs: PathBuf,
    listen: String,
    client_auth: ClientAuth,
    http_listen: Option<String>,
    admin_listen: String,
    log_format: LogFormat,
    backend_timeout_ms: u64,
    spine_latency_ms: u64,
    tls_versions: String,
    header_timeout_ms: u64,
    max_connections: usize,
    max_handshakes: usize,
    write_timeout_ms: u64,
    backend_body_timeout_ms: u64,
    max_faults: usize,
    error_catalog: Option<PathBuf>,
    interactions: Option<PathBuf>,
    jwt_mode: JwtMode,
    jwt_clock_skew_s: u64,
    journal_size: usize,
    journal_details: bool,
    metrics: bool,
    admin_token: Option<String>,
    store: Option<String>,
    store_timeout_ms: u64,
    replica_name: Option<String>,
    workers: Option<usize>,
}

/// More connection threads than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

/// Validated settings of `serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// routes.toml; `None` means `./routes.toml`, or the embedded copy when that is missing.
    pub routes: Option<PathBuf>,
    /// The certificate directory: the server's TLS files and the CA client certificates must chain to.
    pub certs: PathBuf,
    /// Where the HTTPS listener (the SSP itself) binds.
    pub listen: SocketAddr,
    /// Whether the HTTPS listener asks for a client certificate (check 1).
    pub client_auth: ClientAuth,
    /// The plain HTTP listener for tools that cannot do TLS; `None` when off.
    pub http_listen: Option<SocketAddr>,
    /// The admin API's address; `None` when `off`.
    pub admin_listen: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How long a backend may take to answer before the request gets 504 `gateway-timeout`.
    pub backend_timeout: Duration,
    /// Added before each request reaches the provider, as Spine's own transit time; zero is off.
    pub spine_latency: Duration,
    /// The TLS versions the HTTPS listener offers.
    pub tls_versions: TlsVersions,
    /// How long a client has to send its request headers; also the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// Established client sessions open at once, per listener.
    pub max_connections: usize,
    /// TLS handshakes in progress at once, per listener, apart from `max_connections`.
    pub max_handshakes: usize,
    /// How long a write to a client may make no progress before the connection is closed.
    pub write_timeout: Duration,
    /// The longest a backend's whole response body may take.
    pub backend_body_timeout: Duration,
    /// How many faults may be installed at once.
    pub max_faults: usize,
    /// `None` means `./error-catalog`, or the embedded copy when that is missing.
    pub error_catalog: Option<PathBuf>,
    /// `None` means `./catalog/interactions.toml`, or the embedded copy when that is missing.
    pub interactions: Option<PathBuf>,
    /// Check 10 (the provider-side checks): mode and clock skew (leeway on `exp`).
    pub provider_checks: Policy,
    /// How many recent requests the journal keeps; 0 turns it off.
    pub journal_size: usize,
    /// Whether the journal also keeps each request's headers, decoded JWT and error payload
    /// (personal data: off unless asked for).
    pub journal_details: bool,
    /// Whether requests are counted for `GET /metrics`.
    pub metrics: bool,
    /// When set, the admin API asks for `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// The Redis that replicas share state through; `None` keeps everything in this process.
    pub store: Option<StoreUrl>,
    /// The longest a request waits on the store (a fault's count, a rate limit) before it
    /// goes on as if the store were down.
    pub store_timeout: Duration,
    /// This replica's name in the journal and metrics; `None` means the host name and the
    /// HTTPS port, chosen once the listener is bound.
    pub replica_name: Option<String>,
    /// How many threads serve the consumer-facing connections, each with its own runtime:
    /// `None` is one per core, `Some(0)` the shared work-stealing runtime.
    pub workers: Option<usize>,
}

/// Flag values; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--routes`.
    pub routes: Option<PathBuf>,
    /// `--certs`.
    pub certs: Option<PathBuf>,
    /// `--listen`, unparsed: validation names the flag when it is not an address.
    pub listen: Option<String>,
    /// `--client-auth`.
    pub client_auth: Option<ClientAuth>,
    /// `--http-listen`, unparsed (`off` is allowed).
    pub http_listen: Option<String>,
    /// `--admin-listen`, unparsed (`off` is allowed).
    pub admin_listen: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--backend-timeout-ms`, in milliseconds.
    pub backend_timeout_ms: Option<u64>,
    /// `--spine-latency-ms`, in milliseconds.
    pub spine_latency_ms: Option<u64>,
    /// `--tls-versions`, unparsed: validation names the flag when it is wrong.
    pub tls_versions: Option<String>,
    /// `--jwt-mode`.
    pub jwt_mode: Option<JwtMode>,
    /// `--jwt-clock-skew-s`, in seconds.
    pub jwt_clock_skew_s: Option<u64>,
    /// `--journal-size`, in requests.
    pub journal_size: Option<usize>,
    /// `--metrics`.
    pub metrics: Option<bool>,
    /// `--store`, unparsed: validation names the flag when it is wrong.
    pub store: Option<String>,
    /// `--store-timeout-ms`, in milliseconds.
    pub store_timeout_ms: Option<u64>,
    /// `--replica-name`.
    pub replica_name: Option<String>,
    /// `--workers`.
    pub workers: Option<usize>,
}

fn path_string(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

impl Settings {
    /// Layers the sources. `file` is the settings file (`None`: `./ssp-sim.toml` if present);
    /// `env` the process environment (only `SSP_SIM_*` keys are read).
    pub fn load(
        file: Option<&Path>,
        env: HashMap<String, String>,
        flags: &Overrides,
    ) -> Result<Self, ConfigError> {
        let (file_path, required) = match file {
            Some(path) => (path.to_owned(), true),
            None => (PathBuf::from(DEFAULT_FILE), false),
        };
        let shown = file_path.display().to_string();
        let layered = (|| {
            Config::builder()
                .set_default("certs", "certs")?
                .set_default("listen", "127.0.0.1:8443")?
                .set_default("client_auth", "required")?
                .set_default("admin_listen", "127.0.0.1:8444")?
                .set_default("log_format", "text")?
                .set_default("backend_timeout_ms", 30_000)?
                .set_default("spine_latency_ms", 0)?
                .set_default("tls_versions", "1.2")?
                .set_default("header_timeout_ms", 30_000)?
                .set_default("max_connections", 4096)?
                .set_default("max_handshakes", 256)?
                .set_default("write_timeout_ms", 30_000)?
                .set_default("backend_body_timeout_ms", 300_000)?
                .set_default("max_faults", DEFAULT_MAX_FAULTS as u64)?
                .set_default("jwt_mode", "enforce")?
                .set_default("jwt_clock_skew_s", Policy::default().clock_skew_s)?
                .set_default("journal_size", 1000)?
                .set_default("journal_details", false)?
                .set_default("metrics", true)?
                .set_default("store_timeout_ms", 50)?
                .add_source(File::from(file_path.as_path()).format(FileFormat::Toml).required(required))
                .add_source(Environment::with_prefix("SSP_SIM").prefix_separator("_").try_parsing(true).source(Some(env)))
                .set_override_option("routes", path_string(&flags.routes))?
                .set_override_option("certs", path_string(&flags.certs))?
                .set_override_option("listen", flags.listen.clone())?
                .set_override_option("client_auth", flags.client_auth.map(|c| format!("{c:?}").to_lowercase()))?
                .set_override_option("http_listen", flags.http_listen.clone())?
                .set_override_option("admin_listen", flags.admin_listen.clone())?
                .set_override_option("log_format", flags.log_format.map(|c| format!("{c:?}").to_lowercase()))?
                .set_override_option("backend_timeout_ms", flags.backend_timeout_ms)?
                .set_override_option("spine_latency_ms", flags.spine_latency_ms)?
                .set_override_option("tls_versions", flags.tls_versions.clone())?
                .set_override_option("jwt_mode", flags.jwt_mode.map(|m| format!("{m:?}").to_lowercase()))?
                .set_override_option("jwt_clock_skew_s", flags.jwt_clock_skew_s)?
                .set_override_option("journal_size", flags.journal_size.map(|n| n as u64))?
                .set_override_option("metrics", flags.metrics)?
                .set_override_option("store", flags.store.clone())?
                .set_override_option("store_timeout_ms", flags.store_timeout_ms)?
                .set_override_option("replica_name", flags.replica_name.clone())?
                .set_override_option("workers", flags.workers.map(|n| n as u64))?
                .build()?
                .try_deserialize::<Raw>()
        })()
        .map_err(|e| {
            ConfigError::file(
                &shown,
                format!("{e} (settings come from defaults, then {shown}, then SSP_SIM_* variables, then flags)"),
            )
        })?;
        Self::validate(layered, &shown)
    }

    /// What is allowed but risky, for `ssp-sim check` and the start-up log: a listener
    /// reachable beyond this machine that serves consumers without client certificates.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.listen.ip().is_loopback() && self.client_auth != ClientAuth::Required {
            warnings.push(format!(
                "listen: {} is reachable beyond this machine and client_auth is {}: anyone who \
                 can reach it is served without a client certificate; use client_auth = \"required\" \
                 or listen on 127.0.0.1",
                self.listen,
                format!("{:?}", self.client_auth).to_lowercase()
            ));
        }
        if let Some(addr) = self.http_listen.filter(|a| !a.ip().is_loopback()) {
            warnings.push(format!(
                "http_listen: {addr} is reachable beyond this machine and plain HTTP has no \
                 client certificates: anyone who can reach it is served; listen on 127.0.0.1 or \
                 leave http_listen off"
            ));
        }
        warnings
    }

    fn validate(raw: Raw, shown: &str) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut addr = |key: &str, text: &str| -> Option<SocketAddr> {
            match text.parse() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(Problem {
                        file: shown.to_owned(),
                        line: None,
                        key: Some(key.to_owned()),
                        message: format!("`{text}` is not an address; write IP:PORT, e.g. 127.0.0.1:8443 (flag --{}, variable SSP_SIM_{})", key.replace('_', "-"), key.to_uppercase()),
                    });
                    None
                }
            }
        };
        let listen = addr("listen", &raw.listen);
        let http_listen = match raw.http_listen.as_deref() {
            None | Some("off") => None,
            Some(text) => addr("http_listen", text),
        };
        let admin_listen = match raw.admin_listen.as_str() {
            "off" => None,
            text => addr("admin_listen", text),
        };
        let tls_versions = TlsVersions::parse(&raw.tls_versions);
        if tls_versions.is_none() {
            problems.push(Problem {
                file: shown.to_owned(),
                line: None,
                key: Some("tls_versions".into()),
                message: format!(
                    "`{}` is not a list of TLS versions ssp-sim offers; write \"1.2\" (what GP Connect mandates, the default) or \"1.2,1.3\" (flag --tls-versions, variable SSP_SIM_TLS_VERSIONS)",
                    raw.tls_versions
                ),
            });
        }
        // Faults and reloads change what the simulator answers: beyond this machine, only
        // someone holding the token may use them.
        if admin_listen.is_some_and(|a| !a.ip().is_loopback()) && raw.admin_token.is_none() {
            problems.push(Problem {
                file: shown.to_owned(),
                line: None,
                key: Some("admin_token".into()),
                message: "the admin API listens beyond loopback; set admin_token (in the settings file or SSP_SIM_ADMIN_TOKEN) or listen on 127.0.0.1".into(),
            });
        }
        if raw.admin_token.as_deref() == Some("") {
            problems.push(Problem {
                file: shown.to_owned(),
                line: None,
                key: Some("admin_token".into()),
                message: "is empty; give a secret, or leave it out".into(),
            });
        }
        let store = raw
            .store
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|text| match StoreUrl::parse(text) {
                Ok(url) => Some(url),
                Err(message) => {
                    problems.push(Problem {
                        file: shown.to_owned(),
                        line: None,
                        key: Some("store".into()),
                        message,
                    });
                    None
                }
            });
        if raw.replica_name.as_deref().is_some_and(|n| {
            // It goes into a Prometheus label as is.
            n.is_empty()
                || n.len() > 100
                || n.chars().any(|c| c.is_control() || c == '"' || c == '\\')
        }) {
            problems.push(Problem {
                file: shown.to_owned(),
                line: None,
                key: Some("replica_name".into()),
                message: "must be 1 to 100 characters without quotes, backslashes or control characters, e.g. ssp-sim-a (flag --replica-name, variable SSP_SIM_REPLICA_NAME)".into(),
            });
        }
        for (key, value) in [
            ("store_timeout_ms", raw.store_timeout_ms),
            ("max_connections", raw.max_connections as u64),
            ("max_handshakes", raw.max_handshakes as u64),
            ("write_timeout_ms", raw.write_timeout_ms),
            ("backend_body_timeout_ms", raw.backend_body_timeout_ms),
        ] {
            if value == 0 {
                problems.push(Problem {
                    file: shown.to_owned(),
                    line: None,
                    key: Some(key.into()),
                    message: "must be at least 1".into(),
                });
            }
        }
        if raw.workers.is_some_and(|n| n > MAX_WORKERS) {
            problems.push(Problem {
                file: shown.to_owned(),
                line: None,
                key: Some("workers".into()),
                message: format!("must be at most {MAX_WORKERS} (0 serves connections on one shared runtime; leave it out for one thread per core)"),
            });
        }
        match (listen, tls_versions) {
            (Some(listen), Some(tls_versions)) if problems.is_empty() => Ok(Self {
                routes: raw.routes,
                certs: raw.certs,
                listen,
                client_auth: raw.client_auth,
                http_listen,
                admin_listen,
                log_format: raw.log_format,
                backend_timeout: Duration::from_millis(raw.backend_timeout_ms),
                spine_latency: Duration::from_millis(raw.spine_latency_ms),
                tls_versions,
                header_timeout: Duration::from_millis(raw.header_timeout_ms),
                max_connections: raw.max_connections,
                max_handshakes: raw.max_handshakes,
                write_timeout: Duration::from_millis(raw.write_timeout_ms),
                backend_body_timeout: Duration::from_millis(raw.backend_body_timeout_ms),
                max_faults: raw.max_faults,
                error_catalog: raw.error_catalog,
                interactions: raw.interactions,
                provider_checks: Policy {
                    mode: raw.jwt_mode,
                    clock_skew_s: raw.jwt_clock_skew_s,
                },
                journal_size: raw.journal_size,
                journal_details: raw.journal_details,
                metrics: raw.metrics,
                admin_token: raw.admin_token,
                store,
                store_timeout: Duration::from_millis(raw.store_timeout_ms),
                workers: raw.workers,
                replica_name: raw.replica_name,
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_with_no_file_env_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(
            Some(&write(&dir, "")),
            HashMap::new(),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(s.admin_listen, Some("127.0.0.1:8444".parse().unwrap()));
        assert_eq!(s.client_auth, ClientAuth::Required);
        assert!(s.http_listen.is_none());
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("ssp-sim.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn file_then_env_then_flags_override_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "listen = \"127.0.0.1:1001\"\nclient_auth = \"optional\"\nadmin_listen = \"off\"\n",
        );
        let s = Settings::load(Some(&file), HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 1001);
        assert!(s.admin_listen.is_none());
        let vars = env(&[
            ("SSP_SIM_LISTEN", "127.0.0.1:1002"),
            ("SSP_SIM_CLIENT_AUTH", "none"),
        ]);
        let s = Settings::load(Some(&file), vars.clone(), &Overrides::default()).unwrap();
        assert_eq!((s.listen.port(), s.client_auth), (1002, ClientAuth::None));
        let flags = Overrides {
            listen: Some("127.0.0.1:1003".into()),
            ..Default::default()
        };
        let s = Settings::load(Some(&file), vars, &flags).unwrap();
        assert_eq!(s.listen.port(), 1003);
    }

    #[test]
    fn jwt_mode_and_clock_skew_layer_like_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "jwt_mode = \"report\"\n");
        let s = Settings::load(Some(&file), HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(s.provider_checks.mode, JwtMode::Report);
        assert_eq!(s.provider_checks.clock_skew_s, 30);
        let vars = env(&[("SSP_SIM_JWT_CLOCK_SKEW_S", "5")]);
        let flags = Overrides {
            jwt_mode: Some(JwtMode::Off),
            ..Default::default()
        };
        let s = Settings::load(Some(&file), vars, &flags).unwrap();
        assert_eq!(
            s.provider_checks,
            Policy {
                mode: JwtMode::Off,
                clock_skew_s: 5
            }
        );
    }

    #[test]
    fn tls_versions_default_to_1_2_and_a_bad_value_names_the_key_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "");
        let s = Settings::load(Some(&file), HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(s.tls_versions, TlsVersions::SPINE);
        let vars = env(&[("SSP_SIM_TLS_VERSIONS", "1.2,1.3")]);
        let s = Settings::load(Some(&file), vars, &Overrides::default()).unwrap();
        assert!(s.tls_versions.tls12 && s.tls_versions.tls13);
        assert_eq!(s.spine_latency, Duration::ZERO);
        let file = write(&dir, "tls_versions = \"1.1,1.2\"\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tls_versions: `1.1,1.2` is not a list of TLS versions"),
            "{err}"
        );
        assert!(err.contains("write \"1.2\""), "{err}");
    }

    #[test]
    fn an_admin_api_beyond_loopback_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "admin_listen = \"0.0.0.0:8444\"\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin_token: the admin API listens beyond loopback"),
            "{err}"
        );
        let vars = env(&[
            ("SSP_SIM_ADMIN_TOKEN", "s3cret"),
            ("SSP_SIM_JOURNAL_SIZE", "5"),
        ]);
        let flags = Overrides {
            metrics: Some(false),
            ..Default::default()
        };
        let s = Settings::load(Some(&file), vars, &flags).unwrap();
        assert_eq!(s.admin_token.as_deref(), Some("s3cret"));
        assert_eq!((s.journal_size, s.metrics), (5, false));
    }

    #[test]
    fn listeners_beyond_loopback_without_client_certificates_are_warned_of() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            Settings::load(
                Some(&write(&dir, text)),
                HashMap::new(),
                &Overrides::default(),
            )
            .unwrap()
            .warnings()
        };
        assert!(load("").is_empty());
        assert!(load("listen = \"0.0.0.0:8443\"\n").is_empty());
        let w = load("listen = \"0.0.0.0:8443\"\nclient_auth = \"optional\"\n");
        assert!(
            w[0].starts_with("listen: 0.0.0.0:8443 is reachable"),
            "{w:?}"
        );
        let w = load("http_listen = \"0.0.0.0:8080\"\n");
        assert!(w[0].starts_with("http_listen: 0.0.0.0:8080"), "{w:?}");
        assert!(load("http_listen = \"127.0.0.1:8080\"\n").is_empty());
    }

    #[test]
    fn the_store_is_off_by_default_and_a_bad_url_names_the_key_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "");
        let s = Settings::load(Some(&file), HashMap::new(), &Overrides::default()).unwrap();
        assert!(s.store.is_none());
        assert_eq!(s.store_timeout, Duration::from_millis(50));
        let vars = env(&[("SSP_SIM_STORE", "redis://127.0.0.1:6379/2")]);
        let flags = Overrides {
            replica_name: Some("a".into()),
            ..Default::default()
        };
        let s = Settings::load(Some(&file), vars, &flags).unwrap();
        assert_eq!(s.store.unwrap().db, 2);
        assert_eq!(s.replica_name.as_deref(), Some("a"));
        let file = write(&dir, "store = \"127.0.0.1:6379\"\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ssp-sim.toml: store: `127.0.0.1:6379`"),
            "{err}"
        );
        assert!(err.contains("write redis://HOST:PORT"), "{err}");
    }

    #[test]
    fn workers_default_to_one_per_core_and_a_typo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "");
        let s = Settings::load(Some(&file), HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(s.workers, None);
        let s = Settings::load(
            Some(&file),
            env(&[("SSP_SIM_WORKERS", "0")]),
            &Overrides::default(),
        );
        assert_eq!(s.unwrap().workers, Some(0));
        let file = write(&dir, "workers = 20000\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("workers: must be at most 1024"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_addresses_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "lisen = \"127.0.0.1:1\"\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        let file = write(&dir, "listen = \"localhost\"\n");
        let err = Settings::load(Some(&file), HashMap::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen: `localhost` is not an address"),
            "{err}"
        );
    }
}
