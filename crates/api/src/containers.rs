//! The Engine API's container endpoints: create, start, wait, kill, stop,
//! remove, list, inspect, logs and attach, in Docker's JSON shapes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use keel_engine::mounts::MountRequest;
use keel_engine::{
    Config, Container, LogQuery, LogStream, Resources, RestartPolicy, Security, Status, Ulimit,
    WaitCondition,
};
use keel_monitor_protocol::stream::{self, STDERR, STDOUT};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Daemon;
use crate::attach::{self, Streams};
use crate::filters::{Filters, regex_match};
use crate::http::{ApiError, Body, Query, Reply, blocking, empty, json};
use crate::network::{self, EndpointBody, NetworkRequest, PortBindingBody};

type Result<T> = std::result::Result<T, ApiError>;

/// The body of POST /containers/create, as much of it as Keel acts on.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    image: Option<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    hostname: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tty: bool,
    #[serde(default)]
    open_stdin: bool,
    #[serde(default)]
    stdin_once: bool,
    volumes: Option<BTreeMap<String, Value>>,
    exposed_ports: Option<BTreeMap<String, Value>>,
    mac_address: Option<String>,
    stop_signal: Option<String>,
    stop_timeout: Option<u64>,
    healthcheck: Option<keel_engine::Healthcheck>,
    host_config: Option<HostConfig>,
    networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkingConfig {
    endpoints_config: Option<BTreeMap<String, EndpointBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    auto_remove: bool,
    privileged: bool,
    readonly_rootfs: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    security_opt: Option<Vec<String>>,
    binds: Option<Vec<String>>,
    restart_policy: Option<RestartPolicyBody>,
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_quota: i64,
    cpu_period: i64,
    cpuset_cpus: Option<String>,
    cpuset_mems: Option<String>,
    pids_limit: Option<i64>,
    ulimits: Option<Vec<UlimitBody>>,
    mounts: Option<Vec<MountRequest>>,
    tmpfs: Option<BTreeMap<String, String>>,
    network_mode: Option<String>,
    log_config: Option<LogConfigBody>,
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingBody>>>>,
    publish_all_ports: bool,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_options: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
    links: Option<Vec<String>>,
    init: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LogConfigBody {
    r#type: String,
    config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct UlimitBody {
    name: String,
    soft: i64,
    hard: i64,
}

impl From<UlimitBody> for Ulimit {
    fn from(body: UlimitBody) -> Self {
        Ulimit {
            name: body.name,
            soft: body.soft,
            hard: body.hard,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicyBody {
    name: String,
    maximum_retry_count: u32,
}

/// POST /containers/create?name=
pub async fn create(daemon: Arc<Daemon>, query: Query, body: Incoming) -> Result<Reply> {
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_bytes();
    let request: CreateBody = crate::http::decode_json(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid container config: {e}")))?;
    let image = request
        .image
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("no image given: name the image to run"))?;
    let host = request.host_config.unwrap_or_default();
    let anonymous: Vec<String> = request.volumes.unwrap_or_default().into_keys().collect();
    let mounts = keel_engine::mounts::parse(
        &host.binds.unwrap_or_default(),
        &anonymous,
        &host.mounts.unwrap_or_default(),
        &host.tmpfs.unwrap_or_default(),
    )?;
    let network = NetworkRequest {
        mode: host.network_mode,
        port_bindings: host.port_bindings,
        publish_all: host.publish_all_ports,
        exposed: request.exposed_ports,
        dns: host.dns,
        dns_search: host.dns_search,
        dns_options: host.dns_options,
        extra_hosts: host.extra_hosts,
        links: host.links,
        endpoints: request
            .networking_config
            .unwrap_or_default()
            .endpoints_config,
        mac_address: request.mac_address,
    }
    .into_config()?;
    let log = host
        .log_config
        .map(|l| keel_engine::log::LogConfig {
            driver: l.r#type,
            options: l.config.unwrap_or_default(),
        })
        .unwrap_or_default();
    let config = Config {
        image,
        network,
        log,
        cmd: request.cmd.filter(|c| !c.is_empty()),
        entrypoint: request.entrypoint.filter(|e| !e.is_empty()),
        env: request.env.unwrap_or_default(),
        working_dir: request.working_dir.filter(|w| !w.is_empty()),
        user: request.user.filter(|u| !u.is_empty()),
        hostname: request.hostname.filter(|h| !h.is_empty()),
        labels: request.labels.unwrap_or_default(),
        auto_remove: host.auto_remove,
        mounts,
        restart: host
            .restart_policy
            .map(|p| RestartPolicy {
                name: p.name,
                maximum_retry_count: p.maximum_retry_count,
            })
            .unwrap_or_default(),
        resources: Resources {
            memory: host.memory,
            memory_swap: host.memory_swap,
            memory_reservation: host.memory_reservation,
            nano_cpus: host.nano_cpus,
            cpu_shares: host.cpu_shares,
            cpu_quota: host.cpu_quota,
            cpu_period: host.cpu_period,
            cpuset_cpus: host.cpuset_cpus.unwrap_or_default(),
            cpuset_mems: host.cpuset_mems.unwrap_or_default(),
            pids_limit: host.pids_limit.unwrap_or_default(),
            ulimits: host
                .ulimits
                .unwrap_or_default()
                .into_iter()
                .map(Ulimit::from)
                .collect(),
            ..Resources::default()
        },
        stop_signal: request
            .stop_signal
            .filter(|s| !s.is_empty())
            .map(|name| keel_engine::Signal::parse(&name))
            .transpose()?,
        healthcheck: request.healthcheck,
        init: host.init.unwrap_or(false),
        stop_timeout: request.stop_timeout,
        tty: request.tty,
        open_stdin: request.open_stdin,
        stdin_once: request.stdin_once,
        security: Security {
            privileged: host.privileged,
            read_only: host.readonly_rootfs,
            cap_add: host.cap_add.unwrap_or_default(),
            cap_drop: host.cap_drop.unwrap_or_default(),
            security_opt: host.security_opt.unwrap_or_default(),
        },
    };
    let name = query.get("name").map(str::to_owned);
    blocking(move || {
        let container = daemon.engine.create(name.as_deref(), config)?;
        Ok(json(
            StatusCode::CREATED,
            &json!({"Id": container.id, "Warnings": []}),
        ))
    })
    .await
}

/// POST /containers/{id}/start
pub async fn start(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    blocking(move || {
        if daemon.engine.container(&name)?.state.status == Status::Running {
            return Ok(empty(StatusCode::NOT_MODIFIED));
        }
        daemon.engine.start(&name)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// POST /containers/{id}/wait?condition=
pub async fn wait(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let condition = match query.get("condition").unwrap_or("not-running") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\": use not-running, next-exit or removed"
            )));
        }
    };
    // Checked now, so an unknown container is a 404 before anything streams.
    let engine = Arc::clone(&daemon.engine);
    let id = blocking(move || Ok(engine.wait_target(&name)?)).await?;
    // The head goes out at once: the docker CLI starts the container only
    // once its wait is acknowledged. The body follows at the exit.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        let body = match daemon.engine.wait(&id, condition) {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(error) => {
                json!({"StatusCode": -1, "Error": {"Message": crate::http::message(error)}})
            }
        };
        let mut bytes = serde_json::to_vec(&body).expect("JSON");
        bytes.push(b'\n');
        let _ = tx.blocking_send(Ok(Bytes::from(bytes)));
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::channel(rx))
        .expect("a valid response"))
}

