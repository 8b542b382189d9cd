//! Applies one layer's tar changeset to an empty directory, as overlayfs
//! wants a layer: OCI/AUFS whiteouts become overlay whiteouts (a 0/0
//! character device) and opaque directories (`trusted.overlay.opaque=y`).
//!
//! Every path is resolved beneath the layer directory with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so no entry, hardlink or
//! directory can reach outside it, whatever symlinks the layer makes.
//!
//! [`unpack_tree`] unpacks an archive as files only (a build's `ADD`),
//! whiteouts being files like any other there, as in Docker's `ADD`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags, chownat,
    fchmod, fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat2, statat,
    symlinkat, unlinkat, utimensat,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use tar::EntryType;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::write_behind::WriteBehind;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// AUFS bookkeeping entries (`.wh..wh.plnk`, `.wh..wh.aufs`) carry nothing
/// for overlayfs.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
/// Open directories kept for the next entries (well under any fd limit).
const PARENT_CACHE_SIZE: usize = 128;
/// A file's content is written in pieces of this size (a multiple of any
/// block size), whatever sizes the decompressor hands out.
const COPY_PIECE: usize = 256 * 1024;

/// What unpacking a layer found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Sum of the sizes of the regular files: the layer size Docker shows.
    pub size: u64,
}

/// Wraps a tar (a layer blob, a build context, an archive ADD unpacks) in
/// the decompressor its first bytes call for: gzip, zstd, bzip2, xz, or
/// none (a plain tar), as Docker's archive package detects them.
pub fn decompress<'a>(blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(256 * 1024, blob);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(reader)?)
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(reader))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader))
    } else {
        Box::new(reader)
    })
}

/// How much of its filesystem unpacking leaves free: it stops, naming
/// the layer, rather than fill the disk (a gzip bomb expands a
/// thousandfold, and Docker would unpack it to the last byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskReserve {
    /// 1 GiB or 5% of the filesystem, whichever is larger.
    #[default]
    Default,
    Bytes(u64),
}

impl DiskReserve {
    fn bytes(self, filesystem: &rustix::fs::StatVfs) -> u64 {
        match self {
            DiskReserve::Default => {
                (1 << 30).max(filesystem.f_blocks.saturating_mul(filesystem.f_frsize) / 20)
            }
            DiskReserve::Bytes(bytes) => bytes,
        }
    }
}

/// Free space is checked after this much is written, and at the start.
const RESERVE_CHECK_EVERY: u64 = 16 << 20;

/// What an unpack looks at as it writes: the free space it must leave,
/// what it wrote since it last looked, and whether it was cancelled.
struct Reserve<'a> {
    filesystem: Option<BorrowedFd<'a>>,
    bytes: u64,
    unchecked: u64,
    cancel: &'a Cancel,
}

impl<'a> Reserve<'a> {
    fn of(
        filesystem: BorrowedFd<'a>,
        reserve: DiskReserve,
        cancel: &'a Cancel,
    ) -> Result<Self, Failure> {
        let stat = rustix::fs::fstatvfs(filesystem)?;
        let reserve = Reserve {
            filesystem: Some(filesystem),
            bytes: reserve.bytes(&stat),
            unchecked: 0,
            cancel,
        };
        reserve.check(&stat)?;
        Ok(reserve)
    }

    /// Counts `written` bytes, looking at the free space once enough were.
    fn spend(&mut self, written: u64) -> Result<(), Failure> {
        self.unchecked += written;
        let Some(filesystem) = self
            .filesystem
            .filter(|_| self.unchecked >= RESERVE_CHECK_EVERY)
        else {
            return Ok(());
        };
        self.unchecked = 0;
        self.still_wanted()?;
        self.check(&rustix::fs::fstatvfs(filesystem)?)
    }

    fn still_wanted(&self) -> Result<(), Failure> {
        match self.cancel.is_cancelled() {
            true => Err(Failure::Cancelled),
            false => Ok(()),
        }
    }

    fn check(&self, stat: &rustix::fs::StatVfs) -> Result<(), Failure> {
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        match free < self.bytes {
            true => Err(Failure::Reserve {
                free,
                reserve: self.bytes,
            }),
            false => Ok(()),
        }
    }
}

