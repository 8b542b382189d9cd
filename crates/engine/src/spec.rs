//! The OCI runtime config of a container: the runtime's defaults, with
//! what the image and `docker create` ask for, and Docker's defaults where
//! runc's differ (see `security`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, MountBuilder, RootBuilder, Spec, UserBuilder};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::mounts::{self, Kind, Mount};
use crate::network::{self, Wiring};
use crate::security::Confinement;
use crate::volumes::Volumes;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment: the image's, then the container's own (later wins),
/// with a PATH and HOSTNAME as Docker adds them.
pub fn environment(image_env: &[String], env: &[String], hostname: &str) -> Vec<String> {
    let mut merged: Vec<String> = Vec::new();
    for entry in image_env.iter().chain(env) {
        let name = entry.split('=').next().unwrap_or_default();
        merged.retain(|e| e.split('=').next() != Some(name));
        merged.push(entry.clone());
    }
    if !merged.iter().any(|e| e.starts_with("PATH=")) {
        merged.insert(0, DEFAULT_PATH.to_owned());
    }
    merged.retain(|e| !e.starts_with("HOSTNAME="));
    merged.insert(1.min(merged.len()), format!("HOSTNAME={hostname}"));
    merged
}

/// A terminal's processes get `TERM=xterm` unless they name one, as in
/// Docker.
pub(crate) fn with_terminal_type(env: &mut Vec<String>) {
    if !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
}

/// The config for `container`, whose root filesystem is mounted at
/// `rootfs`, put on its network as `wiring` says.
/// Where `--init` puts the init, as Docker does.
const INIT_TARGET: &str = "/sbin/docker-init";

pub(crate) fn build(
    container: &Container,
    image_env: &[String],
    rootfs: &Path,
    volumes: &Volumes,
    wiring: &Wiring,
    init: Option<&Path>,
) -> Result<Spec> {
    let mut spec = keel_runtime::default_spec();
    let hostname = network::hostname(container);
    // With an init, Docker's: it runs the process (`docker-init -- …`).
    let mut args = match init {
        Some(_) => vec![INIT_TARGET.to_owned(), "--".to_owned()],
        None => Vec::new(),
    };
    args.push(container.path.clone());
    args.extend(container.args.iter().cloned());
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(container.config.tty));
    process.set_args(Some(args));
    let mut env = environment(image_env, &container.config.env, &hostname);
    env.extend(wiring.env.iter().cloned());
    if container.config.tty {
        with_terminal_type(&mut env);
    }
    process.set_env(Some(env));
    process.set_cwd(
        container
            .config
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".to_owned())
            .into(),
    );
    process.set_user(process_user(
        container.config.user.as_deref().unwrap_or(""),
        rootfs,
    )?);
    spec.set_process(Some(process));
    spec.set_hostname(Some(hostname));
    place(&mut spec, rootfs, &container.id, wiring.host)?;
    if let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        for namespace in namespaces.iter_mut() {
            if namespace.typ() == LinuxNamespaceType::Network {
                namespace.set_path(wiring.netns.clone());
            }
        }
    }
    // The container's own mounts replace the defaults at the same place,
    // parents before children.
    let mut own: Vec<&Mount> = container.config.mounts.iter().collect();
    own.sort_by_key(|m| Path::new(&m.target).components().count());
    let mut mount_list = spec.mounts().clone().unwrap_or_default();
    mount_list.retain(|m| !own.iter().any(|o| Path::new(&o.target) == m.destination()));
    // Docker's name files, unless the container mounts its own there.
    for file in ["hosts", "hostname", "resolv.conf"] {
        let target = Path::new("/etc").join(file);
        if own.iter().any(|o| Path::new(&o.target) == target) {
            continue;
        }
        mount_list.push(
            MountBuilder::default()
                .destination(target)
                .typ("bind")
                .source(wiring.files_dir.join(file))
                .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                .build()
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        );
    }
    for mount in own {
        let source = match mount.kind {
            Kind::Volume => volumes.data_dir(&mount.source),
            Kind::Bind | Kind::Tmpfs => PathBuf::from(&mount.source),
        };
        mount_list.push(mounts::oci_mount(mount, &source));
    }
    if let Some(init) = init {
        mount_list.push(
            MountBuilder::default()
                .destination(INIT_TARGET)
                .typ("bind")
                .source(init)
                .options(vec!["bind".to_owned(), "ro".to_owned()])
                .build()
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        );
    }
    spec.set_mounts(Some(mount_list));
    container.config.resources.apply(&mut spec);
    let security = &container.config.security;
    Confinement::of(security)?.apply(&mut spec, security);
    Ok(spec)
}

