//! A container's log as readers ask for it (Docker's `logs`): the entries
//! of its json-file log, from the oldest file kept to the current one
//! (found by inode, so a rotation meanwhile skips nothing), picked by
//! stream, time and tail, and followed while the container may still
//! write. Each frontend formats the entries its own way.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keel_monitor_protocol::files::{LogLine, log_files};

use crate::error::Result;
use crate::{Engine, Status};

/// Which entries a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub stdout: bool,
    pub stderr: bool,
    /// Go on with what the container writes next, until it can write no
    /// more (or `until` passes).
    pub follow: bool,
    /// Only the last this many of what is there already.
    pub tail: Option<usize>,
    /// Only entries at or after this time (Unix nanoseconds).
    pub since: Option<i128>,
    /// Only entries at or before this time; a follower stops there.
    pub until: Option<i128>,
}

/// Which of the container's outputs an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One entry of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStream,
    /// When it was written, as RFC 3339 with nanoseconds.
    pub time: String,
    /// The line, with its newline if it had one.
    pub line: String,
}

impl LogEntry {
    /// An entry from one line of the log file; `None` if it is not one.
    fn parse(line: &str) -> Option<LogEntry> {
        let entry: LogLine = serde_json::from_str(line).ok()?;
        let stream = match entry.stream.as_str() {
            "stderr" => LogStream::Stderr,
            _ => LogStream::Stdout,
        };
        Some(LogEntry {
            stream,
            time: entry.time,
            line: entry.log,
        })
    }
}

impl LogQuery {
    fn picks(&self, entry: &LogEntry) -> bool {
        let stream = match entry.stream {
            LogStream::Stdout => self.stdout,
            LogStream::Stderr => self.stderr,
        };
        if !stream {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = keel_time::unix_nanos(&entry.time) else {
            return false;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time <= until)
    }
}

impl Engine {
    /// Hands the entries of container `id`'s log that `query` picks to
    /// `deliver`, oldest first, until it says false; following the log, if
    /// asked, until the container can write no more or `gone` says the
    /// reader went away. The log is opened at once (it is made with the
    /// container), so its output survives the container's removal.
    pub fn logs(
        &self,
        id: &str,
        query: &LogQuery,
        gone: impl Fn() -> bool,
        mut deliver: impl FnMut(LogEntry) -> bool,
    ) -> Result<()> {
        let id = self.container(id)?.id;
        let dir = self.dir(&id);
        let current = self.log_path(&id);
        let Some(mut file) = log_files(&dir)
            .iter()
            .find_map(|path| File::open(path).ok())
        else {
            return Ok(());
        };
        let mut position = 0u64;
        let mut entries = Vec::new();
        loop {
            entries.extend(read_new_entries(&mut file, &mut position, query));
            if !rotated(&file, &current) {
                break;
            }
            match open_next_log(&dir, &file) {
                Some(next) => (file, position) = (next, 0),
                None => break,
            }
        }
        if let Some(tail) = query.tail {
            entries.drain(..entries.len().saturating_sub(tail));
        }
        loop {
            for entry in entries.drain(..) {
                if !deliver(entry) {
                    return Ok(());
                }
            }
            if !query.follow {
                return Ok(());
            }
            // Checked before reading, so nothing written before the end
            // is missed.
            let more = self.may_write_more(&id)
                && query
                    .until
                    .is_none_or(|until| keel_time::now_unix_nanos() <= until);
            entries = read_new_entries(&mut file, &mut position, query);
            if entries.is_empty() && rotated(&file, &current) {
                // Read to its end above: go on with the file that came
                // next, even if the log rotated more than once meanwhile.
                match open_next_log(&dir, &file) {
                    Some(next) => (file, position) = (next, 0),
                    None => return Ok(()),
                }
                continue;
            }
            if entries.is_empty() {
                if !more || gone() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Whether the container may still write to its log: while it runs,
    /// or has been created and not yet (tried to) start.
    fn may_write_more(&self, id: &str) -> bool {
        self.container(id).is_ok_and(|c| match c.state.status {
            Status::Running => true,
            Status::Created => c.state.error.is_empty(),
            Status::Exited => false,
        })
    }
}

/// The entries `query` picks among the complete lines appended to the log
/// since `position`.
fn read_new_entries(file: &mut File, position: &mut u64, query: &LogQuery) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    if file.seek(SeekFrom::Start(*position)).is_err() {
        return entries;
    }
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
        *position += line.len() as u64;
        if let Some(entry) = LogEntry::parse(&line).filter(|entry| query.picks(entry)) {
            entries.push(entry);
        }
        line.clear();
    }
    entries
}

/// Whether the file at `path` is no longer the one open as `file` (the
/// monitor rotated the log).
fn rotated(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.ino() != named.ino(),
        _ => false,
    }
}

/// Opens the log file written after the one open as `file`, waiting out
/// the moment between a rotation's rename and its new file.
fn open_next_log(dir: &Path, file: &File) -> Option<File> {
    for _ in 0..200 {
        let next = next_log(&log_files(dir), file);
        if let Some(opened) = next.and_then(|path| File::open(path).ok()) {
            return Some(opened);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The file read last is gone (rotated out while the reader lagged):
    // on from the oldest kept.
    log_files(dir).iter().find_map(|path| File::open(path).ok())
}

/// The log file written after the one open as `file`, among `files`
/// (oldest first); None if it is not among them (a rename in flight, or
/// rotated out).
fn next_log(files: &[PathBuf], file: &File) -> Option<PathBuf> {
    let inode = file.metadata().ok()?.ino();
    let held = files
        .iter()
        .position(|path| std::fs::metadata(path).is_ok_and(|m| m.ino() == inode));
    files.get(held? + 1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_picks_entries_by_stream_and_time() {
        let entry = |stream, time: &str| LogEntry {
            stream,
            time: time.to_owned(),
            line: "x\n".to_owned(),
        };
        let early = entry(LogStream::Stdout, "2026-12-03T10:00:00Z");
        let late = entry(LogStream::Stderr, "2026-12-03T11:00:00Z");
        let stdout_only = LogQuery {
            stdout: true,
            ..LogQuery::default()
        };
        assert!(stdout_only.picks(&early) && !stdout_only.picks(&late));
        let since = LogQuery {
            stdout: true,
            stderr: true,
            since: keel_time::unix_nanos("2026-12-03T10:30:00Z"),
            ..LogQuery::default()
        };
        assert!(!since.picks(&early) && since.picks(&late));
        assert_eq!(
            LogEntry::parse(r#"{"log":"hi\n","stream":"stderr","time":"2026-12-03T10:00:00Z"}"#),
            Some(LogEntry {
                stream: LogStream::Stderr,
                time: "2026-12-03T10:00:00Z".to_owned(),
                line: "hi\n".to_owned()
            })
        );
    }
}
