//! `create`: everything about the container is checked and prepared first,
//! then the runtime forks the container's init into its namespaces, feeds
//! it the id maps and cgroup, runs the createRuntime hooks when it asks, and
//! records the container once init reports it is ready to start.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use keel_cgroups::{Cgroup, CgroupPath, Hierarchies};
use oci_spec::runtime::{
    Hook, Linux, LinuxDeviceCgroup, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType,
    LinuxResources, Spec,
};
use rustix::fs::{Mode, OFlags};

use crate::error::{Context, Error, Result};
use crate::namespaces::Namespaces;
use crate::process::ProcessPlan;
use crate::rootfs::RootfsPlan;
use crate::state::{self, Record, State, Status};
use crate::sync::{self, Message};
use crate::{Runtime, init};

/// How to create a container, as `create` and `run` take it.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a ramfs root).
    pub no_pivot: bool,
    /// Keep this many fds after stdio open in the container.
    pub preserve_fds: u32,
}

/// A container checked and converted, ready to fork.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) spec: Spec,
    pub(crate) rootfs_path: PathBuf,
    pub(crate) namespaces: Namespaces,
    pub(crate) rootfs: RootfsPlan,
    pub(crate) process: ProcessPlan,
    pub(crate) hostname: Option<String>,
    pub(crate) domainname: Option<String>,
    pub(crate) sysctls: Vec<(PathBuf, String)>,
    pub(crate) personality: Option<libc::c_ulong>,
    pub(crate) preserve_fds: u32,
    /// `linux.resources` with the devices every container may use added.
    resources: LinuxResources,
    id_maps: Option<(String, String)>,
    cgroup_path: CgroupPath,
    time_offsets: Option<String>,
}

impl Plan {
    pub(crate) fn new(runtime: &Runtime, id: &str, options: &CreateOptions) -> Result<Self> {
        let bundle = std::path::absolute(&options.bundle)
            .context(|| format!("resolving the bundle path {}", options.bundle.display()))?;
        let spec = load_config(&bundle)?;
        let linux = spec.linux().as_ref().ok_or_else(|| {
            Error::invalid(
                "linux",
                "missing",
                "a Linux container needs the linux section",
            )
        })?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::invalid("root", "missing", "give root.path, the rootfs"))?;
        let rootfs_path = bundle.join(root.path());
        if !rootfs_path.is_dir() {
            return Err(Error::invalid(
                "root.path",
                rootfs_path.display(),
                "must be an existing directory (the container's root filesystem)",
            ));
        }
        let process = spec.process().as_ref().ok_or_else(|| {
            Error::invalid(
                "process",
                "missing",
                "give the process to run in the container",
            )
        })?;
        let namespaces = Namespaces::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
        let user_ns = namespaces.has(LinuxNamespaceType::User);
        let id_maps = id_maps(
            linux.uid_mappings(),
            linux.gid_mappings(),
            namespaces.is_new(LinuxNamespaceType::User),
        )?;
        let process_plan = ProcessPlan::new(process, Some(linux))?;
        process_plan.check_console(options.console_socket.as_deref())?;
        let hostname = checked_name("hostname", spec.hostname(), &namespaces)?;
        let domainname = checked_name("domainname", spec.domainname(), &namespaces)?;
        let mut sysctls = Vec::new();
        for (key, value) in linux.sysctl().iter().flatten() {
            check_sysctl(key, &namespaces)?;
            sysctls.push((
                Path::new("/proc/sys").join(key.replace('.', "/")),
                value.clone(),
            ));
        }
        let personality = linux.personality().as_ref().map(|p| match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
        });
        let cgroup_path = cgroup_path(runtime, id, linux.cgroups_path().as_deref())?;
        let time_offsets = linux.time_offsets().as_ref().map(|offsets| {
            offsets
                .iter()
                .map(|(clock, o)| {
                    format!(
                        "{clock} {} {}\n",
                        o.secs().unwrap_or(0),
                        o.nanosecs().unwrap_or(0)
                    )
                })
                .collect()
        });
        if let Some(hooks) = spec.hooks() {
            for hook in all_hooks(hooks) {
                if !hook.path().is_absolute() {
                    return Err(Error::invalid(
                        "hooks path",
                        hook.path().display(),
                        "must be absolute",
                    ));
                }
            }
        }
        let resources = resources_with_default_devices(linux)?;
        Ok(Plan {
            id: id.to_owned(),
            resources,
            rootfs: RootfsPlan::new(
                &spec,
                rootfs_path.clone(),
                options.no_pivot,
                user_ns,
                !namespaces.has(LinuxNamespaceType::Mount),
            )?,
            process: process_plan,
            bundle,
            rootfs_path,
            namespaces,
            hostname,
            domainname,
            sysctls,
            personality,
            preserve_fds: options.preserve_fds,
            id_maps,
            cgroup_path,
            time_offsets,
            spec,
        })
    }

    /// The state hooks get on stdin.
    pub(crate) fn state_json(&self, status: Status, pid: i32) -> Vec<u8> {
        let state = State {
            oci_version: self.spec.version().clone(),
            id: self.id.clone(),
            status,
            pid,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs_path.clone(),
            created: String::new(),
            owner: String::new(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
        };
        serde_json::to_vec(&state).unwrap_or_default()
    }

    pub(crate) fn hooks(
        &self,
        pick: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<Hook>>,
    ) -> &[Hook] {
        crate::hooks::of_kind(&self.spec, pick)
    }

    /// Whether init must pause for the runtime's createRuntime hooks.
    pub(crate) fn has_runtime_hooks(&self) -> bool {
        !self.hooks(|h| h.prestart()).is_empty() || !self.hooks(|h| h.create_runtime()).is_empty()
    }
}

