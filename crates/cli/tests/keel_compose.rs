//! `keel compose`: compose projects run by keel itself, named and
//! labelled as compose v2 does, so `docker compose` (v2.40, the docker
//! CLI's plugin) and `keel compose` manage each other's projects.

mod common;

use std::fs;

use common::{BUSYBOX, TestDaemon};

/// A project in a directory of its own: `db` with a healthcheck and a
/// named volume, `web` waiting for it to be healthy, both on a user
/// network on the test's subnet `n`, and an env file whose values are
/// interpolated from the project's `.env`.
fn write_project(daemon: &TestDaemon, project: &str, n: u32) {
    let dir = daemon.path(project);
    fs::create_dir(&dir).unwrap();
    let subnet = daemon.user_subnet(n);
    fs::write(
        dir.join("compose.yaml"),
        format!(
            "name: {project}
services:
  db:
    image: {BUSYBOX}
    command: [\"sh\", \"-c\", \"echo stored > /data/mark; sleep 3600\"]
    stop_grace_period: 1s
    healthcheck:
      test: [\"CMD\", \"test\", \"-f\", \"/data/mark\"]
      interval: 1s
    volumes:
      - data:/data
    networks: [back]
  web:
    image: ${{IMAGE:-{BUSYBOX}}}
    command: sleep 3600
    stop_grace_period: 1s
    env_file: web.env
    environment:
      ROLE: ${{ROLE:?set ROLE in .env}}
    depends_on:
      db:
        condition: service_healthy
    networks: [back]
volumes:
  data:
networks:
  back:
    ipam:
      config:
        - subnet: {subnet}
"
        ),
    )
    .unwrap();
    fs::write(dir.join(".env"), "ROLE=frontend\nGREETING=hello\n").unwrap();
    fs::write(dir.join("web.env"), "MESSAGE=${GREETING} from web\n").unwrap();
}

/// `keel compose args` in the project's directory.
fn keel_compose(daemon: &TestDaemon, project: &str, args: &[&str]) -> common::Output {
    let mut command = daemon.keel_command(&["compose"]);
    command.args(args).current_dir(daemon.path(project));
    common::output(&mut command)
}

/// `docker compose args` in the project's directory.
fn docker_compose(daemon: &TestDaemon, project: &str, args: &[&str]) -> common::Output {
    let mut command = daemon.docker_command(&["compose"]);
    command.args(args).current_dir(daemon.path(project));
    common::output(&mut command)
}

/// The names and ids of every container, sorted by name.
fn containers(daemon: &TestDaemon) -> Vec<(String, String)> {
    let (code, out, err) =
        daemon.docker(&["ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}"]);
    assert_eq!(code, 0, "{err}");
    let mut all: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let (name, id) = l.split_once(' ').unwrap();
            (name.to_owned(), id.to_owned())
        })
        .collect();
    all.sort();
    all
}

fn names(daemon: &TestDaemon, kind: &str) -> Vec<String> {
    let (code, out, err) = daemon.docker(&[kind, "ls", "--format", "{{.Name}}"]);
    assert_eq!(code, 0, "{err}");
    out.lines().map(str::to_owned).collect()
}

/// The position of `line` in `said`, failing the test if it is missing.
fn line_at(said: &str, line: &str) -> usize {
    said.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{said}"))
}

