//! `docker diff`: what a container changed in its image's files, as
//! Docker's `ContainerChanges` lists it, whether it runs or not.

use std::path::Path;

use keel_image::Change;

use crate::Engine;
use crate::error::Result;

/// The mount points every container's root gets: Docker makes them in an
/// init layer below the container's own, so its diffs never list them;
/// Keel's start makes them in the container's layer.
const MOUNT_POINTS: [&str; 9] = [
    "dev/pts",
    "dev/shm",
    "dev/console",
    "proc",
    "sys",
    "etc/resolv.conf",
    "etc/hosts",
    "etc/hostname",
    "etc/mtab",
];

impl Engine {
    /// The changes in container `name`'s read/write layer, parents before
    /// children.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let container = self.container(name)?;
        let unlisted: Vec<&Path> = MOUNT_POINTS.iter().map(Path::new).collect();
        Ok(self.images.changes(&container.id, &unlisted)?)
    }
}
