//! The container's filesystem: the rootfs bind, the configured mounts, /dev,
//! pivot_root, masked and read-only paths.
//!
//! Every destination is resolved inside the rootfs with openat2's
//! RESOLVE_IN_ROOT, so a symlink in the image cannot point a mount at the
//! host; the mount then targets the opened file through /proc/self/fd.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use keel_cgroups::Cgroup;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::sys;

/// The filesystem part of a container, checked and converted before fork.
#[derive(Debug)]
pub(crate) struct RootfsPlan {
    rootfs: PathBuf,
    readonly: bool,
    /// Propagation applied recursively to the container's copy of `/`.
    root_propagation: libc::c_ulong,
    mounts: Vec<MountPlan>,
    /// Whether /dev is a fresh filesystem the runtime must populate.
    populate_dev: bool,
    devices: Vec<DeviceNode>,
    masked: Vec<PathBuf>,
    readonly_paths: Vec<PathBuf>,
    no_pivot: bool,
    /// In a user namespace devices cannot be created, only bound.
    bind_devices: bool,
    /// No mount namespace of its own: the container shares the host's, so
    /// the rootfs is reached by chroot, the mounts are made inside it (the
    /// host sees them; delete takes them away) and nothing above it is
    /// touched: not its propagation, not the rootfs's own mount.
    host_mounts: bool,
}

#[derive(Debug)]
struct MountPlan {
    destination: PathBuf,
    source: Option<PathBuf>,
    fstype: Option<String>,
    flags: libc::c_ulong,
    /// Propagation changes, applied after the mount.
    propagation: Vec<libc::c_ulong>,
    data: String,
    bind: bool,
    /// Copy what the destination held into the new tmpfs (runc's option).
    copy_up: bool,
}

