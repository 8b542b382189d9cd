//! `exec`: another process in a running container. The runtime joins the
//! container's pid, net, ipc, uts, cgroup and time namespaces itself, so the
//! child it forks is born in them; the child joins the user and mount
//! namespaces, takes the container's cgroup, then sets up and executes the
//! process like init does.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{Capability, Process};
use rustix::process::Pid;

use crate::error::{Context, Error, Result};
use crate::namespaces::Namespaces;
use crate::process::ProcessPlan;
use crate::state::{self, Record};
use crate::sync::{self, Message};
use crate::sys;

/// What to run: a whole OCI process (`process`, as containerd and Podman
/// pass it) or `args` with runc's flags on top of the container's process.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// uid and gid.
    pub user: Option<(u32, u32)>,
    pub additional_gids: Vec<u32>,
    /// Extra capabilities, such as CAP_NET_ADMIN.
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub tty: bool,
    /// Return once the process runs, instead of waiting for it.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

pub(crate) fn exec(record: &Record, options: &ExecOptions) -> Result<i32> {
    crate::sealed::require()?;
    let process = process_for(record, options)?;
    let linux = record.config.linux().as_ref();
    let plan = ProcessPlan::new(&process, linux)?;
    plan.check_console(options.console_socket.as_deref())?;
    let configured = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let namespaces = Namespaces::of_process(record.pid, configured)?;
    let console = options
        .console_socket
        .as_deref()
        .map(crate::console::connect)
        .transpose()?;
    namespaces.join_for_children()?;
    let (pid, ours) = sync::fork_child(0, "the exec process", None, |channel| {
        child(
            &plan,
            &namespaces,
            channel,
            console.as_ref(),
            options.preserve_fds,
        )
    })?;
    drop(console);
    let target = Pid::from_raw(pid).ok_or_else(|| Error::Container("invalid pid".into()))?;
    let setup = record
        .cgroup
        .add_process(pid)
        .map_err(Error::from)
        .and_then(|()| ours.send(&Message::Go(pid)))
        .and_then(|()| match ours.recv()? {
            // The channel closes on a successful execve.
            None => Ok(()),
            Some(Message::Failed(failure)) => Err(failure.into()),
            Some(other) => Err(Error::Container(format!("exec process sent {other:?}"))),
        });
    if let Err(e) = setup {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(Some(target), rustix::process::WaitOptions::empty());
        return Err(e);
    }
    if let Some(pid_file) = &options.pid_file {
        state::write_pid_file(pid_file, pid)?;
    }
    if options.detach {
        return Ok(pid);
    }
    crate::wait_exit_code(target)
}

fn child(
    plan: &ProcessPlan,
    namespaces: &Namespaces,
    channel: &sync::Channel,
    console: Option<&std::os::fd::OwnedFd>,
    preserve_fds: u32,
) -> Error {
    let setup = || -> Result<std::ffi::CString> {
        namespaces.join_user()?;
        namespaces.join_mount()?;
        match channel.recv()? {
            Some(Message::Go(_)) => {}
            _ => return Err(Error::Container("the runtime went away during exec".into())),
        }
        rustix::process::setsid().context(|| "starting a session".into())?;
        if let Some(socket) = console {
            crate::console::attach(socket, plan.console_size, false)?;
        }
        sys::close_fds_from(3 + preserve_fds).context(|| "closing inherited fds".into())?;
        plan.find_executable()
    };
    match setup() {
        Ok(program) => plan.exec(&program),
        Err(e) => e,
    }
}

/// The process to run: read from --process, or the container's own process
/// with args and runc's exec flags applied.
fn process_for(record: &Record, options: &ExecOptions) -> Result<Process> {
    if let Some(path) = &options.process {
        let text = std::fs::read(path).map_err(|source| Error::ReadConfig {
            path: path.clone(),
            source,
        })?;
        return serde_json::from_slice(&text).map_err(|e| Error::MalformedConfig {
            path: path.clone(),
            message: e.to_string(),
        });
    }
    if options.args.is_empty() {
        return Err(Error::invalid(
            "exec arguments",
            "empty",
            "give the command to run, or --process with a process.json",
        ));
    }
    let mut process = record.config.process().clone().unwrap_or_default();
    process.set_args(Some(options.args.clone()));
    process.set_terminal(Some(options.tty));
    process.set_console_size(None);
    let mut env = process.env().clone().unwrap_or_default();
    env.extend(options.env.iter().cloned());
    process.set_env(Some(env));
    if let Some(cwd) = &options.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some((uid, gid)) = options.user {
        let mut user = process.user().clone();
        user.set_uid(uid).set_gid(gid);
        process.set_user(user);
    }
    if !options.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(options.additional_gids.clone()));
        process.set_user(user);
    }
    if options.no_new_privileges {
        process.set_no_new_privileges(Some(true));
    }
    if !options.capabilities.is_empty() {
        let mut added = HashSet::new();
        for name in &options.capabilities {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| {
                Error::invalid("--cap", name, "use a capability name such as CAP_NET_ADMIN")
            })?;
            added.insert(cap);
        }
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let grow = |set: &Option<HashSet<Capability>>| {
            Some(
                set.clone()
                    .unwrap_or_default()
                    .union(&added)
                    .copied()
                    .collect(),
            )
        };
        let (bounding, effective, permitted) = (
            grow(caps.bounding()),
            grow(caps.effective()),
            grow(caps.permitted()),
        );
        caps.set_bounding(bounding)
            .set_effective(effective)
            .set_permitted(permitted);
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}
