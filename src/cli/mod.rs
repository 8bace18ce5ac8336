//! The command line: `serve` (the default), `certs` and `check`.

pub mod certs;
pub mod jwt;
pub mod serve;
pub mod telemetry;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::jwt::JwtMode;
use crate::config::settings::ClientAuth;
use crate::config::settings::{LogFormat, Overrides};

/// A Spine Secure Proxy (SSP) simulator for NHS GP Connect.
#[derive(Debug, Parser)]
#[command(name = "ssp-sim", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The command given; `None` runs `serve` with the top-level flags.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, which runs when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator (the default).
    Serve(ServeArgs),
    /// Write a dev CA, server certificate and consumer client certificate as PEM.
    Certs(CertsArgs),
    /// Validate the settings, routes and catalogues; exit 1 listing every problem.
    Check(CheckArgs),
    /// Print a GP Connect JWT that passes every provider-side rule, or check one (--decode).
    Jwt(JwtArgs),
}

/// The flags of `serve`: each overrides the settings file and the `SSP_SIM_*` environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Settings file [default: ./ssp-sim.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The mock SDS [default: ./routes.toml, else the embedded copy].
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
    /// Certificate directory (ca.pem, server.pem, server-key.pem, client.pem, client-key.pem); generated when empty [default: certs].
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// HTTPS listen address [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Client certificates: required (as on Spine), optional or none [default: required].
    #[arg(long, value_enum)]
    pub client_auth: Option<ClientAuth>,
    /// Plain HTTP listener for tools that cannot do TLS [default: off].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Admin API address, or `off` [default: 127.0.0.1:8444].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// How long a backend may take to answer, in milliseconds [default: 30000].
    #[arg(long, value_name = "MS")]
    pub backend_timeout_ms: Option<u64>,
    /// Latency added before each request reaches the provider, as Spine's own (about 15 ms) [default: 0, off].
    #[arg(long, value_name = "MS")]
    pub spine_latency_ms: Option<u64>,
    /// TLS versions the HTTPS listener offers: 1.2 (what GP Connect mandates) or 1.2,1.3 [default: 1.2].
    #[arg(long, value_name = "LIST")]
    pub tls_versions: Option<String>,
    /// Provider-side checks (JWT, interaction fit): enforce (refuse), report (forward and list failures in Ssp-Sim-Warnings) or off [default: enforce].
    #[arg(long, value_enum)]
    pub jwt_mode: Option<JwtMode>,
    /// Leeway on a JWT's exp, in seconds, for consumer clocks slightly behind [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub jwt_clock_skew_s: Option<u64>,
    /// How many recent requests GET /journal keeps; 0 turns the journal off [default: 1000].
    #[arg(long, value_name = "N")]
    pub journal_size: Option<usize>,
    /// Count requests for GET /metrics [default: true].
    #[arg(long, value_name = "BOOL")]
    pub metrics: Option<bool>,
    /// Share faults, the journal, coverage and rate limits with other replicas through Redis: redis://HOST:PORT[/DB] [default: off, all in this process].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// How long a request waits on the store before going on without it, in milliseconds [default: 50].
    #[arg(long, value_name = "MS")]
    pub store_timeout_ms: Option<u64>,
    /// This replica's name in journal entries and metrics [default: HOSTNAME:PORT of the HTTPS listener].
    #[arg(long, value_name = "NAME")]
    pub replica_name: Option<String>,
    /// Threads serving consumer connections, each keeping a connection, its requests and their backend connections together; 0 serves them on one shared work-stealing runtime [default: one per core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    // The admin token has no flag on purpose: flags show in `ps`. It comes from the settings
    // file or SSP_SIM_ADMIN_TOKEN.
}

impl ServeArgs {
    /// The flags given, as the top layer of the settings.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            routes: self.routes.clone(),
            certs: self.certs.clone(),
            listen: self.listen.clone(),
            client_auth: self.client_auth,
            http_listen: self.http_listen.clone(),
            admin_listen: self.admin_listen.clone(),
            log_format: self.log_format,
            backend_timeout_ms: self.backend_timeout_ms,
            spine_latency_ms: self.spine_latency_ms,
            tls_versions: self.tls_versions.clone(),
            jwt_mode: self.jwt_mode,
            jwt_clock_skew_s: self.jwt_clock_skew_s,
            journal_size: self.journal_size,
            metrics: self.metrics,
            store: self.store.clone(),
            store_timeout_ms: self.store_timeout_ms,
            replica_name: self.replica_name.clone(),
            workers: self.workers,
        }
    }
}

/// The flags of `certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Where to write the PEM files.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    pub dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Extra server certificate names (DNS names or IP addresses); repeatable.
    #[arg(long, value_name = "NAME")]
    pub san: Vec<String>,
    /// The host the client certificate names, to match a consumer's `fqdn` in routes.toml [default: consumer.ssp-sim.localhost].
    #[arg(long, value_name = "NAME")]
    pub client_fqdn: Option<String>,
}

/// The flags of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Settings file [default: ./ssp-sim.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The routes file to check [default: as `serve` would use].
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
}

/// The flags of `jwt`.
#[derive(Debug, Args)]
pub struct JwtArgs {
    /// The interaction the token is for: its ID or the end of it, e.g. read:patient-1 (sets requested_scope).
    #[arg(long, value_name = "ID")]
    pub interaction: Option<String>,
    /// The provider endpoint's service root (nhsMhsEndPoint, service_root in routes.toml): the aud claim.
    #[arg(long, value_name = "URL")]
    pub aud: Option<String>,
    /// requested_scope, instead of the interaction's (e.g. "patient/*.read conf/R").
    #[arg(long)]
    pub scope: Option<String>,
    /// The user's id: sub and requesting_practitioner.id.
    #[arg(long, default_value = "10019")]
    pub sub: String,
    /// The requesting organisation's ODS code.
    #[arg(long, value_name = "CODE", default_value = "A11111")]
    pub ods: String,
    /// The consumer system's URL: the iss claim.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://consumer.example.nhs.uk/"
    )]
    pub iss: String,
    /// reason_for_request: directcare, or migration for the migrate interactions.
    #[arg(long, default_value = "directcare")]
    pub reason: String,
    /// Seconds from iat to exp; GP Connect accepts only 300, so other values make a failing token.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::provider::claims::LIFETIME_S)]
    pub lifetime: i64,
    /// Issue the token (or judge --decode) as at this UNIX time instead of now.
    #[arg(long, value_name = "SECONDS")]
    pub at: Option<i64>,
    /// Check this token (or - to read standard input) instead of making one: prints its header and payload and every broken rule.
    #[arg(long, value_name = "TOKEN")]
    pub decode: Option<String>,
    /// PEM public key a signed token must verify with, as an endpoint's jwt_key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Leeway on exp, in seconds [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub jwt_clock_skew_s: Option<u64>,
    /// The interaction catalogue [default: ./catalog/interactions.toml, else the embedded copy].
    #[arg(long, value_name = "FILE")]
    pub interactions: Option<PathBuf>,
}
