//! Named volumes, Docker's "local" driver: a directory each under the
//! engine's root (`volumes/NAME/_data`), with a small record beside it.
//! They outlive the containers that use them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::container::Container;
use crate::error::{Context, Error, Result};
use crate::mounts::{Kind, Mount};

const RECORD: &str = "volume.json";
const DATA: &str = "_data";

/// A volume as `docker volume inspect` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Made for one container (`-v /path`), not named by a user.
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug)]
pub(crate) struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub(crate) fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        // A volume whose record was never written was never made.
        for entry in fs::read_dir(&dir).context(|| format!("cannot list {}", dir.display()))? {
            let path = entry.context(|| "a volume".to_owned())?.path();
            if !path.join(RECORD).exists() {
                fs::remove_dir_all(&path).ok();
            } else {
                keel_durable::remove_leftovers(&path)
                    .context(|| format!("cannot clean {}", path.display()))?;
            }
        }
        Ok(Self { dir })
    }

    /// Makes a volume, or returns the one of that name (as Docker does).
    pub(crate) fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool)> {
        crate::mounts::check_volume_name(name)?;
        if let Ok(volume) = self.get(name) {
            return Ok((volume, false));
        }
        let dir = self.dir.join(name);
        let volume = Volume {
            name: name.to_owned(),
            driver: "local".to_owned(),
            mountpoint: dir.join(DATA),
            created_at: keel_time::now_rfc3339(),
            labels,
            options: BTreeMap::new(),
            scope: "local".to_owned(),
            anonymous,
        };
        let made = (|| {
            fs::create_dir_all(&volume.mountpoint)
                .context(|| format!("cannot create {}", volume.mountpoint.display()))?;
            crate::record::write_atomically(&dir.join(RECORD), &crate::record::encode(&volume))
        })();
        if let Err(error) = made {
            fs::remove_dir_all(&dir).ok();
            return Err(error);
        }
        Ok((volume, true))
    }

    pub(crate) fn get(&self, name: &str) -> Result<Volume> {
        let path = self.dir.join(name).join(RECORD);
        let bytes = fs::read(&path).map_err(|_| Error::NoSuchVolume(name.to_owned()))?;
        crate::record::decode(&path, &bytes)
    }

    /// Every volume, by name.
    pub(crate) fn list(&self) -> Vec<Volume> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names.iter().filter_map(|n| self.get(n).ok()).collect()
    }

    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        // The record goes first: a half-removed volume is no volume.
        fs::remove_file(dir.join(RECORD)).map_err(|_| Error::NoSuchVolume(name.to_owned()))?;
        fs::remove_dir_all(&dir).context(|| format!("cannot remove {}", dir.display()))
    }

    pub(crate) fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    /// Bytes the volume's files hold.
    pub(crate) fn size(&self, name: &str) -> u64 {
        crate::tree_size(&self.data_dir(name))
    }
}

/// Copies what the image has at a volume's target into the new, empty
/// volume, keeping owners, modes and links (Docker's copy-up).
pub(crate) fn copy_up(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let describe = || format!("copying {} into the volume", from.display());
    for entry in fs::read_dir(from).context(describe)? {
        let entry = entry.context(describe)?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let metadata = fs::symlink_metadata(&source).context(describe)?;
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let link = fs::read_link(&source).context(describe)?;
            std::os::unix::fs::symlink(link, &target).context(describe)?;
        } else if kind.is_dir() {
            fs::create_dir(&target).context(describe)?;
            copy_up(&source, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target).context(describe)?;
        } else {
            continue; // Devices and sockets stay in the image.
        }
        std::os::unix::fs::lchown(&target, Some(metadata.uid()), Some(metadata.gid()))
            .context(describe)?;
        if !kind.is_symlink() {
            fs::set_permissions(
                &target,
                fs::Permissions::from_mode(metadata.mode() & 0o7777),
            )
            .context(describe)?;
        }
    }
    let metadata = fs::metadata(from).context(describe)?;
    fs::set_permissions(to, fs::Permissions::from_mode(metadata.mode() & 0o7777))
        .context(describe)?;
    std::os::unix::fs::chown(to, Some(metadata.uid()), Some(metadata.gid())).context(describe)
}

