//! `up` and `down`, and the starts, stops and waits on conditions they
//! share with `start` and `stop`: what compose's convergence does, for
//! the keys keel-compose reads.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use keel_api_types::objects::{
    ContainerCreate, ContainerSummary, EndpointSettings, HealthConfig, HostConfig, IdResponse,
    ImageId, Ipam, IpamConfig, NetworkCreate, NetworkSummary, PortBinding, VolumeCreate,
    VolumeList,
};
use keel_api_types::update::RestartPolicy;
use keel_compose::{Condition, Project, Service, VolumeType};
use lexopt::prelude::*;

use super::{
    DEPENDS_ON_LABEL, NETWORK_LABEL, NUMBER_LABEL, ONEOFF_LABEL, PROJECT_LABEL, ProjectOptions,
    SERVICE_LABEL, VOLUME_LABEL, containers, event, inspect_state, number_of, service_of,
    service_order,
};
use crate::client::{Client, DaemonError, Upload, encode};
use crate::usage;

const CONFIG_HASH_LABEL: &str = "com.docker.compose.config-hash";
const IMAGE_LABEL: &str = "com.docker.compose.image";
const VERSION_LABEL: &str = "com.docker.compose.version";
const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";
const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";

/// How often a wait on a condition looks again.
const POLL: Duration = Duration::from_millis(200);

/// `keel compose up [-d] [--wait] [--remove-orphans]`
pub fn up(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose up [OPTIONS]";
    let (mut detach, mut wait, mut remove_orphans) = (false, false, false);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('d') | Long("detach") => detach = true,
            Long("wait") => wait = true,
            Long("remove-orphans") => remove_orphans = true,
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    // Everything is read and checked before anything is made.
    let project = options.load()?;
    let existing = containers(client, &project.name, true)?;
    let orphans: Vec<&ContainerSummary> = existing
        .iter()
        .filter(|c| !project.services.contains_key(service_of(c)))
        .collect();
    if remove_orphans {
        for orphan in &orphans {
            stop_container(client, orphan, None)?;
            remove_container(client, orphan, false)?;
        }
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name()).collect();
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        );
    }
    for (key, network) in &project.networks {
        ensure_network(client, &project, key, network)?;
    }
    for (key, volume) in &project.volumes {
        ensure_volume(client, &project, key, volume)?;
    }
    let mut images = BTreeMap::new();
    for service in project.services.values() {
        if !images.contains_key(&service.image) {
            images.insert(service.image.clone(), image_id(client, &service.image)?);
        }
    }
    let order = project.dependency_order();
    for name in &order {
        let service = &project.services[name];
        let mine: Vec<&ContainerSummary> =
            existing.iter().filter(|c| service_of(c) == name).collect();
        converge(
            client,
            &project,
            name,
            service,
            &images[&service.image],
            &mine,
        )?;
    }
    let now = containers(client, &project.name, true)?;
    start_services(client, Some(&project), &now, &[])?;
    if wait {
        let now = containers(client, &project.name, true)?;
        for container in &now {
            let has_healthcheck = project.services[service_of(container)]
                .healthcheck
                .as_ref()
                .is_some_and(|h| !h.disable);
            event("Container", container.name(), "Waiting");
            match has_healthcheck {
                true => wait_healthy(client, container)?,
                false => wait_running(client, container)?,
            }
        }
    }
    if detach || wait {
        return Ok(());
    }
    let now = containers(client, &project.name, true)?;
    let attached: Vec<&ContainerSummary> = now.iter().collect();
    let names: Vec<String> = attached
        .iter()
        .map(|c| format!("{}-{}", service_of(c), number_of(c)))
        .collect();
    println!("Attaching to {}", names.join(", "));
    super::print_logs(client, &attached, true)
}

