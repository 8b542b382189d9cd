//! Each piece of isolation the config asks for, observed from inside a
//! busybox container on the real kernel.

mod common;

use std::collections::HashSet;

use common::{Bundle, Runtime, unique_name};
use oci_spec::runtime::{
    Capability, IOPriorityClass, LinuxCapabilities, LinuxIOPriorityBuilder, LinuxIdMappingBuilder,
    LinuxMemory, LinuxNamespaceType, LinuxPersonality, LinuxPersonalityDomain, LinuxPids,
    LinuxSeccomp, PosixRlimitBuilder, PosixRlimitType, User,
};

fn run(bundle: &Bundle, id: &str) -> (i32, String, String) {
    Runtime::new().run(bundle, id)
}

fn shell(id: &str, script: &str) -> Bundle {
    Bundle::busybox(id, &["sh", "-c", script])
}

#[test]
fn the_process_has_exactly_the_configured_capabilities_and_no_new_privileges() {
    let id = unique_name("caps");
    let mut bundle = shell(&id, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    bundle.edit(|spec| {
        let set: HashSet<Capability> =
            [Capability::Chown, Capability::NetRaw, Capability::Kill].into();
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(set.clone()))
            .set_effective(Some(set.clone()))
            .set_permitted(Some(set.clone()))
            .set_inheritable(Some([Capability::Kill].into()))
            .set_ambient(Some([Capability::Kill].into()));
        let process = spec.process_mut().as_mut().unwrap();
        process
            .set_capabilities(Some(caps))
            .set_no_new_privileges(Some(true));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    // CHOWN is bit 0, KILL bit 5, NET_RAW bit 13.
    let mask = format!("{:016x}", 1u64 | 1 << 5 | 1 << 13);
    for line in [
        format!("CapEff:\t{mask}"),
        format!("CapPrm:\t{mask}"),
        format!("CapBnd:\t{mask}"),
        format!("CapInh:\t{:016x}", 1u64 << 5),
        format!("CapAmb:\t{:016x}", 1u64 << 5),
        "NoNewPrivs:\t1".to_owned(),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
}

#[test]
fn a_read_only_root_refuses_writes() {
    let id = unique_name("rofs");
    let mut bundle = shell(&id, "touch /newfile");
    bundle.edit(|spec| {
        let mut root = spec.root().clone().unwrap();
        root.set_readonly(Some(true));
        spec.set_root(Some(root));
    });
    let (code, _, err) = run(&bundle, &id);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!bundle.rootfs().join("newfile").exists());
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    let id = unique_name("mask");
    let bundle = shell(
        &id,
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname",
    );
    let (code, out, err) = run(&bundle, &id);
    assert_ne!(code, 0, "writing under /proc/sys must fail");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "{out}"
    );
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn hostname_user_groups_cwd_and_umask_are_the_configured_ones() {
    let id = unique_name("ident");
    let mut bundle = shell(&id, "hostname; id -u; id -g; id -G; pwd; umask");
    bundle.edit(|spec| {
        spec.set_hostname(Some("box-one".to_owned()));
        let mut user = User::default();
        user.set_uid(1000)
            .set_gid(1000)
            .set_additional_gids(Some(vec![5, 65534]))
            .set_umask(Some(0o027));
        let process = spec.process_mut().as_mut().unwrap();
        process.set_user(user).set_cwd("/home/user".into());
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "box-one",
            "1000",
            "1000",
            "1000 5 65534",
            "/home/user",
            "0027"
        ],
        "{out}"
    );
}

#[test]
fn rlimits_and_oom_score_adj_apply() {
    let id = unique_name("rlim");
    let mut bundle = shell(&id, "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj");
    bundle.edit(|spec| {
        let nofile = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(123u64)
            .hard(456u64)
            .build()
            .unwrap();
        let process = spec.process_mut().as_mut().unwrap();
        process
            .set_rlimits(Some(vec![nofile]))
            .set_oom_score_adj(Some(500));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["123", "456", "500"]);
}

#[test]
fn a_process_allocating_past_the_memory_limit_is_oom_killed() {
    let id = unique_name("oom");
    // awk doubles a string until the memory runs out.
    let mut bundle = Bundle::busybox(&id, &["awk", "BEGIN { s = \"x\"; while (1) s = s s }"]);
    bundle.edit(|spec| {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(32 << 20)).set_swap(Some(32 << 20));
        common::edit_resources(spec, |resources| {
            resources.set_memory(Some(memory));
        });
    });
    let (code, _, err) = run(&bundle, &id);
    assert_eq!(code, 128 + 9, "expected SIGKILL from the OOM killer: {err}");
}

#[test]
fn forking_past_the_pids_limit_fails() {
    let id = unique_name("pids");
    let mut bundle = shell(&id, "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait");
    bundle.edit(|spec| {
        let mut pids = LinuxPids::default();
        pids.set_limit(4);
        common::edit_resources(spec, |resources| {
            resources.set_pids(Some(pids));
        });
    });
    let (_, _, err) = run(&bundle, &id);
    assert!(err.contains("can't fork"), "{err}");
}

#[test]
fn the_cgroup_holds_the_configured_limits_and_is_removed_afterwards() {
    let id = unique_name("cglim");
    let mut bundle = Bundle::busybox(
        &id,
        &[
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        ],
    );
    bundle.edit(|spec| {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(64 << 20));
        let mut pids = LinuxPids::default();
        pids.set_limit(77);
        common::edit_resources(spec, |resources| {
            resources.set_memory(Some(memory)).set_pids(Some(pids));
        });
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [(64u64 << 20).to_string().as_str(), "77"]
    );
    for controller in ["memory", "pids", "cpu", "devices", "freezer"] {
        assert!(
            !common::v1_cgroup(controller, &id).exists(),
            "{controller} cgroup left behind"
        );
    }
}

#[test]
fn a_syscall_denied_by_the_profile_returns_the_configured_errno() {
    let id = unique_name("seccomp");
    let mut bundle = shell(&id, "mkdir /tmp/blocked");
    bundle.edit(|spec| {
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
        }))
        .unwrap();
        spec.linux_mut().as_mut().unwrap().set_seccomp(Some(profile));
    });
    let (code, _, err) = run(&bundle, &id);
    assert_ne!(code, 0);
    assert!(
        err.contains("Invalid cross-device link"),
        "expected EXDEV: {err}"
    );
}

