//! Keel's client of the Distribution API (the OCI distribution spec):
//! manifests and indexes, blobs down and up, bearer-token and basic auth,
//! Docker's `config.json` credentials and Docker Hub's search. It knows
//! nothing of the store: the engine streams what it fetches into it.

mod auth;
mod client;
mod credentials;
mod error;
mod manifest;

pub use auth::{AuthConfig, Challenge, decode_basic};
pub use client::{Blob, Registry, UPLOAD_CHUNK, is_insecure};
pub use credentials::{ConfigFile, server_domain, server_key};
pub use error::{Error, Result};
pub use manifest::{
    ACCEPTED, DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, ImageManifest, Index,
    Manifest, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform,
};
