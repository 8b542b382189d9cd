use std::io;
use std::path::PathBuf;

use rustix::io::Errno;

/// What went wrong, with the value at fault and, where it helps, what would
/// be right.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' (not \".\" or \"..\")"
    )]
    InvalidId(String),
    #[error("container {id:?} does not exist in {root}")]
    NotFound { id: String, root: PathBuf },
    #[error("container {id:?} already exists in {root}: delete it or choose another id")]
    AlreadyExists { id: String, root: PathBuf },
    #[error("cannot read {path}")]
    ReadConfig { path: PathBuf, source: io::Error },
    #[error("invalid {path}: {message}")]
    MalformedConfig { path: PathBuf, message: String },
    #[error("invalid config: {field} is {value}: {expected}")]
    InvalidConfig {
        field: String,
        value: String,
        expected: String,
    },
    #[error("cannot {action} container {id:?}: it is {status}{hint}")]
    WrongState {
        id: String,
        action: &'static str,
        status: &'static str,
        hint: &'static str,
    },
    #[error("{what}")]
    Os { what: String, source: Errno },
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error(transparent)]
    Cgroup(#[from] keel_cgroups::Error),
    #[error(transparent)]
    Seccomp(#[from] keel_seccomp::Error),
    #[error("{kind} hook {path} failed: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The container's program could not be run, worded as runc words it.
    #[error("{message}")]
    Program {
        fault: ProgramFault,
        message: String,
    },
    /// An error the container's init process reported, already worded.
    #[error("{0}")]
    Container(String),
    #[error("unknown signal {0:?}: use a name such as TERM, SIGKILL or a number from 1 to 64")]
    UnknownSignal(String),
}

/// Why a container's program could not be run: a shell, Docker and
/// Podman tell these apart by exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramFault {
    /// Not there, or not on `$PATH`.
    NotFound,
    /// There, but not executable (its mode, a directory).
    NotExecutable,
}

impl ProgramFault {
    /// The exit status a shell gives: 127 and 126.
    pub fn exit_code(self) -> i32 {
        match self {
            ProgramFault::NotFound => 127,
            ProgramFault::NotExecutable => 126,
        }
    }
}

impl Error {
    /// Why the program could not be run, if that is what went wrong.
    pub fn program_fault(&self) -> Option<ProgramFault> {
        match self {
            Error::Program { fault, .. } => Some(*fault),
            _ => None,
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// Attaches what was being done to a failed syscall.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Os {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its chain of causes, as one line: "what: why: why".
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
