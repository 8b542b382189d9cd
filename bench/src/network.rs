//! `network`: published ports, Keel against dockerd 20.10 (docker0, its
//! iptables rules and docker-proxy), both serving the same files on the
//! same image, in one run, with busybox httpd (forks per connection: it
//! sets the pace) and with keel-bench-httpd (threads: the path sets it):
//!
//! - `wrk` through the published port on 127.0.0.1 (Docker: docker-proxy;
//!   Keel: DNAT in the kernel), for a small page (requests per second:
//!   busybox httpd closes each connection, so these are connections; the
//!   threaded server keeps them open) and a 1 MiB file (MB/s);
//! - the same from another network namespace, through the host's address
//!   on a bridge of the bench's own (both: DNAT, then the container's
//!   bridge);
//! - from `run -d -p` to the first answered request, on 127.0.0.1;
//! - and, as the bound no published port can pass, `wrk` inside Keel's
//!   container's own namespace against the server on its loopback: no
//!   engine's path at all, the same server, the same two cores.
//!
//! dockerd sets the FORWARD policy to drop; Keel lets its bridge through
//! it, and the bench puts the policy back afterwards.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keel_network::bridge::{self, Link};
use keel_network::{Subnet, netns};
use keel_testkit::docker::Docker;
use keel_testkit::podman::output;

use crate::engine::Keel;
use crate::{median, ms};

const KEEL_BRIDGE: &str = "kbench0";
/// The bench's Keel daemon: a bridge of its own, clear of keel0.
pub(crate) const KEEL_DAEMON_ARGS: [&str; 4] = ["--bridge", KEEL_BRIDGE, "--bip", "10.86.0.1/24"];
const CLIENT_BRIDGE: &str = "kbcli0";
/// wrk runs per engine, server and path.
const REPETITIONS: usize = 5;
const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 85, 0, 1);

/// A namespace for the client, on a bridge of its own whose host address
/// is where it reaches the published ports.
struct Client {
    dir: tempfile::TempDir,
}

impl Client {
    fn create() -> Result<Client> {
        let subnet: Subnet = "10.85.0.0/24".parse()?;
        bridge::ensure(CLIENT_BRIDGE, CLIENT_HOST, subnet)?;
        let client = Client {
            dir: tempfile::tempdir()?,
        };
        netns::create(&client.netns())?;
        bridge::attach(
            &client.netns(),
            &Link {
                bridge: CLIENT_BRIDGE,
                host_name: "kbcli0-c",
                name: "eth0",
                address: Ipv4Addr::new(10, 85, 0, 2),
                prefix: 24,
                gateway: Some(CLIENT_HOST),
                mac: bridge::mac_address(Ipv4Addr::new(10, 85, 0, 2)),
            },
        )?;
        Ok(client)
    }

    fn netns(&self) -> PathBuf {
        self.dir.path().join("client")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        bridge::detach("kbcli0-c").ok();
        netns::remove(&self.netns()).ok();
        bridge::remove(CLIENT_BRIDGE).ok();
    }
}

/// FORWARD's policy as it was before dockerd set it to drop, put back
/// when dropped. (Keel lets its own bridge through that policy itself.)
pub(crate) struct PolicyBack {
    policy: String,
}

impl PolicyBack {
    pub(crate) fn new(policy: String) -> Self {
        PolicyBack { policy }
    }
}

impl Drop for PolicyBack {
    fn drop(&mut self) {
        let _ = output(Command::new("iptables").args(["-P", "FORWARD", &self.policy]));
    }
}

/// Removes the bench daemon's bridge, its table and its firewall rules.
pub(crate) fn remove_keel_bridge() {
    keel_network::firewall::stop_letting_through(KEEL_BRIDGE);
    if let Ok(subnet) = "10.86.0.0/24".parse() {
        let rules = keel_network::nft::Rules {
            bridge: KEEL_BRIDGE,
            subnet,
            internal: false,
        };
        rules.uninstall().ok();
    }
    bridge::remove(KEEL_BRIDGE).ok();
}

/// FORWARD's policy now (`ACCEPT` on a machine without Docker's rules).
pub(crate) fn forward_policy() -> String {
    let (_, rules, _) = output(Command::new("iptables").args(["-S", "FORWARD"]));
    rules
        .lines()
        .find_map(|l| l.strip_prefix("-P FORWARD "))
        .unwrap_or("ACCEPT")
        .trim()
        .to_owned()
}

/// Makes a CLI command for one engine.
type CommandMaker<'a> = Box<dyn Fn() -> Command + 'a>;

#[derive(Default)]
struct Figures {
    loopback_rate: Vec<f64>,
    loopback_mbps: Vec<f64>,
    netns_rate: Vec<f64>,
    netns_mbps: Vec<f64>,
    first_reply: Vec<Duration>,
}

