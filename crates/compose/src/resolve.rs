//! From the merged files to a project: its name, the services the active
//! profiles enable with their environments and paths resolved, the
//! networks and volumes they use, and the checks compose makes of how
//! these refer to each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::{Mapping, Value};

use crate::model::{Network, Project, Service, Volume, VolumeType, scalar_text};
use crate::{Error, Options, check_project_name, dotenv, normalize_project_name};

pub fn project(
    mut merged: Mapping,
    options: &Options,
    environment: &BTreeMap<String, String>,
    working_dir: PathBuf,
    config_files: Vec<PathBuf>,
) -> Result<Project, Error> {
    let name = project_name(&merged, options, environment, &working_dir)?;
    let invalid = |location: String, message: String| Error::Invalid { location, message };

    let mut services = BTreeMap::new();
    if let Some(Value::Mapping(entries)) = merged.remove("services") {
        for (key, value) in entries {
            let key = scalar_text(&key).unwrap_or_default();
            let value = match value {
                Value::Null => Value::Mapping(Mapping::new()),
                other => other,
            };
            let service = Service::deserialize(value)
                .map_err(|e| invalid(format!("services.{key}"), e.to_string()))?;
            services.insert(key, service);
        }
    }
    let mut networks: BTreeMap<String, Network> = section(&mut merged, "networks")?;
    let mut volumes: BTreeMap<String, Volume> = section(&mut merged, "volumes")?;

    for (key, service) in &services {
        for dependency in service.depends_on.keys() {
            if !services.contains_key(dependency) {
                return Err(Error::Project(format!(
                    "service {key:?} depends on undefined service {dependency:?}"
                )));
            }
        }
    }
    check_cycles(&services)?;
    let profiles = active_profiles(options, environment);
    let enabled = |service: &Service| {
        service.profiles.is_empty() || service.profiles.iter().any(|p| profiles.contains(p))
    };
    for (key, service) in &services {
        if !enabled(service) {
            continue;
        }
        for (dependency, condition) in &service.depends_on {
            if condition.required && !enabled(&services[dependency]) {
                return Err(Error::Project(format!(
                    "service {dependency:?} was pulled in as dependency of service {key:?} but is not enabled by the active profiles. You may fix this by adding a common profile to {dependency:?} and {key:?}"
                )));
            }
        }
    }
    services.retain(|_, service| enabled(service));

    for (key, service) in &mut services {
        resolve_service(key, service, environment, &working_dir)?;
        if service.networks.is_empty() {
            service.networks.insert("default".to_owned(), None);
        }
        for network in service.networks.keys() {
            if network != "default" && !networks.contains_key(network) {
                return Err(Error::Project(format!(
                    "service {key:?} refers to undefined network {network}"
                )));
            }
        }
        for volume in &service.volumes {
            if let (VolumeType::Volume, Some(source)) = (volume.kind, &volume.source)
                && !volumes.contains_key(source)
            {
                return Err(Error::Project(format!(
                    "service {key:?} refers to undefined volume {source}"
                )));
            }
        }
    }

    // Only what the enabled services use is made, as compose's
    // WithoutUnnecessaryResources.
    let used_networks: Vec<&String> = services.values().flat_map(|s| s.networks.keys()).collect();
    if used_networks.iter().any(|n| *n == "default") {
        networks.entry("default".to_owned()).or_default();
    }
    networks.retain(|key, _| used_networks.contains(&key));
    for (key, network) in &mut networks {
        if network.name.is_empty() {
            network.name = format!("{name}_{key}");
        }
        if let Some(driver) = network.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(invalid(
                format!("networks.{key}.driver"),
                format!("the driver {driver:?} is not supported by keel compose yet (bridge)"),
            ));
        }
    }
    let used_volumes: Vec<&String> = services
        .values()
        .flat_map(|s| &s.volumes)
        .filter(|v| v.kind == VolumeType::Volume)
        .filter_map(|v| v.source.as_ref())
        .collect();
    volumes.retain(|key, _| used_volumes.contains(&key));
    for (key, volume) in &mut volumes {
        if volume.name.is_empty() {
            volume.name = format!("{name}_{key}");
        }
        if let Some(driver) = volume.driver.as_deref().filter(|d| *d != "local") {
            return Err(invalid(
                format!("volumes.{key}.driver"),
                format!("the driver {driver:?} is not supported by keel compose yet (local)"),
            ));
        }
    }
    Ok(Project {
        name,
        services,
        networks,
        volumes,
        working_dir,
        config_files,
    })
}

/// `-p`, else `COMPOSE_PROJECT_NAME`, else the files' `name:`, else the
/// project directory's name made into one.
fn project_name(
    merged: &Mapping,
    options: &Options,
    environment: &BTreeMap<String, String>,
    working_dir: &Path,
) -> Result<String, Error> {
    let given = options
        .project_name
        .clone()
        .or_else(|| environment.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|name| !name.is_empty())
        .or_else(|| merged.get("name").and_then(scalar_text));
    match given {
        Some(name) => {
            check_project_name(&name)?;
            Ok(name)
        }
        None => {
            let base = working_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = normalize_project_name(&base);
            check_project_name(&name)?;
            Ok(name)
        }
    }
}

