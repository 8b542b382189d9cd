//! The image operations frontends ask for, each the store's work with the
//! events Docker publishes for it, so that no frontend touches the store
//! for a change or forgets an event.

use std::io::{Read, Write};

use keel_image::{Cancel, Digest, Image, ImportOptions, Loaded, Pruned, Reference, Removal};

use crate::Engine;
use crate::error::Result;

impl Engine {
    /// Names the image `source` names also `reference`.
    pub fn tag_image(&self, source: &str, reference: &Reference) -> Result<()> {
        let id = self.images.resolve(source)?;
        self.images.tag(source, reference)?;
        self.image_event(id.as_str(), &reference.familiar(), "tag");
        Ok(())
    }

    /// Removes the reference or image `name` (an image that containers
    /// use only with `force`, and never one a running container uses).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        let id = self.images.resolve(name)?;
        let removals = self
            .images
            .remove_image(name, force, |id| self.is_running(id))?;
        for removal in &removals {
            match removal {
                Removal::Untagged(_) => self.image_event(id.as_str(), id.as_str(), "untag"),
                // Layers go too, and are in the answer, but have no event.
                Removal::Deleted(digest) if *digest == id => {
                    self.image_event(id.as_str(), id.as_str(), "delete")
                }
                Removal::Deleted(_) => {}
            }
        }
        Ok(removals)
    }

    /// Removes the images no container uses that `selected` picks:
    /// dangling ones, or with `all` every unused one.
    pub fn prune_images(&self, all: bool, selected: impl Fn(&Image) -> bool) -> Result<Pruned> {
        let images: Vec<Digest> = self.images.images()?.into_iter().map(|i| i.id).collect();
        let pruned = self.images.prune_images(all, selected)?;
        for removal in &pruned.removals {
            match removal {
                Removal::Untagged(name) => self.image_event(name, name, "untag"),
                Removal::Deleted(digest) if images.contains(digest) => {
                    self.image_event(digest.as_str(), digest.as_str(), "delete")
                }
                Removal::Deleted(_) => {}
            }
        }
        Ok(pruned)
    }

    /// Loads the images of a docker-archive or OCI layout (`name` says
    /// which, in errors).
    pub fn load_images(
        &self,
        archive: impl Read,
        name: &str,
        cancel: &Cancel,
    ) -> Result<Vec<Loaded>> {
        let loaded = self.images.load(archive, name, cancel)?;
        for image in &loaded {
            let id = image.id.as_str();
            self.image_event(id, id, "load");
        }
        Ok(loaded)
    }

    /// Writes the images `names` name as one archive.
    pub fn save_images(&self, names: &[String], out: impl Write) -> Result<()> {
        for name in names {
            let id = self.images.resolve(name)?;
            self.image_event(id.as_str(), id.as_str(), "save");
        }
        Ok(self.images.save(names, out)?)
    }

    /// Makes an image of a root filesystem tarball.
    pub fn import_image(
        &self,
        tarball: impl Read,
        changes: &[String],
        mut options: ImportOptions,
        reference: Option<&Reference>,
        cancel: &Cancel,
    ) -> Result<Digest> {
        keel_build::apply_changes(&mut options.config, changes)?;
        let id = self.images.import(tarball, &options, reference, cancel)?;
        self.image_event(id.as_str(), id.as_str(), "import");
        Ok(id)
    }
}
