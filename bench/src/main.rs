//! keel-bench: measures Keel against its peers in one run, on the same
//! inputs, and prints medians and ratios.
//!
//!   keel-bench runtime [--iterations N] [--keel PATH] [--baseline PATH]
//!   keel-bench load [--iterations N]
//!   keel-bench engine [--iterations N]
//!   keel-bench network [--iterations N]
//!   keel-bench pull [--iterations N]
//!   keel-bench busy [--iterations N]
//!   keel-bench build [--iterations N]
//!   keel-bench stats-cp [--iterations N]
//!   keel-bench image PATH   (writes the load and pull image, as keel-busybox-bundle writes a bundle)
//!
//! `runtime` times OCI runtimes (keel-runtime, crun, runc) running `true`
//! from the same busybox bundle, two ways: `run` (one command: create,
//! start, wait, delete) and the lifecycle as containerd's shim drives it
//! (`create`, `start`, wait for the process as its subreaper, `delete`).
//! Runtimes take turns, iteration by iteration, so that noise on the
//! machine falls on all of them alike. Peak RSS is the median over runs of
//! the largest peak of any step, measured by /usr/bin/time.
//!
//! `load` times loading one ~200 MB multi-layer image from a docker-archive
//! into an empty store: Keel's image store against `podman load`.
//!
//! `engine` times Keel's daemon against dockerd and Podman (see engine.rs).
//!
//! `network` measures published ports against dockerd's (see network.rs).
//!
//! `pull` times pulling one ~200 MB image of gzip layers from a registry
//! on loopback: Keel against dockerd and Podman (see pull.rs).
//!
//! `busy` measures how the embedded DNS server and the API answer while
//! fifty `run -d` start at once: Keel against dockerd (see busy.rs).
//!
//! `build` times a layered multi-stage build, cold, unchanged and after
//! one class changed: Keel against BuildKit, Docker's classic builder and
//! Podman (see build.rs).
//!
//! `stats-cp` times `docker stats --no-stream` of 50 containers and `docker
//! cp` of a 100 MB tree, through one docker CLI at Keel's socket and at
//! dockerd's (see stats_cp.rs).

mod build;
mod busy;
mod engine;
mod load;
mod network;
mod pull;
mod stats_cp;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(what) = args.next() else {
        bail!(
            "usage: keel-bench runtime|load|engine|network|pull|busy|build [--iterations N] [--keel PATH] [--baseline PATH]"
        );
    };
    if what == "image" {
        // The load and pull benchmarks' image, to measure a step by hand.
        let Some(path) = args.next() else {
            bail!("usage: keel-bench image PATH");
        };
        let size = load::write_image(Path::new(&path))?;
        println!("{path}: {:.0} MB uncompressed", size as f64 / 1e6);
        return Ok(());
    }
    if what == "load-once" {
        let (Some(root), Some(archive)) = (args.next(), args.next()) else {
            bail!("usage: keel-bench load-once ROOT ARCHIVE");
        };
        return load::load_once(Path::new(&root), Path::new(&archive));
    }
    let mut iterations = 200;
    let mut keel = default_keel_runtime();
    let mut baseline = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .context("--iterations needs a number")?
                    .parse()?
            }
            "--keel" => keel = PathBuf::from(args.next().context("--keel needs a path")?),
            // Another keel-runtime build (an earlier one, say), taking
            // turns with the others in the same run.
            "--baseline" => {
                baseline = Some(PathBuf::from(
                    args.next().context("--baseline needs a path")?,
                ))
            }
            other => bail!("unknown option {other:?}"),
        }
    }
    // Podman runs its containers with crun, in the engine and load
    // benches as in the runtime bench.
    make_hybrid_cgroups_acceptable_to_crun()?;
    match what.as_str() {
        "runtime" => runtime_bench(&keel, baseline.as_deref(), iterations),
        "load" => load::load_bench(iterations),
        "engine" => engine::engine_bench(iterations),
        "network" => network::network_bench(iterations),
        "pull" => pull::pull_bench(iterations),
        "busy" => busy::busy_bench(iterations),
        "build" => build::build_bench(iterations),
        "stats-cp" => stats_cp::stats_cp_bench(iterations),
        other => {
            bail!(
                "unknown benchmark {other:?}: try runtime, load, engine, network, pull, busy or build"
            )
        }
    }
}

