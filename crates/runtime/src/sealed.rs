//! Host binaries that enter a container run sealed: from a copy or a view
//! of themselves that nothing can write (the CVE-2019-5736 class of escapes).
//!
//! A process that joins a container's namespaces stays the host binary
//! that forked it until it executes the container's program. If that
//! program is `#!/proc/self/exe`, the kernel runs the host binary again
//! inside the container, where the container's processes can open
//! `/proc/PID/exe` and, once it exits, write over the file on the host. A
//! process whose executable is sealed exposes nothing writable:
//!
//! - a sealed in-memory copy ([`copy`]), which no one can write, grow or
//!   shrink, gone with the last process running it: what the daemon makes
//!   once and starts every monitor from;
//! - or a view: the binary bound read-only under [`VIEWS`], made once per
//!   binary and boot, so that each start costs one more exec and no copy
//!   (a copy per start costs milliseconds: pages allocated, filled, freed),
//!   and no mount either (a mount that goes at each exit waits for an RCU
//!   grace period). What keel-runtime re-executes through.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

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

/// Where views live: one directory per binary (device, inode and change
/// time), holding a read-only bind mount of it under its own name.
pub const VIEWS: &str = "/run/keel-runtime/sealed";

/// Whether the running program is sealed: a sealed copy, or a view.
pub fn running_sealed() -> Result<bool> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "opening /proc/self/exe".into())?;
    if rustix::fs::fcntl_get_seals(&exe).is_ok_and(|seals| seals.contains(SEALS)) {
        return Ok(true);
    }
    let path = std::fs::read_link("/proc/self/exe").context(|| "reading /proc/self/exe".into())?;
    Ok(path.starts_with(VIEWS) && read_only(&exe)?)
}

fn read_only(file: &impl AsFd) -> Result<bool> {
    Ok(rustix::fs::fstatvfs(file)
        .context(|| "looking at /proc/self/exe".into())?
        .f_flag
        .contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// The view of the running program: found under [`VIEWS`], or made there.
fn view() -> Result<PathBuf> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "opening /proc/self/exe".into())?;
    let binary = rustix::fs::fstat(&exe).context(|| "looking at /proc/self/exe".into())?;
    let path = std::fs::read_link("/proc/self/exe").context(|| "reading /proc/self/exe".into())?;
    let name = path.file_name().unwrap_or(OsStr::new("exe"));
    let key = format!(
        "{:x}-{}-{}.{}",
        binary.st_dev, binary.st_ino, binary.st_ctime, binary.st_ctime_nsec
    );
    let view = Path::new(VIEWS).join(&key).join(name);
    if is_view_of(&view, &binary) {
        return Ok(view);
    }
    let describe = || format!("making a read-only view of {} in {VIEWS}", path.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(VIEWS)
        .context(describe)?;
    forget_deleted_binaries();
    // Made aside, then renamed into place: a view is whole or absent.
    let aside = Path::new(VIEWS).join(format!(".{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&aside)
        .context(describe)?;
    let target = aside.join(name);
    let made = (|| {
        File::create(&target)?;
        use rustix::mount::MountFlags;
        rustix::mount::mount_bind("/proc/self/exe", &target)?;
        let read_only =
            MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
        rustix::mount::mount_remount(&target, read_only, "")?;
        std::fs::rename(&aside, view.parent().unwrap_or(Path::new(VIEWS)))
    })();
    if made.is_err() {
        let _ = rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir_all(&aside);
    }
    // Another process may have made it meanwhile: either will do.
    match is_view_of(&view, &binary) {
        true => Ok(view),
        false => Err(made.err().map_or_else(
            || Error::Container(describe()),
            |source| Error::Io {
                what: describe(),
                source,
            },
        )),
    }
}

/// Whether `view` is a read-only bind of `binary`.
fn is_view_of(view: &Path, binary: &rustix::fs::Stat) -> bool {
    let Ok(file) = rustix::fs::open(
        view,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) else {
        return false;
    };
    rustix::fs::fstat(&file)
        .is_ok_and(|st| (st.st_dev, st.st_ino) == (binary.st_dev, binary.st_ino))
        && read_only(&file).unwrap_or(false)
}

/// Views of binaries deleted since (an upgrade, a rebuild) hold their files
/// for nothing: they go when a new view is made.
fn forget_deleted_binaries() {
    let Ok(entries) = std::fs::read_dir(VIEWS) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        let deleted = files
            .flatten()
            .any(|file| std::fs::symlink_metadata(file.path()).is_ok_and(|m| m.nlink() == 0));
        if deleted {
            for file in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = rustix::mount::unmount(file.path(), rustix::mount::UnmountFlags::DETACH);
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// How to seal the running program when it is not sealed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Through its view, made if need be; a sealed copy where no view can
    /// be made (no /run, no right to mount).
    View,
    /// A sealed copy in memory.
    Copy,
}

/// Executes the running program again, sealed as `seal` says, with the
/// same arguments and environment, unless it runs sealed already. Returns
/// only if it ran sealed, or with the error that kept it from executing.
pub fn reexec_unless_sealed(seal: Seal) -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    let view = match seal {
        Seal::View => view().ok(),
        Seal::Copy => None,
    };
    let sealed = match view {
        Some(view) => rustix::fs::open(&view, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .context(|| format!("opening {}", view.display()))?,
        None => copy(Path::new("/proc/self/exe"))?,
    };
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
            sealed.as_raw_fd(),
            argv_pointers.as_ptr(),
            envp_pointers.as_ptr(),
        )
    };
    Err(Error::Os {
        what: "executing the sealed program".into(),
        source: rustix::io::Errno::from_io_error(&std::io::Error::last_os_error())
            .unwrap_or(rustix::io::Errno::NOEXEC),
    })
}

/// Refuses to let the running program enter a container unless it runs
/// sealed: every caller of create, run and exec must have re-executed
/// through [`reexec_unless_sealed`] (or been started from [`copy`]).
pub(crate) fn require() -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    Err(Error::Container(format!(
        "refusing to enter a container from {}, which is not sealed: a container could write \
         over it (CVE-2019-5736); run it through keel_runtime::sealed::reexec_unless_sealed first",
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
