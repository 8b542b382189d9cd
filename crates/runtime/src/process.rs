//! The container process as configured: everything about it is checked and
//! converted before any fork, and applied by [`ProcessPlan::exec`] in the
//! order the kernel requires. Container init and `exec` share it.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use keel_seccomp::Filter;
use oci_spec::runtime::{IOPriorityClass, Linux, PosixRlimitType, Process};
use rustix::io::Errno;
use rustix::process::{Resource, Rlimit};

use crate::caps::CapabilityMasks;
use crate::error::{Context, Error, ProgramFault, Result};
use crate::sys;

/// Docker's and runc's PATH for a process whose env has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug)]
pub(crate) struct ProcessPlan {
    pub(crate) args: Vec<CString>,
    env: Vec<CString>,
    search_path: String,
    pub(crate) cwd: PathBuf,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    umask: u32,
    capabilities: Option<CapabilityMasks>,
    rlimits: Vec<(PosixRlimitType, Rlimit)>,
    no_new_privileges: bool,
    seccomp: Option<Filter>,
    pub(crate) oom_score_adj: Option<i32>,
    terminal: bool,
    pub(crate) console_size: Option<(u16, u16)>,
    io_priority: Option<(i64, i64)>,
}

impl ProcessPlan {
    /// Checks `process` (with the container's `linux` section for seccomp)
    /// and converts it into what the syscalls take.
    pub(crate) fn new(process: &Process, linux: Option<&Linux>) -> Result<Self> {
        let args = process.args().as_deref().unwrap_or_default();
        if args.is_empty() {
            return Err(Error::invalid(
                "process.args",
                "empty",
                "give at least the program to run",
            ));
        }
        if !process.cwd().is_absolute() {
            return Err(Error::invalid(
                "process.cwd",
                format!("{:?}", process.cwd()),
                "must be an absolute path",
            ));
        }
        if process.scheduler().is_some() || process.exec_cpu_affinity().is_some() {
            return Err(Error::invalid(
                "process.scheduler/execCPUAffinity",
                "set",
                "keel-runtime does not support them yet; remove them",
            ));
        }
        let env = process.env().as_deref().unwrap_or_default();
        let search_path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_owned();
        let user = process.user();
        let mut rlimits = Vec::new();
        for limit in process.rlimits().iter().flatten() {
            if limit.soft() > limit.hard() {
                return Err(Error::invalid(
                    format!("process.rlimits {}", limit.typ()),
                    format!("soft {} hard {}", limit.soft(), limit.hard()),
                    "the soft limit cannot be above the hard limit",
                ));
            }
            if rlimits.iter().any(|(t, _)| *t == limit.typ()) {
                return Err(Error::invalid(
                    "process.rlimits",
                    format!("{} twice", limit.typ()),
                    "give each limit once",
                ));
            }
            let value = |v: u64| (v != u64::MAX).then_some(v);
            rlimits.push((
                limit.typ(),
                Rlimit {
                    current: value(limit.soft()),
                    maximum: value(limit.hard()),
                },
            ));
        }
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => Some(Filter::compile(profile)?),
            None => None,
        };
        let io_priority = process.io_priority().as_ref().map(|p| {
            let class = match p.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            (class, p.priority())
        });
        Ok(ProcessPlan {
            args: c_strings("process.args", args)?,
            env: c_strings("process.env", env)?,
            search_path,
            cwd: process.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(0o022),
            capabilities: process
                .capabilities()
                .as_ref()
                .map(CapabilityMasks::from_spec),
            rlimits,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            seccomp,
            oom_score_adj: process.oom_score_adj(),
            terminal: process.terminal().unwrap_or(false),
            console_size: process.console_size().as_ref().map(|b| {
                (
                    b.height().min(u16::MAX.into()) as u16,
                    b.width().min(u16::MAX.into()) as u16,
                )
            }),
            io_priority,
        })
    }

    /// A terminal is handed over a console socket; without one there is
    /// nowhere to send it.
    pub(crate) fn check_console(&self, socket: Option<&Path>) -> Result<()> {
        if self.terminal && socket.is_none() {
            return Err(Error::invalid(
                "process.terminal",
                "true",
                "a terminal needs --console-socket to hand the pty to",
            ));
        }
        Ok(())
    }

    /// Finds the program in the current root the way execvp would, so a
    /// missing program is reported at create time, worded as runc words it
    /// (Docker and Podman look for these words on the wire).
    pub(crate) fn find_executable(&self) -> Result<CString> {
        let program = Path::new(OsStr::from_bytes(self.args[0].as_bytes()));
        if program.as_os_str().as_bytes().contains(&b'/') {
            let stat = |detail: &str| format!("stat {}: {detail}", program.display());
            return match std::fs::metadata(program) {
                Ok(m) if m.is_dir() => Err(cannot_run(
                    program,
                    "is a directory: permission denied",
                    Some(ProgramFault::NotExecutable),
                )),
                Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(cannot_run(
                    program,
                    &stat("permission denied"),
                    Some(ProgramFault::NotExecutable),
                )),
                Ok(_) => Ok(self.args[0].clone()),
                Err(e) => Err(cannot_run(program, &stat(&io_words(&e)), fault_of(&e))),
            };
        }
        for dir in self.search_path.split(':') {
            let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(program);
            if let Ok(m) = std::fs::metadata(&candidate)
                && m.is_file()
                && m.permissions().mode() & 0o111 != 0
            {
                return CString::new(candidate.into_os_string().into_vec()).map_err(|_| {
                    cannot_run(
                        program,
                        "path contains a NUL byte",
                        Some(ProgramFault::NotFound),
                    )
                });
            }
        }
        Err(cannot_run(
            program,
            "executable file not found in $PATH",
            Some(ProgramFault::NotFound),
        ))
    }

    /// Applies limits, identity, privileges and seccomp, then executes
    /// `program`. Returns only on failure.
    pub(crate) fn exec(&self, program: &CString) -> Error {
        match self.apply() {
            Ok(()) => {}
            Err(e) => return e,
        }
        sys::reset_signals();
        let error = std::io::Error::from(sys::execve(program, &self.args, &self.env));
        let program = Path::new(OsStr::from_bytes(program.as_bytes()));
        cannot_run(program, &io_words(&error), fault_of(&error))
    }

    fn apply(&self) -> Result<()> {
        for (typ, limit) in &self.rlimits {
            rustix::process::setrlimit(resource(*typ), *limit).context(|| {
                format!(
                    "setting {typ} to soft {:?} hard {:?} (a hard limit above the caller's needs \
                     CAP_SYS_RESOURCE)",
                    limit.current, limit.maximum
                )
            })?;
        }
        if let Some((class, level)) = self.io_priority {
            sys::set_io_priority(class, level)
                .context(|| format!("setting I/O priority class {class} level {level}"))?;
        }
        if self.no_new_privileges {
            rustix::thread::set_no_new_privs(true).context(|| "setting no_new_privs".into())?;
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which
        // the process may be about to lose.
        if !self.no_new_privileges
            && let Some(filter) = &self.seccomp
        {
            filter.load()?;
        }
        if let Some(caps) = &self.capabilities {
            caps.apply_bounding()?;
            rustix::thread::set_keep_capabilities(true)
                .context(|| "keeping capabilities".into())?;
        }
        self.switch_user()?;
        if let Some(caps) = &self.capabilities {
            rustix::thread::set_keep_capabilities(false)
                .context(|| "clearing keep-capabilities".into())?;
            caps.apply_sets()?;
        }
        rustix::process::umask(rustix::fs::Mode::from_bits_retain(self.umask));
        std::env::set_current_dir(&self.cwd)
            .context(|| format!("changing to the working directory {}", self.cwd.display()))?;
        // With no_new_privs the filter goes last, so the profile need not
        // allow the setup syscalls above.
        if self.no_new_privileges
            && let Some(filter) = &self.seccomp
        {
            filter.load()?;
        }
        Ok(())
    }

    fn switch_user(&self) -> Result<()> {
        let gids: Vec<rustix::process::Gid> = self
            .additional_gids
            .iter()
            .map(|g| rustix::process::Gid::from_raw(*g))
            .collect();
        match rustix::thread::set_thread_groups(&gids) {
            // Not permitted in a user namespace whose setgroups is "deny";
            // then there can be no additional groups anyway.
            Err(Errno::PERM) if gids.is_empty() => {}
            r => r.context(|| format!("setting additional groups {:?}", self.additional_gids))?,
        }
        let gid = rustix::process::Gid::from_raw(self.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).context(|| {
            format!(
                "setting gid {} (is it mapped in the user namespace?)",
                self.gid
            )
        })?;
        let uid = rustix::process::Uid::from_raw(self.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid).context(|| {
            format!(
                "setting uid {} (is it mapped in the user namespace?)",
                self.uid
            )
        })?;
        Ok(())
    }
}

