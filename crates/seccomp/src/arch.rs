//! The architectures a filter covers on this machine, with their audit
//! numbers and syscall tables.

use std::collections::HashMap;

use oci_spec::runtime::Arch as OciArch;

/// Set in the syscall number of x32 syscalls (which report x86_64's audit
/// architecture).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Arch {
    pub(crate) audit: u32,
    /// Every syscall of the architecture: name to number.
    pub(crate) syscalls: fn() -> HashMap<&'static str, u32>,
    /// This entry stands for x32 syscalls (checked in x86_64's section).
    pub(crate) x32: bool,
    /// Syscalls of this audit architecture may carry the x32 bit.
    pub(crate) has_x32_bit: bool,
}

macro_rules! table {
    ($module:ident) => {
        || {
            syscalls::$module::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect()
        }
    };
}

#[cfg(target_arch = "x86_64")]
const NATIVE: Arch = Arch {
    audit: 0xc000_003e,
    syscalls: table!(x86_64),
    x32: false,
    has_x32_bit: true,
};

#[cfg(target_arch = "aarch64")]
const NATIVE: Arch = Arch {
    audit: 0xc000_00b7,
    syscalls: table!(aarch64),
    x32: false,
    has_x32_bit: false,
};

impl Arch {
    /// The native architecture, always covered (as libseccomp does), plus
    /// the listed ones this machine can also execute.
    pub(crate) fn for_profile(listed: &[OciArch]) -> Vec<Arch> {
        let mut arches = vec![NATIVE];
        for arch in listed {
            let extra = match arch {
                #[cfg(target_arch = "x86_64")]
                OciArch::ScmpArchX86 => Some(Arch {
                    audit: 0x4000_0003,
                    syscalls: table!(x86),
                    x32: false,
                    has_x32_bit: false,
                }),
                #[cfg(target_arch = "x86_64")]
                OciArch::ScmpArchX32 => Some(Arch {
                    x32: true,
                    ..NATIVE
                }),
                // Other architectures cannot run on this machine.
                _ => None,
            };
            if let Some(extra) = extra
                && !arches
                    .iter()
                    .any(|a| a.audit == extra.audit && a.x32 == extra.x32)
            {
                arches.push(extra);
            }
        }
        arches
    }
}
