//! `pause` and `unpause`: a container's processes frozen in their cgroup
//! and thawed again, as Docker does it. A paused container still runs
//! (its status stays `running`, with `paused` set); a signal to it thaws
//! it, so that `stop`, `kill` and `rm -f` work on it as Docker's do.

use crate::Engine;
use crate::container::{Container, Status};
use crate::error::{Error, Result};

impl Engine {
    /// Freezes a running container's processes.
    pub fn pause(&self, name: &str) -> Result<()> {
        let container = self.container(name)?;
        if container.state.status != Status::Running {
            return Err(Error::NotRunning { id: container.id });
        }
        if container.state.paused {
            return Err(Error::InvalidParameter(format!(
                "container {} is already paused",
                container.id
            )));
        }
        self.runtime().pause(&container.id)?;
        self.update_state(&container.id, |c| c.state.paused = true)?;
        self.container_event(&container, "pause", &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause(&self, name: &str) -> Result<()> {
        let container = self.container(name)?;
        if !container.state.paused || container.state.status != Status::Running {
            return Err(Error::InvalidParameter(format!(
                "container {} is not paused",
                container.id
            )));
        }
        self.runtime().resume(&container.id)?;
        self.update_state(&container.id, |c| c.state.paused = false)?;
        self.container_event(&container, "unpause", &[]);
        Ok(())
    }

    /// Sends `signal` to a running container's init, thawing it first if
    /// it is paused (a frozen process acts on no signal).
    pub(crate) fn signal(&self, container: &Container, signal: i32) -> Result<()> {
        let runtime = self.runtime();
        runtime.kill(&container.id, signal, false)?;
        self.container_event(container, "kill", &[("signal", signal.to_string())]);
        if container.state.paused {
            runtime.resume(&container.id)?;
            self.update_state(&container.id, |c| c.state.paused = false)?;
        }
        Ok(())
    }

    /// Refuses what a paused container cannot do (exec), in Docker's words.
    pub(crate) fn check_not_paused(container: &Container) -> Result<()> {
        match container.state.paused {
            true => Err(Error::Paused {
                id: container.id.clone(),
            }),
            false => Ok(()),
        }
    }

    pub(crate) fn runtime(&self) -> keel_runtime::Runtime {
        keel_runtime::Runtime::new(&self.runtime_root, false)
    }
}