#[test]
fn keel_compose_up_makes_a_project_that_docker_compose_lists_and_takes_down() {
    let daemon = TestDaemon::with_busybox();
    let project = format!("keel-up-{}", std::process::id());
    write_project(&daemon, &project, 0);

    let (code, out, err) = keel_compose(&daemon, &project, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());
    // compose's progress lines, and web started only once db was healthy.
    for line in [
        format!(" Network {project}_back  Created"),
        format!(" Volume {project}_data  Created"),
        format!(" Container {project}-db-1  Created"),
        format!(" Container {project}-web-1  Created"),
    ] {
        line_at(&err, &line);
    }
    assert!(
        line_at(&err, &format!(" Container {project}-db-1  Healthy"))
            < line_at(&err, &format!(" Container {project}-web-1  Starting")),
        "{err}"
    );

    // The env file's interpolated value and .env's variable reach web.
    let (code, out, err) = keel_compose(
        &daemon,
        &project,
        &["exec", "-T", "web", "sh", "-c", "echo $ROLE: $MESSAGE"],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "frontend: hello from web\n"),
        "{err}"
    );
    // The network is the one asked for, labelled as compose labels it.
    let (code, out, err) = daemon.docker(&[
        "network",
        "inspect",
        "--format",
        "{{(index .IPAM.Config 0).Subnet}} {{index .Labels \"com.docker.compose.project\"}} {{index .Labels \"com.docker.compose.network\"}}",
        &format!("{project}_back"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("{} {project} back", daemon.user_subnet(0))
    );
    let (code, out, err) = daemon.docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"com.docker.compose.service\"}} {{index .Config.Labels \"com.docker.compose.container-number\"}} {{index .Config.Labels \"com.docker.compose.oneoff\"}} {{index .Config.Labels \"com.docker.compose.depends_on\"}}",
        &format!("{project}-web-1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "web 1 False db:service_healthy:false");

    // docker compose sees keel's project as its own.
    let (code, out, err) = docker_compose(
        &daemon,
        &project,
        &["-p", &project, "ps", "--format", "{{.Service}} {{.State}}"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "db running\nweb running\n");

    // Up again leaves the containers alone; a changed service alone is
    // made again.
    let before = containers(&daemon);
    let (code, out, err) = keel_compose(&daemon, &project, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}");
    line_at(&err, &format!(" Container {project}-web-1  Running"));
    assert!(!err.contains("Recreate"), "{err}");
    assert_eq!(containers(&daemon), before);
    let compose_file = daemon.path(&project).join("compose.yaml");
    let changed = fs::read_to_string(&compose_file)
        .unwrap()
        .replace("command: sleep 3600", "command: sleep 3601");
    fs::write(&compose_file, changed).unwrap();
    let (code, out, err) = keel_compose(&daemon, &project, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}");
    line_at(&err, &format!(" Container {project}-web-1  Recreated"));
    let after = containers(&daemon);
    assert_eq!(after[0], before[0], "db is kept");
    assert_ne!(after[1].1, before[1].1, "web is new");

    let (code, out, err) = docker_compose(&daemon, &project, &["-p", &project, "down", "-v"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(containers(&daemon), []);
    assert!(!names(&daemon, "network").contains(&format!("{project}_back")));
    assert!(!names(&daemon, "volume").contains(&format!("{project}_data")));
}

#[test]
fn a_project_docker_compose_brought_up_is_listed_and_taken_down_by_keel_compose() {
    let daemon = TestDaemon::with_busybox();
    let project = format!("docker-up-{}", std::process::id());
    write_project(&daemon, &project, 1);
    let (code, out, err) = docker_compose(&daemon, &project, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}\ndaemon log:\n{}", daemon.log());

    let (code, out, err) = keel_compose(
        &daemon,
        &project,
        &["ps", "--format", "{{.Name}} {{.Service}}"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{project}-db-1 db\n{project}-web-1 web\n"),
        "{err}"
    );
    let (code, out, err) = keel_compose(&daemon, &project, &["logs", "db"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "db says nothing: {out}");
    let (code, out, _) = keel_compose(&daemon, &project, &["ps", "-q"]);
    assert_eq!((code, out.lines().count()), (0, 2), "{out}");

    // By name alone, from anywhere, as `docker compose -p NAME down -v`.
    let mut down = daemon.keel_command(&["compose", "-p", &project, "down", "-v"]);
    down.current_dir(daemon.path(""));
    let (code, out, err) = common::output(&mut down);
    assert_eq!(code, 0, "{out}{err}");
    // Dependents go first.
    assert!(
        line_at(&err, &format!(" Container {project}-web-1  Removed"))
            < line_at(&err, &format!(" Container {project}-db-1  Stopping")),
        "{err}"
    );
    line_at(&err, &format!(" Network {project}_back  Removed"));
    line_at(&err, &format!(" Volume {project}_data  Removed"));
    assert_eq!(containers(&daemon), []);
    assert!(!names(&daemon, "network").contains(&format!("{project}_back")));
    assert!(!names(&daemon, "volume").contains(&format!("{project}_data")));
}

#[test]
fn keel_compose_config_prints_the_resolved_model() {
    let daemon = TestDaemon::start();
    let project = "resolved";
    write_project(&daemon, project, 0);
    let (code, out, err) = keel_compose(&daemon, project, &["config"]);
    assert_eq!(code, 0, "{err}");
    let model: serde_json::Value = yaml_as_json(&out);
    assert_eq!(model["name"], project);
    let web = &model["services"]["web"];
    assert_eq!(web["image"], BUSYBOX);
    assert_eq!(web["command"], serde_json::json!(["sleep", "3600"]));
    assert_eq!(web["environment"]["ROLE"], "frontend");
    assert_eq!(web["environment"]["MESSAGE"], "hello from web");
    assert_eq!(web["depends_on"]["db"]["condition"], "service_healthy");
    assert_eq!(model["networks"]["back"]["name"], "resolved_back");
    assert_eq!(model["volumes"]["data"]["name"], "resolved_data");
    // docker compose resolves the same file to the same values.
    let (code, theirs, err) = docker_compose(&daemon, project, &["config", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    for path in [
        "/services/web/environment",
        "/services/web/command",
        "/services/db/healthcheck/test",
        "/networks/back/name",
        "/volumes/data/name",
    ] {
        assert_eq!(model.pointer(path), theirs.pointer(path), "{path}");
    }
}

/// keel's YAML read back through python's yaml, which the test machine
/// has, as JSON.
fn yaml_as_json(yaml: &str) -> serde_json::Value {
    let mut python = std::process::Command::new("python3");
    python.args([
        "-c",
        "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
    ]);
    let (code, out, err) = common::fed(&mut python, yaml);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn bad_compose_files_are_refused_naming_the_fault_and_nothing_is_made() {
    let daemon = TestDaemon::with_busybox();
    let project = "bad";
    write_project(&daemon, project, 0);
    let compose_file = daemon.path(project).join("compose.yaml");
    let good = fs::read_to_string(&compose_file).unwrap();
    let networks_before = names(&daemon, "network");
    for (fault, expected) in [
        (
            good.replace("    stop_grace_period: 1s\n    env_file", "    frobnicate: 1\n    env_file"),
            format!(
                "validating {}: services.web additional properties 'frobnicate' not allowed",
                compose_file.display()
            ),
        ),
        (
            good.replace("    image: ${IMAGE", "    cap_add: [NET_ADMIN]\n    image: ${IMAGE"),
            format!(
                "{}: services.web.cap_add is not supported by keel compose yet",
                compose_file.display()
            ),
        ),
        (
            good.replace("ROLE:?", "UNSET_ROLE:?"),
            "error while interpolating services.web.environment.ROLE: required variable UNSET_ROLE is missing a value: set ROLE in .env".to_owned(),
        ),
        (
            good.replace("      db:\n        condition", "      cache:\n        condition"),
            "service \"web\" depends on undefined service \"cache\": invalid compose project"
                .to_owned(),
        ),
    ] {
        fs::write(&compose_file, &fault).unwrap();
        for verb in [&["up", "-d"][..], &["config"]] {
            let (code, out, err) = keel_compose(&daemon, project, verb);
            assert_ne!(code, 0, "{verb:?} took:\n{fault}\n{out}");
            assert_eq!(err.trim_end(), expected, "{verb:?}");
        }
        assert_eq!(containers(&daemon), []);
        assert_eq!(names(&daemon, "network"), networks_before);
        assert_eq!(names(&daemon, "volume"), Vec::<String>::new());
    }
}
