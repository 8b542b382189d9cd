//! `docker update`, docker-py's `Container.update()` and `keel update`
//! against `POST /containers/{id}/update`: new limits reach a running
//! container's cgroup and its record (inspect, a restart), a new restart
//! policy is kept, and what Docker refuses changes nothing.

mod common;

use std::process::Command;

use common::TestDaemon;

const IMAGE: &str = common::BUSYBOX;
const MEMORY: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
const MEMORY_AND_SWAP: &str = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
const PIDS: &str = "/sys/fs/cgroup/pids/pids.max";

/// A field of the container's inspect, through the docker CLI.
fn inspected(daemon: &TestDaemon, name: &str, field: &str) -> String {
    let (code, out, err) = daemon.docker(&["inspect", "-f", &format!("{{{{{field}}}}}"), name]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

/// A cgroup file as the container reads it (v1: its own groups are
/// mounted at /sys/fs/cgroup).
fn cgroup_file(daemon: &TestDaemon, name: &str, file: &str) -> String {
    let (code, out, err) = daemon.docker(&["exec", name, "cat", file]);
    assert_eq!(code, 0, "{file}: {err}");
    out.trim().to_owned()
}

fn python(daemon: &TestDaemon, body: &str) -> (i32, String, String) {
    let script = format!(
        "import docker\nclient = docker.DockerClient(base_url=\"unix://{}\", version=\"auto\")\n{body}",
        daemon.socket().display()
    );
    common::output(Command::new("python3").args(["-c", &script]))
}

#[test]
fn docker_update_sets_a_running_containers_limits_and_a_restart_keeps_them() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    let (code, out, err) = daemon.docker(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "20",
        "box",
    ]);
    assert_eq!((code, out.as_str()), (0, "box\n"), "{err}");
    assert_eq!(inspected(&daemon, "box", ".HostConfig.Memory"), "67108864");
    assert_eq!(
        inspected(&daemon, "box", ".HostConfig.MemorySwap"),
        "134217728"
    );
    assert_eq!(inspected(&daemon, "box", ".HostConfig.PidsLimit"), "20");
    assert_eq!(cgroup_file(&daemon, "box", MEMORY), "67108864");
    assert_eq!(cgroup_file(&daemon, "box", MEMORY_AND_SWAP), "134217728");
    assert_eq!(cgroup_file(&daemon, "box", PIDS), "20");
    // The record has them: a new start of the container sets them again.
    let (code, _, err) = daemon.docker(&["restart", "-t", "0", "box"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cgroup_file(&daemon, "box", MEMORY), "67108864");
    assert_eq!(cgroup_file(&daemon, "box", PIDS), "20");
    // -1 lifts the pids limit.
    let (code, _, err) = daemon.docker(&["update", "--pids-limit", "-1", "box"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cgroup_file(&daemon, "box", PIDS), "max");
    assert_eq!(cgroup_file(&daemon, "box", MEMORY), "67108864");
}

#[test]
fn a_stopped_containers_update_is_kept_for_its_next_start_with_its_restart_policy() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "later", IMAGE, "sleep", "600"]);
    let (code, out, err) = daemon.docker(&[
        "update",
        "--restart",
        "always",
        "--cpu-shares",
        "512",
        "--cpus",
        "0.5",
        "later",
    ]);
    assert_eq!((code, out.as_str()), (0, "later\n"), "{err}");
    assert_eq!(
        inspected(&daemon, "later", ".HostConfig.RestartPolicy.Name"),
        "always"
    );
    assert_eq!(inspected(&daemon, "later", ".HostConfig.CpuShares"), "512");
    assert_eq!(
        inspected(&daemon, "later", ".HostConfig.NanoCpus"),
        "500000000"
    );
    daemon.keel_ok(&["start", "later"]);
    assert_eq!(
        cgroup_file(&daemon, "later", "/sys/fs/cgroup/cpu/cpu.shares"),
        "512"
    );
    assert_eq!(
        cgroup_file(&daemon, "later", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        "50000"
    );
    // `always` brings it back after it is killed.
    let pid = inspected(&daemon, "later", ".State.Pid");
    daemon.keel_ok(&["kill", "later"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while inspected(&daemon, "later", ".RestartCount") == "0" {
        assert!(std::time::Instant::now() < deadline, "never restarted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ne!(inspected(&daemon, "later", ".State.Pid"), pid);
}

#[test]
fn docker_py_updates_the_memory_limit() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "py", IMAGE, "sleep", "600"]);
    let (code, out, err) = python(
        &daemon,
        "box = client.containers.get('py')\n\
         print(box.update(mem_limit='96m', memswap_limit='192m'))\n\
         box.reload()\n\
         print(box.attrs['HostConfig']['Memory'])",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "{'Warnings': None}\n100663296\n"),
        "{err}"
    );
    assert_eq!(cgroup_file(&daemon, "py", MEMORY), "100663296");
}

