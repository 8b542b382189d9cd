//! Blobs (layers, configs, manifests) named by their sha256 digest, each
//! verified as it is written and made visible only whole: written under a
//! temporary name, then renamed into place (made durable with the image
//! that names it).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestWriter};
use crate::error::{Context, Error, Result};
use crate::write_behind::WriteBehind;

#[derive(Debug)]
pub struct ContentStore {
    /// `blobs/sha256`: one file per blob, named by its hex digest.
    blobs: PathBuf,
    /// Blobs being written; anything left here by a crash is removed on open.
    ingest: PathBuf,
}

impl ContentStore {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let store = Self {
            blobs: root.join("blobs/sha256"),
            ingest: root.join("ingest"),
        };
        fs::create_dir_all(&store.blobs)
            .context(|| format!("cannot create {}", store.blobs.display()))?;
        match fs::remove_dir_all(&store.ingest) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(error).context(|| format!("cannot clear {}", store.ingest.display()));
            }
            _ => {}
        }
        fs::create_dir_all(&store.ingest)
            .context(|| format!("cannot create {}", store.ingest.display()))?;
        Ok(store)
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).context(|| format!("cannot open blob {digest}"))
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(digest)).context(|| format!("cannot read blob {digest}"))
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        Ok(fs::metadata(self.path(digest))
            .context(|| format!("cannot stat blob {digest}"))?
            .len())
    }

    /// Stores what `reader` yields, naming it `what` in errors. With an
    /// `expected` digest, content that does not match is refused and not
    /// kept. Returns the digest and size.
    pub fn write(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        self.write_with(expected, what, |out| io::copy(&mut reader, out).map(drop))
    }

    /// Stores what `fill` writes (a layer made as it is stored), as
    /// [`ContentStore::write`] stores what it reads.
    pub fn write_with(
        &self,
        expected: Option<&Digest>,
        what: &str,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(Digest, u64)> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.ingest)
            .context(|| format!("cannot create a file in {}", self.ingest.display()))?;
        let mut writer = DigestWriter::new(io::BufWriter::with_capacity(
            256 * 1024,
            WriteBehind::new(temp),
        ));
        fill(&mut writer).context(|| format!("cannot store {what}"))?;
        let (buffered, digest, size) = writer.finish();
        let temp = buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .context(|| format!("cannot store {what}"))?
            .into_inner();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::DigestMismatch {
                what: what.to_owned(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        // No fsync here: a blob counts only once an image record names it,
        // and images are made durable by one syncfs of the whole store
        // (`Store::record_pending`); blobs no record names are removed on
        // open.
        let target = self.path(&digest);
        if !target.exists() {
            temp.persist(&target)
                .map_err(|error| error.error)
                .context(|| format!("cannot store {what} as {}", target.display()))?;
        }
        Ok((digest, size))
    }

    /// Stores a small blob held in memory (a config or manifest).
    pub fn write_bytes(&self, bytes: &[u8], what: &str) -> Result<Digest> {
        Ok(self.write(bytes, None, what)?.0)
    }

    pub fn remove(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.path(digest)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(error).context(|| format!("cannot remove blob {digest}"))
            }
            _ => Ok(()),
        }
    }

    /// Every blob in the store.
    pub fn digests(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.blobs)
            .context(|| format!("cannot list {}", self.blobs.display()))?;
        Ok(entries
            .filter_map(|entry| Digest::from_hex(&entry.ok()?.file_name().to_string_lossy()).ok())
            .collect())
    }
}

/// The version of the store's records' formats (images, references,
/// layers, snapshots): 1 since 2026-12-03, whose records before it are
/// version 0 and the same.
pub(crate) const RECORD_VERSION: u32 = 1;

/// A record's bytes, marked with its version.
pub(crate) fn encode_record(record: &impl serde::Serialize) -> Vec<u8> {
    keel_durable::record::encode(RECORD_VERSION, record)
}

/// The record in `bytes` (the file at `path`), of this version or an
/// earlier one.
pub(crate) fn decode_record<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<T> {
    keel_durable::record::decode(bytes, RECORD_VERSION)
        .map(|(_, record)| record)
        .map_err(|source| crate::Error::Record {
            path: path.to_owned(),
            source,
        })
}

/// Writes a record durably and atomically (see keel-durable), naming the
/// file in the error.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    keel_durable::write_atomically(path, bytes)
        .context(|| format!("cannot write {}", path.display()))
}
