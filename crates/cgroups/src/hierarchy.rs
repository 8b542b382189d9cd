use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CgroupPath, Error};

/// Which cgroup interface carries the resource controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// Controllers live in v1 hierarchies (possibly with a cgroup2 mount
    /// beside them: the hybrid layout).
    V1,
    /// Everything is in the unified hierarchy.
    V2,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// The cgroup hierarchies mounted on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    v1: Vec<Mount>,
    unified: Option<Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    mountpoint: PathBuf,
    /// The cgroup the mount shows as its root (not `/` inside a container
    /// that was given part of the host's hierarchy).
    root: String,
    /// For v1: the controllers (and `name=...` of a named hierarchy), in the
    /// order /proc/self/cgroup lists them.
    controllers: Vec<String>,
}

/// v1 controllers the kernel knows; other super options are mount flags.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

impl Hierarchies {
    /// Reads the mount table of this process.
    pub fn detect() -> Result<Self, Error> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_mountinfo(&text)
    }

    /// Parses mountinfo(5) text.
    pub fn from_mountinfo(text: &str) -> Result<Self, Error> {
        let mut hierarchies = Hierarchies {
            v1: Vec::new(),
            unified: None,
        };
        for line in text.lines() {
            // id parent dev root mountpoint options [optional...] - fstype source super
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut right = right.split(' ');
            let (Some(fstype), Some(_source), Some(super_options)) =
                (right.next(), right.next(), right.next())
            else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let (Some(root), Some(mountpoint)) = (left.get(3), left.get(4)) else {
                continue;
            };
            let mount = |controllers| Mount {
                mountpoint: PathBuf::from(unescape(mountpoint)),
                root: unescape(root),
                controllers,
            };
            match fstype {
                "cgroup2" if hierarchies.unified.is_none() => {
                    hierarchies.unified = Some(mount(Vec::new()));
                }
                "cgroup" => {
                    let controllers: Vec<String> = super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    // The same hierarchy may be mounted twice; the first wins.
                    if !controllers.is_empty()
                        && !hierarchies.v1.iter().any(|m| m.controllers == controllers)
                    {
                        hierarchies.v1.push(mount(controllers));
                    }
                }
                _ => {}
            }
        }
        if hierarchies.v1.is_empty() && hierarchies.unified.is_none() {
            return Err(Error::NotMounted);
        }
        Ok(hierarchies)
    }

    /// V1 when any v1 controller hierarchy is mounted, else v2.
    pub fn version(&self) -> Version {
        if self
            .v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")))
        {
            Version::V1
        } else {
            Version::V2
        }
    }

    /// Where `controller` can be used, to see what this kernel supports:
    /// the root of its v1 hierarchy, else the unified hierarchy's root if
    /// it lists the controller in `cgroup.controllers`.
    pub fn controller_root(&self, controller: &str) -> Option<&Path> {
        if let Some(mount) = self
            .v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
        {
            return Some(&mount.mountpoint);
        }
        let unified = self.unified.as_ref()?;
        let listed = fs::read_to_string(unified.mountpoint.join("cgroup.controllers")).ok()?;
        listed
            .split_whitespace()
            .any(|c| c == controller)
            .then_some(unified.mountpoint.as_path())
    }

    /// The directory each hierarchy's copy of `path` goes under, with the
    /// hierarchy's controllers. Relative paths start at this process's own
    /// cgroup in that hierarchy.
    pub(crate) fn bases(&self, path: &CgroupPath) -> Result<Vec<(PathBuf, Vec<String>)>, Error> {
        let own = if path.is_absolute() {
            String::new()
        } else {
            let file = Path::new("/proc/self/cgroup");
            fs::read_to_string(file).map_err(|source| Error::Read {
                path: file.to_owned(),
                source,
            })?
        };
        let mut bases = Vec::new();
        for mount in self.v1.iter().chain(&self.unified) {
            let mut base = mount.mountpoint.clone();
            if !path.is_absolute() {
                let key = mount.controllers.join(",");
                // Lines of /proc/self/cgroup read `id:controllers:path`.
                let current = own
                    .lines()
                    .filter_map(|l| l.split_once(':').and_then(|(_, rest)| rest.split_once(':')))
                    .find(|(controllers, _)| *controllers == key)
                    .map_or("/", |(_, cgroup)| cgroup);
                let below_root = current
                    .strip_prefix(mount.root.as_str())
                    .unwrap_or(current)
                    .trim_start_matches('/');
                base.push(below_root);
            }
            bases.push((base, mount.controllers.clone()));
        }
        Ok(bases)
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(Ok(v)) = field.get(i + 1..i + 4).map(|o| u8::from_str_radix(o, 8))
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 30 0:27 / /mnt/again rw - cgroup cgroup rw,cpu
";

    #[test]
    fn hybrid_layout_is_v1_with_the_unified_mount_kept() {
        let h = Hierarchies::from_mountinfo(HYBRID).unwrap();
        assert_eq!(h.version(), Version::V1);
        assert_eq!(h.v1.len(), 3, "the second cpu mount is the same hierarchy");
        assert_eq!(
            h.unified.as_ref().unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
        let bases = h.bases(&CgroupPath::parse("/k/c").unwrap()).unwrap();
        assert_eq!(bases.len(), 4);
        assert_eq!(bases[1].0, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(bases[1].1, vec!["memory".to_owned()]);
        assert!(bases[3].1.is_empty());
    }

    #[test]
    fn pure_unified_layout_is_v2() {
        let text = "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::from_mountinfo(text).unwrap();
        assert_eq!(h.version(), Version::V2);
    }

    #[test]
    fn a_table_without_cgroups_is_an_error() {
        let err = Hierarchies::from_mountinfo("24 1 254:0 / / rw - ext4 /dev/vda rw\n");
        assert!(matches!(err, Err(Error::NotMounted)));
    }

    #[test]
    fn escaped_mountpoints_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
