//! COPY and ADD's file work: sources found in the build context (or in an
//! earlier stage's root) and written into a step's root. Every path on
//! either side is resolved with `RESOLVE_IN_ROOT`, so a symlink in the
//! context or the image resolves inside it, never to the host's files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use sha2::{Digest as _, Sha256};

use crate::error::{Context, Error, Result};
use crate::explain::FileEntry;
use crate::ignore::Ignore;
use crate::sums::FileSums;

/// One source of a COPY: a path in its root and what it is.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path under the root, without a leading slash ("" for the root).
    pub path: String,
    /// The host path that reaches it (through `/proc/self/fd`).
    pub host: PathBuf,
    pub is_dir: bool,
    /// Which of a step's patterns selected it.
    pub pattern: usize,
    /// Keeps `host` valid.
    _fd: std::sync::Arc<OwnedFd>,
}

/// Which entries of a source root a COPY sees: all of them, or those the
/// .dockerignore of a context read in place leaves in (a context sent as a
/// tar was filtered by its client), paths relative to the root; and not
/// those its `--exclude` patterns match, paths relative to the source
/// copied (the source itself by its name).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Visible<'a> {
    ignore: Option<&'a Ignore>,
    exclude: Option<&'a Ignore>,
    /// The source `exclude` is relative to.
    source: &'a str,
}

impl<'a> Visible<'a> {
    pub(crate) fn ignoring(ignore: Option<&'a Ignore>) -> Self {
        Visible {
            ignore,
            ..Visible::default()
        }
    }

    /// These entries, less those `exclude` matches.
    pub(crate) fn excluding<'b>(self, exclude: Option<&'b Ignore>) -> Visible<'b>
    where
        'a: 'b,
    {
        Visible { exclude, ..self }
    }

    /// These entries, `--exclude` taken relative to `source`.
    pub(crate) fn of_source<'b>(self, source: &'b str) -> Visible<'b>
    where
        'a: 'b,
    {
        Visible { source, ..self }
    }

    /// Whether `path` is seen; an excluded directory is when an exception
    /// may bring back something below it.
    fn sees(self, path: &str, is_dir: bool) -> bool {
        let hides = |patterns: &Ignore, path: &str| {
            patterns.excludes(path) && !(is_dir && patterns.may_include_below(path))
        };
        let ignored = self.ignore.is_some_and(|ignore| hides(ignore, path));
        let excluded = self.exclude.is_some_and(|exclude| {
            let relative = match path == self.source {
                true => path.rsplit('/').next().unwrap_or(path),
                false if self.source.is_empty() => path,
                false => path
                    .strip_prefix(self.source)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .unwrap_or(path),
            };
            !relative.is_empty() && hides(exclude, relative)
        });
        !ignored && !excluded
    }
}

/// Who owns and may use what a COPY writes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`: the mode of every file and directory copied.
    pub mode: Option<u32>,
}

fn open_in_root(root: &impl AsFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(io::Error::from)
}

/// Opens a step's root directory.
pub(crate) fn open_root(root: &Path) -> Result<File> {
    File::open(root).context(|| "cannot open the step's root".to_owned())
}

/// `path` made relative to the root it names a place in; an error if it
/// climbs out of it (`../x`), as Docker's "outside the build context".
pub(crate) fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The sources `pattern` names under `root` (a directory): one path, or
/// with `*`, `?` or `[` in any of its parts (or `**`, any number of
/// directories), every entry that matches, in name order.
pub(crate) fn sources(
    root: &Path,
    pattern: &str,
    what: &str,
    visible: Visible,
) -> Result<Vec<Source>> {
    let cleaned = clean(pattern).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "forbidden path outside the build context: {pattern}"
        ))
    })?;
    let root_fd = File::open(root).context(|| format!("cannot open {}", root.display()))?;
    let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
    let names: Vec<String> = if parts.iter().any(|p| p.contains(['*', '?', '['])) {
        let mut names = Vec::new();
        matches(&root_fd, String::new(), &parts, visible, &mut names)?;
        names.sort();
        names.dedup();
        names
    } else {
        vec![cleaned.clone()]
    };
    if names.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what}: no source files were specified: {pattern} matches nothing"
        )));
    }
    names
        .into_iter()
        .map(|name| {
            let missing = || {
                Error::InvalidArgument(format!(
                    "{what}: file not found in build context or excluded by .dockerignore: stat {name}: file does not exist"
                ))
            };
            let fd = open_in_root(&root_fd, &name, OFlags::PATH).map_err(|_| missing())?;
            let host = fd_path(&fd);
            let is_dir = fs::metadata(&host)
                .context(|| format!("cannot stat {name}"))?
                .is_dir();
            if !visible.sees(&name, is_dir) {
                return Err(missing());
            }
            Ok(Source {
                path: name,
                host,
                is_dir,
                pattern: 0,
                _fd: std::sync::Arc::new(fd),
            })
        })
        .collect()
}

