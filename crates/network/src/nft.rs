//! A bridge network's nftables table: masquerade for what leaves it, and
//! destination NAT for its published ports, kept in maps so that a
//! container's ports come and go as map elements, never as rules. The
//! table is made by `nft` (once per network and daemon: its rules are
//! nftables' own bytecode, which has no stable library); the elements, at
//! every container's start and stop, over netlink. Each change is one
//! atomic transaction.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipam::Subnet;
use crate::netlink::{MapElement, Netlink};
use crate::ports::Protocol;

/// A published port in force: traffic to `host_ip` (every host address if
/// unspecified) port `host_port` goes to the container's address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub protocol: Protocol,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

impl Forward {
    fn map(&self) -> String {
        let scope = if self.host_ip.is_unspecified() {
            "any"
        } else {
            "at"
        };
        format!("{}_{scope}", self.protocol.as_str())
    }

    fn key(&self) -> String {
        if self.host_ip.is_unspecified() {
            self.host_port.to_string()
        } else {
            format!("{} . {}", self.host_ip, self.host_port)
        }
    }

    /// The map's key as the kernel holds it: the port alone (2 bytes), or
    /// the address and the port padded to 4 bytes.
    fn key_bytes(&self) -> Vec<u8> {
        if self.host_ip.is_unspecified() {
            self.host_port.to_be_bytes().to_vec()
        } else {
            address_and_port(self.host_ip, self.host_port)
        }
    }

    fn element(&self) -> String {
        format!(
            "{} : {} . {}",
            self.key(),
            self.container_ip,
            self.container_port
        )
    }
}

/// An address and a port as a concatenation of nftables registers.
fn address_and_port(address: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut bytes = address.octets().to_vec();
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

/// The rules of one bridge network.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub bridge: &'a str,
    pub subnet: Subnet,
    /// No way in or out but between its own containers.
    pub internal: bool,
}

impl Rules<'_> {
    pub fn table(&self) -> String {
        format!("keel-{}", self.bridge)
    }

    /// Makes the table afresh with exactly `forwards` published: whatever
    /// it held before (a daemon that died mid-change) is replaced in the
    /// same transaction.
    pub fn install(&self, forwards: &[Forward]) -> Result<()> {
        let table = self.table();
        let bridge = self.bridge;
        let subnet = self.subnet;
        let mut script =
            format!("table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n");
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let p = protocol.as_str();
            let _ = write!(
                script,
                "  map {p}_any {{ type inet_service : ipv4_addr . inet_service; }}\n  \
                 map {p}_at {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}\n"
            );
        }
        script.push_str(
            "  chain publish {\n    \
               dnat ip to ip daddr . tcp dport map @tcp_at\n    \
               dnat ip to tcp dport map @tcp_any\n    \
               dnat ip to ip daddr . udp dport map @udp_at\n    \
               dnat ip to udp dport map @udp_any\n  }\n  \
             chain prerouting {\n    \
               type nat hook prerouting priority dstnat; policy accept;\n    \
               fib daddr type local jump publish\n  }\n  \
             chain output {\n    \
               type nat hook output priority -100; policy accept;\n    \
               fib daddr type local jump publish\n  }\n",
        );
        // Out to the world: masquerade. Into the bridge from loopback, or
        // back into it from one of its own containers through a published
        // port: masquerade too, so the answer comes back through the host
        // (postrouting knows no input interface: the source tells).
        let _ = write!(
            script,
            "  chain postrouting {{\n    \
               type nat hook postrouting priority srcnat; policy accept;\n{}    \
               oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade\n    \
               oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade\n  }}\n",
            if self.internal {
                String::new()
            } else {
                format!("    ip saddr {subnet} oifname != \"{bridge}\" masquerade\n")
            },
        );
        if self.internal {
            let _ = write!(
                script,
                "  chain forward {{\n    \
                   type filter hook forward priority filter; policy accept;\n    \
                   iifname \"{bridge}\" oifname != \"{bridge}\" drop\n    \
                   oifname \"{bridge}\" iifname != \"{bridge}\" drop\n  }}\n"
            );
        }
        script.push_str("}\n");
        script.push_str(&self.elements("add", forwards));
        run(&script)
    }

    /// Publishes `forwards`.
    pub fn add(&self, forwards: &[Forward]) -> Result<()> {
        self.change(forwards, true)
    }

    /// Stops publishing `forwards`.
    pub fn remove(&self, forwards: &[Forward]) -> Result<()> {
        self.change(forwards, false)
    }

    fn change(&self, forwards: &[Forward], add: bool) -> Result<()> {
        if forwards.is_empty() {
            return Ok(());
        }
        let changes: Vec<MapElement> = forwards
            .iter()
            .map(|forward| MapElement {
                map: forward.map(),
                key: forward.key_bytes(),
                value: add.then(|| address_and_port(forward.container_ip, forward.container_port)),
            })
            .collect();
        let verb = if add { "add" } else { "delete" };
        Netlink::open_netfilter()?.change_map_elements(&self.table(), &changes, |index| {
            let named = index.and_then(|i| forwards.get(i..=i)).unwrap_or(forwards);
            self.elements(verb, named).trim_end().replace('\n', "; ")
        })
    }

    fn elements(&self, verb: &str, forwards: &[Forward]) -> String {
        let table = self.table();
        forwards
            .iter()
            .map(|forward| {
                let element = match verb {
                    "delete" => forward.key(),
                    _ => forward.element(),
                };
                format!(
                    "{verb} element ip {table} {} {{ {element} }}\n",
                    forward.map()
                )
            })
            .collect()
    }

    /// Deletes the table, if it is there.
    pub fn uninstall(&self) -> Result<()> {
        let table = self.table();
        run(&format!("table ip {table} {{}}\ndelete table ip {table}\n"))
    }
}

/// Runs one nft script as one transaction.
fn run(script: &str) -> Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    let failed = |message: String| Error::Nftables {
        script: script.to_owned(),
        message,
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run nft: {e}")))?;
    child
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}
