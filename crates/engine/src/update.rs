//! `docker update`: new resource limits and restart policy for a
//! container, checked as Docker's `ContainerUpdate` checks them, kept in
//! its record (inspect shows them, the next start applies them) and, while
//! it runs, set in its live cgroup. A refused update changes nothing.

use keel_cgroups::{Hierarchies, Version};
use oci_spec::runtime::{LinuxCpu, LinuxPidsBuilder, LinuxResources};

use crate::Engine;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::resources::Resources;
use crate::restart::RestartPolicy;

/// What `docker update` asks. A zero or empty field keeps the
/// container's value, as in Docker.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// The new limits; their `pids_limit` and `ulimits` are not read.
    pub resources: Resources,
    /// `--pids-limit`: 0 or below lifts the limit.
    pub pids_limit: Option<i64>,
    /// An empty name keeps the container's policy.
    pub restart: RestartPolicy,
}

const NO_BLKIO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

impl Engine {
    /// Updates container `name` as asked; returns Docker's warnings.
    pub fn update_container(&self, name: &str, update: &Update) -> Result<Vec<String>> {
        let mut update = update.clone();
        let mut warnings = Vec::new();
        if update.resources.blkio_weight > 0 && !blkio_weight_supported() {
            warnings.push(NO_BLKIO_WEIGHT.to_owned());
            update.resources.blkio_weight = 0;
        }
        update.resources.check_update()?;
        update.restart.check(false)?;
        let id = self.container(name)?.id;
        // Merged under the record's lock, so that two updates do not
        // lose one another's fields.
        let mut before = Err(Error::NoSuchContainer(name.to_owned()));
        let updated = self.update(&id, |c| {
            before = updated_config(c, &update).map(|(resources, restart)| {
                (
                    std::mem::replace(&mut c.config.resources, resources),
                    std::mem::replace(&mut c.config.restart, restart),
                )
            });
        })?;
        let (old_resources, old_restart) = before?;
        if updated.state.status == Status::Running {
            let limits = live_limits(&updated.config.resources, &old_resources);
            match self.runtime().update(&id, &limits) {
                Ok(skipped) => warnings.extend(skipped.iter().map(ToString::to_string)),
                // It stopped meanwhile: its next start takes the new limits.
                Err(_) if !self.is_running(&id) => {}
                Err(error) => {
                    // The record is put back, as Docker does, and so is
                    // what the cgroup took before the failure.
                    let restored = live_limits(&old_resources, &updated.config.resources);
                    self.update(&id, |c| {
                        c.config.resources = old_resources;
                        c.config.restart = old_restart;
                    })?;
                    self.runtime().update(&id, &restored).ok();
                    return Err(error.into());
                }
            }
        }
        self.container_event(&updated, "update", &[]);
        Ok(warnings)
    }
}

