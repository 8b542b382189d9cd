//! The part of the compose specification Keel acts on, each key read in
//! its short and long forms and written back in compose's long form (what
//! `docker compose config` prints). Fields are in alphabetical order, as
//! compose prints them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_norway::Value;

/// A resolved project: what `config` prints and `up` makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub name: String,
    pub services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// The directory relative paths are taken from (the first file's).
    #[serde(skip)]
    pub working_dir: std::path::PathBuf,
    /// The files read, absolute, in order.
    #[serde(skip)]
    pub config_files: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(
        default,
        deserialize_with = "command",
        skip_serializing_if = "Option::is_none"
    )]
    pub command: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "depends_on",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(
        default,
        deserialize_with = "command",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Read into `environment` when the project is resolved.
    #[serde(default, deserialize_with = "env_files", skip_serializing)]
    pub env_file: Vec<EnvFile>,
    /// A variable without a value takes the shell's, or stays unset.
    #[serde(
        default,
        deserialize_with = "mapping_or_list",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub image: String,
    #[serde(
        default,
        deserialize_with = "labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// The networks by their key in the project, with no per-network
    /// settings yet (compose prints them as `name: null`).
    #[serde(
        default,
        deserialize_with = "service_networks",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(
        default,
        deserialize_with = "ports",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        deserialize_with = "service_volumes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// A network entry of a service; empty until aliases and addresses are
/// supported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceNetwork {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> Condition {
    Condition::ServiceStarted
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[serde(
        default,
        deserialize_with = "optional_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
}

/// Durations are kept as written (Go durations: `1m30s`), checked when
/// the project is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    #[serde(
        default,
        deserialize_with = "health_test",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A published port, as compose's long syntax has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeType {
    Bind,
    Volume,
}

/// A mount of a service, as compose's long syntax has it; `source` is a
/// volume's key in the project or a bind's absolute host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: VolumeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindOptions {
    pub create_host_path: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeOptions {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The engine's name: `PROJECT_KEY` unless given.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(
        default,
        deserialize_with = "labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The engine's name: `PROJECT_KEY` unless given.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// A scalar as the text compose takes it for (`8080`, `true`, `1.5`).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn expected<E: de::Error>(what: &str, value: &Value) -> E {
    E::custom(format!("expected {what}, found {}", describe(value)))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Sequence(_) => "a list".into(),
        other => format!("{:?}", scalar_text(other).unwrap_or_default()),
    }
}

/// A command: a list, or a string split as a shell would (compose's
/// shellwords).
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(text) => shlex::split(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("{text:?} has an unclosed quote"))),
        Value::Sequence(items) => items
            .iter()
            .map(|item| scalar_text(item).ok_or_else(|| expected("a string", item)))
            .collect::<Result<_, _>>()
            .map(Some),
        other => Err(expected("a string or a list of strings", &other)),
    }
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(text) => Ok(vec!["CMD-SHELL".to_owned(), text]),
        other => Ok(command(other)
            .map_err(de::Error::custom)?
            .unwrap_or_default()),
    }
}

/// `KEY: value` or `- KEY=value` (`- KEY` alone: no value).
fn mapping_or_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| {
                let key = scalar_text(key).ok_or_else(|| expected("a name", key))?;
                let value = match value {
                    Value::Null => None,
                    other => Some(scalar_text(other).ok_or_else(|| expected("a scalar", other))?),
                };
                Ok((key, value))
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let text = scalar_text(item).ok_or_else(|| expected("KEY=VALUE", item))?;
                Ok(match text.split_once('=') {
                    Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                    None => (text, None),
                })
            })
            .collect(),
        other => Err(expected("a mapping or a list", &other)),
    }
}

/// Labels: as environment, where a label without a value is empty.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(mapping_or_list(d)?
        .into_iter()
        .map(|(key, value)| (key, value.unwrap_or_default()))
        .collect())
}

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    let one = |value: &Value| -> Result<EnvFile, D::Error> {
        match value {
            Value::String(path) => Ok(EnvFile {
                path: path.clone(),
                required: true,
            }),
            Value::Mapping(_) => EnvFile::deserialize(value.clone()).map_err(de::Error::custom),
            other => Err(expected("a path", other)),
        }
    };
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(&other)?]),
    }
}

fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let name = scalar_text(item).ok_or_else(|| expected("a service name", item))?;
                Ok((
                    name,
                    Dependency {
                        condition: Condition::ServiceStarted,
                        restart: false,
                        required: true,
                    },
                ))
            })
            .collect(),
        Value::Mapping(entries) => entries
            .into_iter()
            .map(|(key, value)| {
                let name = scalar_text(&key).ok_or_else(|| expected("a service name", &key))?;
                let dependency = Dependency::deserialize(value)
                    .map_err(|e| de::Error::custom(format!("{name}: {e}")))?;
                Ok((name, dependency))
            })
            .collect(),
        other => Err(expected("a list or a mapping of services", &other)),
    }
}

fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let name = scalar_text(item).ok_or_else(|| expected("a network name", item))?;
                Ok((name, None))
            })
            .collect(),
        Value::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| {
                let name = scalar_text(key).ok_or_else(|| expected("a network name", key))?;
                match value {
                    Value::Null => Ok((name, None)),
                    Value::Mapping(settings) if settings.is_empty() => {
                        Ok((name, Some(ServiceNetwork {})))
                    }
                    Value::Mapping(settings) => {
                        let keys: Vec<String> = settings.keys().filter_map(scalar_text).collect();
                        Err(de::Error::custom(format!(
                            "networks.{name}.{} is not supported by keel compose yet",
                            keys.join(", ")
                        )))
                    }
                    other => Err(expected("a mapping", other)),
                }
            })
            .collect(),
        other => Err(expected("a list or a mapping of networks", &other)),
    }
}

/// A number, or a string holding one (what interpolation leaves).
fn optional_number<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
where
    D: Deserializer<'de>,
    N: std::str::FromStr,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        other => scalar_text(&other)
            .and_then(|text| text.parse().ok())
            .map(Some)
            .ok_or_else(|| expected("a whole number", &other)),
    }
}

/// Ports in the short syntax: `[[IP:]PUBLISHED:]TARGET[/PROTOCOL]`, where
/// PUBLISHED and TARGET may be ranges of the same length.
fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    struct Ports;
    impl<'de> Visitor<'de> for Ports {
        type Value = Vec<Port>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of ports")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Port>, A::Error> {
            let mut ports = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                let text = match &item {
                    Value::Mapping(_) => {
                        return Err(de::Error::custom(
                            "the long syntax of ports is not supported by keel compose yet: write \"[IP:]PUBLISHED:TARGET[/PROTOCOL]\"",
                        ));
                    }
                    other => scalar_text(other).ok_or_else(|| expected("a port", other))?,
                };
                ports.extend(parse_port(&text).map_err(de::Error::custom)?);
            }
            Ok(ports)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<Port>, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Ports)
}

fn port_range(text: &str, spec: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid port {spec:?}: {text:?} is not a port or a range of ports");
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first: u16 = first.parse().map_err(|_| bad())?;
    let last: u16 = last.parse().map_err(|_| bad())?;
    if first == 0 || last < first {
        return Err(bad());
    }
    Ok((first, last))
}

pub(crate) fn parse_port(spec: &str) -> Result<Vec<Port>, String> {
    let (address, protocol) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    if !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid port {spec:?}: the protocol {protocol:?} is not tcp, udp or sctp"
        ));
    }
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (host_ip, rest) = match address.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, rest) = bracketed
                .split_once("]:")
                .ok_or_else(|| format!("invalid port {spec:?}: unclosed ["))?;
            (Some(ip.to_owned()), rest)
        }
        None => match address.matches(':').count() {
            2 => {
                let (ip, rest) = address.split_once(':').unwrap_or_default();
                (Some(ip.to_owned()), rest)
            }
            _ => (None, address),
        },
    };
    let (published, target) = match rest.rsplit_once(':') {
        Some((published, target)) => (Some(published), target),
        None => (None, rest),
    };
    let (target_first, target_last) = port_range(target, spec)?;
    let published = match published.filter(|p| !p.is_empty()) {
        Some(published) => Some(port_range(published, spec)?),
        None => None,
    };
    let count = target_last - target_first;
    if let Some((first, last)) = published
        && last != first
        && last - first != count
    {
        return Err(format!(
            "invalid port {spec:?}: the published and target ranges differ in length"
        ));
    }
    Ok((0..=count)
        .map(|offset| Port {
            mode: "ingress".to_owned(),
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
            target: target_first + offset,
            published: published.map(|(first, last)| {
                if first == last {
                    first.to_string()
                } else {
                    (first + offset).to_string()
                }
            }),
            protocol: protocol.to_owned(),
        })
        .collect())
}

