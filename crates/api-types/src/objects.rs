//! Containers, networks and volumes: the bodies that create them and
//! the answers that list and inspect them, as far as Keel's clients
//! (`keel compose`) send and read them. Named as the swagger names them;
//! fields left empty are left out, as Docker's Go client leaves them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::update::RestartPolicy;

/// `{}`: what ExposedPorts and Volumes map each key to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// POST /containers/create's body (swagger: ContainerConfig with
/// HostConfig and NetworkingConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreate {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// Anonymous volumes, by target.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
}

/// swagger: HealthConfig; durations in nanoseconds, 0 for the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The part of swagger's HostConfig that compose projects set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `SOURCE:TARGET[:ro]`, SOURCE a host path or a volume's name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub restart_policy: RestartPolicy,
}

/// swagger: PortBinding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// swagger: NetworkingConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// The part of swagger's EndpointSettings a create sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub aliases: Vec<String>,
}

/// POST /containers/create's answer (swagger: ContainerCreateResponse);
/// also exec create's, which has the same `Id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IdResponse {
    pub id: String,
}

/// An entry of GET /containers/json (swagger: ContainerSummary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    pub command: String,
    pub created: i64,
    pub state: String,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortSummary>,
}

impl ContainerSummary {
    /// The container's name, without the leading `/`.
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map_or("", |name| name.trim_start_matches('/'))
    }
}

/// swagger: Port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortSummary {
    #[serde(rename = "IP")]
    pub ip: String,
    pub private_port: u16,
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub protocol: String,
}

/// The state part of GET /containers/{id}/json (swagger: ContainerState).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspectState {
    pub state: ContainerState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub exit_code: i64,
    pub health: Option<Health>,
}

/// swagger: Health (its log left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    pub status: String,
}

/// The id part of GET /images/{name}/json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageId {
    pub id: String,
}

/// POST /networks/create's body (swagger: NetworkCreateRequest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    pub labels: BTreeMap<String, String>,
}

/// swagger: IPAM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub config: Vec<IpamConfig>,
}

/// swagger: IPAMConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    pub subnet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// An entry of GET /networks (swagger: Network, in part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// POST /volumes/create's body (swagger: VolumeCreateOptions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreate {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

/// GET /volumes's answer (swagger: VolumeListResponse, in part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    pub volumes: Option<Vec<VolumeSummary>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeSummary {
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_dockers_field_names_and_leave_empty_ones_out() {
        let body = ContainerCreate {
            image: "busybox".into(),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD".into(), "true".into()],
                interval: 1_000_000_000,
                ..HealthConfig::default()
            }),
            ..ContainerCreate::default()
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["Image"], "busybox");
        assert_eq!(json["Healthcheck"]["Interval"], 1_000_000_000);
        assert!(json["Healthcheck"].get("Timeout").is_none());
        assert!(json.get("Cmd").is_none());
        assert_eq!(json["HostConfig"]["RestartPolicy"]["Name"], "");
        let network = NetworkCreate {
            name: "p_default".into(),
            ipam: Some(Ipam {
                config: vec![IpamConfig {
                    subnet: "10.1.0.0/24".into(),
                    ..IpamConfig::default()
                }],
                ..Ipam::default()
            }),
            ..NetworkCreate::default()
        };
        let json = serde_json::to_value(&network).unwrap();
        assert_eq!(json["IPAM"]["Config"][0]["Subnet"], "10.1.0.0/24");
    }

    #[test]
    fn summaries_read_dockers_answers() {
        let listed: Vec<ContainerSummary> = serde_json::from_str(
            r#"[{"Id":"abc","Names":["/p-web-1"],"Image":"busybox","Command":"sleep 1","Created":5,"State":"running","Status":"Up 1 second","Labels":{"com.docker.compose.service":"web"},"Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}],"Mounts":[]}]"#,
        )
        .unwrap();
        assert_eq!(listed[0].name(), "p-web-1");
        assert_eq!(listed[0].ports[0].public_port, Some(8080));
        let state: ContainerInspectState = serde_json::from_str(
            r#"{"Id":"abc","State":{"Status":"running","Running":true,"ExitCode":0,"Health":{"Status":"healthy","FailingStreak":0,"Log":[]}}}"#,
        )
        .unwrap();
        assert_eq!(state.state.health.unwrap().status, "healthy");
    }
}
