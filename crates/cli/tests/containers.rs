//! Containers through the daemon: keel run/ps/logs/stop/rm and the real
//! docker CLI against Keel's socket, on the real kernel.

mod common;

use common::TestDaemon;

/// Mounts below the test's directory (a container's snapshot).
/// The sorted lines of the docker CLI's `args` (a list with a `--format`)
/// with these `--filter`s.
fn listed_with(daemon: &TestDaemon, args: &[&str], filters: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    for filter in filters {
        args.extend(["--filter", filter]);
    }
    let (code, out, err) = daemon.docker(&args);
    assert_eq!(code, 0, "docker {args:?}: {err}");
    let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
    names.sort();
    names
}

fn mounts_below(daemon: &TestDaemon) -> usize {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with(daemon.dir.path().to_str().unwrap()))
        })
        .count()
}

#[test]
fn keel_run_prints_the_output_and_passes_on_the_exit_code() {
    let daemon = TestDaemon::with_busybox();
    let (code, out, err) = daemon.keel(&[
        "run",
        "--rm",
        "keel-test/busybox",
        "echo",
        "hello from keel",
    ]);
    assert_eq!((code, out.as_str()), (0, "hello from keel\n"), "{err}");
    let (code, out, err) = daemon.keel(&[
        "run",
        "--rm",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, _) = daemon.keel(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/etc",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(hostname | wc -c)",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hi /etc 13\n"),
        "hostname is the short id"
    );
    assert_eq!(
        daemon.keel_ok(&["ps", "-aq"]),
        "",
        "--rm leaves no container"
    );
    assert_eq!(mounts_below(&daemon), 0, "nor a mounted snapshot");
    let snapshots = std::fs::read_dir(daemon.root().join("image/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 0);
}

#[test]
fn a_command_that_cannot_run_exits_127_and_rm_leaves_nothing() {
    let daemon = TestDaemon::with_busybox();
    let (code, _, err) = daemon.keel(&["run", "--rm", "keel-test/busybox", "no-such-program"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("\"no-such-program\": executable file not found in $PATH"),
        "{err}"
    );
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    // `--pull never`: a missing image is otherwise pulled, from Docker Hub
    // for this name, and tests never leave the machine.
    let (code, _, err) = daemon.keel(&["run", "--pull", "never", "keel-test/no-such-image"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("No such image: keel-test/no-such-image:latest"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["run", "--name", "bad name", "keel-test/busybox", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("Invalid container name (bad name)"), "{err}");
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
}

#[test]
fn a_program_that_is_missing_or_not_executable_is_127_or_126_for_run_exec_and_the_record() {
    let daemon = TestDaemon::with_busybox();
    let exit_code =
        |name: &str| daemon.keel_ok(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    for (name, program, code) in [
        ("missing", "/bin/no-such-program", 127),
        ("not-executable", "/etc/passwd", 126),
        ("a-directory", "/etc", 126),
    ] {
        let (got, _, err) = daemon.keel(&["run", "--name", name, "keel-test/busybox", program]);
        assert_eq!(got, code, "{name}: {err}");
        assert_eq!(exit_code(name), format!("{code}\n"), "{name}");
        // Detached, the same start fails the same way.
        let detached = format!("{name}-detached");
        let (got, _, err) = daemon.keel(&[
            "run",
            "-d",
            "--name",
            &detached,
            "keel-test/busybox",
            program,
        ]);
        assert_eq!(got, code, "{detached}: {err}");
        assert_eq!(exit_code(&detached), format!("{code}\n"), "{detached}");
    }
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "keel-test/busybox",
        "sleep",
        "60",
    ]);
    for (program, code) in [("/bin/no-such-program", 127), ("/etc/passwd", 126)] {
        let (got, _, err) = daemon.keel(&["exec", "box", program]);
        assert_eq!(got, code, "exec {program}: {err}");
    }
    daemon.keel_ok(&["rm", "-f", "box"]);
}

#[test]
fn creates_racing_for_one_name_leave_exactly_one_container_with_it() {
    let daemon = TestDaemon::with_busybox();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            daemon
                .keel_command(&["create", "--name", "contested", "keel-test/busybox", "true"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = racers
        .into_iter()
        .map(|racer| racer.wait_with_output().unwrap())
        .collect();
    let won = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "one create takes the name");
    for lost in outcomes.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&lost.stderr);
        assert!(err.contains("\"/contested\" is already in use"), "{err}");
    }
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]).lines().count(), 1);
    // Renamed away, the name is free again; the old one is taken.
    daemon.keel_ok(&["rename", "contested", "other"]);
    daemon.keel_ok(&["create", "--name", "contested", "keel-test/busybox", "true"]);
    let (code, _, err) = daemon.keel(&["rename", "other", "contested"]);
    assert_ne!(code, 0);
    assert!(err.contains("is already in use"), "{err}");
}

#[test]
fn run_rm_returns_once_the_container_is_gone_so_its_image_can_be_removed_at_once() {
    let daemon = TestDaemon::with_busybox();
    // Runs side by side, so each one's changes wake the others' waits.
    std::thread::scope(|scope| {
        for racer in 0..4 {
            let daemon = &daemon;
            scope.spawn(move || {
                for round in 0..12 {
                    let tag = format!("keel-test/rm-race-{racer}-{round}");
                    daemon.keel_ok(&["tag", "keel-test/busybox", &tag]);
                    daemon.keel_ok(&["run", "--rm", &tag, "true"]);
                    daemon.keel_ok(&["rmi", &tag]);
                }
            });
        }
    });
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
}

#[test]
fn detached_containers_log_stop_and_remove_and_hold_their_image() {
    let daemon = TestDaemon::with_busybox();
    let id = daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo started; trap 'echo stopping; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = daemon.keel_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "web running\n");
    let (code, _, err) = daemon.keel(&["run", "-d", "--name", "web", "keel-test/busybox", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("The container name \"/web\" is already in use"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["rm", "web"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("container is running: stop the container before removing or force remove"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["rmi", "keel-test/busybox"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("container web") || err.contains(&id[..12]),
        "{err}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !daemon.keel_ok(&["logs", "web"]).contains("started") {
        assert!(std::time::Instant::now() < deadline, "no output from web");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(daemon.keel_ok(&["stop", "web"]), "web\n");
    assert_eq!(daemon.keel_ok(&["logs", "web"]), "started\nstopping\n");
    assert_eq!(daemon.keel_ok(&["wait", "web"]), "0\n");
    assert!(daemon.keel_ok(&["ps", "-a"]).contains("Exited (0)"));
    assert_eq!(
        daemon.keel_ok(&["inspect", "--format", "{{.Name}}", "web"]),
        "/web\n"
    );
    assert_eq!(daemon.keel_ok(&["rm", "web"]), "web\n");
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    daemon.keel_ok(&["rmi", "keel-test/busybox"]);
}

#[test]
fn a_containers_writes_stay_in_its_own_layer() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "--name",
        "writer",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo mine > /etc/motd; rm /bin/vi",
    ]);
    let out = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/busybox",
        "sh",
        "-c",
        "cat /etc/motd 2>/dev/null || echo clean; test -e /bin/vi && echo vi",
    ]);
    assert_eq!(out, "clean\nvi\n");
    let upper = daemon
        .root()
        .join("image/snapshots")
        .join(
            daemon
                .keel_ok(&["inspect", "--format", "{{.Id}}", "writer"])
                .trim(),
        )
        .join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/motd")).unwrap(),
        "mine\n"
    );
}

#[test]
fn containers_keep_running_across_a_daemon_restart() {
    let mut daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo before; read line < /dev/null; sleep 1; echo after",
    ]);
    daemon.restart();
    assert_eq!(
        daemon.keel_ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "survivor running\n"
    );
    assert_eq!(daemon.keel_ok(&["wait", "survivor"]), "0\n");
    assert_eq!(daemon.keel_ok(&["logs", "survivor"]), "before\nafter\n");
}

