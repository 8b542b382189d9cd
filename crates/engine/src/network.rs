//! Containers' networks, as Docker's: the default bridge (`bridge`, on
//! Keel's own `keel0`), `host`, `none`, and another container's. A
//! container on the bridge gets a network namespace made before its
//! process starts, a veth pair, an address (kept in its record until it
//! is removed, so the addresses in use are always the records'), its
//! published ports (host ports held by the daemon, DNAT in nftables), and
//! the /etc/hosts, /etc/hostname and /etc/resolv.conf Docker writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use keel_network::bridge::{self, Link};
use keel_network::files::{self, Resolver};
use keel_network::nft::{Forward, Rules};
use keel_network::{Binding, Port, Reservation, Subnet, netns};
use serde::{Deserialize, Serialize};

use crate::container::{Container, Status};
use crate::error::{Context, Error, Result};
use crate::{Engine, Table};

/// The default network's name, as Docker's.
pub const BRIDGE: &str = "bridge";

/// How the daemon sets up its default bridge (`--bridge`, `--bip`).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub bridge: String,
    /// The bridge's address and subnet: `10.87.0.1/16`.
    pub gateway: Ipv4Addr,
    pub subnet: Subnet,
}

impl Default for NetworkOptions {
    /// `keel0` on 10.87.0.0/16: clear of docker0's 172.17.0.0/16 and
    /// Podman's 10.88.0.0/16, so all three run side by side.
    fn default() -> Self {
        NetworkOptions {
            bridge: "keel0".to_owned(),
            gateway: Ipv4Addr::new(10, 87, 0, 1),
            subnet: "10.87.0.0/16".parse().expect("a valid subnet"),
        }
    }
}

impl NetworkOptions {
    /// From `--bip`'s `ADDRESS/PREFIX`: the bridge's address and subnet.
    pub fn with_bip(bridge: &str, bip: &str) -> Result<Self> {
        let subnet: Subnet = bip.parse()?;
        let gateway = bip
            .split_once('/')
            .and_then(|(address, _)| address.parse().ok())
            .ok_or_else(|| keel_network::Error::InvalidSubnet(bip.to_owned()))?;
        subnet.check_host(gateway)?;
        Ok(NetworkOptions {
            bridge: bridge.to_owned(),
            gateway,
            subnet,
        })
    }
}

/// What a container asks of the network, as `docker create` takes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// `bridge` (also when empty), `none`, `host`, or `container:NAME`.
    pub mode: String,
    /// `-p`: container port to host bindings.
    pub ports: BTreeMap<Port, Vec<Binding>>,
    /// `-P`: every exposed port on a free host port.
    pub publish_all: bool,
    /// The image's EXPOSEd ports and `--expose`.
    pub exposed: BTreeSet<Port>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:ADDRESS`.
    pub extra_hosts: Vec<String>,
    /// `--link NAME[:ALIAS]`.
    pub links: Vec<String>,
}

/// The modes of [`NetworkConfig::mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Bridge,
    None,
    Host,
    Container(String),
}

impl NetworkConfig {
    pub fn mode(&self) -> Result<Mode> {
        match self.mode.as_str() {
            "" | "default" | BRIDGE => Ok(Mode::Bridge),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            other => match other.strip_prefix("container:") {
                Some(name) if !name.is_empty() => Ok(Mode::Container(name.to_owned())),
                _ => Err(Error::NoSuchNetwork(other.to_owned())),
            },
        }
    }

    /// Docker's NetworkMode: `bridge` when none was asked for.
    pub fn mode_name(&self) -> &str {
        match self.mode.as_str() {
            "" | "default" => BRIDGE,
            mode => mode,
        }
    }

    /// `--link NAME[:ALIAS]` as (name, alias).
    pub fn parsed_links(&self) -> impl Iterator<Item = (&str, &str)> {
        self.links.iter().map(|link| {
            let link = link.strip_prefix('/').unwrap_or(link);
            link.split_once(':').unwrap_or((link, link))
        })
    }

    /// `--add-host NAME:ADDRESS` as (address, name), checked.
    fn parsed_extra_hosts(&self) -> Result<Vec<(String, String)>> {
        self.extra_hosts
            .iter()
            .map(|entry| {
                let (name, address) = entry.split_once(':').or_else(|| entry.split_once('='))
                    .filter(|(name, address)| !name.is_empty() && address.parse::<std::net::IpAddr>().is_ok())
                    .ok_or_else(|| {
                        Error::InvalidParameter(format!(
                            "invalid argument \"{entry}\" for \"--add-host\" flag: expected NAME:IP, such as db:10.0.0.5"
                        ))
                    })?;
                Ok((address.to_owned(), name.to_owned()))
            })
            .collect()
    }

