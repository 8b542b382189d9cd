//! Keel's builder: a Dockerfile's stages built into an image. The parser
//! and Docker's variable expansion are here; RUN steps run through an
//! [`Executor`] the engine provides (a process on a snapshot, through a
//! monitor), and every step that changes files is cached in the image
//! store under a key made of the step and everything it depends on.

mod builder;
mod config;
pub mod context;
mod copy;
pub mod dockerfile;
mod error;
pub mod expand;
mod explain;
mod fetch;
mod ignore;
mod mounts;
mod sums;

pub use builder::{
    BuildOptions, Executor, Job, JobMount, JobMountKind, JobNetwork, Progress, SOURCE_DATE_EPOCH,
    STEP_SNAPSHOT_PREFIX, Secrets, base_images, build, check_platform,
};
pub use config::apply_changes;
pub use error::{Error, Result};
pub use ignore::Ignore;
pub use sums::FileSums;