#[test]
fn rm_containers_that_ended_or_lost_their_records_while_the_daemon_was_down_are_removed_at_its_start()
 {
    let mut daemon = TestDaemon::with_busybox();
    let ended = daemon.keel_ok(&["run", "-d", "--rm", common::BUSYBOX, "sleep", "0.5"]);
    let cut = daemon.keel_ok(&["create", "--rm", common::BUSYBOX, "true"]);
    let kept = daemon.keel_ok(&["create", "--name", "kept", common::BUSYBOX, "true"]);
    let containers = daemon.root().join("containers");
    let snapshots = daemon.root().join("image/snapshots");
    daemon.kill_and_restart_after(|| {
        // The first ends with no daemon to remove it, and so does its
        // monitor (a monitor still running would mean a running container).
        let record = containers.join(ended.trim()).join("container.json");
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        let monitor = format!("/proc/{}", record["state"]["monitor_pid"]);
        let exit = containers.join(ended.trim()).join("exit.json");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !exit.exists() || std::path::Path::new(&monitor).exists() {
            assert!(std::time::Instant::now() < deadline, "{ended} did not end");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The second's records, written without a sync, are what a crash
        // of the machine leaves of them: empty files.
        std::fs::write(containers.join(cut.trim()).join("container.json"), "").unwrap();
        std::fs::write(snapshots.join(cut.trim()).join("snapshot.json"), "").unwrap();
    });
    assert_eq!(
        daemon.keel_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "kept\n"
    );
    let left = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(left(&containers), [kept.trim()]);
    assert_eq!(left(&snapshots), [kept.trim()]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in [&ended, &cut] {
        assert!(!mounts.contains(id.trim()), "{id} is still mounted");
    }
}

#[test]
fn run_passes_the_signals_it_gets_on_to_the_container_unless_sig_proxy_is_false() {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::ExitStatusExt;
    let daemon = TestDaemon::with_busybox();
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let started = |options: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(options);
        args.extend_from_slice(&[common::BUSYBOX, "sh", "-c", script]);
        let mut child = daemon
            .keel_command(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "{options:?}");
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        (child, out)
    };
    let (mut child, mut out) = started(&["--rm", "--name", "proxied"]);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got TERM\n");
    assert_eq!(child.wait().unwrap().code(), Some(7));
    // Not passed on: the signal ends the CLI, and the container runs on.
    let (mut child, _out) = started(&["--sig-proxy=false", "--name", "kept"]);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(
        daemon.keel_ok(&["inspect", "--format", "{{.State.Running}}", "kept"]),
        "true\n"
    );
    daemon.keel_ok(&["rm", "-f", "kept"]);
    let (code, _, err) = common::output(&mut daemon.keel_command(&[
        "run",
        "--sig-proxy=maybe",
        common::BUSYBOX,
        "true",
    ]));
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid argument \"maybe\" for \"--sig-proxy\" flag"),
        "{err}"
    );
}

