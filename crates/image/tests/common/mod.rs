//! Helpers for the image store's tests: a store in a directory of its own,
//! layer tarballs and image archives built in memory, and a way to run a
//! command in a mounted root filesystem.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use keel_image::{Digest, Loaded, Store};
use serde_json::json;
use tempfile::TempDir;

/// A store under a temporary root; unmounts its snapshots when dropped.
pub struct TestStore {
    pub store: Store,
    dir: TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::Builder::new()
            .prefix("keel-image-")
            .tempdir()
            .unwrap();
        TestStore {
            store: Store::open(&dir.path().join("root")).unwrap(),
            dir,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch directory beside the store.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self, archive: &[u8]) -> Vec<Loaded> {
        self.store.load(archive, "test archive").unwrap()
    }

    /// Names of entries in a directory of the store (`layers`, `blobs/sha256`,
    /// `images`, `ingest`, `snapshots`).
    pub fn entries(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root().join(sub))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Fails the test if the store holds any image, layer or blob, or any
    /// half-made file.
    pub fn assert_empty(&self) {
        for sub in ["layers", "blobs/sha256", "images", "ingest", "snapshots"] {
            assert_eq!(
                self.entries(sub),
                Vec::<String>::new(),
                "{sub} should be empty"
            );
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        keel_testkit::podman::unmount_below(self.dir.path());
    }
}

/// Builds a layer tarball in memory, entry by entry.
pub struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// An entry with any name, `../` and absolute ones included, which the
    /// tar crate's safe setters refuse to write.
    pub fn raw(
        self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> LayerTar {
        self.entry(kind, name, link, data, |_| {})
    }

    /// An entry whose header `edit` adjusts (owner, mode, device numbers).
    pub fn entry(
        mut self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
        edit: impl FnOnce(&mut tar::Header),
    ) -> LayerTar {
        let mut header = tar::Header::new_ustar();
        header.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        edit(&mut header);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    /// PAX extended attributes for the next entry.
    pub fn xattr(mut self, name: &str, value: &[u8]) -> LayerTar {
        let key = format!("SCHILY.xattr.{name}");
        self.builder
            .append_pax_extensions([(key.as_str(), value)])
            .unwrap();
        self
    }

    pub fn dir(self, name: &str) -> LayerTar {
        self.raw(tar::EntryType::Directory, name, None, b"")
    }

    pub fn file(self, name: &str, content: &[u8]) -> LayerTar {
        self.raw(tar::EntryType::Regular, name, None, content)
    }

    pub fn symlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Symlink, name, Some(target), b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Link, name, Some(target), b"")
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

/// The busybox root filesystem as one uncompressed layer.
pub fn busybox_layer() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busybox.tar");
    keel_testkit::busybox_rootfs_tar(&path).unwrap();
    fs::read(path).unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An image config for uncompressed `layers` (their digests are the diff
/// ids), `created` at a fixed time plus `age_rank` seconds.
pub fn config(layers: &[&[u8]], age_rank: u64) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|layer| Digest::of(layer).to_string())
        .collect();
    serde_json::to_vec(&json!({
        "architecture": keel_image::go_arch(),
        "os": "linux",
        "created": format!("2026-01-01T00:00:{:02}Z", age_rank % 60),
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// One image of a docker-archive: its layer blobs (as stored in the
/// archive), its config, its tags.
pub struct ArchiveImage<'a> {
    pub blobs: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub tags: &'a [&'a str],
}

/// A docker-archive as `docker save` (up to Docker 24) writes it.
pub fn docker_archive(images: &[ArchiveImage<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for image in images {
        let config_name = format!("{}.json", Digest::of(&image.config).hex());
        append(&mut builder, &config_name, &image.config);
        let mut layers = Vec::new();
        for blob in &image.blobs {
            let name = format!("{}/layer.tar", Digest::of(blob).hex());
            append(&mut builder, &name, blob);
            layers.push(name);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": image.tags, "Layers": layers}));
    }
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// A one-image docker-archive of uncompressed layers.
pub fn archive_of(layers: &[&[u8]], tags: &[&str]) -> Vec<u8> {
    docker_archive(&[ArchiveImage {
        blobs: layers.iter().map(|layer| layer.to_vec()).collect(),
        config: config(layers, 0),
        tags,
    }])
}

pub fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).unwrap();
}

/// Runs a shell script chrooted in `root` (a mounted snapshot): proves the
/// image's filesystem works. Returns stdout; fails the test on failure.
pub fn run_in(root: &Path, script: &str) -> String {
    let out = Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .env_clear()
        .env("PATH", "/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A digest over every name, type, mode, owner, size, mtime and byte of
/// content under `dir`: equal digests mean identical trees.
pub fn tree_digest(dir: &Path) -> Digest {
    use std::os::unix::fs::MetadataExt;
    let mut listing = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let relative = path.strip_prefix(dir).unwrap().display().to_string();
        let mut line = format!(
            "{relative} {:o} {}:{} {} {} {}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.mtime(),
            meta.rdev()
        );
        if meta.is_file() {
            line.push_str(&format!(" {}", Digest::of(&fs::read(&path).unwrap())));
        } else if meta.is_symlink() {
            line.push_str(&format!(" -> {}", fs::read_link(&path).unwrap().display()));
        } else if meta.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
        listing.push(line);
    }
    listing.sort();
    Digest::of(listing.join("\n").as_bytes())
}
