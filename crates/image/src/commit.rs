//! A snapshot's changes made an image: its overlay upper directory written
//! back as an OCI layer (overlay whiteouts, 0/0 character devices, become
//! `.wh.` files; opaque directories get `.wh..wh..opq`), on top of the
//! image it was made from, with a history entry as Docker's commit and
//! classic builder write them.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::archive::go_arch;
use crate::cancel::Cancel;
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{DOCKER_LAYER, LayerBlob, NewLayer, Store};

/// The diff id of a layer with no entries (two zero blocks), which Docker
/// leaves out of `rootfs.diff_ids` and marks `empty_layer` in the history.
pub const EMPTY_LAYER: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Extended attributes a layer carries (file capabilities, users' own);
/// the overlay's bookkeeping ones stay behind.
const KEPT_XATTR_PREFIXES: [&str; 2] = ["security.", "user."];

/// What a new image says of the step that made it, besides its layer.
#[derive(Debug, Clone, Default)]
pub struct Child {
    /// The image config's `config`: what containers of it run.
    pub config: Map<String, Value>,
    /// The container it was made from, for the config's `container`.
    pub container: Option<String>,
    pub author: String,
    pub comment: String,
    /// The history's `created_by` (a commit's command, a build's step).
    pub created_by: String,
    /// RFC 3339.
    pub created: String,
}

impl Store {
    /// Makes an image of snapshot `id`'s changes on top of the image it
    /// was made from, tagged `reference` if given; an empty change set adds
    /// no layer (an `empty_layer` step), as in Docker. Returns its id.
    pub fn commit(
        &self,
        id: &str,
        child: &Child,
        reference: Option<&Reference>,
        cancel: &Cancel,
    ) -> Result<Digest> {
        let snapshot = self.snapshot(id)?;
        self.adding_whole(|| {
            let (diff_id, _) =
                self.content()
                    .write_with(None, &format!("the changes of {id}"), |out| {
                        write_layer(&snapshot.upper(), out).map(drop)
                    })?;
            let layer = LayerBlob {
                digest: diff_id.clone(),
                diff_id,
                media_type: DOCKER_LAYER.to_owned(),
            };
            let id = self.add_child(Some(&snapshot.image), Some(layer), child, cancel)?;
            if let Some(reference) = reference {
                self.set_ref(reference, &id)?;
            }
            Ok(id)
        })
    }

    /// Records the image `parent` (or nothing) plus `layer`: its config is
    /// the parent's with `child` applied, its history one step longer.
    /// The caller holds [`Store::adding`] while `layer`'s blob is no image's.
    pub(crate) fn add_child(
        &self,
        parent: Option<&Digest>,
        layer: Option<LayerBlob>,
        child: &Child,
        cancel: &Cancel,
    ) -> Result<Digest> {
        let (mut config, mut layers) = match parent {
            Some(parent) => (
                serde_json::from_slice::<Map<String, Value>>(&self.raw_config(parent)?)
                    .map_err(|error| Error::BadConfig(error.to_string()))?,
                self.record(parent)?.layers,
            ),
            None => (Map::new(), Vec::new()),
        };
        let layer = layer.filter(|layer| layer.diff_id.as_str() != EMPTY_LAYER);
        let mut step = Map::new();
        step.insert("created".into(), json!(child.created));
        for (key, value) in [
            ("author", &child.author),
            ("created_by", &child.created_by),
            ("comment", &child.comment),
        ] {
            if !value.is_empty() {
                step.insert(key.into(), json!(value));
            }
        }
        if layer.is_none() {
            step.insert("empty_layer".into(), json!(true));
        }
        if let Some(layer) = &layer {
            layers.push(layer.clone());
        }
        let diff_ids: Vec<&Digest> = layers.iter().map(|layer| &layer.diff_id).collect();
        config
            .entry("architecture")
            .or_insert_with(|| json!(go_arch()));
        config.entry("os").or_insert_with(|| json!("linux"));
        config.insert("config".into(), Value::Object(child.config.clone()));
        config.insert("created".into(), json!(child.created));
        config.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        for (key, value) in [
            ("author", Some(&child.author)),
            ("container", child.container.as_ref()),
        ] {
            match value {
                Some(value) if !value.is_empty() => config.insert(key.into(), json!(value)),
                _ => config.remove(key),
            };
        }
        let history = config.entry("history").or_insert_with(|| json!([]));
        if let Some(history) = history.as_array_mut() {
            history.push(Value::Object(step));
        }
        let bytes = serde_json::to_vec(&config).expect("a config serializes");
        let new: Vec<NewLayer> = layers
            .into_iter()
            .map(|blob| NewLayer {
                verified: blob.digest == blob.diff_id,
                blob,
            })
            .collect();
        self.add_image(&bytes, &new, cancel)
    }
}

/// The diff id and tar size of the layer tar `upper` makes, and the bytes
/// of its regular files, without writing the tar anywhere: a built layer
/// keeps its directory only, and its tar is made again when it is needed
/// ([`BuiltLayerTar`]).
pub(crate) fn layer_digest(upper: &Path) -> io::Result<(Digest, u64, u64)> {
    let mut out = DigestWriter::new(io::sink());
    let size = write_layer(upper, &mut out)?;
    let (_, digest, tar_size) = out.finish();
    Ok((digest, tar_size, size))
}

/// Sets every modification time after `epoch` (seconds since 1970) in
/// the tree `upper` to `epoch`, as BuildKit's rewrite-timestamp does for
/// `SOURCE_DATE_EPOCH`: a layer made twice of the same files then has the
/// same tar, whenever it was made. Symlinks are set themselves, never
/// followed.
pub(crate) fn clamp_times(upper: &Path, epoch: i64) -> io::Result<()> {
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: epoch,
            tv_nsec: 0,
        },
    };
    let mut todo = vec![upper.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                todo.push(path.clone());
            }
            if meta.mtime() > epoch || meta.mtime() == epoch && meta.mtime_nsec() > 0 {
                rustix::fs::utimensat(
                    rustix::fs::CWD,
                    &path,
                    &times,
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
        }
    }
    Ok(())
}

