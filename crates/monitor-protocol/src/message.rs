//! The messages between the daemon and a monitor, on the monitor's stdin
//! (to it) and stdout (from it): each a JSON object after its length (four
//! bytes, big-endian).
//!
//! The daemon speaks first, with a [`Launch`] that carries the protocol's
//! [`VERSION`]. The monitor answers [`FromMonitor::Ready`] once its attach
//! socket listens; the daemon connects the clients waiting to attach, so
//! that they miss no output, and says [`ToMonitor::Go`]; the monitor says
//! [`FromMonitor::Started`] with the process's pid, and, when it ends,
//! [`FromMonitor::Exited`]. [`FromMonitor::Failed`] can come instead of
//! `Ready` or `Started`, and is the last word.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The protocol's version: a monitor refuses a launch of another one.
pub const VERSION: u32 = 1;

/// The largest message either side reads: a launch is a few hundred bytes.
const MAX_LENGTH: u32 = 1 << 20;

/// What the monitor is to run, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// [`VERSION`], as the daemon speaks it.
    pub version: u32,
    /// The runtime's state directory.
    pub runtime_root: PathBuf,
    /// The container's id, as the runtime knows it.
    pub id: String,
    /// The container's directory: config.json (the bundle), the log, the
    /// exit record, the sockets.
    pub dir: PathBuf,
    /// Run this exec instance (its process in `exec-ID.json`) in the
    /// running container, instead of the container itself.
    pub exec: Option<String>,
    /// Give the process a terminal.
    pub tty: bool,
    /// Keep the process's stdin open for attach clients.
    pub stdin: bool,
    /// Close the process's stdin when an attached client ends its input.
    pub stdin_once: bool,
    /// Log the output, rotated at these limits (a container; an exec's
    /// output goes to its clients only).
    pub log: Option<LogLimits>,
}

/// How large a container's log grows: a file's size, and how many files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

/// The daemon to the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToMonitor {
    Launch(Launch),
    /// Start the process: the clients waiting to attach are connected.
    Go,
}

/// The monitor to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromMonitor {
    /// The attach socket listens; waiting for [`ToMonitor::Go`].
    Ready,
    /// The process runs.
    Started { pid: i32 },
    /// The process ended: its exit code as a shell reports it (128 + N
    /// for signal N). Said before the runtime's state is removed.
    Exited { code: i32 },
    /// The process could not be started.
    Failed(Failure),
}

/// Why a process could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// The runtime's words, which Docker clients read.
    pub message: String,
}

/// The kinds of start failure that have exit codes of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The program is not there: 127, as a shell says it.
    ProgramNotFound,
    /// The program may not be run: 126.
    ProgramNotExecutable,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// The exit code a shell (and Docker) gives this failure, if it has
    /// one of its own.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            FailureKind::ProgramNotFound => Some(127),
            FailureKind::ProgramNotExecutable => Some(126),
            FailureKind::Other => None,
        }
    }
}

/// Writes one message.
pub fn send(to: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    let length = u32::try_from(body.len())
        .ok()
        .filter(|n| *n <= MAX_LENGTH)
        .ok_or_else(|| io::Error::other(format!("a message of {} bytes", body.len())))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    to.write_all(&frame)?;
    to.flush()
}

/// Reads one message; `None` if the other side closed before one began.
pub fn receive<T: DeserializeOwned>(from: &mut impl Read) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    let mut read = 0;
    while read < header.len() {
        match from.read(&mut header[read..]) {
            Ok(0) if read == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let length = u32::from_be_bytes(header);
    if length > MAX_LENGTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {length} bytes (at most {MAX_LENGTH})"),
        ));
    }
    let mut body = vec![0u8; length as usize];
    from.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_whole_and_in_order_and_an_end_between_them_is_none() {
        let launch = ToMonitor::Launch(Launch {
            version: VERSION,
            runtime_root: "/run/keel".into(),
            id: "abc".into(),
            dir: "/var/lib/keel/containers/abc".into(),
            exec: None,
            tty: false,
            stdin: true,
            stdin_once: false,
            log: Some(LogLimits {
                max_size: 10,
                max_files: 2,
            }),
        });
        let mut wire = Vec::new();
        send(&mut wire, &launch).unwrap();
        send(&mut wire, &ToMonitor::Go).unwrap();
        let mut reader = wire.as_slice();
        assert_eq!(receive::<ToMonitor>(&mut reader).unwrap(), Some(launch));
        assert_eq!(
            receive::<ToMonitor>(&mut reader).unwrap(),
            Some(ToMonitor::Go)
        );
        assert_eq!(receive::<ToMonitor>(&mut reader).unwrap(), None);
    }

    #[test]
    fn a_cut_message_and_an_oversized_length_are_errors_not_messages() {
        let mut wire = Vec::new();
        send(&mut wire, &FromMonitor::Started { pid: 42 }).unwrap();
        let cut = &wire[..wire.len() - 1];
        assert!(receive::<FromMonitor>(&mut &cut[..]).is_err());
        let huge = (MAX_LENGTH + 1).to_be_bytes();
        let error = receive::<FromMonitor>(&mut &huge[..]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn start_failures_carry_the_exit_codes_a_shell_gives() {
        let failed = FromMonitor::Failed(Failure {
            kind: FailureKind::ProgramNotFound,
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        });
        let mut wire = Vec::new();
        send(&mut wire, &failed).unwrap();
        let Some(FromMonitor::Failed(failure)) = receive(&mut wire.as_slice()).unwrap() else {
            panic!("not a failure");
        };
        assert_eq!(failure.kind.exit_code(), Some(127));
        assert_eq!(FailureKind::ProgramNotExecutable.exit_code(), Some(126));
        assert_eq!(FailureKind::Other.exit_code(), None);
    }
}
