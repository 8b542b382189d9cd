//! `keel daemon`: serves the Engine API on a unix socket until SIGTERM or
//! SIGINT, and the CLI's start of it when none is running.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keel_api::Daemon;

/// Set in the environment of a daemon the CLI starts, so it leaves the
/// CLI's session and terminal.
const DETACH: &str = "KEEL_DAEMON_DETACH";

pub fn run(root: &Path, socket: &Path, options: keel_engine::Options) -> Result<()> {
    if std::env::var_os(DETACH).is_some() {
        rustix::process::setsid().ok();
    }
    if UnixStream::connect(socket).is_ok() {
        bail!(
            "a daemon already listens on {}; stop it or choose another socket with -H",
            socket.display()
        );
    }
    // Installed beside keel (`scripts/demo` puts both in /usr/local/bin).
    let monitor = std::env::current_exe()?.with_file_name("keel-monitor");
    if !monitor.exists() {
        bail!(
            "cannot find {}: keel-monitor is installed beside keel (cargo builds both)",
            monitor.display()
        );
    }
    let daemon = Arc::new(
        Daemon::open(root, &monitor, options)
            .with_context(|| format!("cannot open the Keel root {}", root.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        match std::fs::remove_file(socket) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                return Err(error).with_context(|| {
                    format!("cannot remove the stale socket {}", socket.display())
                });
            }
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
        eprintln!(
            "keel daemon: listening on unix://{} (root {})",
            socket.display(),
            root.display()
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            served = keel_api::serve(listener, daemon) => served.context("serving the API"),
            _ = terminate.recv() => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        std::fs::remove_file(socket).ok();
        eprintln!("keel daemon: stopped");
        result
    });
    // Followers of logs that nobody reads any more must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Starts a daemon in the background for a CLI that found none, and
/// waits until it answers.
pub fn start_in_background(root: &Path, socket: &Path) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let log_path = root.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("daemon")
        .arg("--root")
        .arg(root)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .env(DETACH, "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start keel daemon")?;
    eprintln!(
        "keel: no daemon was running; started one (socket {}, root {}, log {})",
        socket.display(),
        root.display(),
        log_path.display()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "keel daemon exited with {status}; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!(
        "keel daemon did not answer on {} within 10 s; see {}",
        socket.display(),
        log_path.display()
    )
}
