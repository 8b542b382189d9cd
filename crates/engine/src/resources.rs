//! Resource limits as `docker create` takes them (`-m`, `--memory-swap`,
//! `--cpus`, `--cpu-shares`, `--pids-limit`, `--ulimit`, ...), checked with
//! Docker's rules and words, and set in the container's OCI config.

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    PosixRlimitBuilder, PosixRlimitType, Spec,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Bytes; 0 is no limit.
    pub memory: i64,
    /// Memory plus swap, bytes; -1 is unlimited swap, 0 unset.
    pub memory_swap: i64,
    pub memory_reservation: i64,
    /// CPUs in billionths (`--cpus 1.5` is 1.5e9).
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    /// Memory nodes, as `cpuset_cpus` lists CPUs (`0-1,3`).
    pub cpuset_mems: String,
    /// 10 to 1000; 0 is the kernel's default.
    pub blkio_weight: u16,
    /// 0 or -1: no limit.
    pub pids_limit: i64,
    pub ulimits: Vec<Ulimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Docker's smallest memory limit: 6 MiB.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` is expressed in.
const CPU_PERIOD: i64 = 100_000;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidParameter(message.into())
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    format!("RLIMIT_{}", name.to_uppercase()).parse().ok()
}

impl Resources {
    /// Refuses what Docker refuses, in Docker's words.
    pub fn check(&self) -> Result<()> {
        self.check_as(false)
    }

    /// [`Resources::check`] for the limits an update sets: a swap limit
    /// may come alone, the container's memory limit staying.
    pub(crate) fn check_update(&self) -> Result<()> {
        self.check_as(true)
    }

