//! Containers' networks, as Docker's: the default bridge (`bridge`, on
//! Keel's own `keel0`), user networks (a bridge each, with an embedded DNS
//! server), `host`, `none`, and another container's. A container on a
//! bridge network gets a network namespace made before its process starts,
//! a veth pair per network, an address on each (kept in its record until
//! it is removed or disconnected, so the addresses in use are always the
//! records'), its published ports (host ports held by the daemon, DNAT in
//! nftables), and the /etc/hosts, /etc/hostname and /etc/resolv.conf
//! Docker writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use keel_network::bridge::{self, Link};
use keel_network::files::{self, Resolver};
use keel_network::ipam::AddressPool;
use keel_network::nft::{Forward, Rules};
use keel_network::{Binding, Port, Reservation, Subnet, dns, firewall, netns};
use serde::{Deserialize, Serialize};

use crate::container::{Container, Status};
use crate::error::{Context, Error, Result};
use crate::{Engine, Table};

/// The default network's name, as Docker's.
pub const BRIDGE: &str = "bridge";

/// How the daemon sets up its default bridge (`--bridge`, `--bip`) and
/// where user networks' subnets come from (`--default-address-pool`).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub bridge: String,
    /// The bridge's address and subnet: `10.87.0.1/16`.
    pub gateway: Ipv4Addr,
    pub subnet: Subnet,
    /// Docker's own pools when empty.
    pub address_pools: Vec<AddressPool>,
}

impl Default for NetworkOptions {
    /// `keel0` on 10.87.0.0/16: clear of docker0's 172.17.0.0/16 and
    /// Podman's 10.88.0.0/16, so all three run side by side.
    fn default() -> Self {
        NetworkOptions {
            bridge: "keel0".to_owned(),
            gateway: Ipv4Addr::new(10, 87, 0, 1),
            subnet: "10.87.0.0/16".parse().expect("a valid subnet"),
            address_pools: Vec::new(),
        }
    }
}

impl NetworkOptions {
    /// `--bip`'s `ADDRESS/PREFIX`: the bridge's address and subnet.
    pub fn set_bip(&mut self, bip: &str) -> Result<()> {
        let subnet: Subnet = bip.parse()?;
        let gateway = bip
            .split_once('/')
            .and_then(|(address, _)| address.parse().ok())
            .ok_or_else(|| keel_network::Error::InvalidSubnet(bip.to_owned()))?;
        subnet.check_host(gateway)?;
        self.gateway = gateway;
        self.subnet = subnet;
        Ok(())
    }
}

/// A bridge network: the default one, or a user's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// The Linux bridge: `keel0` for the default, `br-` and 12 hex digits
    /// for a user's.
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No way in or out but between its own containers.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created: String,
}

impl Network {
    /// The default bridge has neither DNS nor aliases, as in Docker.
    pub fn is_default(&self) -> bool {
        self.name == BRIDGE
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            bridge: &self.bridge,
            subnet: self.subnet,
            internal: self.internal,
        }
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// What a container asks of the network, as `docker create` takes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// `bridge` (also when empty), a user network's name, `none`, `host`,
    /// or `container:NAME`.
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
    /// `--network-alias`: more names on a user network.
    pub aliases: Vec<String>,
    /// `--ip`: the address on a user network.
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`: on the network it is created on.
    pub mac_address: Option<String>,
}

/// The modes of [`NetworkConfig::mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A bridge network, by name: `bridge` or a user's.
    Network(String),
    None,
    Host,
    Container(String),
}

