//! The Engine API's network endpoints: list, inspect, create, remove,
//! connect, disconnect, prune. `host` and `none` are listed as Docker
//! lists them; every other network is a bridge.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use hyper::body::Incoming;
use keel_engine::{Network, NetworkRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Daemon;
use crate::filters::{Filters, regex_match};
use crate::http::{ApiError, Query, Reply, blocking, empty, json, read_json};
use crate::network::EndpointBody;

type Result<T> = std::result::Result<T, ApiError>;

/// A bridge network in Docker's shape; with its containers for inspect.
fn shown(daemon: &Daemon, network: &Network, with_containers: bool) -> Value {
    let mut containers = serde_json::Map::new();
    if with_containers {
        for container in daemon.engine.network_users(network) {
            let Some(endpoint) = container.state.endpoints.get(&network.name) else {
                continue;
            };
            if container.state.status != keel_engine::Status::Running {
                continue;
            }
            containers.insert(
                container.id.clone(),
                json!({
                    "Name": container.name,
                    "EndpointID": container.id,
                    "MacAddress": endpoint.mac_address(),
                    "IPv4Address": format!("{}/{}", endpoint.address, endpoint.prefix),
                    "IPv6Address": "",
                }),
            );
        }
    }
    let options = if network.is_default() {
        json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.name": network.bridge,
        })
    } else {
        json!({"com.docker.network.bridge.name": network.bridge})
    };
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": if network.created.is_empty() { "0001-01-01T00:00:00Z" } else { &network.created },
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": null,
            "Config": [{"Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string()}],
        },
        "Internal": network.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": network.labels,
    })
}

/// `host` and `none`, which have no bridge.
fn special(name: &str) -> Value {
    json!({
        "Name": name,
        "Id": keel_engine::fixed_network_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// GET /networks?filters=: driver, id, label, name, scope, type.
pub async fn list(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filters = Filters::parse(
        &query,
        &["driver", "id", "label", "name", "scope", "type"],
        &["dangling"],
    )?;
    if let Some(kind) = filters
        .get("type")
        .find(|t| !matches!(*t, "builtin" | "custom"))
    {
        return Err(ApiError::bad_request(format!(
            "invalid filter: 'type'='{kind}'"
        )));
    }
    let passes = |network: &Value, labels: &BTreeMap<String, String>| {
        let field = |name: &str| network[name].as_str().unwrap_or_default().to_owned();
        let (name, id) = (field("Name"), field("Id"));
        let builtin = ["bridge", "host", "none", "default"].contains(&name.as_str());
        filters.exact("driver", &field("Driver"))
            && filters.any("name", |n| regex_match(n, &name))
            && filters.any("id", |i| regex_match(i, &id))
            && filters.has_labels("label", labels)
            && filters.exact("scope", &field("Scope"))
            && filters.any("type", |t| (t == "builtin") == builtin)
    };
    let mut all: Vec<Value> = daemon
        .engine
        .networks()
        .iter()
        .map(|n| (shown(&daemon, n, false), &n.labels))
        .filter(|(shown, labels)| passes(shown, labels))
        .map(|(shown, _)| shown)
        .collect();
    all.extend(
        ["host", "none"]
            .map(special)
            .into_iter()
            .filter(|shown| passes(shown, &BTreeMap::new())),
    );
    Ok(json(StatusCode::OK, &all))
}

/// GET /networks/{id}
pub async fn inspect(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    if name == "host" || name == "none" {
        return Ok(json(StatusCode::OK, &special(&name)));
    }
    let network = daemon.engine.network(&name)?;
    Ok(json(StatusCode::OK, &shown(&daemon, &network, true)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    config: Option<Vec<IpamConfigBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigBody {
    subnet: String,
    gateway: String,
}

/// POST /networks/create
pub async fn create(daemon: Arc<Daemon>, request: Incoming) -> Result<Reply> {
    let request: CreateBody = read_json(request).await?;
    if !request.driver.is_empty() && request.driver != "bridge" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "plugin \"{}\" not found: Keel's networks are bridges",
                request.driver
            ),
        ));
    }
    let config = request
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().next())
        .unwrap_or_default();
    let non_empty = |text: String| (!text.is_empty()).then_some(text);
    let request = NetworkRequest {
        name: request.name,
        subnet: non_empty(config.subnet),
        gateway: non_empty(config.gateway),
        internal: request.internal,
        labels: request.labels,
    };
    blocking(move || {
        let network = daemon.engine.create_network(request)?;
        Ok(json(
            StatusCode::CREATED,
            &json!({"Id": network.id, "Warning": ""}),
        ))
    })
    .await
}

/// DELETE /networks/{id}
pub async fn remove(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    blocking(move || {
        daemon.engine.remove_network(&name)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// POST /networks/prune
pub async fn prune(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filter = crate::prune::PruneFilter::parse(&query, &[])?;
    blocking(move || {
        let names = daemon
            .engine
            .prune_networks(|n| filter.selects(&n.created, &n.labels));
        Ok(json(StatusCode::OK, &json!({"NetworksDeleted": names})))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointBody>,
}

/// POST /networks/{id}/connect
pub async fn connect(daemon: Arc<Daemon>, name: String, request: Incoming) -> Result<Reply> {
    let request: ConnectBody = read_json(request).await?;
    let endpoint = request.endpoint_config.unwrap_or_default();
    let mac = endpoint.mac_address.clone().filter(|m| !m.is_empty());
    let (aliases, ip) = endpoint.settings()?;
    blocking(move || {
        daemon
            .engine
            .connect_network(&name, &request.container, &aliases, ip, mac.as_deref())?;
        Ok(empty(StatusCode::OK))
    })
    .await
}

/// POST /networks/{id}/disconnect
pub async fn disconnect(daemon: Arc<Daemon>, name: String, request: Incoming) -> Result<Reply> {
    let request: ConnectBody = read_json(request).await?;
    blocking(move || {
        daemon
            .engine
            .disconnect_network(&name, &request.container)?;
        Ok(empty(StatusCode::OK))
    })
    .await
}
