//! A snapshot's changes against its image, as `docker diff` lists them:
//! its upper directory walked as a commit walks it, each entry looked up
//! in the image's layers. What Docker's full comparison of the two trees
//! finds (go-archive's `ChangesDirs`), found by reading the upper only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::commit::{UpperEntry, UpperKind, is_opaque, is_whiteout, walk_upper, xattr};
use crate::error::{Context, Result};
use crate::store::Store;

/// File capabilities: a change of them alone is a change, as in Docker.
const CAPABILITY_XATTR: &str = "security.capability";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

/// One changed path, absolute in the container (`/etc/passwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl Store {
    /// What snapshot `id` changed in its image: parents before children,
    /// names sorted; a directory with a change below it is modified.
    /// `unlisted` (relative paths) are left out.
    pub fn changes(&self, id: &str, unlisted: &[&Path]) -> Result<Vec<Change>> {
        let snapshot = self.snapshot(id)?;
        let image = ImageTree {
            layers: snapshot
                .layers
                .iter()
                .rev()
                .map(|chain_id| self.layers().diff_dir(chain_id))
                .collect(),
        };
        let mut found = BTreeMap::new();
        // Opaque directories: below them the image's entries are gone,
        // but those the container wrote again.
        let mut hiding: Vec<PathBuf> = Vec::new();
        walk_upper(&snapshot.upper(), &mut |entry| {
            let below = image.resolve(entry.name)?;
            let kind = match (entry.kind, &below) {
                (UpperKind::Whiteout, Some(_)) => Some(ChangeKind::Deleted),
                // Made and deleted again: nothing changed.
                (UpperKind::Whiteout, None) => None,
                (_, None) => Some(ChangeKind::Added),
                (_, Some(old)) if differs(old, entry) => Some(ChangeKind::Modified),
                (_, Some(_)) => None,
            };
            if let Some(kind) = kind
                && !unlisted.contains(&entry.name)
            {
                found.insert(entry.name.to_owned(), kind);
            }
            let UpperKind::Dir { opaque } = entry.kind else {
                return Ok(());
            };
            if !opaque && !hiding.iter().any(|dir| entry.name.starts_with(dir)) {
                return Ok(());
            }
            hiding.push(entry.name.to_owned());
            for name in below
                .map(|old| image.children(&old))
                .transpose()?
                .iter()
                .flatten()
            {
                if let Err(error) = fs::symlink_metadata(entry.path.join(name)) {
                    if error.kind() != io::ErrorKind::NotFound {
                        return Err(error);
                    }
                    found.insert(entry.name.join(name), ChangeKind::Deleted);
                }
            }
            Ok(())
        })
        .context(|| format!("cannot list the changes of container {id}"))?;
        let parents: BTreeSet<PathBuf> = found
            .keys()
            .flat_map(|path| path.ancestors().skip(1))
            .filter(|parent| !parent.as_os_str().is_empty())
            .map(Path::to_owned)
            .collect();
        for parent in parents {
            found.entry(parent).or_insert(ChangeKind::Modified);
        }
        // A path's order is its components': a directory comes right
        // before what is in it.
        Ok(found
            .into_iter()
            .map(|(path, kind)| Change {
                path: Path::new("/").join(path).to_string_lossy().into_owned(),
                kind,
            })
            .collect())
    }
}

/// An image's files as its containers see them: its layers' directories,
/// topmost first, merged as overlayfs merges them.
struct ImageTree {
    layers: Vec<PathBuf>,
}

/// A path found in an [`ImageTree`].
struct Found {
    /// The topmost layer's entry, which is what shows.
    path: PathBuf,
    meta: fs::Metadata,
    /// For a directory, the layers' directories merged into it, topmost
    /// first.
    merged: Vec<PathBuf>,
}

impl ImageTree {
    /// The entry at `name` (relative), if the image has one.
    fn resolve(&self, name: &Path) -> io::Result<Option<Found>> {
        let mut found: Option<Found> = None;
        let mut dirs = self.layers.clone();
        for component in name.components() {
            let mut next: Option<Found> = None;
            for dir in &dirs {
                let path = dir.join(component);
                let meta = match fs::symlink_metadata(&path) {
                    Ok(meta) => meta,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                };
                // A whiteout, or a file under a directory, ends what
                // shows through.
                if is_whiteout(&meta) || next.is_some() && !meta.is_dir() {
                    break;
                }
                let (is_dir, opaque) = (meta.is_dir(), meta.is_dir() && is_opaque(&path));
                match &mut next {
                    Some(top) => top.merged.push(path),
                    None => {
                        next = Some(Found {
                            path: path.clone(),
                            merged: if is_dir { vec![path] } else { Vec::new() },
                            meta,
                        })
                    }
                }
                if !is_dir || opaque {
                    break;
                }
            }
            let Some(top) = next else {
                return Ok(None);
            };
            dirs = top.merged.clone();
            found = Some(top);
        }
        Ok(found)
    }

    /// The names in the image's directory `dir`.
    fn children(&self, dir: &Found) -> io::Result<Vec<std::ffi::OsString>> {
        let mut seen = BTreeSet::new();
        let mut shown = Vec::new();
        for layer_dir in &dir.merged {
            for entry in fs::read_dir(layer_dir)? {
                let entry = entry?;
                // A higher layer's entry, or its whiteout, hides this one.
                if !seen.insert(entry.file_name()) {
                    continue;
                }
                if !is_whiteout(&fs::symlink_metadata(entry.path())?) {
                    shown.push(entry.file_name());
                }
            }
        }
        Ok(shown)
    }
}

/// Whether the container's entry differs from the image's, as Docker
/// compares them: type and mode, owner, device, file capabilities, and for
/// all but directories their size and modification time (to the second
/// when either side has no nanoseconds, as tar keeps none).
fn differs(old: &Found, new: &UpperEntry) -> bool {
    let (a, b) = (&old.meta, new.meta);
    let times_differ = a.mtime() != b.mtime()
        || a.mtime_nsec() != b.mtime_nsec() && a.mtime_nsec() != 0 && b.mtime_nsec() != 0;
    a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.rdev() != b.rdev()
        || !b.is_dir() && (times_differ || a.size() != b.size())
        || xattr(&old.path, CAPABILITY_XATTR) != xattr(new.path, CAPABILITY_XATTR)
}