/// Adds to `found` the paths under `dir` (in the root `root_fd`) that the
/// pattern `parts` match and `visible` shows.
fn matches(
    root_fd: &File,
    dir: String,
    parts: &[&str],
    visible: Visible,
    found: &mut Vec<String>,
) -> Result<()> {
    let Some((part, rest)) = parts.split_first() else {
        found.push(dir);
        return Ok(());
    };
    let is_glob = *part == "**" || part.contains(['*', '?', '[']);
    if !is_glob {
        let child = child_name(&dir, part);
        let exists = open_in_root(root_fd, &child, OFlags::PATH).is_ok();
        if exists && (rest.is_empty() || is_dir_in(root_fd, &child)) {
            matches(root_fd, child, rest, visible, found)?;
        }
        return Ok(());
    }
    // `**` also matches no directory at all.
    if *part == "**" {
        matches(root_fd, dir.clone(), rest, visible, found)?;
    }
    let Ok(fd) = open_in_root(root_fd, &dir, OFlags::DIRECTORY | OFlags::RDONLY) else {
        return Ok(());
    };
    let mut entries: Vec<(String, bool)> = fs::read_dir(fd_path(&fd))
        .context(|| format!("cannot list {dir}"))?
        .filter_map(|e| {
            let e = e.ok()?;
            let is_dir = e.file_type().ok()?.is_dir();
            Some((e.file_name().to_string_lossy().into_owned(), is_dir))
        })
        .collect();
    entries.sort();
    for (name, is_dir) in entries {
        let child = child_name(&dir, &name);
        if !visible.sees(&child, is_dir) {
            continue;
        }
        if *part == "**" {
            if is_dir {
                matches(root_fd, child, parts, visible, found)?;
            }
        } else if glob(part, &name) && (rest.is_empty() || is_dir) {
            matches(root_fd, child, rest, visible, found)?;
        }
    }
    Ok(())
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Go's filepath.Match for one path part: `*`, `?`, `[a-z]`, `[!x]`.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|skip| go(rest, &n[skip..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some(('[', rest)) => {
                let Some(end) = rest.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let (negate, class) = match rest[..end].split_first() {
                    Some(('!' | '^', class)) => (true, class),
                    _ => (false, &rest[..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&rest[end + 1..], &n[1..])
            }
            Some(('\\', rest)) if !rest.is_empty() => {
                n.first() == Some(&rest[0]) && go(&rest[1..], &n[1..])
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// A hash of what copying `sources` writes: names, kinds, modes, link
/// targets and contents, never times, so that the same bytes give the
/// same key whenever they were made; and the list of those files, which
/// explains a cache miss.
pub(crate) fn checksum(
    sources: &[Source],
    visible: Visible,
    sums: &FileSums,
) -> Result<(String, Vec<FileEntry>)> {
    let mut hasher = Sha256::new();
    let tree = Tree { visible, sums };
    let mut files = Vec::new();
    for source in sources {
        let tree = Tree {
            visible: tree.visible.of_source(&source.path),
            ..tree
        };
        tree.hash(&mut hasher, &mut files, &source.host, &source.path, true)?;
    }
    Ok((hex(&hasher.finalize()), files))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What hashing a source tree needs besides the tree.
#[derive(Clone, Copy)]
struct Tree<'a> {
    visible: Visible<'a>,
    sums: &'a FileSums,
}

impl Tree<'_> {
    /// Hashes `host` (named `name` in its root), listing it in `files`.
    /// `follow`: `host` is a source's own fd path, a link to what it names.
    fn hash(
        &self,
        hasher: &mut Sha256,
        files: &mut Vec<FileEntry>,
        host: &Path,
        name: &str,
        follow: bool,
    ) -> Result<()> {
        let meta = metadata(host, follow).context(|| format!("cannot stat {name}"))?;
        let kind = meta.file_type();
        if !self.visible.sees(name, kind.is_dir()) {
            return Ok(());
        }
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(meta.mode().to_be_bytes());
        let mut entry = FileEntry {
            name: name.to_owned(),
            mode: meta.mode(),
            content: String::new(),
        };
        if kind.is_symlink() {
            let target = fs::read_link(host).context(|| format!("cannot read {name}"))?;
            hasher.update(target.as_os_str().as_bytes());
            entry.content = target.to_string_lossy().into_owned();
            files.push(entry);
        } else if kind.is_file() {
            hasher.update(meta.len().to_be_bytes());
            let mut file = File::open(host).context(|| format!("cannot open {name}"))?;
            let sum = self
                .sums
                .of(&mut file, &meta)
                .context(|| format!("cannot read {name}"))?;
            hasher.update(sum);
            entry.content = format!("sha256:{}", hex(&sum));
            files.push(entry);
        } else if kind.is_dir() {
            files.push(entry);
            let mut entries: Vec<_> = fs::read_dir(host)
                .context(|| format!("cannot list {name}"))?
                .filter_map(|e| e.ok())
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let child = child_name(name, &entry.file_name().to_string_lossy());
                self.hash(hasher, files, &entry.path(), &child, false)?;
            }
        }
        hasher.update([0xff]);
        Ok(())
    }
}

/// The path of `child` of the directory `parent` in a root ("" is the root).
pub(crate) fn child_name(parent: &str, child: &str) -> String {
    match parent {
        "" => child.to_owned(),
        parent => format!("{parent}/{child}"),
    }
}

/// Opens (making, owned by `owner`, mode 0755) the directory `path`
/// inside the root `root`.
pub(crate) fn make_dirs(root: &impl AsFd, path: &str, owner: Owner) -> Result<OwnedFd> {
    let mut done = String::new();
    let mut dir = open_in_root(root, "", OFlags::DIRECTORY | OFlags::RDONLY)
        .context(|| "cannot open the step's root directory".to_owned())?;
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        done = if done.is_empty() {
            part.to_owned()
        } else {
            format!("{done}/{part}")
        };
        match open_in_root(root, &done, OFlags::DIRECTORY | OFlags::RDONLY) {
            Ok(next) => dir = next,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755))
                    .context(|| format!("cannot make /{done}"))?;
                let next = open_in_root(root, &done, OFlags::DIRECTORY | OFlags::RDONLY)
                    .context(|| format!("cannot open /{done}"))?;
                rustix::fs::fchown(
                    &next,
                    Some(rustix::process::Uid::from_raw(owner.uid)),
                    Some(rustix::process::Gid::from_raw(owner.gid)),
                )
                .context(|| format!("cannot own /{done}"))?;
                dir = next;
            }
            Err(error) => {
                return Err(Error::Io {
                    what: format!("/{done} is not a directory"),
                    source: error,
                });
            }
        }
    }
    Ok(dir)
}

