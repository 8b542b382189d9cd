//! Crash-safe small files (records, configs, states): written under a
//! unique temporary name beside the target and renamed over it, so that a
//! crash at any point leaves the old file or the new one, whole; synced
//! (file and directory) when it must also survive a crash of the machine.

pub mod record;

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Makes a creation, rename or removal in `dir` durable.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes`, durably and atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(path, bytes, true)
}

/// Replaces `path` with `bytes` atomically, without syncing: readers, and
/// whoever comes after a process that crashed, see the old file or the new
/// one, whole; after a crash of the machine it may be the old one. For
/// state a reboot makes moot (which process runs, how it exited), on paths
/// where a sync per write would cost more than the work.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(path, bytes, false)
}

fn write_then_rename(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if durable {
        temp.as_file().sync_all()?;
    }
    temp.persist(path).map_err(|error| error.error)?;
    if durable {
        sync_directory(dir)?;
    }
    Ok(())
}

/// Removes the temporary files of writes a crash cut short in `dir` (the
/// target files themselves are whole: old or new).
pub fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_cut_writes_go_and_records_stay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-AbC123"), b"half").unwrap();
        write_atomically(&dir.path().join("record.json"), b"whole").unwrap();
        remove_leftovers(dir.path()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["record.json"]);
    }
}