/// A device node to create in the container's /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceNode {
    /// The host path (bound when nodes cannot be created) and, below the
    /// rootfs, the container path.
    path: PathBuf,
    kind: rustix::fs::FileType,
    major: u32,
    minor: u32,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl DeviceNode {
    fn from_spec(device: &LinuxDevice) -> Result<Self> {
        let field = || format!("linux.devices[{}]", device.path().display());
        if !device.path().is_absolute() || inside(device.path()).is_none() {
            return Err(Error::invalid(
                field(),
                "path",
                "must be an absolute path below /dev",
            ));
        }
        let kind = match device.typ() {
            LinuxDeviceType::B => rustix::fs::FileType::BlockDevice,
            LinuxDeviceType::C | LinuxDeviceType::U => rustix::fs::FileType::CharacterDevice,
            LinuxDeviceType::P => rustix::fs::FileType::Fifo,
            LinuxDeviceType::A => {
                return Err(Error::invalid(field(), "type a", "use c, b, u or p"));
            }
        };
        let number = |n: i64, what: &str| {
            u32::try_from(n)
                .map_err(|_| Error::invalid(field(), format!("{what} {n}"), "must be 0 or more"))
        };
        Ok(DeviceNode {
            path: device.path().clone(),
            kind,
            major: number(device.major(), "major")?,
            minor: number(device.minor(), "minor")?,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        })
    }

    /// The devices every container gets, as runc gives them.
    fn defaults() -> impl Iterator<Item = DeviceNode> {
        [
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/full", 1, 7),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
        ]
        .into_iter()
        .map(|(path, major, minor)| DeviceNode {
            path: PathBuf::from(path),
            kind: rustix::fs::FileType::CharacterDevice,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
    }
}

impl RootfsPlan {
    pub(crate) fn new(
        spec: &Spec,
        rootfs: PathBuf,
        no_pivot: bool,
        user_ns: bool,
        host_mounts: bool,
    ) -> Result<Self> {
        let linux = spec.linux().as_ref();
        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            mounts.push(MountPlan::new(m)?);
        }
        let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => libc::MS_SLAVE | libc::MS_REC,
            Some(p) => match propagation_flag(p) {
                Some(flag) => flag | libc::MS_REC,
                None => {
                    return Err(Error::invalid(
                        "linux.rootfsPropagation",
                        p,
                        "use shared, slave, private or unbindable (optionally with r)",
                    ));
                }
            },
        };
        let mut devices: Vec<DeviceNode> = Vec::new();
        for device in linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
        {
            devices.push(DeviceNode::from_spec(device)?);
        }
        // Configured devices replace the defaults of the same path.
        let defaults: Vec<DeviceNode> = DeviceNode::defaults()
            .filter(|d| !devices.iter().any(|c| c.path == d.path))
            .collect();
        devices.splice(0..0, defaults);
        let populate_dev = !mounts
            .iter()
            .any(|m| m.destination == Path::new("dev") && m.bind);
        let container_paths = |field: &str, list: Option<&Vec<String>>| -> Result<Vec<PathBuf>> {
            list.into_iter()
                .flatten()
                .map(|p| {
                    if p.starts_with('/') {
                        Ok(PathBuf::from(p))
                    } else {
                        Err(Error::invalid(field, p, "must be an absolute path"))
                    }
                })
                .collect()
        };
        let readonly = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        if readonly && host_mounts {
            return Err(Error::invalid(
                "root.readonly",
                "true without a mount namespace",
                "it would make the host's file system read-only; add {\"type\": \"mount\"} to \
                 linux.namespaces or set root.readonly to false",
            ));
        }
        Ok(RootfsPlan {
            rootfs,
            readonly,
            root_propagation,
            mounts,
            populate_dev,
            devices,
            masked: container_paths(
                "linux.maskedPaths",
                linux.and_then(|l| l.masked_paths().as_ref()),
            )?,
            readonly_paths: container_paths(
                "linux.readonlyPaths",
                linux.and_then(|l| l.readonly_paths().as_ref()),
            )?,
            no_pivot,
            bind_devices: user_ns,
            host_mounts,
        })
    }

    /// The rootfs, when the container has no mount namespace of its own
    /// and its mounts are made in the host's, below it.
    pub(crate) fn mounts_in_host(&self) -> Option<&Path> {
        self.host_mounts.then_some(self.rootfs.as_path())
    }

    /// In the container's new mount namespace, before pivot_root: makes the
    /// rootfs a mount point and mounts everything configured into it.
    /// Returns the host's null device, opened before anything of the
    /// container's can stand in for it, for [`protect`](Self::protect).
    pub(crate) fn mount_all(&self, cgroup: &Cgroup, cgroup_ns: bool) -> Result<NullDevice> {
        let null = NullDevice::open()?;
        if !self.host_mounts {
            self.make_rootfs_a_mount()?;
        }
        let root = rustix::fs::open(
            &self.rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("opening the rootfs {}", self.rootfs.display()))?;
        for m in &self.mounts {
            if m.fstype.as_deref() == Some("cgroup") || m.fstype.as_deref() == Some("cgroup2") {
                mount_cgroups(&root, m, cgroup, cgroup_ns)?;
            } else {
                m.mount(&root)?;
            }
        }
        if self.populate_dev {
            self.populate_dev(&root)?;
        }
        Ok(null)
    }

    /// Gives the container's `/` its propagation and binds the rootfs on
    /// itself, for pivot_root.
    fn make_rootfs_a_mount(&self) -> Result<()> {
        // Nothing binds out of an unbindable mount, the rootfs included: that
        // comes after pivot_root, with slave until then.
        let before = match self.root_propagation & libc::MS_UNBINDABLE {
            0 => self.root_propagation,
            _ => libc::MS_SLAVE | libc::MS_REC,
        };
        mount_path(None, Path::new("/"), None, before, None)
            .context(|| "setting the propagation of the container's /".into())?;
        if self.root_propagation & libc::MS_SHARED != 0 {
            make_parent_mount_private(&self.rootfs)?;
        }
        mount_path(
            Some(&self.rootfs),
            &self.rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .context(|| format!("bind-mounting the rootfs {}", self.rootfs.display()))
    }

    /// Makes the rootfs the process's `/`.
    pub(crate) fn enter(&self) -> Result<()> {
        if self.host_mounts {
            rustix::process::chroot(&self.rootfs)
                .context(|| format!("chroot into {}", self.rootfs.display()))?;
        } else if self.no_pivot {
            std::env::set_current_dir(&self.rootfs)
                .context(|| format!("entering {}", self.rootfs.display()))?;
            mount_path(
                Some(Path::new(".")),
                Path::new("/"),
                None,
                libc::MS_MOVE,
                None,
            )
            .context(|| "moving the rootfs onto /".into())?;
            rustix::process::chroot(".").context(|| "chroot into the rootfs".into())?;
        } else {
            pivot_root(&self.rootfs)?;
        }
        std::env::set_current_dir("/").context(|| "changing to the new /".into())
    }

    /// After pivot_root: write-protects paths, hides others behind `null`
    /// or an empty read-only tmpfs, makes the root read-only, and gives it
    /// its propagation.
    pub(crate) fn protect(&self, mut null: NullDevice) -> Result<()> {
        for path in &self.readonly_paths {
            make_readonly(path)?;
        }
        for path in &self.masked {
            mask(path, &mut null)?;
        }
        if self.readonly {
            remount_readonly(Path::new("/"))
                .context(|| "making the root filesystem read-only".into())?;
        }
        // The rootfs was bound from a private parent (shared) or under a
        // slave / (unbindable, which no later bind could come out of): its
        // own propagation comes last. The host's / keeps its own.
        if !self.host_mounts && self.root_propagation & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0
        {
            mount_path(None, Path::new("/"), None, self.root_propagation, None)
                .context(|| "setting the propagation of the container's /".into())?;
        }
        Ok(())
    }

    fn populate_dev(&self, root: &OwnedFd) -> Result<()> {
        for device in &self.devices {
            self.create_device(root, device)?;
        }
        for (link, target) in [
            ("dev/fd", "/proc/self/fd"),
            ("dev/stdin", "/proc/self/fd/0"),
            ("dev/stdout", "/proc/self/fd/1"),
            ("dev/stderr", "/proc/self/fd/2"),
            ("dev/ptmx", "pts/ptmx"),
        ] {
            symlink_in(root, target, Path::new(link))?;
        }
        if Path::new("/proc/kcore").exists() {
            symlink_in(root, "/proc/kcore", Path::new("dev/core"))?;
        }
        Ok(())
    }

    fn create_device(&self, root: &OwnedFd, device: &DeviceNode) -> Result<()> {
        let destination = inside(&device.path).unwrap_or_default();
        let describe = || format!("creating device {}", device.path.display());
        if self.bind_devices {
            let fd = open_in_root(root, &destination, Create::File).context(describe)?;
            return mount_fd(Some(&device.path), &fd, None, libc::MS_BIND, None).context(describe);
        }
        let parent = destination.parent().unwrap_or(Path::new(""));
        let dir = open_in_root(root, parent, Create::Dir).context(describe)?;
        let name = destination.file_name().unwrap_or_default();
        let mode = Mode::from_bits_retain(device.mode);
        let dev = rustix::fs::makedev(device.major, device.minor);
        match rustix::fs::mknodat(&dir, name, device.kind, mode, dev) {
            Ok(()) => {}
            // An image may ship the node already; recreate it as configured.
            Err(Errno::EXIST) => {
                rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()).context(describe)?;
                rustix::fs::mknodat(&dir, name, device.kind, mode, dev).context(describe)?;
            }
            Err(e) => return Err(e).context(describe),
        }
        // mknod applied the umask; set the mode exactly.
        rustix::fs::chmodat(&dir, name, mode, rustix::fs::AtFlags::empty()).context(describe)?;
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::process::Uid::from_raw(device.uid)),
            Some(rustix::process::Gid::from_raw(device.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .context(describe)
    }
}

impl MountPlan {
    fn new(m: &Mount) -> Result<Self> {
        let field = || format!("mounts[{}]", m.destination().display());
        let destination = inside(m.destination())
            .ok_or_else(|| Error::invalid(field(), "destination", "must name a path below /"))?;
        let mut plan = MountPlan {
            destination,
            source: m.source().clone(),
            fstype: m.typ().clone().filter(|t| !t.is_empty() && t != "none"),
            flags: 0,
            propagation: Vec::new(),
            data: String::new(),
            bind: m.typ().as_deref() == Some("bind"),
            copy_up: false,
        };
        for option in m.options().iter().flatten() {
            if let Some(p) = propagation_flag(option) {
                plan.propagation.push(p);
                continue;
            }
            let (set, clear) = match option.as_str() {
                "bind" => {
                    plan.bind = true;
                    (libc::MS_BIND, 0)
                }
                "rbind" => {
                    plan.bind = true;
                    (libc::MS_BIND | libc::MS_REC, 0)
                }
                "tmpcopyup" => {
                    plan.copy_up = true;
                    (0, 0)
                }
                "defaults" => (0, 0),
                "ro" => (libc::MS_RDONLY, 0),
                "rw" => (0, libc::MS_RDONLY),
                "suid" => (0, libc::MS_NOSUID),
                "nosuid" => (libc::MS_NOSUID, 0),
                "dev" => (0, libc::MS_NODEV),
                "nodev" => (libc::MS_NODEV, 0),
                "exec" => (0, libc::MS_NOEXEC),
                "noexec" => (libc::MS_NOEXEC, 0),
                "sync" => (libc::MS_SYNCHRONOUS, 0),
                "async" => (0, libc::MS_SYNCHRONOUS),
                "dirsync" => (libc::MS_DIRSYNC, 0),
                "remount" => (libc::MS_REMOUNT, 0),
                "mand" => (libc::MS_MANDLOCK, 0),
                "nomand" => (0, libc::MS_MANDLOCK),
                "atime" => (0, libc::MS_NOATIME),
                "noatime" => (libc::MS_NOATIME, 0),
                "diratime" => (0, libc::MS_NODIRATIME),
                "nodiratime" => (libc::MS_NODIRATIME, 0),
                "relatime" => (libc::MS_RELATIME, 0),
                "norelatime" => (0, libc::MS_RELATIME),
                "strictatime" => (libc::MS_STRICTATIME, 0),
                "nostrictatime" => (0, libc::MS_STRICTATIME),
                "idmap" | "ridmap" => {
                    return Err(Error::invalid(
                        field(),
                        format!("option {option:?}"),
                        "keel-runtime does not support id-mapped mounts yet",
                    ));
                }
                // Anything else is filesystem data, such as mode=755.
                _ => {
                    if !plan.data.is_empty() {
                        plan.data.push(',');
                    }
                    plan.data.push_str(option);
                    (0, 0)
                }
            };
            plan.flags = (plan.flags | set) & !clear;
        }
        if plan.bind && plan.source.is_none() {
            return Err(Error::invalid(
                field(),
                "a bind mount without source",
                "give the host path to bind",
            ));
        }
        plan.check_proc(field)?;
        Ok(plan)
    }

    /// As runc: /proc is only ever the container's procfs (the masks and
    /// read-only paths stand on it), and nothing is mounted inside it but
    /// the files lxcfs stands in for.
    fn check_proc(&self, field: impl Fn() -> String) -> Result<()> {
        const COVERABLE: [&str; 11] = [
            "cpuinfo",
            "diskstats",
            "meminfo",
            "stat",
            "swaps",
            "uptime",
            "loadavg",
            "slabinfo",
            "net/dev",
            "sys/kernel/ns_last_pid",
            "sys/crypto/fips_enabled",
        ];
        let Ok(inner) = self.destination.strip_prefix("proc") else {
            return Ok(());
        };
        let what = match (&self.source, self.bind) {
            (Some(source), true) => format!("a bind mount of {}", source.display()),
            _ => format!("a {} mount", self.fstype.as_deref().unwrap_or("filesystem")),
        };
        if inner.as_os_str().is_empty() {
            if self.fstype.as_deref() == Some("proc") && !self.bind {
                return Ok(());
            }
            return Err(Error::invalid(
                field(),
                what,
                "only a proc filesystem can be mounted at /proc",
            ));
        }
        if COVERABLE.iter().any(|file| inner == Path::new(file)) {
            return Ok(());
        }
        Err(Error::invalid(
            field(),
            what,
            format!(
                "nothing can be mounted inside /proc but /proc/{}",
                COVERABLE.join(", /proc/")
            ),
        ))
    }

    fn describe(&self) -> String {
        format!(
            "mounting {} on {} (type {})",
            self.source
                .as_deref()
                .unwrap_or(Path::new("none"))
                .display(),
            Path::new("/").join(&self.destination).display(),
            self.fstype.as_deref().unwrap_or("bind")
        )
    }

    fn mount(&self, root: &OwnedFd) -> Result<()> {
        if self.bind {
            return self.bind_mount(root);
        }
        let target =
            open_in_root(root, &self.destination, Create::Dir).context(|| self.describe())?;
        let copy = if self.copy_up {
            Some(copy_source(&target)?)
        } else {
            None
        };
        let source = self.source.as_deref().unwrap_or(Path::new("none"));
        let fstype = self.fstype.as_deref().unwrap_or("none");
        let data = (!self.data.is_empty()).then_some(self.data.as_str());
        match mount_fd(Some(source), &target, Some(fstype), self.flags, data) {
            Ok(()) => {}
            // Without a network namespace of its own a container in a user
            // namespace may not mount sysfs; bind the host's, as runc does.
            Err(Errno::PERM) if fstype == "sysfs" => {
                mount_fd(
                    Some(Path::new("/sys")),
                    &target,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .context(|| self.describe())?;
                let mounted = open_in_root(root, &self.destination, Create::No)
                    .context(|| self.describe())?;
                remount_fd(&mounted, self.flags | libc::MS_RDONLY).context(|| self.describe())?;
            }
            Err(e) => return Err(e).context(|| self.describe()),
        }
        let mounted =
            open_in_root(root, &self.destination, Create::No).context(|| self.describe())?;
        if let Some(source) = copy {
            copy_tree(&source, &mounted)?;
        }
        self.change_propagation(&mounted)
    }

    fn bind_mount(&self, root: &OwnedFd) -> Result<()> {
        let source = self.source.as_deref().unwrap_or(Path::new("/"));
        let is_dir = std::fs::metadata(source)
            .context(|| format!("{}: the source does not exist", self.describe()))?
            .is_dir();
        let create = if is_dir { Create::Dir } else { Create::File };
        let target = open_in_root(root, &self.destination, create).context(|| self.describe())?;
        mount_fd(
            Some(source),
            &target,
            None,
            self.flags & (libc::MS_BIND | libc::MS_REC),
            None,
        )
        .context(|| self.describe())?;
        let mounted =
            open_in_root(root, &self.destination, Create::No).context(|| self.describe())?;
        // A bind mount ignores the other flags; they take a remount.
        let extra = self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            remount_fd(&mounted, extra).context(|| self.describe())?;
        }
        self.change_propagation(&mounted)
    }

    fn change_propagation(&self, mounted: &OwnedFd) -> Result<()> {
        for flag in &self.propagation {
            mount_fd(None, mounted, None, *flag, None).context(|| self.describe())?;
        }
        Ok(())
    }
}

/// A `cgroup` mount: the container's own cgroups, bound from the host
/// hierarchies (v1: a tmpfs with one directory per hierarchy), or a fresh
/// cgroup2 mount when the container has its own cgroup namespace.
fn mount_cgroups(root: &OwnedFd, m: &MountPlan, cgroup: &Cgroup, cgroup_ns: bool) -> Result<()> {
    let describe = || {
        format!(
            "mounting cgroups on {}",
            Path::new("/").join(&m.destination).display()
        )
    };
    let target = open_in_root(root, &m.destination, Create::Dir).context(describe)?;
    let readonly = m.flags & libc::MS_RDONLY;
    if cgroup.version() == keel_cgroups::Version::V2 {
        if cgroup_ns {
            return mount_fd(
                Some(Path::new("cgroup2")),
                &target,
                Some("cgroup2"),
                m.flags,
                None,
            )
            .context(describe);
        }
        let (dir, _) = cgroup
            .directories()
            .next()
            .ok_or_else(|| Error::Container("no cgroup2 directory".into()))?;
        mount_fd(Some(dir), &target, None, libc::MS_BIND, None).context(describe)?;
        let mounted = open_in_root(root, &m.destination, Create::No).context(describe)?;
        return remount_fd(&mounted, m.flags | readonly).context(describe);
    }
    let base_flags = m.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    mount_fd(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        base_flags,
        Some("mode=755"),
    )
    .context(describe)?;
    for (dir, controllers) in cgroup.directories() {
        let name = if controllers.is_empty() {
            "unified".to_owned()
        } else {
            controllers
                .iter()
                .map(|c| c.trim_start_matches("name="))
                .collect::<Vec<_>>()
                .join(",")
        };
        let sub = m.destination.join(&name);
        let target = open_in_root(root, &sub, Create::Dir).context(describe)?;
        mount_fd(Some(dir), &target, None, libc::MS_BIND, None).context(describe)?;
        let mounted = open_in_root(root, &sub, Create::No).context(describe)?;
        remount_fd(&mounted, base_flags | readonly).context(describe)?;
        if controllers.len() > 1 {
            for c in controllers {
                symlink_in(root, &name, &m.destination.join(c))?;
            }
        }
    }
    if readonly != 0 {
        let mounted = open_in_root(root, &m.destination, Create::No).context(describe)?;
        remount_fd(&mounted, base_flags | readonly).context(describe)?;
    }
    Ok(())
}

fn propagation_flag(option: &str) -> Option<libc::c_ulong> {
    Some(match option {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// A container path as a path relative to the rootfs; `None` for `/`.
fn inside(path: &Path) -> Option<PathBuf> {
    let relative: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    (!relative.as_os_str().is_empty()).then_some(relative)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    No,
    Dir,
    File,
}

/// Opens `path` below `root` as an O_PATH fd, resolving every symlink as if
/// `root` were `/`, and creates what is missing (directories along the way,
/// then a directory or an empty file at the end).
fn open_in_root(root: &OwnedFd, path: &Path, create: Create) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    // openat2 takes no empty path; "." is the root itself.
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve) {
        Err(Errno::NOENT) if create != Create::No => {}
        other => return other,
    }
    // Walk down, creating each missing component inside its resolved parent.
    let mut dir =
        rustix::fs::openat2(root, ".", flags | OFlags::DIRECTORY, Mode::empty(), resolve)?;
    let mut walked = PathBuf::new();
    let components: Vec<_> = path.components().collect();
    for (i, component) in components.iter().enumerate() {
        walked.push(component);
        match rustix::fs::openat2(root, &walked, flags, Mode::empty(), resolve) {
            Ok(fd) => dir = fd,
            Err(Errno::NOENT) => {
                let name = component.as_os_str();
                let last = i + 1 == components.len();
                if last && create == Create::File {
                    rustix::fs::openat(
                        &dir,
                        name,
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                        Mode::from_bits_retain(0o644),
                    )?;
                } else {
                    match rustix::fs::mkdirat(&dir, name, Mode::from_bits_retain(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                }
                dir = rustix::fs::openat2(root, &walked, flags, Mode::empty(), resolve)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

fn symlink_in(root: &OwnedFd, target: &str, link: &Path) -> Result<()> {
    let parent = open_in_root(root, link.parent().unwrap_or(Path::new("")), Create::Dir)
        .context(|| format!("creating /{}", link.display()))?;
    let name = link.file_name().unwrap_or_default();
    match rustix::fs::symlinkat(target, &parent, name) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => {
            Err(e).context(|| format!("creating the symlink /{} -> {target}", link.display()))
        }
    }
}

fn fd_path(fd: &impl AsFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap_or_default()
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount_fd(
    source: Option<&Path>,
    target: &impl AsFd,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), Errno> {
    mount_raw(source, &fd_path(target), fstype, flags, data)
}

fn mount_path(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), Errno> {
    mount_raw(source, &c_path(target), fstype, flags, data)
}

fn mount_raw(
    source: Option<&Path>,
    target: &CStr,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), Errno> {
    let source = source.map(c_path);
    let fstype = fstype.map(|t| CString::new(t).unwrap_or_default());
    let data = data.map(|d| CString::new(d).unwrap_or_default());
    sys::mount(
        source.as_deref(),
        target,
        fstype.as_deref(),
        flags,
        data.as_deref(),
    )
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks
/// on mounts inherited into a user namespace.
fn remount_fd(mounted: &OwnedFd, flags: libc::c_ulong) -> Result<(), Errno> {
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match mount_fd(None, mounted, None, base | flags, None) {
        Err(Errno::PERM) => {
            let locked = rustix::fs::fstatvfs(mounted)?.f_flag.bits() as libc::c_ulong
                & (libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC
                    | libc::MS_RDONLY
                    | libc::MS_NOATIME
                    | libc::MS_RELATIME
                    | libc::MS_NODIRATIME);
            mount_fd(None, mounted, None, base | flags | locked, None)
        }
        other => other,
    }
}

fn remount_readonly(path: &Path) -> Result<(), Errno> {
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    remount_fd(&fd, libc::MS_RDONLY)
}

/// pivot_root(".", ".") stacks the old root on the new one; unmounting it
/// then leaves only the new root, without needing a directory for the old.
fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = rustix::fs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "opening the old /".into())?;
    let new = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("opening the rootfs {}", rootfs.display()))?;
    rustix::process::fchdir(&new).context(|| "entering the rootfs".into())?;
    rustix::process::pivot_root(".", ".")
        .context(|| format!("pivot_root to {}", rootfs.display()))?;
    rustix::process::fchdir(&old).context(|| "entering the old /".into())?;
    // Keep the unmount below from propagating to the host.
    mount_path(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .context(|| "detaching the old / from the host".into())?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .context(|| "unmounting the old /".into())
}

/// Detaches every mount strictly below `rootfs`, deepest first: what a
/// container without a mount namespace of its own left in the host's.
pub(crate) fn unmount_below(rootfs: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|point| point.starts_with(rootfs) && point != rootfs)
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        let _ = rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH);
    }
}

/// pivot_root refuses a new root whose parent mount is shared.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "reading /proc/self/mountinfo".into())?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mountpoint = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(Path::new)
        .filter(|m| parent.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .unwrap_or(Path::new("/"));
    mount_path(None, mountpoint, None, libc::MS_PRIVATE, None)
        .context(|| format!("making {} private for pivot_root", mountpoint.display()))
}

/// The host's /dev/null, checked to be the null device. Masks bind it
/// rather than the container's /dev/null, which a volume at /dev can make
/// a symlink to any file of the host's /proc (CVE-2025-31133).
#[derive(Debug)]
pub(crate) struct NullDevice {
    /// A detached bind of it, made before pivot_root, until the first
    /// mask takes it (the host's mount is out of reach after pivot_root);
    detached: Option<OwnedFd>,
    /// then that first mask, which the others bind.
    attached: Option<OwnedFd>,
}

const NULL_DEVICE: (u32, u32) = (1, 3);

impl NullDevice {
    fn open() -> Result<Self> {
        let describe = || "opening the host's /dev/null".to_owned();
        let fd = rustix::fs::open(
            "/dev/null",
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .context(describe)?;
        if !is_null_device(&rustix::fs::fstat(&fd).context(describe)?) {
            return Err(Error::Container(
                "the host's /dev/null is not the null device (character device 1:3); masking \
                 paths with it would expose what it is"
                    .into(),
            ));
        }
        let flags = rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH;
        let detached = rustix::mount::open_tree(&fd, "", flags).context(describe)?;
        Ok(NullDevice {
            detached: Some(detached),
            attached: None,
        })
    }

    /// Mounts the null device over `target`.
    fn cover(&mut self, target: &OwnedFd) -> Result<(), Errno> {
        if let Some(detached) = self.detached.take() {
            let flags = rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
            return rustix::mount::move_mount(&detached, "", target, "", flags);
        }
        let first = self.attached.as_ref().ok_or(Errno::NODEV)?;
        let source = PathBuf::from(format!("/proc/self/fd/{}", first.as_raw_fd()));
        mount_fd(Some(&source), target, None, libc::MS_BIND, None)
    }
}

fn is_null_device(st: &rustix::fs::Stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)) == NULL_DEVICE
}

/// Hides `path`: a directory under an empty read-only tmpfs, anything else
/// under the null device; then checks that what `path` now shows is that.
fn mask(path: &Path, null: &mut NullDevice) -> Result<()> {
    let describe = || format!("masking {}", path.display());
    let open = || {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
    };
    let fd = match open() {
        Err(Errno::NOENT) => return Ok(()),
        other => other.context(describe)?,
    };
    let directory =
        rustix::fs::fstat(&fd).context(describe)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if directory {
        mount_fd(
            Some(Path::new("tmpfs")),
            &fd,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        )
        .context(describe)?;
    } else {
        null.cover(&fd).context(describe)?;
    }
    let masked = open().context(describe)?;
    let took = if directory {
        let fs = rustix::fs::fstatfs(&masked).context(describe)?;
        fs.f_type == libc::TMPFS_MAGIC
            && rustix::fs::fstatvfs(&masked)
                .context(describe)?
                .f_flag
                .contains(rustix::fs::StatVfsMountFlags::RDONLY)
    } else {
        is_null_device(&rustix::fs::fstat(&masked).context(describe)?)
    };
    if took {
        if !directory && null.attached.is_none() {
            null.attached = Some(masked);
        }
        Ok(())
    } else {
        Err(Error::Container(format!(
            "masking {}: it does not show the mask afterwards",
            path.display()
        )))
    }
}

fn make_readonly(path: &Path) -> Result<()> {
    let describe = || format!("making {} read-only", path.display());
    match mount_path(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None) {
        Err(Errno::NOENT) => return Ok(()),
        other => other.context(describe)?,
    }
    remount_readonly(path).context(describe)
}

/// For `tmpcopyup`: a handle on the directory the tmpfs will cover.
fn copy_source(target: &OwnedFd) -> Result<OwnedFd> {
    rustix::fs::openat(
        target,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "opening a directory to copy into its tmpfs".into())
}

/// Copies the directory tree at `from` into `to` (files, directories and
/// symlinks, with their modes and owners).
fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> Result<()> {
    let describe = || "copying a directory into its tmpfs (tmpcopyup)".to_owned();
    let dest = rustix::fs::openat(
        to,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(describe)?;
    for entry in rustix::fs::Dir::read_from(from).context(describe)? {
        let entry = entry.context(describe)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(from, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .context(describe)?;
        let mode = Mode::from_bits_retain(st.st_mode & 0o7777);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                rustix::fs::mkdirat(&dest, name, mode).context(describe)?;
                let sub_from = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .context(describe)?;
                let sub_to = rustix::fs::openat(
                    &dest,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .context(describe)?;
                copy_tree(&sub_from, &sub_to)?;
            }
            libc::S_IFLNK => {
                let target = rustix::fs::readlinkat(from, name, Vec::new()).context(describe)?;
                rustix::fs::symlinkat(target.as_c_str(), &dest, name).context(describe)?;
            }
            libc::S_IFREG => {
                let src = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .context(describe)?;
                let dst = rustix::fs::openat(
                    &dest,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )
                .context(describe)?;
                let mut src = std::fs::File::from(src);
                let mut dst = std::fs::File::from(dst);
                std::io::copy(&mut src, &mut dst).context(describe)?;
            }
            _ => continue,
        }
        rustix::fs::chownat(
            &dest,
            name,
            Some(rustix::process::Uid::from_raw(st.st_uid)),
            Some(rustix::process::Gid::from_raw(st.st_gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .context(describe)?;
    }
    Ok(())
}