/// A container forked and waiting for `start`.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) pid: i32,
    pub(crate) dir: PathBuf,
    pub(crate) record: Record,
}

/// Undoes a half-made container when create fails: kills init, removes the
/// cgroup and the state directory.
struct Undo {
    dir: PathBuf,
    pid: Option<i32>,
    cgroup: Option<Cgroup>,
    /// The rootfs whose mounts, made in the host's namespace, must go.
    host_mounts: Option<PathBuf>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let pid = rustix::process::Pid::from_raw(pid);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            }
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.remove();
        }
        if let Some(rootfs) = &self.host_mounts {
            crate::rootfs::unmount_below(rootfs);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn create(runtime: &Runtime, id: &str, options: &CreateOptions) -> Result<Created> {
    crate::validate_id(id)?;
    crate::sealed::require()?;
    let plan = Plan::new(runtime, id, options)?;
    let hierarchies = Hierarchies::detect()?;
    runtime.ensure_root()?;
    let dir = runtime.root.join(id);
    match rustix::fs::mkdir(&dir, Mode::from_bits_retain(0o711)) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {
            return Err(Error::AlreadyExists {
                id: id.to_owned(),
                root: runtime.root.clone(),
            });
        }
        Err(e) => return Err(e).context(|| format!("creating {}", dir.display())),
    }
    let mut undo = Undo {
        dir: dir.clone(),
        pid: None,
        cgroup: None,
        host_mounts: plan.rootfs.mounts_in_host().map(Path::to_owned),
        armed: true,
    };

    let fifo_path = dir.join(state::EXEC_FIFO);
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo_path, Mode::from_bits_retain(0o600))
        .context(|| format!("creating {}", fifo_path.display()))?;
    // Opened for reading and writing, so this open does not block and init
    // can block reading it until `start` writes a byte.
    let fifo = rustix::fs::open(&fifo_path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .context(|| format!("opening {}", fifo_path.display()))?;

    let cgroup = Cgroup::create(&hierarchies, &plan.cgroup_path)?;
    undo.cgroup = Some(cgroup.clone());
    for skipped in cgroup.apply(&plan.resources)? {
        eprintln!("keel-runtime: warning: {skipped}");
    }
    let console = options
        .console_socket
        .as_deref()
        .map(crate::console::connect)
        .transpose()?;

    plan.namespaces.unshare_time()?;
    if let Some(offsets) = &plan.time_offsets {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .context(|| "setting time namespace offsets".into())?;
    }
    plan.namespaces.join_for_children()?;
    let join_user = || plan.namespaces.join_user();
    let (pid, ours) = sync::fork_child(
        plan.namespaces.clone_flags(),
        "the container's init",
        plan.namespaces
            .joins_user()
            .then_some(&join_user as &dyn Fn() -> Result<()>),
        |channel| init::run(&plan, channel, &fifo, console.as_ref(), &cgroup),
    )?;
    undo.pid = Some(pid);
    drop(console);

    cgroup.add_process(pid)?;
    if let Some((uid_map, gid_map)) = &plan.id_maps {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)
            .context(|| format!("writing uid_map {uid_map:?}"))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)
            .context(|| format!("writing gid_map {gid_map:?}"))?;
    }
    if let Some(adj) = plan.process.oom_score_adj {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string()).context(|| {
            format!("setting oom_score_adj {adj} (lowering it needs CAP_SYS_RESOURCE)")
        })?;
    }
    ours.send(&Message::Go(pid))?;
    if plan.has_runtime_hooks() {
        ours.expect(&Message::RunHooks)?;
        let state = plan.state_json(Status::Creating, pid);
        crate::hooks::run("prestart", plan.hooks(|h| h.prestart()), &state)?;
        crate::hooks::run("createRuntime", plan.hooks(|h| h.create_runtime()), &state)?;
        ours.send(&Message::Go(pid))?;
    }
    ours.expect(&Message::Created)?;

    let start_time = state::process_start(pid)
        .map(|(_, start)| start)
        .ok_or_else(|| Error::Container("the container's init exited right after setup".into()))?;
    let record = Record {
        id: id.to_owned(),
        pid,
        start_time,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs_path.clone(),
        created: keel_time::now_rfc3339(),
        cgroup,
        config: plan.spec,
    };
    record.save(&dir)?;
    if let Some(pid_file) = &options.pid_file {
        state::write_pid_file(pid_file, pid)?;
    }
    drop(fifo);
    undo.armed = false;
    Ok(Created { pid, dir, record })
}

