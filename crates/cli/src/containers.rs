//! The container commands: run, create, start, ps, logs, wait, stop, kill,
//! rm.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, DaemonError, Upload, encode};
use crate::registry::Shown;
use crate::session::{self, Session};
use crate::usage;
use keel_time::{ago, now_unix};

/// Exit codes `docker run` uses for its own failures.
const EXIT_DAEMON: u8 = 125;
const EXIT_CANNOT_INVOKE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

/// An exit with a code and, for failures, a message: `run` passes on the
/// container's code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or(""))
    }
}

impl std::error::Error for Exit {}

/// What `run` and `create` take before the image.
#[derive(Default)]
struct CreateFlags {
    name: Option<String>,
    detach: bool,
    auto_remove: bool,
    env: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    entrypoint: Option<String>,
    hostname: Option<String>,
    labels: BTreeMap<String, String>,
    privileged: bool,
    read_only: bool,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    security_opt: Vec<String>,
    interactive: bool,
    tty: bool,
    detach_keys: Option<String>,
    /// `--sig-proxy=false`: signals to `run` stay with it.
    no_sig_proxy: bool,
    /// `-v` with a source (binds and named volumes).
    binds: Vec<String>,
    /// `-v TARGET`: anonymous volumes.
    volumes: BTreeMap<String, Value>,
    mounts: Vec<Value>,
    tmpfs: BTreeMap<String, String>,
    /// `--restart NAME[:MAX]`.
    restart: Option<String>,
    /// HostConfig's resource fields, by their API names.
    resources: serde_json::Map<String, Value>,
    ulimits: Vec<Value>,
    stop_signal: Option<String>,
    stop_timeout: Option<u64>,
    /// `-p`: the API's PortBindings.
    port_bindings: serde_json::Map<String, Value>,
    /// `--expose` and the published ports: the API's ExposedPorts.
    exposed: serde_json::Map<String, Value>,
    publish_all: bool,
    network: Option<String>,
    dns: Vec<String>,
    dns_search: Vec<String>,
    dns_options: Vec<String>,
    extra_hosts: Vec<String>,
    links: Vec<String>,
    network_aliases: Vec<String>,
    ip: Option<String>,
    mac_address: Option<String>,
    log_driver: String,
    log_options: BTreeMap<String, String>,
    /// `--pull`: always, missing (the default) or never.
    pull: Option<String>,
    platform: Option<String>,
    /// `--health-*`: the API's Healthcheck fields.
    health: serde_json::Map<String, Value>,
    no_healthcheck: bool,
    init: bool,
}

/// `run`'s and `create`'s flags, image and command; a bad flag exits 125,
/// as docker's do.
fn parse_create(
    parser: &mut lexopt::Parser,
    synopsis: &str,
) -> Result<(CreateFlags, String, Vec<String>)> {
    parse_create_flags(parser, synopsis).map_err(|e| {
        Exit {
            code: EXIT_DAEMON,
            message: Some(format!("keel: {e:#}")),
        }
        .into()
    })
}

