//! The cgroup v2 device filter (an eBPF program) on the real kernel. It
//! runs on this machine's unified hierarchy, which carries device programs
//! even in the hybrid layout.

use keel_cgroups::{Cgroup, CgroupPath, Hierarchies, Version};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

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

/// Device rules as a config.json writes them.
fn rules(json: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_value(json).expect("valid device rules")
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
    resources.set_devices(Some(rules(serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "w"}
    ]))));
    let applied = cgroup.apply(&resources);
    let opened = applied
        .as_ref()
        .map(|_| child_can_open(&cgroup, &[c"/dev/null", c"/dev/zero", c"/dev/full"]));
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
    resources.set_devices(Some(rules(serde_json::json!([
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 7, "access": "r"}
    ]))));
    let applied = cgroup.apply(&resources);
    let opened = applied
        .as_ref()
        .map(|_| child_can_open(&cgroup, &[c"/dev/null", c"/dev/full"]));
    cgroup.remove().unwrap();
    assert_eq!(opened.unwrap(), [true, false]);
}