#[test]
fn a_read_only_bind_mount_reads_but_refuses_writes() {
    let id = unique_name("bindro");
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let mut bundle = shell(&id, "cat /data/f; echo x > /data/g");
    bundle.edit(|spec| {
        let mount = common::bind_mount(host.path(), "/data", &["rbind", "ro", "nosuid", "nodev"]);
        spec.mounts_mut().as_mut().unwrap().push(mount);
    });
    let (code, out, err) = run(&bundle, &id);
    assert_ne!(code, 0);
    assert_eq!(out, "from the host\n");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!host.path().join("g").exists());
}

#[test]
fn a_new_user_namespace_maps_root_to_the_configured_host_range() {
    let id = unique_name("userns");
    let mut bundle = shell(&id, "id -u; cat /proc/self/uid_map /proc/self/gid_map");
    bundle.edit(|spec| new_user_namespace(spec, 200_000));
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "200000", "65536", "0", "200000", "65536"],
        "{out}"
    );
}

/// The namespaces a container makes while joining another's user namespace
/// must belong to that user namespace: only then may its root set the
/// hostname of its own UTS namespace, mount its own /proc and be pid 1.
#[test]
fn namespaces_made_beside_a_joined_user_namespace_belong_to_it() {
    let runtime = Runtime::new();
    let owner_id = unique_name("usernsowner");
    let mut owner_bundle = Bundle::busybox(&owner_id, &["sleep", "100"]);
    owner_bundle.edit(|spec| new_user_namespace(spec, 300_000));
    let owner = runtime.create(&owner_bundle, &owner_id);
    owner.start();
    let path = format!("/proc/{}/ns/user", owner.pid());
    let theirs = std::fs::read_link(&path).unwrap();

    let id = unique_name("usernsjoin");
    let mut bundle = shell(
        &id,
        "readlink /proc/self/ns/user; hostname; id -u; cat /proc/self/uid_map; echo $$",
    );
    bundle.edit(|spec| {
        common::edit_namespaces(spec, |list| {
            list.push(common::namespace(LinuxNamespaceType::User))
        });
        common::join_namespace(spec, LinuxNamespaceType::User, &path);
    });
    let (code, out, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        [
            theirs.to_str().unwrap(),
            "keel",
            "0",
            "0",
            "300000",
            "65536",
            "1"
        ],
        "{out}"
    );
}

