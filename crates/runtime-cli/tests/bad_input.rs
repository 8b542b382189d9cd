//! Bad input gets an error that names the field and value, and leaves
//! nothing behind: no state directory, cgroup, mount or process.

mod common;

use common::{Bundle, Runtime, text, unique_name};
use oci_spec::runtime::{HooksBuilder, LinuxIdMappingBuilder, LinuxNamespaceType};

/// `create` must fail with a message containing every one of `words`, and
/// leave no trace of container `id`.
fn refused(runtime: &Runtime, bundle: &Bundle, id: &str, words: &[&str]) {
    let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "create must fail: {err}");
    for word in words {
        assert!(err.contains(word), "error should mention {word:?}: {err}");
    }
    assert_nothing_left(runtime, bundle, id);
}

fn assert_nothing_left(runtime: &Runtime, bundle: &Bundle, id: &str) {
    assert!(
        !runtime.root().join(id).exists(),
        "state directory left behind"
    );
    for controller in [
        "memory", "pids", "cpu", "devices", "freezer", "blkio", "systemd", "unified",
    ] {
        assert!(
            !common::v1_cgroup(controller, id).exists(),
            "{controller} cgroup left behind"
        );
    }
    assert!(
        !common::host_mounts_mention(bundle.path()),
        "a mount under the bundle is left"
    );
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = text(&cmdline);
        assert!(
            !(cmdline.contains("create") && cmdline.contains(id)),
            "process {:?} left",
            entry.file_name()
        );
    }
}

#[test]
fn a_missing_rootfs_is_named() {
    let runtime = Runtime::new();
    let id = unique_name("norootfs");
    let bundle = Bundle::busybox(&id, &["true"]);
    std::fs::remove_dir_all(bundle.rootfs()).unwrap();
    refused(
        &runtime,
        &bundle,
        &id,
        &["root.path", "rootfs", "must be an existing directory"],
    );
}

#[test]
fn an_unknown_namespace_type_is_named_with_the_valid_ones() {
    let runtime = Runtime::new();
    let id = unique_name("badns");
    let bundle = Bundle::busybox(&id, &["true"]);
    let config = bundle.path().join("config.json");
    let json = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"uts\"", "\"utsx\"");
    std::fs::write(&config, json).unwrap();
    refused(
        &runtime,
        &bundle,
        &id,
        &["config.json", "utsx", "expected one of", "`uts`"],
    );
}

#[test]
fn a_malformed_config_names_the_file_and_position() {
    let runtime = Runtime::new();
    let id = unique_name("badjson");
    let bundle = Bundle::busybox(&id, &["true"]);
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\",\n \"process\": }",
    )
    .unwrap();
    refused(&runtime, &bundle, &id, &["config.json", "line 2"]);
}

#[test]
fn invalid_id_mappings_are_named() {
    let runtime = Runtime::new();
    let with_user_ns = |bundle: &mut Bundle, sizes: &[(u32, u32, u32)]| {
        bundle.edit(|spec| {
            common::edit_namespaces(spec, |list| {
                list.push(common::namespace(LinuxNamespaceType::User))
            });
            let linux = spec.linux_mut().as_mut().unwrap();
            let maps: Vec<_> = sizes
                .iter()
                .map(|(c, h, s)| {
                    LinuxIdMappingBuilder::default()
                        .container_id(*c)
                        .host_id(*h)
                        .size(*s)
                        .build()
                        .unwrap()
                })
                .collect();
            linux
                .set_uid_mappings(Some(maps.clone()))
                .set_gid_mappings(Some(maps));
        });
    };
    let id = unique_name("overlap");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    with_user_ns(&mut bundle, &[(0, 100_000, 1000), (500, 300_000, 10)]);
    refused(
        &runtime,
        &bundle,
        &id,
        &["linux.uidMappings", "containerID 500", "overlaps"],
    );

    let id = unique_name("zeromap");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    with_user_ns(&mut bundle, &[(0, 100_000, 0)]);
    refused(&runtime, &bundle, &id, &["linux.uidMappings", "size 0"]);

    let id = unique_name("nouserns");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1u32)
            .size(1u32)
            .build()
            .unwrap();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_uid_mappings(Some(vec![map]));
    });
    refused(
        &runtime,
        &bundle,
        &id,
        &["linux.uidMappings", "without a new user namespace"],
    );
}

#[test]
fn a_namespace_path_of_the_wrong_type_is_named() {
    let runtime = Runtime::new();
    let id = unique_name("nstype");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        common::join_namespace(spec, LinuxNamespaceType::Network, "/proc/self/ns/ipc")
    });
    refused(
        &runtime,
        &bundle,
        &id,
        &["/proc/self/ns/ipc", "is not a net namespace"],
    );
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_is_untouched() {
    let runtime = Runtime::new();
    let id = unique_name("dup");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let first = runtime.create(&bundle, &id);
    let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(first.status(), "created");
    first.start();
    assert_eq!(first.status(), "running");
}

#[test]
fn an_invalid_id_is_refused_before_anything_is_made() {
    let runtime = Runtime::new();
    let bundle = Bundle::busybox("unused", &["true"]);
    for bad in ["../escape", "a/b", ".."] {
        let out = runtime.output(&["create", "--bundle", bundle.path().to_str().unwrap(), bad]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("invalid container id"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(runtime.root()).unwrap().count(), 0);
}

#[test]
fn a_missing_program_is_reported_as_runc_words_it() {
    let runtime = Runtime::new();
    let id = unique_name("noprog");
    let bundle = Bundle::busybox(&id, &["no-such-program", "arg"]);
    refused(
        &runtime,
        &bundle,
        &id,
        &["\"no-such-program\"", "executable file not found in $PATH"],
    );
}

#[test]
fn a_bind_mount_of_a_missing_source_is_named_and_nothing_is_mounted() {
    let runtime = Runtime::new();
    let id = unique_name("nosource");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let mount = common::bind_mount("/nonexistent/keel-source".as_ref(), "/data", &["rbind"]);
        spec.mounts_mut().as_mut().unwrap().push(mount);
    });
    refused(
        &runtime,
        &bundle,
        &id,
        &["/nonexistent/keel-source", "/data"],
    );
}

#[test]
fn a_failing_prestart_hook_stops_create_and_leaves_nothing() {
    let runtime = Runtime::new();
    let id = unique_name("badhook");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        let hook = common::hook("/bin/sh", &["sh", "-c", "echo refusing >&2; exit 3"]);
        spec.set_hooks(Some(
            HooksBuilder::default()
                .create_runtime(vec![hook])
                .build()
                .unwrap(),
        ));
    });
    refused(
        &runtime,
        &bundle,
        &id,
        &["createRuntime hook /bin/sh failed", "refusing"],
    );
}

#[test]
fn a_hostname_without_a_uts_namespace_is_refused() {
    let runtime = Runtime::new();
    let id = unique_name("nouts");
    let mut bundle = Bundle::busybox(&id, &["true"]);
    bundle.edit(|spec| {
        common::edit_namespaces(spec, |list| {
            list.retain(|ns| ns.typ() != LinuxNamespaceType::Uts)
        });
    });
    refused(
        &runtime,
        &bundle,
        &id,
        &["hostname", "keel", "UTS namespace"],
    );
}