/// Unpacks the uncompressed tar `stream` into the directory `root`
/// (opened), naming the layer `layer` in errors, leaving at least
/// `reserve` free on root's filesystem, until `cancel` says to stop.
pub fn unpack(
    stream: impl Read,
    root: &File,
    layer: &str,
    reserve: DiskReserve,
    cancel: &Cancel,
) -> Result<Unpacked> {
    unpack_with(
        stream,
        root.as_fd(),
        &format!("layer {layer}"),
        reserve,
        cancel,
        true,
        TreeOptions::default(),
    )
}

/// Unpacks the uncompressed tar `stream` into the directory `dir` as
/// plain files (a `.wh.` entry is a file too), naming the archive
/// `archive` in errors; as [`unpack`] otherwise.
pub fn unpack_tree(
    stream: impl Read,
    dir: BorrowedFd<'_>,
    archive: &str,
    reserve: DiskReserve,
    cancel: &Cancel,
) -> Result<Unpacked> {
    unpack_tree_with(
        stream,
        dir,
        archive,
        reserve,
        cancel,
        TreeOptions::default(),
    )
}

/// How [`unpack_tree_with`] treats what is already there and whose the
/// new files are (`docker cp`'s extraction options).
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeOptions {
    /// Refuse to replace a directory with a non-directory or the reverse
    /// (Docker's `NoOverwriteDirNonDir`) rather than remove what is there.
    pub keep_directories: bool,
    /// Every entry's owner, whatever the tar says (Docker's `ChownOpts`).
    pub owner: Option<(u32, u32)>,
}

/// [`unpack_tree`] with `options`.
pub fn unpack_tree_with(
    stream: impl Read,
    dir: BorrowedFd<'_>,
    archive: &str,
    reserve: DiskReserve,
    cancel: &Cancel,
    options: TreeOptions,
) -> Result<Unpacked> {
    unpack_with(
        stream,
        dir,
        &format!("archive {archive}"),
        reserve,
        cancel,
        false,
        options,
    )
}

/// Unpacks into `root`, naming what is unpacked `what` in errors.
fn unpack_with(
    stream: impl Read,
    root: BorrowedFd<'_>,
    what: &str,
    reserve: DiskReserve,
    cancel: &Cancel,
    whiteouts: bool,
    options: TreeOptions,
) -> Result<Unpacked> {
    let reserve = Reserve::of(root, reserve, cancel).map_err(|failure| failure.of(what, ""))?;
    Unpacker {
        root,
        whiteouts,
        options,
        what,
        parent_cache: HashMap::new(),
        directory_times: Vec::new(),
        creator: Creator::of_this_process(),
        unpacked: Unpacked::default(),
        buffer: Vec::with_capacity(COPY_PIECE),
        reserve,
    }
    .run(stream)
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    /// Whiteouts are a layer's (else files).
    whiteouts: bool,
    options: TreeOptions,
    /// `layer DIGEST` or `archive NAME`, for errors.
    what: &'a str,
    /// Parent directories opened, by path: tar entries mostly come grouped
    /// by directory, so this saves most lookups.
    parent_cache: HashMap<Vec<u8>, Rc<OwnedFd>>,
    /// Directories' mtimes, set once everything inside them is written.
    directory_times: Vec<(Vec<u8>, u64)>,
    creator: Creator,
    unpacked: Unpacked,
    /// Where a file's content gathers between the stream and the file.
    buffer: Vec<u8>,
    reserve: Reserve<'a>,
}

