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
fn map_elements_written_over_netlink_read_back_as_nft_writes_them_all_or_none() {
    let lab = Lab::new("kn-map0", "10.231.3.0/24");
    let forward = |protocol, host_ip, host_port| Forward {
        protocol,
        host_ip,
        host_port,
        container_ip: Ipv4Addr::new(10, 231, 3, 2),
        container_port: 8080,
    };
    let at = forward(Protocol::Tcp, Ipv4Addr::LOCALHOST, 40101);
    let any = forward(Protocol::Udp, Ipv4Addr::UNSPECIFIED, 40102);
    lab.rules().install(&[]).unwrap();
    lab.rules().add(&[at.clone(), any.clone()]).unwrap();
    let listed = || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", "keel-kn-map0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let both = listed();
    assert!(
        both.contains("127.0.0.1 . 40101 : 10.231.3.2 . 8080"),
        "{both}"
    );
    assert!(both.contains("40102 : 10.231.3.2 . 8080"), "{both}");

    // One change that cannot be made (an element that is not there) undoes
    // the whole transaction, and the error names it.
    let missing = forward(Protocol::Tcp, Ipv4Addr::UNSPECIFIED, 40103);
    let error = lab
        .rules()
        .remove(&[at.clone(), missing])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("delete element ip keel-kn-map0 tcp_any { 40103 }")
            && !error.contains("tcp_at"),
        "{error}"
    );
    assert_eq!(listed(), both);

    lab.rules().remove(&[at, any]).unwrap();
    let none = listed();
    assert!(!none.contains("40101") && !none.contains("40102"), "{none}");
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

/// Knows `web`; sends every other name to `upstream`.
struct KnownWeb {
    upstream: std::net::SocketAddr,
}

impl keel_network::dns::Names for KnownWeb {
    fn lookup(&self, _asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        (name == "web").then(|| vec![Ipv4Addr::new(10, 231, 3, 5)])
    }

    fn upstream(&self, _asker: &str) -> Vec<std::net::SocketAddr> {
        vec![self.upstream]
    }
}

/// An A query for `name`, framed for TCP (two bytes of length first).
fn framed_query(id: u16, name: &str) -> Vec<u8> {
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend(query);
    framed
}

fn read_framed(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).unwrap();
    message
}

#[test]
fn the_embedded_dns_answers_over_tcp_and_forwards_tcp_questions_over_tcp() {
    let mut lab = Lab::new("kn-dns0", "10.231.3.0/24");
    let netns = lab.namespace("dns", "kn-dns0-a", Ipv4Addr::new(10, 231, 3, 2));
    // An upstream of the test's own that speaks only TCP: it answers every
    // question with 10.9.8.7.
    let upstream = TcpListener::bind("127.231.3.53:0").unwrap();
    let upstream_address = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut connection in upstream.incoming().flatten() {
            let query = read_framed(&mut connection);
            let question = keel_network::dns::parse_query(&query).unwrap();
            let reply = keel_network::dns::answer(&question, &[Ipv4Addr::new(10, 9, 8, 7)], 0);
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend(reply);
            let _ = connection.write_all(&framed);
        }
    });
    let server = keel_network::dns::Server::start(std::sync::Arc::new(KnownWeb {
        upstream: upstream_address,
    }))
    .unwrap();
    server.add("c1", &netns).unwrap();

    let answers = netns::run_in(&netns, || {
        let mut connection = TcpStream::connect("127.0.0.11:53").unwrap();
        connection
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // Two questions on one connection: one known, one forwarded.
        let mut replies = Vec::new();
        for (id, name) in [(7u16, "web"), (8, "elsewhere.test")] {
            connection.write_all(&framed_query(id, name)).unwrap();
            replies.push(read_framed(&mut connection));
        }
        replies
    })
    .unwrap();
    for (reply, (id, address)) in answers
        .iter()
        .zip([(7u16, [10, 231, 3, 5]), (8, [10, 9, 8, 7])])
    {
        assert_eq!(
            reply[..2],
            id.to_be_bytes(),
            "the reply carries the query's id"
        );
        assert_eq!(reply[3] & 0x0f, 0, "no error: {reply:?}");
        assert_eq!(reply[reply.len() - 4..], address, "{reply:?}");
    }
    server.remove("c1");
}

#[test]
fn the_forward_policy_is_read_and_its_changes_heard_over_netlink_as_iptables_sets_it() {
    /// Removed even when the test fails.
    struct Namespace(PathBuf);
    impl Drop for Namespace {
        fn drop(&mut self) {
            netns::remove(&self.0).ok();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let namespace = Namespace(dir.path().join("firewall"));
    let path = &namespace.0;
    netns::create(path).unwrap();
    let iptables = |policy: &str| {
        let status = Command::new("nsenter")
            .arg(format!("--net={}", path.display()))
            .args(["iptables", "-w", "-P", "FORWARD", policy])
            .status()
            .unwrap();
        assert!(status.success(), "iptables -P FORWARD {policy}");
    };
    let read = || netns::run_in(path, keel_network::firewall::forward_drops).unwrap();
    // Opened before the chain exists: its making is heard too.
    let mut watch = netns::run_in(path, keel_network::firewall::PolicyWatch::open)
        .unwrap()
        .unwrap();
    let mut heard = || {
        netns::run_in(path, || watch.wait_for_change())
            .unwrap()
            .unwrap()
    };
    // A fresh namespace has no filter table until iptables makes one.
    assert_eq!(read(), None);
    iptables("ACCEPT");
    assert_eq!(read(), Some(false));
    assert!(!heard());
    iptables("DROP");
    assert_eq!(read(), Some(true));
    assert!(heard());
}