/// The metadata of `host`, or with `follow` of what it links to.
fn metadata(host: &Path, follow: bool) -> io::Result<fs::Metadata> {
    match follow {
        true => fs::metadata(host),
        false => fs::symlink_metadata(host),
    }
}

/// Copies `host` (a file, link or directory tree, `source` in its root) to
/// `name` in the directory `dir`, owned and moded as `owner` says, leaving
/// out what is not `visible`; `follow`: `host` is a source's own fd path,
/// a link to what it names.
pub(crate) fn copy_into(
    dir: &OwnedFd,
    name: &str,
    host: &Path,
    source: &str,
    owner: Owner,
    follow: bool,
    visible: Visible,
) -> Result<()> {
    let meta = metadata(host, follow).context(|| format!("cannot stat {}", host.display()))?;
    let kind = meta.file_type();
    if !visible.sees(source, kind.is_dir()) {
        return Ok(());
    }
    let uid = Some(rustix::process::Uid::from_raw(owner.uid));
    let gid = Some(rustix::process::Gid::from_raw(owner.gid));
    let mode = owner.mode.unwrap_or(meta.mode() & 0o7777);
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    let what = || format!("cannot copy to {name}");
    if kind.is_dir() {
        let is_dir = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| {
            rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
        });
        // A directory merges into one that is there; anything else goes.
        if !is_dir {
            remove_entry(dir, name)?;
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)).context(what)?;
        }
        let child = rustix::fs::openat(
            dir,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(what)?;
        let mut entries: Vec<_> = fs::read_dir(host)
            .context(|| format!("cannot list {}", host.display()))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            copy_into(
                &child,
                &entry_name,
                &entry.path(),
                &child_name(source, &entry_name),
                owner,
                false,
                visible,
            )?;
        }
        rustix::fs::fchown(&child, uid, gid).context(what)?;
        rustix::fs::fchmod(&child, Mode::from_raw_mode(mode)).context(what)?;
        rustix::fs::futimens(&child, &times).context(what)?;
        return Ok(());
    }
    if kind.is_symlink() {
        remove_entry(dir, name)?;
        let target = fs::read_link(host).context(what)?;
        rustix::fs::symlinkat(&target, dir, name).context(what)?;
        rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW).context(what)?;
        return Ok(());
    }
    if !kind.is_file() {
        // Devices, fifos and sockets in a context are left out, as Docker's.
        return Ok(());
    }
    let mut input = File::open(host).context(|| format!("cannot open {}", host.display()))?;
    let out = create_file(dir, name, owner.uid, owner.gid, mode, |out| {
        io::copy(&mut input, out).map(drop)
    })?;
    rustix::fs::futimens(&out, &times).context(what)?;
    Ok(())
}

