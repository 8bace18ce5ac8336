//! The command line: `serve` (the default), `certs` and `check`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{LogFormat, Overrides};
use crate::tls::ClientAuth;

/// A Spine Secure Proxy (SSP) simulator for NHS GP Connect.
#[derive(Debug, Parser)]
#[command(name = "ssp-sim", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, which runs when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator (the default).
    Serve(ServeArgs),
    /// Write a dev CA, server certificate and consumer client certificate as PEM.
    Certs(CertsArgs),
    /// Validate the settings, routes and catalogues; exit 1 listing every problem.
    Check(CheckArgs),
}

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
}

impl ServeArgs {
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
        }
    }
}

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
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Settings file [default: ./ssp-sim.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The routes file to check [default: as `serve` would use].
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
}