/// One service's containers as the model asks: those whose
/// configuration and image are unchanged kept, the others recreated,
/// extra ones removed and missing ones created, numbered from 1.
fn converge(
    client: &Client,
    project: &Project,
    name: &str,
    service: &Service,
    image: &str,
    existing: &[&ContainerSummary],
) -> Result<()> {
    let hash = service.config_hash();
    let replicas = service.replicas();
    for container in existing {
        let number = number_of(container);
        if number == 0 || number > replicas {
            stop_container(client, container, None)?;
            remove_container(client, container, false)?;
            continue;
        }
        let unchanged = container.labels.get(CONFIG_HASH_LABEL) == Some(&hash)
            && container.labels.get(IMAGE_LABEL).map(String::as_str) == Some(image);
        if unchanged {
            if container.state == "running" {
                event("Container", container.name(), "Running");
            }
            continue;
        }
        event("Container", container.name(), "Recreate");
        if container.state == "running" {
            client.send("POST", &format!("/containers/{}/stop", container.id))?;
        }
        client.send("DELETE", &format!("/containers/{}?force=1", container.id))?;
        create_container(client, project, name, service, &hash, image, number)?;
        event("Container", container.name(), "Recreated");
    }
    for number in 1..=replicas {
        if existing.iter().any(|c| number_of(c) == number) {
            continue;
        }
        let container = format!("{}-{name}-{number}", project.name);
        event("Container", &container, "Creating");
        create_container(client, project, name, service, &hash, image, number)?;
        event("Container", &container, "Created");
    }
    Ok(())
}

/// The services' containers that are not running started, services in
/// dependency order, each once its dependencies' conditions hold
/// (compose's `start`).
pub fn start_services(
    client: &Client,
    project: Option<&Project>,
    containers: &[ContainerSummary],
    only: &[String],
) -> Result<()> {
    let of = |service: &str| -> Vec<&ContainerSummary> {
        containers
            .iter()
            .filter(|c| service_of(c) == service)
            .collect()
    };
    for name in service_order(project, containers) {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        for (dependency, condition) in dependencies(project, &name, containers) {
            for container in of(&dependency) {
                match condition {
                    Condition::ServiceStarted => {}
                    Condition::ServiceHealthy => {
                        event("Container", container.name(), "Waiting");
                        wait_healthy(client, container)?;
                    }
                    Condition::ServiceCompletedSuccessfully => {
                        event("Container", container.name(), "Waiting");
                        wait_exited(client, container, &dependency)?;
                    }
                }
            }
        }
        for container in of(&name) {
            if inspect_state(client, &container.id)?.state.running {
                continue;
            }
            event("Container", container.name(), "Starting");
            client.send("POST", &format!("/containers/{}/start", container.id))?;
            event("Container", container.name(), "Started");
        }
    }
    Ok(())
}

/// A service's dependencies with their conditions: the model's, else
/// its containers' `depends_on` label (`SERVICE:CONDITION:RESTART,...`).
fn dependencies(
    project: Option<&Project>,
    service: &str,
    containers: &[ContainerSummary],
) -> Vec<(String, Condition)> {
    if let Some(project) = project {
        return project.services[service]
            .depends_on
            .iter()
            .map(|(name, d)| (name.clone(), d.condition))
            .collect();
    }
    let label = containers
        .iter()
        .find(|c| service_of(c) == service)
        .and_then(|c| c.labels.get(DEPENDS_ON_LABEL))
        .map_or("", String::as_str);
    label
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let name = parts.next().filter(|n| !n.is_empty())?;
            let condition = match parts.next() {
                Some("service_healthy") => Condition::ServiceHealthy,
                Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
                _ => Condition::ServiceStarted,
            };
            Some((name.to_owned(), condition))
        })
        .collect()
}

fn wait_healthy(client: &Client, container: &ContainerSummary) -> Result<()> {
    loop {
        let state = inspect_state(client, &container.id)?.state;
        let Some(health) = state.health else {
            bail!(
                "container {} has no healthcheck configured",
                container.name()
            );
        };
        match health.status.as_str() {
            "healthy" => {
                event("Container", container.name(), "Healthy");
                return Ok(());
            }
            "unhealthy" => {
                event("Container", container.name(), "Error");
                bail!(
                    "dependency failed to start: container {} is unhealthy",
                    container.name()
                );
            }
            _ if !state.running && state.status == "exited" => {
                bail!(
                    "dependency failed to start: container {} exited ({})",
                    container.name(),
                    state.exit_code
                );
            }
            _ => std::thread::sleep(POLL),
        }
    }
}

fn wait_running(client: &Client, container: &ContainerSummary) -> Result<()> {
    loop {
        let state = inspect_state(client, &container.id)?.state;
        if state.running {
            event("Container", container.name(), "Healthy");
            return Ok(());
        }
        if state.status == "exited" {
            bail!(
                "container {} exited ({})",
                container.name(),
                state.exit_code
            );
        }
        std::thread::sleep(POLL);
    }
}

