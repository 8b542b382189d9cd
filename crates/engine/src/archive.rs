//! `docker cp`'s daemon side: stat a path in a container, write a path as a
//! tar, unpack a tar into a directory, as Docker's `ContainerStatPath`,
//! `ContainerArchivePath` and `ContainerExtractToDir` do.
//!
//! Every container path is resolved beneath the container's root, through
//! its volumes, binds and tmpfs mounts as it sees them (see
//! [`crate::container_fs`]), with `RESOLVE_IN_ROOT`, and the tree is walked
//! by directory fds without following symlinks, so a symlink in the
//! container (`/x -> /etc`, `../../..`) leads to the container's files,
//! never the host's.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use keel_image::{Cancel, Snapshot};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, fstat, openat, readlinkat, statat};
use rustix::io::Errno;

use crate::Engine;
use crate::container::{Container, Status};
use crate::container_fs::View;
use crate::error::{Context, Error, Result};

/// What Docker's `X-Docker-Container-Path-Stat` header tells of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode` bits, as Docker sends them.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// Where a symlink leads, resolved in the container; empty otherwise.
    pub link_target: String,
}

/// How [`Engine::extract_to_dir`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a file or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Own the files as the container's user (`docker cp -a`), looked up
    /// in its /etc/passwd and /etc/group; a container without one keeps
    /// the tar's owners either way.
    pub copy_uid_gid: bool,
}

/// A container's files as it sees them, for the copy. The view goes
/// before the root filesystem is unmounted.
struct Rootfs<'a> {
    view: View,
    _mounted: Mounted<'a>,
}

/// A container's root filesystem, mounted for the copy: unmounted again
/// when dropped if it was not mounted before and the container has not
/// started since.
struct Mounted<'a> {
    engine: &'a Engine,
    id: String,
    snapshot: Snapshot,
    unmount: bool,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let started = self
            .engine
            .container(&self.id)
            .is_ok_and(|c| c.state.status == Status::Running);
        if self.unmount && !started {
            self.snapshot.unmount().ok();
        }
    }
}

impl Rootfs<'_> {
    /// Opens `path` (absolute in the container) following symlinks inside
    /// the container only.
    fn open(&self, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
        self.view.open_path(path, flags)
    }

    /// Where an open fd is, as a path in the container.
    fn container_path(&self, fd: &OwnedFd) -> io::Result<String> {
        self.view.path_of(fd)
    }

    /// The directory holding `path`'s last part, that part's name (`.`
    /// for a directory named with a trailing `/` or `/.`, which is then
    /// followed), and the path's lstat.
    fn locate(&self, path: &str) -> io::Result<(OwnedFd, Vec<u8>, Stat)> {
        let path = &clean(path);
        let follow = path.ends_with('/') || path.ends_with("/.");
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rsplit_once('/') {
            _ if follow => (trimmed, "."),
            Some((parent, name)) => (parent, name),
            None => ("/", trimmed),
        };
        let name = if name.is_empty() { "." } else { name };
        let dir = self.open(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let name = name.as_bytes().to_vec();
        let stat = statat(&dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok((dir, name, stat))
    }

    fn stat(&self, path: &str) -> io::Result<PathStat> {
        let (dir, name, stat) = self.locate(path)?;
        let path = &clean(path);
        let link_target = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                let full = join(&self.container_path(&dir)?, &name);
                match self.open(&full, OFlags::PATH) {
                    Ok(target) => self.container_path(&target)?,
                    // A broken link: where it points, as far as a path
                    // alone says.
                    Err(_) => {
                        let raw = readlinkat(&dir, OsStr::from_bytes(&name), Vec::new())?;
                        let raw = raw.to_string_lossy();
                        match raw.starts_with('/') {
                            true => clean(&raw),
                            false => clean(&format!("{}/{raw}", self.container_path(&dir)?)),
                        }
                    }
                }
            }
            _ => String::new(),
        };
        let base = path.trim_end_matches('/');
        let base = base.rsplit('/').next().unwrap_or("");
        Ok(PathStat {
            name: if base.is_empty() { "/" } else { base }.to_owned(),
            size: stat.st_size as u64,
            mode: go_mode(stat.st_mode),
            mtime: keel_time::rfc3339(
                std::time::UNIX_EPOCH
                    + std::time::Duration::new(stat.st_mtime as u64, stat.st_mtime_nsec as u32),
            ),
            link_target,
        })
    }
}