/// The error of a program that could not be run: a fault when a shell
/// would give it its own exit status, else a plain failure.
fn cannot_run(program: &Path, detail: &str, fault: Option<ProgramFault>) -> Error {
    let message = format!("exec: {:?}: {detail}", program.as_os_str());
    match fault {
        Some(fault) => Error::Program { fault, message },
        None => Error::Container(message),
    }
}

/// Which fault a failed stat or execve of the program is, as moby reads
/// the words (ENOTDIR: a path through a file is not there).
fn fault_of(e: &std::io::Error) -> Option<ProgramFault> {
    match e.raw_os_error()? {
        libc::ENOENT | libc::ENOTDIR => Some(ProgramFault::NotFound),
        libc::EACCES | libc::EPERM | libc::EISDIR => Some(ProgramFault::NotExecutable),
        _ => None,
    }
}

/// "no such file or directory" rather than Rust's "No such file or
/// directory (os error 2)": the words Docker and Podman look for.
fn io_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::ENOEXEC) => "exec format error".into(),
        _ => e.to_string().to_lowercase(),
    }
}

fn c_strings(field: &str, values: &[String]) -> Result<Vec<CString>> {
    values
        .iter()
        .map(|v| {
            CString::new(v.as_bytes())
                .map_err(|_| Error::invalid(field, format!("{v:?}"), "must not contain NUL bytes"))
        })
        .collect()
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}
