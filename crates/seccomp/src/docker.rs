//! Docker's seccomp profiles: the JSON format `docker run --security-opt
//! seccomp=FILE` takes (OCI's, plus `archMap` and per-rule `includes` /
//! `excludes` on capabilities, architecture and kernel version), resolved
//! for one container into the OCI profile a runtime compiles; and Docker's
//! default profile, kept as data in that same format so that one resolver
//! serves both.

use oci_spec::runtime::{
    Arch as OciArch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("decoding seccomp profile failed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(
        "both 'architectures' and 'archMap' are specified in the seccomp profile, use either \
         'architectures' or 'archMap'"
    )]
    BothArchitectures,
    #[error(
        "both 'name' and 'names' are specified in the seccomp profile for {0}, use either 'name' \
         or 'names'"
    )]
    BothNames(String),
    #[error("invalid kernel version: {0:?}, expected \"<kernel>.<major>\"")]
    KernelVersion(String),
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
}

/// A profile in Docker's format.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: Option<LinuxSeccompAction>,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<OciArch>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

/// The architectures to filter when this machine is `architecture`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: OciArch,
    #[serde(default)]
    sub_architectures: Vec<OciArch>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: Option<LinuxSeccompAction>,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<LinuxSeccompArg>,
    includes: Option<Condition>,
    excludes: Option<Condition>,
}

/// When a rule applies: every listed capability in the bounding set, this
/// machine's architecture listed, the kernel at least this version.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

/// This machine's architecture as Docker's profiles name it (Go's GOARCH).
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: &str = "arm64";

#[cfg(target_arch = "x86_64")]
const NATIVE_OCI_ARCH: OciArch = OciArch::ScmpArchX86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE_OCI_ARCH: OciArch = OciArch::ScmpArchAarch64;

