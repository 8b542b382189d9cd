//! Keel's engine: containers made from images, each with its own
//! read/write layer, started through a monitor process that owns its output
//! and records its exit; waited on, stopped and removed as Docker does.
//! The daemon's API is a thin translation of HTTP into these calls.

mod archive;
mod build;
mod changes;
mod commit;
mod container;
mod container_fs;
mod distribution;
mod error;
mod events;
mod exec;
mod executor;
mod health;
mod images;
pub mod log;
mod logs;
pub mod mounts;
mod names;
mod network;
mod pause;
mod record;
mod resources;
mod restart;
mod security;
mod signal;
mod spec;
mod stats;
mod update;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use keel_monitor_protocol::files::{EXIT, Exit, LOG, open_log, socket_name};
use keel_monitor_protocol::message::{
    self, Failure, FailureKind, FromMonitor, Launch, LogLimits, ToMonitor,
};
use keel_monitor_protocol::stream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use archive::{ExtractOptions, PathStat};
pub use build::BuildRequest;
pub use commit::CommitOptions;
pub use container::{Config, Container, State, Status};
pub use distribution::{Progress, Report};
pub use error::{Error, Result};
pub use events::{Event, Events};
pub use exec::{Exec, ExecConfig};
pub use executor::JobLimits;
pub use health::{Health, HealthStatus, Healthcheck, ProbeResult};
pub use logs::{LogEntry, LogQuery, LogStream};
pub use network::{
    BRIDGE, Endpoint, Mode, Network, NetworkConfig, NetworkOptions, NetworkRequest, Published,
    fixed_network_id,
};
pub use resources::{Resources, Ulimit};
pub use restart::RestartPolicy;
pub use security::Security;
pub use signal::Signal;
pub use stats::{Interface, Sample, Stats};
pub use update::Update;
pub use volumes::Volume;

use crate::container::{generated_name, is_valid_name};
use crate::error::Context;

const RECORD: &str = "container.json";
/// The stack of the threads that do an exit's bookkeeping (a runtime
/// delete, a removal) or a start; 64 KiB overflowed in debug builds.
const WORKER_STACK: usize = 1024 * 1024;

/// What `wait` waits for, as the Engine API's `condition` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Default)]
struct Table {
    containers: BTreeMap<String, Container>,
    /// The containers' names, and those creates have reserved.
    names: names::Names,
    /// Each container's own lock, which orders the writes of its record
    /// (see `change_record`) without holding the table while they go to
    /// the disk.
    writers: BTreeMap<String, Arc<Mutex<()>>>,
    /// Creates between their reservation and their record: no volume is
    /// removed meanwhile, since the mounts they made are nobody's yet.
    creating: usize,
    /// Exit codes of containers removed since the daemon started, for
    /// `wait --condition removed` callers that arrive late.
    removed: BTreeMap<String, i32>,
    /// Build steps' endpoints on the default bridge, by step: their
    /// addresses are nobody else's while they run.
    job_endpoints: BTreeMap<String, network::Endpoint>,
    /// Exit codes of containers out of the table whose read/write layer
    /// and directory are still being removed: `wait --condition removed`
    /// (`run --rm`) answers once they are gone, so an `rmi` right after
    /// never finds the image still in use.
    removing: BTreeMap<String, i32>,
    /// Clients waiting for a container's start to attach to it.
    attaching: BTreeMap<String, Vec<std::sync::mpsc::Sender<UnixStream>>>,
    /// Exec instances, by id, until their container is removed.
    execs: BTreeMap<String, Exec>,
    /// Containers whose monitor said the exit and still removes the
    /// runtime's state and cgroup: a new start waits for it.
    ending: BTreeSet<String>,
    /// Containers their restart policy is starting again: a stop waits
    /// for that start, so that it stops what it brought back.
    restarting: BTreeSet<String>,
}

/// A client's way to a container's stdio.
#[derive(Debug)]
pub enum Attachment {
    Now(UnixStream),
    /// Connected when the container starts; closed if it fails to or is
    /// removed first.
    AtStart(std::sync::mpsc::Receiver<UnixStream>),
}

impl Attachment {
    /// The connection, once there is one (blocks until the start).
    pub fn connection(self) -> Option<UnixStream> {
        match self {
            Attachment::Now(stream) => Some(stream),
            Attachment::AtStart(receiver) => receiver.recv().ok(),
        }
    }
}

/// How a monitor is asked to run its process (the rest of its launch
/// is where the engine keeps the container).
#[derive(Debug, Default)]
struct MonitorFlags {
    exec: Option<String>,
    /// The container's log limits (none for an exec, which has no log).
    log: Option<LogLimits>,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
}

/// A monitor whose process runs.
#[derive(Debug)]
struct Launched {
    child: Child,
    /// Where it says the rest: the process's exit.
    from_monitor: ChildStdout,
    pid: i32,
}

