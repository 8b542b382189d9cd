//! `GET /containers/{id}/stats` and `stats` as the docker 28 CLI,
//! docker-py and `keel` read them: real cgroup counters of running
//! containers, CPU time across samples, memory limits, network traffic of
//! a bridged container, streams whose `precpu_stats` is the sample
//! before, and Docker's answers for stopped and unknown containers.

mod common;

use std::process::Command;

use common::TestDaemon;
use serde_json::Value;

const IMAGE: &str = common::BUSYBOX;

/// Runs docker-py `body` with `client` connected to the daemon; what the
/// script prints as JSON with `out(value)`.
fn docker_py(daemon: &TestDaemon, body: &str) -> Value {
    let script = format!(
        "import docker, json\nclient = docker.DockerClient(base_url=\"unix://{}\", version=\"auto\")\ndef out(value):\n    print(json.dumps(value))\n{body}",
        daemon.socket().display()
    );
    let (code, stdout, stderr) = common::output(Command::new("python3").args(["-c", &script]));
    assert_eq!(code, 0, "docker-py: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

/// The row of `docker stats` table output whose NAME is `name`, split
/// into its columns (on runs of three or more blanks, as tabwriter pads).
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| {
            line.split("   ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.get(1) == Some(&name))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"))
}

fn percent(cell: &str) -> f64 {
    cell.strip_suffix('%')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a percentage: {cell:?}"))
}

#[test]
fn docker_stats_no_stream_shows_real_memory_and_the_processes_started() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "three",
        IMAGE,
        "sh",
        "-c",
        "sleep 600 & sleep 600 & wait",
    ]);
    daemon.keel_ok(&["create", "--name", "idle", IMAGE, "true"]);
    let (code, out, err) = daemon.docker(&["stats", "--no-stream"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split("   ")
            .filter(|c| !c.is_empty())
            .map(str::trim)
            .collect::<Vec<_>>(),
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{out}"
    );
    let cells = row(&out, "three");
    let id = daemon.keel_ok(&["inspect", "--format", "{{.Id}}", "three"]);
    assert_eq!(cells[0], &id.trim()[..12]);
    let (usage, limit) = cells[3].split_once(" / ").unwrap();
    assert!(usage.ends_with('B') && !usage.starts_with("0B"), "{usage}");
    assert!(limit.ends_with("GiB"), "the machine's memory: {limit}");
    assert!(
        percent(cells[4]) < 1.0,
        "a sleeping shell of the machine's memory: {out}"
    );
    assert_eq!(cells[7], "3", "sh and its two sleeps");
    assert!(
        !out.contains("idle"),
        "a container that does not run is listed only with -a: {out}"
    );
    let (code, out, err) = daemon.docker(&["stats", "--no-stream", "-a"]);
    assert_eq!(code, 0, "{err}");
    let cells = row(&out, "idle");
    assert_eq!(
        cells[2..],
        ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
    );
}

#[test]
fn a_busy_loop_uses_cpu_between_the_two_samples_of_a_no_stream_answer() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "spin",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    daemon.keel_ok(&["run", "-d", "--name", "rest", IMAGE, "sleep", "600"]);
    let (code, out, err) = daemon.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}}",
        "spin",
        "rest",
    ]);
    assert_eq!(code, 0, "{err}");
    let cpu = |name: &str| {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        percent(line.split(' ').nth(1).unwrap())
    };
    // One CPU kept busy is up to 100% (of the machine's two), less when
    // other tests keep the machine busy too.
    assert!(cpu("spin") > 10.0, "{out}");
    assert!(cpu("rest") < 5.0, "{out}");
}

#[test]
fn docker_py_stats_of_a_bridged_container_have_cpu_memory_and_its_traffic() {
    let daemon = TestDaemon::with_busybox();
    let gateway = daemon.gateway();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "pinger",
        IMAGE,
        "sh",
        "-c",
        &format!("ping -c 3 -W 1 {gateway}; sleep 600"),
    ]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "alone",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "600",
    ]);
    // The pings take two seconds; the sample waits for two more.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let stats = docker_py(
        &daemon,
        "out([client.containers.get(n).stats(stream=False) for n in ('pinger', 'alone')])",
    );
    let pinger = &stats[0];
    assert_eq!(pinger["name"], "/pinger");
    for key in ["cpu_stats", "precpu_stats"] {
        assert!(
            pinger[key]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0,
            "{key}: {pinger}"
        );
        assert!(
            pinger[key]["system_cpu_usage"].as_u64().unwrap() > 0,
            "{key}: {pinger}"
        );
        assert_eq!(
            pinger[key]["online_cpus"],
            std::thread::available_parallelism().unwrap().get()
        );
    }
    assert_ne!(pinger["preread"], "0001-01-01T00:00:00Z");
    assert!(
        pinger["memory_stats"]["usage"].as_u64().unwrap() > 0,
        "{pinger}"
    );
    assert!(
        pinger["memory_stats"]["stats"]
            .get("total_inactive_file")
            .is_some(),
        "v1 keys: {pinger}"
    );
    let eth0 = &pinger["networks"]["eth0"];
    assert!(eth0["rx_bytes"].as_u64().unwrap() > 0, "{pinger}");
    assert!(
        eth0["tx_packets"].as_u64().unwrap() >= 3,
        "three pings went out: {pinger}"
    );
    assert!(pinger["networks"].get("lo").is_none(), "{pinger}");
    assert!(pinger["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert!(
        pinger["blkio_stats"]["io_service_bytes_recursive"].is_array(),
        "{pinger}"
    );
    let alone = &stats[1];
    assert!(
        alone.get("networks").is_none(),
        "--network none has no networks: {alone}"
    );
    assert!(
        alone["memory_stats"]["usage"].as_u64().unwrap() > 0,
        "{alone}"
    );
}

