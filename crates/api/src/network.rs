//! The network parts of the Engine API: a create request's ports, network
//! mode and name settings; a container's NetworkSettings and its ports as
//! `docker ps` lists them.

use std::collections::BTreeMap;

use keel_engine::{BRIDGE, Container, Endpoint, Mode, NetworkConfig, Status};
use keel_network::{Binding, Port};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Daemon;
use crate::http::ApiError;

/// HostConfig.PortBindings' entries.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBindingBody {
    host_ip: String,
    host_port: String,
}

/// The network settings of a create request.
#[derive(Debug, Default)]
pub struct NetworkRequest {
    pub mode: Option<String>,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingBody>>>>,
    pub publish_all: bool,
    pub exposed: Option<BTreeMap<String, Value>>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    pub endpoints: Option<BTreeMap<String, EndpointBody>>,
    /// Config.MacAddress, as API versions before 1.44 send it.
    pub mac_address: Option<String>,
}

/// NetworkingConfig.EndpointsConfig's entries.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointBody {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamBody>,
    pub mac_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpamBody {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
}

impl EndpointBody {
    /// The aliases and the address asked for.
    pub fn settings(self) -> Result<(Vec<String>, Option<std::net::Ipv4Addr>), ApiError> {
        let ip = match self.ipam_config.map(|i| i.ipv4_address) {
            Some(text) if !text.is_empty() => Some(
                text.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {text}")))?,
            ),
            _ => None,
        };
        Ok((self.aliases.unwrap_or_default(), ip))
    }
}

impl NetworkRequest {
    pub fn into_config(self) -> Result<NetworkConfig, ApiError> {
        let bad = |e: keel_network::Error| ApiError::bad_request(e.to_string());
        let mut ports: BTreeMap<Port, Vec<Binding>> = BTreeMap::new();
        for (port, bindings) in self.port_bindings.unwrap_or_default() {
            let port: Port = port.parse().map_err(bad)?;
            let entry = ports.entry(port).or_default();
            for binding in bindings.unwrap_or_default() {
                entry.push(Binding::from_api(&binding.host_ip, &binding.host_port).map_err(bad)?);
            }
            if entry.is_empty() {
                entry.push(Binding::from_api("", "").map_err(bad)?);
            }
        }
        let exposed = self
            .exposed
            .unwrap_or_default()
            .keys()
            .map(|port| port.parse().map_err(bad))
            .collect::<Result<_, _>>()?;
        let mode = self.mode.unwrap_or_default();
        // The endpoint settings of the network the container is created on.
        let endpoint = self
            .endpoints
            .unwrap_or_default()
            .into_iter()
            .find(|(name, _)| *name == mode || (mode.is_empty() && name == BRIDGE))
            .map(|(_, endpoint)| endpoint)
            .unwrap_or_default();
        let mac_address = endpoint
            .mac_address
            .clone()
            .or(self.mac_address)
            .filter(|m| !m.is_empty());
        let (aliases, ip) = endpoint.settings()?;
        Ok(NetworkConfig {
            mode,
            aliases,
            ip,
            mac_address,
            ports,
            publish_all: self.publish_all,
            exposed,
            dns: self.dns.unwrap_or_default(),
            dns_search: self.dns_search.unwrap_or_default(),
            dns_options: self.dns_options.unwrap_or_default(),
            extra_hosts: self.extra_hosts.unwrap_or_default(),
            links: self.links.unwrap_or_default(),
        })
    }
}

/// NetworkSettings.Ports: every exposed port, with its host bindings
/// while it runs (null when not published).
fn ports(container: &Container) -> Value {
    let mut map = serde_json::Map::new();
    for port in &container.config.network.exposed {
        map.insert(port.to_string(), Value::Null);
    }
    if container.state.status == Status::Running {
        for published in &container.state.published {
            let entry = map
                .entry(published.port.to_string())
                .or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({
                    "HostIp": published.host_ip.to_string(),
                    "HostPort": published.host_port.to_string(),
                }));
            }
        }
    }
    Value::Object(map)
}

/// An endpoint as inspect's NetworkSettings.Networks shows it (empty
/// addresses while the container is stopped).
fn endpoint_json(container: &Container, endpoint: Option<&Endpoint>, network_id: &str) -> Value {
    let running = container.state.status == Status::Running;
    let shown = endpoint.filter(|_| running);
    json!({
        "IPAMConfig": endpoint.map(|_| Value::Null),
        "Links": (!container.config.network.links.is_empty()).then(|| container.config.network.links.clone()),
        "Aliases": endpoint.map(|e| {
            // Docker adds the short id, once: compose v1 gives it too.
            let mut aliases = e.aliases.clone();
            let short_id = &container.id[..12];
            if !aliases.iter().any(|a| a == short_id) {
                aliases.push(short_id.to_owned());
            }
            aliases
        }),
        "NetworkID": network_id,
        "EndpointID": if shown.is_some() { container.id.clone() } else { String::new() },
        "Gateway": shown.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": shown.map(|e| e.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": shown.map_or(0, |e| e.prefix),
        "MacAddress": shown.map(|e| e.mac_address()).unwrap_or_default(),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
    })
}

