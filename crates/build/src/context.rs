//! A build context sent as a tar (plain, gzip or zstd), unpacked into a
//! directory of the daemon's own, and the Dockerfile found in it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::copy::clean;
use crate::error::{Error, Result};

/// Unpacks the context tar `archive` into the empty directory `dir`. The
/// tar crate keeps every entry inside `dir` (no `..`, no absolute path,
/// no write through a symlink the archive made).
pub fn unpack(archive: impl Read, dir: &Path) -> Result<()> {
    let stream = keel_image::unpack::decompress(archive).map_err(|source| Error::Io {
        what: "cannot read the build context".into(),
        source,
    })?;
    let mut tar = tar::Archive::new(stream);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_overwrite(true);
    tar.unpack(dir).map_err(|error| {
        Error::InvalidArgument(format!(
            "the build context is not a tar archive (plain, gzip or zstd): {error}"
        ))
    })
}

/// The text of the Dockerfile at `path` in the context `dir` (resolved
/// inside it).
pub fn dockerfile(dir: &Path, path: &str) -> Result<String> {
    let missing = || Error::InvalidArgument(format!("Cannot locate specified Dockerfile: {path}"));
    let cleaned = clean(path).filter(|p| !p.is_empty()).ok_or_else(missing)?;
    let root = File::open(dir).map_err(|source| Error::Io {
        what: "cannot open the build context".into(),
        source,
    })?;
    let fd = rustix::fs::openat2(
        &root,
        cleaned.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .map_err(|_| missing())?;
    std::io::read_to_string(File::from(fd)).map_err(|_| missing())
}