#[test]
fn what_docker_refuses_is_refused_in_its_words_and_changes_nothing() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--cpu-quota",
        "50000",
        IMAGE,
        "sleep",
        "600",
    ]);
    let (code, _, err) = daemon.docker(&["update", "-m", "64m", "--memory-swap", "128m", "box"]);
    assert_eq!(code, 0, "{err}");
    let id = inspected(&daemon, "box", ".Id");
    let refused = [
        (
            vec!["--memory", "1k"],
            "Minimum memory limit allowed is 6MB".to_owned(),
        ),
        (
            // Memory alone over the swap limit already set: a conflict
            // with the container, which Docker names.
            vec!["--memory", "256m"],
            format!(
                "Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
            ),
        ),
        (
            vec!["--cpus", "0.5"],
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .to_owned(),
        ),
        (
            // The pids limit would be fine: nothing of a refused update is
            // kept.
            vec!["--pids-limit", "10", "--cpuset-cpus", "0-4096"],
            "Requested CPUs are not available - requested 0-4096".to_owned(),
        ),
        (
            vec!["--restart", "sometimes"],
            "invalid restart policy: unknown policy 'sometimes'".to_owned(),
        ),
    ];
    for (flags, words) in &refused {
        let mut args = vec!["update"];
        args.extend(flags);
        args.push("box");
        let (code, out, err) = daemon.docker(&args);
        assert_ne!(code, 0, "docker {args:?}: {out}");
        assert!(
            err.starts_with("Error response from daemon: ") && err.contains(words.as_str()),
            "docker {args:?}: {err}"
        );
        let (code, _, err) = daemon.keel(&args);
        assert_ne!(code, 0, "keel {args:?}");
        assert!(err.contains(words.as_str()), "keel {args:?}: {err}");
    }
    assert_eq!(inspected(&daemon, "box", ".HostConfig.Memory"), "67108864");
    assert_eq!(inspected(&daemon, "box", ".HostConfig.PidsLimit"), "<nil>");
    assert_eq!(inspected(&daemon, "box", ".HostConfig.NanoCpus"), "0");
    assert_eq!(cgroup_file(&daemon, "box", MEMORY), "67108864");
    assert_eq!(cgroup_file(&daemon, "box", PIDS), "max");
    // A --rm container keeps its policy: Docker's conflict, with its id.
    daemon.keel_ok(&["run", "-d", "--rm", "--name", "gone", IMAGE, "sleep", "600"]);
    let id = inspected(&daemon, "gone", ".Id");
    let (code, _, err) = daemon.docker(&["update", "--restart", "always", "gone"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("Cannot update container {id}: Restart policy cannot be updated because AutoRemove is enabled for the container")),
        "{err}"
    );
    assert_eq!(
        inspected(&daemon, "gone", ".HostConfig.RestartPolicy.Name"),
        "no"
    );
    let (code, _, err) = daemon.docker(&["update", "-m", "64m", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn keel_update_prints_each_container_and_needs_a_flag() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "one", IMAGE, "sleep", "600"]);
    daemon.keel_ok(&["create", "--name", "two", IMAGE, "sleep", "600"]);
    let since = common::unix_now();
    assert_eq!(
        daemon.keel_ok(&[
            "update",
            "-m",
            "32m",
            "--memory-swap",
            "-1",
            "--memory-reservation",
            "16m",
            "one",
            "two"
        ]),
        "one\ntwo\n"
    );
    let until = common::unix_now();
    for name in ["one", "two"] {
        assert_eq!(inspected(&daemon, name, ".HostConfig.Memory"), "33554432");
        assert_eq!(inspected(&daemon, name, ".HostConfig.MemorySwap"), "-1");
        assert_eq!(
            inspected(&daemon, name, ".HostConfig.MemoryReservation"),
            "16777216"
        );
    }
    assert_eq!(cgroup_file(&daemon, "one", MEMORY), "33554432");
    assert_eq!(
        cgroup_file(
            &daemon,
            "one",
            "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes"
        ),
        "16777216"
    );
    assert_eq!(
        daemon.events_of(
            &since,
            &until,
            "container",
            "{{.Action}} {{.Actor.Attributes.name}}"
        ),
        "update one\nupdate two\n"
    );
    // A kernel without block I/O weights (no CFQ or BFQ) gets Docker's
    // warning, and the weight is not kept.
    let weighs = ["blkio.weight", "blkio.bfq.weight"].iter().any(|file| {
        std::path::Path::new("/sys/fs/cgroup/blkio")
            .join(file)
            .exists()
    });
    let out = daemon.keel_ok(&["update", "--blkio-weight", "300", "two"]);
    match weighs {
        true => assert_eq!(out, "two\n"),
        false => assert_eq!(
            out,
            "two\nYour kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n"
        ),
    }
    assert_eq!(
        inspected(&daemon, "two", ".HostConfig.BlkioWeight"),
        if weighs { "300" } else { "0" }
    );
    // A name that fails does not stop the others; the command fails.
    let (code, out, err) = daemon.keel(&["update", "--cpu-shares", "256", "nope", "two"]);
    assert_eq!((code, out.as_str()), (1, "two\n"), "{err}");
    assert!(err.contains("No such container: nope"), "{err}");
    let (code, _, err) = daemon.keel(&["update", "two"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("you must provide one or more flags when using this command"),
        "{err}"
    );
}