/// `wrk` for 3 s at `url`, in the namespace `netns` if given: (requests
/// per second, MB per second).
fn wrk(netns: Option<&Path>, url: &str, connections: u32) -> Result<(f64, f64)> {
    let mut command = match netns {
        Some(path) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={}", path.display())).arg("wrk");
            command
        }
        None => Command::new("wrk"),
    };
    let (code, out, err) = output(command.args(["-t2", &format!("-c{connections}"), "-d3s", url]));
    ensure!(code == 0, "wrk {url}: {err}");
    let field = |name: &str| -> Option<&str> {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
    };
    let rate: f64 = field("Requests/sec:")
        .context("wrk's Requests/sec")?
        .parse()?;
    let transfer = field("Transfer/sec:").context("wrk's Transfer/sec")?;
    let (number, unit) = transfer.split_at(transfer.len() - 2);
    let scale = match unit {
        "GB" => 1024.0,
        "MB" => 1.0,
        "KB" => 1.0 / 1024.0,
        _ => 1.0 / (1024.0 * 1024.0),
    };
    Ok((rate, number.trim().parse::<f64>()? * scale))
}

/// `wrk` at `base`, in the namespace `netns` if given: the small page's
/// requests per second (32 connections), the 1 MiB file's MB per second
/// (8 connections).
fn page_and_file(netns: Option<&Path>, base: &str) -> Result<(f64, f64)> {
    let (rate, _) = wrk(netns, &format!("{base}/"), 32)?;
    let (_, mbps) = wrk(netns, &format!("{base}/big.bin"), 8)?;
    Ok((rate, mbps))
}

/// Waits for the first answer to GET / on 127.0.0.1:`port`.
fn first_answer(port: u16, since: Instant) -> Result<Duration> {
    loop {
        if let Ok(mut connection) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            let mut reply = Vec::new();
            if connection.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
                && connection.read_to_end(&mut reply).is_ok()
                && reply.starts_with(b"HTTP/1.")
            {
                return Ok(since.elapsed());
            }
        }
        ensure!(
            since.elapsed() < Duration::from_secs(10),
            "no answer on {port}"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A server in the container, serving the files at /www on port 80.
struct Server {
    name: &'static str,
    /// Binds `run` adds (`-v` values).
    volumes: Vec<String>,
    command: &'static [&'static str],
}

impl Server {
    /// busybox httpd: a process forked per connection.
    fn busybox(www: &str) -> Server {
        Server {
            name: "busybox httpd",
            volumes: vec![format!("{www}:/www:ro")],
            command: &["httpd", "-f", "-p", "80", "-h", "/www"],
        }
    }

    /// keel-bench-httpd (see its source), if built.
    fn threaded(www: &str) -> Option<Server> {
        let binary = crate::static_binary("keel-bench-httpd");
        if !binary.exists() {
            println!(
                "threaded server: {} not built (scripts/build-static keel-bench keel-bench-httpd), skipped",
                binary.display()
            );
            return None;
        }
        Some(Server {
            name: "threaded server",
            volumes: vec![
                format!("{www}:/www:ro"),
                format!("{}:/httpd:ro", binary.display()),
            ],
            command: &["/httpd", "80", "/www"],
        })
    }

    /// `run -d --name NAME -p PUBLISH` of this server.
    fn run(&self, mut command: Command, engine: &str, name: &str, publish: &str) -> Result<()> {
        command.args(["run", "-d", "--name", name, "-p", publish]);
        for volume in &self.volumes {
            command.args(["-v", volume]);
        }
        let (code, _, err) = output(command.arg("keel-busybox").args(self.command));
        ensure!(code == 0, "{engine}: run: {err}");
        Ok(())
    }
}

/// The network namespace of the container `name`.
fn container_netns(mut command: Command, name: &str) -> Result<PathBuf> {
    let (code, pid, err) = output(command.args(["inspect", "-f", "{{.State.Pid}}", name]));
    ensure!(code == 0, "inspect {name}: {err}");
    Ok(PathBuf::from(format!("/proc/{}/ns/net", pid.trim())))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("0.0.0.0:0")?
        .local_addr()?
        .port())
}

