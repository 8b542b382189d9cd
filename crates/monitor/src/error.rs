use std::io;

/// What stopped a monitor (a process that could not start is a
/// `Failure` sent to the daemon instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error("the daemon's messages: {0}")]
    Protocol(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done to a failed call.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source: source.into(),
        })
    }
}
