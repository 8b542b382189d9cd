//! Capability sets as bit masks, and applying them to the calling thread.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use rustix::io::Errno;
use rustix::thread::{self, CapabilitySet, CapabilitySets};

use crate::error::{Context, Result};
use crate::sys;

/// The five sets of `process.capabilities`, as kernel bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapabilityMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapabilityMasks {
    pub(crate) fn from_spec(caps: &LinuxCapabilities) -> Self {
        let mask = |set: &Option<Capabilities>| {
            set.iter()
                .flatten()
                .fold(0u64, |acc, c| acc | 1 << number(*c))
        };
        CapabilityMasks {
            bounding: mask(caps.bounding()),
            effective: mask(caps.effective()),
            permitted: mask(caps.permitted()),
            inheritable: mask(caps.inheritable()),
            ambient: mask(caps.ambient()),
        }
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP,
    /// so it runs before the user changes.
    pub(crate) fn apply_bounding(&self) -> Result<()> {
        for cap in 0..=last_capability() {
            if self.bounding & (1 << cap) == 0 {
                match sys::drop_bounding_capability(cap) {
                    // A capability this kernel does not have.
                    Ok(()) | Err(Errno::INVAL) => {}
                    Err(e) => Err(e)
                        .context(|| format!("dropping capability {cap} from the bounding set"))?,
                }
            }
        }
        Ok(())
    }

    /// Sets the effective, permitted, inheritable and ambient sets, once the
    /// process runs as its final user.
    pub(crate) fn apply_sets(&self) -> Result<()> {
        thread::set_capabilities(
            None,
            CapabilitySets {
                effective: CapabilitySet::from_bits_retain(self.effective),
                permitted: CapabilitySet::from_bits_retain(self.permitted),
                inheritable: CapabilitySet::from_bits_retain(self.inheritable),
            },
        )
        .context(|| {
            format!(
                "setting capabilities (effective {:#x}, permitted {:#x}, inheritable {:#x})",
                self.effective, self.permitted, self.inheritable
            )
        })?;
        // The kernel only lets a capability into the ambient set if it is
        // permitted and inheritable. runc's own `spec` lists ambient
        // capabilities without inheritable ones, and runc (through
        // gocapability) ends up ignoring the refusal; do the same, openly.
        let ambient = self.ambient & self.permitted & self.inheritable;
        for cap in (0..64).filter(|c| ambient & (1 << c) != 0) {
            sys::raise_ambient_capability(cap)
                .context(|| format!("raising ambient capability {cap}"))?;
        }
        Ok(())
    }
}

/// The capabilities in the calling process's bounding set: the most a
/// container it starts can hold (Docker's "all capabilities").
pub fn bounding_capabilities() -> Vec<Capability> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    NAMES
        .iter()
        .filter_map(|name| name.strip_prefix("CAP_")?.parse().ok())
        .filter(|cap| mask & (1 << number(*cap)) != 0)
        .collect()
}

/// The highest capability this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The kernel's number for a capability (linux/capability.h).
pub(crate) fn number(cap: Capability) -> u32 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::DacReadSearch => 2,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::LinuxImmutable => 9,
        Capability::NetBindService => 10,
        Capability::NetBroadcast => 11,
        Capability::NetAdmin => 12,
        Capability::NetRaw => 13,
        Capability::IpcLock => 14,
        Capability::IpcOwner => 15,
        Capability::SysModule => 16,
        Capability::SysRawio => 17,
        Capability::SysChroot => 18,
        Capability::SysPtrace => 19,
        Capability::SysPacct => 20,
        Capability::SysAdmin => 21,
        Capability::SysBoot => 22,
        Capability::SysNice => 23,
        Capability::SysResource => 24,
        Capability::SysTime => 25,
        Capability::SysTtyConfig => 26,
        Capability::Mknod => 27,
        Capability::Lease => 28,
        Capability::AuditWrite => 29,
        Capability::AuditControl => 30,
        Capability::Setfcap => 31,
        Capability::MacOverride => 32,
        Capability::MacAdmin => 33,
        Capability::Syslog => 34,
        Capability::WakeAlarm => 35,
        Capability::BlockSuspend => 36,
        Capability::AuditRead => 37,
        Capability::Perfmon => 38,
        Capability::Bpf => 39,
        Capability::CheckpointRestore => 40,
    }
}

/// Every capability name keel-runtime knows, for `features`.
pub(crate) const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];