fn wait_exited(client: &Client, container: &ContainerSummary, service: &str) -> Result<()> {
    loop {
        let state = inspect_state(client, &container.id)?.state;
        if state.status == "exited" {
            if state.exit_code != 0 {
                bail!(
                    "service {service:?} didn't complete successfully: exit {}",
                    state.exit_code
                );
            }
            event("Container", container.name(), "Exited");
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

pub fn stop_container(
    client: &Client,
    container: &ContainerSummary,
    timeout: Option<u64>,
) -> Result<()> {
    if container.state != "running" {
        return Ok(());
    }
    let timeout = timeout.map_or(String::new(), |t| format!("?t={t}"));
    event("Container", container.name(), "Stopping");
    client.send(
        "POST",
        &format!("/containers/{}/stop{timeout}", container.id),
    )?;
    event("Container", container.name(), "Stopped");
    Ok(())
}

fn remove_container(client: &Client, container: &ContainerSummary, volumes: bool) -> Result<()> {
    event("Container", container.name(), "Removing");
    client.send(
        "DELETE",
        &format!(
            "/containers/{}?force=1&v={}",
            container.id,
            u8::from(volumes)
        ),
    )?;
    event("Container", container.name(), "Removed");
    Ok(())
}

/// The image's id, pulled first if it is not here, as compose pulls
/// missing images before creating containers.
fn image_id(client: &Client, image: &str) -> Result<String> {
    let path = format!("/images/{}/json", encode(image));
    let response = client.request("GET", &path, Upload::None)?;
    if response.status == 404 {
        crate::registry::pull_image(client, image, None, crate::registry::Shown::Stderr)?;
    }
    let inspected: ImageId = serde_json::from_value(client.json("GET", &path, Upload::None)?)?;
    Ok(inspected.id)
}

fn list_networks(client: &Client, labels: &[String]) -> Result<Vec<NetworkSummary>> {
    let filters = serde_json::json!({ "label": labels });
    let listed = client.json(
        "GET",
        &format!("/networks?filters={}", encode(&filters.to_string())),
        Upload::None,
    )?;
    Ok(serde_json::from_value(listed)?)
}

/// The project's network `key`: the one labelled as its, else one of the
/// same name (as compose, which warns), else a new one labelled as
/// compose labels it.
fn ensure_network(
    client: &Client,
    project: &Project,
    key: &str,
    network: &keel_compose::Network,
) -> Result<()> {
    let labelled = list_networks(
        client,
        &[
            format!("{PROJECT_LABEL}={}", project.name),
            format!("{NETWORK_LABEL}={key}"),
        ],
    )?;
    if labelled.iter().any(|n| n.name == network.name) {
        return Ok(());
    }
    let path = format!("/networks/{}", encode(&network.name));
    if client.request("GET", &path, Upload::None)?.status == 200 {
        eprintln!(
            "WARN[0000] a network with name {} exists but was not created by compose.\nSet `external: true` to use an existing network",
            network.name
        );
        return Ok(());
    }
    let mut labels = network.labels.clone();
    labels.extend([
        (NETWORK_LABEL.to_owned(), key.to_owned()),
        (PROJECT_LABEL.to_owned(), project.name.clone()),
        (
            VERSION_LABEL.to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ]);
    let ipam = network.ipam.as_ref().map(|ipam| Ipam {
        driver: ipam.driver.clone().unwrap_or_default(),
        config: ipam
            .config
            .iter()
            .map(|pool| IpamConfig {
                subnet: pool.subnet.clone(),
                gateway: pool.gateway.clone().unwrap_or_default(),
            })
            .collect(),
    });
    let body = NetworkCreate {
        name: network.name.clone(),
        driver: network.driver.clone().unwrap_or_default(),
        ipam,
        labels,
    };
    event("Network", &network.name, "Creating");
    client
        .json(
            "POST",
            "/networks/create",
            Upload::Json(&serde_json::to_value(&body)?),
        )
        .with_context(|| format!("failed to create network {}", network.name))?;
    event("Network", &network.name, "Created");
    Ok(())
}

/// The project's volume `key`, made labelled as compose labels it unless
/// it exists.
fn ensure_volume(
    client: &Client,
    project: &Project,
    key: &str,
    volume: &keel_compose::Volume,
) -> Result<()> {
    let path = format!("/volumes/{}", encode(&volume.name));
    if client.request("GET", &path, Upload::None)?.status == 200 {
        return Ok(());
    }
    let mut labels = volume.labels.clone();
    labels.extend([
        (VOLUME_LABEL.to_owned(), key.to_owned()),
        (PROJECT_LABEL.to_owned(), project.name.clone()),
        (
            VERSION_LABEL.to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ]);
    let body = VolumeCreate {
        name: volume.name.clone(),
        driver: volume.driver.clone().unwrap_or_default(),
        labels,
    };
    event("Volume", &volume.name, "Creating");
    client.json(
        "POST",
        "/volumes/create",
        Upload::Json(&serde_json::to_value(&body)?),
    )?;
    event("Volume", &volume.name, "Created");
    Ok(())
}

fn create_container(
    client: &Client,
    project: &Project,
    name: &str,
    service: &Service,
    hash: &str,
    image: &str,
    number: u32,
) -> Result<()> {
    let container = format!("{}-{name}-{number}", project.name);
    let body = create_body(project, name, service, hash, image, number, &container)?;
    let created = client.json(
        "POST",
        &format!("/containers/create?name={}", encode(&container)),
        Upload::Json(&serde_json::to_value(&body)?),
    )?;
    let _: IdResponse = serde_json::from_value(created)?;
    Ok(())
}

/// The Engine API's create body for container `number` of a service, as
/// compose's getCreateConfigs makes it for these keys.
fn create_body(
    project: &Project,
    name: &str,
    service: &Service,
    hash: &str,
    image: &str,
    number: u32,
    container: &str,
) -> Result<ContainerCreate> {
    let files: Vec<String> = project
        .config_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let dependencies: Vec<String> = service
        .depends_on
        .iter()
        .map(|(name, d)| format!("{name}:{}:{}", d.condition.as_str(), d.restart))
        .collect();
    let mut labels = service.labels.clone();
    labels.extend([
        (PROJECT_LABEL.to_owned(), project.name.clone()),
        (SERVICE_LABEL.to_owned(), name.to_owned()),
        (NUMBER_LABEL.to_owned(), number.to_string()),
        (ONEOFF_LABEL.to_owned(), "False".to_owned()),
        (CONFIG_HASH_LABEL.to_owned(), hash.to_owned()),
        (IMAGE_LABEL.to_owned(), image.to_owned()),
        (DEPENDS_ON_LABEL.to_owned(), dependencies.join(",")),
        (
            VERSION_LABEL.to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        (
            WORKING_DIR_LABEL.to_owned(),
            project.working_dir.display().to_string(),
        ),
        (CONFIG_FILES_LABEL.to_owned(), files.join(",")),
    ]);
    let env = service
        .environment
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", value.as_ref()?)))
        .collect();
    let nanos = |text: &Option<String>| {
        text.as_deref()
            .and_then(keel_compose::duration_nanos)
            .unwrap_or(0)
    };
    let healthcheck = service.healthcheck.as_ref().map(|h| match h.disable {
        true => HealthConfig {
            test: vec!["NONE".to_owned()],
            ..HealthConfig::default()
        },
        false => HealthConfig {
            test: h.test.clone(),
            interval: nanos(&h.interval),
            timeout: nanos(&h.timeout),
            retries: i64::from(h.retries.unwrap_or(0)),
            start_period: nanos(&h.start_period),
            start_interval: nanos(&h.start_interval),
        },
    });
    let mut body = ContainerCreate {
        image: service.image.clone(),
        cmd: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        env,
        working_dir: service.working_dir.clone().unwrap_or_default(),
        user: service.user.clone().unwrap_or_default(),
        labels,
        healthcheck,
        stop_timeout: service
            .stop_grace_period
            .as_ref()
            .map(|_| (nanos(&service.stop_grace_period) / 1_000_000_000) as u64),
        ..ContainerCreate::default()
    };
    for volume in &service.volumes {
        let mode = if volume.read_only { ":ro" } else { "" };
        let source = match (volume.kind, &volume.source) {
            (VolumeType::Bind, Some(path)) => path.clone(),
            (VolumeType::Volume, Some(key)) => project.volumes[key].name.clone(),
            (_, None) => {
                body.volumes
                    .insert(volume.target.clone(), Default::default());
                continue;
            }
        };
        body.host_config
            .binds
            .push(format!("{source}:{}{mode}", volume.target));
    }
    for port in &service.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        body.exposed_ports.insert(key.clone(), Default::default());
        body.host_config
            .port_bindings
            .entry(key)
            .or_default()
            .push(PortBinding {
                host_ip: port.host_ip.clone().unwrap_or_default(),
                host_port: port.published.clone().unwrap_or_default(),
            });
    }
    body.host_config.restart_policy = match service.restart.as_deref() {
        None => RestartPolicy::default(),
        Some(policy) => match policy.split_once(':') {
            Some((name, count)) => RestartPolicy {
                name: name.to_owned(),
                maximum_retry_count: count.parse().unwrap_or(0),
            },
            None => RestartPolicy {
                name: policy.to_owned(),
                maximum_retry_count: 0,
            },
        },
    };
    // The first network by name is the container's NetworkMode, as
    // compose's NetworksByPriority when no priority is given; every
    // endpoint is named for the container and its service.
    let HostConfig { network_mode, .. } = &mut body.host_config;
    for key in service.networks.keys() {
        let network = &project.networks[key].name;
        if network_mode.is_empty() {
            *network_mode = network.clone();
        }
        body.networking_config.endpoints_config.insert(
            network.clone(),
            EndpointSettings {
                aliases: vec![container.to_owned(), name.to_owned()],
            },
        );
    }
    Ok(body)
}

/// `keel compose down [-v] [--remove-orphans] [-t N]`: the project's
/// containers (dependents first), then its networks, and with `-v` its
/// volumes, found by their labels.
pub fn down(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose down [OPTIONS]";
    let (mut volumes, mut remove_orphans, mut timeout) = (false, false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('v') | Long("volumes") => volumes = true,
            Long("remove-orphans") => remove_orphans = true,
            Short('t') | Long("timeout") => {
                timeout = Some(parser.value()?.string()?.parse().context("--timeout")?)
            }
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let (name, project) = options.project_or_name()?;
    let listed = containers(client, &name, true)?;
    let in_model = |c: &ContainerSummary| {
        project
            .as_ref()
            .is_none_or(|p| p.services.contains_key(service_of(c)))
    };
    let mut order = service_order(project.as_ref(), &listed);
    order.reverse();
    let mut removed_any = false;
    for service in &order {
        for container in listed.iter().filter(|c| service_of(c) == service) {
            stop_container(client, container, timeout)?;
            remove_container(client, container, volumes)?;
            removed_any = true;
        }
    }
    let orphans: Vec<&ContainerSummary> = listed.iter().filter(|c| !in_model(c)).collect();
    for orphan in orphans.iter().filter(|_| remove_orphans) {
        stop_container(client, orphan, timeout)?;
        remove_container(client, orphan, false)?;
        removed_any = true;
    }
    let project_label = format!("{PROJECT_LABEL}={name}");
    let networks: Vec<NetworkSummary> = match &project {
        Some(project) => {
            let mut found = Vec::new();
            for key in project.networks.keys() {
                found.extend(list_networks(
                    client,
                    &[project_label.clone(), format!("{NETWORK_LABEL}={key}")],
                )?);
            }
            found
        }
        None => list_networks(client, std::slice::from_ref(&project_label))?,
    };
    for network in &networks {
        event("Network", &network.name, "Removing");
        match client.send("DELETE", &format!("/networks/{}", network.id)) {
            Ok(()) => event("Network", &network.name, "Removed"),
            Err(error) if error.downcast_ref::<DaemonError>().is_some() => {
                event("Network", &network.name, "Resource is still in use")
            }
            Err(error) => return Err(error),
        }
        removed_any = true;
    }
    if volumes {
        let names: Vec<String> = match &project {
            Some(project) => project.volumes.values().map(|v| v.name.clone()).collect(),
            None => {
                let filters = serde_json::json!({ "label": [project_label] });
                let listed: VolumeList = serde_json::from_value(client.json(
                    "GET",
                    &format!("/volumes?filters={}", encode(&filters.to_string())),
                    Upload::None,
                )?)?;
                listed
                    .volumes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| v.name)
                    .collect()
            }
        };
        for volume in names {
            let path = format!("/volumes/{}", encode(&volume));
            if client.request("GET", &path, Upload::None)?.status == 404 {
                continue;
            }
            event("Volume", &volume, "Removing");
            client.send("DELETE", &path)?;
            event("Volume", &volume, "Removed");
            removed_any = true;
        }
    }
    if !removed_any {
        eprintln!("WARN[0000] Warning: No resource found to remove for project {name:?}.");
    }
    Ok(())
}