fn parse_create_flags(
    parser: &mut lexopt::Parser,
    synopsis: &str,
) -> Result<(CreateFlags, String, Vec<String>)> {
    let mut flags = CreateFlags::default();
    let image = loop {
        match parser.next()? {
            Some(Short('d') | Long("detach")) => flags.detach = true,
            Some(Long("name")) => flags.name = Some(parser.value()?.string()?),
            Some(Long("rm")) => flags.auto_remove = true,
            Some(Short('e') | Long("env")) => {
                let entry: String = parser.value()?.string()?;
                // `-e NAME` takes NAME's value from this environment.
                flags.env.push(match entry.split_once('=') {
                    Some(_) => entry,
                    None => match std::env::var(&entry) {
                        Ok(value) => format!("{entry}={value}"),
                        Err(_) => continue,
                    },
                });
            }
            Some(Long("env-file")) => {
                let path: String = parser.value()?.string()?;
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("open {path}"))?;
                for line in text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    flags.env.push(line.to_owned());
                }
            }
            Some(Short('w') | Long("workdir")) => {
                flags.working_dir = Some(parser.value()?.string()?)
            }
            Some(Short('u') | Long("user")) => flags.user = Some(parser.value()?.string()?),
            Some(Long("entrypoint")) => flags.entrypoint = Some(parser.value()?.string()?),
            Some(Short('h') | Long("hostname")) => flags.hostname = Some(parser.value()?.string()?),
            Some(Short('l') | Long("label")) => {
                let label: String = parser.value()?.string()?;
                let (key, value) = label.split_once('=').unwrap_or((&label, ""));
                flags.labels.insert(key.to_owned(), value.to_owned());
            }
            Some(Long("privileged")) => flags.privileged = true,
            Some(Long("read-only")) => flags.read_only = true,
            Some(Long("cap-add")) => flags.cap_add.push(parser.value()?.string()?),
            Some(Long("cap-drop")) => flags.cap_drop.push(parser.value()?.string()?),
            Some(Long("security-opt")) => flags
                .security_opt
                .push(security_option(parser.value()?.string()?)?),
            Some(Short('i') | Long("interactive")) => flags.interactive = true,
            Some(Short('t') | Long("tty")) => flags.tty = true,
            Some(Long("detach-keys")) => flags.detach_keys = Some(parser.value()?.string()?),
            Some(Long("sig-proxy")) => flags.no_sig_proxy = !bool_value(parser, "sig-proxy")?,
            Some(Short('v') | Long("volume")) => {
                let spec: String = parser.value()?.string()?;
                match spec.contains(':') {
                    true => flags.binds.push(spec),
                    false => {
                        flags.volumes.insert(spec, json!({}));
                    }
                }
            }
            Some(Long("restart")) => flags.restart = Some(parser.value()?.string()?),
            Some(Short('m') | Long("memory")) => {
                let bytes = size_flag(parser, "-m, --memory")?;
                flags.resources.insert("Memory".into(), json!(bytes));
            }
            Some(Long("memory-swap")) => {
                let bytes = memory_swap_flag(parser)?;
                flags.resources.insert("MemorySwap".into(), json!(bytes));
            }
            Some(Long("memory-reservation")) => {
                let bytes = size_flag(parser, "--memory-reservation")?;
                flags
                    .resources
                    .insert("MemoryReservation".into(), json!(bytes));
            }
            Some(Long("cpus")) => {
                let nanos = cpus_flag(parser)?;
                flags.resources.insert("NanoCpus".into(), json!(nanos));
            }
            Some(Short('c') | Long("cpu-shares")) => number_flag(
                parser,
                &mut flags.resources,
                "CpuShares",
                "-c, --cpu-shares",
            )?,
            Some(Long("cpu-quota")) => {
                number_flag(parser, &mut flags.resources, "CpuQuota", "--cpu-quota")?
            }
            Some(Long("cpu-period")) => {
                number_flag(parser, &mut flags.resources, "CpuPeriod", "--cpu-period")?
            }
            Some(Long("pids-limit")) => {
                number_flag(parser, &mut flags.resources, "PidsLimit", "--pids-limit")?
            }
            Some(Long("cpuset-cpus")) => {
                let cpus: String = parser.value()?.string()?;
                flags.resources.insert("CpusetCpus".into(), json!(cpus));
            }
            Some(Long("ulimit")) => flags.ulimits.push(ulimit_flag(&parser.value()?.string()?)?),
            Some(Long("stop-signal")) => flags.stop_signal = Some(parser.value()?.string()?),
            Some(Long("stop-timeout")) => {
                let text: String = parser.value()?.string()?;
                flags.stop_timeout = Some(text.parse().with_context(|| {
                    format!("invalid argument \"{text}\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"{text}\": invalid syntax")
                })?);
            }
            Some(Long("mount")) => flags.mounts.push(mount_option(&parser.value()?.string()?)?),
            Some(Long("tmpfs")) => {
                let spec: String = parser.value()?.string()?;
                let (target, options) = spec.split_once(':').unwrap_or((&spec, ""));
                flags.tmpfs.insert(target.to_owned(), options.to_owned());
            }
            Some(Short('p') | Long("publish")) => {
                let spec: String = parser.value()?.string()?;
                for (port, binding) in keel_network::ports::parse_publish(&spec)? {
                    let key = port.to_string();
                    flags.exposed.insert(key.clone(), json!({}));
                    let host_ip = binding.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
                    let entry = flags.port_bindings.entry(key).or_insert_with(|| json!([]));
                    if let Some(list) = entry.as_array_mut() {
                        list.push(json!({"HostIp": host_ip, "HostPort": binding.host_port_text()}));
                    }
                }
            }
            Some(Long("expose")) => {
                let spec: String = parser.value()?.string()?;
                for (port, _) in keel_network::ports::parse_publish(&spec)
                    .with_context(|| format!("invalid range format for --expose: {spec}"))?
                {
                    flags.exposed.insert(port.to_string(), json!({}));
                }
            }
            Some(Short('P') | Long("publish-all")) => flags.publish_all = true,
            Some(Long("network") | Long("net")) => flags.network = Some(parser.value()?.string()?),
            Some(Long("dns")) => flags.dns.push(parser.value()?.string()?),
            Some(Long("dns-search")) => flags.dns_search.push(parser.value()?.string()?),
            Some(Long("dns-option") | Long("dns-opt")) => {
                flags.dns_options.push(parser.value()?.string()?)
            }
            Some(Long("add-host")) => flags.extra_hosts.push(parser.value()?.string()?),
            Some(Long("link")) => flags.links.push(parser.value()?.string()?),
            Some(Long("network-alias") | Long("net-alias")) => {
                flags.network_aliases.push(parser.value()?.string()?)
            }
            Some(Long("ip")) => flags.ip = Some(parser.value()?.string()?),
            Some(Long("mac-address")) => flags.mac_address = Some(parser.value()?.string()?),
            Some(Long("log-driver")) => flags.log_driver = parser.value()?.string()?,
            Some(Long("log-opt")) => {
                let option: String = parser.value()?.string()?;
                let Some((key, value)) = option.split_once('=') else {
                    bail!(
                        "invalid key value pair format in driver options: {option} (expected KEY=VALUE)"
                    );
                };
                flags.log_options.insert(key.to_owned(), value.to_owned());
            }
            Some(Long("pull")) => {
                let policy: String = parser.value()?.string()?;
                if !matches!(policy.as_str(), "always" | "missing" | "never") {
                    bail!(
                        "invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\""
                    );
                }
                flags.pull = Some(policy);
            }
            Some(Long("platform")) => flags.platform = Some(parser.value()?.string()?),
            Some(Long("health-cmd")) => {
                let command: String = parser.value()?.string()?;
                flags
                    .health
                    .insert("Test".into(), json!(["CMD-SHELL", command]));
            }
            Some(Long("health-interval")) => {
                health_duration(parser, &mut flags.health, "Interval", "--health-interval")?
            }
            Some(Long("health-timeout")) => {
                health_duration(parser, &mut flags.health, "Timeout", "--health-timeout")?
            }
            Some(Long("health-start-period")) => health_duration(
                parser,
                &mut flags.health,
                "StartPeriod",
                "--health-start-period",
            )?,
            Some(Long("health-start-interval")) => health_duration(
                parser,
                &mut flags.health,
                "StartInterval",
                "--health-start-interval",
            )?,
            Some(Long("health-retries")) => {
                number_flag(parser, &mut flags.health, "Retries", "--health-retries")?;
                if flags.health["Retries"].as_i64() < Some(0) {
                    bail!("--health-retries cannot be negative");
                }
            }
            Some(Long("no-healthcheck")) => flags.no_healthcheck = true,
            Some(Long("init")) => flags.init = true,
            Some(Value(image)) => break image.string()?,
            Some(other) => return Err(usage(other.unexpected(), synopsis)),
            None => bail!(
                "\"keel {}\" requires at least 1 argument.\nUsage:  keel {synopsis}",
                synopsis.split(' ').next().unwrap_or_default()
            ),
        }
    };
    if flags.no_healthcheck {
        if !flags.health.is_empty() {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        flags.health.insert("Test".into(), json!(["NONE"]));
    }
    let command = rest_of_line(parser)?;
    Ok((flags, image, command))
}

