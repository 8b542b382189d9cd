//! GET /containers/{id}/stats?stream=&one-shot=: a container's resource use
//! as Docker reports it (moby's daemon/stats.go and stats_unix.go): one
//! JSON object a second while `stream` (the default), each with the one
//! before as its `precpu_stats` and `preread`; with `stream=false`, one
//! object after two samples (so that a CPU percentage can be reckoned), or
//! after one with `one-shot=true`. A container that does not run gives an
//! object with nothing measured and the zero time as `read`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_api_types::stats::{
    BlkioStatEntry, BlkioStats, ContainerStatsResponse, CpuStats, CpuUsage, MemoryStats,
    NetworkStats, PidsStats, ThrottlingData,
};
use keel_cgroups::Version;
use keel_cgroups::stats::{BlkioEntry, Io};

use crate::Daemon;
use crate::http::{ApiError, Query, Reply, blocking, streamed};

/// How often a stream samples, as Docker's default stats collector.
const INTERVAL: Duration = Duration::from_secs(1);

/// How long `stream=false` waits between the sample that gives only
/// `precpu_stats` and the one it answers with. Docker waits for two ticks
/// of its one-second collector (up to two seconds per `docker stats
/// --no-stream`); a CPU share is as true over a quarter second (/proc/stat
/// counts in hundredths: 50 ticks a CPU, a 2% grain), and the answer four
/// times sooner.
const PRIME_WINDOW: Duration = Duration::from_millis(250);

/// The memory.stat keys Docker reports on cgroup v1, each present (0 when
/// the kernel does not have it).
const V1_MEMORY_KEYS: [&str; 32] = [
    "active_anon",
    "active_file",
    "cache",
    "dirty",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "inactive_anon",
    "inactive_file",
    "mapped_file",
    "pgfault",
    "pgmajfault",
    "pgpgin",
    "pgpgout",
    "rss",
    "rss_huge",
    "total_active_anon",
    "total_active_file",
    "total_cache",
    "total_dirty",
    "total_inactive_anon",
    "total_inactive_file",
    "total_mapped_file",
    "total_pgfault",
    "total_pgmajfault",
    "total_pgpgin",
    "total_pgpgout",
    "total_rss",
    "total_rss_huge",
    "total_unevictable",
    "total_writeback",
    "unevictable",
    "writeback",
];

/// The memory.stat keys Docker reports on cgroup v2.
const V2_MEMORY_KEYS: [&str; 31] = [
    "active_anon",
    "active_file",
    "anon",
    "anon_thp",
    "file",
    "file_dirty",
    "file_mapped",
    "file_writeback",
    "inactive_anon",
    "inactive_file",
    "kernel_stack",
    "pgactivate",
    "pgdeactivate",
    "pgfault",
    "pglazyfree",
    "pglazyfreed",
    "pgmajfault",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "shmem",
    "slab",
    "slab_reclaimable",
    "slab_unreclaimable",
    "sock",
    "thp_collapse_alloc",
    "thp_fault_alloc",
    "unevictable",
    "workingset_activate",
    "workingset_nodereclaim",
    "workingset_refault",
];

