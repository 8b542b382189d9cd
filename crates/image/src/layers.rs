//! Unpacked layers: one directory per layer, named by its chain id, shared
//! by every image whose stack has it. A layer appears under its final name
//! only once it is whole and synced; a crash leaves a `.tmp-` directory,
//! removed on the next open.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::digest::{Digest, DigestReader};
use crate::error::{Context, Error, Result};
use crate::pipe::ChannelReader;
use crate::unpack::{DiskReserve, Unpacked, decompress, unpack};

const TEMP_PREFIX: &str = ".tmp-";
const RECORD: &str = "layer.json";
/// The subdirectory holding the layer's files, the overlayfs lower dir.
const DIFF: &str = "diff";

/// What the store knows of an unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub chain_id: Digest,
    /// The digest of the uncompressed tar, as the image config lists it.
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in this layer alone.
    pub size: u64,
    /// Length of the uncompressed tar, which `save` writes.
    pub tar_size: u64,
}

/// A layer to unpack: where it sits in its stack and where its blob is.
#[derive(Debug)]
pub struct LayerSource<'a> {
    pub chain_id: &'a Digest,
    pub parent: Option<&'a Digest>,
    pub diff_id: &'a Digest,
    pub blob: &'a Path,
    /// Whether the blob was already verified to be the uncompressed tar
    /// with this diff id, which spares hashing it again.
    pub verified: bool,
    pub cancel: &'a Cancel,
}

/// Unpacks a blob while a second thread decompresses and hashes it ahead
/// of the unpack (which spends its time in file system calls). Returns
/// the unpack's result and the uncompressed stream's digest and length.
fn unpack_hashed(
    blob: impl Read + Send,
    root: &File,
    name: &str,
    reserve: DiskReserve,
    cancel: &Cancel,
) -> (Result<Unpacked>, io::Result<(Digest, u64)>) {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut hashed = DigestReader::new(decompress(blob)?);
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let n = hashed.read(&mut buffer)?;
                if n == 0 {
                    return hashed.finish();
                }
                if tx.send(buffer[..n].to_vec()).is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the unpack stopped reading",
                    ));
                }
            }
        });
        let mut stream = ChannelReader::new(rx);
        let unpacked = unpack(&mut stream, root, name, reserve, cancel);
        // What the tar reader left (its end padding) still counts.
        if unpacked.is_ok() {
            let _ = io::copy(&mut stream, &mut io::sink());
        }
        drop(stream);
        let hashed = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (unpacked, hashed)
    })
}

/// Where a layer sits in its stack.
struct StreamSource<'a> {
    chain_id: &'a Digest,
    parent: Option<&'a Digest>,
    diff_id: &'a Digest,
}

#[derive(Debug)]
pub struct LayerStore {
    root: PathBuf,
    /// What unpacking leaves free on the store's disk.
    pub(crate) reserve: DiskReserve,
}

