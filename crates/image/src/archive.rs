//! Image tarballs: `load` reads what `docker save` and `podman save` write
//! (docker-archive, with its manifest.json) and OCI image layouts (with
//! index.json); `save` writes a docker-archive that `docker load` and
//! `podman load` read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::layers::media_type;
use crate::reference::Reference;
use crate::store::{LayerBlob, NewLayer, Store};
use crate::unpack::decompress;

/// Small files of an archive that describe it rather than hold content.
const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];
const METADATA_LIMIT: u64 = 16 << 20;
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// One image a load recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: Digest,
    /// The reference it got, if the archive named it.
    pub reference: Option<Reference>,
    /// The image that reference pointed to before, now without it.
    pub replaced: Option<Digest>,
}

/// An entry of docker-archive's manifest.json.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An image found in an archive, its blobs stored, not yet recorded.
struct Found {
    config: Digest,
    layers: Vec<Digest>,
    names: Vec<Reference>,
}

/// What streaming through an archive stored and kept aside.
#[derive(Default)]
struct Contents {
    /// Archive path of each stored file, to its digest.
    files: HashMap<String, Digest>,
    /// Archive symlinks (docker save links repeated layers), to targets.
    links: HashMap<String, String>,
    metadata: BTreeMap<String, Vec<u8>>,
    /// Blobs this load added, removed again unless an image keeps them.
    added: BTreeSet<Digest>,
}

impl Store {
    /// Loads every image of a docker-archive or OCI-layout tarball (plain,
    /// gzip or zstd). Images appear only whole: on any error the store is
    /// left as it was, but for images of the archive already complete;
    /// `cancel` stops it, with the same care.
    pub fn load(
        &self,
        archive: impl Read,
        archive_name: &str,
        cancel: &Cancel,
    ) -> Result<Vec<Loaded>> {
        let guard = self.adding();
        let mut contents = Contents::default();
        let result = self
            .read_archive(archive, archive_name, &mut contents)
            .and_then(|()| {
                let found = find_images(self, &contents, archive_name)?;
                let mut loaded = Vec::new();
                for image in found {
                    loaded.extend(self.record_image(image, archive_name, cancel)?);
                }
                Ok(loaded)
            });
        drop(guard);
        match result {
            Ok(loaded) => {
                let (kept, _) = self.in_use()?;
                for digest in contents.added.difference(&kept) {
                    self.content().remove(digest)?;
                }
                Ok(loaded)
            }
            Err(error) => {
                self.collect_garbage()?;
                Err(error)
            }
        }
    }

