use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with a cgroup. Each variant names the file
/// or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cannot create cgroup {path}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot remove cgroup {path}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("cgroup {0} still has processes after they were killed")]
    Busy(PathBuf),
    #[error("timed out waiting for {path} to read {wanted:?}")]
    Timeout { path: PathBuf, wanted: String },
    #[error("no cgroup filesystem is mounted (none in /proc/self/mountinfo)")]
    NotMounted,
    #[error("the {0} controller is not mounted")]
    NoController(&'static str),
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{what} is not supported on cgroup {version}: {reason}")]
    Unsupported {
        what: String,
        version: &'static str,
        reason: &'static str,
    },
}
