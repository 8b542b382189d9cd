//! Networking through the daemon: the default bridge, published ports
//! reached from loopback, the gateway and other containers, `--link`,
//! the host and none modes, and cleanup after removal and a daemon crash.
//! Each test's daemon has its own bridge and subnet (see `common`); the
//! traffic stays on loopback and that bridge.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{BUSYBOX, TestDaemon};

/// A daemon with a page at /www of a bind mount, and the args that serve it.
fn with_page(text: &str) -> (TestDaemon, String) {
    with_page_in(None, text)
}

/// [`with_page`] with the daemon in the network namespace at `netns`.
fn with_page_in(netns: Option<&std::path::Path>, text: &str) -> (TestDaemon, String) {
    let daemon = TestDaemon::with_busybox_in(netns);
    let www = daemon.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), text).unwrap();
    let bind = format!("{}:/www:ro", www.display());
    (daemon, bind)
}

/// `run -d --name NAME OPTIONS` of busybox httpd serving the page at `www`.
fn serve_page(daemon: &TestDaemon, www: &str, name: &str, options: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(options);
    args.extend(["-v", www, BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/www"]);
    daemon.keel_ok(&args);
}

/// A host port free right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of GET / at `address`, retried for a second while the server
/// starts.
fn get(address: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = TcpStream::connect(address).and_then(|mut connection| {
            connection.set_read_timeout(Some(Duration::from_secs(5)))?;
            connection.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut reply = String::new();
            connection.read_to_string(&mut reply)?;
            Ok(reply)
        });
        match attempt {
            Ok(reply) if !reply.is_empty() => {
                return reply
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
            }
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("GET http://{address}/: {other:?}"),
        }
    }
}

/// The elements of the daemon's DNAT maps, as nft lists them.
fn published_rules(daemon: &TestDaemon) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &format!("keel-{}", daemon.bridge)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("elements"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `bridge` has no veth left, waiting a while: a stopped
/// container's veth goes with its namespace, which the kernel tears down
/// in the background.
fn no_veths_left(bridge: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !veths(bridge).is_empty() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The veths on `bridge`.
fn veths(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_published_port_serves_from_loopback_the_gateway_and_another_container() {
    let (daemon, www) = with_page("hello from keel\n");
    let port = free_port();
    let publish = format!("{port}:80");
    serve_page(&daemon, &www, "web", &["-p", &publish]);
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from keel\n");
    assert_eq!(
        get(&format!("{}:{port}", daemon.gateway())),
        "hello from keel\n"
    );
    // Another container, through the host's address on the bridge.
    let url = format!("http://{}:{port}/", daemon.gateway());
    let fetched = daemon.keel_ok(&["run", "--rm", BUSYBOX, "wget", "-qO-", &url]);
    assert_eq!(fetched, "hello from keel\n");
    // The container itself, the same way (hairpin).
    let fetched = daemon.keel_ok(&["exec", "web", "wget", "-qO-", &url]);
    assert_eq!(fetched, "hello from keel\n");

    assert_eq!(
        daemon.keel_ok(&["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(
        daemon.keel_ok(&["port", "web", "80"]),
        format!("0.0.0.0:{port}\n")
    );
    let ps = daemon.keel_ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    let (code, _, err) = daemon.keel(&["port", "web", "81/tcp"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("No public port '81/tcp' published for web"),
        "{err}"
    );

    // Its address is in its own /etc/hosts, with the gateway its route.
    let hosts = daemon.keel_ok(&["exec", "web", "cat", "/etc/hosts"]);
    let inspect = daemon.keel_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}",
        "web",
    ]);
    let (address, gateway) = inspect.trim().split_once(' ').unwrap();
    assert_eq!(gateway, daemon.gateway());
    assert!(hosts.contains(&format!("{address}\t")), "{hosts}");

    daemon.keel_ok(&["rm", "-f", "web"]);
    assert!(no_veths_left(&daemon.bridge));
    assert!(!published_rules(&daemon).contains(&port.to_string()));
    assert!(
        TcpListener::bind(("0.0.0.0", port)).is_ok(),
        "the host port is free again"
    );
}

#[test]
fn the_docker_cli_publishes_every_exposed_port_and_keel_port_agrees() {
    let (daemon, www) = with_page("via docker\n");
    let (code, _, err) = daemon.docker(&[
        "run", "-d", "--name", "web", "-P", "--expose", "80", "-v", &www, BUSYBOX, "httpd", "-f",
        "-p", "80", "-h", "/www",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, docker_port, _) = daemon.docker(&["port", "web", "80/tcp"]);
    assert_eq!(docker_port, daemon.keel_ok(&["port", "web", "80/tcp"]));
    let host_port = docker_port.trim().rsplit(':').next().unwrap().to_owned();
    assert_eq!(get(&format!("127.0.0.1:{host_port}")), "via docker\n");
    let (_, ps, _) = daemon.docker(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("0.0.0.0:{host_port}->80/tcp"));
}

#[test]
fn a_link_gives_the_alias_in_hosts_and_the_link_variables() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--expose",
        "5432",
        "-e",
        "ROLE=primary",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let address = daemon.keel_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]);
    let address = address.trim();
    let out = daemon.keel_ok(&[
        "run", "--rm", "--name", "app", "--link", "db:store", BUSYBOX, "sh", "-c",
        "grep store /etc/hosts; env | grep ^STORE_ | sort; ping -c1 -W2 store >/dev/null && echo reached",
    ]);
    let id = daemon.keel_ok(&["inspect", "-f", "{{.Id}}", "db"]);
    assert!(
        out.contains(&format!("{address}\tstore {} db\n", &id[..12])),
        "{out}"
    );
    for variable in [
        format!("STORE_PORT=tcp://{address}:5432"),
        format!("STORE_PORT_5432_TCP_ADDR={address}"),
        "STORE_PORT_5432_TCP_PORT=5432".to_owned(),
        "STORE_PORT_5432_TCP_PROTO=tcp".to_owned(),
        "STORE_NAME=/app/store".to_owned(),
        "STORE_ENV_ROLE=primary".to_owned(),
    ] {
        assert!(
            out.contains(&format!("{variable}\n")),
            "{variable} missing in {out}"
        );
    }
    assert!(out.ends_with("reached\n"), "{out}");
}

#[test]
fn host_and_none_networks_are_the_hosts_and_loopback_only() {
    let daemon = TestDaemon::with_busybox();
    let none = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none, "lo\n");
    // Its loopback is up (IFF_UP | IFF_LOOPBACK), and each has a namespace
    // of its own, made ahead or not (more run at once than are made ahead).
    let ids: Vec<String> = (0..6)
        .map(|_| {
            let id = daemon.keel_ok(&["run", "-d", "--network", "none", BUSYBOX, "sleep", "60"]);
            id.trim().to_owned()
        })
        .collect();
    let namespaces: Vec<String> = ids
        .iter()
        .map(|id| {
            daemon.keel_ok(&[
                "exec",
                id,
                "sh",
                "-c",
                "cat /sys/class/net/lo/flags; readlink /proc/self/ns/net",
            ])
        })
        .collect();
    for id in &ids {
        daemon.keel_ok(&["rm", "-f", id]);
    }
    let mut distinct = std::collections::BTreeSet::new();
    for answer in &namespaces {
        let (flags, namespace) = answer.trim().split_once('\n').unwrap();
        assert_eq!(flags, "0x9", "{answer}");
        distinct.insert(namespace.to_owned());
    }
    assert_eq!(distinct.len(), namespaces.len(), "{namespaces:?}");
    let host = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        BUSYBOX,
        "ls",
        "/sys/class/net",
    ]);
    assert!(
        host.contains(&format!("{}\n", daemon.bridge)) || host.contains("eth0"),
        "{host}"
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let inside = daemon.keel_ok(&["run", "--rm", "--network", "host", BUSYBOX, "hostname"]);
    assert_eq!(inside.trim(), hostname.trim());
    let (code, out, _) = daemon.docker(&[
        "run",
        "--rm",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "corp.example",
        "--add-host",
        "db.local:10.1.2.3",
        BUSYBOX,
        "cat",
        "/etc/resolv.conf",
        "/etc/hosts",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("nameserver 10.0.0.53\nsearch corp.example\n"),
        "{out}"
    );
    assert!(out.contains("10.1.2.3\tdb.local\n"), "{out}");
}

#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    let daemon = TestDaemon::with_busybox();
    for (args, message) in [
        (vec!["-p", "abc"], "invalid containerPort: abc"),
        (vec!["-p", "x:80"], "invalid hostPort: x"),
        (vec!["-p", "1.2.3:80:80"], "invalid IP address: 1.2.3"),
        (
            vec!["-p", "[::1]:8080:80"],
            "invalid IP address: ::1: Keel publishes ports on IPv4 addresses only",
        ),
        (vec!["--network", "nowhere"], "network nowhere not found"),
        (
            vec!["--link", "ghost:g"],
            "Could not get container for ghost",
        ),
        (
            vec!["--add-host", "nocolon"],
            "invalid argument \"nocolon\" for \"--add-host\"",
        ),
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(&args);
        full.extend([BUSYBOX, "true"]);
        let (code, _, err) = daemon.keel(&full);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");

    // A host port in use: the start fails, and nothing is left running or
    // wired.
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let publish = format!("{port}:80");
    let (code, _, err) = daemon.keel(&[
        "run", "-d", "--name", "late", "-p", &publish, BUSYBOX, "sleep", "60",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains(&format!("0.0.0.0:{port}/tcp: address already in use")),
        "{err}"
    );
    let state = daemon.keel_ok(&["inspect", "-f", "{{.State.Status}}", "late"]);
    assert_eq!(state.trim(), "created");
    assert!(no_veths_left(&daemon.bridge));
    assert!(!published_rules(&daemon).contains(&port.to_string()));
    let netns = std::fs::read_dir(daemon.root().join("netns"))
        .unwrap()
        .count();
    assert_eq!(netns, 0);
}

#[test]
fn after_a_daemon_crash_ports_still_serve_and_rules_are_neither_lost_nor_doubled() {
    let (mut daemon, www) = with_page("still here\n");
    serve_page(&daemon, &www, "web", &["-p", "127.0.0.1::80"]);
    daemon.keel_ok(&[
        "run", "-d", "--name", "gone", "-p", "80", BUSYBOX, "sleep", "60",
    ]);
    let port = daemon
        .keel_ok(&["port", "web", "80"])
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let rules_before = published_rules(&daemon);
    daemon.kill_and_restart();
    // A container stopped while no daemon watched.
    daemon.keel_ok(&["stop", "-t", "0", "gone"]);
    assert_eq!(get(&format!("127.0.0.1:{port}")), "still here\n");
    let rules = published_rules(&daemon);
    assert_eq!(rules.matches(&format!(". {port} :")).count(), 1, "{rules}");
    assert_ne!(
        rules, rules_before,
        "the stopped container's port is gone: {rules}"
    );
    // The port is held again: another container cannot take it.
    let taken = format!("127.0.0.1:{port}:80");
    let (code, _, _) = daemon.keel(&["run", "-d", "-p", &taken, BUSYBOX, "true"]);
    assert_eq!(code, 125);
    for name in ["web", "gone"] {
        daemon.keel_ok(&["rm", "-f", name]);
    }
    let (_, leftover, _) = daemon.keel(&["ps", "-aq"]);
    for id in leftover.lines() {
        daemon.keel_ok(&["rm", "-f", id]);
    }
    assert!(no_veths_left(&daemon.bridge));
    assert!(!published_rules(&daemon).contains(':'));
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_alias_and_short_id() {
    let (mut daemon, www) = with_page("by name\n");
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "appnet"]);
    let ls = daemon.keel_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(ls, "appnet bridge\nbridge bridge\nhost host\nnone null\n");
    serve_page(
        &daemon,
        &www,
        "web",
        &["--network", "appnet", "--network-alias", "www"],
    );
    let id = daemon.keel_ok(&["inspect", "-f", "{{.Id}}", "web"]);
    let short = &id[..12];
    let script =
        format!("cat /etc/resolv.conf; for n in web www {short}; do wget -qO- http://$n/; done");
    let out = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        out,
        "nameserver 127.0.0.11\noptions ndots:0\nby name\nby name\nby name\n"
    );
    // Names on another network, or of stopped containers, are not found.
    let (code, _, _) = daemon.keel(&["run", "--rm", BUSYBOX, "nslookup", "web", "127.0.0.11"]);
    assert_ne!(code, 0);

    // A daemon killed and restarted serves the names again.
    daemon.kill_and_restart();
    let out = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        BUSYBOX,
        "wget",
        "-qO-",
        "http://www/",
    ]);
    assert_eq!(out, "by name\n");

    // The network cannot go while a container is on it.
    let (code, _, err) = daemon.keel(&["network", "rm", "appnet"]);
    assert_eq!(code, 1);
    assert!(err.contains("has active endpoints (web)"), "{err}");
    let id = daemon.keel_ok(&["network", "inspect", "-f", "{{.Id}}", "appnet"]);
    let bridge = format!("br-{}", &id[..12]);
    assert!(
        std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
    );
    daemon.keel_ok(&["rm", "-f", "web"]);
    daemon.keel_ok(&["network", "rm", "appnet"]);
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
    );
    let (_, tables, _) = common::output(Command::new("nft").args(["list", "tables"]));
    assert!(!tables.contains(&format!("keel-{bridge}")), "{tables}");
}

