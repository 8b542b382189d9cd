//! `POST /containers/{id}/update`: new resource limits and restart policy
//! for a container, running or not.

use serde::{Deserialize, Serialize};

/// The request's body (swagger: the Resources object plus RestartPolicy;
/// Go's `container.UpdateConfig`). A zero or empty field keeps the
/// container's value, as in Docker; `PidsLimit` 0 or below means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    pub blkio_weight: u16,
    pub cpu_shares: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory: i64,
    /// Memory plus swap; -1 for unlimited swap.
    pub memory_swap: i64,
    pub memory_reservation: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    pub restart_policy: RestartPolicy,
}

/// swagger: RestartPolicy. An empty name keeps the container's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: u32,
}

/// The answer (swagger: ContainerUpdateResponse); Docker sends null when
/// it has no warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    pub warnings: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_reads_dockers_field_names() {
        let body = r#"{"Memory":67108864,"MemorySwap":-1,"NanoCpus":500000000,"CpusetCpus":"0","PidsLimit":10,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}"#;
        let update: UpdateConfig = serde_json::from_str(body).unwrap();
        assert_eq!(update.memory, 64 << 20);
        assert_eq!(update.memory_swap, -1);
        assert_eq!(update.nano_cpus, 500_000_000);
        assert_eq!(update.cpuset_cpus, "0");
        assert_eq!(update.pids_limit, Some(10));
        assert_eq!(update.restart_policy.name, "on-failure");
        assert_eq!(update.restart_policy.maximum_retry_count, 3);
        let empty: UpdateConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, UpdateConfig::default());
    }
}
