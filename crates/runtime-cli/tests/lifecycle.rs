//! The OCI lifecycle (creating, created, running, stopped) and which
//! operations each state allows, as runc behaves.

mod common;

use common::{Bundle, Runtime, text, unique_name};

#[test]
fn a_container_goes_from_created_to_running_to_stopped_and_is_deleted() {
    let runtime = Runtime::new();
    let id = unique_name("life");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let pid_file = bundle.path().join("init.pid");
    let out = runtime.output(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let guard = common::Container {
        runtime: &runtime,
        id: id.clone(),
    };

    let state = runtime.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap());
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // Before start the init is the runtime's own code, not the process.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(comm.contains("keel-runtime"), "{comm}");

    guard.start();
    assert_eq!(guard.status(), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(comm, "sleep\x00100\x00");

    let out = runtime.output(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    guard.wait_stopped();
    assert_eq!(runtime.state(&id)["pid"], 0);

    let out = runtime.output(&["delete", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!runtime.root().join(&id).exists());
    assert!(!common::v1_cgroup("memory", &id).exists());
    let out = runtime.output(&["state", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_running_container_is_only_deleted_with_force() {
    let runtime = Runtime::new();
    let id = unique_name("force");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = runtime.create(&bundle, &id);
    container.start();
    let pid = container.pid();

    let out = runtime.output(&["delete", &id]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("it is running") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        container.status(),
        "running",
        "a refused delete must not touch the container"
    );

    let out = runtime.output(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid));
    assert!(!runtime.root().join(&id).exists());
    assert!(!common::v1_cgroup("pids", &id).exists());
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn a_created_container_can_be_killed_and_deleted_as_with_runc() {
    let runtime = Runtime::new();
    let id = unique_name("created");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = runtime.create(&bundle, &id);
    // Deleting a created (not started) container needs no --force in runc,
    // and containerd's shim relies on that.
    let out = runtime.output(&["delete", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!runtime.root().join(&id).exists());
    drop(container);

    let id = unique_name("created-kill");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = runtime.create(&bundle, &id);
    let out = runtime.output(&["kill", &id, "SIGKILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    container.wait_stopped();
}

#[test]
fn stopped_and_started_containers_refuse_what_their_state_forbids() {
    let runtime = Runtime::new();
    let id = unique_name("states");
    let bundle = Bundle::busybox(&id, &["true"]);
    let container = runtime.create(&bundle, &id);
    container.start();
    container.wait_stopped();

    let out = runtime.output(&["start", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot start container"),
        "{}",
        text(&out.stderr)
    );
    let out = runtime.output(&["kill", &id, "TERM"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("it is stopped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_passes_the_exit_code_through_and_leaves_nothing() {
    let runtime = Runtime::new();
    let id = unique_name("exitcode");
    let bundle = Bundle::busybox(&id, &["sh", "-c", "echo out; echo err >&2; exit 42"]);
    let (code, out, err) = runtime.run(&bundle, &id);
    assert_eq!((code, out.as_str(), err.as_str()), (42, "out\n", "err\n"));
    assert!(!runtime.root().join(&id).exists());
    assert!(!common::v1_cgroup("memory", &id).exists());
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let runtime = Runtime::new();
    let id = unique_name("pause");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let container = runtime.create(&bundle, &id);
    container.start();
    assert!(runtime.output(&["pause", &id]).status.success());
    assert_eq!(container.status(), "paused");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", container.pid())).unwrap();
    assert!(stat.contains(") D ") || stat.contains(") S "), "{stat}");
    assert!(runtime.output(&["resume", &id]).status.success());
    assert_eq!(container.status(), "running");
}

#[test]
fn ps_lists_the_containers_processes() {
    let runtime = Runtime::new();
    let id = unique_name("ps");
    let bundle = Bundle::busybox(&id, &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let container = runtime.create(&bundle, &id);
    container.start();
    let mut pids = Vec::new();
    for _ in 0..100 {
        let out = runtime.output(&["ps", "--format", "json", &id]);
        pids = serde_json::from_slice::<Vec<i32>>(&out.stdout).unwrap();
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pids.len(), 3, "sh and two sleeps: {pids:?}");
    assert!(pids.contains(&container.pid()));
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    let runtime = Runtime::new();
    let id = unique_name("killall");
    // The shell ignores TERM; only --all reaches the sleeps too.
    let bundle = Bundle::busybox(
        &id,
        &["sh", "-c", "trap '' TERM; sleep 100 & sleep 100 & wait"],
    );
    let container = runtime.create(&bundle, &id);
    container.start();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = runtime.output(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    container.wait_stopped();
    let out = runtime.output(&["ps", "--format", "json", &id]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}
