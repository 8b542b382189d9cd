//! The json-file log and its rotation, as Docker's json-file driver with
//! `max-size` and `max-file`. Unlike Docker, Keel rotates by default (10 MB
//! x 3 files), so a chatty container cannot fill the disk. The current
//! file is `container-json.log`; a full one is renamed once, to the next
//! number (`.7` after `.6`), and never again, so a reader that follows the
//! log from file to file cannot lose its place in a cascade of renames
//! (Docker's `.1`-is-newest scheme renames every file at each rotation).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::monitor::LOG;

/// Keel's defaults: 10 MB, 3 files.
const DEFAULT_MAX_SIZE: u64 = 10_000_000;
const DEFAULT_MAX_FILES: u32 = 3;

/// `--log-driver` and `--log-opt`, as HostConfig.LogConfig has them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `json-file` (also when empty).
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// How large the log grows: a file's size, and how many files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_size: u64,
    pub max_files: u32,
}

impl LogConfig {
    /// The limits the options set, checked as Docker checks them.
    pub fn limits(&self) -> Result<Limits> {
        if !matches!(self.driver.as_str(), "" | "json-file") {
            return Err(Error::InvalidParameter(format!(
                "logging driver {:?} is not supported by Keel: use json-file",
                self.driver
            )));
        }
        let mut limits = Limits {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        };
        for (key, value) in &self.options {
            match key.as_str() {
                "max-size" => {
                    limits.max_size = human_size(value).ok_or_else(|| {
                        Error::InvalidParameter(format!(
                            "invalid max-size {value:?}: expected a size such as 10m, 512k or 1g"
                        ))
                    })?
                }
                "max-file" => {
                    limits.max_files = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::InvalidParameter(format!(
                            "invalid value for max-file: {value}: expected a number of files, at least 1"
                        ))
                    })?
                }
                other => {
                    return Err(Error::InvalidParameter(format!(
                        "unknown log opt '{other}' for json-file log driver (max-size and max-file are)"
                    )));
                }
            }
        }
        Ok(limits)
    }
}

/// `10m`, `1k`, `2g`, `100`: decimal units, as Docker's `max-size`
/// (go-units' FromHumanSize).
fn human_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let scale: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        _ => return None,
    };
    let number: f64 = digits.parse().ok().filter(|n: &f64| *n > 0.0)?;
    Some((number * scale) as u64)
}

/// The rotated files in `dir` with their numbers, oldest first.
fn rotated(dir: &Path) -> Vec<(u64, PathBuf)> {
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

/// The log files of the container in `dir`, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    rotated(dir)
        .into_iter()
        .map(|(_, path)| path)
        .chain(std::iter::once(dir.join(LOG)))
        .collect()
}

/// The log a monitor appends to, rotating it at its limits.
#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    limits: Limits,
}

/// Opens (making it if need be) the current log in the container's
/// directory, readable by root and its group only, as Docker's.
pub(crate) fn open_current(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(dir.join(LOG))
}

impl Writer {
    /// Opens the current log in the container's directory.
    pub(crate) fn open(dir: &Path, limits: Limits) -> Result<Self> {
        let file = open_current(dir).context(|| "the container log".to_owned())?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(Writer {
            dir: dir.to_owned(),
            file,
            size,
            limits,
        })
    }

    /// Appends one entry, rotating first if it would pass the size.
    pub(crate) fn append(&mut self, entry: &[u8]) -> Result<()> {
        if self.size > 0 && self.size + entry.len() as u64 > self.limits.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(entry)
            .context(|| "writing the container log".to_owned())?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let current = self.dir.join(LOG);
        let rotating = || "rotating the container log".to_owned();
        let mut kept = rotated(&self.dir);
        if self.limits.max_files > 1 {
            let next = kept.last().map_or(1, |(number, _)| number + 1);
            let renamed = self.dir.join(format!("{LOG}.{next}"));
            std::fs::rename(&current, &renamed).context(rotating)?;
            kept.push((next, renamed));
        } else {
            std::fs::remove_file(&current).context(rotating)?;
        }
        // The oldest go, so that max-file files are left with the new one.
        let keep = self.limits.max_files.saturating_sub(1) as usize;
        for (_, path) in kept.iter().take(kept.len().saturating_sub(keep)) {
            let _ = std::fs::remove_file(path);
        }
        *self = Writer::open(&self.dir, self.limits)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_options_are_read_as_dockers_json_file_driver_reads_them() {
        assert_eq!(human_size("10m"), Some(10_000_000));
        assert_eq!(human_size("1k"), Some(1000));
        assert_eq!(human_size("2GB"), Some(2_000_000_000));
        assert_eq!(human_size("x"), None);
        let config = |pairs: &[(&str, &str)]| LogConfig {
            driver: String::new(),
            options: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            config(&[]).limits().unwrap(),
            Limits {
                max_size: 10_000_000,
                max_files: 3
            }
        );
        assert_eq!(
            config(&[("max-size", "1k"), ("max-file", "2")])
                .limits()
                .unwrap(),
            Limits {
                max_size: 1000,
                max_files: 2
            }
        );
        for (pairs, message) in [
            (vec![("max-size", "lots")], "invalid max-size \"lots\""),
            (vec![("max-file", "0")], "invalid value for max-file: 0"),
            (vec![("compress", "true")], "unknown log opt 'compress'"),
        ] {
            let error = config(&pairs).limits().unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
        let syslog = LogConfig {
            driver: "syslog".into(),
            options: BTreeMap::new(),
        };
        assert!(
            syslog
                .limits()
                .unwrap_err()
                .to_string()
                .contains("\"syslog\"")
        );
    }

    #[test]
    fn the_log_rotates_into_numbered_files_and_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_size: 10,
            max_files: 3,
        };
        let mut writer = Writer::open(dir.path(), limits).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            writer.append(line.as_bytes()).unwrap();
        }
        let contents: Vec<String> = files(dir.path())
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(contents, ["bbbbbb\n", "cccccc\n", "dddddd\n"]);
    }
}
