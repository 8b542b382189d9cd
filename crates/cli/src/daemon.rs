//! The Keel daemon, as the CLI reaches it: `keel daemon` runs
//! `keel-daemon` (installed beside keel), and a CLI that finds no daemon
//! starts one in the background.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// keel-daemon, beside this keel.
fn daemon_binary() -> Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("keel-daemon");
    if !binary.exists() {
        bail!(
            "cannot find {}: keel-daemon is installed beside keel (cargo builds both)",
            binary.display()
        );
    }
    Ok(binary)
}

/// `keel daemon ARGS`: becomes keel-daemon with the same arguments (and
/// the socket given to keel, if one was).
pub fn exec(host: Option<&str>, args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let binary = daemon_binary()?;
    let mut command = Command::new(&binary);
    command.arg0("keel-daemon");
    if let Some(host) = host {
        command.arg("-H").arg(host);
    }
    let error = command.args(args).exec();
    Err(error).with_context(|| format!("cannot run {}", binary.display()))
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
    let mut command = Command::new(daemon_binary()?);
    command
        .arg0("keel-daemon")
        .arg("--root")
        .arg(root)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: between fork and exec the child only calls setsid, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        // Out of the CLI's session and terminal: the daemon outlives them.
        command.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start keel daemon")?;
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