#[test]
fn the_docker_cli_runs_logs_stops_and_removes_containers_on_keel() {
    let daemon = TestDaemon::with_busybox();
    let (code, out, err) = daemon.docker(&[
        "run",
        "--rm",
        "keel-test/busybox",
        "echo",
        "hello from docker",
    ]);
    assert_eq!((code, out.as_str()), (0, "hello from docker\n"), "{err}");
    let (code, _, _) = daemon.docker(&["run", "--rm", "keel-test/busybox", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5);
    let (code, id, err) = daemon.docker(&[
        "run",
        "-d",
        "--name",
        "bg",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo up; sleep 60",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, ps, _) = daemon.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(ps.starts_with(&format!("{} bg Up", &id[..12])), "{ps}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while daemon.docker(&["logs", "bg"]).1 != "up\n" {
        assert!(std::time::Instant::now() < deadline, "no output from bg");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, err) = daemon.docker(&["stop", "-t", "1", "bg"]);
    assert_eq!(code, 0, "{err}");
    let (_, state, _) = daemon.docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "bg",
    ]);
    assert_eq!(
        state, "exited 137\n",
        "sh ignores TERM as pid 1, so stop kills it"
    );
    let (code, out, err) = daemon.docker(&["rm", "bg"]);
    assert_eq!((code, out.as_str()), (0, "bg\n"), "{err}");
}

/// `{{.RestartCount}} {{.State.Status}}` of a container, read from its
/// inspect JSON.
fn restarts_and_state(daemon: &TestDaemon, name: &str) -> (u64, String) {
    let (_, out, _) = daemon.docker(&["inspect", name]);
    let inspected: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        inspected[0]["RestartCount"].as_u64().unwrap(),
        inspected[0]["State"]["Status"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn restart_policies_bring_containers_back_until_stopped() {
    let mut daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        common::BUSYBOX,
        "sh",
        "-c",
        "echo ran; exit 3",
    ]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "twice",
        "--restart",
        "on-failure:2",
        common::BUSYBOX,
        "sh",
        "-c",
        "exit 1",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while restarts_and_state(&daemon, "again").0 < 3 || restarts_and_state(&daemon, "twice").0 < 2 {
        assert!(std::time::Instant::now() < deadline, "no restarts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(daemon.keel_ok(&["logs", "again"]).matches("ran\n").count() >= 3);
    // on-failure:2 gives up after two restarts.
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        restarts_and_state(&daemon, "twice"),
        (2, "exited".to_owned())
    );
    // A stop is final, however the back-off stood.
    daemon.keel_ok(&["stop", "-t", "1", "again"]);
    let stopped = restarts_and_state(&daemon, "again");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(restarts_and_state(&daemon, "again"), stopped);
    assert_eq!(stopped.1, "exited");
    // A daemon start brings `always` containers back, stopped or not.
    daemon.keel_ok(&["rm", "twice"]);
    daemon.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while daemon.keel_ok(&["logs", "again"]).matches("ran\n").count() <= stopped.0 as usize + 1 {
        assert!(std::time::Instant::now() < deadline, "not started again");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    daemon.keel_ok(&["stop", "-t", "1", "again"]);

    let (code, _, err) = daemon.keel(&["run", "--restart", "sometimes", common::BUSYBOX, "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid restart policy: unknown policy 'sometimes'"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&[
        "run",
        "--rm",
        "--restart",
        "always",
        common::BUSYBOX,
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(err.contains("AutoRemove"), "{err}");
}

#[test]
fn restart_runs_the_container_again_and_rename_renames_it() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "first",
        common::BUSYBOX,
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo run; while true; do sleep 0.1; done",
    ]);
    let wait_for_runs = |name: &str, runs: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while daemon.keel_ok(&["logs", name]).matches("run\n").count() < runs {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} did not run {runs} times"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for_runs("first", 1);
    assert_eq!(daemon.keel_ok(&["restart", "first"]), "first\n");
    wait_for_runs("first", 2);
    let (code, _, err) = daemon.docker(&["restart", "-t", "1", "first"]);
    assert_eq!(code, 0, "{err}");
    wait_for_runs("first", 3);

    daemon.keel_ok(&["rename", "first", "second"]);
    assert_eq!(
        daemon.keel_ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "second running\n"
    );
    daemon.keel_ok(&["create", "--name", "other", common::BUSYBOX, "true"]);
    let (code, _, err) = daemon.docker(&["rename", "second", "other"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("The container name \"/other\" is already in use"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["rename", "second", "second"]);
    assert_ne!(code, 0);
    assert!(err.contains("same name as its current name"), "{err}");
    let (code, _, err) = daemon.keel(&["rename", "second", "bad name"]);
    assert_ne!(code, 0);
    assert!(err.contains("Invalid container name (bad name)"), "{err}");
    let (code, _, _) = daemon.docker(&["rename", "second", "third"]);
    assert_eq!(code, 0);
    assert_eq!(
        daemon.keel_ok(&["logs", "third"]).matches("run\n").count(),
        3
    );
}

/// Lines the container `name` has logged so far.
fn logged_lines(daemon: &TestDaemon, name: &str) -> usize {
    daemon.keel_ok(&["logs", name]).lines().count()
}

#[test]
fn pause_freezes_a_container_until_unpause_and_stop_still_works() {
    let daemon = TestDaemon::with_busybox();
    let counter = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done";
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        common::BUSYBOX,
        "sh",
        "-c",
        counter,
    ]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(daemon.keel_ok(&["pause", "ticker"]), "ticker\n");
    // What it wrote before the freeze may still be on its way to the log.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let frozen = logged_lines(&daemon, "ticker");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        logged_lines(&daemon, "ticker"),
        frozen,
        "a paused container ran on"
    );
    let (_, counts, _) = daemon.docker(&[
        "info",
        "--format",
        "{{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}",
    ]);
    assert_eq!(counts, "0 1 0\n", "running, paused, stopped");
    let (_, state, _) = daemon.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(state.trim(), "paused true");
    let (_, ps, _) = daemon.docker(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.trim().ends_with("(Paused)"), "{ps}");
    let (code, _, err) = daemon.keel(&["exec", "ticker", "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["pause", "ticker"]);
    assert_ne!(code, 0);
    assert!(err.contains("is already paused"), "{err}");

    daemon.keel_ok(&["unpause", "ticker"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(
        logged_lines(&daemon, "ticker") > frozen,
        "unpaused, it counts again"
    );
    // Paused again, `stop` still ends it (the signal thaws it).
    daemon.keel_ok(&["pause", "ticker"]);
    daemon.keel_ok(&["stop", "-t", "1", "ticker"]);
    let state = daemon.keel_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(state.trim(), "exited false");
}

#[test]
fn top_lists_a_containers_processes_and_prune_removes_the_stopped_ones() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        common::BUSYBOX,
        "sleep",
        "321",
    ]);
    let top = daemon.keel_ok(&["top", "sleeper"]);
    let mut lines = top.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("root ") && row.ends_with("sleep 321"),
        "{top}"
    );
    let (code, docker_top, err) = daemon.docker(&["top", "sleeper"]);
    assert_eq!(code, 0, "{err}");
    assert!(docker_top.contains("sleep 321"), "{docker_top}");
    // ps options, as docker passes them on to the host's ps.
    let top = daemon.keel_ok(&["top", "sleeper", "-o", "pid,args"]);
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{top}"
    );
    assert_eq!(lines.len(), 2, "only the container's process: {top}");
    assert!(lines[1].ends_with("sleep 321"), "{top}");
    let (code, docker_top, err) = daemon.docker(&["top", "sleeper", "aux"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        docker_top.starts_with("USER") && docker_top.contains("sleep 321"),
        "{docker_top}"
    );
    let (code, _, err) = daemon.keel(&["top", "sleeper", "-o", "user"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Couldn't find PID field in ps output"),
        "{err}"
    );

    daemon.keel_ok(&["run", "--name", "done1", common::BUSYBOX, "true"]);
    daemon.keel_ok(&["create", "--name", "never", common::BUSYBOX, "true"]);
    let (code, _, err) = daemon.keel(&["top", "never"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not running"), "{err}");
    let ids: Vec<String> = ["done1", "never"]
        .iter()
        .map(|n| {
            daemon
                .keel_ok(&["inspect", "-f", "{{.Id}}", n])
                .trim()
                .to_owned()
        })
        .collect();
    let pruned = daemon.keel_ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    for id in &ids {
        assert!(pruned.contains(&format!("{id}\n")), "{pruned}");
    }
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert_eq!(
        daemon.keel_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "sleeper\n"
    );
}

#[test]
fn the_log_rotates_at_max_size_and_logs_reads_the_kept_files_and_follows_across() {
    let daemon = TestDaemon::with_busybox();
    let lines = |count: u32| {
        format!("sleep 0.5; i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo line-$i; done")
    };
    // Followed from the start, through rotations that come faster than
    // the follower reads (each file holds a dozen lines; 20 files keep
    // them all): no line is lost between files.
    let follow_script = lines(150);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "fast",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=20",
        common::BUSYBOX,
        "sh",
        "-c",
        &follow_script,
    ]);
    let followed = daemon.keel_ok(&["logs", "-f", "fast"]);
    let expected: String = (1..=150).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(followed, expected);

    let script = lines(100);
    let id = daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        common::BUSYBOX,
        "sh",
        "-c",
        &script,
    ]);
    daemon.keel_ok(&["wait", "chatty"]);
    let dir = daemon.root().join("containers").join(id.trim());
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("container-json.log"))
        .collect();
    // The current one and the two rotated last.
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert!(
            std::fs::metadata(dir.join(file)).unwrap().len() <= 1000,
            "{file}"
        );
    }
    // What is kept reads in order, ending with the last line.
    let kept = daemon.keel_ok(&["logs", "chatty"]);
    let numbers: Vec<u32> = kept
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(numbers.last(), Some(&100));
    assert!(numbers.len() < 100 && numbers.len() > 20, "{kept}");
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{kept}");
    let (_, inspected, _) =
        daemon.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "chatty"]);
    assert_eq!(
        inspected.trim(),
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"1k"}}"#
    );

    for (args, message) in [
        (
            vec!["--log-opt", "max-size=lots"],
            "invalid max-size \"lots\"",
        ),
        (
            vec!["--log-opt", "color=blue"],
            "unknown log opt 'color' for json-file log driver",
        ),
        (
            vec!["--log-driver", "syslog"],
            "logging driver \"syslog\" is not supported",
        ),
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(&args);
        full.extend([common::BUSYBOX, "true"]);
        let (code, _, err) = daemon.keel(&full);
        assert_eq!(code, 125, "{args:?}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn logs_since_and_until_pick_entries_by_their_time() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "--name",
        "talker",
        common::BUSYBOX,
        "sh",
        "-c",
        "echo first; sleep 0.2; echo second",
    ]);
    let stamped = daemon.keel_ok(&["logs", "-t", "talker"]);
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{stamped}");
    assert_eq!(
        daemon.keel_ok(&["logs", "--since", times[1], "talker"]),
        "second\n"
    );
    assert_eq!(
        daemon.keel_ok(&["logs", "--until", times[0], "talker"]),
        "first\n"
    );
    let (code, out, err) = daemon.docker(&["logs", "--since", times[1], "talker"]);
    assert_eq!((code, out.as_str()), (0, "second\n"), "{err}");
    // A duration counts back from now: both lines are within the hour.
    assert_eq!(
        daemon.keel_ok(&["logs", "--since", "1h", "talker"]),
        "first\nsecond\n"
    );
    assert_eq!(daemon.keel_ok(&["logs", "--until", "1h", "talker"]), "");
    // 0 is Unix time 0, not a duration: everything (testcontainers asks
    // for since=0).
    assert_eq!(
        daemon.keel_ok(&["logs", "--since", "0", "talker"]),
        "first\nsecond\n"
    );
    let (code, out, err) = daemon.docker(&["logs", "--since", "0", "talker"]);
    assert_eq!((code, out.as_str()), (0, "first\nsecond\n"), "{err}");
    let (code, _, err) = daemon.keel(&["logs", "--since", "yesterday", "talker"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("failed to parse value as time or duration: \"yesterday\""),
        "{err}"
    );
}