#[test]
fn a_memory_limit_is_the_reported_limit_and_no_limit_is_the_machines_memory() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run", "-d", "--name", "small", "--memory", "64m", IMAGE, "sleep", "600",
    ]);
    daemon.keel_ok(&["run", "-d", "--name", "free", IMAGE, "sleep", "600"]);
    let limits = docker_py(
        &daemon,
        "out([client.api.stats(n, stream=False, one_shot=True)['memory_stats']['limit'] for n in ('small', 'free')])",
    );
    assert_eq!(limits[0], 67108864);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix(" kB"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(limits[1], total_kib * 1024);
    let (code, out, err) =
        daemon.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "small"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().ends_with(" / 64MiB"), "{out}");
}

#[test]
fn keel_stats_formats_names_and_json_rows_and_lists_stopped_ones_with_all() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "first", IMAGE, "sleep", "600"]);
    daemon.keel_ok(&["run", "-d", "--name", "second", IMAGE, "sleep", "600"]);
    daemon.keel_ok(&["create", "--name", "made", IMAGE, "true"]);
    let out = daemon.keel_ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["first", "second"]);
    let out = daemon.keel_ok(&["stats", "--no-stream", "-a", "--format", "{{.Name}}"]);
    assert_eq!(out.lines().filter(|l| *l == "made").count(), 1, "{out}");
    let out = daemon.keel_ok(&["stats", "--no-stream", "--format", "json", "first"]);
    let row: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["Name"], "first");
    assert_eq!(row["Container"], "first");
    assert_eq!(row["PIDs"], "1");
    let id = daemon.keel_ok(&["inspect", "--format", "{{.Id}}", "first"]);
    let out = daemon.keel_ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "table {{.ID}}\t{{.PIDs}}",
        "first",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["CONTAINER", "ID", "PIDS"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [id.trim(), "1"]
    );
    // The default table is docker's, header and all.
    let docker = daemon
        .docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "first",
        ])
        .1;
    let keel = daemon.keel_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "first",
    ]);
    assert_eq!(keel, docker);
    let header = daemon.keel_ok(&["stats", "--no-stream", "first"]);
    assert!(
        header.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT"),
        "{header}"
    );
}

#[test]
fn a_stream_gives_a_sample_a_second_each_following_the_one_before() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "spin",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let samples = docker_py(
        &daemon,
        "stream = client.api.stats('spin', stream=True, decode=True)\nout([next(stream) for _ in range(3)])",
    );
    let samples = samples.as_array().unwrap();
    assert_eq!(samples[0]["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(samples[0]["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    for pair in samples.windows(2) {
        assert_eq!(pair[1]["precpu_stats"], pair[0]["cpu_stats"]);
        assert_eq!(pair[1]["preread"], pair[0]["read"]);
        let cpu = |s: &Value| s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap();
        assert!(cpu(&pair[1]) > cpu(&pair[0]), "the loop keeps using CPU");
    }
    let nanos = |s: &Value| keel_time::unix_nanos(s["read"].as_str().unwrap()).unwrap();
    let apart = (nanos(&samples[2]) - nanos(&samples[0])) as f64 / 1e9;
    assert!(
        (1.5..3.0).contains(&apart),
        "two intervals of a second: {apart}"
    );
    // `keel stats` draws its table over the last one, as docker's does.
    let mut live = daemon.keel_command(&["stats", "spin"]);
    let mut child = live.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1800));
    // It draws until interrupted; this is our own child.
    child.kill().unwrap();
    let mut drawn = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut drawn).unwrap();
    child.wait().unwrap();
    let frames: Vec<&str> = drawn.split("\x1b[H").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 2, "{drawn:?}");
    assert!(frames[1].starts_with("CONTAINER ID   NAME"), "{drawn:?}");
    assert!(
        frames[1].contains("\x1b[K\n") && frames[1].ends_with("\x1b[J"),
        "{drawn:?}"
    );
    assert!(frames[1].contains("   spin   "), "{drawn:?}");
}

#[test]
fn a_stopped_container_has_zeroed_stats_and_an_unknown_one_is_docker_s_404() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "made", IMAGE, "true"]);
    let stats = docker_py(&daemon, "out(client.api.stats('made', stream=False))");
    assert_eq!(stats["read"], "0001-01-01T00:00:00Z");
    assert_eq!(stats["name"], "/made");
    assert_eq!(stats["memory_stats"], serde_json::json!({}));
    assert_eq!(stats["pids_stats"], serde_json::json!({}));
    assert!(stats["blkio_stats"]["io_service_bytes_recursive"].is_null());
    assert_eq!(stats["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    let (code, _, err) = daemon.docker(&["stats", "--no-stream", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such container: nope"
    );
    let (code, _, err) = daemon.keel(&["stats", "--no-stream", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such container: nope"
    );
    let answer = docker_py(
        &daemon,
        "try:\n    client.api.stats('nope', stream=False)\nexcept docker.errors.NotFound as e:\n    out([e.status_code, e.explanation])",
    );
    assert_eq!(answer, serde_json::json!([404, "No such container: nope"]));
    let refused = docker_py(
        &daemon,
        "r = client.api._get(client.api._url('/containers/made/stats'), params={'stream': 1, 'one-shot': 1})\nout([r.status_code, r.json()['message']])",
    );
    assert_eq!(
        refused,
        serde_json::json!([400, "cannot have stream=true and one-shot=true"])
    );
}
