//! The store under one root: blobs, layers, image records, references and
//! container snapshots, and the rules that tie them (an image keeps its
//! blobs and layers; a snapshot keeps its layers; nothing else is kept).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::commit::BuiltLayerTar;
use crate::content::{ContentStore, write_atomically};
use crate::digest::{Digest, chain_ids};
use crate::error::{Context, Error, Result};
use crate::layers::{Layer, LayerSource, LayerStore};
use crate::reference::Reference;
use crate::snapshot::{self, Snapshot};
use crate::unpack::DiskReserve;

/// Media type of an uncompressed layer as `docker save` and podman write it.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// One layer of an image as stored: its blob and what it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    pub media_type: String,
}

/// What the store records of an image; the rest is in its config blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub id: Digest,
    pub layers: Vec<LayerBlob>,
}

/// An image as the commands show it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config's digest, which is the image id.
    pub id: Digest,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerBlob>,
    /// The layers' chain ids, bottom first.
    pub chain_ids: Vec<Digest>,
    /// Bytes of file content over all layers, as `docker images` counts.
    pub size: u64,
    /// Tag references, sorted.
    pub tags: Vec<Reference>,
    /// Digest references (`name@sha256:…`), sorted.
    pub digests: Vec<Reference>,
}

impl Image {
    /// The image's labels (its config's `Labels`).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
}

/// One step of an image's history, as `docker history` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStep {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// Bytes the step's layer adds; 0 for steps that made no layer.
    pub size: u64,
}

/// What the images take on disk, as `docker system df` shows it.
#[derive(Debug, Default)]
pub struct DiskUsage {
    /// Bytes of all layers, each counted once.
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
}

#[derive(Debug)]
pub struct ImageUsage {
    pub image: Image,
    /// Bytes of this image's layers that other images also have.
    pub shared_size: u64,
    /// Containers (snapshots) made from it.
    pub containers: usize,
}

/// One step of an image removal, as Docker's API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A reference, in Docker's short form.
    Untagged(String),
    /// An image id or a layer's chain id.
    Deleted(Digest),
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removals: Vec<Removal>,
    pub reclaimed: u64,
}

/// A layer about to be added with an image: its blob is already stored.
#[derive(Debug, Clone)]
pub(crate) struct NewLayer {
    pub blob: LayerBlob,
    /// The blob is the uncompressed tar and its digest was checked as it
    /// was stored, so its digest is the diff id and needs no second hash.
    pub verified: bool,
}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// Held for the store's life: one process owns a root, as one dockerd
    /// owns /var/lib/docker.
    _lock: File,
    content: ContentStore,
    layers: LayerStore,
    images: PathBuf,
    /// One marker per image recorded before its files were known to be on
    /// disk, naming the boot it was recorded in (see [`Store::record_pending`]).
    pending: PathBuf,
    snapshots: PathBuf,
    refs: Mutex<BTreeMap<Reference, Digest>>,
    /// Shared while content is being added that no image references yet;
    /// exclusive while collecting garbage, which would otherwise take it.
    adding: RwLock<()>,
}

impl Store {
    /// Opens (creating) the store at `root` and removes what an earlier
    /// crash left half-made.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).context(|| format!("cannot create {}", root.display()))?;
        let lock_path = root.join("lock");
        let lock = File::create(&lock_path)
            .context(|| format!("cannot create {}", lock_path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| Error::StoreBusy {
                root: root.to_owned(),
            },
        )?;
        let images = root.join("images");
        let pending = root.join("pending");
        let snapshots = root.join("snapshots");
        for dir in [&images, &pending, &snapshots] {
            fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        snapshot::recover(&snapshots)?;
        for dir in [root, images.as_path(), pending.as_path()] {
            keel_durable::remove_leftovers(dir)
                .context(|| format!("cannot clean {}", dir.display()))?;
        }
        let refs_path = root.join("refs.json");
        let refs: BTreeMap<String, Digest> = match fs::read(&refs_path) {
            Ok(bytes) => crate::content::decode_record(&refs_path, &bytes)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(error).context(|| format!("cannot read {}", refs_path.display()));
            }
        };
        let refs = refs
            .into_iter()
            .filter_map(|(name, id)| Some((Reference::parse(&name).ok()?, id)))
            .collect();
        let store = Self {
            root: root.to_owned(),
            _lock: lock,
            content: ContentStore::open(root)?,
            layers: LayerStore::open(root)?,
            images,
            pending,
            snapshots,
            refs: Mutex::new(refs),
            adding: RwLock::new(()),
        };
        store.settle_pending()?;
        // What a crash left unrecorded (blobs and layers of a load that did
        // not finish, possibly not durable) goes; a new load writes it anew.
        store.collect_garbage()?;
        Ok(store)
    }

