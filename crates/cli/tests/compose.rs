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

/// A project of `api` and `worker` (each saying who it is) in a directory
/// of its own, on the test's user subnet `n`.
fn write_project(daemon: &TestDaemon, project: &str, n: u32) {
    let dir = daemon.path(project);
    fs::create_dir(&dir).unwrap();
    let service = |name: &str| {
        format!(
            "  {name}:\n    image: {BUSYBOX}\n    command: [\"sh\", \"-c\", \"echo I am {project}-{name}; sleep 3600\"]\n    stop_grace_period: 1s\n"
        )
    };
    // A subnet of the test's own: compose's default network would take
    // one of Docker's pools, which other tests' daemons share.
    let subnet = daemon.user_subnet(n);
    fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n{}{}networks:\n  default:\n    ipam:\n      config:\n        - subnet: {subnet}\n",
            service("api"),
            service("worker")
        ),
    )
    .unwrap();
}

/// `docker compose -p project args` in the project's directory.
fn compose(daemon: &TestDaemon, project: &str, args: &[&str]) -> common::Output {
    let mut command = daemon.docker_command(&["compose", "-p", project]);
    command.args(args).current_dir(daemon.path(project));
    common::output(&mut command)
}

/// The names and ids of the running containers, sorted by name.
fn running(daemon: &TestDaemon) -> Vec<(String, String)> {
    let (code, out, err) = daemon.docker(&["ps", "--no-trunc", "--format", "{{.Names}} {{.ID}}"]);
    assert_eq!(code, 0, "{err}");
    let mut running: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let (name, id) = l.split_once(' ').unwrap();
            (name.to_owned(), id.to_owned())
        })
        .collect();
    running.sort();
    running
}

