//! The container's init, from the fork until it becomes the container
//! process. It runs in the new namespaces, single-threaded, on a copy of the
//! runtime's memory, so it uses the plan as is.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use keel_cgroups::Cgroup;
use oci_spec::runtime::LinuxNamespaceType;

use crate::create::Plan;
use crate::error::{Context, Error, ProgramFault, Result};
use crate::state::Status;
use crate::sync::{Channel, Message};
use crate::sys;

/// Sets the container up and executes its process. Returns only the error
/// that stopped it.
pub(crate) fn run(
    plan: &Plan,
    channel: &Channel,
    fifo: &OwnedFd,
    console: Option<&OwnedFd>,
    cgroup: &Cgroup,
) -> Error {
    match prepare(plan, channel, console, cgroup) {
        Ok((pid, program)) => {
            if let Err(e) = channel.send(&Message::Created) {
                return e;
            }
            // From here on the runtime is gone: errors go to stderr and the
            // exit status.
            let error = start(plan, fifo, pid, &program);
            eprintln!("keel-runtime: {}", crate::error::report(&error));
            sys::exit_child(exit_code(&error));
        }
        Err(e) => e,
    }
}

/// Everything up to "created". Returns the pid the runtime sees and the
/// program to execute, looked up now so that a missing one fails `create`,
/// as with runc.
fn prepare(
    plan: &Plan,
    channel: &Channel,
    console: Option<&OwnedFd>,
    cgroup: &Cgroup,
) -> Result<(i32, CString)> {
    // The runtime writes the id maps and joins the cgroup first.
    let pid = match channel.recv()? {
        Some(Message::Go(pid)) => pid,
        _ => {
            return Err(Error::Container(
                "the runtime went away during setup".into(),
            ));
        }
    };
    if plan.namespaces.has(LinuxNamespaceType::User) {
        become_root()?;
    }
    rustix::process::setsid().context(|| "starting a session".into())?;
    // A user namespace to join was joined by the process that forked init.
    plan.namespaces.join_mount()?;
    plan.namespaces.unshare_cgroup()?;
    if plan.namespaces.is_new(LinuxNamespaceType::Network) {
        sys::loopback_up().context(|| "bringing up the loopback interface".into())?;
    }
    let null = plan
        .rootfs
        .mount_all(cgroup, plan.namespaces.is_new(LinuxNamespaceType::Cgroup))?;
    if plan.has_runtime_hooks() {
        channel.send(&Message::RunHooks)?;
        channel.expect(&Message::Go(pid))?;
    }
    let state = plan.state_json(Status::Creating, pid);
    crate::hooks::run(
        "createContainer",
        plan.hooks(|h| h.create_container()),
        &state,
    )?;
    plan.rootfs.enter()?;
    if let Some(socket) = console {
        crate::console::attach(socket, plan.process.console_size, true)?;
    }
    if let Some(name) = &plan.hostname {
        rustix::system::sethostname(name.as_bytes())
            .context(|| format!("setting the hostname {name:?}"))?;
    }
    if let Some(name) = &plan.domainname {
        rustix::system::setdomainname(name.as_bytes())
            .context(|| format!("setting the domain name {name:?}"))?;
    }
    for (path, value) in &plan.sysctls {
        std::fs::write(path, value)
            .context(|| format!("setting sysctl {} to {value:?}", path.display()))?;
    }
    // Masked and read-only paths cover /proc/sys, so they come last.
    plan.rootfs.protect(null)?;
    if let Some(persona) = plan.personality {
        sys::set_personality(persona).context(|| format!("setting personality {persona:#x}"))?;
    }
    Ok((pid, plan.process.find_executable()?))
}

/// Waits for `start`, then becomes the container process.
fn start(plan: &Plan, fifo: &OwnedFd, pid: i32, program: &CString) -> Error {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(fifo, &mut byte) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Error::Os {
                    what: "waiting for start".into(),
                    source: e,
                };
            }
        }
    }
    let state = plan.state_json(Status::Created, pid);
    if let Err(e) = crate::hooks::run(
        "startContainer",
        plan.hooks(|h| h.start_container()),
        &state,
    ) {
        return e;
    }
    if let Err(e) = sys::close_fds_from(3 + plan.preserve_fds) {
        return Error::Os {
            what: "closing inherited fds".into(),
            source: e,
        };
    }
    plan.process.exec(program)
}

/// In a user namespace, take the mapped root as real, effective and
/// saved ids, so setup runs as root of the namespace.
fn become_root() -> Result<()> {
    let root_gid = rustix::process::Gid::ROOT;
    let root_uid = rustix::process::Uid::ROOT;
    rustix::thread::set_thread_res_gid(root_gid, root_gid, root_gid)
        .context(|| "becoming gid 0 in the user namespace (is 0 mapped?)".into())?;
    rustix::thread::set_thread_res_uid(root_uid, root_uid, root_uid)
        .context(|| "becoming uid 0 in the user namespace (is 0 mapped?)".into())
}

/// The exit status of a container process that could not run its
/// program: 127 or 126 as a shell gives them, else 1.
pub(crate) fn exit_code(error: &Error) -> i32 {
    error.program_fault().map_or(1, ProgramFault::exit_code)
}