impl Unpacker<'_> {
    fn run(mut self, stream: impl Read) -> Result<Unpacked> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(|source| self.bad_stream(source))?;
        for entry in entries {
            let mut entry = entry.map_err(|source| self.bad_stream(source))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            self.reserve
                .still_wanted()
                .and_then(|()| self.entry(&mut entry))
                .map_err(|failure| failure.of(self.what, &name))?;
        }
        self.parent_cache.clear();
        for (path, mtime) in self.directory_times.iter().rev() {
            // A directory that a later entry replaced is skipped.
            if let Ok(dir) = self.open_beneath(path, OFlags::RDONLY | OFlags::DIRECTORY) {
                futimens(&dir, &timestamps(*mtime)).ok();
            }
        }
        Ok(self.unpacked)
    }

    fn bad_stream(&self, source: io::Error) -> Error {
        Error::BadLayer {
            what: self.what.to_owned(),
            source,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let path = clean(&entry.path_bytes())?;
        let (parent, file_name) = split_parent(&path);
        let Attributes { mode, owner, mtime } = Attributes::of(entry.header())?;
        let owner = self
            .options
            .owner
            .map_or(owner, |(uid, gid)| (Uid::from_raw(uid), Gid::from_raw(gid)));
        if file_name.is_empty() {
            // The layer's own root ("./"): only its metadata applies.
            self.creator
                .set_metadata(&self.root, owner, mode, None, false)?;
            self.directory_times.push((Vec::new(), mtime));
            return Ok(());
        }
        if self.whiteouts && file_name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(parent, file_name);
        }
        let parent_fd = self.parent(parent)?;
        let name = OsStr::from_bytes(file_name);
        match kind {
            EntryType::Directory => {
                let created = Mode::from_raw_mode(mode.bits() & 0o777);
                let fresh = match mkdirat(&*parent_fd, name, created) {
                    Err(Errno::EXIST) if is_directory(&parent_fd, name) => false,
                    Err(Errno::EXIST) if self.options.keep_directories => {
                        return Err(Failure::Unsafe(
                            "is a directory and would replace a non-directory",
                        ));
                    }
                    Err(Errno::EXIST) => {
                        self.remove(&parent_fd, name)?;
                        mkdirat(&*parent_fd, name, created)?;
                        true
                    }
                    result => {
                        result?;
                        true
                    }
                };
                let dir = open_at(&*parent_fd, name, OFlags::RDONLY | OFlags::DIRECTORY)?;
                self.creator.setgid_seen |= mode.bits() & 0o2000 != 0;
                self.creator.set_metadata(&dir, owner, mode, None, fresh)?;
                set_xattrs(&dir, entry)?;
                self.directory_times.push((path.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let created = Mode::from_raw_mode(mode.bits() & 0o777);
                let create = || openat2(&*parent_fd, name, flags, created, ResolveFlags::empty());
                let file = match create() {
                    Err(Errno::EXIST) => {
                        self.remove(&parent_fd, name)?;
                        create()?
                    }
                    result => result?,
                };
                let file = File::from(file);
                self.unpacked.size += copy_in_whole_pieces(
                    entry,
                    &mut WriteBehind::new(&file),
                    &mut self.buffer,
                    COPY_PIECE,
                    &mut self.reserve,
                )?;
                set_xattrs(&file, entry)?;
                self.creator
                    .set_metadata(&file, owner, mode, Some(mtime), true)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or(Failure::Unsafe("is a symbolic link without a target"))?;
                if target.len() > MAX_LINK_TARGET {
                    return Err(Failure::Unsafe(
                        "is a symbolic link whose target is longer than 4095 bytes, the most \
                         Linux keeps (PATH_MAX)",
                    ));
                }
                let target = OsStr::from_bytes(&target);
                if let Err(Errno::EXIST) = symlinkat(target, &parent_fd, name) {
                    self.remove(&parent_fd, name)?;
                    symlinkat(target, &parent_fd, name)?;
                }
                set_metadata_at(&parent_fd, name, owner, mtime)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or(Failure::Unsafe("is a hard link without a target"))?;
                let target = clean(&target)?;
                let (target_parent, target_name) = split_parent(&target);
                let target_dir =
                    match self.open_beneath(target_parent, OFlags::PATH | OFlags::DIRECTORY) {
                        Err(Failure::Os(error)) if error.kind() == io::ErrorKind::NotFound => {
                            return Err(Failure::Unsafe(
                                "is a hard link to a file that is not in this layer",
                            ));
                        }
                        result => result?,
                    };
                let link = |flags| {
                    linkat(
                        &target_dir,
                        OsStr::from_bytes(target_name),
                        &parent_fd,
                        name,
                        flags,
                    )
                };
                match link(AtFlags::empty()) {
                    Err(Errno::EXIST) => {
                        self.remove(&parent_fd, name)?;
                        link(AtFlags::empty())?;
                    }
                    Err(Errno::NOENT) => {
                        return Err(Failure::Unsafe(
                            "is a hard link to a file that is not in this layer",
                        ));
                    }
                    result => result?,
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                // A fifo's device numbers mean nothing, and are often blank.
                let header = entry.header();
                let device = if kind == EntryType::Fifo {
                    makedev(0, 0)
                } else {
                    makedev(
                        header.device_major().map_err(Failure::Os)?.unwrap_or(0),
                        header.device_minor().map_err(Failure::Os)?.unwrap_or(0),
                    )
                };
                if let Err(Errno::EXIST) = mknodat(&parent_fd, name, file_type, mode, device) {
                    self.remove(&parent_fd, name)?;
                    mknodat(&parent_fd, name, file_type, mode, device)?;
                }
                set_metadata_at(&parent_fd, name, owner, mtime)?;
                rustix::fs::chmodat(&parent_fd, name, mode, AtFlags::empty())?;
            }
            // Types a filesystem layer has no use for (GNU volume labels,
            // multi-volume parts) are skipped, as Docker does.
            _ => {}
        }
        Ok(())
    }

    /// `.wh..wh..opq` makes its directory opaque; `.wh.NAME` hides NAME of
    /// the layers below.
    fn whiteout(&mut self, parent: &[u8], file_name: &[u8]) -> Result<(), Failure> {
        if file_name == OPAQUE_MARKER {
            // Its directory is implied, as any entry's is (Docker makes it
            // too): a marker alone makes an empty, opaque directory.
            self.parent(parent)?;
            let dir = self.open_beneath(parent, OFlags::RDONLY | OFlags::DIRECTORY)?;
            fsetxattr(&dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())?;
            return Ok(());
        }
        if file_name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        let hidden = &file_name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Failure::Unsafe("is a whiteout of no file"));
        }
        let parent_fd = self.parent(parent)?;
        let hidden = OsStr::from_bytes(hidden);
        let whiteout = |dir: &OwnedFd| {
            mknodat(
                dir,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                makedev(0, 0),
            )
        };
        if let Err(Errno::EXIST) = whiteout(&parent_fd) {
            self.remove(&parent_fd, hidden)?;
            whiteout(&parent_fd)?;
        }
        Ok(())
    }

    /// Opens (creating what is missing, as Docker does) the directory an
    /// entry goes in.
    fn parent(&mut self, parent: &[u8]) -> Result<Rc<OwnedFd>, Failure> {
        if let Some(fd) = self.parent_cache.get(parent) {
            return Ok(Rc::clone(fd));
        }
        let fd = match self.open_beneath(parent, OFlags::PATH | OFlags::DIRECTORY) {
            Err(Failure::Os(error)) if error.kind() == io::ErrorKind::NotFound => {
                self.create_directories(parent)?
            }
            result => result?,
        };
        let fd = Rc::new(fd);
        if self.parent_cache.len() >= PARENT_CACHE_SIZE {
            self.parent_cache.clear();
        }
        self.parent_cache.insert(parent.to_vec(), Rc::clone(&fd));
        Ok(fd)
    }

    fn create_directories(&self, path: &[u8]) -> Result<OwnedFd, Failure> {
        let mut dir = open_at(&self.root, ".", OFlags::PATH | OFlags::DIRECTORY)?;
        for component in path.split(|&b| b == b'/') {
            let name = OsStr::from_bytes(component);
            match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(error) => return Err(error.into()),
            }
            dir = open_at(&dir, name, OFlags::PATH | OFlags::DIRECTORY)?;
        }
        Ok(dir)
    }

    fn open_beneath(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, Failure> {
        let path = if path.is_empty() {
            OsStr::new(".")
        } else {
            OsStr::from_bytes(path)
        };
        open_at(&self.root, path, flags)
    }

    /// Removes what an entry replaces; a directory goes with its contents.
    fn remove(&mut self, parent: &OwnedFd, name: &OsStr) -> Result<(), Failure> {
        // What goes may be a cached directory or hold one.
        self.parent_cache.clear();
        match unlinkat(parent, name, AtFlags::empty()) {
            Err(Errno::ISDIR) if self.options.keep_directories => Err(Failure::Unsafe(
                "is not a directory and would replace a directory",
            )),
            Err(Errno::ISDIR) => {
                remove_tree(parent, name)?;
                Ok(())
            }
            result => Ok(result?),
        }
    }
}

