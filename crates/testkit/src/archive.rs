//! Image content built in memory for tests: layer tarballs entry by
//! entry, image configs, and docker-archives of them, as `docker save`
//! writes them.

use std::fs;
use std::io::Write;

use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The sha256 of `bytes` in hex.
pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The OCI digest of `bytes`: `sha256:` and its hex.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(bytes))
}

/// Go's name for this machine's architecture, as image configs use it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds a layer tarball in memory, entry by entry.
#[allow(missing_debug_implementations)] // tar's builder has no Debug
pub struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// An entry with any name, `../` and absolute ones included, which the
    /// tar crate's safe setters refuse to write.
    pub fn raw(
        self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> LayerTar {
        self.entry(kind, name, link, data, |_| {})
    }

    /// An entry whose header `edit` adjusts (owner, mode, device numbers).
    pub fn entry(
        mut self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
        edit: impl FnOnce(&mut tar::Header),
    ) -> LayerTar {
        let mut header = tar::Header::new_ustar();
        header.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        edit(&mut header);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    /// PAX extended attributes for the next entry.
    pub fn xattr(self, name: &str, value: &[u8]) -> LayerTar {
        self.pax(&format!("SCHILY.xattr.{name}"), value)
    }

    /// A PAX record for the next entry (`linkpath` for a link target
    /// longer than a header holds, say).
    pub fn pax(mut self, key: &str, value: &[u8]) -> LayerTar {
        self.builder.append_pax_extensions([(key, value)]).unwrap();
        self
    }

    pub fn dir(self, name: &str) -> LayerTar {
        self.raw(tar::EntryType::Directory, name, None, b"")
    }

    pub fn file(self, name: &str, content: &[u8]) -> LayerTar {
        self.raw(tar::EntryType::Regular, name, None, content)
    }

    pub fn symlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Symlink, name, Some(target), b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Link, name, Some(target), b"")
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

/// The busybox root filesystem as one uncompressed layer.
pub fn busybox_layer() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busybox.tar");
    crate::busybox_rootfs_tar(&path).unwrap();
    fs::read(path).unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip bomb: a gzip'd layer of one file of `size` zero bytes (a
/// multiple of 1 MiB), about a thousandth of that compressed: gzip members
/// of a MiB of zeros each, one after the other, as gzip allows.
pub fn gzip_bomb(size: u64) -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    assert_eq!(size % MIB, 0, "a bomb of whole MiBs");
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let member = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let zeros = member(&[0u8; MIB as usize]);
    let mut bomb = member(header.as_bytes());
    for _ in 0..size / MIB {
        bomb.extend_from_slice(&zeros);
    }
    bomb.extend(member(&[0u8; 1024]));
    bomb
}

/// An image config for uncompressed `layers` (their digests are the diff
/// ids), `created` at a fixed time plus `age_rank` seconds.
pub fn config(layers: &[&[u8]], age_rank: u64) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|layer| digest(layer)).collect();
    serde_json::to_vec(&json!({
        "architecture": go_arch(),
        "os": "linux",
        "created": format!("2026-01-01T00:00:{:02}Z", age_rank % 60),
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// One image of a docker-archive: its layer blobs (as stored in the
/// archive), its config, its tags.
#[derive(Debug)]
pub struct ArchiveImage<'a> {
    pub blobs: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub tags: &'a [&'a str],
}

/// A docker-archive as `docker save` (up to Docker 24) writes it.
pub fn docker_archive(images: &[ArchiveImage<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for image in images {
        let config_name = format!("{}.json", hex(&image.config));
        append(&mut builder, &config_name, &image.config);
        let mut layers = Vec::new();
        for blob in &image.blobs {
            let name = format!("{}/layer.tar", hex(blob));
            append(&mut builder, &name, blob);
            layers.push(name);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": image.tags, "Layers": layers}));
    }
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// A one-image docker-archive of uncompressed layers.
pub fn archive_of(layers: &[&[u8]], tags: &[&str]) -> Vec<u8> {
    docker_archive(&[ArchiveImage {
        blobs: layers.iter().map(|layer| layer.to_vec()).collect(),
        config: config(layers, 0),
        tags,
    }])
}

pub fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).unwrap();
}