impl Launched {
    /// Waits for the process's end: its exit code (255 when the monitor
    /// ended without saying one: it was killed).
    fn exit_code(&mut self) -> i32 {
        match message::receive(&mut self.from_monitor) {
            Ok(Some(FromMonitor::Exited { code })) => code,
            _ => 255,
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    images: keel_image::Store,
    volumes: volumes::Volumes,
    networks: network::Networks,
    runtime_root: PathBuf,
    containers_dir: PathBuf,
    /// Build contexts sent as archives, unpacked while they are built.
    builds_dir: PathBuf,
    /// Hashes of the files builds read, for the next build.
    file_sums: keel_build::FileSums,
    /// Where jobs of the executor keep their runtime config and monitor
    /// socket while they run (see [`Engine::execute`]).
    jobs_dir: PathBuf,
    /// The keel-monitor binary, as its path (what its processes are
    /// called) and a sealed copy of it made once, which monitors run from:
    /// their containers' processes cannot reach the file on disk.
    monitor: PathBuf,
    sealed_monitor: std::os::fd::OwnedFd,
    table: Mutex<Table>,
    changed: Condvar,
    /// Registries reached without TLS verification, besides loopback ones.
    insecure_registries: Vec<String>,
    init_path: Option<PathBuf>,
    blob_sources: distribution::BlobSources,
    events: Events,
    /// The engine itself, for the threads it starts (the DNS server's).
    me: std::sync::Weak<Engine>,
}

/// How the daemon was configured.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub network: NetworkOptions,
    /// `--insecure-registry`: registries (host or host:port) reached over
    /// plain HTTP or unverified TLS, as Docker's `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// `--init-path`: the init `--init` runs (else `docker-init` or
    /// `tini-static` from $PATH, as Docker finds its docker-init).
    pub init_path: Option<PathBuf>,
    /// `--disk-reserve`: what unpacking layers leaves free on the disk.
    pub disk_reserve: keel_image::DiskReserve,
}

impl Engine {
    /// Opens the engine's state under `root`. `monitor` is the keel-monitor
    /// binary (which runs `monitor::run`).
    pub fn open(root: &Path, monitor: &Path, options: Options) -> Result<Arc<Self>> {
        // As /var/lib/docker: nobody but root (and its group, passing
        // through) reaches inside, where unpacked layers keep their setuid
        // files and device nodes.
        fs::create_dir_all(root).context(|| format!("cannot create {}", root.display()))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o710))
            .context(|| format!("cannot restrict {} to root", root.display()))?;
        let sealed_monitor = keel_runtime::sealed::copy(monitor)?;
        let containers_dir = root.join("containers");
        let runtime_root = root.join("runtime");
        let jobs_dir = root.join("jobs");
        let builds_dir = root.join("builds");
        // A job's or a context's directory outlives it only through a
        // crash of the daemon, whose builds are gone with it.
        for dir in [&jobs_dir, &builds_dir] {
            fs::remove_dir_all(dir).ok();
        }
        for dir in [&containers_dir, &runtime_root, &jobs_dir, &builds_dir] {
            fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        let images =
            keel_image::Store::open(&root.join("image"))?.with_disk_reserve(options.disk_reserve);
        // The step snapshots of builds a crash of the daemon ended.
        for id in images.snapshot_ids()? {
            if id.starts_with(keel_build::STEP_SNAPSHOT_PREFIX) {
                images.remove_snapshot(&id)?;
            }
        }
        images.remove_scratch_dirs()?;
        let volumes = volumes::Volumes::open(root.join("volumes"))?;
        let blob_sources = distribution::BlobSources::open(root.join("distribution"))?;
        let networks =
            network::Networks::open(options.network, root.join("networks"), root.join("netns"))?;
        networks.remove_job_namespaces();
        let engine = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            images,
            volumes,
            networks,
            insecure_registries: options.insecure_registries,
            init_path: options.init_path,
            blob_sources,
            events: Events::default(),
            runtime_root,
            containers_dir,
            jobs_dir,
            builds_dir,
            file_sums: keel_build::FileSums::default(),
            monitor: monitor.to_owned(),
            sealed_monitor,
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
        });
        engine.watch_forward_policy();
        let still_running = engine.load_containers()?;
        engine.reconcile_networks();
        // As Docker at its start: --rm containers that no longer run (the
        // machine or the daemon stopped under them) are removed.
        for container in engine.containers() {
            if container.config.auto_remove && container.state.status != Status::Running {
                engine.remove(&container.id, true, true).ok();
            }
        }
        for id in still_running {
            engine.watch_health(&id);
            let watcher = Arc::clone(&engine);
            std::thread::Builder::new()
                .name(format!("watch-{}", &id[..12]))
                .stack_size(WORKER_STACK)
                .spawn(move || watcher.watch_restored(&id))
                .context(|| "cannot watch a container".to_owned())?;
        }
        // As Docker at its start: `always` containers come back even if
        // stopped by hand, `unless-stopped` ones unless they were.
        let comeback: Vec<String> = engine
            .containers()
            .into_iter()
            .filter(|c| {
                c.state.status != Status::Running
                    && match c.config.restart.name.as_str() {
                        "always" => true,
                        "unless-stopped" => !c.state.manually_stopped,
                        _ => false,
                    }
            })
            .map(|c| c.id)
            .collect();
        if !comeback.is_empty() {
            let starter = Arc::clone(&engine);
            std::thread::Builder::new()
                .name("restart-policies".to_owned())
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    for id in comeback {
                        let _ = starter.start(&id);
                    }
                })
                .context(|| "cannot start the restart policies".to_owned())?;
        }
        Ok(engine)
    }

    pub fn images(&self) -> &keel_image::Store {
        &self.images
    }

    /// Registries reached without TLS verification, as configured
    /// (loopback ones are always).
    pub fn insecure_registries(&self) -> &[String] {
        &self.insecure_registries
    }

    /// The keel-monitor binary, which runs Keel's OCI runtime for each
    /// container, and the init `--init-path` names (if it does).
    pub fn runtime_binaries(&self) -> (&Path, Option<&Path>) {
        (&self.monitor, self.init_path.as_deref())
    }

    /// The init `--init` runs as the container's pid 1: the configured
    /// one, else Docker's `docker-init` (tini) or `tini-static` from $PATH.
    fn init_binary(&self) -> Result<PathBuf> {
        if let Some(path) = &self.init_path {
            return Ok(path.clone());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        ["docker-init", "tini-static"]
            .iter()
            .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                Error::Start(Failure {
                    kind: FailureKind::ProgramNotFound,
                    message: "exec: \"docker-init\": executable file not found in $PATH (--init runs tini: install it, or give keel daemon --init-path)".to_owned(),
                })
            })
    }

    /// What happened, for `events`.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Publishes a container's event with the attributes Docker gives
    /// them (its labels, image and name) and `extra`.
    fn container_event(&self, container: &Container, action: &str, extra: &[(&str, String)]) {
        let mut event = Event::new("container", action, &container.id);
        event.attributes = container.config.labels.clone();
        event = event
            .with("image", &container.config.image)
            .with("name", &container.name);
        for (key, value) in extra {
            event = event.with(key, value);
        }
        self.events.publish(event);
    }

    /// Publishes an image's event as Docker does: `id` is the image's id or
    /// the reference acted on, `name` the name it goes by; the image's
    /// labels are attributes too.
    pub fn image_event(&self, id: &str, name: &str, action: &str) {
        let mut event = Event::new("image", action, id);
        if let Ok(image) = self
            .images
            .resolve(id)
            .and_then(|id| self.images.image(&id))
        {
            event.attributes = image.labels();
        }
        self.events.publish(event.with("name", name));
    }

    /// Publishes a volume's event (all of Keel's volumes are `local`).
    fn volume_event(&self, name: &str, action: &str) {
        self.events
            .publish(Event::new("volume", action, name).with("driver", "local"));
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the containers' records. A container recorded as running
    /// whose monitor still runs is running still (the daemon restarted
    /// under it): its id is returned, to be watched again. One whose
    /// monitor is gone gets the exit its monitor recorded.
    fn load_containers(&self) -> Result<Vec<String>> {
        let mut still_running = Vec::new();
        let entries = fs::read_dir(&self.containers_dir)
            .context(|| format!("cannot list {}", self.containers_dir.display()))?;
        let mut table = self.lock();
        for entry in entries.flatten() {
            keel_durable::remove_leftovers(&entry.path())
                .context(|| format!("cannot clean {}", entry.path().display()))?;
            let bytes = fs::read(entry.path().join(RECORD)).unwrap_or_default();
            if bytes.is_empty() {
                // Made but never recorded (a crash during create), or a
                // record not synced (a --rm container's) before a crash of
                // the machine.
                self.images
                    .remove_snapshot(&entry.file_name().to_string_lossy())
                    .ok();
                fs::remove_dir_all(entry.path()).ok();
                continue;
            }
            let Some(mut container) =
                record::decode_found::<Container>(&entry.path().join(RECORD), &bytes)?
            else {
                continue;
            };
            if container.state.status == Status::Running
                && is_monitor_of(container.state.monitor_pid, &entry.path())
            {
                still_running.push(container.id.clone());
            } else if container.state.status == Status::Running {
                let exit = read_exit(&entry.path());
                if exit.is_none() {
                    self.kill_orphan(&container.id);
                }
                record_exit(&mut container.state, exit);
                write_record(&entry.path(), &container, true)?;
            }
            // Two records of one name (never written so) must not keep the
            // daemon from starting: the first keeps it.
            let _ = table.names.reserve(&container.name, &container.id);
            table.writers.insert(container.id.clone(), Arc::default());
            table.containers.insert(container.id.clone(), container);
        }
        Ok(still_running)
    }

    /// Waits, after a restart, for the monitor of a running container to
    /// end (it is not our child: a pidfd says when), then records the exit.
    fn watch_restored(self: &Arc<Self>, id: &str) {
        let pid = self
            .lock()
            .containers
            .get(id)
            .map_or(0, |c| c.state.monitor_pid);
        if let Some(pid) = rustix::process::Pid::from_raw(pid)
            && let Ok(pidfd) =
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        {
            let mut fds = [rustix::event::PollFd::new(
                &pidfd,
                rustix::event::PollFlags::IN,
            )];
            while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut fds, None) {}
        }
        self.exited(id);
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir.join(id)
    }

    /// Finds a container by name (with or without '/'), full id, or
    /// unique id prefix.
    fn find(table: &Table, name: &str) -> Result<String> {
        let name = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = table
            .containers
            .values()
            .find(|c| c.name == name || c.id == name)
        {
            return Ok(c.id.clone());
        }
        let matches: Vec<&String> = table
            .containers
            .keys()
            .filter(|id| !name.is_empty() && id.starts_with(name))
            .collect();
        match matches.as_slice() {
            [id] => Ok((*id).clone()),
            [] => Err(Error::NoSuchContainer(name.to_owned())),
            // Docker's words (and 400) for a prefix of several ids.
            _ => Err(Error::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {name}"
            ))),
        }
    }

    pub fn container(&self, name: &str) -> Result<Container> {
        let table = self.lock();
        let id = Self::find(&table, name)?;
        Ok(table.containers[&id].clone())
    }

    /// Every container, newest first.
    pub fn containers(&self) -> Vec<Container> {
        let mut list: Vec<Container> = self.lock().containers.values().cloned().collect();
        list.sort_by(|a, b| b.created.cmp(&a.created));
        list
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(LOG)
    }

    /// Makes a container from an image: its read/write layer and its
    /// record. Nothing is left if any step fails.
    pub fn create(&self, name: Option<&str>, config: Config) -> Result<Container> {
        security::Confinement::of(&config.security)?;
        config.restart.check(config.auto_remove)?;
        config.resources.check()?;
        config.log.limits()?;
        let image_id = self.images.resolve(&config.image)?;
        let image = self.images.image(&image_id)?;
        let image_check =
            serde_json::from_slice::<serde_json::Value>(&self.images.raw_config(&image_id)?)
                .ok()
                .and_then(|raw| serde_json::from_value(raw["config"]["Healthcheck"].clone()).ok());
        let image_config = image.config.config().clone().unwrap_or_default();
        let entrypoint = match &config.entrypoint {
            Some(entrypoint) => entrypoint.clone(),
            None => image_config.entrypoint().clone().unwrap_or_default(),
        };
        // A new entrypoint drops the image's command, as in Docker.
        let cmd = match (&config.cmd, &config.entrypoint) {
            (Some(cmd), _) => cmd.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => image_config.cmd().clone().unwrap_or_default(),
        };
        let mut argv = entrypoint.into_iter().chain(cmd);
        let path = argv.next().ok_or(Error::NoCommand)?;
        let args: Vec<String> = argv.collect();
        let mut config = config;
        config.healthcheck = Healthcheck::merged(config.healthcheck.take(), image_check);
        if let Some(check) = &config.healthcheck {
            check.check()?;
        }
        if config.working_dir.is_none() {
            config.working_dir = image_config.working_dir().clone();
        }
        if config.user.is_none() {
            config.user = image_config.user().clone();
        }
        // Published ports are exposed, as are the image's.
        let published: Vec<_> = config.network.ports.keys().copied().collect();
        config.network.exposed.extend(published);
        for port in image_config.exposed_ports().iter().flatten() {
            config.network.exposed.insert(port.parse()?);
        }
        // The image's VOLUMEs get anonymous volumes, unless mounted over.
        for target in image_config.volumes().iter().flatten() {
            if !config.mounts.iter().any(|m| m.target == *target) {
                config.mounts.push(mounts::anonymous_volume(target));
            }
        }
        // The name is reserved, the table let go: the disk work below
        // holds up no one else.
        let (id, name) = {
            let mut table = self.lock();
            self.check_network(&table, &config.network)?;
            let id = random_id()?;
            let name = match name.filter(|n| !n.is_empty()) {
                Some(name) => {
                    let name = name.strip_prefix('/').unwrap_or(name);
                    if !is_valid_name(name) {
                        return Err(Error::InvalidName(name.to_owned()));
                    }
                    name.to_owned()
                }
                None => {
                    let random = u64::from_str_radix(&id[..16], 16).unwrap_or(0);
                    (0..)
                        .map(|retry| generated_name(random, retry))
                        .find(|candidate| table.names.is_free(candidate))
                        .expect("some name is free")
                }
            };
            table.names.reserve(&name, &id)?;
            table.creating += 1;
            (id, name)
        };
        let mut container = Container {
            id: id.clone(),
            name,
            created: keel_time::now_rfc3339(),
            image_id: image_id.to_string(),
            path,
            args,
            config,
            state: State::created(),
        };
        let dir = self.dir(&id);
        let mut new_volumes = Vec::new();
        // A --rm container would not outlive a crash of the machine (a
        // daemon that starts removes those that do not run, as Docker's):
        // its records are not synced, which is most of a create's time.
        let durable = !container.config.auto_remove;
        let made = (|| {
            fs::create_dir(&dir).context(|| format!("cannot create {}", dir.display()))?;
            // Made now, so that whoever attaches can open it before the
            // container runs, and keep reading after it is removed.
            open_log(&dir).context(|| "cannot create the container log".to_owned())?;
            let snapshot = || self.images.create_snapshot(&id, image_id.as_str(), durable);
            let mut record = || {
                self.provide_mounts(&mut container.config.mounts, &mut new_volumes)?;
                write_record(&dir, &container, durable)
            };
            if !durable {
                snapshot()?;
                return record();
            }
            // Synced side by side: one journal commit can serve both.
            std::thread::scope(|scope| {
                let snapshot = scope.spawn(snapshot);
                let recorded = record();
                snapshot
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                recorded
            })
        })();
        if let Err(error) = made {
            self.images.remove_snapshot(&id).ok();
            fs::remove_dir_all(&dir).ok();
            for volume in new_volumes {
                self.volumes.remove(&volume).ok();
            }
            let mut table = self.lock();
            table.names.release(&container.name, &id);
            table.creating -= 1;
            drop(table);
            self.changed.notify_all();
            return Err(error);
        }
        let mut table = self.lock();
        table.creating -= 1;
        table.writers.insert(id.clone(), Arc::default());
        table.containers.insert(id, container.clone());
        drop(table);
        self.changed.notify_all();
        for volume in new_volumes {
            self.volume_event(&volume, "create");
        }
        self.container_event(&container, "create", &[]);
        Ok(container)
    }

    /// Starts a created or exited container through a new monitor, and
    /// returns once its process runs (or failed to).
    pub fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        self.start_as(name, true)
    }

    /// A start by a user clears the restart count and a manual stop; one
    /// by the restart policy keeps them.
    fn start_as(self: &Arc<Self>, name: &str, by_user: bool) -> Result<()> {
        let (id, container) = {
            let mut table = self.lock();
            let id = Self::find(&table, name)?;
            while table.ending.contains(&id) {
                table = self.changed.wait(table).unwrap_or_else(|p| p.into_inner());
            }
            let container = table.containers.get(&id).cloned();
            (
                id,
                container.ok_or_else(|| Error::NoSuchContainer(name.to_owned()))?,
            )
        };
        if container.state.status == Status::Running {
            return Ok(());
        }
        let dir = self.dir(&id);
        let snapshot = self.images.snapshot(&id)?;
        let rootfs = self.images.mount_snapshot(&snapshot)?;
        let image_env = self
            .images
            .image(&container.image_id.parse()?)
            .ok()
            .and_then(|image| image.config.config().clone()?.env().clone())
            .unwrap_or_default();
        let prepared = self.fill_new_volumes(&container, &rootfs).and_then(|()| {
            let init = match container.config.init {
                true => Some(self.init_binary()?),
                false => None,
            };
            let wiring = self.join_network(&id)?;
            spec::build(
                &container,
                &image_env,
                &rootfs,
                &self.volumes,
                &wiring,
                init.as_deref(),
            )
        });
        let spec = match prepared {
            Ok(spec) => spec,
            Err(error) => {
                self.leave_network(&id);
                snapshot.unmount().ok();
                return Err(error);
            }
        };
        // Made again at each start: no sync.
        record::replace(
            &dir.join("config.json"),
            &serde_json::to_vec(&spec).expect("a spec serializes"),
        )?;
        fs::remove_file(dir.join(EXIT)).ok();
        let flags = MonitorFlags {
            exec: None,
            log: Some(container.config.log.limits()?),
            tty: container.config.tty,
            stdin: container.config.open_stdin,
            stdin_once: container.config.stdin_once,
        };
        // Clients waiting to attach are connected before the process
        // runs, so they see all of its output.
        let launched = self.launch_monitor(&id, &flags, || self.connect_waiting(&id));
        let mut launched = match launched {
            Ok(launched) => launched,
            Err(Error::Start(failure)) => {
                // 128 otherwise, as Docker's exitUnknown.
                let code = failure.kind.exit_code().unwrap_or(128);
                self.update_state(&id, |c| {
                    c.state.error = failure.message.clone();
                    c.state.exit_code = code;
                })?;
                self.lock().attaching.remove(&id);
                self.leave_network(&id);
                snapshot.unmount().ok();
                if container.config.auto_remove {
                    self.remove(&id, true, true).ok();
                }
                return Err(Error::Start(failure));
            }
            Err(other) => {
                self.leave_network(&id);
                snapshot.unmount().ok();
                return Err(other);
            }
        };
        let monitor_pid = launched.child.id() as i32;
        let started = self.update_state(&id, |c| {
            if by_user {
                c.state.restart_count = 0;
                c.state.manually_stopped = false;
            }
            c.state.status = Status::Running;
            c.state.pid = launched.pid;
            c.state.monitor_pid = monitor_pid;
            c.state.error.clear();
            c.state.started_at = keel_time::now_rfc3339();
            if c.config
                .healthcheck
                .as_ref()
                .and_then(Healthcheck::command)
                .is_some()
            {
                Health::restart(&mut c.state.health);
            }
        })?;
        self.container_event(&started, "start", &[]);
        self.watch_health(&id);
        // Any that came while it started.
        self.connect_waiting(&id);
        let engine = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("watch-{}", &id[..12]))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                // The monitor says the exit, then removes the runtime's
                // state and cgroup: the exit is taken at once.
                launched.exit_code();
                engine.lock().ending.insert(id.clone());
                engine.exited(&id);
                let _ = launched.child.wait();
                engine.lock().ending.remove(&id);
                engine.changed.notify_all();
            })
            .context(|| "cannot watch the container".to_owned())?;
        Ok(())
    }

    /// Starts a monitor for container `id` (or one of its execs) and takes
    /// it through its start: `before_start` runs once its socket listens.
    /// A process that could not be started is an `Error::Start`.
    fn launch_monitor(
        &self,
        id: &str,
        flags: &MonitorFlags,
        before_start: impl FnOnce(),
    ) -> Result<Launched> {
        self.launch_monitor_in(&self.dir(id), id, flags, before_start)
    }

    /// [`Engine::launch_monitor`] for a process kept in `dir`: a
    /// container's directory, or a job's (see [`Engine::execute`]).
    fn launch_monitor_in(
        &self,
        dir: &Path,
        id: &str,
        flags: &MonitorFlags,
        before_start: impl FnOnce(),
    ) -> Result<Launched> {
        let dir = dir.to_owned();
        let log_name = match &flags.exec {
            None => "monitor.log".to_owned(),
            Some(exec) => format!("exec-{exec}.log"),
        };
        let monitor_log =
            fs::File::create(dir.join(&log_name)).context(|| "the monitor log".to_owned())?;
        let mut child = Command::new(format!("/proc/self/fd/{}", self.sealed_monitor.as_raw_fd()))
            .arg0(&self.monitor)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(monitor_log)
            .spawn()
            .context(|| "cannot start a monitor".to_owned())?;
        let mut to_monitor = child.stdin.take().expect("a piped stdin");
        let mut from_monitor = child.stdout.take().expect("a piped stdout");
        let launch = Launch {
            version: message::VERSION,
            runtime_root: self.runtime_root.clone(),
            id: id.to_owned(),
            dir: dir.clone(),
            exec: flags.exec.clone(),
            tty: flags.tty,
            stdin: flags.stdin,
            stdin_once: flags.stdin_once,
            log: flags.log,
        };
        let said = |from_monitor: &mut ChildStdout| {
            message::receive(from_monitor).context(|| "the monitor's answer".to_owned())
        };
        let _ = message::send(&mut to_monitor, &ToMonitor::Launch(launch));
        let mut answer = said(&mut from_monitor)?;
        if answer == Some(FromMonitor::Ready) {
            before_start();
            let _ = message::send(&mut to_monitor, &ToMonitor::Go);
            answer = said(&mut from_monitor)?;
        }
        if let Some(FromMonitor::Started { pid }) = answer {
            return Ok(Launched {
                child,
                from_monitor,
                pid,
            });
        }
        let _ = child.wait();
        Err(match answer {
            Some(FromMonitor::Failed(failure)) => Error::Start(failure),
            _ => Error::Start(Failure {
                kind: FailureKind::Other,
                message: format!(
                    "the monitor ended without starting the process; see {}",
                    dir.join(log_name).display()
                ),
            }),
        })
    }

    /// Connects to a monitor's socket: the container's, or an exec's.
    fn connect(&self, id: &str, exec: Option<&str>) -> Result<UnixStream> {
        connect_in(&self.dir(id), id, exec)
    }

    /// Hands the clients waiting to attach to `id` their connections.
    fn connect_waiting(&self, id: &str) {
        let waiting = self.lock().attaching.remove(id).unwrap_or_default();
        for waiter in waiting {
            if let Ok(stream) = self.connect(id, None) {
                let _ = waiter.send(stream);
            }
        }
    }

    /// A connection to the container's stdio: at once if it runs, else
    /// once it is next started (as `docker run` and `start -a` attach
    /// before the start). Frames as in [`stream`].
    pub fn attach(&self, name: &str) -> Result<Attachment> {
        let mut table = self.lock();
        let id = Self::find(&table, name)?;
        let container = table.containers[&id].clone();
        if container.state.status == Status::Running {
            drop(table);
            let connection = self.connect(&id, None)?;
            self.container_event(&container, "attach", &[]);
            return Ok(Attachment::Now(connection));
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        table.attaching.entry(id).or_default().push(sender);
        drop(table);
        self.container_event(&container, "attach", &[]);
        Ok(Attachment::AtStart(receiver))
    }

    /// Sets the size of a running container's terminal.
    pub fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let container = self.container(name)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        send_resize(self.connect(&container.id, None)?, rows, cols)
    }

    /// Records a container's exit (from its monitor's record), wakes its
    /// waiters, and removes it if it was created with `--rm`, or starts it
    /// again after a while if its restart policy says so.
    fn exited(self: &Arc<Self>, id: &str) {
        let exit = read_exit(&self.dir(id));
        if exit.is_none() {
            self.kill_orphan(id);
        }
        // Unmounted and off the network before the exit is recorded:
        // whoever the record wakes (a restart's start) may set both up
        // again at once.
        self.leave_network(id);
        if let Ok(snapshot) = self.images.snapshot(id) {
            snapshot.unmount().ok();
        }
        // The event goes out with the change, before the exit is visible:
        // whoever the record wakes (a stop, a removal) publishes after it.
        let Ok(container) = self.update_state(id, |c| {
            record_exit(&mut c.state, exit);
            let ran_for = ran_for(&c.state);
            let attributes = [
                ("exitCode", c.state.exit_code.to_string()),
                ("execDuration", ran_for.to_string()),
            ];
            self.container_event(c, "die", &attributes);
        }) else {
            return;
        };
        let ran_for = ran_for(&container.state);
        if container.config.auto_remove {
            self.remove(id, true, true).ok();
            return;
        }
        let delay = container
            .config
            .restart
            .delay(&container.state, Duration::from_secs(ran_for));
        if let Some(delay) = delay {
            let engine = Arc::clone(self);
            let id = id.to_owned();
            let _ = std::thread::Builder::new()
                .name(format!("restart-{}", &id[..12]))
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    std::thread::sleep(delay);
                    engine.restart_by_policy(&id);
                });
        }
    }

    /// After a monitor died without recording the exit (killed, crashed),
    /// the process it watched may still run, with nobody to read its output
    /// or reap it: it is killed and its runtime state and cgroup removed,
    /// as containerd does for a dead shim.
    fn kill_orphan(&self, id: &str) {
        let _ = self.runtime().delete(id, true);
    }

    /// Starts a container its restart policy brings back, unless a user
    /// stopped, started or removed it meanwhile.
    fn restart_by_policy(self: &Arc<Self>, id: &str) {
        let still_down = {
            let mut table = self.lock();
            let down = table
                .containers
                .get(id)
                .is_some_and(|c| c.state.status == Status::Exited && !c.state.manually_stopped);
            if down {
                table.restarting.insert(id.to_owned());
            }
            down
        };
        if still_down
            && self
                .update_state(id, |c| c.state.restart_count += 1)
                .is_ok()
        {
            let _ = self.start_as(id, false);
        }
        if still_down {
            self.lock().restarting.remove(id);
            self.changed.notify_all();
        }
    }

    /// Changes a container's record, saves it durably and wakes waiters:
    /// for what must survive a crash of the machine (a name, a stop by a
    /// user, an address kept).
    fn update(&self, id: &str, change: impl FnOnce(&mut Container)) -> Result<Container> {
        self.change_record(id, true, change)
    }

    /// As [`Engine::update`], for the state of a run (running or exited,
    /// pid, exit code, health, paused, published ports), saved without a
    /// sync: after a crash of the machine nothing runs any more, whatever
    /// the record said, and the daemon records the exits it finds.
    fn update_state(&self, id: &str, change: impl FnOnce(&mut Container)) -> Result<Container> {
        self.change_record(id, false, change)
    }

    fn change_record(
        &self,
        id: &str,
        durable: bool,
        change: impl FnOnce(&mut Container),
    ) -> Result<Container> {
        // The container's own lock, held until the record is written: a
        // later change of it (or its removal) waits for the file, so no
        // write lands over a newer record or in a removed directory; the
        // table is held only for the change itself.
        let writer = self.writer(id)?;
        let _writing = writer.lock().unwrap_or_else(|p| p.into_inner());
        let copy = {
            let mut table = self.lock();
            let container = table
                .containers
                .get_mut(id)
                .ok_or_else(|| Error::NoSuchContainer(id.to_owned()))?;
            change(container);
            container.clone()
        };
        let written = write_record(&self.dir(id), &copy, durable);
        self.changed.notify_all();
        written.map(|()| copy)
    }

    /// The lock that orders the writes of container `id`'s record.
    fn writer(&self, id: &str) -> Result<Arc<Mutex<()>>> {
        self.lock()
            .writers
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchContainer(id.to_owned()))
    }

    /// The id a `wait` on `name` will watch: a container's, or one removed
    /// since the daemon started (whose exit is remembered).
    pub fn wait_target(&self, name: &str) -> Result<String> {
        let table = self.lock();
        Self::find(&table, name).or_else(|error| {
            match table.removed.contains_key(name) || table.removing.contains_key(name) {
                true => Ok(name.to_owned()),
                false => Err(error),
            }
        })
    }

    /// Waits for the condition and returns the container's exit code.
    pub fn wait(&self, name: &str, condition: WaitCondition) -> Result<i32> {
        let mut table = self.lock();
        let id = match Self::find(&table, name) {
            Ok(id) => id,
            // Being removed: its removal ends the wait.
            Err(_) if table.removing.contains_key(name) && condition == WaitCondition::Removed => {
                name.to_owned()
            }
            // Gone already (`--rm`): its exit is remembered by full id.
            Err(error) => {
                let code = table.removed.get(name).or(table.removing.get(name));
                return match code {
                    Some(code) if condition != WaitCondition::NextExit => Ok(*code),
                    _ => Err(error),
                };
            }
        };
        let exits = table.containers.get(&id).map_or(0, |c| c.state.exits);
        loop {
            match table.containers.get(&id) {
                None if condition == WaitCondition::Removed && table.removing.contains_key(&id) => {
                }
                None => {
                    let code = table
                        .removed
                        .get(&id)
                        .or(table.removing.get(&id))
                        .copied()
                        .unwrap_or(0);
                    return if condition == WaitCondition::Removed
                        || condition == WaitCondition::NotRunning
                    {
                        Ok(code)
                    } else {
                        Err(Error::NoSuchContainer(name.to_owned()))
                    };
                }
                Some(c) => {
                    let done = match condition {
                        WaitCondition::NotRunning => c.state.status != Status::Running,
                        WaitCondition::NextExit => c.state.exits > exits,
                        WaitCondition::Removed => false,
                    };
                    if done {
                        return Ok(c.state.exit_code);
                    }
                }
            }
            table = self
                .changed
                .wait(table)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Sends a signal to a running container's init.
    pub fn kill(&self, name: &str, signal: &str) -> Result<()> {
        let container = self.container(name)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        let number = keel_runtime::parse_signal(signal)?;
        self.signal(&container, number)
    }

    /// The stop signal (SIGTERM unless `--stop-signal`), then SIGKILL after
    /// `timeout` (else the container's `--stop-timeout`, else 10 s) if it
    /// still runs.
    pub fn stop(&self, name: &str, timeout: Option<Duration>) -> Result<()> {
        let id = self.container(name)?.id;
        // Before the signal, so the exit it causes restarts nothing.
        self.update(&id, |c| c.state.manually_stopped = true)?;
        // A start by the restart policy under way ends first: what it
        // brings back is what this stops.
        let container = {
            let table = self.lock();
            let table = self
                .changed
                .wait_while(table, |t| t.restarting.contains(&id))
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            table
                .containers
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::NoSuchContainer(name.to_owned()))?
        };
        if container.state.status != Status::Running {
            return Ok(());
        }
        let signal = container
            .config
            .stop_signal
            .as_ref()
            .map_or(libc::SIGTERM, Signal::number);
        let timeout = timeout
            .unwrap_or_else(|| Duration::from_secs(container.config.stop_timeout.unwrap_or(10)));
        let _ = self.signal(&container, signal);
        let table = self.lock();
        let (table, timed_out) = self
            .changed
            .wait_timeout_while(table, timeout, |t| {
                t.containers
                    .get(&container.id)
                    .is_some_and(|c| c.state.status == Status::Running)
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(table);
        if timed_out.timed_out() {
            let _ = self.signal(&container, libc::SIGKILL);
            self.wait(&container.id, WaitCondition::NotRunning)?;
        }
        self.container_event(&container, "stop", &[]);
        Ok(())
    }

    /// Stops a container (as `stop` does) and starts it again.
    pub fn restart(self: &Arc<Self>, name: &str, timeout: Option<Duration>) -> Result<()> {
        self.stop(name, timeout)?;
        self.start(name)?;
        self.container_event(&self.container(name)?, "restart", &[]);
        Ok(())
    }

    /// Gives a container another name, as `docker rename` does.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if name.is_empty() || new_name.is_empty() {
            return Err(Error::InvalidParameter(
                "Neither old nor new names may be empty".to_owned(),
            ));
        }
        if !is_valid_name(new_name) {
            return Err(Error::InvalidName(new_name.to_owned()));
        }
        let (id, old_name) = {
            let mut table = self.lock();
            let id = Self::find(&table, name)?;
            let old_name = table.containers[&id].name.clone();
            if old_name == new_name {
                return Err(Error::InvalidParameter(
                    "Renaming a container with the same name as its current name".to_owned(),
                ));
            }
            table.names.reserve(new_name, &id)?;
            (id, old_name)
        };
        let renamed = self.update(&id, |c| c.name = new_name.to_owned());
        let mut table = self.lock();
        match renamed.is_ok() {
            true => table.names.release(&old_name, &id),
            false => table.names.release(new_name, &id),
        }
        drop(table);
        let renamed = renamed?;
        self.container_event(&renamed, "rename", &[("oldName", format!("/{old_name}"))]);
        Ok(())
    }

    /// Removes a container and its read/write layer (and with `volumes`,
    /// the anonymous volumes no other container uses); a running one only
    /// with `force` (it is killed first).
    pub fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let container = self.container(name)?;
        if container.state.status == Status::Running {
            if !force {
                return Err(Error::RemoveRunning {
                    name: container.name,
                });
            }
            let _ = self.signal(&container, libc::SIGKILL);
            self.wait(&container.id, WaitCondition::NotRunning)?;
        }
        // After the record's last write (see change_record).
        let Ok(writer) = self.writer(&container.id) else {
            return Ok(());
        };
        let _writing = writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut table = self.lock();
        let Some(container) = table.containers.remove(&container.id) else {
            return Ok(());
        };
        table.writers.remove(&container.id);
        table.names.release(&container.name, &container.id);
        table
            .removing
            .insert(container.id.clone(), container.state.exit_code);
        table.attaching.remove(&container.id);
        table
            .execs
            .retain(|_, exec| exec.container_id != container.id);
        if volumes {
            self.remove_anonymous_volumes(&table, &container);
        }
        drop(table);
        let removed = self
            .images
            .remove_snapshot(&container.id)
            .or_else(|error| match error {
                keel_image::Error::NoSuchSnapshot(_) => Ok(()),
                other => Err(other),
            })
            .map_err(Error::from)
            .and_then(|()| {
                let dir = self.dir(&container.id);
                fs::remove_dir_all(&dir).context(|| format!("cannot remove {}", dir.display()))
            });
        let mut table = self.lock();
        if let Some(code) = table.removing.remove(&container.id) {
            table.removed.insert(container.id.clone(), code);
        }
        drop(table);
        self.changed.notify_all();
        self.container_event(&container, "destroy", &[]);
        removed
    }

    /// The pids of a running container's processes (`top`).
    pub fn top(&self, name: &str) -> Result<Vec<i32>> {
        let container = self.container(name)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        Ok(self.runtime().processes(&container.id)?)
    }

    /// Removes every container that does not run and that `selected`
    /// picks (`container prune`): their ids, and the bytes their layers held.
    pub fn prune(&self, selected: impl Fn(&Container) -> bool) -> (Vec<String>, u64) {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for container in self.containers() {
            if container.state.status == Status::Running || !selected(&container) {
                continue;
            }
            let size = self.size_rw(&container.id);
            if self.remove(&container.id, false, false).is_ok() {
                removed.push(container.id);
                reclaimed += size;
            }
        }
        (removed, reclaimed)
    }

    /// The bytes a container wrote in its own layer (Docker's SizeRw).
    pub fn size_rw(&self, id: &str) -> u64 {
        self.images
            .snapshot(id)
            .map_or(0, |snapshot| tree_size(&snapshot.upper()))
    }

    /// Whether the container with this id runs (for image removal).
    pub fn is_running(&self, id: &str) -> bool {
        self.lock()
            .containers
            .get(id)
            .is_some_and(|c| c.state.status == Status::Running)
    }
}

