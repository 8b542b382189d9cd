//! Bytes handed from one thread to another through a bounded channel:
//! a download feeding the unpack of the same layer, a decompressor
//! running ahead of the unpack that consumes its output.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Passes a reader's bytes on, and a copy of each to a channel.
pub(crate) struct Tee<'a, R> {
    pub inner: R,
    pub tx: mpsc::SyncSender<Vec<u8>>,
    /// Set when the other end went away (the unpack failed).
    pub broken: &'a AtomicBool,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.tx.send(buf[..n].to_vec()).is_err() {
            self.broken.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the layer's unpacking stopped",
            ));
        }
        Ok(n)
    }
}

/// Reads what a [`Tee`] sends; the end of the stream when it is dropped.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    offset: usize,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            offset: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.offset = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.offset);
        buf[..n].copy_from_slice(&self.chunk[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}
