//! Podman and Docker (Debian's packages) drive keel-runtime as they drive
//! runc. Each test has its own storage root, socket and state, uses no
//! network (`--network none`, a dockerd without bridge or iptables), and
//! stops only the processes it started.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::unique_name;
use keel_testkit::podman::{Podman, output, unmount_below};
use keel_testkit::tmux::{Keys, under_tmux};
use tempfile::TempDir;

const KEEL_RUNTIME: &str = env!("CARGO_BIN_EXE_keel-runtime");
#[test]
fn podman_runs_a_container_with_keel_runtime() {
    let podman = Podman::with_busybox(Some(Path::new(KEEL_RUNTIME)));
    let (code, out, err) = podman.run(&["--rm", "keel-busybox", "echo", "ok"]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let (code, _, _) = podman.run(&["--rm", "keel-busybox", "sh", "-c", "exit 9"]);
    assert_eq!(code, 9);
    let (code, _, err) = podman.run(&["--rm", "keel-busybox", "no-such-program"]);
    assert_eq!(code, 127, "{err}");
}

#[test]
fn podman_detaches_execs_and_stops_with_keel_runtime() {
    let podman = Podman::with_busybox(Some(Path::new(KEEL_RUNTIME)));
    let name = unique_name("pod-web");
    let (code, _, err) = podman.run(&[
        "-d",
        "--name",
        &name,
        "keel-busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = output(podman.command().args([
        "exec",
        &name,
        "sh",
        "-c",
        "echo exec-ok; cat /proc/1/cmdline",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("exec-ok\nsh\0-c\0"), "{out:?}");
    let (code, out, _) =
        output(
            podman
                .command()
                .args(["inspect", "--format", "{{.State.Status}}", &name]),
        );
    assert_eq!((code, out.trim()), (0, "running"));
    let (code, _, err) = output(podman.command().args(["stop", "--time", "10", &name]));
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = output(podman.command().args([
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    assert_eq!(out.trim(), "exited 0");
    let (code, _, err) = output(podman.command().args(["rm", &name]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn podman_run_it_gives_an_interactive_terminal() {
    let podman = Podman::with_busybox(Some(Path::new(KEEL_RUNTIME)));
    let exit_file = podman.dir().join("exit");
    let command = format!(
        "{} run --rm -it --network none {} keel-busybox sh",
        podman.command_line(),
        keel_testkit::podman::ULIMITS.join(" ")
    );
    let (pane, code) = under_tmux(
        &command,
        &[
            Keys::Line("echo typed-$((6 * 7)); tty"),
            Keys::Line("exit 5"),
        ],
        &exit_file,
    );
    assert!(pane.contains("typed-42"), "{pane}");
    assert!(pane.contains("/dev/pts/0"), "{pane}");
    assert_eq!(code.trim(), "5", "{pane}");
}

/// A dockerd from Debian's docker.io of its own, with keel-runtime added
/// as the runtime "keel", no bridge and no iptables rules.
struct Docker {
    dir: TempDir,
    daemon: Child,
}

impl Docker {
    fn start() -> Docker {
        let dir = tempfile::Builder::new()
            .prefix("keel-docker-")
            .tempdir()
            .unwrap();
        let path = dir.path();
        let log = std::fs::File::create(path.join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("exec"))
            .arg("--pidfile")
            .arg(path.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", path.join("docker.sock").display()))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ])
            .arg("--add-runtime")
            .arg(format!("keel={KEEL_RUNTIME}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd from Debian's docker.io");
        let docker = Docker { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(30);
        while output(docker.command().arg("version")).0 != 0 {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                docker.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let tar = docker.dir.path().join("busybox.tar");
        keel_testkit::busybox_rootfs_tar(&tar).expect("busybox tarball");
        let (code, _, err) =
            output(
                docker
                    .command()
                    .args(["import", tar.to_str().unwrap(), "keel-busybox"]),
            );
        assert_eq!(code, 0, "docker import: {err}");
        docker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Debian's 20.10 client, matching the daemon.
    fn command(&self) -> Command {
        let mut command = Command::new("/usr/bin/docker");
        command.arg("--host").arg(format!(
            "unix://{}",
            self.dir.path().join("docker.sock").display()
        ));
        command
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        output(self.command().args(["run", "--runtime", "keel"]).args(args))
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers one per call: dockerd 20.10 deadlocks on several
        // (moby#42545).
        let (_, ids, _) = output(self.command().args(["ps", "--all", "--quiet"]));
        for id in ids.lines() {
            let _ = output(self.command().args(["rm", "--force", id]));
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.daemon),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_below(self.dir.path());
    }
}

#[test]
fn docker_drives_keel_runtime_through_containerd() {
    let docker = Docker::start();
    let (code, out, err) = docker.run(&[
        "--rm",
        "keel-busybox",
        "sh",
        "-c",
        "echo hi from docker; grep Seccomp: /proc/self/status; ip -o link show lo",
    ]);
    assert_eq!(code, 0, "{err}\n{}", docker.log());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi from docker");
    assert_eq!(
        lines[1], "Seccomp:\t2",
        "Docker's default seccomp profile must be loaded"
    );
    assert!(
        lines[2].contains("LOOPBACK,UP"),
        "loopback must be up, as runc leaves it: {out}"
    );

    let (code, _, _) = docker.run(&["--rm", "keel-busybox", "sh", "-c", "exit 13"]);
    assert_eq!(code, 13);
    let (code, _, err) = docker.run(&["--rm", "keel-busybox", "no-such-program"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");

    let name = unique_name("docker-web");
    let (code, _, err) = docker.run(&[
        "-d",
        "--name",
        &name,
        "keel-busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        output(
            docker
                .command()
                .args(["exec", &name, "wget", "-qO-", "http://127.0.0.1/"]),
        );
    assert_eq!((code, out.as_str()), (0, "hello from keel\n"), "{err}");
    let (code, _, err) = output(docker.command().args(["stop", "--time", "1", &name]));
    assert_eq!(code, 0, "{err}");
    let (_, out, _) =
        output(
            docker
                .command()
                .args(["inspect", "--format", "{{.State.Status}}", &name]),
        );
    assert_eq!(out.trim(), "exited");
    let (code, _, err) = output(docker.command().args(["rm", &name]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn docker_run_it_gives_an_interactive_terminal() {
    let docker = Docker::start();
    let exit_file = docker.dir.path().join("exit");
    let mut command = docker.command();
    command.args([
        "run",
        "--rm",
        "-it",
        "--runtime",
        "keel",
        "keel-busybox",
        "sh",
    ]);
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let (pane, code) = under_tmux(
        &line,
        &[
            Keys::Line("echo typed-$((6 * 7)); tty"),
            Keys::Line("exit 3"),
        ],
        &exit_file,
    );
    assert!(pane.contains("typed-42"), "{pane}");
    assert!(pane.contains("/dev/pts/0"), "{pane}");
    assert_eq!(code.trim(), "3", "{pane}");
}