/// Docker's booleans in a query: absent is `default`; present, anything
/// but "", "0", "no", "false" and "none" (any case) is true.
fn bool_value(query: &Query, key: &str, default: bool) -> bool {
    match query.get(key) {
        None => default,
        Some(value) => !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

/// GET /containers/{id}/stats
pub async fn stats(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply, ApiError> {
    let stream = bool_value(&query, "stream", true);
    let one_shot = bool_value(&query, "one-shot", false);
    // An unknown container is answered before the body starts.
    let first = {
        let daemon = Arc::clone(&daemon);
        blocking(move || Ok(daemon.engine.stats(&name)?)).await?
    };
    if stream && one_shot {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    Ok(streamed("application/json", move |out| {
        let engine = &daemon.engine;
        let id = first.id.clone();
        let mut next = Instant::now() + INTERVAL;
        let mut previous = ContainerStatsResponse::default();
        let mut sample = first;
        if !stream && !one_shot && sample.sample.is_some() {
            // The first sample only gives the second its `precpu_stats`.
            previous = response(&sample, &previous);
            std::thread::sleep(PRIME_WINDOW);
            sample = engine.stats(&id).map_err(std::io::Error::other)?;
        }
        loop {
            let current = response(&sample, &previous);
            serde_json::to_writer(&mut *out, &current)?;
            out.write_all(b"\n")?;
            out.flush()?;
            if !stream {
                return Ok(());
            }
            previous = current;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += INTERVAL;
            match engine.stats(&id) {
                Ok(stats) => sample = stats,
                // A removed container ends the stream, as in Docker.
                Err(keel_engine::Error::NoSuchContainer(_)) => return Ok(()),
                // Docker's collector logs a failed sample and sends an
                // empty one.
                Err(error) => {
                    eprintln!("keel daemon: collecting stats for container {id}: {error}");
                    sample.sample = None;
                }
            }
        }
    }))
}

/// The wire form of a sample, following `previous` (its `read` and
/// `cpu_stats` become this one's `preread` and `precpu_stats`).
fn response(
    stats: &keel_engine::Stats,
    previous: &ContainerStatsResponse,
) -> ContainerStatsResponse {
    let mut response = ContainerStatsResponse {
        name: format!("/{}", stats.name),
        id: stats.id.clone(),
        preread: previous.read.clone(),
        precpu_stats: previous.cpu_stats.clone(),
        ..ContainerStatsResponse::default()
    };
    let Some(sample) = &stats.sample else {
        return response;
    };
    let usage = &sample.usage;
    let v1 = sample.cgroup_version == Version::V1;
    response.read = keel_time::rfc3339(sample.read);
    response.cpu_stats = CpuStats {
        cpu_usage: CpuUsage {
            total_usage: usage.cpu.total_ns,
            percpu_usage: usage.cpu.per_cpu_ns.clone(),
            usage_in_kernelmode: usage.cpu.system_ns,
            usage_in_usermode: usage.cpu.user_ns,
        },
        system_cpu_usage: sample.system_cpu_ns,
        online_cpus: sample.online_cpus,
        throttling_data: ThrottlingData {
            periods: usage.cpu.periods,
            throttled_periods: usage.cpu.throttled_periods,
            throttled_time: usage.cpu.throttled_ns,
        },
    };
    let keys: &[&str] = if v1 { &V1_MEMORY_KEYS } else { &V2_MEMORY_KEYS };
    response.memory_stats = MemoryStats {
        usage: usage.memory.usage,
        // moby reports no maximum on v2.
        max_usage: if v1 { usage.memory.max_usage } else { 0 },
        stats: keys
            .iter()
            .map(|key| {
                let value = usage.memory.stat.get(*key).copied().unwrap_or(0);
                ((*key).to_owned(), value)
            })
            .collect(),
        failcnt: usage.memory.failcnt,
        limit: sample.memory_limit,
    };
    response.pids_stats = PidsStats {
        current: usage.pids.current,
        // containerd reads v1's `max` as 0 and v2's as the largest number.
        limit: usage.pids.limit.unwrap_or(if v1 { 0 } else { u64::MAX }),
    };
    response.blkio_stats = blkio(&usage.io);
    response.networks = sample.networks.as_ref().map(|interfaces| {
        interfaces
            .iter()
            .map(|(name, n)| {
                let stats = NetworkStats {
                    rx_bytes: n.rx_bytes,
                    rx_packets: n.rx_packets,
                    rx_errors: n.rx_errors,
                    rx_dropped: n.rx_dropped,
                    tx_bytes: n.tx_bytes,
                    tx_packets: n.tx_packets,
                    tx_errors: n.tx_errors,
                    tx_dropped: n.tx_dropped,
                };
                (name.clone(), stats)
            })
            .collect::<BTreeMap<_, _>>()
    });
    // Docker leaves `networks` out when there are none.
    if response.networks.as_ref().is_some_and(BTreeMap::is_empty) {
        response.networks = None;
    }
    response
}

/// v1 fills every list (empty ones as `[]`); v2 only the bytes, as a
/// `read` and a `write` entry per device (`null` without devices).
fn blkio(io: &Io) -> BlkioStats {
    match io {
        Io::V1(blkio) => {
            let list = |entries: &[BlkioEntry]| {
                Some(
                    entries
                        .iter()
                        .map(|e| BlkioStatEntry {
                            major: e.major,
                            minor: e.minor,
                            op: e.op.clone(),
                            value: e.value,
                        })
                        .collect(),
                )
            };
            BlkioStats {
                io_service_bytes_recursive: list(&blkio.service_bytes),
                io_serviced_recursive: list(&blkio.serviced),
                io_queue_recursive: list(&blkio.queued),
                io_service_time_recursive: list(&blkio.service_time),
                io_wait_time_recursive: list(&blkio.wait_time),
                io_merged_recursive: list(&blkio.merged),
                io_time_recursive: list(&blkio.time),
                sectors_recursive: list(&blkio.sectors),
            }
        }
        Io::V2(devices) => BlkioStats {
            io_service_bytes_recursive: (!devices.is_empty()).then(|| {
                devices
                    .iter()
                    .flat_map(|d| {
                        [("read", d.read_bytes), ("write", d.write_bytes)].map(|(op, value)| {
                            BlkioStatEntry {
                                major: d.major,
                                minor: d.minor,
                                op: op.to_owned(),
                                value,
                            }
                        })
                    })
                    .collect()
            }),
            ..BlkioStats::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_booleans_default_when_absent_and_read_false_words() {
        let query = Query::parse(Some("stream=0&one-shot=True&a=no&b="));
        assert!(!bool_value(&query, "stream", true));
        assert!(bool_value(&query, "one-shot", false));
        assert!(!bool_value(&query, "a", true));
        assert!(!bool_value(&query, "b", true));
        assert!(bool_value(&query, "absent", true));
    }

    #[test]
    fn v2_block_io_is_a_read_and_a_write_entry_per_device() {
        let io = Io::V2(vec![keel_cgroups::stats::DeviceIo {
            major: 8,
            minor: 0,
            read_bytes: 10,
            write_bytes: 20,
            ..Default::default()
        }]);
        let stats = blkio(&io);
        let bytes = stats.io_service_bytes_recursive.unwrap();
        assert_eq!(
            bytes
                .iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            [("read", 10), ("write", 20)]
        );
        assert!(stats.io_serviced_recursive.is_none());
        assert!(
            blkio(&Io::V2(Vec::new()))
                .io_service_bytes_recursive
                .is_none()
        );
        assert_eq!(
            blkio(&Io::V1(Default::default())).sectors_recursive,
            Some(Vec::new())
        );
    }
}
