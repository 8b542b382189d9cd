//! The kinds of error, as containerd's `errdefs`: every crate whose errors
//! reach a frontend says which kind each is, and each frontend maps kinds
//! to its own status codes in one place (HTTP for the Docker API; gRPC
//! codes for the CRI). No frontend matches on another crate's variants.

/// What kind of failure an error is, from its caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// What was asked for does not exist.
    NotFound,
    /// It cannot be done in the object's current state (running, in use,
    /// a name taken).
    Conflict,
    /// The request itself is wrong: a bad value, an unsupported option.
    InvalidArgument,
    /// The caller is not who it must be (no or bad credentials).
    Unauthenticated,
    /// The caller may not do this.
    NotPermitted,
    /// Not now: busy, or a dependency is away; trying again may work.
    Unavailable,
    /// Keel failed: a system call, the disk, a bug.
    Internal,
}

/// An error that knows its kind.
pub trait HasKind {
    fn kind(&self) -> Kind;
}
