//! `system prune` (the docker CLI's and Keel's) and the prune commands
//! it runs: what goes, what stays, and what each says.

mod common;

use common::{BUSYBOX, TestDaemon};

/// What is on the daemon, by kind, sorted.
fn inventory(daemon: &TestDaemon) -> [Vec<String>; 4] {
    let list = |args: &[&str]| {
        let (code, out, err) = daemon.docker(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    [
        list(&["ps", "-a", "--format", "{{.Names}}"]),
        list(&["network", "ls", "--format", "{{.Name}}"]),
        list(&["volume", "ls", "--format", "{{.Name}}"]),
        list(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]),
    ]
}

/// A daemon holding one of everything prune takes and one of everything
/// it leaves: a stopped and a running container, an unused and a used
/// network, an anonymous and a named volume (both unused), an unused
/// tagged image, and an image made dangling by a newer one under its tag.
/// Returns the anonymous volume's name.
fn cluttered(daemon: &TestDaemon) -> String {
    let tar = daemon.busybox_tar();
    let tar = tar.to_str().unwrap();
    for (cmd, name) in [
        ("[\"sh\"]", "keel-test/old:v1"),
        ("[\"true\"]", "keel-test/old:v1"),
        ("[\"sh\"]", "keel-test/unused:v1"),
    ] {
        daemon.keel_ok(&["import", "-c", &format!("CMD {cmd}"), tar, name]);
    }
    daemon.keel_ok(&[
        "network",
        "create",
        "--subnet",
        &daemon.user_subnet(0),
        "idle",
    ]);
    daemon.keel_ok(&[
        "network",
        "create",
        "--subnet",
        &daemon.user_subnet(1),
        "busy",
    ]);
    daemon.keel_ok(&["volume", "create", "named"]);
    daemon.keel_ok(&["create", "--name", "anon", "-v", "/data", BUSYBOX, "true"]);
    let (_, anonymous, _) = daemon.docker(&["inspect", "--format", "{{json .Mounts}}", "anon"]);
    let anonymous: serde_json::Value = serde_json::from_str(&anonymous).unwrap();
    let anonymous = anonymous[0]["Name"].as_str().unwrap().to_owned();
    daemon.keel_ok(&["rm", "anon"]);
    daemon.keel_ok(&["run", "--name", "stopped", BUSYBOX, "true"]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "running",
        "--network",
        "busy",
        BUSYBOX,
        "sleep",
        "600",
    ]);
    anonymous
}

#[test]
fn docker_system_prune_all_with_volumes_takes_every_unused_thing_and_leaves_the_rest() {
    let daemon = TestDaemon::with_busybox();
    let anonymous = cluttered(&daemon);
    let (code, out, err) = daemon.docker(&["system", "prune", "-af", "--volumes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Deleted Containers:\n"), "{out}");
    assert!(out.contains("Deleted Networks:\nidle\n"), "{out}");
    assert!(
        out.contains(&format!("Deleted Volumes:\n{anonymous}\n")),
        "{out}"
    );
    assert!(out.contains("untagged: keel-test/unused:v1"), "{out}");
    assert!(out.contains("\nTotal reclaimed space: "), "{out}");
    assert_eq!(
        inventory(&daemon),
        [
            vec!["running".to_owned()],
            vec!["bridge", "busy", "host", "none"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            // Only anonymous volumes go, -a or not (docker's rule).
            vec!["named".to_owned()],
            vec![format!("{BUSYBOX}:latest")],
        ]
    );
}

#[test]
fn keel_system_prune_asks_as_docker_does_and_without_all_keeps_tagged_images() {
    let daemon = TestDaemon::with_busybox();
    cluttered(&daemon);
    let before = inventory(&daemon);
    // Both CLIs ask the same question; answered no, nothing goes.
    for args in [
        &["system", "prune"][..],
        &["system", "prune", "-a", "--volumes"],
    ] {
        let (_, docker_asked, _) = common::fed(&mut daemon.docker_command(args), "n\n");
        let (code, keel_asked, err) = common::fed(&mut daemon.keel_command(args), "n\n");
        assert_eq!(code, 0, "{err}");
        assert!(
            docker_asked.starts_with("WARNING! This will remove:\n  - all stopped containers"),
            "{docker_asked}"
        );
        assert_eq!(keel_asked, docker_asked, "{args:?}");
    }
    assert_eq!(inventory(&daemon), before);

    let (code, out, err) = daemon.keel(&["system", "prune", "-f"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Deleted Networks:\nidle\n"), "{out}");
    assert!(out.contains("Deleted Images:\ndeleted: sha256:"), "{out}");
    let [containers, networks, volumes, images] = inventory(&daemon);
    assert_eq!(containers, ["running"]);
    assert_eq!(networks, ["bridge", "busy", "host", "none"]);
    // Without --volumes no volume goes.
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    // The dangling image went; tagged ones stay without -a.
    assert_eq!(
        images,
        [
            format!("{BUSYBOX}:latest"),
            "keel-test/old:v1".to_owned(),
            "keel-test/unused:v1".to_owned()
        ]
    );

    let (code, _, err) =
        daemon.keel(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("The \"until\" filter is not supported with \"--volumes\""),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["system", "prune", "--bogus"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");
}
