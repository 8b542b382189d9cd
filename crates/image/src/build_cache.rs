//! What builds leave for the next build: for each step that made a layer
//! (a RUN, a COPY), a record under its cache key (a hash the builder
//! makes of the step and everything it depends on) naming the layers the
//! step's result stands on. The records keep their layers and blobs from
//! garbage collection until `builder prune` removes them.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::commit::{EMPTY_LAYER, layer_digest};
use crate::content::write_atomically;
use crate::digest::{Digest, chain_ids};
use crate::error::{Context, Result};
use crate::layers::Layer;
use crate::snapshot::Snapshot;
use crate::store::{DOCKER_LAYER, LayerBlob, NewLayer, Store};

/// A step's result, found again by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedStep {
    /// The layers of the state after the step, bottom first.
    pub layers: Vec<LayerBlob>,
    /// Whether the step added a layer (else it changed nothing on disk).
    pub added: bool,
    /// When the step ran (RFC 3339): its history entry's time.
    pub created: String,
}

/// One record of the build cache, as `system df` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUsage {
    pub id: String,
    /// BuildKit's record types: `regular` (a step's layer) or
    /// `exec.cachemount` (a RUN cache mount).
    pub kind: &'static str,
    pub size: u64,
    /// Its layer is an image's too (removing the record frees nothing).
    pub shared: bool,
    /// RFC 3339.
    pub created: String,
}

/// Where checksums of layers' files are kept, under the cache.
const SUMS: &str = "sums";
/// Where the notes that explain cache misses are kept, under the cache.
const NOTES: &str = "notes";
/// Where RUN's cache mounts are kept, under the cache.
const MOUNTS: &str = "mounts";