/// Roots a config at `rootfs`, in the cgroup of `id`, and on the host's
/// network (no namespace of its own) when `host_network`.
pub(crate) fn place(spec: &mut Spec, rootfs: &Path, id: &str, host_network: bool) -> Result<()> {
    spec.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(false)
            .build()
            .map_err(|e| Error::Unsupported(e.to_string()))?,
    ));
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(cgroups_path(id).into()));
        if let Some(namespaces) = linux.namespaces_mut() {
            namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network || !host_network);
        }
    }
    Ok(())
}

/// The cgroup of the container (or job) `id`, below each hierarchy's root.
pub(crate) fn cgroups_path(id: &str) -> String {
    format!("/keel/{id}")
}

/// `user[:group]`, by number or by name from the image's /etc/passwd and
/// /etc/group: (uid, gid, supplementary gids).
/// The process user for `user[:group]`, looked up in the image.
pub(crate) fn process_user(spec: &str, rootfs: &Path) -> Result<oci_spec::runtime::User> {
    let (uid, gid, groups) = user(spec, rootfs)?;
    UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(groups)
        .build()
        .map_err(|e| Error::Unsupported(e.to_string()))
}

/// Opens `path` of the root `rootfs` as the container would see it: its
/// links resolved inside the root, never to a host path.
pub(crate) fn open_in_root(
    rootfs: &Path,
    path: &str,
    flags: rustix::fs::OFlags,
) -> Option<std::os::fd::OwnedFd> {
    let root = std::fs::File::open(rootfs).ok()?;
    rustix::fs::openat2(
        &root,
        path,
        flags | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .ok()
}

/// The text of `path` in the root `rootfs` (see [`open_in_root`]).
fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let file = open_in_root(rootfs, path, rustix::fs::OFlags::RDONLY)?;
    std::io::read_to_string(std::fs::File::from(file)).ok()
}

fn user(spec: &str, rootfs: &Path) -> Result<(u32, u32, Vec<u32>)> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd").unwrap_or_default();
    let groups = read_in_root(rootfs, "etc/group").unwrap_or_default();
    let (uid, mut gid, name) = if user.is_empty() {
        (0, 0, "root".to_owned())
    } else if let Ok(uid) = user.parse::<u32>() {
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&user));
        let gid = entry
            .as_ref()
            .and_then(|f| f.get(3)?.parse().ok())
            .unwrap_or(0);
        (uid, gid, entry.map(|f| f[0].to_owned()).unwrap_or_default())
    } else {
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&user) && f.len() >= 4)
            .ok_or_else(|| Error::NoSuchUser {
                user: user.to_owned(),
            })?;
        (
            entry[2].parse().map_err(|_| Error::NoSuchUser {
                user: user.to_owned(),
            })?,
            entry[3].parse().map_err(|_| Error::NoSuchUser {
                user: user.to_owned(),
            })?,
            user.to_owned(),
        )
    };
    if let Some(group) = group {
        gid = match group.parse() {
            Ok(gid) => gid,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.first() == Some(&group))
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(|| Error::NoSuchUser {
                    user: spec.to_owned(),
                })?,
        };
    }
    // Supplementary groups: those listing the user by name.
    let supplementary = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| {
            !name.is_empty()
                && f.get(3)
                    .is_some_and(|members| members.split(',').any(|m| m == name))
        })
        .filter_map(|f| f.get(2)?.parse().ok())
        .filter(|g| *g != gid)
        .collect();
    Ok((uid, gid, supplementary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_merges_as_docker_does() {
        let env = environment(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
            "abc",
        );
        assert_eq!(env, ["PATH=/bin", "HOSTNAME=abc", "A=2", "B=3"]);
        let env = environment(&[], &[], "h");
        assert_eq!(env, [DEFAULT_PATH, "HOSTNAME=h"]);
    }

    #[test]
    fn users_resolve_by_name_and_number_in_the_image() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        std::fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.path().join("etc/group"),
            "root:x:0:\nweb:x:1000:\nwheel:x:10:web\n",
        )
        .unwrap();
        assert_eq!(user("", rootfs.path()).unwrap(), (0, 0, vec![]));
        assert_eq!(user("web", rootfs.path()).unwrap(), (1000, 1000, vec![10]));
        assert_eq!(user("1000:10", rootfs.path()).unwrap(), (1000, 10, vec![]));
        assert_eq!(user("42", rootfs.path()).unwrap(), (42, 0, vec![]));
        let error = user("nobody-here", rootfs.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unable to find user nobody-here: no matching entries in passwd file"
        );
    }
}
