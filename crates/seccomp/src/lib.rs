//! Seccomp for Keel containers: compiles an OCI seccomp profile (the format
//! of Docker's default profile, argument conditions and `errnoRet`
//! included) straight to a classic BPF program and loads it.
//!
//! The program checks the architecture, dispatches on the syscall number
//! through a binary search, then tests each rule's argument conditions in
//! profile order. As runc does, syscalls numbered above every syscall the
//! profile names get `ENOSYS` rather than the default action, so that libc
//! falls back from syscalls newer than the profile.

mod arch;
mod bpf;
mod docker;

use std::collections::BTreeMap;

use libc::{c_ulong, sock_filter, sock_fprog};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use docker::{Profile, ProfileError};

use arch::{Arch, X32_SYSCALL_BIT};
use bpf::{Assembler, Cmp, Target};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp rule for {syscall}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { syscall: String, index: usize },
    #[error(
        "seccomp action SCMP_ACT_NOTIFY needs a seccomp notify listener, which keel-runtime \
         does not provide"
    )]
    Notify,
    #[error("seccomp filter flag {0} is not supported")]
    Flag(String),
    #[error("seccomp profile compiles to {0} BPF instructions, more than the kernel's 4096")]
    TooLarge(usize),
    #[error("cannot load the seccomp filter: {0}")]
    Load(std::io::Error),
}

/// A compiled filter, ready to load.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<sock_filter>,
    flags: c_ulong,
}

/// One rule of one syscall: an action and the conditions (all must hold).
#[derive(Debug)]
struct Rule<'a> {
    action: u32,
    conditions: &'a [LinuxSeccompArg],
}

impl Filter {
    /// Compiles `profile` for the architectures this machine can run.
    pub fn compile(profile: &LinuxSeccomp) -> Result<Self, Error> {
        let default = action_code(profile.default_action(), profile.default_errno_ret())?;
        let flags = filter_flags(profile.flags().as_deref().unwrap_or_default())?;
        let listed = profile.architectures().as_deref().unwrap_or_default();
        let all = Arch::for_profile(listed);
        // x32 has no section of its own: x86_64's section serves it.
        let x32 = all.iter().any(|a| a.x32);
        let arches: Vec<&Arch> = all.iter().filter(|a| !a.x32).collect();

        let mut asm = Assembler::default();
        let sections: Vec<usize> = arches.iter().map(|_| asm.label()).collect();
        asm.load(OFFSET_ARCH);
        for (arch, section) in arches.iter().zip(&sections) {
            asm.jump_far_if(Cmp::Eq, arch.audit, *section);
        }
        asm.ret(BAD_ARCH);

        for (arch, section) in arches.iter().zip(&sections) {
            asm.place(*section);
            let table = syscall_table(profile, arch, default)?;
            emit_section(&mut asm, arch, &table, default, x32)?;
        }
        Ok(Filter {
            program: asm.finish()?,
            flags,
        })
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Loads the filter into the calling thread (all threads with TSYNC).
    /// Without no_new_privs this needs CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<(), Error> {
        let prog = sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call;
        // the kernel copies the program before returning.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const sock_fprog,
            )
        };
        if rc != 0 {
            return Err(Error::Load(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// `struct seccomp_data`: int nr; u32 arch; u64 ip; u64 args[6].
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// For a syscall of an architecture the profile does not cover.
const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// Syscall number to rules, for one architecture. Names the architecture
/// does not have are skipped, as runc does.
fn syscall_table<'a>(
    profile: &'a LinuxSeccomp,
    arch: &Arch,
    default: u32,
) -> Result<BTreeMap<u32, Vec<Rule<'a>>>, Error> {
    // One map per compile: the syscalls crate's name lookup matches a name
    // against its table in turn, for each of the profile's hundreds.
    let numbers = (arch.syscalls)();
    let mut table: BTreeMap<u32, Vec<Rule<'a>>> = BTreeMap::new();
    for syscall in profile.syscalls().iter().flatten() {
        let action = action_code(syscall.action(), syscall.errno_ret())?;
        let conditions = syscall.args().as_deref().unwrap_or_default();
        for name in syscall.names() {
            if let Some(c) = conditions.iter().find(|c| c.index() > 5) {
                return Err(Error::ArgIndex {
                    syscall: name.clone(),
                    index: c.index(),
                });
            }
            let Some(&nr) = numbers.get(name.as_str()) else {
                continue;
            };
            // A rule that ends in the default action changes nothing.
            if action == default {
                table.entry(nr).or_default();
                continue;
            }
            table
                .entry(nr)
                .or_default()
                .push(Rule { action, conditions });
        }
    }
    Ok(table)
}

fn emit_section(
    asm: &mut Assembler,
    arch: &Arch,
    table: &BTreeMap<u32, Vec<Rule<'_>>>,
    default: u32,
    x32: bool,
) -> Result<(), Error> {
    asm.load(OFFSET_NR);
    if arch.has_x32_bit {
        if x32 {
            // x32 syscalls share x86_64's numbers below the x32-only ones.
            let native = asm.label();
            asm.jump(
                Cmp::Ge,
                X32_SYSCALL_BIT,
                Target::Next,
                Target::Label(native),
            );
            asm.and(!X32_SYSCALL_BIT);
            asm.place(native);
        } else {
            let native = asm.label();
            asm.jump(
                Cmp::Ge,
                X32_SYSCALL_BIT,
                Target::Next,
                Target::Label(native),
            );
            asm.ret(BAD_ARCH);
            asm.place(native);
        }
    }
    if let Some(max) = table.keys().next_back()
        && !is_permissive(default)
    {
        let enosys = asm.label();
        asm.jump(Cmp::Gt, *max, Target::Label(enosys), Target::Next);
        let dispatch = asm.label();
        asm.goto(dispatch);
        asm.place(enosys);
        asm.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        asm.place(dispatch);
    }

    emit_tree(asm, &runs(table, default), default)
}

/// What the syscalls of one run of numbers get: an action, or the rules of
/// the one syscall whose first rule has conditions.
#[derive(Debug, Clone, Copy)]
enum Outcome<'r, 'a> {
    Return(u32),
    Rules(&'r [Rule<'a>]),
}