/// Copies the entries of `source`, a directory, into the directory `into`
/// (a COPY of a directory, a bind mount's copy), leaving out what is not
/// `visible`.
pub(crate) fn copy_children(
    into: &OwnedFd,
    source: &Source,
    owner: Owner,
    visible: Visible,
) -> Result<()> {
    let listing = || format!("cannot list {}", source.path);
    let visible = visible.of_source(&source.path);
    for entry in fs::read_dir(&source.host).context(listing)? {
        let entry = entry.context(listing)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = child_name(&source.path, &name);
        copy_into(into, &name, &entry.path(), &relative, owner, false, visible)?;
    }
    Ok(())
}

/// Takes away whatever is at `name` in `dir` (a file, a link, which must
/// not be followed, or a directory tree).
fn remove_entry(dir: &OwnedFd, name: &str) -> Result<()> {
    let what = || format!("cannot replace {name}");
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::ISDIR) => fs::remove_dir_all(fd_path(dir).join(name)).context(what),
        Err(error) => Err(Error::Io {
            what: what(),
            source: error.into(),
        }),
    }
}

/// Makes the file `name` in `dir` anew with what `fill` writes, owned by
/// `uid`:`gid` with `mode`.
fn create_file(
    dir: &OwnedFd,
    name: &str,
    uid: u32,
    gid: u32,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<File> {
    let what = || format!("cannot write {name}");
    remove_entry(dir, name)?;
    let out = rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .context(what)?;
    let mut out = File::from(out);
    fill(&mut out).and_then(|()| out.flush()).context(what)?;
    rustix::fs::fchown(
        &out,
        Some(rustix::process::Uid::from_raw(uid)),
        Some(rustix::process::Gid::from_raw(gid)),
    )
    .context(what)?;
    out.set_permissions(fs::Permissions::from_mode(mode))
        .context(what)?;
    Ok(out)
}

/// Writes `content` as the file `name` in `dir` (a heredoc's file).
pub(crate) fn write_file(dir: &OwnedFd, name: &str, content: &[u8], owner: Owner) -> Result<()> {
    let mode = owner.mode.unwrap_or(0o644);
    create_file(dir, name, owner.uid, owner.gid, mode, |out| {
        out.write_all(content)
    })?;
    Ok(())
}

/// Whether the file `host` is an archive ADD unpacks: as Docker decides,
/// a file whose (gzip, bzip2, xz or zstd) decompressed start is a tar
/// header; anything else is copied as it is.
pub(crate) fn is_archive(host: &Path) -> bool {
    let Ok(file) = File::open(host) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(stream) = keel_image::unpack::decompress(file) else {
        return false;
    };
    let mut archive = tar::Archive::new(stream);
    archive
        .entries()
        .is_ok_and(|mut entries| matches!(entries.next(), Some(Ok(_))))
}

/// Unpacks the archive `host` (`name` in its root) into the directory
/// `dir`: its entries' owners, modes and times kept, every path beneath
/// `dir` through no symlink, what the store keeps free left free, until
/// `cancel` says to stop.
pub(crate) fn unpack_archive(
    dir: &OwnedFd,
    host: &Path,
    name: &str,
    store: &keel_image::Store,
    cancel: &keel_image::Cancel,
) -> Result<()> {
    let file = File::open(host).context(|| format!("cannot open {name}"))?;
    let stream = keel_image::unpack::decompress(file).context(|| format!("cannot read {name}"))?;
    keel_image::unpack::unpack_tree(stream, dir.as_fd(), name, store.disk_reserve(), cancel)?;
    Ok(())
}

/// Whether `path` in the root is a directory now.
pub(crate) fn is_dir_in(root: &impl AsFd, path: &str) -> bool {
    open_in_root(root, path, OFlags::DIRECTORY | OFlags::RDONLY).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_of_the_context_are_refused() {
        assert_eq!(clean("./a/../b/").as_deref(), Some("b"));
        assert_eq!(clean("/x/y").as_deref(), Some("x/y"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
    }

    #[test]
    fn globs_match_one_part_as_go_filepath_match_does() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("file?", "file1"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[!a-c]x", "bx"));
    }
}