/// Gives `spec` a new user namespace mapping 65536 ids from `host_id` on.
fn new_user_namespace(spec: &mut oci_spec::runtime::Spec, host_id: u32) {
    common::edit_namespaces(spec, |list| {
        list.push(common::namespace(LinuxNamespaceType::User))
    });
    let linux = spec.linux_mut().as_mut().unwrap();
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(host_id)
        .size(65536u32)
        .build()
        .unwrap();
    linux
        .set_uid_mappings(Some(vec![map]))
        .set_gid_mappings(Some(vec![map]));
}

#[test]
fn namespaced_sysctls_are_set_in_the_container_only() {
    let id = unique_name("sysctl");
    let mut bundle = shell(&id, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start");
    bundle.edit(|spec| {
        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_sysctl(Some(
            [(
                "net.ipv4.ip_unprivileged_port_start".to_owned(),
                "80".to_owned(),
            )]
            .into(),
        ));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "80");
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_ne!(host.trim(), "80", "the host's own value must not change");
}

#[test]
fn a_container_can_join_another_containers_network_namespace_by_path() {
    let runtime = Runtime::new();
    let first_id = unique_name("netowner");
    let first_bundle = Bundle::busybox(&first_id, &["sleep", "100"]);
    let first = runtime.create(&first_bundle, &first_id);
    first.start();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/net", first.pid())).unwrap();

    let id = unique_name("netjoin");
    let mut bundle = Bundle::busybox(&id, &["readlink", "/proc/self/ns/net"]);
    let path = format!("/proc/{}/ns/net", first.pid());
    bundle.edit(|spec| common::join_namespace(spec, LinuxNamespaceType::Network, &path));
    let (code, out, err) = runtime.run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), theirs.to_str().unwrap());
}