#[test]
fn ps_filters_by_status_name_label_exit_code_ancestor_and_network() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "web-1",
        "-l",
        "tier=front",
        common::BUSYBOX,
        "sleep",
        "60",
    ]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "db-1",
        "-l",
        "tier=back",
        "--network",
        "none",
        common::BUSYBOX,
        "sleep",
        "60",
    ]);
    let (code, _, _) = daemon.keel(&[
        "run",
        "--name",
        "job-1",
        common::BUSYBOX,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code, 3);
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        let mut names: Vec<String> = daemon.keel_ok(&args).lines().map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(names(&["status=exited"]), ["job-1"]);
    assert_eq!(
        names(&["exited=3"]),
        Vec::<String>::new(),
        "exited ones only with -a"
    );
    assert_eq!(names(&["name=web"]), ["web-1"]);
    assert_eq!(names(&["label=tier"]), ["db-1", "web-1"]);
    assert_eq!(names(&["label=tier=back"]), ["db-1"]);
    assert_eq!(names(&["network=none"]), ["db-1"]);
    assert_eq!(
        names(&["ancestor=keel-test/busybox", "label=tier=front"]),
        ["web-1"]
    );
    // One key's values widen, different keys narrow.
    assert_eq!(names(&["name=web", "name=db"]), ["db-1", "web-1"]);
    let (_, all_exited, _) =
        daemon.keel(&["ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"]);
    assert_eq!(all_exited, "job-1\n");
    let (code, out, err) =
        daemon.docker(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert_eq!((code, out.as_str()), (0, "job-1\n"), "{err}");
    let (code, _, err) = daemon.keel(&["ps", "--filter", "colour=red"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let (code, _, err) = daemon.keel(&["ps", "--filter", "status=sleepy"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid filter 'status=sleepy'"), "{err}");
}

#[test]
fn attach_and_start_a_stream_the_output_and_pass_the_exit_code_through() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "later",
        common::BUSYBOX,
        "sh",
        "-c",
        "sleep 0.5; echo attached-out; exit 4",
    ]);
    let (code, out, err) = daemon.keel(&["attach", "later"]);
    assert_eq!((code, out.as_str()), (4, "attached-out\n"), "{err}");
    let (code, _, err) = daemon.keel(&["attach", "later"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("You cannot attach to a stopped container, start it first"),
        "{err}"
    );

    daemon.keel_ok(&[
        "create",
        "--name",
        "once",
        common::BUSYBOX,
        "sh",
        "-c",
        "echo started; exit 2",
    ]);
    let (code, out, err) = daemon.keel(&["start", "-a", "once"]);
    assert_eq!((code, out.as_str()), (2, "started\n"), "{err}");

    daemon.keel_ok(&["create", "-i", "--name", "echoer", common::BUSYBOX, "cat"]);
    let (code, out, err) = common::fed(
        &mut daemon.keel_command(&["start", "-a", "-i", "echoer"]),
        "piped in\n",
    );
    assert_eq!((code, out.as_str()), (0, "piped in\n"), "{err}");
}

#[test]
fn events_tell_a_containers_life_to_keel_and_docker_past_and_live() {
    let daemon = TestDaemon::with_busybox();
    let since = common::unix_now();
    daemon.keel_ok(&["volume", "create", "evvol"]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "ev",
        "--label",
        "tier=front",
        "-v",
        "evvol:/data",
        "keel-test/busybox",
        "sleep",
        "60",
    ]);
    daemon.keel_ok(&["exec", "ev", "true"]);
    daemon.keel_ok(&["stop", "-t", "1", "ev"]);
    daemon.keel_ok(&["rename", "ev", "ev2"]);
    daemon.keel_ok(&["rm", "ev2"]);
    daemon.keel_ok(&["volume", "rm", "evvol"]);
    daemon.keel_ok(&["tag", "keel-test/busybox", "keel-test/evtag:1"]);
    let until = common::unix_now();

    let actions = daemon.events_of(&since, &until, "container", "{{.Action}}");
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "create",
            "start",
            "exec_create: true",
            "exec_start: true",
            "exec_die",
            "kill",
            "kill",
            "die",
            "stop",
            "rename",
            "destroy"
        ],
        "{actions}"
    );
    // docker's own CLI, its default format and filters by name and event.
    let (code, out, err) = daemon.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=ev",
        "--filter",
        "event=die",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out.trim();
    assert!(
        line.contains(" container die ")
            && line.contains(" (execDuration=")
            && line.ends_with(", exitCode=137, image=keel-test/busybox, name=ev, tier=front)"),
        "{out}"
    );
    let events_of = |kind: &str, format: &str| daemon.events_of(&since, &until, kind, format);
    assert_eq!(
        events_of("volume", "{{.Action}} {{.Actor.ID}}"),
        "create evvol\ndestroy evvol\n"
    );
    assert_eq!(
        events_of("image", "{{.Action}} {{.Actor.Attributes.name}}"),
        "tag keel-test/evtag:1\n"
    );
    // docker-py reads the same stream.
    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}")
