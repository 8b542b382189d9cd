//! Confinement as Docker sets it up, observed from inside busybox
//! containers: capabilities, seccomp, no-new-privileges, read-only roots
//! and --privileged, through keel and the docker CLI.

mod common;

use common::TestDaemon;

const IMAGE: &str = common::BUSYBOX;

/// Docker's 14 default capabilities as the kernel's bit mask.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// `field` of /proc/self/status in a container run with `flags`.
fn status_fields(daemon: &TestDaemon, flags: &[&str], fields: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend(flags);
    let pattern = format!("^({fields}):");
    args.extend([IMAGE, "grep", "-E", &pattern, "/proc/self/status"]);
    let out = daemon.keel_ok(&args);
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn containers_get_dockers_capabilities_and_seccomp_profile_without_no_new_privs() {
    let daemon = TestDaemon::with_busybox();
    assert_eq!(
        status_fields(&daemon, &[], "CapEff|CapBnd|NoNewPrivs|Seccomp"),
        format!("CapEff: {DOCKER_CAPS}; CapBnd: {DOCKER_CAPS}; NoNewPrivs: 0; Seccomp: 2")
    );
    // No signal ignored or blocked by whoever started it (the daemon's
    // Rust runtime ignores SIGPIPE; the container must not inherit that).
    assert_eq!(
        status_fields(&daemon, &[], "SigBlk|SigIgn"),
        "SigBlk: 0000000000000000; SigIgn: 0000000000000000"
    );
    // The profile denies namespaces without CAP_SYS_ADMIN, and allows chroot
    // to a container that holds CAP_SYS_CHROOT.
    let (code, _, err) = daemon.keel(&["run", "--rm", IMAGE, "unshare", "-n", "true"]);
    assert_eq!(code, 1);
    assert!(err.contains("Operation not permitted"), "{err}");
    let (code, _, err) = daemon.keel(&["run", "--rm", IMAGE, "chroot", "/", "true"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn cap_add_and_cap_drop_change_the_capabilities_and_what_seccomp_allows() {
    let daemon = TestDaemon::with_busybox();
    assert_eq!(
        status_fields(
            &daemon,
            &["--cap-drop", "ALL", "--cap-add", "chown"],
            "CapEff"
        ),
        "CapEff: 0000000000000001"
    );
    assert_eq!(
        status_fields(&daemon, &["--cap-drop", "CAP_KILL"], "CapEff"),
        "CapEff: 00000000a80425db"
    );
    // With CAP_SYS_ADMIN the profile lets unshare and mount through.
    let (code, out, err) = daemon.keel(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        IMAGE,
        "unshare",
        "-n",
        "sh",
        "-c",
        "mkdir /m && mount -t tmpfs none /m && echo mounted",
    ]);
    assert_eq!((code, out.as_str()), (0, "mounted\n"), "{err}");
}

#[test]
fn no_new_privileges_and_a_read_only_root_are_applied() {
    let daemon = TestDaemon::with_busybox();
    assert_eq!(
        status_fields(
            &daemon,
            &["--security-opt", "no-new-privileges"],
            "NoNewPrivs"
        ),
        "NoNewPrivs: 1"
    );
    assert_eq!(
        status_fields(
            &daemon,
            &["--security-opt", "no-new-privileges=false"],
            "NoNewPrivs"
        ),
        "NoNewPrivs: 0"
    );
    let (code, _, err) = daemon.keel(&["run", "--rm", "--read-only", IMAGE, "touch", "/new"]);
    assert_eq!(code, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    let (code, _, err) = daemon.keel(&["run", "--rm", IMAGE, "touch", "/new"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn privileged_containers_hold_every_capability_unfiltered_with_the_hosts_devices() {
    let daemon = TestDaemon::with_busybox();
    let bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_owned()))
        .unwrap();
    assert_eq!(
        status_fields(&daemon, &["--privileged"], "CapEff|Seccomp"),
        format!("CapEff: {bounding}; Seccomp: 0")
    );
    // /proc is unmasked, /sys writable, and the host's devices are there.
    let (code, out, err) = daemon.keel(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "grep -q '^Timer List' /proc/timer_list && grep -q ' /sys sysfs rw' /proc/mounts && test -c /dev/kmsg && echo ok",
    ]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let (code, _, _) = daemon.keel(&["run", "--rm", IMAGE, "test", "-c", "/dev/kmsg"]);
    assert_eq!(code, 1, "an unprivileged container has no /dev/kmsg");
}

#[test]
fn a_seccomp_profile_file_is_applied_by_keel_and_by_the_docker_cli() {
    let daemon = TestDaemon::with_busybox();
    // Docker's format: mkdir answers EXDEV, the rest is allowed.
    let profile = daemon.path("profile.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
        }"#,
    )
    .unwrap();
    let option = format!("seccomp={}", profile.display());
    let args = [
        "run",
        "--rm",
        "--security-opt",
        &option,
        IMAGE,
        "mkdir",
        "/made",
    ];
    for (client, (code, _, err)) in [
        ("keel", daemon.keel(&args)),
        ("docker", daemon.docker(&args)),
    ] {
        assert_eq!(code, 1, "{client}");
        assert!(err.contains("Invalid cross-device link"), "{client}: {err}");
    }
    let (code, out, err) = daemon.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "--cap-add",
        "NET_ADMIN",
        IMAGE,
        "grep",
        "-E",
        "^(Seccomp|CapEff):",
        "/proc/self/status",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["CapEff:", "00000000a80435fb", "Seccomp:", "0"]
    );
}

#[test]
fn bad_security_flags_fail_with_125_in_dockers_words_and_create_nothing() {
    let daemon = TestDaemon::with_busybox();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--cap-add", "NET_FLY"],
            "unknown capability: \"CAP_NET_FLY\"",
        ),
        (
            &["--cap-add", "SYS_RESOURCE"],
            "not available in the current environment: \"CAP_SYS_RESOURCE\"",
        ),
        (
            &["--security-opt", "colour=blue"],
            "invalid --security-opt 2: \"colour=blue\"",
        ),
        (
            &["--security-opt", "seccomp=/no/such/profile.json"],
            "opening seccomp profile (/no/such/profile.json) failed",
        ),
        (
            &["--security-opt", "label"],
            "Invalid --security-opt: \"label\"",
        ),
    ];
    for (flags, wording) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([IMAGE, "true"]);
        let (code, _, err) = daemon.keel(&args);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(wording), "{flags:?}: {err}");
    }
    // Seen by the daemon (the docker CLI does not read this one).
    let bad = daemon.path("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let (code, _, err) = daemon.docker(&[
        "run",
        "--security-opt",
        &format!("seccomp={}", bad.display()),
        IMAGE,
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(err.contains("decoding seccomp profile failed"), "{err}");
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "", "no container was made");
}