impl Profile {
    /// Parses a profile as `--security-opt seccomp=` passes it (the file's
    /// content).
    pub fn parse(json: &str) -> Result<Self, ProfileError> {
        let profile: Profile = serde_json::from_str(json)?;
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            return Err(ProfileError::BothArchitectures);
        }
        for rule in &profile.syscalls {
            if let Some(name) = &rule.name
                && !rule.names.is_empty()
            {
                return Err(ProfileError::BothNames(name.clone()));
            }
            if rule.action.is_none() {
                return Err(ProfileError::Invalid(format!(
                    "the rule for {} has no action",
                    rule.all_names().join(", ")
                )));
            }
        }
        Ok(profile)
    }

    /// The OCI profile for a container whose bounding set is `bounding`,
    /// on this machine and kernel; None when the profile filters nothing.
    pub fn resolve(&self, bounding: &[Capability]) -> Result<Option<LinuxSeccomp>, ProfileError> {
        let Some(default_action) = self.default_action else {
            return if self.syscalls.is_empty() {
                Ok(None)
            } else {
                Err(ProfileError::Invalid("no defaultAction".to_owned()))
            };
        };
        let caps: Vec<String> = bounding.iter().map(|c| format!("CAP_{c}")).collect();
        let kernel = kernel_version();
        let mut syscalls = Vec::new();
        for rule in &self.syscalls {
            if rule.applies(&caps, kernel)? {
                syscalls.push(rule.to_oci()?);
            }
        }
        let architectures = if self.arch_map.is_empty() {
            self.architectures.clone()
        } else {
            self.arch_map
                .iter()
                .find(|a| a.architecture == NATIVE_OCI_ARCH)
                .map(|a| {
                    std::iter::once(a.architecture)
                        .chain(a.sub_architectures.iter().copied())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut builder = LinuxSeccompBuilder::default()
            .default_action(default_action)
            .architectures(architectures)
            .flags(self.flags.clone())
            .syscalls(syscalls);
        if let Some(errno) = self.default_errno_ret {
            builder = builder.default_errno_ret(errno);
        }
        builder
            .build()
            .map(Some)
            .map_err(|e| ProfileError::Invalid(e.to_string()))
    }
}

impl Rule {
    fn all_names(&self) -> Vec<String> {
        self.name.iter().chain(&self.names).cloned().collect()
    }

    fn applies(&self, caps: &[String], kernel: (u32, u32)) -> Result<bool, ProfileError> {
        if let Some(excludes) = &self.excludes {
            if excludes.arches.iter().any(|a| a == NATIVE_ARCH)
                || excludes.caps.iter().any(|c| caps.contains(c))
            {
                return Ok(false);
            }
            if let Some(min) = &excludes.min_kernel
                && kernel >= parse_kernel_version(min)?
            {
                return Ok(false);
            }
        }
        if let Some(includes) = &self.includes {
            if !includes.arches.is_empty() && !includes.arches.iter().any(|a| a == NATIVE_ARCH)
                || !includes.caps.iter().all(|c| caps.contains(c))
            {
                return Ok(false);
            }
            if let Some(min) = &includes.min_kernel
                && kernel < parse_kernel_version(min)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn to_oci(&self) -> Result<LinuxSyscall, ProfileError> {
        let mut builder = LinuxSyscallBuilder::default()
            .names(self.all_names())
            .action(self.action.unwrap_or(LinuxSeccompAction::ScmpActAllow))
            .args(self.args.clone());
        if let Some(errno) = self.errno_ret {
            builder = builder.errno_ret(errno);
        }
        builder
            .build()
            .map_err(|e| ProfileError::Invalid(e.to_string()))
    }
}

/// "4.8" as (4, 8).
fn parse_kernel_version(text: &str) -> Result<(u32, u32), ProfileError> {
    let bad = || ProfileError::KernelVersion(text.to_owned());
    let (kernel, major) = text.split_once('.').ok_or_else(bad)?;
    let version = (
        kernel.parse().map_err(|_| bad())?,
        major.parse().map_err(|_| bad())?,
    );
    if version == (0, 0) {
        return Err(bad());
    }
    Ok(version)
}

/// The running kernel's (version, major revision).
fn kernel_version() -> (u32, u32) {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Syscalls every container may make (Docker's default profile allows
/// these unconditionally; names this architecture lacks are skipped).
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
    "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes",
    "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];

/// Syscalls allowed when the container keeps a capability that already
/// lets it do what they do.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Syscalls of one architecture family, by Docker's (Go's) name for it.
const BY_ARCHITECTURE: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
];

/// The execution domains `personality(2)` may switch to: Linux, with
/// UNAME26, with ADDR_NO_RANDOMIZE, both, and the query 0xffffffff.
const PERSONALITIES: [u64; 5] = [0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// socket(2)'s address families below AF_ALG, between AF_ALG and
/// AF_VSOCK, and above AF_VSOCK: everything but those two.
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// The namespaces `clone` may not create without CAP_SYS_ADMIN.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .build()
        .expect("all fields set")
}

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        action: Some(LinuxSeccompAction::ScmpActAllow),
        ..Rule::default()
    }
}

impl Profile {
    /// Docker's default profile: deny with EPERM, allow what a process
    /// needs, and gate the syscalls that reach past the container's
    /// namespaces on the capability that would allow the same.
    pub fn docker_default() -> Self {
        use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpGt, ScmpCmpLt, ScmpCmpMaskedEq};
        let cap = |cap: &str| Condition {
            caps: vec![cap.to_owned()],
            ..Condition::default()
        };
        let mut rules = vec![
            allow(ALLOWED),
            // Allowed since the kernel checks ptrace access itself (4.8).
            Rule {
                includes: Some(Condition {
                    min_kernel: Some("4.8".to_owned()),
                    ..Condition::default()
                }),
                ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
            },
        ];
        for (op, family) in [
            (ScmpCmpLt, AF_ALG),
            (ScmpCmpEq, AF_ALG + 1),
            (ScmpCmpGt, AF_VSOCK),
        ] {
            rules.push(Rule {
                args: vec![arg(0, op, family)],
                ..allow(&["socket"])
            });
        }
        for persona in PERSONALITIES {
            rules.push(Rule {
                args: vec![arg(0, ScmpCmpEq, persona)],
                ..allow(&["personality"])
            });
        }
        for (arches, names) in BY_ARCHITECTURE {
            rules.push(Rule {
                includes: Some(Condition {
                    arches: arches.iter().map(|a| (*a).to_owned()).collect(),
                    ..Condition::default()
                }),
                ..allow(names)
            });
        }
        for (capability, names) in BY_CAPABILITY {
            rules.push(Rule {
                includes: Some(cap(capability)),
                ..allow(names)
            });
        }
        // Without CAP_SYS_ADMIN: threads and processes, but no namespaces
        // (s390 passes the flags second; it is not a target here).
        let clone_flags = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .op(ScmpCmpMaskedEq)
            .value(CLONE_NAMESPACES)
            .value_two(0u64)
            .build()
            .expect("all fields set");
        rules.push(Rule {
            args: vec![clone_flags],
            excludes: Some(cap("CAP_SYS_ADMIN")),
            ..allow(&["clone"])
        });
        // clone3 passes its flags in memory a filter cannot read: ENOSYS
        // makes libc fall back to clone.
        rules.push(Rule {
            names: vec!["clone3".to_owned()],
            action: Some(LinuxSeccompAction::ScmpActErrno),
            errno_ret: Some(libc::ENOSYS as u32),
            excludes: Some(cap("CAP_SYS_ADMIN")),
            ..Rule::default()
        });
        Profile {
            default_action: Some(LinuxSeccompAction::ScmpActErrno),
            default_errno_ret: Some(libc::EPERM as u32),
            architectures: Vec::new(),
            arch_map: vec![
                ArchMap {
                    architecture: OciArch::ScmpArchX86_64,
                    sub_architectures: vec![OciArch::ScmpArchX86, OciArch::ScmpArchX32],
                },
                ArchMap {
                    architecture: OciArch::ScmpArchAarch64,
                    sub_architectures: vec![OciArch::ScmpArchArm],
                },
            ],
            flags: Vec::new(),
            syscalls: rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Filter;

    const DOCKER_CAPS: [Capability; 3] = [
        Capability::Chown,
        Capability::NetBindService,
        Capability::SysChroot,
    ];

    fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn the_default_profile_gates_namespaces_on_cap_sys_admin() {
        let default = Profile::docker_default();
        let confined = default.resolve(&DOCKER_CAPS).unwrap().unwrap();
        assert!(rules_for(&confined, "mount").is_empty());
        assert!(rules_for(&confined, "unshare").is_empty());
        assert_eq!(rules_for(&confined, "chroot").len(), 1);
        let clone = rules_for(&confined, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0].args().as_ref().unwrap()[0].value(),
            CLONE_NAMESPACES
        );
        let clone3 = rules_for(&confined, "clone3");
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
        assert_eq!(
            confined.architectures().as_deref().unwrap()[0],
            NATIVE_OCI_ARCH
        );

        let admin = default
            .resolve(&[Capability::SysAdmin, Capability::SysPtrace])
            .unwrap()
            .unwrap();
        assert_eq!(rules_for(&admin, "mount").len(), 1);
        let clone = rules_for(&admin, "clone");
        assert!(
            clone
                .iter()
                .all(|r| r.args().as_deref().unwrap_or_default().is_empty())
        );
        assert!(
            rules_for(&admin, "clone3")
                .iter()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        );
        assert!(!rules_for(&admin, "kcmp").is_empty());
    }

    #[test]
    fn the_default_profile_compiles_to_well_under_a_thousand_instructions() {
        let profile = Profile::docker_default()
            .resolve(&DOCKER_CAPS)
            .unwrap()
            .unwrap();
        let filter = Filter::compile(&profile).unwrap();
        // Runs of allowed syscalls are searched, not each syscall: 677
        // instructions for x86_64, x32 and i386 (2191 one syscall at a time).
        assert!(filter.len() < 1000, "{} instructions", filter.len());
    }

    #[test]
    fn profile_files_in_dockers_format_resolve_by_capability_and_architecture() {
        let profile = Profile::parse(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
                "syscalls": [
                    {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                    {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
                    {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "99.0"}},
                    {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["amd64", "arm64"]}}
                ]
            }"#,
        )
        .unwrap();
        let resolved = profile.resolve(&DOCKER_CAPS).unwrap().unwrap();
        let names: Vec<&str> = resolved
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter().map(String::as_str))
            .collect();
        assert_eq!(names, ["mkdir", "getcwd"]);
        assert_eq!(rules_for(&resolved, "mkdir")[0].errno_ret(), Some(18));
        assert_eq!(
            resolved.architectures().as_deref().unwrap()[0],
            NATIVE_OCI_ARCH
        );
    }

    #[test]
    fn malformed_profiles_are_refused_naming_the_fault() {
        let error = Profile::parse("{\"defaultAction\": \"SCMP_ACT_NOPE\"}").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("decoding seccomp profile failed: ")
        );
        let error = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(error, ProfileError::BothArchitectures));
        let error = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "both 'name' and 'names' are specified in the seccomp profile for read, use either \
             'name' or 'names'"
        );
        let profile = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "read", "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            profile.resolve(&[]).unwrap_err().to_string(),
            "invalid kernel version: \"four\", expected \"<kernel>.<major>\""
        );
    }
}
