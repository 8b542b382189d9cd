//! A container's mounts as `docker create` asks for them: `-v` binds and
//! named or anonymous volumes (`HostConfig.Binds`, `Config.Volumes`),
//! `--mount` (`HostConfig.Mounts`) and `--tmpfs`, checked and parsed with
//! Docker's rules and words, before anything is made.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use oci_spec::runtime::{Mount as OciMount, MountBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Bind,
    Volume,
    Tmpfs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: Kind,
    /// A host path (bind), a volume's name (empty until an anonymous
    /// volume is made at create), nothing for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// Fill an empty volume with what the image has at the target.
    #[serde(default)]
    pub copy: bool,
    /// Make a missing bind source, as `-v` does (`--mount` refuses).
    #[serde(default)]
    pub create_source: bool,
    #[serde(default)]
    pub propagation: Option<String>,
    /// tmpfs options: size=, mode=, and flags.
    #[serde(default)]
    pub options: Vec<String>,
}

/// `--mount` as the API carries it (`HostConfig.Mounts`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountRequest {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: Option<i64>,
    pub mode: Option<u32>,
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

fn invalid(message: String) -> Error {
    Error::InvalidParameter(message)
}

/// Every mount a container asks for, in the forms the API has.
pub fn parse(
    binds: &[String],
    volumes: &[String],
    requests: &[MountRequest],
    tmpfs: &BTreeMap<String, String>,
) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for spec in binds {
        mounts.push(parse_bind(spec)?);
    }
    for request in requests {
        mounts.push(parse_request(request)?);
    }
    for (target, options) in tmpfs {
        check_target(target, Kind::Tmpfs, target)?;
        mounts.push(Mount {
            kind: Kind::Tmpfs,
            source: String::new(),
            target: target.clone(),
            read_only: false,
            copy: false,
            create_source: false,
            propagation: None,
            options: options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    // Clients (docker-py) also list their binds' targets as volumes.
    for target in volumes {
        check_target(target, Kind::Volume, target)?;
        if !mounts.iter().any(|m| m.target == *target) {
            mounts.push(anonymous_volume(target));
        }
    }
    // One mount per target: a later one would hide an earlier one.
    for (i, mount) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|m| m.target == mount.target) {
            return Err(invalid(format!("Duplicate mount point: {}", mount.target)));
        }
    }
    Ok(mounts)
}

pub fn anonymous_volume(target: &str) -> Mount {
    Mount {
        kind: Kind::Volume,
        source: String::new(),
        target: target.to_owned(),
        read_only: false,
        copy: true,
        create_source: false,
        propagation: None,
        options: Vec::new(),
    }
}

/// `-v SOURCE:TARGET[:MODE]` or `-v TARGET`.
fn parse_bind(spec: &str) -> Result<Mount> {
    let bad = || invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(bad()),
    };
    if target.is_empty() {
        return Err(bad());
    }
    let kind = if source.starts_with('/') {
        Kind::Bind
    } else {
        Kind::Volume
    };
    check_target(target, kind, spec)?;
    if kind == Kind::Volume && !source.is_empty() {
        check_volume_name(source)?;
    }
    let mut mount = Mount {
        kind,
        source: source.to_owned(),
        target: target.to_owned(),
        read_only: false,
        copy: kind == Kind::Volume,
        create_source: true,
        propagation: None,
        options: Vec::new(),
    };
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "nocopy" if kind == Kind::Volume => mount.copy = false,
            p if PROPAGATIONS.contains(&p) && kind == Kind::Bind => {
                mount.propagation = Some(p.to_owned())
            }
            // SELinux labels and macOS consistency: nothing to do here.
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        }
    }
    if source.is_empty() && mode.is_empty() {
        return Ok(anonymous_volume(target));
    }
    Ok(mount)
}

