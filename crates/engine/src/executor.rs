//! The narrow executor: one process run on a snapshot through a monitor,
//! with the default confinement of a container but none of a container's
//! record, name, restart policy or network endpoint. A build's `RUN`
//! steps run here (the builder's [`Executor`]); the caller made the
//! snapshot and commits or removes it.

use std::fs;
use std::time::Duration;

use keel_build::{Executor, Job, JobMountKind, JobNetwork};
use keel_image::Cancel;
use oci_spec::runtime::MountBuilder;

use crate::error::{Context, Error, Result};
use crate::resources::Resources;
use crate::security::{Confinement, Security};
use crate::{Engine, MonitorFlags, connect_in, record, spec};

const SIGKILL: i32 = 9;

/// How often a running job looks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The executor of one build's steps: the engine's, with the limits the
/// build gives every RUN (`--memory`, `--cpu-*`, `--ulimit`, `--shm-size`).
#[derive(Debug)]
pub(crate) struct Steps<'e> {
    pub engine: &'e Engine,
    pub limits: &'e JobLimits,
}

/// What a build's RUN steps are limited to.
#[derive(Debug, Clone, Default)]
pub struct JobLimits {
    pub resources: Resources,
    /// The size of /dev/shm, bytes (Docker's 64 MiB when unset).
    pub shm_size: Option<u64>,
}

impl Executor for Steps<'_> {
    fn execute(
        &self,
        job: &Job,
        cancel: &Cancel,
        output: &mut dyn FnMut(u8, &[u8]),
    ) -> std::result::Result<i32, String> {
        self.engine
            .run_job(job, self.limits, cancel, output)
            .map_err(|error| error.to_string())
    }
}

impl Engine {
    /// Runs `job` within `limits`, handing its output to `output` (stdout
    /// or stderr, and the bytes) as it comes; returns its exit code.
    /// `cancel` kills it.
    pub(crate) fn run_job(
        &self,
        job: &Job,
        limits: &JobLimits,
        cancel: &Cancel,
        output: &mut dyn FnMut(u8, &[u8]),
    ) -> Result<i32> {
        let id = &job.snapshot;
        let snapshot = self.images.snapshot(id)?;
        let rootfs = self.images.mount_snapshot(&snapshot)?;
        let dir = self.jobs_dir.join(id);
        let hostname = job.snapshot[..job.snapshot.len().min(12)].to_owned();
        // The name files are mounted over what the image has there, or
        // over files made for them, which go after the step.
        let stubs = NameFiles::missing_in(&rootfs);
        let result = fs::create_dir_all(&dir)
            .context(|| format!("cannot create {}", dir.display()))
            .and_then(|()| {
                let netns =
                    self.join_job_network(id, job.network, &job.extra_hosts, &dir, &hostname)?;
                let mut spec = job_spec(job, &rootfs, &hostname, netns.as_deref(), &dir)?;
                limits.apply(&mut spec);
                record::replace(
                    &dir.join("config.json"),
                    &serde_json::to_vec(&spec).expect("a spec serializes"),
                )?;
                let mut connection = None;
                let mut launched =
                    self.launch_monitor_in(&dir, id, &MonitorFlags::default(), || {
                        connection = connect_in(&dir, id, None).ok()
                    })?;
                let mut connection =
                    connection.ok_or_else(|| Error::NotRunning { id: id.to_owned() })?;
                // The output's end is the process's (or its killing's).
                let _ = crate::read_output(
                    &mut connection,
                    || {
                        if cancel.is_cancelled() {
                            let _ = self.runtime().kill(id, SIGKILL, true);
                        }
                        Some(CANCEL_POLL)
                    },
                    &mut *output,
                );
                let code = launched.exit_code();
                let _ = launched.child.wait();
                Ok(code)
            });
        self.leave_job_network(id);
        stubs.remove(&rootfs);
        fs::remove_dir_all(&dir).ok();
        snapshot.unmount().ok();
        result
    }
}