/// The metadata every entry carries.
struct Attributes {
    mode: Mode,
    owner: (Uid, Gid),
    mtime: u64,
}

impl Attributes {
    fn of(header: &tar::Header) -> Result<Self, Failure> {
        let raw = header.as_old();
        let mode = numeric(&raw.mode, header.mode().map(u64::from))?;
        Ok(Self {
            mode: Mode::from_raw_mode(mode as u32 & 0o7777),
            owner: (
                Uid::from_raw(numeric(&raw.uid, header.uid())? as u32),
                Gid::from_raw(numeric(&raw.gid, header.gid())? as u32),
            ),
            mtime: numeric(&raw.mtime, header.mtime())?,
        })
    }
}

/// A numeric header field; an empty one is 0, as Go's archive/tar (and so
/// Docker) reads it.
fn numeric(raw: &[u8], parsed: io::Result<u64>) -> Result<u64, Failure> {
    if raw.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(0);
    }
    parsed.map_err(Failure::Os)
}

/// Copies `from` to `to` in writes of `piece` bytes, all but the last,
/// gathered in `buffer`. A write that ends inside a new block makes ext4
/// zero the rest of that block first: written as the decompressor's reads
/// come (odd sizes), a layer's files cost about as much zeroing as copying.
fn copy_in_whole_pieces(
    from: &mut impl Read,
    to: &mut impl Write,
    buffer: &mut Vec<u8>,
    piece: usize,
    reserve: &mut Reserve<'_>,
) -> Result<u64, Failure> {
    let mut copied = 0;
    loop {
        buffer.clear();
        let filled = from
            .by_ref()
            .take(piece as u64)
            .read_to_end(buffer)
            .map_err(Failure::Os)?;
        to.write_all(buffer).map_err(Failure::Os)?;
        reserve.spend(filled as u64)?;
        copied += filled as u64;
        if filled < piece {
            return Ok(copied);
        }
    }
}