/// What scripts/build-runtime builds: the static release binary.
fn default_keel_runtime() -> PathBuf {
    static_binary("keel-runtime")
}

/// Where `scripts/build-static` puts the binary `name`.
fn static_binary(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let triple = if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    target.join(triple).join("release").join(name)
}

struct Runtime {
    name: &'static str,
    binary: PathBuf,
    root: tempfile::TempDir,
    run: Vec<Duration>,
    lifecycle: Vec<Duration>,
    peak_rss_kib: i64,
}

fn runtime_bench(keel: &Path, baseline: Option<&Path>, iterations: usize) -> Result<()> {
    for binary in std::iter::once(keel).chain(baseline) {
        anyhow::ensure!(
            binary.exists(),
            "{} not found: build it with ./scripts/build-runtime",
            binary.display()
        );
    }
    let bundle = tempfile::Builder::new()
        .prefix("keel-bench-bundle-")
        .tempdir()?;
    keel_testkit::write_busybox_bundle(bundle.path(), "keel-bench", &["true"])?;
    let mut runtimes = vec![Runtime::new("keel-runtime", keel.to_owned())?];
    if let Some(baseline) = baseline {
        runtimes.push(Runtime::new("keel baseline", baseline.to_owned())?);
    }
    for (name, path) in [("crun", "/usr/bin/crun"), ("runc", "/usr/sbin/runc")] {
        if Path::new(path).exists() {
            runtimes.push(Runtime::new(name, PathBuf::from(path))?);
        } else {
            println!("{name}: not installed ({path}), skipped");
        }
    }
    // SAFETY: prctl with integer arguments; makes orphaned container
    // processes our children, as containerd's shim and conmon do.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    anyhow::ensure!(rc == 0, "cannot become a subreaper");

    // The kernel tears a network namespace down after its last process is
    // gone, in the background; whoever runs next pays part of it. The
    // order rotates every iteration so that each runtime follows each
    // other equally often.
    let warmup = (iterations / 10).max(3);
    let count = runtimes.len();
    for i in 0..warmup + iterations {
        for k in 0..count {
            let rt = &mut runtimes[(i + k) % count];
            let run = rt.time_run(bundle.path(), &format!("bench-{}-{i}", std::process::id()))?;
            if i >= warmup {
                rt.run.push(run);
            }
        }
        for k in 0..count {
            let rt = &mut runtimes[(i + k) % count];
            let lifecycle = rt.time_lifecycle(
                bundle.path(),
                &format!("bench-{}-{i}-l", std::process::id()),
            )?;
            if i >= warmup {
                rt.lifecycle.push(lifecycle);
            }
        }
    }
    for rt in &mut runtimes {
        rt.peak_rss_kib = rt.peak_rss(bundle.path())?;
    }

    println!(
        "OCI runtimes, `true` from a busybox bundle, {iterations} iterations each after {warmup} warm-up, taking turns"
    );
    println!(
        "{:<14} {:>12} {:>10} {:>16} {:>10} {:>14}",
        "runtime", "run median", "vs keel", "lifecycle median", "vs keel", "peak RSS"
    );
    let keel_run = median(&runtimes[0].run);
    let keel_lifecycle = median(&runtimes[0].lifecycle);
    for rt in &runtimes {
        let (run, lifecycle) = (median(&rt.run), median(&rt.lifecycle));
        println!(
            "{:<14} {:>9.2} ms {:>9.2}x {:>13.2} ms {:>9.2}x {:>10} KiB",
            rt.name,
            ms(run),
            ms(run) / ms(keel_run),
            ms(lifecycle),
            ms(lifecycle) / ms(keel_lifecycle),
            rt.peak_rss_kib
        );
    }
    println!(
        "(vs keel: the runtime's median divided by keel-runtime's; above 1 means slower than keel-runtime)"
    );
    Ok(())
}