impl Store {
    fn cache_dir(&self) -> PathBuf {
        self.root().join("build-cache")
    }

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.cache_dir().join(format!("{}.json", key.hex()))
    }

    /// The step cached under `key`, if its layers are all still here.
    pub fn cached_step(&self, key: &Digest) -> Result<Option<CachedStep>> {
        let path = self.cache_path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).context(|| format!("cannot read {}", path.display())),
        };
        let step: CachedStep = crate::content::decode_record(&path, &bytes)?;
        let diff_ids: Vec<Digest> = step.layers.iter().map(|l| l.diff_id.clone()).collect();
        for chain_id in chain_ids(&diff_ids) {
            if self.layers().get(&chain_id)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(step))
    }

    /// What is kept under `key` in the cache's directory `kind`.
    fn kept(&self, kind: &str, key: &Digest) -> Result<Option<Vec<u8>>> {
        let path = self.cache_dir().join(kind).join(key.hex());
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Keeps `bytes` under `key` in `kind`: whole or not at all, but not
    /// synced, since a crash that loses it only costs it being made again.
    fn keep(&self, kind: &str, key: &Digest, bytes: &[u8]) -> Result<()> {
        let dir = self.cache_dir().join(kind);
        fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(key.hex());
        keel_durable::replace(&path, bytes).context(|| format!("cannot write {}", path.display()))
    }

    /// The checksum kept under `key` by [`Store::cache_sum`], if any.
    pub fn cached_sum(&self, key: &Digest) -> Result<Option<String>> {
        Ok(self
            .kept(SUMS, key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Keeps `sum`, the checksum of files that `key` fixes (the files a
    /// COPY selects from a stage's layers), for the next build.
    pub fn cache_sum(&self, key: &Digest, sum: &str) -> Result<()> {
        self.keep(SUMS, key, sum.as_bytes())
    }

    /// The note kept under `key` by [`Store::cache_note`], if any.
    pub fn cached_note(&self, key: &Digest) -> Result<Option<Vec<u8>>> {
        self.kept(NOTES, key)
    }

    /// Keeps a note of what a step was made of (or which image a base
    /// name meant), so that the next build can explain a cache miss.
    pub fn cache_note(&self, key: &Digest, note: &[u8]) -> Result<()> {
        self.keep(NOTES, key, note)
    }

    /// The directory of the cache mount `id` (made, owned by `uid`:`gid`
    /// with `mode`, the first time), and its lock file, opened.
    pub fn cache_mount(&self, id: &str, mode: u32, uid: u32, gid: u32) -> Result<(PathBuf, File)> {
        let mounts = self.cache_dir().join(MOUNTS);
        let name = Digest::of(id.as_bytes()).hex().to_owned();
        let dir = mounts.join(&name);
        if !dir.exists() {
            fs::create_dir_all(&mounts)
                .context(|| format!("cannot create {}", mounts.display()))?;
            let made = self.scratch_dir(mode, uid, gid)?;
            // Another step may have made it meanwhile; its copy serves.
            if let Err(error) = rustix::fs::renameat_with(
                rustix::fs::CWD,
                made.path(),
                rustix::fs::CWD,
                &dir,
                rustix::fs::RenameFlags::NOREPLACE,
            ) && !dir.is_dir()
            {
                return Err(io::Error::from(error))
                    .context(|| format!("cannot make the cache mount {id}"));
            }
        }
        let lock_path = mounts.join(format!("{name}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .context(|| format!("cannot open {}", lock_path.display()))?;
        Ok((dir, lock))
    }

    /// Removes the step directories ([`Store::scratch_dir`]) a crash of
    /// the daemon left, unmounting what is mounted on them (a secret's
    /// tmpfs).
    pub fn remove_scratch_dirs(&self) -> Result<()> {
        let mounts = self.cache_dir().join(MOUNTS);
        let Ok(entries) = fs::read_dir(&mounts) else {
            return Ok(());
        };
        for entry in entries.filter_map(|entry| entry.ok()) {
            if entry.file_name().to_string_lossy().starts_with("new-") {
                let path = entry.path();
                rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH).ok();
                fs::remove_dir_all(&path)
                    .context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// A directory of one step's own (a private cache mount, a bind
    /// mount's copy, a secret's tmpfs), gone when dropped.
    pub fn scratch_dir(&self, mode: u32, uid: u32, gid: u32) -> Result<tempfile::TempDir> {
        let mounts = self.cache_dir().join(MOUNTS);
        fs::create_dir_all(&mounts).context(|| format!("cannot create {}", mounts.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("new-")
            .tempdir_in(&mounts)
            .context(|| format!("cannot make a directory in {}", mounts.display()))?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .and_then(|()| fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)))
            .context(|| format!("cannot set the owner and mode of {}", dir.path().display()))?;
        Ok(dir)
    }

    /// A snapshot for one build step over `layers` (of the image `base`,
    /// or none), not synced: a crash ends the build anyway.
    pub fn create_step_snapshot(
        &self,
        id: &str,
        base: &Digest,
        layers: &[LayerBlob],
    ) -> Result<Snapshot> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        Snapshot::create(&self.snapshots_dir(), id, base, chain_ids(&diff_ids), false)
    }

    /// Makes the changes of step snapshot `id` a layer on top of
    /// `layers` (taking the snapshot's upper directory: the snapshot is
    /// spent), and records the result under `key`, made at `created`.
    /// Returns it.
    pub fn cache_step(
        &self,
        id: &str,
        layers: &[LayerBlob],
        key: &Digest,
        created: &str,
        clamp_times: Option<i64>,
    ) -> Result<CachedStep> {
        let snapshot = self.snapshot(id)?;
        let _adding = self.adding();
        // Its changes are read (and changed) with no overlay on them.
        snapshot.unmount()?;
        if let Some(epoch) = clamp_times {
            crate::commit::clamp_times(&snapshot.upper(), epoch)
                .context(|| format!("cannot set the times of step {id}'s files"))?;
        }
        // The tar is only hashed: the upper directory becomes the layer,
        // and its tar is made again if a push or save needs it.
        let (diff_id, tar_size, size) = layer_digest(&snapshot.upper())
            .context(|| format!("cannot read the changes of step {id}"))?;
        let mut layers = layers.to_vec();
        let added = diff_id.as_str() != EMPTY_LAYER;
        if added {
            let mut diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
            diff_ids.push(diff_id.clone());
            let chain = chain_ids(&diff_ids);
            // The upper directory is already the layer, in overlayfs' own
            // format: it moves into the layers rather than be unpacked
            // again from the tar just made of it.
            self.layers().adopt(
                &snapshot.upper(),
                Layer {
                    chain_id: chain[chain.len() - 1].clone(),
                    diff_id: diff_id.clone(),
                    parent: chain
                        .len()
                        .checked_sub(2)
                        .map(|parent| chain[parent].clone()),
                    size,
                    tar_size,
                },
            )?;
            layers.push(LayerBlob {
                digest: diff_id.clone(),
                diff_id,
                media_type: DOCKER_LAYER.to_owned(),
            });
        }
        let step = CachedStep {
            layers,
            added,
            created: created.to_owned(),
        };
        fs::create_dir_all(self.cache_dir())
            .context(|| format!("cannot create {}", self.cache_dir().display()))?;
        write_atomically(&self.cache_path(key), &crate::content::encode_record(&step))?;
        Ok(step)
    }

    /// Records a built image whose layers are all in the store already
    /// (each a cached step's, or its base image's). Returns its id.
    pub fn add_built_image(&self, config: &[u8], layers: &[LayerBlob]) -> Result<Digest> {
        let _adding = self.adding();
        let new: Vec<NewLayer> = layers
            .iter()
            .map(|blob| NewLayer {
                verified: blob.digest == blob.diff_id,
                blob: blob.clone(),
            })
            .collect();
        self.add_image(config, &new, &Cancel::default())
    }

    /// The layers each cached step keeps, one chain per step.
    pub(crate) fn cache_in_use(&self) -> Result<Vec<Vec<LayerBlob>>> {
        let mut chains = Vec::new();
        for path in self.cache_records()? {
            let bytes = fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
            let step: CachedStep = crate::content::decode_record(&path, &bytes)?;
            chains.push(step.layers);
        }
        Ok(chains)
    }

    fn cache_records(&self) -> Result<Vec<PathBuf>> {
        let dir = self.cache_dir();
        match fs::read_dir(&dir) {
            Ok(entries) => Ok(entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "json"))
                .collect()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error).context(|| format!("cannot list {}", dir.display())),
        }
    }

    /// What the build cache holds, as `system df` counts it: each cached
    /// step (the size of the layer it added, once per layer; shared when
    /// an image has that layer too) and each RUN cache mount.
    pub fn build_cache_usage(&self) -> Result<Vec<CacheUsage>> {
        let in_images: std::collections::BTreeSet<Digest> = self
            .images()?
            .into_iter()
            .flat_map(|image| image.chain_ids)
            .collect();
        let mut counted = std::collections::BTreeSet::new();
        let mut usage = Vec::new();
        for path in self.cache_records()? {
            let bytes = fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
            let step: CachedStep = crate::content::decode_record(&path, &bytes)?;
            let diff_ids: Vec<Digest> = step.layers.iter().map(|l| l.diff_id.clone()).collect();
            let top = chain_ids(&diff_ids).pop().filter(|_| step.added);
            let size = match &top {
                Some(chain_id) if counted.insert(chain_id.clone()) => {
                    self.layers().get(chain_id)?.map_or(0, |layer| layer.size)
                }
                _ => 0,
            };
            usage.push(CacheUsage {
                id: path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kind: "regular",
                size,
                shared: top.is_some_and(|chain_id| in_images.contains(&chain_id)),
                created: step.created,
            });
        }
        let mounts = self.cache_dir().join(MOUNTS);
        if let Ok(entries) = fs::read_dir(&mounts) {
            for entry in entries.filter_map(|entry| entry.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !entry.path().is_dir() || name.starts_with("new-") {
                    continue;
                }
                let created = entry
                    .metadata()
                    .ok()
                    .and_then(|meta| meta.modified().ok())
                    .map(keel_time::rfc3339)
                    .unwrap_or_default();
                usage.push(CacheUsage {
                    size: tree_size(&entry.path()),
                    id: name,
                    kind: "exec.cachemount",
                    shared: false,
                    created,
                });
            }
        }
        Ok(usage)
    }

    /// Forgets every cached step and removes what only the cache kept;
    /// returns the bytes freed.
    pub fn prune_build_cache(&self) -> Result<u64> {
        for path in self.cache_records()? {
            fs::remove_file(&path).context(|| format!("cannot remove {}", path.display()))?;
        }
        let mut freed = 0;
        for kept in [SUMS, NOTES, MOUNTS] {
            let dir = self.cache_dir().join(kept);
            freed += tree_size(&dir);
            match fs::remove_dir_all(&dir) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(error).context(|| format!("cannot remove {}", dir.display()));
                }
                _ => {}
            }
        }
        Ok(freed + self.collect_garbage()?.bytes)
    }
}

/// The bytes of the regular files under `path` (none if it is not there).
fn tree_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(tree_size(&entry.ok()?.path())))
                .sum()
        })
        .unwrap_or(0)
}
