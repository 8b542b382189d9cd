//! A build's context: a directory read in place (with its .dockerignore)
//! or a tar (plain, gzip, bzip2, xz or zstd) a client sent, unpacked into a
//! directory of the daemon's own; and the Dockerfile found in it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::copy::clean;
use crate::error::{Error, Result};
use crate::ignore::Ignore;

/// The files a build's COPY and ADD read, and its Dockerfile.
#[derive(Debug)]
pub struct Context {
    pub dir: std::path::PathBuf,
    /// What the context's .dockerignore leaves out, for a context read in
    /// place; none for an unpacked tar, which its client filtered.
    pub ignore: Option<Ignore>,
    /// The Dockerfile's text.
    pub dockerfile: String,
}

impl Context {
    /// A context sent as a tar and unpacked into `dir`, built with its
    /// `dockerfile` (a path in it). The Dockerfile and the .dockerignore,
    /// which clients send even when .dockerignore excludes them, are then
    /// taken away if it does, as dockerd does, so that no COPY sees them.
    pub fn unpacked(dir: &Path, dockerfile: &str) -> Result<Context> {
        let text = read_dockerfile(dir, dockerfile)?;
        let ignore = std::fs::read_to_string(dir.join(".dockerignore"))
            .map(|text| Ignore::parse(&text))
            .unwrap_or_default();
        for sent in [".dockerignore", dockerfile] {
            if let Some(sent) = clean(sent).filter(|sent| ignore.excludes(sent)) {
                let path = dir.join(&sent);
                std::fs::remove_file(&path).map_err(|source| Error::Io {
                    what: format!("cannot take {sent} out of the build context"),
                    source,
                })?;
            }
        }
        Ok(Context {
            dir: dir.to_owned(),
            ignore: None,
            dockerfile: text,
        })
    }

    /// The directory `dir` read where it is, built with its `dockerfile`
    /// (a path in it): its `DOCKERFILE.dockerignore` or `.dockerignore`
    /// applies.
    pub fn in_place(dir: &Path, dockerfile: &str) -> Result<Context> {
        let text = read_dockerfile(dir, dockerfile)?;
        let ignore = Ignore::for_build(dir, dockerfile).map_err(|source| Error::Io {
            what: format!("cannot read the .dockerignore of {}", dir.display()),
            source,
        })?;
        Ok(Context {
            dir: dir.to_owned(),
            ignore: Some(ignore),
            dockerfile: text,
        })
    }
}

/// Unpacks the context tar `archive` into the empty directory `dir`. The
/// tar crate keeps every entry inside `dir` (no `..`, no absolute path,
/// no write through a symlink the archive made).
pub fn unpack(archive: impl Read, dir: &Path) -> Result<()> {
    let stream = keel_image::unpack::decompress(archive).map_err(|source| Error::Io {
        what: "cannot read the build context".into(),
        source,
    })?;
    let mut tar = tar::Archive::new(EndedTar {
        inner: stream,
        read: 0,
        padding: None,
    });
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_overwrite(true);
    tar.unpack(dir).map_err(|error| {
        Error::InvalidArgument(format!(
            "the build context is not a tar archive (plain, gzip, bzip2, xz or zstd): {error}"
        ))
    })?;
    // What follows the end marker is read too: a client still sending it
    // when the build's answer ends would see its connection closed.
    std::io::copy(&mut tar.into_inner(), &mut std::io::sink()).map_err(|source| Error::Io {
        what: "cannot read the build context".into(),
        source,
    })?;
    Ok(())
}

/// A tar stream that ends as a tar must: the docker CLI's context with a
/// Dockerfile from stdin (`-f -`) stops right after the last entry's
/// data, without its padding or the two zero blocks (moby's
/// ReplaceFileTarWrapper closes its pipe before its tar writer), which
/// dockerd's reader forgives. The zeros are added where the stream ends.
struct EndedTar<R> {
    inner: R,
    read: u64,
    /// Zeros still to give once the stream ended.
    padding: Option<u64>,
}

impl<R: Read> Read for EndedTar<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.padding.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.padding = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.padding.as_mut().expect("set at the end");
        let n = buf.len().min(*left as usize);
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// The text of the Dockerfile at `path` in the context `dir` (resolved
/// inside it).
fn read_dockerfile(dir: &Path, path: &str) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_tar_cut_after_its_last_entry_unpacks_as_dockerd_takes_it() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_mode(0o644);
        tar.append_data(&mut header, "Dockerfile", &b"FROM\n"[..])
            .unwrap();
        let mut bytes = tar.into_inner().unwrap();
        // The entry's data, without its padding and the end blocks.
        bytes.truncate(512 + 5);
        let dir = tempfile::tempdir().unwrap();
        unpack(bytes.as_slice(), dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
            "FROM\n"
        );
    }
}
