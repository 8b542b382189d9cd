//! Safe wrappers for the few system calls rustix does not offer. Every
//! `unsafe` block of the runtime's process setup lives here.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd};

use rustix::io::Errno;

fn check(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL))
    } else {
        Ok(rc)
    }
}

/// What `clone_process` returned on each side of the fork.
pub(crate) enum Forked {
    Parent(i32),
    Child,
}

/// Forks the caller into new namespaces (`flags` holds CLONE_NEW* bits),
/// like fork(2) with clone(2)'s namespace flags: the child runs on a copy of
/// the caller's stack.
///
/// The caller must be single-threaded, as it is for fork.
pub(crate) fn clone_process(flags: libc::c_int) -> Result<Forked, Errno> {
    // SAFETY: with a null stack, clone behaves as fork: the child continues
    // on a copy-on-write copy of this stack. The runtime calls this while it
    // has only one thread, so no lock can be held by a thread that does not
    // exist in the child.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(flags) | libc::c_long::from(libc::SIGCHLD),
            0,
            0,
            0,
            0,
        )
    };
    match check(rc)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// prctl with integer arguments only.
fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the options used here take integers, not pointers.
    let rc = unsafe { libc::prctl(option, arg2, arg3, 0, 0) };
    check(rc.into()).map(drop)
}

/// Makes orphaned descendants this process's children, to wait for.
pub(crate) fn set_child_subreaper() -> Result<(), Errno> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
}

pub(crate) fn drop_bounding_capability(cap: u32) -> Result<(), Errno> {
    prctl(libc::PR_CAPBSET_DROP, cap.into(), 0)
}

pub(crate) fn raise_ambient_capability(cap: u32) -> Result<(), Errno> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
        cap.into(),
    )
}

/// The CLONE_NEW* type of a namespace file.
pub(crate) fn namespace_type(fd: impl AsFd) -> Result<libc::c_int, Errno> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NS_GET_NSTYPE) };
    check(rc.into()).map(|t| t as libc::c_int)
}

pub(crate) fn set_personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes an integer.
    let rc = unsafe { libc::personality(persona) };
    check(rc.into()).map(drop)
}

pub(crate) fn set_io_priority(class: i64, level: i64) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let prio = (class << 13) | level;
    // SAFETY: ioprio_set takes integers; 0 means the calling process.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    check(rc).map(drop)
}

/// Gives the process default signal dispositions and an empty signal
/// mask: ignored signals survive execve, and a runtime's caller (a Rust
/// program ignores SIGPIPE) must not pass its choices to the container.
pub(crate) fn reset_signals() {
    /// The kernel's `struct sigaction` (libc's differs, and libc refuses
    /// the signals it keeps for itself, which a caller may still ignore).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: `default` is a valid kernel sigaction for the call;
            // SIG_DFL installs no handler, and the old action is not read.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
    let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set it is given.
    unsafe { libc::sigemptyset(none.as_mut_ptr()) };
    // SAFETY: the set was initialized above and outlives the call.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut()) };
}

/// Replaces the process image. Returns only on failure.
pub(crate) fn execve(path: &CStr, args: &[CString], env: &[CString]) -> Errno {
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: path, argv and envp are NUL-terminated strings and
    // null-terminated pointer arrays that live across the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::NOEXEC)
}

/// Ends a forked child at once, without running the parent's exit handlers
/// or flushing buffers it copied from the parent.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// mount(2) with raw MS_* flags, as the OCI mount options map to them.
pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that lives
    // across the call.
    let rc = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    };
    check(rc.into()).map(drop)
}

/// Marks every fd from `first` up close-on-exec, so nothing the runtime
/// inherited leaks into the container.
pub(crate) fn close_fds_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes integers and only changes fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    check(rc).map(drop)
}

/// kill(2) with any signal number, real-time ones included.
pub(crate) fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill takes integers; callers pass pids of container processes.
    let rc = unsafe { libc::kill(pid, signal) };
    check(rc.into()).map(drop)
}

/// unshare(2) for the namespace flags the runtime uses after fork.
pub(crate) fn unshare(namespace: libc::c_int) -> Result<(), Errno> {
    debug_assert!(namespace == libc::CLONE_NEWTIME || namespace == libc::CLONE_NEWCGROUP);
    // SAFETY: a new time or cgroup namespace changes neither the fd table
    // nor the filesystem state that other code could rely on.
    let rc = unsafe { libc::unshare(namespace) };
    check(rc.into()).map(drop)
}

/// Brings the loopback interface of the caller's network namespace up, as
/// runc does for every new network namespace (Docker relies on it).
pub(crate) fn loopback_up() -> Result<(), Errno> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the named interface in the
    // ifreq, which lives across the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) };
    check(rc.into())?;
    // SAFETY: after SIOCGIFFLAGS, the flags member of the union is set.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq, which lives across the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    check(rc.into()).map(drop)
}
