//! `busy`: how a daemon answers while it is busy. Fifty `run -d` are
//! started at once on a user network, and meanwhile, without pause, the
//! embedded DNS server is asked for a running container's name (from the
//! namespace of another container on that network, at 127.0.0.11) and the
//! API is asked `GET /containers/json`. Each answer's latency is kept: p50,
//! p99 and the worst, under that load and idle before it. A daemon that
//! holds one lock across a container's creation makes both wait for it.
//!
//! Keel against dockerd (its embedded DNS is also 127.0.0.11 on user
//! networks); Podman has no daemon to ask. The floor is what the machine
//! gives anyone under that load: a UDP echo served by a thread of the
//! bench, asked the same way.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keel_testkit::docker::Docker;
use keel_testkit::podman::output;

use crate::engine::Keel;

/// The containers started at once in each round.
const BURST: usize = 50;
/// The pause between two questions of one sampler.
const PACE: Duration = Duration::from_millis(2);
/// How long each sampler asks before the burst, for the idle figures.
const IDLE: Duration = Duration::from_secs(1);

/// One engine under the bench: how to run its CLI and reach its API.
struct Engine {
    name: &'static str,
    command: Box<dyn Fn() -> Command>,
    socket: PathBuf,
    subnet: &'static str,
}

#[derive(Default)]
struct Samples {
    echo_busy: Vec<Duration>,
    dns_idle: Vec<Duration>,
    dns_busy: Vec<Duration>,
    api_idle: Vec<Duration>,
    api_busy: Vec<Duration>,
    bursts: Vec<Duration>,
}

pub fn busy_bench(iterations: usize) -> Result<()> {
    let keel = Keel::start(&crate::network::KEEL_DAEMON_ARGS)?;
    let socket = keel.socket();
    let mut engines = vec![Engine {
        name: "keel",
        command: Box::new(move || keel.command()),
        socket,
        subnet: "10.197.0.0/24",
    }];
    let policy = crate::network::forward_policy();
    let mut _docker = None;
    let mut _policy_back = None;
    if Path::new("/usr/sbin/dockerd").exists() || Path::new("/usr/bin/dockerd").exists() {
        let docker = Arc::new(Docker::start_networked());
        _policy_back = Some(crate::network::PolicyBack::new(policy));
        let socket = docker.dir().join("docker.sock");
        let handle = Arc::clone(&docker);
        engines.push(Engine {
            name: "docker 20.10",
            command: Box::new(move || handle.command()),
            socket,
            subnet: "10.198.0.0/24",
        });
        _docker = Some(docker);
    } else {
        println!("docker: dockerd not installed, skipped");
    }
    let mut results = Vec::new();
    for engine in &engines {
        results.push(measure(engine, iterations)?);
    }
    println!(
        "Answers while {BURST} `run -d` start at once on a user network: {iterations} rounds each; \
         DNS: A query for a running container, from another one, at 127.0.0.11; API: GET /containers/json"
    );
    println!(
        "{:<14} {:>12} {:>26} {:>26} {:>18} {:>18}",
        "engine",
        "burst",
        "DNS p50 / p99 / max",
        "API p50 / p99 / max",
        "idle DNS p99",
        "idle API p99"
    );
    for (engine, samples) in engines.iter().zip(&mut results) {
        println!(
            "{:<14} {:>10.2} s {:>26} {:>26} {:>15.2} ms {:>15.2} ms {:>26}",
            engine.name,
            crate::median(&samples.bursts).as_secs_f64(),
            spread(&mut samples.dns_busy),
            spread(&mut samples.api_busy),
            crate::ms(percentile(&mut samples.dns_idle, 99.0)),
            crate::ms(percentile(&mut samples.api_idle, 99.0)),
            spread(&mut samples.echo_busy),
        );
    }
    Ok(())
}

