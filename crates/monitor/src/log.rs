//! The container's log, as Docker's json-file driver writes it, rotated at
//! its limits into the files `keel_monitor_protocol::files` lays out.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use keel_monitor_protocol::files::{LOG, open_log, rotated_logs};
use keel_monitor_protocol::message::LogLimits;

use crate::error::{Context, Result};

/// The log a monitor appends to, rotating it at its limits.
#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    limits: LogLimits,
}

impl Writer {
    /// Opens the current log in the container's directory.
    pub(crate) fn open(dir: &Path, limits: LogLimits) -> Result<Self> {
        let file = open_log(dir).context(|| "the container log".to_owned())?;
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
        let mut kept = rotated_logs(&self.dir);
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
    use keel_monitor_protocol::files::log_files;

    #[test]
    fn the_log_rotates_into_numbered_files_and_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_size: 10,
            max_files: 3,
        };
        let mut writer = Writer::open(dir.path(), limits).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            writer.append(line.as_bytes()).unwrap();
        }
        let contents: Vec<String> = log_files(dir.path())
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(contents, ["bbbbbb\n", "cccccc\n", "dddddd\n"]);
    }
}