    /// Leaves `reserve` free on the store's disk when unpacking layers
    /// (by default 1 GiB or 5% of it, whichever is larger).
    pub fn with_disk_reserve(mut self, reserve: DiskReserve) -> Self {
        self.layers.reserve = reserve;
        self
    }

    /// What unpacking leaves free on the store's disk.
    pub fn disk_reserve(&self) -> DiskReserve {
        self.layers.reserve
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// Keeps garbage collection away while new content is not yet
    /// referenced by an image.
    pub(crate) fn adding(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.adding
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `add`, which adds content no image references until it ends,
    /// away from garbage collection; what a failed `add` left goes.
    pub(crate) fn adding_whole<T>(&self, add: impl FnOnce() -> Result<T>) -> Result<T> {
        let guard = self.adding();
        let result = add();
        drop(guard);
        if result.is_err() {
            self.collect_garbage()?;
        }
        result
    }

    fn lock_refs(&self) -> MutexGuard<'_, BTreeMap<Reference, Digest>> {
        self.refs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn save_refs(&self, refs: &BTreeMap<Reference, Digest>) -> Result<()> {
        let plain: BTreeMap<String, &Digest> = refs
            .iter()
            .map(|(name, id)| (name.to_string(), id))
            .collect();
        write_atomically(
            &self.root.join("refs.json"),
            &crate::content::encode_record(&plain),
        )
    }

    /// Records an image whose config and layer blobs are stored, unpacking
    /// its layers (several at once) first. The image appears only once
    /// every layer is whole, and is sent to the disk after it appears (see
    /// [`Store::record_pending`]).
    pub(crate) fn add_image(
        &self,
        config: &[u8],
        layers: &[NewLayer],
        cancel: &Cancel,
    ) -> Result<Digest> {
        let id = self.content.write_bytes(config, "image config")?;
        let parsed = parse_config(config)?;
        let diff_ids = parsed
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect::<Result<Vec<Digest>>>()?;
        let given: Vec<&Digest> = layers.iter().map(|layer| &layer.blob.diff_id).collect();
        if diff_ids.iter().collect::<Vec<_>>() != given {
            return Err(Error::BadConfig(format!(
                "image {id} lists {} layers in rootfs.diff_ids but {} were given, or in another order",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chain = chain_ids(&diff_ids);
        self.unpack_all(layers, &chain, cancel)?;
        self.record_pending(&ImageRecord {
            id: id.clone(),
            layers: layers.iter().map(|layer| layer.blob.clone()).collect(),
        })?;
        Ok(id)
    }

    /// Records an image at once and sends its files to the disk behind it:
    /// a pull or load does not wait the fraction of a second that flushing
    /// its hundreds of megabytes takes. A marker naming this boot is made
    /// durable before the record, and goes once a syncfs has covered the
    /// image; a store opened after the machine restarted removes an image
    /// still marked, whose files may have been lost (see
    /// [`Store::settle_pending`]). So a recorded image is whole even after
    /// a power cut, as with a sync before the record; only the newest
    /// images may be gone.
    fn record_pending(&self, record: &ImageRecord) -> Result<()> {
        let marker = self.pending.join(record.id.hex());
        write_atomically(&marker, boot_id().as_bytes())?;
        write_atomically(
            &self.images.join(format!("{}.json", record.id.hex())),
            &crate::content::encode_record(record),
        )?;
        let root = self.root.clone();
        std::thread::spawn(move || flush_pending(&root, &marker));
        Ok(())
    }

    /// The blob of layer `blob` (the layer `chain_id` of its image) to
    /// read: the stored one, or for a built layer, whose tar is not kept
    /// (its directory is the layer), the tar made again from it.
    pub(crate) fn open_layer_blob(
        &self,
        blob: &LayerBlob,
        chain_id: &Digest,
    ) -> Result<Box<dyn io::Read + Send>> {
        if blob.digest != blob.diff_id || self.content.contains(&blob.digest) {
            return Ok(Box::new(self.content.open_blob(&blob.digest)?));
        }
        if self.layers.get(chain_id)?.is_none() {
            return Err(Error::NoSuchImage(format!(
                "layer {chain_id} (diff id {})",
                blob.diff_id
            )));
        }
        Ok(Box::new(
            BuiltLayerTar::open(self.layers.diff_dir(chain_id), blob.diff_id.clone())
                .context(|| format!("cannot read layer {}", blob.diff_id))?,
        ))
    }

    /// Settles the images marked pending when the store opens: if the
    /// machine has not restarted since they were recorded their files are
    /// still in memory or on disk, and one syncfs makes them durable;
    /// recorded in an earlier boot, they may have lost files, and are
    /// removed with their references (garbage collection then takes their
    /// layers and blobs).
    fn settle_pending(&self) -> Result<()> {
        let markers: Vec<PathBuf> = fs::read_dir(&self.pending)
            .context(|| format!("cannot list {}", self.pending.display()))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<io::Result<_>>()
            .context(|| format!("cannot list {}", self.pending.display()))?;
        if markers.is_empty() {
            return Ok(());
        }
        let boot = boot_id();
        let (this_boot, earlier): (Vec<&PathBuf>, Vec<&PathBuf>) = markers
            .iter()
            .partition(|marker| fs::read_to_string(marker).is_ok_and(|b| b == boot));
        if !this_boot.is_empty() {
            sync_store(&self.root)?;
        }
        if !earlier.is_empty() {
            let mut refs = self.lock_refs();
            for marker in &earlier {
                let Some(id) = marker
                    .file_name()
                    .and_then(|name| Digest::from_hex(&name.to_string_lossy()).ok())
                else {
                    continue;
                };
                refs.retain(|_, target| *target != id);
                match self.delete_record(&id) {
                    Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                    result => result?,
                }
            }
            self.save_refs(&refs)?;
        }
        for marker in markers {
            fs::remove_file(&marker).context(|| format!("cannot remove {}", marker.display()))?;
        }
        Ok(())
    }

    /// Writes an image record once everything it names is durable: one
    /// flush of the whole store covers the config, the blobs and every
    /// layer, far cheaper than a sync per file or per blob.
    pub(crate) fn write_record(&self, record: &ImageRecord) -> Result<()> {
        sync_store(&self.root)?;
        write_atomically(
            &self.images.join(format!("{}.json", record.id.hex())),
            &crate::content::encode_record(record),
        )
    }

    /// Unpacks the layers not yet on disk, as many at once as there are
    /// CPUs: each goes to its own directory, so they need no ordering.
    fn unpack_all(&self, layers: &[NewLayer], chain: &[Digest], cancel: &Cancel) -> Result<()> {
        let next = AtomicUsize::new(0);
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(layers.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= layers.len() || failure.lock().is_ok_and(|f| f.is_some()) {
                            break;
                        }
                        let layer = &layers[index];
                        let blob = self.content.path(&layer.blob.digest);
                        let source = LayerSource {
                            chain_id: &chain[index],
                            parent: index.checked_sub(1).map(|parent| &chain[parent]),
                            diff_id: &layer.blob.diff_id,
                            blob: &blob,
                            verified: layer.verified,
                            cancel,
                        };
                        if let Err(error) = self.layers.unpack(&source)
                            && let Ok(mut failure) = failure.lock()
                        {
                            failure.get_or_insert(error);
                        }
                    }
                });
            }
        });
        match failure
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub(crate) fn record(&self, id: &Digest) -> Result<ImageRecord> {
        let path = self.images.join(format!("{}.json", id.hex()));
        let bytes = match fs::read(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoSuchImage(id.to_string()));
            }
            result => result.context(|| format!("cannot read {}", path.display()))?,
        };
        crate::content::decode_record(&path, &bytes)
    }

