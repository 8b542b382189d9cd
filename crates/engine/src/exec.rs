//! Exec instances (`docker exec`): another process in a running container,
//! run by a monitor of its own (its stdio served on its own socket), with
//! its exit code kept until the container is removed.

use std::fs;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use keel_monitor_protocol::files::exec_process_name;
use oci_spec::runtime::{BoxBuilder, Process, Spec};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::{Engine, MonitorFlags, Status, random_id, spec};

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub detach_keys: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    /// Set once it has run (or failed to start).
    pub exit_code: Option<i32>,
}

impl Engine {
    /// Records an exec instance for a running container; returns its id.
    pub fn exec_create(&self, name: &str, config: ExecConfig) -> Result<String> {
        if config.cmd.is_empty() {
            return Err(Error::NoExecCommand);
        }
        let container = self.container(name)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        Self::check_not_paused(&container)?;
        let id = random_id()?;
        let action = format!("exec_create: {}", config.cmd.join(" "));
        self.container_event(&container, &action, &[("execID", id.clone())]);
        self.lock().execs.insert(
            id.clone(),
            Exec {
                id: id.clone(),
                container_id: container.id,
                config,
                started: false,
                running: false,
                pid: 0,
                exit_code: None,
            },
        );
        Ok(id)
    }

    pub fn exec(&self, id: &str) -> Result<Exec> {
        self.lock()
            .execs
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchExec(id.to_owned()))
    }

    /// Starts an exec instance; with `attach`, returns a connection to its
    /// stdio made before it runs. `size` is its terminal's (rows, cols).
    pub fn exec_start(
        self: &Arc<Self>,
        id: &str,
        attach: bool,
        size: Option<(u16, u16)>,
    ) -> Result<Option<UnixStream>> {
        let exec = {
            let mut table = self.lock();
            let exec = table
                .execs
                .get_mut(id)
                .ok_or_else(|| Error::NoSuchExec(id.to_owned()))?;
            if exec.started {
                return Err(Error::ExecStarted(id.to_owned()));
            }
            exec.started = true;
            exec.clone()
        };
        let result = self.launch_exec(&exec, attach, size);
        if let Err(error) = &result {
            let code = match error {
                // 126 otherwise, as Docker gives a failed exec.
                Error::Start(failure) => failure.kind.exit_code().unwrap_or(126),
                _ => 126,
            };
            self.update_exec(id, |e| e.exit_code = Some(code));
            self.remove_exec_files(&exec);
        }
        result
    }

    fn launch_exec(
        self: &Arc<Self>,
        exec: &Exec,
        attach: bool,
        size: Option<(u16, u16)>,
    ) -> Result<Option<UnixStream>> {
        let container = self.container(&exec.container_id)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        let dir = self.dir(&container.id);
        let spec: Spec = serde_json::from_slice(
            &fs::read(dir.join("config.json")).context(|| "the container's config".to_owned())?,
        )
        .map_err(|e| Error::Unsupported(format!("the container's config: {e}")))?;
        let process = process(&spec, &exec.config, size)?;
        fs::write(
            dir.join(exec_process_name(&exec.id)),
            serde_json::to_vec(&process).expect("a process serializes"),
        )
        .context(|| "writing the exec's process".to_owned())?;
        let flags = MonitorFlags {
            exec: Some(exec.id.clone()),
            log: None,
            tty: exec.config.tty,
            stdin: exec.config.attach_stdin,
            stdin_once: true,
        };
        let mut connection = None;
        let mut launched = self.launch_monitor(&container.id, &flags, || {
            if attach {
                connection = self.connect(&container.id, Some(&exec.id)).ok();
            }
        })?;
        self.update_exec(&exec.id, |e| {
            e.running = true;
            e.pid = launched.pid;
        });
        let action = format!("exec_start: {}", exec.config.cmd.join(" "));
        self.container_event(&container, &action, &[("execID", exec.id.clone())]);
        let engine = Arc::clone(self);
        let exec = exec.clone();
        std::thread::Builder::new()
            .name(format!("exec-{}", &exec.id[..12]))
            .stack_size(64 * 1024)
            .spawn(move || {
                let code = launched.exit_code();
                let _ = launched.child.wait();
                // Published before the exit is visible, so that whoever
                // acts on it publishes after it.
                engine.container_event(
                    &container,
                    "exec_die",
                    &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
                );
                engine.update_exec(&exec.id, |e| {
                    e.running = false;
                    e.exit_code = Some(code);
                });
                engine.remove_exec_files(&exec);
            })
            .context(|| "cannot watch the exec".to_owned())?;
        Ok(connection)
    }

    /// Waits for an exec instance to end; returns its exit code.
    pub fn exec_wait(&self, id: &str) -> Result<i32> {
        let mut table = self.lock();
        loop {
            let exec = table
                .execs
                .get(id)
                .ok_or_else(|| Error::NoSuchExec(id.to_owned()))?;
            if let Some(code) = exec.exit_code {
                return Ok(code);
            }
            table = self
                .changed
                .wait(table)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Sets the size of a running exec's terminal.
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let exec = self.exec(id)?;
        if !exec.running {
            return Err(Error::NotRunning { id: id.to_owned() });
        }
        crate::send_resize(
            self.connect(&exec.container_id, Some(&exec.id))?,
            rows,
            cols,
        )
    }

    fn update_exec(&self, id: &str, change: impl FnOnce(&mut Exec)) {
        if let Some(exec) = self.lock().execs.get_mut(id) {
            change(exec);
        }
        self.changed.notify_all();
    }

    fn remove_exec_files(&self, exec: &Exec) {
        let dir = self.dir(&exec.container_id);
        fs::remove_file(dir.join(exec_process_name(&exec.id))).ok();
        fs::remove_file(dir.join(format!("exec-{}.log", exec.id))).ok();
    }
}

/// The exec's process: the container's, with the exec's command, and its
/// environment, user, directory and terminal on top.
fn process(spec: &Spec, config: &ExecConfig, size: Option<(u16, u16)>) -> Result<Process> {
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(config.cmd.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &config.env {
        let name = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(name));
        env.push(entry.clone());
    }
    if config.tty {
        spec::with_terminal_type(&mut env);
    }
    process.set_env(Some(env));
    process.set_terminal(Some(config.tty));
    if let Some((rows, cols)) = size {
        process.set_console_size(
            BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
                .ok(),
        );
    }
    if let Some(dir) = config.working_dir.as_ref().filter(|d| !d.is_empty()) {
        process.set_cwd(dir.into());
    }
    if let Some(user) = config.user.as_ref().filter(|u| !u.is_empty()) {
        let rootfs = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        process.set_user(spec::process_user(user, &rootfs)?);
    }
    if config.privileged
        && let Some(mut capabilities) = process.capabilities().clone()
    {
        let all: std::collections::HashSet<_> =
            keel_runtime::bounding_capabilities().into_iter().collect();
        capabilities.set_bounding(Some(all.clone()));
        capabilities.set_effective(Some(all.clone()));
        capabilities.set_permitted(Some(all));
        process.set_capabilities(Some(capabilities));
    }
    Ok(process)
}