impl NetworkConfig {
    pub fn mode(&self) -> Mode {
        match self.mode.as_str() {
            "" | "default" | BRIDGE => Mode::Network(BRIDGE.to_owned()),
            "none" => Mode::None,
            "host" => Mode::Host,
            other => match other.strip_prefix("container:") {
                Some(name) => Mode::Container(name.to_owned()),
                None => Mode::Network(other.to_owned()),
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
        parse_extra_hosts(&self.extra_hosts)
    }
}

/// A container's place on a network, kept in its record until it is
/// removed or disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    /// Its name in the container: `eth0`, `eth1`...
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--mac-address`; else Docker's, made of the address.
    #[serde(default)]
    pub mac: Option<String>,
}

impl Endpoint {
    fn mac(&self) -> [u8; 6] {
        self.mac
            .as_deref()
            .and_then(|text| bridge::parse_mac(text).ok())
            .unwrap_or_else(|| bridge::mac_address(self.address))
    }

    pub fn mac_address(&self) -> String {
        bridge::format_mac(self.mac())
    }
}

/// A published port in force, while the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub port: Port,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// The daemon's side of networking: the networks, the host ports it holds
/// for running containers, and the DNS server of user networks.
#[derive(Debug)]
pub(crate) struct Networks {
    /// User networks' records.
    dir: PathBuf,
    /// What user networks' subnets are cut from.
    address_pools: Vec<AddressPool>,
    /// Where containers' namespaces are bound.
    netns_dir: PathBuf,
    /// Every bridge network by id, the default one included.
    list: Mutex<BTreeMap<String, Network>>,
    /// Host ports held, by container id.
    held: Mutex<BTreeMap<String, Vec<Reservation>>>,
    /// Networks whose bridge and table are set up (once per daemon), and
    /// whether their traffic is let through a FORWARD policy that drops.
    ready: Mutex<BTreeMap<String, bool>>,
    dns: Mutex<Option<dns::Server>>,
    /// Namespaces made ahead for the containers' starts.
    spares: netns::Spares,
}

/// How many network namespaces to keep made ahead: enough for a burst of
/// starts from a script while the next are made.
const SPARE_NAMESPACES: usize = 4;

/// How a container's process is to be put on the network.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// The namespace to join (`None` with `host`: the host's).
    pub netns: Option<PathBuf>,
    pub host: bool,
    /// Where hosts, hostname and resolv.conf were written.
    pub files_dir: PathBuf,
    /// Link variables (`ALIAS_PORT_80_TCP=...`).
    pub env: Vec<String>,
}

impl Networks {
    pub fn open(options: NetworkOptions, dir: PathBuf, netns_dir: PathBuf) -> Result<Self> {
        for path in [&dir, &netns_dir] {
            fs::create_dir_all(path).context(|| format!("cannot create {}", path.display()))?;
        }
        let default = Network {
            id: fixed_network_id(&options.bridge),
            name: BRIDGE.to_owned(),
            bridge: options.bridge.clone(),
            subnet: options.subnet,
            gateway: options.gateway,
            internal: false,
            labels: BTreeMap::new(),
            created: String::new(),
        };
        let mut list = BTreeMap::from([(default.id.clone(), default)]);
        for entry in fs::read_dir(&dir).context(|| format!("cannot list {}", dir.display()))? {
            let path = entry.context(|| "a network record".to_owned())?.path();
            let bytes = fs::read(&path).unwrap_or_default();
            if let Some(network) = crate::record::decode_found::<Network>(&path, &bytes)? {
                list.insert(network.id.clone(), network);
            }
        }
        let address_pools = match options.address_pools.is_empty() {
            true => AddressPool::docker_defaults(),
            false => options.address_pools,
        };
        Ok(Networks {
            dir,
            address_pools,
            netns_dir,
            list: Mutex::new(list),
            held: Mutex::new(BTreeMap::new()),
            ready: Mutex::new(BTreeMap::new()),
            dns: Mutex::new(None),
            spares: netns::Spares::new(SPARE_NAMESPACES),
        })
    }

    fn list(&self) -> MutexGuard<'_, BTreeMap<String, Network>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A network by name, id, or unique id prefix.
    pub fn find(&self, name: &str) -> Result<Network> {
        let list = self.list();
        if let Some(network) = list.values().find(|n| n.name == name || n.id == name) {
            return Ok(network.clone());
        }
        let matches: Vec<&Network> = list
            .values()
            .filter(|n| !name.is_empty() && n.id.starts_with(name))
            .collect();
        match matches.as_slice() {
            [network] => Ok((*network).clone()),
            _ => Err(Error::NoSuchNetwork(name.to_owned())),
        }
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Removes the namespaces of build steps a crash of the daemon left.
    pub(crate) fn remove_job_namespaces(&self) {
        let Ok(entries) = fs::read_dir(&self.netns_dir) else {
            return;
        };
        for entry in entries.filter_map(|entry| entry.ok()) {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(keel_build::STEP_SNAPSHOT_PREFIX)
            {
                netns::remove(&entry.path()).ok();
            }
        }
    }

    /// A new network namespace for container `id`, at its path (replacing
    /// one an earlier start left).
    fn fresh_netns(&self, id: &str) -> Result<PathBuf> {
        let path = self.netns_path(id);
        netns::remove(&path)?;
        self.spares.create(&path)?;
        Ok(path)
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Reservation>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A network's bridge and rules, made on its first use: with
    /// `forwards`, the ports of containers already running on it (asked
    /// for only then, not at every start).
    fn ensure(&self, network: &Network, forwards: impl FnOnce() -> Vec<Forward>) -> Result<()> {
        let mut ready = self.ready();
        if !ready.contains_key(&network.id) {
            bridge::ensure(&network.bridge, network.gateway, network.subnet)?;
            network.rules().install(&forwards())?;
            let through = firewall::let_through(&network.bridge)?;
            ready.insert(network.id.clone(), through);
        }
        Ok(())
    }

    fn ready(&self) -> MutexGuard<'_, BTreeMap<String, bool>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the networks set up while FORWARD's policy accepted through it
    /// now that it drops (Docker started after Keel). Under the same lock
    /// as [`Networks::ensure`], so that a network set up as the policy
    /// changes is either seen here or read the new policy itself.
    fn policy_dropped(&self) {
        let bridges: BTreeMap<String, String> = self
            .list()
            .values()
            .map(|n| (n.id.clone(), n.bridge.clone()))
            .collect();
        for (id, through) in self.ready().iter_mut().filter(|(_, through)| !**through) {
            if let Some(bridge) = bridges.get(id) {
                // On failure it stays as it was, and is tried again at the
                // chain's next change.
                *through = firewall::let_through(bridge).unwrap_or(false);
            }
        }
    }

    /// Removes a network's bridge and rules.
    fn tear_down(&self, network: &Network) {
        network.rules().uninstall().ok();
        firewall::stop_letting_through(&network.bridge);
        bridge::remove(&network.bridge).ok();
        self.ready().remove(&network.id);
    }
}

/// The id of a network that has no record of its own: `host`, `none`,
/// and the default bridge (by its bridge's name); the same at every start.
pub fn fixed_network_id(name: &str) -> String {
    keel_image::Digest::of(format!("keel network {name}").as_bytes())
        .hex()
        .to_owned()
}

/// `--add-host NAME:ADDRESS`es as (address, name), checked.
pub(crate) fn parse_extra_hosts(entries: &[String]) -> Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|entry| {
            let (name, address) = entry
                .split_once(':')
                .or_else(|| entry.split_once('='))
                .filter(|(name, address)| {
                    !name.is_empty() && address.parse::<std::net::IpAddr>().is_ok()
                })
                .ok_or_else(|| {
                    Error::InvalidParameter(format!(
                        "invalid argument \"{entry}\" for \"--add-host\" flag: expected NAME:IP, such as db:10.0.0.5"
                    ))
                })?;
            Ok((address.to_owned(), name.to_owned()))
        })
        .collect()
}

/// The addresses containers and build steps have on `network`.
fn used_addresses(table: &Table, network: &Network) -> BTreeSet<Ipv4Addr> {
    table
        .containers
        .values()
        .flat_map(|c| c.state.endpoints.values())
        .chain(table.job_endpoints.values())
        .filter(|e| e.network_id == network.id)
        .map(|e| e.address)
        .collect()
}

/// The host's end of a container's veth pair on its network number `n`.
fn veth_name(id: &str, interface: &str) -> String {
    format!("veth{}{}", &id[..9], interface.trim_start_matches("eth"))
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

/// What a container asks of its endpoint on a network.
#[derive(Debug)]
struct Wanted<'a> {
    ip: Option<Ipv4Addr>,
    aliases: &'a [String],
    mac: Option<&'a str>,
}

/// What `--link`s add: /etc/hosts lines (address, names) and variables.
#[derive(Debug, Default)]
struct Links {
    hosts: Vec<(String, String)>,
    env: Vec<String>,
}

impl Engine {
    /// The checks `docker create` makes of the network before anything is
    /// made.
    pub(crate) fn check_network(&self, table: &Table, config: &NetworkConfig) -> Result<()> {
        config.parsed_extra_hosts()?;
        if let Some(mac) = &config.mac_address {
            bridge::parse_mac(mac)?;
        }
        let mode = config.mode();
        match &mode {
            Mode::Network(name) => {
                let network = self.networks.find(name)?;
                if network.is_default() && (config.ip.is_some() || !config.aliases.is_empty()) {
                    return Err(Error::InvalidParameter(
                        "user specified IP address and network aliases are supported only for user defined networks"
                            .to_owned(),
                    ));
                }
                if let Some(ip) = config.ip {
                    network.subnet.check_host(ip)?;
                }
            }
            Mode::Container(name) => {
                Self::find(table, name)?;
                if !config.ports.is_empty() {
                    return Err(Error::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                            .to_owned(),
                    ));
                }
            }
            Mode::None | Mode::Host => {}
        }
        if !config.links.is_empty() && mode != Mode::Network(BRIDGE.to_owned()) {
            return Err(Error::InvalidParameter(
                "conflicting options: links are only supported on the default bridge network"
                    .to_owned(),
            ));
        }
        for (name, _) in config.parsed_links() {
            Self::find(table, name).map_err(|_| {
                Error::InvalidParameter(format!("Could not get container for {name}"))
            })?;
        }
        Ok(())
    }

    /// Gives a container about to start its networks: returns how its
    /// process joins them. Undone by [`Engine::leave_network`], also when
    /// it fails half way.
    pub(crate) fn join_network(&self, id: &str) -> Result<Wiring> {
        let wired = self.wire(id);
        match wired.is_ok() {
            true => self.endpoint_events(id, "connect"),
            false => self.leave_network(id),
        }
        wired
    }

    /// Publishes a network event for each network container `id` is on, as
    /// Docker does when it starts (connect) and stops (disconnect).
    fn endpoint_events(&self, id: &str, action: &str) {
        let Ok(container) = self.container(id) else {
            return;
        };
        for name in container.state.endpoints.keys() {
            if let Ok(network) = self.networks.find(name) {
                self.network_event(&network, action, Some(id));
            }
        }
    }

    fn wire(&self, id: &str) -> Result<Wiring> {
        let container = self.container(id)?;
        let config = &container.config.network;
        let files_dir = self.dir(id);
        let hostname = hostname(&container);
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolver = Resolver::new(
            &host_resolv,
            &config.dns,
            &config.dns_search,
            &config.dns_options,
        );
        let mut extra = config.parsed_extra_hosts()?;
        let mut wiring = Wiring {
            netns: None,
            host: false,
            files_dir: files_dir.clone(),
            env: Vec::new(),
        };
        let mut own = Vec::new();
        let mut embedded_dns = false;
        match config.mode() {
            // A namespace with only its loopback, as Docker's.
            Mode::None => wiring.netns = Some(self.networks.fresh_netns(id)?),
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
            Mode::Network(primary) => {
                let path = self.networks.fresh_netns(id)?;
                wiring.netns = Some(path.clone());
                let primary = self.networks.find(&primary)?;
                if !container.state.left_primary {
                    let wanted = Wanted {
                        ip: config.ip,
                        aliases: &config.aliases,
                        mac: config.mac_address.as_deref(),
                    };
                    self.endpoint(id, &primary, &wanted)?;
                }
                let endpoints = self.container(id)?.state.endpoints;
                // The primary network's endpoint has the default route, the
                // ports and the container's name in /etc/hosts; once the
                // container left that network, its first other one.
                let main = match endpoints.contains_key(&primary.name) {
                    true => Some(primary.name.as_str()),
                    false => endpoints.keys().next().map(String::as_str),
                };
                for (name, endpoint) in &endpoints {
                    let network = self.networks.find(name)?;
                    self.attach_endpoint(id, &path, &network, endpoint, main == Some(name))?;
                    embedded_dns |= !network.is_default();
                }
                if let Some(endpoint) = main.map(|name| &endpoints[name]) {
                    own.push((endpoint.address.to_string(), hostname.clone()));
                    self.publish(id, &container, endpoint)?;
                }
                if embedded_dns {
                    self.serve_dns(id, &path)?;
                }
                let links = self.links(&container)?;
                extra.extend(links.hosts);
                wiring.env = links.env;
            }
        }
        write_files(
            &files_dir,
            &files::hosts(&extra, &own),
            &hostname,
            &resolver.resolv_conf(embedded_dns),
        )?;
        Ok(wiring)
    }

    /// Networks build step `id` as `network` says, writing its hosts,
    /// hostname and resolv.conf (with `extra_hosts`) into `files_dir`;
    /// returns the namespace it joins, if one was made for it (on the
    /// default bridge). Undone by [`Engine::leave_job_network`], also when
    /// it fails half way.
    pub(crate) fn join_job_network(
        &self,
        id: &str,
        network: keel_build::JobNetwork,
        extra_hosts: &[String],
        files_dir: &Path,
        hostname: &str,
    ) -> Result<Option<PathBuf>> {
        let joined = self.wire_job(id, network, extra_hosts, files_dir, hostname);
        if joined.is_err() {
            self.leave_job_network(id);
        }
        joined
    }

    fn wire_job(
        &self,
        id: &str,
        network: keel_build::JobNetwork,
        extra_hosts: &[String],
        files_dir: &Path,
        hostname: &str,
    ) -> Result<Option<PathBuf>> {
        use keel_build::JobNetwork;
        let extra = parse_extra_hosts(extra_hosts)?;
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolver = Resolver::new(&host_resolv, &[], &[], &[]);
        let (netns, own) = match network {
            JobNetwork::Host => {
                let mut hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
                for (address, names) in &extra {
                    hosts.push_str(&format!("{address}\t{names}\n"));
                }
                write_files(files_dir, &hosts, hostname, &host_resolv)?;
                return Ok(None);
            }
            // The runtime's new namespace, with only loopback.
            JobNetwork::Isolated => (None, Vec::new()),
            JobNetwork::Bridge => {
                let path = self.networks.fresh_netns(id)?;
                let bridge = self.networks.find(BRIDGE)?;
                let endpoint = {
                    let mut table = self.lock();
                    let address = bridge
                        .subnet
                        .allocate(bridge.gateway, &used_addresses(&table, &bridge))?;
                    let endpoint = Endpoint {
                        network_id: bridge.id.clone(),
                        interface: "eth0".to_owned(),
                        address,
                        prefix: bridge.subnet.prefix(),
                        gateway: bridge.gateway,
                        aliases: Vec::new(),
                        mac: None,
                    };
                    table.job_endpoints.insert(id.to_owned(), endpoint.clone());
                    endpoint
                };
                // The veth is named by the step's own digits.
                let digits = id.trim_start_matches(keel_build::STEP_SNAPSHOT_PREFIX);
                self.attach_endpoint(digits, &path, &bridge, &endpoint, true)?;
                (
                    Some(path),
                    vec![(endpoint.address.to_string(), hostname.to_owned())],
                )
            }
        };
        write_files(
            files_dir,
            &files::hosts(&extra, &own),
            hostname,
            &resolver.resolv_conf(false),
        )?;
        Ok(netns)
    }

    /// Takes build step `id` off its network: its namespace goes at once;
    /// its veth is deleted, and only then its address freed, on a thread of
    /// its own, so that the build does not wait the tens of milliseconds a
    /// link's deletion takes (see [`Engine::leave_network`]) and the next
    /// step never gets the address of a veth still on the bridge.
    pub(crate) fn leave_job_network(&self, id: &str) {
        netns::remove(&self.networks.netns_path(id)).ok();
        let Some(endpoint) = self.lock().job_endpoints.get(id).cloned() else {
            return;
        };
        let (engine, step) = (self.me.clone(), id.to_owned());
        let free = move || {
            let digits = step.trim_start_matches(keel_build::STEP_SNAPSHOT_PREFIX);
            bridge::detach(&veth_name(digits, &endpoint.interface)).ok();
            if let Some(engine) = engine.upgrade() {
                engine.lock().job_endpoints.remove(&step);
            }
        };
        // Without a thread, the address is freed now and the veth left to
        // the kernel.
        if std::thread::Builder::new()
            .name("job-veth".into())
            .spawn(free)
            .is_err()
        {
            self.lock().job_endpoints.remove(id);
        }
    }

    /// Puts the namespace at `netns` on `network` as `endpoint` says.
    fn attach_endpoint(
        &self,
        id: &str,
        netns: &Path,
        network: &Network,
        endpoint: &Endpoint,
        default_route: bool,
    ) -> Result<()> {
        self.networks
            .ensure(network, || self.running_forwards(network))?;
        bridge::attach(
            netns,
            &Link {
                bridge: &network.bridge,
                host_name: &veth_name(id, &endpoint.interface),
                name: &endpoint.interface,
                address: endpoint.address,
                prefix: endpoint.prefix,
                gateway: default_route.then_some(endpoint.gateway),
                mac: endpoint.mac(),
            },
        )?;
        Ok(())
    }

    /// The container's endpoint on `network`: the one it had, or a new one
    /// (`ip` if given, else the lowest free address), recorded at once.
    fn endpoint(&self, id: &str, network: &Network, wanted: &Wanted<'_>) -> Result<Endpoint> {
        // The record is written with the container's own lock, not the
        // table's (see change_record).
        let writer = self.writer(id)?;
        let _writing = writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut table = self.lock();
        let container = table
            .containers
            .get(id)
            .ok_or_else(|| Error::NoSuchContainer(id.to_owned()))?;
        if let Some(endpoint) = container.state.endpoints.get(&network.name) {
            return Ok(endpoint.clone());
        }
        let interface = format!("eth{}", container.state.endpoints.len());
        let used = used_addresses(&table, network);
        let address = match wanted.ip {
            Some(ip) if used.contains(&ip) || ip == network.gateway => {
                return Err(Error::InvalidParameter(format!(
                    "Address already in use: {ip} on network {}",
                    network.name
                )));
            }
            Some(ip) => ip,
            None => network.subnet.allocate(network.gateway, &used)?,
        };
        let endpoint = Endpoint {
            network_id: network.id.clone(),
            interface,
            address,
            prefix: network.subnet.prefix(),
            gateway: network.gateway,
            aliases: wanted.aliases.to_vec(),
            mac: wanted.mac.map(str::to_owned),
        };
        let container = table.containers.get_mut(id).expect("found above");
        container
            .state
            .endpoints
            .insert(network.name.clone(), endpoint.clone());
        let record = container.clone();
        drop(table);
        crate::write_record(&self.dir(id), &record, true)?;
        Ok(endpoint)
    }

    /// Holds the host ports of the container's published ports and
    /// forwards them to it; records what is published.
    fn publish(&self, id: &str, container: &Container, endpoint: &Endpoint) -> Result<()> {
        let config = &container.config.network;
        let mut wanted: Vec<(Port, Binding)> = config
            .ports
            .iter()
            .flat_map(|(port, bindings)| bindings.iter().map(|b| (*port, b.clone())))
            .collect();
        if config.publish_all {
            let any = Binding {
                host_ip: None,
                host_ports: None,
            };
            for port in &config.exposed {
                if !config.ports.contains_key(port) {
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
        self.update_state(id, |c| c.state.published = published.clone())?;
        let network = self.primary_network(container)?;
        network.rules().add(&forwards(endpoint, &published))?;
        Ok(())
    }

    fn primary_network(&self, container: &Container) -> Result<Network> {
        match container.config.network.mode() {
            Mode::Network(name) => self.networks.find(&name),
            _ => Err(Error::NoSuchNetwork(container.config.network.mode.clone())),
        }
    }

    /// The forwards of every container running on `network` (to set its
    /// rules up again after a restart of the daemon).
    fn running_forwards(&self, network: &Network) -> Vec<Forward> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.state.status == Status::Running)
            .filter(|c| c.config.network.mode() == Mode::Network(network.name.clone()))
            .filter_map(|c| {
                Some(forwards(
                    c.state.endpoints.get(&network.name)?,
                    &c.state.published,
                ))
            })
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
                .endpoints
                .get(BRIDGE)
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

    /// Takes a stopped container off its networks: its ports, its DNS
    /// server, its namespace. Its addresses stay recorded. Its veth pairs
    /// go with the namespace, which the kernel tears down in the
    /// background: deleting them here would cost tens of milliseconds of
    /// RCU grace periods on every exit (a start that comes first deletes
    /// a leftover one itself).
    pub(crate) fn leave_network(&self, id: &str) {
        let Ok(container) = self.container(id) else {
            return;
        };
        if let Ok(network) = self.primary_network(&container)
            && let Some(endpoint) = container.state.endpoints.get(&network.name)
        {
            let published = forwards(endpoint, &container.state.published);
            if !published.is_empty() {
                network.rules().remove(&published).ok();
            }
        }
        self.networks.held().remove(id);
        if let Some(server) = self
            .networks
            .dns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            server.remove(id);
        }
        let netns = self.networks.netns_path(id);
        let joined = netns.exists();
        netns::remove(&netns).ok();
        if joined {
            self.endpoint_events(id, "disconnect");
        }
        if !container.state.published.is_empty() {
            self.update_state(id, |c| c.state.published.clear()).ok();
        }
    }

    /// Hears FORWARD's changes from now on (where iptables writes to
    /// nftables; iptables-legacy sends no notice), so that networks set up
    /// while its policy accepted are let through as soon as it drops, not
    /// at their next container's start. The socket is open before this
    /// returns: no change after it is missed.
    pub(crate) fn watch_forward_policy(self: &Arc<Self>) {
        let Ok(mut watch) = firewall::PolicyWatch::open() else {
            return;
        };
        let engine = Arc::downgrade(self);
        // Without the thread, the policy is only read at each network's
        // set-up, as it was: not a reason to refuse to start.
        let _ = std::thread::Builder::new()
            .name("forward-policy".to_owned())
            .stack_size(crate::WORKER_STACK)
            .spawn(move || {
                while let Ok(drops) = watch.wait_for_change() {
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    if drops {
                        engine.networks.policy_dropped();
                    }
                }
            });
    }

    /// After a daemon restart: each network's rules as its running
    /// containers need them (none orphaned, none twice), their host ports
    /// held again, their DNS served again, and what stopped containers
    /// left behind removed.
    pub(crate) fn reconcile_networks(&self) {
        let containers: Vec<Container> = self.lock().containers.values().cloned().collect();
        let mut held = self.networks.held();
        for container in &containers {
            if container.state.status == Status::Running {
                if container.state.endpoints.is_empty() {
                    continue;
                }
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
                for endpoint in container.state.endpoints.values() {
                    bridge::detach(&veth_name(&container.id, &endpoint.interface)).ok();
                }
                netns::remove(&self.networks.netns_path(&container.id)).ok();
            }
        }
        drop(held);
        let networks: Vec<Network> = self.networks.list().values().cloned().collect();
        for network in &networks {
            let forwards_now = self.running_forwards(network);
            let bridge_exists = Path::new("/sys/class/net").join(&network.bridge).exists();
            if bridge_exists || !forwards_now.is_empty() {
                self.networks.ensure(network, || forwards_now).ok();
            }
        }
        for container in &containers {
            let on_user_network = container
                .state
                .endpoints
                .keys()
                .any(|name| name.as_str() != BRIDGE);
            if container.state.status == Status::Running && on_user_network {
                self.serve_dns(&container.id, &self.networks.netns_path(&container.id))
                    .ok();
            }
        }
    }

    /// Serves the embedded DNS server in the container's namespace,
    /// starting the server on first use.
    fn serve_dns(&self, id: &str, netns: &Path) -> Result<()> {
        let mut server = self.networks.dns.lock().unwrap_or_else(|p| p.into_inner());
        if server.is_none() {
            *server = Some(dns::Server::start(Arc::new(EngineNames(Weak::clone(
                &self.me,
            ))))?);
        }
        let server = server.as_ref().expect("started above");
        if !server.serves(id) {
            server.add(id, netns)?;
        }
        Ok(())
    }

    /// The addresses of `name` for container `asker`: running containers
    /// sharing a user network with it, by name, alias or short id.
    fn resolve(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let table = self.lock();
        let networks: Vec<&String> = table
            .containers
            .get(asker)?
            .state
            .endpoints
            .keys()
            .filter(|n| n.as_str() != BRIDGE)
            .collect();
        let mut found = Vec::new();
        for container in table.containers.values() {
            if container.state.status != Status::Running {
                continue;
            }
            for network in &networks {
                let Some(endpoint) = container.state.endpoints.get(*network) else {
                    continue;
                };
                let known = container.name == name
                    || endpoint.aliases.iter().any(|a| a == name)
                    || (name.len() >= 12 && container.id.starts_with(name))
                    || container.config.hostname.as_deref() == Some(name);
                if known && !found.contains(&endpoint.address) {
                    found.push(endpoint.address);
                }
            }
        }
        (!found.is_empty()).then_some(found)
    }

    /// Where names nobody on the network has are forwarded: the
    /// container's `--dns` servers, else the host's (from the host's
    /// namespace, so loopback resolvers too).
    fn upstream(&self, asker: &str) -> Vec<SocketAddr> {
        let own = self
            .lock()
            .containers
            .get(asker)
            .map(|c| c.config.network.dns.clone())
            .unwrap_or_default();
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Resolver::new(&host, &own, &[], &[])
            .servers
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    /// Creates a user network, as `docker network create`.
    pub fn create_network(&self, request: NetworkRequest) -> Result<Network> {
        // Docker takes any name but an empty one.
        if request.name.is_empty() {
            return Err(Error::InvalidParameter(
                "invalid name: name is empty: give the network a name".to_owned(),
            ));
        }
        if ["host", "none", "default", BRIDGE].contains(&request.name.as_str()) {
            return Err(Error::InvalidParameter(format!(
                "{} is a pre-defined network and cannot be created",
                request.name
            )));
        }
        let mut list = self.networks.list();
        if list.values().any(|n| n.name == request.name) {
            return Err(Error::NetworkExists(request.name));
        }
        let subnet = match &request.subnet {
            Some(text) => {
                let subnet: Subnet = text.parse()?;
                if let Some(other) = list.values().find(|n| n.subnet.overlaps(&subnet)) {
                    return Err(Error::InvalidParameter(format!(
                        "invalid pool request: Pool overlaps with other one on this address space: {subnet} overlaps {} of network {}",
                        other.subnet, other.name
                    )));
                }
                subnet
            }
            None => self
                .networks
                .address_pools
                .iter()
                .flat_map(AddressPool::subnets)
                .find(|pool| {
                    !list.values().any(|n| n.subnet.overlaps(pool)) && !host_routes_overlap(pool)
                })
                .ok_or_else(|| {
                    Error::InvalidParameter(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
                            .to_owned(),
                    )
                })?,
        };
        let gateway = match &request.gateway {
            Some(text) => {
                let gateway: Ipv4Addr = text.parse().map_err(|_| {
                    Error::InvalidParameter(format!(
                        "invalid gateway address {text}: expected an IPv4 address in {subnet}"
                    ))
                })?;
                subnet.check_host(gateway)?;
                gateway
            }
            None => subnet.first_host(),
        };
        let id = crate::random_id()?;
        let network = Network {
            bridge: format!("br-{}", &id[..12]),
            id,
            name: request.name,
            subnet,
            gateway,
            internal: request.internal,
            labels: request.labels,
            created: keel_time::now_rfc3339(),
        };
        crate::record::write_atomically(
            &self.networks.dir.join(format!("{}.json", network.id)),
            &crate::record::encode(&network),
        )?;
        list.insert(network.id.clone(), network.clone());
        drop(list);
        self.network_event(&network, "create", None);
        Ok(network)
    }

    /// Every bridge network, the default first.
    pub fn networks(&self) -> Vec<Network> {
        let mut list: Vec<Network> = self.networks.list().values().cloned().collect();
        list.sort_by_key(|n| (!n.is_default(), n.created.clone()));
        list
    }

    pub fn network(&self, name: &str) -> Result<Network> {
        self.networks.find(name)
    }

    /// The containers with an endpoint on `network`, by name.
    pub fn network_users(&self, network: &Network) -> Vec<Container> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.state.endpoints.contains_key(&network.name))
            .cloned()
            .collect()
    }

    /// Removes a user network no container is on.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        if ["host", "none"].contains(&name) {
            return Err(Error::PredefinedNetwork(name.to_owned()));
        }
        let network = self.networks.find(name)?;
        if network.is_default() {
            return Err(Error::PredefinedNetwork(network.name));
        }
        let users = self.network_users(&network);
        if !users.is_empty() {
            return Err(Error::InvalidParameter(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                network.name,
                network.id,
                users
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.networks.tear_down(&network);
        let record = self.networks.dir.join(format!("{}.json", network.id));
        fs::remove_file(&record).context(|| format!("cannot remove {}", record.display()))?;
        self.networks.list().remove(&network.id);
        self.network_event(&network, "destroy", None);
        Ok(())
    }

    /// Removes every user network no container is on; returns their names.
    pub fn prune_networks(&self, selected: impl Fn(&Network) -> bool) -> Vec<String> {
        self.networks()
            .into_iter()
            .filter(|n| !n.is_default() && selected(n))
            .filter(|n| self.remove_network(&n.id).is_ok())
            .map(|n| n.name)
            .collect()
    }

    /// Puts a container on a user network (`network connect`): at once if
    /// it runs, else from its next start.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
        mac: Option<&str>,
    ) -> Result<()> {
        let network = self.networks.find(network)?;
        let container = self.container(container)?;
        if !matches!(container.config.network.mode(), Mode::Network(_)) {
            return Err(Error::InvalidParameter(format!(
                "container cannot be disconnected from host network or connected to host network: {} is on {}",
                container.name,
                container.config.network.mode_name()
            )));
        }
        if container.state.endpoints.contains_key(&network.name) {
            return Err(Error::InvalidParameter(format!(
                "endpoint with name {} already exists in network {}",
                container.name, network.name
            )));
        }
        if let Some(ip) = ip {
            network.subnet.check_host(ip)?;
        }
        if let Some(mac) = mac {
            bridge::parse_mac(mac)?;
        }
        let wanted = Wanted { ip, aliases, mac };
        let endpoint = self.endpoint(&container.id, &network, &wanted)?;
        if container.state.status == Status::Running {
            let netns = self.networks.netns_path(&container.id);
            let attached = self
                .attach_endpoint(&container.id, &netns, &network, &endpoint, false)
                .and_then(|()| match network.is_default() {
                    true => Ok(()),
                    false => self.serve_dns(&container.id, &netns),
                });
            if let Err(error) = attached {
                bridge::detach(&veth_name(&container.id, &endpoint.interface)).ok();
                self.forget_endpoint(&container.id, &network.name);
                return Err(error);
            }
        }
        self.network_event(&network, "connect", Some(&container.id));
        Ok(())
    }

    /// Takes a container off a network (`network disconnect`).
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let network = self.networks.find(network)?;
        let container = self.container(container)?;
        let is_primary = match container.config.network.mode() {
            Mode::Network(name) => self.networks.find(&name).is_ok_and(|n| n.id == network.id),
            _ => false,
        };
        let endpoint = container.state.endpoints.get(&network.name);
        // A container that has not started since it was created (or since
        // it left) is on its primary network without an endpoint yet.
        let pending = is_primary && !container.state.left_primary;
        if endpoint.is_none() && !pending {
            return Err(Error::InvalidParameter(format!(
                "container {} is not connected to network {}",
                container.id, network.name
            )));
        }
        if let Some(endpoint) = endpoint
            && container.state.status == Status::Running
        {
            bridge::detach(&veth_name(&container.id, &endpoint.interface))?;
        }
        self.update(&container.id, |c| {
            c.state.endpoints.remove(&network.name);
            c.state.left_primary |= is_primary;
        })?;
        self.network_event(&network, "disconnect", Some(&container.id));
        Ok(())
    }

    /// Publishes a network's event, naming the container it concerns.
    fn network_event(&self, network: &Network, action: &str, container: Option<&str>) {
        let mut event = crate::Event::new("network", action, &network.id)
            .with("name", &network.name)
            .with("type", "bridge");
        if let Some(container) = container {
            event = event.with("container", container);
        }
        self.events.publish(event);
    }

    fn forget_endpoint(&self, id: &str, network: &str) {
        let _ = self.update(id, |c| {
            c.state.endpoints.remove(network);
        });
    }
}

/// The engine as the DNS server's source of names (weakly: the server's
/// thread must not keep the engine alive).
struct EngineNames(Weak<Engine>);

impl dns::Names for EngineNames {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.0.upgrade()?.resolve(asker, name)
    }

    fn upstream(&self, asker: &str) -> Vec<SocketAddr> {
        self.0
            .upgrade()
            .map(|engine| engine.upstream(asker))
            .unwrap_or_default()
    }
}

/// Whether a pool overlaps a route the host already has (Docker skips
/// those when it picks a subnet).
fn host_routes_overlap(pool: &Subnet) -> bool {
    let routes = fs::read_to_string("/proc/net/route").unwrap_or_default();
    routes.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(destination), Some(mask)) = (fields.get(1), fields.get(7)) else {
            return false;
        };
        let parse = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::from_be);
        let (Some(destination), Some(mask)) = (parse(destination), parse(mask)) else {
            return false;
        };
        if mask == 0 {
            return false; // the default route
        }
        let prefix = mask.count_ones();
        format!("{}/{prefix}", Ipv4Addr::from(destination))
            .parse::<Subnet>()
            .is_ok_and(|route| route.overlaps(pool))
    })
}

/// The container's hostname: `--hostname`, else the host's with the
/// host's network, else its short id.
pub(crate) fn hostname(container: &Container) -> String {
    if let Some(name) = &container.config.hostname {
        return name.clone();
    }
    if container.config.network.mode() == Mode::Host
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
