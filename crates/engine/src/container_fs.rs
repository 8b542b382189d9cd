//! A container's files as its processes see them, for `docker cp`: its
//! root filesystem with its volumes and binds mounted at their targets,
//! its /etc/hosts, /etc/hostname and /etc/resolv.conf once made, and,
//! while it runs, its tmpfs mounts too (a stopped container's are not
//! there, and a copy reaches the directory beneath, as in Docker). This is
//! Docker's `openContainerFS`.
//!
//! The mounts are made in a private mount namespace by a thread of its
//! own, which leaves it when it ends; an fd on the namespace keeps it, and
//! so its mounts, for as long as the view lives, and the kernel takes them
//! down with it. The host's mounts and the container's never change. Every
//! path is resolved beneath the container's root, mounts crossed as the
//! container crosses them, so a symlink in a volume (`/v/x -> /etc`) leads
//! to the container's `/etc`, never the host's; a bind's host directory is
//! reached through its mount only.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags, fstat, mkdirat, openat, openat2, readlinkat};
use rustix::io::Errno;
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, mount_change, mount_remount,
    move_mount, open_tree,
};
use rustix::thread::{LinkNameSpaceType, UnshareFlags, move_into_link_name_space};

use crate::container::{Container, Status};
use crate::mounts::{Kind, Mount};
use crate::volumes::Volumes;

/// A container's files, with its mounts, in a namespace of the copy's own.
#[derive(Debug)]
pub(crate) struct View {
    /// The container's `/`.
    root: OwnedFd,
    /// The host's /proc, where an fd's path is read.
    proc: OwnedFd,
    /// Keeps the namespace the mounts are in.
    _namespace: OwnedFd,
    /// Whether its tmpfs mounts are in the view (it runs).
    live: bool,
}

/// A mount of the view: what is mounted where.
struct Attach {
    kind: Kind,
    /// A host path; none for a tmpfs, which is the running container's.
    source: PathBuf,
    target: String,
    read_only: bool,
}

/// A running container's mount namespace and root, to take its tmpfs
/// mounts from.
struct Running {
    namespace: OwnedFd,
    root: OwnedFd,
}