impl Runtime {
    fn new(name: &'static str, binary: PathBuf) -> Result<Runtime> {
        Ok(Runtime {
            name,
            binary,
            root: tempfile::Builder::new()
                .prefix("keel-bench-root-")
                .tempdir()?,
            run: Vec::new(),
            lifecycle: Vec::new(),
            peak_rss_kib: 0,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        command
    }

    /// Runs a command to completion.
    fn step(&self, args: &[&str]) -> Result<()> {
        let child = self
            .command(args)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        let status = wait(child.id() as i32)?;
        anyhow::ensure!(
            status == 0,
            "{} {} failed with status {status}",
            self.name,
            args.join(" ")
        );
        Ok(())
    }

    fn time_run(&self, bundle: &Path, id: &str) -> Result<Duration> {
        let started = Instant::now();
        self.step(&["run", "--bundle", bundle.to_str().unwrap_or_default(), id])?;
        Ok(started.elapsed())
    }

    /// create, start, wait, delete: the steps containerd's shim takes.
    fn lifecycle(
        &self,
        bundle: &Path,
        id: &str,
        step: &mut dyn FnMut(&[&str]) -> Result<()>,
    ) -> Result<()> {
        let pid_file = self.root.path().join(format!("{id}.pid"));
        step(&[
            "create",
            "--bundle",
            bundle.to_str().unwrap_or_default(),
            "--pid-file",
            pid_file.to_str().unwrap_or_default(),
            id,
        ])?;
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        step(&["start", id])?;
        // The container's init is ours to reap, as the subreaper.
        wait(pid)?;
        step(&["delete", id])?;
        std::fs::remove_file(&pid_file)?;
        Ok(())
    }

    fn time_lifecycle(&self, bundle: &Path, id: &str) -> Result<Duration> {
        let started = Instant::now();
        self.lifecycle(bundle, id, &mut |args| self.step(args))?;
        Ok(started.elapsed())
    }

    /// The median, over runs, of the largest peak RSS of any step, as
    /// /usr/bin/time reports it. (wait4's own figure is useless here: a
    /// child forked from this process starts with this process's peak.)
    fn peak_rss(&self, bundle: &Path) -> Result<i64> {
        const RUNS: usize = 21;
        let out = self.root.path().join("time.out");
        let measure = |args: &[&str]| -> Result<i64> {
            let status = Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&out)
                .arg(&self.binary)
                .arg("--root")
                .arg(self.root.path())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .context("running /usr/bin/time (Debian's time package)")?;
            anyhow::ensure!(
                status.success(),
                "{} {} failed under /usr/bin/time",
                self.name,
                args.join(" ")
            );
            Ok(std::fs::read_to_string(&out)?.trim().parse()?)
        };
        let mut peaks = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let id = format!("rss-{}-{i}", std::process::id());
            let mut peak = measure(&["run", "--bundle", bundle.to_str().unwrap_or_default(), &id])?;
            self.lifecycle(bundle, &format!("{id}-l"), &mut |args| {
                peak = peak.max(measure(args)?);
                Ok(())
            })?;
            peaks.push(peak);
        }
        peaks.sort_unstable();
        Ok(peaks[RUNS / 2])
    }
}

/// Waits for `pid` (a child, or an orphan we reap as subreaper) and
/// returns its exit status.
fn wait(pid: i32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is valid for writes during the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        anyhow::ensure!(
            err.kind() == std::io::ErrorKind::Interrupted,
            "waiting for {pid}: {err}"
        );
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// crun 1.8 refuses the hybrid layout while cgroup2 still offers the
/// hugetlb controller; mounting a v1 hugetlb hierarchy takes it from
/// cgroup2 (DESIGN.md). keel-runtime works either way.
fn make_hybrid_cgroups_acceptable_to_crun() -> Result<()> {
    let controllers =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    if !controllers.split_whitespace().any(|c| c == "hugetlb") {
        return Ok(());
    }
    std::fs::create_dir_all("/sys/fs/cgroup/hugetlb")?;
    rustix::mount::mount(
        "cgroup",
        "/sys/fs/cgroup/hugetlb",
        "cgroup",
        rustix::mount::MountFlags::empty(),
        c"hugetlb",
    )
    .context("mounting the v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb")?;
    println!(
        "note: mounted the v1 hugetlb hierarchy so that crun accepts the hybrid cgroup layout"
    );
    Ok(())
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