    fn image_ids(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.images)
            .context(|| format!("cannot list {}", self.images.display()))?;
        Ok(entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                Digest::from_hex(name.to_string_lossy().strip_suffix(".json")?).ok()
            })
            .collect())
    }

    /// The image with this id.
    pub fn image(&self, id: &Digest) -> Result<Image> {
        let record = self.record(id)?;
        let refs = self.lock_refs();
        self.describe(record, &refs)
    }

    fn describe(&self, record: ImageRecord, refs: &BTreeMap<Reference, Digest>) -> Result<Image> {
        let config = parse_config(&self.content.read(&record.id)?)?;
        let diff_ids: Vec<Digest> = record
            .layers
            .iter()
            .map(|layer| layer.diff_id.clone())
            .collect();
        let chain_ids = chain_ids(&diff_ids);
        let mut size = 0;
        for chain_id in &chain_ids {
            size += self
                .layers
                .get(chain_id)?
                .map_or(0, |layer: Layer| layer.size);
        }
        let (digests, tags) = refs
            .iter()
            .filter(|(_, target)| **target == record.id)
            .map(|(name, _)| name.clone())
            .partition(|name| name.digest().is_some());
        Ok(Image {
            id: record.id,
            config,
            layers: record.layers,
            chain_ids,
            size,
            tags,
            digests,
        })
    }

    /// The image's history, oldest step first. Steps that made a layer
    /// get that layer's size; an image without history gets one step per
    /// layer.
    pub fn history(&self, id: &Digest) -> Result<Vec<HistoryStep>> {
        let image = self.image(id)?;
        let mut sizes = Vec::new();
        for chain_id in &image.chain_ids {
            sizes.push(self.layers.get(chain_id)?.map_or(0, |layer| layer.size));
        }
        let mut sizes = sizes.into_iter();
        let Some(history) = image.config.history().clone().filter(|h| !h.is_empty()) else {
            return Ok(sizes
                .map(|size| HistoryStep {
                    created: None,
                    created_by: String::new(),
                    comment: String::new(),
                    size,
                })
                .collect());
        };
        Ok(history
            .iter()
            .map(|step| HistoryStep {
                created: step.created().clone(),
                created_by: step.created_by().clone().unwrap_or_default(),
                comment: step.comment().clone().unwrap_or_default(),
                size: if step.empty_layer().unwrap_or(false) {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
            })
            .collect())
    }

    /// The image's config as stored, for callers that show it whole.
    pub fn raw_config(&self, id: &Digest) -> Result<Vec<u8>> {
        self.content.read(id)
    }

    /// Every image, newest first (as `docker images` lists them).
    pub fn images(&self) -> Result<Vec<Image>> {
        let refs = self.lock_refs();
        let mut images = self
            .image_ids()?
            .iter()
            .map(|id| self.describe(self.record(id)?, &refs))
            .collect::<Result<Vec<_>>>()?;
        images.sort_by(|a, b| {
            b.config
                .created()
                .cmp(a.config.created())
                .then(a.id.cmp(&b.id))
        });
        Ok(images)
    }

    /// Sizes of layers and images, with what images share.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images()?;
        let snapshots = self.snapshots()?;
        let mut users: BTreeMap<&Digest, usize> = BTreeMap::new();
        for image in &images {
            for chain_id in &image.chain_ids {
                *users.entry(chain_id).or_default() += 1;
            }
        }
        let mut sizes: BTreeMap<&Digest, u64> = BTreeMap::new();
        for chain_id in users.keys() {
            sizes.insert(
                chain_id,
                self.layers.get(chain_id)?.map_or(0, |layer| layer.size),
            );
        }
        let usage = images
            .iter()
            .map(|image| ImageUsage {
                shared_size: image
                    .chain_ids
                    .iter()
                    .filter(|c| users[c] > 1)
                    .map(|c| sizes[c])
                    .sum(),
                containers: snapshots.iter().filter(|s| s.image == image.id).count(),
                image: image.clone(),
            })
            .collect();
        Ok(DiskUsage {
            layers_size: sizes.values().sum(),
            images: usage,
        })
    }

    /// Finds an image the way Docker does: by reference (normalized), by
    /// full id, or by a unique prefix of its id.
    pub fn resolve(&self, text: &str) -> Result<Digest> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if let Ok(reference) = Reference::parse(text)
            && let Some(id) = self.lock_refs().get(&reference)
        {
            return Ok(id.clone());
        }
        let prefix_ok =
            !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if prefix_ok {
            let matches: Vec<Digest> = self
                .image_ids()?
                .into_iter()
                .filter(|id| id.hex().starts_with(hex))
                .collect();
            if let [id] = matches.as_slice() {
                return Ok(id.clone());
            }
        }
        let shown = Reference::parse(text).map_or_else(|_| text.to_owned(), |r| r.familiar());
        Err(Error::NoSuchImage(shown))
    }

    /// Points `reference` at the image `source` names. Returns the image
    /// the reference pointed to before, if another.
    pub fn tag(&self, source: &str, reference: &Reference) -> Result<Option<Digest>> {
        let id = self.resolve(source)?;
        self.set_ref(reference, &id)
    }

    pub(crate) fn set_ref(&self, reference: &Reference, id: &Digest) -> Result<Option<Digest>> {
        let mut refs = self.lock_refs();
        let previous = refs.insert(reference.clone(), id.clone());
        if previous.as_ref() != Some(id) {
            self.save_refs(&refs)?;
        }
        Ok(previous.filter(|old| old != id))
    }

    /// Removes an image reference or an image, as `docker rmi` does:
    /// a reference is untagged, and the image goes with its last one; an
    /// id removes the image with its references. `is_running` says
    /// whether a container (by snapshot id) is running: an image a running
    /// container uses is never deleted; one a stopped container uses only
    /// with `force`.
    pub fn remove_image(
        &self,
        text: &str,
        force: bool,
        is_running: impl Fn(&str) -> bool,
    ) -> Result<Vec<Removal>> {
        let id = self.resolve(text)?;
        let users = self.snapshot_users(&id)?;
        let mut removals = Vec::new();
        let mut refs = self.lock_refs();
        let image_refs: Vec<Reference> = refs
            .iter()
            .filter(|(_, t)| **t == id)
            .map(|(r, _)| r.clone())
            .collect();
        let by_id = !Reference::parse(text).is_ok_and(|reference| refs.contains_key(&reference));
        let short = id.short().to_owned();
        if !by_id {
            let reference = Reference::parse(text)?;
            if !force
                && is_single_reference(&image_refs)
                && let Some(container) = users.first()
            {
                return Err(Error::ReferenceInUse {
                    reference: text.to_owned(),
                    container: short_id(container).to_owned(),
                    image: short,
                });
            }
            refs.remove(&reference);
            removals.push(Removal::Untagged(reference.familiar()));
            // A tag gone, digest references of the same repository go too
            // when no tag of it is left.
            let same_repo_tag_left = refs
                .iter()
                .any(|(r, t)| *t == id && r.name() == reference.name() && r.digest().is_none());
            if !same_repo_tag_left {
                let digests: Vec<Reference> = refs
                    .iter()
                    .filter(|(r, t)| {
                        **t == id && r.name() == reference.name() && r.digest().is_some()
                    })
                    .map(|(r, _)| r.clone())
                    .collect();
                for digest in digests {
                    refs.remove(&digest);
                    removals.push(Removal::Untagged(digest.familiar()));
                }
            }
            if refs.values().any(|t| *t == id) {
                self.save_refs(&refs)?;
                return Ok(removals);
            }
        } else if !is_single_reference(&image_refs) && !image_refs.is_empty() && !force {
            return Err(Error::ImageHasManyTags { image: short });
        }
        if let Some(container) = users.iter().find(|c| is_running(c)) {
            self.save_refs(&refs)?;
            return Err(Error::ImageInUseByRunning {
                image: short,
                container: short_id(container).to_owned(),
            });
        }
        if !force && let Some(container) = users.first() {
            self.save_refs(&refs)?;
            return Err(Error::ImageInUse {
                image: short,
                container: short_id(container).to_owned(),
            });
        }
        let left: Vec<Reference> = refs
            .iter()
            .filter(|(_, t)| **t == id)
            .map(|(r, _)| r.clone())
            .collect();
        for reference in left {
            refs.remove(&reference);
            removals.push(Removal::Untagged(reference.familiar()));
        }
        self.save_refs(&refs)?;
        drop(refs);
        let chain = self
            .image(&id)
            .map(|image| image.chain_ids)
            .unwrap_or_default();
        self.delete_record(&id)?;
        removals.push(Removal::Deleted(id));
        let collected = self.collect_garbage()?;
        removals.extend(
            chain
                .into_iter()
                .rev()
                .filter(|chain_id| collected.layers.contains(chain_id))
                .map(Removal::Deleted),
        );
        Ok(removals)
    }

    fn delete_record(&self, id: &Digest) -> Result<()> {
        let path = self.images.join(format!("{}.json", id.hex()));
        fs::remove_file(&path).context(|| format!("cannot remove {}", path.display()))
    }

    /// Removes dangling images (no reference), or with `all` every image no
    /// container uses, of those `selected` picks; then what no image
    /// references any more.
    pub fn prune_images(&self, all: bool, selected: impl Fn(&Image) -> bool) -> Result<Pruned> {
        let used: HashSet<Digest> = self.snapshots()?.into_iter().map(|s| s.image).collect();
        let mut pruned = Pruned::default();
        for image in self.images()? {
            let keep = used.contains(&image.id)
                || !(all || image.tags.is_empty() && image.digests.is_empty())
                || !selected(&image);
            if keep {
                continue;
            }
            let mut refs = self.lock_refs();
            for reference in image.tags.iter().chain(&image.digests) {
                refs.remove(reference);
                pruned
                    .removals
                    .push(Removal::Untagged(reference.familiar()));
            }
            self.save_refs(&refs)?;
            drop(refs);
            self.delete_record(&image.id)?;
            pruned.removals.push(Removal::Deleted(image.id));
        }
        let collected = self.collect_garbage()?;
        pruned.reclaimed = collected.bytes;
        pruned
            .removals
            .extend(collected.layers.into_iter().map(Removal::Deleted));
        Ok(pruned)
    }

    /// Removes every blob and layer that no image and no snapshot needs.
    pub fn collect_garbage(&self) -> Result<Collected> {
        let _exclusive = self
            .adding
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (blobs, layers) = self.in_use()?;
        let mut collected = Collected::default();
        for chain_id in self.layers.chain_ids()? {
            if !layers.contains(&chain_id) {
                collected.bytes += self.layers.get(&chain_id)?.map_or(0, |layer| layer.size);
                self.layers.remove(&chain_id)?;
                collected.layers.insert(chain_id);
            }
        }
        for digest in self.content.digests()? {
            if !blobs.contains(&digest) {
                collected.bytes += self.content.size(&digest).unwrap_or(0);
                self.content.remove(&digest)?;
            }
        }
        Ok(collected)
    }

    /// The blobs and layers (chain ids) images and snapshots need.
    pub(crate) fn in_use(&self) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>)> {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for id in self.image_ids()? {
            let record = self.record(&id)?;
            blobs.insert(record.id.clone());
            let diff_ids: Vec<Digest> = record.layers.iter().map(|l| l.diff_id.clone()).collect();
            layers.extend(chain_ids(&diff_ids));
            blobs.extend(record.layers.into_iter().map(|l| l.digest));
        }
        for snapshot in self.snapshots()? {
            layers.extend(snapshot.layers);
        }
        for cached in self.cache_in_use()? {
            let diff_ids: Vec<Digest> = cached.iter().map(|l| l.diff_id.clone()).collect();
            layers.extend(chain_ids(&diff_ids));
            blobs.extend(cached.into_iter().map(|l| l.digest));
        }
        Ok((blobs, layers))
    }

    /// Ids of the snapshots (containers) made from the image `id`.
    fn snapshot_users(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self
            .snapshots()?
            .into_iter()
            .filter(|snapshot| snapshot.image == *id)
            .map(|snapshot| snapshot.id)
            .collect())
    }

    /// Makes a container's read/write layer over the image `image` names;
    /// synced when `durable`. One that need not survive a crash of the
    /// machine (a `run --rm` container's, which would be removed anyway)
    /// skips the cost of the sync: after such a crash it may be gone.
    pub fn create_snapshot(&self, id: &str, image: &str, durable: bool) -> Result<Snapshot> {
        let image = self.image(&self.resolve(image)?)?;
        // A durable container must not outlive its image's files.
        let marker = self.pending.join(image.id.hex());
        if durable && marker.exists() {
            flush_pending(&self.root, &marker)?;
        }
        Snapshot::create(&self.snapshots, id, &image.id, image.chain_ids, durable)
    }

    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.snapshots.clone()
    }

    pub fn snapshot(&self, id: &str) -> Result<Snapshot> {
        Snapshot::load(&self.snapshots, id)
    }

    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        self.snapshot_ids()?
            .iter()
            .map(|id| self.snapshot(id))
            .collect()
    }

    /// The snapshots' ids, without reading their records.
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        snapshot::list(&self.snapshots)
    }

    /// Mounts the snapshot's merged view, if it is not mounted already.
    pub fn mount_snapshot(&self, snapshot: &Snapshot) -> Result<PathBuf> {
        if !snapshot.is_mounted() {
            let lower: Vec<PathBuf> = snapshot
                .layers
                .iter()
                .map(|c| self.layers.diff_dir(c))
                .collect();
            snapshot.mount(&lower)?;
        }
        Ok(snapshot.merged())
    }

    /// Removes a container's snapshot: its upper layer, never the image's.
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        self.snapshot(id)?.remove()
    }
}