#[test]
fn the_docker_cli_and_docker_py_create_connect_and_remove_networks() {
    let daemon = TestDaemon::with_busybox();
    let subnet = daemon.user_subnet(0);
    let gateway = subnet.replace(".0/24", ".1");
    let (code, _, err) = daemon.docker(&["network", "create", "--subnet", &subnet, "dnet"]);
    assert_eq!(code, 0, "{err}");
    let (_, shown, _) = daemon.docker(&[
        "network",
        "inspect",
        "dnet",
        "--format",
        "{{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    ]);
    assert_eq!(shown.trim(), format!("bridge {subnet} {gateway}"));
    let (code, _, err) = daemon.docker(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "dnet",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    assert_eq!(code, 0, "{err}");
    daemon.keel_ok(&["run", "-d", "--name", "db", BUSYBOX, "sleep", "60"]);
    let (code, _, err) = daemon.docker(&["network", "connect", "--alias", "store", "dnet", "db"]);
    assert_eq!(code, 0, "{err}");
    let (_, seen, _) = daemon.docker(&["exec", "api", "ping", "-c1", "-W2", "store"]);
    assert!(seen.contains("1 packets received"), "{seen}");
    let (_, members, _) = daemon.docker(&[
        "network",
        "inspect",
        "dnet",
        "--format",
        "{{range .Containers}}{{.Name}} {{end}}",
    ]);
    let mut names: Vec<&str> = members.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["api", "db"]);
    let (code, _, err) = daemon.docker(&["network", "disconnect", "dnet", "db"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = daemon.docker(&["exec", "api", "ping", "-c1", "-W1", "store"]);
    assert_ne!(code, 0, "disconnected, the alias is gone");
    // Connected again at an address of its own choosing.
    let chosen = subnet.replace(".0/24", ".77");
    daemon.keel_ok(&["network", "connect", "--ip", &chosen, "dnet", "db"]);
    let (_, address, _) = daemon.docker(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"dnet\").IPAddress}}",
        "db",
    ]);
    assert_eq!(address.trim(), chosen);
    let (_, seen, _) = daemon.docker(&["exec", "api", "ping", "-c1", "-W2", &chosen]);
    assert!(seen.contains("1 packets received"), "{seen}");
    daemon.keel_ok(&["network", "disconnect", "dnet", "db"]);
    let (code, _, err) = daemon.keel(&["network", "connect", "--ip", "192.0.2.9", "dnet", "db"]);
    assert_eq!(code, 1);
    assert!(err.contains("192.0.2.9"), "{err}");

    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}")
net = client.networks.get("dnet")
print(sorted(c.name for c in net.containers))
print(client.containers.run("{BUSYBOX}", "nslookup api", network="dnet", remove=True).decode().count("Address: "))
"#,
        socket = daemon.socket().display()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "['api']\n1\n");
    for name in ["api", "db"] {
        daemon.keel_ok(&["rm", "-f", name]);
    }
    let (code, out, err) = daemon.docker(&["network", "rm", "dnet"]);
    assert_eq!((code, out.trim()), (0, "dnet"), "{err}");
}

#[test]
fn networks_may_have_any_name_and_connect_takes_docker_pys_aliases_address_and_mac() {
    let daemon = TestDaemon::with_busybox();
    let subnet = daemon.user_subnet(0);
    // Docker refuses only an empty name (and the predefined ones).
    let name = "team/Front End:v2@prod";
    let (code, _, err) = daemon.docker(&["network", "create", "--subnet", &subnet, name]);
    assert_eq!(code, 0, "{err}");
    let (code, shown, err) = daemon.docker(&["network", "inspect", "--format", "{{.Name}}", name]);
    assert_eq!((code, shown.trim()), (0, name), "{err}");
    daemon.keel_ok(&["run", "-d", "--name", "box", BUSYBOX, "sleep", "600"]);
    let address = subnet.replace(".0/24", ".50");
    let script = format!(
        r#"
import docker
client = docker.APIClient(base_url="unix://{socket}")
client.connect_container_to_network("box", "{name}", aliases=["front"], ipv4_address="{address}", mac_address="02:42:0a:0b:0c:0d")
print(client.inspect_container("box")["NetworkSettings"]["Networks"]["{name}"]["MacAddress"])
"#,
        socket = daemon.socket().display()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "02:42:0a:0b:0c:0d\n");
    let (_, seen, _) = daemon.docker(&["exec", "box", "cat", "/sys/class/net/eth1/address"]);
    assert_eq!(seen.trim(), "02:42:0a:0b:0c:0d");
    let (_, seen, _) = daemon.docker(&["exec", "box", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(seen.contains(&format!("{address}/24")), "{seen}");
    let (code, _, err) = daemon.docker(&["network", "disconnect", name, "box"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = daemon.docker(&["network", "rm", name]);
    assert_eq!(code, 0, "{err}");
    // An empty name is refused with Docker's words.
    let (code, out, _) = common::output(Command::new("curl").args([
        "-s",
        "--unix-socket",
        daemon.socket().to_str().unwrap(),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"Name": ""}"#,
        "http://localhost/v1.47/networks/create",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("invalid name: name is empty"), "{out}");
    daemon.keel_ok(&["rm", "-f", "box"]);
}

#[test]
fn networks_without_a_subnet_take_the_default_address_pools_in_order_until_they_run_out() {
    // The test daemon's pool (--default-address-pool) is its user
    // subnets 1 and 2.
    let daemon = TestDaemon::start();
    for (name, n) in [("first", 1), ("second", 2)] {
        daemon.keel_ok(&["network", "create", name]);
        let (_, subnet, _) = daemon.docker(&[
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            name,
        ]);
        assert_eq!(subnet.trim(), daemon.user_subnet(n));
    }
    let (code, _, err) = daemon.docker(&["network", "create", "third"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("could not find an available, non-overlapping IPv4 address pool"),
        "{err}"
    );
    let (_, networks, _) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("third"), "{networks}");
}

#[test]
fn a_created_container_left_its_network_before_starting_is_not_on_it_until_connected_again() {
    let daemon = TestDaemon::with_busybox();
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "net"]);
    let networks = |name: &str| {
        let (_, out, _) = daemon.docker(&[
            "inspect",
            "--format",
            "{{range $n, $e := .NetworkSettings.Networks}}{{$n}}:{{join $e.Aliases \",\"}} {{end}}",
            name,
        ]);
        out.trim().to_owned()
    };
    let interfaces = |name: &str| {
        let (_, out, _) = daemon.docker(&["exec", name, "ls", "/sys/class/net"]);
        out.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for name in ["left", "back"] {
        let (code, _, err) = daemon.docker(&[
            "create",
            "--name",
            name,
            "--network",
            "net",
            BUSYBOX,
            "sleep",
            "60",
        ]);
        assert_eq!(code, 0, "{err}");
        // Created and never started, it is on its network without an
        // address yet: leaving works, as in Docker (compose v1 does it).
        let (code, _, err) = daemon.docker(&["network", "disconnect", "net", name]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(networks(name), "");
    }
    let (code, _, err) = daemon.docker(&["network", "disconnect", "net", "left"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not connected to network net"), "{err}");

    let (code, _, err) = daemon.docker(&["network", "connect", "--alias", "api", "net", "back"]);
    assert_eq!(code, 0, "{err}");
    for name in ["left", "back"] {
        let (code, _, err) = daemon.docker(&["start", name]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(interfaces("left"), ["lo"]);
    assert_eq!(networks("left"), "");
    assert_eq!(interfaces("back"), ["eth0", "lo"]);
    let id = daemon.keel_ok(&["inspect", "--format", "{{.Id}}", "back"]);
    assert_eq!(networks("back"), format!("net:api,{}", &id[..12]));
    // Restarted, each stays as it was left.
    daemon.keel_ok(&["restart", "-t", "0", "left"]);
    assert_eq!(interfaces("left"), ["lo"]);
    for name in ["left", "back"] {
        daemon.keel_ok(&["rm", "-f", name]);
    }
}

#[test]
fn bad_network_requests_are_refused_and_make_nothing() {
    let daemon = TestDaemon::with_busybox();
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "one"]);
    let overlapping = subnet.replace(".0/24", ".128/25");
    let other = daemon.user_subnet(1);
    for (args, message) in [
        (
            vec!["create", "--subnet", &overlapping, "two"],
            "Pool overlaps with other one on this address space",
        ),
        (
            vec!["create", "--subnet", &subnet, "one"],
            "network with name one already exists",
        ),
        (
            vec!["create", "--subnet", "10.0.0.0/33", "three"],
            "invalid CIDR address: 10.0.0.0/33",
        ),
        (
            vec![
                "create",
                "--subnet",
                &other,
                "--gateway",
                "10.255.0.1",
                "four",
            ],
            "does not belong to any of this network's subnets",
        ),
        (vec!["create", "bridge"], "bridge is a pre-defined network"),
        (
            vec!["rm", "bridge"],
            "bridge is a pre-defined network and cannot be removed",
        ),
        (vec!["connect", "nowhere", "x"], "network nowhere not found"),
    ] {
        let mut full = vec!["network"];
        full.extend(&args);
        let (code, _, err) = daemon.keel(&full);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let ls = daemon.keel_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nhost\nnone\none\n");
    let (code, _, err) = daemon.keel(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--ip",
        "10.1.1.1",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(err.contains("only for user defined networks"), "{err}");
}

#[test]
fn a_hundred_containers_on_one_network_have_unique_addresses_resolve_and_leave_nothing() {
    let daemon = TestDaemon::with_busybox();
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "crowd"]);
    let names: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
    for name in &names {
        daemon.keel_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "crowd",
            BUSYBOX,
            "sleep",
            "300",
        ]);
    }
    let mut inspect = vec![
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.crowd.IPAddress}}",
    ];
    inspect.extend(names.iter().map(String::as_str));
    let addresses = daemon.keel_ok(&inspect);
    let mut unique: Vec<&str> = addresses.lines().collect();
    assert_eq!(unique.len(), 100);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 100, "{addresses}");
    let script =
        "n=0; for i in $(seq 0 99); do nslookup c$i >/dev/null 2>&1 && n=$((n+1)); done; echo $n";
    let resolved = daemon.keel_ok(&["exec", "c0", "sh", "-c", script]);
    assert_eq!(resolved.trim(), "100");
    let network = daemon.keel_ok(&["network", "inspect", "-f", "{{.Id}}", "crowd"]);
    let bridge = format!("br-{}", &network[..12]);
    assert_eq!(veths(&bridge).len(), 100);
    for name in &names {
        daemon.keel_ok(&["rm", "-f", name]);
    }
    assert!(no_veths_left(&bridge));
    daemon.keel_ok(&["network", "rm", "crowd"]);
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
    );
    assert_eq!(
        std::fs::read_dir(daemon.root().join("netns"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn an_internal_network_keeps_its_traffic_between_its_own_containers() {
    let (daemon, www) = with_page("inside\n");
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &subnet,
        "vault",
    ]);
    serve_page(&daemon, &www, "inner", &["--network", "vault"]);
    serve_page(&daemon, &www, "outer", &[]);
    let outer = daemon.keel_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "outer"]);
    let outer_url = format!("http://{}/", outer.trim());
    // Inside, names and addresses answer; the way out is closed.
    let inside = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "vault",
        BUSYBOX,
        "wget",
        "-qO-",
        "http://inner/",
    ]);
    assert_eq!(inside, "inside\n");
    // (busybox's `wget -T` crashes when it gives up: `timeout` instead,
    // under a shell that is pid 1, which ignores SIGTERM; 143 is that SIGTERM.)
    let script = format!("timeout 3 wget -qO- {outer_url}; echo status $?");
    let blocked = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "vault",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        blocked, "status 143\n",
        "reached {outer_url} from an internal network"
    );
    // The same request from the default bridge goes through.
    let from_bridge = daemon.keel_ok(&[
        "run", "--rm", BUSYBOX, "timeout", "3", "wget", "-qO-", &outer_url,
    ]);
    assert_eq!(from_bridge, "inside\n");
}

