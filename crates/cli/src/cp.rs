//! `keel cp`: copies between a container and the local filesystem with
//! docker cp's rules (docker/cli's cp.go and go-archive's copy.go): a
//! trailing `/` says the destination is a directory, `/.` copies a
//! directory's contents, `-` is a tar on stdin or stdout, `-L` follows a
//! symlink source, `-a` owns the files as the container's user.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use keel_api_types::archive::{ContainerPathStat, PATH_STAT_HEADER};
use lexopt::prelude::*;

use crate::client::{Client, Upload, encode};
use crate::usage;

const SYNOPSIS: &str = "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tkeel cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH";

/// What is copied, as go-archive's `CopyInfo`.
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    /// The name the source's entries take instead of the path's last
    /// part (a followed symlink keeps the name asked for).
    rebase_name: Option<String>,
}

/// `keel cp [OPTIONS] CONTAINER:SRC DEST` or `SRC CONTAINER:DEST`
pub fn cp(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut archive, mut follow, mut quiet) = (false, false, false);
    let mut paths = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("archive") => archive = true,
            Short('L') | Long("follow-link") => follow = true,
            Short('q') | Long("quiet") => quiet = true,
            Value(value) => paths.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [source, destination] = <[String; 2]>::try_from(paths).map_err(|_| {
        anyhow::anyhow!("\"keel cp\" requires exactly 2 arguments.\nUsage:  keel {SYNOPSIS}")
    })?;
    if source.is_empty() {
        bail!("source can not be empty");
    }
    if destination.is_empty() {
        bail!("destination can not be empty");
    }
    // Docker reports a copy's size only to a terminal.
    let report = !quiet && io::stderr().is_terminal();
    match (split(&source), split(&destination)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((container, path)), None) => {
            from_container(client, container, path, &destination, follow, report)
        }
        (None, Some((container, path))) => {
            to_container(client, &source, container, path, archive, follow, report)
        }
    }
}

/// `CONTAINER:PATH` as its parts; a local path (absolute, or starting
/// with `.`) has none, even with a colon in it.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') {
        return None;
    }
    let (container, path) = arg.split_once(':')?;
    (!container.starts_with('.')).then_some((container, path))
}

/// What `path` is in `container`; `None` when the daemon says nothing
/// of it (missing, or any error, which the copy itself then reports).
fn stat(client: &Client, container: &str, path: &str) -> Option<ContainerPathStat> {
    let response = client
        .request(
            "HEAD",
            &format!(
                "/containers/{}/archive?path={}",
                encode(container),
                encode(path)
            ),
            Upload::None,
        )
        .ok()?
        .success()
        .ok()?;
    ContainerPathStat::from_header(response.header(PATH_STAT_HEADER)?)
}

/// A symlink's target as a path: relative ones are from its directory.
fn link_path(link: &str, target: &str) -> String {
    match target.starts_with('/') {
        true => target.to_owned(),
        false => clean(&format!("{}/{target}", split_dir_entry(link).0)),
    }
}