/// The tar of a built layer, made again from its directory as it is read
/// (by a thread writing into a pipe) and checked against the diff id it
/// was recorded with: a directory that no longer makes those bytes ends
/// the stream with an error, never with other bytes under the same digest.
pub(crate) struct BuiltLayerTar {
    pipe: DigestReader<io::PipeReader>,
    diff_id: Digest,
    writer: Option<std::thread::JoinHandle<io::Result<u64>>>,
}

impl BuiltLayerTar {
    pub(crate) fn open(dir: PathBuf, diff_id: Digest) -> io::Result<BuiltLayerTar> {
        let (reader, mut writer) = io::pipe()?;
        let thread = std::thread::Builder::new()
            .name("layer-tar".into())
            .spawn(move || write_layer(&dir, &mut writer))?;
        Ok(BuiltLayerTar {
            pipe: DigestReader::new(reader),
            diff_id,
            writer: Some(thread),
        })
    }
}

impl io::Read for BuiltLayerTar {
    /// Fills `buf` whole but at the end, as a file's read does: a gzip of
    /// the stream (a push's) is then the same bytes however the pipe's
    /// writes were cut, and so is its digest.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.pipe.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled > 0 || buf.is_empty() {
            return Ok(filled);
        }
        if let Some(writer) = self.writer.take() {
            writer
                .join()
                .map_err(|_| io::Error::other("the layer's tar writer panicked"))??;
            let made = self.pipe.digest();
            if made != self.diff_id {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the files of layer {} no longer make its tar (they give {made}): the layer was changed on disk",
                        self.diff_id
                    ),
                ));
            }
        }
        Ok(0)
    }
}

/// One entry of an overlay upper directory, as [`walk_upper`] meets it.
pub(crate) struct UpperEntry<'a> {
    /// Where it is on the host.
    pub path: &'a Path,
    /// Its path in the layer, relative (`etc/passwd`).
    pub name: &'a Path,
    pub meta: &'a fs::Metadata,
    pub kind: UpperKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpperKind {
    /// A 0/0 character device: the lower entry of its name was deleted.
    Whiteout,
    /// A directory; an opaque one hides every lower entry beneath it.
    Dir { opaque: bool },
    /// Anything else the container wrote.
    Other,
}

/// Whether `meta` is an overlay whiteout.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is marked opaque.
pub(crate) fn is_opaque(path: &Path) -> bool {
    xattr(path, OPAQUE_XATTR).is_some_and(|value| value == b"y")
}

/// Visits every entry below the overlay upper directory `upper`: parents
/// before children, names sorted. What a commit writes and what a diff
/// lists both come from this walk.
pub(crate) fn walk_upper(
    upper: &Path,
    visit: &mut dyn FnMut(&UpperEntry) -> io::Result<()>,
) -> io::Result<()> {
    walk_dir(upper, Path::new(""), visit)
}

