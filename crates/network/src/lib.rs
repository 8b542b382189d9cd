//! Keel's container networking, knowing nothing of containers: bridges
//! and veth pairs made over netlink, network namespaces bound to files,
//! addresses handed out from subnets, published ports as nftables maps
//! with the host ports held (let through a host firewall that drops
//! forwarded traffic), and the name files containers read.

pub mod bridge;
pub mod dns;
mod error;
pub mod files;
pub mod firewall;
pub mod ipam;
mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;

pub use error::{Error, Result};
pub use ipam::Subnet;
pub use ports::{Binding, Port, Protocol, Reservation};
