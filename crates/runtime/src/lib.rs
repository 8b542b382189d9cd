//! keel-runtime: an OCI runtime. It runs a container from an OCI bundle
//! (config.json and a rootfs) through the lifecycle of the OCI runtime spec,
//! with the command-line behaviour of runc that containerd, Docker and
//! Podman rely on.
//!
//! State lives in one directory per container under the runtime's root. A
//! created container's init waits on the `exec.fifo` in that directory;
//! `start` writes a byte to it and removes it.

mod caps;
mod console;
mod create;
mod error;
mod exec;
mod features;
mod hooks;
mod init;
mod namespaces;
mod process;
mod rootfs;
pub mod sealed;
mod signal;
mod state;
mod sync;
mod sys;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;
use rustix::fs::{Mode, OFlags};
use rustix::process::Pid;

pub use caps::bounding_capabilities;
pub use create::CreateOptions;
pub use error::{Error, ProgramFault, Result, report};
pub use exec::ExecOptions;
pub use features::{default_spec, features};
pub use signal::parse_signal;
pub use state::{State, Status};

use state::Record;

/// The runtime: where container state lives and how cgroups are named.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    systemd_cgroup: bool,
}

impl Runtime {
    /// `root` holds one directory per container (runc uses /run/runc).
    /// With `systemd_cgroup`, cgroup paths take systemd's slice:prefix:name
    /// form; keel-runtime places them where systemd would, without systemd.
    pub fn new(root: impl Into<PathBuf>, systemd_cgroup: bool) -> Self {
        Runtime {
            root: root.into(),
            systemd_cgroup,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the state root, if need be: 0700, as runc's, since only root
    /// may read containers' states and configs.
    pub(crate) fn ensure_root(&self) -> Result<()> {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&self.root)
            .map_err(|source| Error::Io {
                what: format!("creating the state root {}", self.root.display()),
                source,
            })
    }

    /// Creates the container and leaves its init waiting for `start`.
    /// Returns the init's pid.
    pub fn create(&self, id: &str, options: &CreateOptions) -> Result<i32> {
        create::create(self, id, options).map(|c| c.pid)
    }

    /// Runs the user process of a created container.
    pub fn start(&self, id: &str) -> Result<()> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if status != Status::Created {
            return Err(wrong_state(id, "start", status, ""));
        }
        start_created(&dir, &record)
    }

    /// create, start, then (unless `detach`) wait for the process and
    /// delete the container. Returns the exit code, as a shell reports it.
    pub fn run(&self, id: &str, options: &CreateOptions, detach: bool) -> Result<i32> {
        let created = create::create(self, id, options)?;
        if let Err(e) = start_created(&created.dir, &created.record) {
            let _ = self.delete(id, true);
            return Err(e);
        }
        if detach {
            return Ok(0);
        }
        // The runtime forked init itself, so it can wait for it.
        let pid = Pid::from_raw(created.pid).ok_or(Error::Container("invalid pid".into()))?;
        let code = wait_exit_code(pid)?;
        // The spec has a failing poststop hook warned of, as at start.
        for warning in self.delete(id, true)? {
            eprintln!("keel-runtime: warning: {}", report(&warning));
        }
        Ok(code)
    }

    pub fn state(&self, id: &str) -> Result<State> {
        let (dir, record) = self.load(id)?;
        Ok(record.state(record.status(&dir)))
    }

    /// Sends `signal` to the container's init, or with `all` to every
    /// process in its cgroup.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if status == Status::Stopped {
            return Err(wrong_state(id, "kill", status, ""));
        }
        if all || !has_own_pid_namespace(&record) {
            signal_all(&record, signal)
        } else {
            send_signal(record.pid, signal)
        }
    }

    /// Removes a stopped or created container: kills what is left, runs
    /// the poststop hooks, removes the cgroup and the state. A running or
    /// paused container is refused unless `force`. Returns the poststop
    /// hooks' failures, which the spec says only to warn about.
    pub fn delete(&self, id: &str, force: bool) -> Result<Vec<Error>> {
        let (dir, record) = match self.load(id) {
            Err(Error::NotFound { .. }) if force => return Ok(Vec::new()),
            other => other?,
        };
        let status = record.status(&dir);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(wrong_state(
                id,
                "delete",
                status,
                " (stop it first, or use --force)",
            ));
        }
        if status != Status::Stopped {
            signal_all(&record, libc::SIGKILL)?;
            if status == Status::Paused {
                record.cgroup.set_frozen(false)?;
            }
            wait_gone(record.pid)?;
        }
        let warnings = hooks::run_all(
            "poststop",
            hooks::of_kind(&record.config, |h| h.poststop()),
            &serde_json::to_vec(&record.state(Status::Stopped)).unwrap_or_default(),
        );
        record.cgroup.remove()?;
        if !has_namespace(&record, LinuxNamespaceType::Mount) {
            rootfs::unmount_below(&record.rootfs);
        }
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("removing {}", dir.display()),
            source,
        })?;
        Ok(warnings)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if status != Status::Running {
            return Err(wrong_state(id, "pause", status, ""));
        }
        Ok(record.cgroup.set_frozen(true)?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if status != Status::Paused {
            return Err(wrong_state(id, "resume", status, ""));
        }
        Ok(record.cgroup.set_frozen(false)?)
    }

    /// Sets new limits on the cgroup of a container that has not stopped
    /// (runc's `update`); returns those this kernel cannot set.
    pub fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<Vec<keel_cgroups::Skipped>> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if status == Status::Stopped {
            return Err(wrong_state(id, "update", status, ""));
        }
        Ok(record.cgroup.apply(resources)?)
    }

    /// The pids of the container's processes, as the runtime sees them.
    pub fn processes(&self, id: &str) -> Result<Vec<i32>> {
        let (_, record) = self.load(id)?;
        Ok(record.cgroup.processes()?)
    }

    /// Runs another process in a running container; see [`ExecOptions`].
    /// Returns its exit code, or with `detach` its pid once it runs.
    pub fn exec(&self, id: &str, options: &ExecOptions) -> Result<i32> {
        let (dir, record) = self.load(id)?;
        let status = record.status(&dir);
        if !matches!(status, Status::Running | Status::Created) {
            return Err(wrong_state(id, "exec in", status, ""));
        }
        exec::exec(&record, options)
    }

    fn load(&self, id: &str) -> Result<(PathBuf, Record)> {
        validate_id(id)?;
        let dir = self.root.join(id);
        if !dir.join(state::RECORD).exists() {
            return Err(Error::NotFound {
                id: id.to_owned(),
                root: self.root.clone(),
            });
        }
        let record = Record::load(&dir)?;
        Ok((dir, record))
    }
}