/// Splits the syscall numbers from 0 up into runs, each starting at its
/// number: neighbours with the same unconditional action share a run, so
/// the search below is over a few dozen runs instead of hundreds of
/// syscalls (a shorter program, faster to load and to run). The last run
/// reaches every number above.
fn runs<'r, 'a>(
    table: &'r BTreeMap<u32, Vec<Rule<'a>>>,
    default: u32,
) -> Vec<(u32, Outcome<'r, 'a>)> {
    let mut runs = vec![(0, Outcome::Return(default))];
    let mut push = |start: u32, outcome: Outcome<'r, 'a>| {
        if runs.last().is_some_and(|(s, _)| *s == start) {
            runs.pop();
        }
        let continues = matches!(
            (runs.last(), outcome),
            (Some((_, Outcome::Return(a))), Outcome::Return(b)) if *a == b
        );
        if !continues {
            runs.push((start, outcome));
        }
    };
    for (nr, rules) in table {
        let outcome = match rules.as_slice() {
            [] => Outcome::Return(default),
            [first, ..] if first.conditions.is_empty() => Outcome::Return(first.action),
            _ => Outcome::Rules(rules),
        };
        push(*nr, outcome);
        push(nr + 1, Outcome::Return(default));
    }
    runs
}

/// Binary search over the runs for the one holding the syscall number in A.
fn emit_tree(
    asm: &mut Assembler,
    runs: &[(u32, Outcome<'_, '_>)],
    default: u32,
) -> Result<(), Error> {
    match runs {
        [] => asm.ret(default),
        [(_, Outcome::Return(action))] => asm.ret(*action),
        [(_, Outcome::Rules(rules))] => emit_rules(asm, rules, default)?,
        _ => {
            let (low, high) = runs.split_at(runs.len() / 2);
            let high_label = asm.label();
            asm.jump_far_if(Cmp::Ge, high[0].0, high_label);
            emit_tree(asm, low, default)?;
            asm.place(high_label);
            emit_tree(asm, high, default)?;
        }
    }
    Ok(())
}

