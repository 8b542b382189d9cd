//! `keel-bench pull`: the same ~200 MB image of four gzip layers pulled
//! from a registry on loopback (Debian's docker-registry) into an empty
//! store, by Keel's daemon, dockerd 20.10 and Podman 4.3, taking turns.
//! Each pull goes to a fresh instance with a store of its own, and stores
//! are removed only at the end: removing big trees between pulls sets this
//! disk (ext4 with discard) trimming for a while, slowing whoever comes
//! next.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keel_testkit::docker::Docker;
use keel_testkit::podman::{Podman, output};
use keel_testkit::registry::Registry;

use crate::engine::Keel;
use crate::{median, ms};

enum Puller {
    Keel(Keel),
    Docker(Docker),
    Podman(Podman),
}

impl Puller {
    fn name(&self) -> &'static str {
        match self {
            Puller::Keel(_) => "keel",
            Puller::Docker(_) => "docker 20.10",
            Puller::Podman(_) => "podman 4.3",
        }
    }

    fn command(&self) -> Command {
        match self {
            Puller::Keel(keel) => keel.command(),
            Puller::Docker(docker) => docker.command(),
            Puller::Podman(podman) => podman.command(),
        }
    }

    fn pull(&self, image: &str) -> Result<Duration> {
        let mut command = self.command();
        command.arg("pull");
        if let Puller::Podman(_) = self {
            command.arg("--tls-verify=false");
        }
        command.arg(image);
        let started = Instant::now();
        let (code, _, err) = output(&mut command);
        let elapsed = started.elapsed();
        ensure!(code == 0, "{}: pull failed: {err}", self.name());
        Ok(elapsed)
    }
}

pub fn pull_bench(iterations: usize) -> Result<()> {
    let registry = Registry::start();
    let image = format!("{}/bench/pull:1", registry.address);
    let keel = Keel::start(&crate::network::KEEL_DAEMON_ARGS)?;
    let work = tempfile::Builder::new()
        .prefix("keel-bench-pull-")
        .tempdir_in("/var/tmp")?;
    let archive = work.path().join("image.tar");
    let size = crate::load::write_image(&archive)?;
    // Keel loads the image and pushes it (gzipping its layers, as docker
    // push does): every peer then pulls the same gzip blobs.
    for args in [
        vec!["load", "-q", "-i", archive.to_str().context("UTF-8 path")?],
        vec!["tag", "keel-bench/load:latest", &image],
        vec!["push", &image],
        vec!["rmi", &image, "keel-bench/load:latest"],
    ] {
        let (code, _, err) = output(keel.command().args(&args));
        ensure!(code == 0, "keel {args:?}: {err}");
    }
    println!(
        "image: {:.0} MB uncompressed in 4 gzip layers, pulled from docker-registry on 127.0.0.1",
        size as f64 / 1e6
    );
    let docker = std::path::Path::new("/usr/sbin/dockerd").exists();
    if !docker {
        println!("docker: dockerd not installed, skipped");
    }
    let kinds = if docker { 3 } else { 2 };
    let fresh = |kind: usize| -> Result<Puller> {
        Ok(match (kind, docker) {
            (0, _) => Puller::Keel(Keel::start(&crate::network::KEEL_DAEMON_ARGS)?),
            (1, true) => Puller::Docker(Docker::start(&[])),
            _ => Puller::Podman(Podman::with_busybox(None)),
        })
    };
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds];
    let mut names = vec![""; kinds];
    // The pusher stays too: its removal would trim the disk meanwhile.
    let mut used = vec![Puller::Keel(keel)];
    let warmup = 1;
    for i in 0..warmup + iterations {
        for k in 0..kinds {
            let kind = (i + k) % kinds;
            let puller = fresh(kind)?;
            rustix::fs::sync();
            let elapsed = puller.pull(&image)?;
            names[kind] = puller.name();
            if i >= warmup {
                times[kind].push(elapsed);
            }
            used.push(puller);
        }
    }
    println!(
        "pull into an empty store, {iterations} iterations each after {warmup} warm-up, taking turns"
    );
    println!("{:<14} {:>12} {:>10}", "who", "median", "vs keel");
    let keel_time = median(&times[0]);
    for (name, times) in names.iter().zip(&times) {
        let time = median(times);
        println!(
            "{:<14} {:>9.0} ms {:>9.2}x",
            name,
            ms(time),
            ms(time) / ms(keel_time)
        );
    }
    drop(used);
    Ok(())
}
