//! `GET /version` and `GET /info`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The answer to `GET /version` (swagger: SystemVersion).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemVersion {
    pub platform: Platform,
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    pub name: String,
}

/// One component of the engine and its version, with free-form details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// The answer to `GET /info` (swagger: SystemInfo, as moby's
/// `system.Info` writes it for API 1.47).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    /// Only on cgroup v1, where it can be set apart from memory.
    #[serde(rename = "KernelMemoryTCP", default, skip_serializing_if = "is_false")]
    pub kernel_memory_tcp: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub bridge_nf_iptables: bool,
    #[serde(rename = "BridgeNfIp6tables")]
    pub bridge_nf_ip6tables: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: usize,
    pub oom_kill_disable: bool,
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: usize,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener")]
    pub nevents_listener: usize,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    pub registry_config: RegistryConfig,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    /// Swarm's generic resources: none outside a swarm (null, as moby's
    /// nil slice).
    pub generic_resources: Option<Vec<serde_json::Value>>,
    pub docker_root_dir: String,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, Runtime>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    pub security_options: Vec<String>,
    #[serde(rename = "CDISpecDirs")]
    pub cdi_spec_dirs: Vec<String>,
    pub warnings: Vec<String>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The plugins of each kind the daemon has built in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    /// Authorization plugins: none configured is null, as from dockerd.
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

/// How registries are reached (swagger: RegistryServiceConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, IndexInfo>,
    pub mirrors: Vec<String>,
}

/// One registry's settings (swagger: IndexInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    pub name: String,
    pub mirrors: Vec<String>,
    pub secure: bool,
    pub official: bool,
}

/// An OCI runtime the daemon can run containers with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub path: String,
}

/// The commit a component was built from, and the one expected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Commit {
    #[serde(rename = "ID")]
    pub id: String,
    pub expected: String,
}

/// This node's place in a swarm (swagger: SwarmInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    /// The other managers; null outside a swarm.
    pub remote_managers: Option<Vec<serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_has_dockers_field_names() {
        let version = SystemVersion {
            api_version: crate::API_VERSION.to_owned(),
            min_api_version: crate::MIN_API_VERSION.to_owned(),
            ..SystemVersion::default()
        };
        let json = serde_json::to_value(&version).unwrap();
        assert_eq!(json["ApiVersion"], "1.47");
        assert_eq!(json["MinAPIVersion"], "1.24");
        assert_eq!(json["KernelVersion"], "");
        assert_eq!(json["Platform"]["Name"], "");
    }

    #[test]
    fn the_info_has_dockers_field_names_and_nulls() {
        let json = serde_json::to_value(SystemInfo::default()).unwrap();
        for key in [
            "ID",
            "CpuCfsPeriod",
            "CPUShares",
            "CPUSet",
            "IPv4Forwarding",
            "BridgeNfIp6tables",
            "NFd",
            "NGoroutines",
            "NEventsListener",
            "OSVersion",
            "OSType",
            "NCPU",
            "HttpProxy",
            "CDISpecDirs",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
        assert!(json.get("KernelMemoryTCP").is_none(), "left out when false");
        assert_eq!(json["GenericResources"], serde_json::Value::Null);
        assert_eq!(json["Plugins"]["Authorization"], serde_json::Value::Null);
        assert_eq!(json["Swarm"]["RemoteManagers"], serde_json::Value::Null);
        assert_eq!(json["Swarm"]["NodeID"], "");
        assert!(json["RegistryConfig"]["InsecureRegistryCIDRs"].is_array());
    }
}
