//! How a container is confined, as Docker does it: Docker's capability set
//! tweaked by `--cap-add`/`--cap-drop`, Docker's default seccomp profile or
//! the one `--security-opt seccomp=` gives, `no-new-privileges`,
//! `--read-only`, and `--privileged`, which lifts all of them.

use std::collections::HashSet;
use std::path::Path;

use keel_seccomp::Profile;
use oci_spec::runtime::{
    Capability, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxSeccomp, Spec,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The confinement flags of `docker create`, as the container keeps them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Security {
    pub privileged: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
}

/// Docker's default capability set (moby's `oci/caps/defaults.go`).
const DOCKER_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// What the flags come to, checked: computed at create (so bad flags
/// create nothing) and again when the container's config is built.
#[derive(Debug)]
pub(crate) struct Confinement {
    capabilities: Vec<Capability>,
    seccomp: Option<LinuxSeccomp>,
    no_new_privileges: bool,
}

enum Seccomp {
    Default,
    Unconfined,
    Profile(String),
}

impl Confinement {
    pub(crate) fn of(security: &Security) -> Result<Self> {
        let mut seccomp = Seccomp::Default;
        let mut no_new_privileges = false;
        for option in &security.security_opt {
            if option == "no-new-privileges" {
                no_new_privileges = true;
                continue;
            }
            // SELinux's "disable": there is no SELinux to disable here.
            if option == "disable" {
                continue;
            }
            let (key, value) = option
                .split_once('=')
                .or_else(|| option.split_once(':'))
                .ok_or_else(|| invalid(format!("invalid --security-opt 1: {option:?}")))?;
            match key {
                // No SELinux or AppArmor on the machines Keel runs on
                // (Docker ignores these where the LSM is absent, too).
                "label" | "apparmor" => {}
                "seccomp" => {
                    seccomp = match value {
                        "unconfined" => Seccomp::Unconfined,
                        "" | "builtin" => Seccomp::Default,
                        profile => Seccomp::Profile(profile.to_owned()),
                    }
                }
                "no-new-privileges" => {
                    no_new_privileges = parse_bool(value)
                        .ok_or_else(|| invalid(format!("invalid --security-opt 2: {option:?}")))?
                }
                _ => return Err(invalid(format!("invalid --security-opt 2: {option:?}"))),
            }
        }
        let capabilities = capabilities(security)?;
        let profile = match seccomp {
            _ if security.privileged => None,
            Seccomp::Unconfined => None,
            Seccomp::Default => Some(Profile::docker_default()),
            Seccomp::Profile(json) => {
                Some(Profile::parse(&json).map_err(|e| invalid(e.to_string()))?)
            }
        };
        let seccomp = match profile {
            Some(profile) => profile
                .resolve(&capabilities)
                .map_err(|e| invalid(e.to_string()))?,
            None => None,
        };
        Ok(Confinement {
            capabilities,
            seccomp,
            no_new_privileges,
        })
    }

    /// Sets the container's capabilities, seccomp profile and
    /// no_new_privileges, and for `--privileged` unmasks /proc, makes /sys
    /// writable and gives it the host's devices.
    pub(crate) fn apply(self, spec: &mut Spec, security: &Security) {
        if let Some(mut process) = spec.process().clone() {
            let set: HashSet<Capability> = self.capabilities.into_iter().collect();
            if let Some(mut capabilities) = process.capabilities().clone() {
                capabilities.set_bounding(Some(set.clone()));
                capabilities.set_effective(Some(set.clone()));
                capabilities.set_permitted(Some(set));
                capabilities.set_inheritable(None);
                capabilities.set_ambient(None);
                process.set_capabilities(Some(capabilities));
            }
            process.set_no_new_privileges(Some(self.no_new_privileges));
            spec.set_process(Some(process));
        }
        if let Some(root) = spec.root_mut() {
            root.set_readonly(Some(security.read_only));
        }
        if let Some(linux) = spec.linux_mut() {
            linux.set_seccomp(self.seccomp);
            if security.privileged {
                linux.set_masked_paths(None);
                linux.set_readonly_paths(None);
                linux.set_devices(Some(host_devices()));
                if let Some(resources) = linux.resources_mut() {
                    resources.set_devices(Some(vec![
                        LinuxDeviceCgroupBuilder::default()
                            .allow(true)
                            .access("rwm")
                            .build()
                            .expect("all fields set"),
                    ]));
                }
            }
        }
        if security.privileged
            && let Some(mounts) = spec.mounts_mut()
        {
            for mount in mounts.iter_mut().filter(|m| {
                m.destination() == Path::new("/sys")
                    || m.destination() == Path::new("/sys/fs/cgroup")
            }) {
                let options = mount
                    .options()
                    .iter()
                    .flatten()
                    .filter(|o| *o != "ro")
                    .cloned()
                    .collect();
                mount.set_options(Some(options));
            }
        }
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidParameter(message)
}

/// Go's strconv.ParseBool, which Docker uses for option values.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's capabilities with `--cap-drop` taken out and `--cap-add` put
/// in ("ALL" in either meaning every capability this daemon holds).
fn capabilities(security: &Security) -> Result<Vec<Capability>> {
    let available = keel_runtime::bounding_capabilities();
    if security.privileged {
        return Ok(available);
    }
    let normalize = |names: &[String]| -> Result<Vec<Option<Capability>>> {
        names
            .iter()
            .map(|name| {
                let upper = name.to_uppercase();
                if upper == "ALL" {
                    return Ok(None);
                }
                let full = if upper.starts_with("CAP_") {
                    upper
                } else {
                    format!("CAP_{upper}")
                };
                let capability: Capability = full["CAP_".len()..]
                    .parse()
                    .map_err(|_| invalid(format!("unknown capability: {full:?}")))?;
                if !available.contains(&capability) {
                    return Err(invalid(format!(
                        "capability not supported by your kernel or not available in the \
                         current environment: {full:?}"
                    )));
                }
                Ok(Some(capability))
            })
            .collect()
    };
    let add = normalize(&security.cap_add)?;
    let drop = normalize(&security.cap_drop)?;
    let mut capabilities: Vec<Capability> = if add.contains(&None) {
        available.clone()
    } else if drop.contains(&None) {
        Vec::new()
    } else {
        DOCKER_CAPABILITIES.to_vec()
    };
    if !drop.contains(&None) {
        capabilities.retain(|c| !drop.contains(&Some(*c)));
    }
    for capability in add.into_iter().flatten() {
        if !capabilities.contains(&capability) {
            capabilities.push(capability);
        }
    }
    Ok(capabilities)
}

/// The host's device nodes, for `--privileged` (as runc's HostDevices
/// finds them: below /dev, but not in the directories the container gets
/// its own of, and not the console).
fn host_devices() -> Vec<LinuxDevice> {
    let mut devices = Vec::new();
    collect_devices(Path::new("/dev"), &mut devices);
    devices
}

fn collect_devices(dir: &Path, devices: &mut Vec<LinuxDevice>) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = metadata.file_type();
        let name = entry.file_name();
        if kind.is_dir() {
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                collect_devices(&path, devices);
            }
            continue;
        }
        let typ = if kind.is_char_device() {
            LinuxDeviceType::C
        } else if kind.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        if name == "console" {
            continue;
        }
        let rdev = metadata.rdev();
        if let Ok(device) = LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(i64::from(rustix::fs::major(rdev)))
            .minor(i64::from(rustix::fs::minor(rdev)))
            .file_mode(metadata.mode() & 0o7777)
            .uid(metadata.uid())
            .gid(metadata.gid())
            .build()
        {
            devices.push(device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(add: &[&str], drop: &[&str]) -> Result<Vec<Capability>> {
        capabilities(&Security {
            cap_add: add.iter().map(|s| (*s).to_owned()).collect(),
            cap_drop: drop.iter().map(|s| (*s).to_owned()).collect(),
            ..Security::default()
        })
    }

    #[test]
    fn cap_add_and_cap_drop_tweak_dockers_set() {
        assert_eq!(caps(&[], &[]).unwrap(), DOCKER_CAPABILITIES);
        let tweaked = caps(&["net_admin", "CAP_SYS_PTRACE"], &["chown", "CAP_KILL"]).unwrap();
        assert!(tweaked.contains(&Capability::NetAdmin));
        assert!(tweaked.contains(&Capability::SysPtrace));
        assert!(!tweaked.contains(&Capability::Chown));
        assert!(!tweaked.contains(&Capability::Kill));
        assert_eq!(caps(&["chown"], &["ALL"]).unwrap(), [Capability::Chown]);
        let all_but_one = caps(&["all"], &["SYS_ADMIN"]).unwrap();
        assert!(!all_but_one.contains(&Capability::SysAdmin));
        assert!(all_but_one.contains(&Capability::NetAdmin));
    }

    #[test]
    fn unknown_capabilities_are_refused_in_dockers_words() {
        assert_eq!(
            caps(&["NET_FLY"], &[]).unwrap_err().to_string(),
            "unknown capability: \"CAP_NET_FLY\""
        );
        assert_eq!(
            caps(&[], &["cap_bogus"]).unwrap_err().to_string(),
            "unknown capability: \"CAP_BOGUS\""
        );
    }

    #[test]
    fn security_options_parse_as_docker_parses_them() {
        let of = |options: &[&str]| {
            Confinement::of(&Security {
                security_opt: options.iter().map(|s| (*s).to_owned()).collect(),
                ..Security::default()
            })
        };
        let default = of(&[]).unwrap();
        assert!(default.seccomp.is_some());
        assert!(!default.no_new_privileges);
        assert!(of(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(of(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(!of(&["no-new-privileges:false"]).unwrap().no_new_privileges);
        assert!(of(&["seccomp=unconfined"]).unwrap().seccomp.is_none());
        assert_eq!(
            of(&["nonsense"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"nonsense\""
        );
        assert_eq!(
            of(&["colour=blue"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"colour=blue\""
        );
        assert_eq!(
            of(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(
            of(&["seccomp={not json"])
                .unwrap_err()
                .to_string()
                .starts_with("decoding seccomp profile failed")
        );
    }
}