/// A clean path split into its parent directory and its last component.
fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

/// Why an entry failed: an unsafe entry is refused before anything is
/// done; the disk reached the reserve; or the system's error.
enum Failure {
    Unsafe(&'static str),
    Reserve { free: u64, reserve: u64 },
    Cancelled,
    Os(io::Error),
}

impl Failure {
    /// The error of `entry` of `what` (`layer DIGEST`, `archive NAME`).
    fn of(self, what: &str, entry: &str) -> Error {
        let (what, entry) = (what.to_owned(), entry.to_owned());
        match self {
            Failure::Os(source) => Error::Unpack {
                what,
                entry,
                source,
            },
            Failure::Unsafe(reason) => Error::UnsafeEntry {
                what,
                entry,
                reason,
            },
            Failure::Reserve { free, reserve } => Error::DiskReserve {
                what,
                free,
                reserve,
            },
            Failure::Cancelled => Error::Cancelled { what },
        }
    }
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Self {
        if errno == Errno::LOOP || errno == Errno::XDEV {
            Failure::Unsafe("passes through a symbolic link")
        } else {
            Failure::Os(errno.into())
        }
    }
}

/// The longest symlink target Linux stores: PATH_MAX less its NUL.
const MAX_LINK_TARGET: usize = 4095;

/// Opens `path` beneath `dir`, refusing symlinks and `..` escapes anywhere
/// on the way.
fn open_at(dir: &impl AsFd, path: impl AsRef<OsStr>, flags: OFlags) -> Result<OwnedFd, Failure> {
    Ok(openat2(
        dir,
        path.as_ref(),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// The entry's path as components joined by '/', without "." parts, with
/// ".." resolved. An absolute path is taken from the tree's root, where ".."
/// stays (as Docker's untar cleans it before joining it to its target: a
/// client such as testcontainers sends `/tmp/x` for `tmp/x`); a relative one
/// that climbs out is refused.
fn clean(raw: &[u8]) -> Result<Vec<u8>, Failure> {
    let rooted = raw.starts_with(b"/");
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() && !rooted {
                    return Err(Failure::Unsafe("climbs out of the layer with '..'"));
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join(&b'/'))
}

fn is_directory(dir: &OwnedFd, name: &OsStr) -> bool {
    statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Directory)
}

fn remove_tree(parent: &OwnedFd, name: &OsStr) -> Result<(), Failure> {
    let dir = open_at(parent, name, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut children = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            children.push((child.to_vec(), entry.file_type() == FileType::Directory));
        }
    }
    for (child, is_dir) in children {
        let child = OsStr::from_bytes(&child);
        if is_dir {
            remove_tree(&dir, child)?;
        } else {
            unlinkat(&dir, child, AtFlags::empty())?;
        }
    }
    unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

/// Who creates the files, and so which metadata calls can be skipped:
/// over tens of thousands of files, fchown and fchmod calls that change
/// nothing cost as much as the writes.
struct Creator {
    owner: (Uid, Gid),
    umask: u32,
    /// A set-group-id directory gives new files its group, not ours.
    setgid_seen: bool,
}

impl Creator {
    fn of_this_process() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let umask = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))
            .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
            // Unknown: assume every bit may be masked, so chmod always runs.
            .unwrap_or(0o777);
        Self {
            owner: (rustix::process::geteuid(), rustix::process::getegid()),
            umask,
            setgid_seen: false,
        }
    }

