//! Host binaries that enter a container run from a sealed copy of
//! themselves (the CVE-2019-5736 class of escapes).
//!
//! A process that joins a container's namespaces stays the host binary
//! that forked it until it executes the container's program. If that
//! program is `#!/proc/self/exe`, the kernel runs the host binary again
//! inside the container, where the container's processes can open
//! `/proc/PID/exe` and, once it exits, write over the file on the host. A
//! process whose executable is a sealed in-memory copy exposes only that
//! copy, which no one can write, grow or shrink, and which is gone with
//! the last process running it.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use crate::error::{Context, Error, Result};

/// The seals that make a copy immutable, including against new seals
/// being changed.
const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// A sealed in-memory copy of the executable at `path`, to execute through
/// `/proc/self/fd/N` or `fexecve`. The fd is close-on-exec: the kernel opens
/// the binary before it closes such fds, so executing it still works.
pub fn copy(path: &Path) -> Result<OwnedFd> {
    let describe = || format!("making a sealed copy of {}", path.display());
    let mut source = File::open(path).context(describe)?;
    let name = c"keel-sealed";
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Kernels that police memfd execution (6.3+, vm.memfd_noexec) want it
    // asked for; older ones do not know the flag and make it executable.
    let memfd = match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(name, flags),
        other => other,
    }
    .context(describe)?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut source, &mut copy).context(describe)?;
    rustix::fs::fchmod(&copy, Mode::from_bits_retain(0o555)).context(describe)?;
    rustix::fs::fcntl_add_seals(&copy, SEALS).context(describe)?;
    Ok(copy.into())
}

/// Whether the running program is a sealed copy.
pub fn running_sealed() -> Result<bool> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "opening /proc/self/exe".into())?;
    Ok(rustix::fs::fcntl_get_seals(&exe).is_ok_and(|seals| seals.contains(SEALS)))
}

/// Executes a sealed copy of the running program with the same arguments
/// and environment, unless it is one already. Returns only then, or with
/// the error that kept it from executing.
pub fn reexec_unless_sealed() -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    let copy = copy(Path::new("/proc/self/exe"))?;
    let argv = std::env::args_os()
        .map(c_string)
        .collect::<Result<Vec<_>>>()?;
    let envp = std::env::vars_os()
        .map(|(name, value)| {
            let mut pair = name;
            pair.push("=");
            pair.push(value);
            c_string(pair)
        })
        .collect::<Result<Vec<_>>>()?;
    let pointers = |strings: &[CString]| {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv_pointers, envp_pointers) = (pointers(&argv), pointers(&envp));
    // SAFETY: both arrays are NULL-terminated and point into `argv` and
    // `envp`, which outlive the call; fexecve returns only on failure.
    unsafe {
        libc::fexecve(
            copy.as_raw_fd(),
            argv_pointers.as_ptr(),
            envp_pointers.as_ptr(),
        )
    };
    Err(Error::Os {
        what: "executing the sealed copy of this program".into(),
        source: rustix::io::Errno::from_io_error(&std::io::Error::last_os_error())
            .unwrap_or(rustix::io::Errno::NOEXEC),
    })
}

/// Refuses to let the running program enter a container unless it is a
/// sealed copy: every caller of create, run and exec must have re-executed
/// through [`reexec_unless_sealed`] (or been started from [`copy`]).
pub(crate) fn require() -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    Err(Error::Container(format!(
        "refusing to enter a container from {}, which is not a sealed copy: a container could \
         write over it (CVE-2019-5736); run it through keel_runtime::sealed::reexec_unless_sealed \
         first",
        exe.display()
    )))
}

fn c_string(text: OsString) -> Result<CString> {
    CString::new(text.into_vec()).map_err(|e| {
        Error::Container(format!(
            "an argument or environment entry holds a NUL byte: {:?}",
            String::from_utf8_lossy(&e.into_vec())
        ))
    })
}
