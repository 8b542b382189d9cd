//! `GET /containers/{id}/stats`: a container's resource use, shaped as the
//! API's swagger `ContainerStatsResponse` and Go's `container.StatsResponse`
//! (API 1.47) marshal it: structs always present, Go's `omitempty` numbers
//! left out at zero, blkio lists `null` where Docker has none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Go's zero `time.Time`, which `read` and `preread` carry when there is
/// no sample (a container that does not run, or no previous sample).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn zero_time() -> String {
    ZERO_TIME.to_owned()
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStatsResponse {
    /// RFC 3339 with nanoseconds.
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    /// Windows only; 0 on Linux, as in Docker.
    pub num_procs: u32,
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    /// `/name`, as Docker names containers here.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// By interface name; absent for a container without a network of
    /// its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

impl Default for ContainerStatsResponse {
    fn default() -> Self {
        ContainerStatsResponse {
            read: zero_time(),
            preread: zero_time(),
            pids_stats: PidsStats::default(),
            blkio_stats: BlkioStats::default(),
            num_procs: 0,
            storage_stats: StorageStats::default(),
            cpu_stats: CpuStats::default(),
            precpu_stats: CpuStats::default(),
            memory_stats: MemoryStats::default(),
            name: String::new(),
            id: String::new(),
            networks: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Each list is `null` when the cgroup version has no such counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Windows only: always empty on Linux.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStats {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    /// The machine's CPU time in nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingData,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    pub total_usage: u64,
    /// cgroup v1 only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// cgroup v1 only.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    /// memory.stat's counters: v1 keys (`total_inactive_file`, …) or v2
    /// keys (`inactive_file`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

impl MemoryStats {
    /// Usage without the page cache that could be dropped, as the docker
    /// CLI shows it: less v1's `total_inactive_file` or v2's
    /// `inactive_file` (cadvisor's and containerd's working set).
    pub fn usage_without_cache(&self) -> u64 {
        let below_usage = |key: &str| self.stats.get(key).copied().filter(|v| *v < self.usage);
        // v1's key first; the CLI falls back to the other even on v1.
        match below_usage("total_inactive_file").or_else(|| below_usage("inactive_file")) {
            Some(inactive) => self.usage - inactive,
            None => self.usage,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl ContainerStatsResponse {
    /// The CPU percentage the docker CLI shows: the container's share of
    /// the machine's CPU time between the previous sample and this one,
    /// times the CPUs online (100% is one whole CPU).
    pub fn cpu_percent(&self) -> f64 {
        let (now, before) = (&self.cpu_stats, &self.precpu_stats);
        let container = now.cpu_usage.total_usage as f64 - before.cpu_usage.total_usage as f64;
        let system = now.system_cpu_usage as f64 - before.system_cpu_usage as f64;
        let cpus = match now.online_cpus {
            0 => now.cpu_usage.percpu_usage.len() as f64,
            n => f64::from(n),
        };
        match system > 0.0 && container > 0.0 {
            true => container / system * cpus * 100.0,
            false => 0.0,
        }
    }

    /// Bytes read and written, summed over devices from the entries whose
    /// op starts with `r` or `w` (v1's `Read`/`Write`, v2's `read`/`write`).
    pub fn block_io(&self) -> (u64, u64) {
        let mut totals = (0, 0);
        for entry in self.blkio_stats.io_service_bytes_recursive.iter().flatten() {
            match entry.op.chars().next() {
                Some('r' | 'R') => totals.0 += entry.value,
                Some('w' | 'W') => totals.1 += entry.value,
                _ => {}
            }
        }
        totals
    }

    /// Bytes received and sent, over every interface.
    pub fn network_io(&self) -> (u64, u64) {
        self.networks
            .iter()
            .flatten()
            .fold((0, 0), |(rx, tx), (_, n)| {
                (rx + n.rx_bytes, tx + n.tx_bytes)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sample_is_shaped_as_dockers_for_a_stopped_container() {
        let stats = ContainerStatsResponse {
            name: "/web".into(),
            id: "abc".into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["read"], ZERO_TIME);
        assert_eq!(json["pids_stats"], serde_json::json!({}));
        assert_eq!(json["memory_stats"], serde_json::json!({}));
        assert!(json["blkio_stats"]["io_service_bytes_recursive"].is_null());
        assert_eq!(json["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(json["cpu_stats"]["throttling_data"]["periods"], 0);
        assert!(json["cpu_stats"].get("system_cpu_usage").is_none());
        assert!(json.get("networks").is_none());
        assert_eq!(json["num_procs"], 0);
    }

    #[test]
    fn the_cli_figures_are_reckoned_as_dockers() {
        let mut stats = ContainerStatsResponse::default();
        stats.precpu_stats.cpu_usage.total_usage = 1_000;
        stats.precpu_stats.system_cpu_usage = 100_000;
        stats.cpu_stats.cpu_usage.total_usage = 11_000;
        stats.cpu_stats.system_cpu_usage = 200_000;
        stats.cpu_stats.online_cpus = 2;
        assert!((stats.cpu_percent() - 20.0).abs() < 1e-9);
        stats.memory_stats.usage = 10_000;
        stats.memory_stats.stats = BTreeMap::from([("total_inactive_file".to_owned(), 4_000)]);
        assert_eq!(stats.memory_stats.usage_without_cache(), 6_000);
        stats.blkio_stats.io_service_bytes_recursive = Some(vec![
            BlkioStatEntry {
                op: "Read".into(),
                value: 5,
                ..Default::default()
            },
            BlkioStatEntry {
                op: "write".into(),
                value: 7,
                ..Default::default()
            },
            BlkioStatEntry {
                op: "Total".into(),
                value: 12,
                ..Default::default()
            },
        ]);
        assert_eq!(stats.block_io(), (5, 7));
    }
}