/// POST /containers/{id}/kill?signal=
pub async fn kill(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let signal = query
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL")
        .to_owned();
    blocking(move || {
        daemon.engine.kill(&name, &signal)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `t`, the seconds stop and restart wait before SIGKILL (else the
/// container's own).
fn stop_timeout(query: &Query) -> Option<Duration> {
    query
        .get("t")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
}

/// POST /containers/{id}/stop?t=
pub async fn stop(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let timeout = stop_timeout(&query);
    blocking(move || {
        let was_running = daemon.engine.container(&name)?.state.status == Status::Running;
        // Stopped either way: a restart policy waiting to start it gives up.
        daemon.engine.stop(&name, timeout)?;
        Ok(empty(match was_running {
            true => StatusCode::NO_CONTENT,
            false => StatusCode::NOT_MODIFIED,
        }))
    })
    .await
}

/// POST /containers/{id}/restart?t=
pub async fn restart(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let timeout = stop_timeout(&query);
    blocking(move || {
        daemon.engine.restart(&name, timeout)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// POST /containers/{id}/rename?name=
pub async fn rename(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let new_name = query.get("name").unwrap_or_default().to_owned();
    blocking(move || {
        daemon.engine.rename(&name, &new_name)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// DELETE /containers/{id}?force=
pub async fn remove(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let (force, volumes) = (query.flag("force"), query.flag("v"));
    blocking(move || {
        daemon.engine.remove(&name, force, volumes)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

fn command(container: &Container) -> String {
    std::iter::once(container.path.as_str())
        .chain(container.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"; an exit whose
/// time is not known (its monitor was killed) is "Exited (255)".
fn status_text(container: &Container) -> String {
    let since = |time: &str| {
        let then = keel_time::unix_seconds(time).unwrap_or(0);
        keel_time::human_duration(keel_time::now_unix() - then)
    };
    match container.state.status {
        Status::Created => "Created".to_owned(),
        Status::Running => {
            let up = format!("Up {}", since(&container.state.started_at));
            let health = container.state.health.as_ref().map(|h| h.status.as_str());
            match (container.state.paused, health) {
                (true, _) => format!("{up} (Paused)"),
                (false, Some("starting")) => format!("{up} (health: starting)"),
                (false, Some(health)) => format!("{up} ({health})"),
                (false, None) => up,
            }
        }
        Status::Exited => {
            let finished = keel_time::unix_seconds(&container.state.finished_at).unwrap_or(0);
            let code = container.state.exit_code;
            match keel_time::ago(finished, keel_time::now_unix()) {
                ago if ago.is_empty() => format!("Exited ({code})"),
                ago => format!("Exited ({code}) {ago}"),
            }
        }
    }
}

/// Docker's State.Status: `paused` for a running container that is.
fn state_name(container: &Container) -> &'static str {
    match container.state.paused && container.state.status == Status::Running {
        true => "paused",
        false => container.state.status.as_str(),
    }
}

/// POST /containers/{id}/pause and /unpause
pub async fn pause(daemon: Arc<Daemon>, name: String, pause: bool) -> Result<Reply> {
    blocking(move || {
        match pause {
            true => daemon.engine.pause(&name)?,
            false => daemon.engine.unpause(&name)?,
        }
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// POST /containers/prune (no filters yet: refused, not ignored)
pub async fn prune(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filter = crate::prune::PruneFilter::parse(&query, &[])?;
    blocking(move || {
        let (ids, bytes) = daemon
            .engine
            .prune(|c| filter.selects(&c.created, &c.config.labels));
        Ok(json(
            StatusCode::OK,
            &json!({"ContainersDeleted": ids, "SpaceReclaimed": bytes}),
        ))
    })
    .await
}

/// A container's mounts as inspect and list show them.
fn mounts(daemon: &Daemon, container: &Container) -> Vec<Value> {
    container
        .config
        .mounts
        .iter()
        .map(|m| {
            let mut shown = json!({
                "Type": m.kind.as_str(),
                "Source": m.source,
                "Destination": m.target,
                "Mode": "",
                "RW": !m.read_only,
                "Propagation": m.propagation.clone().unwrap_or_default(),
            });
            if m.kind == keel_engine::mounts::Kind::Volume {
                shown["Name"] = json!(m.source);
                shown["Driver"] = json!("local");
                shown["Mode"] = json!(if m.copy { "z" } else { "nocopy" });
                if let Ok(volume) = daemon.engine.volume(&m.source) {
                    shown["Source"] = json!(volume.mountpoint);
                }
            }
            shown
        })
        .collect()
}

/// A container as GET /containers/json lists it.
pub fn summary(daemon: &Daemon, container: &Container) -> Value {
    json!({
        "Id": container.id,
        "Names": [format!("/{}", container.name)],
        "Image": container.config.image,
        "ImageID": container.image_id,
        "Command": command(container),
        "Created": keel_time::unix_seconds(&container.created).unwrap_or(0),
        "Ports": network::summary_ports(container),
        "Labels": container.config.labels,
        "State": state_name(container),
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.config.network.mode_name()},
        "NetworkSettings": {"Networks": network::networks(daemon, container)},
        "Mounts": mounts(daemon, container),
    })
}

/// GET /containers/json?all=
pub async fn list(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filters = Filters::parse(
        &query,
        &[
            "id", "name", "label", "status", "exited", "health", "ancestor", "network", "before",
            "since", "volume",
        ],
        &["isolation", "is-task", "publish", "expose"],
    )?;
    for (key, values) in filters.iter() {
        for value in values {
            check_value(key, value)?;
        }
    }
    // A status filter looks at every container, as Docker's.
    let all = query.flag("all") || filters.contains("status");
    // `before` and `since` name containers: compared by creation time.
    let mut created: BTreeMap<&str, String> = BTreeMap::new();
    for name in filters.get("before").chain(filters.get("since")) {
        created.insert(name, daemon.engine.container(name)?.created);
    }
    let containers = daemon.engine.containers();
    let out: Vec<Value> = containers
        .iter()
        .filter(|c| all || c.state.status == Status::Running)
        // Every label given must hold; of any other key, one value.
        .filter(|c| {
            filters.has_labels("label", &c.config.labels)
                && filters.iter().all(|(key, values)| {
                    key == "label" || values.iter().any(|value| matches(c, key, value, &created))
                })
        })
        .map(|c| summary(&daemon, c))
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// Docker's `health` filter values.
const HEALTH: [&str; 4] = ["starting", "healthy", "unhealthy", "none"];

/// A `ps --filter` value, checked as Docker checks it.
fn check_value(key: &str, value: &str) -> Result<()> {
    const STATUSES: [&str; 7] = [
        "created",
        "restarting",
        "running",
        "removing",
        "paused",
        "exited",
        "dead",
    ];
    match key {
        "health" if HEALTH.contains(&value) => Ok(()),
        "health" => Err(ApiError::bad_request(format!(
            "Unrecognised filter value for health: {value}"
        ))),
        "status" if STATUSES.contains(&value) => Ok(()),
        "exited" if value.parse::<i32>().is_ok() => Ok(()),
        "status" | "exited" => Err(ApiError::bad_request(format!(
            "invalid filter '{key}={value}'"
        ))),
        _ => Ok(()),
    }
}

/// Whether a container passes one `ps --filter KEY=VALUE`; `created` has
/// the creation time of the containers `before` and `since` name.
fn matches(c: &Container, key: &str, value: &str, created: &BTreeMap<&str, String>) -> bool {
    match key {
        "id" => c.id.starts_with(value),
        // Docker tries the name with its leading slash and without.
        "name" => regex_match(value, &format!("/{}", c.name)) || regex_match(value, &c.name),
        "status" => state_name(c) == value,
        "exited" => c.state.status == Status::Exited && value.parse() == Ok(c.state.exit_code),
        "health" => {
            c.state
                .health
                .as_ref()
                .map_or("none", |h| h.status.as_str())
                == value
        }
        "ancestor" => {
            // By the name it was run as, or an id (12 hex digits at least).
            let short_id = value.trim_start_matches("sha256:");
            c.config.image == value
                || c.config.image == format!("{value}:latest")
                || (short_id.len() >= 12
                    && c.image_id
                        .trim_start_matches("sha256:")
                        .starts_with(short_id))
        }
        "network" => c.config.network.mode_name() == value || c.state.endpoints.contains_key(value),
        "before" => keel_time::unix_nanos(&c.created) < keel_time::unix_nanos(&created[value]),
        "since" => keel_time::unix_nanos(&c.created) > keel_time::unix_nanos(&created[value]),
        // A volume's name (a bind's source) or the mount's destination.
        "volume" => c
            .config
            .mounts
            .iter()
            .any(|m| m.source == value || m.target == value),
        _ => false,
    }
}

/// GET /containers/{id}/json
pub async fn inspect(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    let c = daemon.engine.container(&name)?;
    let log_path = daemon.engine.log_path(&c.id);
    let status = c.state.status;
    let security = &c.config.security;
    // Docker shows unset lists as null.
    let non_empty = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    let mut inspected = json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": state_name(&c),
            "Running": status == Status::Running,
            "Paused": c.state.paused,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": c.state.pid,
            "ExitCode": c.state.exit_code,
            "Error": c.state.error,
            "StartedAt": if c.state.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &c.state.started_at },
            "FinishedAt": if c.state.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &c.state.finished_at },
        },
        "Image": c.image_id,
        "LogPath": log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "AutoRemove": c.config.auto_remove,
            "Init": c.config.init.then_some(true),
            "LogConfig": {"Type": "json-file", "Config": c.config.log.options},
            "RestartPolicy": {
                "Name": if c.config.restart.name.is_empty() { "no" } else { &c.config.restart.name },
                "MaximumRetryCount": c.config.restart.maximum_retry_count,
            },
            "Memory": c.config.resources.memory,
            "MemorySwap": c.config.resources.memory_swap,
            "MemoryReservation": c.config.resources.memory_reservation,
            "NanoCpus": c.config.resources.nano_cpus,
            "CpuShares": c.config.resources.cpu_shares,
            "CpuPeriod": c.config.resources.cpu_period,
            "CpuQuota": c.config.resources.cpu_quota,
            "CpusetCpus": c.config.resources.cpuset_cpus,
            "CpusetMems": c.config.resources.cpuset_mems,
            "BlkioWeight": c.config.resources.blkio_weight,
            "PidsLimit": (c.config.resources.pids_limit > 0).then_some(c.config.resources.pids_limit),
            "Privileged": security.privileged,
            "ReadonlyRootfs": security.read_only,
            "CapAdd": non_empty(&security.cap_add),
            "CapDrop": non_empty(&security.cap_drop),
            "SecurityOpt": non_empty(&security.security_opt),
        },
        "Mounts": mounts(&daemon, &c),
        "Config": {
            "Hostname": c.config.hostname.clone().unwrap_or_else(|| c.id[..12].to_owned()),
            "User": c.config.user.clone().unwrap_or_default(),
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "StdinOnce": c.config.stdin_once,
            "AttachStdin": c.config.open_stdin,
            "AttachStdout": true,
            "AttachStderr": true,
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": c.config.entrypoint,
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir.clone().unwrap_or_default(),
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
            "ExposedPorts": network::exposed(&c),
            "Healthcheck": c.config.healthcheck,
        },
        "NetworkSettings": network::settings(&daemon, &c),
    });
    if let (Some(host), Value::Object(extra)) = (
        inspected["HostConfig"].as_object_mut(),
        network::host_config(&c),
    ) {
        host.extend(extra);
    }
    // Docker leaves Health out without a healthcheck; testcontainers-node
    // reads a present one's Status.
    if let Some(health) = &c.state.health {
        inspected["State"]["Health"] = json!(health);
    }
    Ok(json(StatusCode::OK, &inspected))
}

/// Sends the container's log entries as Docker's logs endpoint does:
/// framed by stream (or raw, for a terminal), with their times if asked.
fn stream_log(
    daemon: Arc<Daemon>,
    id: String,
    query: LogQuery,
    timestamps: bool,
    raw: bool,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let _ = daemon.engine.logs(
        &id,
        &query,
        || tx.is_closed(),
        |entry| {
            let payload = match timestamps {
                true => format!("{} {}", entry.time, entry.line),
                false => entry.line,
            };
            let chunk = match (raw, entry.stream) {
                (true, _) => payload.into_bytes(),
                (false, LogStream::Stdout) => stream::frame(STDOUT, payload.as_bytes()),
                (false, LogStream::Stderr) => stream::frame(STDERR, payload.as_bytes()),
            };
            tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
        },
    );
}

/// GET /containers/{id}/logs
pub async fn logs(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let container = daemon.engine.container(&name)?;
    let logs = LogQuery {
        since: query.time("since")?,
        until: query.time("until")?,
        stdout: query.flag("stdout"),
        stderr: query.flag("stderr"),
        follow: query.flag("follow"),
        tail: query.get("tail").and_then(|t| t.parse().ok()),
    };
    if !logs.stdout && !logs.stderr {
        return Err(ApiError::bad_request("You must choose at least one stream"));
    }
    let (timestamps, raw) = (query.flag("timestamps"), container.config.tty);
    let id = container.id;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::task::spawn_blocking(move || stream_log(daemon, id, logs, timestamps, raw, tx));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            if container.config.tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )
        .body(Body::channel(rx))
        .expect("a valid response"))
}

/// POST /containers/{id}/attach: hijacks the connection and joins it to
/// the container's stdio, from its start if it has not started yet (`docker
/// run` attaches first). The past output is the logs endpoint's to give.
pub async fn attach(
    daemon: Arc<Daemon>,
    name: String,
    query: Query,
    request: Request<Incoming>,
) -> Result<Reply> {
    let (streams, connect) = attachment(&daemon, &name, &query, &|key| query.flag(key))?;
    Ok(attach::hijack(request, streams, connect, || {}))
}

/// GET /containers/{id}/attach/ws: the attachment over a WebSocket. As
/// dockerd, the streams default to all three before API 1.42.
pub async fn attach_websocket(
    daemon: Arc<Daemon>,
    name: String,
    query: Query,
    request: Request<Incoming>,
) -> Result<Reply> {
    let before_1_42 = crate::api_version(request.uri().path()).is_some_and(|v| v < (1, 42));
    let (streams, connect) = attachment(&daemon, &name, &query, &|key| {
        before_1_42 || query.flag(key)
    })?;
    attach::websocket(request, streams, connect, || {})
}

/// The streams container `name`'s attachment takes (`asked` says which of
/// stdin, stdout and stderr the client wants) and how it connects.
fn attachment(
    daemon: &Daemon,
    name: &str,
    query: &Query,
    asked: &dyn Fn(&str) -> bool,
) -> Result<(
    Streams,
    impl FnOnce() -> std::result::Result<std::os::unix::net::UnixStream, String> + Send + 'static,
)> {
    let container = daemon.engine.container(name)?;
    let streams = Streams {
        stdin: asked("stdin") && container.config.open_stdin,
        stdout: asked("stdout"),
        stderr: asked("stderr"),
        tty: container.config.tty,
        detach_keys: attach::detach_keys(query.get("detachKeys"))?,
    };
    // Asked for now, so a start that follows the response is seen.
    let attachment = match query.flag("stream") {
        true => Some(daemon.engine.attach(&container.id)?),
        false => None,
    };
    let connect = move || {
        attachment
            .and_then(keel_engine::Attachment::connection)
            .ok_or_else(String::new)
    };
    Ok((streams, connect))
}

/// POST /containers/{id}/resize?h=&w=
pub async fn resize(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let (rows, cols) = terminal_size(&query)?;
    blocking(move || {
        daemon.engine.resize(&name, rows, cols)?;
        Ok(empty(StatusCode::OK))
    })
    .await
}

/// `h` and `w` of a resize request.
pub fn terminal_size(query: &Query) -> Result<(u16, u16)> {
    let number = |key: &str| {
        query.get(key).unwrap_or("0").parse::<u16>().map_err(|_| {
            ApiError::bad_request(format!("invalid resize {key}: {:?}", query.get(key)))
        })
    };
    Ok((number("h")?, number("w")?))
}

/// GET /containers/{id}/export: the container's filesystem as a tarball.
pub async fn export(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    let id = daemon.engine.container(&name)?.id;
    Ok(crate::http::streamed("application/x-tar", move |out| {
        daemon
            .engine
            .images()
            .export(&id, out)
            .map_err(|e| std::io::Error::other(crate::http::message(e)))
    }))
}