/// The device rules to apply: the config's, then (as runc appends them)
/// mknod of any device, the devices every container gets, and the
/// config's `linux.devices`.
fn resources_with_default_devices(linux: &Linux) -> Result<LinuxResources> {
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true)
            .set_typ(Some(typ))
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_owned()));
        r
    };
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(LinuxDeviceType::C, Some(136), None, "rwm"));
    // The device cgroup knows block and character devices only: a FIFO
    // needs no rule, an unbuffered device is a character one.
    for device in linux.devices().iter().flatten() {
        let typ = match device.typ() {
            LinuxDeviceType::U | LinuxDeviceType::C => LinuxDeviceType::C,
            LinuxDeviceType::B => LinuxDeviceType::B,
            LinuxDeviceType::P | LinuxDeviceType::A => continue,
        };
        rules.push(rule(typ, Some(device.major()), Some(device.minor()), "rwm"));
    }
    resources.set_devices(Some(rules));
    Ok(resources)
}

fn load_config(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::ReadConfig {
        path: path.clone(),
        source,
    })?;
    // The field at fault is named, not only its line and column.
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&text)).map_err(
        |e| Error::MalformedConfig {
            path,
            message: match e.path().to_string().as_str() {
                "." => e.inner().to_string(),
                field => format!("{field}: {}", e.inner()),
            },
        },
    )
}

fn all_hooks(hooks: &oci_spec::runtime::Hooks) -> impl Iterator<Item = &Hook> {
    [
        hooks.prestart(),
        hooks.create_runtime(),
        hooks.create_container(),
        hooks.start_container(),
        hooks.poststart(),
        hooks.poststop(),
    ]
    .into_iter()
    .flatten()
    .flatten()
}

