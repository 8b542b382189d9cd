//! Published ports: Docker's `-p` syntax, the `80/tcp` keys of the Engine
//! API, and host ports held by the daemon while they are published, so
//! that a port already taken is an error at start and not a silent
//! shadowing of someone else's server.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(Error::InvalidPort(format!("invalid proto: {text}"))),
        }
    }
}

/// A container's port: `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl FromStr for Port {
    type Err = Error;

    /// `80`, `80/tcp`, `53/udp`.
    fn from_str(text: &str) -> Result<Self> {
        let (number, protocol) = text.split_once('/').unwrap_or((text, ""));
        Ok(Port {
            number: number
                .parse()
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| Error::InvalidPort(format!("invalid containerPort: {number}")))?,
            protocol: Protocol::parse(protocol)?,
        })
    }
}

impl TryFrom<String> for Port {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<Port> for String {
    fn from(port: Port) -> String {
        port.to_string()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol.as_str())
    }
}

/// Where a container port is to be published: a host address (all of
/// them if none) and a host port, or a range to pick one from (any free
/// port if none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub host_ip: Option<Ipv4Addr>,
    pub host_ports: Option<RangeInclusive<u16>>,
}

impl Binding {
    /// From the Engine API's `{"HostIp": "...", "HostPort": "..."}`.
    pub fn from_api(host_ip: &str, host_port: &str) -> Result<Self> {
        let host_ip = match host_ip {
            "" | "0.0.0.0" => None,
            ip => Some(ip.parse().map_err(|_| {
                Error::InvalidPort(if ip.parse::<std::net::Ipv6Addr>().is_ok() {
                    format!(
                        "invalid IP address: {ip}: Keel publishes ports on IPv4 addresses only \
                         (give one, such as 127.0.0.1, or none for all of them)"
                    )
                } else {
                    format!("invalid IP address: {ip}")
                })
            })?),
        };
        let host_ports = match host_port {
            "" | "0" => None,
            ports => Some(
                port_range(ports)
                    .ok_or_else(|| Error::InvalidPort(format!("invalid hostPort: {ports}")))?,
            ),
        };
        Ok(Binding {
            host_ip,
            host_ports,
        })
    }

    /// The Engine API's `HostPort`: `8080`, `8000-8010`, or empty.
    pub fn host_port_text(&self) -> String {
        match &self.host_ports {
            None => String::new(),
            Some(range) if range.start() == range.end() => range.start().to_string(),
            Some(range) => format!("{}-{}", range.start(), range.end()),
        }
    }
}

/// `80` or `8000-8010`.
fn port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let (start, end): (u16, u16) = (start.parse().ok()?, end.parse().ok()?);
    (start != 0 && start <= end).then_some(start..=end)
}

/// Docker's `-p [ip:][host_port]:container_port[/proto]`, each side a
/// port or a range: the container ports it names, with their bindings.
pub fn parse_publish(spec: &str) -> Result<Vec<(Port, Binding)>> {
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, ""));
    let protocol = Protocol::parse(protocol)?;
    let mut parts = ports.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let ip = parts.next().unwrap_or_default();
    if container.is_empty() {
        return Err(Error::InvalidPort(format!(
            "no port specified: {spec}<empty>"
        )));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let binding = Binding::from_api(ip, host)?;
    let containers = port_range(container)
        .ok_or_else(|| Error::InvalidPort(format!("invalid containerPort: {container}")))?;
    let count = containers.len();
    let ports = containers.map(|number| Port { number, protocol });
    match &binding.host_ports {
        // A host range for one container port: any free port of it.
        Some(hosts) if hosts.len() != count && count != 1 => Err(Error::InvalidPort(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ))),
        Some(hosts) if count > 1 => Ok(ports
            .zip(hosts.clone())
            .map(|(port, host_port)| {
                let binding = Binding {
                    host_ip: binding.host_ip,
                    host_ports: Some(host_port..=host_port),
                };
                (port, binding)
            })
            .collect()),
        _ => Ok(ports.map(|port| (port, binding.clone())).collect()),
    }
}