impl crate::Engine {
    /// Makes the volumes and bind sources a new container's mounts need;
    /// records in `made` the volumes made here (removed if create fails).
    pub(crate) fn provide_mounts(
        &self,
        mounts: &mut [Mount],
        made: &mut Vec<String>,
    ) -> Result<()> {
        for mount in mounts {
            match mount.kind {
                Kind::Volume => {
                    let anonymous = mount.source.is_empty();
                    if anonymous {
                        mount.source = crate::random_id()?;
                    }
                    let (_, new) =
                        self.volumes
                            .create(&mount.source, BTreeMap::new(), anonymous)?;
                    if new {
                        made.push(mount.source.clone());
                    }
                }
                // `-v` makes a missing host directory, as Docker does.
                Kind::Bind if mount.create_source && !Path::new(&mount.source).exists() => {
                    fs::create_dir_all(&mount.source)
                        .context(|| format!("cannot create the bind source {}", mount.source))?;
                }
                Kind::Bind | Kind::Tmpfs => {}
            }
        }
        Ok(())
    }

    /// Fills each empty volume mounted where the image has files with
    /// them, before the container first sees it (unless `nocopy`).
    pub(crate) fn fill_new_volumes(&self, container: &Container, rootfs: &Path) -> Result<()> {
        for mount in &container.config.mounts {
            if mount.kind != Kind::Volume || !mount.copy {
                continue;
            }
            let data = self.volumes.data_dir(&mount.source);
            let is_empty = fs::read_dir(&data)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if is_empty && let Some(source) = real_dir_below(rootfs, &mount.target) {
                copy_up(&source, &data)?;
            }
        }
        Ok(())
    }

    /// Removes the anonymous volumes of a container being removed that
    /// no other container uses.
    pub(crate) fn remove_anonymous_volumes(&self, table: &crate::Table, container: &Container) {
        for mount in &container.config.mounts {
            let anonymous = self.volumes.get(&mount.source).is_ok_and(|v| v.anonymous);
            if mount.kind == Kind::Volume
                && anonymous
                && users(table, &mount.source)
                    .iter()
                    .all(|id| *id == container.id)
                && self.volumes.remove(&mount.source).is_ok()
            {
                self.volume_event(&mount.source, "destroy");
            }
        }
    }

    /// Makes a volume (a random name when none is given), or returns the
    /// one of that name.
    pub fn volume_create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let _table = self.lock();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => crate::random_id()?,
        };
        let (volume, new) = self.volumes.create(&name, labels, false)?;
        if new {
            self.volume_event(&name, "create");
        }
        Ok(volume)
    }

    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volumes.get(name)
    }

    /// Every volume, with the ids of the containers that use it.
    pub fn volumes(&self) -> Vec<(Volume, Vec<String>)> {
        let table = self.lock();
        self.volumes
            .list()
            .into_iter()
            .map(|v| {
                let users = users(&table, &v.name);
                (v, users)
            })
            .collect()
    }

    /// Bytes a volume's files take.
    pub fn volume_size(&self, name: &str) -> u64 {
        self.volumes.size(name)
    }

    /// The table, once no create is under way: the volumes a create has
    /// made or named are nobody's until its record is in.
    fn idle_creates(&self) -> std::sync::MutexGuard<'_, crate::Table> {
        let mut table = self.lock();
        while table.creating > 0 {
            table = self.changed.wait(table).unwrap_or_else(|p| p.into_inner());
        }
        table
    }

    /// Removes a volume no container uses.
    pub fn volume_remove(&self, name: &str) -> Result<()> {
        let table = self.idle_creates();
        self.volumes.get(name)?;
        let users = users(&table, name);
        if !users.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.to_owned(),
                users,
            });
        }
        self.volumes.remove(name)?;
        self.volume_event(name, "destroy");
        Ok(())
    }

    /// Removes the volumes no container uses: anonymous ones, or with
    /// `all` named ones too, that `selected` picks. Returns their names and
    /// the bytes freed.
    pub fn volume_prune(
        &self,
        all: bool,
        selected: impl Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        let table = self.idle_creates();
        let mut removed = (Vec::new(), 0);
        for volume in self.volumes.list() {
            if (all || volume.anonymous)
                && selected(&volume)
                && users(&table, &volume.name).is_empty()
            {
                let size = self.volumes.size(&volume.name);
                self.volumes.remove(&volume.name)?;
                self.volume_event(&volume.name, "destroy");
                removed.0.push(volume.name);
                removed.1 += size;
            }
        }
        Ok(removed)
    }
}

/// The containers that mount volume `name`.
fn users(table: &crate::Table, name: &str) -> Vec<String> {
    table
        .containers
        .values()
        .filter(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.kind == Kind::Volume && m.source == name)
        })
        .map(|c| c.id.clone())
        .collect()
}

/// `target` inside `rootfs`, if every part of the way is a real directory
/// (a symlink in the image could point anywhere on the host).
fn real_dir_below(rootfs: &Path, target: &str) -> Option<PathBuf> {
    let mut path = rootfs.to_owned();
    for part in Path::new(target).components().skip(1) {
        path.push(part);
        if !fs::symlink_metadata(&path).ok()?.is_dir() {
            return None;
        }
    }
    Some(path)
}
