//! Control groups for Keel containers.
//!
//! One [`Cgroup`] is a container's group in every mounted hierarchy: the v1
//! controller hierarchies plus the unified (v2) one, whichever the machine
//! has. [`Hierarchies::detect`] reads the mount table to find them, so a pure
//! v2 machine, a pure v1 machine and the hybrid layout (v1 controllers with a
//! controller-less cgroup2 beside them) are all handled by the same code.

mod devices;
mod error;
mod hierarchy;
mod path;
mod resources;
pub mod stats;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use hierarchy::{Hierarchies, Version};
pub use path::{CgroupPath, systemd_to_cgroupfs};
pub use resources::Skipped;

/// A container's cgroup: one directory per mounted hierarchy.
///
/// It serializes to JSON so that the runtime can record it at create time
/// and later commands act on exactly the same directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    version: Version,
    dirs: Vec<Dir>,
}

/// One directory of a cgroup and the controllers its hierarchy carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Dir {
    path: PathBuf,
    /// Controllers of this hierarchy; empty for the unified hierarchy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    controllers: Vec<String>,
    /// Whether this cgroup made the directory (and so must remove it).
    created: bool,
}

impl Cgroup {
    /// Creates (or reuses) the cgroup at `path` in every hierarchy.
    ///
    /// On error every directory made so far is removed again.
    pub fn create(hierarchies: &Hierarchies, path: &CgroupPath) -> Result<Self, Error> {
        let mut cgroup = Cgroup {
            version: hierarchies.version(),
            dirs: Vec::new(),
        };
        for (base, controllers) in hierarchies.bases(path)? {
            let dir = base.join(path.relative());
            let created = match make_dirs(&dir, &controllers) {
                Ok(created) => created,
                Err(e) => {
                    cgroup.remove_quietly();
                    return Err(e);
                }
            };
            cgroup.dirs.push(Dir {
                path: dir,
                controllers,
                created,
            });
        }
        Ok(cgroup)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Each directory of this cgroup with its hierarchy's controllers (none
    /// for the unified hierarchy), in mount-table order.
    pub fn directories(&self) -> impl Iterator<Item = (&Path, &[String])> {
        self.dirs
            .iter()
            .map(|d| (d.path.as_path(), d.controllers.as_slice()))
    }

    /// The directory of this cgroup that carries `controller`, or the
    /// unified directory when `controller` is `None`.
    fn dir_for(&self, controller: Option<&str>) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| match controller {
                Some(c) => d.controllers.iter().any(|have| have == c),
                None => d.controllers.is_empty(),
            })
            .map(|d| d.path.as_path())
    }

    /// Moves process `pid` (and its threads) into this cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), Error> {
        let value = pid.to_string();
        for dir in &self.dirs {
            write_file(&dir.path.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }

    /// The processes in this cgroup (not in its children).
    pub fn processes(&self) -> Result<Vec<i32>, Error> {
        let Some(dir) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let path = dir.path.join("cgroup.procs");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Read { path, source }),
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes (`true`) or thaws (`false`) every process in the cgroup.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        match self.version {
            Version::V2 => {
                let dir = self.dir_for(None).ok_or(Error::NoController("freezer"))?;
                write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                wait_for(
                    &dir.join("cgroup.events"),
                    if frozen { "frozen 1" } else { "frozen 0" },
                )
            }
            Version::V1 => {
                let dir = self
                    .dir_for(Some("freezer"))
                    .ok_or(Error::NoController("freezer"))?;
                let state = if frozen { "FROZEN" } else { "THAWED" };
                write_file(&dir.join("freezer.state"), state)?;
                wait_for(&dir.join("freezer.state"), state)
            }
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        let (file, marker) = match self.version {
            Version::V2 => (
                self.dir_for(None).map(|d| d.join("cgroup.events")),
                "frozen 1",
            ),
            Version::V1 => (
                self.dir_for(Some("freezer"))
                    .map(|d| d.join("freezer.state")),
                "FROZEN",
            ),
        };
        file.and_then(|f| fs::read_to_string(f).ok())
            .is_some_and(|text| text.lines().any(|l| l.trim() == marker))
    }

    /// Removes the directories this cgroup created, waiting briefly for
    /// exiting processes to leave them.
    pub fn remove(&self) -> Result<(), Error> {
        for dir in self.dirs.iter().filter(|d| d.created) {
            remove_dir(&dir.path)?;
        }
        Ok(())
    }

    /// Best-effort removal on an error path, where the first error is the
    /// one worth reporting.
    fn remove_quietly(&self) {
        let _ = self.remove();
    }
}

/// Makes `dir` and its missing parents. Returns whether `dir` itself was
/// made here. A v1 cpuset needs `cpus` and `mems` filled before it can take
/// tasks, so every new cpuset level inherits its parent's.
fn make_dirs(dir: &Path, controllers: &[String]) -> Result<bool, Error> {
    if dir.is_dir() {
        return Ok(false);
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent, controllers)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(source) => {
            return Err(Error::Create {
                path: dir.to_owned(),
                source,
            });
        }
    }
    if controllers.iter().any(|c| c == "cpuset")
        && let Err(e) = inherit_cpuset(dir)
    {
        let _ = fs::remove_dir(dir);
        return Err(e);
    }
    Ok(true)
}

fn inherit_cpuset(dir: &Path) -> Result<(), Error> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_trimmed(&dir.join(file))?.is_empty() {
            write_file(&dir.join(file), &read_trimmed(&parent.join(file))?)?;
        }
    }
    Ok(())
}

fn remove_dir(path: &Path) -> Result<(), Error> {
    // A process that was just killed can linger in cgroup.procs until it is
    // reaped; rmdir fails with EBUSY until then.
    let mut delay = Duration::from_micros(200);
    for _ in 0..40 {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(Error::Remove {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    Err(Error::Busy(path.to_owned()))
}

/// Polls `file` until one of its lines reads `wanted` (freezing is
/// asynchronous in both cgroup versions).
fn wait_for(file: &Path, wanted: &str) -> Result<(), Error> {
    for _ in 0..1000 {
        if read_file(file)?.lines().any(|l| l.trim() == wanted) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::Timeout {
        path: file.to_owned(),
        wanted: wanted.to_owned(),
    })
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    use std::io::Write;
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| Error::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
}

pub(crate) fn read_file(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_trimmed(path: &Path) -> Result<String, Error> {
    Ok(read_file(path)?.trim().to_owned())
}
