use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// What went wrong, with the value at fault and what would be right.
/// `Display` never repeats the source; `report` renders the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    InvalidDigest(String),
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("content of {what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {layer}: entry {entry:?} {reason}; refusing to unpack it")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: &'static str,
    },
    #[error("layer {layer}: cannot unpack entry {entry:?}")]
    Unpack {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("layer {layer} is not a readable tar stream (gzip, zstd or plain)")]
    BadLayer { layer: String, source: io::Error },
    #[error("{archive}: {reason}")]
    BadArchive { archive: String, reason: String },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("No such container snapshot: {0}")]
    NoSuchSnapshot(String),
    #[error("container snapshot {0:?} already exists")]
    SnapshotExists(String),
    #[error(
        "conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    ReferenceInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is being used by stopped container {container}"
    )]
    ImageInUse { image: String, container: String },
    #[error(
        "conflict: unable to delete {image} (cannot be forced) - image is being used by running container {container}"
    )]
    ImageInUseByRunning { image: String, container: String },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories"
    )]
    ImageHasManyTags { image: String },
    #[error("invalid image config: {0}")]
    BadConfig(String),
    #[error("the store at {root} is in use by another process; stop it or use another --root")]
    StoreBusy { root: PathBuf },
    #[error("{what}")]
    Io { what: String, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done to a failed system call.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, rustix::io::Errno> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Io {
            what: what(),
            source: errno.into(),
        })
    }
}