/// A `--health-*` duration (Go's syntax), into the API's nanoseconds.
fn health_duration(
    parser: &mut lexopt::Parser,
    into: &mut serde_json::Map<String, Value>,
    key: &str,
    flag: &str,
) -> Result<()> {
    let text: String = parser.value()?.string()?;
    let nanos = keel_time::parse_go_duration(&text).with_context(|| {
        format!(
            "invalid argument \"{text}\" for \"{flag}\" flag: time: invalid duration \"{text}\""
        )
    })?;
    if nanos < 0 {
        bail!("{flag} cannot be negative");
    }
    into.insert(key.to_owned(), json!(nanos as i64));
    Ok(())
}

/// `--mount type=bind,source=/a,target=/b,readonly` as the API's Mount.
fn mount_option(text: &str) -> Result<Value> {
    let mut mount = json!({"Type": "volume"});
    for field in text.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_lowercase(), value),
            None => (field.to_lowercase(), "true"),
        };
        let flag = || -> Result<bool> {
            match value {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => bail!("invalid value for {key}: {value}"),
            }
        };
        match key.as_str() {
            "type" => mount["Type"] = json!(value),
            "source" | "src" => mount["Source"] = json!(value),
            "target" | "destination" | "dst" => mount["Target"] = json!(value),
            "readonly" | "ro" => mount["ReadOnly"] = json!(flag()?),
            "bind-propagation" => mount["BindOptions"] = json!({"Propagation": value}),
            "volume-nocopy" => mount["VolumeOptions"] = json!({"NoCopy": flag()?}),
            "tmpfs-size" => {
                let bytes = keel_units::ram_in_bytes(value)
                    .with_context(|| format!("invalid value for tmpfs-size: {value}"))?;
                mount["TmpfsOptions"]["SizeBytes"] = json!(bytes);
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(value, 8)
                    .with_context(|| format!("invalid value for tmpfs-mode: {value}"))?;
                mount["TmpfsOptions"]["Mode"] = json!(mode);
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    Ok(mount)
}

/// A size flag's value in bytes, or docker's error naming the flag.
pub(crate) fn size_flag(parser: &mut lexopt::Parser, flag: &str) -> Result<i64> {
    let text: String = parser.value()?.string()?;
    keel_units::ram_in_bytes(&text)
        .with_context(|| format!("invalid argument \"{text}\" for \"{flag}\" flag"))
}

/// `--memory-swap`: bytes, or -1 for unlimited swap.
pub(crate) fn memory_swap_flag(parser: &mut lexopt::Parser) -> Result<i64> {
    let text: String = parser.value()?.string()?;
    match text.as_str() {
        "-1" => Ok(-1),
        _ => keel_units::ram_in_bytes(&text)
            .with_context(|| format!("invalid argument \"{text}\" for \"--memory-swap\" flag")),
    }
}

/// `--cpus 1.5` in billionths of a CPU, as the API's NanoCpus.
pub(crate) fn cpus_flag(parser: &mut lexopt::Parser) -> Result<i64> {
    let text: String = parser.value()?.string()?;
    let cpus: f64 = text.parse().ok().filter(|c: &f64| c.is_finite()).with_context(|| {
        format!("invalid argument \"{text}\" for \"--cpus\" flag: failed to parse {text} as a rational number")
    })?;
    Ok((cpus * 1e9) as i64)
}

/// An integer flag's value, or docker's error naming the flag.
pub(crate) fn int_flag(parser: &mut lexopt::Parser, flag: &str) -> Result<i64> {
    let text: String = parser.value()?.string()?;
    text.parse().with_context(|| {
        format!("invalid argument \"{text}\" for \"{flag}\" flag: strconv.ParseInt: parsing \"{text}\": invalid syntax")
    })
}

/// An integer flag stored under its API name.
fn number_flag(
    parser: &mut lexopt::Parser,
    into: &mut serde_json::Map<String, Value>,
    key: &str,
    flag: &str,
) -> Result<()> {
    into.insert(key.to_owned(), json!(int_flag(parser, flag)?));
    Ok(())
}

/// `--ulimit nofile=1024[:2048]` as the API's Ulimit.
pub(crate) fn ulimit_flag(text: &str) -> Result<Value> {
    let bad = || {
        anyhow::anyhow!(
            "invalid argument \"{text}\" for \"--ulimit\" flag: invalid ulimit argument: {text}"
        )
    };
    let (name, limits) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// A `--security-opt` as the docker CLI sends it: checked for a value,
/// and `seccomp=FILE` replaced by the profile itself (the daemon may not
/// see the client's files).
fn security_option(option: String) -> Result<String> {
    let (key, value) = match option.split_once('=') {
        Some(pair) => pair,
        None if option == "no-new-privileges" => return Ok(option),
        None => option.split_once(':').unwrap_or((&option, "")),
    };
    if value.is_empty() {
        bail!("Invalid --security-opt: {option:?}");
    }
    if key != "seccomp" || value == "builtin" || value == "unconfined" {
        return Ok(option);
    }
    let text = std::fs::read_to_string(value)
        .with_context(|| format!("opening seccomp profile ({value}) failed"))?;
    let profile: Value = serde_json::from_str(&text)
        .with_context(|| format!("compacting json for seccomp profile ({value}) failed"))?;
    Ok(format!("seccomp={profile}"))
}

/// `--restart on-failure:3` as the API's RestartPolicy.
pub(crate) fn restart_policy(text: Option<&str>) -> Result<Value> {
    let text = text.unwrap_or("no");
    let (name, count) = text.split_once(':').unwrap_or((text, "0"));
    let count: u32 = count.parse().with_context(|| {
        format!("invalid restart policy format: maximum retry count must be a number: {count}")
    })?;
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// The arguments after the image or container: the command, as typed.
fn rest_of_line(parser: &mut lexopt::Parser) -> Result<Vec<String>> {
    parser
        .raw_args()?
        .map(|arg| {
            arg.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))
        })
        .collect()
}

/// POST /containers/create; returns the new container's id.
fn create_container(
    client: &Client,
    flags: &CreateFlags,
    image: &str,
    command: &[String],
) -> Result<String> {
    let mut host = flags.resources.clone();
    host.insert("Ulimits".into(), json!(flags.ulimits));
    let body = json!({
        "Image": image,
        "Cmd": if command.is_empty() { Value::Null } else { json!(command) },
        "Entrypoint": flags.entrypoint.as_ref().map(|e| vec![e.clone()]),
        "Env": flags.env,
        "WorkingDir": flags.working_dir.clone().unwrap_or_default(),
        "User": flags.user.clone().unwrap_or_default(),
        "Hostname": flags.hostname.clone().unwrap_or_default(),
        "Labels": flags.labels,
        "Tty": flags.tty,
        "StopSignal": flags.stop_signal,
        "StopTimeout": flags.stop_timeout,
        "Healthcheck": (!flags.health.is_empty()).then_some(&flags.health),
        "Volumes": flags.volumes,
        "ExposedPorts": flags.exposed,
        "OpenStdin": flags.interactive,
        "AttachStdin": flags.interactive && !flags.detach,
        // `run -i` closes the container's stdin when ours ends.
        "StdinOnce": flags.interactive && !flags.detach,
        "HostConfig": {
            "AutoRemove": flags.auto_remove,
            "Init": flags.init.then_some(true),
            "Privileged": flags.privileged,
            "ReadonlyRootfs": flags.read_only,
            "CapAdd": flags.cap_add,
            "CapDrop": flags.cap_drop,
            "SecurityOpt": flags.security_opt,
            "Binds": flags.binds,
            "RestartPolicy": restart_policy(flags.restart.as_deref())?,
            "Mounts": flags.mounts,
            "Tmpfs": flags.tmpfs,
            "NetworkMode": flags.network.clone().unwrap_or_default(),
            "LogConfig": {"Type": flags.log_driver, "Config": flags.log_options},
            "PortBindings": flags.port_bindings,
            "PublishAllPorts": flags.publish_all,
            "Dns": flags.dns,
            "DnsSearch": flags.dns_search,
            "DnsOptions": flags.dns_options,
            "ExtraHosts": flags.extra_hosts,
            "Links": flags.links,
        },
    });
    let mut body = body;
    if !flags.network_aliases.is_empty() || flags.ip.is_some() || flags.mac_address.is_some() {
        let network = flags.network.clone().unwrap_or_else(|| "bridge".to_owned());
        body["NetworkingConfig"] = json!({"EndpointsConfig": {network: {
            "Aliases": flags.network_aliases,
            "IPAMConfig": {"IPv4Address": flags.ip.clone().unwrap_or_default()},
            "MacAddress": flags.mac_address.clone().unwrap_or_default(),
        }}});
    }
    for (key, value) in host {
        body["HostConfig"][key] = value;
    }
    let path = match &flags.name {
        Some(name) => format!("/containers/create?name={}", encode(name)),
        None => "/containers/create".to_owned(),
    };
    let pull = |client: &Client| {
        crate::registry::pull_image(client, image, flags.platform.as_deref(), Shown::Stderr)
    };
    if flags.pull.as_deref() == Some("always") {
        pull(client)?;
    }
    let created = match client.json("POST", &path, Upload::Json(&body)) {
        // As docker: a missing image is pulled, then the create is retried.
        Err(error)
            if flags.pull.as_deref() != Some("never")
                && error
                    .downcast_ref::<DaemonError>()
                    .is_some_and(|DaemonError(text)| text.starts_with("No such image")) =>
        {
            let shown = match crate::registry::has_tag_or_digest(image) {
                true => image.to_owned(),
                false => format!("{image}:latest"),
            };
            eprintln!("Unable to find image '{shown}' locally");
            pull(client)?;
            client.json("POST", &path, Upload::Json(&body))?
        }
        other => other?,
    };
    Ok(created["Id"].as_str().unwrap_or_default().to_owned())
}

/// A daemon error as `docker run` reports it: the message, and 125.
fn run_failure(error: anyhow::Error) -> anyhow::Error {
    run_exit(EXIT_DAEMON, &error)
}

/// A failed start as `docker run` reports it: 127 when the command is not
/// there, 126 when it cannot be run, else 125. The daemon's message is all
/// a Docker client has, so this reads its words, as docker/cli's
/// `runStartContainerErr` does (the daemon and the runtime carry the kind
/// typed; only the wire is words).
fn start_failure(error: anyhow::Error) -> anyhow::Error {
    let text = match error.downcast_ref::<DaemonError>() {
        Some(DaemonError(text)) => text.as_str(),
        None => "",
    };
    let code = if ["executable file not found", "no such file or directory"]
        .iter()
        .any(|words| text.contains(words))
    {
        EXIT_NOT_FOUND
    } else if ["permission denied", "is a directory"]
        .iter()
        .any(|words| text.contains(words))
    {
        EXIT_CANNOT_INVOKE
    } else {
        EXIT_DAEMON
    };
    run_exit(code, &error)
}

fn run_exit(code: u8, error: &anyhow::Error) -> anyhow::Error {
    Exit {
        code,
        message: Some(format!("keel: {error:#}")),
    }
    .into()
}

/// `keel run [OPTIONS] IMAGE [COMMAND] [ARG...]`
pub fn run(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (flags, image, command) = parse_create(parser, "run [OPTIONS] IMAGE [COMMAND] [ARG...]")?;
    if flags.tty && flags.interactive && !flags.detach && !std::io::stdin().is_terminal() {
        return Err(Exit {
            code: EXIT_DAEMON,
            message: Some("keel: the input device is not a TTY".to_owned()),
        }
        .into());
    }
    let id = create_container(client, &flags, &image, &command).map_err(run_failure)?;
    if flags.detach {
        client
            .send("POST", &format!("/containers/{id}/start"))
            .map_err(start_failure)?;
        println!("{id}");
        return Ok(());
    }
    let session = Session {
        tty: flags.tty,
        stdin: flags.interactive,
        resize: Some(format!("/containers/{id}")),
        // As docker run: with a terminal too.
        signals_to: (!flags.no_sig_proxy).then(|| format!("/containers/{id}")),
        detach_keys: detach_keys(flags.detach_keys.as_deref())?,
    };
    let condition = if flags.auto_remove {
        "removed"
    } else {
        "not-running"
    };
    attach_and_wait(client, &id, &session, true, condition)
}

/// Attaches to container `id` (then starts it, with `start`: attached
/// first, so no output is missed), relays the session, and waits for
/// `condition`: the container's exit code is ours, unless the user
/// detached.
fn attach_and_wait(
    client: &Client,
    id: &str,
    session: &Session,
    start: bool,
    condition: &str,
) -> Result<()> {
    let stdin = u8::from(session.stdin);
    let attached = client
        .request(
            "POST",
            &format!("/containers/{id}/attach?stream=1&stdin={stdin}&stdout=1&stderr=1"),
            Upload::Upgrade(None),
        )?
        .success()
        .map_err(run_failure)?;
    if start {
        client
            .send("POST", &format!("/containers/{id}/start"))
            .map_err(start_failure)?;
    }
    if session::relay(client, attached, session)? {
        return Ok(());
    }
    let waited = client.json(
        "POST",
        &format!("/containers/{id}/wait?condition={condition}"),
        Upload::None,
    )?;
    let code = waited["StatusCode"].as_i64().unwrap_or(0);
    if code != 0 {
        return Err(Exit {
            code: code.clamp(0, 255) as u8,
            message: None,
        }
        .into());
    }
    Ok(())
}

/// `keel attach [--no-stdin] [--detach-keys K] [--sig-proxy=BOOL] CONTAINER`
pub fn attach(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut no_stdin, mut keys, mut sig_proxy) = (false, None, true);
    let names = names(parser, "attach [OPTIONS] CONTAINER", &mut |flag, parser| {
        Ok(match flag {
            "--no-stdin" => {
                no_stdin = true;
                true
            }
            "--sig-proxy" => {
                sig_proxy = bool_value(parser, "sig-proxy")?;
                true
            }
            "--detach-keys" => {
                keys = Some(parser.value()?.string()?);
                true
            }
            _ => false,
        })
    })?;
    let [name] = names.as_slice() else {
        bail!(
            "\"keel attach\" requires exactly 1 argument.\nUsage:  keel attach [OPTIONS] CONTAINER"
        );
    };
    attach_existing(client, name, !no_stdin, keys.as_deref(), sig_proxy, false)
}

