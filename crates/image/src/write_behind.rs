//! Big files sent to the disk while they are still being written.
//!
//! A pulled or loaded image becomes durable with one `syncfs` once it is
//! recorded, and a container that must survive a crash waits for it. Left
//! to itself the kernel starts writing dirty pages back only past
//! thresholds far above an image's size, so that `syncfs` would find every
//! byte of the image still to write. Asking for the write-out of each
//! piece of a big file once it is written keeps the disk busy while the
//! download and the unpack go on (a pull's `syncfs` took 424 ms without,
//! 315 ms with); small files are left to the `syncfs` (a request per file
//! was tried: pulls took longer).

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};

/// How much is written before its write-out is asked for.
const PIECE: u64 = 8 * 1024 * 1024;

/// Passes writes on to a file written from its start, asking the kernel
/// to write each [`PIECE`] back to the disk once it is written.
pub(crate) struct WriteBehind<W> {
    inner: W,
    written: u64,
    /// Where the part not yet sent to the disk starts.
    unsent: u64,
}

impl<W: Write + AsFd> WriteBehind<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            written: 0,
            unsent: 0,
        }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write + AsFd> Write for WriteBehind<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        if self.written - self.unsent >= PIECE {
            let fd = self.inner.as_fd().as_raw_fd();
            let (offset, length) = (self.unsent as i64, (self.written - self.unsent) as i64);
            // SAFETY: sync_file_range only reads its integer arguments; an
            // fd that is not a regular file is refused with an error.
            // Best effort: a refusal only leaves the range to the syncfs.
            unsafe { libc::sync_file_range(fd, offset, length, libc::SYNC_FILE_RANGE_WRITE) };
            self.unsent = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn each_whole_piece_is_sent_and_the_file_reads_back_the_same() {
        let piece = PIECE as usize;
        let content: Vec<u8> = (0..=255).cycle().take(2 * piece + 1).collect();
        let mut file = tempfile::tempfile().unwrap();
        let mut writer = WriteBehind::new(&mut file);
        for chunk in content.chunks(piece / 4) {
            writer.write_all(chunk).unwrap();
        }
        // Two whole pieces asked for; the last byte is left to the syncfs.
        assert_eq!(writer.unsent, 2 * PIECE);
        let file = writer.into_inner();
        let mut read = Vec::new();
        std::io::Seek::rewind(file).unwrap();
        file.read_to_end(&mut read).unwrap();
        assert!(read == content);
    }
}
