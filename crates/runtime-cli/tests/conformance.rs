//! What the OCI runtime spec asks of a runtime, beyond the everyday
//! configs, each observed on the real kernel as crun behaves.

mod common;

use common::{Bundle, Runtime, text, unique_name};
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, PosixRlimitBuilder, PosixRlimitType};

fn shell(id: &str, script: &str) -> Bundle {
    Bundle::busybox(id, &["sh", "-c", script])
}

#[test]
fn devices_of_type_p_and_u_are_made_and_only_b_and_c_devices_get_cgroup_rules() {
    let id = unique_name("fifo");
    let mut bundle = shell(
        &id,
        "test -p /dev/kfifo && echo fifo; stat -c '%F %t:%T' /dev/knull; echo x > /dev/knull && echo written",
    );
    bundle.edit(|spec| {
        let linux = spec.linux_mut().as_mut().unwrap();
        let fifo = LinuxDeviceBuilder::default()
            .path("/dev/kfifo")
            .typ(LinuxDeviceType::P)
            .major(0)
            .minor(0)
            .build()
            .unwrap();
        let unbuffered = LinuxDeviceBuilder::default()
            .path("/dev/knull")
            .typ(LinuxDeviceType::U)
            .major(1)
            .minor(3)
            .build()
            .unwrap();
        linux.set_devices(Some(vec![fifo, unbuffered]));
    });
    let (code, out, err) = Runtime::new().run(&bundle, &id);
    assert_eq!(
        (code, out.as_str()),
        (0, "fifo\ncharacter special file 1:3\nwritten\n"),
        "{err}"
    );
}

#[test]
fn a_rootfs_given_as_a_path_ending_in_dot_takes_shared_slave_and_unbindable_propagation() {
    for propagation in ["shared", "slave", "unbindable", "rshared"] {
        let id = unique_name("rootprop");
        let mut bundle = shell(
            &id,
            "grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo",
        );
        let rootfs = format!("{}/.", bundle.rootfs().display());
        bundle.edit(|spec| {
            spec.root_mut().as_mut().unwrap().set_path(rootfs.into());
            spec.linux_mut()
                .as_mut()
                .unwrap()
                .set_rootfs_propagation(Some(propagation.to_owned()));
        });
        let (code, out, err) = Runtime::new().run(&bundle, &id);
        assert_eq!(code, 0, "{propagation}: {err}");
        let root = out.lines().next().unwrap_or_default();
        // A slave of the host's private / has no master to show.
        let (shows, hides): (&[&str], &[&str]) = match propagation {
            "shared" | "rshared" => (&["shared:"], &["unbindable"]),
            "slave" => (&[], &["shared:", "unbindable"]),
            _ => (&["unbindable"], &["shared:"]),
        };
        assert!(
            shows.iter().all(|tag| root.contains(tag))
                && !hides.iter().any(|tag| root.contains(tag)),
            "{propagation}: {root}"
        );
    }
}

#[test]
fn unknown_annotations_are_accepted() {
    let id = unique_name("annot");
    let mut bundle = shell(&id, "echo ran");
    bundle.edit(|spec| {
        spec.set_annotations(Some(
            [("org.example.never-heard-of".to_owned(), "x".to_owned())].into(),
        ));
    });
    let (code, out, err) = Runtime::new().run(&bundle, &id);
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
}

/// `create` of a config whose JSON had `from` replaced by `to` fails
/// naming each of `words`.
fn refused_after(from: &str, to: &str, words: &[&str]) {
    let runtime = Runtime::new();
    let id = unique_name("badname");
    let bundle = shell(&id, "true");
    let config = bundle.path().join("config.json");
    let json = std::fs::read_to_string(&config).unwrap();
    assert!(json.contains(from), "{from} not in the config");
    std::fs::write(&config, json.replacen(from, to, 1)).unwrap();
    let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "create must fail: {err}");
    for word in words {
        assert!(err.contains(word), "the error should name {word:?}: {err}");
    }
    assert!(!runtime.root().join(&id).exists(), "state left behind");
}

#[test]
fn an_unknown_capability_is_refused_naming_its_field_and_value() {
    refused_after(
        "\"CAP_KILL\"",
        "\"CAP_NO_SUCH\"",
        &["process.capabilities", "CAP_NO_SUCH"],
    );
}

#[test]
fn an_unknown_rlimit_type_is_refused_naming_its_field_and_value() {
    refused_after(
        "\"RLIMIT_NOFILE\"",
        "\"RLIMIT_NO_SUCH\"",
        &["process.rlimits", "RLIMIT_NO_SUCH"],
    );
}

#[test]
fn the_soft_open_files_limit_is_exactly_the_one_configured() {
    let id = unique_name("nofile");
    let mut bundle = shell(&id, "ulimit -Sn; ulimit -Hn");
    bundle.edit(|spec| {
        let limit = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(777u64)
            .hard(4321u64)
            .build()
            .unwrap();
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_rlimits(Some(vec![limit]));
    });
    let (code, out, err) = Runtime::new().run(&bundle, &id);
    assert_eq!((code, out.as_str()), (0, "777\n4321\n"), "{err}");
}

#[test]
fn kernel_memory_limits_are_written_where_cgroup_v1_has_their_files() {
    let id = unique_name("kmem");
    let mut bundle = shell(
        &id,
        "cat /sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes",
    );
    bundle.edit(|spec| {
        common::edit_resources(spec, |resources| {
            let mut memory = oci_spec::runtime::LinuxMemory::default();
            memory
                .set_kernel(Some(100 << 20))
                .set_kernel_tcp(Some(50 << 20));
            resources.set_memory(Some(memory));
        });
    });
    let (code, out, err) = Runtime::new().run(&bundle, &id);
    assert_eq!((code, out.as_str()), (0, "52428800\n"), "{err}");
    assert!(!err.contains("skipped"), "{err}");
}

/// A bundle whose config has no mount namespace: the container shares the
/// host's.
fn without_mount_namespace(id: &str, script: &str, readonly: bool) -> Bundle {
    let mut bundle = shell(id, script);
    bundle.edit(|spec| {
        common::edit_namespaces(spec, |list| {
            list.retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Mount)
        });
        spec.root_mut()
            .as_mut()
            .unwrap()
            .set_readonly(Some(readonly));
    });
    bundle
}

#[test]
fn a_config_without_a_mount_namespace_runs_chrooted_with_its_mounts_gone_after_delete() {
    let id = unique_name("nomntns");
    let bundle = without_mount_namespace(
        &id,
        "ls /www; test -r /proc/self/status && echo proc; test -c /dev/null && echo dev; \
         grep -q ' /proc/keys ' /proc/self/mountinfo && echo masked",
        false,
    );
    let (code, out, err) = Runtime::new().run(&bundle, &id);
    assert_eq!(
        (code, out.as_str()),
        (0, "index.html\nproc\ndev\nmasked\n"),
        "{err}"
    );
    assert!(
        !common::host_mounts_mention(&bundle.rootfs()),
        "the container's mounts stayed in the host's namespace"
    );
}

#[test]
fn a_read_only_root_without_a_mount_namespace_is_refused_naming_the_field() {
    let runtime = Runtime::new();
    let id = unique_name("nomntro");
    let bundle = without_mount_namespace(&id, "true", true);
    let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("root.readonly") && err.contains("without a mount namespace"),
        "{err}"
    );
    assert!(!runtime.root().join(&id).exists());
}