/// The container's limits and restart policy with `update` over them, or
/// Docker's refusal (its `Container.UpdateContainer`).
fn updated_config(container: &Container, update: &Update) -> Result<(Resources, RestartPolicy)> {
    let conflict = |reason: &str| Error::CannotUpdate {
        id: container.id.clone(),
        reason: reason.to_owned(),
    };
    let (asked, current) = (&update.resources, &container.config.resources);
    // `--cpus` sets the period and quota: one or the other way stays.
    for (new, set, reason) in [
        (
            asked.nano_cpus,
            current.cpu_period,
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ),
        (
            asked.nano_cpus,
            current.cpu_quota,
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        ),
        (
            asked.cpu_period,
            current.nano_cpus,
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        ),
        (
            asked.cpu_quota,
            current.nano_cpus,
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ),
    ] {
        if new > 0 && set > 0 {
            return Err(conflict(reason));
        }
    }
    let mut merged = current.clone();
    let mut take = |new: i64, field: fn(&mut Resources) -> &mut i64| {
        if new != 0 {
            *field(&mut merged) = new;
        }
    };
    take(asked.cpu_shares, |r| &mut r.cpu_shares);
    take(asked.nano_cpus, |r| &mut r.nano_cpus);
    take(asked.cpu_period, |r| &mut r.cpu_period);
    take(asked.cpu_quota, |r| &mut r.cpu_quota);
    take(asked.memory_swap, |r| &mut r.memory_swap);
    take(asked.memory_reservation, |r| &mut r.memory_reservation);
    if asked.memory != 0 {
        // Docker's create gives a memory limit twice as much memory and
        // swap when no swap limit is set: Keel's 0 stands for that.
        let swap = match current.memory_swap {
            0 if current.memory > 0 => current.memory * 2,
            swap => swap,
        };
        if asked.memory > swap && asked.memory_swap == 0 {
            return Err(conflict(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        merged.memory = asked.memory;
    }
    if asked.blkio_weight != 0 {
        merged.blkio_weight = asked.blkio_weight;
    }
    for (new, field) in [
        (&asked.cpuset_cpus, &mut merged.cpuset_cpus),
        (&asked.cpuset_mems, &mut merged.cpuset_mems),
    ] {
        if !new.is_empty() {
            field.clone_from(new);
        }
    }
    if let Some(limit) = update.pids_limit {
        merged.pids_limit = limit.max(0);
    }
    merged.check()?;
    let mut restart = container.config.restart.clone();
    if !update.restart.name.is_empty() {
        if container.config.auto_remove && update.restart.name != "no" {
            return Err(conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        restart.clone_from(&update.restart);
    }
    Ok((merged, restart))
}

/// What to write in a running container's cgroup for it to have
/// `resources` after `previous`: the limits a start sets, and the lifting
/// of a pids or CPU quota limit `previous` had, which a start leaves unset.
fn live_limits(resources: &Resources, previous: &Resources) -> LinuxResources {
    let mut limits = LinuxResources::default();
    resources.set_limits(&mut limits);
    if resources.pids_limit <= 0 && previous.pids_limit > 0 {
        limits.set_pids(LinuxPidsBuilder::default().limit(-1).build().ok());
    }
    let has_quota = |r: &Resources| r.cpu_quota > 0 || r.nano_cpus > 0;
    if !has_quota(resources) && has_quota(previous) {
        let mut cpu = limits.cpu().clone().unwrap_or_else(LinuxCpu::default);
        cpu.set_quota(Some(-1));
        limits.set_cpu(Some(cpu));
    }
    limits
}

/// Whether this kernel weighs block I/O by cgroup, as Docker's sysinfo
/// finds it: a v1 blkio hierarchy with CFQ's or BFQ's weight file, or the
/// v2 io controller.
fn blkio_weight_supported() -> bool {
    let Ok(hierarchies) = Hierarchies::detect() else {
        return false;
    };
    match hierarchies.version() {
        Version::V1 => hierarchies.controller_root("blkio").is_some_and(|root| {
            ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .any(|file| root.join(file).exists())
        }),
        Version::V2 => hierarchies.controller_root("io").is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::State;

    fn container(resources: Resources, auto_remove: bool) -> Container {
        Container {
            id: "c0ffee".into(),
            name: "box".into(),
            created: String::new(),
            image_id: String::new(),
            path: "sh".into(),
            args: Vec::new(),
            config: crate::container::Config {
                resources,
                auto_remove,
                ..Default::default()
            },
            state: State::created(),
        }
    }

    fn refusal(container: &Container, update: Update) -> String {
        updated_config(container, &update).unwrap_err().to_string()
    }

    #[test]
    fn updates_keep_what_they_do_not_name_and_refuse_as_docker_does() {
        let limited = container(
            Resources {
                memory: 300 << 20,
                cpu_shares: 800,
                nano_cpus: 500_000_000,
                ..Resources::default()
            },
            false,
        );
        let (merged, restart) = updated_config(
            &limited,
            &Update {
                resources: Resources {
                    memory: 500 << 20,
                    ..Resources::default()
                },
                pids_limit: Some(-1),
                restart: RestartPolicy {
                    name: "always".into(),
                    maximum_retry_count: 0,
                },
            },
        )
        .unwrap();
        assert_eq!(
            (merged.memory, merged.cpu_shares, merged.pids_limit),
            (500 << 20, 800, 0)
        );
        assert_eq!(restart.name, "always");
        assert_eq!(
            refusal(
                &limited,
                Update {
                    resources: Resources {
                        memory: 800 << 20,
                        ..Resources::default()
                    },
                    ..Update::default()
                }
            ),
            "Cannot update container c0ffee: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        assert!(
            refusal(
                &limited,
                Update {
                    resources: Resources {
                        cpu_quota: 80_000,
                        ..Resources::default()
                    },
                    ..Update::default()
                }
            )
            .ends_with("CPU Quota cannot be updated as NanoCPUs has already been set")
        );
        assert!(
            refusal(
                &container(Resources::default(), true),
                Update {
                    restart: RestartPolicy {
                        name: "always".into(),
                        maximum_retry_count: 0,
                    },
                    ..Update::default()
                }
            )
            .ends_with(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        );
    }

    #[test]
    fn lifted_limits_are_written_as_lifted() {
        let limited = Resources {
            pids_limit: 10,
            cpu_quota: 50_000,
            ..Resources::default()
        };
        let limits = live_limits(&Resources::default(), &limited);
        assert_eq!(limits.pids().as_ref().map(|p| p.limit()), Some(-1));
        assert_eq!(limits.cpu().as_ref().and_then(|c| c.quota()), Some(-1));
        let unchanged = live_limits(&Resources::default(), &Resources::default());
        assert!(unchanged.pids().is_none() && unchanged.cpu().is_none());
    }
}
