//! Device access on cgroup v2: an eBPF program of type CGROUP_DEVICE
//! attached to the container's cgroup, doing what the v1 devices
//! controller does with its allow/deny files.
//!
//! The OCI rules are first reduced to the state v1 would end in (a default
//! plus exceptions of the other polarity, as runc's emulator does), so the
//! same config means the same thing on both versions.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::Error;

const ACCESS_MKNOD: u32 = 1;
const ACCESS_READ: u32 = 2;
const ACCESS_WRITE: u32 = 4;
const TYPE_BLOCK: u32 = 1;
const TYPE_CHAR: u32 = 2;

/// One exception to the default: a device (or wildcard) and access bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exception {
    /// TYPE_BLOCK, TYPE_CHAR, or `None` for both.
    typ: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

/// The rules reduced as the v1 controller would apply them one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Policy {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

impl Policy {
    fn from_rules(rules: &[LinuxDeviceCgroup]) -> Result<Self, Error> {
        // Without rules a cgroup allows everything, as in v1.
        let mut policy = Policy {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            let access = access_bits(rule.access().as_deref().unwrap_or("rwm"))?;
            let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => None,
                LinuxDeviceType::B => Some(TYPE_BLOCK),
                LinuxDeviceType::C | LinuxDeviceType::U => Some(TYPE_CHAR),
                LinuxDeviceType::P => continue, // fifos are not devices to the kernel
            };
            let number = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as u32);
            let exception = Exception {
                typ,
                major: number(rule.major()),
                minor: number(rule.minor()),
                access,
            };
            let everything =
                typ.is_none() && exception.major.is_none() && exception.minor.is_none();
            if everything && access == ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE {
                // "a *:* rwm" resets the whole policy.
                policy = Policy {
                    default_allow: rule.allow(),
                    exceptions: Vec::new(),
                };
            } else if rule.allow() != policy.default_allow {
                policy.exceptions.push(exception);
            } else {
                // Same polarity as the default: takes access away from the
                // exceptions it names exactly, as v1 does.
                policy.exceptions.retain_mut(|e| {
                    if (e.typ, e.major, e.minor) == (typ, exception.major, exception.minor) {
                        e.access &= !access;
                    }
                    e.access != 0
                });
            }
        }
        Ok(policy)
    }
}

fn access_bits(access: &str) -> Result<u32, Error> {
    access.chars().try_fold(0, |bits, c| {
        Ok(bits
            | match c {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => {
                    return Err(Error::InvalidValue {
                        field: "linux.resources.devices access",
                        value: access.to_owned(),
                        reason: "use the letters r, w and m".to_owned(),
                    });
                }
            })
    })
}

/// An eBPF instruction: opcode, registers, offset, immediate.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const AND64_K: u8 = 0x57;
const RSH64_K: u8 = 0x77;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

/// The program: r2 = device type, r3 = requested access, r4 = major,
/// r5 = minor (from struct bpf_cgroup_dev_ctx in r1); then one block per
/// exception that returns its verdict when it matches; then the default.
fn program(policy: &Policy) -> Vec<Insn> {
    let mut code = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV64_X, 3, 2, 0, 0),
        insn(AND64_K, 2, 0, 0, 0xffff),
        insn(RSH64_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for e in &policy.exceptions {
        // Each test jumps to the end of the block, whose length is only
        // known once it is built: collect, then patch the offsets.
        let mut block: Vec<Insn> = Vec::new();
        let mut skips = Vec::new();
        for (register, value) in [(2, e.typ), (4, e.major), (5, e.minor)] {
            if let Some(value) = value {
                skips.push(block.len());
                block.push(insn(JNE_K, register, 0, 0, value as i32));
            }
        }
        block.push(insn(MOV64_X, 1, 3, 0, 0));
        if policy.default_allow {
            // A deny exception matches if any requested access is denied.
            block.push(insn(AND64_K, 1, 0, 0, e.access as i32));
            skips.push(block.len());
            block.push(insn(JEQ_K, 1, 0, 0, 0));
        } else {
            // An allow exception matches if all requested access is allowed.
            block.push(insn(AND64_K, 1, 0, 0, !e.access as i32 & 0x7));
            skips.push(block.len());
            block.push(insn(JNE_K, 1, 0, 0, 0));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(!policy.default_allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let end = block.len();
        for at in skips {
            block[at].off = (end - at - 1) as i16;
        }
        code.extend(block);
    }
    code.push(insn(MOV64_K, 0, 0, 0, i32::from(policy.default_allow)));
    code.push(insn(EXIT, 0, 0, 0, 0));
    code
}

/// `union bpf_attr` for BPF_PROG_LOAD, as far as this program needs it.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the program for `rules` and attaches it to the cgroup directory.
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    let policy = Policy::from_rules(rules)?;
    let code = program(&policy);
    let failed = |what: &str, source: std::io::Error| Error::Write {
        path: dir.to_owned(),
        value: format!("{what} (a BPF device filter of {} rules)", rules.len()),
        source,
    };
    let mut log = vec![0u8; 4096];
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"keel_device");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: code.len() as u32,
        insns: code.as_ptr() as u64,
        license: c"Apache-2.0".as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..ProgLoad::default()
    };
    // SAFETY: `load` points at the program, license and log buffer, all
    // alive across the call; the kernel copies the program.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoad,
            size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        let source = std::io::Error::last_os_error();
        let verifier = String::from_utf8_lossy(&log)
            .trim_end_matches('\0')
            .trim()
            .to_owned();
        return Err(failed(&format!("loading the program: {verifier}"), source));
    }
    // SAFETY: the kernel just returned this new fd; we own it.
    let program = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cgroup = std::fs::File::open(dir).map_err(|e| failed("opening the cgroup", e))?;
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..ProgAttach::default()
    };
    // SAFETY: `attach` holds only integers (fds alive across the call).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            size_of::<ProgAttach>(),
        )
    };
    if rc < 0 {
        return Err(failed(
            "attaching the program",
            std::io::Error::last_os_error(),
        ));
    }
    // The attached program lives as long as the cgroup; our fds can go.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn deny_all_then_allows_becomes_a_whitelist() {
        let policy = Policy::from_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, None, None, "m"),
        ])
        .unwrap();
        assert!(!policy.default_allow);
        assert_eq!(policy.exceptions.len(), 2);
        assert_eq!(policy.exceptions[1].access, ACCESS_MKNOD);
    }

    #[test]
    fn a_later_deny_takes_access_from_an_earlier_allow() {
        let policy = Policy::from_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(false, LinuxDeviceType::C, Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert_eq!(policy.exceptions[0].access, ACCESS_MKNOD | ACCESS_READ);
    }

    #[test]
    fn no_rules_allow_everything_and_bad_access_letters_are_named() {
        assert!(Policy::from_rules(&[]).unwrap().default_allow);
        let err = Policy::from_rules(&[rule(true, LinuxDeviceType::C, Some(1), Some(3), "rx")])
            .unwrap_err();
        assert!(err.to_string().contains("\"rx\""), "{err}");
    }
}