fn run(engine: &Engine, args: &[&str]) -> Result<String> {
    let (code, out, err) = output((engine.command)().args(args));
    ensure!(code == 0, "{}: {args:?}: {err}", engine.name);
    Ok(out.trim().to_owned())
}

fn measure(engine: &Engine, iterations: usize) -> Result<Samples> {
    run(
        engine,
        &["network", "create", "--subnet", engine.subnet, "busynet"],
    )?;
    let on_network = ["run", "-d", "--network", "busynet"];
    let mut fixtures = Vec::new();
    for name in ["target", "prober"] {
        let mut args = on_network.to_vec();
        args.extend(["--name", name, "keel-busybox", "sleep", "3600"]);
        run(engine, &args)?;
        fixtures.push(name.to_owned());
    }
    let measured = (|| {
        let prober: i32 = run(engine, &["inspect", "--format", "{{.State.Pid}}", "prober"])?
            .parse()
            .context("the prober's pid")?;
        let mut samples = Samples::default();
        for round in 0..iterations {
            let names: Vec<String> = (0..BURST).map(|i| format!("busy-{round}-{i}")).collect();
            let stop = Arc::new(AtomicBool::new(false));
            let started = Arc::new(std::sync::OnceLock::<Instant>::new());
            let dns = {
                let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
                std::thread::spawn(move || ask_dns(prober, &stop, &started))
            };
            let api = {
                let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
                let socket = engine.socket.clone();
                std::thread::spawn(move || ask_api(&socket, &stop, &started))
            };
            let echo = {
                let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
                std::thread::spawn(move || ask_echo(&stop, &started))
            };
            std::thread::sleep(IDLE);
            let began = Instant::now();
            let _ = started.set(began);
            let burst: Vec<_> = names
                .iter()
                .map(|name| {
                    let mut args = on_network.to_vec();
                    args.extend(["--name", name, "keel-busybox", "sleep", "3600"]);
                    (engine.command)()
                        .args(&args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                })
                .collect();
            let mut failures = Vec::new();
            for child in burst {
                match child.and_then(|child| child.wait_with_output()) {
                    Ok(finished) if finished.status.success() => {}
                    Ok(finished) => {
                        failures.push(String::from_utf8_lossy(&finished.stderr).into_owned())
                    }
                    Err(error) => failures.push(error.to_string()),
                }
            }
            samples.bursts.push(began.elapsed());
            stop.store(true, Ordering::Relaxed);
            let (dns, api, echo) = (dns.join(), api.join(), echo.join());
            // The round's containers go first, whatever the samplers say:
            // a network still in use would outlive the bench.
            remove(engine, &names);
            let (dns_idle, dns_busy) = dns.expect("the DNS sampler")?;
            let (api_idle, api_busy) = api.expect("the API sampler")?;
            samples.echo_busy.extend(echo.expect("the echo sampler")?.1);
            samples.dns_idle.extend(dns_idle);
            samples.dns_busy.extend(dns_busy);
            samples.api_idle.extend(api_idle);
            samples.api_busy.extend(api_busy);
            ensure!(
                failures.is_empty(),
                "{}: run -d failed: {failures:?}",
                engine.name
            );
        }
        Ok(samples)
    })();
    remove(engine, &fixtures);
    let _ = run(engine, &["network", "rm", "busynet"]);
    measured
}

/// Removed one per call (dockerd 20.10 deadlocks on several, moby#42545).
fn remove(engine: &Engine, names: &[String]) {
    for name in names {
        let _ = output((engine.command)().args(["rm", "-f", name]));
    }
}

/// Latencies before the burst began and after, until told to stop.
type Split = (Vec<Duration>, Vec<Duration>);

fn split(at: &std::sync::OnceLock<Instant>, when: Instant, took: Duration, into: &mut Split) {
    match at.get() {
        Some(began) if when >= *began => into.1.push(took),
        _ => into.0.push(took),
    }
}

/// Asks the embedded DNS server for `target`, from the prober's network
/// namespace, again and again.
fn ask_dns(
    prober: i32,
    stop: &AtomicBool,
    started: &std::sync::OnceLock<Instant>,
) -> Result<Split> {
    let netns = std::fs::File::open(format!("/proc/{prober}/ns/net"))?;
    // This thread only: the bench's others stay in the host's namespace.
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&netns),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect("127.0.0.11:53")?;
    ask_udp(
        &socket,
        stop,
        started,
        |id| query(id, "target"),
        |reply, id| {
            // A late answer to an earlier question is not this one's.
            if reply.len() < 12 || reply[..2] != id.to_be_bytes() {
                return Ok(false);
            }
            ensure!(
                reply[3] & 0x0f == 0,
                "DNS answered rcode {}",
                reply[3] & 0x0f
            );
            Ok(true)
        },
    )
}