/// Volumes in the short syntax: `TARGET`, `SOURCE:TARGET[:MODE]`; a
/// source that is a path (`.`, `/`, `~`) is a bind, else a named volume.
fn service_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    struct Volumes;
    impl<'de> Visitor<'de> for Volumes {
        type Value = Vec<ServiceVolume>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of volumes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ServiceVolume>, A::Error> {
            let mut volumes = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                let Value::String(text) = item else {
                    return Err(de::Error::custom(
                        "the long syntax of volumes is not supported by keel compose yet: write \"SOURCE:TARGET[:ro]\"",
                    ));
                };
                volumes.push(parse_volume(&text).map_err(de::Error::custom)?);
            }
            Ok(volumes)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<ServiceVolume>, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Volumes)
}

pub(crate) fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => {
            return Err(format!(
                "invalid volume {spec:?}: write [SOURCE:]TARGET[:MODE]"
            ));
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the target {target:?} is not an absolute path"
        ));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => {
            return Err(format!(
                "invalid volume {spec:?}: the mode {other:?} is not supported by keel compose yet (ro or rw)"
            ));
        }
    };
    let is_path = |s: &str| s.starts_with(['.', '/', '~']);
    let kind = match source {
        Some(source) if is_path(source) => VolumeType::Bind,
        _ => VolumeType::Volume,
    };
    Ok(ServiceVolume {
        kind,
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only,
        bind: (kind == VolumeType::Bind).then_some(BindOptions {
            create_host_path: true,
        }),
        volume: (kind == VolumeType::Volume).then_some(VolumeOptions {}),
    })
}

/// A mapping whose keys must all be named in `known` (`x-` extensions
/// aside): the name of the first that is not.
pub(crate) fn unknown_key(mapping: &serde_norway::Mapping, known: &[&str]) -> Option<String> {
    mapping
        .keys()
        .map(|key| scalar_text(key).unwrap_or_else(|| describe(key)))
        .find(|key| !key.starts_with("x-") && !known.contains(&key.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_read_as_compose_reads_them() {
        let port = |spec: &str| parse_port(spec).unwrap();
        let one = &port("8080:80")[0];
        assert_eq!(
            (one.target, one.published.as_deref(), one.protocol.as_str()),
            (80, Some("8080"), "tcp")
        );
        let bound = &port("127.0.0.1:5353:53/udp")[0];
        assert_eq!(bound.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((bound.target, bound.protocol.as_str()), (53, "udp"));
        assert_eq!(port("80")[0].published, None);
        let range = port("9000-9001:8000-8001");
        assert_eq!(
            range
                .iter()
                .map(|p| (p.published.clone().unwrap(), p.target))
                .collect::<Vec<_>>(),
            [("9000".to_owned(), 8000), ("9001".to_owned(), 8001)]
        );
        assert!(parse_port("80/icmp").unwrap_err().contains("icmp"));
        assert!(parse_port("x:80").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn short_volumes_are_binds_when_their_source_is_a_path() {
        let named = parse_volume("data:/data").unwrap();
        assert_eq!(
            (named.kind, named.source.as_deref()),
            (VolumeType::Volume, Some("data"))
        );
        let bind = parse_volume("./site:/www:ro").unwrap();
        assert_eq!((bind.kind, bind.read_only), (VolumeType::Bind, true));
        let anonymous = parse_volume("/cache").unwrap();
        assert_eq!(
            (anonymous.kind, anonymous.source),
            (VolumeType::Volume, None)
        );
        assert!(parse_volume("data:rel").unwrap_err().contains("absolute"));
        assert!(parse_volume("data:/d:z").unwrap_err().contains("\"z\""));
    }
}