impl Engine {
    fn mount_rootfs(&self, container: &Container) -> Result<Rootfs<'_>> {
        let snapshot = self.images.snapshot(&container.id)?;
        let was_mounted = snapshot.is_mounted();
        let merged = self.images.mount_snapshot(&snapshot)?;
        let mounted = Mounted {
            engine: self,
            id: container.id.clone(),
            snapshot,
            unmount: !was_mounted,
        };
        let files_dir = self.dir(&container.id);
        let view = View::open(container, &merged, &self.volumes, &files_dir).map_err(|source| {
            Error::Io {
                what: format!(
                    "cannot open the files of container {} with its mounts",
                    container.name
                ),
                source,
            }
        })?;
        Ok(Rootfs {
            view,
            _mounted: mounted,
        })
    }

    /// Refuses a write to `resolved` where the container cannot write, in
    /// Docker's words (its `checkWritablePath`): the mount holding the
    /// path decides, else the root filesystem.
    fn check_writable(container: &Container, rootfs: &Rootfs<'_>, resolved: &str) -> Result<()> {
        let resolved = clean(resolved);
        let resolved = resolved.trim_end_matches("/.").trim_end_matches('/');
        let holder = container
            .config
            .mounts
            .iter()
            .filter(|mount| rootfs.view.has(mount))
            .map(|mount| (clean(&mount.target), mount.read_only))
            .filter(|(target, _)| resolved == target || resolved.starts_with(&format!("{target}/")))
            .max_by_key(|(target, _)| target.len());
        match holder {
            Some((_, true)) => Err(Error::InvalidParameter(
                "mounted volume is marked read-only".into(),
            )),
            Some((_, false)) => Ok(()),
            None if container.config.security.read_only => Err(Error::InvalidParameter(
                "container rootfs is marked read-only".into(),
            )),
            None => Ok(()),
        }
    }

    /// The uid and gid of `user` (`user[:group]`, by name or number) in
    /// the container's /etc/passwd and /etc/group, as copyUIDGID owns
    /// files (Docker's `getUIDGID`).
    fn owner_in(rootfs: &Rootfs<'_>, user: &str) -> Result<(u32, u32)> {
        match crate::spec::process_user(user, &rootfs.view.root_path()) {
            Ok(found) => Ok((found.uid(), found.gid())),
            Err(Error::NoSuchUser { user }) => Err(Error::InvalidParameter(format!(
                "failed to look up user {user:?} in container: no matching entries in passwd file"
            ))),
            Err(other) => Err(other),
        }
    }

    fn not_found(container: &Container, path: &str) -> impl Fn(io::Error) -> Error {
        let (path, name) = (path.to_owned(), container.name.clone());
        move |error| match error.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::NoSuchPath {
                path: path.clone(),
                container: name.clone(),
            },
            _ => Error::Io {
                what: format!("cannot reach {path} in container {name}"),
                source: error,
            },
        }
    }

    /// `HEAD /containers/{id}/archive`: what `path` is in container `name`.
    pub fn stat_path(&self, name: &str, path: &str) -> Result<PathStat> {
        let container = self.container(name)?;
        let rootfs = self.mount_rootfs(&container)?;
        rootfs.stat(path).map_err(Self::not_found(&container, path))
    }

    /// What `path` of container `name` is, refused as [`Engine::archive_path`]
    /// refuses it: what `GET /containers/{id}/archive` answers with before
    /// its tar.
    pub fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        let container = self.container(name)?;
        let rootfs = self.mount_rootfs(&container)?;
        Ok(Self::archive_source(&container, &rootfs, path)?.0)
    }

    /// [`Engine::archive_stat`] of a `GET`, whose copy then starts: its
    /// event is told here, before any byte is sent, as dockerd tells it,
    /// so that a client that reads none of the tar still made one.
    pub fn begin_archive(&self, name: &str, path: &str) -> Result<PathStat> {
        let stat = self.archive_stat(name, path)?;
        let container = self.container(name)?;
        self.container_event(&container, "archive-path", &[]);
        Ok(stat)
    }

    /// `path`'s stat, the directory holding it, its name there and its
    /// lstat.
    fn archive_source(
        container: &Container,
        rootfs: &Rootfs<'_>,
        path: &str,
    ) -> Result<(PathStat, OwnedFd, Vec<u8>, Stat)> {
        let missing = Self::not_found(container, path);
        let found = rootfs.stat(path).map_err(&missing)?;
        let (dir, entry, lstat) = rootfs.locate(path).map_err(&missing)?;
        Ok((found, dir, entry, lstat))
    }

    /// `GET /containers/{id}/archive`: `path` of container `name` as a tar
    /// written to `out`: a directory's entries are named after it (`.` for
    /// a path ending in `/.`), a file's after itself.
    pub fn archive_path(&self, name: &str, path: &str, out: impl Write) -> Result<()> {
        let container = self.container(name)?;
        let rootfs = self.mount_rootfs(&container)?;
        let (found, dir, entry, lstat) = Self::archive_source(&container, &rootfs, path)?;
        let base = match found.name.trim_start_matches('/') {
            "" => ".".to_owned(),
            name => name.to_owned(),
        };
        let mut tar = tar::Builder::new(out);
        let mut walker = Walker {
            tar: &mut tar,
            links: HashMap::new(),
        };
        walker
            .entry(&dir, &entry, &lstat, &base)
            .and_then(|()| tar.finish())
            .context(|| format!("cannot archive {path} of container {}", container.name))?;
        Ok(())
    }

    /// `PUT /containers/{id}/archive`: unpacks the tar (maybe compressed)
    /// `content` into directory `path` of container `name`.
    pub fn extract_to_dir(
        &self,
        name: &str,
        path: &str,
        options: ExtractOptions,
        content: impl Read,
    ) -> Result<()> {
        let container = self.container(name)?;
        let rootfs = self.mount_rootfs(&container)?;
        let missing = Self::not_found(&container, path);
        let dir = rootfs.open(&clean(path), OFlags::PATH).map_err(&missing)?;
        if FileType::from_raw_mode(
            fstat(&dir)
                .map_err(io::Error::from)
                .map_err(&missing)?
                .st_mode,
        ) != FileType::Directory
        {
            return Err(Error::InvalidParameter(
                "extraction point is not a directory".into(),
            ));
        }
        let resolved = rootfs.container_path(&dir).map_err(&missing)?;
        Self::check_writable(&container, &rootfs, &resolved)?;
        let owner = match container.config.user.as_deref() {
            Some(user) if options.copy_uid_gid && !user.is_empty() => {
                Some(Self::owner_in(&rootfs, user)?)
            }
            _ => None,
        };
        let dir = openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .map_err(&missing)?;
        let stream = keel_image::unpack::decompress(content)
            .context(|| format!("cannot read the archive for {path}"))?;
        keel_image::unpack::unpack_tree_with(
            stream,
            dir.as_fd(),
            &format!("for {path} of container {}", container.name),
            self.images.disk_reserve(),
            &Cancel::default(),
            keel_image::unpack::TreeOptions {
                keep_directories: options.no_overwrite_dir_non_dir,
                owner,
            },
        )?;
        self.container_event(&container, "extract-to-dir", &[]);
        Ok(())
    }
}