impl LayerStore {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let root = root.join("layers");
        fs::create_dir_all(&root).context(|| format!("cannot create {}", root.display()))?;
        let entries = fs::read_dir(&root).context(|| format!("cannot list {}", root.display()))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_dir_all(entry.path()).context(|| {
                    format!("cannot remove the partial layer {}", entry.path().display())
                })?;
            }
        }
        Ok(Self {
            root,
            reserve: DiskReserve::default(),
        })
    }

    /// The directory of the layer's files, for overlayfs.
    pub fn diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex()).join(DIFF)
    }

    pub fn get(&self, chain_id: &Digest) -> Result<Option<Layer>> {
        let path = self.root.join(chain_id.hex()).join(RECORD);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(crate::content::decode_record(&path, &bytes)?)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Unpacks a layer unless it is already there. The digest of the
    /// uncompressed stream must be the diff id; if not, or if any entry is
    /// unsafe, nothing of the layer is left behind.
    pub fn unpack(&self, source: &LayerSource<'_>) -> Result<Layer> {
        if let Some(layer) = self.get(source.chain_id)? {
            return Ok(layer);
        }
        let blob = File::open(source.blob)
            .context(|| format!("cannot open the blob of layer {}", source.diff_id))?;
        let verified_size = match source.verified {
            true => Some(
                fs::metadata(source.blob)
                    .context(|| format!("cannot stat the blob of layer {}", source.diff_id))?
                    .len(),
            ),
            false => None,
        };
        self.unpack_stream(
            source.chain_id,
            source.parent,
            source.diff_id,
            blob,
            verified_size,
            source.cancel,
        )
    }

    /// Unpacks a layer from its blob's bytes as they come (gzip, zstd or a
    /// plain tar), checking the uncompressed stream against `diff_id`
    /// unless `verified_size` says the blob is the verified plain tar of
    /// that size.
    pub fn unpack_stream(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read + Send,
        verified_size: Option<u64>,
        cancel: &Cancel,
    ) -> Result<Layer> {
        let source = StreamSource {
            chain_id,
            parent,
            diff_id,
        };
        let name = source.diff_id.to_string();
        let temp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", source.chain_id.short()))
            .tempdir_in(&self.root)
            .context(|| format!("cannot create a directory in {}", self.root.display()))?;
        let diff = temp.path().join(DIFF);
        fs::create_dir(&diff).context(|| format!("cannot create {}", diff.display()))?;
        let diff_fd = File::open(&diff).context(|| format!("cannot open {}", diff.display()))?;
        let bad = |source: io::Error| Error::BadLayer {
            what: format!("layer {name}"),
            source,
        };
        let (size, tar_size) = if let Some(tar_size) = verified_size {
            let stream = decompress(blob).map_err(bad)?;
            (
                unpack(stream, &diff_fd, &name, self.reserve, cancel)?.size,
                tar_size,
            )
        } else {
            let (size, (actual, tar_size)) =
                match unpack_hashed(blob, &diff_fd, &name, self.reserve, cancel) {
                    (Ok(unpacked), Ok(hashed)) => (unpacked.size, hashed),
                    // The unpack refused an entry and stopped reading.
                    (Err(error), Err(hashed)) if hashed.kind() == io::ErrorKind::BrokenPipe => {
                        return Err(error);
                    }
                    // A stream that could not be read (bad gzip, cut short) is
                    // the cause of whatever the unpack then said.
                    (_, Err(hashed)) => return Err(bad(hashed)),
                    (Err(error), Ok(_)) => return Err(error),
                };
            if actual != *source.diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {name} (uncompressed)"),
                    expected: source.diff_id.clone(),
                    actual,
                });
            }
            (size, tar_size)
        };
        let layer = Layer {
            chain_id: source.chain_id.clone(),
            diff_id: source.diff_id.clone(),
            parent: source.parent.cloned(),
            size,
            tar_size,
        };
        self.install(temp, layer)
    }

    /// Makes the directory `diff` (a snapshot's upper directory, which
    /// overlayfs wrote in a layer's own format) the layer `layer`, by
    /// renaming it into place: no second copy of its files.
    pub fn adopt(&self, diff: &Path, layer: Layer) -> Result<Layer> {
        if self.get(&layer.chain_id)?.is_some() {
            return Ok(layer);
        }
        let temp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", layer.chain_id.short()))
            .tempdir_in(&self.root)
            .context(|| format!("cannot create a directory in {}", self.root.display()))?;
        fs::rename(diff, temp.path().join(DIFF))
            .context(|| format!("cannot move {} into the layers", diff.display()))?;
        self.install(temp, layer)
    }

    /// Records a layer whose files are in `temp`'s diff directory and
    /// moves it under its chain id.
    fn install(&self, temp: tempfile::TempDir, layer: Layer) -> Result<Layer> {
        let record = crate::content::encode_record(&layer);
        // Not synced here: the image that needs the layer is made durable
        // by one syncfs of the store (`Store::record_pending`), and layers
        // no image or container needs are removed on open.
        let record_path = temp.path().join(RECORD);
        keel_durable::replace(&record_path, &record)
            .context(|| format!("cannot write {}", record_path.display()))?;
        let target = self.root.join(layer.chain_id.hex());
        match fs::rename(temp.path(), &target) {
            Ok(()) => {
                let _ = temp.keep();
            }
            // Another unpack of the same layer won the race; its copy serves.
            Err(_) if self.get(&layer.chain_id)?.is_some() => {}
            Err(error) => {
                return Err(error)
                    .context(|| format!("cannot move layer {} into place", layer.diff_id));
            }
        }
        Ok(layer)
    }

    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let dir = self.root.join(chain_id.hex());
        // Renamed away first, so a crash mid-removal never leaves a
        // half-empty layer under its real name.
        let doomed = self
            .root
            .join(format!("{TEMP_PREFIX}{}-removed", chain_id.hex()));
        match fs::rename(&dir, &doomed) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            result => result.context(|| format!("cannot remove layer {chain_id}"))?,
        }
        fs::remove_dir_all(&doomed).context(|| format!("cannot remove {}", doomed.display()))
    }

    /// The chain ids of every unpacked layer.
    pub fn chain_ids(&self) -> Result<Vec<Digest>> {
        let entries =
            fs::read_dir(&self.root).context(|| format!("cannot list {}", self.root.display()))?;
        Ok(entries
            .filter_map(|entry| Digest::from_hex(&entry.ok()?.file_name().to_string_lossy()).ok())
            .collect())
    }
}

/// The media type of a layer blob, from its first bytes.
pub(crate) fn media_type(blob: &Path) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut file = File::open(blob).context(|| format!("cannot open {}", blob.display()))?;
    let n = file
        .read(&mut head)
        .context(|| format!("cannot read {}", blob.display()))?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => crate::store::DOCKER_LAYER,
    })
}
