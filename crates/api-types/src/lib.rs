//! The Docker Engine API's wire types, named and shaped as the API's
//! swagger has them, shared by Keel's API server (which writes them) and
//! its CLI (which reads them): neither writes a body by hand, and the two
//! cannot drift apart. Also where a daemon is found ([`endpoint`]).

pub mod archive;
pub mod build;
pub mod changes;
pub mod distribution;
pub mod endpoint;
pub mod objects;
pub mod stats;
pub mod system;
pub mod update;

/// The newest Engine API version Keel speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";