/// Attaches to the container `name` as `docker attach` and `start -a` do:
/// to its terminal if it has one, its stdin if `stdin` and it keeps one
/// open, passing signals on (`sig_proxy`) if it has no terminal; `start`
/// starts it (attached first), else it must run.
fn attach_existing(
    client: &Client,
    name: &str,
    stdin: bool,
    keys: Option<&str>,
    sig_proxy: bool,
    start: bool,
) -> Result<()> {
    let container = client.json(
        "GET",
        &format!("/containers/{}/json", encode(name)),
        Upload::None,
    )?;
    if !start && container["State"]["Running"] != true {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let id = container["Id"].as_str().unwrap_or_default().to_owned();
    let tty = container["Config"]["Tty"] == true;
    let session = Session {
        tty,
        stdin: stdin && container["Config"]["OpenStdin"] == true,
        resize: Some(format!("/containers/{id}")),
        signals_to: (sig_proxy && !tty).then(|| format!("/containers/{id}")),
        detach_keys: detach_keys(keys)?,
    };
    attach_and_wait(client, &id, &session, start, "not-running")
}

/// A boolean flag's value: none (`--flag`) is true, else Go's
/// strconv.ParseBool words, as docker's flags take them.
pub(crate) fn bool_value(parser: &mut lexopt::Parser, flag: &str) -> Result<bool> {
    let Some(value) = parser.optional_value() else {
        return Ok(true);
    };
    let value = value.string()?;
    match value.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => bail!(
            "invalid argument \"{value}\" for \"--{flag}\" flag: strconv.ParseBool: parsing \"{value}\": invalid syntax"
        ),
    }
}