#[test]
fn compose_projects_with_the_same_service_names_keep_to_their_own_containers() {
    let daemon = TestDaemon::with_busybox();
    assert_compose_is_installed(&daemon);
    let pid = std::process::id();
    let (a, b) = (format!("keel-a-{pid}"), format!("keel-b-{pid}"));
    write_project(&daemon, &a, 0);
    write_project(&daemon, &b, 1);

    let (code, out, err) = compose(&daemon, &a, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());
    let of_a = running(&daemon);
    let names = |project: &str| [format!("{project}-api-1"), format!("{project}-worker-1")];
    assert_eq!(
        of_a.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names(&a)
    );

    // B makes containers of its own and leaves A's as they were.
    let (code, out, err) = compose(&daemon, &b, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());
    let said = format!("{out}{err}");
    assert!(!said.contains("Recreate"), "{said}");
    for name in names(&b) {
        assert!(
            said.contains(&format!("Container {name}  Created")),
            "{said}"
        );
        assert!(
            said.contains(&format!("Container {name}  Started")),
            "{said}"
        );
    }
    let both = running(&daemon);
    assert_eq!(both.len(), 4, "{both:?}");
    for container in &of_a {
        assert!(both.contains(container), "{container:?} changed: {both:?}");
    }

    // Each project's logs, ps and exec reach its own containers.
    for project in [&a, &b] {
        let (code, out, err) = compose(&daemon, project, &["logs", "--no-log-prefix", "api"]);
        assert_eq!(
            (code, out.as_str()),
            (0, format!("I am {project}-api\n").as_str()),
            "{err}"
        );
        let (code, out, err) = compose(&daemon, project, &["ps", "--format", "{{.Name}}"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().collect::<Vec<_>>(), names(project), "{out}");
        // A container's hostname is its short id.
        let (code, out, err) = compose(&daemon, project, &["exec", "-T", "api", "hostname"]);
        assert_eq!(code, 0, "{err}");
        let api = &both
            .iter()
            .find(|(n, _)| *n == names(project)[0])
            .unwrap()
            .1;
        assert_eq!(out, format!("{}\n", &api[..12]));
    }

    // Down takes A's containers and network, and nothing of B's.
    let (code, out, err) = compose(&daemon, &a, &["down"]);
    assert_eq!(code, 0, "{out}{err}");
    let of_b: Vec<(String, String)> = both
        .iter()
        .filter(|(name, _)| name.starts_with(&b))
        .cloned()
        .collect();
    assert_eq!(running(&daemon), of_b);
    let (code, all, err) = daemon.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(code, 0, "{err}");
    assert!(!all.contains(&a), "{all}");
    let (code, networks, err) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(code, 0, "{err}");
    assert!(!networks.contains(&format!("{a}_default")), "{networks}");
    assert!(networks.contains(&format!("{b}_default")), "{networks}");

    // --rmi local lists the project's images by label: none was built.
    let (code, out, err) = compose(&daemon, &b, &["down", "--rmi", "local"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(running(&daemon), []);
    let (code, networks, err) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(networks, "bridge\nhost\nnone\n");
    let (code, images, err) = daemon.docker(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(
        (code, images.as_str()),
        (0, format!("{BUSYBOX}\n").as_str()),
        "{err}"
    );
}

/// `docker-compose -p project args` (compose v1, Debian's package, which
/// scripts/install-deps installs) in the project's directory.
fn compose_v1(daemon: &TestDaemon, project: &str, args: &[&str]) -> common::Output {
    let mut command = std::process::Command::new("docker-compose");
    command
        .args(["-p", project])
        .args(args)
        .current_dir(daemon.path(project))
        .env(
            "DOCKER_HOST",
            format!("unix://{}", daemon.socket().display()),
        )
        .env("DOCKER_CONFIG", daemon.path("docker-config"));
    let output = command.output().unwrap_or_else(|e| {
        panic!("docker-compose: {e}: install compose v1 (scripts/install-deps)")
    });
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn compose_v1_brings_up_lists_logs_and_takes_down_a_project_on_a_user_network() {
    let daemon = TestDaemon::with_busybox();
    let project = format!("keelv1{}", std::process::id());
    let dir = daemon.path(&project);
    fs::create_dir(&dir).unwrap();
    // compose v1 creates each container on the user network, then
    // disconnects it before its first start to connect it again with
    // aliases; its healthcheck sends null for the times not given.
    fs::write(
        dir.join("docker-compose.yml"),
        format!(
            "version: \"3.8\"
services:
  api:
    image: {BUSYBOX}
    command: [\"sh\", \"-c\", \"echo api up; exec sleep 3600\"]
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 1s
    networks: [back]
    stop_grace_period: 1s
  worker:
    image: {BUSYBOX}
    command: [\"sh\", \"-c\", \"echo worker up > /data/said; cat /data/said; exec sleep 3600\"]
    volumes: [\"data:/data\"]
    networks: [back]
    stop_grace_period: 1s
networks:
  back:
    ipam:
      config:
        - subnet: {}
volumes:
  data:
",
            daemon.user_subnet(0)
        ),
    )
    .unwrap();

    let (code, out, err) = compose_v1(&daemon, &project, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());

    // ps lists each container once.
    let (code, out, err) = compose_v1(&daemon, &project, &["ps", "--services"]);
    assert_eq!(code, 0, "{err}");
    let mut services: Vec<&str> = out.lines().collect();
    services.sort();
    assert_eq!(services, ["api", "worker"], "{out}");
    let (code, out, err) = compose_v1(&daemon, &project, &["ps"]);
    assert_eq!(code, 0, "{err}");
    for name in ["api", "worker"] {
        let rows = out
            .lines()
            .filter(|l| l.starts_with(&format!("{project}_{name}_1 ")))
            .count();
        assert_eq!(rows, 1, "{out}");
    }

    // The service names resolve on the user network.
    let worker = format!("{project}_worker_1");
    let (code, out, err) = daemon.docker(&["exec", &worker, "nslookup", "api"]);
    assert_eq!(code, 0, "{out}{err}");
    let subnet = daemon.user_subnet(0);
    assert!(out.contains(subnet.trim_end_matches("0/24")), "{out}");

    let (code, out, err) = compose_v1(&daemon, &project, &["logs", "--no-color"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("api up"), "{out}");
    assert!(out.contains("worker up"), "{out}");

    let (code, out, err) = compose_v1(&daemon, &project, &["down", "-v"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, all, _) = daemon.docker(&["ps", "-aq"]);
    assert_eq!(all, "");
    let (_, networks, _) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(networks, "bridge\nhost\nnone\n");
    let (_, volumes, _) = daemon.docker(&["volume", "ls", "-q"]);
    assert_eq!(volumes, "");
}
