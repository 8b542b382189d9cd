//! Load: 50 containers started at once, then 200 running together on a
//! 2-core machine; all listed; 100 removed by `rm -f` side by side, 100
//! stopped and removed; nothing left.

mod common;

use common::{BUSYBOX, TestDaemon};

#[test]
fn fifty_concurrent_starts_then_two_hundred_running_are_listed_stopped_and_removed() {
    let daemon = TestDaemon::with_busybox();
    let start = |i: usize| {
        daemon.keel(&[
            "run",
            "-d",
            "--name",
            &format!("load-{i}"),
            BUSYBOX,
            "sleep",
            "600",
        ])
    };
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..50).map(|i| scope.spawn(move || start(i))).collect();
        for (i, handle) in started.into_iter().enumerate() {
            let (code, _, err) = handle.join().unwrap();
            assert_eq!(code, 0, "container {i}: {err}");
        }
    });
    assert_eq!(daemon.keel_ok(&["ps", "-q"]).lines().count(), 50);
    for i in 50..200 {
        let (code, _, err) = start(i);
        assert_eq!(code, 0, "container {i}: {err}");
    }
    let listed = daemon.keel_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(
        listed.lines().filter(|l| l.ends_with(" running")).count(),
        200,
        "{listed}"
    );
    let (_, docker_listed, _) = daemon.docker(&["ps", "-q"]);
    assert_eq!(docker_listed.lines().count(), 200);

    let ids = daemon.keel_ok(&["ps", "-q", "--no-trunc"]);
    // Half killed and removed at once, 100 `rm -f` side by side (each
    // removal waits for its exit while the others' exits are recorded);
    // half stopped, then removed.
    let daemon = &daemon;
    std::thread::scope(|scope| {
        let removed: Vec<_> = (0..100)
            .map(|i| scope.spawn(move || daemon.keel(&["rm", "-f", &format!("load-{i}")])))
            .collect();
        for (i, handle) in removed.into_iter().enumerate() {
            let (code, _, err) = handle.join().unwrap();
            assert_eq!(code, 0, "rm -f load-{i}: {err}");
        }
    });
    let names: Vec<String> = (100..200).map(|i| format!("load-{i}")).collect();
    let mut stop = vec!["stop", "-t", "0"];
    stop.extend(names.iter().map(String::as_str));
    assert_eq!(daemon.keel_ok(&stop).lines().count(), 100);
    assert_eq!(daemon.keel_ok(&["ps", "-q"]), "", "none runs");
    let mut remove = vec!["rm"];
    remove.extend(names.iter().map(String::as_str));
    assert_eq!(daemon.keel_ok(&remove).lines().count(), 100);
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    let snapshots = std::fs::read_dir(daemon.root().join("image/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 0, "every read/write layer removed");
    let containers = std::fs::read_dir(daemon.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0, "every container directory removed");
    for id in ids.lines() {
        for controller in ["pids", "memory", "cpu"] {
            let cgroup = format!("/sys/fs/cgroup/{controller}/keel/{id}");
            assert!(
                !std::path::Path::new(&cgroup).exists(),
                "{cgroup} left behind"
            );
        }
    }
}
