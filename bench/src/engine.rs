//! `engine`: Keel's daemon against dockerd 20.10 (with its containerd,
//! runc, docker0 and iptables rules) and Podman 4.3 (with conmon, runc and
//! netavark), on the same busybox image:
//!
//! - `run --rm busybox true` through each CLI, the engines taking turns,
//!   on each one's default bridge network and with `--network none`;
//! - 50 detached starts (`run -d busybox sleep 600`, one after another, on
//!   the default network);
//! - with those 50 running, the memory of what watches each container
//!   (keel-monitor, containerd-shim-runc-v2, conmon): RSS, and PSS, which
//!   shares the pages of a binary among the processes that map it;
//! - the daemon's RSS before any container ran (dockerd plus containerd;
//!   Podman has no daemon).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use keel_testkit::docker::Docker;
use keel_testkit::podman::{Podman, ULIMITS, output};

use crate::{median, ms};

/// `cargo build --release -p keel -p keel-daemon -p keel-monitor` puts
/// keel, keel-daemon and keel-monitor here.
fn keel_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/keel")
}

/// A Keel daemon of the bench's own.
pub(crate) struct Keel {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Keel {
    /// A daemon with `daemon_args` (the default bridge's, say).
    pub(crate) fn start(daemon_args: &[&str]) -> Result<Keel> {
        let binary = keel_binary();
        ensure!(
            ["keel-daemon", "keel-monitor"]
                .iter()
                .all(|name| binary.with_file_name(name).exists()),
            "{}, keel-daemon or keel-monitor beside it not found: build them with cargo build --release -p keel -p keel-daemon -p keel-monitor",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("keel-bench-engine-")
            .tempdir()?;
        let daemon = Command::new(&binary)
            .arg("daemon")
            .args(daemon_args)
            .env("KEEL_ROOT", dir.path().join("root"))
            .env(
                "KEEL_HOST",
                format!("unix://{}", socket_in(dir.path()).display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let keel = Keel { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !keel.socket().exists() {
            ensure!(Instant::now() < deadline, "keel daemon did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let tar = keel.dir.path().join("busybox.tar");
        keel_testkit::busybox_rootfs_tar(&tar)?;
        let (code, _, err) = output(keel.command().args([
            "import",
            tar.to_str().context("UTF-8 path")?,
            "keel-busybox",
        ]));
        ensure!(code == 0, "keel import: {err}");
        Ok(keel)
    }

    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(keel_binary());
        command.env("KEEL_AUTOSTART", "0");
        command
            .env("KEEL_ROOT", self.dir.path().join("root"))
            .env("KEEL_HOST", format!("unix://{}", self.socket().display()));
        command
    }

    /// The daemon's API socket.
    pub(crate) fn socket(&self) -> PathBuf {
        socket_in(self.dir.path())
    }
}

/// The socket of a bench daemon whose files are in `dir`.
fn socket_in(dir: &Path) -> PathBuf {
    dir.join("keel.sock")
}

impl Drop for Keel {
    fn drop(&mut self) {
        let (_, ids, _) = output(self.command().args(["ps", "-aq"]));
        for id in ids.lines() {
            let _ = output(self.command().args(["rm", "-f", id]));
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.daemon),
            rustix::process::Signal::TERM,
        );
        let _ = self.daemon.wait();
        // The daemon leaves its bridge, as Docker leaves docker0; the
        // bench leaves nothing.
        crate::network::remove_keel_bridge();
    }
}

enum Contender {
    Keel(Keel),
    Docker(Docker),
    Podman(Podman),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Keel(_) => "keel",
            Contender::Docker(_) => "docker 20.10",
            Contender::Podman(_) => "podman 4.3",
        }
    }

    /// `run OPTIONS` on keel-busybox (OPTIONS before the image, COMMAND
    /// after).
    fn run(&self, options: &[&str], command: &[&str]) -> Command {
        let mut run = match self {
            Contender::Keel(keel) => keel.command(),
            Contender::Docker(docker) => docker.command(),
            Contender::Podman(podman) => podman.command(),
        };
        run.arg("run");
        if let Contender::Podman(_) = self {
            run.args(ULIMITS);
        }
        run.args(options).arg("keel-busybox").args(command);
        run
    }

    fn timed_run(&self, options: &[&str], command: &[&str]) -> Result<Duration> {
        let started = Instant::now();
        let (code, _, err) = output(&mut self.run(options, command));
        let elapsed = started.elapsed();
        ensure!(code == 0, "{}: run failed: {err}", self.name());
        Ok(elapsed)
    }

    /// The pid of what watches the container `name`.
    fn watcher(&self, name: &str) -> Result<i32> {
        let inspect = |mut command: Command, format: &str| -> Result<i32> {
            let (code, out, err) = output(command.args(["inspect", "--format", format, name]));
            ensure!(code == 0, "inspect {name}: {err}");
            out.trim().parse().context("a pid")
        };
        match self {
            Contender::Keel(keel) => {
                let id = inspect_text(keel.command(), "{{.Id}}", name)?;
                // The engine's record of the container names its monitor.
                let record: serde_json::Value = serde_json::from_slice(&std::fs::read(
                    keel.dir
                        .path()
                        .join("root/containers")
                        .join(id)
                        .join("container.json"),
                )?)?;
                record["state"]["monitor_pid"]
                    .as_i64()
                    .map(|pid| pid as i32)
                    .context("a monitor pid")
            }
            // The shim is the container process's parent.
            Contender::Docker(docker) => parent(inspect(docker.command(), "{{.State.Pid}}")?),
            Contender::Podman(podman) => inspect(podman.command(), "{{.State.ConmonPid}}"),
        }
    }

    /// The daemon's resident memory (dockerd's with its containerd's).
    fn daemon_rss_kib(&self) -> Result<u64> {
        match self {
            Contender::Keel(keel) => memory(keel.daemon.id() as i32).map(|m| m.rss),
            Contender::Docker(docker) => {
                let mut total = memory(docker.pid())?.rss;
                for child in children(docker.pid()) {
                    total += memory(child)?.rss;
                }
                Ok(total)
            }
            Contender::Podman(_) => Ok(0),
        }
    }

    fn remove_all(&self, names: &[String]) {
        for name in names {
            let mut command = match self {
                Contender::Keel(keel) => keel.command(),
                Contender::Docker(docker) => docker.command(),
                Contender::Podman(podman) => podman.command(),
            };
            command.args(["rm", "-f", name]);
            // Podman's rm -f stops first, waiting 10 s for `sleep` (which
            // ignores SIGTERM as pid 1); the others kill at once.
            if let Contender::Podman(_) = self {
                command.args(["--time", "0"]);
            }
            let _ = output(&mut command);
        }
    }
}

fn inspect_text(mut command: Command, format: &str, name: &str) -> Result<String> {
    let (code, out, err) = output(command.args(["inspect", "--format", format, name]));
    ensure!(code == 0, "inspect {name}: {err}");
    Ok(out.trim().to_owned())
}

fn parent(pid: i32) -> Result<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("a stat line")?.1;
    after
        .split_whitespace()
        .nth(1)
        .context("a ppid")?
        .parse()
        .context("a ppid")
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| parent(*p).ok() == Some(pid))
        .collect()
}

struct Memory {
    rss: u64,
    pss: u64,
}

/// Rss and Pss (KiB) of a process, from /proc/PID/smaps_rollup.
fn memory(pid: i32) -> Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("{name} of {pid}"))
    };
    Ok(Memory {
        rss: field("Rss:")?,
        pss: field("Pss:")?,
    })
}

