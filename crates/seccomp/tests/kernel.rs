//! Filters loaded into real forked processes, observed through the errno the
//! kernel returns.

use keel_seccomp::Filter;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

fn profile(value: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("valid profile")
}

/// Runs `probe` in a forked child under `filter` and returns its exit code.
/// The child only makes raw syscalls, so nothing else needs allowing.
fn exit_code_under(filter: &Filter, probe: fn() -> i32) -> i32 {
    // SAFETY: the test process may be multithreaded, but the child only
    // makes raw syscalls (prctl, seccomp, the probe's) and then _exit, all
    // async-signal-safe.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain prctl; no pointers.
        let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = if nnp != 0 || filter.load().is_err() {
            200
        } else {
            probe()
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "child did not exit: status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// Makes syscall `nr` with two integer arguments; returns its errno, or 0
/// when it succeeded.
fn syscall_errno(nr: libc::c_long, a: u64, b: u64) -> i32 {
    // SAFETY: the probes only make syscalls whose arguments are integers
    // (getpid, getppid, getpriority, openat2 with a null path).
    let rc = unsafe { libc::syscall(nr, a, b, 0, 0) };
    if rc == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

#[test]
fn a_denied_syscall_returns_the_configured_errno() {
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
    })))
    .unwrap();
    let code = exit_code_under(&filter, || syscall_errno(libc::SYS_getppid, 0, 0));
    assert_eq!(code, libc::EXDEV);
}

const INPUTS: [u64; 7] = [
    0,
    5,
    0x1_0000_0004,
    0x1_0000_0005,
    0x1_0000_0006,
    0x2_0000_0000,
    u64::MAX,
];

/// For each input, bit i of the exit code says whether the rule matched
/// getpriority's second argument.
fn matched_inputs() -> i32 {
    let mut bits = 0;
    for (i, value) in INPUTS.iter().enumerate() {
        if syscall_errno(libc::SYS_getpriority, libc::PRIO_PROCESS as u64, *value) == libc::EXDEV {
            bits |= 1 << i;
        }
    }
    bits
}

#[test]
fn every_comparison_operator_compares_all_64_bits() {
    let k: u64 = 0x1_0000_0005;
    type Holds = fn(u64, u64) -> bool;
    let cases: [(&str, Holds); 6] = [
        ("SCMP_CMP_EQ", |a, b| a == b),
        ("SCMP_CMP_NE", |a, b| a != b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
        ("SCMP_CMP_GT", |a, b| a > b),
        ("SCMP_CMP_GE", |a, b| a >= b),
    ];
    for (op, holds) in cases {
        let filter = Filter::compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
                "args": [{"index": 1, "value": k, "op": op}]
            }]
        })))
        .unwrap();
        let expected = INPUTS
            .iter()
            .enumerate()
            .filter(|(_, v)| holds(**v, k))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        assert_eq!(exit_code_under(&filter, matched_inputs), expected, "{op}");
    }
}

#[test]
fn masked_equality_compares_the_masked_argument() {
    // Matches when bit 32 is set and the low byte is 5.
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
            "args": [{"index": 1, "value": 0x1_0000_00ffu64, "valueTwo": 0x1_0000_0005u64,
                      "op": "SCMP_CMP_MASKED_EQ"}]
        }]
    })))
    .unwrap();
    let expected = INPUTS
        .iter()
        .enumerate()
        .filter(|(_, v)| **v & 0x1_0000_00ff == 0x1_0000_0005)
        .fold(0, |bits, (i, _)| bits | 1 << i);
    assert_eq!(exit_code_under(&filter, matched_inputs), expected);
}

#[test]
fn all_conditions_of_a_rule_must_hold_and_rules_are_tried_in_order() {
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
             "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .unwrap();
    let probe = || {
        let first = syscall_errno(libc::SYS_getpriority, 0, 5);
        let second = syscall_errno(libc::SYS_getpriority, 1, 5);
        i32::from(first == libc::EXDEV) | i32::from(second == libc::EDOM) << 1
    };
    assert_eq!(exit_code_under(&filter, probe), 0b11);
}

#[test]
fn an_allowlist_refuses_other_syscalls_and_answers_enosys_beyond_the_profile() {
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let probe = || {
        let pid = syscall_errno(libc::SYS_getpid, 0, 0);
        let ppid = syscall_errno(libc::SYS_getppid, 0, 0);
        // Numbered above exit_group, the profile's highest.
        let newer = syscall_errno(libc::SYS_openat2, u64::MAX, 0);
        i32::from(pid == 0)
            | i32::from(ppid == libc::EPERM) << 1
            | i32::from(newer == libc::ENOSYS) << 2
    };
    assert_eq!(exit_code_under(&filter, probe), 0b111);
}

#[test]
fn a_profile_that_cannot_be_compiled_says_why() {
    let err = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "seccomp rule for read: argument index 6 is out of range (0 to 5)"
    );
    let err = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err();
    assert!(err.to_string().contains("SCMP_ACT_NOTIFY"), "{err}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    let code = exit_code_under(&filter, || syscall_errno(libc::SYS_getppid, 0, 0));
    assert_eq!(code, libc::EPERM);
}

#[test]
fn a_masked_equality_without_value_two_compares_with_zero_as_docker_means_it() {
    // Docker's default profile writes its clone rule this way: Go drops the
    // zero valueTwo.
    let filter = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
            "args": [{"index": 1, "value": 0xf0u64, "op": "SCMP_CMP_MASKED_EQ"}]
        }]
    })))
    .unwrap();
    let expected = INPUTS
        .iter()
        .enumerate()
        .filter(|(_, v)| **v & 0xf0 == 0)
        .fold(0, |bits, (i, _)| bits | 1 << i);
    assert_eq!(exit_code_under(&filter, matched_inputs), expected);
}