fn from_container(
    client: &Client,
    container: &str,
    path: &str,
    destination: &str,
    follow: bool,
    report: bool,
) -> Result<()> {
    let (mut path, mut rebase_name) = (path.to_owned(), None);
    if follow
        && let Some(stat) = stat(client, container, &path)
        && stat.is_symlink()
    {
        (path, rebase_name) = rebase_name_of(&path, &link_path(&path, &stat.link_target));
    }
    let mut response = client
        .request(
            "GET",
            &format!(
                "/containers/{}/archive?path={}",
                encode(container),
                encode(&path)
            ),
            Upload::None,
        )?
        .success()?;
    if destination == "-" {
        io::copy(response.body(), &mut io::stdout().lock())?;
        return Ok(());
    }
    let stat = response
        .header(PATH_STAT_HEADER)
        .and_then(ContainerPathStat::from_header)
        .context("the daemon's answer has no path stat")?;
    let source = CopyInfo {
        path,
        exists: true,
        is_dir: stat.is_dir(),
        rebase_name,
    };
    let target = destination_info(destination)?;
    let (dir, from, to) = prepare(&source, &target)?;
    let dir_fd: OwnedFd = fs::File::open(&dir)
        .with_context(|| format!("cannot open {dir}"))?
        .into();
    let (reader, mut writer) = io::pipe()?;
    // The rewritten tar is unpacked as it is written: beneath the
    // directory, never through a symlink, as a layer is.
    let unpacking = std::thread::spawn(move || {
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        keel_image::unpack::unpack_tree_with(
            reader,
            dir_fd.as_fd(),
            "from the container",
            keel_image::unpack::DiskReserve::Bytes(0),
            &keel_image::Cancel::default(),
            keel_image::unpack::TreeOptions {
                keep_directories: true,
                owner: Some((euid, egid)),
            },
        )
    });
    // Entries are named after the path asked for, then after the
    // destination, as docker cp renames them.
    let renames = [
        (split_dir_entry(&source.path).1, source.rebase_name.clone()),
        (from, Some(to)),
    ];
    let copied = rebase(response.body(), &mut writer, &renames);
    drop(writer);
    let unpacked = unpacking
        .join()
        .expect("the unpacking thread does not panic");
    copied?;
    let unpacked = unpacked?;
    if report {
        eprintln!(
            "Successfully copied {} to {destination}",
            crate::format::human_size_with_precision(unpacked.size, 4)
        );
    }
    Ok(())
}

fn to_container(
    client: &Client,
    source: &str,
    container: &str,
    path: &str,
    archive: bool,
    follow: bool,
    report: bool,
) -> Result<()> {
    let mut target = CopyInfo {
        path: path.to_owned(),
        exists: false,
        is_dir: false,
        rebase_name: None,
    };
    let mut found = stat(client, container, path);
    if let Some(link) = found.as_ref().filter(|s| s.is_symlink()) {
        target.path = link_path(path, &link.link_target);
        found = stat(client, container, &target.path);
    }
    if let Some(found) = found {
        (target.exists, target.is_dir) = (true, found.is_dir());
    }
    let mut query = String::from("&noOverwriteDirNonDir=true");
    if archive {
        query.push_str("&copyUIDGID=true");
    }
    let put = |dir: &str, body: &mut dyn Read| -> Result<()> {
        client
            .request(
                "PUT",
                &format!(
                    "/containers/{}/archive?path={}{query}",
                    encode(container),
                    encode(dir)
                ),
                Upload::Stream(body),
            )?
            .success()?;
        Ok(())
    };
    if source == "-" {
        if !target.is_dir {
            bail!(
                "destination \"{container}:{}\" must be a directory",
                target.path
            );
        }
        return put(&target.path, &mut io::stdin().lock());
    }
    let source = source_info(source, follow)?;
    let (dir, from, to) = prepare(&source, &target)?;
    let (mut reader, writer) = io::pipe()?;
    let (local_dir, local_base) = split_dir_entry(&source.path);
    let rebase_name = source.rebase_name.clone();
    let archiving = std::thread::spawn(move || -> io::Result<u64> {
        let mut tar = tar::Builder::new(writer);
        tar.follow_symlinks(false);
        let mut size = 0;
        let top = Path::new(&local_dir).join(&local_base);
        let named = rebase_name.unwrap_or(local_base);
        append(&mut tar, &top, &rebased(&named, &from, &to), &mut size)?;
        tar.finish()?;
        Ok(size)
    });
    let sent = put(&dir, &mut reader);
    drop(reader);
    let archived = archiving
        .join()
        .expect("the archiving thread does not panic");
    sent?;
    let size = archived.with_context(|| format!("cannot archive {}", source.path))?;
    if report {
        eprintln!(
            "Successfully copied {} to {container}:{}",
            crate::format::human_size_with_precision(size, 4),
            target.path
        );
    }
    Ok(())
}