pub fn network_bench(iterations: usize) -> Result<()> {
    let www = tempfile::tempdir()?;
    std::fs::write(www.path().join("index.html"), "hello from a container\n")?;
    std::fs::write(www.path().join("big.bin"), vec![7u8; 1 << 20])?;
    let www_path = www.path().display().to_string();
    let servers: Vec<Server> = std::iter::once(Server::busybox(&www_path))
        .chain(Server::threaded(&www_path))
        .collect();
    let policy = forward_policy();
    let client = Client::create()?;
    let keel = Keel::start(&KEEL_DAEMON_ARGS)?;
    let docker = Docker::start_networked();
    let _policy_back = PolicyBack::new(policy);
    let commands: [(&str, CommandMaker); 2] = [
        ("keel", Box::new(|| keel.command())),
        ("docker 20.10", Box::new(|| docker.command())),
    ];

    // figures[server][engine]. Both engines serve at once and take turns
    // at each repetition, so that a change in the machine's pace falls on
    // both alike.
    let mut figures: Vec<Vec<Figures>> = Vec::new();
    for server in &servers {
        let mut ports = Vec::new();
        for (name, command) in &commands {
            let port = free_port()?;
            server.run(command(), name, "web", &format!("{port}:80"))?;
            first_answer(port, Instant::now())?;
            ports.push(port);
        }
        let inside = container_netns(commands[0].1(), "web")?;
        // One entry per engine, then the server seen from inside.
        let mut row: Vec<Figures> = (0..=commands.len()).map(|_| Figures::default()).collect();
        for repetition in 0..REPETITIONS {
            for turn in 0..row.len() {
                let k = (repetition + turn) % row.len();
                let result = &mut row[k];
                if k == commands.len() {
                    let (rate, mbps) = page_and_file(Some(&inside), "http://127.0.0.1")?;
                    result.loopback_rate.push(rate);
                    result.loopback_mbps.push(mbps);
                    continue;
                }
                let port = ports[k];
                let (rate, mbps) = page_and_file(None, &format!("http://127.0.0.1:{port}"))?;
                result.loopback_rate.push(rate);
                result.loopback_mbps.push(mbps);
                let remote = format!("http://{CLIENT_HOST}:{port}");
                let (rate, mbps) = page_and_file(Some(&client.netns()), &remote)?;
                result.netns_rate.push(rate);
                result.netns_mbps.push(mbps);
            }
        }
        for (_, command) in &commands {
            let _ = output(command().args(["rm", "-f", "web"]));
        }
        figures.push(row);
    }
    // From `run -d -p` to the first answer (busybox httpd), the engines
    // taking turns.
    for i in 0..3 + iterations {
        for (k, (name, command)) in commands.iter().enumerate() {
            let port = free_port()?;
            let publish = format!("127.0.0.1:{port}:80");
            let started = Instant::now();
            servers[0].run(command(), name, "first", &publish)?;
            let elapsed = first_answer(port, started)?;
            if i >= 3 {
                figures[0][k].first_reply.push(elapsed);
            }
            let _ = output(command().args(["rm", "-f", "first"]));
        }
    }
    let names: Vec<&str> = commands
        .iter()
        .map(|(name, _)| *name)
        .chain(["in the container"])
        .collect();
    drop(commands);
    drop(keel);

    let med = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    println!(
        "Published port; wrk -t2 for 3 s, median of {REPETITIONS}, the engines taking turns (small page: 32 connections; 1 MiB file: 8); busybox httpd closes each connection, the threaded server keeps them open; first answer (busybox httpd): median of {iterations}"
    );
    println!(
        "{:<16} {:<16} {:>16} {:>15} {:>16} {:>15} {:>15}",
        "engine",
        "server",
        "127.0.0.1 req/s",
        "127.0.0.1 MB/s",
        "netns req/s",
        "netns MB/s",
        "run→answer"
    );
    for (server, row) in servers.iter().zip(&figures) {
        for (name, f) in names.iter().zip(row) {
            let first = if f.first_reply.is_empty() {
                String::new()
            } else {
                format!("{:.1} ms", ms(median(&f.first_reply)))
            };
            let netns = |values: &[f64], precision: usize| {
                if values.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{:.precision$}", med(values))
                }
            };
            println!(
                "{:<16} {:<16} {:>16.0} {:>15.1} {:>16} {:>15} {:>15}",
                name,
                server.name,
                med(&f.loopback_rate),
                med(&f.loopback_mbps),
                netns(&f.netns_rate, 0),
                netns(&f.netns_mbps, 1),
                first,
            );
        }
    }
    for (server, row) in servers.iter().zip(&figures) {
        let (k, d, bound) = (&row[0], &row[1], &row[2]);
        println!(
            "keel/docker, {}: 127.0.0.1 {:.2}x req/s, {:.2}x MB/s; netns {:.2}x req/s, {:.2}x MB/s; \
             in the container/docker (no path could pass it): {:.2}x req/s, {:.2}x MB/s",
            server.name,
            med(&k.loopback_rate) / med(&d.loopback_rate),
            med(&k.loopback_mbps) / med(&d.loopback_mbps),
            med(&k.netns_rate) / med(&d.netns_rate),
            med(&k.netns_mbps) / med(&d.netns_mbps),
            med(&bound.loopback_rate) / med(&d.loopback_rate),
            med(&bound.loopback_mbps) / med(&d.loopback_mbps),
        );
    }
    let (k, d) = (&figures[0][0], &figures[0][1]);
    println!(
        "run→answer: keel {:.2}x faster",
        median(&d.first_reply).as_secs_f64() / median(&k.first_reply).as_secs_f64(),
    );
    Ok(())
}