/// The bytes the regular files below `dir` hold, as Docker sizes a
/// container's layer and a volume.
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Asks a monitor to resize its terminal.
/// Why [`read_output`] stopped before the output's end.
#[derive(Debug)]
struct Stopped;

/// Reads a monitor connection's frames to the end of the output, handing
/// each stdout or stderr payload to `deliver`. Before each read
/// `next_wait` says how long it may wait for data, or that the reading
/// stops (a deadline passed); a failed read stops it too.
fn read_output(
    connection: &mut UnixStream,
    mut next_wait: impl FnMut() -> Option<Duration>,
    mut deliver: impl FnMut(u8, &[u8]),
) -> std::result::Result<(), Stopped> {
    use keel_monitor_protocol::stream::{Frames, STDERR, STDOUT};
    use std::io::Read;
    let mut frames = Frames::default();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let wait = next_wait().ok_or(Stopped)?;
        connection
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|_| Stopped)?;
        match connection.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                frames.push(&buffer[..n]);
                for (kind, payload) in frames.by_ref() {
                    if matches!(kind, STDOUT | STDERR) {
                        deliver(kind, &payload);
                    }
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err(Stopped),
        }
    }
}

/// Connects to the socket of the monitor kept in `dir`.
fn connect_in(dir: &Path, id: &str, exec: Option<&str>) -> Result<UnixStream> {
    // Through the directory's fd: the full path may be longer than a
    // socket address can hold.
    let dir = fs::File::open(dir).context(|| "the container's directory".to_owned())?;
    let path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), socket_name(exec));
    UnixStream::connect(path).map_err(|_| Error::NotRunning { id: id.to_owned() })
}