impl View {
    /// The view of `container`, whose root filesystem is mounted (on the
    /// host) at `merged` and whose name files are in `files_dir`.
    pub(crate) fn open(
        container: &Container,
        merged: &Path,
        volumes: &Volumes,
        files_dir: &Path,
    ) -> io::Result<Self> {
        let proc = rustix::fs::open(
            "/proc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let has_tmpfs = container
            .config
            .mounts
            .iter()
            .any(|m| m.kind == Kind::Tmpfs);
        let running = has_tmpfs.then(|| running(container, merged)).flatten();
        let mut sources = container
            .config
            .mounts
            .iter()
            .map(|mount| Attach {
                kind: mount.kind,
                source: match mount.kind {
                    Kind::Volume => volumes.data_dir(&mount.source),
                    Kind::Bind | Kind::Tmpfs => PathBuf::from(&mount.source),
                },
                target: mount.target.clone(),
                read_only: mount.read_only,
            })
            .collect::<Vec<_>>();
        // Docker's name files, where the container mounts none of its own.
        for file in ["hosts", "hostname", "resolv.conf"] {
            let target = format!("/etc/{file}");
            let source = files_dir.join(file);
            let own = container
                .config
                .mounts
                .iter()
                .any(|m| Path::new(&m.target) == Path::new(&target));
            if !own && source.exists() {
                sources.push(Attach {
                    kind: Kind::Bind,
                    source,
                    target,
                    read_only: false,
                });
            }
        }
        let (root, namespace) = std::thread::scope(|scope| {
            scope
                .spawn(|| assemble(merged, &sources, running.as_ref()))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        Ok(View {
            root,
            proc,
            _namespace: namespace,
            live: running.is_some(),
        })
    }

    /// Opens `path` (absolute in the container), its symlinks resolved in
    /// the container.
    pub(crate) fn open_path(&self, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
        resolve(&self.root, path, flags)
    }

    /// Where an fd of the view is, as a path in the container: read by a
    /// thread rooted at the container's root, which the kernel names paths
    /// from.
    pub(crate) fn path_of(&self, fd: &OwnedFd) -> io::Result<String> {
        let link = format!("self/fd/{}", fd.as_raw_fd());
        let named = std::thread::scope(|scope| {
            scope
                .spawn(|| -> io::Result<std::ffi::CString> {
                    // SAFETY: CLONE_FS gives this thread a root and working
                    // directory of its own; the fd table stays shared.
                    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::FS) }?;
                    rustix::process::fchdir(&self.root)?;
                    rustix::process::chroot(".")?;
                    Ok(readlinkat(&self.proc, link.as_str(), Vec::new())?)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        Ok(named.to_string_lossy().into_owned())
    }

    /// The container's `/`, as a host path that reaches it.
    pub(crate) fn root_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.root.as_raw_fd()))
    }

    /// Whether `mount` is in the view: a stopped container's tmpfs is not.
    pub(crate) fn has(&self, mount: &Mount) -> bool {
        mount.kind != Kind::Tmpfs || self.live
    }
}

/// Opens `path` below `root`, following symlinks inside it only.
fn resolve(root: &OwnedFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let path = match path.trim_start_matches('/') {
        "" => ".",
        relative => relative,
    };
    Ok(openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// The running container's namespace and root, if its init still is its
/// own: a pid reused since would have another root.
fn running(container: &Container, merged: &Path) -> Option<Running> {
    let pid = container.state.pid;
    if container.state.status != Status::Running || pid <= 0 {
        return None;
    }
    let namespace = rustix::fs::open(
        format!("/proc/{pid}/ns/mnt"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let (theirs, ours) = (fstat(&root).ok()?, rustix::fs::stat(merged).ok()?);
    ((theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino))
        .then_some(Running { namespace, root })
}

/// In a thread that ends after: a new mount namespace with the container's
/// mounts on its root filesystem, parents before children. Answers the
/// root and the namespace.
fn assemble(
    merged: &Path,
    mounts: &[Attach],
    running: Option<&Running>,
) -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: CLONE_NEWNS (and the CLONE_FS it implies) gives this thread
    // a mount namespace, root and working directory of its own; the fd
    // table stays shared.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }?;
    let namespace = rustix::fs::open(
        "/proc/thread-self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Nothing mounted here reaches the host's namespace.
    mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )?;
    let clone = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    // A tmpfs is only in the running container's namespace: its mounts are
    // cloned there, then the thread comes back.
    let mut tmpfs = HashMap::new();
    if let Some(running) = running {
        move_into_link_name_space(running.namespace.as_fd(), Some(LinkNameSpaceType::Mount))?;
        for mount in mounts.iter().filter(|m| m.kind == Kind::Tmpfs) {
            let at = resolve(&running.root, &mount.target, OFlags::PATH)?;
            tmpfs.insert(
                mount.target.as_str(),
                open_tree(&at, "", clone | OpenTreeFlags::AT_EMPTY_PATH)?,
            );
        }
        move_into_link_name_space(namespace.as_fd(), Some(LinkNameSpaceType::Mount))?;
    }
    let root = rustix::fs::open(
        merged,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut ordered: Vec<&Attach> = mounts.iter().collect();
    ordered.sort_by_key(|m| Path::new(&m.target).components().count());
    for mount in ordered {
        let tree = match mount.kind {
            Kind::Tmpfs => match tmpfs.remove(mount.target.as_str()) {
                Some(tree) => tree,
                None => continue,
            },
            Kind::Volume | Kind::Bind => open_tree(CWD, &mount.source, clone).map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!(
                        "cannot reach {}, mounted at {}: {e}",
                        mount.source.display(),
                        mount.target
                    ),
                )
            })?,
        };
        let is_dir = fstat(&tree)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let point = mount_point(&root, &mount.target, is_dir)?;
        move_mount(
            &tree,
            "",
            &point,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )?;
        if mount.read_only {
            // The fd now names the attached mount's root, which a remount
            // needs.
            mount_remount(
                format!("/proc/self/fd/{}", tree.as_raw_fd()),
                MountFlags::BIND | MountFlags::RDONLY,
                "",
            )?;
        }
    }
    Ok((root, namespace))
}

/// The mount point `target` below `root`, made where the container has
/// none, as its start would make it: parents as directories, itself as a
/// directory or (for a file) an empty file.
fn mount_point(root: &OwnedFd, target: &str, is_dir: bool) -> io::Result<OwnedFd> {
    let target = keel_image::clean_path(target);
    let parts: Vec<&str> = target.split('/').collect();
    let mut parent_path = String::new();
    for (i, part) in parts.iter().enumerate() {
        // Reopened from the root each time: through the container's own
        // symlinks, if a part is one.
        let parent = resolve(root, &parent_path, OFlags::PATH | OFlags::DIRECTORY)?;
        let made = match i + 1 == parts.len() && !is_dir {
            true => openat(
                &parent,
                *part,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop),
            false => mkdirat(&parent, *part, Mode::from_raw_mode(0o755)),
        };
        match made {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(error) => return Err(error.into()),
        }
        parent_path = format!("{parent_path}/{part}");
    }
    resolve(root, &target, OFlags::PATH)
}