fn median_u64(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

struct Results {
    run: Vec<Duration>,
    run_none: Vec<Duration>,
    fifty: Duration,
    watcher_rss: u64,
    watcher_pss: u64,
    /// The watcher of a container logging ten lines a second.
    logging_watcher_rss: u64,
    daemon_rss: u64,
}

/// How long the logging container writes before its watcher is measured.
const LOGGING_FOR: Duration = Duration::from_secs(12);

/// The RSS (KiB) of the watcher of a container that logs ten lines a
/// second, once it has for a while.
fn logging_watcher_rss(contender: &Contender) -> Result<u64> {
    let name = "bench-logger".to_owned();
    let script = "while :; do echo \"line $(date)\"; sleep 0.1; done";
    let (code, _, err) =
        output(&mut contender.run(&["-d", "--name", &name], &["sh", "-c", script]));
    ensure!(
        code == 0,
        "{}: the logging container: {err}",
        contender.name()
    );
    std::thread::sleep(LOGGING_FOR);
    let rss = contender.watcher(&name).and_then(memory).map(|m| m.rss);
    contender.remove_all(std::slice::from_ref(&name));
    rss
}

pub fn engine_bench(iterations: usize) -> Result<()> {
    let policy = crate::network::forward_policy();
    let mut contenders = vec![Contender::Keel(Keel::start(
        &crate::network::KEEL_DAEMON_ARGS,
    )?)];
    let mut _policy_back = None;
    if Path::new("/usr/sbin/dockerd").exists() || Path::new("/usr/bin/dockerd").exists() {
        contenders.push(Contender::Docker(Docker::start_networked()));
        _policy_back = Some(crate::network::PolicyBack::new(policy));
    } else {
        println!("docker: dockerd not installed, skipped");
    }
    contenders.push(Contender::Podman(Podman::with_busybox(None)));
    let mut results: Vec<Results> = contenders
        .iter()
        .map(|c| {
            Ok(Results {
                run: Vec::new(),
                run_none: Vec::new(),
                fifty: Duration::ZERO,
                watcher_rss: 0,
                watcher_pss: 0,
                logging_watcher_rss: 0,
                daemon_rss: c.daemon_rss_kib()?,
            })
        })
        .collect::<Result<_>>()?;

    let warmup = 3;
    let count = contenders.len();
    for i in 0..warmup + iterations {
        for k in 0..count {
            let index = (i + k) % count;
            let time = contenders[index].timed_run(&["--rm"], &["true"])?;
            let time_none =
                contenders[index].timed_run(&["--rm", "--network", "none"], &["true"])?;
            if i >= warmup {
                results[index].run.push(time);
                results[index].run_none.push(time_none);
            }
        }
    }
    for (contender, result) in contenders.iter().zip(&mut results) {
        let names: Vec<String> = (0..50).map(|i| format!("bench-{i}")).collect();
        let started = Instant::now();
        for name in &names {
            let (code, _, err) =
                output(&mut contender.run(&["-d", "--name", name], &["sleep", "600"]));
            if code != 0 {
                contender.remove_all(&names);
                bail!("{}: detached start failed: {err}", contender.name());
            }
        }
        result.fifty = started.elapsed();
        let mut rss = Vec::new();
        let mut pss = Vec::new();
        for name in &names {
            let watcher = memory(contender.watcher(name)?)?;
            rss.push(watcher.rss);
            pss.push(watcher.pss);
        }
        result.watcher_rss = median_u64(&mut rss);
        result.watcher_pss = median_u64(&mut pss);
        contender.remove_all(&names);
        result.logging_watcher_rss = logging_watcher_rss(contender)?;
    }

    println!(
        "Engines, busybox; `run --rm true`: {iterations} iterations each after {warmup} warm-up, taking turns; default bridge unless `none`"
    );
    println!(
        "{:<14} {:>13} {:>8} {:>13} {:>8} {:>15} {:>8} {:>14} {:>14} {:>14} {:>12}",
        "engine",
        "run --rm",
        "vs keel",
        "none",
        "vs keel",
        "50 detached",
        "vs keel",
        "watcher RSS",
        "watcher PSS",
        "logging RSS",
        "daemon RSS"
    );
    let keel_run = median(&results[0].run);
    let keel_none = median(&results[0].run_none);
    let keel_fifty = results[0].fifty;
    for (contender, result) in contenders.iter().zip(&results) {
        let run = median(&result.run);
        let none = median(&result.run_none);
        println!(
            "{:<14} {:>10.2} ms {:>7.2}x {:>10.2} ms {:>7.2}x {:>12.2} s {:>7.2}x {:>11.2} MB {:>11.2} MB {:>11.2} MB {:>9.1} MB",
            contender.name(),
            ms(run),
            run.as_secs_f64() / keel_run.as_secs_f64(),
            ms(none),
            none.as_secs_f64() / keel_none.as_secs_f64(),
            result.fifty.as_secs_f64(),
            result.fifty.as_secs_f64() / keel_fifty.as_secs_f64(),
            result.watcher_rss as f64 / 1024.0,
            result.watcher_pss as f64 / 1024.0,
            result.logging_watcher_rss as f64 / 1024.0,
            result.daemon_rss as f64 / 1024.0,
        );
    }
    println!(
        "watcher: keel-monitor, containerd-shim-runc-v2, conmon (median over the 50); PSS shares a binary's pages among its processes; logging: the watcher of a container writing ten lines a second, after {LOGGING_FOR:?}"
    );
    Ok(())
}
