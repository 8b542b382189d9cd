//! What a monitor leaves in the container's directory, for the daemon to
//! read: the json-file log (as Docker's json-file driver writes it) and its
//! rotations, the exit record, and the sockets it serves.
//!
//! The current log is [`LOG`]; a full one is renamed once, to the next
//! number (`.7` after `.6`), and never again, so a reader that follows the
//! log from file to file cannot lose its place in a cascade of renames
//! (Docker's `.1`-is-newest scheme renames every file at each rotation).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The current log.
pub const LOG: &str = "container-json.log";
/// The exit record, written when the container's process ends.
pub const EXIT: &str = "exit.json";

/// How the container ended, as the monitor records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    /// RFC 3339, as Docker shows it.
    pub finished_at: String,
}

/// One line of Docker's json-file log.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// The socket a monitor serves: the container's, or an exec's.
pub fn socket_name(exec: Option<&str>) -> String {
    match exec {
        None => "attach.sock".to_owned(),
        Some(id) => format!("exec-{id}.sock"),
    }
}

/// The OCI process of an exec instance.
pub fn exec_process_name(exec: &str) -> String {
    format!("exec-{exec}.json")
}

/// Opens (making it if need be) the current log in the container's
/// directory, readable by root and its group only, as Docker's.
pub fn open_log(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(dir.join(LOG))
}

/// The rotated logs in `dir` with their numbers, oldest first.
pub fn rotated_logs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut rotated: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name
                .to_str()?
                .strip_prefix(LOG)?
                .strip_prefix('.')?
                .parse()
                .ok()?;
            Some((number, entry.path()))
        })
        .collect();
    rotated.sort_by_key(|(number, _)| *number);
    rotated
}

/// The log files of the container in `dir`, oldest first (the last is
/// the current one).
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    rotated_logs(dir)
        .into_iter()
        .map(|(_, path)| path)
        .chain(std::iter::once(dir.join(LOG)))
        .collect()
}
