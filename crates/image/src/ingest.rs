//! Images arriving blob by blob (a pull): blobs are stored as they come,
//! each checked against its digest, layers unpacked from the same bytes as
//! they arrive, and all become an image only when [`Ingest::commit`]
//! records it. An ingest dropped uncommitted removes the blobs and layers
//! it added, so a failed pull leaves nothing half-stored.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLockReadGuard, mpsc};

use crate::cancel::Cancel;
use crate::digest::{Digest, chain_ids};
use crate::error::Result;
use crate::pipe::{ChannelReader, Tee};
use crate::store::{LayerBlob, NewLayer, Store};

#[derive(Debug)]
pub struct Ingest<'a> {
    store: &'a Store,
    /// Keeps garbage collection from taking blobs no image names yet.
    _adding: RwLockReadGuard<'a, ()>,
    added: Mutex<Vec<Digest>>,
    /// Chain ids of the layers it unpacked.
    unpacked: Mutex<Vec<Digest>>,
    committed: bool,
    /// Stops its unpacking (and so the download feeding it).
    cancel: Cancel,
}

impl Store {
    /// An ingest of pulled blobs, which `cancel` stops.
    pub fn ingest(&self, cancel: &Cancel) -> Ingest<'_> {
        Ingest {
            store: self,
            _adding: self.adding(),
            added: Mutex::new(Vec::new()),
            unpacked: Mutex::new(Vec::new()),
            committed: false,
            cancel: cancel.clone(),
        }
    }

    /// The image's layers as a push sends them, compressed: a layer stored
    /// as a plain tar is gzipped once into the store and the image record
    /// then names the gzip blob (same diff id), so every later push sends
    /// the same bytes and the manifest keeps its digest.
    pub fn compressed_layers(&self, id: &Digest) -> Result<Vec<LayerBlob>> {
        let _adding = self.adding();
        let mut record = self.record(id)?;
        let mut replaced = Vec::new();
        let diff_ids: Vec<Digest> = record.layers.iter().map(|l| l.diff_id.clone()).collect();
        for (layer, chain_id) in record.layers.iter_mut().zip(chain_ids(&diff_ids)) {
            let Some(media_type) = gzip_media_type(&layer.media_type) else {
                continue;
            };
            let blob = self.open_layer_blob(layer, &chain_id)?;
            // Compressed as it is read, straight into the store.
            let gzipped = flate2::read::GzEncoder::new(blob, flate2::Compression::default());
            let (digest, _) = self.content().write(
                gzipped,
                None,
                &format!("the gzip of layer {}", layer.diff_id),
            )?;
            replaced.push(std::mem::replace(&mut layer.digest, digest));
            layer.media_type = media_type.to_owned();
        }
        if !replaced.is_empty() {
            self.write_record(&record)?;
            let (kept, _) = self.in_use()?;
            for digest in replaced.iter().filter(|d| !kept.contains(d)) {
                self.content().remove(digest)?;
            }
        }
        Ok(record.layers)
    }
}

/// The gzip media type of an uncompressed layer type; None when the layer
/// is compressed already.
fn gzip_media_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        crate::store::DOCKER_LAYER => Some("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        "application/vnd.oci.image.layer.v1.tar" => {
            Some("application/vnd.oci.image.layer.v1.tar+gzip")
        }
        _ => None,
    }
}

impl Ingest<'_> {
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.store.content().contains(digest)
    }

    /// Stores a blob read from `reader`, refusing content that does not
    /// match `digest`. Returns its size.
    pub fn write_blob(&self, reader: impl Read, digest: &Digest, what: &str) -> Result<u64> {
        let existed = self.has_blob(digest);
        let (_, size) = self.store.content().write(reader, Some(digest), what)?;
        if !existed {
            self.added
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(digest.clone());
        }
        Ok(size)
    }

    /// Stores a layer's blob read from `reader` and unpacks it from the
    /// same bytes as they come (in a thread of its own), checking the blob
    /// against `layer.digest` and what it unpacks to against
    /// `layer.diff_id`. Returns the blob's size.
    pub fn write_layer(
        &self,
        reader: impl Read,
        layer: &LayerBlob,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<u64> {
        let what = format!("layer {}", layer.digest);
        if self.store.layers().get(chain_id)?.is_some() {
            return self.write_blob(reader, &layer.digest, &what);
        }
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
        let broken = AtomicBool::new(false);
        let (written, unpacked) = std::thread::scope(|scope| {
            let unpacker = scope.spawn(|| {
                let stream = ChannelReader::new(rx);
                self.store.layers().unpack_stream(
                    chain_id,
                    parent,
                    &layer.diff_id,
                    stream,
                    None,
                    &self.cancel,
                )
            });
            let tee = Tee {
                inner: reader,
                tx,
                broken: &broken,
            };
            let written = self.write_blob(tee, &layer.digest, &what);
            (written, unpacker.join())
        });
        let unpacked = unpacked.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if unpacked.is_ok() {
            self.unpacked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(chain_id.clone());
        }
        match (written, unpacked) {
            (Ok(size), Ok(_)) => Ok(size),
            // The unpack stopped reading first: its error is the cause.
            (Err(_), Err(error)) if broken.load(Ordering::Relaxed) => Err(error),
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
        }
    }

    /// Records the image whose layer blobs are stored, unpacking the layers
    /// not unpacked yet, and returns its id.
    pub fn commit(mut self, config: &[u8], layers: &[LayerBlob]) -> Result<Digest> {
        let layers: Vec<NewLayer> = layers
            .iter()
            .map(|blob| NewLayer {
                blob: blob.clone(),
                verified: false,
            })
            .collect();
        let id = self.store.add_image(config, &layers, &self.cancel)?;
        self.committed = true;
        Ok(id)
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // What is left behind (on an error here) is collected when the
        // store next opens.
        let Ok((blobs, layers)) = self.store.in_use() else {
            return;
        };
        let added = std::mem::take(self.added.get_mut().unwrap_or_else(|p| p.into_inner()));
        for digest in added.iter().filter(|d| !blobs.contains(d)) {
            let _ = self.store.content().remove(digest);
        }
        let unpacked = std::mem::take(self.unpacked.get_mut().unwrap_or_else(|p| p.into_inner()));
        for chain_id in unpacked.iter().filter(|c| !layers.contains(c)) {
            let _ = self.store.layers().remove(chain_id);
        }
    }
}