/// Appends `path` (not followed if a symlink) as `name`, and what a
/// directory holds beneath it, adding regular files' sizes to `size`.
fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &Path,
    name: &str,
    size: &mut u64,
) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.is_dir() {
        tar.append_dir(name, path)?;
        let mut children: Vec<_> = fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        children.sort();
        for child in children {
            let child_name = format!("{}/{}", name.trim_end_matches('/'), child.to_string_lossy());
            append(tar, &path.join(&child), &child_name, size)?;
        }
        Ok(())
    } else {
        if metadata.is_file() {
            *size += metadata.len();
        }
        tar.append_path_with_name(path, name)
    }
}

/// The source's local info (go-archive's `CopyInfoSourcePath`): `-L`
/// follows a symlink source, a trailing `/` a symlink to a directory;
/// either keeps the name asked for.
fn source_info(path: &str, follow: bool) -> Result<CopyInfo> {
    let lstat = |path: &str| {
        fs::symlink_metadata(path).map_err(|error| anyhow::anyhow!("lstat {path}: {error}"))
    };
    let (path, rebase_name) = if follow || path.ends_with('/') {
        lstat(path)?;
        let resolved =
            fs::canonicalize(path).map_err(|error| anyhow::anyhow!("{path}: {error}"))?;
        rebase_name_of(path, &resolved.to_string_lossy())
    } else {
        (path.to_owned(), None)
    };
    Ok(CopyInfo {
        is_dir: lstat(&path)?.is_dir(),
        path,
        exists: true,
        rebase_name,
    })
}

/// The local destination's info, its symlinks followed (go-archive's
/// `CopyInfoDestinationPath`).
fn destination_info(path: &str) -> Result<CopyInfo> {
    let mut path = path.to_owned();
    for _ in 0..=10 {
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_symlink() => {
                let target = fs::read_link(&path)?;
                path = link_path(&path, &target.to_string_lossy());
            }
            Ok(metadata) => {
                return Ok(CopyInfo {
                    is_dir: metadata.is_dir(),
                    path,
                    exists: true,
                    rebase_name: None,
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&path).0;
                let metadata = fs::metadata(&parent)
                    .map_err(|error| anyhow::anyhow!("stat {parent}: {error}"))?;
                if !metadata.is_dir() {
                    bail!("not a directory: {parent}");
                }
                return Ok(CopyInfo {
                    path,
                    exists: false,
                    is_dir: false,
                    rebase_name: None,
                });
            }
            Err(error) => bail!("lstat {path}: {error}"),
        }
    }
    bail!("too many symlinks in {path}")
}

/// Where the source's tar is unpacked and how its first path part is
/// renamed, from what the source and destination are (go-archive's
/// `PrepareArchiveCopy`).
fn prepare(source: &CopyInfo, target: &CopyInfo) -> Result<(String, String, String)> {
    let (target_dir, target_base) = split_dir_entry(&target.path);
    let source_base = split_dir_entry(&source.path).1;
    let renamed = source.rebase_name.clone().unwrap_or(source_base.clone());
    match () {
        // Into an existing directory: the names stay.
        _ if target.exists && target.is_dir => Ok((target.path.clone(), renamed.clone(), renamed)),
        _ if target.exists && source.is_dir => bail!("cannot copy directory"),
        _ if target.exists || source.is_dir => Ok((target_dir, renamed, target_base)),
        _ if asserts_directory(&target.path) => {
            bail!("no such directory: {}", target.path)
        }
        _ => Ok((target_dir, renamed, target_base)),
    }
}

