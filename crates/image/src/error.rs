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
    /// `what` is `layer DIGEST`, or `archive NAME` for a build's ADD.
    #[error("{what}: entry {entry:?} {reason}; refusing to unpack it")]
    UnsafeEntry {
        what: String,
        entry: String,
        reason: &'static str,
    },
    #[error(
        "{what}: unpacking stopped with {} left on the disk, below the {} Keel keeps free \
         (keel daemon --disk-reserve SIZE changes it; 0 for none)",
        human_bytes(*free),
        human_bytes(*reserve)
    )]
    DiskReserve {
        what: String,
        free: u64,
        reserve: u64,
    },
    #[error("{what}: unpacking was cancelled (its client went away); nothing of it is kept")]
    Cancelled { what: String },
    #[error("{what}: cannot unpack entry {entry:?}")]
    Unpack {
        what: String,
        entry: String,
        source: io::Error,
    },
    #[error("{what} is not a readable tar stream (gzip, zstd, bzip2, xz or plain)")]
    BadLayer { what: String, source: io::Error },
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
    #[error("cannot read {}", path.display())]
    Record {
        path: PathBuf,
        source: keel_durable::record::RecordError,
    },
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

/// "1.5 GiB", "980 MiB": sizes in errors.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

impl keel_errdefs::HasKind for Error {
    fn kind(&self) -> keel_errdefs::Kind {
        use keel_errdefs::Kind;
        match self {
            Error::NoSuchImage(_) | Error::NoSuchSnapshot(_) => Kind::NotFound,
            Error::ImageInUse { .. }
            | Error::ImageInUseByRunning { .. }
            | Error::ReferenceInUse { .. }
            | Error::ImageHasManyTags { .. }
            | Error::SnapshotExists(_) => Kind::Conflict,
            Error::InvalidDigest(_)
            | Error::InvalidReference { .. }
            | Error::DigestMismatch { .. }
            | Error::UnsafeEntry { .. }
            | Error::BadLayer { .. }
            | Error::BadArchive { .. }
            | Error::BadConfig(_) => Kind::InvalidArgument,
            Error::StoreBusy { .. } => Kind::Unavailable,
            Error::DiskReserve { .. }
            | Error::Cancelled { .. }
            | Error::Unpack { .. }
            | Error::Io { .. }
            | Error::Record { .. } => Kind::Internal,
        }
    }
}
