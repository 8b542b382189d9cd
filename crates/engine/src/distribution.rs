//! Pull and push: images between a registry and the store, with the
//! progress lines Docker shows (`Pulling fs layer`, `Downloading`,
//! `Pull complete`, `Pushed`, ...).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_image::{Digest, LayerBlob, Reference};
use keel_registry::{AuthConfig, Descriptor, ImageManifest, Manifest, Platform, Registry};

use crate::Engine;
use crate::error::{Context, Error, Result};

/// Layers downloaded at once, as dockerd's `max-concurrent-downloads`.
const DOWNLOADS: usize = 3;
/// Layers uploaded at once, as dockerd's `max-concurrent-uploads`.
const UPLOADS: usize = 5;
/// How often a transfer reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// One progress line: a layer's (`id`) or the whole operation's status,
/// with bytes done of a total while transferring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

impl Progress {
    fn status(status: impl Into<String>) -> Self {
        Self {
            id: None,
            status: status.into(),
            current: None,
            total: None,
        }
    }

    fn layer(id: &Digest, status: impl Into<String>) -> Self {
        Self {
            id: Some(id.hex()[..12].to_owned()),
            ..Self::status(status)
        }
    }

    fn transfer(id: &Digest, status: &str, current: u64, total: u64) -> Self {
        Self {
            current: Some(current),
            total: Some(total),
            ..Self::layer(id, status)
        }
    }
}

/// A layer to download, stored and unpacked as it comes.
struct Download<'a> {
    blob: &'a LayerBlob,
    /// The size the manifest gives, if the registry gives none.
    size: u64,
    chain_id: &'a Digest,
    parent: Option<&'a Digest>,
}

/// Where progress goes; called from several download threads.
pub type Report<'a> = &'a (dyn Fn(Progress) + Sync);

/// A reader that reports how much has been read, at most every
/// [`PROGRESS_EVERY`].
struct Counting<'a, R> {
    inner: R,
    done: u64,
    last: Instant,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            (self.report)(self.done);
        }
        Ok(n)
    }
}

/// Attempts at resuming a blob download that make no progress before the
/// pull gives up.
const RESUMES: u32 = 3;