fn detach_keys(text: Option<&str>) -> Result<Vec<u8>> {
    keel_monitor_protocol::stream::detach_keys(text).map_err(anyhow::Error::msg)
}

/// `keel exec [OPTIONS] CONTAINER COMMAND [ARG...]`: passes on the
/// command's exit code.
pub fn exec(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "exec [OPTIONS] CONTAINER COMMAND [ARG...]";
    let (mut detach, mut interactive, mut tty, mut privileged) = (false, false, false, false);
    let (mut env, mut user, mut workdir, mut keys) = (Vec::new(), None, None, None);
    let container = loop {
        match parser.next()? {
            Some(Short('d') | Long("detach")) => detach = true,
            Some(Short('i') | Long("interactive")) => interactive = true,
            Some(Short('t') | Long("tty")) => tty = true,
            Some(Long("privileged")) => privileged = true,
            Some(Short('e') | Long("env")) => env.push(parser.value()?.string()?),
            Some(Short('u') | Long("user")) => user = Some(parser.value()?.string()?),
            Some(Short('w') | Long("workdir")) => workdir = Some(parser.value()?.string()?),
            Some(Long("detach-keys")) => keys = Some(parser.value()?.string()?),
            Some(Value(name)) => break name.string()?,
            Some(other) => return Err(usage(other.unexpected(), SYNOPSIS)),
            None => bail!("\"keel exec\" requires at least 2 arguments.\nUsage:  keel {SYNOPSIS}"),
        }
    };
    let command = rest_of_line(parser)?;
    if command.is_empty() {
        bail!("\"keel exec\" requires at least 2 arguments.\nUsage:  keel {SYNOPSIS}");
    }
    let body = json!({
        "AttachStdin": interactive && !detach,
        "AttachStdout": !detach,
        "AttachStderr": !detach,
        "Tty": tty,
        "Cmd": command,
        "Env": env,
        "User": user.unwrap_or_default(),
        "WorkingDir": workdir.unwrap_or_default(),
        "Privileged": privileged,
        "DetachKeys": keys.unwrap_or_default(),
    });
    let created = client.json(
        "POST",
        &format!("/containers/{}/exec", encode(&container)),
        Upload::Json(&body),
    )?;
    let id = created["Id"].as_str().unwrap_or_default().to_owned();
    let start = format!("/exec/{id}/start");
    if detach {
        client.json("POST", &start, Upload::Json(&json!({"Detach": true})))?;
        return Ok(());
    }
    let size = rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .filter(|_| tty)
        .map(|s| [s.ws_row, s.ws_col]);
    let start_body = json!({"Detach": false, "Tty": tty, "ConsoleSize": size});
    let response = client
        .request("POST", &start, Upload::Upgrade(Some(&start_body)))?
        .success()?;
    let session = Session {
        tty,
        stdin: interactive,
        resize: Some(format!("/exec/{id}")),
        // As docker exec: signals stay here.
        signals_to: None,
        detach_keys: detach_keys(body["DetachKeys"].as_str())?,
    };
    if session::relay(client, response, &session)? {
        return Ok(());
    }
    let inspected = client.json("GET", &format!("/exec/{id}/json"), Upload::None)?;
    match inspected["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        code => Err(Exit {
            code: code.clamp(0, 255) as u8,
            message: None,
        }
        .into()),
    }
}