fn parse_request(request: &MountRequest) -> Result<Mount> {
    let kind = match request.kind.as_str() {
        "bind" => Kind::Bind,
        "volume" => Kind::Volume,
        "tmpfs" => Kind::Tmpfs,
        other => {
            return Err(invalid(format!(
                "invalid mount config: mount type unknown: {other:?}: use bind, volume or tmpfs"
            )));
        }
    };
    let config_error = |message: &str| {
        invalid(format!(
            "invalid mount config for type \"{}\": {message}",
            kind.as_str()
        ))
    };
    if request.target.is_empty() {
        return Err(config_error("field Target must not be empty"));
    }
    check_target(&request.target, kind, &request.target)?;
    let mut mount = Mount {
        kind,
        source: request.source.clone(),
        target: request.target.clone(),
        read_only: request.read_only,
        copy: kind == Kind::Volume,
        create_source: false,
        propagation: None,
        options: Vec::new(),
    };
    match kind {
        Kind::Bind => {
            if request.source.is_empty() {
                return Err(config_error("field Source must not be empty"));
            }
            if !request.source.starts_with('/') {
                return Err(config_error(&format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    request.source
                )));
            }
            if !Path::new(&request.source).exists() {
                return Err(config_error(&format!(
                    "bind source path does not exist: {}",
                    request.source
                )));
            }
            if let Some(p) = request
                .bind_options
                .as_ref()
                .and_then(|b| b.propagation.clone())
            {
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(config_error(&format!("invalid propagation mode: {p}")));
                }
                mount.propagation = Some(p);
            }
        }
        Kind::Volume => {
            if !request.source.is_empty() {
                check_volume_name(&request.source)?;
            }
            if request.volume_options.as_ref().is_some_and(|v| v.no_copy) {
                mount.copy = false;
            }
        }
        Kind::Tmpfs => {
            if !request.source.is_empty() {
                return Err(config_error("field Source must not be specified"));
            }
            if let Some(options) = &request.tmpfs_options {
                if let Some(size) = options.size_bytes.filter(|s| *s > 0) {
                    mount.options.push(format!("size={size}"));
                }
                if let Some(mode) = options.mode {
                    mount.options.push(format!("mode={mode:o}"));
                }
            }
        }
    }
    Ok(mount)
}

fn check_target(target: &str, kind: Kind, spec: &str) -> Result<()> {
    if !target.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": \
             invalid mount path: '{target}' mount path must be absolute",
            kind.as_str()
        )));
    }
    if Path::new(target)
        .components()
        .all(|c| c == Component::RootDir)
    {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": \
             invalid specification: destination can't be '/'",
            kind.as_str()
        )));
    }
    Ok(())
}

/// Local volume names as Docker allows them.
pub fn check_volume_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        return Ok(());
    }
    Err(invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    )))
}

/// The OCI mount for `mount`, whose host side is `source` (a bind's path
/// or a volume's directory).
pub fn oci_mount(mount: &Mount, source: &Path) -> OciMount {
    let mut options: Vec<String> = Vec::new();
    let (kind, source) = match mount.kind {
        Kind::Tmpfs => {
            options.extend(["nosuid", "nodev", "noexec"].map(str::to_owned));
            options.extend(mount.options.iter().cloned());
            ("tmpfs", Path::new("tmpfs"))
        }
        Kind::Bind | Kind::Volume => {
            options.push("rbind".to_owned());
            options.push(
                mount
                    .propagation
                    .clone()
                    .unwrap_or_else(|| "rprivate".to_owned()),
            );
            ("bind", source)
        }
    };
    options.push(if mount.read_only { "ro" } else { "rw" }.to_owned());
    MountBuilder::default()
        .destination(&mount.target)
        .typ(kind)
        .source(source)
        .options(options)
        .build()
        .expect("all fields set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binds(specs: &[&str]) -> Result<Vec<Mount>> {
        let specs: Vec<String> = specs.iter().map(|s| (*s).to_owned()).collect();
        parse(&specs, &[], &[], &BTreeMap::new())
    }

    #[test]
    fn dash_v_specs_parse_as_binds_named_and_anonymous_volumes() {
        let mounts = binds(&[
            "/srv/data:/data:ro",
            "cache:/cache",
            "/scratch",
            "logs:/logs:nocopy",
        ])
        .unwrap();
        assert_eq!(
            (
                mounts[0].kind,
                mounts[0].source.as_str(),
                mounts[0].read_only
            ),
            (Kind::Bind, "/srv/data", true)
        );
        assert_eq!(
            (mounts[1].kind, mounts[1].source.as_str(), mounts[1].copy),
            (Kind::Volume, "cache", true)
        );
        assert_eq!(
            (mounts[2].kind, mounts[2].source.as_str()),
            (Kind::Volume, "")
        );
        assert!(!mounts[3].copy);
    }

    #[test]
    fn bad_dash_v_specs_are_refused_in_dockers_words() {
        let error = |spec: &str| binds(&[spec]).unwrap_err().to_string();
        assert_eq!(error("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(error("/src:/dst:xyz"), "invalid mode: xyz");
        assert!(
            error("/src:relative")
                .ends_with("invalid mount path: 'relative' mount path must be absolute")
        );
        assert!(error("/src:/").ends_with("destination can't be '/'"));
        assert!(error("b@d:/data").contains("includes invalid characters for a local volume name"));
        assert_eq!(
            binds(&["/a:/data", "b:/data"]).unwrap_err().to_string(),
            "Duplicate mount point: /data"
        );
    }
}
