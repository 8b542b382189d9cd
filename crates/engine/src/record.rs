//! The engine's records on disk, written so that a crash leaves the old or
//! the new version, never a mix (see keel-durable).

use std::path::Path;

use crate::error::{Context, Result};

/// Writes a record durably (synced) and atomically.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    keel_durable::write_atomically(path, bytes)
        .context(|| format!("cannot write {}", path.display()))
}

/// Writes a file atomically, without a sync: for what a crash of the
/// machine makes moot.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    keel_durable::replace(path, bytes).context(|| format!("cannot write {}", path.display()))
}