/// `keel create [OPTIONS] IMAGE [COMMAND] [ARG...]`
pub fn create(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (flags, image, command) =
        parse_create(parser, "create [OPTIONS] IMAGE [COMMAND] [ARG...]")?;
    println!("{}", create_container(client, &flags, &image, &command)?);
    Ok(())
}

/// Names given after the options; at least one.
/// `options` is given each flag (`-f`, `--force`) and takes its value
/// from the parser; it says whether it knew the flag.
pub(crate) fn names(
    parser: &mut lexopt::Parser,
    synopsis: &str,
    options: &mut dyn FnMut(&str, &mut lexopt::Parser) -> Result<bool>,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        let flag = match arg {
            Value(value) => {
                names.push(value.string()?);
                continue;
            }
            Short(c) => format!("-{c}"),
            Long(name) => format!("--{name}"),
        };
        if !options(&flag, parser)? {
            bail!("unknown flag: {flag}\nUsage:  keel {synopsis}");
        }
    }
    if names.is_empty() {
        bail!(
            "\"keel {}\" requires at least 1 argument.\nUsage:  keel {synopsis}",
            synopsis.split(' ').next().unwrap_or_default()
        );
    }
    Ok(names)
}

/// Runs `act` on every name, printing each name that succeeded, and
/// failing at the end if any did not, as docker's plural commands do.
pub(crate) fn each(
    names: &[String],
    mut act: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<()> {
    let mut failures = Vec::new();
    for name in names {
        match act(name) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => println!("{name}"),
            Err(error) => failures.push(format!("{error:#}")),
        }
    }
    if !failures.is_empty() {
        bail!(failures.join("\n"));
    }
    Ok(())
}

