//! The cgroup v2 device filter (an eBPF program) on the real kernel. It
//! runs on this machine's unified hierarchy, which carries device programs
//! even in the hybrid layout.

use keel_cgroups::{Cgroup, CgroupPath, Hierarchies, Version};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// The unified hierarchy alone, as a pure v2 machine would show it.
fn unified_only() -> Hierarchies {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let lines: String = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .map(|l| format!("{l}\n"))
        .collect();
    let hierarchies = Hierarchies::from_mountinfo(&lines).expect("a cgroup2 mount");
    assert_eq!(hierarchies.version(), Version::V2);
    hierarchies
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(Some(typ))
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_owned()));
    r
}

/// Whether a process in `cgroup` may open `path` for reading, tried in a
/// forked child that is moved into the cgroup first.
fn child_can_open(cgroup: &Cgroup, paths: &[&std::ffi::CStr]) -> Vec<bool> {
    let (read_end, write_end) = rustix::pipe::pipe().unwrap();
    // SAFETY: the child only makes raw syscalls (read, open, _exit).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut go = [0u8; 1];
        let _ = rustix::io::read(&read_end, &mut go);
        let mut bits = 0;
        for (i, path) in paths.iter().enumerate() {
            // SAFETY: a NUL-terminated path; the fd is closed right away.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
            if fd >= 0 {
                bits |= 1 << i;
                // SAFETY: closes the fd just opened.
                unsafe { libc::close(fd) };
            }
        }
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(bits) };
    }
    cgroup.add_process(pid).unwrap();
    rustix::io::write(&write_end, b"g").unwrap();
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let bits = libc::WEXITSTATUS(status);
    (0..paths.len()).map(|i| bits & (1 << i) != 0).collect()
}

#[test]
fn the_bpf_filter_allows_only_the_listed_devices() {
    let hierarchies = unified_only();
    let path = CgroupPath::parse(&format!("/keel-test-devices-{}", std::process::id())).unwrap();
    let cgroup = Cgroup::create(&hierarchies, &path).unwrap();
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(5), "w"),
    ]));
    let applied = cgroup.apply(&resources);
    let opened = applied
        .as_ref()
        .map(|()| child_can_open(&cgroup, &[c"/dev/null", c"/dev/zero", c"/dev/full"]));
    cgroup.remove().unwrap();
    // /dev/zero may be written but not read, /dev/full is not listed.
    assert_eq!(opened.unwrap(), [true, false, false]);
}

#[test]
fn a_default_allow_policy_denies_only_the_listed_devices() {
    let hierarchies = unified_only();
    let path =
        CgroupPath::parse(&format!("/keel-test-devices-allow-{}", std::process::id())).unwrap();
    let cgroup = Cgroup::create(&hierarchies, &path).unwrap();
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![
        rule(true, LinuxDeviceType::A, None, None, "rwm"),
        rule(false, LinuxDeviceType::C, Some(1), Some(7), "r"),
    ]));
    let applied = cgroup.apply(&resources);
    let opened = applied
        .as_ref()
        .map(|()| child_can_open(&cgroup, &[c"/dev/null", c"/dev/full"]));
    cgroup.remove().unwrap();
    assert_eq!(opened.unwrap(), [true, false]);
}