    /// The checks `docker create` makes before anything is made.
    pub(crate) fn check(&self) -> Result<()> {
        let mode = self.mode()?;
        self.parsed_extra_hosts()?;
        if !self.links.is_empty() && mode != Mode::Bridge {
            return Err(Error::InvalidParameter(
                "conflicting options: links are only supported on the default bridge network"
                    .to_owned(),
            ));
        }
        if matches!(mode, Mode::Container(_)) && !self.ports.is_empty() {
            return Err(Error::InvalidParameter(
                "conflicting options: port publishing and the container type network mode"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// A container's place on a network, kept in its record until removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

impl Endpoint {
    pub fn mac_address(&self) -> String {
        bridge::mac_address(self.address)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A published port in force, while the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub port: Port,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// The daemon's side of networking: the default bridge's settings, and
/// the host ports it holds for running containers.
#[derive(Debug)]
pub(crate) struct Networks {
    options: NetworkOptions,
    /// Where containers' namespaces are bound.
    netns_dir: PathBuf,
    /// Host ports held, by container id.
    held: Mutex<BTreeMap<String, Vec<Reservation>>>,
    /// The bridge and its table are set up (once per daemon).
    ready: Mutex<bool>,
}

/// How a container's process is to be put on the network.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// The namespace to join (`None`: a new one of its own, or the
    /// host's with `host`).
    pub netns: Option<PathBuf>,
    pub host: bool,
    /// Where hosts, hostname and resolv.conf were written.
    pub files_dir: PathBuf,
    /// Link variables (`ALIAS_PORT_80_TCP=...`).
    pub env: Vec<String>,
}

impl Networks {
    pub fn new(options: NetworkOptions, netns_dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&netns_dir)
            .context(|| format!("cannot create {}", netns_dir.display()))?;
        Ok(Networks {
            options,
            netns_dir,
            held: Mutex::new(BTreeMap::new()),
            ready: Mutex::new(false),
        })
    }

    pub fn options(&self) -> &NetworkOptions {
        &self.options
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            bridge: &self.options.bridge,
            subnet: self.options.subnet,
            internal: false,
        }
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Reservation>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bridge and its rules, made on first use: with `forwards`, the
    /// ports of containers already running (after a daemon restart).
    fn ensure(&self, forwards: &[Forward]) -> Result<()> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if !*ready {
            let options = &self.options;
            bridge::ensure(&options.bridge, options.gateway, options.subnet)?;
            self.rules().install(forwards)?;
            *ready = true;
        }
        Ok(())
    }
}

/// What `--link`s add: /etc/hosts lines (address, names) and variables.
#[derive(Debug, Default)]
struct Links {
    hosts: Vec<(String, String)>,
    env: Vec<String>,
}

/// The host's end of a container's veth pair.
fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..11])
}

fn forwards(endpoint: &Endpoint, published: &[Published]) -> Vec<Forward> {
    published
        .iter()
        .map(|p| Forward {
            protocol: p.port.protocol,
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_ip: endpoint.address,
            container_port: p.port.number,
        })
        .collect()
}

impl Engine {
    /// Gives a container about to start its network: returns how its
    /// process joins it. Undone by [`Engine::leave_network`], also when it
    /// fails half way.
    pub(crate) fn join_network(&self, id: &str) -> Result<Wiring> {
        let wired = self.wire(id);
        if wired.is_err() {
            self.leave_network(id);
        }
        wired
    }

