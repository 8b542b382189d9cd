//! Manifests and indexes, OCI and Docker schema 2, and choosing the
//! platform's manifest from an index.

use keel_image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Every manifest type Keel reads, for `Accept`.
pub const ACCEPTED: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A pointer to content: a manifest, a config or a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An image manifest: a config and layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    /// A manifest of Docker's schema 2, or OCI's when the layers are OCI
    /// media types; JSON as Docker writes it (its digest is what tags name).
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        let oci = layers
            .iter()
            .any(|layer| layer.media_type.starts_with("application/vnd.oci."));
        let (media_type, config_type) = match oci {
            true => (OCI_MANIFEST, OCI_CONFIG),
            false => (DOCKER_MANIFEST, DOCKER_CONFIG),
        };
        Self {
            schema_version: 2,
            media_type: media_type.to_owned(),
            config: Descriptor {
                media_type: config_type.to_owned(),
                ..config
            },
            layers,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }
}

/// An index (manifest list): one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest request can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Index),
}

/// The fields every manifest has, to tell the kinds apart when the
/// `Content-Type` is missing or generic.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    schema_version: Option<u32>,
}

impl Manifest {
    /// Parses a manifest body; `content_type` is the registry's header.
    pub fn parse(content_type: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::BadAnswer {
            what: "manifest".to_owned(),
            reason,
        };
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let content_type = content_type.split(';').next().unwrap_or("").trim();
        let media_type = probe
            .media_type
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| match (content_type, &probe.manifests) {
                ("" | "application/json", Some(_)) => OCI_INDEX.to_owned(),
                ("" | "application/json", None) => OCI_MANIFEST.to_owned(),
                (given, _) => given.to_owned(),
            });
        if probe.schema_version == Some(1) || media_type.contains("manifest.v1") {
            return Err(Error::UnsupportedManifest(media_type));
        }
        let with_type = |mut value: serde_json::Value| {
            value["mediaType"] = media_type.clone().into();
            value
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => serde_json::from_value(with_type(value))
                .map(Manifest::Image)
                .map_err(|e| bad(format!("invalid image manifest: {e}"))),
            OCI_INDEX | DOCKER_LIST => serde_json::from_value(with_type(value))
                .map(Manifest::Index)
                .map_err(|e| bad(format!("invalid index: {e}"))),
            other => Err(Error::UnsupportedManifest(other.to_owned())),
        }
    }
}

/// An OS, architecture and variant, as `--platform` and indexes name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Self {
        Self::normalized("linux", keel_image::go_arch(), None)
    }

    /// Parses `os/arch[/variant]` (or just `arch`, taken as linux/arch).
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        let bad = || Error::InvalidPlatform(text.to_owned());
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [arch] => Ok(Self::normalized("linux", arch, None)),
            [os, arch] => Ok(Self::normalized(os, arch, None)),
            [os, arch, variant] => Ok(Self::normalized(os, arch, Some(variant))),
            _ => Err(bad()),
        }
    }

    /// Names as containerd's platforms package normalizes them.
    fn normalized(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) = match (architecture.to_ascii_lowercase().as_str(), variant) {
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_owned(), v.filter(|v| *v != "v1")),
            ("aarch64" | "arm64", v) => ("arm64".to_owned(), v.filter(|v| *v != "v8")),
            ("armhf", _) => ("arm".to_owned(), Some("v7")),
            ("armel", _) => ("arm".to_owned(), Some("v6")),
            ("arm", None) => ("arm".to_owned(), Some("v7")),
            ("i386" | "386", v) => ("386".to_owned(), v),
            (other, v) => (other.to_owned(), v),
        };
        Self {
            os,
            architecture,
            variant: variant.map(str::to_owned),
        }
    }

    /// Whether an index entry's platform serves this one.
    pub fn matches(&self, entry: &Platform) -> bool {
        let entry = Self::normalized(&entry.os, &entry.architecture, entry.variant.as_deref());
        entry.os == self.os
            && entry.architecture == self.architecture
            && (self.variant.is_none() || entry.variant == self.variant)
    }

    /// The index entry for this platform, the first that matches.
    pub fn choose<'a>(&self, index: &'a Index) -> Result<&'a Descriptor> {
        index
            .manifests
            .iter()
            .find(|entry| entry.platform.as_ref().is_some_and(|p| self.matches(p)))
            .ok_or_else(|| Error::NoMatchingPlatform {
                platform: self.to_string(),
            })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: DOCKER_MANIFEST.to_owned(),
            digest: Digest::of(&[n]),
            size: 1,
            platform: Some(Platform {
                os: os.to_owned(),
                architecture: arch.to_owned(),
                variant: variant.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn platforms_parse_and_normalize_like_containerd() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(Platform::parse("s390x").unwrap().to_string(), "linux/s390x");
        for bad in ["", "linux/", "a/b/c/d", "//"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_index_entry_of_the_platform_is_chosen() {
        let index = Index {
            schema_version: 2,
            media_type: OCI_INDEX.to_owned(),
            manifests: vec![
                entry("linux", "arm", Some("v6"), 1),
                entry("linux", "arm", Some("v7"), 2),
                entry("linux", "arm64", Some("v8"), 3),
                entry("linux", "amd64", None, 4),
            ],
        };
        let pick = |p: &str| {
            Platform::parse(p)
                .unwrap()
                .choose(&index)
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), Digest::of(&[4]));
        assert_eq!(pick("linux/arm64").unwrap(), Digest::of(&[3]));
        assert_eq!(pick("linux/arm/v7").unwrap(), Digest::of(&[2]));
        let error = pick("linux/s390x").unwrap_err().to_string();
        assert_eq!(
            error,
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }

    #[test]
    fn manifests_are_told_apart_by_media_type_or_shape() {
        let manifest = ImageManifest::new(
            Descriptor {
                media_type: String::new(),
                digest: Digest::of(b"c"),
                size: 1,
                platform: None,
            },
            vec![],
        );
        let bytes = manifest.to_json();
        assert_eq!(
            Manifest::parse("", &bytes).unwrap(),
            Manifest::Image(manifest.clone())
        );
        assert!(matches!(
            Manifest::parse("application/json", br#"{"schemaVersion":2,"manifests":[]}"#),
            Ok(Manifest::Index(_))
        ));
        assert!(matches!(
            Manifest::parse("", br#"{"schemaVersion":1,"name":"x"}"#),
            Err(Error::UnsupportedManifest(_))
        ));
    }
}
