//! Container snapshots: the image's layers, read-only, under a private
//! upper directory, combined by overlayfs. Removing a snapshot removes its
//! upper directory and nothing of the image.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, unmount,
};
use serde::{Deserialize, Serialize};

use crate::content::write_atomically;
use crate::digest::Digest;
use crate::error::{Context, Error, Result};

const RECORD: &str = "snapshot.json";

/// A container's read/write layer over an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The container id the snapshot belongs to.
    pub id: String,
    /// The image it was made from.
    pub image: Digest,
    /// The image's layers, bottom first, by chain id.
    pub layers: Vec<Digest>,
    /// The snapshot's directory: `upper`, `work` and the `merged` mount.
    pub dir: PathBuf,
}

impl Snapshot {
    /// Where the container's root filesystem appears once mounted.
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// The container's own changes: what it wrote, and whiteouts for what
    /// it deleted.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    pub(crate) fn create(
        root: &Path,
        id: &str,
        image: &Digest,
        layers: Vec<Digest>,
        durable: bool,
    ) -> Result<Self> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(Error::Io {
                what: format!("invalid snapshot id {id:?}"),
                source: io::ErrorKind::InvalidInput.into(),
            });
        }
        let dir = root.join(id);
        let snapshot = Self {
            id: id.to_owned(),
            image: image.clone(),
            layers,
            dir,
        };
        match fs::create_dir(&snapshot.dir) {
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::SnapshotExists(id.to_owned()));
            }
            result => result.context(|| format!("cannot create {}", snapshot.dir.display()))?,
        }
        let made = (|| {
            for sub in [snapshot.upper(), snapshot.work(), snapshot.merged()] {
                fs::create_dir(&sub).context(|| format!("cannot create {}", sub.display()))?;
            }
            let record = snapshot.dir.join(RECORD);
            let bytes = crate::content::encode_record(&snapshot);
            match durable {
                true => write_atomically(&record, &bytes),
                false => keel_durable::replace(&record, &bytes)
                    .context(|| format!("cannot write {}", record.display())),
            }
        })();
        if let Err(error) = made {
            fs::remove_dir_all(&snapshot.dir).ok();
            return Err(error);
        }
        Ok(snapshot)
    }

    pub(crate) fn load(root: &Path, id: &str) -> Result<Self> {
        let path = root.join(id).join(RECORD);
        let bytes = match fs::read(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoSuchSnapshot(id.to_owned()));
            }
            result => result.context(|| format!("cannot read {}", path.display()))?,
        };
        crate::content::decode_record(&path, &bytes)
    }

    /// Mounts the overlay at `merged()`, lower directories topmost first.
    /// Each lower directory is its own `lowerdir+` parameter of the new
    /// mount API, so a tall stack is not bound by the one-page limit of
    /// mount(2)'s option string.
    pub fn mount(&self, lower_dirs: &[PathBuf]) -> Result<()> {
        let what = || format!("cannot mount the overlay of snapshot {}", self.id);
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).context(what)?;
        let upper = self.upper();
        let work = self.work();
        let mut params: Vec<(&str, &Path)> = Vec::new();
        if lower_dirs.is_empty() {
            // An image with no layers: an empty read-only lower layer.
            params.push(("lowerdir+", self.dir.as_path()));
        }
        params.extend(
            lower_dirs
                .iter()
                .rev()
                .map(|dir| ("lowerdir+", dir.as_path())),
        );
        params.push(("upperdir", &upper));
        params.push(("workdir", &work));
        for (key, value) in params {
            fsconfig_set_string(&fs, key, value)
                .context(|| format!("{}: {key}={}", what(), value.display()))?;
        }
        // Docker's overlay2 options: no index (layers are shared), and
        // redirect_dir off so a renamed directory is copied up whole.
        for (key, value) in [("index", "off"), ("redirect_dir", "off")] {
            fsconfig_set_string(&fs, key, value).ok();
        }
        fsconfig_create(&fs).context(what)?;
        let mount =
            fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).context(what)?;
        move_mount(
            mount.as_fd(),
            "",
            CWD,
            self.merged(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .context(what)?;
        Ok(())
    }

    pub fn is_mounted(&self) -> bool {
        let merged = self.merged();
        let (Ok(inner), Ok(outer)) = (rustix::fs::stat(&merged), rustix::fs::stat(&self.dir))
        else {
            return false;
        };
        inner.st_dev != outer.st_dev
    }

    pub fn unmount(&self) -> Result<()> {
        while self.is_mounted() {
            match unmount(self.merged(), UnmountFlags::DETACH) {
                // Unmounted by another thread since we looked (a container's
                // exit and its removal may race).
                Ok(()) => {}
                Err(rustix::io::Errno::INVAL) if !self.is_mounted() => {}
                Err(error) => {
                    return Err(error).context(|| format!("cannot unmount snapshot {}", self.id));
                }
            }
        }
        Ok(())
    }

    /// Unmounts and deletes the snapshot's own directories.
    pub(crate) fn remove(&self) -> Result<()> {
        self.unmount()?;
        let doomed = self.dir.with_file_name(format!("{REMOVING}{}", self.id));
        fs::rename(&self.dir, &doomed).context(|| format!("cannot remove snapshot {}", self.id))?;
        fs::remove_dir_all(&doomed).context(|| format!("cannot remove {}", doomed.display()))
    }
}

/// Snapshot ids in `root`.
/// What a snapshot's directory is renamed to start with as it is removed.
const REMOVING: &str = ".removing-";

pub(crate) fn list(root: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(root).context(|| format!("cannot list {}", root.display()))?;
    // A snapshot being removed is renamed away first: it is no one's.
    Ok(entries
        .flatten()
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry))
        .filter(|(name, entry)| !name.starts_with(REMOVING) && entry.path().join(RECORD).exists())
        .map(|(name, _)| name)
        .collect())
}

/// Removes what a crash left: snapshots mid-removal, and directories made
/// but never recorded. Only safe while nothing else uses the store.
pub(crate) fn recover(root: &Path) -> Result<()> {
    let entries = fs::read_dir(root).context(|| format!("cannot list {}", root.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // No record, or an empty one: made, but not synced, before a crash
        // of the machine.
        let recorded = fs::metadata(entry.path().join(RECORD)).is_ok_and(|m| m.len() > 0);
        if name.starts_with(REMOVING) || !recorded {
            unmount(entry.path().join("merged"), UnmountFlags::DETACH).ok();
            fs::remove_dir_all(entry.path())
                .context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}