/// Asks over `socket` until told to stop, pausing between questions:
/// `question(id)` is sent and replies read until `answers(reply, id)`
/// says one is its answer.
fn ask_udp(
    socket: &UdpSocket,
    stop: &AtomicBool,
    started: &std::sync::OnceLock<Instant>,
    question: impl Fn(u16) -> Vec<u8>,
    answers: impl Fn(&[u8], u16) -> Result<bool>,
) -> Result<Split> {
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut samples = Split::default();
    let mut id: u16 = 0;
    let mut reply = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        id = id.wrapping_add(1);
        let asked = Instant::now();
        socket.send(&question(id))?;
        loop {
            let n = match socket.recv(&mut reply) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other.context("no answer within 5 s")?,
            };
            if answers(&reply[..n], id)? {
                break;
            }
        }
        split(started, asked, asked.elapsed(), &mut samples);
        std::thread::sleep(PACE);
    }
    Ok(samples)
}

/// Asks a UDP echo served by a thread of its own, again and again: the
/// latency the loaded machine gives a server that waits on nothing.
fn ask_echo(stop: &AtomicBool, started: &std::sync::OnceLock<Instant>) -> Result<Split> {
    let server = UdpSocket::bind("127.0.0.1:0")?;
    let address = server.local_addr()?;
    server.set_read_timeout(Some(Duration::from_millis(100)))?;
    let serving = Arc::new(AtomicBool::new(true));
    let echo = {
        let serving = Arc::clone(&serving);
        std::thread::spawn(move || {
            let mut packet = [0u8; 64];
            while serving.load(Ordering::Relaxed) {
                if let Ok((n, from)) = server.recv_from(&mut packet) {
                    let _ = server.send_to(&packet[..n], from);
                }
            }
        })
    };
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(address)?;
    let samples = ask_udp(
        &socket,
        stop,
        started,
        |id| id.to_be_bytes().to_vec(),
        |reply, id| Ok(reply == id.to_be_bytes()),
    );
    serving.store(false, Ordering::Relaxed);
    let _ = echo.join();
    samples
}

/// A DNS question: `name`, type A, class IN, recursion desired.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(32);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

/// Asks the API for its containers again and again.
fn ask_api(
    socket: &Path,
    stop: &AtomicBool,
    started: &std::sync::OnceLock<Instant>,
) -> Result<Split> {
    let mut samples = Split::default();
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let mut stream = UnixStream::connect(socket)?;
        stream.write_all(
            b"GET /v1.41/containers/json HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
        )?;
        body.clear();
        stream.read_to_end(&mut body)?;
        ensure!(
            body.starts_with(b"HTTP/1.1 200"),
            "GET /containers/json: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
        split(started, asked, asked.elapsed(), &mut samples);
        std::thread::sleep(PACE);
    }
    Ok(samples)
}

/// The `p`th percentile (nearest rank).
fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// "p50 / p99 / max" in milliseconds.
fn spread(values: &mut [Duration]) -> String {
    let max = values.iter().max().copied().unwrap_or_default();
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        crate::ms(percentile(values, 50.0)),
        crate::ms(percentile(values, 99.0)),
        crate::ms(max)
    )
}
