//! `GET /distribution/{name}/json`: what a registry holds under a name.

use serde::{Deserialize, Serialize};

/// The answer (swagger: DistributionInspect): the manifest or index the
/// name resolves to, and the platforms it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DistributionInspect {
    pub descriptor: Descriptor,
    pub platforms: Vec<Platform>,
}

/// An OCI descriptor, as the image spec names its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// An OCI platform; the fields an image leaves empty are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspect_has_the_image_specs_field_names() {
        let inspect = DistributionInspect {
            descriptor: Descriptor {
                media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
                digest: "sha256:abc".to_owned(),
                size: 7,
            },
            platforms: vec![Platform {
                architecture: "arm64".to_owned(),
                os: "linux".to_owned(),
                variant: "v8".to_owned(),
                ..Platform::default()
            }],
        };
        assert_eq!(
            serde_json::to_value(&inspect).unwrap(),
            serde_json::json!({
                "Descriptor": {
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": "sha256:abc",
                    "size": 7,
                },
                "Platforms": [{ "architecture": "arm64", "os": "linux", "variant": "v8" }],
            })
        );
    }
}