/// A blob download that resumes where the network cut it (a `Range`
/// request from the bytes already read), so the writer behind it sees one
/// stream and checks its digest as if nothing happened.
struct Resuming<'a> {
    registry: &'a Registry,
    path: &'a str,
    digest: &'a Digest,
    reader: Box<dyn Read + Send>,
    offset: u64,
    /// Failed resumes since bytes last came.
    failures: u32,
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    if n > 0 {
                        self.failures = 0;
                    }
                    return Ok(n);
                }
                Err(error) if self.failures < RESUMES => {
                    self.failures += 1;
                    match self.registry.blob_from(self.path, self.digest, self.offset) {
                        Ok(blob) => self.reader = Box::new(blob.reader),
                        Err(_) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Which repositories hold a blob, learnt from pulls and pushes, so a push
/// to another repository of the same registry mounts the blob instead of
/// uploading it (Docker keeps the same as its "v2 metadata"). A hint: a
/// lost entry costs an upload, never correctness.
#[derive(Debug)]
pub(crate) struct BlobSources {
    dir: PathBuf,
}

impl BlobSources {
    pub(crate) fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        keel_durable::remove_leftovers(&dir)
            .context(|| format!("cannot clean {}", dir.display()))?;
        Ok(Self { dir })
    }

    /// Repositories (`registry/path`) known to hold `digest`.
    fn of(&self, digest: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(digest.hex()))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn add(&self, digest: &Digest, repository: &str) {
        let mut known = self.of(digest);
        if !known.iter().any(|r| r == repository) {
            known.push(repository.to_owned());
            let _ =
                keel_durable::replace(&self.dir.join(digest.hex()), known.join("\n").as_bytes());
        }
    }
}

/// Runs `work` on every item, `workers` at a time, in that order; stops
/// starting new ones at the first error, which it returns.
fn in_parallel<T: Sync>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let failed = || failure.lock().is_ok_and(|f| f.is_some());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= items.len() || failed() {
                        break;
                    }
                    if let Err(error) = work(&items[index])
                        && let Ok(mut failure) = failure.lock()
                    {
                        failure.get_or_insert(error);
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A single-platform image pulled with `--platform` must be of it.
fn check_platform(reference: &Reference, wanted: &Platform, config: &[u8]) -> Result<()> {
    // An image config names its platform with the fields an index uses.
    let actual: Platform = serde_json::from_slice(config).map_err(|e| {
        Error::InvalidParameter(format!(
            "{}: invalid image config: {e}",
            reference.familiar()
        ))
    })?;
    match wanted.matches(&actual) {
        true => Ok(()),
        false => Err(Error::InvalidParameter(format!(
            "image with reference {} was found but does not match the specified platform: wanted {wanted}, actual: {actual}",
            reference.familiar()
        ))),
    }
}

impl Engine {
    /// A session with the registry `domain` names.
    fn registry(&self, domain: &str, auth: Option<AuthConfig>) -> Result<Registry> {
        Ok(Registry::connect(domain, auth, &self.insecure_registries)?)
    }

    /// Checks credentials with a registry, as `docker login` has the
    /// daemon do. `server` is a registry host (Docker Hub when empty).
    pub fn login(&self, server: &str, auth: AuthConfig) -> Result<()> {
        let registry = self.registry(keel_registry::server_domain(server), Some(auth))?;
        registry.login()?;
        Ok(())
    }

    /// Runs Docker Hub's search API on the registry `term` names (Docker
    /// Hub unless it starts with a registry host), returning its JSON.
    pub fn search(&self, term: &str, limit: u32, auth: Option<AuthConfig>) -> Result<Vec<u8>> {
        let (domain, term) = keel_image::reference::split_registry(term)
            .unwrap_or((keel_image::reference::DEFAULT_DOMAIN, term));
        let registry = self.registry(domain, auth)?;
        Ok(registry.search(term, limit)?)
    }

    /// The tags of a repository, for `pull --all-tags`.
    pub fn remote_tags(
        &self,
        repository: &Reference,
        auth: Option<AuthConfig>,
    ) -> Result<Vec<String>> {
        let registry = self.registry(repository.domain(), auth)?;
        Ok(registry.tags(repository.path())?)
    }

    /// Pulls an image (the platform's manifest of an index, or
    /// `platform`'s) into the store and points `reference` at it. The image
    /// is recorded only once every blob is verified and every layer is
    /// unpacked; a failed pull leaves no blob behind, and `cancel` stops
    /// it as a failure.
    pub fn pull(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        auth: Option<AuthConfig>,
        report: Report<'_>,
        cancel: &keel_image::Cancel,
    ) -> Result<Digest> {
        let registry = self.registry(reference.domain(), auth)?;
        let path = reference.path();
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, tag) => tag.unwrap_or("latest").to_owned(),
        };
        // The digest pulled is what the tag names, an index's for a
        // multi-platform image: Docker shows and records that one.
        let (manifest, _, digest) = registry.manifest(path, &wanted)?;
        let from_index = matches!(manifest, Manifest::Index(_));
        let manifest = match manifest {
            Manifest::Image(manifest) => manifest,
            Manifest::Index(index) => {
                let platform = platform.cloned().unwrap_or_else(Platform::host);
                let entry = platform.choose(&index)?;
                match registry.manifest(path, entry.digest.as_str())? {
                    (Manifest::Image(manifest), _, _) => manifest,
                    (Manifest::Index(_), _, _) => {
                        return Err(Error::InvalidParameter(format!(
                            "{}: the index entry for {platform} is another index",
                            reference.familiar()
                        )));
                    }
                }
            }
        };
        report(Progress {
            id: Some(wanted.clone()),
            ..Progress::status(format!("Pulling from {path}"))
        });
        let config = registry.small_blob(path, &manifest.config.digest)?;
        if let Some(platform) = platform.filter(|_| !from_index) {
            check_platform(reference, platform, &config)?;
        }
        let diff_ids = keel_image::diff_ids(&config)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::InvalidParameter(format!(
                "{}: the manifest lists {} layers but the image config {}",
                reference.familiar(),
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let existed = self.images.image(&manifest.config.digest).is_ok();
        let blobs: Vec<LayerBlob> = manifest
            .layers
            .iter()
            .zip(&diff_ids)
            .map(|(layer, diff_id)| LayerBlob {
                diff_id: diff_id.clone(),
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
            })
            .collect();
        let chain = keel_image::digest::chain_ids(&diff_ids);
        let ingest = self.images.ingest(cancel);
        let mut missing = Vec::new();
        for (index, layer) in manifest.layers.iter().enumerate() {
            if ingest.has_blob(&layer.digest) {
                report(Progress::layer(&layer.digest, "Already exists"));
            } else {
                report(Progress::layer(&layer.digest, "Pulling fs layer"));
                missing.push(Download {
                    blob: &blobs[index],
                    size: layer.size,
                    chain_id: &chain[index],
                    parent: index.checked_sub(1).map(|parent| &chain[parent]),
                });
            }
        }
        for layer in missing.iter().skip(DOWNLOADS) {
            report(Progress::layer(&layer.blob.digest, "Waiting"));
        }
        in_parallel(&missing, DOWNLOADS, |layer| {
            self.download_one(&registry, reference, layer, &ingest, report)
        })?;
        let id = ingest.commit(&config, &blobs)?;
        for blob in &blobs {
            self.blob_sources.add(&blob.digest, reference.name());
        }
        let mut moved = false;
        if reference.tag().is_some() {
            moved = self.images.tag(id.as_str(), reference)?.is_some();
        }
        let pinned = reference.with_digest(digest.clone());
        self.images.tag(id.as_str(), &pinned)?;
        report(Progress::status(format!("Digest: {digest}")));
        let shown = reference.familiar();
        report(Progress::status(match existed && !moved {
            true => format!("Status: Image is up to date for {shown}"),
            false => format!("Status: Downloaded newer image for {shown}"),
        }));
        self.image_event(&shown, &shown, "pull");
        Ok(id)
    }

    fn download_one(
        &self,
        registry: &Registry,
        reference: &Reference,
        layer: &Download<'_>,
        ingest: &keel_image::Ingest<'_>,
        report: Report<'_>,
    ) -> Result<()> {
        let digest = &layer.blob.digest;
        let blob = registry.blob(reference.path(), digest)?;
        let total = blob.size.unwrap_or(layer.size);
        let progress = |done: u64| report(Progress::transfer(digest, "Downloading", done, total));
        let resuming = Resuming {
            registry,
            path: reference.path(),
            digest,
            reader: Box::new(blob.reader),
            offset: 0,
            failures: 0,
        };
        let reader = Counting {
            inner: resuming,
            done: 0,
            last: Instant::now(),
            report: &progress,
        };
        ingest
            .write_layer(reader, layer.blob, layer.chain_id, layer.parent)
            .map_err(|error| match error {
                keel_image::Error::DigestMismatch { .. } => Error::LayerVerification {
                    image: reference.familiar(),
                    digest: digest.clone(),
                },
                keel_image::Error::Io { source, .. } => Error::Transfer {
                    image: reference.familiar(),
                    what: format!("layer {digest}"),
                    source,
                },
                other => other.into(),
            })?;
        report(Progress::layer(digest, "Verifying Checksum"));
        report(Progress::layer(digest, "Download complete"));
        report(Progress::layer(digest, "Pull complete"));
        Ok(())
    }

    /// Pushes the image `reference` names to its registry under its tag:
    /// the layers (gzipped first if stored plain), the config, then the
    /// manifest. Returns the manifest's digest, also kept as a
    /// `name@digest` reference.
    pub fn push(
        &self,
        reference: &Reference,
        auth: Option<AuthConfig>,
        report: Report<'_>,
    ) -> Result<Digest> {
        let id = self
            .images
            .resolve(&reference.to_string())
            .map_err(|_| Error::NoSuchTag(reference.familiar()))?;
        let registry = self.registry(reference.domain(), auth)?;
        let path = reference.path();
        report(Progress::status(format!(
            "The push refers to repository [{}]",
            reference.name()
        )));
        let layers = self.images.compressed_layers(&id)?;
        for layer in layers.iter().rev() {
            report(Progress::layer(&layer.diff_id, "Preparing"));
        }
        for layer in layers.iter().rev().skip(UPLOADS) {
            report(Progress::layer(&layer.diff_id, "Waiting"));
        }
        let descriptors = layers
            .iter()
            .map(|layer| {
                Ok(Descriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                    size: self.images.content().size(&layer.digest)?,
                    platform: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let top_first: Vec<(&LayerBlob, &Descriptor)> =
            layers.iter().zip(&descriptors).rev().collect();
        in_parallel(&top_first, UPLOADS, |(layer, descriptor)| {
            let status = self.push_blob(
                &registry,
                reference,
                &layer.digest,
                descriptor.size,
                &layer.diff_id,
                report,
            )?;
            report(Progress::layer(&layer.diff_id, status));
            Ok(())
        })?;
        let config_size = self.images.content().size(&id)?;
        self.push_blob(&registry, reference, &id, config_size, &id, &|_| {})?;
        let manifest = ImageManifest::new(
            Descriptor {
                media_type: String::new(),
                digest: id.clone(),
                size: config_size,
                platform: None,
            },
            descriptors,
        );
        let bytes = manifest.to_json();
        let tag = reference.tag().unwrap_or("latest");
        let digest = registry.put_manifest(path, tag, &manifest.media_type, &bytes)?;
        let pinned = reference.with_digest(digest.clone());
        self.images.tag(id.as_str(), &pinned)?;
        report(Progress::status(format!(
            "{tag}: digest: {digest} size: {}",
            bytes.len()
        )));
        let shown = reference.familiar();
        self.image_event(&shown, &shown, "push");
        Ok(digest)
    }

    /// Puts one blob in the repository unless it is there or can be
    /// mounted from another repository of the registry that has it; says
    /// which, as Docker does, and remembers the repository has it.
    fn push_blob(
        &self,
        registry: &Registry,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        shown: &Digest,
        report: Report<'_>,
    ) -> Result<String> {
        let placed = |status: String| {
            self.blob_sources.add(digest, reference.name());
            Ok(status)
        };
        let path = reference.path();
        if registry.has_blob(path, digest)? {
            return placed("Layer already exists".to_owned());
        }
        let domain = format!("{}/", reference.domain());
        for source in self.blob_sources.of(digest) {
            let Some(from) = source.strip_prefix(&domain).filter(|from| *from != path) else {
                continue;
            };
            if registry.mount_blob(path, digest, from)? {
                return placed(format!("Mounted from {from}"));
            }
        }
        let progress = |done: u64| report(Progress::transfer(shown, "Pushing", done, size));
        let mut reader = Counting {
            inner: self.images.content().open_blob(digest)?,
            done: 0,
            last: Instant::now(),
            report: &progress,
        };
        registry.upload_blob(path, digest, size, &mut reader, keel_registry::UPLOAD_CHUNK)?;
        placed("Pushed".to_owned())
    }
}