/// `keel start [-a [-i]] NAME...`
pub fn start(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut attach, mut interactive, mut keys) = (false, false, None);
    let names = names(
        parser,
        "start [OPTIONS] CONTAINER [CONTAINER...]",
        &mut |flag, parser| {
            Ok(match flag {
                "-a" | "--attach" => {
                    attach = true;
                    true
                }
                "-i" | "--interactive" => {
                    interactive = true;
                    true
                }
                "--detach-keys" => {
                    keys = Some(parser.value()?.string()?);
                    true
                }
                _ => false,
            })
        },
    )?;
    if attach || interactive {
        let [name] = names.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        return attach_existing(client, name, interactive, keys.as_deref(), true, true);
    }
    each(&names, |name| {
        client.send("POST", &format!("/containers/{name}/start"))?;
        Ok(None)
    })
}

/// `keel rm [-f] NAME...`
pub fn rm(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut force, mut volumes) = (false, false);
    let names = names(
        parser,
        "rm [OPTIONS] CONTAINER [CONTAINER...]",
        &mut |flag, _| {
            Ok(match flag {
                "-f" | "--force" => {
                    force = true;
                    true
                }
                "-v" | "--volumes" => {
                    volumes = true;
                    true
                }
                _ => false,
            })
        },
    )?;
    each(&names, |name| {
        client.send(
            "DELETE",
            &format!(
                "/containers/{name}?force={}&v={}",
                u8::from(force),
                u8::from(volumes)
            ),
        )?;
        Ok(None)
    })
}

/// `keel stop [-t N] NAME...`
pub fn stop(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    stop_or_restart(client, parser, "stop")
}

/// `keel restart [-t N] NAME...`
pub fn restart(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    stop_or_restart(client, parser, "restart")
}

/// `stop` and `restart`, which take the same flag.
fn stop_or_restart(client: &Client, parser: &mut lexopt::Parser, verb: &str) -> Result<()> {
    // Unless given, the container's own --stop-timeout applies.
    let mut timeout = String::new();
    let names = names(
        parser,
        &format!("{verb} [OPTIONS] CONTAINER [CONTAINER...]"),
        &mut |flag, parser| {
            Ok(match flag {
                "-t" | "--time" | "--timeout" => {
                    let seconds: u64 = parser
                        .value()?
                        .string()?
                        .parse()
                        .context("--time takes seconds")?;
                    timeout = format!("?t={seconds}");
                    true
                }
                _ => false,
            })
        },
    )?;
    each(&names, |name| {
        client.send("POST", &format!("/containers/{name}/{verb}{timeout}"))?;
        Ok(None)
    })
}

/// `keel rename CONTAINER NEW_NAME`
pub fn rename(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "rename CONTAINER NEW_NAME";
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) => names.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [old, new] = names.as_slice() else {
        bail!("\"keel rename\" requires exactly 2 arguments.\nUsage:  keel {SYNOPSIS}");
    };
    client.send(
        "POST",
        &format!("/containers/{}/rename?name={}", encode(old), encode(new)),
    )?;
    Ok(())
}

/// `keel kill [-s SIGNAL] NAME...`
pub fn kill(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut signal = "KILL".to_owned();
    let names = names(
        parser,
        "kill [OPTIONS] CONTAINER [CONTAINER...]",
        &mut |flag, parser| {
            Ok(match flag {
                "-s" | "--signal" => {
                    signal = parser.value()?.string()?;
                    true
                }
                _ => false,
            })
        },
    )?;
    each(&names, |name| {
        client.send(
            "POST",
            &format!("/containers/{name}/kill?signal={}", encode(&signal)),
        )?;
        Ok(None)
    })
}

/// `keel pause NAME...`
pub fn pause(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    freeze(client, parser, "pause")
}

/// `keel unpause NAME...`
pub fn unpause(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    freeze(client, parser, "unpause")
}

fn freeze(client: &Client, parser: &mut lexopt::Parser, verb: &str) -> Result<()> {
    let synopsis = format!("{verb} CONTAINER [CONTAINER...]");
    let names = names(parser, &synopsis, &mut |_, _| Ok(false))?;
    each(&names, |name| {
        client.send("POST", &format!("/containers/{name}/{verb}"))?;
        Ok(None)
    })
}