/// Writes a tree to a tar by directory fds, never following a symlink.
struct Walker<'a, W: Write> {
    tar: &'a mut tar::Builder<W>,
    /// Files with more than one link, by (device, inode): the first name
    /// written, which later names are hard links to.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> Walker<'_, W> {
    /// Appends an entry named `name` as written: the tar crate would drop
    /// a leading `./`, which `docker cp` rebases by (a long name goes in a
    /// GNU long-name entry, which keeps it).
    fn append(&mut self, header: &mut tar::Header, name: &str, data: impl Read) -> io::Result<()> {
        let slot = &mut header.as_old_mut().name;
        if name.len() >= slot.len() || name.as_bytes().contains(&0) {
            return self.tar.append_data(header, name, data);
        }
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        self.tar.append(header, data)
    }

    fn append_link(
        &mut self,
        header: &mut tar::Header,
        name: &str,
        target: &[u8],
    ) -> io::Result<()> {
        let target = OsStr::from_bytes(target);
        match header.set_link_name(target) {
            Ok(()) => self.append(header, name, io::empty()),
            // Too long for the header: a GNU long-link entry.
            Err(_) => self.tar.append_link(header, name, target),
        }
    }

    fn entry(&mut self, dir: &OwnedFd, name: &[u8], stat: &Stat, path: &str) -> io::Result<()> {
        let name = OsStr::from_bytes(name);
        let mut header = tar::Header::new_gnu();
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(stat.st_uid.into());
        header.set_gid(stat.st_gid.into());
        header.set_mtime(stat.st_mtime.max(0) as u64);
        header.set_size(0);
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::Directory && stat.st_nlink > 1 {
            let key = (stat.st_dev, stat.st_ino);
            if let Some(first) = self.links.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.append_link(&mut header, path, first.as_bytes());
            }
            self.links.insert(key, path.to_owned());
        }
        match kind {
            FileType::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                let named = if path == "." {
                    "./".into()
                } else {
                    format!("{path}/")
                };
                self.append(&mut header, &named, io::empty())?;
                let opened = openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let mut children = Vec::new();
                for child in rustix::fs::Dir::read_from(&opened)? {
                    let child = child?.file_name().to_bytes().to_vec();
                    if child != b"." && child != b".." {
                        children.push(child);
                    }
                }
                children.sort();
                for child in children {
                    let stat = match statat(
                        &opened,
                        OsStr::from_bytes(&child),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ) {
                        Err(Errno::NOENT) => continue,
                        result => result?,
                    };
                    // Under `.` too (`./name`), as Docker's tarballer names
                    // them, so that `docker cp` can rebase `.` to a name.
                    let child_path = format!("{path}/{}", as_text(&child));
                    self.entry(&opened, &child, &stat, &child_path)?;
                }
                Ok(())
            }
            FileType::RegularFile => {
                let file = File::from(openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?);
                let size = fstat(&file)?.st_size as u64;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                self.append(&mut header, path, file.take(size))
            }
            FileType::Symlink => {
                let target = readlinkat(dir, name, Vec::new())?;
                header.set_entry_type(tar::EntryType::Symlink);
                self.append_link(&mut header, path, target.as_bytes())
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                header.set_device_major(rustix::fs::major(stat.st_rdev))?;
                header.set_device_minor(rustix::fs::minor(stat.st_rdev))?;
                self.append(&mut header, path, io::empty())
            }
            // Sockets are not archived, as in Docker.
            _ => Ok(()),
        }
    }
}