#[test]
fn a_mac_address_is_the_containers_and_links_outlive_the_targets_restart() {
    let daemon = TestDaemon::with_busybox();
    let mac = daemon.keel_ok(&[
        "run",
        "--rm",
        "--mac-address",
        "02:42:0a:0b:0c:0d",
        BUSYBOX,
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(mac, "02:42:0a:0b:0c:0d\n");
    let (code, _, err) = daemon.keel(&[
        "run",
        "--rm",
        "--mac-address",
        "01:00:5e:00:00:01",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains("01:00:5e:00:00:01 is not a valid mac address"),
        "{err}"
    );

    daemon.keel_ok(&["run", "-d", "--name", "db", BUSYBOX, "sleep", "600"]);
    daemon.keel_ok(&[
        "run", "-d", "--name", "app", "--link", "db:store", BUSYBOX, "sleep", "600",
    ]);
    daemon.keel_ok(&["restart", "-t", "0", "db"]);
    let (code, out, _) = daemon.keel(&["exec", "app", "ping", "-c1", "-W2", "store"]);
    assert_eq!(
        code, 0,
        "the link's name still reaches db after its restart: {out}"
    );
}

#[test]
fn names_no_container_has_are_forwarded_to_the_containers_dns_servers() {
    let daemon = TestDaemon::with_busybox();
    // A resolver of the test's own on a loopback address of its own
    // (127.x.y.53 from the daemon's 10.x.y): it answers every A query with
    // 10.9.8.7, and counts them.
    let (_, rest) = daemon.subnet.split_once('.').unwrap();
    let resolver_address = format!("127.{rest}.53");
    let resolver = std::net::UdpSocket::bind((resolver_address.as_str(), 53)).unwrap();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((length, from)) = resolver.recv_from(&mut buffer) {
            let query = &buffer[..length];
            if let Some(question) = keel_network::dns::parse_query(query) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = keel_network::dns::answer(
                    &question,
                    &[std::net::Ipv4Addr::new(10, 9, 8, 7)],
                    0,
                );
                let _ = resolver.send_to(&reply, from);
            }
        }
    });
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "fwd"]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "local",
        "--network",
        "fwd",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let out = daemon.keel_ok(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "--dns",
        &resolver_address,
        BUSYBOX,
        "sh",
        "-c",
        "nslookup elsewhere.test | grep -A1 ^Name:; nslookup local | grep -A1 ^Name:",
    ]);
    assert!(
        out.contains("Name:\telsewhere.test\nAddress: 10.9.8.7\n"),
        "{out}"
    );
    assert!(!out.contains("Name:\tlocal\nAddress: 10.9.8.7"), "{out}");
    assert!(out.contains("Name:\tlocal\nAddress: "), "{out}");
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// Runs `args` in the network namespace at `netns`: (exit code, stdout).
fn in_netns(netns: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// Network namespaces of the test's own, bound under a directory, gone
/// with it.
struct Namespaces(tempfile::TempDir);

impl Namespaces {
    fn new(names: &[&str]) -> Namespaces {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            keel_network::netns::create(&dir.path().join(name)).unwrap();
        }
        Namespaces(dir)
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.path().join(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.0.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            keel_network::netns::remove(&entry.path()).ok();
        }
    }
}

