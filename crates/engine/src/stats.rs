//! `stats`: one sample of what a running container uses, taken as Docker
//! takes it: its cgroup's counters, the machine's CPU time from
//! /proc/stat next to them (what a CPU percentage is reckoned against),
//! and the traffic of the interfaces in its network namespace.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use keel_cgroups::stats::Usage;
use keel_cgroups::{CgroupPath, Hierarchies};

use crate::container::{Container, Status};
use crate::error::{Context, Error, Result};
use crate::network::Mode;
use crate::{Engine, spec};

/// A container and, while it runs, a sample of its use.
#[derive(Debug, Clone)]
pub struct Stats {
    pub id: String,
    pub name: String,
    /// `None` for a container that does not run: there is nothing to read.
    pub sample: Option<Sample>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// When the cgroup was read.
    pub read: SystemTime,
    pub cgroup_version: keel_cgroups::Version,
    pub usage: Usage,
    /// The machine's CPU time in nanoseconds, summed over its CPUs, as
    /// moby reckons it from /proc/stat's `cpu` line.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    /// The cgroup's memory limit, or the machine's memory when that is
    /// less (no limit at all, or a larger one), as Docker reports it.
    pub memory_limit: u64,
    /// The interfaces of its network namespace, by name, without `lo`;
    /// `None` when it has no namespace of its own (`--network none` or
    /// `host`), for which Docker reports no networks.
    pub networks: Option<BTreeMap<String, Interface>>,
}

/// An interface's counters, as /proc/net/dev has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The cgroup mounts, read once: they do not change under a running
/// daemon, and each sample of each container would read them again.
fn hierarchies() -> Result<&'static Hierarchies> {
    static HIERARCHIES: OnceLock<Hierarchies> = OnceLock::new();
    if let Some(found) = HIERARCHIES.get() {
        return Ok(found);
    }
    let found = Hierarchies::detect()
        .map_err(std::io::Error::other)
        .context(|| "finding the cgroup hierarchies for stats".to_owned())?;
    Ok(HIERARCHIES.get_or_init(|| found))
}

impl Engine {
    /// One sample of a container's use (none if it does not run).
    pub fn stats(&self, name: &str) -> Result<Stats> {
        let container = self.container(name)?;
        let sample = match container.state.status {
            Status::Running => self.sample(&container)?,
            Status::Created | Status::Exited => None,
        };
        Ok(Stats {
            id: container.id,
            name: container.name,
            sample,
        })
    }

    fn sample(&self, container: &Container) -> Result<Option<Sample>> {
        let hierarchies = hierarchies()?;
        let path = CgroupPath::parse(&spec::cgroups_path(&container.id))
            .map_err(std::io::Error::other)
            .context(|| format!("the cgroup of container {}", container.id))?;
        let read = SystemTime::now();
        let usage = match hierarchies.usage(&path) {
            Ok(usage) => usage,
            // It ended meanwhile, and its cgroup went with it.
            Err(_) if !self.is_running(&container.id) => return Ok(None),
            Err(error) => {
                return Err(std::io::Error::other(error))
                    .context(|| format!("reading the cgroup of container {}", container.id));
            }
        };
        let (system_cpu_ns, online_cpus) = system_cpu()?;
        let host_memory = {
            let info = rustix::system::sysinfo();
            info.totalram as u64 * u64::from(info.mem_unit)
        };
        let memory_limit = usage.memory.limit.map_or(host_memory, |limit| {
            if host_memory > 0 {
                limit.min(host_memory)
            } else {
                limit
            }
        });
        let networks = match self.has_own_network(container) {
            true => Some(interfaces(container.state.pid)?),
            false => None,
        };
        Ok(Some(Sample {
            read,
            cgroup_version: hierarchies.version(),
            usage,
            system_cpu_ns,
            online_cpus,
            memory_limit,
            networks,
        }))
    }