fn walk_dir(
    dir: &Path,
    name: &Path,
    visit: &mut dyn FnMut(&UpperEntry) -> io::Result<()>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let entry_name = name.join(entry.file_name());
        let meta = fs::symlink_metadata(&path)?;
        let kind = if is_whiteout(&meta) {
            UpperKind::Whiteout
        } else if meta.is_dir() {
            UpperKind::Dir {
                opaque: is_opaque(&path),
            }
        } else {
            UpperKind::Other
        };
        visit(&UpperEntry {
            path: &path,
            name: &entry_name,
            meta: &meta,
            kind,
        })?;
        if let UpperKind::Dir { .. } = kind {
            walk_dir(&path, &entry_name, visit)?;
        }
    }
    Ok(())
}

/// Writes the overlay upper directory `upper` as a layer tar: parents
/// before children, names sorted, hard links kept as links. Returns the
/// bytes of its regular files (the layer's size as Docker counts it).
pub(crate) fn write_layer(upper: &Path, out: &mut dyn Write) -> io::Result<u64> {
    let mut tar = tar::Builder::new(out);
    let mut links = HashMap::new();
    let mut size = 0;
    walk_upper(upper, &mut |entry| {
        append_entry(&mut tar, entry, &mut links, &mut size)
    })?;
    tar.finish()?;
    Ok(size)
}

fn append_entry(
    tar: &mut tar::Builder<&mut dyn Write>,
    entry: &UpperEntry,
    links: &mut HashMap<(u64, u64), PathBuf>,
    size: &mut u64,
) -> io::Result<()> {
    let (path, entry_name, meta) = (entry.path, entry.name, entry.meta);
    let kind = meta.file_type();
    match entry.kind {
        UpperKind::Whiteout => {
            let mut whiteout = b".wh.".to_vec();
            whiteout.extend_from_slice(entry_name.file_name().unwrap_or_default().as_bytes());
            let whiteout = entry_name.with_file_name(std::ffi::OsStr::from_bytes(&whiteout));
            return append_empty(tar, &whiteout, meta);
        }
        // A socket cannot be archived; Docker's layers leave them out too.
        UpperKind::Other if kind.is_socket() => return Ok(()),
        _ => {}
    }
    append_xattrs(tar, path)?;
    let mut header = header_of(meta);
    if let UpperKind::Dir { opaque } = entry.kind {
        header.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut header, entry_name, io::empty())?;
        if opaque {
            append_empty(tar, &entry_name.join(".wh..wh..opq"), meta)?;
        }
    } else if kind.is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut header, entry_name, fs::read_link(path)?)?;
    } else if kind.is_file() {
        let inode = (meta.dev(), meta.ino());
        if meta.nlink() > 1
            && let Some(first) = links.get(&inode)
        {
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            return tar.append_link(&mut header, entry_name, first);
        }
        if meta.nlink() > 1 {
            links.insert(inode, entry_name.to_owned());
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        *size += meta.len();
        tar.append_data(&mut header, entry_name, fs::File::open(path)?)?;
    } else {
        header.set_entry_type(if kind.is_char_device() {
            tar::EntryType::Char
        } else if kind.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        });
        let rdev = meta.rdev();
        header.set_device_major(rustix::fs::major(rdev))?;
        header.set_device_minor(rustix::fs::minor(rdev))?;
        tar.append_data(&mut header, entry_name, io::empty())?;
    }
    Ok(())
}

/// A header with the owner, mode and time of `meta`.
fn header_of(meta: &fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_size(0);
    header
}

fn append_empty(
    tar: &mut tar::Builder<&mut dyn Write>,
    name: &Path,
    meta: &fs::Metadata,
) -> io::Result<()> {
    let mut header = header_of(meta);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, io::empty())
}

/// The kept extended attributes of `path`, as the PAX records that come
/// before its entry.
fn append_xattrs(tar: &mut tar::Builder<&mut dyn Write>, path: &Path) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let length = match rustix::fs::llistxattr(path, &mut names) {
        Ok(length) => length,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let mut records = Vec::new();
    for name in names[..length].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !KEPT_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if let Some(value) = xattr(path, &name) {
            records.push((format!("SCHILY.xattr.{name}"), value));
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    tar.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

pub(crate) fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 4096];
    let length = rustix::fs::lgetxattr(path, name, &mut value).ok()?;
    value.truncate(length);
    Some(value)
}
