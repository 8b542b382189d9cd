//! `GET /version`.

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
}