/// A host port held for a published container port.
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Reservation {
    /// Takes a port of `binding` on the host: the one it names, the first
    /// free one of its range, or any free one.
    pub fn take(protocol: Protocol, binding: &Binding) -> Result<(u16, Reservation)> {
        let ip = binding.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let candidates = binding.host_ports.clone().unwrap_or(0..=0);
        let mut last_error = None;
        for port in candidates {
            let address = SocketAddrV4::new(ip, port);
            let taken = match protocol {
                Protocol::Tcp => TcpListener::bind(address).and_then(|listener| {
                    Ok((listener.local_addr()?.port(), Reservation::Tcp(listener)))
                }),
                Protocol::Udp => UdpSocket::bind(address)
                    .and_then(|socket| Ok((socket.local_addr()?.port(), Reservation::Udp(socket)))),
            };
            match taken {
                Ok(reserved) => return Ok(reserved),
                Err(error) => last_error = Some((address, error)),
            }
        }
        let (address, error) = last_error.expect("a range has a port");
        Err(Error::PortTaken {
            address: format!("{address}/{}", protocol.as_str()),
            reason: match error.kind() {
                std::io::ErrorKind::AddrInUse => "address already in use".to_owned(),
                _ => error.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> Vec<String> {
        parse_publish(spec)
            .unwrap()
            .into_iter()
            .map(|(port, binding)| {
                let ip = binding.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
                format!("{ip}:{}:{port}", binding.host_port_text())
            })
            .collect()
    }

    #[test]
    fn publish_specs_parse_as_docker_parses_them() {
        assert_eq!(parsed("80"), ["::80/tcp"]);
        assert_eq!(parsed("8080:80"), [":8080:80/tcp"]);
        assert_eq!(parsed("127.0.0.1:8080:80/udp"), ["127.0.0.1:8080:80/udp"]);
        assert_eq!(parsed("127.0.0.1::80"), ["127.0.0.1::80/tcp"]);
        assert_eq!(
            parsed("8000-8001:9000-9001"),
            [":8000:9000/tcp", ":8001:9001/tcp"]
        );
        assert_eq!(parsed("8000-8010:80"), [":8000-8010:80/tcp"]);
        assert_eq!(parsed("9000-9001"), ["::9000/tcp", "::9001/tcp"]);
    }

    #[test]
    fn bad_publish_specs_name_the_bad_part() {
        for (spec, message) in [
            ("abc", "invalid containerPort: abc"),
            ("x:80", "invalid hostPort: x"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            (
                "[::1]:80:80",
                "invalid IP address: ::1: Keel publishes ports on IPv4 addresses only \
                 (give one, such as 127.0.0.1, or none for all of them)",
            ),
            ("80/sctp", "invalid proto: sctp"),
            ("8080:", "no port specified: 8080:<empty>"),
            (
                "8000-8002:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
            ),
        ] {
            assert_eq!(parse_publish(spec).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn a_taken_host_port_is_refused_and_a_free_one_found_in_a_range() {
        let loopback = Some(Ipv4Addr::LOCALHOST);
        let any = Binding {
            host_ip: loopback,
            host_ports: None,
        };
        let (port, _held) = Reservation::take(Protocol::Tcp, &any).unwrap();
        let same = Binding {
            host_ip: loopback,
            host_ports: Some(port..=port),
        };
        let error = Reservation::take(Protocol::Tcp, &same).unwrap_err();
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}/tcp")),
            "{error}"
        );
        let range = Binding {
            host_ip: loopback,
            host_ports: Some(port..=port.saturating_add(1)),
        };
        let (next, _also) = Reservation::take(Protocol::Tcp, &range).unwrap();
        assert_eq!(next, port + 1);
    }
}
