use std::io;

/// What went wrong, worded as Docker words it where Docker has words.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("No command specified")]
    NoCommand,
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoSuchUser { user: String },
    #[error(
        "cannot remove container \"/{name}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning { name: String },
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("Container {id} is paused, unpause the container before exec")]
    Paused { id: String },
    #[error("container {id} is already running")]
    AlreadyRunning { id: String },
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    #[error("remove {name}: volume is in use - [{}]", .users.join(", "))]
    VolumeInUse { name: String, users: Vec<String> },
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath { path: String, container: String },
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("No exec command specified")]
    NoExecCommand,
    #[error("exec instance {0} has already been started")]
    ExecStarted(String),
    /// A flag or option Docker would refuse, in Docker's words.
    #[error("{0}")]
    InvalidParameter(String),
    /// A change `update` cannot make to this container, in Docker's words.
    #[error("Cannot update container {id}: {reason}")]
    CannotUpdate { id: String, reason: String },
    #[error("{0} is not supported by Keel yet")]
    Unsupported(String),
    /// The process could not be started: Docker's words, and the kind
    /// that gives it an exit code.
    #[error("failed to create task for container: {}", .0.message)]
    Start(keel_monitor_protocol::message::Failure),
    #[error(transparent)]
    Image(#[from] keel_image::Error),
    #[error(transparent)]
    Build(#[from] keel_build::Error),
    #[error(transparent)]
    Runtime(#[from] keel_runtime::Error),
    #[error(transparent)]
    Network(#[from] keel_network::Error),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    PredefinedNetwork(String),
    #[error(transparent)]
    Registry(#[from] keel_registry::Error),
    #[error("filesystem layer verification failed for digest {digest} of {image}")]
    LayerVerification {
        image: String,
        digest: keel_image::Digest,
    },
    #[error("pulling {image}: {what} was cut short")]
    Transfer {
        image: String,
        what: String,
        source: io::Error,
    },
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchTag(String),
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error("cannot read {}", path.display())]
    Record {
        path: std::path::PathBuf,
        source: keel_durable::record::RecordError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done to a failed call.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source: source.into(),
        })
    }
}

impl keel_errdefs::HasKind for Error {
    fn kind(&self) -> keel_errdefs::Kind {
        use keel_errdefs::Kind;
        match self {
            Error::NoSuchContainer(_)
            | Error::NoSuchExec(_)
            | Error::NoSuchVolume(_)
            | Error::NoSuchPath { .. }
            | Error::NoSuchNetwork(_) => Kind::NotFound,
            Error::NameInUse { .. }
            | Error::RemoveRunning { .. }
            | Error::NotRunning { .. }
            | Error::AlreadyRunning { .. }
            | Error::Paused { .. }
            | Error::ExecStarted(_)
            | Error::VolumeInUse { .. }
            | Error::CannotUpdate { .. }
            | Error::NetworkExists(_) => Kind::Conflict,
            Error::PredefinedNetwork(_) => Kind::NotPermitted,
            // A process that cannot start is the request's fault (its
            // command, its mounts), as Docker answers it.
            Error::InvalidName(_)
            | Error::NoCommand
            | Error::NoSuchUser { .. }
            | Error::Start(_)
            | Error::InvalidParameter(_)
            | Error::NoSuchTag(_)
            | Error::NoExecCommand
            | Error::Unsupported(_) => Kind::InvalidArgument,
            Error::Image(inner) => inner.kind(),
            Error::Build(inner) => inner.kind(),
            Error::Network(inner) => inner.kind(),
            Error::Registry(inner) => inner.kind(),
            // The runtime is the engine's own: its failures are the
            // engine's.
            Error::Runtime(_)
            | Error::LayerVerification { .. }
            | Error::Transfer { .. }
            | Error::Io { .. }
            | Error::Record { .. } => Kind::Internal,
        }
    }
}
