//! The engine's records on disk, written so that a crash leaves the old or
//! the new version, never a mix (see keel-durable).

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Context, Error, Result};

/// The version of the engine's records' formats (containers, networks,
/// volumes): 1 since 2026-12-03, whose records before it are version 0
/// and the same.
pub(crate) const VERSION: u32 = 1;

/// A record found on opening the engine's state: `None` if it is not one
/// (as before versions, it is passed over); a newer Keel's is an error,
/// neither misread nor dropped.
pub(crate) fn decode_found<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Option<T>> {
    match decode(path, bytes) {
        Err(Error::Record {
            source: keel_durable::record::RecordError::Malformed(_),
            ..
        }) => Ok(None),
        other => other.map(Some),
    }
}

/// A record's bytes, marked with its version.
pub(crate) fn encode(record: &impl Serialize) -> Vec<u8> {
    keel_durable::record::encode(VERSION, record)
}

/// The record read from `bytes` (of the file at `path`), of this version
/// or an earlier one.
pub(crate) fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    keel_durable::record::decode(bytes, VERSION)
        .map(|(_, record)| record)
        .map_err(|source| Error::Record {
            path: path.to_owned(),
            source,
        })
}

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
