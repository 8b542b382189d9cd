//! `exec` into a running container, and terminals handed over a console
//! socket, as containerd's shim and conmon use them.

mod common;

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime, text, unique_name};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

fn running<'a>(runtime: &'a Runtime, bundle: &Bundle, id: &str) -> common::Container<'a> {
    let container = runtime.create(bundle, id);
    container.start();
    container
}

#[test]
fn exec_runs_in_the_containers_namespaces_cgroup_and_root() {
    let runtime = Runtime::new();
    let id = unique_name("exec");
    let mut bundle = Bundle::busybox(&id, &["sleep", "100"]);
    bundle.edit(|spec| {
        spec.set_hostname(Some("exec-box".into()));
    });
    let container = running(&runtime, &bundle, &id);
    let (code, out, err) = container.exec(&[
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline; echo; cat /proc/self/cgroup | grep pids; ls /www",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exec-box");
    assert_eq!(
        lines[1], "sleep\x00100\x00",
        "pid 1 must be the container's init"
    );
    assert!(
        lines[2].starts_with("8:pids:") || lines[2].contains("pids:"),
        "{out}"
    );
    assert!(lines[2].ends_with(&id) || lines[2].ends_with(":/"), "{out}");
    assert_eq!(lines[3], "index.html");
}

#[test]
fn exec_passes_the_exit_code_through() {
    let runtime = Runtime::new();
    let id = unique_name("execcode");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = running(&runtime, &bundle, &id);
    let (code, _, _) = container.exec(&["sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
}

#[test]
fn exec_takes_a_whole_process_from_a_file() {
    let runtime = Runtime::new();
    let id = unique_name("execproc");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    // Deleted when the guard drops at the end of the test.
    let _container = running(&runtime, &bundle, &id);
    let process = bundle.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "args": ["sh", "-c", "id -u; echo $GREETING; pwd"],
            "env": ["PATH=/bin", "GREETING=hi from exec"],
            "cwd": "/tmp",
            "user": {"uid": 1000, "gid": 1000}
        })
        .to_string(),
    )
    .unwrap();
    let out = runtime.output(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1000\nhi from exec\n/tmp\n");
}

#[test]
fn exec_of_a_missing_program_says_so_and_leaves_no_process() {
    let runtime = Runtime::new();
    let id = unique_name("execmissing");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = running(&runtime, &bundle, &id);
    let (code, _, err) = container.exec(&["no-such-program"]);
    assert_ne!(code, 0);
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let out = runtime.output(&["ps", "--format", "json", &id]);
    assert_eq!(
        serde_json::from_slice::<Vec<i32>>(&out.stdout)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_detached_exec_writes_its_pid_and_keeps_running() {
    let runtime = Runtime::new();
    let id = unique_name("execdetach");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = running(&runtime, &bundle, &id);
    let pid_file = bundle.path().join("exec.pid");
    let out = runtime.output(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\x0050\x00");
    let out = runtime.output(&["ps", "--format", "json", &id]);
    assert!(
        serde_json::from_slice::<Vec<i32>>(&out.stdout)
            .unwrap()
            .contains(&pid)
    );
    drop(container);
}

/// Accepts one connection on the console socket and receives the pty
/// master that keel-runtime sends, as conmon and containerd do.
fn receive_console(listener: &UnixListener) -> OwnedFd {
    let (stream, _) = listener.accept().expect("keel-runtime connects");
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 64];
    rustix::net::recvmsg(
        &stream,
        &mut [std::io::IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::empty(),
    )
    .expect("recvmsg");
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return fd;
        }
    }
    panic!("no fd came over the console socket");
}

/// Reads from the pty master until `wanted` shows up or time runs out.
fn read_until(master: &mut std::fs::File, wanted: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1024];
    while !seen.contains(wanted) && Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

#[test]
fn a_terminal_is_handed_over_the_console_socket_and_drives_a_shell() {
    let runtime = Runtime::new();
    let id = unique_name("tty");
    let mut bundle = Bundle::busybox(&id, &["sh"]);
    bundle.edit(|spec| {
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_terminal(Some(true));
    });
    let socket = bundle.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    let out = runtime.output(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let container = common::Container {
        runtime: &runtime,
        id: id.clone(),
    };
    let mut master = std::fs::File::from(receiver.join().unwrap());
    container.start();
    master.write_all(b"tty; echo $((6 * 7))\n").unwrap();
    let seen = read_until(&mut master, "42");
    assert!(seen.contains("/dev/pts/0"), "{seen}");
    assert!(seen.contains("42"), "{seen}");
    master.write_all(b"exit\n").unwrap();
    container.wait_stopped();
}

#[test]
fn exec_with_a_terminal_gets_its_own_pty() {
    let runtime = Runtime::new();
    let id = unique_name("exectty");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = running(&runtime, &bundle, &id);
    let socket = bundle.path().join("exec-console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    let mut child = runtime
        .command()
        .args([
            "exec",
            "--tty",
            "--console-socket",
            socket.to_str().unwrap(),
            &id,
            "sh",
        ])
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(receiver.join().unwrap());
    master
        .write_all(b"[ -t 0 ] && echo interactive-$((2 + 3)); exit 4\n")
        .unwrap();
    let seen = read_until(&mut master, "interactive-5");
    assert!(seen.contains("interactive-5"), "{seen}");
    assert_eq!(child.wait().unwrap().code(), Some(4));
    drop(container);
}