    fn wire(&self, id: &str) -> Result<Wiring> {
        let container = self.container(id)?;
        let network = &container.config.network;
        let files_dir = self.dir(id);
        let hostname = hostname(&container);
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolver = Resolver::new(
            &host_resolv,
            &network.dns,
            &network.dns_search,
            &network.dns_options,
        );
        let mut extra = network.parsed_extra_hosts()?;
        let mut wiring = Wiring {
            netns: None,
            host: false,
            files_dir: files_dir.clone(),
            env: Vec::new(),
        };
        let mut own = Vec::new();
        match network.mode()? {
            Mode::None => {}
            Mode::Host => {
                wiring.host = true;
                let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
                write_files(&files_dir, &hosts, &hostname, &host_resolv)?;
                return Ok(wiring);
            }
            Mode::Container(name) => {
                let target = self.container(&name)?;
                if target.state.status != Status::Running {
                    return Err(Error::InvalidParameter(format!(
                        "cannot join network of a non running container: {}",
                        target.id
                    )));
                }
                wiring.netns = Some(format!("/proc/{}/ns/net", target.state.pid).into());
                for file in ["hosts", "hostname", "resolv.conf"] {
                    fs::copy(self.dir(&target.id).join(file), files_dir.join(file))
                        .context(|| format!("cannot copy {file} of {}", target.name))?;
                }
                return Ok(wiring);
            }
            Mode::Bridge => {
                let endpoint = self.endpoint(id)?;
                let path = self.networks.netns_path(id);
                netns::remove(&path)?;
                netns::create(&path)?;
                wiring.netns = Some(path.clone());
                self.networks.ensure(&self.running_forwards())?;
                let host_name = veth_name(id);
                bridge::attach(
                    &path,
                    &Link {
                        bridge: &self.networks.options.bridge,
                        host_name: &host_name,
                        name: "eth0",
                        address: endpoint.address,
                        prefix: endpoint.prefix,
                        gateway: Some(endpoint.gateway),
                    },
                )?;
                self.publish(id, &container, &endpoint)?;
                own.push((endpoint.address.to_string(), hostname.clone()));
                let links = self.links(&container)?;
                extra.extend(links.hosts);
                wiring.env = links.env;
            }
        }
        write_files(
            &files_dir,
            &files::hosts(&extra, &own),
            &hostname,
            &resolver.resolv_conf(false),
        )?;
        Ok(wiring)
    }

    /// The container's address on the default bridge: the one it had, or
    /// the lowest free one, recorded at once.
    fn endpoint(&self, id: &str) -> Result<Endpoint> {
        let options = &self.networks.options;
        let mut table = self.lock();
        if let Some(endpoint) = table
            .containers
            .get(id)
            .and_then(|c| c.state.endpoint.clone())
        {
            return Ok(endpoint);
        }
        let used: BTreeSet<Ipv4Addr> = table
            .containers
            .values()
            .filter_map(|c| Some(c.state.endpoint.as_ref()?.address))
            .collect();
        let endpoint = Endpoint {
            address: options.subnet.allocate(options.gateway, &used)?,
            prefix: options.subnet.prefix(),
            gateway: options.gateway,
        };
        let container = table
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NoSuchContainer(id.to_owned()))?;
        container.state.endpoint = Some(endpoint.clone());
        let copy = container.clone();
        drop(table);
        crate::save(&self.dir(id), &copy)?;
        Ok(endpoint)
    }

