//! Network namespaces that outlive any process in them: each is bound to a
//! file, so a container's network is set up before its process starts, and
//! found again by the daemon after a restart.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use rustix::mount::UnmountFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::error::{Error, Result};

/// Makes a new network namespace and binds it to `path` (a new file).
pub fn create(path: &Path) -> Result<()> {
    let failed = |what: &str, source: std::io::Error| Error::Namespace {
        path: path.to_owned(),
        what: what.to_owned(),
        source,
    };
    fs::File::create_new(path).map_err(|e| failed("creating the file for", e))?;
    // On a thread of its own: unsharing moves only the calling thread, and
    // this one ends right after.
    let bound = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: only the network namespace is unshared, not the
                // file table, so every thread keeps seeing the same fds.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }?;
                rustix::mount::mount_bind("/proc/thread-self/ns/net", path)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if let Err(errno) = bound {
        fs::remove_file(path).ok();
        return Err(failed("binding a new namespace to", errno.into()));
    }
    Ok(())
}

/// Unbinds and deletes a namespace made by [`create`]; the namespace
/// itself ends with its last process. Nothing there is not an error.
pub fn remove(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(errno) => {
            return Err(Error::Namespace {
                path: path.to_owned(),
                what: "unbinding".to_owned(),
                source: errno.into(),
            });
        }
    }
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => Err(Error::Namespace {
            path: path.to_owned(),
            what: "deleting".to_owned(),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Runs `work` on a thread inside the namespace at `path`: sockets it
/// opens there stay there.
pub fn run_in<T: Send>(path: &Path, work: impl FnOnce() -> T + Send) -> Result<T> {
    let namespace = fs::File::open(path).map_err(|source| Error::Namespace {
        path: path.to_owned(),
        what: "opening".to_owned(),
        source,
    })?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&namespace),
                    Some(LinkNameSpaceType::Network),
                )
                .map_err(|errno| Error::Namespace {
                    path: path.to_owned(),
                    what: "entering".to_owned(),
                    source: errno.into(),
                })?;
                Ok(work())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
