//! A running simulator: its listeners bound, its data loaded, ready to serve until told to stop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::admin::reload::{Reloader, Sighups};
use crate::admin::Admin;
use crate::cli::certs::{CertError, CertPaths};
use crate::cli::telemetry;
use crate::config::load::{self, RoutesSource};
use crate::config::problems::ConfigError;
use crate::config::settings::Settings;
use crate::control::faults::FaultSpec;
use crate::control::store::coverage::RedisCoverage;
use crate::control::store::faults::RedisFaults;
use crate::control::store::journal::RedisJournal;
use crate::control::store::limits::RedisLimits;
use crate::control::store::{Store, StoreError};
use crate::demo::DemoProvider;
use crate::proxy::forwarder::Clients;
use crate::proxy::gateway::Gateway;
use crate::proxy::listener::{self, Limits};
use crate::proxy::tls::{self, TlsError};
use crate::proxy::workers::Workers;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A settings, routes or catalogue file is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The certificate directory is incomplete or cannot be written.
    #[error("{0}")]
    Certs(#[from] CertError),
    /// The certificates or keys cannot be used for TLS.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The store's client cannot be made.
    #[error("store: {0}; check the store setting (--store redis://HOST:PORT[/DB])")]
    Store(#[from] StoreError),
    /// A listener's address cannot be bound; the process exits 2.
    #[error("cannot listen on {addr} ({what}): {source}; is another ssp-sim running? choose another address with --{flag}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Which listener, for the message.
        what: &'static str,
        /// The flag that sets the address, so the message can name the fix.
        flag: &'static str,
        /// Why binding failed.
        source: io::Error,
    },
    /// The worker threads that serve connections cannot be started.
    #[error("cannot start the worker threads: {0}")]
    Workers(io::Error),
}

impl StartError {
    /// The process exit code: 2 when a port cannot be bound, 1 for bad configuration.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Bind { .. } => 2,
            _ => 1,
        }
    }
}

/// A simulator with its listeners bound.
pub struct Server {
    gateway: Arc<Gateway>,
    /// The store shared with other replicas (`--store`), when there is one.
    store: Option<Arc<Store>>,
    reloader: Arc<Reloader>,
    sighups: Sighups,
    admin_token: Option<String>,
    https: TcpListener,
    tls: TlsAcceptor,
    http: Option<TcpListener>,
    admin: Option<TcpListener>,
    limits: Limits,
    /// The threads the consumer-facing listeners' connections are served on.
    workers: Arc<Workers>,
    stop: watch::Sender<bool>,
    /// Held from the start, so a stop sent before `run` begins is not lost: a `watch` value
    /// only changes while someone receives it.
    stopped: watch::Receiver<bool>,
    /// Whether `start` wrote a fresh certificate set.
    pub generated_certs: bool,
    /// The certificate directory in use, so `main` can print which client certificate to use.
    pub certs: CertPaths,
    /// Where the routes were read from, for the start-up lines and reloads.
    pub routes: RoutesSource,
}

fn bind(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
) -> Result<TcpListener, StartError> {
    listener::bind(addr).map_err(|source| StartError::Bind {
        addr,
        what,
        flag,
        source,
    })
}

/// How often a replica asks the store whether the shared faults changed: a fault added on
/// one replica acts on the others within this.
const FAULTS_EVERY: Duration = Duration::from_millis(100);

/// Hands the faults and the journal to the store. The fault ledger reads rules back against
/// the catalogues of the gateway's live routes; it holds the gateway weakly, as the gateway
/// holds the ledger.
fn share(gateway: &Arc<Gateway>, store: &Arc<Store>, journal_size: usize) {
    let weak = Arc::downgrade(gateway);
    let validate = Box::new(move |json: &str| {
        let gateway = weak.upgrade()?;
        let spec = FaultSpec::from_json(json.as_bytes()).ok()?;
        spec.validate(&gateway.routes().registry.interactions, gateway.catalog())
            .ok()
    });
    gateway
        .faults()
        .share(Arc::new(RedisFaults::new(store.clone(), validate)));
    gateway
        .journal()
        .share(Arc::new(RedisJournal::new(store.clone(), journal_size)));
}

