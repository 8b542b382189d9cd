//! Keel's images on disk: a content store of blobs named by digest, layers
//! unpacked once each (keyed by chain id) and shared by every image that
//! has them, image records with Docker-normalized references, overlay
//! snapshots that give each container its own read/write layer, and the
//! docker-archive and OCI-layout tarballs that `load` and `save` speak.

mod archive;
mod build_cache;
mod cancel;
mod changes;
mod commit;
mod content;
pub mod digest;
mod error;
mod ingest;
mod layers;
mod pipe;
pub mod reference;
mod rootfs;
mod snapshot;
mod store;
pub mod unpack;
mod write_behind;

pub use archive::{Loaded, clean_path, go_arch};
pub use build_cache::{CacheUsage, CachedStep};
pub use cancel::{Cancel, CancelOnDrop};
pub use changes::{Change, ChangeKind};
pub use commit::{Child, EMPTY_LAYER};
pub use content::ContentStore;
pub use digest::Digest;
pub use error::{Error, Result};
pub use ingest::Ingest;
pub use layers::{Layer, LayerStore};
pub use reference::Reference;
pub use rootfs::ImportOptions;
pub use snapshot::Snapshot;
pub use store::{
    Collected, DiskUsage, HistoryStep, Image, ImageUsage, LayerBlob, Pruned, Removal, Store,
    diff_ids,
};
pub use unpack::DiskReserve;
