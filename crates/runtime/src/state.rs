//! What the runtime remembers of a container between commands, and the
//! state it reports (the OCI state, shaped as runc prints it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use keel_cgroups::Cgroup;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

/// The file the runtime keeps in the container's state directory.
pub(crate) const RECORD: &str = "state.json";
/// Present while the container is created but not started.
pub(crate) const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub pid: i32,
    /// The init's start time in clock ticks, to tell it from a later
    /// process that reuses its pid.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub cgroup: Cgroup,
    pub config: Spec,
}

/// The lifecycle states of the OCI runtime spec, plus runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state `keel-runtime state` prints and hooks read on stdin.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl Record {
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORD);
        let text = std::fs::read(&path).context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| crate::Error::MalformedConfig {
            path,
            message: e.to_string(),
        })
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|e| crate::Error::MalformedConfig {
            path: dir.join(RECORD),
            message: e.to_string(),
        })?;
        write_atomically(&dir.join(RECORD), &json)
    }

    /// Where the container is in its lifecycle, read from the live system.
    ///
    /// An init that has exited but is not yet reaped still counts as alive,
    /// as crun counts it: conmon records the exit code when it reaps, and
    /// Podman, seeing "stopped" before that, finds no exit code.
    pub(crate) fn status(&self, dir: &Path) -> Status {
        match process_start(self.pid) {
            Some((state, start)) if start == self.start_time && state != 'X' => {
                if dir.join(EXEC_FIFO).exists() {
                    Status::Created
                } else if self.cgroup.is_frozen() {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    pub(crate) fn state(&self, status: Status) -> State {
        State {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
        }
    }
}

/// The state letter and start time (clock ticks after boot) of a process,
/// from /proc/<pid>/stat.
pub(crate) fn process_start(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after
    // the last ')'. State is field 3, start time field 22.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Writes a pid file as containerd and conmon read it: the number alone,
/// never half-written.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).context(|| format!("resolving {}", path.display()))?;
    write_atomically(&path, pid.to_string().as_bytes())
}

/// Writes `data` whole or not at all (see keel-durable), unsynced: a
/// container's state does not outlive the machine, and create is a hot
/// path (runc does not sync its state either).
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    keel_durable::replace(path, data).context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_has_a_start_time_and_a_dead_one_none() {
        let (state, start) = process_start(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
        assert_eq!(process_start(i32::MAX), None);
    }
}