fn active_profiles(options: &Options, environment: &BTreeMap<String, String>) -> Vec<String> {
    let mut profiles = options.profiles.clone();
    if let Some(listed) = environment.get("COMPOSE_PROFILES") {
        profiles.extend(
            listed
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );
    }
    profiles
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    merged: &mut Mapping,
    name: &str,
) -> Result<BTreeMap<String, T>, Error> {
    let mut out = BTreeMap::new();
    if let Some(Value::Mapping(entries)) = merged.remove(name) {
        for (key, value) in entries {
            let key = scalar_text(&key).unwrap_or_default();
            let item = match value {
                Value::Null => T::default(),
                other => T::deserialize(other).map_err(|e| Error::Invalid {
                    location: format!("{name}.{key}"),
                    message: e.to_string(),
                })?,
            };
            out.insert(key, item);
        }
    }
    Ok(out)
}

fn check_cycles(services: &BTreeMap<String, Service>) -> Result<(), Error> {
    fn visit<'a>(
        services: &'a BTreeMap<String, Service>,
        name: &'a str,
        path: &mut Vec<&'a str>,
    ) -> Result<(), Error> {
        if let Some(at) = path.iter().position(|n| *n == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name);
            return Err(Error::Project(format!(
                "dependency cycle detected: {}",
                cycle.join(" -> ")
            )));
        }
        path.push(name);
        for dependency in services[name].depends_on.keys() {
            visit(services, dependency, path)?;
        }
        path.pop();
        Ok(())
    }
    for name in services.keys() {
        visit(services, name, &mut Vec::new())?;
    }
    Ok(())
}

/// A service's environment (env files under `environment:`, unset names
/// from the project's environment), bind paths made absolute, image and
/// durations checked.
fn resolve_service(
    key: &str,
    service: &mut Service,
    environment: &BTreeMap<String, String>,
    working_dir: &Path,
) -> Result<(), Error> {
    let invalid = |field: &str, message: String| Error::Invalid {
        location: format!("services.{key}.{field}"),
        message,
    };
    if service.image.is_empty() {
        return Err(Error::Project(format!(
            "service {key:?} has neither an image nor a build context specified"
        )));
    }
    let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
    for env_file in std::mem::take(&mut service.env_file) {
        let path = absolute(working_dir, &env_file.path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if !env_file.required && error.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(source) => return Err(Error::EnvFile { path, source }),
        };
        let values = dotenv::parse(&text, environment)
            .map_err(|message| Error::EnvFileSyntax { path, message })?;
        resolved.extend(values.into_iter().map(|(k, v)| (k, Some(v))));
    }
    for (name, value) in std::mem::take(&mut service.environment) {
        let value = value.or_else(|| environment.get(&name).cloned());
        resolved.insert(name, value);
    }
    service.environment = resolved;

    for volume in &mut service.volumes {
        if volume.kind == VolumeType::Bind
            && let Some(source) = &mut volume.source
        {
            *source = absolute(working_dir, source).to_string_lossy().into_owned();
        }
    }
    if let Some(restart) = &service.restart {
        let valid = match restart.split_once(':') {
            Some(("on-failure", count)) => count.parse::<u32>().is_ok(),
            None => matches!(
                restart.as_str(),
                "no" | "always" | "on-failure" | "unless-stopped"
            ),
            Some(_) => false,
        };
        if !valid {
            return Err(invalid(
                "restart",
                format!(
                    "invalid restart policy {restart:?}: use no, always, on-failure[:N] or unless-stopped"
                ),
            ));
        }
    }
    let mut durations = vec![("stop_grace_period", &service.stop_grace_period)];
    if let Some(health) = &service.healthcheck {
        durations.extend([
            ("healthcheck.interval", &health.interval),
            ("healthcheck.timeout", &health.timeout),
            ("healthcheck.start_period", &health.start_period),
            ("healthcheck.start_interval", &health.start_interval),
        ]);
    }
    for (field, text) in durations {
        if let Some(text) = text
            && duration_nanos(text).is_none()
        {
            return Err(invalid(
                field,
                format!("{text:?} is not a duration: write one as 10s, 1m30s or 500ms"),
            ));
        }
    }
    Ok(())
}

/// A compose duration (a Go duration, not negative) in nanoseconds.
pub fn duration_nanos(text: &str) -> Option<i64> {
    keel_time::parse_go_duration(text)
        .filter(|n| *n >= 0)
        .and_then(|n| i64::try_from(n).ok())
}

/// `path` from the project directory, `~` the home directory, with `.`
/// parts dropped.
fn absolute(working_dir: &Path, path: &str) -> PathBuf {
    let joined = match path.strip_prefix('~') {
        Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(rest.trim_start_matches('/')),
        None => working_dir.join(path),
    };
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}