/// One syscall's rules in profile order; the first whose conditions all
/// hold gives its action, else the default.
fn emit_rules(asm: &mut Assembler, rules: &[Rule<'_>], default: u32) -> Result<(), Error> {
    for rule in rules {
        let next_rule = asm.label();
        for condition in rule.conditions {
            emit_condition(asm, condition, next_rule)?;
        }
        asm.ret(rule.action);
        asm.place(next_rule);
        if rule.conditions.is_empty() {
            return Ok(()); // Later rules cannot be reached.
        }
    }
    asm.ret(default);
    Ok(())
}

/// Falls through when the 64-bit argument satisfies the condition, else
/// jumps to `fail`. Arguments are compared as two 32-bit halves.
fn emit_condition(asm: &mut Assembler, c: &LinuxSeccompArg, fail: usize) -> Result<(), Error> {
    let hi_offset = OFFSET_ARGS + 8 * c.index() as u32 + 4;
    let lo_offset = hi_offset - 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (hi, lo) = split(c.value());
    let fail_t = Target::Label(fail);
    let pass = asm.label();
    let pass_t = Target::Label(pass);
    asm.load(hi_offset);
    match c.op() {
        LinuxSeccompOperator::ScmpCmpEq => {
            asm.jump(Cmp::Eq, hi, Target::Next, fail_t);
            asm.load(lo_offset);
            asm.jump(Cmp::Eq, lo, Target::Next, fail_t);
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            asm.jump(Cmp::Eq, hi, Target::Next, pass_t);
            asm.load(lo_offset);
            asm.jump(Cmp::Eq, lo, fail_t, Target::Next);
        }
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // A missing valueTwo is 0: Docker's profile omits zeros.
            let (want_hi, want_lo) = split(c.value_two().unwrap_or_default());
            asm.and(hi);
            asm.jump(Cmp::Eq, want_hi, Target::Next, fail_t);
            asm.load(lo_offset);
            asm.and(lo);
            asm.jump(Cmp::Eq, want_lo, Target::Next, fail_t);
        }
        op @ (LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe) => {
            asm.jump(Cmp::Gt, hi, pass_t, Target::Next);
            asm.jump(Cmp::Eq, hi, Target::Next, fail_t);
            asm.load(lo_offset);
            let cmp = if op == LinuxSeccompOperator::ScmpCmpGt {
                Cmp::Gt
            } else {
                Cmp::Ge
            };
            asm.jump(cmp, lo, Target::Next, fail_t);
        }
        // a < b is !(a >= b); a <= b is !(a > b).
        op @ (LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe) => {
            asm.jump(Cmp::Gt, hi, fail_t, Target::Next);
            asm.jump(Cmp::Eq, hi, Target::Next, pass_t);
            asm.load(lo_offset);
            let cmp = if op == LinuxSeccompOperator::ScmpCmpLt {
                Cmp::Ge
            } else {
                Cmp::Gt
            };
            asm.jump(cmp, lo, fail_t, Target::Next);
        }
    }
    asm.place(pass);
    Ok(())
}

fn action_code(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, Error> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => {
            libc::SECCOMP_RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActTrace => {
            libc::SECCOMP_RET_TRACE | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => return Err(Error::Notify),
    })
}

/// Whether the default action lets syscalls run (then unknown new syscalls
/// need no ENOSYS answer).
fn is_permissive(action: u32) -> bool {
    action == libc::SECCOMP_RET_ALLOW || action == libc::SECCOMP_RET_LOG
}

fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<c_ulong, Error> {
    flags.iter().try_fold(0, |acc, flag| {
        Ok(acc
            | match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    return Err(Error::Flag(flag.to_string()));
                }
            })
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_syscalls_with_one_action_share_a_run_and_conditional_ones_stand_alone() {
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "open", "fstat"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["close"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["lseek"], "action": "SCMP_ACT_KILL"}
            ]
        }))
        .unwrap();
        let default = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let table = syscall_table(&profile, &Arch::for_profile(&[])[0], default).unwrap();
        let runs: Vec<(u32, Option<u32>)> = runs(&table, default)
            .into_iter()
            .map(|(start, outcome)| match outcome {
                Outcome::Return(action) => (start, Some(action)),
                Outcome::Rules(_) => (start, None),
            })
            .collect();
        let allow = libc::SECCOMP_RET_ALLOW;
        // read 0, write 1, open 2, close 3, fstat 5, lseek 8.
        assert_eq!(
            runs,
            [
                (0, Some(allow)),
                (3, None),
                (4, Some(default)),
                (5, Some(allow)),
                (6, Some(default)),
                (8, Some(libc::SECCOMP_RET_KILL_THREAD)),
                (9, Some(default)),
            ]
        );
    }
}
