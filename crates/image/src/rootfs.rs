//! Root filesystems as single tarballs: `import` makes a one-layer image
//! of one (with the config the caller made of its `--change`s), `export`
//! writes a container's merged filesystem as one.

use std::io::{Read, Write};

use serde_json::{Map, Value, json};

use crate::archive::go_arch;
use crate::cancel::Cancel;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{DOCKER_LAYER, LayerBlob, NewLayer, Store};
use crate::unpack::decompress;

/// What `docker import` takes besides the tarball.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// The image's container config (Docker's keys): what `--change`s
    /// made of it.
    pub config: Map<String, Value>,
    /// The history comment; Docker's default is "Imported from -" or the
    /// source's name.
    pub message: Option<String>,
    pub source: String,
    /// The RFC 3339 creation time to record.
    pub created: String,
}

impl Store {
    /// Makes a one-layer image of a root filesystem tarball (plain, gzip or
    /// zstd), tagged `reference` if given, unless `cancel` stops it.
    /// Returns the image id.
    pub fn import(
        &self,
        tarball: impl Read,
        options: &ImportOptions,
        reference: Option<&Reference>,
        cancel: &Cancel,
    ) -> Result<Digest> {
        let container_config = &options.config;
        self.adding_whole(|| {
            let stream = decompress(tarball).map_err(|source| Error::Io {
                what: format!("cannot read {}", options.source),
                source,
            })?;
            let (diff_id, _) = self.content().write(stream, None, &options.source)?;
            let config = json!({
                "architecture": go_arch(),
                "os": "linux",
                "created": options.created,
                "config": container_config,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{
                    "created": options.created,
                    "comment": options.message.clone().unwrap_or_else(|| format!("Imported from {}", options.source)),
                }],
            });
            let layer = NewLayer {
                blob: LayerBlob {
                    diff_id: diff_id.clone(),
                    digest: diff_id,
                    media_type: DOCKER_LAYER.to_owned(),
                },
                verified: true,
            };
            let config = serde_json::to_vec(&config).expect("a config serializes");
            let id = self.add_image(&config, &[layer], cancel)?;
            if let Some(reference) = reference {
                self.set_ref(reference, &id)?;
            }
            Ok(id)
        })
    }

    /// Writes the snapshot's merged filesystem (the image with the
    /// container's changes) as a tarball.
    pub fn export(&self, snapshot_id: &str, out: impl Write) -> Result<()> {
        let snapshot = self.snapshot(snapshot_id)?;
        let was_mounted = snapshot.is_mounted();
        let merged = self.mount_snapshot(&snapshot)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let written = tar
            .append_dir_all(".", &merged)
            .and_then(|()| tar.into_inner())
            .and_then(|mut out| out.flush());
        if !was_mounted {
            snapshot.unmount()?;
        }
        written.map_err(|source| Error::Io {
            what: format!("cannot export container {snapshot_id}"),
            source,
        })
    }
}
