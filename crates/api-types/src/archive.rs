//! `/containers/{id}/archive`: what a path in a container is, sent as the
//! `X-Docker-Container-Path-Stat` header (base64 of this JSON).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The header that carries a [`ContainerPathStat`].
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// A path's stat (swagger: ContainerPathStat; Go's `container.PathStat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl ContainerPathStat {
    /// Go's `os.ModeDir` and `os.ModeSymlink` in [`Self::mode`].
    pub const MODE_DIR: u32 = 1 << 31;
    pub const MODE_SYMLINK: u32 = 1 << 27;

    /// The header's value.
    pub fn to_header(&self) -> String {
        STANDARD.encode(serde_json::to_vec(self).expect("a stat serializes"))
    }

    /// Reads the header's value; `None` if it is not one.
    pub fn from_header(value: &str) -> Option<Self> {
        serde_json::from_slice(&STANDARD.decode(value.trim()).ok()?).ok()
    }

    pub fn is_dir(&self) -> bool {
        self.mode & Self::MODE_DIR != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & Self::MODE_SYMLINK != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_survives_its_header() {
        let stat = ContainerPathStat {
            name: "passwd".into(),
            size: 340,
            mode: 0o644,
            mtime: "2024-01-02T03:04:05.5Z".into(),
            link_target: String::new(),
        };
        assert_eq!(
            ContainerPathStat::from_header(&stat.to_header()),
            Some(stat)
        );
        assert!(ContainerPathStat::from_header("not base64!").is_none());
    }
}
