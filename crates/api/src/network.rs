//! The network parts of the Engine API: a create request's ports, network
//! mode and name settings; a container's NetworkSettings and its ports as
//! `docker ps` lists them.

use std::collections::BTreeMap;

use keel_engine::{BRIDGE, Container, NetworkConfig, Status};
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
        Ok(NetworkConfig {
            mode: self.mode.unwrap_or_default(),
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

/// The default bridge network's id: fixed for its bridge's name.
pub fn bridge_id(daemon: &Daemon) -> String {
    let options = daemon.engine.network_options();
    keel_image::Digest::of(format!("keel network {}", options.bridge).as_bytes())
        .hex()
        .to_owned()
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

/// A container's NetworkSettings, as inspect shows them.
pub fn settings(daemon: &Daemon, container: &Container) -> Value {
    let network = &container.config.network;
    let running = container.state.status == Status::Running;
    let endpoint = container.state.endpoint.as_ref().filter(|_| running);
    let address = endpoint.map(|e| e.address.to_string()).unwrap_or_default();
    let gateway = endpoint.map(|e| e.gateway.to_string()).unwrap_or_default();
    let prefix = endpoint.map_or(0, |e| e.prefix);
    let mac = endpoint.map(|e| e.mac_address()).unwrap_or_default();
    let mode = network.mode_name().to_owned();
    let mut networks = serde_json::Map::new();
    if !mode.starts_with("container:") {
        let id = match mode.as_str() {
            BRIDGE => bridge_id(daemon),
            other => keel_image::Digest::of(format!("keel network {other}").as_bytes())
                .hex()
                .to_owned(),
        };
        networks.insert(
            mode.clone(),
            json!({
                "IPAMConfig": null,
                "Links": (!network.links.is_empty()).then(|| network.links.clone()),
                "Aliases": null,
                "NetworkID": id,
                "EndpointID": if running { container.id.clone() } else { String::new() },
                "Gateway": gateway,
                "IPAddress": address,
                "IPPrefixLen": prefix,
                "MacAddress": mac,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
            }),
        );
    }
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
        "EndpointID": if running && mode == BRIDGE { container.id.clone() } else { String::new() },
        "Gateway": if mode == BRIDGE { gateway } else { String::new() },
        "IPAddress": if mode == BRIDGE { address } else { String::new() },
        "IPPrefixLen": if mode == BRIDGE { prefix } else { 0 },
        "MacAddress": if mode == BRIDGE { mac } else { String::new() },
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
