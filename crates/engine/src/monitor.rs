//! The monitor: one small process per running container (the role of
//! conmon or containerd's shim). It creates and starts the container with
//! the runtime library, owns its stdout and stderr pipes, writes them to
//! the container's log in Docker's json-file format, reaps the container
//! and records its exit. It leaves the daemon's session, so the daemon can
//! stop without stopping containers.
//!
//! It tells the daemon on its stdout, one line each: `started PID` (or
//! `error MESSAGE`), then `exited CODE`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use keel_runtime::{CreateOptions, Runtime};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, PidfdFlags, WaitOptions, pidfd_open, waitpid};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

/// Where a monitor finds and leaves things.
#[derive(Debug, Clone)]
pub struct MonitorArgs {
    pub runtime_root: PathBuf,
    pub id: String,
    /// The container's directory: config.json (the bundle), the log, the
    /// exit record.
    pub dir: PathBuf,
}

pub const LOG: &str = "container-json.log";
pub const EXIT: &str = "exit.json";

/// How the container ended, as the monitor records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    pub finished_at: String,
}

/// One line of Docker's json-file log.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub fn run(args: &MonitorArgs) -> Result<()> {
    // Out of the daemon's session and process group: its end is not ours.
    let _ = rustix::process::setsid();
    // Our stdout is the line to the daemon; fds 1 and 2 become the
    // container's pipes.
    let to_daemon = File::from(
        rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdout(), 3).context(|| "dup".to_owned())?,
    );
    let mut to_daemon = io::LineWriter::new(to_daemon);
    let runtime = Runtime::new(&args.runtime_root, false);
    let (out_read, out_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "pipe".to_owned())?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "pipe".to_owned())?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context(|| "/dev/null".to_owned())?;
    replace_stdio(&out_write, &err_write)?;
    drop((out_write, err_write));
    // Orphans of the container become ours to reap, as for conmon.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let options = CreateOptions {
        bundle: args.dir.clone(),
        ..CreateOptions::default()
    };
    let created = runtime.create(&args.id, &options);
    // Only the container holds the write ends now, so they end with it.
    replace_stdio(&null, &null)?;
    let pid = match created.and_then(|pid| runtime.start(&args.id).map(|()| pid)) {
        Ok(pid) => pid,
        Err(error) => {
            let _ = runtime.delete(&args.id, true);
            let _ = writeln!(
                to_daemon,
                "error {}",
                keel_runtime::report(&error).replace('\n', " ")
            );
            return Ok(());
        }
    };
    let _ = writeln!(to_daemon, "started {pid}");
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(args.dir.join(LOG))
        .context(|| "the container log".to_owned())?;
    let code = copy_until_exit(pid, &out_read, &err_read, &mut log)?;
    let exit = Exit {
        code,
        finished_at: keel_time::now_rfc3339(),
    };
    write_atomically(
        &args.dir.join(EXIT),
        &serde_json::to_vec(&exit).expect("an exit serializes"),
    )?;
    let _ = runtime.delete(&args.id, true);
    let _ = writeln!(to_daemon, "exited {code}");
    Ok(())
}

fn replace_stdio(out: &impl AsFd, err: &impl AsFd) -> Result<()> {
    rustix::stdio::dup2_stdout(out).context(|| "dup2".to_owned())?;
    rustix::stdio::dup2_stderr(err).context(|| "dup2".to_owned())
}

/// Copies the container's output to the log until its init has exited and
/// the pipes are drained; returns the exit code as a shell reports it.
fn copy_until_exit(pid: i32, out: &OwnedFd, err: &OwnedFd, log: &mut File) -> Result<i32> {
    let pid = Pid::from_raw(pid).expect("a positive pid");
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).context(|| "pidfd_open".to_owned())?;
    let mut streams = [Stream::new("stdout", out), Stream::new("stderr", err)];
    let mut exited = false;
    loop {
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        for stream in &streams {
            if !stream.closed {
                fds.push(PollFd::new(stream.fd, PollFlags::IN));
            }
        }
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            result => result.context(|| "poll".to_owned())?,
        };
        let pid_ready = !fds[0].revents().is_empty();
        drop(fds);
        for stream in &mut streams {
            stream.pump(log, exited || pid_ready)?;
        }
        if pid_ready {
            if exited {
                break;
            }
            // One more round drains what was written just before the exit.
            exited = true;
            continue;
        }
        if streams.iter().all(|s| s.closed) && exited {
            break;
        }
    }
    for stream in &mut streams {
        stream.flush_partial(log)?;
    }
    let code = loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                break match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => code,
                    (None, Some(signal)) => 128 + signal,
                    _ => 255,
                };
            }
            Err(rustix::io::Errno::INTR) => continue,
            _ => break 255,
        }
    };
    Ok(code)
}

/// One of the container's output pipes, read in whole lines.
struct Stream<'a> {
    name: &'static str,
    fd: &'a OwnedFd,
    pending: Vec<u8>,
    closed: bool,
}

impl<'a> Stream<'a> {
    fn new(name: &'static str, fd: &'a OwnedFd) -> Self {
        Self {
            name,
            fd,
            pending: Vec::new(),
            closed: false,
        }
    }

    /// Reads what is there without blocking (all of it when draining).
    fn pump(&mut self, log: &mut File, drain: bool) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let mut poll_fd = [PollFd::new(self.fd, PollFlags::IN)];
            if poll(&mut poll_fd, Some(&rustix::event::Timespec::default())).unwrap_or(0) == 0 {
                return Ok(());
            }
            match rustix::io::read(self.fd, &mut buffer) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&buffer[..n]);
                    self.write_lines(log)?;
                    if !drain {
                        return Ok(());
                    }
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Ok(()),
                Err(_) => {
                    self.closed = true;
                    return Ok(());
                }
            }
        }
    }

    /// Writes each complete line (and any line over 16 KiB, as Docker
    /// splits them) as one log entry.
    fn write_lines(&mut self, log: &mut File) -> Result<()> {
        while let Some(end) = self
            .pending
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .or_else(|| (self.pending.len() >= 16 * 1024).then_some(16 * 1024))
        {
            let line: Vec<u8> = self.pending.drain(..end).collect();
            write_entry(log, self.name, &line)?;
        }
        Ok(())
    }

    fn flush_partial(&mut self, log: &mut File) -> Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            write_entry(log, self.name, &line)?;
        }
        Ok(())
    }
}

fn write_entry(log: &mut File, stream: &str, line: &[u8]) -> Result<()> {
    let entry = LogLine {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: stream.to_owned(),
        time: keel_time::now_rfc3339(),
    };
    let mut bytes = serde_json::to_vec(&entry).expect("a log line serializes");
    bytes.push(b'\n');
    log.write_all(&bytes)
        .context(|| "writing the container log".to_owned())
}

/// Writes a record durably and atomically (see keel-durable).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    keel_durable::write_atomically(path, bytes)
        .context(|| format!("cannot write {}", path.display()))
}
