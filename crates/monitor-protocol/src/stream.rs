//! The byte protocol on a monitor's socket: frames in the layout of
//! Docker's multiplexed stream (kind, three zero bytes, big-endian length,
//! payload). The monitor sends stdout (1) and stderr (2), which the daemon
//! passes to a client as they are (or unwrapped, for a terminal); the
//! daemon sends stdin (0), the end of stdin (3) and terminal sizes (4).
//! Also the detach keys that end a client's session, found in its input.

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STDIN_END: u8 = 3;
pub const RESIZE: u8 = 4;

const HEADER: usize = 8;

pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A terminal size change: rows and columns.
pub fn resize(rows: u16, cols: u16) -> Vec<u8> {
    let mut size = rows.to_be_bytes().to_vec();
    size.extend_from_slice(&cols.to_be_bytes());
    frame(RESIZE, &size)
}

/// Rows and columns from a resize frame's payload.
pub fn parse_resize(payload: &[u8]) -> Option<(u16, u16)> {
    let rows = u16::from_be_bytes(payload.get(0..2)?.try_into().ok()?);
    let cols = u16::from_be_bytes(payload.get(2..4)?.try_into().ok()?);
    Some((rows, cols))
}

/// Whole frames out of bytes as they arrive.
#[derive(Debug, Default)]
pub struct Frames {
    buffer: Vec<u8>,
}

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }
}

impl Iterator for Frames {
    type Item = (u8, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.buffer.get(..HEADER)?;
        let length = u32::from_be_bytes(header[4..8].try_into().expect("four bytes")) as usize;
        if self.buffer.len() < HEADER + length {
            return None;
        }
        let kind = self.buffer[0];
        let payload = self.buffer[HEADER..HEADER + length].to_vec();
        self.buffer.drain(..HEADER + length);
        Some((kind, payload))
    }
}

/// Docker's default: Ctrl-P Ctrl-Q.
const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Detach keys as Docker writes them: "ctrl-p,ctrl-q", "a,ctrl-@".
pub fn detach_keys(text: Option<&str>) -> Result<Vec<u8>, String> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    };
    let invalid = || format!("Invalid detach keys ({text}) provided");
    text.split(',')
        .map(|key| {
            let lower = key.to_lowercase();
            match lower.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => match c.as_bytes()[0] {
                    b @ (b'a'..=b'z') => Ok(b - b'a' + 1),
                    b @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => Ok(b & 0x1f),
                    _ => Err(invalid()),
                },
                _ if key.len() == 1 => Ok(key.as_bytes()[0]),
                _ => Err(invalid()),
            }
        })
        .collect()
}

/// Finds the detach keys in a client's input, across reads.
#[derive(Debug)]
pub struct DetachWatch<'a> {
    keys: &'a [u8],
    matched: usize,
}

impl<'a> DetachWatch<'a> {
    pub fn new(keys: &'a [u8]) -> Self {
        Self { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the keys were typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &byte in input {
            if self.keys.get(self.matched) == Some(&byte) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            // A near miss: what was held back was input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&byte) {
                self.matched = 1;
            } else {
                out.push(byte);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join_across_reads() {
        let mut bytes = frame(STDOUT, b"hello");
        bytes.extend(resize(24, 80));
        bytes.extend(frame(STDIN_END, b""));
        let mut frames = Frames::default();
        frames.push(&bytes[..3]);
        assert_eq!(frames.next(), None);
        frames.push(&bytes[3..15]);
        assert_eq!(frames.next(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(frames.next(), None);
        frames.push(&bytes[15..]);
        let (kind, size) = frames.next().unwrap();
        assert_eq!((kind, parse_resize(&size)), (RESIZE, Some((24, 80))));
        assert_eq!(frames.next(), Some((STDIN_END, Vec::new())));
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn detach_keys_parse_as_docker_writes_them() {
        assert_eq!(detach_keys(None).unwrap(), [0x10, 0x11]);
        assert_eq!(detach_keys(Some("ctrl-a,x,ctrl-@")).unwrap(), [1, b'x', 0]);
        assert_eq!(
            detach_keys(Some("ctrl-1")).unwrap_err(),
            "Invalid detach keys (ctrl-1) provided"
        );
    }

    #[test]
    fn the_detach_keys_are_found_across_reads_and_near_misses_pass_through() {
        let keys = [0x10, 0x11];
        let mut watch = DetachWatch::new(&keys);
        assert_eq!(watch.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(watch.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(watch.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(watch.feed(b"\x11rest"), (Vec::new(), true));
    }
}