#[test]
fn only_the_configured_devices_exist_and_the_device_cgroup_guards_the_rest() {
    let id = unique_name("devs");
    // mknod is allowed (CAP_MKNOD below), but opening the disk it names is
    // not: the device cgroup only lets the default devices be opened.
    let mut bundle = shell(&id, "ls /dev; mknod /tmp/disk b 8 0 && head -c1 /tmp/disk");
    bundle.edit(|spec| {
        let caps: HashSet<Capability> = [Capability::Mknod, Capability::DacOverride].into();
        let mut set = LinuxCapabilities::default();
        set.set_bounding(Some(caps.clone()))
            .set_effective(Some(caps.clone()))
            .set_permitted(Some(caps));
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_capabilities(Some(set));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_ne!(code, 0);
    let listed: HashSet<&str> = out.split_whitespace().collect();
    let expected: HashSet<&str> = [
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero", "core",
    ]
    .into();
    assert!(
        listed.is_subset(&expected),
        "unexpected devices: {listed:?}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn a_cgroup_namespace_shows_the_container_its_cgroup_as_the_root() {
    let id = unique_name("cgns");
    let bundle = shell(&id, "grep -E '^[0-9]+:(memory|pids):' /proc/self/cgroup");
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "{line}: the container should see its cgroup as /"
        );
    }
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn the_domain_name_is_set_in_the_containers_uts_namespace() {
    let id = unique_name("domain");
    let mut bundle = shell(&id, "cat /proc/sys/kernel/domainname");
    bundle.edit(|spec| {
        spec.set_domainname(Some("keel.example".into()));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "keel.example");
}

#[test]
fn a_noexec_bind_mount_refuses_to_run_programs() {
    let id = unique_name("noexec");
    let host = tempfile::tempdir().unwrap();
    std::fs::copy(keel_testkit::BUSYBOX, host.path().join("busybox")).unwrap();
    let mut bundle = shell(&id, "/data/busybox true");
    bundle.edit(|spec| {
        let mount = common::bind_mount(host.path(), "/data", &["bind", "noexec"]);
        spec.mounts_mut().as_mut().unwrap().push(mount);
    });
    let (code, _, err) = run(&bundle, &id);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn cpu_shares_quota_and_cpuset_are_written_to_the_cgroup() {
    let id = unique_name("cpu");
    let mut bundle = Bundle::busybox(
        &id,
        &[
            "cat",
            "/sys/fs/cgroup/cpu/cpu.shares",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
        ],
    );
    bundle.edit(|spec| {
        let cpu: oci_spec::runtime::LinuxCpu = serde_json::from_value(serde_json::json!({
            "shares": 512, "quota": 50000, "period": 200000, "cpus": "0"
        }))
        .unwrap();
        common::edit_resources(spec, |resources| {
            resources.set_cpu(Some(cpu));
        });
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["512", "50000", "200000", "0"]
    );
}

#[test]
fn time_namespace_offsets_move_the_containers_boot_clock() {
    let id = unique_name("timens");
    let mut bundle = shell(&id, "cut -d. -f1 /proc/uptime");
    bundle.edit(|spec| {
        common::edit_namespaces(spec, |list| {
            list.push(common::namespace(LinuxNamespaceType::Time))
        });
        let offsets =
            serde_json::from_value(serde_json::json!({"boottime": {"secs": 1_000_000}})).unwrap();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_time_offsets(Some(offsets));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    let uptime: u64 = out.trim().parse().unwrap();
    assert!(
        uptime >= 1_000_000,
        "uptime {uptime} should include the offset"
    );
}

#[test]
fn an_rslave_bind_sees_mounts_the_host_makes_later() {
    let runtime = Runtime::new();
    let id = unique_name("propagation");
    let host = tempfile::tempdir().unwrap();
    let shared = host.path().to_str().unwrap().to_owned();
    // A shared mount point of the test's own, so nothing else is affected.
    rustix::mount::mount_bind(&shared, &shared).unwrap();
    rustix::mount::mount_change(&shared, rustix::mount::MountPropagationFlags::SHARED).unwrap();
    let unmount = |path: &str| {
        let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    };
    let mut bundle = Bundle::busybox(&id, &["sleep", "100"]);
    bundle.edit(|spec| {
        let mount = common::bind_mount(host.path(), "/shared", &["rbind", "rslave"]);
        spec.mounts_mut().as_mut().unwrap().push(mount);
    });
    let container = runtime.create(&bundle, &id);
    container.start();
    let later = host.path().join("later");
    std::fs::create_dir(&later).unwrap();
    let mounted = rustix::mount::mount(
        "tmpfs",
        &later,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        c"size=1m",
    );
    let seen = mounted
        .map(|()| container.exec(&["sh", "-c", "grep -c ' /shared/later ' /proc/self/mountinfo"]));
    unmount(later.to_str().unwrap());
    unmount(&shared);
    let (code, out, err) = seen.unwrap();
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
}

#[test]
fn the_personality_and_io_priority_apply_to_the_process() {
    let id = unique_name("persona");
    let mut bundle = shell(&id, "uname -m; ionice");
    bundle.edit(|spec| {
        let mut persona = LinuxPersonality::default();
        persona.set_domain(LinuxPersonalityDomain::PerLinux32);
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_personality(Some(persona));
        let priority = LinuxIOPriorityBuilder::default()
            .class(IOPriorityClass::IoprioClassBe)
            .priority(3)
            .build()
            .unwrap();
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_io_priority(Some(priority));
    });
    let (code, out, err) = run(&bundle, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "i686\nbest-effort: prio 3\n");
}

/// `--no-pivot` (for roots pivot_root cannot leave, such as a ramfs) moves
/// the rootfs onto / and chroots into it: the container still sees only
/// its own files.
#[test]
fn with_no_pivot_the_container_sees_only_its_rootfs() {
    let runtime = Runtime::new();
    let id = unique_name("nopivot");
    let bundle = shell(&id, "cat /marker; ls /");
    std::fs::write(bundle.rootfs().join("marker"), "in the rootfs\n").unwrap();
    let out = runtime.output(&[
        "run",
        "--no-pivot",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let (stdout, stderr) = (common::text(&out.stdout), common::text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("in the rootfs"));
    let listed: Vec<&str> = lines.collect();
    let mut expected: Vec<String> = std::fs::read_dir(bundle.rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "{stdout}");
    assert!(!runtime.root().join(&id).exists(), "run leaves no state");
}
