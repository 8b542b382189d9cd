use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::ipam::Subnet;

#[derive(Debug, thiserror::Error)]
/// What went wrong; errors with a `source` leave it to the chain (print
/// them with `{:#}` or walk `source()`).
pub enum Error {
    #[error("{what}: {errno}")]
    Netlink {
        what: String,
        errno: rustix::io::Errno,
    },
    #[error("{what} network namespace {}", path.display())]
    Namespace {
        path: PathBuf,
        what: String,
        source: std::io::Error,
    },
    #[error("cannot set {}", path.display())]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid CIDR address: {0} (expected an IPv4 subnet such as 172.18.0.0/16, at most /30)"
    )]
    InvalidSubnet(String),
    #[error(
        "invalid default address pool {0:?}: expected base=CIDR,size=PREFIX with the size at least the base's prefix and at most 30, such as base=10.10.0.0/16,size=24"
    )]
    InvalidAddressPool(String),
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    SubnetFull(Subnet),
    #[error(
        "Invalid address {address}: It does not belong to any of this network's subnets ({subnet})"
    )]
    AddressOutsideSubnet { address: Ipv4Addr, subnet: Subnet },
    #[error("{0}")]
    InvalidPort(String),
    #[error(
        "{0} is not a valid mac address: expected six hex pairs of a unicast address, such as 02:42:ac:11:00:02"
    )]
    InvalidMac(String),
    #[error("failed to bind host port {address}: {reason}")]
    PortTaken { address: String, reason: String },
    #[error("nftables refused the change: {message}")]
    Nftables { script: String, message: String },
    #[error("the host firewall refused `{command}`: {message}")]
    Firewall { command: String, message: String },
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl keel_errdefs::HasKind for Error {
    fn kind(&self) -> keel_errdefs::Kind {
        use keel_errdefs::Kind;
        match self {
            Error::InvalidSubnet(_)
            | Error::InvalidAddressPool(_)
            | Error::AddressOutsideSubnet { .. }
            | Error::InvalidPort(_)
            | Error::InvalidMac(_) => Kind::InvalidArgument,
            Error::SubnetFull(_) | Error::PortTaken { .. } => Kind::Conflict,
            Error::Netlink { .. }
            | Error::Namespace { .. }
            | Error::Sysctl { .. }
            | Error::Nftables { .. }
            | Error::Firewall { .. }
            | Error::Io { .. } => Kind::Internal,
        }
    }
}