    fn read_archive(
        &self,
        archive: impl Read,
        archive_name: &str,
        contents: &mut Contents,
    ) -> Result<()> {
        let bad = |source: io::Error| Error::Io {
            what: format!("cannot read the image archive {archive_name}"),
            source,
        };
        let mut tar = tar::Archive::new(decompress(archive).map_err(bad)?);
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let path = clean_path(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Symlink => {
                    if let Some(target) = entry.link_name_bytes() {
                        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                        let target =
                            clean_path(&format!("{dir}/{}", String::from_utf8_lossy(&target)));
                        contents.links.insert(path, target);
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if METADATA_FILES.contains(&path.as_str()) {
                        let mut bytes = Vec::new();
                        (&mut entry)
                            .take(METADATA_LIMIT)
                            .read_to_end(&mut bytes)
                            .map_err(bad)?;
                        contents.metadata.insert(path, bytes);
                        continue;
                    }
                    let expected = path
                        .strip_prefix("blobs/sha256/")
                        .map(Digest::from_hex)
                        .transpose()?;
                    let existed = expected
                        .as_ref()
                        .is_some_and(|d| self.content().contains(d));
                    let digest = match (&expected, existed) {
                        (Some(digest), true) => digest.clone(),
                        _ => {
                            let (digest, _) = self.content().write(
                                &mut entry,
                                expected.as_ref(),
                                &format!("{archive_name}: {path}"),
                            )?;
                            contents.added.insert(digest.clone());
                            digest
                        }
                    };
                    contents.files.insert(path, digest);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn record_image(
        &self,
        image: Found,
        archive_name: &str,
        cancel: &Cancel,
    ) -> Result<Vec<Loaded>> {
        let config_bytes = self.content().read(&image.config)?;
        let config = crate::store::parse_config(&config_bytes)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != image.layers.len() {
            return Err(Error::BadArchive {
                archive: archive_name.to_owned(),
                reason: format!(
                    "image {} has {} layers but its config lists {} diff ids",
                    image.config,
                    image.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (digest, diff_id) in image.layers.iter().zip(diff_ids) {
            let diff_id: Digest = diff_id.parse()?;
            let media_type = media_type(&self.content().path(digest))?;
            layers.push(NewLayer {
                verified: *digest == diff_id,
                blob: LayerBlob {
                    diff_id,
                    digest: digest.clone(),
                    media_type: media_type.to_owned(),
                },
            });
        }
        let id = self.add_image(&config_bytes, &layers, cancel)?;
        if image.names.is_empty() {
            return Ok(vec![Loaded {
                id,
                reference: None,
                replaced: None,
            }]);
        }
        image
            .names
            .into_iter()
            .map(|reference| {
                let replaced = self.set_ref(&reference, &id)?;
                Ok(Loaded {
                    id: id.clone(),
                    reference: Some(reference),
                    replaced,
                })
            })
            .collect()
    }

    /// Writes the images `names` name (references or ids) as one archive
    /// in the layout Docker 25 writes: an OCI image layout (`oci-layout`,
    /// `index.json`, `blobs/sha256/…` with configs, uncompressed layers and
    /// a manifest per image) that is also a docker-archive (`manifest.json`
    /// naming the same blobs), so `docker load`, `podman load` and OCI
    /// tools all read it. Tags are written in full
    /// (`docker.io/library/busybox:latest`): Docker reads them the same as
    /// its short form, and Podman would otherwise put them under localhost.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        // Each image once, with every tag it was named by.
        let mut images: Vec<(crate::store::Image, Vec<Reference>)> = Vec::new();
        for name in names {
            let id = self.resolve(name)?;
            let tag = Reference::parse(name).ok().filter(|_| !is_id(name, &id));
            match images.iter_mut().find(|(image, _)| image.id == id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((self.image(&id)?, tag.into_iter().collect())),
            }
        }
        let mut tar = tar::Builder::new(out);
        let failed = |source: io::Error| Error::Io {
            what: "cannot write the image archive".to_owned(),
            source,
        };
        let blob_path = |digest: &Digest| format!("blobs/sha256/{}", digest.hex());
        let mut written = BTreeSet::new();
        let mut entries: Vec<ArchiveEntry> = Vec::new();
        let mut descriptors = Vec::new();
        for (image, tags) in &images {
            let config = self.content().read(&image.id)?;
            if written.insert(image.id.clone()) {
                append(
                    &mut tar,
                    &blob_path(&image.id),
                    config.len() as u64,
                    config.as_slice(),
                )
                .map_err(failed)?;
            }
            let mut layers = Vec::new();
            for (layer, chain_id) in image.layers.iter().zip(&image.chain_ids) {
                let size = self
                    .layers()
                    .get(chain_id)?
                    .ok_or_else(|| {
                        Error::NoSuchImage(format!("layer {chain_id} of image {}", image.id))
                    })?
                    .tar_size;
                if written.insert(layer.diff_id.clone()) {
                    let stream = decompress(self.open_layer_blob(layer, chain_id)?)
                        .context(|| format!("cannot read layer {}", layer.diff_id))?;
                    append(&mut tar, &blob_path(&layer.diff_id), size, stream).map_err(failed)?;
                }
                layers.push(serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.diff_id,
                    "size": size,
                }));
            }
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": image.id,
                    "size": config.len(),
                },
                "layers": layers,
            }))
            .expect("a manifest serializes");
            let manifest_digest = Digest::of(&manifest);
            if written.insert(manifest_digest.clone()) {
                append(
                    &mut tar,
                    &blob_path(&manifest_digest),
                    manifest.len() as u64,
                    manifest.as_slice(),
                )
                .map_err(failed)?;
            }
            let descriptor = |annotations: Option<serde_json::Value>| {
                let mut descriptor = serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest.len(),
                });
                if let Some(annotations) = annotations {
                    descriptor["annotations"] = annotations;
                }
                descriptor
            };
            if tags.is_empty() {
                descriptors.push(descriptor(None));
            }
            for tag in tags {
                descriptors.push(descriptor(Some(serde_json::json!({
                    NAME_ANNOTATION: tag.to_string(),
                    REF_NAME_ANNOTATION: tag.tag().unwrap_or(crate::reference::DEFAULT_TAG),
                }))));
            }
            entries.push(ArchiveEntry {
                config: blob_path(&image.id),
                repo_tags: (!tags.is_empty())
                    .then(|| tags.iter().map(Reference::to_string).collect()),
                layers: image
                    .layers
                    .iter()
                    .map(|layer| blob_path(&layer.diff_id))
                    .collect(),
            });
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": descriptors,
        }))
        .expect("an index serializes");
        let manifest = serde_json::to_vec(&entries).expect("a manifest serializes");
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        for (path, bytes) in [
            ("oci-layout", &layout[..]),
            ("index.json", index.as_slice()),
            ("manifest.json", manifest.as_slice()),
        ] {
            append(&mut tar, path, bytes.len() as u64, bytes).map_err(failed)?;
        }
        tar.into_inner()
            .and_then(|mut out| out.flush())
            .map_err(failed)
    }
}

