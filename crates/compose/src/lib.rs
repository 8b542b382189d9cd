//! Compose files as compose v2 reads them: which files (`compose.yaml` and
//! its kin, found in the directory or above it, or those given with `-f`,
//! merged in order), the project's name, `.env` and `env_file:`,
//! `${VAR}` interpolation, profiles, and the services, networks and
//! volumes of the compose specification that Keel runs. Every key the
//! specification has that Keel does not act on yet is an error naming
//! it, never silently left out.

mod dotenv;
pub mod interpolate;
mod merge;
mod model;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use model::{
    BindOptions, Condition, Dependency, Deploy, EnvFile, Healthcheck, Ipam, IpamPool, Network,
    Port, Project, Service, ServiceNetwork, ServiceVolume, Volume, VolumeOptions, VolumeType,
};
pub use resolve::duration_nanos;

/// The files compose looks for, in its order of preference, each with the
/// override file read after it when present.
const DEFAULT_FILES: [(&str, &str); 4] = [
    ("compose.yaml", "compose.override.yaml"),
    ("compose.yml", "compose.override.yml"),
    ("docker-compose.yml", "docker-compose.override.yml"),
    ("docker-compose.yaml", "docker-compose.override.yaml"),
];

/// What a load is given: the command line's `-f`, `-p` and `--profile`,
/// the current directory and the process's environment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    pub current_dir: PathBuf,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no configuration file provided: not found")]
    NoFile,
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    /// A key the compose specification does not have (compose's words).
    #[error("validating {file}: {location} additional properties '{key}' not allowed")]
    UnknownKey {
        file: PathBuf,
        location: String,
        key: String,
    },
    /// A key of the specification that Keel does not act on yet.
    #[error("{file}: {location}.{key} is not supported by keel compose yet")]
    Unsupported {
        file: PathBuf,
        location: String,
        key: String,
    },
    #[error("error while interpolating {location}: {failure}")]
    Interpolation {
        location: String,
        failure: interpolate::Failure,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    /// A project whose parts do not fit together (compose's words).
    #[error("{0}: invalid compose project")]
    Project(String),
    #[error(
        "invalid project name {0:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    )]
    ProjectName(String),
    #[error("env file {} not found: {source}", path.display())]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {}: {message}", path.display())]
    EnvFileSyntax { path: PathBuf, message: String },
}

/// The project the options name, resolved.
pub fn load(options: &Options) -> Result<Project, Error> {
    let files = match options.files.is_empty() {
        true => find_files(&options.current_dir)?,
        false => options
            .files
            .iter()
            .map(|file| absolute(&options.current_dir, file))
            .collect(),
    };
    let working_dir = files[0]
        .parent()
        .map_or_else(|| options.current_dir.clone(), Path::to_owned);
    let environment = environment(&working_dir, &options.environment)?;
    let mut merged = serde_norway::Mapping::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
        let mut document = parse_document(file, &text)?;
        merge::check_keys(file, &document)?;
        merge::interpolate(&mut document, &environment)?;
        merge::merge_file(&mut merged, document);
    }
    resolve::project(merged, options, &environment, working_dir, files)
}

/// The first of compose's default files in `dir` or the nearest directory
/// above it, with its override file if there is one.
pub fn find_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    for dir in dir.ancestors() {
        for (file, override_file) in DEFAULT_FILES {
            let path = dir.join(file);
            if path.is_file() {
                let override_path = dir.join(override_file);
                return Ok(match override_path.is_file() {
                    true => vec![path, override_path],
                    false => vec![path],
                });
            }
        }
    }
    Err(Error::NoFile)
}

fn absolute(dir: &Path, file: &Path) -> PathBuf {
    match file.is_absolute() {
        true => file.to_owned(),
        false => dir.join(file),
    }
}

fn parse_document(file: &Path, text: &str) -> Result<serde_norway::Mapping, Error> {
    let yaml = |message: String| Error::Yaml {
        path: file.to_owned(),
        message,
    };
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(serde_norway::Value::Mapping(mapping)) => Ok(mapping),
        Ok(serde_norway::Value::Null) => Ok(serde_norway::Mapping::new()),
        Ok(_) => Err(yaml("the top level is not a mapping".to_owned())),
        Err(error) => Err(yaml(error.to_string())),
    }
}

/// The variables interpolation sees: the project directory's `.env`
/// under the process's environment, which wins, as in compose.
fn environment(
    working_dir: &Path,
    process: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let path = working_dir.join(".env");
    let mut environment = match std::fs::read_to_string(&path) {
        Ok(text) => dotenv::parse(&text, process)
            .map_err(|message| Error::EnvFileSyntax { path, message })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(source) => return Err(Error::EnvFile { path, source }),
    };
    environment.extend(process.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(environment)
}

/// A directory's name as compose makes a project name of it: lower case,
/// only letters, digits, `-` and `_`, starting with a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    kept.trim_start_matches(['-', '_']).to_owned()
}

/// Refuses a project name compose would refuse.
pub fn check_project_name(name: &str) -> Result<(), Error> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    match valid {
        true => Ok(()),
        false => Err(Error::ProjectName(name.to_owned())),
    }
}

impl Service {
    /// compose's `com.docker.compose.config-hash`: the service's resolved
    /// configuration without what does not shape its containers (the
    /// dependencies, profiles and replica count), hashed, so `up` keeps
    /// containers whose configuration did not change.
    pub fn config_hash(&self) -> String {
        use sha2::Digest;
        let mut shaping = self.clone();
        shaping.depends_on.clear();
        shaping.profiles.clear();
        if let Some(deploy) = &mut shaping.deploy {
            deploy.replicas = None;
        }
        // A deploy: with replicas alone shapes nothing either.
        if shaping.deploy == Some(Deploy::default()) {
            shaping.deploy = None;
        }
        let json = serde_json::to_vec(&shaping).expect("a service serializes");
        let digest = sha2::Sha256::digest(&json);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// How many containers the service runs (deploy.replicas, else 1).
    pub fn replicas(&self) -> u32 {
        self.deploy.as_ref().and_then(|d| d.replicas).unwrap_or(1)
    }
}

impl Project {
    /// Services in an order that puts each after those it depends on
    /// (by name among equals); loading refused cycles.
    pub fn dependency_order(&self) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        fn visit(project: &Project, name: &str, order: &mut Vec<String>) {
            if order.iter().any(|n| n == name) {
                return;
            }
            if let Some(service) = project.services.get(name) {
                for dependency in service.depends_on.keys() {
                    visit(project, dependency, order);
                }
                order.push(name.to_owned());
            }
        }
        for name in self.services.keys() {
            visit(self, name, &mut order);
        }
        order
    }

    /// The project as `docker compose config` prints it.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("a project serializes")
    }
}