/// Flushes everything written under the store's root to the disk.
fn sync_store(root: &Path) -> Result<()> {
    let dir = File::open(root).context(|| format!("cannot open {}", root.display()))?;
    rustix::fs::syncfs(&dir).context(|| format!("cannot sync {}", root.display()))
}

/// Flushes the store, then takes away the marker of an image that was
/// waiting for it (see [`Store::record_pending`]).
fn flush_pending(root: &Path, marker: &Path) -> Result<()> {
    sync_store(root)?;
    // Gone already if another flush took it: either way, flushed.
    fs::remove_file(marker).ok();
    Ok(())
}

/// This boot's id: it changes at each start of the machine.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default()
}

/// What a garbage collection removed.
#[derive(Debug, Default)]
pub struct Collected {
    pub layers: BTreeSet<Digest>,
    pub bytes: u64,
}

/// The `rootfs.diff_ids` of an image config, bottom layer first.
pub fn diff_ids(config: &[u8]) -> Result<Vec<Digest>> {
    parse_config(config)?
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse())
        .collect()
}

pub(crate) fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration> {
    ImageConfiguration::from_reader(bytes).map_err(|error| Error::BadConfig(error.to_string()))
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Docker's isSingleReference: at most one tag, and any digest references
/// in that tag's repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest().is_none()).collect();
    let digest_repos: BTreeSet<&str> = refs
        .iter()
        .filter(|r| r.digest().is_some())
        .map(|r| r.name())
        .collect();
    match tags.as_slice() {
        [] => digest_repos.len() == 1,
        [tag] => {
            digest_repos.is_empty()
                || (digest_repos.len() == 1 && digest_repos.contains(tag.name()))
        }
        _ => false,
    }
}