fn is_id(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    id.hex().starts_with(hex) && !hex.is_empty()
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(0);
    tar.append_data(&mut header, path, data)
}

/// `./a//b` is `a/b`; `..` goes up, never above the start.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The images an archive's metadata describes, by digest of stored blobs.
fn find_images(store: &Store, contents: &Contents, archive: &str) -> Result<Vec<Found>> {
    let bad = |reason: String| Error::BadArchive {
        archive: archive.to_owned(),
        reason,
    };
    let blob = |path: &str| -> Result<Digest> {
        let mut path = clean_path(path);
        for _ in 0..16 {
            if let Some(digest) = contents.files.get(&path) {
                return Ok(digest.clone());
            }
            match contents.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(bad(format!(
            "{path} is named in the manifest but missing from the archive"
        )))
    };
    if let Some(manifest) = contents.metadata.get("manifest.json") {
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
        return entries
            .into_iter()
            .map(|entry| {
                Ok(Found {
                    config: blob(&entry.config)?,
                    layers: entry
                        .layers
                        .iter()
                        .map(|layer| blob(layer))
                        .collect::<Result<_>>()?,
                    names: entry
                        .repo_tags
                        .unwrap_or_default()
                        .iter()
                        .map(|tag| Reference::parse(tag))
                        .collect::<Result<_>>()?,
                })
            })
            .collect();
    }
    let Some(index) = contents.metadata.get("index.json") else {
        return Err(bad(
            "neither manifest.json (docker save) nor index.json (OCI image layout) is in it"
                .to_owned(),
        ));
    };
    let index: ImageIndex =
        serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
    let mut found = Vec::new();
    for descriptor in index.manifests() {
        let annotations = descriptor.annotations().clone().unwrap_or_default();
        let names = annotations
            .get(NAME_ANNOTATION)
            .or_else(|| {
                annotations
                    .get(REF_NAME_ANNOTATION)
                    .filter(|name| name.contains(['/', ':']))
            })
            .map(|name| Reference::parse(name))
            .transpose()?
            .into_iter()
            .collect();
        let digest = blob(&format!("blobs/sha256/{}", descriptor.digest().digest()))?;
        let manifest = match descriptor.media_type() {
            MediaType::ImageIndex => {
                let nested: ImageIndex = serde_json::from_slice(&store.content().read(&digest)?)
                    .map_err(|e| bad(format!("index {digest}: {e}")))?;
                let chosen = nested
                    .manifests()
                    .iter()
                    .find(|m| {
                        m.platform().as_ref().is_none_or(|p| {
                            is_this_platform(&p.os().to_string(), &p.architecture().to_string())
                        })
                    })
                    .ok_or_else(|| {
                        bad(format!(
                            "index {digest} has no image for linux/{}",
                            go_arch()
                        ))
                    })?;
                blob(&format!("blobs/sha256/{}", chosen.digest().digest()))?
            }
            _ => digest,
        };
        let manifest: ImageManifest = serde_json::from_slice(&store.content().read(&manifest)?)
            .map_err(|e| bad(format!("manifest {manifest}: {e}")))?;
        found.push(Found {
            config: blob(&format!(
                "blobs/sha256/{}",
                manifest.config().digest().digest()
            ))?,
            layers: manifest
                .layers()
                .iter()
                .map(|layer| blob(&format!("blobs/sha256/{}", layer.digest().digest())))
                .collect::<Result<_>>()?,
            names,
        });
    }
    Ok(found)
}

/// Go's name for this machine's architecture, as image configs use it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn is_this_platform(os: &str, architecture: &str) -> bool {
    os == "linux" && architecture == go_arch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_cleaned_like_docker_save_links_need() {
        assert_eq!(clean_path("./abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(clean_path("blobs//sha256/x"), "blobs/sha256/x");
    }
}
