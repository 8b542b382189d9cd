//! OCI hooks run at their points of the lifecycle, in the right namespace,
//! with the container's state on stdin.

mod common;

use common::{Bundle, Runtime, text, unique_name};
use oci_spec::runtime::{Hook, HooksBuilder};

/// A hook that appends "`name` `status`" (the status read from the state
/// on stdin) to `log`, using the `sh` found at `shell`.
fn logging_hook(shell: &str, name: &str, log: &str) -> Hook {
    let script = format!(
        "status=$(sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p'); echo \"{name} $status\" >> {log}"
    );
    common::hook(shell, &["sh", "-c", &script])
}

#[test]
fn every_hook_runs_once_in_lifecycle_order_with_the_state_on_stdin() {
    let runtime = Runtime::new();
    let id = unique_name("hooks");
    let logs = tempfile::tempdir().unwrap();
    let host_log = logs.path().join("log");
    let host_log = host_log.to_str().unwrap();
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        // startContainer hooks resolve paths in the container, so they log
        // through a bind mount of the same directory.
        let mount = common::bind_mount(logs.path(), "/hooklog", &["rbind"]);
        spec.mounts_mut().as_mut().unwrap().push(mount);
        let hooks = HooksBuilder::default()
            .prestart(vec![logging_hook("/bin/sh", "prestart", host_log)])
            .create_runtime(vec![logging_hook("/bin/sh", "createRuntime", host_log)])
            .create_container(vec![logging_hook("/bin/sh", "createContainer", host_log)])
            .start_container(vec![logging_hook(
                "/bin/sh",
                "startContainer",
                "/hooklog/log",
            )])
            .poststart(vec![logging_hook("/bin/sh", "poststart", host_log)])
            .poststop(vec![logging_hook("/bin/sh", "poststop", host_log)])
            .build()
            .unwrap();
        spec.set_hooks(Some(hooks));
    });
    let (code, _, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let log = std::fs::read_to_string(host_log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "prestart creating",
            "createRuntime creating",
            "createContainer creating",
            "startContainer created",
            "poststart running",
            "poststop stopped",
        ],
    );
}

#[test]
fn the_create_container_hook_runs_in_the_containers_namespaces() {
    let runtime = Runtime::new();
    let id = unique_name("hookns");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("ns");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let script = format!(
            "readlink /proc/self/ns/uts > {0}; hostname >> {0}",
            out.display()
        );
        let hook = common::hook("/bin/sh", &["sh", "-c", &script]);
        spec.set_hooks(Some(
            HooksBuilder::default()
                .create_container(vec![hook])
                .build()
                .unwrap(),
        ));
        spec.set_hostname(Some("hooked".into()));
    });
    let (code, _, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let seen = std::fs::read_to_string(&out).unwrap();
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_ne!(
        seen.lines().next().unwrap(),
        host_uts.to_str().unwrap(),
        "hook ran in the host's UTS namespace"
    );
}

#[test]
fn a_hook_that_outlives_its_timeout_is_killed_and_fails_create() {
    let runtime = Runtime::new();
    let id = unique_name("hooktimeout");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let mut hook = common::hook("/bin/sleep", &["sleep", "30"]);
        hook.set_timeout(Some(1));
        spec.set_hooks(Some(
            HooksBuilder::default()
                .prestart(vec![hook])
                .build()
                .unwrap(),
        ));
    });
    let started = std::time::Instant::now();
    let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("timed out after 1s"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!runtime.root().join(&id).exists());
}

#[test]
fn a_failing_poststop_hook_is_a_warning_and_delete_still_cleans_up() {
    let runtime = Runtime::new();
    let id = unique_name("poststop");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let hook = common::hook("/bin/false", &[]);
        spec.set_hooks(Some(
            HooksBuilder::default()
                .poststop(vec![hook])
                .build()
                .unwrap(),
        ));
    });
    let container = runtime.create(&bundle, &id);
    container.start();
    container.wait_stopped();
    let out = runtime.output(&["delete", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: poststop hook /bin/false failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!runtime.root().join(&id).exists());
}

#[test]
fn a_failing_poststart_or_poststop_hook_is_a_warning_and_the_hooks_after_it_still_run() {
    let runtime = Runtime::new();
    let id = unique_name("poststart");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("log");
    let log = log.to_str().unwrap();
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let failing = || common::hook("/bin/false", &[]);
        spec.set_hooks(Some(
            HooksBuilder::default()
                .poststart(vec![failing(), logging_hook("/bin/sh", "poststart", log)])
                .poststop(vec![failing(), logging_hook("/bin/sh", "poststop", log)])
                .build()
                .unwrap(),
        ));
    });
    let (code, _, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    for kind in ["poststart", "poststop"] {
        assert!(
            err.contains(&format!("warning: {kind} hook /bin/false failed")),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(log).unwrap(),
        "poststart running\npoststop stopped\n"
    );
}

#[test]
fn a_hook_that_writes_much_output_does_not_stall_create() {
    let runtime = Runtime::new();
    let id = unique_name("hookoutput");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let chatty = common::hook(
            "/bin/sh",
            &[
                "sh",
                "-c",
                "head -c 4000000 /dev/zero; head -c 4000000 /dev/zero >&2",
            ],
        );
        spec.set_hooks(Some(
            HooksBuilder::default()
                .prestart(vec![chatty])
                .build()
                .unwrap(),
        ));
    });
    let (code, _, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
}