impl JobLimits {
    fn apply(&self, spec: &mut oci_spec::runtime::Spec) {
        self.resources.apply(spec);
        let (Some(size), Some(mounts)) = (self.shm_size, spec.mounts_mut().as_mut()) else {
            return;
        };
        for mount in mounts {
            if mount.destination() == std::path::Path::new("/dev/shm") {
                let mut options: Vec<String> = mount
                    .options()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| !o.starts_with("size="))
                    .collect();
                options.push(format!("size={size}"));
                mount.set_options(Some(options));
            }
        }
    }
}

/// The name files (/etc/hosts, /etc/hostname, /etc/resolv.conf) a job's
/// image does not have: their mount points, made by the runtime, are
/// removed after the job so that they land in no layer.
struct NameFiles(Vec<&'static str>);

const NAME_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

impl NameFiles {
    fn missing_in(rootfs: &std::path::Path) -> NameFiles {
        let etc = open_etc(rootfs);
        NameFiles(
            NAME_FILES
                .into_iter()
                .filter(|name| {
                    etc.as_ref().is_none_or(|etc| {
                        rustix::fs::statat(etc, *name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                            .is_err()
                    })
                })
                .collect(),
        )
    }

    /// Removes those still empty regular files, resolving /etc inside the
    /// root (never through a link out of it).
    fn remove(&self, rootfs: &std::path::Path) {
        let Some(etc) = open_etc(rootfs) else {
            return;
        };
        for name in &self.0 {
            let stub = rustix::fs::statat(&etc, *name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
            if stub.is_ok_and(|stat| {
                rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    == rustix::fs::FileType::RegularFile
                    && stat.st_size == 0
            }) {
                rustix::fs::unlinkat(&etc, *name, rustix::fs::AtFlags::empty()).ok();
            }
        }
    }
}

/// The root's /etc, resolved inside the root.
fn open_etc(rootfs: &std::path::Path) -> Option<std::os::fd::OwnedFd> {
    spec::open_in_root(
        rootfs,
        "etc",
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
    )
}

/// The runtime config of a job: a container's defaults and confinement,
/// with the job's process, root and mounts.
fn job_spec(
    job: &Job,
    rootfs: &std::path::Path,
    hostname: &str,
    netns: Option<&std::path::Path>,
    files_dir: &std::path::Path,
) -> Result<oci_spec::runtime::Spec> {
    let mut spec = keel_runtime::default_spec();
    let hostname = hostname.to_owned();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(false));
    process.set_args(Some(job.args.clone()));
    process.set_env(Some(spec::environment(&[], &job.env, &hostname)));
    process.set_cwd(match job.cwd.as_str() {
        "" => "/".into(),
        cwd => cwd.into(),
    });
    process.set_user(spec::process_user(&job.user, rootfs)?);
    spec.set_process(Some(process));
    spec.set_hostname(Some(hostname));
    spec::place(
        &mut spec,
        rootfs,
        &job.snapshot,
        job.network == JobNetwork::Host,
    )?;
    if let Some(netns) = netns
        && let Some(namespaces) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
    {
        for namespace in namespaces {
            if namespace.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                namespace.set_path(Some(netns.to_owned()));
            }
        }
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for name in NAME_FILES {
        mounts.push(
            MountBuilder::default()
                .destination(std::path::Path::new("/etc").join(name))
                .typ("bind")
                .source(files_dir.join(name))
                .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                .build()
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        );
    }
    for mount in &job.mounts {
        let (typ, source, mut options) = match &mount.kind {
            JobMountKind::Bind(source) => (
                "bind",
                source.clone(),
                vec!["rbind".to_owned(), "rprivate".to_owned()],
            ),
            JobMountKind::Tmpfs { size } => (
                "tmpfs",
                "tmpfs".into(),
                [
                    "nosuid".to_owned(),
                    "nodev".to_owned(),
                    "mode=1777".to_owned(),
                ]
                .into_iter()
                .chain(size.map(|size| format!("size={size}")))
                .collect(),
            ),
        };
        if mount.readonly {
            options.push("ro".to_owned());
        }
        mounts.push(
            MountBuilder::default()
                .destination(&mount.target)
                .typ(typ)
                .source(source)
                .options(options)
                .build()
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        );
    }
    spec.set_mounts(Some(mounts));
    let security = Security::default();
    Confinement::of(&security)?.apply(&mut spec, &security);
    Ok(spec)
}