impl Server {
    /// Loads everything and binds every listener; nothing is served until `run`.
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        let certs = CertPaths::new(&settings.certs);
        let generated_certs = certs.ensure()?;
        let tls = TlsAcceptor::from(tls::server_config(
            &certs.server_files(),
            settings.client_auth,
            settings.tls_versions,
        )?);
        let workers = match settings.workers {
            None => Workers::per_core(telemetry::WORKER_LOGS),
            Some(0) => Ok(Workers::none()),
            Some(n) => Workers::start(n, telemetry::WORKER_LOGS),
        };
        let workers = Arc::new(workers.map_err(StartError::Workers)?);
        let clients = Clients::new(Some(&certs.ca()), workers.pools())?;
        let routes = RoutesSource::resolve(settings.routes.as_deref());
        let loaded = load::load(
            &routes,
            settings.interactions.as_deref(),
            settings.error_catalog.as_deref(),
        )?;
        // Bound first: the replica's default name is this host and the port bound.
        let https = bind(settings.listen, "HTTPS", "listen")?;
        let store = match &settings.store {
            Some(url) => {
                let port = https
                    .local_addr()
                    .map_or(settings.listen.port(), |a| a.port());
                let replica = settings.replica_name.clone().unwrap_or_else(|| {
                    format!("{}:{port}", gethostname::gethostname().to_string_lossy())
                });
                Some(Store::new(url.clone(), &replica, settings.store_timeout)?)
            }
            None => None,
        };
        let mut gateway = Gateway::new(
            loaded.registry,
            clients,
            loaded.catalog,
            DemoProvider::new()?,
            settings.backend_timeout,
        )?
        .with_provider_checks(settings.provider_checks)
        .with_recording(
            settings.journal_size,
            settings.journal_details,
            settings.metrics,
        )
        .with_backend_body_timeout(settings.backend_body_timeout)
        .with_max_faults(settings.max_faults)
        .with_spine_latency(settings.spine_latency);
        if let Some(store) = &store {
            gateway = gateway
                .with_limiter(Arc::new(RedisLimits::new(store.clone())))
                .with_coverage(Box::new(RedisCoverage::new(store.clone())));
        }
        let gateway = Arc::new(gateway);
        if let Some(store) = &store {
            share(&gateway, store, settings.journal_size);
        }
        let reloader = Arc::new(Reloader::new(routes.clone(), gateway.clone()));

        let http = match settings.http_listen {
            Some(addr) => Some(bind(addr, "plain HTTP", "http-listen")?),
            None => None,
        };
        let admin = match settings.admin_listen {
            Some(addr) => Some(bind(addr, "admin API", "admin-listen")?),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            header_timeout: settings.header_timeout,
            max_connections: settings.max_connections,
            max_handshakes: settings.max_handshakes,
            write_timeout: settings.write_timeout,
            ..Limits::default()
        };
        Ok(Self {
            gateway,
            store,
            reloader,
            sighups: Sighups::listen(),
            admin_token: settings.admin_token.clone(),
            https,
            tls,
            http,
            admin,
            limits,
            workers,
            stop,
            stopped,
            generated_certs,
            certs,
            routes,
        })
    }

    /// The HTTPS listener's bound address (the real port when `--listen` asked for port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// The plain HTTP listener's bound address, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The admin API's bound address, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The store shared with other replicas, when `--store` names one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    /// A handle that stops the server: send `true` to stop accepting and drain.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Serves until stopped, then waits for in-flight requests (bounded by the drain timeout).
    pub async fn run(self) {
        let mut tasks = tokio::task::JoinSet::new();
        let stop = self.stopped;
        tasks.spawn(self.reloader.clone().watch(self.sighups, stop.clone()));
        if let Some(store) = &self.store {
            tasks.spawn(store.clone().run(stop.clone()));
            let (gateway, stopped) = (self.gateway.clone(), stop.clone());
            tasks.spawn(async move { gateway.faults().follow(FAULTS_EVERY, stopped).await });
            let (gateway, stopped) = (self.gateway.clone(), stop.clone());
            tasks.spawn(async move { gateway.journal().follow(stopped).await });
        }
        tasks.spawn(listener::serve(
            self.https,
            Some(self.tls),
            self.gateway.clone(),
            self.limits,
            self.workers.clone(),
            stop.clone(),
        ));
        if let Some(http) = self.http {
            tasks.spawn(listener::serve(
                http,
                None,
                self.gateway.clone(),
                self.limits,
                self.workers.clone(),
                stop.clone(),
            ));
        }
        if let Some(admin) = self.admin {
            tasks.spawn(listener::serve(
                admin,
                None,
                Arc::new(Admin::new(
                    self.gateway.clone(),
                    self.reloader,
                    self.admin_token,
                    stop.clone(),
                    self.store.clone(),
                )),
                self.limits,
                // The admin API's few connections stay on the main runtime.
                Arc::new(Workers::none()),
                stop,
            ));
        }
        while tasks.join_next().await.is_some() {}
    }
}
