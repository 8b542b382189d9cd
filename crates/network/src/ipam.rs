//! IPv4 subnets and the addresses handed out in them. The allocator keeps
//! no state of its own: the caller passes the addresses in use (recorded
//! with each container), so nothing can drift out of step with them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 subnet: `172.17.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The first host address: Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The lowest host address that is neither the gateway nor in `used`.
    pub fn allocate(&self, gateway: Ipv4Addr, used: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr> {
        let first = u32::from(self.network) + 1;
        let last = u32::from(self.broadcast());
        (first..last)
            .map(Ipv4Addr::from)
            .find(|a| *a != gateway && !used.contains(a))
            .ok_or(Error::SubnetFull(*self))
    }

    /// Checks that `address` can be given to a container here.
    pub fn check_host(&self, address: Ipv4Addr) -> Result<()> {
        if self.contains(address) && address != self.network && address != self.broadcast() {
            Ok(())
        } else {
            Err(Error::AddressOutsideSubnet {
                address,
                subnet: *self,
            })
        }
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidSubnet(text.to_owned());
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        // At least a gateway and one container: /30.
        if !(1..=30).contains(&prefix) {
            return Err(invalid());
        }
        let subnet = Subnet {
            network: address,
            prefix,
        };
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(address) & subnet.mask()),
            prefix,
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A range new networks' subnets are cut from, as dockerd's
/// `--default-address-pool base=10.10.0.0/16,size=24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    base: Subnet,
    /// The prefix length of each subnet cut from `base`.
    size: u8,
}

impl AddressPool {
    /// Docker's own pools, in its order: 172.17-31.0.0/16, then
    /// 192.168.0.0/16 in /20s.
    pub fn docker_defaults() -> Vec<AddressPool> {
        let wide = (17..=31).map(|b| AddressPool {
            base: Subnet {
                network: Ipv4Addr::new(172, b, 0, 0),
                prefix: 16,
            },
            size: 16,
        });
        let narrow = AddressPool {
            base: Subnet {
                network: Ipv4Addr::new(192, 168, 0, 0),
                prefix: 16,
            },
            size: 20,
        };
        wide.chain([narrow]).collect()
    }

    /// The subnets of the pool, lowest first.
    pub fn subnets(&self) -> impl Iterator<Item = Subnet> + use<> {
        let first = u32::from(self.base.network);
        let step = 1u64 << (32 - u32::from(self.size));
        let count = 1u64 << (self.size - self.base.prefix);
        let prefix = self.size;
        (0..count).map(move |i| Subnet {
            network: Ipv4Addr::from((u64::from(first) + i * step) as u32),
            prefix,
        })
    }
}

impl FromStr for AddressPool {
    type Err = Error;

    /// `base=CIDR,size=PREFIX`, the fields in either order.
    fn from_str(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidAddressPool(text.to_owned());
        let (mut base, mut size) = (None, None);
        for field in text.split(',') {
            match field.split_once('=').ok_or_else(invalid)? {
                ("base", value) => base = Some(value.parse::<Subnet>().map_err(|_| invalid())?),
                ("size", value) => size = Some(value.parse::<u8>().map_err(|_| invalid())?),
                _ => return Err(invalid()),
            }
        }
        let (Some(base), Some(size)) = (base, size) else {
            return Err(invalid());
        };
        if size < base.prefix || size > 30 {
            return Err(invalid());
        }
        Ok(AddressPool { base, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_pools_cut_their_base_into_subnets_of_their_size() {
        let pool: AddressPool = "base=10.10.0.0/22,size=24".parse().unwrap();
        let subnets: Vec<String> = pool.subnets().map(|s| s.to_string()).collect();
        assert_eq!(
            subnets,
            [
                "10.10.0.0/24",
                "10.10.1.0/24",
                "10.10.2.0/24",
                "10.10.3.0/24"
            ]
        );
        let whole: AddressPool = "size=16,base=172.20.0.0/16".parse().unwrap();
        assert_eq!(whole.subnets().count(), 1);
        let defaults = AddressPool::docker_defaults();
        let first = defaults.iter().flat_map(AddressPool::subnets).next();
        assert_eq!(first.unwrap().to_string(), "172.17.0.0/16");
        let all = defaults.iter().flat_map(AddressPool::subnets).count();
        assert_eq!(all, 15 + 16);
        for bad in [
            "10.10.0.0/16",
            "base=10.10.0.0/16",
            "base=10.10.0.0/24,size=16",
            "base=10.10.0.0/16,size=31",
            "base=x,size=24",
            "base=10.10.0.0/16,size=24,color=red",
        ] {
            let error = bad.parse::<AddressPool>().unwrap_err().to_string();
            assert!(error.contains(bad) && error.contains("base="), "{error}");
        }
    }

    #[test]
    fn subnets_parse_to_their_network_and_reject_bad_text() {
        let subnet: Subnet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(subnet.to_string(), "10.1.2.0/24");
        for bad in [
            "10.1.2.0",
            "10.1.2.0/33",
            "10.1.2.0/31",
            "x/24",
            "10.1.2/24",
        ] {
            let error = bad.parse::<Subnet>().unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn allocation_skips_the_gateway_and_used_addresses_and_ends_when_full() {
        let subnet: Subnet = "10.0.0.0/29".parse().unwrap();
        let gateway = subnet.first_host();
        let mut used = BTreeSet::new();
        let mut given = Vec::new();
        while let Ok(address) = subnet.allocate(gateway, &used) {
            used.insert(address);
            given.push(address.to_string());
        }
        assert_eq!(
            given,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        used.remove(&Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(
            subnet.allocate(gateway, &used).unwrap(),
            Ipv4Addr::new(10, 0, 0, 4)
        );
    }

    #[test]
    fn overlap_is_seen_from_either_side() {
        let wide: Subnet = "10.0.0.0/16".parse().unwrap();
        let narrow: Subnet = "10.0.5.0/24".parse().unwrap();
        let apart: Subnet = "10.1.0.0/24".parse().unwrap();
        assert!(wide.overlaps(&narrow) && narrow.overlaps(&wide));
        assert!(!wide.overlaps(&apart));
    }
}
