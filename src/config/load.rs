//! Reading every data file a server needs (interaction catalogue, error catalogue, routes)
//! into validated types. Used by `serve`, by `check`, and on reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::errors::ErrorCatalog;
use crate::config::interactions::{self, Interactions};
use crate::config::problems::ConfigError;
use crate::config::routes::{self, Registry};

/// Where routes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutesSource {
    /// A routes.toml on disk: named by `--routes`, or `./routes.toml`.
    File(PathBuf),
    /// The copy compiled into the binary (no `./routes.toml` and none named).
    Embedded,
}

impl RoutesSource {
    /// The named file, else `./routes.toml` if it exists, else the embedded copy.
    pub fn resolve(named: Option<&Path>) -> Self {
        match named {
            Some(path) => Self::File(path.to_owned()),
            None if Path::new("routes.toml").exists() => Self::File(PathBuf::from("routes.toml")),
            None => Self::Embedded,
        }
    }

    /// Where the routes come from, as messages and `check` show it.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Embedded => "routes.toml (embedded)".to_owned(),
        }
    }

    /// Reads and validates the routes (faults are checked against `catalog`).
    pub fn load(
        &self,
        interactions: &Arc<Interactions>,
        catalog: &ErrorCatalog,
    ) -> Result<Registry, ConfigError> {
        let name = self.describe();
        let text = match self {
            Self::File(path) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::file(&name, format!("cannot read: {e}; pass --routes FILE or run from a directory that has routes.toml"))
            })?,
            Self::Embedded => routes::EMBEDDED.to_owned(),
        };
        Registry::parse(&name, &text, interactions, catalog)
    }
}

/// The catalogues and routes, validated.
pub struct Loaded {
    /// The interaction catalogue, shared with the registry that was checked against it.
    pub interactions: Arc<Interactions>,
    /// The error catalogue every rejection is rendered from.
    pub catalog: ErrorCatalog,
    /// The mock SDS the Spine checks read.
    pub registry: Registry,
}

/// Loads the interaction catalogue, the error catalogue and the routes, reporting the
/// problems of all three at once.
pub fn load(
    routes: &RoutesSource,
    interactions_file: Option<&Path>,
    catalog_dir: Option<&Path>,
) -> Result<Loaded, ConfigError> {
    let interactions = load_interactions(interactions_file).map(Arc::new);
    let catalog = match catalog_dir {
        Some(dir) => ErrorCatalog::load_dir(dir),
        None if Path::new("error-catalog").is_dir() => {
            ErrorCatalog::load_dir(Path::new("error-catalog"))
        }
        None => ErrorCatalog::embedded(),
    };
    // The routes are checked against both catalogues; without them there is nothing to
    // check against, and their own problems are reported below.
    let registry = match (&interactions, &catalog) {
        (Ok(i), Ok(c)) => routes.load(i, c),
        _ => Err(ConfigError {
            problems: Vec::new(),
        }),
    };
    match (interactions, catalog, registry) {
        (Ok(interactions), Ok(catalog), Ok(registry)) => Ok(Loaded {
            interactions,
            catalog,
            registry,
        }),
        (i, c, r) => Err(ConfigError {
            problems: [i.err(), c.err(), r.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| e.problems)
                .collect(),
        }),
    }
}

/// The interaction catalogue: `file`, else `./catalog/interactions.toml`, else the embedded one.
pub fn load_interactions(file: Option<&Path>) -> Result<Interactions, ConfigError> {
    let default = Path::new("catalog/interactions.toml");
    let path = file.or(default.exists().then_some(default));
    match path {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::file(&name, format!("cannot read: {e}")))?;
            Interactions::parse(&name, &text)
        }
        None => Interactions::parse(
            "catalog/interactions.toml (embedded)",
            interactions::EMBEDDED,
        ),
    }
}
