//! Resource limits and stop settings, observed from inside busybox
//! containers: cgroup limits, rlimits, the stop signal; bad values refused
//! in docker's words.

mod common;

use common::{BUSYBOX, TestDaemon};

#[test]
fn limits_reach_the_containers_cgroups_and_rlimits() {
    let daemon = TestDaemon::with_busybox();
    let flags = [
        "run",
        "--rm",
        "-m",
        "32m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "--ulimit",
        "nofile=512:1024",
        BUSYBOX,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
         /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max; ulimit -n; ulimit -Hn",
    ];
    for (client, (code, out, err)) in [
        ("keel", daemon.keel(&flags)),
        ("docker", daemon.docker(&flags)),
    ] {
        assert_eq!(code, 0, "{client}: {err}");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["33554432", "50000", "100000", "20", "512", "1024"],
            "{client}"
        );
    }
    // A process that allocates past the limit is killed, and the exit says so.
    let (code, _, _) = daemon.keel(&[
        "run",
        "--rm",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        BUSYBOX,
        "sh",
        "-c",
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert_eq!(code, 137, "OOM-killed");
}

#[test]
fn stop_sends_the_stop_signal_and_waits_the_stop_timeout() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "5",
        BUSYBOX,
        "sh",
        "-c",
        "trap 'echo got USR1; exit 0' USR1; while true; do sleep 0.1; done",
    ]);
    daemon.keel_ok(&["stop", "polite"]);
    assert_eq!(daemon.keel_ok(&["wait", "polite"]), "0\n");
    assert_eq!(daemon.keel_ok(&["logs", "polite"]), "got USR1\n");
    let (_, out, _) = daemon.docker(&["inspect", "--format", "{{.Config.StopSignal}}", "polite"]);
    assert_eq!(out, "USR1\n");
}

#[test]
fn bad_limits_fail_with_125_in_dockers_words_and_create_nothing() {
    let daemon = TestDaemon::with_busybox();
    let cases: [(&[&str], &str); 6] = [
        (
            &["-m", "64x"],
            "invalid argument \"64x\" for \"-m, --memory\" flag: invalid suffix: 'x'",
        ),
        (&["-m", "1k"], "Minimum memory limit allowed is 6MB"),
        (
            &["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit",
        ),
        (&["--cpus", "512"], "Range of CPUs is from 0.01 to"),
        (
            &["--ulimit", "nofile=20:10"],
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10",
        ),
        (&["--stop-signal", "SIGNOPE"], "Invalid signal: SIGNOPE"),
    ];
    for (flags, wording) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([BUSYBOX, "true"]);
        let (code, _, err) = daemon.keel(&args);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(wording), "{flags:?}: {err}");
    }
    let (code, _, err) = daemon.docker(&["run", "--rm", "-m", "1k", BUSYBOX, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
}