/// `keel top CONTAINER`: its processes, as `docker top` prints them.
pub fn top(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "top CONTAINER [ps OPTIONS]";
    let name = match parser.next()? {
        Some(Value(name)) => name.string()?,
        Some(other) => return Err(usage(other.unexpected(), SYNOPSIS)),
        None => bail!("\"keel top\" requires at least 1 argument.\nUsage:  keel {SYNOPSIS}"),
    };
    // After the container, every argument is ps's.
    let ps_args: Vec<String> = parser
        .raw_args()?
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let top = client.json(
        "GET",
        &format!(
            "/containers/{}/top?ps_args={}",
            encode(&name),
            encode(&ps_args.join(" "))
        ),
        Upload::None,
    )?;
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let mut rows: Vec<Vec<String>> = vec![
        top["Titles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
    ];
    for process in top["Processes"].as_array().into_iter().flatten() {
        rows.push(process.as_array().into_iter().flatten().map(text).collect());
    }
    print!("{}", crate::format::table(&rows));
    Ok(())
}

/// `keel wait NAME...`: prints each exit code.
pub fn wait(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let names = names(parser, "wait CONTAINER [CONTAINER...]", &mut |_, _| {
        Ok(false)
    })?;
    each(&names, |name| {
        let waited = client.json("POST", &format!("/containers/{name}/wait"), Upload::None)?;
        Ok(Some(waited["StatusCode"].as_i64().unwrap_or(0).to_string()))
    })
}

/// `keel logs [-f] [-t] [--tail N] [--since T] [--until T] NAME`
pub fn logs(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut follow, mut timestamps, mut tail) = (false, false, "all".to_owned());
    let (mut since, mut until) = (String::new(), String::new());
    let mut name = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("follow") => follow = true,
            Short('t') | Long("timestamps") => timestamps = true,
            Short('n') | Long("tail") => tail = parser.value()?.string()?,
            Long("since") => since = crate::times::api_time("since", &parser.value()?.string()?)?,
            Short('u') | Long("until") => {
                until = crate::times::api_time("until", &parser.value()?.string()?)?
            }
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), "logs [OPTIONS] CONTAINER")),
        }
    }
    let Some(name) = name else {
        bail!("\"keel logs\" requires exactly 1 argument.\nUsage:  keel logs [OPTIONS] CONTAINER");
    };
    let mut response = client
        .request(
            "GET",
            &format!(
                "/containers/{name}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}&since={since}&until={until}",
                u8::from(follow),
                u8::from(timestamps),
                encode(&tail)
            ),
            Upload::None,
        )?
        .success()?;
    session::copy_output(&mut response)
}

/// `keel ps [-a] [-q] [--no-trunc] [--format F] [--filter K=V]`
pub fn ps(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut all, mut quiet, mut no_trunc) = (false, false, false);
    let mut format = None;
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("all") => all = true,
            Short('q') | Long("quiet") => quiet = true,
            Long("no-trunc") => no_trunc = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            other => return Err(usage(other.unexpected(), "ps [OPTIONS]")),
        }
    }
    let list = client.json(
        "GET",
        &format!(
            "/containers/json?all={}&filters={}",
            u8::from(all),
            encode(&json!(filters).to_string())
        ),
        Upload::None,
    )?;
    let now = now_unix();
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let command = c["Command"].as_str().unwrap_or_default();
            let command = if no_trunc || command.chars().count() <= 20 {
                command.to_owned()
            } else {
                command.chars().take(19).collect::<String>() + "…"
            };
            let names: Vec<String> = c["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| Some(n.as_str()?.trim_start_matches('/').to_owned()))
                .collect();
            json!({
                "ID": if no_trunc { id.to_owned() } else { id.chars().take(12).collect() },
                "Image": c["Image"],
                "Command": format!("\"{command}\""),
                "CreatedAt": c["Created"],
                "RunningFor": ago(c["Created"].as_i64().unwrap_or(0), now),
                "Status": c["Status"],
                "State": c["State"],
                "Ports": ports_column(&c["Ports"]),
                "Names": names.join(","),
            })
        })
        .collect();
    let headers = BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
    ]);
    crate::objects::print_rows(
        &rows,
        quiet,
        "ID",
        format,
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        &headers,
    )
}

/// `keel port CONTAINER [PRIVATE_PORT[/PROTO]]`
pub fn port(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "port CONTAINER [PRIVATE_PORT[/PROTO]]";
    let mut values = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) => values.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let (name, wanted) = match values.as_slice() {
        [name] => (name, None),
        [name, port] => (name, Some(port.parse::<keel_network::Port>()?)),
        _ => bail!(
            "\"keel port\" requires at least 1 and at most 2 arguments.\nUsage:  keel {SYNOPSIS}"
        ),
    };
    let container = client.json(
        "GET",
        &format!("/containers/{}/json", encode(name)),
        Upload::None,
    )?;
    let mut lines = Vec::new();
    if let Some(ports) = container["NetworkSettings"]["Ports"].as_object() {
        for (port, bindings) in ports {
            let port: keel_network::Port = port.parse()?;
            if wanted.is_some_and(|w| w != port) {
                continue;
            }
            for binding in bindings.as_array().into_iter().flatten() {
                let host = format!(
                    "{}:{}",
                    binding["HostIp"].as_str().unwrap_or_default(),
                    binding["HostPort"].as_str().unwrap_or_default()
                );
                lines.push(match wanted {
                    Some(_) => host,
                    None => format!("{port} -> {host}"),
                });
            }
        }
    }
    if let (Some(port), true) = (wanted, lines.is_empty()) {
        bail!("Error: No public port '{port}' published for {name}");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// `docker ps`'s PORTS: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub(crate) fn ports_column(ports: &Value) -> String {
    let mut shown: Vec<String> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let private = format!(
                "{}/{}",
                p["PrivatePort"],
                p["Type"].as_str().unwrap_or("tcp")
            );
            match p["PublicPort"].as_u64() {
                Some(public) => format!("{}:{public}->{private}", p["IP"].as_str().unwrap_or("")),
                None => private,
            }
        })
        .collect();
    shown.sort();
    shown.dedup();
    shown.join(", ")
}

/// `keel export [-o FILE] CONTAINER`
pub fn export(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut output = None;
    let mut name = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output") => output = Some(parser.value()?.string()?),
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), "export [OPTIONS] CONTAINER")),
        }
    }
    let Some(name) = name else {
        bail!(
            "\"keel export\" requires exactly 1 argument.\nUsage:  keel export [OPTIONS] CONTAINER"
        );
    };
    crate::images::download(
        client,
        &format!("/containers/{name}/export"),
        output.as_deref(),
    )
}