fn send_resize(mut connection: UnixStream, rows: u16, cols: u16) -> Result<()> {
    connection
        .write_all(&stream::resize(rows, cols))
        .context(|| "resizing the terminal".to_owned())
}

/// Writes a container's record in its directory, synced when `durable`.
fn write_record(dir: &Path, container: &Container, durable: bool) -> Result<()> {
    let path = dir.join(RECORD);
    let bytes = record::encode(container);
    match durable {
        true => record::write_atomically(&path, &bytes),
        false => record::replace(&path, &bytes),
    }
}

/// Whether `pid` is the monitor of the container in `dir` (and not a
/// process that reused its number): a keel-monitor working in that
/// directory, as every monitor does.
fn is_monitor_of(pid: i32, dir: &Path) -> bool {
    pid > 0
        && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .next()
                .is_some_and(|program| program.ends_with(b"keel-monitor"))
        })
        && fs::metadata(format!("/proc/{pid}/cwd"))
            .ok()
            .zip(fs::metadata(dir).ok())
            .is_some_and(|(cwd, dir)| (cwd.dev(), cwd.ino()) == (dir.dev(), dir.ino()))
}

/// Whole seconds a run lasted, from its start to its recorded end.
fn ran_for(state: &State) -> u64 {
    keel_time::unix_seconds(&state.finished_at)
        .zip(keel_time::unix_seconds(&state.started_at))
        .map_or(0, |(end, start)| (end - start).max(0) as u64)
}

/// The state after an exit, from the monitor's record of it (255 when
/// there is none: the monitor itself was killed).
fn record_exit(state: &mut State, exit: Option<Exit>) {
    state.status = Status::Exited;
    state.paused = false;
    state.pid = 0;
    state.exit_code = exit.as_ref().map_or(255, |e| e.code);
    state.finished_at = exit.map(|e| e.finished_at).unwrap_or_default();
    state.exits += 1;
}

fn read_exit(dir: &Path) -> Option<Exit> {
    serde_json::from_slice(&fs::read(dir.join(EXIT)).ok()?).ok()
}

/// 64 random hex digits, as Docker's container ids.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .context(|| "getrandom".to_owned())?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
