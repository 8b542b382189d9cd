//! Health checks: probes run in the container, their verdicts in inspect,
//! ps and events, through keel and the docker CLI.

mod common;

use std::time::{Duration, Instant};

use common::TestDaemon;
use keel_testkit::archive::{ArchiveImage, busybox_layer, config, docker_archive};

/// Waits until the container's health status is `wanted`.
fn wait_for_health(daemon: &TestDaemon, name: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = daemon.keel_ok(&["inspect", "--format", "{{.State.Health.Status}}", name]);
        if status.trim() == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed {status:?}, not {wanted}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn inspect(daemon: &TestDaemon, name: &str) -> serde_json::Value {
    let text = daemon.keel_ok(&["inspect", name]);
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[0].clone()
}

#[test]
fn a_health_check_turns_healthy_then_unhealthy_and_tells_ps_inspect_and_events() {
    let daemon = TestDaemon::with_busybox();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "--health-timeout",
        "5s",
        "keel-test/busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 60",
    ]);
    wait_for_health(&daemon, "hc", "healthy");
    let ps = daemon.keel_ok(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("hc Up ") && ps.trim_end().ends_with("(healthy)"),
        "{ps}"
    );
    let health = &inspect(&daemon, "hc")["State"]["Health"];
    assert_eq!(health["FailingStreak"], 0);
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some("fine\n"))
    );

    daemon.keel_ok(&["exec", "hc", "rm", "/tmp/ok"]);
    wait_for_health(&daemon, "hc", "unhealthy");
    let health = &inspect(&daemon, "hc")["State"]["Health"];
    assert!(health["FailingStreak"].as_i64() >= Some(2), "{health}");
    let log = health["Log"].as_array().unwrap();
    assert!(
        log.len() <= 5,
        "only the last five results are kept: {health}"
    );
    assert_eq!(log.last().unwrap()["ExitCode"], 1);
    let config = &inspect(&daemon, "hc")["Config"]["Healthcheck"];
    assert_eq!(
        config["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok && echo fine"])
    );
    assert_eq!(
        (config["Interval"].as_i64(), config["Retries"].as_i64()),
        (Some(100_000_000), Some(2))
    );

    // The docker CLI reads the same.
    let (code, out, err) = daemon.docker(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("hc Up ") && out.trim_end().ends_with("(unhealthy)"),
        "{out}"
    );
    let (_, out, _) = daemon.docker(&["inspect", "--format", "{{.State.Health.Status}}", "hc"]);
    assert_eq!(out, "unhealthy\n");
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = daemon.keel_ok(&[
        "events",
        "--since",
        &started,
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(events, "health_status: healthy\nhealth_status: unhealthy\n");

    // Probing stops with the container, and starts again with it.
    daemon.keel_ok(&["stop", "-t", "0", "hc"]);
    daemon.keel_ok(&["start", "hc"]);
    let status = daemon.keel_ok(&["inspect", "--format", "{{.State.Health.Status}}", "hc"]);
    assert_eq!(status, "starting\n");
    let ps = daemon.keel_ok(&[
        "ps",
        "--filter",
        "health=starting",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.trim_end().ends_with("(health: starting)"), "{ps}");
    wait_for_health(&daemon, "hc", "healthy");
    daemon.keel_ok(&["rm", "-f", "hc"]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_counts_as_a_failure() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "keel-test/busybox",
        "sleep",
        "60",
    ]);
    wait_for_health(&daemon, "slow", "unhealthy");
    let last = inspect(&daemon, "slow")["State"]["Health"]["Log"][0].clone();
    assert_eq!(last["ExitCode"], -1, "{last}");
    assert_eq!(last["Output"], "Health check exceeded timeout (300ms)");
    daemon.keel_ok(&["rm", "-f", "slow"]);
}

#[test]
fn an_images_healthcheck_applies_unless_the_container_turns_it_off() {
    let daemon = TestDaemon::start();
    let layer = busybox_layer();
    let mut image: serde_json::Value = serde_json::from_slice(&config(&[&layer], 0)).unwrap();
    image["config"]["Healthcheck"] = serde_json::json!({
        "Test": ["CMD", "true"], "Interval": 100_000_000, "Retries": 1,
    });
    let archive = daemon.path("health.tar");
    std::fs::write(
        &archive,
        docker_archive(&[ArchiveImage {
            blobs: vec![layer],
            config: serde_json::to_vec(&image).unwrap(),
            tags: &["keel-test/healthy:1"],
        }]),
    )
    .unwrap();
    daemon.keel_ok(&["load", "-i", archive.to_str().unwrap()]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "inherits",
        "keel-test/healthy:1",
        "sleep",
        "60",
    ]);
    wait_for_health(&daemon, "inherits", "healthy");
    // Its own interval over the image's, the image's test kept.
    daemon.keel_ok(&[
        "create",
        "--name",
        "tuned",
        "--health-interval",
        "2s",
        "keel-test/healthy:1",
        "true",
    ]);
    let tuned = &inspect(&daemon, "tuned")["Config"]["Healthcheck"];
    assert_eq!(tuned["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(
        (tuned["Interval"].as_i64(), tuned["Retries"].as_i64()),
        (Some(2_000_000_000), Some(1))
    );

    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "keel-test/healthy:1",
        "sleep",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(400));
    let off = inspect(&daemon, "off");
    assert!(off["State"]["Health"].is_null(), "{}", off["State"]);
    let ps = daemon.keel_ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(ps, "off\n");
    daemon.keel_ok(&["rm", "-f", "inherits", "off", "tuned"]);
}

#[test]
fn bad_health_flags_are_refused_in_dockers_words_and_create_nothing() {
    let daemon = TestDaemon::with_busybox();
    for (args, expected) in [
        (
            vec!["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            vec!["--health-interval", "soon"],
            "invalid argument \"soon\" for \"--health-interval\" flag: time: invalid duration \"soon\"",
        ),
        (
            vec!["--health-timeout", "-1s"],
            "--health-timeout cannot be negative",
        ),
        (
            vec!["--health-interval", "10us"],
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            vec!["--health-retries", "-2"],
            "--health-retries cannot be negative",
        ),
    ] {
        let mut all = vec!["run", "-d"];
        all.extend(args);
        all.extend(["keel-test/busybox", "true"]);
        let (code, _, err) = daemon.keel(&all);
        assert_eq!(code, 125, "{all:?}: {err}");
        assert!(err.contains(expected), "{all:?}: {err}");
    }
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
}
