//! Where a Keel daemon is: its socket and its root unless told otherwise
//! (`-H`, `--root`; `$KEEL_HOST`, `$KEEL_ROOT`), as the daemon and its
//! clients both need to know.

use std::path::PathBuf;

/// The daemon's socket unless told otherwise (Docker's is
/// /var/run/docker.sock).
pub const DEFAULT_SOCKET: &str = "/run/keel/keel.sock";
/// The daemon's state unless told otherwise (Docker's is /var/lib/docker).
pub const DEFAULT_ROOT: &str = "/var/lib/keel";

/// The socket of a `-H` value: `unix:///path` or a plain path.
pub fn socket_path(host: &str) -> Result<PathBuf, String> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(path));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    Err(format!(
        "invalid host {host:?}: Keel listens on unix sockets only; use unix:///PATH"
    ))
}

/// The host given, else `$KEEL_HOST`, else the default socket.
pub fn socket(host: Option<String>) -> Result<PathBuf, String> {
    let host = host
        .or_else(|| std::env::var("KEEL_HOST").ok())
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    socket_path(&host)
}

/// `$KEEL_ROOT`, else the default root.
pub fn root() -> PathBuf {
    std::env::var_os("KEEL_ROOT").map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_unix_sockets_only() {
        assert_eq!(
            socket_path("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            socket_path("/run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(
            socket_path("tcp://127.0.0.1:2375")
                .unwrap_err()
                .contains("unix sockets only")
        );
    }
}