/// NetworkSettings.Networks: the endpoints by network name (empty
/// addresses while the container is stopped), as inspect and the list show.
pub fn networks(daemon: &Daemon, container: &Container) -> Value {
    let mode = container.config.network.mode_name().to_owned();
    let mut networks = serde_json::Map::new();
    for (name, endpoint) in &container.state.endpoints {
        networks.insert(
            name.clone(),
            endpoint_json(container, Some(endpoint), &endpoint.network_id),
        );
    }
    match container.config.network.mode() {
        Mode::Network(name) if !networks.contains_key(&name) && !container.state.left_primary => {
            let id = daemon
                .engine
                .network(&name)
                .map(|n| n.id)
                .unwrap_or_default();
            networks.insert(name, endpoint_json(container, None, &id));
        }
        Mode::Host | Mode::None => {
            networks.insert(
                mode.clone(),
                endpoint_json(container, None, &keel_engine::fixed_network_id(&mode)),
            );
        }
        _ => {}
    }
    Value::Object(networks)
}

/// A container's NetworkSettings, as inspect shows them.
pub fn settings(daemon: &Daemon, container: &Container) -> Value {
    let running = container.state.status == Status::Running;
    let networks = networks(daemon, container);
    // The top-level fields are the default bridge's, as in Docker.
    let bridge = container.state.endpoints.get(BRIDGE).filter(|_| running);
    let sandbox = if running {
        format!("/proc/{}/ns/net", container.state.pid)
    } else {
        String::new()
    };
    json!({
        "Bridge": "",
        "SandboxID": if running { container.id.clone() } else { String::new() },
        "SandboxKey": sandbox,
        "HairpinMode": false,
        "Ports": ports(container),
        "EndpointID": if bridge.is_some() { container.id.clone() } else { String::new() },
        "Gateway": bridge.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": bridge.map(|e| e.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": bridge.map_or(0, |e| e.prefix),
        "MacAddress": bridge.map(|e| e.mac_address()).unwrap_or_default(),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPv6Gateway": "",
        "Networks": networks,
    })
}

/// The network parts of inspect's HostConfig.
pub fn host_config(container: &Container) -> Value {
    let network = &container.config.network;
    let bindings: serde_json::Map<String, Value> = network
        .ports
        .iter()
        .map(|(port, bindings)| {
            let list: Vec<Value> = bindings
                .iter()
                .map(|b| {
                    json!({
                        "HostIp": b.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                        "HostPort": b.host_port_text(),
                    })
                })
                .collect();
            (port.to_string(), Value::Array(list))
        })
        .collect();
    let or_null = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    json!({
        "NetworkMode": network.mode_name(),
        "PortBindings": bindings,
        "PublishAllPorts": network.publish_all,
        "Dns": network.dns,
        "DnsSearch": network.dns_search,
        "DnsOptions": network.dns_options,
        "ExtraHosts": or_null(&network.extra_hosts),
        "Links": or_null(&network.links),
    })
}

/// Config.ExposedPorts.
pub fn exposed(container: &Container) -> Value {
    let ports: serde_json::Map<String, Value> = container
        .config
        .network
        .exposed
        .iter()
        .map(|port| (port.to_string(), json!({})))
        .collect();
    if ports.is_empty() {
        Value::Null
    } else {
        Value::Object(ports)
    }
}

/// The Ports of a `GET /containers/json` entry: published ones with
/// their host side, the others as exposed only.
pub fn summary_ports(container: &Container) -> Value {
    let running = container.state.status == Status::Running;
    let published: Vec<_> = container
        .state
        .published
        .iter()
        .filter(|_| running)
        .collect();
    let mut list: Vec<Value> = published
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.to_string(),
                "PrivatePort": p.port.number,
                "PublicPort": p.host_port,
                "Type": p.port.protocol.as_str(),
            })
        })
        .collect();
    for port in &container.config.network.exposed {
        if !published.iter().any(|p| p.port == *port) {
            list.push(json!({"PrivatePort": port.number, "Type": port.protocol.as_str()}));
        }
    }
    Value::Array(list)
}
