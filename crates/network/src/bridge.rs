//! Bridges, and the veth pairs that join containers' namespaces to them.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::ipam::Subnet;
use crate::netlink::Netlink;
use crate::netns;

const MTU: u32 = 1500;

/// Makes the bridge `name` with the address `gateway` in `subnet` (or
/// takes the one there), up, with the kernel settings published ports
/// need: forwarding, and loopback addresses routed into it.
pub fn ensure(name: &str, gateway: Ipv4Addr, subnet: Subnet) -> Result<()> {
    let mut netlink = Netlink::open()?;
    let index = match netlink.index(name)? {
        Some(index) => index,
        None => {
            netlink.create_bridge(name)?;
            netlink.index(name)?.ok_or(Error::Netlink {
                what: format!("finding bridge {name} just made"),
                errno: Errno::NODEV,
            })?
        }
    };
    match netlink.add_address(index, gateway, subnet.prefix()) {
        Ok(())
        | Err(Error::Netlink {
            errno: Errno::EXIST,
            ..
        }) => {}
        Err(other) => return Err(other),
    }
    netlink.set_up(name)?;
    set(
        &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "1",
    )?;
    set("/proc/sys/net/ipv4/ip_forward", "1")
}

/// Deletes a bridge (and so detaches whatever was left on it).
pub fn remove(name: &str) -> Result<()> {
    Netlink::open()?.delete_link(name).map(drop)
}

/// Sets a kernel setting in /proc/sys or /sys.
fn set(path: &str, value: &str) -> Result<()> {
    let path = PathBuf::from(path);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}

/// A container's place on a bridge network.
#[derive(Debug, Clone)]
pub struct Link<'a> {
    pub bridge: &'a str,
    /// The host's end of the veth pair.
    pub host_name: &'a str,
    /// The container's end: `eth0`, `eth1`...
    pub name: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The default route's, if this link carries it.
    pub gateway: Option<Ipv4Addr>,
    /// The container end's MAC address.
    pub mac: [u8; 6],
}

/// Docker's MAC addresses: 02:42 and the IPv4 address.
pub fn mac_address(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:ac:11:00:02`; a unicast address (the first byte even).
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let invalid = || Error::InvalidMac(text.to_owned());
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| match part.len() {
            2 => u8::from_str_radix(part, 16).map_err(|_| invalid()),
            _ => Err(invalid()),
        })
        .collect::<Result<_>>()?;
    let mac: [u8; 6] = bytes.try_into().map_err(|_| invalid())?;
    if mac[0] & 1 == 1 {
        return Err(invalid());
    }
    Ok(mac)
}

/// `02:42:ac:11:00:02`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Joins the namespace at `netns` to the bridge: a veth pair, the
/// container's end addressed and up (and loopback up), with its default
/// route. A failure leaves no veth behind.
pub fn attach(netns: &Path, link: &Link<'_>) -> Result<()> {
    let mut host = Netlink::open()?;
    // One left by a daemon that died before cleaning up.
    host.delete_link(link.host_name)?;
    let master = host.index(link.bridge)?.ok_or_else(|| Error::Netlink {
        what: format!("finding bridge {}", link.bridge),
        errno: Errno::NODEV,
    })?;
    let namespace = File::open(netns).map_err(|source| Error::Namespace {
        path: netns.to_owned(),
        what: "opening".to_owned(),
        source,
    })?;
    host.create_veth(
        link.host_name,
        master,
        MTU,
        link.name,
        namespace.as_fd(),
        link.mac,
    )?;
    // A container reaching its own published port goes out of its bridge
    // port and back in (the bridge calls netfilter here, which NATs it).
    let hairpin = host
        .index(link.host_name)
        .and_then(|index| {
            index.ok_or_else(|| Error::Netlink {
                what: format!("finding {} on the host", link.host_name),
                errno: Errno::NODEV,
            })
        })
        .and_then(|index| host.set_hairpin(index));
    let inside = hairpin
        .and_then(|()| {
            netns::run_in(netns, || {
                let mut netlink = Netlink::open()?;
                netlink.set_up("lo")?;
                let index = netlink.index(link.name)?.ok_or_else(|| Error::Netlink {
                    what: format!("finding {} in the container", link.name),
                    errno: Errno::NODEV,
                })?;
                netlink.add_address(index, link.address, link.prefix)?;
                netlink.set_up(link.name)?;
                if let Some(gateway) = link.gateway {
                    netlink.add_default_route(gateway, index)?;
                }
                Ok(())
            })
        })
        .and_then(|done| done);
    if inside.is_err() {
        host.delete_link(link.host_name).ok();
    }
    inside
}

/// Removes a container's veth pair (both ends go together).
pub fn detach(host_name: &str) -> Result<()> {
    Netlink::open()?.delete_link(host_name).map(drop)
}