    /// Whether the container's network namespace is one with interfaces
    /// of its own: a bridge network's, or that of the container whose
    /// namespace it joined (`--network container:NAME`), if that one has.
    fn has_own_network(&self, container: &Container) -> bool {
        let mut mode = container.config.network.mode();
        // A chain of joins ends at a container with a mode of its own;
        // the bound guards against a cycle in old records.
        for _ in 0..16 {
            match mode {
                Mode::Network(_) => return true,
                Mode::None | Mode::Host => return false,
                Mode::Container(name) => match self.container(&name) {
                    Ok(joined) => mode = joined.config.network.mode(),
                    Err(_) => return false,
                },
            }
        }
        false
    }
}

/// The machine's CPU time and CPU count from /proc/stat: the `cpu` line's
/// first seven fields (user to softirq) in clock ticks, turned into
/// nanoseconds with 100 ticks a second, as moby does (it is a constant on
/// Linux); and the number of `cpuN` lines.
fn system_cpu() -> Result<(u64, u32)> {
    let text = std::fs::read_to_string("/proc/stat").context(|| "reading /proc/stat".to_owned())?;
    parse_proc_stat(&text).ok_or_else(|| Error::Io {
        what: "/proc/stat has no `cpu` line of seven counters".to_owned(),
        source: std::io::ErrorKind::InvalidData.into(),
    })
}

fn parse_proc_stat(text: &str) -> Option<(u64, u32)> {
    const TICKS_PER_SECOND: u64 = 100;
    let mut total = None;
    let mut cpus = 0;
    for line in text.lines().take_while(|l| l.starts_with("cpu")) {
        let mut fields = line.split_whitespace();
        match fields.next()? {
            "cpu" => {
                let ticks: Vec<u64> = fields
                    .take(7)
                    .map(|f| f.parse().ok())
                    .collect::<Option<_>>()?;
                if ticks.len() < 7 {
                    return None;
                }
                total = Some(ticks.iter().sum::<u64>() * (1_000_000_000 / TICKS_PER_SECOND));
            }
            _ => cpus += 1,
        }
    }
    Some((total?, cpus))
}

/// The interfaces of the network namespace process `pid` is in, but `lo`
/// (Docker counts its endpoints' interfaces only).
fn interfaces(pid: i32) -> Result<BTreeMap<String, Interface>> {
    let path = format!("/proc/{pid}/net/dev");
    let text = std::fs::read_to_string(&path).context(|| format!("reading {path}"))?;
    Ok(parse_net_dev(&text))
}

/// /proc/net/dev: two heading lines, then `name: rx_bytes rx_packets
/// rx_errs rx_drop fifo frame compressed multicast tx_bytes tx_packets
/// tx_errs tx_drop ...`.
fn parse_net_dev(text: &str) -> BTreeMap<String, Interface> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let values: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            if name == "lo" || values.len() < 12 {
                return None;
            }
            Some((
                name.to_owned(),
                Interface {
                    rx_bytes: values[0],
                    rx_packets: values[1],
                    rx_errors: values[2],
                    rx_dropped: values[3],
                    tx_bytes: values[8],
                    tx_packets: values[9],
                    tx_errors: values[10],
                    tx_dropped: values[11],
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_cpu_time_is_the_first_seven_counters_in_nanoseconds() {
        let text = "cpu  10 1 5 100 2 0 1 7 0 0\ncpu0 5 0 3 50 1 0 1 0 0 0\ncpu1 5 1 2 50 1 0 0 0 0 0\nintr 1 2\n";
        // 10+1+5+100+2+0+1 = 119 ticks; steal (7) is left out, as moby does.
        assert_eq!(parse_proc_stat(text), Some((1_190_000_000, 2)));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }

    #[test]
    fn net_dev_gives_each_interface_but_lo() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      796      10    3    4    0     0       0          0
";
        let interfaces = parse_net_dev(text);
        assert_eq!(interfaces.len(), 1);
        assert_eq!(
            interfaces["eth0"],
            Interface {
                rx_bytes: 1296,
                rx_packets: 16,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 796,
                tx_packets: 10,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
    }
}
