//! The builder's errors, each with its kind for the frontends.

use keel_errdefs::{HasKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dockerfile parse error on line {line}: {message}")]
    Dockerfile { line: usize, message: String },
    /// An instruction that parsed but cannot be carried out.
    #[error("{message} (Dockerfile line {line})")]
    Step { line: usize, message: String },
    /// A RUN step's command failed: Docker's words.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Failed { command: String, code: i32 },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Image(#[from] keel_image::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The executor could not run a step.
    #[error("{0}")]
    Executor(String),
    #[error("the build was cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl HasKind for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Dockerfile { .. }
            | Error::Step { .. }
            | Error::InvalidArgument(_)
            | Error::Failed { .. } => Kind::InvalidArgument,
            Error::Image(error) => error.kind(),
            Error::Cancelled => Kind::Unavailable,
            Error::Io { .. } | Error::Executor(_) => Kind::Internal,
        }
    }
}

pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Io {
            what: what(),
            source: errno.into(),
        })
    }
}