/// `name` with its first part `from` renamed `to` (go-archive's
/// `RebaseArchiveEntries`); `.` holds the names that do not start with it.
fn rebased(name: &str, from: &str, to: &str) -> String {
    let trimmed = name.strip_prefix("./").unwrap_or(name);
    let (first, rest) = match trimmed.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (trimmed, None),
    };
    let (first, rest) = match from {
        "." if name == "." || name == "./" => (".", Some("")),
        "." => (".", Some(trimmed)),
        _ => (first, rest),
    };
    if first != from || from == to {
        return name.to_owned();
    }
    match rest {
        Some(rest) => format!("{to}/{rest}"),
        None => to.to_owned(),
    }
}

/// Renames of an entry's first path part, in turn; `None` leaves it.
type Renames = [(String, Option<String>); 2];

/// Copies the tar `from` to `out`, its entries' first path part renamed.
fn rebase(from: &mut dyn Read, out: impl Write, renames: &Renames) -> Result<()> {
    let rename = |name: &str| {
        renames
            .iter()
            .fold(name.to_owned(), |name, (old, new)| match new {
                Some(new) => rebased(&name, old, new),
                None => name,
            })
    };
    let mut archive = tar::Archive::new(from);
    let mut tar = tar::Builder::new(out);
    for entry in archive
        .entries()
        .context("the container's archive is not a tar")?
    {
        let mut entry = entry.context("the container's archive was cut short")?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = rename(&name);
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Link | tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let target = match header.entry_type() {
                    tar::EntryType::Link => rename(&target),
                    _ => target,
                };
                tar.append_link(&mut header, &name, &target)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => tar.append_data(&mut header, &name, &mut entry)?,
        }
    }
    tar.finish()?;
    Ok(())
}

/// The path with the name the caller asked for: a symlink followed to a
/// target of another name is renamed back (go-archive's `GetRebaseName`).
fn rebase_name_of(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_owned();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if path.ends_with('/') && !resolved.ends_with('/') {
        resolved.push('/');
    }
    let base = |p: &str| split_dir_entry(p).1;
    let rebase = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, rebase)
}

fn specifies_current_dir(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// A trailing `/` or `/.` says the path is a directory.
fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || specifies_current_dir(path)
}

/// The directory and last part of `path` cleaned, `.` kept as the last
/// part when the path ends with it (go-archive's `SplitPathDirEntry`).
fn split_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) && cleaned != "." {
        cleaned.push_str("/.");
    }
    match cleaned.rsplit_once('/') {
        Some(("", base)) => ("/".to_owned(), base.to_owned()),
        Some((dir, base)) => (dir.to_owned(), base.to_owned()),
        None => (".".to_owned(), cleaned),
    }
}

/// Go's `filepath.Clean`: no `.`, no `..` that can go, no double or
/// trailing slashes.
fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            part => parts.push(part),
        }
    }
    match (absolute, parts.join("/")) {
        (true, joined) => format!("/{joined}"),
        (false, joined) if joined.is_empty() => ".".to_owned(),
        (false, joined) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_arguments_are_told_from_local_paths_as_docker_does() {
        assert_eq!(split("box:/etc"), Some(("box", "/etc")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("file"), None);
    }

    #[test]
    fn paths_split_into_directory_and_entry_keeping_a_trailing_dot() {
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("b"), (".".into(), "b".into()));
        assert_eq!(split_dir_entry("/b"), ("/".into(), "b".into()));
        assert_eq!(clean("a/../../b/./c/"), "../b/c");
        assert_eq!(clean("/../x"), "/x");
    }

    #[test]
    fn entries_are_rebased_by_their_first_part() {
        assert_eq!(rebased("dir/", "dir", "new"), "new/");
        assert_eq!(rebased("dir/a/b", "dir", "new"), "new/a/b");
        assert_eq!(rebased("dirt/a", "dir", "new"), "dirt/a");
        assert_eq!(rebased("./", ".", "new"), "new/");
        assert_eq!(rebased("./a", ".", "new"), "new/a");
        assert_eq!(rebased("a/b", ".", "new"), "new/a/b");
        assert_eq!(rebased("file", "file", "renamed"), "renamed");
    }
}
