//! `POST /build`'s parameters that are Keel's own: a context the daemon
//! reads where it is, so that a client on the daemon's machine sends no
//! tar. `contextdir` is the directory's absolute path and `contextid` the
//! `DEVICE:INODE` the client sees there; a daemon that sees another
//! directory at that path (a client in another mount namespace) answers
//! 412 Precondition Failed, and the client sends the tar instead.

pub const CONTEXT_DIR: &str = "contextdir";
pub const CONTEXT_ID: &str = "contextid";

/// The `contextid` of a directory whose metadata is `meta`.
pub fn context_id(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}:{}", meta.dev(), meta.ino())
}
