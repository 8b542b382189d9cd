//! Interactive containers and exec, on the real kernel: stdin piped into
//! `run -i` and `exec -i`, terminals under tmux (`-it`, window size, exit
//! codes, the detach keys), exec's exit codes, through keel, the docker CLI
//! and docker-py.

mod common;

use common::{TestDaemon, fed};
use keel_testkit::tmux::{Keys, under_tmux};

const IMAGE: &str = common::BUSYBOX;

#[test]
fn stdin_piped_into_run_i_and_exec_i_reaches_the_process_and_ends_with_it() {
    let daemon = TestDaemon::with_busybox();
    let input = "first line\nsecond line\n";
    for mut command in [
        daemon.keel_command(&["run", "-i", "--rm", IMAGE, "cat"]),
        daemon.docker_command(&["run", "-i", "--rm", IMAGE, "cat"]),
    ] {
        let (code, out, err) = fed(&mut command, input);
        assert_eq!((code, out.as_str()), (0, input), "{err}");
    }
    daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    for mut command in [
        daemon.keel_command(&["exec", "-i", "box", "wc", "-l"]),
        daemon.docker_command(&["exec", "-i", "box", "wc", "-l"]),
    ] {
        let (code, out, err) = fed(&mut command, input);
        assert_eq!((code, out.trim()), (0, "2"), "{err}");
    }
    // Without -i the container's stdin is empty, not ours.
    let (code, out, err) = fed(
        &mut daemon.keel_command(&["run", "--rm", IMAGE, "cat"]),
        input,
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn exec_i_output_reaches_the_client_when_the_process_ends_before_its_input_does() {
    let daemon = TestDaemon::with_busybox();
    let id = daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    let hostname = format!("{}\n", &id[..12]);
    // The input is empty: its end is passed on to a monitor that may have
    // gone with hostname already, a race each time, so run it many.
    for _ in 0..40 {
        let (code, out, err) = daemon.docker(&["exec", "-i", "box", "hostname"]);
        assert_eq!((code, out.as_str()), (0, hostname.as_str()), "{err}");
    }
}

#[test]
fn exec_i_and_run_i_end_cleanly_when_the_process_never_reads_its_input() {
    let daemon = TestDaemon::with_busybox();
    let id = daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    let hostname = format!("{}\n", &id[..12]);
    // Input still unread when the daemon lets go of the connection would
    // reset it under the client: a race each time, so run it many.
    let input = "never read\n".repeat(400);
    for _ in 0..40 {
        let exec = &mut daemon.docker_command(&["exec", "-i", "box", "hostname"]);
        let (code, out, err) = fed(exec, &input);
        assert_eq!((code, out.as_str()), (0, hostname.as_str()), "{err}");
        let run = &mut daemon.docker_command(&["run", "-i", "--rm", IMAGE, "hostname"]);
        let (code, out, err) = fed(run, &input);
        assert_eq!((code, out.trim_end().len()), (0, 12), "{out}{err}");
    }
}

#[test]
fn exec_runs_in_a_running_container_and_passes_on_exit_codes() {
    let mut daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    for (client, run) in [
        (
            "keel",
            &(|a: &[&str]| daemon.keel(a)) as &dyn Fn(&[&str]) -> common::Output,
        ),
        ("docker", &|a: &[&str]| daemon.docker(a)),
    ] {
        let (code, out, err) = run(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/etc",
            "-u",
            "1000",
            "box",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u); echo oops >&2; exit 7",
        ]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (7, "1 /etc 1000\n", "oops\n"),
            "{client}"
        );
        let (code, _, err) = run(&["exec", "box", "no-such-program"]);
        assert_eq!(code, 127, "{client}: {err}");
        assert!(
            err.contains("no-such-program") || err.is_empty(),
            "{client}: {err}"
        );
        let marker = format!("/tmp/{client}-detached");
        let (code, _, err) = run(&["exec", "-d", "box", "touch", &marker]);
        assert_eq!(code, 0, "{client}: {err}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while daemon
        .keel(&[
            "exec",
            "box",
            "ls",
            "/tmp/keel-detached",
            "/tmp/docker-detached",
        ])
        .0
        != 0
    {
        assert!(std::time::Instant::now() < deadline, "detached execs ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The container's monitor serves execs across a daemon restart.
    daemon.restart();
    assert_eq!(daemon.keel_ok(&["exec", "box", "echo", "after"]), "after\n");
    daemon.keel_ok(&["stop", "-t", "0", "box"]);
    let (code, _, err) = daemon.keel(&["exec", "box", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not running"), "{err}");
}

/// `client run -it` under tmux: a terminal of the window's size, TERM set,
/// and the shell's exit code passed on.
fn check_terminal_session(daemon: &TestDaemon, client: &str) {
    let env = match client {
        "keel" => format!("KEEL_HOST=unix://{}", daemon.socket().display()),
        _ => format!(
            "DOCKER_HOST=unix://{} DOCKER_CONFIG={}",
            daemon.socket().display(),
            daemon.path("docker-config").display()
        ),
    };
    let program = match client {
        "keel" => common::KEEL,
        _ => common::DOCKER,
    };
    let exit_file = daemon.path(&format!("{client}-run-exit"));
    let (pane, code) = under_tmux(
        &format!("{env} {program} run -it --rm {IMAGE} sh"),
        &[
            Keys::Line("echo typed-$((6 * 7)); stty size; tty; echo $TERM"),
            Keys::Line("exit 3"),
        ],
        &exit_file,
    );
    assert!(pane.contains("typed-42"), "{client}: {pane}");
    assert!(pane.contains("30 120"), "{client}: window size: {pane}");
    assert!(pane.contains("/dev/pts/0"), "{client}: {pane}");
    assert!(pane.contains("xterm"), "{client}: {pane}");
    assert_eq!(code.trim(), "3", "{client}: {pane}");

    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{client}-box"),
        IMAGE,
        "sleep",
        "600",
    ]);
    let exit_file = daemon.path(&format!("{client}-exec-exit"));
    let (pane, code) = under_tmux(
        &format!("{env} {program} exec -it {client}-box sh"),
        &[Keys::Line("echo in-$((6 * 7)); tty"), Keys::Line("exit 4")],
        &exit_file,
    );
    assert!(pane.contains("in-42"), "{client}: {pane}");
    assert!(pane.contains("/dev/pts/"), "{client}: {pane}");
    assert_eq!(code.trim(), "4", "{client}: {pane}");
}

#[test]
fn run_it_and_exec_it_are_terminals_under_keel() {
    let daemon = TestDaemon::with_busybox();
    check_terminal_session(&daemon, "keel");
}

#[test]
fn run_it_and_exec_it_are_terminals_under_the_docker_cli() {
    let daemon = TestDaemon::with_busybox();
    check_terminal_session(&daemon, "docker");
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_leaves_the_container_running() {
    let daemon = TestDaemon::with_busybox();
    let exit_file = daemon.path("detach-exit");
    let (pane, code) = under_tmux(
        &format!(
            "KEEL_HOST=unix://{} {} run -it --name detached {IMAGE} sh",
            daemon.socket().display(),
            common::KEEL
        ),
        &[
            Keys::Line("echo before"),
            Keys::Raw("C-p"),
            Keys::Raw("C-q"),
        ],
        &exit_file,
    );
    assert_eq!(code.trim(), "0", "{pane}");
    assert_eq!(
        daemon.keel_ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "detached running\n"
    );
    // Still a shell that answers.
    let (code, out, _) = fed(
        &mut daemon.keel_command(&["exec", "-i", "detached", "sh"]),
        "echo still here\n",
    );
    assert_eq!((code, out.as_str()), (0, "still here\n"));
}

#[test]
fn docker_py_runs_lists_logs_and_execs_containers() {
    let daemon = TestDaemon::with_busybox();
    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}", version="auto")
print(client.containers.run("{IMAGE}", ["echo", "hi from py"], remove=True).decode(), end="")
box = client.containers.run("{IMAGE}", ["sh", "-c", "echo started; sleep 600"], detach=True, name="pybox")
print([c.name for c in client.containers.list()])
code, out = box.exec_run(["sh", "-c", "echo exec out; exit 3"])
print(code, out.decode(), end="")
import time
for _ in range(100):
    if box.logs() == b"started\n":
        break
    time.sleep(0.05)
print(box.logs().decode(), end="")
box.remove(force=True)
print(client.containers.list(all=True))
"#,
        socket = daemon.socket().display(),
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "hi from py\n['pybox']\n3 exec out\nstarted\n[]\n",
        "{err}"
    );
}

/// Everything a WebSocket attachment (tungstenite's client) to container
/// `name` carries until it closes, at API `version` with `query`, after
/// sending `input` as one binary message.
fn over_websocket(
    daemon: &TestDaemon,
    version: &str,
    name: &str,
    query: &str,
    input: &[u8],
) -> Vec<u8> {
    use tungstenite::Message;
    let stream = std::os::unix::net::UnixStream::connect(daemon.socket()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let url = format!("ws://localhost{version}/containers/{name}/attach/ws?{query}");
    let (mut socket, response) = tungstenite::client(url.as_str(), stream).unwrap();
    assert_eq!(response.status(), 101);
    if !input.is_empty() {
        socket.send(Message::binary(input.to_vec())).unwrap();
    }
    let mut got = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Binary(bytes)) => got.extend_from_slice(&bytes),
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(error) => panic!(
                "attach/ws: {error}; so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    got
}

#[test]
fn attach_over_a_websocket_carries_raw_output_and_takes_input() {
    let daemon = TestDaemon::with_busybox();
    // Each speaks only once it has read a line, which the test sends
    // through the WebSocket: none of its output can come before the
    // attachment.
    let script = "read line; echo \"got $line\"; echo to-stderr >&2";
    for name in ["talk", "old", "picky"] {
        daemon.keel_ok(&["run", "-d", "-i", "--name", name, IMAGE, "sh", "-c", script]);
    }
    let talk = over_websocket(
        &daemon,
        "/v1.47",
        "talk",
        "stream=1&stdin=1&stdout=1&stderr=1",
        b"hello\n",
    );
    // Unframed: no 8-byte stream headers, both streams in order.
    assert_eq!(String::from_utf8_lossy(&talk), "got hello\nto-stderr\n");
    // Before API 1.42 the streams are all three whatever the query says;
    // from 1.42 only those asked for.
    let old = over_websocket(&daemon, "/v1.41", "old", "stream=1", b"hi\n");
    assert_eq!(String::from_utf8_lossy(&old), "got hi\nto-stderr\n");
    let picky = over_websocket(
        &daemon,
        "/v1.47",
        "picky",
        "stream=1&stdin=1&stderr=1",
        b"hi\n",
    );
    assert_eq!(String::from_utf8_lossy(&picky), "to-stderr\n");

    // A request that is no WebSocket handshake is refused, naming what is
    // missing.
    let (code, out, err) = common::output(std::process::Command::new("curl").args([
        "-s",
        "--unix-socket",
        daemon.socket().to_str().unwrap(),
        "-w",
        "\n%{http_code}",
        "http://localhost/v1.47/containers/talk/attach/ws?stream=1",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("\n400"), "{out}");
    assert!(out.contains("Sec-WebSocket-Key"), "{out}");
}