/// The id maps as uid_map/gid_map text, checked: present exactly when a new
/// user namespace is, with non-empty, non-overlapping ranges.
fn id_maps(
    uids: &Option<Vec<LinuxIdMapping>>,
    gids: &Option<Vec<LinuxIdMapping>>,
    new_user_ns: bool,
) -> Result<Option<(String, String)>> {
    let given = uids.as_ref().is_some_and(|m| !m.is_empty())
        || gids.as_ref().is_some_and(|m| !m.is_empty());
    if !new_user_ns {
        if given {
            return Err(Error::invalid(
                "linux.uidMappings",
                "given without a new user namespace",
                "add {\"type\": \"user\"} to linux.namespaces or drop the mappings",
            ));
        }
        return Ok(None);
    }
    let text = |field: &str, maps: &Option<Vec<LinuxIdMapping>>| -> Result<String> {
        let maps = maps.as_deref().unwrap_or_default();
        if maps.is_empty() {
            return Err(Error::invalid(
                field,
                "empty",
                "a new user namespace needs at least one mapping",
            ));
        }
        for (i, m) in maps.iter().enumerate() {
            if m.size() == 0 {
                return Err(Error::invalid(
                    field,
                    format!("a mapping of size 0 at containerID {}", m.container_id()),
                    "sizes must be at least 1",
                ));
            }
            let described = format!(
                "containerID {} hostID {} size {}",
                m.container_id(),
                m.host_id(),
                m.size()
            );
            let end = |start: u32| u64::from(start) + u64::from(m.size());
            if end(m.container_id()) > 1 << 32 || end(m.host_id()) > 1 << 32 {
                return Err(Error::invalid(
                    field,
                    described,
                    "ranges must stay below 2^32",
                ));
            }
            for other in &maps[..i] {
                let overlaps = |a: u32, b: u32| {
                    u64::from(a) < u64::from(b) + u64::from(other.size()) && u64::from(b) < end(a)
                };
                if overlaps(m.container_id(), other.container_id())
                    || overlaps(m.host_id(), other.host_id())
                {
                    return Err(Error::invalid(
                        field,
                        described,
                        format!(
                            "overlaps the mapping at containerID {}",
                            other.container_id()
                        ),
                    ));
                }
            }
        }
        Ok(maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect())
    };
    Ok(Some((
        text("linux.uidMappings", uids)?,
        text("linux.gidMappings", gids)?,
    )))
}

fn checked_name(
    field: &str,
    value: &Option<String>,
    namespaces: &Namespaces,
) -> Result<Option<String>> {
    let Some(name) = value.as_ref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if !namespaces.has(LinuxNamespaceType::Uts) {
        return Err(Error::invalid(
            field,
            name,
            "setting it needs a UTS namespace; add {\"type\": \"uts\"}",
        ));
    }
    if name.len() > 64 || CString::new(name.as_bytes()).is_err() {
        return Err(Error::invalid(
            field,
            name,
            "must be at most 64 bytes without NUL",
        ));
    }
    Ok(Some(name.clone()))
}

/// Only sysctls that the container's own namespaces scope may be set.
fn check_sysctl(key: &str, namespaces: &Namespaces) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(Error::invalid(
            "linux.sysctl",
            key,
            "only namespaced sysctls (net.*, fs.mqueue.*, IPC and UTS ones) may be set",
        ));
    };
    if key.contains("..") || key.contains('/') {
        return Err(Error::invalid(
            "linux.sysctl",
            key,
            "must be a dotted sysctl name",
        ));
    }
    if !namespaces.has(needs) {
        return Err(Error::invalid(
            "linux.sysctl",
            key,
            format!("needs the container's own {needs} namespace"),
        ));
    }
    Ok(())
}

/// Resolves `linux.cgroupsPath`; an empty one puts the container at /<id>,
/// and with --systemd-cgroup the slice:prefix:name form is expanded.
fn cgroup_path(runtime: &Runtime, id: &str, configured: Option<&Path>) -> Result<CgroupPath> {
    let configured = configured
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    let path = match configured {
        Some(p) if runtime.systemd_cgroup => keel_cgroups::systemd_to_cgroupfs(&p)?,
        Some(p) => p,
        None if runtime.systemd_cgroup => format!("/system.slice/keel-{id}.scope"),
        None => format!("/{id}"),
    };
    Ok(CgroupPath::parse(&path)?)
}
