//! The content hashes of files already read, found again by what `stat`
//! says of them (device, inode, size, modification and change times), so
//! that a rebuild from a context read in place hashes only the files that
//! changed. A file whose change time is not safely before the moment it
//! was hashed is hashed again next time (git's "racy" rule): it may have
//! changed again within the clock's tick without its times showing it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// How far a change time must be before the hash for the hash to count:
/// more than a coarse filesystem clock's tick.
const RACY: Duration = Duration::from_millis(20);

/// Entries kept at most; the index starts again when it is full.
const MOST: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The index of file hashes one engine keeps for its builds.
#[derive(Debug, Default)]
pub struct FileSums {
    known: Mutex<HashMap<FileKey, [u8; 32]>>,
}

impl FileSums {
    /// The SHA-256 of the regular file `file`, whose metadata is `meta`.
    pub(crate) fn of(&self, file: &mut File, meta: &std::fs::Metadata) -> io::Result<[u8; 32]> {
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        if let Some(sum) = self.known.lock().expect("sums").get(&key) {
            return Ok(*sum);
        }
        let started = SystemTime::now();
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        let sum: [u8; 32] = hasher.finalize().into();
        let changed = UNIX_EPOCH
            + Duration::new(
                u64::try_from(key.ctime.0).unwrap_or(0),
                u32::try_from(key.ctime.1).unwrap_or(0),
            );
        if settled(changed, started) {
            let mut known = self.known.lock().expect("sums");
            if known.len() >= MOST {
                known.clear();
            }
            known.insert(key, sum);
        }
        Ok(sum)
    }
}

/// Whether a file last changed at `changed` cannot have changed again
/// unseen after `hashed`, when its hash was begun.
fn settled(changed: SystemTime, hashed: SystemTime) -> bool {
    changed + RACY < hashed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(sums: &FileSums, path: &std::path::Path) -> [u8; 32] {
        let mut file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        sums.of(&mut file, &meta).unwrap()
    }

    #[test]
    fn a_file_rewritten_with_its_old_size_and_times_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("App.class");
        std::fs::write(&path, b"version 1").unwrap();
        let old = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(RACY * 2);
        let sums = FileSums::default();
        let first = sum_of(&sums, &path);
        assert_eq!(first, <[u8; 32]>::from(Sha256::digest(b"version 1")));
        assert_eq!(
            sums.known.lock().unwrap().len(),
            1,
            "a settled file is kept"
        );
        // Same size, and the modification time put back: only the change
        // time tells, and it does.
        std::fs::write(&path, b"version 2").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(
            sum_of(&sums, &path),
            <[u8; 32]>::from(Sha256::digest(b"version 2"))
        );
    }

    #[test]
    fn a_hash_counts_only_for_a_change_time_a_clock_tick_before_it() {
        let hashed = SystemTime::now();
        assert!(!settled(hashed, hashed));
        assert!(!settled(hashed - RACY, hashed));
        assert!(settled(hashed - RACY * 2, hashed));
    }
}
