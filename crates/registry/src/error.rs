use keel_image::Digest;

/// What went wrong talking to a registry, naming the registry, the image
/// and the cause as Docker's messages do. `Display` never repeats the
/// source; a report renders the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry answered with an error status (and usually Docker's
    /// `{"errors":[…]}` body, rendered as `code: message`).
    #[error("{what}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: no basic auth credentials")]
    NoCredentials { what: String },
    #[error("{what}")]
    Transport {
        what: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    BadAnswer { what: String, reason: String },
    #[error("manifest {reference} has digest {actual}, not the {expected} asked for")]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    #[error(
        "invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
    )]
    InvalidPlatform(String),
    #[error(
        "unsupported manifest media type {0:?}: Keel reads OCI and Docker schema 2 manifests and indexes"
    )]
    UnsupportedManifest(String),
    #[error("invalid X-Registry-Auth header: {0}")]
    BadAuthHeader(String),
    #[error("{path}: {reason}")]
    ConfigFile { path: String, reason: String },
    #[error("credential helper {helper} failed: {reason}")]
    CredentialHelper { helper: String, reason: String },
}

impl Error {
    /// The HTTP status the registry answered, if it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::NoCredentials { .. } => Some(401),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl keel_errdefs::HasKind for Error {
    fn kind(&self) -> keel_errdefs::Kind {
        use keel_errdefs::Kind;
        match self {
            Error::Status { status: 401, .. } | Error::NoCredentials { .. } => {
                Kind::Unauthenticated
            }
            Error::Status { status: 403, .. } => Kind::NotPermitted,
            Error::Status { status: 404, .. } | Error::NoMatchingPlatform { .. } => Kind::NotFound,
            Error::Status {
                status: 429 | 503, ..
            } => Kind::Unavailable,
            Error::InvalidPlatform(_) | Error::BadAuthHeader(_) => Kind::InvalidArgument,
            Error::Status { .. }
            | Error::Transport { .. }
            | Error::Io { .. }
            | Error::BadAnswer { .. }
            | Error::ManifestDigest { .. }
            | Error::UnsupportedManifest(_)
            | Error::ConfigFile { .. }
            | Error::CredentialHelper { .. } => Kind::Internal,
        }
    }
}
