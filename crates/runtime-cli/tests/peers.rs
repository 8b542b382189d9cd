//! Podman and Docker (Debian's packages) drive keel-runtime as they drive
//! runc. Each test has its own storage root, socket and state, uses no
//! network (`--network none`, a dockerd without bridge or iptables), and
//! stops only the processes it started.

mod common;

use std::path::Path;

use common::unique_name;
use keel_testkit::docker::Docker;
use keel_testkit::podman::{Podman, output};
use keel_testkit::tmux::{Keys, under_tmux};

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

/// A dockerd of the test's own with keel-runtime added as "keel".
fn docker() -> Docker {
    Docker::start(&[("keel", Path::new(KEEL_RUNTIME))])
}

/// `docker run --runtime keel ARGS`.
fn docker_run(docker: &Docker, args: &[&str]) -> (i32, String, String) {
    output(
        docker
            .command()
            .args(["run", "--runtime", "keel"])
            .args(args),
    )
}

#[test]
fn docker_drives_keel_runtime_through_containerd() {
    let docker = docker();
    let (code, out, err) = docker_run(
        &docker,
        &[
            "--rm",
            "keel-busybox",
            "sh",
            "-c",
            "echo hi from docker; grep Seccomp: /proc/self/status; ip -o link show lo",
        ],
    );
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

    let (code, _, _) = docker_run(&docker, &["--rm", "keel-busybox", "sh", "-c", "exit 13"]);
    assert_eq!(code, 13);
    let (code, _, err) = docker_run(&docker, &["--rm", "keel-busybox", "no-such-program"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");

    let name = unique_name("docker-web");
    let (code, _, err) = docker_run(
        &docker,
        &[
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
        ],
    );
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
    let docker = docker();
    let exit_file = docker.dir().join("exit");
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