    /// Owner first: chown clears set-id bits, so the mode comes after it.
    /// `fresh`: the object was just created by us with `mode & 0o777`, so
    /// only what the umask took or chown changed needs setting.
    fn set_metadata(
        &self,
        fd: &impl AsFd,
        owner: (Uid, Gid),
        mode: Mode,
        mtime: Option<u64>,
        fresh: bool,
    ) -> Result<(), Failure> {
        let chown = !fresh || owner != self.owner || self.setgid_seen;
        if chown {
            fchown(fd, Some(owner.0), Some(owner.1))?;
        }
        if chown || mode.bits() & (0o7000 | self.umask) != 0 {
            fchmod(fd, mode)?;
        }
        if let Some(mtime) = mtime {
            futimens(fd, &timestamps(mtime))?;
        }
        Ok(())
    }
}

/// Owner and mtime of a symlink or device node, without following it.
fn set_metadata_at(
    dir: &OwnedFd,
    name: &OsStr,
    owner: (Uid, Gid),
    mtime: u64,
) -> Result<(), Failure> {
    chownat(
        dir,
        name,
        Some(owner.0),
        Some(owner.1),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    utimensat(dir, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The entry's extended attributes (PAX `SCHILY.xattr.*`), except
/// overlayfs's own, which only whiteouts may set.
fn set_xattrs<R: Read>(fd: &impl AsFd, entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
    let Some(extensions) = entry.pax_extensions().map_err(Failure::Os)? else {
        return Ok(());
    };
    for extension in extensions {
        let extension = extension.map_err(Failure::Os)?;
        let Ok(key) = extension.key() else { continue };
        let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        fsetxattr(fd, name, extension.value_bytes(), XattrFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, as a decompressor may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Keeps the size of each write it gets.
    #[derive(Default)]
    struct Writes {
        bytes: Vec<u8>,
        sizes: Vec<usize>,
    }

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            self.sizes.push(buf.len());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn content_is_written_in_whole_pieces_but_the_last() {
        let content: Vec<u8> = (0..=255).cycle().take(2 * 16 + 5).collect();
        let mut writes = Writes::default();
        let mut unbounded = Reserve {
            filesystem: None,
            bytes: 0,
            unchecked: 0,
            cancel: &Cancel::default(),
        };
        let copied = copy_in_whole_pieces(
            &mut Trickle(&content),
            &mut writes,
            &mut Vec::new(),
            16,
            &mut unbounded,
        )
        .ok()
        .unwrap();
        assert_eq!(copied, content.len() as u64);
        assert_eq!(writes.bytes, content);
        assert_eq!(writes.sizes, [16, 16, 5]);
    }

    fn cleaned(raw: &str) -> Result<String, &'static str> {
        match clean(raw.as_bytes()) {
            Ok(path) => Ok(String::from_utf8(path).unwrap()),
            Err(Failure::Unsafe(reason)) => Err(reason),
            Err(Failure::Os(error)) => panic!("{error}"),
            Err(Failure::Reserve { .. } | Failure::Cancelled) => {
                panic!("no reserve nor cancel while cleaning a path")
            }
        }
    }

    #[test]
    fn entry_paths_are_made_relative_and_clean() {
        assert_eq!(cleaned("./a/./b/"), Ok("a/b".into()));
        assert_eq!(cleaned("a/../b"), Ok("b".into()));
        assert_eq!(cleaned("./"), Ok(String::new()));
        assert_eq!(cleaned("/etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(cleaned("/../../etc"), Ok("etc".into()));
    }

    #[test]
    fn entry_paths_leaving_the_layer_are_refused() {
        assert!(cleaned("../etc/passwd").is_err());
        assert!(cleaned("a/../../b").is_err());
    }
}