#[test]
fn a_forward_policy_that_drops_lets_the_bridges_traffic_through_and_nothing_more() {
    // The daemon's "host" is a namespace of the test's own, whose firewall
    // drops forwarded traffic as Docker leaves it; a client namespace
    // reaches that host over a bridge of its own.
    let namespaces = Namespaces::new(&["host", "client"]);
    let (host, client) = (namespaces.path("host"), namespaces.path("client"));
    // Its policy drops, and so does a last rule of its own: Keel's rules
    // go before it.
    for rule in [
        &["-P", "FORWARD", "DROP"][..],
        &["-A", "FORWARD", "-j", "DROP"],
    ] {
        let mut command = vec!["iptables", "-w"];
        command.extend(rule);
        assert_eq!(in_netns(&host, &command).0, 0, "{rule:?}");
    }
    let (daemon, www) = with_page_in(Some(&host), "through\n");
    serve_page(&daemon, &www, "web", &["-p", "8080:80"]);
    let web = daemon.keel_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let web = web.trim();

    // Between containers of the bridge, and back into it through the
    // published port (hairpin).
    for url in [
        format!("http://{web}/"),
        format!("http://{}:8080/", daemon.gateway()),
    ] {
        let script = format!("timeout 3 wget -qO- {url}; echo status $?");
        let fetched = daemon.keel_ok(&["run", "--rm", BUSYBOX, "sh", "-c", &script]);
        assert_eq!(fetched, "through\nstatus 0\n", "{url}");
    }
    // From the client, through the published port on the host's address.
    let (outside, host_address) = (
        "10.84.0.0/24".parse().unwrap(),
        "10.84.0.1".parse().unwrap(),
    );
    keel_network::netns::run_in(&host, || {
        keel_network::bridge::ensure("kfwclient0", host_address, outside).unwrap();
        keel_network::bridge::attach(
            &client,
            &keel_network::bridge::Link {
                bridge: "kfwclient0",
                host_name: "kfwclient0-c",
                name: "eth0",
                address: "10.84.0.2".parse().unwrap(),
                prefix: 24,
                gateway: Some(host_address),
                mac: keel_network::bridge::mac_address("10.84.0.2".parse().unwrap()),
            },
        )
        .unwrap();
    })
    .unwrap();
    let page = keel_network::netns::run_in(&client, || get("10.84.0.1:8080")).unwrap();
    assert_eq!(page, "through\n");
    // Nothing more: the container's own address, not published, stays
    // closed to the client, as Docker keeps it.
    let direct = keel_network::netns::run_in(&client, || {
        TcpStream::connect_timeout(
            &format!("{web}:80").parse().unwrap(),
            Duration::from_secs(1),
        )
    })
    .unwrap();
    assert!(direct.is_err(), "reached {web}:80 from outside the host");

    // The rules are iptables' own, at the head of the chain, once each,
    // and stay once after the daemon's restart.
    let chain = || in_netns(&host, &["iptables", "-w", "-S", "FORWARD"]).1;
    let comment = format!("-m comment --comment keel-{} -j ACCEPT", daemon.bridge);
    let expected = format!(
        "-P FORWARD DROP\n\
         -A FORWARD -i {bridge} {comment}\n\
         -A FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT {comment}\n\
         -A FORWARD -j DROP\n",
        bridge = daemon.bridge
    );
    assert_eq!(chain(), expected);
    let mut daemon = daemon;
    daemon.restart();
    daemon.keel_ok(&["run", "--rm", BUSYBOX, "true"]);
    assert_eq!(chain(), expected);

    // A user network's rules come with its first container and go with it.
    let subnet = daemon.user_subnet(0);
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "walled"]);
    daemon.keel_ok(&["run", "--rm", "--network", "walled", BUSYBOX, "true"]);
    let id = daemon.keel_ok(&["network", "inspect", "-f", "{{.Id}}", "walled"]);
    let bridge = format!("br-{}", &id[..12]);
    assert!(
        chain().contains(&format!("-A FORWARD -i {bridge} ")),
        "{}",
        chain()
    );
    daemon.keel_ok(&["network", "rm", "walled"]);
    assert_eq!(chain(), expected);

    // A network made while the policy accepted (Docker not started yet)
    // gets its rules as soon as the policy drops: its running container
    // is not cut off until a next start.
    let policy = |policy: &str| {
        let set = ["iptables", "-w", "-P", "FORWARD", policy];
        assert_eq!(in_netns(&host, &set).0, 0, "{set:?}");
    };
    policy("ACCEPT");
    daemon.keel_ok(&["network", "create", "--subnet", &subnet, "late"]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "early",
        "--network",
        "late",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let id = daemon.keel_ok(&["network", "inspect", "-f", "{{.Id}}", "late"]);
    let rule = format!("-A FORWARD -i br-{} ", &id[..12]);
    assert!(!chain().contains(&rule), "{}", chain());
    policy("DROP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !chain().contains(&rule) {
        assert!(
            std::time::Instant::now() < deadline,
            "not let through: {}",
            chain()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.keel_ok(&["rm", "-f", "early"]);
    daemon.keel_ok(&["network", "rm", "late"]);
    assert_eq!(chain(), expected);
}
