//! A container's log options, as Docker's json-file driver takes them
//! (`max-size`, `max-file`). Unlike Docker, Keel rotates by default (10 MB
//! x 3 files), so a chatty container cannot fill the disk. The monitor
//! writes and rotates the log (`keel-monitor`); its files are laid out as
//! `keel_monitor_protocol::files` says.

use std::collections::BTreeMap;

use keel_monitor_protocol::message::LogLimits;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

impl LogConfig {
    /// The limits the options set, checked as Docker checks them.
    pub fn limits(&self) -> Result<LogLimits> {
        if !matches!(self.driver.as_str(), "" | "json-file") {
            return Err(Error::InvalidParameter(format!(
                "logging driver {:?} is not supported by Keel: use json-file",
                self.driver
            )));
        }
        let mut limits = LogLimits {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        };
        for (key, value) in &self.options {
            match key.as_str() {
                "max-size" => {
                    limits.max_size = keel_units::from_human_size(value).map_err(|_| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_options_are_read_as_dockers_json_file_driver_reads_them() {
        let config = |pairs: &[(&str, &str)]| LogConfig {
            driver: String::new(),
            options: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            config(&[]).limits().unwrap(),
            LogLimits {
                max_size: 10_000_000,
                max_files: 3
            }
        );
        assert_eq!(
            config(&[("max-size", "1k"), ("max-file", "2")])
                .limits()
                .unwrap(),
            LogLimits {
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
}
