//! Helpers for the image store's tests: a store in a directory of its own,
//! layer tarballs and image archives built in memory, and a way to run a
//! command in a mounted root filesystem.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use keel_image::{Digest, Loaded, Store};
use tempfile::TempDir;

/// A store under a temporary root; unmounts its snapshots when dropped.
pub struct TestStore {
    pub store: Store,
    root: PathBuf,
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
            root: dir.path().join("root"),
            dir,
        }
    }

    /// A store on a tmpfs of `size_mib` of its own, leaving `reserve`
    /// free when it unpacks.
    pub fn on_tmpfs(size_mib: u64, reserve: keel_image::DiskReserve) -> TestStore {
        let dir = tempfile::Builder::new()
            .prefix("keel-image-")
            .tempdir()
            .unwrap();
        let fs = dir.path().join("fs");
        fs::create_dir(&fs).unwrap();
        rustix::mount::mount(
            "tmpfs",
            &fs,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            Some(
                std::ffi::CString::new(format!("size={size_mib}m"))
                    .unwrap()
                    .as_c_str(),
            ),
        )
        .unwrap();
        let root = fs.join("root");
        TestStore {
            store: Store::open(&root).unwrap().with_disk_reserve(reserve),
            root,
            dir,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.root.clone()
    }

    /// A scratch directory beside the store.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self, archive: &[u8]) -> Vec<Loaded> {
        self.store
            .load(archive, "test archive", &keel_image::Cancel::default())
            .unwrap()
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

pub use keel_testkit::archive::*;

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
