//! The network crate against the real kernel: a bridge, a namespace on it
//! over a veth pair, and a port published into it, reached the ways a
//! container's published port is reached. Each test has its own bridge
//! and subnet, and removes them even when it fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use keel_network::bridge::{self, Link};
use keel_network::nft::{Forward, Rules};
use keel_network::{Binding, Protocol, Reservation, Subnet, netns};

/// A bridge with its table and namespaces, all removed on drop.
struct Lab {
    bridge: &'static str,
    subnet: Subnet,
    dir: tempfile::TempDir,
    namespaces: Vec<PathBuf>,
    veths: Vec<&'static str>,
}

impl Lab {
    fn new(bridge: &'static str, subnet: &str) -> Self {
        let subnet: Subnet = subnet.parse().unwrap();
        let lab = Lab {
            bridge,
            subnet,
            dir: tempfile::tempdir().unwrap(),
            namespaces: Vec::new(),
            veths: Vec::new(),
        };
        bridge::ensure(bridge, subnet.first_host(), subnet).unwrap();
        lab
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            bridge: self.bridge,
            subnet: self.subnet,
            internal: false,
        }
    }

    /// A namespace on the bridge at `address`, its veth named `host_name`.
    fn namespace(&mut self, name: &str, host_name: &'static str, address: Ipv4Addr) -> PathBuf {
        let path = self.dir.path().join(name);
        netns::create(&path).unwrap();
        self.namespaces.push(path.clone());
        self.veths.push(host_name);
        let link = Link {
            bridge: self.bridge,
            host_name,
            name: "eth0",
            address,
            prefix: self.subnet.prefix(),
            gateway: Some(self.subnet.first_host()),
            mac: bridge::mac_address(address),
        };
        bridge::attach(&path, &link).unwrap();
        path
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.rules().uninstall().ok();
        // A namespace lives on while a socket in it does: its veth is
        // deleted by name.
        for veth in &self.veths {
            bridge::detach(veth).ok();
        }
        for path in &self.namespaces {
            netns::remove(path).ok();
        }
        bridge::remove(self.bridge).ok();
    }
}

/// Serves one line, `hello from NAME`, to every connection, from inside
/// the namespace at `netns`.
fn serve(netns: &Path, port: u16, name: &'static str) {
    let listener = netns::run_in(netns, || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    })
    .unwrap()
    .unwrap();
    std::thread::spawn(move || {
        for mut connection in listener.incoming().flatten() {
            let _ = writeln!(connection, "hello from {name}");
        }
    });
}

fn fetch(address: SocketAddrV4) -> String {
    let mut connection =
        TcpStream::connect_timeout(&address.into(), std::time::Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
    let mut text = String::new();
    connection.read_to_string(&mut text).unwrap();
    text
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn a_published_port_is_reached_from_loopback_the_gateway_and_another_namespace() {
    let mut lab = Lab::new("kn-pub0", "10.231.0.0/24");
    let server_ip = Ipv4Addr::new(10, 231, 0, 2);
    let server = lab.namespace("server", "kn-pub0-a", server_ip);
    let client = lab.namespace("client", "kn-pub0-b", Ipv4Addr::new(10, 231, 0, 3));
    serve(&server, 80, "server");
    let binding = Binding {
        host_ip: None,
        host_ports: None,
    };
    let (host_port, _held) = Reservation::take(Protocol::Tcp, &binding).unwrap();
    let forward = Forward {
        protocol: Protocol::Tcp,
        host_ip: Ipv4Addr::UNSPECIFIED,
        host_port,
        container_ip: server_ip,
        container_port: 80,
    };
    lab.rules().install(&[]).unwrap();
    lab.rules().add(std::slice::from_ref(&forward)).unwrap();

    assert_eq!(
        fetch(SocketAddrV4::new(server_ip, 80)),
        "hello from server\n"
    );
    assert_eq!(
        fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, host_port)),
        "hello from server\n"
    );
    let gateway = SocketAddrV4::new(lab.subnet.first_host(), host_port);
    assert_eq!(fetch(gateway), "hello from server\n");
    // Hairpin: from a namespace on the same bridge, through the host.
    let from_client = netns::run_in(&client, || fetch(gateway)).unwrap();
    assert_eq!(from_client, "hello from server\n");
    let from_itself = netns::run_in(&server, || fetch(gateway)).unwrap();
    assert_eq!(from_itself, "hello from server\n");

    // Unpublished, the port answers no more.
    lab.rules().remove(std::slice::from_ref(&forward)).unwrap();
    drop(_held);
    assert!(TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, host_port)).is_err());
}

#[test]
fn install_replaces_what_a_dead_daemon_left_and_removal_leaves_nothing() {
    let mut lab = Lab::new("kn-rec0", "10.231.1.0/24");
    let address = Ipv4Addr::new(10, 231, 1, 2);
    lab.namespace("one", "kn-rec0-a", address);
    let forward = |host_port| Forward {
        protocol: Protocol::Udp,
        host_ip: Ipv4Addr::LOCALHOST,
        host_port,
        container_ip: address,
        container_port: 53,
    };
    lab.rules()
        .install(&[forward(40001), forward(40002)])
        .unwrap();
    lab.rules().install(&[forward(40002)]).unwrap();
    let listed = Command::new("nft")
        .args(["list", "table", "ip", "keel-kn-rec0"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("127.0.0.1 . 40002 : 10.231.1.2 . 53"),
        "{listed}"
    );
    assert!(!listed.contains("40001"), "{listed}");
    assert_eq!(listed.matches("masquerade").count(), 3, "{listed}");

    assert!(link_exists("kn-rec0-a"));
    bridge::detach("kn-rec0-a").unwrap();
    assert!(!link_exists("kn-rec0-a"));
    lab.rules().uninstall().unwrap();
    let gone = Command::new("nft")
        .args(["list", "table", "ip", "keel-kn-rec0"])
        .output()
        .unwrap();
    assert!(!gone.status.success());
}

#[test]
fn a_failed_attach_leaves_no_veth() {
    let lab = Lab::new("kn-bad0", "10.231.2.0/24");
    let path = lab.dir.path().join("missing");
    let link = Link {
        bridge: lab.bridge,
        host_name: "kn-bad0-a",
        name: "eth0",
        address: Ipv4Addr::new(10, 231, 2, 2),
        prefix: 24,
        gateway: None,
        mac: bridge::mac_address(Ipv4Addr::new(10, 231, 2, 2)),
    };
    let error = bridge::attach(&path, &link).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(!link_exists("kn-bad0-a"));
    let no_bridge = Link {
        bridge: "kn-nobridge",
        ..link
    };
    netns::create(&path).unwrap();
    let error = bridge::attach(&path, &no_bridge).unwrap_err();
    netns::remove(&path).unwrap();
    assert!(error.to_string().contains("kn-nobridge"), "{error}");
    assert!(!link_exists("kn-bad0-a"));
}