/// `path` made absolute and rid of `.`, `..` and repeated slashes, keeping
/// a trailing `/` or `/.`, which `docker cp` gives meaning to (Docker's
/// `PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)`).
fn clean(path: &str) -> String {
    let mut cleaned = format!("/{}", keel_image::clean_path(path));
    if cleaned != "/" {
        if path.ends_with("/.") || path == "." {
            cleaned.push_str("/.");
        } else if path.ends_with('/') {
            cleaned.push('/');
        }
    }
    cleaned
}

/// `name` in container directory `parent`.
fn join(parent: &str, name: &[u8]) -> String {
    match (parent.trim_end_matches('/'), name) {
        ("", b".") => "/".to_owned(),
        (parent, b".") => parent.to_owned(),
        (parent, name) => format!("{parent}/{}", as_text(name)),
    }
}

fn as_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stat mode as Go's `os.FileMode`.
fn go_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut go = mode & 0o777;
    go |= match FileType::from_raw_mode(mode) {
        FileType::Directory => DIR,
        FileType::Symlink => SYMLINK,
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR_DEVICE,
        FileType::Fifo => NAMED_PIPE,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    for (bit, go_bit) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_in_the_root_keeping_a_trailing_slash_or_dot() {
        for (path, cleaned) in [
            ("etc/passwd", "/etc/passwd"),
            ("/../../etc//passwd", "/etc/passwd"),
            ("/etc/", "/etc/"),
            ("/etc/.", "/etc/."),
            ("/etc/x/..", "/etc"),
            ("..", "/"),
            ("/", "/"),
        ] {
            assert_eq!(clean(path), cleaned, "{path}");
        }
    }

    #[test]
    fn modes_are_go_file_modes() {
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_mode(0o020666), (1 << 26) | (1 << 21) | 0o666);
    }
}
