//! The few rtnetlink requests a bridge network needs: make a bridge or a
//! veth pair, bring a link up, turn a bridge port's hairpin mode on, give
//! a link an address, add a default route, delete a link. Each request
//! waits for the kernel's acknowledgement, so an error names the request
//! that failed. On the netfilter side: read an nftables chain's policy,
//! wait for nftables' notice that a chain changed, and add or delete the
//! elements of a table's maps (a published port's, at each container's
//! start and stop: a message instead of an `nft` process, which reads the
//! whole ruleset first).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::error::{Error, Result};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_BRPORT_MODE: u16 = 4;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 1;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFNLGRP_NFTABLES: u32 = 7;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_POLICY: u16 = 5;
const NF_DROP: u32 = 0;

/// A change to one element of an nftables map: its key, and the value it
/// is to map to (added) or none (deleted), both as the kernel holds them:
/// each field in network byte order, padded to 4 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapElement {
    pub map: String,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A request being built: the 16-byte header, a fixed part, attributes.
struct Message {
    bytes: Vec<u8>,
    /// Where each open nested attribute starts.
    open: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set at the end
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set on send
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        Self {
            bytes,
            open: Vec::new(),
        }
    }

    /// `struct ifinfomsg`: family, type, index, flags and the flags changed.
    fn link_header(mut self, index: u32, flags: u32) -> Self {
        self.put_link_header(index, flags);
        self
    }

    fn put_link_header(&mut self, index: u32, flags: u32) {
        self.put_link_header_of(libc::AF_UNSPEC as u8, index, flags);
    }

    fn put_link_header_of(&mut self, family: u8, index: u32, flags: u32) {
        self.bytes.extend_from_slice(&[family, 0]);
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes.extend_from_slice(&index.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
    }

    fn attribute(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let length = 4 + value.len();
        self.bytes.extend_from_slice(
            &u16::try_from(length)
                .expect("a short attribute")
                .to_ne_bytes(),
        );
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.pad();
        self
    }

    fn name(&mut self, kind: u16, name: &str) -> &mut Self {
        let mut value = name.as_bytes().to_vec();
        value.push(0);
        self.attribute(kind, &value)
    }

    fn begin(&mut self, kind: u16) -> &mut Self {
        self.open.push(self.bytes.len());
        self.attribute(kind | NLA_F_NESTED, &[])
    }

    fn end(&mut self) -> &mut Self {
        let start = self.open.pop().expect("an open attribute");
        let length = u16::try_from(self.bytes.len() - start).expect("a short attribute");
        self.bytes[start..start + 2].copy_from_slice(&length.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn finish(mut self, sequence: u32) -> Vec<u8> {
        assert!(self.open.is_empty(), "a nested attribute left open");
        let length = u32::try_from(self.bytes.len()).expect("a short message");
        self.bytes[0..4].copy_from_slice(&length.to_ne_bytes());
        self.bytes[8..12].copy_from_slice(&sequence.to_ne_bytes());
        self.bytes
    }
}

/// A route (or netfilter) netlink socket in the network namespace it was
/// opened in.
#[derive(Debug)]
pub struct Netlink {
    socket: OwnedFd,
    sequence: u32,
}

impl Netlink {
    /// Opens a route socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        Self::open_protocol(None)
    }

    /// Opens a netfilter socket (nftables) in the calling thread's network
    /// namespace.
    pub fn open_netfilter() -> Result<Self> {
        Self::open_protocol(Some(rustix::net::netlink::NETFILTER))
    }

    fn open_protocol(protocol: Option<rustix::net::Protocol>) -> Result<Self> {
        let socket = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            protocol,
        )
        .map_err(|errno| Error::Netlink {
            what: "opening a netlink socket".to_owned(),
            errno,
        })?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// Makes a bridge, up.
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let mut message =
            Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK).link_header(0, IFF_UP);
        message.name(IFLA_IFNAME, name);
        message
            .begin(IFLA_LINKINFO)
            .name(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(message, || format!("creating bridge {name}"))
    }

    /// Makes a veth pair: `host`, up and enslaved to the bridge `master`,
    /// and `peer`, with the MAC address `mac`, moved at once into the
    /// network namespace `peer_netns`.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        mtu: u32,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        mac: [u8; 6],
    ) -> Result<()> {
        let mut message =
            Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK).link_header(0, IFF_UP);
        message
            .name(IFLA_IFNAME, host)
            .attribute(IFLA_MASTER, &master.to_ne_bytes())
            .attribute(IFLA_MTU, &mtu.to_ne_bytes())
            .begin(IFLA_LINKINFO)
            .name(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER);
        message.put_link_header(0, 0);
        let fd = u32::try_from(peer_netns.as_raw_fd()).expect("a valid fd");
        message
            .name(IFLA_IFNAME, peer)
            .attribute(IFLA_MTU, &mtu.to_ne_bytes())
            .attribute(IFLA_ADDRESS, &mac)
            .attribute(IFLA_NET_NS_FD, &fd.to_ne_bytes())
            .end()
            .end()
            .end();
        self.request(message, || format!("creating veth pair {host}/{peer}"))
    }

    /// Brings the link `name` up.
    pub fn set_up(&mut self, name: &str) -> Result<()> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_ACK).link_header(0, IFF_UP);
        message.name(IFLA_IFNAME, name);
        self.request(message, || format!("bringing {name} up"))
    }

    /// Turns hairpin mode on for the bridge port `index`: frames it sends
    /// may go back out of it (as `bridge link set dev X hairpin on`; the
    /// sysfs file would need a /sys of this namespace's own).
    pub fn set_hairpin(&mut self, index: u32) -> Result<()> {
        let mut message = Message::new(RTM_SETLINK, NLM_F_ACK);
        message.put_link_header_of(libc::AF_BRIDGE as u8, index, 0);
        message
            .begin(IFLA_PROTINFO)
            .attribute(IFLA_BRPORT_MODE, &[1])
            .end();
        self.request(message, || {
            format!("turning hairpin mode on for link {index}")
        })
    }

    /// Gives the link `index` the address `address/prefix`.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        // struct ifaddrmsg: family, prefix length, flags, scope, index.
        message
            .bytes
            .extend_from_slice(&[libc::AF_INET as u8, prefix, 0, RT_SCOPE_UNIVERSE]);
        message.bytes.extend_from_slice(&index.to_ne_bytes());
        let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        let broadcast = Ipv4Addr::from(u32::from(address) | host_bits);
        message
            .attribute(IFA_LOCAL, &address.octets())
            .attribute(IFA_ADDRESS, &address.octets())
            .attribute(IFA_BROADCAST, &broadcast.octets());
        self.request(message, || format!("adding address {address}/{prefix}"))
    }

    /// Routes everything not on a link through `gateway`, out of `index`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> Result<()> {
        let mut message = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        // struct rtmsg: family, dst/src length, tos, table, protocol,
        // scope, type, flags.
        message.bytes.extend_from_slice(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        message.bytes.extend_from_slice(&0u32.to_ne_bytes());
        message
            .attribute(RTA_GATEWAY, &gateway.octets())
            .attribute(RTA_OIF, &index.to_ne_bytes());
        self.request(message, || format!("adding a default route via {gateway}"))
    }

    /// Deletes the link `name`; false if there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let mut message = Message::new(RTM_DELLINK, NLM_F_ACK).link_header(0, 0);
        message.name(IFLA_IFNAME, name);
        match self.request(message, || format!("deleting link {name}")) {
            Ok(()) => Ok(true),
            Err(Error::Netlink {
                errno: Errno::NODEV,
                ..
            }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The index of the link `name`, if there is one.
    pub fn index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut message = Message::new(RTM_GETLINK, 0).link_header(0, 0);
        message.name(IFLA_IFNAME, name);
        let what = || format!("looking up link {name}");
        match self.exchange(message, what) {
            Ok(reply) => {
                // After the 16-byte header: ifinfomsg's family, type, index.
                let index = reply
                    .get(20..24)
                    .ok_or_else(|| Error::Netlink {
                        what: what(),
                        errno: Errno::PROTO,
                    })?
                    .try_into()
                    .expect("four bytes");
                Ok(Some(u32::from_ne_bytes(index)))
            }
            Err(Error::Netlink {
                errno: Errno::NODEV,
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Whether the nftables chain `chain` of the IPv4 table `table` drops
    /// what no rule accepts (its policy); `None` when there is no such
    /// chain (a base chain's policy only: a regular chain has none).
    pub fn ipv4_chain_drops(&mut self, table: &str, chain: &str) -> Result<Option<bool>> {
        let mut message = Message::new((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN, 0);
        // struct nfgenmsg: family, version 0, resource id 0.
        message
            .bytes
            .extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
        message
            .name(NFTA_CHAIN_TABLE, table)
            .name(NFTA_CHAIN_NAME, chain);
        let reply = match self.exchange(message, || format!("reading chain {table} {chain}")) {
            Ok(reply) => reply,
            Err(Error::Netlink {
                errno: Errno::NOENT,
                ..
            }) => return Ok(None),
            Err(other) => return Err(other),
        };
        Ok(nftables_attributes(&reply)
            .find(|(kind, value)| *kind == NFTA_CHAIN_POLICY && value.len() == 4)
            .map(|(_, value)| u32::from_be_bytes(value.try_into().expect("4 bytes")) == NF_DROP))
    }

    /// Opens a netfilter socket that hears nftables' notices of change
    /// (rules, chains, tables: whoever makes them, iptables-nft included),
    /// in the calling thread's network namespace.
    pub fn watch_nftables() -> Result<Self> {
        let netlink = Self::open_netfilter()?;
        let groups = rustix::net::netlink::SocketAddrNetlink::new(0, 1 << (NFNLGRP_NFTABLES - 1));
        rustix::net::bind(&netlink.socket, &groups).map_err(|errno| Error::Netlink {
            what: "joining nftables' notices".to_owned(),
            errno,
        })?;
        Ok(netlink)
    }

    /// On a socket from [`Netlink::watch_nftables`], waits until the IPv4
    /// chain `chain` of table `table` is made or changed (its policy set),
    /// or until notices were lost (the socket's queue overflowed: it may
    /// have been among them).
    pub fn wait_for_ipv4_chain(&mut self, table: &str, chain: &str) -> Result<()> {
        let failed = |errno| Error::Netlink {
            what: "reading nftables' notices".to_owned(),
            errno,
        };
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            let received =
                match rustix::net::recv(&self.socket, &mut buffer[..], RecvFlags::empty()) {
                    Ok((received, _)) => received,
                    Err(Errno::NOBUFS) => return Ok(()),
                    Err(Errno::INTR) => continue,
                    Err(errno) => return Err(failed(errno)),
                };
            // One datagram may carry several messages (a transaction's).
            let mut messages = &buffer[..received];
            while messages.len() >= 20 {
                let length = u32::from_ne_bytes(messages[0..4].try_into().expect("4 bytes"));
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                let Some(message) = messages.get(..length).filter(|_| length >= 16) else {
                    break;
                };
                let kind = u16::from_ne_bytes([message[4], message[5]]);
                let names = |wanted: u16| {
                    nftables_attributes(message)
                        .find(|(kind, _)| *kind == wanted)
                        .map(|(_, value)| value.split(|b| *b == 0).next().unwrap_or_default())
                };
                if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN
                    && message.get(16) == Some(&(libc::AF_INET as u8))
                    && names(NFTA_CHAIN_TABLE) == Some(table.as_bytes())
                    && names(NFTA_CHAIN_NAME) == Some(chain.as_bytes())
                {
                    return Ok(());
                }
                messages = messages
                    .get(length.next_multiple_of(4)..)
                    .unwrap_or_default();
            }
        }
    }

    /// Adds and deletes elements of the IPv4 table `table`'s maps in one
    /// transaction: all of them or, on an error, none. `what` names, for
    /// an error, change `i` of them (the one the kernel refused), or all.
    pub fn change_map_elements(
        &mut self,
        table: &str,
        changes: &[MapElement],
        what: impl Fn(Option<usize>) -> String,
    ) -> Result<()> {
        let failed = |errno| Error::Netlink {
            what: what(None),
            errno,
        };
        let batch_edge = |kind: u16| {
            let mut message = Message::new(kind, 0);
            // nfgenmsg: any family, version 0, the subsystem (big-endian).
            message.bytes.extend_from_slice(&[0, 0]);
            message
                .bytes
                .extend_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
            message
        };
        let mut messages = vec![batch_edge(NFNL_MSG_BATCH_BEGIN)];
        for change in changes {
            let (kind, flags) = match change.value {
                Some(_) => (NFT_MSG_NEWSETELEM, NLM_F_ACK | NLM_F_CREATE),
                None => (NFT_MSG_DELSETELEM, NLM_F_ACK),
            };
            let mut message = Message::new((NFNL_SUBSYS_NFTABLES << 8) | kind, flags);
            message
                .bytes
                .extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
            message
                .name(NFTA_SET_ELEM_LIST_TABLE, table)
                .name(NFTA_SET_ELEM_LIST_SET, &change.map)
                .begin(NFTA_SET_ELEM_LIST_ELEMENTS)
                .begin(NFTA_LIST_ELEM)
                .begin(NFTA_SET_ELEM_KEY)
                .attribute(NFTA_DATA_VALUE, &change.key)
                .end();
            if let Some(value) = &change.value {
                message
                    .begin(NFTA_SET_ELEM_DATA)
                    .attribute(NFTA_DATA_VALUE, value)
                    .end();
            }
            message.end().end();
            messages.push(message);
        }
        messages.push(batch_edge(NFNL_MSG_BATCH_END));
        let first = self.sequence.wrapping_add(1);
        let mut bytes = Vec::new();
        for message in messages {
            self.sequence = self.sequence.wrapping_add(1);
            bytes.extend(message.finish(self.sequence));
        }
        // The last element's acknowledgement ends it, or the first error.
        let last = self.sequence.wrapping_sub(1);
        rustix::net::send(&self.socket, &bytes, SendFlags::empty()).map_err(failed)?;
        let mut buffer = vec![0u8; 8 * 1024];
        loop {
            let reply = self.receive(&mut buffer).map_err(failed)?;
            let sequence = reply.sequence;
            let Some(code) = reply
                .code
                .filter(|_| sequence.wrapping_sub(first) <= last.wrapping_sub(first))
            else {
                continue;
            };
            match code {
                0 if sequence == last => return Ok(()),
                0 => {}
                negative => {
                    // The batch's first message is its start, not a change.
                    let index = usize::try_from(sequence.wrapping_sub(first))
                        .ok()
                        .and_then(|i| i.checked_sub(1));
                    return Err(Error::Netlink {
                        what: what(index),
                        errno: Errno::from_raw_os_error(-negative),
                    });
                }
            }
        }
    }

    fn request(&mut self, message: Message, what: impl Fn() -> String) -> Result<()> {
        self.exchange(message, what).map(drop)
    }

    /// Sends one request and returns the kernel's one reply to it (an
    /// acknowledgement, or the object asked for), or its error.
    fn exchange(&mut self, message: Message, what: impl Fn() -> String) -> Result<Vec<u8>> {
        let failed = |errno| Error::Netlink {
            what: what(),
            errno,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let bytes = message.finish(sequence);
        rustix::net::send(&self.socket, &bytes, SendFlags::empty()).map_err(failed)?;
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            let reply = self.receive(&mut buffer).map_err(failed)?;
            if reply.sequence != sequence {
                continue; // an answer to an earlier request we gave up on
            }
            return match reply.code {
                None => Ok(reply.bytes.to_vec()),
                Some(0) => Ok(Vec::new()),
                Some(negative) => Err(failed(Errno::from_raw_os_error(-negative))),
            };
        }
    }

    /// The kernel's next message on this socket.
    fn receive<'b>(&self, buffer: &'b mut [u8]) -> std::result::Result<Reply<'b>, Errno> {
        let (received, _) = rustix::net::recv(&self.socket, &mut *buffer, RecvFlags::empty())?;
        let bytes = &buffer[..received];
        let (Some(kind), Some(sequence)) = (bytes.get(4..6), bytes.get(8..12)) else {
            return Err(Errno::PROTO);
        };
        let code = if u16::from_ne_bytes(kind.try_into().expect("2 bytes")) == NLMSG_ERROR {
            let code = bytes.get(16..20).ok_or(Errno::PROTO)?;
            Some(i32::from_ne_bytes(code.try_into().expect("4 bytes")))
        } else {
            None
        };
        Ok(Reply {
            sequence: u32::from_ne_bytes(sequence.try_into().expect("4 bytes")),
            code,
            bytes,
        })
    }
}

/// A message from the kernel: the sequence number of the request it
/// answers; for an acknowledgement or an error, its code (0 or -errno);
/// all of its bytes.
struct Reply<'b> {
    sequence: u32,
    code: Option<i32>,
    bytes: &'b [u8],
}

/// The attributes (kind, value) of an nftables message: after its 16-byte
/// header and 4-byte nfgenmsg.
fn nftables_attributes(message: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut attributes = message.get(20..).unwrap_or_default();
    std::iter::from_fn(move || {
        let header = attributes.get(..4)?;
        let length = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]);
        let value = attributes.get(4..length)?;
        attributes = attributes
            .get(length.next_multiple_of(4)..)
            .unwrap_or_default();
        Some((kind & !NLA_F_NESTED, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_whole_length_and_are_padded() {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_ACK).link_header(0, IFF_UP);
        message
            .begin(IFLA_LINKINFO)
            .name(IFLA_INFO_KIND, "veth")
            .end();
        let bytes = message.finish(7);
        // header 16 + ifinfomsg 16 + nest 4 + kind (4 + "veth\0" = 9, padded 12)
        assert_eq!(bytes.len(), 48);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 48);
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes([bytes[32], bytes[33]]), 16);
        assert_eq!(
            u16::from_ne_bytes([bytes[34], bytes[35]]),
            IFLA_LINKINFO | NLA_F_NESTED
        );
        assert_eq!(&bytes[40..45], b"veth\0");
    }
}
