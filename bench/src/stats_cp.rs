//! `stats-cp`: two daily docker commands, the daemons taking turns:
//! `stats --no-stream` of 50 running containers (each on its daemon's
//! default bridge, so its network counters are read too), and `cp` of a
//! 100 MB tree (1,000 files of 100 kB in 20 directories) into a running
//! container. Keel against dockerd 20.10, each through the docker 28 CLI
//! (the daemons alone) and through its own CLI (`keel`, and dockerd's
//! 20.10 client: what a user of each types).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use keel_testkit::docker::Docker;
use keel_testkit::podman::output;

use crate::engine::Keel;

const CONTAINERS: usize = 50;

/// The docker 28 CLI, whose `stats` and `cp` both daemons answer.
const DOCKER_CLI: &str = "/usr/local/bin/docker";

struct Daemon {
    name: &'static str,
    socket: std::path::PathBuf,
    /// Its own CLI, set to talk to it.
    own: Box<dyn Fn() -> Command>,
    /// stats and cp through the docker 28 CLI, then through its own.
    times: [Vec<Duration>; 4],
}

impl Daemon {
    /// The docker 28 CLI (`shared`) or the daemon's own at its socket.
    fn cli(&self, shared: bool, args: &[&str]) -> Command {
        let mut command = match shared {
            true => {
                let mut command = Command::new(DOCKER_CLI);
                command
                    .arg("--host")
                    .arg(format!("unix://{}", self.socket.display()));
                command
            }
            false => (self.own)(),
        };
        command.args(args);
        command
    }

    fn timed(&self, shared: bool, args: &[&str]) -> Result<(Duration, String)> {
        let started = Instant::now();
        let (code, out, err) = output(&mut self.cli(shared, args));
        let took = started.elapsed();
        ensure!(code == 0, "{}: {args:?}: {err}", self.name);
        Ok((took, out))
    }
}

/// 1,000 files of 100 kB of noise, in 20 directories.
fn write_tree(dir: &Path) -> Result<()> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for d in 0..20 {
        let sub = dir.join(format!("dir{d:02}"));
        std::fs::create_dir_all(&sub)?;
        for f in 0..50 {
            let bytes: Vec<u8> = (0..100 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            std::fs::write(sub.join(format!("file{f:02}")), bytes)?;
        }
    }
    Ok(())
}

pub fn stats_cp_bench(iterations: usize) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("keel-bench-stats-cp-")
        .tempdir()?;
    let tree = work.path().join("tree");
    write_tree(&tree)?;
    let tree_arg = tree.to_str().expect("a UTF-8 path");

    let keel = Keel::start(&[])?;
    let policy = crate::network::forward_policy();
    let docker = Docker::start_networked();
    let _policy_back = crate::network::PolicyBack::new(policy);
    let docker_socket = docker.dir().join("docker.sock");
    let keel = std::rc::Rc::new(keel);
    let docker = std::rc::Rc::new(docker);
    let mut daemons = [
        Daemon {
            name: "keel",
            socket: keel.socket(),
            own: Box::new({
                let keel = keel.clone();
                move || keel.command()
            }),
            times: Default::default(),
        },
        Daemon {
            name: "docker 20.10",
            socket: docker_socket,
            own: Box::new({
                let docker = docker.clone();
                move || docker.command()
            }),
            times: Default::default(),
        },
    ];
    for daemon in &daemons {
        for i in 0..CONTAINERS {
            let name = format!("bench-{i}");
            let (code, _, err) = output(&mut daemon.cli(
                true,
                &[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "keel-busybox",
                    "sleep",
                    "3600",
                ],
            ));
            ensure!(code == 0, "{}: run {name}: {err}", daemon.name);
        }
    }
    for round in 0..iterations {
        for daemon in &mut daemons {
            for (n, shared) in [(0, true), (1, false)] {
                let (took, table) = daemon.timed(shared, &["stats", "--no-stream"])?;
                let rows = table.lines().count().saturating_sub(1);
                ensure!(
                    rows == CONTAINERS,
                    "{}: stats listed {rows} containers: {table}",
                    daemon.name
                );
                daemon.times[2 * n].push(took);
                let copy = format!("/tmp/tree-{round}-{n}");
                let (took, _) =
                    daemon.timed(shared, &["cp", tree_arg, &format!("bench-0:{copy}")])?;
                daemon.times[2 * n + 1].push(took);
                // The copy is whole in the container.
                let (_, listed, _) = output(&mut daemon.cli(
                    true,
                    &[
                        "exec",
                        "bench-0",
                        "sh",
                        "-c",
                        &format!("find {copy} -type f | wc -l; rm -rf {copy}"),
                    ],
                ));
                ensure!(
                    listed.trim() == "1000",
                    "{}: cp left {listed:?} files",
                    daemon.name
                );
            }
        }
    }
    println!(
        "median of {iterations}; {CONTAINERS} containers running on the default bridge; cp of 100 MB in 1,000 files"
    );
    println!(
        "{:<14} {:>22} {:>22} {:>22} {:>22}",
        "daemon", "stats (docker 28 CLI)", "cp (docker 28 CLI)", "stats (own CLI)", "cp (own CLI)"
    );
    let medians = |daemon: &Daemon| daemon.times.clone().map(|t| crate::median(&t));
    let keel = medians(&daemons[0]);
    for daemon in &daemons {
        print!("{:<14}", daemon.name);
        for (took, base) in medians(daemon).iter().zip(&keel) {
            print!(
                " {:>12.0} ms ({:>4.1}x)",
                crate::ms(*took),
                took.as_secs_f64() / base.as_secs_f64()
            );
        }
        println!();
    }
    Ok(())
}