    fn check_as(&self, update: bool) -> Result<()> {
        if self.memory != 0 && self.memory < MIN_MEMORY {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
        if self.memory > 0 && self.memory_swap > 0 && self.memory_swap < self.memory {
            return Err(invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        if self.memory == 0 && self.memory_swap > 0 && !update {
            return Err(invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ));
        }
        if self.memory > 0 && self.memory_reservation > self.memory {
            return Err(invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
        if self.nano_cpus > 0 && self.cpu_period > 0 {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        if self.nano_cpus > 0 && self.cpu_quota > 0 {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if self.nano_cpus < 0 || self.nano_cpus > cpus * 1_000_000_000 {
            return Err(invalid(format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )));
        }
        if self.cpu_period != 0 && !(1000..=1_000_000).contains(&self.cpu_period) {
            return Err(invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ));
        }
        if self.cpu_quota > 0 && self.cpu_quota < 1000 {
            return Err(invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ));
        }
        check_cpuset(
            &self.cpuset_cpus,
            "cpus",
            "CPUs",
            "/sys/devices/system/cpu/online",
        )?;
        check_cpuset(
            &self.cpuset_mems,
            "mems",
            "memory nodes",
            "/sys/devices/system/node/online",
        )?;
        if self.blkio_weight > 0 && !(10..=1000).contains(&self.blkio_weight) {
            return Err(invalid("Range of blkio weight is from 10 to 1000"));
        }
        for ulimit in &self.ulimits {
            if rlimit_type(&ulimit.name).is_none() {
                return Err(invalid(format!("invalid ulimit type: {}", ulimit.name)));
            }
            if ulimit.soft > ulimit.hard {
                return Err(invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    ulimit.soft, ulimit.hard
                )));
            }
        }
        Ok(())
    }

    /// Sets the limits in `spec`. Without `--ulimit` the process keeps the
    /// daemon's rlimits, as in Docker.
    pub(crate) fn apply(&self, spec: &mut Spec) {
        let rlimits = self
            .ulimits
            .iter()
            .filter_map(|u| {
                PosixRlimitBuilder::default()
                    .typ(rlimit_type(&u.name)?)
                    .soft(u.soft.max(0) as u64)
                    .hard(u.hard.max(0) as u64)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if let Some(process) = spec.process_mut() {
            process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
        }
        if let Some(resources) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.resources_mut().as_mut())
        {
            self.set_limits(resources);
        }
    }

    /// Sets the cgroup limits in `resources`; what has no limit is left
    /// unset.
    pub(crate) fn set_limits(&self, resources: &mut LinuxResources) {
        let mut memory = LinuxMemoryBuilder::default();
        if self.memory > 0 {
            memory = memory.limit(self.memory);
        }
        if self.memory_swap != 0 {
            memory = memory.swap(self.memory_swap);
        }
        if self.memory_reservation > 0 {
            memory = memory.reservation(self.memory_reservation);
        }
        if self.memory > 0 || self.memory_swap != 0 || self.memory_reservation > 0 {
            resources.set_memory(memory.build().ok());
        }
        let mut cpu = LinuxCpuBuilder::default();
        let mut any_cpu = false;
        if self.nano_cpus > 0 {
            cpu = cpu
                .period(CPU_PERIOD as u64)
                .quota(self.nano_cpus * CPU_PERIOD / 1_000_000_000);
            any_cpu = true;
        }
        if self.cpu_quota > 0 {
            cpu = cpu.quota(self.cpu_quota);
            any_cpu = true;
        }
        if self.cpu_period > 0 {
            cpu = cpu.period(self.cpu_period as u64);
            any_cpu = true;
        }
        if self.cpu_shares > 0 {
            cpu = cpu.shares(self.cpu_shares as u64);
            any_cpu = true;
        }
        if !self.cpuset_cpus.is_empty() {
            cpu = cpu.cpus(self.cpuset_cpus.clone());
            any_cpu = true;
        }
        if !self.cpuset_mems.is_empty() {
            cpu = cpu.mems(self.cpuset_mems.clone());
            any_cpu = true;
        }
        if any_cpu {
            resources.set_cpu(cpu.build().ok());
        }
        if self.pids_limit > 0 {
            resources.set_pids(
                LinuxPidsBuilder::default()
                    .limit(self.pids_limit)
                    .build()
                    .ok(),
            );
        }
        if self.blkio_weight > 0 {
            resources.set_block_io(
                LinuxBlockIoBuilder::default()
                    .weight(self.blkio_weight)
                    .build()
                    .ok(),
            );
        }
    }
}

/// Refuses a `--cpuset-cpus` or `--cpuset-mems` list that does not parse
/// or names what the machine does not have (listed in `online`), in
/// Docker's words.
fn check_cpuset(list: &str, field: &str, what: &str, online: &str) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let requested = parse_cpuset(list).ok_or_else(|| {
        invalid(format!(
            "Invalid value {list} for cpuset {field}: invalid format: {list}"
        ))
    })?;
    // A machine that does not list them (no NUMA in sysfs) has node 0.
    let available = std::fs::read_to_string(online).unwrap_or_else(|_| "0".to_owned());
    let available = available.trim();
    let have = parse_cpuset(available).unwrap_or_default();
    let is_available = |n: u32| {
        have.iter()
            .any(|(first, last)| (*first..=*last).contains(&n))
    };
    // Stops at the first number missing: a huge range costs nothing.
    if !requested
        .iter()
        .all(|(first, last)| (*first..=*last).all(is_available))
    {
        return Err(invalid(format!(
            "Requested {what} are not available - requested {list}, available: {available}"
        )));
    }
    Ok(())
}

/// `0-2,5` as its ranges; None if it is not such a list.
fn parse_cpuset(list: &str) -> Option<Vec<(u32, u32)>> {
    list.split(',')
        .map(|part| {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
            (first <= last).then_some((first, last))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_docker_refuses_are_refused_in_its_words() {
        let error = |r: Resources| r.check().unwrap_err().to_string();
        assert_eq!(
            error(Resources {
                memory: 1024,
                ..Resources::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(
            error(Resources {
                memory: 64 << 20,
                memory_swap: 32 << 20,
                ..Resources::default()
            })
            .starts_with("Minimum memoryswap limit should be larger")
        );
        assert!(
            error(Resources {
                nano_cpus: 1_000_000_000,
                cpu_period: 50_000,
                ..Resources::default()
            })
            .starts_with("Conflicting options")
        );
        assert!(
            error(Resources {
                nano_cpus: 1_000_000_000_000,
                ..Resources::default()
            })
            .starts_with("Range of CPUs is from 0.01 to")
        );
        let ulimit = |name: &str, soft, hard| Resources {
            ulimits: vec![Ulimit {
                name: name.to_owned(),
                soft,
                hard,
            }],
            ..Resources::default()
        };
        assert_eq!(error(ulimit("files", 1, 1)), "invalid ulimit type: files");
        assert_eq!(
            error(ulimit("nofile", 20, 10)),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
        assert!(ulimit("nofile", 10, 20).check().is_ok());
    }

    #[test]
    fn cpusets_and_blkio_weights_docker_refuses_are_refused_in_its_words() {
        let error = |r: Resources| r.check().unwrap_err().to_string();
        assert_eq!(
            error(Resources {
                cpuset_cpus: "1-x".into(),
                ..Resources::default()
            }),
            "Invalid value 1-x for cpuset cpus: invalid format: 1-x"
        );
        assert!(
            error(Resources {
                cpuset_cpus: "0-4000000000".into(),
                ..Resources::default()
            })
            .starts_with("Requested CPUs are not available - requested 0-4000000000, available: 0")
        );
        assert!(
            Resources {
                cpuset_cpus: "0".into(),
                cpuset_mems: "0".into(),
                ..Resources::default()
            }
            .check()
            .is_ok()
        );
        assert_eq!(
            error(Resources {
                blkio_weight: 5,
                ..Resources::default()
            }),
            "Range of blkio weight is from 10 to 1000"
        );
        let swap_alone = Resources {
            memory_swap: 128 << 20,
            ..Resources::default()
        };
        assert!(swap_alone.check().is_err() && swap_alone.check_update().is_ok());
    }
}
