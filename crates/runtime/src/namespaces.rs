//! Which namespaces a container gets: new ones are created by clone; ones
//! given by path are opened and type-checked up front, then joined.
//!
//! The runtime process joins the namespaces that only affect its children
//! or that it does not use itself (pid, net, ipc, uts, cgroup, time) right
//! before it forks. The user and mount namespaces would take away its own
//! privileges and view of the host's files, so the child joins those.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use rustix::fs::{Mode, OFlags};
use rustix::thread::LinkNameSpaceType;

use crate::error::{Context, Error, Result};
use crate::sys;

#[derive(Debug)]
pub(crate) struct Namespaces {
    /// CLONE_NEW* flags of the namespaces to create.
    new: libc::c_int,
    joined: Vec<Joined>,
}

#[derive(Debug)]
struct Joined {
    typ: LinuxNamespaceType,
    path: PathBuf,
    fd: OwnedFd,
}

impl Namespaces {
    pub(crate) fn from_spec(list: &[LinuxNamespace]) -> Result<Self> {
        let mut namespaces = Namespaces {
            new: 0,
            joined: Vec::new(),
        };
        for (i, ns) in list.iter().enumerate() {
            let typ = ns.typ();
            if list[..i].iter().any(|other| other.typ() == typ) {
                return Err(Error::invalid(
                    "linux.namespaces",
                    format!("{typ} listed twice"),
                    "list each namespace type once",
                ));
            }
            match ns.path() {
                None => namespaces.new |= flag(typ),
                Some(path) => namespaces.joined.push(open(typ, path)?),
            }
        }
        Ok(namespaces)
    }

    /// Namespaces of the running container at /proc/`pid`/ns, for `exec`:
    /// every type the container was configured with.
    pub(crate) fn of_process(pid: i32, list: &[LinuxNamespace]) -> Result<Self> {
        let mut joined = Vec::new();
        for ns in list {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(ns.typ())));
            joined.push(open(ns.typ(), &path)?);
        }
        Ok(Namespaces { new: 0, joined })
    }

    /// The namespaces clone creates. Not time (clone cannot; see
    /// unshare_time) nor cgroup: a cgroup namespace is rooted at the
    /// cgroup its creator is in, so init makes it once it is in the
    /// container's cgroup (unshare_cgroup).
    pub(crate) fn clone_flags(&self) -> libc::c_int {
        self.new & !(libc::CLONE_NEWTIME | libc::CLONE_NEWCGROUP)
    }

    /// In init, once it is in the container's cgroup.
    pub(crate) fn unshare_cgroup(&self) -> Result<()> {
        if self.is_new(LinuxNamespaceType::Cgroup) {
            sys::unshare(libc::CLONE_NEWCGROUP).context(|| "creating a cgroup namespace".into())?;
        }
        Ok(())
    }

    pub(crate) fn is_new(&self, typ: LinuxNamespaceType) -> bool {
        self.new & flag(typ) != 0
    }

    /// Whether the container has this namespace of its own, new or joined.
    pub(crate) fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.is_new(typ) || self.joined.iter().any(|j| j.typ == typ)
    }

    /// In the runtime process: creates a new time namespace for the child
    /// to be born in.
    pub(crate) fn unshare_time(&self) -> Result<()> {
        if self.is_new(LinuxNamespaceType::Time) {
            sys::unshare(libc::CLONE_NEWTIME).context(|| "creating a time namespace".into())?;
        }
        Ok(())
    }

    /// In the runtime process, right before forking the container.
    pub(crate) fn join_for_children(&self) -> Result<()> {
        self.join(|typ| !matches!(typ, LinuxNamespaceType::User | LinuxNamespaceType::Mount))
    }

    /// Whether the container joins an existing user namespace; its new
    /// namespaces are then made from inside it (see sync::fork_child).
    pub(crate) fn joins_user(&self) -> bool {
        self.joined
            .iter()
            .any(|j| j.typ == LinuxNamespaceType::User)
    }

    /// In a forked child: the user namespace to join, if any.
    pub(crate) fn join_user(&self) -> Result<()> {
        self.join(|typ| typ == LinuxNamespaceType::User)
    }

    /// In the forked child, after the user namespace, so that the mount
    /// namespace is joined with the user namespace's privileges.
    pub(crate) fn join_mount(&self) -> Result<()> {
        self.join(|typ| typ == LinuxNamespaceType::Mount)
    }

    fn join(&self, which: impl Fn(LinuxNamespaceType) -> bool) -> Result<()> {
        for ns in self.joined.iter().filter(|j| which(j.typ)) {
            rustix::thread::move_into_link_name_space(ns.fd.as_fd(), Some(link_type(ns.typ)))
                .context(|| format!("joining the {} namespace {}", ns.typ, ns.path.display()))?;
        }
        Ok(())
    }
}

fn open(typ: LinuxNamespaceType, path: &Path) -> Result<Joined> {
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).context(|| {
            format!(
                "opening the {typ} namespace given as linux.namespaces path {}",
                path.display()
            )
        })?;
    let actual = sys::namespace_type(&fd).map_err(|_| {
        Error::invalid(
            format!("linux.namespaces {typ} path"),
            path.display(),
            "must be a namespace file such as /proc/<pid>/ns/<type>",
        )
    })?;
    if actual != flag(typ) {
        return Err(Error::invalid(
            format!("linux.namespaces {typ} path"),
            path.display(),
            format!("is not a {typ} namespace"),
        ));
    }
    Ok(Joined {
        typ,
        path: path.to_owned(),
        fd,
    })
}

pub(crate) fn flag(typ: LinuxNamespaceType) -> libc::c_int {
    match typ {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

fn link_type(typ: LinuxNamespaceType) -> LinkNameSpaceType {
    match typ {
        LinuxNamespaceType::Mount => LinkNameSpaceType::Mount,
        LinuxNamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        LinuxNamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        LinuxNamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        LinuxNamespaceType::User => LinkNameSpaceType::User,
        LinuxNamespaceType::Pid => LinkNameSpaceType::ProcessID,
        LinuxNamespaceType::Network => LinkNameSpaceType::Network,
        LinuxNamespaceType::Time => LinkNameSpaceType::Time,
    }
}

/// The file name under /proc/<pid>/ns/.
fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}
