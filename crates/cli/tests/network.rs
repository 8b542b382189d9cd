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
    let daemon = TestDaemon::with_busybox();
    let www = daemon.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), text).unwrap();
    let bind = format!("{}:/www:ro", www.display());
    (daemon, bind)
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

/// The veths on the daemon's bridge.
fn veths_on(daemon: &TestDaemon) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{}/brif", daemon.bridge))
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
    daemon.keel_ok(&[
        "run", "-d", "--name", "web", "-p", &publish, "-v", &www, BUSYBOX, "httpd", "-f", "-p",
        "80", "-h", "/www",
    ]);
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
    assert!(veths_on(&daemon).is_empty());
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
    assert!(veths_on(&daemon).is_empty());
    assert!(!published_rules(&daemon).contains(&port.to_string()));
    let netns = std::fs::read_dir(daemon.root().join("netns"))
        .unwrap()
        .count();
    assert_eq!(netns, 0);
}

#[test]
fn after_a_daemon_crash_ports_still_serve_and_rules_are_neither_lost_nor_doubled() {
    let (mut daemon, www) = with_page("still here\n");
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::80",
        "-v",
        &www,
        BUSYBOX,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
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
    assert!(veths_on(&daemon).is_empty());
    assert!(!published_rules(&daemon).contains(':'));
}
