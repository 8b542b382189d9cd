//! compose v2 (the docker CLI's `docker compose` plugin) against Keel's
//! socket.

mod common;

use std::fs;

use common::{BUSYBOX, TestDaemon};

/// Fails the test unless the docker CLI has compose v2, which
/// scripts/install-deps installs.
fn assert_compose_is_installed(daemon: &TestDaemon) {
    let (code, out, err) = daemon.docker(&["compose", "version"]);
    assert!(
        code == 0 && out.starts_with("Docker Compose version v2."),
        "docker compose is missing: install compose v2 (scripts/install-deps): {out}{err}"
    );
}

#[test]
fn compose_v2_builds_a_services_image_with_the_classic_builder() {
    // The daemon is the test's own: its containers go with it and its
    // images with its root, even when an assertion fails.
    let daemon = TestDaemon::with_busybox();
    assert_compose_is_installed(&daemon);
    let pid = std::process::id();
    let project = format!("keel-compose-{pid}");
    let image = format!("keel-test/compose-app-{pid}:built");

    let dir = daemon.path("project");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("compose.yaml"),
        format!("services:\n  app:\n    build: .\n    image: {image}\n"),
    )
    .unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY greeting /greeting\nCMD [\"cat\", \"/greeting\"]\n"),
    )
    .unwrap();
    fs::write(dir.join("greeting"), "hello from compose\n").unwrap();

    let mut compose = daemon.docker_command(&["compose", "-p", &project, "build"]);
    compose.current_dir(&dir).env("DOCKER_BUILDKIT", "0");
    let (code, out, err) = common::output(&mut compose);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());
    // The classic builder's output, passed through by compose.
    assert!(
        out.contains(&format!("Successfully tagged {image}")),
        "{out}"
    );

    // The image is in Keel, with the label compose asks the build for.
    let (code, inspected, err) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}|{{index .Config.Labels \"com.docker.compose.image.builder\"}}",
        &image,
    ]);
    assert_eq!(code, 0, "{err}");
    let (id, builder) = inspected.trim_end().split_once('|').unwrap();
    assert!(id.starts_with("sha256:"), "{inspected}");
    assert_eq!(builder, "classic", "{inspected}");

    let (code, run, err) = daemon.docker(&["run", "--rm", &image]);
    assert_eq!((code, run.as_str()), (0, "hello from compose\n"), "{err}");
}