events = client.events(since={since}, until={until}, decode=True, filters={{"container": "ev", "type": "container"}})
print(" ".join(e["Action"] for e in events if e["Action"] in ("create", "start", "die", "destroy")))
"#,
        socket = daemon.socket().display(),
        since = since.split('.').next().unwrap(),
        until = until.split('.').next().unwrap().parse::<u64>().unwrap() + 1,
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!(
        (code, out.as_str()),
        (0, "create start die destroy\n"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["events", "--until", &until, "--filter", "colour=red"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    // Live: a follower sees a start as it happens.
    let mut follower = daemon
        .keel_command(&[
            "events",
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    // The follower subscribes once its request arrives: start until it sees one.
    let mut seen = None;
    for round in 0..50 {
        daemon.keel_ok(&[
            "run",
            "--rm",
            "--name",
            &format!("live{round}"),
            "keel-test/busybox",
            "true",
        ]);
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen = Some(line);
            break;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let seen = seen.expect("the follower printed a start");
    assert!(seen.starts_with("live"), "{seen}");
}

#[test]
fn with_init_tini_runs_as_pid_1_and_passes_the_stop_signal_on() {
    let daemon = TestDaemon::with_busybox();
    let out = daemon.keel_ok(&[
        "run",
        "--rm",
        "--init",
        "keel-test/busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/sbin/docker-init -- sh -c "), "{out}");
    assert_ne!(lines[1], "1", "the command is not pid 1: {out}");

    // A sleep as pid 1 ignores SIGTERM; under tini it gets it and ends.
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "tini",
        "--init",
        "keel-test/busybox",
        "sleep",
        "60",
    ]);
    let (_, out, _) = daemon.docker(&["inspect", "--format", "{{.HostConfig.Init}}", "tini"]);
    assert_eq!(out, "true\n");
    let began = std::time::Instant::now();
    daemon.keel_ok(&["stop", "-t", "20", "tini"]);
    assert!(
        began.elapsed() < std::time::Duration::from_secs(10),
        "stop waited for SIGKILL"
    );
    assert_eq!(
        daemon.keel_ok(&["inspect", "--format", "{{.State.ExitCode}}", "tini"]),
        "143\n"
    );
    daemon.keel_ok(&["rm", "tini"]);
    // The docker CLI asks for it the same way.
    let (code, out, err) = daemon.docker(&[
        "run",
        "--rm",
        "--init",
        "keel-test/busybox",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("/sbin/docker-init\0--\0cat\0"), "{out:?}");
}

#[test]
fn ps_filters_by_creation_order_and_volume_and_prune_takes_until_and_label_filters() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "create",
        "--name",
        "first",
        "-v",
        "ordervol:/data",
        "keel-test/busybox",
        "true",
    ]);
    daemon.keel_ok(&[
        "create",
        "--name",
        "second",
        "--label",
        "keep=1",
        "keel-test/busybox",
        "true",
    ]);
    daemon.keel_ok(&["create", "--name", "third", "keel-test/busybox", "true"]);
    let names =
        |filter: &str| daemon.keel_ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(names("before=third"), "second\nfirst\n");
    assert_eq!(names("since=first"), "third\nsecond\n");
    assert_eq!(names("volume=ordervol"), "first\n");
    assert_eq!(names("volume=/data"), "first\n");
    let (code, out, err) = daemon.docker(&[
        "ps",
        "-a",
        "--filter",
        "before=second",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!((code, out.as_str()), (0, "first\n"), "{err}");
    let (code, _, err) = daemon.keel(&["ps", "-a", "--filter", "since=nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // Nothing made an hour ago; then everything but the labelled one.
    let pruned = daemon.keel_ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(pruned, "Total reclaimed space: 0B\n");
    let (code, _, err) = daemon.docker(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        daemon.keel_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "second\n"
    );
    let (code, _, err) = daemon.keel(&["container", "prune", "-f", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let pruned = daemon.keel_ok(&["container", "prune", "-f", "--filter", "label=keep=1"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
}

#[test]
fn every_label_filter_given_must_hold_in_ps_network_ls_images_and_volume_ls() {
    let daemon = TestDaemon::with_busybox();
    let tar = daemon.busybox_tar();
    let tar = tar.to_str().unwrap();
    // For each kind: one with both labels, one with `a=1` and another `b`.
    for (name, b) in [("both", "2"), ("only-a", "3")] {
        let (a, b) = ("a=1".to_owned(), format!("b={b}"));
        daemon.keel_ok(&[
            "create",
            "--name",
            name,
            "-l",
            &a,
            "-l",
            &b,
            common::BUSYBOX,
            "true",
        ]);
        let subnet = daemon.user_subnet(if name == "both" { 0 } else { 1 });
        let network = format!("{name}-net");
        daemon.keel_ok(&[
            "network", "create", "--subnet", &subnet, "--label", &a, "--label", &b, &network,
        ]);
        let image = format!("keel-test/{name}");
        let (label_a, label_b) = (format!("LABEL {a}"), format!("LABEL {b}"));
        daemon.keel_ok(&["import", "-c", &label_a, "-c", &label_b, tar, &image]);
        let volume = format!("{name}-vol");
        let (code, _, err) =
            daemon.docker(&["volume", "create", "--label", &a, "--label", &b, &volume]);
        assert_eq!(code, 0, "{err}");
    }
    let listed = |args: &[&str], filters: &[&str]| listed_with(&daemon, args, filters);
    let ps = ["ps", "-a", "--format", "{{.Names}}"];
    let networks = ["network", "ls", "--format", "{{.Name}}"];
    let images = ["images", "--format", "{{.Repository}}"];
    let volumes = ["volume", "ls", "--format", "{{.Name}}"];
    let both = ["label=a=1", "label=b=2"];
    assert_eq!(listed(&ps, &both), ["both"]);
    assert_eq!(listed(&networks, &both), ["both-net"]);
    assert_eq!(listed(&images, &both), ["keel-test/both"]);
    assert_eq!(listed(&volumes, &both), ["both-vol"]);
    // A key alone asks only that the label be there.
    let keys = ["label=a", "label=b"];
    assert_eq!(listed(&ps, &keys), ["both", "only-a"]);
    assert_eq!(listed(&networks, &keys), ["both-net", "only-a-net"]);
    assert_eq!(
        listed(&images, &keys),
        ["keel-test/both", "keel-test/only-a"]
    );
    assert_eq!(listed(&volumes, &keys), ["both-vol", "only-a-vol"]);
    // Other keys still narrow what the labels let through.
    assert_eq!(listed(&ps, &["label=a=1", "name=only"]), ["only-a"]);
    assert_eq!(listed(&volumes, &["label=a", "name=both"]), ["both-vol"]);

    // Images take `label!` too, each on its own (as Docker's containerd
    // store): neither `b=2` nor `a` leaves only busybox.
    assert_eq!(
        listed(&images, &["label!=b=2"]),
        ["keel-test/busybox", "keel-test/only-a"]
    );
    assert_eq!(
        listed(&images, &["label!=b=2", "label!=a"]),
        ["keel-test/busybox"]
    );
    // Lists that do not take a key refuse it, as Docker's do.
    for (args, key) in [
        (&networks[..], "label!"),
        (&volumes[..], "label!"),
        (&ps[..], "label!"),
        (&networks[..], "colour"),
        (&volumes[..], "colour"),
    ] {
        let mut args = args.to_vec();
        let filter = format!("{key}=a");
        args.extend(["--filter", &filter]);
        let (code, _, err) = daemon.docker(&args);
        assert_eq!(code, 1, "docker {args:?}");
        assert!(err.contains(&format!("invalid filter '{key}'")), "{err}");
    }
}

#[test]
fn name_filters_are_regular_expressions_in_ps_volume_ls_and_network_ls() {
    let daemon = TestDaemon::with_busybox();
    let names = ["web", "web2", "myweb"];
    for (n, name) in (0..).zip(names) {
        daemon.keel_ok(&["create", "--name", name, common::BUSYBOX, "true"]);
        daemon.keel_ok(&["volume", "create", name]);
        let subnet = daemon.user_subnet(n);
        daemon.keel_ok(&["network", "create", "--subnet", &subnet, name]);
    }
    let listed = |args: &[&str], filter: &str| listed_with(&daemon, args, &[filter]);
    let ps = ["ps", "-a", "--format", "{{.Names}}"];
    let volumes = ["volume", "ls", "--format", "{{.Name}}"];
    let networks = ["network", "ls", "--format", "{{.Name}}"];
    // A container's name is matched with its leading slash and without.
    assert_eq!(listed(&ps, "name=^/web$"), ["web"]);
    assert_eq!(listed(&ps, "name=^web$"), ["web"]);
    assert_eq!(listed(&ps, "name=/web"), ["web", "web2"]);
    for list in [&ps[..], &volumes, &networks] {
        assert_eq!(listed(list, "name=web"), ["myweb", "web", "web2"]);
        assert_eq!(listed(list, "name=^web"), ["web", "web2"]);
        assert_eq!(listed(list, "name=we.$"), ["myweb", "web"]);
        // Not a regular expression: it matches nothing, and is no error.
        assert_eq!(listed(list, "name=web("), Vec::<String>::new());
    }
    assert_eq!(listed(&networks, "name=^web$"), ["web"]);
    assert_eq!(listed(&volumes, "name=^web$"), ["web"]);
    // A network's id is matched the same way: any part of it will do.
    let id = daemon.keel_ok(&["network", "inspect", "-f", "{{.Id}}", "web2"]);
    assert_eq!(listed(&networks, &format!("id={}", &id[20..32])), ["web2"]);
    assert_eq!(listed(&networks, &format!("id=^{}", &id[..12])), ["web2"]);
}

#[test]
fn a_container_whose_monitor_is_killed_is_killed_too_and_leaves_no_cgroup() {
    let daemon = TestDaemon::with_busybox();
    let id = daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        common::BUSYBOX,
        "sleep",
        "600",
    ]);
    let id = id.trim();
    let pid: i32 = daemon
        .keel_ok(&["inspect", "--format", "{{.State.Pid}}", "orphan"])
        .trim()
        .parse()
        .unwrap();
    // The monitor is the process's parent.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let monitor: i32 = fields[1].parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("keel-monitor"));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(monitor).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while daemon.keel_ok(&["inspect", "--format", "{{.State.Status}}", "orphan"]) != "exited\n" {
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        daemon.keel_ok(&["inspect", "--format", "{{.State.ExitCode}}", "orphan"]),
        "255\n"
    );
    let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("sleep"));
    assert!(!alive, "the process outlived its monitor");
    let cgroup = format!("/sys/fs/cgroup/pids/keel/{id}");
    assert!(
        !std::path::Path::new(&cgroup).exists(),
        "{cgroup} left behind"
    );
    daemon.keel_ok(&["rm", "orphan"]);
}

#[test]
fn an_id_prefix_of_several_containers_is_refused_as_docker_refuses_it() {
    let daemon = TestDaemon::with_busybox();
    // 40 containers: some first hex digit is shared (pigeonhole: 16 digits).
    for i in 0..40 {
        daemon.keel_ok(&[
            "create",
            "--name",
            &format!("c{i}"),
            common::BUSYBOX,
            "true",
        ]);
    }
    let ids = daemon.keel_ok(&["ps", "-aq", "--no-trunc"]);
    let digit = ('0'..='9')
        .chain('a'..='f')
        .find(|d| ids.lines().filter(|id| id.starts_with(*d)).count() > 1)
        .unwrap()
        .to_string();
    for tool in ["docker", "keel"] {
        let (code, _, err) = match tool {
            "docker" => daemon.docker(&["rm", &digit]),
            _ => daemon.keel(&["rm", &digit]),
        };
        assert_ne!(code, 0, "{tool}");
        assert!(
            err.contains(&format!("multiple IDs found with provided prefix: {digit}")),
            "{tool}: {err}"
        );
    }
    let after = daemon.keel_ok(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(after.lines().count(), 40);
}