    /// Holds the host ports of the container's published ports and
    /// forwards them to it; records what is published.
    fn publish(&self, id: &str, container: &Container, endpoint: &Endpoint) -> Result<()> {
        let network = &container.config.network;
        let mut wanted: Vec<(Port, Binding)> = network
            .ports
            .iter()
            .flat_map(|(port, bindings)| bindings.iter().map(|b| (*port, b.clone())))
            .collect();
        if network.publish_all {
            let any = Binding {
                host_ip: None,
                host_ports: None,
            };
            for port in &network.exposed {
                if !network.ports.contains_key(port) {
                    wanted.push((*port, any.clone()));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut published = Vec::new();
        let mut held = Vec::new();
        for (port, binding) in &wanted {
            let (host_port, reservation) =
                Reservation::take(port.protocol, binding).map_err(|error| {
                    Error::InvalidParameter(format!(
                        "driver failed programming external connectivity on endpoint {}: {error}",
                        container.name
                    ))
                })?;
            held.push(reservation);
            published.push(Published {
                port: *port,
                host_ip: binding.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                host_port,
            });
        }
        self.networks.held().insert(id.to_owned(), held);
        self.update(id, |c| c.state.published = published.clone())?;
        self.networks.rules().add(&forwards(endpoint, &published))?;
        Ok(())
    }

    /// The forwards of every running container (to set the rules up
    /// again after a restart of the daemon).
    fn running_forwards(&self) -> Vec<Forward> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.state.status == Status::Running)
            .filter_map(|c| Some(forwards(c.state.endpoint.as_ref()?, &c.state.published)))
            .flatten()
            .collect()
    }

    /// /etc/hosts lines and environment variables for `--link`s, as
    /// Docker's legacy links: the target must run.
    fn links(&self, container: &Container) -> Result<Links> {
        let mut links = Links::default();
        for (name, alias) in container.config.network.parsed_links() {
            let target = self.container(name)?;
            let endpoint = target
                .state
                .endpoint
                .as_ref()
                .filter(|_| target.state.status == Status::Running)
                .ok_or_else(|| {
                    Error::InvalidParameter(format!(
                        "Cannot link to a non running container: /{} AS /{}/{alias}",
                        target.name, container.name
                    ))
                })?;
            links.hosts.push((
                endpoint.address.to_string(),
                format!("{alias} {} {}", hostname(&target), target.name),
            ));
            links
                .env
                .extend(link_env(alias, &container.name, &target, endpoint.address));
        }
        Ok(links)
    }

    /// Takes a stopped container off its network: its ports, its veth
    /// pair, its namespace. Its address stays recorded until removal.
    pub(crate) fn leave_network(&self, id: &str) {
        let Ok(container) = self.container(id) else {
            return;
        };
        if let Some(endpoint) = &container.state.endpoint {
            let published = forwards(endpoint, &container.state.published);
            if !published.is_empty() {
                self.networks.rules().remove(&published).ok();
            }
            bridge::detach(&veth_name(id)).ok();
        }
        self.networks.held().remove(id);
        netns::remove(&self.networks.netns_path(id)).ok();
        if !container.state.published.is_empty() {
            self.update(id, |c| c.state.published.clear()).ok();
        }
    }

    /// After a daemon restart: the bridge's rules as the running
    /// containers need them (none orphaned, none twice), their host ports
    /// held again, and what stopped containers left behind removed.
    pub(crate) fn reconcile_networks(&self, table: &Table) {
        let mut forwards_now = Vec::new();
        let mut held = self.networks.held();
        for container in table.containers.values() {
            let Some(endpoint) = &container.state.endpoint else {
                continue;
            };
            if container.state.status == Status::Running {
                forwards_now.extend(forwards(endpoint, &container.state.published));
                let reservations = container
                    .state
                    .published
                    .iter()
                    .filter_map(|p| {
                        let binding = Binding {
                            host_ip: Some(p.host_ip).filter(|ip| !ip.is_unspecified()),
                            host_ports: Some(p.host_port..=p.host_port),
                        };
                        Reservation::take(p.port.protocol, &binding).ok()
                    })
                    .map(|(_, reservation)| reservation)
                    .collect();
                held.insert(container.id.clone(), reservations);
            } else {
                bridge::detach(&veth_name(&container.id)).ok();
                netns::remove(&self.networks.netns_path(&container.id)).ok();
            }
        }
        drop(held);
        let bridge_exists = Path::new("/sys/class/net")
            .join(&self.networks.options.bridge)
            .exists();
        if bridge_exists || !forwards_now.is_empty() {
            self.networks.ensure(&forwards_now).ok();
        }
    }
}

/// The container's hostname: `--hostname`, else the host's with the
/// host's network, else its short id.
pub(crate) fn hostname(container: &Container) -> String {
    if let Some(name) = &container.config.hostname {
        return name.clone();
    }
    if container
        .config
        .network
        .mode()
        .is_ok_and(|m| m == Mode::Host)
        && let Ok(name) = fs::read_to_string("/proc/sys/kernel/hostname")
    {
        return name.trim().to_owned();
    }
    container.id[..12].to_owned()
}

fn write_files(dir: &Path, hosts: &str, hostname: &str, resolv_conf: &str) -> Result<()> {
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", &format!("{hostname}\n")),
        ("resolv.conf", resolv_conf),
    ] {
        fs::write(dir.join(name), text)
            .context(|| format!("cannot write the container's {name}"))?;
    }
    Ok(())
}

/// Docker's link variables for `alias` of `target` at `address`.
fn link_env(alias: &str, name: &str, target: &Container, address: Ipv4Addr) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut env = vec![format!("{prefix}_NAME=/{name}/{alias}")];
    let ports = &target.config.network.exposed;
    if let Some(first) = ports.iter().next() {
        env.push(format!(
            "{prefix}_PORT={}://{address}:{}",
            first.protocol.as_str(),
            first.number
        ));
    }
    for port in ports {
        let (proto, number) = (port.protocol.as_str(), port.number);
        let upper = proto.to_ascii_uppercase();
        let base = format!("{prefix}_PORT_{number}_{upper}");
        env.push(format!("{base}={proto}://{address}:{number}"));
        env.push(format!("{base}_ADDR={address}"));
        env.push(format!("{base}_PORT={number}"));
        env.push(format!("{base}_PROTO={proto}"));
    }
    for variable in &target.config.env {
        let key = variable.split('=').next().unwrap_or_default();
        if !["HOME", "PATH", "HOSTNAME"].contains(&key) {
            env.push(format!("{prefix}_ENV_{variable}"));
        }
    }
    env
}
