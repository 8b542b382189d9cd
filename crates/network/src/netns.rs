//! Network namespaces that outlive any process in them: each is bound to a
//! file, so a container's network is set up before its process starts, and
//! found again by the daemon after a restart.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rustix::mount::UnmountFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::error::{Error, Result};
use crate::netlink::Netlink;

/// Makes a new network namespace, its loopback up, and binds it to `path`
/// (a new file).
pub fn create(path: &Path) -> Result<()> {
    bind(make(path)?, path)
}

/// Network namespaces made ahead of need by a thread of their own, so
/// that a container's start takes one instead of waiting for the kernel
/// to make it: about a millisecond, and more while the kernel tears down
/// other namespaces, which takes the same locks. Spares that are never
/// used end with the daemon (only their fds hold them).
#[derive(Debug)]
pub struct Spares {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    pool: Mutex<Pool>,
    changed: Condvar,
}

#[derive(Debug)]
struct Pool {
    ready: Vec<OwnedFd>,
    /// How many to keep ready; 0 once the owner is gone.
    wanted: usize,
    maker: bool,
}

impl Spares {
    /// Keeps `wanted` namespaces ready, from the first one taken on.
    pub fn new(wanted: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool: Mutex::new(Pool {
                    ready: Vec::new(),
                    wanted,
                    maker: false,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// Binds a new network namespace, its loopback up, to `path` (a new
    /// file), as [`create`] does: a spare if one is ready.
    pub fn create(&self, path: &Path) -> Result<()> {
        let spare = {
            let mut pool = self.shared.lock();
            if !pool.maker {
                pool.maker = self.start_maker();
            }
            let spare = pool.ready.pop();
            self.shared.changed.notify_all();
            spare
        };
        match spare {
            Some(namespace) => bind(namespace, path),
            None => create(path),
        }
    }

    /// Whether the thread that makes spares started.
    fn start_maker(&self) -> bool {
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("netns-spares".to_owned())
            .stack_size(256 * 1024)
            .spawn(move || shared.make_spares())
            .is_ok()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.shared.lock().wanted = 0;
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn make_spares(&self) {
        let mut pool = self.lock();
        while pool.wanted > 0 {
            if pool.ready.len() >= pool.wanted {
                pool = self.changed.wait(pool).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            drop(pool);
            let made = make(Path::new("a spare"));
            pool = self.lock();
            match made {
                Ok(namespace) => pool.ready.push(namespace),
                // Starts make their own, and say why if they cannot.
                Err(_) => break,
            }
        }
        pool.ready.clear();
        pool.maker = false;
    }
}

/// A new network namespace with its loopback up (as runc brings it up in
/// every new one; Docker relies on it), held by the fd returned; `path`
/// names it in errors.
fn make(path: &Path) -> Result<OwnedFd> {
    let failed = |what: &str, source: std::io::Error| Error::Namespace {
        path: path.to_owned(),
        what: what.to_owned(),
        source,
    };
    // On a thread of its own: unsharing moves only the calling thread, and
    // this one ends right after.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: only the network namespace is unshared, not the
                // file table, so every thread keeps seeing the same fds.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }
                    .map_err(|errno| failed("making a namespace for", errno.into()))?;
                Netlink::open()?.set_up("lo")?;
                fs::File::open("/proc/thread-self/ns/net")
                    .map(OwnedFd::from)
                    .map_err(|e| failed("opening the new namespace for", e))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Binds the namespace `namespace` holds to `path` (a new file).
fn bind(namespace: OwnedFd, path: &Path) -> Result<()> {
    let failed = |what: &str, source: std::io::Error| Error::Namespace {
        path: path.to_owned(),
        what: what.to_owned(),
        source,
    };
    fs::File::create_new(path).map_err(|e| failed("creating the file for", e))?;
    let source = format!("/proc/self/fd/{}", namespace.as_raw_fd());
    if let Err(errno) = rustix::mount::mount_bind(source.as_str(), path) {
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