/// runc's rule for ids: `[\w+.-]+`, except `.` and `..`.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

fn wrong_state(id: &str, action: &'static str, status: Status, hint: &'static str) -> Error {
    Error::WrongState {
        id: id.to_owned(),
        action,
        status: status.as_str(),
        hint,
    }
}

/// Wakes the waiting init by writing to its fifo and waits until it has
/// executed the container process; then removes the fifo, which makes the
/// container "running", and runs the poststart hooks.
fn start_created(dir: &Path, record: &Record) -> Result<()> {
    let fifo_path = dir.join(state::EXEC_FIFO);
    let waking = || format!("waking container {:?}", record.id);
    // Non-blocking: with no reader (init died) the open fails at once.
    let fifo = rustix::fs::open(
        &fifo_path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| Error::Os {
        what: format!("{} (its init is gone)", waking()),
        source,
    })?;
    rustix::io::write(fifo.as_fd(), b"0").map_err(|source| Error::Os {
        what: waking(),
        source,
    })?;
    // Init's end of the fifo closes on exec, so the fifo loses its last
    // reader, which poll reports as POLLERR, once the process runs (or init
    // died trying).
    let mut fds = [rustix::event::PollFd::new(
        &fifo,
        rustix::event::PollFlags::empty(),
    )];
    loop {
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(source) => {
                return Err(Error::Os {
                    what: waking(),
                    source,
                });
            }
        }
    }
    std::fs::remove_file(&fifo_path).map_err(|source| Error::Io {
        what: format!("removing {}", fifo_path.display()),
        source,
    })?;
    let state = serde_json::to_vec(&record.state(Status::Running)).unwrap_or_default();
    let poststart = hooks::of_kind(&record.config, |h| h.poststart());
    for warning in hooks::run_all("poststart", poststart, &state) {
        eprintln!("keel-runtime: warning: {}", report(&warning));
    }
    Ok(())
}

fn has_own_pid_namespace(record: &Record) -> bool {
    namespaces_of(record).any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
}

/// Whether the container has a namespace of type `typ`, new or joined.
fn has_namespace(record: &Record, typ: LinuxNamespaceType) -> bool {
    namespaces_of(record).any(|n| n.typ() == typ)
}

fn namespaces_of(record: &Record) -> impl Iterator<Item = &oci_spec::runtime::LinuxNamespace> {
    record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
}

fn send_signal(pid: i32, signal: i32) -> Result<()> {
    if pid <= 0 {
        return Ok(());
    }
    match sys::kill(pid, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(source) => Err(Error::Os {
            what: format!("sending signal {signal} to pid {pid}"),
            source,
        }),
    }
}

/// Signals every process of the container. The cgroup is frozen meanwhile,
/// so no process can fork a child that escapes the signal.
fn signal_all(record: &Record, signal: i32) -> Result<()> {
    let frozen = record.cgroup.set_frozen(true).is_ok();
    let result = record
        .cgroup
        .processes()
        .map_err(Error::from)
        .and_then(|pids| {
            pids.into_iter()
                .try_for_each(|pid| send_signal(pid, signal))
        });
    // The init may live outside the cgroup's listing for an instant after
    // create; signal it too.
    let init = send_signal(record.pid, signal);
    if frozen {
        record.cgroup.set_frozen(false)?;
    }
    result.and(init)
}

/// Waits until `pid` has exited (it may not be our child, so it cannot be
/// waited for): a pidfd becomes readable when the process ends.
fn wait_gone(pid: i32) -> Result<()> {
    let Some(target) = Pid::from_raw(pid) else {
        return Ok(());
    };
    let fd = match rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(source) => {
            return Err(Error::Os {
                what: format!("watching pid {pid}"),
                source,
            });
        }
    };
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(0) => Err(Error::Container(format!(
            "pid {pid} did not exit within 10s of SIGKILL"
        ))),
        // Its parent may not have reaped it yet; a zombie is gone for us.
        Ok(_) => Ok(()),
        Err(source) => Err(Error::Os {
            what: format!("waiting for pid {pid} to exit"),
            source,
        }),
    }
}

/// Waits for our child `pid` and turns its status into a shell exit code.
fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                return Ok(match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => code,
                    (None, Some(signal)) => 128 + signal,
                    _ => 1,
                });
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(source) => {
                return Err(Error::Os {
                    what: format!("waiting for pid {}", pid.as_raw_nonzero()),
                    source,
                });
            }
        }
    }
}
